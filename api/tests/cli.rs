//! The `guichet` binary as an operator runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_guichet");

fn guichet(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("GUICHET_DATABASE_URL")
        .env_remove("GUICHET_JWT_SECRET")
        .env_remove("GUICHET_ENV")
        .env_remove("GUICHET_LISTEN")
        .env("GUICHET_LOG", "info");
    cmd
}

/// Starts `serve` and waits for its banner; returns the child and the
/// banner lines.
fn serve(cmd: &mut Command) -> (Child, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("  Data dir:");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

fn address(banner: &[String]) -> String {
    banner[0]
        .rsplit("http://")
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

fn http_get(address: &str, path: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Sends SIGTERM and waits for the exit; returns the status and everything
/// the process wrote after its banner.
fn terminate(child: &mut Child) -> (std::process::ExitStatus, String, String) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    (status, stdout, stderr)
}

fn serve_keeping_stdout(cmd: &mut Command) -> (Child, Vec<String>) {
    let (mut child, banner) = serve(cmd);
    // `serve` consumed the reader; nothing else is read from stdout.
    child.stdout = None;
    (child, banner)
}

#[test]
fn openapi_prints_the_committed_document() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();

    assert!(out.status.success());
    let committed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.json"
    ))
    .unwrap();
    assert!(
        out.stdout == committed,
        "openapi/openapi.json is stale: run `cargo run --bin guichet -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn serve_demo_creates_data_once_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();

    let (mut first, banner) = serve_keeping_stdout(guichet(dir.path()).args([
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
    ]));
    let text = banner.join("\n");
    let addr = address(&banner);
    assert!(
        text.contains(&format!("Swagger UI: http://{addr}/swagger-ui/")),
        "{text}"
    );
    assert!(
        text.contains("sqlite://./guichet-data/guichet.db"),
        "{text}"
    );
    assert!(http_get(&addr, "/readyz").starts_with("HTTP/1.1 200"));
    let (status, _, stderr) = terminate(&mut first);
    assert!(status.success(), "exit {status:?}; {stderr}");
    assert!(
        stderr.contains("generated a development secret"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");

    let (mut second, _) = serve_keeping_stdout(guichet(dir.path()).args([
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
    ]));
    let (status, _, stderr) = terminate(&mut second);

    assert!(status.success());
    assert!(
        !stderr.contains("generated a development secret"),
        "the secret is generated once and kept: {stderr}"
    );
    let secret = dir.path().join("guichet-data/secrets/jwt-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(std::fs::read_to_string(&secret).unwrap().len() >= 32);
}

#[test]
fn serve_demo_says_whether_it_created_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut child = guichet(dir.path())
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut text = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("  organization:") {
                break;
            }
        }
        terminate(&mut child);
        text
    };

    let first = run();
    let second = run();

    assert!(first.contains("Demo data (created now)"), "{first}");
    assert!(first.contains("slug `demo`"), "{first}");
    assert!(second.contains("Demo data (already present)"), "{second}");
}

#[test]
fn production_refuses_to_start_without_secrets() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args(["serve", "--env", "production", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GUICHET_JWT_SECRET"), "{stderr}");
    assert!(stderr.contains("production"), "{stderr}");
    assert!(!dir.path().join("guichet-data/secrets").exists());
}

#[test]
fn an_unreachable_postgres_fails_within_seconds_with_the_real_reason() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let out = guichet(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://guichet:secretpw@127.0.0.1:1/guichet",
        ])
        .output()
        .unwrap();

    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.contains("postgres://guichet:***@127.0.0.1:1/guichet"),
        "{stderr}"
    );
    assert!(!stderr.contains("secretpw"), "{stderr}");
}

#[test]
fn an_unknown_url_scheme_is_refused() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args([
            "migrate",
            "--database-url",
            "mysql://root@127.0.0.1/guichet",
        ])
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme `mysql://`"),
        "{stderr}"
    );
}

#[test]
fn migrate_applies_the_schema_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args(["migrate", "--data-dir", "state"])
        .output()
        .unwrap();

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("schema up to date"), "{stdout}");
    assert!(stdout.contains("20261122000001 applied"), "{stdout}");
    assert!(dir.path().join("state/guichet.db").exists());
}

#[test]
fn flags_win_over_environment_variables() {
    let dir = tempfile::tempdir().unwrap();

    // The variable alone is out of range and refused ...
    let refused = guichet(dir.path())
        .env("GUICHET_BODY_LIMIT", "10")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    // ... but a flag overrides it, as the listen flag overrides its variable.
    let (mut child, banner) = serve_keeping_stdout(
        guichet(dir.path())
            .env("GUICHET_BODY_LIMIT", "10")
            .env("GUICHET_LISTEN", "127.0.0.1:1")
            .args(["serve", "--body-limit", "2048", "--listen", "127.0.0.1:0"]),
    );

    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("body-limit"));
    assert!(!address(&banner).ends_with(":1"));
    assert!(terminate(&mut child).0.success());
}

#[test]
fn help_documents_every_setting_with_its_variable() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();

    let help = String::from_utf8_lossy(&out.stdout);
    for variable in [
        "GUICHET_LISTEN",
        "GUICHET_DATABASE_URL",
        "GUICHET_DATA_DIR",
        "GUICHET_ENV",
        "GUICHET_LOG_FORMAT",
        "GUICHET_CORS_ORIGINS",
        "GUICHET_BODY_LIMIT",
        "GUICHET_HEADER_LIMIT",
        "GUICHET_JWT_SECRET",
        "GUICHET_JWT_PREVIOUS_SECRETS",
        "GUICHET_WORKERS",
        "GUICHET_DB_POOL_SIZE",
        "GUICHET_SHUTDOWN_TIMEOUT",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}
