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
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
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

fn redact_password(url: &str) -> String {
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

#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u128,
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

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
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
            StoreError::Unavailable(format!("cannot connect to {}: {e}", url.redacted()))
        })?;
        let pragmas = SqlitePragmas {
            busy_timeout_ms: options.sqlite_busy_timeout.as_millis(),
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
