//! No secret at rest in clear: after passwords, one-time codes and card
//! numbers went through the real server, none of them is found in the
//! SQLite database file or its WAL, nor a password or card number in the
//! outbox directory or the server's log. A code is in the delivered SMS (the
//! file delivery is the customer's phone), and nowhere else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Db, Server};

const ORG: &str = "demo";
/// The demo customer with a mobile: her passwordless codes go by SMS.
const CLAIRE: (&str, &str) = ("claire.martin@example.com", "Claire-Demo-2026!");
const PAN: &str = "4242424242424242";
const PAN_GROUPED: &str = "4242 4242 4242 4242";

/// Whether `needle` occurs in the file's bytes.
fn file_holds(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

/// The SQLite database's files: the database and its WAL.
fn database_files(db: &Db) -> Vec<std::path::PathBuf> {
    let file = db.dir.path().join("guichet.db");
    let wal = db.dir.path().join("guichet.db-wal");
    assert!(file.exists(), "no database file at {}", file.display());
    vec![file, wal]
}

fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(all_files(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn passwords_codes_and_card_numbers_are_not_kept_in_clear() {
    let db = Db::sqlite();
    let server = Server::start(&db, &[]);

    // A password sign-in.
    let res = server.post(
        "/v1/auth/login",
        None,
        &[],
        &json!({"organization": ORG, "email": CLAIRE.0, "password": CLAIRE.1}),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    // A passwordless code, delivered by SMS, then used.
    let res = server.post(
        "/v1/auth/otp/start",
        None,
        &[],
        &json!({"organization": ORG, "email": CLAIRE.0}),
    );
    assert_eq!(res.status, 202, "{}", res.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The message as delivered: searched for whole below, since six digits
    // alone may occur by chance in a file (a PDF, a hash).
    let (message, code) = loop {
        if let Some(sms) = db.sms().last() {
            let body = sms["body"].as_str().unwrap().to_owned();
            if let Some(code) = body
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
            {
                break (body.clone(), code.to_owned());
            }
        }
        assert!(Instant::now() < deadline, "no SMS delivered");
        std::thread::sleep(Duration::from_millis(50));
    };
    let res = server.post(
        "/v1/auth/otp/verify",
        None,
        &[],
        &json!({"organization": ORG, "email": CLAIRE.0, "code": code}),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    // A card number tokenized, then sent inside free text (refused).
    let res = server.post(
        "/v1/sandbox/card-tokens",
        None,
        &[],
        &json!({"number": PAN_GROUPED, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert!(!res.body.contains(PAN) && !res.body.contains(PAN_GROUPED));
    let res = server.post(
        "/v1/auth/login",
        None,
        &[],
        &json!({"organization": ORG, "email": CLAIRE.0, "password": format!("my card {PAN_GROUPED}")}),
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.code().as_deref(), Some("card_number_refused"));

    // Give the outbox a moment, then look at everything at rest.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log_lines().join("\n");
    server.kill();
    assert!(!log.is_empty(), "the log was read");

    for file in database_files(&db) {
        for secret in [CLAIRE.1, message.as_str(), PAN, PAN_GROUPED] {
            assert!(
                !file_holds(&file, secret),
                "{secret:?} found in {}",
                file.display()
            );
        }
    }
    for file in all_files(&db.data_dir().join("outbox")) {
        for secret in [CLAIRE.1, PAN, PAN_GROUPED] {
            assert!(
                !file_holds(&file, secret),
                "{secret:?} found in {}",
                file.display()
            );
        }
    }
    for secret in [CLAIRE.1, message.as_str(), PAN, PAN_GROUPED] {
        assert!(!log.contains(secret), "{secret:?} found in the log");
    }
    // The code itself is in no log line in any form a reader would spot.
    assert!(
        !log.lines().any(|l| l.contains(&format!("code={code}"))
            || l.contains(&format!("\"{code}\""))
            || l.contains(&format!(": {code}"))),
        "the code is in the log"
    );
}
