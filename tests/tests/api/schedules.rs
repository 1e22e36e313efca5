//! The customer side of schedules: listing, card change, regularization, contact channels, sandbox cards.

use chrono::{NaiveDate, TimeZone, Utc};
use guichet_domain::gateway::test_cards;
use guichet_domain::schedule::InstalmentStatus;
use guichet_store::repo::payment::{self, PaymentSettings};
use guichet_store::repo::{charges, schedules};
use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// An organization with two signed-in customers, A and B.
struct World {
    org: Org,
    a: String,
    a_tokens: Tokens,
    b: String,
}

fn world(app: &TestApp) -> World {
    let org = app.org("acme");
    let (a, a_tokens) = app.registered_customer(&org, "claire@example.com", None);
    let (b, _) = app.registered_customer(&org, "bruno@example.com", None);
    World {
        org,
        a,
        a_tokens,
        b,
    }
}

/// A fresh access token for customer A (after the clock moved past the
/// old one's lifetime).
fn sign_in_again(app: &TestApp, w: &World) -> String {
    let res = app.login(&w.org, "claire@example.com", PASSWORD);
    assert_eq!(res.status, 200, "{}", res.text());
    Tokens::from_json(&res.json()).access
}

fn get(app: &TestApp, token: &str, path: &str) -> Response {
    app.request("GET", path).bearer(token).send()
}

fn change_card(app: &TestApp, token: &str, id: &str, body: &Value) -> Response {
    app.request("PUT", &format!("/v1/me/schedules/{id}/card"))
        .bearer(token)
        .json(body)
        .send()
}

fn regularize(app: &TestApp, token: &str, id: &str, key: Option<&str>, body: &Value) -> Response {
    let mut req = app
        .request("POST", &format!("/v1/me/schedules/{id}/regularization"))
        .bearer(token);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    req.json(body).send()
}

fn tokenize(app: &TestApp, number: &str, exp_month: u8, exp_year: u16) -> String {
    let cvc = if number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    let res = app
        .request("POST", "/v1/sandbox/card-tokens")
        .json(&json!({"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["token"].as_str().unwrap().to_owned()
}

/// Sets instalment `number` of an order to `status` through the store.
fn set_status(app: &TestApp, org_id: &str, order_id: &str, number: u32, status: InstalmentStatus) {
    let mut conn = app.store.conn().unwrap();
    let mut order = schedules::get(&mut conn, org_id, order_id).unwrap();
    let instalment = order.schedule.instalment_mut(number).unwrap();
    instalment.status = status;
    if status == InstalmentStatus::Paid {
        instalment.paid_at = Some(Utc::now());
    }
    schedules::save_schedule(&mut conn, &mut order, Utc::now()).unwrap();
}

fn schedule(app: &TestApp, token: &str, id: &str) -> Value {
    let res = get(app, token, &format!("/v1/me/schedules/{id}"));
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn amounts_and_dates(parts: &Value) -> Vec<(String, i64)> {
    parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["date"].as_str().unwrap().to_owned(),
                p["amount"]["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ listing

#[test]
fn a_customer_lists_and_reads_only_their_own_schedules() {
    let app = TestApp::spawn();
    let w = world(&app);
    let first = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 5),
        test_cards::VISA,
    );
    let second = app.seed_order(
        &w.org.id,
        &w.a,
        10_001,
        2,
        date(2026, 12, 10),
        test_cards::VISA,
    );
    let other = app.seed_order(
        &w.org.id,
        &w.b,
        5_000,
        2,
        date(2026, 12, 5),
        test_cards::VISA,
    );
    set_status(&app, &w.org.id, &second, 1, InstalmentStatus::Unpaid);
    let token = &w.a_tokens.access;

    let res = get(&app, token, "/v1/me/schedules");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
    assert!(!ids.contains(&other.as_str()));
    assert_eq!(body["next_cursor"], Value::Null);

    let unpaid = get(&app, token, "/v1/me/schedules?status=unpaid").json();
    assert_eq!(unpaid["data"].as_array().unwrap().len(), 1);
    assert_eq!(unpaid["data"][0]["id"], second.as_str());
    assert_eq!(unpaid["data"][0]["actions"], json!(["regularize"]));
    assert_eq!(unpaid["data"][0]["unpaid"]["amount"], 5_001);
    let running = get(&app, token, "/v1/me/schedules?status=in_progress").json();
    assert_eq!(running["data"][0]["id"], first.as_str());
    let done = get(&app, token, "/v1/me/schedules?status=completed").json();
    assert!(done["data"].as_array().unwrap().is_empty());

    let page = get(&app, token, "/v1/me/schedules?limit=1").json();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = get(
        &app,
        token,
        &format!("/v1/me/schedules?limit=1&cursor={cursor}"),
    )
    .json();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_ne!(rest["data"][0]["id"], page["data"][0]["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let one = schedule(&app, token, &first);
    assert_eq!(one["amount"], json!({"amount": 30_000, "currency": "EUR"}));
    assert_eq!(one["status"], "in_progress");
    assert_eq!(one["card"]["last4"], "4242");
    assert_eq!(one["card"]["brand"], "visa");
    assert_eq!(one["instalments"].as_array().unwrap().len(), 3);
    assert_eq!(one["instalments"][2]["due_date"], "2027-02-05");
    assert_eq!(one["actions"], json!(["change_card"]));
    assert!(!one.to_string().contains("tok_sandbox"), "{one}");

    let late = get(&app, token, "/v1/me/schedules?status=late");
    late.assert_problem(400, "invalid_parameter");
    let late = late.json();
    assert_eq!(late["errors"][0]["field"], "status", "{late}");
    assert!(
        late["detail"]
            .as_str()
            .unwrap()
            .contains("in_progress, completed, unpaid ou cancelled"),
        "{late}"
    );
    get(&app, token, "/v1/me/schedules?limit=0").assert_problem(400, "invalid_parameter");
    get(&app, token, "/v1/me/schedules?colour=red").assert_problem(400, "invalid_parameter");
    get(&app, token, &format!("/v1/me/schedules/{other}")).assert_problem(404, "not_found");
    get(&app, token, "/v1/me/schedules/ord_nope").assert_problem(404, "not_found");
}

#[test]
fn schedule_routes_need_a_customer_token_and_hide_other_customers_schedules() {
    let app = TestApp::spawn();
    let w = world(&app);
    let other = app.seed_order(
        &w.org.id,
        &w.b,
        30_000,
        3,
        date(2026, 12, 20),
        test_cards::VISA,
    );
    set_status(&app, &w.org.id, &other, 1, InstalmentStatus::Unpaid);
    let token = &w.a_tokens.access;
    let card = tokenize(&app, test_cards::MASTERCARD, 12, 2030);

    get(&app, token, &format!("/v1/me/schedules/{other}")).assert_problem(404, "not_found");
    change_card(&app, token, &other, &json!({"card_token": card})).assert_problem(404, "not_found");
    get(
        &app,
        token,
        &format!("/v1/me/schedules/{other}/regularization"),
    )
    .assert_problem(404, "not_found");
    regularize(
        &app,
        token,
        &other,
        Some("k-isolation"),
        &json!({"payments": 1, "card_token": card}),
    )
    .assert_problem(404, "not_found");
    // Nothing happened to B's schedule.
    let mut conn = app.store.conn().unwrap();
    let order = schedules::get(&mut conn, &w.org.id, &other).unwrap();
    assert_eq!(order.card.view.last4, "4242");
    assert_eq!(order.schedule.unpaid_amount().amount, 10_000);
    assert!(
        charges::succeeded_for_order(&mut conn, &other)
            .unwrap()
            .is_empty()
    );
    drop(conn);

    for path in [
        "/v1/me/schedules".to_owned(),
        format!("/v1/me/schedules/{other}"),
        format!("/v1/me/schedules/{other}/regularization"),
        "/v1/me/contact-channels".to_owned(),
    ] {
        let res = app.get(&path);
        res.assert_problem(401, "unauthenticated");
        get(&app, &w.org.admin, &path).assert_problem(403, "forbidden");
    }
    app.request("PUT", &format!("/v1/me/schedules/{other}/card"))
        .json(&json!({"card_token": card}))
        .send()
        .assert_problem(401, "unauthenticated");
    change_card(&app, &w.org.admin, &other, &json!({"card_token": card}))
        .assert_problem(403, "forbidden");
    regularize(
        &app,
        &w.org.admin,
        &other,
        Some("k-staff"),
        &json!({"payments": 1, "card_token": card}),
    )
    .assert_problem(403, "forbidden");
}

#[test]
fn an_ended_session_or_an_api_key_cannot_read_schedules() {
    let app = TestApp::spawn();
    let w = world(&app);
    let mine = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 20),
        test_cards::VISA,
    );
    let paths = [
        "/v1/me".to_owned(),
        "/v1/me/schedules".to_owned(),
        format!("/v1/me/schedules/{mine}"),
    ];
    for path in &paths {
        assert_eq!(get(&app, &w.a_tokens.access, path).status, 200, "{path}");
    }

    // An API key is checked, then refused as a caller of the wrong kind;
    // once revoked it is no credential at all.
    let key = app
        .request("POST", "/v1/admin/api-keys")
        .bearer(&w.org.admin)
        .json(&json!({"name": "reports"}))
        .send();
    assert_eq!(key.status, 201, "{}", key.text());
    let key = key.json();
    let secret = key["secret"].as_str().unwrap();
    for path in &paths {
        get(&app, secret, path).assert_problem(403, "forbidden");
    }
    let revoked = app
        .request(
            "DELETE",
            &format!("/v1/admin/api-keys/{}", key["id"].as_str().unwrap()),
        )
        .bearer(&w.org.admin)
        .send();
    assert_eq!(revoked.status, 204, "{}", revoked.text());
    for path in &paths {
        get(&app, secret, path).assert_problem(401, "invalid_token");
        get(&app, "gk_unknown", path).assert_problem(401, "invalid_token");
    }

    // Logging out stops the customer's access token at once, on every
    // read, even with a bad query string.
    let out = app
        .request("POST", "/v1/auth/logout")
        .json(&json!({"refresh_token": w.a_tokens.refresh}))
        .send();
    assert_eq!(out.status, 204, "{}", out.text());
    for path in &paths {
        get(&app, &w.a_tokens.access, path).assert_problem(401, "invalid_token");
    }
    get(&app, &w.a_tokens.access, "/v1/me/schedules?status=lost")
        .assert_problem(401, "invalid_token");
    let again = sign_in_again(&app, &w);
    assert_eq!(get(&app, &again, &paths[1]).status, 200);
}

// ------------------------------------------------------------------ sandbox

#[test]
fn the_sandbox_tokenizes_test_cards_without_echoing_them() {
    let app = TestApp::spawn();
    let post = |body: Value| {
        app.request("POST", "/v1/sandbox/card-tokens")
            .json(&body)
            .send()
    };

    let res = post(
        json!({"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert!(body["token"].as_str().unwrap().starts_with("tok_sandbox_"));
    assert_eq!(
        body["card"],
        json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit"})
    );
    assert!(!res.text().contains("42424242"), "{}", res.text());
    assert!(!res.text().contains("123\""), "{}", res.text());

    let amex =
        post(json!({"number": test_cards::AMEX, "exp_month": 1, "exp_year": 2031, "cvc": "1234"}));
    assert_eq!(amex.status, 201, "{}", amex.text());
    assert_eq!(amex.json()["card"]["brand"], "amex");

    let declined = post(
        json!({"number": test_cards::DECLINED, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    declined.assert_problem(422, "card_declined");
    assert!(!declined.text().contains(test_cards::DECLINED));
    // Any number that is not a test card is declined and forgotten.
    post(json!({"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123"}))
        .assert_problem(422, "card_declined");
    post(json!({"number": test_cards::VISA, "exp_month": 10, "exp_year": 2026, "cvc": "123"}))
        .assert_problem(422, "card_expired");
    post(json!({"number": test_cards::VISA, "exp_month": 12, "exp_year": 2030, "cvc": "1234"}))
        .assert_problem(422, "invalid_card");

    let bad = post(
        json!({"number": "4242424242424241", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    let problem = bad.assert_problem(400, "invalid_field");
    assert_eq!(problem["errors"][0]["field"], "number");
    assert!(!bad.text().contains("4242424242424241"));
    let typed = post(
        json!({"number": 4242424242424242_u64, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    typed.assert_problem(400, "invalid_field");
    assert!(
        !typed.text().contains("4242424242424242"),
        "{}",
        typed.text()
    );
    post(json!({"number": test_cards::VISA, "exp_month": 12, "exp_year": 2030, "cvc": "12a"}))
        .assert_problem(400, "invalid_field");
    post(json!({"number": test_cards::VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123", "name": "x"}))
        .assert_problem(400, "unknown_field");
}

// ------------------------------------------------------------------ card change

#[test]
fn a_card_change_within_the_rules_replaces_the_card() {
    let app = TestApp::spawn();
    let w = world(&app);
    let id = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 22),
        test_cards::VISA,
    );
    let token = &w.a_tokens.access;
    let card = tokenize(&app, test_cards::MASTERCARD, 2, 2027);

    let res = change_card(&app, token, &id, &json!({"card_token": card}));

    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(
        body["card"],
        json!({"brand": "mastercard", "last4": "4444", "exp_month": 2, "exp_year": 2027, "funding": "credit"})
    );
    assert_eq!(body["schedule"]["id"], id.as_str());
    assert_eq!(body["schedule"]["card"]["last4"], "4444");
    assert_eq!(schedule(&app, token, &id)["card"]["last4"], "4444");
    // The first message was the registration code; the second tells the
    // customer which card pays from now on.
    let notice = app.nth_message("claire@example.com", 2);
    assert!(notice.body.contains("4444"), "{}", notice.body);
    assert!(!notice.body.contains("4242424242424242"));
    let mut conn = app.store.conn().unwrap();
    assert_eq!(
        schedules::get(&mut conn, &w.org.id, &id)
            .unwrap()
            .card
            .token,
        card
    );
}

#[test]
fn each_refused_card_change_has_its_code_and_changes_nothing() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    // Today is 2026-11-22; 3 debits from 2026-12-22 to 2027-02-22.
    let id = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 22),
        test_cards::VISA,
    );
    let soon = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 11, 28),
        test_cards::VISA,
    );
    let unpaid = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 22),
        test_cards::VISA,
    );
    set_status(&app, &w.org.id, &unpaid, 1, InstalmentStatus::Unpaid);
    let closed = app.seed_order(
        &w.org.id,
        &w.a,
        20_000,
        2,
        date(2026, 12, 22),
        test_cards::VISA,
    );
    set_status(&app, &w.org.id, &closed, 1, InstalmentStatus::Paid);
    set_status(&app, &w.org.id, &closed, 2, InstalmentStatus::Paid);
    let good = tokenize(&app, test_cards::MASTERCARD, 12, 2030);
    let (amex, _) = sandbox_token(test_cards::AMEX, 12, 2030);
    let (short, _) = sandbox_token(test_cards::VISA, 1, 2027);

    let p = change_card(&app, token, &soon, &json!({"card_token": good}))
        .assert_problem(422, "debit_already_scheduled");
    assert_eq!(p["next_debit_on"], "2026-11-28");
    assert_eq!(p["notice_days"], 7);
    assert!(p["detail"].as_str().unwrap().contains("2026-11-28"), "{p}");

    let p = change_card(&app, token, &id, &json!({"card_token": amex}))
        .assert_problem(422, "card_brand_not_accepted");
    assert_eq!(p["accepted_brands"], json!(["visa", "mastercard"]));

    let p = change_card(&app, token, &id, &json!({"card_token": short}))
        .assert_problem(422, "card_expires_before_last_instalment");
    assert_eq!(p["last_due_date"], "2027-02-22");
    assert!(p["detail"].as_str().unwrap().contains("2027-02-22"), "{p}");

    change_card(&app, token, &unpaid, &json!({"card_token": good}))
        .assert_problem(422, "schedule_unpaid");
    change_card(&app, token, &closed, &json!({"card_token": good}))
        .assert_problem(422, "schedule_closed");
    change_card(&app, token, &id, &json!({"card_token": "tok_sandbox_nope"}))
        .assert_problem(422, "card_token_invalid");

    // A card valid today that will have expired: move the clock past it.
    let (december, _) = sandbox_token(test_cards::VISA, 12, 2026);
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let token = &sign_in_again(&app, &w);
    let later = app.seed_order(
        &w.org.id,
        &w.a,
        20_000,
        2,
        date(2027, 2, 15),
        test_cards::VISA,
    );
    change_card(&app, token, &later, &json!({"card_token": december}))
        .assert_problem(422, "card_expired");

    // Bad input never reaches the rules.
    change_card(
        &app,
        token,
        &id,
        &json!({"card_token": good, "brand": "visa"}),
    )
    .assert_problem(400, "unknown_field");
    change_card(&app, token, &id, &json!({})).assert_problem(400, "invalid_field");
    change_card(&app, token, &id, &json!({"card_token": ""})).assert_problem(400, "invalid_field");
    change_card(&app, token, &id, &json!({"card_token": test_cards::VISA}))
        .assert_problem(400, "card_number_refused");

    for order in [&id, &soon, &unpaid, &closed, &later] {
        assert_eq!(schedule(&app, token, order)["card"]["last4"], "4242");
    }
}

// ------------------------------------------------------------------ regularization

/// 300.00 EUR in 3 from 2026-11-01; the first is unpaid. Today 2026-11-22.
fn unpaid_order(app: &TestApp, w: &World) -> String {
    let id = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 11, 1),
        test_cards::VISA,
    );
    set_status(app, &w.org.id, &id, 1, InstalmentStatus::Unpaid);
    id
}

#[test]
fn regularization_offers_have_exact_amounts_and_dates() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = app.seed_order(
        &w.org.id,
        &w.a,
        30_001,
        3,
        date(2026, 11, 1),
        test_cards::VISA,
    );
    set_status(&app, &w.org.id, &id, 1, InstalmentStatus::Unpaid);

    let res = get(
        &app,
        token,
        &format!("/v1/me/schedules/{id}/regularization"),
    );

    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["unpaid"], json!({"amount": 10_001, "currency": "EUR"}));
    let offers = body["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 3);
    assert_eq!(offers[0]["payments"], 1);
    assert_eq!(
        amounts_and_dates(&offers[0]["parts"]),
        [("2026-11-22".to_owned(), 10_001)]
    );
    assert_eq!(
        amounts_and_dates(&offers[1]["parts"]),
        [
            ("2026-11-22".to_owned(), 5_001),
            ("2026-12-22".to_owned(), 5_000)
        ]
    );
    assert_eq!(
        amounts_and_dates(&offers[2]["parts"]),
        [
            ("2026-11-22".to_owned(), 3_334),
            ("2026-12-22".to_owned(), 3_334),
            ("2027-01-22".to_owned(), 3_333)
        ]
    );

    let running = app.seed_order(
        &w.org.id,
        &w.a,
        30_000,
        3,
        date(2026, 12, 1),
        test_cards::VISA,
    );
    get(
        &app,
        token,
        &format!("/v1/me/schedules/{running}/regularization"),
    )
    .assert_problem(409, "nothing_to_regularize");
}

#[test]
fn regularizing_at_once_settles_the_unpaid_instalment_and_replays_by_key() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let card = tokenize(&app, test_cards::MASTERCARD, 12, 2030);
    let body = json!({"payments": 1, "card_token": card});

    regularize(&app, token, &id, None, &body).assert_problem(400, "idempotency_key_required");
    let bad = regularize(&app, token, &id, Some("two words"), &body);
    bad.assert_problem(400, "invalid_parameter");
    assert_eq!(bad.json()["errors"][0]["field"], "Idempotency-Key");
    let long = "k".repeat(256);
    regularize(&app, token, &id, Some(&long), &body).assert_problem(400, "invalid_parameter");
    let res = regularize(&app, token, &id, Some("reg-once-1"), &body);

    assert_eq!(res.status, 200, "{}", res.text());
    let s = res.json();
    assert_eq!(s["status"], "in_progress");
    assert_eq!(s["unpaid"]["amount"], 0);
    assert_eq!(s["paid"]["amount"], 10_000);
    assert_eq!(s["instalments"][0]["status"], "paid");
    assert_eq!(s["instalments"].as_array().unwrap().len(), 3);
    assert_eq!(s["adjustments"][0]["kind"], "regularization");
    assert_eq!(s["adjustments"][0]["amount"]["amount"], 10_000);
    // One payment with a new card: it also pays the later debits.
    assert_eq!(s["card"]["last4"], "4444");
    let mut conn = app.store.conn().unwrap();
    let charged = charges::succeeded_for_order(&mut conn, &id).unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].amount.amount, 10_000);
    drop(conn);

    // Same key, same body: the same answer, no second charge.
    let again = regularize(&app, token, &id, Some("reg-once-1"), &body);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), s);
    let mut conn = app.store.conn().unwrap();
    assert_eq!(
        charges::succeeded_for_order(&mut conn, &id).unwrap().len(),
        1
    );
    drop(conn);
    // Same key, another body.
    regularize(
        &app,
        token,
        &id,
        Some("reg-once-1"),
        &json!({"payments": 3, "card_token": card}),
    )
    .assert_problem(422, "idempotency_key_reused");
    // A new key: nothing is unpaid any more.
    regularize(&app, token, &id, Some("reg-once-2"), &body)
        .assert_problem(409, "nothing_to_regularize");
    get(
        &app,
        token,
        &format!("/v1/me/schedules/{id}/regularization"),
    )
    .assert_problem(409, "nothing_to_regularize");
}

#[test]
fn regularizing_in_three_payments_replaces_the_unpaid_instalment_with_a_plan() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let card = tokenize(&app, test_cards::MASTERCARD, 12, 2030);

    let res = regularize(
        &app,
        token,
        &id,
        Some("reg-three"),
        &json!({"payments": 3, "card_token": card}),
    );

    assert_eq!(res.status, 200, "{}", res.text());
    let s = res.json();
    let rows: Vec<(String, String, i64)> = s["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["due_date"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
                i["amount"]["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    let row = |d: &str, st: &str, a: i64| (d.to_owned(), st.to_owned(), a);
    assert_eq!(
        rows,
        [
            row("2026-11-01", "cancelled", 10_000),
            row("2026-12-01", "pending", 10_000),
            row("2027-01-01", "pending", 10_000),
            row("2026-11-22", "paid", 3_334),
            row("2026-12-22", "pending", 3_333),
            row("2027-01-22", "pending", 3_333),
        ]
    );
    assert_eq!(s["status"], "in_progress");
    assert_eq!(s["paid"]["amount"], 3_334);
    assert_eq!(s["pending"]["amount"], 26_666);
    // The later payments are debited from the card used.
    assert_eq!(s["card"]["last4"], "4444");
    let mut conn = app.store.conn().unwrap();
    let charged = charges::succeeded_for_order(&mut conn, &id).unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].amount.amount, 3_334);
}

#[test]
fn a_refused_payment_gives_the_collections_phone_and_channels_and_changes_nothing() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    {
        let mut conn = app.store.conn().unwrap();
        let settings = PaymentSettings {
            collections_phone: Some("+33 1 23 45 67 89".to_owned()),
            ..PaymentSettings::defaults(&w.org.id)
        };
        payment::put(&mut conn, &settings, Utc::now()).unwrap();
    }
    let before = schedule(&app, token, &id);
    let card = tokenize(&app, test_cards::INSUFFICIENT_FUNDS, 12, 2030);
    let body = json!({"payments": 2, "card_token": card});

    let res = regularize(&app, token, &id, Some("reg-poor"), &body);

    let p = res.assert_problem(422, "payment_failed");
    assert_eq!(p["reason"], "insufficient_funds");
    assert_eq!(
        p["collections"],
        json!({"phone": "+33 1 23 45 67 89", "tel": "tel:+33123456789"})
    );
    let channels = p["contact_channels"]["data"].as_array().unwrap();
    assert_eq!(channels.len(), 5);
    // Sunday 2026-11-22 10:00 in Paris: advisers are closed until Monday 9:00.
    assert_eq!(channels[0]["kind"], "chat");
    assert_eq!(channels[0]["open_now"], false);
    assert_eq!(channels[0]["next_opening"], "2026-11-23T08:00:00Z");
    assert!(p["detail"].as_str().unwrap().contains("+33 1 23 45 67 89"));
    assert_eq!(schedule(&app, token, &id), before);
    let mut conn = app.store.conn().unwrap();
    assert!(
        charges::succeeded_for_order(&mut conn, &id)
            .unwrap()
            .is_empty()
    );
    drop(conn);

    // The refusal is the answer for this key.
    let again = regularize(&app, token, &id, Some("reg-poor"), &body);
    assert_eq!(again.status, 422);
    assert_eq!(again.json(), p);
    // With another card and a new key, the payment goes through.
    let good = tokenize(&app, test_cards::VISA, 12, 2030);
    let res = regularize(
        &app,
        token,
        &id,
        Some("reg-rich"),
        &json!({"payments": 2, "card_token": good}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["unpaid"]["amount"], 0);
}

#[test]
fn refused_regularization_requests_store_nothing_and_free_the_key() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let card = tokenize(&app, test_cards::VISA, 12, 2030);
    let (amex, _) = sandbox_token(test_cards::AMEX, 12, 2030);
    let (short, _) = sandbox_token(test_cards::VISA, 12, 2026);
    let key = Some("reg-key");

    regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 4, "card_token": card}),
    )
    .assert_problem(400, "invalid_field");
    regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 1, "card_token": card, "x": 1}),
    )
    .assert_problem(400, "unknown_field");
    regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 1, "card_token": test_cards::VISA}),
    )
    .assert_problem(400, "card_number_refused");
    regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 1, "card_token": "tok_sandbox_x"}),
    )
    .assert_problem(422, "card_token_invalid");
    regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 1, "card_token": amex}),
    )
    .assert_problem(422, "card_brand_not_accepted");
    // Three payments run to 2027-01-22: a card ending in 2026 cannot pay them.
    let p = regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 3, "card_token": short}),
    )
    .assert_problem(422, "card_expires_before_last_instalment");
    assert_eq!(p["last_due_date"], "2027-01-22");
    let mut conn = app.store.conn().unwrap();
    assert!(
        charges::succeeded_for_order(&mut conn, &id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        schedules::get(&mut conn, &w.org.id, &id)
            .unwrap()
            .schedule
            .unpaid_amount()
            .amount,
        10_000
    );
    drop(conn);

    // None of those used the key up.
    let res = regularize(
        &app,
        token,
        &id,
        key,
        &json!({"payments": 1, "card_token": card}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
}

// ------------------------------------------------------------------ contact channels

#[test]
fn contact_channels_default_to_the_seed_with_their_status_now() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;

    let res = get(&app, token, "/v1/me/contact-channels");

    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["time_zone"], "Europe/Paris");
    let data = body["data"].as_array().unwrap();
    let kinds: Vec<&str> = data.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["chat", "whatsapp", "contact_form", "chatbot", "faq"]
    );
    // Sunday 10:00 in Paris.
    assert_eq!(data[0]["open_now"], false);
    assert_eq!(data[0]["next_opening"], "2026-11-23T08:00:00Z");
    assert_eq!(data[0]["closes_at"], Value::Null);
    // Hours in the shape the business writes them (PUT /v1/admin/settings/contact-channels).
    assert_eq!(data[0]["hours"]["monday"], json!([["09:00", "20:00"]]));
    assert_eq!(data[0]["hours"]["sunday"], json!([]));
    assert_eq!(data[4]["open_now"], true);
    assert_eq!(data[4]["hours"], "always");

    // Monday 2026-11-23 at 10:00 UTC (11:00 in Paris): open until 20:00.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap());
    let token = &sign_in_again(&app, &w);
    let data = get(&app, token, "/v1/me/contact-channels").json()["data"].clone();
    assert_eq!(data[0]["open_now"], true);
    assert_eq!(data[0]["closes_at"], "2026-11-23T19:00:00Z");
    assert_eq!(data[0]["next_opening"], Value::Null);
}

#[test]
fn stored_contact_channels_are_shown_in_the_organizations_zone() {
    let app = TestApp::spawn();
    let w = world(&app);
    let channels = json!([
        {"kind": "phone", "label": "Service client", "hours": {"weekly": [
            [["08:00:00", "12:00:00"]], [], [], [], [], [], []
        ]}},
        {"kind": "faq", "label": "FAQ", "hours": "always"}
    ]);
    {
        let mut conn = app.store.conn().unwrap();
        payment::put_contact_channels(
            &mut conn,
            &w.org.id,
            "America/New_York",
            &channels.to_string(),
            Utc::now(),
        )
        .unwrap();
    }

    let body = get(&app, &w.a_tokens.access, "/v1/me/contact-channels").json();

    assert_eq!(body["time_zone"], "America/New_York");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["kind"], "phone");
    assert_eq!(data[0]["label"], "Service client");
    // Monday 8:00 in New York (UTC−5) is 13:00 UTC.
    assert_eq!(data[0]["open_now"], false);
    assert_eq!(data[0]["next_opening"], "2026-11-23T13:00:00Z");
    assert_eq!(data[1]["open_now"], true);
}

#[test]
fn a_payment_in_flight_holds_other_keys_until_it_is_settled_or_abandoned() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let card = tokenize(&app, test_cards::MASTERCARD, 12, 2030);
    let body = json!({"payments": 1, "card_token": card});
    // Another request recorded its payment for this debt a moment ago and
    // is still waiting for the gateway.
    let now = guichet_domain::Clock::now(&app.clock);
    let details = guichet_store::repo::regularizations::Details {
        customer_id: w.a.clone(),
        offered_on: now.date_naive(),
        offer: guichet_domain::schedule::offers(
            guichet_domain::Money::new(10_000, guichet_domain::Currency::parse("EUR").unwrap()),
            now.date_naive(),
        )
        .remove(0),
        card_token: card.clone(),
        card: guichet_domain::card::CardView {
            brand: guichet_domain::card::CardBrand::Mastercard,
            last4: "4444".into(),
            exp_month: 12,
            exp_year: 2030,
            funding: guichet_domain::card::Funding::Credit,
        },
        replace_card: true,
    };
    let in_flight = charges::Charge {
        id: "chg_inflight".into(),
        org_id: w.org.id.clone(),
        order_id: id.clone(),
        instalment_id: None,
        idempotency_key: "gateway-key-of-the-first-request".into(),
        amount: details.offer.parts[0].1,
        status: "pending".into(),
        gateway_charge_id: None,
        failure_code: None,
        created_at: now,
        purpose: charges::REGULARIZATION.into(),
        request: Some((w.a.clone(), "reg-first".into())),
        details: Some(details.to_json().unwrap()),
    };
    charges::insert_pending(&mut app.store.conn().unwrap(), &in_flight).unwrap();

    let refused = regularize(&app, token, &id, Some("reg-race-2"), &body);

    let problem = refused.assert_problem(409, "regularization_in_progress");
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    assert!(problem["contact_channels"]["data"].is_array(), "{problem}");
    let s = schedule(&app, token, &id);
    assert_eq!(s["unpaid"]["amount"], 10_000, "nothing was charged: {s}");
    assert!(s["adjustments"].as_array().unwrap().is_empty());

    // Past the lease, the first request is gone: its payment, which the
    // gateway never received, is given up, and this one goes through.
    app.clock.advance(chrono::Duration::seconds(61));
    let token = sign_in_again(&app, &w);
    let res = regularize(&app, &token, &id, Some("reg-race-2"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["unpaid"]["amount"], 0);
    let mut conn = app.store.conn().unwrap();
    let first = charges::get(&mut conn, "chg_inflight").unwrap();
    assert_eq!(first.status, "failed");
    assert_eq!(first.failure_code.as_deref(), Some("abandoned"));
    assert_eq!(
        charges::succeeded_for_order(&mut conn, &id).unwrap().len(),
        1
    );
}

#[test]
fn paying_at_once_puts_the_card_on_the_schedule_unless_the_customer_keeps_the_old_one() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let card = tokenize(&app, test_cards::MASTERCARD, 12, 2030);

    let kept = unpaid_order(&app, &w);
    let body = json!({"payments": 1, "card_token": card, "keep_card": true});
    let res = regularize(&app, token, &kept, Some("reg-keep"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["card"]["last4"], "4242", "kept");
    assert_eq!(res.json()["unpaid"]["amount"], 0);

    let moved = unpaid_order(&app, &w);
    let body = json!({"payments": 1, "card_token": card});
    let res = regularize(&app, token, &moved, Some("reg-move"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["card"]["last4"],
        "4444",
        "the new card pays what is left"
    );

    // keep_card is for one payment only: a plan is paid by the new card.
    let third = unpaid_order(&app, &w);
    let body = json!({"payments": 3, "card_token": card, "keep_card": true});
    let problem = regularize(&app, token, &third, Some("reg-keep-3"), &body)
        .assert_problem(400, "invalid_field");
    assert_eq!(problem["errors"][0]["field"], "keep_card");
    assert_eq!(schedule(&app, token, &third)["unpaid"]["amount"], 10_000);
    // A wrong type is refused like any other.
    let body = json!({"payments": 1, "card_token": card, "keep_card": "yes"});
    regularize(&app, token, &third, Some("reg-keep-t"), &body).assert_problem(400, "invalid_field");
}

#[test]
fn a_card_paying_later_debits_must_cover_the_last_debit_left_of_plan_and_schedule() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    // The schedule's last pending debit is on 2027-01-01; a plan in two
    // payments ends on 2026-12-22. A card valid through December 2026
    // covers the plan but not the schedule.
    let id = unpaid_order(&app, &w);
    let short = tokenize(&app, test_cards::MASTERCARD, 12, 2026);
    for (payments, key) in [(2, "reg-short-2"), (1, "reg-short-1")] {
        let body = json!({"payments": payments, "card_token": short});
        let problem = regularize(&app, token, &id, Some(key), &body)
            .assert_problem(422, "card_expires_before_last_instalment");
        assert_eq!(problem["last_due_date"], "2027-01-01", "{problem}");
        assert!(problem["contact_channels"]["data"].is_array(), "{problem}");
    }
    // Paying once while keeping the schedule's card only needs a valid card.
    let body = json!({"payments": 1, "card_token": short, "keep_card": true});
    let res = regularize(&app, token, &id, Some("reg-short-keep"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["card"]["last4"], "4242");
}

#[test]
fn every_refused_regularization_carries_the_collections_phone_and_the_channels() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let mut conn = app.store.conn().unwrap();
    let mut settings = payment::get(&mut conn, &w.org.id).unwrap();
    settings.collections_phone = Some("01 23 45 67 89".into());
    payment::put(&mut conn, &settings, Utc::now()).unwrap();
    drop(conn);
    let id = unpaid_order(&app, &w);
    let cases = [
        (test_cards::AMEX, 12, 2030, 422, "card_brand_not_accepted"),
        (
            test_cards::MASTERCARD,
            12,
            2026,
            422,
            "card_expires_before_last_instalment",
        ),
        (
            test_cards::INSUFFICIENT_FUNDS,
            12,
            2030,
            422,
            "payment_failed",
        ),
        (
            test_cards::PROCESSING_ERROR,
            12,
            2030,
            422,
            "payment_failed",
        ),
    ];
    for (n, (number, month, year, status, code)) in cases.into_iter().enumerate() {
        let card = tokenize(&app, number, month, year);
        let body = json!({"payments": 2, "card_token": card});
        let problem = regularize(&app, token, &id, Some(&format!("reg-refused-{n}")), &body)
            .assert_problem(status, code);
        assert_eq!(
            problem["collections"]["tel"], "tel:0123456789",
            "{code}: {problem}"
        );
        assert_eq!(problem["collections"]["phone"], "01 23 45 67 89");
        assert!(
            !problem["contact_channels"]["data"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    let res = get(&app, token, "/v1/me/contact-channels");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["collections"]["tel"], "tel:0123456789");
    assert_eq!(schedule(&app, token, &id)["unpaid"]["amount"], 10_000);
}

#[test]
fn a_processing_error_is_a_refused_attempt_and_the_next_one_has_its_own_gateway_key() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let failing = tokenize(&app, test_cards::PROCESSING_ERROR, 12, 2030);
    let body = json!({"payments": 1, "card_token": failing});
    let problem =
        regularize(&app, token, &id, Some("reg-pe-1"), &body).assert_problem(422, "payment_failed");
    assert_eq!(problem["reason"], "processing_error");
    // The same key replays the refusal; a new one is a new attempt.
    let again = regularize(&app, token, &id, Some("reg-pe-1"), &body);
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let good = tokenize(&app, test_cards::VISA, 12, 2030);
    let body = json!({"payments": 1, "card_token": good});
    let res = regularize(&app, token, &id, Some("reg-pe-2"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    let mut conn = app.store.conn().unwrap();
    let attempts = guichet_store::repo::regularizations::of_order(&mut conn, &id).unwrap();
    assert_eq!(attempts.len(), 2);
    assert_ne!(attempts[0].idempotency_key, attempts[1].idempotency_key);
    let mut statuses: Vec<&str> = attempts.iter().map(|c| c.status.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["failed", "succeeded"]);
}

#[test]
fn a_timed_out_payment_is_looked_up_by_the_same_key_and_never_charged_twice() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.a_tokens.access;
    let id = unpaid_order(&app, &w);
    let card = tokenize(&app, test_cards::TIMEOUT, 12, 2030);
    let body = json!({"payments": 1, "card_token": card});

    regularize(&app, token, &id, Some("reg-to-1"), &body).assert_problem(503, "gateway_timeout");
    // Outcome unknown: other keys wait.
    regularize(&app, token, &id, Some("reg-to-2"), &body)
        .assert_problem(409, "regularization_in_progress");
    // The same key looks the charge up, finds it made, and finishes.
    let res = regularize(&app, token, &id, Some("reg-to-1"), &body);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["unpaid"]["amount"], 0);
    let mut conn = app.store.conn().unwrap();
    let attempts = guichet_store::repo::regularizations::of_order(&mut conn, &id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, "succeeded");
    drop(conn);
    // Now the debt is paid: another key finds nothing to pay.
    regularize(&app, token, &id, Some("reg-to-2"), &body)
        .assert_problem(409, "nothing_to_regularize");
}
