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

/// How long a dispatcher's claim lasts here (the test-only flag's floor):
/// a dead server's deliveries come back after it.
const LEASE: &str = "30";

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

#[test]
fn the_dev_receiver_shows_the_events_of_a_demo_organization_verified() {
    use std::io::BufRead;
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
    let mut child = std::process::Command::new(support::BIN)
        .args(["dev", "webhook-receiver", "--port", &port.to_string()])
        .args([
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--secret",
            &secret,
        ])
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
    let wait_for = |needles: &[&str]| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(_) => {}
                Err(_) => panic!("no receiver line with {needles:?}"),
            }
        }
    };
    wait_for(&[&format!("http://127.0.0.1:{port}/")]);
    let res = server.post(
        &format!("/v1/admin/webhook-endpoints/{id}/test"),
        Some(&admin),
        &[],
        &json!({}),
    );
    assert_eq!(res.status, 202, "{}", res.body);
    let event_id = res.json()["event_id"].as_str().unwrap().to_owned();
    wait_for(&[&event_id, "ping", "verified: yes"]);
    new_customer(&server, &admin, "dev-receiver@example.com");
    wait_for(&["customer.created", "verified: yes"]);
    let _ = child.kill();
    let _ = child.wait();
}
