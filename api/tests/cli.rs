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
fn serve_demo_says_it_created_the_data_then_that_it_reset_it() {
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
    assert!(
        second.contains(
            "Demo data (reset: `demo`, `fractio`, `gerance`, `kine` deleted with all their data and created again; other organizations are untouched)"
        ),
        "{second}"
    );
    assert!(second.contains("slug `demo`"), "{second}");
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

// ------------------------------------------------------ guichet admin ...

/// A password that meets the rule.
const ADMIN_PASSWORD: &str = "Correct-Horse-42!";

/// Sends one request over a fresh connection; returns the status and body.
fn http(
    address: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&serde_json::Value>,
) -> (u16, String) {
    use std::io::Write;
    let body = json.map(|j| j.to_string()).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}; {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn create_org(dir: &std::path::Path, slug: &str) -> std::process::Output {
    guichet(dir)
        .args([
            "admin",
            "create-org",
            "--data-dir",
            "state",
            "--slug",
            slug,
            "--name",
            "Acme",
            "--admin-email",
            "boss@acme.example",
            "--json",
        ])
        .output()
        .unwrap()
}

fn serve_state(dir: &std::path::Path) -> (Child, String) {
    let (child, banner) = serve_keeping_stdout(guichet(dir).args([
        "serve",
        "--data-dir",
        "state",
        "--listen",
        "127.0.0.1:0",
    ]));
    let addr = address(&banner);
    (child, addr)
}

#[test]
fn admin_create_org_prints_a_setup_token_the_served_data_dir_accepts() {
    let dir = tempfile::tempdir().unwrap();

    let created = stdout_json(&create_org(dir.path(), "acme"));

    assert_eq!(created["organization"]["slug"], "acme");
    assert_eq!(created["organization"]["name"], "Acme");
    assert_eq!(created["admin"]["email"], "boss@acme.example");
    let token = created["setup_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{created}");
    assert!(dir.path().join("state/secrets/secret-key").exists());
    let (mut server, addr) = serve_state(dir.path());
    let setup = http(
        &addr,
        "POST",
        "/v1/auth/staff/setup",
        None,
        Some(&serde_json::json!({"token": token, "password": ADMIN_PASSWORD})),
    );
    let again = http(
        &addr,
        "POST",
        "/v1/auth/staff/setup",
        None,
        Some(&serde_json::json!({"token": token, "password": ADMIN_PASSWORD})),
    );
    let (status, _, stderr) = terminate(&mut server);

    assert_eq!(setup.0, 200, "{}", setup.1);
    let signed_in: serde_json::Value = serde_json::from_str(&setup.1).unwrap();
    assert!(signed_in["access_token"].is_string(), "{signed_in}");
    assert_eq!(again.0, 422, "the token works once: {}", again.1);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(&token), "the setup token was logged");
}

#[test]
fn admin_create_org_signs_in_an_admin_who_manages_the_organization() {
    let dir = tempfile::tempdir().unwrap();
    let created = stdout_json(&create_org(dir.path(), "acme"));
    let token = created["setup_token"].as_str().unwrap();
    let (mut server, addr) = serve_state(dir.path());

    let (_, setup) = http(
        &addr,
        "POST",
        "/v1/auth/staff/setup",
        None,
        Some(&serde_json::json!({"token": token, "password": ADMIN_PASSWORD})),
    );
    let access: serde_json::Value = serde_json::from_str(&setup).unwrap();
    let access = access["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let settings = http(&addr, "GET", "/v1/admin/organization", Some(&access), None);
    let login = http(
        &addr,
        "POST",
        "/v1/auth/staff/login",
        None,
        Some(&serde_json::json!({
            "organization": "acme",
            "email": "boss@acme.example",
            "password": ADMIN_PASSWORD,
        })),
    );
    terminate(&mut server);

    assert_eq!(settings.0, 200, "{}", settings.1);
    let settings: serde_json::Value = serde_json::from_str(&settings.1).unwrap();
    assert_eq!(settings["slug"], "acme");
    assert_eq!(settings["name"], "Acme");
    assert_eq!(login.0, 200, "{}", login.1);
}

#[test]
fn admin_create_org_refuses_a_slug_that_already_exists() {
    let dir = tempfile::tempdir().unwrap();
    stdout_json(&create_org(dir.path(), "acme"));

    let out = create_org(dir.path(), "acme");

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("acme"), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed");
}

#[test]
fn admin_create_org_refuses_a_bad_slug_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();

    let out = create_org(dir.path(), "Bad Slug");

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--slug"), "{stderr}");
    assert!(stderr.contains("lower-case"), "{stderr}");
    assert!(out.stdout.is_empty());
    // Nothing was created under another spelling either.
    let key = guichet(dir.path())
        .args([
            "admin",
            "create-api-key",
            "--data-dir",
            "state",
            "--org",
            "bad-slug",
        ])
        .output()
        .unwrap();
    assert!(!key.status.success());
}

#[test]
fn admin_create_api_key_prints_a_secret_the_served_data_dir_accepts() {
    let dir = tempfile::tempdir().unwrap();
    stdout_json(&create_org(dir.path(), "acme"));

    let key = stdout_json(
        &guichet(dir.path())
            .args([
                "admin",
                "create-api-key",
                "--data-dir",
                "state",
                "--org",
                "acme",
                "--json",
            ])
            .output()
            .unwrap(),
    );

    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("gk_"), "{key}");
    assert!(key["id"].as_str().unwrap().starts_with("key_"), "{key}");
    assert_eq!(key["organization"], "acme");
    let (mut server, addr) = serve_state(dir.path());
    let with_key = http(&addr, "GET", "/v1/admin/customers", Some(&secret), None);
    let with_other = http(
        &addr,
        "GET",
        "/v1/admin/customers",
        Some("gk_unknown"),
        None,
    );
    let created = http(
        &addr,
        "POST",
        "/v1/admin/customers",
        Some(&secret),
        Some(&serde_json::json!({"name": "Claire", "email": "claire@example.com"})),
    );
    terminate(&mut server);

    assert_eq!(with_key.0, 200, "{}", with_key.1);
    let list: serde_json::Value = serde_json::from_str(&with_key.1).unwrap();
    assert_eq!(list["data"], serde_json::json!([]));
    assert_eq!(with_other.0, 401, "{}", with_other.1);
    assert_eq!(created.0, 201, "{}", created.1);
}

#[test]
fn admin_create_api_key_for_an_unknown_organization_fails() {
    let dir = tempfile::tempdir().unwrap();
    stdout_json(&create_org(dir.path(), "acme"));

    let out = guichet(dir.path())
        .args([
            "admin",
            "create-api-key",
            "--data-dir",
            "state",
            "--org",
            "globex",
            "--json",
        ])
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no organization"), "{stderr}");
    assert!(stderr.contains("globex"), "{stderr}");
    assert!(out.stdout.is_empty(), "no secret printed");
}

/// The newest SMS file's JSON in `<dir>/guichet-data/outbox/sms/`, waiting
/// up to 10 s for one to appear.
fn wait_for_sms(dir: &std::path::Path) -> serde_json::Value {
    let sms_dir = dir.join("guichet-data/outbox/sms");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let newest = std::fs::read_dir(&sms_dir)
            .ok()
            .and_then(|entries| entries.filter_map(Result::ok).map(|e| e.path()).max());
        if let Some(path) = newest {
            return serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        }
        assert!(Instant::now() < deadline, "no SMS delivered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_code_token_or_password_reaches_the_logs_even_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, banner) =
        serve_keeping_stdout(guichet(dir.path()).env("GUICHET_LOG", "debug").args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--outbox-interval-ms",
            "20",
        ]));
    let addr = address(&banner);
    let login = serde_json::json!({
        "organization": "demo",
        "email": "claire.martin@example.com",
        "password": "Claire-Demo-2026!",
    });

    let (status, tokens) = http(&addr, "POST", "/v1/auth/login", None, Some(&login));
    assert_eq!(status, 200, "{tokens}");
    let tokens: serde_json::Value = serde_json::from_str(&tokens).unwrap();
    let start = serde_json::json!({"organization": "demo", "email": "claire.martin@example.com"});
    let (status, _) = http(&addr, "POST", "/v1/auth/otp/start", None, Some(&start));
    assert_eq!(status, 202);
    let sms = wait_for_sms(dir.path());
    let body = sms["body"].as_str().unwrap().to_owned();
    let code: String = body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned();
    let verify = serde_json::json!({
        "organization": "demo",
        "email": "claire.martin@example.com",
        "code": code,
    });
    let (status, _) = http(&addr, "POST", "/v1/auth/otp/verify", None, Some(&verify));
    assert_eq!(status, 200);
    let refresh = serde_json::json!({"refresh_token": tokens["refresh_token"]});
    let (status, _) = http(&addr, "POST", "/v1/auth/refresh", None, Some(&refresh));
    assert_eq!(status, 200);
    let (_, _, stderr) = terminate(&mut child);

    assert!(
        stderr.contains("request served"),
        "debug logs were written: {stderr}"
    );
    for secret in [
        code.as_str(),
        "Claire-Demo-2026!",
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ] {
        assert!(
            !stderr.contains(secret),
            "a secret reached the logs: {secret}"
        );
    }
    assert!(!stderr.contains(&body), "an SMS body reached the logs");
}

// ------------------------------------------------------- guichet jobs ...

#[test]
fn jobs_debit_on_an_empty_data_dir_reports_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args([
            "jobs",
            "debit",
            "--data-dir",
            "state",
            "--as-of",
            "2026-11-22",
            "--json",
        ])
        .output()
        .unwrap();

    let json = stdout_json(&out);
    assert_eq!(json["as_of"], "2026-11-22");
    let report = json["report"].as_object().unwrap();
    for field in [
        "presented",
        "paid",
        "retry_scheduled",
        "unpaid",
        "transient_failures",
        "reconciled",
        "errors",
    ] {
        assert_eq!(report[field], 0, "{field} in {json}");
    }
    // The database was created and migrated, as `migrate` would.
    assert!(dir.path().join("state/guichet.db").exists());
}

#[test]
fn jobs_debit_prints_a_readable_report_without_json() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args([
            "jobs",
            "debit",
            "--data-dir",
            "state",
            "--as-of",
            "2026-11-22",
        ])
        .output()
        .unwrap();

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Debit run as of 2026-11-22"), "{stdout}");
    assert!(stdout.contains("presented:"), "{stdout}");
}

#[test]
fn jobs_debit_refuses_a_bad_date_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["2026-13-01", "22/11/2026", "tomorrow"] {
        let out = guichet(dir.path())
            .args(["jobs", "debit", "--data-dir", "state", "--as-of", bad])
            .output()
            .unwrap();

        assert!(!out.status.success(), "{bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--as-of"), "{stderr}");
        assert!(stderr.contains("YYYY-MM-DD"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // Nothing was opened or created for a refused command.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn jobs_debit_with_the_database_down_fails_fast_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let out = guichet(dir.path())
        .args([
            "jobs",
            "debit",
            "--data-dir",
            "state",
            "--database-url",
            "postgres://guichet:secretpw@127.0.0.1:1/guichet",
            "--as-of",
            "2026-11-22",
        ])
        .output()
        .unwrap();

    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn jobs_refunds_on_an_empty_data_dir_reports_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args(["jobs", "refunds", "--data-dir", "state", "--json"])
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json = stdout_json(&out);
    assert_eq!(json["ending"], "done");
    for field in ["claimed", "paid", "failed", "errors", "left_pending"] {
        assert_eq!(json["refunds"][field], 0, "{field} in {json}");
    }
}

#[test]
fn jobs_debit_says_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();

    let out = guichet(dir.path())
        .args([
            "jobs",
            "debit",
            "--data-dir",
            "state",
            "--as-of",
            "2026-11-22",
            "--json",
        ])
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json = stdout_json(&out);
    assert_eq!(json["ending"], "done");
    assert_eq!(json["refunds"]["claimed"], 0);
    assert_eq!(json["report"]["left_due"], 0);
    assert_eq!(json["report"]["held_until"], serde_json::Value::Null);
}

#[test]
fn serve_documents_the_debit_interval() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();

    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--debit-interval-secs"), "{help}");
    assert!(help.contains("GUICHET_DEBIT_INTERVAL_SECS"), "{help}");
}

// ------------------------------------------- one-shot commands, repeatedly

/// The database a one-shot command test uses: a throwaway PostgreSQL
/// database when `GUICHET_TEST_DATABASE_URL` names a server, else a SQLite
/// file in `dir`. Returns its URL and, for PostgreSQL, what drops it.
fn one_shot_database(dir: &std::path::Path) -> (String, Option<DropDatabase>) {
    match std::env::var("GUICHET_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let prefix =
                std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".to_owned());
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("{prefix}_cli_{}_{nanos}", std::process::id());
            guichet_store::admin::create_database(&admin_url, &name).unwrap();
            let url = guichet_store::admin::with_database(&admin_url, &name).unwrap();
            (url, Some(DropDatabase { admin_url, name }))
        }
        _ => (
            format!("sqlite://{}", dir.join("one-shot.db").display()),
            None,
        ),
    }
}

struct DropDatabase {
    admin_url: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let _ = guichet_store::admin::drop_database(&self.admin_url, &self.name);
    }
}

/// A command that runs once must exit with its own status every time. On
/// PostgreSQL with TLS, a pool connection still being opened on another
/// thread when the process exited crashed it in OpenSSL's exit-time
/// cleanup (SIGSEGV, about one exit in four); each command now opens
/// connections only when it asks for them.
#[test]
fn one_shot_commands_exit_cleanly_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _drop) = one_shot_database(dir.path());
    for round in 0..12 {
        for args in [
            vec!["migrate", "--database-url", url.as_str()],
            vec![
                "jobs",
                "debit",
                "--database-url",
                url.as_str(),
                "--as-of",
                "2026-11-22",
                "--json",
            ],
        ] {
            let out = guichet(dir.path())
                .args(&args)
                .args(["--data-dir", "state"])
                .env("GUICHET_LOG", "warn")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "round {round}, guichet {}: {:?}\n{}",
                args[0],
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_bare_postgres_url_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();

    for (url, missing) in [
        ("postgres://", "names no a server"),
        (
            "postgres://app:s3cretpw@127.0.0.1:5432",
            "names no a database",
        ),
    ] {
        let out = guichet(dir.path())
            .env("GUICHET_DATABASE_URL", url)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();

        assert!(!out.status.success(), "{url} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{url}: {stderr}");
        assert!(!stderr.contains("s3cretpw"), "{stderr}");
        let migrate = guichet(dir.path())
            .args(["migrate", "--database-url", url])
            .output()
            .unwrap();
        assert!(!migrate.status.success(), "migrate accepted {url}");
    }
}

#[test]
fn a_malformed_postgres_url_is_refused_without_repeating_its_password() {
    let dir = tempfile::tempdir().unwrap();

    // libpq's own message for this URL is `invalid percent-encoded token:
    // "s3cr%zzetpw"`: the password itself.
    let out = guichet(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://app:s3cr%zzetpw@127.0.0.1:5432/guichet",
        ])
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("percent-encoded"), "{stderr}");
    assert!(!stderr.contains("s3cr"), "{stderr}");
}

#[test]
fn a_port_in_use_is_reported_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();

    let out = guichet(dir.path())
        .args(["serve", "--demo", "--listen", &address])
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(!stderr.contains("migration applied"), "{stderr}");
    assert!(
        !dir.path().join("guichet-data/guichet.db").exists(),
        "the database was created before the address was checked"
    );
    drop(taken);
}

#[test]
fn json_logs_give_latencies_in_milliseconds_without_float_noise() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, banner) = serve_keeping_stdout(guichet(dir.path()).args([
        "serve",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
    ]));
    let addr = address(&banner);
    for _ in 0..20 {
        assert!(http_get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    }
    let (status, _, stderr) = terminate(&mut child);
    assert!(status.success(), "{stderr}");

    let mut seen = 0;
    for line in stderr.lines().filter(|l| l.contains("request served")) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let latency = entry
            .pointer("/fields/latency_ms")
            .or_else(|| entry.get("latency_ms"))
            .unwrap_or_else(|| panic!("no latency_ms in {line}"));
        assert!(latency.is_number(), "{line}");
        // As written in the line, not as parsed: at most 3 decimals.
        let text = latency.to_string();
        let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "latency {text} in {line}");
        seen += 1;
    }
    assert!(seen >= 20, "{seen} request lines in {stderr}");
}
