//! Webhook endpoints: creation with a secret shown once, the URL rules
//! (https, internal addresses), rotation, the delivery log, test pings,
//! redeliveries, and the dispatcher delivering to a receiver on 127.0.0.1.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guichet_domain::Clock;
use guichet_domain::webhooks::{Secret, verify};
use guichet_tests::identity::{Org, PASSWORD};
use guichet_tests::{Options, Response, TestApp};
use serde_json::{Value, json};

const ENDPOINTS: &str = "/v1/admin/webhook-endpoints";

// ------------------------------------------------------------------ helpers

fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<&Value>) -> Response {
    let request = app.request(method, path).bearer(token);
    match body {
        Some(body) => request.json(body).send(),
        None => request.send(),
    }
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    }
}

fn create(app: &TestApp, token: &str, body: &Value) -> Response {
    call(app, "POST", ENDPOINTS, token, Some(body))
}

fn endpoint_path(id: &str) -> String {
    format!("{ENDPOINTS}/{id}")
}

/// A server that accepts `http://` URLs and delivers to 127.0.0.1.
fn loopback_app() -> TestApp {
    TestApp::spawn_with(Options {
        args: vec![
            "--webhook-allow-http".into(),
            "--webhook-allow-address".into(),
            "127.0.0.1".into(),
        ],
        ..Options::default()
    })
}

fn endpoint_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.store.conn().unwrap();
    guichet_store::schema::webhook_endpoints::table
        .count()
        .get_result(&mut *conn)
        .unwrap()
}

fn staff_token(app: &TestApp, org: &Org, email: &str, role: &str) -> String {
    ok(
        call(
            app,
            "POST",
            "/v1/admin/staff",
            &org.admin,
            Some(&json!({"email": email, "name": "Member", "role": role})),
        ),
        201,
    );
    let token = app.nth_message(email, 1).token().unwrap();
    let signed_in = ok(
        app.request("POST", "/v1/auth/staff/setup")
            .json(&json!({"token": token, "password": PASSWORD}))
            .send(),
        200,
    );
    signed_in["access_token"].as_str().unwrap().to_owned()
}

// ----------------------------------------------------------------- receiver

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1 (keep-alive, Content-Length
/// bodies) that records requests and answers the statuses of its script,
/// then 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(script: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let shared = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (got, script) = (shared.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &got, &script));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
        }
    }

    fn wait_for(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(stream: TcpStream, got: &Mutex<Vec<Got>>, script: &Mutex<VecDeque<u16>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        got.lock().unwrap().push(Got {
            path,
            headers,
            body,
        });
        let status = script.lock().unwrap().pop_front().unwrap_or(200);
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 8\r\n\r\nreceived");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

// -------------------------------------------------------------------- tests

#[test]
fn an_admin_creates_reads_changes_and_deletes_an_endpoint() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let res = create(
        &app,
        &org.admin,
        &json!({"url": "https://93.184.215.14/hooks", "event_types": ["schedule.card_changed", "instalment.failed"],
                "description": "ERP"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("whe_"));
    assert_eq!(res.header("location"), Some(endpoint_path(&id).as_str()));
    assert_eq!(created["url"], "https://93.184.215.14/hooks");
    assert_eq!(
        created["event_types"],
        json!(["schedule.card_changed", "instalment.failed"])
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["disabled_reason"], Value::Null);
    assert_eq!(created["failing_since"], Value::Null);
    assert_eq!(created["description"], "ERP");
    assert_eq!(created["created_at"], "2026-11-22T09:00:00Z");
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(Secret::parse(secret).unwrap().key().len(), 32);

    // Defaults: every type, enabled, no description.
    let other = ok(
        create(&app, &org.admin, &json!({"url": "https://93.184.215.15/"})),
        201,
    );
    assert_eq!(other["event_types"], json!(["*"]));
    assert_eq!(other["description"], "");

    let got = ok(
        call(&app, "GET", &endpoint_path(&id), &org.admin, None),
        200,
    );
    assert_eq!(got["url"], created["url"]);
    assert!(got.get("secret").is_none());
    let list = ok(call(&app, "GET", ENDPOINTS, &org.admin, None), 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["next_cursor"], Value::Null);

    let changed = ok(
        call(
            &app,
            "PATCH",
            &endpoint_path(&id),
            &org.admin,
            Some(&json!({"description": "ERP v2", "event_types": ["*"], "enabled": false})),
        ),
        200,
    );
    assert_eq!(changed["description"], "ERP v2");
    assert_eq!(changed["event_types"], json!(["*"]));
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["disabled_reason"], "manual");
    let changed = ok(
        call(
            &app,
            "PATCH",
            &endpoint_path(&id),
            &org.admin,
            Some(&json!({"enabled": true, "url": "https://93.184.215.16/in"})),
        ),
        200,
    );
    assert_eq!(changed["enabled"], true);
    assert_eq!(changed["disabled_reason"], Value::Null);
    assert_eq!(changed["url"], "https://93.184.215.16/in");

    ok(
        call(&app, "DELETE", &endpoint_path(&id), &org.admin, None),
        204,
    );
    call(&app, "GET", &endpoint_path(&id), &org.admin, None).assert_problem(404, "not_found");
    call(&app, "DELETE", &endpoint_path(&id), &org.admin, None).assert_problem(404, "not_found");
    assert_eq!(endpoint_count(&app), 1);
}

#[test]
fn the_secret_is_shown_once_and_stored_sealed() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let created = ok(
        create(&app, &org.admin, &json!({"url": "https://93.184.215.14/"})),
        201,
    );
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap();
    for path in [ENDPOINTS.to_owned(), endpoint_path(id)] {
        let res = call(&app, "GET", &path, &org.admin, None);
        assert_eq!(res.status, 200);
        assert!(!res.text().contains("whsec_"), "{}", res.text());
    }
    use diesel::prelude::*;
    use guichet_store::schema::webhook_endpoints as e;
    let mut conn = app.store.conn().unwrap();
    let stored: String = e::table.select(e::secret_sealed).first(&mut *conn).unwrap();
    let key_part = secret.trim_start_matches("whsec_");
    assert!(!stored.contains(key_part) && !stored.contains("whsec_"));
    assert!(stored.starts_with("sealed:v1:"));
}

#[test]
fn rotation_issues_a_new_secret_and_keeps_the_old_one_a_day() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let created = ok(
        create(&app, &org.admin, &json!({"url": "https://93.184.215.14/"})),
        201,
    );
    let id = created["id"].as_str().unwrap();
    let rotated = ok(
        call(
            &app,
            "POST",
            &format!("{}/secret-rotation", endpoint_path(id)),
            &org.admin,
            None,
        ),
        200,
    );
    let secret = rotated["secret"].as_str().unwrap();
    assert!(Secret::parse(secret).is_ok());
    assert_ne!(secret, created["secret"].as_str().unwrap());
    assert_eq!(
        rotated["previous_secret_expires_at"],
        "2026-11-23T09:00:00Z"
    );
    call(
        &app,
        "POST",
        &format!("{ENDPOINTS}/whe_00000000000000000000/secret-rotation"),
        &org.admin,
        None,
    )
    .assert_problem(404, "not_found");
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let url = "https://93.184.215.14/";
    let long_url = format!("https://93.184.215.14/{}", "a".repeat(2030));
    let many: Vec<String> = (0..51).map(|_| "order.created".to_owned()).collect();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"url": url, "color": "red"}), 400, "unknown_field"),
        (json!({"url": 42}), 400, "invalid_field"),
        (json!({}), 400, "invalid_field"),
        (json!({"url": long_url}), 400, "invalid_field"),
        (json!({"url": url, "event_types": []}), 400, "invalid_field"),
        (
            json!({"url": url, "event_types": many}),
            400,
            "invalid_field",
        ),
        (
            json!({"url": url, "event_types": "order.created"}),
            400,
            "invalid_field",
        ),
        (
            json!({"url": url, "description": "d".repeat(501)}),
            400,
            "invalid_field",
        ),
        (
            json!({"url": url, "description": "a\u{0}b"}),
            400,
            "invalid_field",
        ),
        (json!({"url": url, "enabled": "yes"}), 400, "invalid_field"),
        (
            json!({"url": "http://93.184.215.14/"}),
            422,
            "validation_failed",
        ),
        (
            json!({"url": "ftp://93.184.215.14/"}),
            422,
            "validation_failed",
        ),
        (json!({"url": "not a url"}), 422, "validation_failed"),
        (
            json!({"url": "https://user:pw@93.184.215.14/"}),
            422,
            "validation_failed",
        ),
        (
            json!({"url": url, "event_types": ["order.created", "order.eaten"]}),
            422,
            "unknown_event_type",
        ),
        (
            json!({"url": url, "event_types": [""]}),
            422,
            "unknown_event_type",
        ),
    ];
    for (body, status, code) in cases {
        let problem = create(&app, &org.admin, &body).assert_problem(status, code);
        if code == "unknown_event_type" {
            assert!(
                problem["errors"][0]["field"]
                    .as_str()
                    .unwrap()
                    .starts_with("event_types[")
            );
        }
    }
    let res = app
        .request("POST", ENDPOINTS)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"url\": ".to_vec())
        .send();
    res.assert_problem(400, "malformed_json");
    assert_eq!(endpoint_count(&app), 0);

    // The same rules on a change, which then changes nothing.
    let created = ok(create(&app, &org.admin, &json!({"url": url})), 201);
    let path = endpoint_path(created["id"].as_str().unwrap());
    for (body, status, code) in [
        (
            json!({"url": "http://93.184.215.14/"}),
            422,
            "validation_failed",
        ),
        (json!({"event_types": ["nope"]}), 422, "unknown_event_type"),
        (json!({"secret": "whsec_x"}), 400, "unknown_field"),
        (json!({"event_types": []}), 400, "invalid_field"),
    ] {
        call(&app, "PATCH", &path, &org.admin, Some(&body)).assert_problem(status, code);
    }
    let after = ok(call(&app, "GET", &path, &org.admin, None), 200);
    assert_eq!(after["url"], url);
    assert_eq!(after["event_types"], json!(["*"]));
}

#[test]
fn internal_addresses_are_refused_without_the_operator_flag() {
    // Plain http is allowed here, so that the address rule is what refuses.
    let app = TestApp::spawn_with(Options {
        args: vec!["--webhook-allow-http".into()],
        ..Options::default()
    });
    let org = app.org("acme");
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://localhost/",
        "http://LOCALHOST:9000/x",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
        "http://192.168.1.1/",
        "http://0.0.0.0/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
    ] {
        let problem = create(&app, &org.admin, &json!({"url": url}))
            .assert_problem(422, "webhook_url_forbidden");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    assert_eq!(endpoint_count(&app), 0);
    // Nor through a change.
    let created = ok(
        create(&app, &org.admin, &json!({"url": "https://93.184.215.14/"})),
        201,
    );
    call(
        &app,
        "PATCH",
        &endpoint_path(created["id"].as_str().unwrap()),
        &org.admin,
        Some(&json!({"url": "http://127.0.0.1/"})),
    )
    .assert_problem(422, "webhook_url_forbidden");

    // The operator's allowed address passes; the rest of its range does not.
    let app = loopback_app();
    let org = app.org("acme");
    ok(
        create(&app, &org.admin, &json!({"url": "http://127.0.0.1:9/hook"})),
        201,
    );
    create(&app, &org.admin, &json!({"url": "http://127.0.0.2/"}))
        .assert_problem(422, "webhook_url_forbidden");
}

#[test]
fn only_the_organizations_admins_and_api_keys_manage_endpoints() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    // Disabled: the events below are not sent anywhere.
    let created = ok(
        create(
            &app,
            &acme.admin,
            &json!({"url": "https://93.184.215.14/", "enabled": false}),
        ),
        201,
    );
    let id = created["id"].as_str().unwrap();
    let path = endpoint_path(id);
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), Some(json!({"description": "x"}))),
        ("DELETE", path.clone(), None),
        ("POST", format!("{path}/secret-rotation"), None),
        ("POST", format!("{path}/test"), None),
        ("GET", format!("{path}/deliveries"), None),
        (
            "GET",
            format!("{path}/deliveries/whd_00000000000000000000"),
            None,
        ),
    ];
    // Another organization's admin: 404, nothing changed.
    for (method, path, body) in &routes {
        call(&app, method, path, &globex.admin, body.as_ref()).assert_problem(404, "not_found");
    }
    let list = ok(call(&app, "GET", ENDPOINTS, &globex.admin, None), 200);
    assert_eq!(list["data"], json!([]));

    // A customer: 403; nobody: 401; an agent: 403.
    let (_, customer) = app.registered_customer(&acme, "claire@example.com", None);
    let agent = staff_token(&app, &acme, "agent@acme.example.com", "agent");
    let mut all = routes.clone();
    all.push(("GET", ENDPOINTS.to_owned(), None));
    all.push((
        "POST",
        ENDPOINTS.to_owned(),
        Some(json!({"url": "https://93.184.215.14/"})),
    ));
    all.push((
        "POST",
        "/v1/admin/events/evt_00000000000000000000/redelivery".to_owned(),
        Some(json!({})),
    ));
    for (method, path, body) in &all {
        call(&app, method, path, &customer.access, body.as_ref()).assert_problem(403, "forbidden");
        call(&app, method, path, &agent, body.as_ref()).assert_problem(403, "forbidden");
        let anonymous = match body {
            Some(body) => app.request(method, path).json(body).send(),
            None => app.request(method, path).send(),
        };
        anonymous.assert_problem(401, "unauthenticated");
    }

    // An API key of the organization may.
    let key = ok(
        call(
            &app,
            "POST",
            "/v1/admin/api-keys",
            &acme.admin,
            Some(&json!({"name": "erp"})),
        ),
        201,
    )["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(call(&app, "GET", &path, &key, None), 200);
    ok(
        create(&app, &key, &json!({"url": "https://93.184.215.14/two"})),
        201,
    );
    assert_eq!(endpoint_count(&app), 2);
}

#[test]
fn the_delivery_log_pages_newest_first_and_filters_by_status() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    // Disabled: its deliveries wait, so nothing is sent anywhere.
    let created = ok(
        create(
            &app,
            &org.admin,
            &json!({"url": "https://93.184.215.14/", "enabled": false}),
        ),
        201,
    );
    let path = endpoint_path(created["id"].as_str().unwrap());
    let mut queued = Vec::new();
    for _ in 0..5 {
        app.clock.advance(chrono::Duration::seconds(1));
        let body = ok(
            call(&app, "POST", &format!("{path}/test"), &org.admin, None),
            202,
        );
        assert!(body["event_id"].as_str().unwrap().starts_with("evt_"));
        queued.push(body["delivery_id"].as_str().unwrap().to_owned());
    }
    queued.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_owned(),
        };
        let page = ok(
            call(
                &app,
                "GET",
                &format!("{path}/deliveries{query}"),
                &org.admin,
                None,
            ),
            200,
        );
        pages += 1;
        for d in page["data"].as_array().unwrap() {
            assert_eq!(d["status"], "pending");
            assert_eq!(d["event_type"], "ping");
            assert_eq!(d["attempts"], 0);
            assert_eq!(d["last_attempt"], Value::Null);
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, queued);
    let none = ok(
        call(
            &app,
            "GET",
            &format!("{path}/deliveries?status=succeeded"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(none["data"], json!([]));
    for query in [
        "?status=done",
        "?limit=0",
        "?limit=101",
        "?cursor=%%%",
        "?sort=asc",
    ] {
        call(
            &app,
            "GET",
            &format!("{path}/deliveries{query}"),
            &org.admin,
            None,
        )
        .assert_problem(400, "invalid_parameter");
    }
    let one = ok(
        call(
            &app,
            "GET",
            &format!("{path}/deliveries/{}", queued[0]),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(one["id"], queued[0].as_str());
    assert_eq!(one["attempts_log"], json!([]));
    call(
        &app,
        "GET",
        &format!("{path}/deliveries/whd_00000000000000000000"),
        &org.admin,
        None,
    )
    .assert_problem(404, "not_found");
    // Deleting the endpoint takes its log with it.
    ok(call(&app, "DELETE", &path, &org.admin, None), 204);
    use diesel::prelude::*;
    let mut conn = app.store.conn().unwrap();
    let left: i64 = guichet_store::schema::webhook_deliveries::table
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn the_dispatcher_delivers_signed_events_and_logs_each_attempt() {
    let app = loopback_app();
    let org = app.org("acme");
    let receiver = Receiver::start(vec![500]);
    let created = ok(
        create(
            &app,
            &org.admin,
            &json!({"url": receiver.url, "event_types": ["order.created"]}),
        ),
        201,
    );
    let secret = Secret::parse(created["secret"].as_str().unwrap()).unwrap();
    let path = endpoint_path(created["id"].as_str().unwrap());

    // The first attempt gets a 500: logged, retried about 5 s later.
    let ping = ok(
        call(&app, "POST", &format!("{path}/test"), &org.admin, None),
        202,
    );
    let event_id = ping["event_id"].as_str().unwrap().to_owned();
    let delivery = ping["delivery_id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for(1);
    assert_eq!(got.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = ok(
            call(
                &app,
                "GET",
                &format!("{path}/deliveries/{delivery}"),
                &org.admin,
                None,
            ),
            200,
        );
        if log["attempts"] == 1 || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log["status"], "pending", "{log}");
    let first = &log["attempts_log"][0];
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["outcome"], "failed");
    assert_eq!(first["http_status"], 500);
    assert_eq!(first["response"], "received");
    assert_eq!(first["error"], Value::Null);
    let retry = chrono::DateTime::parse_from_rfc3339(log["next_attempt_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let now = app.clock.now();
    assert!(
        retry >= now + chrono::Duration::milliseconds(4500),
        "{retry}"
    );
    assert!(
        retry <= now + chrono::Duration::milliseconds(5500),
        "{retry}"
    );

    // Once due, it is sent again and succeeds.
    app.clock.advance(chrono::Duration::seconds(6));
    let got = receiver.wait_for(2);
    assert_eq!(got.len(), 2);
    for request in &got {
        assert_eq!(request.path, "/hook");
        assert_eq!(request.header("webhook-id"), Some(event_id.as_str()));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("user-agent"), Some("Guichet-Webhooks/1"));
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let signature = request.header("webhook-signature").unwrap();
        assert!(verify(
            &secret,
            &event_id,
            timestamp,
            &request.body,
            signature
        ));
        let body = request.json();
        assert_eq!(body["id"], event_id.as_str());
        assert_eq!(body["type"], "ping");
        assert_eq!(body["object"]["id"], created["id"]);
        assert_eq!(body["data"]["url"], receiver.url.as_str());
        assert!(body["data"].get("secret").is_none());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = ok(
            call(&app, "GET", &format!("{path}/deliveries"), &org.admin, None),
            200,
        );
        if log["data"][0]["status"] == "succeeded" || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let item = &log["data"][0];
    assert_eq!(item["status"], "succeeded", "{log}");
    assert_eq!(item["attempts"], 2);
    assert_eq!(item["next_attempt_at"], Value::Null);
    assert_eq!(item["last_attempt"]["http_status"], 200);
    assert_eq!(item["last_attempt"]["outcome"], "succeeded");

    // A redelivery sends it once more, with the same webhook-id.
    let again = ok(
        call(
            &app,
            "POST",
            &format!("/v1/admin/events/{event_id}/redelivery"),
            &org.admin,
            Some(&json!({"endpoint_id": created["id"]})),
        ),
        202,
    );
    assert_eq!(again["data"].as_array().unwrap().len(), 1);
    let got = receiver.wait_for(3);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].header("webhook-id"), Some(event_id.as_str()));
    // Without endpoint_id: the endpoints subscribed to `ping` (none here).
    let none = ok(
        call(
            &app,
            "POST",
            &format!("/v1/admin/events/{event_id}/redelivery"),
            &org.admin,
            Some(&json!({})),
        ),
        202,
    );
    assert_eq!(none["data"], json!([]));
    // Another organization's event or endpoint: 404.
    let globex = app.org("globex");
    call(
        &app,
        "POST",
        &format!("/v1/admin/events/{event_id}/redelivery"),
        &globex.admin,
        Some(&json!({})),
    )
    .assert_problem(404, "not_found");
    let theirs = ok(
        create(&app, &globex.admin, &json!({"url": receiver.url})),
        201,
    );
    call(
        &app,
        "POST",
        &format!("/v1/admin/events/{event_id}/redelivery"),
        &org.admin,
        Some(&json!({"endpoint_id": theirs["id"]})),
    )
    .assert_problem(404, "not_found");

    let metrics = app.get("/metrics").text();
    assert!(
        metrics.contains("guichet_webhook_deliveries_total{outcome=\"succeeded\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("guichet_webhook_deliveries_total{outcome=\"retrying\"} 1"));
    assert!(metrics.contains("guichet_webhook_queue_depth 0"));
    assert!(metrics.contains("guichet_webhook_oldest_pending_seconds 0"));
}

#[test]
fn concurrent_dispatchers_send_each_delivery_once() {
    let app = loopback_app();
    let org = app.org("acme");
    let receiver = Receiver::start(Vec::new());
    let created = ok(
        create(
            &app,
            &org.admin,
            &json!({"url": receiver.url, "enabled": false}),
        ),
        201,
    );
    let path = endpoint_path(created["id"].as_str().unwrap());
    // 40 pings queued at once by concurrent requests, while disabled.
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|_| {
                s.spawn(|| {
                    ok(
                        call(&app, "POST", &format!("{path}/test"), &org.admin, None),
                        202,
                    )["event_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 40);
    // Three more dispatchers on the same database race the server's.
    let settings = guichet_jobs::webhooks::Settings {
        policy: guichet_domain::webhooks::AddressPolicy::new(vec!["127.0.0.1".parse().unwrap()]),
        allow_http: true,
        batch: 7,
        ..guichet_jobs::webhooks::Settings::default()
    };
    let run = guichet_jobs::webhooks::WebhookRun::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        guichet_jobs::notify::OutboxKey::derive(guichet_tests::TEST_SECRET_KEY.as_bytes()),
        settings,
        Arc::default(),
    );
    ok(
        call(
            &app,
            "PATCH",
            &path,
            &org.admin,
            Some(&json!({"enabled": true})),
        ),
        200,
    );
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| run.run().unwrap());
        }
    });
    let got = receiver.wait_for(40);
    std::thread::sleep(Duration::from_millis(300));
    let got_after = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 40);
    assert_eq!(got_after.len(), 40, "a delivery was sent twice");
    let delivered: HashSet<&str> = got_after
        .iter()
        .map(|g| g.header("webhook-id").unwrap())
        .collect();
    assert_eq!(delivered, ids.iter().map(String::as_str).collect());
}

#[test]
fn one_endpoints_deliveries_arrive_in_the_order_of_their_events() {
    let app = loopback_app();
    let org = app.org("acme");
    let receiver = Receiver::start(Vec::new());
    let created = ok(
        create(
            &app,
            &org.admin,
            &json!({"url": receiver.url, "enabled": false}),
        ),
        201,
    );
    let path = endpoint_path(created["id"].as_str().unwrap());
    // Queued at the same instant (the test clock stands still).
    let events: Vec<String> = (0..30)
        .map(|_| {
            ok(
                call(&app, "POST", &format!("{path}/test"), &org.admin, None),
                202,
            )["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ok(
        call(
            &app,
            "PATCH",
            &path,
            &org.admin,
            Some(&json!({"enabled": true})),
        ),
        200,
    );
    let got: Vec<String> = receiver
        .wait_for(30)
        .iter()
        .map(|g| g.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(got, events);
}

#[test]
fn an_endpoint_failing_for_three_days_is_disabled_and_its_admins_told() {
    // The retry delays and the 3 days are scaled down: 3 days = 2.6 s.
    let app = TestApp::spawn_with(Options {
        args: vec![
            "--webhook-allow-http".into(),
            "--webhook-allow-address".into(),
            "127.0.0.1".into(),
            "--webhook-backoff-scale".into(),
            "0.00001".into(),
        ],
        ..Options::default()
    });
    let org = app.org("acme");
    let receiver = Receiver::start(vec![503; 50]);
    let created = ok(create(&app, &org.admin, &json!({"url": receiver.url})), 201);
    let path = endpoint_path(created["id"].as_str().unwrap());
    let ping = ok(
        call(&app, "POST", &format!("{path}/test"), &org.admin, None),
        202,
    );
    let delivery = ping["delivery_id"].as_str().unwrap();
    assert_eq!(receiver.wait_for(1).len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let failing = loop {
        let endpoint = ok(call(&app, "GET", &path, &org.admin, None), 200);
        if !endpoint["failing_since"].is_null() || Instant::now() > deadline {
            break endpoint;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(failing["failing_since"], "2026-11-22T09:00:00Z");
    assert_eq!(failing["enabled"], true);

    // A minute later (20 000 scaled minutes): tried again, given up, and
    // the endpoint disabled.
    app.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(receiver.wait_for(2).len(), 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let disabled = loop {
        let endpoint = ok(call(&app, "GET", &path, &org.admin, None), 200);
        if endpoint["enabled"] == false || Instant::now() > deadline {
            break endpoint;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert_eq!(disabled["disabled_reason"], "failing");
    let log = ok(
        call(
            &app,
            "GET",
            &format!("{path}/deliveries/{delivery}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(log["status"], "failed");
    assert_eq!(log["attempts"], 2);
    assert_eq!(log["next_attempt_at"], Value::Null);
    assert_eq!(log["attempts_log"][1]["next_retry_at"], Value::Null);
    let mail = app
        .wait_for_messages(&org.admin_email, 1)
        .into_iter()
        .find(|m| m.subject.contains("webhook"))
        .expect("the admin is told");
    assert!(mail.body.contains(&receiver.url), "{}", mail.body);

    // Nothing more is sent to it; enabling it again clears the failure.
    ok(
        call(&app, "POST", &format!("{path}/test"), &org.admin, None),
        202,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.got.lock().unwrap().len(), 2);
    let enabled = ok(
        call(
            &app,
            "PATCH",
            &path,
            &org.admin,
            Some(&json!({"enabled": true})),
        ),
        200,
    );
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(enabled["failing_since"], Value::Null);
    assert_eq!(receiver.wait_for(3).len(), 3);
}
