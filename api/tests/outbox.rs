//! The outbox dispatcher against a real SQLite store: file, SMTP and HTTP
//! delivery, retries and giving up, driven by a fixed clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use guichet_api::config::{EmailDeliveryMode, NotifySettings, SmsDeliveryMode, SmtpTls};
use guichet_api::notify::dispatch::{DispatchReport, Dispatcher};
use guichet_api::notify::{self, Channel, Template};
use guichet_domain::{Clock, FixedClock, Locale};
use guichet_store::repo::outbox;
use guichet_store::schema::outbox as t;
use guichet_store::{DatabaseUrl, PoolOptions, Store};

const CODE: &str = "482913";

/// The key the test outbox is sealed with.
fn key() -> notify::OutboxKey {
    notify::OutboxKey::derive(b"the outbox tests' server secret key")
}

struct World {
    dir: tempfile::TempDir,
    store: Store,
    clock: FixedClock,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &DatabaseUrl::Sqlite(dir.path().join("x.db")),
            &PoolOptions::default(),
        )
        .unwrap();
        let start = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 30, 0)
            .single()
            .unwrap();
        World {
            dir,
            store,
            clock: FixedClock::new(start),
        }
    }

    fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// File delivery for both channels.
    fn settings(&self) -> NotifySettings {
        NotifySettings {
            email: EmailDeliveryMode::File,
            email_from: "Guichet <no-reply@guichet.localhost>".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            sms: SmsDeliveryMode::File,
            sms_provider_url: None,
            sms_provider_token: None,
            outbox_dir: self.outbox_dir(),
            interval: Duration::from_millis(10),
        }
    }

    fn dispatcher(&self, settings: &NotifySettings) -> Dispatcher {
        Dispatcher::new(
            settings,
            self.store.clone(),
            Arc::new(self.clock.clone()),
            key(),
        )
        .unwrap()
    }

    /// Queues a sign-in code and returns the message id.
    fn queue(&self, channel: Channel, recipient: &str, org_name: &str) -> String {
        let mut conn = self.store.conn().unwrap();
        notify::queue_sealed(
            &mut conn,
            &key(),
            None,
            channel,
            recipient,
            &Template::LoginCode {
                org_name: org_name.into(),
                code: CODE.into(),
            },
            Locale::Fr,
            self.clock.now(),
        )
        .unwrap();
        t::table
            .filter(t::recipient.eq(recipient))
            .select(t::id)
            .order(t::created_at.desc())
            .first(&mut *conn)
            .unwrap()
    }

    fn row(&self, id: &str) -> Row {
        let mut conn = self.store.conn().unwrap();
        let (attempts, body, next_attempt_at, sent_at, failed_at, last_error) = t::table
            .find(id)
            .select((
                t::attempts,
                t::body,
                t::next_attempt_at,
                t::sent_at,
                t::failed_at,
                t::last_error,
            ))
            .first::<(
                i32,
                String,
                NaiveDateTime,
                Option<NaiveDateTime>,
                Option<NaiveDateTime>,
                Option<String>,
            )>(&mut *conn)
            .unwrap();
        Row {
            attempts,
            body,
            next_attempt_at: next_attempt_at.and_utc(),
            sent_at: sent_at.map(|t| t.and_utc()),
            failed_at: failed_at.map(|t| t.and_utc()),
            last_error,
        }
    }

    fn pending(&self) -> i64 {
        outbox::pending_count(&mut self.store.conn().unwrap()).unwrap()
    }
}

#[derive(Debug)]
struct Row {
    attempts: i32,
    body: String,
    next_attempt_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

fn report(sent: usize, retried: usize, given_up: usize) -> DispatchReport {
    DispatchReport {
        sent,
        retried,
        given_up,
    }
}

/// The only file in `dir` (there must be exactly one, and no leftover
/// temporary file).
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// A message's text with quoted-printable soft line breaks undone (enough
/// to find a code in it).
fn unfold(text: &str) -> String {
    text.replace("=\r\n", "")
}

#[test]
fn file_email_is_written_then_marked_sent_without_its_body() {
    let world = World::new();
    let id = world.queue(Channel::Email, "alice@example.com", "Acme");
    let dispatcher = world.dispatcher(&world.settings());

    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));

    let path = only_file(&world.outbox_dir().join("email"));
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(name, format!("20261122T093000-{id}.eml"));
    let eml = std::fs::read_to_string(&path).unwrap();
    assert!(eml.contains("\r\nTo: alice@example.com\r\n"), "{eml}");
    assert!(
        eml.contains("From: Guichet <no-reply@guichet.localhost>\r\n"),
        "{eml}"
    );
    assert!(
        eml.contains("\r\nSubject: Acme : votre code de connexion\r\n"),
        "{eml}"
    );
    assert!(
        eml.contains("Content-Type: text/plain; charset=utf-8"),
        "{eml}"
    );
    assert!(
        eml.contains(&format!("Message-ID: <{id}@guichet.localhost>")),
        "{eml}"
    );
    assert!(unfold(&eml).contains(CODE), "{eml}");

    let row = world.row(&id);
    assert_eq!(row.sent_at, Some(world.clock.now()));
    assert_eq!(row.body, outbox::DELIVERED_BODY);
    assert_eq!(row.attempts, 1);
    assert_eq!(world.pending(), 0);

    // Nothing left to do.
    assert_eq!(dispatcher.run_once().unwrap(), DispatchReport::default());
}

#[test]
fn non_ascii_subjects_are_encoded() {
    let world = World::new();
    world.queue(Channel::Email, "bob@example.com", "Régie de l'Eau");
    let dispatcher = world.dispatcher(&world.settings());
    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));
    let eml = std::fs::read_to_string(only_file(&world.outbox_dir().join("email"))).unwrap();
    assert!(eml.is_ascii(), "{eml}");
    assert!(eml.contains("Subject: =?utf-8?"), "{eml}");
}

#[test]
fn file_sms_is_a_json_file() {
    let world = World::new();
    let id = world.queue(Channel::Sms, "+33612345678", "Acme");
    let dispatcher = world.dispatcher(&world.settings());

    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));

    let path = only_file(&world.outbox_dir().join("sms"));
    assert!(path.to_str().unwrap().ends_with(&format!("-{id}.json")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["to"], "+33612345678");
    assert_eq!(json["template"], "login_code");
    assert!(json["body"].as_str().unwrap().contains(CODE), "{json}");
    assert_eq!(world.row(&id).body, outbox::DELIVERED_BODY);
    assert_eq!(world.pending(), 0);
}

/// A fake SMTP server for one session; returns everything the client sent.
fn fake_smtp() -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut transcript = String::new();
        writer.write_all(b"220 fake.test ESMTP\r\n").unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            transcript.push_str(&line);
            let command = line.to_ascii_uppercase();
            if command.starts_with("EHLO") || command.starts_with("HELO") {
                writer
                    .write_all(b"250-fake.test\r\n250 8BITMIME\r\n")
                    .unwrap();
            } else if command.starts_with("DATA") {
                writer.write_all(b"354 go ahead\r\n").unwrap();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 {
                        return transcript;
                    }
                    transcript.push_str(&line);
                    if line == ".\r\n" {
                        break;
                    }
                }
                writer.write_all(b"250 queued\r\n").unwrap();
            } else if command.starts_with("QUIT") {
                writer.write_all(b"221 bye\r\n").unwrap();
                break;
            } else {
                writer.write_all(b"250 ok\r\n").unwrap();
            }
        }
        transcript
    });
    (port, server)
}

#[test]
fn smtp_delivery_talks_to_the_server() {
    let world = World::new();
    let id = world.queue(Channel::Email, "carol@example.com", "Acme");
    let (port, server) = fake_smtp();
    let settings = NotifySettings {
        email: EmailDeliveryMode::Smtp,
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: SmtpTls::None,
        ..world.settings()
    };
    let dispatcher = world.dispatcher(&settings);

    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));

    let transcript = server.join().unwrap();
    assert!(
        transcript.contains("MAIL FROM:<no-reply@guichet.localhost>"),
        "{transcript}"
    );
    assert!(
        transcript.contains("RCPT TO:<carol@example.com>"),
        "{transcript}"
    );
    assert!(
        transcript.contains("Subject: Acme : votre code de connexion"),
        "{transcript}"
    );
    assert!(unfold(&transcript).contains(CODE), "{transcript}");
    assert!(world.row(&id).sent_at.is_some());
    assert!(!world.outbox_dir().join("email").exists());
}

#[test]
fn smtp_server_down_means_retry_in_a_minute() {
    let world = World::new();
    let id = world.queue(Channel::Email, "dan@example.com", "Acme");
    // A port nobody listens on (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = NotifySettings {
        email: EmailDeliveryMode::Smtp,
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: SmtpTls::None,
        ..world.settings()
    };
    let dispatcher = world.dispatcher(&settings);
    assert_eq!(dispatcher.run_once().unwrap(), report(0, 1, 0));
    let row = world.row(&id);
    assert_eq!(row.attempts, 1);
    assert!(row.sent_at.is_none());
    assert_eq!(
        row.next_attempt_at,
        world.clock.now() + chrono::Duration::minutes(1)
    );
    let error = row.last_error.unwrap();
    assert!(error.starts_with("SMTP"), "{error}");
    assert!(!error.contains("dan@example.com"), "{error}");
}

#[derive(Debug, Clone)]
struct Recorded {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fake HTTP server answering the given statuses in turn (one request
/// per connection) and recording the requests.
fn fake_http(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Recorded>>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let server = std::thread::spawn(move || {
        for status in statuses {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            recorded.lock().unwrap().push(Recorded {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            let answer = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            writer.write_all(answer.as_bytes()).unwrap();
        }
    });
    (url, requests, server)
}

fn http_sms_settings(world: &World, url: String) -> NotifySettings {
    NotifySettings {
        sms: SmsDeliveryMode::Http,
        sms_provider_url: Some(url),
        sms_provider_token: Some("provider-token".into()),
        ..world.settings()
    }
}

#[test]
fn http_sms_is_posted_to_the_provider() {
    let world = World::new();
    let id = world.queue(Channel::Sms, "+33612345678", "Acme");
    let (url, requests, server) = fake_http(vec![200]);
    let dispatcher = world.dispatcher(&http_sms_settings(&world, url));

    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));
    server.join().unwrap();

    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.request_line.starts_with("POST /sms "),
        "{request:?}"
    );
    assert_eq!(
        request.header("authorization"),
        Some("Bearer provider-token")
    );
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(json["to"], "+33612345678");
    assert!(json["body"].as_str().unwrap().contains(CODE), "{json}");
    assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
    assert!(world.row(&id).sent_at.is_some());
    assert!(!world.outbox_dir().join("sms").exists());
}

#[test]
fn http_sms_error_is_retried_later_then_delivered() {
    let world = World::new();
    let id = world.queue(Channel::Sms, "+33612345678", "Acme");
    let (url, requests, server) = fake_http(vec![500, 200]);
    let dispatcher = world.dispatcher(&http_sms_settings(&world, url));

    assert_eq!(dispatcher.run_once().unwrap(), report(0, 1, 0));
    let row = world.row(&id);
    assert!(row.sent_at.is_none());
    assert!(row.failed_at.is_none());
    assert_eq!(row.attempts, 1);
    assert_eq!(
        row.next_attempt_at,
        world.clock.now() + chrono::Duration::minutes(1)
    );
    assert_eq!(
        row.last_error.as_deref(),
        Some("SMS provider answered HTTP 500")
    );
    assert!(
        !row.body.contains(CODE),
        "the code is never stored in clear"
    );
    assert!(
        key().open(&row.body).unwrap().contains(CODE),
        "the sealed body stays until delivered"
    );
    assert_eq!(world.pending(), 1);

    // Not due yet.
    assert_eq!(dispatcher.run_once().unwrap(), DispatchReport::default());

    world.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));
    server.join().unwrap();
    assert_eq!(requests.lock().unwrap().len(), 2);
    let row = world.row(&id);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.sent_at, Some(world.clock.now()));
    assert_eq!(row.last_error, None);
    assert_eq!(world.pending(), 0);
}

#[test]
fn a_message_failing_six_times_is_given_up() {
    let world = World::new();
    let id = world.queue(Channel::Email, "erin@example.com", "Acme");
    // The outbox directory cannot be created under a regular file.
    let blocker = world.dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let settings = NotifySettings {
        outbox_dir: blocker.join("outbox"),
        ..world.settings()
    };
    let dispatcher = world.dispatcher(&settings);

    let delays = [1, 5, 30, 120, 720];
    for (attempt, minutes) in (1..).zip(delays) {
        assert_eq!(
            dispatcher.run_once().unwrap(),
            report(0, 1, 0),
            "attempt {attempt}"
        );
        let row = world.row(&id);
        assert_eq!(row.attempts, attempt);
        assert_eq!(
            row.next_attempt_at,
            world.clock.now() + chrono::Duration::minutes(minutes)
        );
        // One second early: not due.
        world
            .clock
            .advance(chrono::Duration::minutes(minutes) - chrono::Duration::seconds(1));
        assert_eq!(dispatcher.run_once().unwrap(), DispatchReport::default());
        world.clock.advance(chrono::Duration::seconds(1));
    }
    assert_eq!(dispatcher.run_once().unwrap(), report(0, 0, 1));

    let row = world.row(&id);
    assert_eq!(row.attempts, 6);
    assert_eq!(row.failed_at, Some(world.clock.now()));
    assert!(row.sent_at.is_none());
    assert_eq!(row.body, outbox::DELIVERED_BODY);
    assert!(row.last_error.unwrap().contains("cannot create"));
    assert_eq!(world.pending(), 0);

    world.clock.advance(chrono::Duration::days(2));
    assert_eq!(dispatcher.run_once().unwrap(), DispatchReport::default());
}

#[test]
fn a_malformed_address_is_given_up_at_once() {
    let world = World::new();
    let id = world.queue(Channel::Email, "not an address", "Acme");
    let dispatcher = world.dispatcher(&world.settings());
    assert_eq!(dispatcher.run_once().unwrap(), report(0, 0, 1));
    let row = world.row(&id);
    assert!(row.failed_at.is_some());
    assert_eq!(row.attempts, 1);
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let world = World::new();
    let no_host = NotifySettings {
        email: EmailDeliveryMode::Smtp,
        ..world.settings()
    };
    assert!(
        Dispatcher::new(
            &no_host,
            world.store.clone(),
            Arc::new(world.clock.clone()),
            key()
        )
        .is_err()
    );
    let no_url = NotifySettings {
        sms: SmsDeliveryMode::Http,
        ..world.settings()
    };
    assert!(
        Dispatcher::new(
            &no_url,
            world.store.clone(),
            Arc::new(world.clock.clone()),
            key()
        )
        .is_err()
    );
    let bad_from = NotifySettings {
        email_from: "nobody".into(),
        ..world.settings()
    };
    assert!(
        Dispatcher::new(
            &bad_from,
            world.store.clone(),
            Arc::new(world.clock.clone()),
            key(),
        )
        .is_err()
    );
}

#[test]
fn the_thread_delivers_and_stops_without_waiting_for_its_interval() {
    let world = World::new();
    world.queue(Channel::Sms, "+33612345678", "Acme");
    let settings = NotifySettings {
        interval: Duration::from_secs(3600),
        ..world.settings()
    };
    let handle = world.dispatcher(&settings).spawn();

    let sms_dir = world.outbox_dir().join("sms");
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.pending() > 0 {
        assert!(Instant::now() < deadline, "the thread delivered nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    only_file(&sms_dir);

    let stopping = Instant::now();
    handle.stop();
    assert!(stopping.elapsed() < Duration::from_secs(2));
}

/// Queues an e-mail with a PDF attached; returns its id.
fn queue_with_pdf(world: &World, recipient: &str, pdf: &[u8]) -> String {
    let mut conn = world.store.conn().unwrap();
    notify::queue_with_attachments(
        &mut conn,
        None,
        Channel::Email,
        recipient,
        &Template::PasswordChanged {
            org_name: "Acme".into(),
        },
        Locale::Fr,
        world.clock.now(),
        &[outbox::Attachment {
            filename: "mandat-GCH20261122ABCDEFGH.pdf".into(),
            content_type: "application/pdf".into(),
            content: pdf.to_vec(),
            render: None,
        }],
    )
    .unwrap();
    t::table
        .filter(t::recipient.eq(recipient))
        .select(t::id)
        .first(&mut *conn)
        .unwrap()
}

const PDF: &[u8] = b"%PDF-1.4\n\x00\x01\xfe\xff binary %%EOF\n";

#[test]
fn attachments_go_out_as_multipart_by_file_and_smtp() {
    use base64::Engine;
    let world = World::new();
    let id = queue_with_pdf(&world, "erin@example.com", PDF);
    let dispatcher = world.dispatcher(&world.settings());
    assert_eq!(dispatcher.run_once().unwrap(), report(1, 0, 0));
    let eml = std::fs::read_to_string(only_file(&world.outbox_dir().join("email"))).unwrap();
    let head = unfold(&eml);
    assert!(head.contains("multipart/mixed"), "{eml}");
    assert!(head.contains("Content-Type: application/pdf"), "{eml}");
    assert!(head.contains("Content-Disposition: attachment"), "{eml}");
    let text = Template::PasswordChanged {
        org_name: "Acme".into(),
    }
    .render(Locale::Fr, Channel::Email)
    .body;
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(unfold(&eml).contains(first_line), "{eml}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(PDF);
    assert!(eml.replace("\r\n", "").contains(&encoded), "{eml}");
    assert!(world.row(&id).sent_at.is_some());

    let world = World::new();
    queue_with_pdf(&world, "fred@example.com", PDF);
    let (port, server) = fake_smtp();
    let settings = NotifySettings {
        email: EmailDeliveryMode::Smtp,
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: SmtpTls::None,
        ..world.settings()
    };
    assert_eq!(
        world.dispatcher(&settings).run_once().unwrap(),
        report(1, 0, 0)
    );
    let transcript = server.join().unwrap();
    assert!(
        unfold(&transcript).contains("multipart/mixed"),
        "{transcript}"
    );
    assert!(
        transcript.replace("\r\n", "").contains(&encoded),
        "{transcript}"
    );
}
