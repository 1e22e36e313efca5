//! The server under test: its binary, a throwaway database, the process.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http::{Conn, RequestSpec};

/// Signs the tokens of the throwaway server; never used anywhere else.
const JWT_SECRET: &str = "guichet-bench-throwaway-signing-secret-0123456789";

/// Requests a minute one IP address may make to /v1/auth/: the highest
/// the server accepts.
const AUTH_RATE_LIMIT: &str = "100000";

const BUILD_HINT: &str = "run `cargo build --release -p guichet-api -p guichet-bench` \
                          and start target/release/guichet-bench";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The backend of a benchmark and where its throwaway PostgreSQL database
/// is created (flattened into every command's arguments).
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// Storage backend of the server under test.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,

    /// PostgreSQL server on which the throwaway database is created.
    #[arg(
        long,
        env = "GUICHET_BENCH_PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin_url: String,
}

/// Whether `path` lies in a cargo debug profile directory.
pub fn is_debug_build(path: &Path) -> bool {
    path.components()
        .any(|c| matches!(c, Component::Normal(name) if name == "debug"))
}

/// The `guichet` binary to start: `explicit`, or the one next to this
/// executable. Refuses debug builds: their figures mean nothing.
pub fn resolve_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let me = std::env::current_exe()
                .map_err(|e| format!("cannot locate this executable: {e}"))?;
            let dir = me
                .parent()
                .ok_or_else(|| format!("{} has no parent directory", me.display()))?;
            dir.join("guichet")
        }
    };
    if is_debug_build(&path) {
        return Err(format!(
            "{} is a debug build, whose figures mean nothing: {BUILD_HINT}",
            path.display()
        ));
    }
    if !path.is_file() {
        return Err(format!(
            "no server binary at {}: {BUILD_HINT} (or pass --server PATH)",
            path.display()
        ));
    }
    Ok(path)
}

/// A fresh database; a PostgreSQL one is dropped again at the end, even
/// when the run fails.
pub struct Database {
    url: String,
    postgres: Option<(String, String)>,
}

impl Database {
    /// SQLite: a file in `dir`. PostgreSQL: a new database on the server
    /// `admin_url` points to.
    pub fn create(backend: Backend, admin_url: &str, dir: &Path) -> Result<Database, String> {
        Database::create_labelled(backend, admin_url, dir, "")
    }

    /// [`Database::create`] for a run that needs more than one database:
    /// `label` (lower-case letters) ends the PostgreSQL database's name.
    pub fn create_labelled(
        backend: Backend,
        admin_url: &str,
        dir: &Path,
        label: &str,
    ) -> Result<Database, String> {
        match backend {
            Backend::Sqlite => {
                let file = dir.join("guichet.db");
                let file = file
                    .to_str()
                    .ok_or_else(|| format!("{} is not UTF-8", file.display()))?;
                Ok(Database {
                    url: format!("sqlite://{file}"),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut name = format!("guichet_bench_{}_{stamp}", std::process::id());
                if !label.is_empty() {
                    name = format!("{name}_{label}");
                }
                guichet_store::admin::create_database(admin_url, &name)
                    .map_err(|e| format!("cannot create database {name}: {e}"))?;
                let url = guichet_store::admin::with_database(admin_url, &name);
                let mut database = Database {
                    url: String::new(),
                    postgres: Some((admin_url.to_owned(), name)),
                };
                // On error, dropping `database` drops the new database.
                database.url = url.map_err(|e| format!("bad --pg-admin-url: {e}"))?;
                Ok(database)
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the PostgreSQL database now, reporting failure.
    pub fn drop_now(&mut self) -> Result<(), String> {
        match self.postgres.take() {
            Some((admin_url, name)) => guichet_store::admin::drop_database(&admin_url, &name)
                .map_err(|e| format!("cannot drop database {name}: {e}")),
            None => Ok(()),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = self.drop_now() {
            eprintln!("guichet-bench: {e}");
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub binary: PathBuf,
    pub database_url: String,
    /// Holds the server's data directory and logs.
    pub work_dir: PathBuf,
    pub workers: Option<usize>,
    /// `--password-hash-concurrency`; `None`: the server's default.
    pub password_hash_concurrency: Option<u16>,
    /// `--demo`: create the demo organization and its accounts.
    pub demo: bool,
}

/// A running `guichet serve`; stopped (SIGTERM) when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    spawned_at: Instant,
    log: PathBuf,
}

impl Server {
    /// Starts the server on a free port; `label` names its log file.
    pub fn spawn(config: &ServerConfig, label: &str) -> Result<Server, String> {
        Server::spawn_with(config, label, &[])
    }

    /// [`Server::spawn`] with `extra` arguments after the usual ones.
    pub fn spawn_with(
        config: &ServerConfig,
        label: &str,
        extra: &[String],
    ) -> Result<Server, String> {
        let addr = free_port()?;
        let data_dir = config.work_dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let log = config.work_dir.join(format!("server-{label}.log"));
        let stdout =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut command = Command::new(&config.binary);
        command
            .arg("serve")
            .arg("--database-url")
            .arg(&config.database_url)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--jwt-secret", JWT_SECRET])
            .args(["--log-format", "json"])
            .args(["--shutdown-timeout", "5"])
            // Every login comes from 127.0.0.1: the per-IP limits of
            // /v1/auth/ (30 sign-ins a minute by default) would measure
            // themselves.
            .args(["--auth-rate-limit", AUTH_RATE_LIMIT])
            .args(["--auth-sign-in-limit", AUTH_RATE_LIMIT])
            .args(["--auth-code-send-limit", AUTH_RATE_LIMIT])
            .args(["--auth-registration-limit", AUTH_RATE_LIMIT])
            .env("GUICHET_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(workers) = config.workers {
            command.arg("--workers").arg(workers.to_string());
        }
        if let Some(slots) = config.password_hash_concurrency {
            command
                .arg("--password-hash-concurrency")
                .arg(slots.to_string());
        }
        if config.demo {
            command.arg("--demo");
        }
        command.args(extra);
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", config.binary.display()))?;
        Ok(Server {
            child: Some(child),
            addr,
            spawned_at,
            log,
        })
    }

    pub fn pid(&self) -> Result<u32, String> {
        self.child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| "the server is stopped".to_owned())
    }

    /// Fails, with the end of the server's log, if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| "the server is stopped".to_owned())?;
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(format!("the server exited ({status}){}", self.log_tail()))
            }
            Err(e) => Err(format!("cannot watch the server: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its output ends with:\n{tail}")
        }
    }

    /// Polls `GET /readyz` until it answers 200; returns the time from
    /// spawning the process to that answer.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<Duration, String> {
        let request = RequestSpec::get("/readyz").encode(&self.addr.to_string())?;
        let mut body = Vec::new();
        loop {
            let mut conn = Conn::new(self.addr);
            let poll = conn.round_trip(&request, &mut body);
            let last = match tokio::time::timeout(Duration::from_secs(2), poll).await {
                Ok(Ok(200)) => return Ok(self.spawned_at.elapsed()),
                Ok(Ok(status)) => format!("status {status}"),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timeout".to_owned(),
            };
            self.check_alive()?;
            if self.spawned_at.elapsed() > limit {
                return Err(format!(
                    "the server was not ready within {limit:?} (last: {last}){}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends SIGTERM and waits for a graceful exit (killing it after 20 s).
    pub fn stop(mut self) -> Result<(), String> {
        self.terminate(Duration::from_secs(20))
    }

    fn terminate(&mut self, patience: Duration) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))
            .and_then(|status| {
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("kill -TERM failed ({status})"))
                }
            });
        let deadline = Instant::now() + patience;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return signalled,
                Ok(Some(status)) => {
                    return Err(format!(
                        "the server exited with {status}{}",
                        self.log_tail()
                    ));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the server did not stop within {patience:?} of SIGTERM; killed"
                    ));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.terminate(Duration::from_secs(10)) {
            eprintln!("guichet-bench: {e}");
        }
    }
}

fn free_port() -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("cannot find a free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_builds_are_recognised() {
        assert!(is_debug_build(Path::new("/w/target/debug/guichet")));
        assert!(is_debug_build(Path::new(
            "target/x86_64-unknown-linux-gnu/debug/guichet"
        )));
        assert!(!is_debug_build(Path::new("/w/target/release/guichet")));
        assert!(!is_debug_build(Path::new("/opt/debugger/guichet")));
    }

    #[test]
    fn missing_binaries_are_refused_with_the_build_command() {
        let e = resolve_binary(Some(Path::new("/nonexistent/release/guichet"))).unwrap_err();
        assert!(
            e.contains("cargo build --release -p guichet-api -p guichet-bench"),
            "{e}"
        );
        let e = resolve_binary(Some(Path::new("/w/target/debug/guichet"))).unwrap_err();
        assert!(e.contains("debug build"), "{e}");
    }
}
