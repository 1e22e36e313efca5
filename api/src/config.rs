//! Command line and environment: flags win over `GUICHET_*` variables,
//! which win over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use guichet_store::DatabaseUrl;

use crate::secrets::{self, JwtKeys};

/// Guichet: a self-hostable customer self-service payment portal API.
#[derive(Debug, Parser)]
#[command(
    name = "guichet",
    version,
    about = "Guichet: a self-hostable customer self-service payment portal API.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, print the schema state and exit.
    Migrate(DbArgs),
    /// Print the OpenAPI document (what openapi/openapi.json holds).
    Openapi,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: postgres://USER:PASS@HOST/DB, sqlite://PATH or a plain
    /// file path [default: a SQLite file guichet.db in the data directory]
    #[arg(long, env = "GUICHET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the default SQLite file and generated development
    /// secrets.
    #[arg(long, env = "GUICHET_DATA_DIR", default_value = "./guichet-data")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    /// The database URL, defaulting to `<data dir>/guichet.db`.
    pub fn database_url(&self) -> Result<DatabaseUrl, String> {
        match &self.database_url {
            Some(url) => DatabaseUrl::parse(url).map_err(|e| e.to_string()),
            None => Ok(DatabaseUrl::Sqlite(self.data_dir.join("guichet.db"))),
        }
    }
}

/// Development generates missing secrets; production refuses to start
/// without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `guichet serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Address and port to listen on.
    #[arg(long, env = "GUICHET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// development: missing secrets are generated and kept in the data
    /// directory; production: missing secrets refuse to start.
    #[arg(long, env = "GUICHET_ENV", value_enum, default_value = "development")]
    pub env: Environment,

    /// Log format [default: text in development, json in production]
    #[arg(long, env = "GUICHET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Browser origins allowed to call the API (comma-separated, exact
    /// match, `*` for any).
    #[arg(long, env = "GUICHET_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body accepted, in bytes (1024 to 10485760).
    #[arg(long, env = "GUICHET_BODY_LIMIT", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(1024..=10_485_760))]
    pub body_limit: u64,

    /// Largest request head (request line and headers), in bytes (4096 to
    /// 65536).
    #[arg(long, env = "GUICHET_HEADER_LIMIT", default_value_t = 16_384,
          value_parser = clap::value_parser!(u64).range(4096..=65_536))]
    pub header_limit: u64,

    /// Secret that signs access tokens (HS256), at least 32 bytes. Prefer
    /// the environment variable to the flag.
    #[arg(long, env = "GUICHET_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Former signing secrets still accepted for verification during a key
    /// rotation (comma-separated).
    #[arg(
        long,
        env = "GUICHET_JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub jwt_previous_secrets: Vec<String>,

    /// HTTP worker threads [default: the number of cores]
    #[arg(long, env = "GUICHET_WORKERS")]
    pub workers: Option<usize>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "GUICHET_DB_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=200))]
    pub db_pool_size: u32,

    /// Seconds given to in-flight requests on SIGTERM before they are cut.
    #[arg(long, env = "GUICHET_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// Create demo data when the database is empty, and print how to use it.
    #[arg(long)]
    pub demo: bool,
}

/// The resolved configuration of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub environment: Environment,
    pub log_format: LogFormat,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub header_limit: usize,
    pub jwt: JwtKeys,
    pub workers: usize,
    pub db_pool_size: u32,
    pub shutdown_timeout: u64,
    pub demo: bool,
}

impl Settings {
    /// Resolves `args`: secrets are read, generated (development) or
    /// demanded (production).
    pub fn from_args(args: &ServeArgs) -> Result<Settings, String> {
        let database_url = args.db.database_url()?;
        let jwt = resolve_jwt(args, &args.db.data_dir)?;
        for origin in args.cors_origins.iter().map(|o| o.trim()) {
            if origin != "*" && !(origin.starts_with("https://") || origin.starts_with("http://")) {
                return Err(format!(
                    "CORS origin {origin:?} must be `*` or start with http:// or https://"
                ));
            }
        }
        Ok(Settings {
            listen: args.listen,
            environment: args.env,
            log_format: args.log_format.unwrap_or(match args.env {
                Environment::Development => LogFormat::Text,
                Environment::Production => LogFormat::Json,
            }),
            database_url,
            data_dir: args.db.data_dir.clone(),
            cors_origins: args.cors_origins.clone(),
            body_limit: usize::try_from(args.body_limit).unwrap_or(65_536),
            header_limit: usize::try_from(args.header_limit).unwrap_or(16_384),
            jwt,
            workers: args
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .max(1),
            db_pool_size: args.db_pool_size,
            shutdown_timeout: args.shutdown_timeout,
            demo: args.demo,
        })
    }
}

fn resolve_jwt(args: &ServeArgs, data_dir: &Path) -> Result<JwtKeys, String> {
    let current = match (&args.jwt_secret, args.env) {
        (Some(secret), _) => secret.clone(),
        (None, Environment::Production) => {
            return Err(
                "GUICHET_JWT_SECRET (or --jwt-secret) is required in production: \
                 set it to a random string of at least 32 bytes"
                    .into(),
            );
        }
        (None, Environment::Development) => secrets::development_secret(data_dir, "jwt-secret")?,
    };
    JwtKeys::new(&current, &args.jwt_previous_secrets)
}
