//! Webhook delivery across crashes and nodes, with the real binary: a
//! delivery cut by `kill -9` of the server is sent again after the restart
//! under the same `webhook-id`; two servers on one database never send one
//! delivery twice. The receiver and the Standard Webhooks verification are
//! the black-box suite's (`tests/src/webhooks.rs`), which share no code
//! with the server's signing.
//!
//! Runs on SQLite, or on PostgreSQL with `GUICHET_TEST_DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../../tests/src/webhooks.rs"]
#[allow(dead_code)]
mod webhooks;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use support::{Db, Server};
use webhooks::{Received, Receiver, Reply};

/// How long a dispatcher's claim lasts here: a dead server's deliveries
/// come back after it (the server's floor: an attempt of up to 15 s must fit).
const LEASE: &str = "20";

fn flags() -> Vec<&'static str> {
    vec![
        "--webhook-allow-http",
        "--webhook-allow-address",
        "127.0.0.1",
        "--webhook-lease-secs",
        LEASE,
        "--webhook-interval-ms",
        "50",
    ]
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Creates an endpoint of the demo's `gerance` at `url` for `types`;
/// returns its id and secret.
fn endpoint(server: &Server, admin: &str, url: &str, types: &[&str]) -> (String, String) {
    let res = server.post(
        "/v1/admin/webhook-endpoints",
        Some(admin),
        &[],
        &json!({"url": url, "event_types": types}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let body = res.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

fn new_customer(server: &Server, admin: &str, email: &str) -> String {
    let res = server.post(
        "/v1/admin/customers",
        Some(admin),
        &[],
        &json!({"name": "Webhook Test", "email": email}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["id"].as_str().unwrap().to_owned()
}

fn assert_verified(request: &Received, secret: &str) -> Value {
    assert_eq!(
        request.verify(secret, unix_now()),
        Ok(()),
        "{:?}",
        request.headers
    );
    let event = request.json();
    assert_eq!(event["id"], request.webhook_id());
    event
}

#[test]
fn a_delivery_cut_by_kill_9_is_sent_again_after_the_restart_under_the_same_id() {
    let db = Db::fresh("webhook_kill");
    // The first request hangs: the server dies while it waits for the answer.
    let receiver = Receiver::scripted(
        vec![Reply::Hang(Duration::from_secs(60))],
        Reply::Status(200),
    );
    let server = Server::start(&db, &flags());
    let admin = server.admin_token();
    let (endpoint_id, secret) = endpoint(&server, &admin, &receiver.url, &["customer.created"]);
    let customer = new_customer(&server, &admin, "kill9@example.com");

    let first = receiver.wait_for(1, Duration::from_secs(20));
    let event = assert_verified(&first[0], &secret);
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["object"]["id"], customer);
    server.kill();
    let killed_at = Instant::now();

    let server = Server::start(&db, &flags());
    // Once the dead server's claim has lapsed, the delivery goes again.
    let got = receiver.wait_for(2, Duration::from_secs(90));
    let again = &got[1];
    assert_verified(again, &secret);
    assert_eq!(again.webhook_id(), first[0].webhook_id());
    assert_eq!(again.body, first[0].body);
    assert!(
        killed_at.elapsed() < Duration::from_secs(80),
        "redelivered {:?} after the kill",
        killed_at.elapsed()
    );
    // Once, and logged as succeeded.
    let admin = server.admin_token();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = server.get(
            &format!("/v1/admin/webhook-endpoints/{endpoint_id}/deliveries"),
            Some(&admin),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        let log = res.json();
        let data = log["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{log}");
        if data[0]["status"] == "succeeded" {
            assert_eq!(data[0]["event_id"], first[0].webhook_id());
            assert_eq!(data[0]["last_attempt"]["http_status"], 200, "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "not logged as delivered: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.requests().len(), 2);
}

#[test]
fn two_servers_on_one_database_never_send_a_delivery_twice() {
    let db = Db::fresh("webhook_two");
    // A slow receiver (30 ms an answer) keeps both dispatchers busy at once.
    let receiver = Receiver::scripted(Vec::new(), Reply::Hang(Duration::from_millis(30)));
    let a = Server::start(&db, &flags());
    let b = Server::start(&db, &flags());
    let admin = a.admin_token();
    let (_, secret) = endpoint(&a, &admin, &receiver.url, &["customer.created"]);
    let (_, other_secret) = endpoint(
        &b,
        &admin,
        &receiver.url.replace("/hook", "/other"),
        &["customer.created"],
    );

    const EVENTS: usize = 150;
    let writers: Vec<_> = [&a, &b]
        .into_iter()
        .enumerate()
        .map(|(n, server)| {
            let addr = server.addr.clone();
            let admin = admin.clone();
            std::thread::spawn(move || {
                for i in 0..EVENTS / 2 {
                    let res = support::request(
                        &addr,
                        "POST",
                        "/v1/admin/customers",
                        Some(&admin),
                        &[],
                        Some(&json!({"name": "Node", "email": format!("n{n}-{i}@example.com")})),
                    );
                    assert_eq!(res.status, 201, "{}", res.body);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // Every event to both endpoints.
    let got = receiver.wait_for(2 * EVENTS, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    let got_all = receiver.requests();
    assert!(got.len() >= 2 * EVENTS);
    assert_eq!(got_all.len(), 2 * EVENTS, "more requests than deliveries");

    let mut per_attempt: HashMap<(String, String, String), usize> = HashMap::new();
    let mut per_delivery: HashMap<(String, String), usize> = HashMap::new();
    for request in &got_all {
        let key = if request.path == "/hook" {
            &secret
        } else {
            &other_secret
        };
        assert_verified(request, key);
        let id = request.webhook_id().to_owned();
        let stamp = request.header("webhook-timestamp").unwrap().to_owned();
        *per_attempt
            .entry((request.path.clone(), id.clone(), stamp))
            .or_default() += 1;
        *per_delivery.entry((request.path.clone(), id)).or_default() += 1;
    }
    assert!(
        per_attempt.values().all(|&n| n == 1),
        "an attempt sent twice: {per_attempt:?}"
    );
    let twice: Vec<_> = per_delivery.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(per_delivery.len(), 2 * EVENTS);
    drop(a);
    drop(b);
}

/// `guichet dev webhook-receiver` on a free port, its output read line by
/// line; killed when dropped.
struct DevReceiver {
    child: std::process::Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl DevReceiver {
    fn start(secrets: &[&str]) -> DevReceiver {
        use std::io::BufRead;
        let mut command = std::process::Command::new(support::BIN);
        command.args(["dev", "webhook-receiver", "--port", "0"]);
        for secret in secrets {
            command.args(["--secret", secret]);
        }
        let mut child = command
            .env_remove("GUICHET_WEBHOOK_SECRET")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let banner = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        let port = banner
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no port in {banner:?}"))
            .parse()
            .unwrap();
        DevReceiver { child, port, lines }
    }

    /// Waits for a line containing every one of `needles`.
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needles:?}"),
            }
        }
    }

    fn post(&self, headers: &[(&str, &str)], body: &str) -> u16 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for DevReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_dev_receiver_prints_verified_events_and_refuses_bad_signatures() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let receiver = DevReceiver::start(&[other, secret]);
    let key = webhooks::secret_key(secret).unwrap();
    let body = r#"{"id":"evt_1","type":"customer.created"}"#;
    let now = unix_now();
    let signature = webhooks::sign(&key, "evt_1", now, body.as_bytes());
    let stamp = now.to_string();
    let status = receiver.post(
        &[
            ("webhook-id", "evt_1"),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", &signature),
        ],
        body,
    );
    assert_eq!(status, 200);
    receiver.wait_for(&["verified evt_1 customer.created"]);
    // Another body under the same signature, an old timestamp, no header.
    let status = receiver.post(
        &[
            ("webhook-id", "evt_1"),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", &signature),
        ],
        r#"{"id":"evt_1","type":"customer.blocked"}"#,
    );
    assert_eq!(status, 400);
    receiver.wait_for(&["REJECTED", "no signature matches"]);
    let old = now - 3600;
    let old_signature = webhooks::sign(&key, "evt_1", old, body.as_bytes());
    let status = receiver.post(
        &[
            ("webhook-id", "evt_1"),
            ("webhook-timestamp", &old.to_string()),
            ("webhook-signature", &old_signature),
        ],
        body,
    );
    assert_eq!(status, 400);
    receiver.wait_for(&["REJECTED", "tolerance"]);
    assert_eq!(receiver.post(&[], body), 400);
    receiver.wait_for(&["REJECTED", "no webhook-id"]);
}

#[test]
fn the_dev_receiver_shows_the_events_of_a_demo_organization() {
    let db = Db::fresh("webhook_dev");
    let server = Server::start(&db, &flags());
    let admin = server.admin_token();
    // The receiver's port first (the endpoint's URL), then its secret.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let (id, secret) = endpoint(
        &server,
        &admin,
        &format!("http://127.0.0.1:{port}/"),
        &["*"],
    );
    let receiver = {
        use std::io::BufRead;
        let mut child = std::process::Command::new(support::BIN)
            .args(["dev", "webhook-receiver", "--port", &port.to_string()])
            .env("GUICHET_WEBHOOK_SECRET", &secret)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        lines.recv_timeout(Duration::from_secs(10)).unwrap();
        DevReceiver { child, port, lines }
    };
    let res = server.post(
        &format!("/v1/admin/webhook-endpoints/{id}/test"),
        Some(&admin),
        &[],
        &json!({}),
    );
    assert_eq!(res.status, 202, "{}", res.body);
    let event_id = res.json()["event_id"].as_str().unwrap().to_owned();
    receiver.wait_for(&["verified", &event_id, "ping"]);
    let customer = new_customer(&server, &admin, "dev-receiver@example.com");
    receiver.wait_for(&["verified", "customer.created"]);
    receiver.wait_for(&[&customer]);
}
