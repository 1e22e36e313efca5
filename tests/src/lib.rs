//! The black-box test harness: every test gets its own `guichet` server on
//! port 0 with its own database, and talks to it over HTTP only.
//!
//! The backend comes from `GUICHET_TEST_DATABASE_URL`: unset, each test
//! gets a fresh SQLite file; set to a PostgreSQL URL (an administrative
//! database such as `postgres://postgres@127.0.0.1:5432/postgres`), each
//! test gets a fresh database created for it and dropped after it. The same
//! test functions run on both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod http;
pub mod identity;
pub mod orders;
pub mod outbox;
pub mod proxy;
pub mod sepa;

/// The text of a PDF, as `pdftotext -layout` reads it, whitespace
/// collapsed: words one space apart (wrapped lines and layout gaps vanish).
pub fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
pub mod webhooks;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use chrono::{TimeZone, Utc};
use clap::Parser;
use guichet_api::config::{Cli, Command, Settings};
use guichet_api::server::{Parts, start};
use guichet_domain::FixedClock;
use guichet_store::{Backend, PoolOptions, Store, admin};

pub use http::Response;

/// The environment variable naming the PostgreSQL server to test against.
pub const PG_ENV: &str = "GUICHET_TEST_DATABASE_URL";

/// A secret for test servers (never used outside tests).
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789";
/// The server secret key of test servers: tests provision organizations
/// with it, as `guichet admin create-org` does with the server's key.
pub const TEST_SECRET_KEY: &str = "test-server-key-0123456789abcdef012345";

/// Defaults of test servers, unless a test passes the flag itself: limits
/// high enough for a suite that signs in a lot from 127.0.0.1, a quick
/// outbox, and a webhook dispatcher at the test's priority: the suite runs
/// its servers as threads of one process, where a lowered dispatcher would
/// wait behind every other test's threads and deliver late.
const TEST_DEFAULTS: [(&str, &str); 9] = [
    ("--auth-rate-limit", "100000"),
    ("--auth-sign-in-limit", "100000"),
    ("--auth-code-send-limit", "100000"),
    ("--auth-registration-limit", "100000"),
    ("--code-send-limit-per-ip", "100000"),
    ("--code-send-limit-per-destination", "1000"),
    ("--outbox-interval-ms", "20"),
    ("--webhook-interval-ms", "50"),
    ("--webhook-nice", "0"),
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The backend this test run uses.
pub fn backend() -> Backend {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// A throwaway PostgreSQL database, dropped with this value.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a fresh database on the server named by `GUICHET_TEST_DATABASE_URL`.
    pub fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
        let prefix = std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".into());
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        admin::create_database(&admin_url, &name)
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = admin::with_database(&admin_url, &name).unwrap();
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = admin::drop_database(&self.admin_url, &self.name) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// How to start a test server.
#[derive(Default)]
pub struct Options {
    /// Extra `guichet serve` flags (e.g. `--cors-origins`).
    pub args: Vec<String>,
    /// Route the server's PostgreSQL connections through a proxy the test
    /// can cut (PostgreSQL runs only).
    pub db_proxy: bool,
}

/// A running server and what it stands on.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub backend: Backend,
    /// The server's clock: tests move it to test date rules.
    pub clock: FixedClock,
    pub data_dir: PathBuf,
    /// The proxy between the server and PostgreSQL, when asked for.
    pub proxy: Option<proxy::Proxy>,
    /// The server's store, for provisioning (as the CLI does) and for
    /// checking that refused requests stored nothing.
    pub store: Store,
    agent: ureq::Agent,
    dispatcher: Option<guichet_api::notify::dispatch::DispatcherHandle>,
    webhooks: Option<guichet_jobs::runner::Periodic>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    // Dropped last: the database outlives the server.
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A server with default options.
    pub fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default())
    }

    /// A server with `options`.
    pub fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let pg = PgDatabase::create();
        let proxy = match (&pg, options.db_proxy) {
            (Some(_), true) => Some(proxy::Proxy::start("127.0.0.1:5432")),
            _ => None,
        };
        let database_url = match (&pg, &proxy) {
            (Some(db), Some(proxy)) => db.url.replace(":5432/", &format!(":{}/", proxy.port)),
            (Some(db), None) => db.url.clone(),
            (None, _) => format!("sqlite://{}", dir.path().join("guichet.db").display()),
        };
        let mut argv: Vec<String> = [
            "guichet",
            "serve",
            "--database-url",
            &database_url,
            "--data-dir",
            &dir.path().display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--jwt-secret",
            TEST_JWT_SECRET,
            "--secret-key",
            TEST_SECRET_KEY,
            "--workers",
            "2",
            "--shutdown-timeout",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, value) in TEST_DEFAULTS {
            if !options.args.iter().any(|a| a == flag) {
                argv.push(flag.to_owned());
                argv.push(value.to_owned());
            }
        }
        // The server's pool is the harness's: 4 connections, unless the test
        // sizes it.
        let pool_size = options.args.iter().any(|a| a == "--db-pool-size");
        argv.extend(options.args);
        let Command::Serve(args) = Cli::parse_from(argv).command else {
            unreachable!("serve was given")
        };
        let settings = Settings::from_args(&args).unwrap();
        let pool = PoolOptions {
            max_size: if pool_size { settings.db_pool_size } else { 4 },
            acquire_timeout: std::time::Duration::from_secs(2),
            ..PoolOptions::default()
        };
        let store = Store::connect(&settings.database_url, &pool).unwrap();
        let backend = store.backend();
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap());
        let dispatcher = guichet_api::notify::dispatch::Dispatcher::new(
            &settings.notify,
            store.clone(),
            Arc::new(clock.clone()),
            guichet_api::notify::OutboxKey::derive(&settings.secret_key),
        )
        .unwrap()
        .spawn();
        let parts = Parts::new(&settings, store.clone(), Arc::new(clock.clone()));
        let webhooks = parts.spawn_webhooks(&settings);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let server = start(&settings, parts, listener)?;
                let _ = tx.send(server.handle());
                server.await
            });
            if let Err(e) = result {
                eprintln!("test server failed: {e}");
            }
        });
        let handle = rx.recv().expect("the test server did not start");
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            backend,
            clock,
            data_dir: dir.path().to_path_buf(),
            proxy,
            store,
            agent: http::agent(),
            dispatcher: Some(dispatcher),
            webhooks,
            handle,
            thread: Some(thread),
            _pg: pg,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request builder for `method path`.
    pub fn request(&self, method: &str, path: &str) -> http::Request<'_> {
        http::Request::new(&self.agent, method, self.url(path))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path).send()
    }

    /// Sends `bytes` as they are over a fresh TCP connection and reads the
    /// answer (for requests no well-behaved client would send).
    pub fn raw(&self, bytes: &[u8]) -> Response {
        http::raw(&self.base, bytes)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop();
        }
        if let Some(webhooks) = self.webhooks.take() {
            webhooks.stop();
        }
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !std::thread::panicking() {
            let outside = self.webhook_attempts_outside_loopback();
            assert!(
                outside.is_empty(),
                "a test server tried to deliver webhooks outside the loopback network: {outside:?}"
            );
        }
    }
}

impl TestApp {
    /// A debit run (instalments, then autopay) on the app's store and test
    /// clock, with a sandbox gateway that reads the cards tokenized under
    /// [`TEST_SECRET_KEY`].
    pub fn debit_run(&self) -> guichet_jobs::debit::DebitRun {
        let clock = std::sync::Arc::new(self.clock.clone());
        let gateway = std::sync::Arc::new(guichet_gateway::SandboxGateway::with_token_key(
            self.store.clone(),
            clock.clone(),
            TEST_SECRET_KEY.as_bytes(),
        ));
        guichet_jobs::debit::DebitRun::new(self.store.clone(), gateway, clock)
    }

    /// The URLs of endpoints the server attempted a delivery to whose host
    /// is not a loopback address: tests reach nothing but 127.0.0.0/8 and
    /// ::1 (an endpoint with a public address must stay disabled, or its
    /// server run without a dispatcher).
    fn webhook_attempts_outside_loopback(&self) -> Vec<String> {
        use diesel::prelude::*;
        use guichet_store::schema::{webhook_attempts, webhook_endpoints};
        let Ok(mut conn) = self.store.conn() else {
            return Vec::new();
        };
        let urls: Vec<String> = webhook_attempts::table
            .inner_join(
                webhook_endpoints::table
                    .on(webhook_endpoints::id.eq(webhook_attempts::endpoint_id)),
            )
            .select(webhook_endpoints::url)
            .distinct()
            .load(&mut conn)
            .unwrap_or_default();
        urls.into_iter()
            .filter(|url| {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                !(host.starts_with("127.")
                    || host.starts_with("[::1]")
                    || host == "localhost"
                    || host.starts_with("localhost:"))
            })
            .collect()
    }
}
