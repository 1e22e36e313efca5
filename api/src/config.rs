//! Command line and environment: flags win over `GUICHET_*` variables,
//! which win over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use guichet_store::DatabaseUrl;

use crate::edge::client_ip::{IpRange, TrustedProxies};
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
    /// Provision organizations and API keys.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run a background job once (what `serve` runs periodically).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Development tools.
    #[command(subcommand)]
    Dev(DevCommand),
}

/// `guichet dev ...`
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Run a local webhook receiver on 127.0.0.1: it checks each request's
    /// Standard Webhooks signature against the given secrets, answers 200
    /// and prints one line per event (id, type, verified yes/no).
    WebhookReceiver(WebhookReceiverArgs),
}

/// `guichet dev webhook-receiver`
#[derive(Debug, Clone, Args)]
pub struct WebhookReceiverArgs {
    /// Port on 127.0.0.1 (0: any free port, printed at start).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// The endpoint's signing secret (`whsec_...`); repeat it to accept
    /// the former secret too during a rotation.
    #[arg(long = "secret", required = true, value_parser = parse_secret)]
    pub secrets: Vec<guichet_domain::webhooks::Secret>,
}

fn parse_secret(value: &str) -> Result<guichet_domain::webhooks::Secret, String> {
    guichet_domain::webhooks::Secret::parse(value.trim()).map_err(|e| e.to_string())
}

/// `guichet jobs ...`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Present every instalment due on or before --as-of to the payment
    /// gateway (stale pending charges are reconciled first), then run the
    /// SEPA step (mandate expiry, pre-notifications, presentation of due
    /// collections, cover of new charges; docs/MANDATES.md), then pay
    /// pending refunds; prints the three reports. Exit status: 0 everything
    /// due was settled, 1 aborted (database unavailable), 3 due work is
    /// left (errors, unknown outcomes, claims held by another run: the
    /// report says how many and until when), 4 stopped by SIGTERM/SIGINT.
    Debit(DebitArgs),
    /// Pay pending refunds at the payment gateway (what `jobs debit` also
    /// does last); prints the report. Exit status as `jobs debit`.
    Refunds(RefundArgs),
    /// Send the webhook deliveries that are due (what `serve` does
    /// continually), then print the report. Exit status: 0 everything due
    /// was delivered, 1 aborted (database unavailable), 3 deliveries failed
    /// and are retried later or are held by another dispatcher, 4 stopped
    /// by SIGTERM/SIGINT.
    Webhooks(WebhookJobArgs),
    /// Expire the consents whose activation link passed its 14 days while
    /// the cardholder's flow was under way (what `serve` does every
    /// --consent-expiry-interval-secs), recording `consent.expired` once
    /// each; prints how many. Safe beside running servers. Exit status: 0
    /// done, 1 aborted (database unavailable), 4 stopped by SIGTERM/SIGINT.
    ConsentExpiry(ConsentExpiryArgs),
    /// Send the booking reminders that are due (what `serve` does every
    /// --booking-reminder-interval-secs): an e-mail, and an SMS when the
    /// customer has a mobile, with `booking.reminder_sent`, once per
    /// booking; prints how many. Safe beside running servers. Exit status:
    /// 0 done, 1 aborted (database unavailable), 4 stopped by
    /// SIGTERM/SIGINT.
    BookingReminders(BookingRemindersArgs),
}

/// `guichet jobs booking-reminders`
#[derive(Debug, Clone, Args)]
pub struct BookingRemindersArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Reminders per transaction (1 to 10000).
    #[arg(long, default_value_t = guichet_jobs::bookings::BATCH,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch: i64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guichet jobs consent-expiry`
#[derive(Debug, Clone, Args)]
pub struct ConsentExpiryArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Consents expired per transaction (1 to 10000).
    #[arg(long, default_value_t = guichet_jobs::consents::BATCH,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch: i64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guichet jobs webhooks`
#[derive(Debug, Clone, Args)]
pub struct WebhookJobArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How webhooks are delivered (`serve` and `jobs webhooks`).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Allow plain `http://` webhook endpoint URLs (self-hosted testing
    /// only; production endpoints should be `https://`).
    #[arg(long, env = "GUICHET_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,

    /// Addresses or CIDR ranges webhooks may be sent to although they are
    /// loopback, private, link-local or otherwise internal (repeatable or
    /// comma-separated, e.g. `127.0.0.1,10.1.0.0/16`). Every other internal
    /// address is refused, at creation and at each delivery.
    #[arg(
        long = "webhook-allow-address",
        env = "GUICHET_WEBHOOK_ALLOW_ADDRESSES",
        value_delimiter = ','
    )]
    pub webhook_allow_addresses: Vec<guichet_domain::webhooks::Cidr>,

    /// Milliseconds between two passes of the webhook dispatcher when it
    /// has nothing to send (each pass sends everything due); 0 disables it
    /// in `serve` (run `guichet jobs webhooks` instead).
    #[arg(long, env = "GUICHET_WEBHOOK_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub webhook_interval_ms: u64,

    /// Deliveries sent at once (each to a different endpoint; one
    /// endpoint's deliveries go one after the other, in order), 1 to 256.
    #[arg(long, env = "GUICHET_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub webhook_concurrency: u16,

    /// The nice value of the dispatcher's threads in `serve` (0 to 19; 0
    /// leaves them at the server's priority). Above 0, the API's workers
    /// get the CPU first while a backlog drains (Linux only).
    #[arg(long, env = "GUICHET_WEBHOOK_NICE", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub webhook_nice: i32,

    /// Deliveries the dispatcher claims at once, 1 to 5000.
    #[arg(long, env = "GUICHET_WEBHOOK_BATCH", default_value_t = 500,
          value_parser = clap::value_parser!(i64).range(1..=5000))]
    pub webhook_batch: i64,

    /// For tests only: seconds a dispatcher's claim on deliveries lasts
    /// (20 to 3600; docs/CONFIGURATION.md): a dead dispatcher's deliveries
    /// are sent again once it ends.
    #[arg(long, hide = true, default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(20..=3600))]
    pub webhook_lease_secs: u64,

    /// For tests only: multiplies the retry delays and the 3-day limits
    /// (e.g. 0.001 turns 5 s into 5 ms; docs/CONFIGURATION.md).
    #[arg(long, hide = true, default_value_t = 1.0, value_parser = parse_scale)]
    pub webhook_backoff_scale: f64,
}

fn parse_scale(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{value:?} is not a number above 0 and at most 1")),
    }
}

impl WebhookArgs {
    /// What the API checks endpoint URLs against.
    pub fn policy(&self) -> guichet_domain::webhooks::AddressPolicy {
        guichet_domain::webhooks::AddressPolicy::new(self.webhook_allow_addresses.clone())
    }

    /// The dispatcher's settings.
    pub fn dispatcher(&self) -> guichet_jobs::webhooks::Settings {
        guichet_jobs::webhooks::Settings {
            policy: self.policy(),
            allow_http: self.webhook_allow_http,
            batch: self.webhook_batch,
            concurrency: usize::from(self.webhook_concurrency),
            lease: std::time::Duration::from_secs(self.webhook_lease_secs),
            backoff_scale: self.webhook_backoff_scale,
            nice: self.webhook_nice,
        }
    }
}

/// `guichet jobs refunds`
#[derive(Debug, Clone, Args)]
pub struct RefundArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Payment gateway (as `guichet serve --payment-gateway`).
    #[arg(
        long,
        env = "GUICHET_PAYMENT_GATEWAY",
        value_enum,
        default_value = "sandbox"
    )]
    pub payment_gateway: PaymentGatewayKind,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guichet jobs debit`
#[derive(Debug, Clone, Args)]
pub struct DebitArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Present the instalments due on or before this date (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub as_of: chrono::NaiveDate,
    /// Instalments claimed at once (1 to 10000).
    #[arg(long, default_value_t = guichet_jobs::debit::DEFAULT_BATCH,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch: i64,
    /// Payment gateway (as `guichet serve --payment-gateway`).
    #[arg(
        long,
        env = "GUICHET_PAYMENT_GATEWAY",
        value_enum,
        default_value = "sandbox"
    )]
    pub payment_gateway: PaymentGatewayKind,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A calendar date written YYYY-MM-DD.
fn parse_date(value: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{value:?} is not a date: expected YYYY-MM-DD, e.g. 2026-11-22"))
}

/// `guichet admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and its first admin; prints the admin's
    /// one-time setup token (for POST /v1/auth/staff/setup, 7 days).
    CreateOrg(CreateOrgArgs),
    /// Create an API key for an organization; prints its secret once.
    CreateApiKey(CreateApiKeyArgs),
}

/// The secret key as `serve` resolves it (the same key must hash what the
/// server will check).
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// The server secret key (see `guichet serve --help`).
    #[arg(long, env = "GUICHET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// development: a missing secret key is generated into the data
    /// directory; production: it is required.
    #[arg(long, env = "GUICHET_ENV", value_enum, default_value = "development")]
    pub env: Environment,
}

/// `guichet admin create-org`
#[derive(Debug, Clone, Args)]
pub struct CreateOrgArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// URL-safe handle customers and staff give at sign-in.
    #[arg(long)]
    pub slug: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// E-mail of the first admin.
    #[arg(long)]
    pub admin_email: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `guichet admin create-api-key`
#[derive(Debug, Clone, Args)]
pub struct CreateApiKeyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// What the key is for.
    #[arg(long, default_value = "created from the command line")]
    pub name: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
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

    /// Largest document or message attachment accepted, in bytes (1024 to
    /// 1073741824); a larger upload is refused with 413 before the rest of
    /// it is read.
    #[arg(long, env = "GUICHET_DOCUMENT_MAX_BYTES", default_value_t = 20_971_520,
          value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub document_max_bytes: u64,

    /// Where the bytes of documents go: `s3://bucket[/prefix]` for an
    /// S3-compatible store shared by several API nodes (credentials,
    /// region and endpoint from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`) [default: the directory `blobs` in the data
    /// directory]
    #[arg(long, env = "GUICHET_BLOB_STORE")]
    pub blob_store: Option<String>,

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

    /// Server secret (at least 32 bytes) that keys the hashes of one-time
    /// codes and links and signs proof-of-work challenges.
    #[arg(long, env = "GUICHET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Reverse proxies or load balancers in front of the server whose
    /// `X-Forwarded-For` gives the client's address (comma-separated
    /// addresses or CIDR ranges, e.g. `10.0.0.0/8,127.0.0.1`); rate limits
    /// and session records use that address. Empty: the TCP peer, and the
    /// header is ignored
    #[arg(long, env = "GUICHET_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpRange>,

    /// Requests per minute one IP address may make for challenges, and
    /// for session upkeep (refresh, logout), each counted apart.
    #[arg(long, env = "GUICHET_AUTH_RATE_LIMIT", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auth_rate_limit: u32,

    /// Sign-in attempts per minute from one IP address (password and code
    /// sign-ins, password resets, staff setup, mandate signature codes).
    #[arg(long, env = "GUICHET_AUTH_SIGN_IN_LIMIT", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auth_sign_in_limit: u32,

    /// Requests per minute from one IP address that send a sign-in code or
    /// a reset link (passwordless start, forgotten password).
    #[arg(long, env = "GUICHET_AUTH_CODE_SEND_LIMIT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auth_code_send_limit: u32,

    /// First-access requests per minute from one IP address (registration,
    /// its code, activation by letter).
    #[arg(long, env = "GUICHET_AUTH_REGISTRATION_LIMIT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auth_registration_limit: u32,

    /// Codes and links one IP address may have sent per hour.
    #[arg(long, env = "GUICHET_CODE_SEND_LIMIT_PER_IP", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub code_send_limit_per_ip: u32,

    /// Codes and links one destination (e-mail or mobile) may receive per hour.
    #[arg(long, env = "GUICHET_CODE_SEND_LIMIT_PER_DESTINATION", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub code_send_limit_per_destination: u32,

    /// How e-mails are delivered: `file` writes .eml files to
    /// <data dir>/outbox/email/, `smtp` sends them to the SMTP server.
    #[arg(
        long,
        env = "GUICHET_EMAIL_DELIVERY",
        value_enum,
        default_value = "file"
    )]
    pub email_delivery: EmailDeliveryMode,

    /// Sender address of e-mails.
    #[arg(
        long,
        env = "GUICHET_EMAIL_FROM",
        default_value = "Guichet <no-reply@guichet.localhost>"
    )]
    pub email_from: String,

    /// SMTP server host (with --email-delivery smtp).
    #[arg(long, env = "GUICHET_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP server port [default: 587 with starttls, 465 with tls, 25 without]
    #[arg(long, env = "GUICHET_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP transport security.
    #[arg(long, env = "GUICHET_SMTP_TLS", value_enum, default_value = "starttls")]
    pub smtp_tls: SmtpTls,

    /// SMTP user name, when the server wants authentication.
    #[arg(long, env = "GUICHET_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP password. Prefer the environment variable to the flag.
    #[arg(long, env = "GUICHET_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// How SMS are delivered: `file` writes one JSON file per message to
    /// <data dir>/outbox/sms/, `http` POSTs them to --sms-provider-url.
    #[arg(long, env = "GUICHET_SMS_DELIVERY", value_enum, default_value = "file")]
    pub sms_delivery: SmsDeliveryMode,

    /// URL that receives `{"to": "+33...", "body": "..."}` as a JSON POST
    /// (with --sms-delivery http).
    #[arg(long, env = "GUICHET_SMS_PROVIDER_URL")]
    pub sms_provider_url: Option<String>,

    /// Bearer token sent to the SMS provider.
    #[arg(long, env = "GUICHET_SMS_PROVIDER_TOKEN", hide_env_values = true)]
    pub sms_provider_token: Option<String>,

    /// Milliseconds between two passes of the outbox dispatcher.
    #[arg(long, env = "GUICHET_OUTBOX_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub outbox_interval_ms: u64,

    /// HTTP worker threads [default: the number of cores]
    #[arg(long, env = "GUICHET_WORKERS")]
    pub workers: Option<usize>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "GUICHET_DB_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=200))]
    pub db_pool_size: u32,

    /// Password hashes (argon2id, about 19 MiB and 20 ms of CPU each)
    /// computed at once, 1 to 256; further sign-ins wait for a free slot.
    /// Fewer leave more CPU to other requests during a storm of sign-ins,
    /// at the cost of fewer sign-ins per second (docs/BENCHMARKS.md)
    /// [default: the number of cores]
    #[arg(long, env = "GUICHET_PASSWORD_HASH_CONCURRENCY",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub password_hash_concurrency: Option<u16>,

    /// Payment gateway: `sandbox` (built in, deterministic test cards; see
    /// docs) is the only one so far.
    #[arg(
        long,
        env = "GUICHET_PAYMENT_GATEWAY",
        value_enum,
        default_value = "sandbox"
    )]
    pub payment_gateway: PaymentGatewayKind,

    /// Seconds given to in-flight requests on SIGTERM before they are cut.
    #[arg(long, env = "GUICHET_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// Create the demo organizations (`demo`, `fractio`, `gerance`) and
    /// print how to use them; at each start those that exist are first
    /// deleted with all their data, other organizations are untouched.
    #[arg(long)]
    pub demo: bool,

    /// Seconds between two debit runs (due instalments presented to the
    /// payment gateway) and two SEPA runs (collections pre-notified and
    /// presented); 0 disables them (run `guichet jobs debit` instead).
    #[arg(long, env = "GUICHET_DEBIT_INTERVAL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub debit_interval_secs: u64,

    /// Seconds between two refunds runs (pending refunds paid at the
    /// payment gateway); 0 disables them (run `guichet jobs refunds`
    /// instead).
    #[arg(long, env = "GUICHET_REFUND_INTERVAL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub refund_interval_secs: u64,

    /// Days events are kept (`GET /v1/admin/events`, webhook deliveries
    /// and their log); older ones are deleted hourly.
    #[arg(long, env = "GUICHET_EVENTS_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub events_retention_days: u32,

    /// Seconds between two sweeps that expire the consents whose
    /// activation link passed its 14 days (recording `consent.expired`);
    /// 0 disables them (run `guichet jobs consent-expiry` instead).
    #[arg(long, env = "GUICHET_CONSENT_EXPIRY_INTERVAL_SECS",
          default_value_t = guichet_jobs::consents::DEFAULT_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub consent_expiry_interval_secs: u64,

    /// Seconds between two runs that send the booking reminders due
    /// (`reminder_hours_before` the start); 0 disables them (run `guichet
    /// jobs booking-reminders` instead).
    #[arg(long, env = "GUICHET_BOOKING_REMINDER_INTERVAL_SECS",
          default_value_t = guichet_jobs::bookings::DEFAULT_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub booking_reminder_interval_secs: u64,
    #[command(flatten)]
    pub webhooks: WebhookArgs,

    /// A bank directory file (`country,bank_code,bic,name`, see
    /// crates/domain/data/README.md) whose entries add to or replace the
    /// built-in ones when a BIC is proposed for an IBAN. Read once at start;
    /// a malformed file stops the start, naming the line.
    #[arg(long, env = "GUICHET_BANK_DIRECTORY")]
    pub bank_directory: Option<PathBuf>,

    /// Seconds an `Idempotency-Key` stays locked for a request that may
    /// still be running (1 to 60): meanwhile a retry with the same key gets
    /// 409 `idempotency_key_in_use`; after it, the retry takes the key over
    /// and finishes the request (the first attempt crashed or gave up).
    #[arg(long, env = "GUICHET_IDEMPOTENCY_LOCK_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub idempotency_lock_seconds: u64,

    /// For tests only: sleep this long inside a named transaction, right
    /// before its COMMIT, so that a test can kill the server there
    /// (`POINT:MILLISECONDS`, repeatable; docs/CONFIGURATION.md).
    #[arg(long, hide = true, value_parser = crate::faults::parse_pause)]
    pub fault_pause: Vec<(crate::faults::FaultPoint, std::time::Duration)>,
}

pub use guichet_jobs::PaymentGatewayKind;

/// Where e-mails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailDeliveryMode {
    File,
    Smtp,
}

/// Where SMS go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmsDeliveryMode {
    File,
    Http,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtpTls {
    /// Plain connection (local relays only).
    None,
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// Outbox delivery settings, resolved.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub email: EmailDeliveryMode,
    pub email_from: String,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub sms: SmsDeliveryMode,
    pub sms_provider_url: Option<String>,
    pub sms_provider_token: Option<String>,
    /// `<data dir>/outbox`, for file delivery.
    pub outbox_dir: PathBuf,
    pub interval: std::time::Duration,
}

/// Sign-in abuse limits.
#[derive(Debug, Clone, Copy)]
pub struct AuthLimits {
    /// Challenges, and session upkeep, each.
    pub requests_per_minute_per_ip: u32,
    pub sign_ins_per_minute_per_ip: u32,
    pub code_sends_per_minute_per_ip: u32,
    pub registrations_per_minute_per_ip: u32,
    pub codes_per_hour_per_ip: u32,
    pub codes_per_hour_per_destination: u32,
}

/// The resolved configuration of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    pub environment: Environment,
    pub log_format: LogFormat,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub header_limit: usize,
    /// Largest document upload, in bytes.
    pub document_max_bytes: u64,
    /// Where document bytes go.
    pub blobs: crate::blobs::Blobs,
    pub jwt: JwtKeys,
    /// Keys code hashes and signs challenges.
    pub secret_key: Vec<u8>,
    pub auth_limits: AuthLimits,
    pub notify: NotifySettings,
    pub workers: usize,
    pub db_pool_size: u32,
    /// Password hashes computed at once (`HashSlots`).
    pub password_hash_concurrency: usize,
    pub shutdown_timeout: u64,
    pub payment_gateway: PaymentGatewayKind,
    pub demo: bool,
    /// Proposes BICs from IBANs: the built-in directory, extended by
    /// `--bank-directory`.
    pub bank_directory: std::sync::Arc<guichet_domain::sepa::BankDirectory>,
    /// How long an idempotency key stays locked for a running request.
    pub idempotency_lock: chrono::Duration,
    /// Test-only pauses before a COMMIT (`--fault-pause`).
    pub faults: crate::faults::Faults,
    /// Webhook endpoints and their dispatcher.
    pub webhooks: WebhookArgs,
}

impl Settings {
    /// Resolves `args`: secrets are read, generated (development) or
    /// demanded (production).
    pub fn from_args(args: &ServeArgs) -> Result<Settings, String> {
        let database_url = args.db.database_url()?;
        let jwt = resolve_jwt(args, &args.db.data_dir)?;
        let secret_key = resolve_secret_key(args, &args.db.data_dir)?;
        if args.email_delivery == EmailDeliveryMode::Smtp && args.smtp_host.is_none() {
            return Err("--email-delivery smtp needs --smtp-host (GUICHET_SMTP_HOST)".into());
        }
        if args.sms_delivery == SmsDeliveryMode::Http {
            match &args.sms_provider_url {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {}
                Some(url) => {
                    return Err(format!("--sms-provider-url {url:?} is not an http(s) URL"));
                }
                None => {
                    return Err(
                        "--sms-delivery http needs --sms-provider-url (GUICHET_SMS_PROVIDER_URL)"
                            .into(),
                    );
                }
            }
        }
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
            trusted_proxies: TrustedProxies::new(args.trusted_proxies.clone()),
            body_limit: usize::try_from(args.body_limit).unwrap_or(65_536),
            header_limit: usize::try_from(args.header_limit).unwrap_or(16_384),
            document_max_bytes: args.document_max_bytes,
            blobs: crate::blobs::Blobs::open(args.blob_store.as_deref(), &args.db.data_dir)?,
            jwt,
            secret_key,
            auth_limits: AuthLimits {
                requests_per_minute_per_ip: args.auth_rate_limit,
                sign_ins_per_minute_per_ip: args.auth_sign_in_limit,
                code_sends_per_minute_per_ip: args.auth_code_send_limit,
                registrations_per_minute_per_ip: args.auth_registration_limit,
                codes_per_hour_per_ip: args.code_send_limit_per_ip,
                codes_per_hour_per_destination: args.code_send_limit_per_destination,
            },
            notify: NotifySettings {
                email: args.email_delivery,
                email_from: args.email_from.clone(),
                smtp_host: args.smtp_host.clone(),
                smtp_port: args.smtp_port,
                smtp_tls: args.smtp_tls,
                smtp_username: args.smtp_username.clone(),
                smtp_password: args.smtp_password.clone(),
                sms: args.sms_delivery,
                sms_provider_url: args.sms_provider_url.clone(),
                sms_provider_token: args.sms_provider_token.clone(),
                outbox_dir: args.db.data_dir.join("outbox"),
                interval: std::time::Duration::from_millis(args.outbox_interval_ms),
            },
            workers: args
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .max(1),
            db_pool_size: args.db_pool_size,
            password_hash_concurrency: args.password_hash_concurrency.map_or_else(
                || std::thread::available_parallelism().map_or(2, |n| n.get()),
                usize::from,
            ),
            shutdown_timeout: args.shutdown_timeout,
            payment_gateway: args.payment_gateway,
            demo: args.demo,
            bank_directory: std::sync::Arc::new(bank_directory(args.bank_directory.as_deref())?),
            idempotency_lock: chrono::Duration::seconds(
                i64::try_from(args.idempotency_lock_seconds).unwrap_or(60),
            ),
            faults: crate::faults::Faults::new(args.fault_pause.clone()),
            webhooks: args.webhooks.clone(),
        })
    }
}

/// The built-in bank directory, extended by the operator's file if any.
fn bank_directory(path: Option<&Path>) -> Result<guichet_domain::sepa::BankDirectory, String> {
    let builtin = guichet_domain::sepa::BankDirectory::builtin();
    let Some(path) = path else {
        return Ok(builtin.clone());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--bank-directory {}: {e}", path.display()))?;
    builtin
        .extended_with(&text)
        .map_err(|e| format!("--bank-directory {}: {e}", path.display()))
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

fn resolve_secret_key(args: &ServeArgs, data_dir: &Path) -> Result<Vec<u8>, String> {
    secret_key(&args.secret_key, args.env, data_dir)
}

/// The server secret key: given, generated (development) or demanded
/// (production).
pub fn secret_key(
    given: &Option<String>,
    env: Environment,
    data_dir: &Path,
) -> Result<Vec<u8>, String> {
    let secret = match (given, env) {
        (Some(secret), _) => secret.clone(),
        (None, Environment::Production) => {
            return Err(
                "GUICHET_SECRET_KEY (or --secret-key) is required in production: \
                 set it to a random string of at least 32 bytes"
                    .into(),
            );
        }
        (None, Environment::Development) => secrets::development_secret(data_dir, "secret-key")?,
    };
    if secret.len() < secrets::MIN_SECRET_BYTES {
        return Err(format!(
            "the secret key must be at least {} bytes long",
            secrets::MIN_SECRET_BYTES
        ));
    }
    Ok(secret.into_bytes())
}
