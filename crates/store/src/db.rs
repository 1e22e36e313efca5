//! Connections and the pool: the backend is chosen from the URL scheme.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

use crate::error::StoreError;

/// One connection to either backend; repositories are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl DbConnection {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The two supported database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database URL whose backend is known from its scheme:
/// `postgres://` or `postgresql://` is PostgreSQL; `sqlite://PATH`,
/// `sqlite:PATH` or a plain path is a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Reads the backend from the scheme. An unknown scheme (`mysql://`,
    /// `postgress://`) is refused rather than taken for a file name.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StoreError::Config("the database URL is empty".into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = DatabaseUrl::Postgres(url.to_owned());
            parsed.check_postgres()?;
            return Ok(parsed);
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Self::sqlite_path(path);
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Self::sqlite_path(path);
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StoreError::Config(format!(
                "unsupported database URL scheme `{scheme}://`: use postgres://, postgresql://, sqlite:// or a file path"
            )));
        }
        Self::sqlite_path(url)
    }

    /// A PostgreSQL URL must name its server and its database: libpq
    /// would otherwise pick them from the environment and defaults (the
    /// local socket, a database named after the user) and the tables would
    /// be created wherever that leads. `postgres://` alone is refused. A
    /// Unix socket is named with `?host=/path/to/socket/dir`.
    fn check_postgres(&self) -> Result<(), StoreError> {
        let DatabaseUrl::Postgres(url) = self else {
            return Ok(());
        };
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i + 1..]),
            None => (before_query, ""),
        };
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.split(':').next().unwrap_or("");
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k == name && !v.is_empty())
        };
        let mut missing = Vec::new();
        if host.is_empty() && !param("host") && !param("hostaddr") {
            missing.push("a server (postgres://HOST/...)");
        }
        if path.is_empty() && !param("dbname") {
            missing.push("a database (postgres://.../DATABASE)");
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(StoreError::Config(format!(
            "the PostgreSQL URL {} names no {}: give both, e.g. postgres://USER:PASSWORD@HOST:5432/DATABASE",
            self.redacted(),
            missing.join(" and no ")
        )))
    }

    /// `message` (a driver's error) with the URL's password hidden: libpq
    /// repeats parts of a URL it cannot parse, the password among them.
    pub fn scrub(&self, message: &str) -> String {
        let DatabaseUrl::Postgres(url) = self else {
            return message.to_owned();
        };
        let mut out = message.replace(url.as_str(), &self.redacted());
        for secret in postgres_passwords(url) {
            if !secret.is_empty() {
                out = out.replace(&secret, "***");
            }
        }
        out
    }

    fn sqlite_path(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Config("the SQLite URL names no file".into()));
        }
        if path == ":memory:" {
            return Err(StoreError::Config(
                "an in-memory SQLite database is not supported: each pooled connection would see its own database".into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL with any password hidden, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }

    /// The string handed to the driver. PostgreSQL gets a connect timeout
    /// unless the URL sets one, so an unreachable server fails in seconds.
    fn driver_url(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
            DatabaseUrl::Postgres(url) if url.contains("connect_timeout=") => url.clone(),
            DatabaseUrl::Postgres(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}connect_timeout=5")
            }
        }
    }
}

/// The passwords a PostgreSQL URL carries, as written and percent-decoded:
/// in its user information and in a `password=` parameter.
fn postgres_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_owned());
    }
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if key == "password" {
            found.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    // Longest first, so that a decoded form inside a raw one is not left
    // half-replaced.
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found.dedup();
    found
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Some(b) = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn redact_password(url: &str) -> String {
    let url = &redact_password_param(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// `url` with the value of a `password=` parameter hidden.
fn redact_password_param(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a connection before the database is
    /// reported unavailable (503).
    pub acquire_timeout: Duration,
    /// SQLite's `busy_timeout`: how long a writer waits for the lock.
    pub sqlite_busy_timeout: Duration,
    /// Whether to apply pending migrations on connect.
    pub migrate: bool,
    /// Connections the pool keeps open (opening them in the background)
    /// while idle: 1 for a server, 0 for a command that runs once.
    pub min_idle: u32,
    /// PostgreSQL: plan every statement for its parameters
    /// (`plan_cache_mode = force_custom_plan`) instead of keeping a generic
    /// plan. For a command that runs once over tables it fills (the debit
    /// run): a generic plan made while a table was small (a sequential
    /// scan, or the wrong index, in its statements and in the foreign-key
    /// checks of its inserts) would be kept while the run grows the table,
    /// each statement then costing more than the last. A server keeps
    /// generic plans: its hot reads are planned once.
    pub pg_custom_plans: bool,
}

impl PoolOptions {
    /// For a command that runs once and exits (`migrate`, `jobs debit`,
    /// `admin ...`): connections are opened only when asked for, so that
    /// none is still being opened when the process exits. With libpq, a
    /// connection opened by a pool thread while the main thread runs
    /// OpenSSL's exit-time cleanup crashes the process (SIGSEGV), one exit
    /// in four or so on a PostgreSQL server that offers TLS.
    pub fn one_shot() -> Self {
        Self {
            min_idle: 0,
            pg_custom_plans: true,
            ..Self::default()
        }
    }
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            migrate: true,
            min_idle: 1,
            pg_custom_plans: false,
        }
    }
}

/// A snapshot of the pool for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
}

/// What every new pooled connection runs first: SQLite's pragmas (below);
/// on PostgreSQL, custom plans when the pool asks for them.
#[derive(Debug)]
struct ConnectionSetup {
    busy_timeout_ms: u128,
    /// [`PoolOptions::pg_custom_plans`].
    pg_custom_plans: bool,
}

/// Reads of the SQLite file go through a shared memory map of up to this
/// many bytes instead of a copy into each connection's page cache: every
/// pooled connection then reads the same pages, and a large database costs
/// no more system calls per row than a small one. Address space, not
/// memory: the pages are the operating system's file cache.
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// After a checkpoint, the write-ahead log is cut back to this size when it
/// is next reused (`journal_size_limit`), so that old page images (erased
/// secrets among them) do not linger past the end of what is rewritten.
/// Every connection also sets `secure_delete`: deleted content is
/// overwritten with zeros in the database file instead of left in free
/// space.
const SQLITE_WAL_KEPT_BYTES: u64 = 0;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Postgresql(c) = conn
            && self.pg_custom_plans
        {
            c.batch_execute("SET plan_cache_mode = force_custom_plan")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = {SQLITE_MMAP_BYTES}; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = {SQLITE_WAL_KEPT_BYTES};",
                self.busy_timeout_ms
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct TracingErrorHandler;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(%error, "database connection error");
    }
}

/// Opens connections of the backend the URL names, and only that one:
/// `MultiConnection::establish` would try each backend in turn and hide the
/// real error (even try a `postgres://` URL as a SQLite file name).
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    driver_url: String,
}

impl Manager {
    fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match self.backend {
            Backend::Postgres => {
                PgConnection::establish(&self.driver_url).map(DbConnection::Postgresql)
            }
            Backend::Sqlite => {
                SqliteConnection::establish(&self.driver_url).map(DbConnection::Sqlite)
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// A pooled connection.
pub type PooledConn = PooledConnection<Manager>;

/// The storage facade: a pool over one backend.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Connects, failing fast with the driver's own message when the
    /// database cannot be reached, then applies pending migrations.
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Store, StoreError> {
        if let DatabaseUrl::Sqlite(path) = url {
            create_parent_dir(path)?;
        }
        let manager = Manager {
            backend: url.backend(),
            driver_url: url.driver_url(),
        };
        // One direct connection first: r2d2 would turn a refused connection
        // into a bare "timed out" after its own timeout.
        let mut first = manager.establish().map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to {}: {}",
                url.redacted(),
                url.scrub(&e.to_string())
            ))
        })?;
        let pragmas = ConnectionSetup {
            busy_timeout_ms: options.sqlite_busy_timeout.as_millis(),
            pg_custom_plans: options.pg_custom_plans,
        };
        pragmas
            .on_acquire(&mut first)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        if options.migrate {
            let applied = crate::migrations::run_pending(&mut first)?;
            for version in applied {
                tracing::info!(%version, "migration applied");
            }
        }
        drop(first);
        let pool = Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(options.min_idle))
            .connection_timeout(options.acquire_timeout)
            // A SQLite connection is a handle on a local file and cannot go
            // stale; a PostgreSQL one can (server restart, idle timeout), so
            // only those are checked before use.
            .test_on_check_out(url.backend() == Backend::Postgres)
            .connection_customizer(Box::new(pragmas))
            .error_handler(Box::new(TracingErrorHandler))
            .build_unchecked(manager);
        Ok(Store {
            pool,
            url: url.clone(),
            acquire_timeout: options.acquire_timeout,
        })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL, password hidden.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// A connection from the pool (blocking; call from a blocking thread).
    pub fn conn(&self) -> Result<PooledConn, StoreError> {
        self.pool
            .get_timeout(self.acquire_timeout)
            .map_err(StoreError::from)
    }

    /// Checks that the database answers a query within `timeout`.
    pub fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let mut conn = self.pool.get_timeout(timeout)?;
        diesel::sql_query("SELECT 1").execute(&mut *conn)?;
        Ok(())
    }

    /// Current pool occupancy.
    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.pool.max_size(),
        }
    }
}

fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| {
                StoreError::Config(format!("cannot create directory {}: {e}", dir.display()))
            }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_comes_from_the_scheme() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/g.db").unwrap(),
            DatabaseUrl::Sqlite("data/g.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:g.db").unwrap(),
            DatabaseUrl::Sqlite("g.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./guichet-data/guichet.db").unwrap(),
            DatabaseUrl::Sqlite("./guichet-data/guichet.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("postgress://h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn passwords_never_show_in_redacted_urls() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.example:5432/guichet").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db.example:5432/guichet");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url = DatabaseUrl::parse("postgres://app@db/guichet").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db/guichet");
    }

    #[test]
    fn a_postgres_url_must_name_its_server_and_database() {
        for bare in [
            "postgres://",
            "postgresql://",
            "postgres://app:s3cret@db.example",
            "postgres://app:s3cret@/guichet",
            "postgres:///guichet",
        ] {
            let err = DatabaseUrl::parse(bare).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("names no"), "{bare}: {err}");
        }
        for fine in [
            "postgres://db.example/guichet",
            "postgres://app:s3cret@db.example:5432/guichet",
            "postgres:///guichet?host=/var/run/postgresql",
            "postgres://db.example?dbname=guichet",
        ] {
            assert!(DatabaseUrl::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn driver_messages_lose_the_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cr%3Aet@db.example/guichet").unwrap();
        let message = "invalid percent-encoded token: \"s3cr%3Aet\" or s3cr:et in postgres://app:s3cr%3Aet@db.example/guichet";
        let scrubbed = url.scrub(message);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        let url =
            DatabaseUrl::parse("postgres://db.example/guichet?password=hunter2&sslmode=disable")
                .unwrap();
        assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
        assert!(!url.scrub("bad hunter2").contains("hunter2"));
    }

    #[test]
    fn postgres_gets_a_connect_timeout_unless_given() {
        let url = DatabaseUrl::parse("postgres://h/db").unwrap();
        assert_eq!(url.driver_url(), "postgres://h/db?connect_timeout=5");
        let url = DatabaseUrl::parse("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(
            url.driver_url(),
            "postgres://h/db?sslmode=disable&connect_timeout=5"
        );
        let url = DatabaseUrl::parse("postgres://h/db?connect_timeout=2").unwrap();
        assert_eq!(url.driver_url(), "postgres://h/db?connect_timeout=2");
    }

    /// `.cargo/config.toml` compiles the bundled SQLite with these flags
    /// (`LIBSQLITE3_FLAGS`); without them every statement with a bound
    /// `LIMIT` is compiled again at each execution, and every allocation
    /// takes one process-wide lock (docs/BENCHMARKS.md, third round).
    #[test]
    fn the_bundled_sqlite_is_built_with_the_workspace_flags() {
        use diesel::sql_types::Text;
        use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

        #[derive(QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = Text)]
            compile_options: String,
        }
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        for wanted in ["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "SQLite lacks {wanted}: {options:?}"
            );
        }
    }
}
