//! The README's demo sessions, taken from README.md itself so that the two
//! cannot drift: the demo is started twice on one data directory, and after
//! each start every session is played with bash, curl and python3 as a
//! reader would, checking that the only refusals are those its comments
//! announce (`# refused, STATUS code`) and that it writes nothing outside
//! the data directory and `$TMPDIR`. On SQLite, or on a throwaway
//! PostgreSQL database when `GUICHET_TEST_DATABASE_URL` names a server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_guichet");
const README: &str = include_str!("../../README.md");

/// The README's fenced `sh` blocks that talk to the server (they use `$B`).
fn sessions() -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(block) if line.trim_end() == "```" => {
                if block.contains("$B") {
                    blocks.push(std::mem::take(block));
                }
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The refusals a block announces: `# refused, 422 card_brand_not_accepted: ...`.
fn announced(block: &str) -> Vec<(u64, String)> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# refused, "))
        .map(|rest| {
            let mut words = rest.split([' ', ':']);
            let status = words.next().unwrap().parse().unwrap();
            let code = words.next().unwrap().to_owned();
            (status, code)
        })
        .collect()
}

/// The problem+json answers among a block's output lines.
fn problems(output: &str) -> Vec<(u64, String)> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("type").is_some_and(serde_json::Value::is_string))
        .filter_map(|v| {
            Some((
                v.get("status")?.as_u64()?,
                v.get("code")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A throwaway PostgreSQL database when `GUICHET_TEST_DATABASE_URL` names
/// a server (an administrative URL), dropped with the value; else `None`
/// and the demo runs on its default SQLite file.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var("GUICHET_TEST_DATABASE_URL").ok()?;
        if !admin_url.starts_with("postgres") {
            return None;
        }
        let prefix =
            std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}_readme_{}_{nanos}", std::process::id());
        guichet_store::admin::create_database(&admin_url, &name).unwrap();
        let url = guichet_store::admin::with_database(&admin_url, &name).unwrap();
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = guichet_store::admin::drop_database(&self.admin_url, &self.name);
    }
}

/// Starts `serve --demo` in `dir` (data in `dir/guichet-data`, the
/// database there or `database_url`) and waits for the end of its banner;
/// returns the child, its address and banner.
fn start(dir: &Path, run: usize, database_url: Option<&str>) -> (Child, String, String) {
    let stdout_path = dir.join(format!("serve-{run}.out"));
    let stderr_path = dir.join(format!("serve-{run}.err"));
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env_remove("GUICHET_DATABASE_URL")
        .env_remove("GUICHET_DATA_DIR")
        .env_remove("GUICHET_JWT_SECRET")
        .env_remove("GUICHET_SECRET_KEY")
        .env_remove("GUICHET_ENV")
        .env_remove("GUICHET_LISTEN")
        .env("GUICHET_LOG", "info")
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        // As the README starts it for its webhook session.
        .args([
            "--webhook-allow-http",
            "--webhook-allow-address",
            "127.0.0.1",
        ])
        .args(
            database_url
                .map(|url| ["--database-url", url])
                .into_iter()
                .flatten(),
        )
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let banner = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        if banner.contains("  the README walks through") {
            let address = banner
                .lines()
                .next()
                .and_then(|l| l.rsplit("http://").next())
                .unwrap()
                .trim()
                .to_owned();
            return (child, address, banner);
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no banner (exited, or after 120 s): {banner}\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status:?}");
            return;
        }
        assert!(Instant::now() < deadline, "no exit 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Plays `block` with `bash -euo pipefail` against `address`; its output.
fn play(dir: &Path, tmp: &Path, address: &str, block: &str) -> String {
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("B", format!("http://{address}"))
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the session did not finish in 120 s:\n{block}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "the session failed ({status:?}):\n{block}\n--- output\n{out}\n--- errors\n{err}"
    );
    assert!(err.is_empty(), "the session wrote errors:\n{block}\n{err}");
    out
}

#[test]
fn the_readme_sessions_work_on_every_start_of_the_demo() {
    for tool in ["bash", "curl", "python3"] {
        if !have(tool) {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but `{tool}` is missing: the README's sessions need bash, curl and python3"
            );
            eprintln!("skipped: `{tool}` is missing (the README's sessions need it)");
            return;
        }
    }
    let blocks = sessions();
    assert_eq!(blocks.len(), 8, "the README's sessions: {blocks:#?}");
    assert!(
        blocks.iter().any(|b| !announced(b).is_empty()),
        "no refusal announced in the README's sessions"
    );
    let pg = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    for run in 1..=2 {
        let (mut server, address, banner) =
            start(dir.path(), run, pg.as_ref().map(|db| db.url.as_str()));
        if run == 1 {
            assert!(banner.contains("Demo data (created now)"), "{banner}");
        } else {
            assert!(banner.contains("Demo data (reset:"), "{banner}");
        }
        for block in &blocks {
            let output = play(dir.path(), &tmp, &address, block);
            assert_eq!(
                problems(&output),
                announced(block),
                "start {run}: the refusals differ from those the README announces\n{block}\n--- output\n{output}"
            );
            if block.contains("/v1/me/autopay") {
                // The billing contact read the card saved with autopay on,
                // then autopay turned off.
                for told in [
                    "Hugo Lefèvre (hugo.lefevre@example.com) a enregistré une carte Mastercard •••• 4444 et a activé le paiement automatique.",
                    "Hugo Lefèvre (hugo.lefevre@example.com) a désactivé le paiement automatique (il utilisait une carte Mastercard •••• 4444).",
                ] {
                    assert!(
                        output.contains(told),
                        "start {run}: the billing contact was not told {told:?}\n--- output\n{output}"
                    );
                }
            }
            if block.contains("/v1/consents/") {
                // The consent ends active, and the office's last view shows
                // the contacts erased.
                let last = output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                assert!(
                    last.contains("\"status\":\"active\"")
                        && last.contains("\"contacts_erased\":true"),
                    "start {run}: the consent session did not end active and erased\n--- output\n{output}"
                );
            }
        }
        stop(&mut server);
    }

    // Nothing written beside the data directory, the server's logs and
    // $TMPDIR; the PDFs and the export are in $TMPDIR.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("serve-"))
        .collect();
    names.sort();
    assert_eq!(names, ["guichet-data", "tmp"]);
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("endpoint.json")).unwrap()).unwrap();
    assert!(
        endpoint["id"].as_str().unwrap().starts_with("whe_"),
        "{endpoint}"
    );
    let secret = std::fs::read_to_string(tmp.join("whsec")).unwrap();
    assert!(secret.trim().starts_with("whsec_"), "{secret}");
    for file in [
        "mandate-unsigned.pdf",
        "mandate-signed.pdf",
        "kine-document.pdf",
    ] {
        let pdf = std::fs::read(tmp.join(file)).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{file}");
    }
    let ics = std::fs::read_to_string(tmp.join("kine-booking.ics")).unwrap();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n")
            && ics.contains("METHOD:REQUEST")
            && ics.contains("SEQUENCE:1"),
        "{ics}"
    );
    let xml = std::fs::read_to_string(tmp.join("collections.xml")).unwrap();
    assert!(xml.contains("pain.008"), "{xml}");
}
