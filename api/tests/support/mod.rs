//! A harness for crash tests: the real `guichet` binary served on a fresh
//! database (a SQLite file, or a throwaway PostgreSQL database when
//! `GUICHET_TEST_DATABASE_URL` names a server), killed with SIGKILL and
//! started again on the same database; a bare HTTP/1.1 client; and the
//! `gerance` demo organization's credentials; a TCP proxy a test cuts to play
//! a database outage without touching the database server.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_guichet");

/// The property manager of the demo data (`serve --demo`).
pub const ORG: &str = "gerance";
pub const ADMIN: (&str, &str) = ("admin@gerance.guichet.localhost", "Admin-Gerance-2026!");
pub const TENANT: (&str, &str) = ("nadia.haddad@example.com", "Nadia-Demo-2026!");
/// The tenant's account without a mandate (850.00 € due).
pub const RENT_ACCOUNT: &str = "LOC-2024-0042";

/// A fresh database and data directory, dropped (PostgreSQL) or deleted
/// (SQLite, with the directory) at the end.
pub struct Db {
    pub url: String,
    pub dir: tempfile::TempDir,
    drop_pg: Option<(String, String)>,
    /// Whether a server has seeded the demo here: later starts (restarts
    /// after a kill) go without `--demo`, which would reset the demo
    /// organizations and lose what the test did before the crash.
    seeded: std::cell::Cell<bool>,
}

impl Db {
    pub fn fresh(name: &str) -> Db {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("GUICHET_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let prefix = std::env::var("GUICHET_TEST_DB_PREFIX")
                    .unwrap_or_else(|_| "guichet_t".to_owned());
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                // PostgreSQL names are at most 63 bytes: the test's name is
                // cut so that CI's longer prefix still fits.
                let name: String = name.chars().take(10).collect();
                let db = format!("{prefix}_crash_{name}_{}_{nanos}", std::process::id());
                assert!(db.len() <= 63, "database name too long: {db}");
                guichet_store::admin::create_database(&admin_url, &db).unwrap();
                let url = guichet_store::admin::with_database(&admin_url, &db).unwrap();
                Db {
                    url,
                    dir,
                    drop_pg: Some((admin_url, db)),
                    seeded: std::cell::Cell::new(false),
                }
            }
            _ => Db {
                url: format!("sqlite://{}", dir.path().join("guichet.db").display()),
                dir,
                drop_pg: None,
                seeded: std::cell::Cell::new(false),
            },
        }
    }

    /// A fresh SQLite database whatever `GUICHET_TEST_DATABASE_URL` says
    /// (for tests that read the database's files).
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            url: format!("sqlite://{}", dir.path().join("guichet.db").display()),
            dir,
            drop_pg: None,
            seeded: std::cell::Cell::new(false),
        }
    }

    /// The data directory (secrets, outbox).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The SMS written by the outbox, oldest first.
    pub fn sms(&self) -> Vec<Value> {
        files(&self.data_dir().join("outbox/sms"))
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// The six-digit code of the first SMS written after the first
    /// `before` ones, waiting up to 10 s for the outbox.
    pub fn sms_code_after(&self, before: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sms = self.sms();
            if let Some(message) = sms.get(before) {
                let body = message["body"].as_str().unwrap().to_owned();
                return body
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                    .unwrap_or_else(|| panic!("no code in {body}"))
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no SMS");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The e-mails written by the outbox, oldest first.
    pub fn emails(&self) -> Vec<String> {
        files(&self.data_dir().join("outbox/email"))
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.drop_pg {
            let _ = guichet_store::admin::drop_database(admin_url, name);
        }
    }
}

/// A running `guichet serve`.
pub struct Server {
    child: Child,
    pub addr: String,
    log: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl Server {
    /// `guichet serve` on `db` (with `--demo` the first time only: a restart
    /// keeps the data, as after a crash), on a free 127.0.0.1 port, with the
    /// background jobs off, a fast outbox and `extra` arguments; returns
    /// once `/readyz` answers 200.
    pub fn start(db: &Db, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .current_dir(db.dir.path())
            .env_remove("GUICHET_JWT_SECRET")
            .env_remove("GUICHET_ENV")
            .env_remove("GUICHET_LISTEN")
            .env("GUICHET_LOG", "info")
            .env("GUICHET_LOG_FORMAT", "text")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args((!db.seeded.replace(true)).then_some("--demo"))
            .args(["--database-url", &db.url])
            .arg("--data-dir")
            .arg(db.data_dir())
            .args(["--debit-interval-secs", "0", "--outbox-interval-ms", "50"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if addr.is_none() && line.contains("is listening on http://") {
                addr = Some(line.rsplit("http://").next().unwrap().trim().to_owned());
            }
            let done = line.starts_with("  Data dir:");
            seen.push(line);
            if done {
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("no banner: {seen:?}\n{err}");
        };
        // Keep draining stdout (the demo banner) and stderr (the log), so
        // that the server never blocks on a full pipe; log lines go to the
        // receiver.
        std::thread::spawn(move || for _ in lines {});
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let server = Server {
            child,
            addr,
            log: std::sync::Mutex::new(log),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if try_request(&server.addr, "GET", "/readyz", None, &[], None)
                .is_some_and(|res| res.status == 200)
            {
                break;
            }
            assert!(Instant::now() < deadline, "not ready in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Waits (up to `within`) for a log line containing every one of
    /// `needles`.
    pub fn wait_for_log(&self, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.lock().unwrap().recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needles:?} within {within:?}"),
            }
        }
    }

    /// Every log line received so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().try_iter().collect()
    }

    /// Waits until the server pauses at the fault point `point`
    /// (`--fault-pause`).
    pub fn wait_for_pause(&self, point: &str) {
        self.wait_for_log(&["pausing before COMMIT", point], Duration::from_secs(20));
    }

    /// SIGKILL: no shutdown, no rollback but the database's own.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        request(&self.addr, "GET", path, bearer, &[], None)
    }

    pub fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        json: &Value,
    ) -> Response {
        request(&self.addr, "POST", path, bearer, headers, Some(json))
    }

    /// A staff access token of the demo's `gerance` admin.
    pub fn admin_token(&self) -> String {
        let res = self.post(
            "/v1/auth/staff/login",
            None,
            &[],
            &serde_json::json!({"organization": ORG, "email": ADMIN.0, "password": ADMIN.1}),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// A customer access token of the demo's tenant.
    pub fn tenant_token(&self) -> String {
        let res = self.post(
            "/v1/auth/login",
            None,
            &[],
            &serde_json::json!({"organization": ORG, "email": TENANT.0, "password": TENANT.1}),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// The id of the tenant's account with this reference.
    pub fn tenant_account(&self, tenant: &str, reference: &str) -> String {
        let res = self.get("/v1/me/accounts", Some(tenant));
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["reference"] == reference)
            .unwrap_or_else(|| panic!("no account {reference}: {}", res.body))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The problem `code`, if the body is a problem.
    pub fn code(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
    }
}

/// Sends one request over a fresh connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    json: Option<&Value>,
) -> Response {
    try_request(addr, method, path, bearer, headers, json)
        .unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

/// [`request`], `None` when the connection fails or no answer comes.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    json: Option<&Value>,
) -> Option<Response> {
    let body = json.map(|j| j.to_string()).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

// ------------------------------------------------------------------ proxy

// The black-box suite's proxy, the same file: the api crate's tests cannot
// depend on the tests crate, which depends on the api crate.
#[path = "../../../tests/src/proxy.rs"]
mod proxy;
#[allow(unused_imports)] // Used by the jobs tests only.
pub use proxy::Proxy;
