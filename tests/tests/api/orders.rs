//! The business side of schedules: orders, cancellations, payment settings, contact channels.

use chrono::{TimeZone, Utc};
use guichet_domain::contact_channels::{Channel, OpeningHours};
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
use guichet_domain::schedule::InstalmentStatus;
use guichet_domain::{Clock, FixedClock};
use guichet_store::repo::{payment, schedules};
use guichet_tests::identity::{Org, PASSWORD};
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Response, TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

const ORDERS: &str = "/v1/admin/orders";
const PAYMENTS: &str = "/v1/admin/settings/payments";
const CHANNELS: &str = "/v1/admin/settings/contact-channels";

fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<&Value>) -> Response {
    let request = app.request(method, path).bearer(token);
    match body {
        Some(body) => request.json(body).send(),
        None => request.send(),
    }
}

fn get(app: &TestApp, path: &str, token: &str) -> Response {
    call(app, "GET", path, token, None)
}

fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, "POST", path, token, Some(body))
}

fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, "PUT", path, token, Some(body))
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    res.json()
}

fn visa() -> String {
    sandbox_token(test_cards::VISA, 12, 2030).0
}

/// A token of the test server's sandbox for a Visa that expired in
/// October 2026 (tokenized while it was still valid).
fn expired_visa() -> String {
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    SandboxTokens::new(TEST_SECRET_KEY.as_bytes())
        .tokenize(
            CardDetails {
                number: Pan::parse(test_cards::VISA).unwrap(),
                exp_month: 10,
                exp_year: 2026,
                cvc: Cvc::parse("123").unwrap(),
            },
            clock.today(),
        )
        .unwrap()
        .token
}

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// An organization with one customer; returns the org and the customer id.
fn org_with_customer(app: &TestApp, slug: &str) -> (Org, String) {
    let org = app.org(slug);
    let customer = app.customer(&org, &format!("claire@{slug}.example.com"), None);
    (org, customer["id"].as_str().unwrap().to_owned())
}

/// A valid body: 10000 EUR cents in 3 monthly instalments.
fn order_body(customer_id: &str, number: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "order_number": number,
        "merchant_brand": "Maison & Jardin",
        "purchase_date": "2026-11-20",
        "total": eur(10000),
        "instalments": 3,
        "first_due_date": "2026-12-05",
        "card_token": visa(),
    })
}

fn create_order(app: &TestApp, org: &Org, customer_id: &str, number: &str) -> Value {
    ok(
        post(app, ORDERS, &org.admin, &order_body(customer_id, number)),
        201,
    )
}

fn amounts(schedule: &Value) -> Vec<(i64, String)> {
    schedule["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["amount"]["amount"].as_i64().unwrap(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn stored_orders(app: &TestApp, org: &Org) -> usize {
    let mut conn = app.store.conn().unwrap();
    schedules::list_for_org(&mut conn, &org.id, None, None, 100)
        .unwrap()
        .len()
}

/// Marks instalments `numbers` of the order paid, through the store (no
/// debit over HTTP yet).
fn mark_paid(app: &TestApp, org: &Org, order_id: &str, numbers: &[u32]) {
    let mut conn = app.store.conn().unwrap();
    let mut order = schedules::get(&mut conn, &org.id, order_id).unwrap();
    for instalment in &mut order.schedule.instalments {
        if numbers.contains(&instalment.number) {
            instalment.status = InstalmentStatus::Paid;
            instalment.paid_at = Some(Utc::now());
            instalment.attempts = 1;
        }
    }
    schedules::save_schedule(&mut conn, &mut order, Utc::now()).unwrap();
}

/// Adds a staff member with `role`; returns their access token.
fn staff_member(app: &TestApp, org: &Org, email: &str, role: &str) -> String {
    ok(
        post(
            app,
            "/v1/admin/staff",
            &org.admin,
            &json!({"email": email, "name": "Member", "role": role}),
        ),
        201,
    );
    let token = app.nth_message(email, 1).token().unwrap();
    ok(
        app.request("POST", "/v1/auth/staff/setup")
            .json(&json!({"token": token, "password": PASSWORD}))
            .send(),
        200,
    )["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn cancel(app: &TestApp, org: &Org, order_id: &str, amount: Value) -> Response {
    post(
        app,
        &format!("{ORDERS}/{order_id}/cancellations"),
        &org.admin,
        &json!({ "amount": amount }),
    )
}

// ------------------------------------------------------------ orders: create

#[test]
fn an_order_in_equal_instalments_is_split_with_the_remainder_first() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let res = post(&app, ORDERS, &org.admin, &order_body(&customer_id, "CMD-1"));
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ord_"));
    assert_eq!(
        res.header("location"),
        Some(format!("{ORDERS}/{id}").as_str())
    );
    assert_eq!(created["customer_id"], customer_id);
    assert_eq!(created["order_number"], "CMD-1");
    assert_eq!(created["merchant_brand"], "Maison & Jardin");
    assert_eq!(created["purchase_date"], "2026-11-20");
    assert_eq!(created["amount"], eur(10000));
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["paid"], eur(0));
    assert_eq!(created["pending"], eur(10000));
    assert_eq!(
        amounts(&created),
        vec![
            (3334, "pending".into()),
            (3333, "pending".into()),
            (3333, "pending".into())
        ]
    );
    let dates: Vec<&str> = created["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["due_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-12-05", "2027-01-05", "2027-02-05"]);
    assert_eq!(created["card"]["brand"], "visa");
    assert_eq!(created["card"]["last4"], "4242");
    assert_eq!(created["card"]["exp_month"], 12);
    assert_eq!(created["card"]["exp_year"], 2030);
    assert_eq!(created["adjustments"], json!([]));
    assert!(
        !created.to_string().contains("tok_sandbox_"),
        "no token shown"
    );

    let fetched = ok(get(&app, &format!("{ORDERS}/{id}"), &org.admin), 200);
    assert_eq!(fetched, created);
    let mut conn = app.store.conn().unwrap();
    let stored = schedules::get(&mut conn, &org.id, &id).unwrap();
    assert_eq!(stored.instalment_ids.len(), 3);
    assert!(
        stored
            .instalment_ids
            .values()
            .all(|i| i.starts_with("ins_"))
    );
    assert!(stored.card.id.starts_with("crd_"));
    assert!(stored.card.token.starts_with("tok_sandbox_"));
}

#[test]
fn an_order_follows_an_explicit_plan() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let mut body = order_body(&customer_id, "CMD-2");
    body.as_object_mut().unwrap().remove("instalments");
    body.as_object_mut().unwrap().remove("first_due_date");
    body["plan"] = json!([
        {"due_date": "2026-12-01", "amount": eur(5000)},
        {"due_date": "2027-01-15", "amount": eur(3000)},
        {"due_date": "2027-03-01", "amount": eur(2000)},
    ]);
    body["card_token"] = json!(sandbox_token(test_cards::AMEX, 6, 2029).0);
    let created = ok(post(&app, ORDERS, &org.admin, &body), 201);
    assert_eq!(
        amounts(&created),
        vec![
            (5000, "pending".into()),
            (3000, "pending".into()),
            (2000, "pending".into())
        ]
    );
    assert_eq!(created["instalments"][1]["due_date"], "2027-01-15");
    assert_eq!(created["instalments"][2]["number"], 3);
    assert_eq!(created["card"]["brand"], "amex");
    assert_eq!(created["card"]["last4"], "0005");
}

#[test]
fn an_order_needs_a_customer_of_the_organization_and_a_known_card() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let (other, other_customer) = org_with_customer(&app, "globex");

    post(
        &app,
        ORDERS,
        &org.admin,
        &order_body(&other_customer, "CMD-1"),
    )
    .assert_problem(404, "not_found");
    post(&app, ORDERS, &org.admin, &order_body("cus_nope", "CMD-1"))
        .assert_problem(404, "not_found");

    let mut body = order_body(&customer_id, "CMD-1");
    body["card_token"] = json!("tok_sandbox_000000000000000000000000");
    let problem = post(&app, ORDERS, &org.admin, &body).assert_problem(422, "card_token_invalid");
    assert_eq!(problem["errors"][0]["field"], "card_token");
    body["card_token"] = json!("not-a-token");
    post(&app, ORDERS, &org.admin, &body).assert_problem(422, "card_token_invalid");
    // A sandbox token signed with another key is not ours.
    let tampered = visa().replace("tok_sandbox_00", "tok_sandbox_01");
    body["card_token"] = json!(tampered);
    post(&app, ORDERS, &org.admin, &body).assert_problem(422, "card_token_invalid");
    // An expired card (the server's clock is in November 2026).
    body["card_token"] = json!(expired_visa());
    let problem = post(&app, ORDERS, &org.admin, &body).assert_problem(422, "card_token_invalid");
    assert_eq!(problem["errors"][0]["code"], "expired_card");

    assert_eq!(stored_orders(&app, &org), 0);
    assert_eq!(stored_orders(&app, &other), 0);
}

#[test]
fn an_order_number_is_unique_in_the_organization() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let (other, other_customer) = org_with_customer(&app, "globex");
    create_order(&app, &org, &customer_id, "CMD-1");
    let problem = post(&app, ORDERS, &org.admin, &order_body(&customer_id, "CMD-1"))
        .assert_problem(409, "order_number_taken");
    assert_eq!(problem["errors"][0]["field"], "order_number");
    assert_eq!(stored_orders(&app, &org), 1);
    // Another organization may use the same number.
    create_order(&app, &other, &other_customer, "CMD-1");
    // The refused order left no card behind: a new number works.
    create_order(&app, &org, &customer_id, "CMD-2");
    assert_eq!(stored_orders(&app, &org), 2);
}

#[test]
fn a_plan_that_breaks_a_schedule_rule_is_refused_with_the_rule() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let explicit = |plan: Value| {
        let mut body = order_body(&customer_id, "CMD-1");
        body.as_object_mut().unwrap().remove("instalments");
        body.as_object_mut().unwrap().remove("first_due_date");
        body["plan"] = plan;
        body
    };
    let thirteen: Vec<Value> = (1..=13)
        .map(|m| {
            json!({"due_date": format!("{}-{:02}-01", 2026 + m / 12, m % 12 + 1), "amount": eur(if m == 1 { 10000 - 12 * 769 } else { 769 })})
        })
        .collect();
    let cases = [
        (
            "sum",
            explicit(json!([
                {"due_date": "2026-12-01", "amount": eur(5000)},
                {"due_date": "2027-01-01", "amount": eur(4000)},
            ])),
            "plan",
            "instalments_sum_mismatch",
        ),
        (
            "dates",
            explicit(json!([
                {"due_date": "2027-01-01", "amount": eur(5000)},
                {"due_date": "2026-12-01", "amount": eur(5000)},
            ])),
            "plan",
            "due_dates_not_increasing",
        ),
        (
            "zero instalment",
            explicit(json!([
                {"due_date": "2026-12-01", "amount": eur(10000)},
                {"due_date": "2027-01-01", "amount": eur(0)},
            ])),
            "plan",
            "instalment_not_positive",
        ),
        (
            "currency",
            explicit(json!([
                {"due_date": "2026-12-01", "amount": eur(5000)},
                {"due_date": "2027-01-01", "amount": {"amount": 5000, "currency": "USD"}},
            ])),
            "plan",
            "currency_mismatch",
        ),
        (
            "one instalment",
            explicit(json!([{"due_date": "2026-12-01", "amount": eur(10000)}])),
            "plan",
            "invalid_instalment_count",
        ),
        (
            "thirteen instalments",
            explicit(json!(thirteen)),
            "plan",
            "invalid_instalment_count",
        ),
        (
            "fewer cents than instalments",
            {
                let mut body = order_body(&customer_id, "CMD-1");
                body["total"] = eur(2);
                body
            },
            "instalments",
            "instalment_not_positive",
        ),
    ];
    for (name, body, field, code) in cases {
        let problem = post(&app, ORDERS, &org.admin, &body).assert_problem(422, "invalid_schedule");
        assert_eq!(
            problem["errors"],
            json!([{"field": field, "code": code}]),
            "{name}"
        );
    }
    assert_eq!(stored_orders(&app, &org), 0);
}

#[test]
fn a_malformed_order_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let base = order_body(&customer_id, "CMD-1");
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let without = |keys: &[&str]| {
        let mut body = base.clone();
        for key in keys {
            body.as_object_mut().unwrap().remove(*key);
        }
        body
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "unknown field",
            with("colour", json!("red")),
            "unknown_field",
            "colour",
        ),
        (
            "total as text",
            with("total", json!("100.00")),
            "invalid_field",
            "total",
        ),
        (
            "float amount",
            with("total", json!({"amount": 100.5, "currency": "EUR"})),
            "invalid_field",
            "total.amount",
        ),
        (
            "zero total",
            with("total", eur(0)),
            "invalid_field",
            "total.amount",
        ),
        (
            "negative total",
            with("total", eur(-100)),
            "invalid_field",
            "total.amount",
        ),
        (
            "bad currency",
            with("total", json!({"amount": 100, "currency": "eur"})),
            "invalid_field",
            "total.currency",
        ),
        (
            "unknown field in total",
            with("total", json!({"amount": 100, "currency": "EUR", "x": 1})),
            "unknown_field",
            "total.x",
        ),
        (
            "13 instalments",
            with("instalments", json!(13)),
            "invalid_field",
            "instalments",
        ),
        (
            "1 instalment",
            with("instalments", json!(1)),
            "invalid_field",
            "instalments",
        ),
        (
            "instalments as text",
            with("instalments", json!("3")),
            "invalid_field",
            "instalments",
        ),
        (
            "bad date",
            with("purchase_date", json!("20/11/2026")),
            "invalid_field",
            "purchase_date",
        ),
        (
            "empty order number",
            with("order_number", json!("")),
            "invalid_field",
            "order_number",
        ),
        (
            "long order number",
            with("order_number", json!("x".repeat(65))),
            "invalid_field",
            "order_number",
        ),
        (
            "blank brand",
            with("merchant_brand", json!("   ")),
            "invalid_field",
            "merchant_brand",
        ),
        (
            "missing customer",
            without(&["customer_id"]),
            "invalid_field",
            "customer_id",
        ),
        (
            "missing token",
            without(&["card_token"]),
            "invalid_field",
            "card_token",
        ),
        (
            "both forms",
            with(
                "plan",
                json!([{"due_date": "2026-12-01", "amount": eur(5000)}, {"due_date": "2027-01-01", "amount": eur(5000)}]),
            ),
            "invalid_field",
            "instalments",
        ),
        (
            "neither form",
            without(&["instalments", "first_due_date"]),
            "invalid_field",
            "instalments",
        ),
        (
            "no first due date",
            without(&["first_due_date"]),
            "invalid_field",
            "first_due_date",
        ),
    ];
    for (name, body, code, field) in cases {
        let res = post(&app, ORDERS, &org.admin, &body);
        let problem = res.assert_problem(400, code);
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{name}: {problem}"
        );
    }
    let malformed = app
        .request("POST", ORDERS)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"customer_id\": ".to_vec())
        .send();
    malformed.assert_problem(400, "malformed_json");
    let plain = app
        .request("POST", ORDERS)
        .bearer(&org.admin)
        .header("content-type", "text/plain")
        .body(base.to_string().into_bytes())
        .send();
    plain.assert_problem(415, "unsupported_media_type");
    assert_eq!(stored_orders(&app, &org), 0);
}

// ---------------------------------------------------- orders: who may see

#[test]
fn orders_are_for_the_staff_of_their_organization() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let (other, _) = org_with_customer(&app, "globex");
    let order = create_order(&app, &org, &customer_id, "CMD-1");
    let id = order["id"].as_str().unwrap();
    let path = format!("{ORDERS}/{id}");

    app.get(ORDERS).assert_problem(401, "unauthenticated");
    app.get(&path).assert_problem(401, "unauthenticated");
    app.request("POST", ORDERS)
        .json(&order_body(&customer_id, "CMD-2"))
        .send()
        .assert_problem(401, "unauthenticated");
    get(&app, &path, "garbage").assert_problem(401, "invalid_token");

    let (_, customer) = app.registered_customer(&org, "bob@acme.example.com", None);
    get(&app, ORDERS, &customer.access).assert_problem(403, "forbidden");
    get(&app, &path, &customer.access).assert_problem(403, "forbidden");
    post(
        &app,
        ORDERS,
        &customer.access,
        &order_body(&customer_id, "CMD-2"),
    )
    .assert_problem(403, "forbidden");
    cancel_as(&app, &customer.access, id, eur(100)).assert_problem(403, "forbidden");

    get(&app, &path, &other.admin).assert_problem(404, "not_found");
    cancel_as(&app, &other.admin, id, eur(100)).assert_problem(404, "not_found");
    let listed = ok(get(&app, ORDERS, &other.admin), 200);
    assert_eq!(listed["data"], json!([]));
    get(&app, &format!("{ORDERS}/ord_nope"), &org.admin).assert_problem(404, "not_found");
    cancel(&app, &org, "ord_nope", eur(100)).assert_problem(404, "not_found");

    // An agent may create, read and cancel orders.
    let agent = staff_member(&app, &org, "agent@acme.example.com", "agent");
    let created = ok(
        post(&app, ORDERS, &agent, &order_body(&customer_id, "CMD-2")),
        201,
    );
    assert_eq!(created["order_number"], "CMD-2");
    ok(get(&app, &path, &agent), 200);
    ok(cancel_as(&app, &agent, id, eur(100)), 201);
    // The untouched order is as it was.
    let fetched = ok(get(&app, &path, &org.admin), 200);
    assert_eq!(fetched["amount"], eur(9900));
}

fn cancel_as(app: &TestApp, token: &str, order_id: &str, amount: Value) -> Response {
    post(
        app,
        &format!("{ORDERS}/{order_id}/cancellations"),
        token,
        &json!({ "amount": amount }),
    )
}

#[test]
fn orders_are_listed_by_page_and_by_customer() {
    let app = TestApp::spawn();
    let (org, first) = org_with_customer(&app, "acme");
    let second = app.customer(&org, "bob@acme.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(create_order(&app, &org, &first, &format!("A-{n}"))["id"].clone());
    }
    ids.push(create_order(&app, &org, &second, "B-0")["id"].clone());
    ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));

    let mut seen = Vec::new();
    let mut query = format!("{ORDERS}?limit=3");
    loop {
        let page = ok(get(&app, &query, &org.admin), 200);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|o| o["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("{ORDERS}?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let only = ok(
        get(&app, &format!("{ORDERS}?customer_id={second}"), &org.admin),
        200,
    );
    let data = only["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["order_number"], "B-0");
    assert_eq!(data[0]["instalments"].as_array().unwrap().len(), 3);
    assert!(only["next_cursor"].is_null());

    get(&app, &format!("{ORDERS}?limit=0"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{ORDERS}?limit=101"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{ORDERS}?cursor=%%%"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{ORDERS}?colour=red"), &org.admin).assert_problem(400, "invalid_parameter");
}

// ------------------------------------------------------------ cancellations

#[test]
fn a_partial_cancellation_comes_off_the_last_instalments() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let id = create_order(&app, &org, &customer_id, "CMD-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = cancel(&app, &org, &id, eur(4000));
    let body = ok(res, 201);
    let adjustment = &body["adjustment"];
    assert_eq!(adjustment["kind"], "partial_cancellation");
    assert_eq!(adjustment["amount"], eur(4000));
    assert!(adjustment["refund"].is_null());
    assert_eq!(adjustment["at"], "2026-11-22T09:00:00Z");
    let schedule = &body["schedule"];
    assert_eq!(
        amounts(schedule),
        vec![
            (3334, "pending".into()),
            (2666, "pending".into()),
            (0, "cancelled".into())
        ]
    );
    assert_eq!(schedule["amount"], eur(6000));
    assert_eq!(schedule["pending"], eur(6000));
    assert_eq!(schedule["status"], "in_progress");
    assert_eq!(schedule["adjustments"].as_array().unwrap().len(), 1);

    // Stored as answered.
    let fetched = ok(get(&app, &format!("{ORDERS}/{id}"), &org.admin), 200);
    assert_eq!(&fetched, schedule);
}

#[test]
fn cancelling_more_than_is_pending_refunds_what_was_paid() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let id = create_order(&app, &org, &customer_id, "CMD-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mark_paid(&app, &org, &id, &[1, 2]);
    let body = ok(cancel(&app, &org, &id, eur(5000)), 201);
    assert_eq!(body["adjustment"]["kind"], "partial_cancellation");
    assert_eq!(body["adjustment"]["refund"], eur(1667));
    let schedule = &body["schedule"];
    assert_eq!(
        amounts(schedule),
        vec![
            (3334, "paid".into()),
            (3333, "paid".into()),
            (0, "cancelled".into())
        ]
    );
    assert_eq!(schedule["amount"], eur(5000));
    assert_eq!(schedule["pending"], eur(0));
    assert_eq!(schedule["status"], "completed");

    // The refund is recorded: the stored adjustment carries it.
    let mut conn = app.store.conn().unwrap();
    let stored = schedules::get(&mut conn, &org.id, &id).unwrap();
    assert_eq!(stored.schedule.adjustments.len(), 1);
    assert_eq!(
        stored.schedule.adjustments[0].refund.map(|r| r.amount),
        Some(1667)
    );
    assert_eq!(stored.schedule.refunded_amount().amount, 1667);

    // What is left (5000) can still be cancelled: everything paid that
    // was not refunded yet is refunded.
    let body = ok(cancel(&app, &org, &id, eur(5000)), 201);
    assert_eq!(body["adjustment"]["kind"], "total_cancellation");
    assert_eq!(body["adjustment"]["refund"], eur(5000));
    assert_eq!(body["schedule"]["status"], "cancelled");
}

#[test]
fn a_total_cancellation_cancels_every_instalment_and_refunds_what_was_paid() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let id = create_order(&app, &org, &customer_id, "CMD-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mark_paid(&app, &org, &id, &[1]);
    let body = ok(cancel(&app, &org, &id, eur(10000)), 201);
    assert_eq!(body["adjustment"]["kind"], "total_cancellation");
    assert_eq!(body["adjustment"]["refund"], eur(3334));
    let schedule = &body["schedule"];
    assert_eq!(schedule["status"], "cancelled");
    assert_eq!(schedule["amount"], eur(0));
    assert_eq!(
        amounts(schedule),
        vec![
            (3334, "paid".into()),
            (0, "cancelled".into()),
            (0, "cancelled".into())
        ]
    );
    let problem = cancel(&app, &org, &id, eur(1)).assert_problem(422, "invalid_cancellation");
    assert_eq!(
        problem["errors"],
        json!([{"field": "amount", "code": "schedule_already_cancelled"}])
    );

    // Without anything paid: no refund.
    let other = create_order(&app, &org, &customer_id, "CMD-2")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = ok(cancel(&app, &org, &other, eur(10000)), 201);
    assert_eq!(body["adjustment"]["kind"], "total_cancellation");
    assert!(body["adjustment"]["refund"].is_null());
    assert_eq!(
        amounts(&body["schedule"]),
        vec![
            (0, "cancelled".into()),
            (0, "cancelled".into()),
            (0, "cancelled".into())
        ]
    );
}

#[test]
fn a_cancellation_that_breaks_a_rule_is_refused_and_changes_nothing() {
    let app = TestApp::spawn();
    let (org, customer_id) = org_with_customer(&app, "acme");
    let order = create_order(&app, &org, &customer_id, "CMD-1");
    let id = order["id"].as_str().unwrap();
    let cases = [
        (eur(0), "cancellation_amount_not_positive"),
        (eur(-5), "cancellation_amount_not_positive"),
        (eur(10001), "cancellation_exceeds_remaining"),
        (
            json!({"amount": 100, "currency": "USD"}),
            "currency_mismatch",
        ),
    ];
    for (amount, code) in cases {
        let problem = cancel(&app, &org, id, amount).assert_problem(422, "invalid_cancellation");
        assert_eq!(
            problem["errors"],
            json!([{"field": "amount", "code": code}]),
            "{code}"
        );
    }
    let path = format!("{ORDERS}/{id}/cancellations");
    post(
        &app,
        &path,
        &org.admin,
        &json!({"amount": eur(100), "why": "x"}),
    )
    .assert_problem(400, "unknown_field");
    post(&app, &path, &org.admin, &json!({"amount": 100})).assert_problem(400, "invalid_field");
    post(&app, &path, &org.admin, &json!({})).assert_problem(400, "invalid_field");
    post(
        &app,
        &path,
        &org.admin,
        &json!({"amount": {"amount": 100, "currency": "euro"}}),
    )
    .assert_problem(400, "invalid_field");
    app.request("POST", &path)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{".to_vec())
        .send()
        .assert_problem(400, "malformed_json");

    let fetched = ok(get(&app, &format!("{ORDERS}/{id}"), &org.admin), 200);
    assert_eq!(fetched, order);
}

// --------------------------------------------------------- payment settings

#[test]
fn payment_settings_start_from_the_defaults_and_admins_replace_them() {
    let app = TestApp::spawn();
    let (org, _) = org_with_customer(&app, "acme");
    let defaults = ok(get(&app, PAYMENTS, &org.admin), 200);
    assert_eq!(
        defaults,
        json!({
            "collections_phone": null,
            "card_change_notice_days": 7,
            "accepted_brands": ["visa", "mastercard"],
            "retry": {"retries": 1, "delay_days": 3},
            "invoice_partial_payments": false,
            "updated_at": null,
        })
    );
    let wanted = json!({
        "collections_phone": "+33140000000",
        "card_change_notice_days": 10,
        "accepted_brands": ["visa", "amex", "visa"],
        "retry": {"retries": 2, "delay_days": 5},
    });
    let stored = ok(put(&app, PAYMENTS, &org.admin, &wanted), 200);
    assert_eq!(stored["collections_phone"], "+33140000000");
    assert_eq!(stored["card_change_notice_days"], 10);
    assert_eq!(stored["accepted_brands"], json!(["visa", "amex"]));
    assert_eq!(stored["retry"], json!({"retries": 2, "delay_days": 5}));
    assert_eq!(stored["updated_at"], "2026-11-22T09:00:00Z");
    assert_eq!(ok(get(&app, PAYMENTS, &org.admin), 200), stored);

    // A second PUT replaces (null clears the phone); limits are inclusive.
    let edge = json!({
        "collections_phone": null,
        "card_change_notice_days": 60,
        "accepted_brands": ["other"],
        "retry": {"retries": 0, "delay_days": 30},
    });
    let stored = ok(put(&app, PAYMENTS, &org.admin, &edge), 200);
    assert!(stored["collections_phone"].is_null());
    assert_eq!(stored["card_change_notice_days"], 60);
    assert_eq!(stored["accepted_brands"], json!(["other"]));

    // Another organization keeps its defaults.
    let other = app.org("globex");
    assert_eq!(ok(get(&app, PAYMENTS, &other.admin), 200), defaults);
}

#[test]
fn payment_settings_refuse_bad_values_and_non_admins() {
    let app = TestApp::spawn();
    let (org, _) = org_with_customer(&app, "acme");
    let base = json!({
        "collections_phone": "+33140000000",
        "card_change_notice_days": 7,
        "accepted_brands": ["visa"],
        "retry": {"retries": 1, "delay_days": 3},
    });
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with("collections_phone", json!("0140000000")),
            "invalid_field",
            "collections_phone",
        ),
        (
            with("card_change_notice_days", json!(61)),
            "invalid_field",
            "card_change_notice_days",
        ),
        (
            with("card_change_notice_days", json!(-1)),
            "invalid_field",
            "card_change_notice_days",
        ),
        (
            with("accepted_brands", json!([])),
            "invalid_field",
            "accepted_brands",
        ),
        (
            with("accepted_brands", json!(["diners"])),
            "invalid_field",
            "accepted_brands[0]",
        ),
        (
            with("retry", json!({"retries": 6, "delay_days": 3})),
            "invalid_field",
            "retry.retries",
        ),
        (
            with("retry", json!({"retries": 1, "delay_days": 0})),
            "invalid_field",
            "retry.delay_days",
        ),
        (
            with("retry", json!({"retries": 1, "delay_days": 31})),
            "invalid_field",
            "retry.delay_days",
        ),
        (
            with("retry", json!({"retries": 1})),
            "invalid_field",
            "retry.delay_days",
        ),
        (with("colour", json!("red")), "unknown_field", "colour"),
    ];
    for (body, code, field) in cases {
        let problem = put(&app, PAYMENTS, &org.admin, &body).assert_problem(400, code);
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {problem}"
        );
    }
    assert!(ok(get(&app, PAYMENTS, &org.admin), 200)["updated_at"].is_null());

    let agent = staff_member(&app, &org, "agent@acme.example.com", "agent");
    ok(get(&app, PAYMENTS, &agent), 200);
    put(&app, PAYMENTS, &agent, &base).assert_problem(403, "forbidden");
    let (_, customer) = app.registered_customer(&org, "bob@acme.example.com", None);
    get(&app, PAYMENTS, &customer.access).assert_problem(403, "forbidden");
    app.get(PAYMENTS).assert_problem(401, "unauthenticated");
    assert!(ok(get(&app, PAYMENTS, &org.admin), 200)["updated_at"].is_null());
}

// --------------------------------------------------------- contact channels

#[test]
fn contact_channels_start_from_the_seed_and_admins_replace_them() {
    let app = TestApp::spawn();
    let (org, _) = org_with_customer(&app, "acme");
    let seed = ok(get(&app, CHANNELS, &org.admin), 200);
    assert_eq!(seed["time_zone"], "Europe/Paris");
    let channels = seed["channels"].as_array().unwrap();
    assert_eq!(channels[0]["kind"], "chat");
    assert_eq!(channels[0]["hours"]["monday"], json!([["09:00", "20:00"]]));
    assert_eq!(
        channels[0]["hours"]["saturday"],
        json!([["09:00", "18:00"]])
    );
    assert_eq!(channels[0]["hours"]["sunday"], json!([]));
    assert!(channels.iter().any(|c| c["hours"] == "always"));
    // The seed, sent back as it is, is accepted and answered the same.
    assert_eq!(ok(put(&app, CHANNELS, &org.admin, &seed), 200), seed);

    let wanted = json!({
        "time_zone": "America/New_York",
        "channels": [
            {"kind": "phone", "label": "Service client", "hours": {
                "monday": [["14:00", "18:00"], ["08:30", "12:00"]],
                "friday": [["09:00", "12:00"], ["12:00", "17:00"]],
            }},
            {"kind": "faq", "label": "Questions fréquentes", "hours": "always"},
            {"kind": "email", "label": "E-mail", "hours": {}},
        ],
    });
    let stored = ok(put(&app, CHANNELS, &org.admin, &wanted), 200);
    assert_eq!(stored["time_zone"], "America/New_York");
    let phone = &stored["channels"][0];
    assert_eq!(phone["kind"], "phone");
    assert_eq!(
        phone["hours"]["monday"],
        json!([["08:30", "12:00"], ["14:00", "18:00"]])
    );
    assert_eq!(phone["hours"]["tuesday"], json!([]));
    assert_eq!(stored["channels"][1]["hours"], "always");
    assert_eq!(stored["channels"][2]["hours"]["sunday"], json!([]));
    assert_eq!(ok(get(&app, CHANNELS, &org.admin), 200), stored);
    // Stored in the domain's form, which the customer side reads.
    let mut conn = app.store.conn().unwrap();
    let (zone, json) = payment::contact_channels(&mut conn, &org.id)
        .unwrap()
        .unwrap();
    assert_eq!(zone, "America/New_York");
    let channels: Vec<Channel> = serde_json::from_str(&json).unwrap();
    assert_eq!(channels.len(), 3);
    assert_eq!(channels[1].hours, OpeningHours::Always);
    drop(conn);

    // An empty list is a choice too.
    let none = json!({"time_zone": "Europe/Paris", "channels": []});
    assert_eq!(ok(put(&app, CHANNELS, &org.admin, &none), 200), none);
    assert_eq!(ok(get(&app, CHANNELS, &org.admin), 200), none);
}

#[test]
fn contact_channels_refuse_bad_hours_and_non_admins() {
    let app = TestApp::spawn();
    let (org, _) = org_with_customer(&app, "acme");
    let seed = ok(get(&app, CHANNELS, &org.admin), 200);
    let one = |time_zone: &str, hours: Value| json!({"time_zone": time_zone, "channels": [{"kind": "chat", "label": "Chat", "hours": hours}]});
    let hours_cases = [
        (
            one("Mars/Olympus", json!("always")),
            "time_zone",
            "unknown_time_zone",
        ),
        (
            one("Europe/Paris", json!({"monday": [["20:00", "09:00"]]})),
            "channels[0].hours",
            "opening_range_start_not_before_end",
        ),
        (
            one("Europe/Paris", json!({"tuesday": [["09:00", "09:00"]]})),
            "channels[0].hours",
            "opening_range_start_not_before_end",
        ),
        (
            one(
                "Europe/Paris",
                json!({"sunday": [["09:00", "12:00"], ["11:00", "14:00"]]}),
            ),
            "channels[0].hours",
            "opening_ranges_overlap",
        ),
    ];
    for (body, field, code) in hours_cases {
        let problem =
            put(&app, CHANNELS, &org.admin, &body).assert_problem(422, "invalid_opening_hours");
        assert_eq!(
            problem["errors"],
            json!([{"field": field, "code": code}]),
            "{code}"
        );
    }
    let shape_cases = [
        (
            one("Europe/Paris", json!({"monday": [["9h", "20:00"]]})),
            "invalid_field",
        ),
        (
            one("Europe/Paris", json!({"monday": [["25:00", "26:00"]]})),
            "invalid_field",
        ),
        (
            one("Europe/Paris", json!({"monday": [["09:00"]]})),
            "invalid_field",
        ),
        (one("Europe/Paris", json!({"funday": []})), "invalid_field"),
        (one("Europe/Paris", json!("sometimes")), "invalid_field"),
        (
            json!({"time_zone": "Europe/Paris", "channels": [{"kind": "fax", "label": "Fax", "hours": "always"}]}),
            "invalid_field",
        ),
        (
            json!({"time_zone": "Europe/Paris", "channels": [{"kind": "chat", "label": " ", "hours": "always"}]}),
            "invalid_field",
        ),
        (
            json!({"time_zone": "Europe/Paris", "channels": [{"kind": "chat", "hours": "always"}]}),
            "invalid_field",
        ),
        (
            json!({"time_zone": "Europe/Paris", "channels": [], "colour": 1}),
            "unknown_field",
        ),
    ];
    for (body, code) in shape_cases {
        put(&app, CHANNELS, &org.admin, &body).assert_problem(400, code);
    }
    assert_eq!(ok(get(&app, CHANNELS, &org.admin), 200), seed);

    let agent = staff_member(&app, &org, "agent@acme.example.com", "agent");
    assert_eq!(ok(get(&app, CHANNELS, &agent), 200), seed);
    put(&app, CHANNELS, &agent, &seed).assert_problem(403, "forbidden");
    let (_, customer) = app.registered_customer(&org, "bob@acme.example.com", None);
    get(&app, CHANNELS, &customer.access).assert_problem(403, "forbidden");
    app.get(CHANNELS).assert_problem(401, "unauthenticated");
    app.request("PUT", CHANNELS)
        .json(&seed)
        .send()
        .assert_problem(401, "unauthenticated");
}

#[test]
fn an_amount_above_the_ceiling_is_refused_before_any_card_number_check() {
    let app = TestApp::spawn();
    let (org, customer) = org_with_customer(&app, "ceiling");
    // 99 999 999 999 minor units is the largest amount taken.
    let mut body = order_body(&customer, "CEIL-1");
    body["total"] = eur(99_999_999_999);
    body["instalments"] = json!(3);
    let res = post(&app, ORDERS, &org.admin, &body);
    assert_eq!(res.status, 201, "{}", res.text());
    // One more is refused, in the total, a plan or a cancellation; nothing
    // is stored.
    let mut body = order_body(&customer, "CEIL-2");
    body["total"] = eur(100_000_000_000);
    let problem = post(&app, ORDERS, &org.admin, &body).assert_problem(400, "invalid_field");
    assert_eq!(problem["errors"][0]["field"], "total.amount");
    let mut body = order_body(&customer, "CEIL-3");
    body.as_object_mut().unwrap().remove("instalments");
    body.as_object_mut().unwrap().remove("first_due_date");
    body["plan"] = json!([
        {"due_date": "2026-12-05", "amount": eur(5000)},
        {"due_date": "2027-01-05", "amount": eur(100_000_000_000)},
    ]);
    let problem = post(&app, ORDERS, &org.admin, &body).assert_problem(400, "invalid_field");
    assert_eq!(problem["errors"][0]["field"], "plan[1].amount.amount");
    assert_eq!(stored_orders(&app, &org), 1);
}
