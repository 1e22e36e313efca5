//! Webhooks as a receiver sees them: a server on 127.0.0.1 (allowed by
//! `--webhook-allow-address`) records every request, answers by script,
//! and checks each signature with the Standard Webhooks verification of
//! `guichet_tests::webhooks`, which shares no code with the server's
//! signing.

use std::time::{Duration, Instant};

use guichet_tests::identity::Org;
use guichet_tests::webhooks::{Received, Receiver, Reply, VerifyError};
use guichet_tests::{Options, Response, TestApp};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

/// A test server that may deliver to 127.0.0.1 over plain HTTP, with the
/// retry delays shortened a thousandfold (5 s → 5 ms of its clock).
fn app() -> TestApp {
    app_with(&[])
}

fn app_with(extra: &[&str]) -> TestApp {
    let mut args: Vec<String> = [
        "--webhook-allow-http",
        "--webhook-allow-address",
        "127.0.0.1",
        "--webhook-backoff-scale",
        "0.001",
        "--webhook-interval-ms",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    TestApp::spawn_with(Options {
        args,
        ..Options::default()
    })
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    }
}

fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Response {
    app.request("POST", path).bearer(token).json(body).send()
}

fn get(app: &TestApp, token: &str, path: &str) -> Response {
    app.request("GET", path).bearer(token).send()
}

/// Creates an endpoint of `org` at `url` for `types`; returns its id and
/// signing secret.
fn endpoint(app: &TestApp, org: &Org, url: &str, types: &[&str]) -> (String, String) {
    let created = ok(
        post(
            app,
            &org.admin,
            "/v1/admin/webhook-endpoints",
            &json!({"url": url, "event_types": types, "description": "test receiver"}),
        ),
        201,
    );
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    (created["id"].as_str().unwrap().to_owned(), secret)
}

/// The server's clock in unix seconds (the timestamps it signs).
fn now(app: &TestApp) -> i64 {
    guichet_domain::Clock::now(&app.clock).timestamp()
}

/// Waits up to 20 s for `done` over the receiver's requests, moving the
/// server's clock on by `step` every 10 ms meanwhile (retries are due by
/// that clock); returns the requests.
fn pump(
    app: &TestApp,
    receiver: &Receiver,
    step: chrono::Duration,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let requests = receiver.requests();
        if done(&requests) || Instant::now() > deadline {
            return requests;
        }
        app.clock.advance(step);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts `request` verifies under `secret` at the server's clock, and is
/// a well-formed delivery of a JSON event; returns the event.
fn verified(app: &TestApp, request: &Received, secret: &str) -> Value {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.verify(secret, now(app)),
        Ok(()),
        "signature of {} ({:?})",
        request.webhook_id(),
        request.headers
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("Guichet-Webhooks/1"));
    let event = request.json();
    assert_eq!(event["id"], request.webhook_id(), "{event}");
    assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
    event
}

/// Creates a customer (which records `customer.created`); returns its id.
fn new_customer(app: &TestApp, org: &Org, email: &str) -> String {
    app.customer(org, email, None)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn deliveries(app: &TestApp, org: &Org, endpoint: &str) -> Vec<Value> {
    ok(
        get(
            app,
            &org.admin,
            &format!("/v1/admin/webhook-endpoints/{endpoint}/deliveries"),
        ),
        200,
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The delivery log of an endpoint once no delivery is pending (waiting
/// up to 10 s for the dispatcher to record what the receiver answered).
fn settled_log(app: &TestApp, org: &Org, endpoint: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(app, org, endpoint);
        if log.iter().all(|d| d["status"] != "pending") || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// -------------------------------------------------------------------- tests

#[test]
fn a_receiver_failing_twice_gets_the_event_three_times_under_one_id_and_the_log_shows_it() {
    let app = app();
    let org = app.org("acme");
    let receiver = Receiver::scripted(
        vec![Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    );
    let (id, secret) = endpoint(&app, &org, &receiver.url, &["customer.created"]);
    let customer = new_customer(&app, &org, "ada@example.com");

    let got = pump(&app, &receiver, chrono::Duration::milliseconds(500), |r| {
        r.len() >= 3
    });
    assert_eq!(got.len(), 3, "{got:?}");
    let first = verified(&app, &got[0], &secret);
    assert_eq!(first["type"], "customer.created");
    assert_eq!(first["object"]["id"], customer);
    for request in &got[1..] {
        let event = verified(&app, request, &secret);
        assert_eq!(request.webhook_id(), got[0].webhook_id());
        assert_eq!(request.body, got[0].body, "the same body every attempt");
        assert_eq!(event, first);
    }
    // Each attempt carries its own timestamp, signed with it.
    let stamps: Vec<i64> = got
        .iter()
        .map(|r| r.header("webhook-timestamp").unwrap().parse().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    // Nothing more comes.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.requests().len(), 3);

    let log = settled_log(&app, &org, &id);
    assert_eq!(log.len(), 1, "{log:?}");
    let delivery = &log[0];
    assert_eq!(delivery["event_id"], got[0].webhook_id());
    assert_eq!(delivery["event_type"], "customer.created");
    assert_eq!(delivery["status"], "succeeded");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(delivery["last_attempt"]["attempt"], 3);
    assert_eq!(delivery["last_attempt"]["http_status"], 200);
    assert_eq!(delivery["last_attempt"]["outcome"], "succeeded");
    let detail = ok(
        get(
            &app,
            &org.admin,
            &format!(
                "/v1/admin/webhook-endpoints/{id}/deliveries/{}",
                delivery["id"].as_str().unwrap()
            ),
        ),
        200,
    );
    let attempts = attempts_of(&detail);
    let seen: Vec<(i64, &str, i64)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["outcome"].as_str().unwrap(),
                a["http_status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "failed", 500),
            (2, "failed", 500),
            (3, "succeeded", 200)
        ],
        "{detail}"
    );
    // The failed attempts say when the next one was due; the answer is kept.
    assert!(attempts[0]["next_retry_at"].is_string(), "{detail}");
    assert!(attempts[1]["next_retry_at"].is_string(), "{detail}");
    assert_eq!(attempts[2]["next_retry_at"], Value::Null);
    assert_eq!(attempts[0]["response"], "answered 500");
    assert_eq!(attempts[2]["response"], "answered 200");
}

/// The attempts of a delivery's detail, oldest first.
fn attempts_of(detail: &Value) -> Vec<Value> {
    let list = detail["attempt_log"]
        .as_array()
        .or_else(|| detail["attempts_log"].as_array())
        .or_else(|| detail["attempts"].as_array())
        .unwrap_or_else(|| panic!("no attempts in {detail}"));
    let mut list = list.clone();
    list.sort_by_key(|a| a["attempt"].as_i64());
    list
}

#[test]
fn a_receiver_that_hangs_is_cut_at_fifteen_seconds_and_tried_again() {
    // The production timeout, measured: no flag shortens it here.
    let app = app();
    let org = app.org("acme");
    let receiver = Receiver::scripted(
        vec![Reply::Hang(Duration::from_secs(40))],
        Reply::Status(200),
    );
    let (id, secret) = endpoint(&app, &org, &receiver.url, &["*"]);
    let test = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/webhook-endpoints/{id}/test"),
            &json!({}),
        ),
        202,
    );
    let first = receiver.wait_for(1, Duration::from_secs(10));
    let arrived = first[0].at;
    verified(&app, &first[0], &secret);
    // The attempt is recorded as failed once the client gives up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let log = deliveries(&app, &org, &id);
        if log[0]["attempts"].as_i64() >= Some(1) {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "no attempt recorded: {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let cut_after = arrived.elapsed();
    assert_eq!(delivery["event_id"], test["event_id"]);
    assert_eq!(delivery["status"], "pending", "{delivery}");
    let last = &delivery["last_attempt"];
    assert_eq!(last["outcome"], "failed", "{delivery}");
    assert_eq!(last["http_status"], Value::Null, "{delivery}");
    assert!(
        last["error"].as_str().is_some_and(|e| e.contains("time")),
        "{delivery}"
    );
    let latency = last["latency_ms"].as_i64().unwrap();
    assert!(
        (14_500..17_000).contains(&latency),
        "cut after {latency} ms, not 15 s"
    );
    assert!(
        cut_after < Duration::from_secs(20),
        "recorded {cut_after:?} after the request arrived"
    );
    // The retry gets through, under the same id.
    let got = pump(&app, &receiver, chrono::Duration::seconds(1), |r| {
        r.len() >= 2
    });
    assert_eq!(got.len(), 2);
    verified(&app, &got[1], &secret);
    assert_eq!(got[1].webhook_id(), got[0].webhook_id());
}

#[test]
fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one() {
    let app = app();
    let org = app.org("acme");
    let receiver = Receiver::start();
    let (id, old) = endpoint(&app, &org, &receiver.url, &["customer.created"]);
    let rotated = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/webhook-endpoints/{id}/secret-rotation"),
            &json!({}),
        ),
        200,
    );
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated}");

    new_customer(&app, &org, "ada@example.com");
    let got = receiver.wait_for(1, Duration::from_secs(10));
    let request = &got[0];
    // Two signatures, each verifying under its own secret alone.
    let header = request.header("webhook-signature").unwrap();
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(header.split(' ').all(|s| s.starts_with("v1,")), "{header}");
    verified(&app, request, &old);
    verified(&app, request, &new);
    for secret in [&old, &new] {
        let key = guichet_tests::webhooks::secret_key(secret).unwrap();
        let stamp: i64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let one = guichet_tests::webhooks::sign(&key, request.webhook_id(), stamp, &request.body);
        assert!(header.split(' ').any(|s| s == one), "{header}");
    }

    // A day later the old secret is no longer used.
    app.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    let admin = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": org.slug, "email": org.admin_email,
                      "password": guichet_tests::identity::PASSWORD}))
        .send();
    let org = Org {
        admin: ok(admin, 200)["access_token"].as_str().unwrap().to_owned(),
        ..org
    };
    new_customer(&app, &org, "bob@example.com");
    let got = receiver.wait_for(2, Duration::from_secs(10));
    let request = &got[1];
    assert_eq!(
        request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    verified(&app, request, &new);
    assert_eq!(
        request.verify(&old, now(&app)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn a_test_ping_and_a_redelivery_arrive_signed_under_the_events_id() {
    let app = app();
    let org = app.org("acme");
    let receiver = Receiver::start();
    let other = Receiver::start();
    let (id, secret) = endpoint(&app, &org, &receiver.url, &["*"]);
    let (other_id, other_secret) = endpoint(&app, &org, &other.url, &["customer.created"]);

    // The ping goes to its endpoint only.
    let test = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/webhook-endpoints/{id}/test"),
            &json!({}),
        ),
        202,
    );
    let event_id = test["event_id"].as_str().unwrap();
    assert!(test["delivery_id"].as_str().unwrap().starts_with("whd_"));
    let got = receiver.wait_for(1, Duration::from_secs(10));
    let ping = verified(&app, &got[0], &secret);
    assert_eq!(ping["type"], "ping");
    assert_eq!(ping["id"], event_id);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        other.requests().is_empty(),
        "the ping went to another endpoint"
    );

    // An event both endpoints want, delivered once to each.
    new_customer(&app, &org, "ada@example.com");
    let got = receiver.wait_for(2, Duration::from_secs(10));
    let created = verified(&app, &got[1], &secret);
    assert_eq!(created["type"], "customer.created");
    let event_id = created["id"].as_str().unwrap().to_owned();
    let got_other = other.wait_for(1, Duration::from_secs(10));
    verified(&app, &got_other[0], &other_secret);
    assert_eq!(got_other[0].webhook_id(), event_id);

    // Redelivered to one endpoint: it comes again there only, same id, same body.
    let queued = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/events/{event_id}/redelivery"),
            &json!({"endpoint_id": other_id}),
        ),
        202,
    );
    assert!(queued.to_string().contains("whd_"), "{queued}");
    let got_other = other.wait_for(2, Duration::from_secs(10));
    verified(&app, &got_other[1], &other_secret);
    assert_eq!(got_other[1].webhook_id(), event_id);
    assert_eq!(got_other[1].body, got_other[0].body);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.requests().len(), 2);

    // Redelivered to every subscribed endpoint.
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/events/{event_id}/redelivery"),
            &json!({}),
        ),
        202,
    );
    let got = receiver.wait_for(3, Duration::from_secs(10));
    let got_other = other.wait_for(3, Duration::from_secs(10));
    assert_eq!(got[2].webhook_id(), event_id);
    assert_eq!(got_other[2].webhook_id(), event_id);
    verified(&app, &got[2], &secret);
    verified(&app, &got_other[2], &other_secret);
    // The log: the ping, the event, its redelivery (recorded once the
    // dispatcher's batch is done, just after the receiver answered).
    let log = settled_log(&app, &org, &id);
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|d| d["status"] == "succeeded"), "{log:?}");
    assert_eq!(settled_log(&app, &org, &other_id).len(), 3);
}

// ------------------------------------------------------- every event type

/// Waits until the receiver holds an event of each of `types`, then checks
/// every request not checked yet (from `from` on) at the server's clock
/// now: signed under `secret`, `webhook-id` = the event's id, the object of
/// the type's kind. Returns the number of requests checked so far.
fn verify_arrivals(
    app: &TestApp,
    receiver: &Receiver,
    secret: &str,
    from: usize,
    types: &[&str],
) -> usize {
    let got = receiver.wait_until(Duration::from_secs(30), |r| {
        types
            .iter()
            .all(|t| r.iter().any(|req| req.event_type() == *t))
    });
    for t in types {
        assert!(
            got.iter().any(|r| r.event_type() == *t),
            "no {t} arrived; got {:?}",
            got.iter().map(Received::event_type).collect::<Vec<_>>()
        );
    }
    // The rest of this phase's deliveries too, before the test moves the
    // server's clock on: each is verified at the time it was signed.
    let got = drained(app, receiver);
    for request in &got[from..] {
        let event = verified(app, request, secret);
        let kind = guichet_domain::events::EventType::parse(event["type"].as_str().unwrap())
            .unwrap_or_else(|| panic!("an unknown type: {event}"));
        assert_eq!(event["object"]["type"], kind.object_type(), "{event}");
        assert!(event["object"]["id"].is_string(), "{event}");
        assert!(event["data"].is_object(), "{event}");
        assert!(event["created_at"].is_string(), "{event}");
    }
    got.len()
}

/// The receiver's requests once the server has no delivery left pending
/// (at most 30 s).
fn drained(app: &TestApp, receiver: &Receiver) -> Vec<Received> {
    use diesel::prelude::*;
    use guichet_store::schema::webhook_deliveries;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq("pending"))
            .count()
            .get_result(&mut app.store.conn().unwrap())
            .unwrap();
        if pending == 0 || Instant::now() > deadline {
            return receiver.requests();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sandbox(app: &TestApp) -> std::sync::Arc<guichet_gateway::SandboxGateway> {
    std::sync::Arc::new(guichet_gateway::SandboxGateway::with_token_key(
        app.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
        guichet_tests::TEST_SECRET_KEY.as_bytes(),
    ))
}

fn tokenize(app: &TestApp, number: &str) -> String {
    ok(
        app.request("POST", "/v1/sandbox/card-tokens")
            .json(&json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}))
            .send(),
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creditor settings, and an account of `customer` owing 100.00 EUR.
fn seed_sepa(app: &TestApp, org: &Org, customer: &str) -> String {
    use diesel::prelude::*;
    use guichet_store::schema::{accounts, creditor_settings};
    let mut conn = app.store.conn().unwrap();
    let now = guichet_domain::Clock::now(&app.clock).naive_utc();
    diesel::insert_into(creditor_settings::table)
        .values((
            creditor_settings::org_id.eq(&org.id),
            creditor_settings::name.eq("Régie du Parc"),
            creditor_settings::address.eq("12 rue des Lilas\n75011 Paris"),
            creditor_settings::creditor_id.eq("FR72ZZZ123456"),
            creditor_settings::iban.eq("FR7630006000011234567890189"),
            creditor_settings::bic.eq("AGRIFRPP"),
            creditor_settings::prenotification_days.eq(2),
            creditor_settings::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    let account = guichet_domain::ids::new_id("acc");
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&account),
            accounts::org_id.eq(&org.id),
            accounts::customer_id.eq(customer),
            accounts::label.eq("Loyer"),
            accounts::reference.eq(guichet_domain::ids::new_id("REF")),
            accounts::balance.eq(10_000),
            accounts::currency.eq("EUR"),
            accounts::created_at.eq(now),
            accounts::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    account
}

#[test]
fn every_event_type_reaches_the_receiver_signed() {
    use guichet_domain::Clock;
    use guichet_domain::gateway::test_cards;
    use guichet_domain::schedule::InstalmentStatus;
    use guichet_store::repo::collections::{self, Collection};
    use guichet_store::repo::schedules;

    let app = app();
    let org = app.org("acme");
    let receiver = Receiver::start();
    let (endpoint_id, secret) = endpoint(&app, &org, &receiver.url, &["*"]);
    let today = app.clock.today();
    let gateway = sandbox(&app);

    // ping
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/webhook-endpoints/{endpoint_id}/test"),
            &json!({}),
        ),
        202,
    );

    // customer.created, customer.updated, customer.blocked, customer.unblocked
    let other = new_customer(&app, &org, "lea@example.com");
    let path = format!("/v1/admin/customers/{other}");
    ok(
        app.request("PATCH", &path)
            .bearer(&org.admin)
            .json(&json!({"name": "Léa Martin"}))
            .send(),
        200,
    );
    ok(
        post(&app, &org.admin, &format!("{path}/block"), &json!({})),
        200,
    );
    ok(
        post(&app, &org.admin, &format!("{path}/unblock"), &json!({})),
        200,
    );

    // order.created, by staff.
    let (payer, tokens) = app.registered_customer(&org, "paul@example.com", Some("+33612345678"));
    ok(
        post(
            &app,
            &org.admin,
            "/v1/admin/orders",
            &json!({
                "customer_id": payer,
                "order_number": "CMD-WH-1",
                "merchant_brand": "Maison & Jardin",
                "purchase_date": "2026-11-20",
                "total": {"amount": 30000, "currency": "EUR"},
                "instalments": 3,
                "first_due_date": "2026-12-05",
                "card_token": tokenize(&app, test_cards::VISA),
            }),
        ),
        201,
    );

    // schedule.card_changed, by the customer.
    let later = app.seed_order(
        &org.id,
        &payer,
        30_000,
        3,
        today + chrono::Duration::days(20),
        test_cards::VISA,
    );
    ok(
        app.request("PUT", &format!("/v1/me/schedules/{later}/card"))
            .bearer(&tokens.access)
            .json(&json!({"card_token": tokenize(&app, test_cards::MASTERCARD)}))
            .send(),
        200,
    );

    // schedule.regularized: an unpaid instalment paid at once.
    let unpaid = app.seed_order(
        &org.id,
        &payer,
        30_000,
        3,
        today - chrono::Duration::days(21),
        test_cards::VISA,
    );
    {
        let mut conn = app.store.conn().unwrap();
        let mut order = schedules::get(&mut conn, &org.id, &unpaid).unwrap();
        order.schedule.instalment_mut(1).unwrap().status = InstalmentStatus::Unpaid;
        schedules::save_schedule(&mut conn, &mut order, chrono::Utc::now()).unwrap();
    }
    ok(
        app.request("POST", &format!("/v1/me/schedules/{unpaid}/regularization"))
            .bearer(&tokens.access)
            .header("idempotency-key", "wh-regularization-1")
            .json(&json!({"payments": 1, "card_token": tokenize(&app, test_cards::MASTERCARD)}))
            .send(),
        200,
    );

    // mandate.signed: drafted and signed by the customer with an SMS code.
    let account = seed_sepa(&app, &org, &payer);
    let draft = ok(
        app.request("POST", &format!("/v1/me/accounts/{account}/mandates"))
            .bearer(&tokens.access)
            .json(&json!({"iban": "FR76 3000 6000 0112 3456 7890 189"}))
            .send(),
        201,
    );
    let mandate = draft["id"].as_str().unwrap().to_owned();
    let before = app.wait_for_messages("+33612345678", 0).len();
    ok(
        app.request("POST", &format!("/v1/me/mandates/{mandate}/otp"))
            .bearer(&tokens.access)
            .json(&json!({"channel": "sms"}))
            .send(),
        202,
    );
    let code = app.nth_message("+33612345678", before + 1).code(6).unwrap();
    ok(
        app.request("POST", &format!("/v1/me/mandates/{mandate}/signature"))
            .bearer(&tokens.access)
            .json(&json!({"code": code}))
            .send(),
        200,
    );

    // collection.presented (the SEPA step of a run), collection.paid,
    // collection.rejected (the bank's results), mandate.revoked.
    let now = app.clock.now();
    let mut presented = Vec::new();
    for _ in 0..2 {
        let c = Collection::scheduled(
            &org.id,
            &mandate,
            &account,
            guichet_domain::sepa::pain008::SequenceType::First,
            1_000,
            today,
            Some(now),
            now,
        );
        collections::insert(&mut app.store.conn().unwrap(), &c).unwrap();
        presented.push(c.id);
    }
    guichet_jobs::sepa::SepaRun::new(app.store.clone(), std::sync::Arc::new(app.clock.clone()))
        .run(today)
        .unwrap();
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/sepa/collections/{}/result", presented[0]),
            &json!({"outcome": "paid"}),
        ),
        200,
    );
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/sepa/collections/{}/result", presented[1]),
            &json!({"outcome": "rejected", "reason": "AM04"}),
        ),
        200,
    );
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/mandates/{mandate}/revocation"),
            &json!({}),
        ),
        200,
    );

    // instalment.paid and instalment.failed (a debit run), order.cancelled
    // by staff, refund.paid and refund.failed (a refunds run).
    let refunded = app.seed_order(&org.id, &payer, 20_000, 2, today, test_cards::VISA);
    let refused = app.seed_order(&org.id, &payer, 20_000, 2, today, test_cards::REFUND_FAILS);
    let poor = app.seed_order(
        &org.id,
        &payer,
        20_000,
        2,
        today,
        test_cards::INSUFFICIENT_FUNDS,
    );
    let debit = |app: &TestApp| {
        guichet_jobs::debit::DebitRun::new(
            app.store.clone(),
            gateway.clone(),
            std::sync::Arc::new(app.clock.clone()),
        )
        .run(app.clock.today(), 100)
        .unwrap()
    };
    let report = debit(&app);
    assert_eq!(report.paid, 2, "{report:?}");
    for order in [&refunded, &refused] {
        ok(
            post(
                &app,
                &org.admin,
                &format!("/v1/admin/orders/{order}/cancellations"),
                &json!({"amount": {"amount": 20000, "currency": "EUR"}}),
            ),
            201,
        );
    }
    guichet_jobs::refunds::RefundRun::new(
        app.store.clone(),
        gateway.clone(),
        std::sync::Arc::new(app.clock.clone()),
    )
    .run()
    .unwrap();

    let before_unpaid = verify_arrivals(
        &app,
        &receiver,
        &secret,
        0,
        &[
            "ping",
            "customer.created",
            "customer.updated",
            "customer.blocked",
            "customer.unblocked",
            "order.created",
            "order.cancelled",
            "schedule.card_changed",
            "schedule.regularized",
            "instalment.paid",
            "instalment.failed",
            "refund.paid",
            "refund.failed",
            "mandate.signed",
            "mandate.revoked",
            "collection.presented",
            "collection.paid",
            "collection.rejected",
        ],
    );

    // schedule.unpaid: the retry three days later fails too.
    app.clock.advance(chrono::Duration::days(3));
    let report = debit(&app);
    assert_eq!(report.unpaid, 1, "{report:?} ({poor})");
    let after_unpaid = verify_arrivals(
        &app,
        &receiver,
        &secret,
        before_unpaid,
        &["schedule.unpaid"],
    );

    // The admin's token died with the three days: signed in again. The
    // portal's documents and messages are on, and a customer signs up.
    let org = Org {
        admin: relogin(&app, &org),
        ..org.clone()
    };
    ok(
        app.request("PUT", "/v1/admin/portal/settings")
            .bearer(&org.admin)
            .json(&crate::messages::portal_settings(&org.slug, true, None))
            .send(),
        200,
    );
    let (reader, reader_tokens) = app.registered_customer(&org, "nina@example.com", None);

    // document.shared, then document.withdrawn, by staff.
    let document = ok(
        crate::documents::share(
            &app,
            &org.admin,
            &reader,
            "Compte rendu",
            "application/pdf",
            crate::documents::PDF,
        ),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        app.request("DELETE", &format!("/v1/admin/documents/{document}"))
            .bearer(&org.admin)
            .send(),
        200,
    );

    // conversation.created and message.created, by the customer;
    // conversation.closed and conversation.reopened, by staff.
    let conversation = ok(
        post(
            &app,
            &reader_tokens.access,
            "/v1/me/conversations",
            &json!({"subject": "Rendez-vous", "body": "Bonjour, une question."}),
        ),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let closed = ok(
        app.request(
            "POST",
            &format!("/v1/admin/conversations/{conversation}/close"),
        )
        .bearer(&org.admin)
        .send(),
        200,
    );
    assert_eq!(closed["status"], "closed");
    let reopened = ok(
        app.request(
            "POST",
            &format!("/v1/admin/conversations/{conversation}/reopen"),
        )
        .bearer(&org.admin)
        .send(),
        200,
    );
    assert_eq!(reopened["status"], "open");

    // consent.invitation_sent (ordered by staff), consent.opened (the
    // link), consent.failed (the bank refused), consent.activated (the
    // card again, the bank authenticated).
    use crate::consents::{bank, card, consent, link, office_of, order, public, verified, visa};
    let office = office_of(&app, org.clone());
    let anne = "anne@example.com";
    let activated = order(&app, &office, anne, "+32470123467")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link(&app, anne, 1);
    let welcome = public(&app, "GET", &format!("/v1/consents/{token}"), None);
    assert_eq!(welcome.status, 200, "{}", welcome.text());
    let step = verified(&app, &token, "+32470123467", 0);
    let completion = format!("/v1/consents/{token}/completion");
    let to_bank = |step: &str| {
        ok(card(&app, &token, step, &visa()), 202)["next_action"]["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    bank(&app, &to_bank(&step), "card_blocked");
    let refused =
        public(&app, "POST", &completion, None).assert_problem(422, "bank_authentication_failed");
    let step = refused["step_token"].as_str().unwrap().to_owned();
    bank(&app, &to_bank(&step), "succeeded");
    assert_eq!(
        ok(public(&app, "POST", &completion, None), 200)["status"],
        "active"
    );
    assert_eq!(consent(&app, &org, &activated)["status"], "active");

    // consent.revoked, by staff.
    let revoked = order(&app, &office, "bruno@example.com", "+32470123468")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ok(
            post(
                &app,
                &org.admin,
                &format!("/v1/admin/consents/{revoked}/revocation"),
                &json!({}),
            ),
            200,
        )["status"],
        "revoked"
    );

    // A third consent, left to expire.
    let carla = "carla@example.com";
    let expiring = order(&app, &office, carla, "+32470123469")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expiring_token = link(&app, carla, 1);

    // booking.requested (a request held for approval), booking.confirmed
    // (approved), booking.rescheduled (by the customer), booking.declined,
    // booking.cancelled, booking.completed and booking.no_show (by staff,
    // on bookings staff made an hour ago), booking.reminder_sent (the job,
    // for a booking in two hours).
    use crate::bookings::{book, cabinet_of};
    let cab = cabinet_of(
        &app,
        org.clone(),
        1,
        json!({"confirmation": "manual", "max_pending": 5}),
    );
    let staff_action = |id: &str, action: &str, body: Value| {
        ok(
            post(
                &app,
                &org.admin,
                &format!("/v1/admin/bookings/{id}/{action}"),
                &body,
            ),
            200,
        )
    };
    // The clock moved since Paul signed in: a fresh session.
    let paul = ok(
        app.login(&org, "paul@example.com", guichet_tests::identity::PASSWORD),
        200,
    )["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = app.clock.now();
    let day = |days: i64, hour: u32| {
        let date = (now + chrono::Duration::days(days)).date_naive();
        let mut d = date;
        while matches!(
            chrono::Datelike::weekday(&d),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ) {
            d = d.succ_opt().unwrap();
        }
        // 09:00 Paris is 08:00Z in winter.
        d.and_hms_opt(hour, 0, 0).unwrap().and_utc()
    };
    let requested = ok(
        book(&app, &paul, &cab.service, &day(2, 8).to_rfc3339()),
        201,
    );
    let requested = requested["id"].as_str().unwrap().to_owned();
    staff_action(&requested, "approval", json!({}));
    ok(
        post(
            &app,
            &paul,
            &format!("/v1/me/bookings/{requested}/reschedule"),
            &json!({"start": day(2, 9).to_rfc3339()}),
        ),
        200,
    );
    let declined = ok(
        book(&app, &paul, &cab.service, &day(3, 8).to_rfc3339()),
        201,
    );
    staff_action(
        declined["id"].as_str().unwrap(),
        "decline",
        json!({"reason": "Complet"}),
    );
    let by_staff = |start: chrono::DateTime<chrono::Utc>| {
        ok(
            post(
                &app,
                &org.admin,
                "/v1/admin/bookings",
                &json!({"customer_id": payer, "service_id": cab.service, "start": start}),
            ),
            201,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    staff_action(
        &by_staff(now + chrono::Duration::days(3)),
        "cancellation",
        json!({"reason": "Absent"}),
    );
    staff_action(
        &by_staff(now - chrono::Duration::hours(3)),
        "completion",
        json!({}),
    );
    staff_action(
        &by_staff(now - chrono::Duration::hours(2)),
        "no-show",
        json!({}),
    );
    by_staff(now + chrono::Duration::hours(2));
    let reminded = guichet_jobs::bookings::BookingReminders::new(
        app.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
    )
    .run()
    .unwrap();
    assert_eq!(reminded.reminded, 1, "{reminded:?}");

    // invoice.issued, invoice.payment_failed (a refused card),
    // invoice.partially_paid (a cheque), invoice.paid (the rest online),
    // then a second invoice issued and voided.
    let due = (app.clock.today() + chrono::Duration::days(10)).to_string();
    let issue = |amount: i64| {
        let d = ok(
            post(
                &app,
                &org.admin,
                "/v1/admin/invoices",
                &json!({"customer_id": payer, "amount": amount, "reason": "Séances", "due_date": due}),
            ),
            201,
        );
        let id = d["id"].as_str().unwrap().to_owned();
        ok(
            post(
                &app,
                &org.admin,
                &format!("/v1/admin/invoices/{id}/issue"),
                &json!({}),
            ),
            200,
        );
        id
    };
    let invoice = issue(9000);
    let pay_invoice = |key: &str, card: &str| {
        app.request("POST", &format!("/v1/me/invoices/{invoice}/payments"))
            .bearer(&paul)
            .header("idempotency-key", key)
            .json(&json!({"card_token": tokenize(&app, card)}))
            .send()
    };
    pay_invoice("inv-refused", test_cards::INSUFFICIENT_FUNDS)
        .assert_problem(422, "payment_failed");
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/invoices/{invoice}/payments"),
            &json!({"amount": 3000, "method": "cheque"}),
        ),
        201,
    );
    ok(pay_invoice("inv-rest", test_cards::VISA), 201);
    let voided = issue(1000);
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/invoices/{voided}/void"),
            &json!({}),
        ),
        200,
    );
    // payment_method.saved with customer.autopay_updated (the box checked,
    // then unchecked), and payment_method.removed (a method nothing uses),
    // by the customer.
    let save_method = |number: &str, autopay: bool| {
        ok(
            post(
                &app,
                &paul,
                "/v1/me/payment-methods",
                &json!({"type": "card", "card_token": tokenize(&app, number), "autopay": autopay}),
            ),
            201,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    save_method(test_cards::VISA, true);
    let spare = save_method(test_cards::VISA_DEBIT, false);
    ok(
        app.request("DELETE", &format!("/v1/me/payment-methods/{spare}"))
            .bearer(&paul)
            .send(),
        204,
    );

    let before_expiry = verify_arrivals(
        &app,
        &receiver,
        &secret,
        after_unpaid,
        &[
            "document.shared",
            "document.withdrawn",
            "conversation.created",
            "message.created",
            "conversation.closed",
            "conversation.reopened",
            "consent.invitation_sent",
            "consent.opened",
            "consent.failed",
            "consent.activated",
            "consent.revoked",
            "booking.requested",
            "booking.confirmed",
            "booking.rescheduled",
            "booking.requested",
            "booking.declined",
            "booking.confirmed",
            "booking.cancelled",
            "booking.confirmed",
            "booking.completed",
            "booking.confirmed",
            "booking.no_show",
            "booking.confirmed",
            "booking.reminder_sent",
            "invoice.issued",
            "invoice.payment_failed",
            "invoice.partially_paid",
            "invoice.paid",
            "invoice.issued",
            "invoice.voided",
            "payment_method.saved",
            "customer.autopay_updated",
            "payment_method.removed",
        ],
    );

    // consent.expired: the link is read 14 days and a minute later.
    app.clock
        .advance(chrono::Duration::days(14) + chrono::Duration::minutes(1));
    public(&app, "GET", &format!("/v1/consents/{expiring_token}"), None)
        .assert_problem(410, "invitation_expired");
    let org = Org {
        admin: relogin(&app, &org),
        ..org
    };
    assert_eq!(consent(&app, &org, &expiring)["status"], "expired");
    let total = verify_arrivals(
        &app,
        &receiver,
        &secret,
        before_expiry,
        &["consent.expired"],
    );

    // Every type of the catalogue came, each event once.
    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.requests();
    assert_eq!(got.len(), total, "late arrivals");
    let mut ids: Vec<&str> = got.iter().map(Received::webhook_id).collect();
    ids.sort_unstable();
    let before_dedup = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before_dedup, "an event delivered twice");
    let mut types: Vec<String> = got.iter().map(Received::event_type).collect();
    types.sort();
    types.dedup();
    let mut catalogue: Vec<String> = guichet_domain::events::EventType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    catalogue.sort();
    assert_eq!(types, catalogue);
    // And the log lists each delivery as succeeded at the first attempt
    // (once the dispatcher has recorded the last answers).
    let admin = relogin(&app, &org);
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let mut log = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = ok(
                get(
                    &app,
                    &admin,
                    &format!(
                        "/v1/admin/webhook-endpoints/{endpoint_id}/deliveries?limit=100{cursor}"
                    ),
                ),
                200,
            );
            log.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        if log.iter().all(|d| d["status"] != "pending") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log.len(), total, "{log:?}");
    assert!(
        log.iter()
            .all(|d| d["status"] == "succeeded" && d["attempts"] == 1),
        "{log:?}"
    );
}

/// A fresh access token of the organization's admin (after the clock
/// moved past the old one's life).
fn relogin(app: &TestApp, org: &Org) -> String {
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": org.slug, "email": org.admin_email,
                      "password": guichet_tests::identity::PASSWORD}))
        .send();
    ok(res, 200)["access_token"].as_str().unwrap().to_owned()
}
