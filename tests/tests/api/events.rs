//! Events: each change records its event in its own transaction, with the
//! object as the API shows it; the log (`GET /v1/admin/events`) pages,
//! filters and isolates them; old events are purged.

use std::sync::Arc;

use chrono::Duration;
use diesel::prelude::*;
use guichet_domain::Clock;
use guichet_domain::gateway::test_cards;
use guichet_domain::sepa::pain008::SequenceType;
use guichet_gateway::SandboxGateway;
use guichet_jobs::debit::DebitRun;
use guichet_jobs::retention::EventsPurge;
use guichet_jobs::sepa::SepaRun;
use guichet_store::repo::collections::{self, Collection};
use guichet_store::repo::events as events_repo;
use guichet_store::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use guichet_tests::identity::Org;
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Options, TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

const EVENTS: &str = "/v1/admin/events";
use guichet_tests::sepa::{self, DEBTOR_IBAN};

fn get(app: &TestApp, token: &str, path: &str) -> guichet_tests::Response {
    app.request("GET", path).bearer(token).send()
}

fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> guichet_tests::Response {
    app.request("POST", path).bearer(token).json(body).send()
}

fn ok(res: guichet_tests::Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    res.json()
}

/// Every event of the organization, newest first.
fn all_events(app: &TestApp, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("{EVENTS}?limit=100");
    loop {
        let page = ok(get(app, token, &path), 200);
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{EVENTS}?limit=100&cursor={c}"),
            None => return out,
        }
    }
}

/// The events of `kind`, newest first.
fn of_type(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    ok(
        get(app, token, &format!("{EVENTS}?type={kind}&limit=100")),
        200,
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The one event of `kind`, checked against its object, customer and actor.
fn the_event(
    app: &TestApp,
    token: &str,
    kind: &str,
    object: (&str, &str),
    customer: Option<&str>,
    actor: &str,
) -> Value {
    let found = of_type(app, token, kind);
    assert_eq!(found.len(), 1, "{kind}: {found:?}");
    let e = found[0].clone();
    assert_eq!(e["type"], kind);
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        e["object"],
        json!({"type": object.0, "id": object.1}),
        "{kind}"
    );
    assert_eq!(e["customer_id"], json!(customer), "{kind}");
    assert_eq!(e["actor"], actor, "{kind}");
    // The one event read alone is the same envelope.
    let alone = ok(
        get(
            app,
            token,
            &format!("{EVENTS}/{}", e["id"].as_str().unwrap()),
        ),
        200,
    );
    assert_eq!(alone, e);
    e
}

/// No event anywhere in the database holds a secret: no card number, CVC,
/// card token, full IBAN, password or code.
fn assert_no_secret(app: &TestApp, secrets: &[&str]) {
    use guichet_store::schema::events;
    let data: Vec<String> = events::table
        .select(events::data)
        .load(&mut app.store.conn().unwrap())
        .unwrap();
    assert!(!data.is_empty());
    for d in data {
        let v: Value = serde_json::from_str(&d).unwrap();
        for s in secrets {
            assert!(!d.contains(s), "a secret in an event: {d}");
        }
        for (card, _) in [(test_cards::VISA, 0), (test_cards::MASTERCARD, 0)] {
            assert!(!d.contains(card), "{d}");
        }
        assert!(!d.contains("tok_") && !d.contains("\"token\""), "{v}");
    }
}

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

fn api_key(app: &TestApp, org: &Org) -> String {
    ok(
        post(
            app,
            &org.admin,
            "/v1/admin/api-keys",
            &json!({"name": "events"}),
        ),
        201,
    )["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn staff_and_api_key_actions_record_their_events_with_the_object_as_shown() {
    let app = TestApp::spawn();
    let org = app.org("events-staff");
    let key = api_key(&app, &org);

    // customer.created by staff, customer.updated by an API key.
    let customer = app.customer(&org, "lea@events-staff.example.com", None);
    let cid = customer["id"].as_str().unwrap();
    let e = the_event(
        &app,
        &key,
        "customer.created",
        ("customer", cid),
        None,
        "staff",
    );
    assert_eq!(e["data"], customer);
    let updated = ok(
        app.request("PATCH", &format!("/v1/admin/customers/{cid}"))
            .bearer(&key)
            .json(&json!({"name": "Léa Martin"}))
            .send(),
        200,
    );
    let e = the_event(
        &app,
        &org.admin,
        "customer.updated",
        ("customer", cid),
        None,
        "api_key",
    );
    assert_eq!(e["data"], updated);
    // A PATCH that changes nothing records nothing.
    ok(
        app.request("PATCH", &format!("/v1/admin/customers/{cid}"))
            .bearer(&key)
            .json(&json!({"name": "Léa Martin"}))
            .send(),
        200,
    );
    assert_eq!(of_type(&app, &key, "customer.updated").len(), 1);

    // Blocked (twice: one event), unblocked.
    let blocked = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/customers/{cid}/block"),
            &json!({}),
        ),
        200,
    );
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/customers/{cid}/block"),
            &json!({}),
        ),
        200,
    );
    let e = the_event(
        &app,
        &key,
        "customer.blocked",
        ("customer", cid),
        None,
        "staff",
    );
    assert_eq!(e["data"], blocked);
    assert_eq!(e["data"]["blocked"], true);
    let unblocked = ok(
        post(
            &app,
            &key,
            &format!("/v1/admin/customers/{cid}/unblock"),
            &json!({}),
        ),
        200,
    );
    let e = the_event(
        &app,
        &key,
        "customer.unblocked",
        ("customer", cid),
        None,
        "api_key",
    );
    assert_eq!(e["data"], unblocked);

    // order.created and order.cancelled: the order as GET shows it then.
    let (token, _) = sandbox_token(test_cards::VISA, 12, 2030);
    let order = ok(
        post(
            &app,
            &key,
            "/v1/admin/orders",
            &json!({
                "customer_id": cid,
                "order_number": "CMD-EVT-1",
                "merchant_brand": "Maison & Jardin",
                "purchase_date": "2026-11-20",
                "total": eur(30000),
                "instalments": 3,
                "first_due_date": "2026-12-05",
                "card_token": token,
            }),
        ),
        201,
    );
    let oid = order["id"].as_str().unwrap();
    let e = the_event(&app, &key, "order.created", ("order", oid), None, "api_key");
    assert_eq!(e["data"], order);
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/orders/{oid}/cancellations"),
            &json!({"amount": eur(10000)}),
        ),
        201,
    );
    let shown = ok(get(&app, &key, &format!("/v1/admin/orders/{oid}")), 200);
    let e = the_event(&app, &key, "order.cancelled", ("order", oid), None, "staff");
    assert_eq!(e["data"], shown);

    // A refused change records nothing: a cancellation beyond what is left.
    let before = all_events(&app, &key).len();
    let res = post(
        &app,
        &org.admin,
        &format!("/v1/admin/orders/{oid}/cancellations"),
        &json!({"amount": eur(900000)}),
    );
    assert_eq!(res.status, 422, "{}", res.text());
    let res = post(
        &app,
        &org.admin,
        "/v1/admin/customers",
        &json!({"name": "x", "email": "lea@events-staff.example.com"}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(all_events(&app, &key).len(), before);

    assert_no_secret(&app, &[&token, &key]);
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

#[test]
fn a_card_change_records_its_event_and_a_refused_one_records_none() {
    let app = TestApp::spawn();
    let org = app.org("events-card");
    let (cid, tokens) = app.registered_customer(&org, "paul@events-card.example.com", None);
    let today = app.clock.today();
    let oid = app.seed_order(
        &org.id,
        &cid,
        30_000,
        3,
        today + Duration::days(20),
        test_cards::VISA,
    );

    // Refused (a card expiring before the last instalment): nothing.
    let (short, _) = sandbox_token(test_cards::VISA, 1, 2027);
    let res = app
        .request("PUT", &format!("/v1/me/schedules/{oid}/card"))
        .bearer(&tokens.access)
        .json(&json!({"card_token": short}))
        .send();
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(
        all_events(&app, &org.admin)
            .iter()
            .all(|e| e["type"] != "schedule.card_changed")
    );

    let card = tokenize(&app, test_cards::MASTERCARD);
    let changed = ok(
        app.request("PUT", &format!("/v1/me/schedules/{oid}/card"))
            .bearer(&tokens.access)
            .json(&json!({"card_token": card}))
            .send(),
        200,
    );
    let e = the_event(
        &app,
        &org.admin,
        "schedule.card_changed",
        ("schedule", &oid),
        Some(&cid),
        "customer",
    );
    assert_eq!(e["data"], changed["schedule"]);
    assert_eq!(e["data"]["card"]["last4"], "4444");
    assert_no_secret(&app, &[&card, &short, test_cards::MASTERCARD]);
}

fn sandbox(app: &TestApp) -> Arc<SandboxGateway> {
    Arc::new(SandboxGateway::with_token_key(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        TEST_SECRET_KEY.as_bytes(),
    ))
}

#[test]
fn debit_runs_record_paid_failed_and_unpaid_events() {
    let app = TestApp::spawn();
    let org = app.org("events-debits");
    let (cid, _) = app.registered_customer(&org, "ana@events-debits.example.com", None);
    let today = app.clock.today();
    let paid = app.seed_order(&org.id, &cid, 20_000, 2, today, test_cards::VISA);
    let poor = app.seed_order(
        &org.id,
        &cid,
        20_000,
        2,
        today,
        test_cards::INSUFFICIENT_FUNDS,
    );
    let gateway = sandbox(&app);
    // The clock moves days: an API key outlives access tokens.
    let key = api_key(&app, &org);
    let run = |app: &TestApp| {
        DebitRun::new(
            app.store.clone(),
            gateway.clone(),
            Arc::new(app.clock.clone()),
        )
        .run(app.clock.today(), 100)
        .unwrap()
    };
    run(&app);

    let ins = |order: &str| -> String {
        let o = guichet_store::repo::schedules::get(&mut app.store.conn().unwrap(), &org.id, order)
            .unwrap();
        o.instalment_ids[&1].clone()
    };
    let e = the_event(
        &app,
        &key,
        "instalment.paid",
        ("instalment", &ins(&paid)),
        None,
        "system",
    );
    let shown = ok(get(&app, &key, &format!("/v1/admin/orders/{paid}")), 200);
    assert_eq!(e["data"]["schedule"], shown);
    assert_eq!(e["data"]["order_id"], paid.as_str());
    assert_eq!(e["data"]["customer_id"], cid.as_str());
    assert_eq!(e["data"]["number"], 1);
    assert_eq!(e["data"]["status"], "paid");
    assert_eq!(e["data"]["amount"], shown["instalments"][0]["amount"]);

    let e = the_event(
        &app,
        &key,
        "instalment.failed",
        ("instalment", &ins(&poor)),
        None,
        "system",
    );
    assert_eq!(e["data"]["status"], "pending");
    assert_eq!(e["data"]["next_attempt_on"], "2026-11-25");
    assert!(of_type(&app, &key, "schedule.unpaid").is_empty());

    // The retry fails: the instalment fails again and the schedule is unpaid.
    app.clock.advance(Duration::days(3));
    run(&app);
    let failed = of_type(&app, &key, "instalment.failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["data"]["status"], "unpaid");
    let e = the_event(
        &app,
        &key,
        "schedule.unpaid",
        ("schedule", &poor),
        None,
        "system",
    );
    let shown = ok(get(&app, &key, &format!("/v1/admin/orders/{poor}")), 200);
    assert_eq!(e["data"], shown);
    assert_eq!(e["data"]["status"], "unpaid");
    assert_no_secret(&app, &[test_cards::INSUFFICIENT_FUNDS]);
}

fn seed_sepa(app: &TestApp, org: &Org, email: &str) -> (String, String, String) {
    sepa::creditor(app, &org.id, "Régie du Parc", 2);
    let customer_id = app.customer(org, email, None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account_id = sepa::account(app, &org.id, &customer_id, "Loyer", 10_000);
    let mandate_id = sepa::signed_mandate(
        app,
        &sepa::Mandate {
            org_id: &org.id,
            customer_id: &customer_id,
            account_id: &account_id,
            email,
            debtor_name: "Hélène Dupont",
            recurrent: true,
            spread_months: Some(3),
            signed_at: app.clock.now(),
        },
    );
    (customer_id, account_id, mandate_id)
}

#[test]
fn sepa_runs_and_results_record_collection_events_and_a_revocation_its_own() {
    let app = TestApp::spawn();
    let org = app.org("events-sepa");
    let key = api_key(&app, &org);
    let (_, account_id, mandate_id) = seed_sepa(&app, &org, "debtor@events-sepa.example.com");
    let now = app.clock.now();
    let due = app.clock.today();
    let mut ids_of = Vec::new();
    for _ in 0..2 {
        let c = Collection::scheduled(
            &org.id,
            &mandate_id,
            &account_id,
            SequenceType::First,
            4_000,
            due,
            Some(now),
            now,
        );
        collections::insert(&mut app.store.conn().unwrap(), &c).unwrap();
        ids_of.push(c.id);
    }
    SepaRun::new(app.store.clone(), Arc::new(app.clock.clone()))
        .run(due)
        .unwrap();

    let presented = of_type(&app, &key, "collection.presented");
    assert_eq!(presented.len(), 2, "{presented:?}");
    for e in &presented {
        let id = e["object"]["id"].as_str().unwrap();
        assert!(ids_of.iter().any(|c| c == id));
        assert_eq!(e["actor"], "system");
        assert_eq!(e["data"]["status"], "presented");
        assert_eq!(e["data"]["id"], id);
    }

    let paid = ok(
        post(
            &app,
            &key,
            &format!("/v1/admin/sepa/collections/{}/result", ids_of[0]),
            &json!({"outcome": "paid"}),
        ),
        200,
    );
    let e = the_event(
        &app,
        &key,
        "collection.paid",
        ("collection", &ids_of[0]),
        None,
        "api_key",
    );
    assert_eq!(e["data"], paid);
    let rejected = ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/sepa/collections/{}/result", ids_of[1]),
            &json!({"outcome": "rejected", "reason": "AM04"}),
        ),
        200,
    );
    // The same result again records nothing more.
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/sepa/collections/{}/result", ids_of[1]),
            &json!({"outcome": "rejected", "reason": "AM04"}),
        ),
        200,
    );
    let e = the_event(
        &app,
        &key,
        "collection.rejected",
        ("collection", &ids_of[1]),
        None,
        "staff",
    );
    assert_eq!(e["data"], rejected);

    let revoked = ok(
        post(
            &app,
            &key,
            &format!("/v1/admin/mandates/{mandate_id}/revocation"),
            &json!({}),
        ),
        200,
    );
    let e = the_event(
        &app,
        &key,
        "mandate.revoked",
        ("mandate", &mandate_id),
        None,
        "api_key",
    );
    assert_eq!(e["data"], revoked);
    assert_eq!(e["data"]["status"], "revoked");
    assert_eq!(e["data"]["iban"], "FR14 **** **** **** **** ***2 606");
    // Revoking again is refused, and records nothing.
    let res = post(
        &app,
        &key,
        &format!("/v1/admin/mandates/{mandate_id}/revocation"),
        &json!({}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(of_type(&app, &key, "mandate.revoked").len(), 1);
    assert_no_secret(&app, &[DEBTOR_IBAN, "20041010050500013M02606", &key]);
}

#[test]
fn the_log_filters_pages_and_refuses_bad_input() {
    let app = TestApp::spawn();
    let org = app.org("events-log");
    let first = app.clock.now();
    let mut created = Vec::new();
    for n in 0..5 {
        let c = app.customer(&org, &format!("c{n}@events-log.example.com"), None);
        created.push(c["id"].as_str().unwrap().to_owned());
        app.clock.advance(Duration::seconds(10));
    }
    let cid = &created[0];
    ok(
        post(
            &app,
            &org.admin,
            &format!("/v1/admin/customers/{cid}/block"),
            &json!({}),
        ),
        200,
    );

    // Newest first, by pages of 2.
    let page = ok(get(&app, &org.admin, &format!("{EVENTS}?limit=2")), 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["data"][0]["type"], "customer.blocked");
    assert_eq!(page["data"][1]["object"]["id"], created[4].as_str());
    let mut seen: Vec<String> = Vec::new();
    let mut path = format!("{EVENTS}?limit=2");
    loop {
        let page = ok(get(&app, &org.admin, &path), 200);
        for e in page["data"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{EVENTS}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let all = all_events(&app, &org.admin);
    let ids: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids);
    let instants: Vec<&str> = all
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    assert!(instants.windows(2).all(|w| w[0] >= w[1]), "{instants:?}");

    // By type; after an instant.
    assert_eq!(of_type(&app, &org.admin, "customer.created").len(), 5);
    assert_eq!(of_type(&app, &org.admin, "customer.blocked").len(), 1);
    assert!(of_type(&app, &org.admin, "order.created").is_empty());
    let after = (first + Duration::seconds(25)).to_rfc3339();
    let res = ok(
        get(
            &app,
            &org.admin,
            &format!("{EVENTS}?after={}", after.replace('+', "%2B")),
        ),
        200,
    );
    let types: Vec<&str> = res["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["customer.blocked", "customer.created", "customer.created"]
    );
    let res = ok(
        get(
            &app,
            &org.admin,
            &format!("{EVENTS}?type=customer.created&after=2026-11-22T09:00:15Z"),
        ),
        200,
    );
    assert_eq!(res["data"].as_array().unwrap().len(), 3);

    // Bad input: 400 invalid_parameter, each naming its parameter.
    for (query, field) in [
        ("type=customer.exploded", "type"),
        ("type=*", "type"),
        ("after=yesterday", "after"),
        ("after=2026-11-22", "after"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=%21%21", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ] {
        let res = get(&app, &org.admin, &format!("{EVENTS}?{query}"));
        let body = res.assert_problem(400, "invalid_parameter");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    get(&app, &org.admin, &format!("{EVENTS}?limit=abc")).assert_problem(400, "invalid_parameter");
    get(&app, &org.admin, &format!("{EVENTS}?colour=red")).assert_problem(400, "invalid_parameter");
    get(&app, &org.admin, &format!("{EVENTS}/evt_unknown")).assert_problem(404, "not_found");
}

#[test]
fn events_are_the_organizations_own_and_need_a_staff_token_or_an_api_key() {
    let app = TestApp::spawn();
    let org = app.org("events-mine");
    let other = app.org("events-theirs");
    let (_, tokens) = app.registered_customer(&org, "eve@events-mine.example.com", None);
    app.customer(&other, "x@events-theirs.example.com", None);
    let theirs = of_type(&app, &other.admin, "customer.created");
    let theirs_id = theirs[0]["id"].as_str().unwrap();

    get(&app, &org.admin, &format!("{EVENTS}/{theirs_id}")).assert_problem(404, "not_found");
    let mine = all_events(&app, &org.admin);
    assert!(mine.iter().all(|e| e["id"] != theirs_id));
    assert_eq!(mine.len(), 1);

    get(&app, &tokens.access, EVENTS).assert_problem(403, "forbidden");
    get(&app, &tokens.access, &format!("{EVENTS}/{theirs_id}")).assert_problem(403, "forbidden");
    app.request("GET", EVENTS)
        .send()
        .assert_problem(401, "unauthenticated");
    app.request("GET", &format!("{EVENTS}/{theirs_id}"))
        .send()
        .assert_problem(401, "unauthenticated");
    get(&app, "not-a-token", EVENTS).assert_problem(401, "invalid_token");
}

#[test]
fn old_events_are_purged_with_their_deliveries() {
    // No dispatcher: the deliveries below stay as they are written (and
    // nothing is sent to the endpoint's address).
    let app = TestApp::spawn_with(Options {
        args: vec!["--webhook-interval-ms".into(), "0".into()],
        ..Options::default()
    });
    let org = app.org("events-purge");
    let key = api_key(&app, &org);
    let old = app.customer(&org, "old@events-purge.example.com", None);
    // A webhook delivery and attempt of the old event (the FK chain).
    let event_id = of_type(&app, &key, "customer.created")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = app.clock.now().naive_utc();
    let mut conn = app.store.conn().unwrap();
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::id.eq("whe_purge"),
            webhook_endpoints::org_id.eq(&org.id),
            webhook_endpoints::url.eq("https://93.184.215.14/hook"),
            webhook_endpoints::description.eq(""),
            webhook_endpoints::event_types.eq("[\"*\"]"),
            webhook_endpoints::enabled.eq(true),
            webhook_endpoints::secret_sealed.eq("sealed"),
            webhook_endpoints::created_at.eq(now),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    let event = events_repo::get(&mut conn, &org.id, &event_id)
        .unwrap()
        .unwrap();
    let delivery = events_repo::queue_delivery(&mut conn, &event, "whe_purge").unwrap();
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::id.eq("wha_purge"),
            webhook_attempts::delivery_id.eq(&delivery),
            webhook_attempts::org_id.eq(&org.id),
            webhook_attempts::endpoint_id.eq("whe_purge"),
            webhook_attempts::event_id.eq(&event_id),
            webhook_attempts::attempt.eq(1),
            webhook_attempts::outcome.eq("failed"),
            webhook_attempts::latency_ms.eq(3),
            webhook_attempts::response.eq(""),
            webhook_attempts::started_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    drop(conn);

    app.clock.advance(Duration::days(20));
    let recent = ok(
        post(
            &app,
            &key,
            "/v1/admin/customers",
            &json!({"name": "R", "email": "recent@events-purge.example.com"}),
        ),
        201,
    );
    let purge = |days| EventsPurge::new(app.store.clone(), Arc::new(app.clock.clone()), days);

    // 20 days on: nothing is 30 days old.
    assert_eq!(purge(30).run().unwrap(), 0);
    app.clock.advance(Duration::days(10) + Duration::seconds(1));
    assert_eq!(purge(30).run().unwrap(), 1);
    assert_eq!(purge(30).run().unwrap(), 0, "idempotent");
    let left = all_events(&app, &key);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["object"]["id"], recent["id"]);
    get(&app, &key, &format!("{EVENTS}/{event_id}")).assert_problem(404, "not_found");
    let mut conn = app.store.conn().unwrap();
    let deliveries: i64 = webhook_deliveries::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    let attempts: i64 = webhook_attempts::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(
        (deliveries, attempts),
        (1, 0),
        "the recent event's delivery stays"
    );
    drop(conn);
    let _ = old;

    // A shorter retention, as configured: a day.
    ok(
        post(
            &app,
            &key,
            "/v1/admin/customers",
            &json!({"name": "F", "email": "fresh@events-purge.example.com"}),
        ),
        201,
    );
    assert_eq!(purge(1).run().unwrap(), 1, "the 10-day-old event");
    app.clock.advance(Duration::hours(23));
    assert_eq!(purge(1).run().unwrap(), 0);
    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(purge(1).run().unwrap(), 1);
    assert!(all_events(&app, &key).is_empty());
}

#[test]
fn the_retention_flag_takes_1_to_3650_days() {
    use clap::Parser;
    use guichet_api::config::{Cli, Command};
    let parse = |value: &str| {
        Cli::try_parse_from(["guichet", "serve", "--events-retention-days", value]).map(|cli| {
            match cli.command {
                Command::Serve(args) => args.events_retention_days,
                _ => unreachable!(),
            }
        })
    };
    assert_eq!(parse("1").unwrap(), 1);
    assert_eq!(parse("3650").unwrap(), 3650);
    assert!(parse("0").is_err());
    assert!(parse("3651").is_err());
    assert!(parse("-1").is_err());
    let default = Cli::try_parse_from(["guichet", "serve"]).unwrap();
    let Command::Serve(args) = default.command else {
        unreachable!()
    };
    assert_eq!(args.events_retention_days, 30);
}
