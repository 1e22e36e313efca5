//! The sandbox gateway over HTTP: the new test cards tokenize, and its
//! ledger (`GET /v1/sandbox/charges`, `GET /v1/sandbox/refunds`) shows what
//! it received, one organization at a time.
//!
//! Charges are sent by an in-process sandbox on the test server's store and
//! clock, as a debit run sends them: the ledger is shared by every sandbox
//! on the same database.

use std::sync::Arc;

use chrono::Duration;
use guichet_domain::gateway::{GatewayError, PaymentGateway, test_cards};
use guichet_domain::{Currency, Money};
use guichet_gateway::SandboxGateway;
use guichet_tests::identity::Org;
use guichet_tests::{Response, TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn sandbox(app: &TestApp) -> SandboxGateway {
    SandboxGateway::with_token_key(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        TEST_SECRET_KEY.as_bytes(),
    )
}

fn tokenize(app: &TestApp, number: &str) -> Value {
    let res = app
        .request("POST", "/v1/sandbox/card-tokens")
        .json(&json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

fn get(app: &TestApp, path: &str, token: &str) -> Response {
    app.request("GET", path).bearer(token).send()
}

fn ok(res: Response) -> Value {
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn api_key(app: &TestApp, org: &Org) -> String {
    let res = app
        .request("POST", "/v1/admin/api-keys")
        .bearer(&org.admin)
        .json(&json!({"name": "ledger reader"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["secret"].as_str().unwrap().to_owned()
}

fn keys(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["idempotency_key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_new_test_cards_tokenize() {
    let app = TestApp::spawn();
    for (number, last4) in [
        (test_cards::TIMEOUT, "0259"),
        (test_cards::PROCESSING_ERROR, "0119"),
        (test_cards::SLOW, "0077"),
        (test_cards::REFUND_FAILS, "5126"),
    ] {
        let body = tokenize(&app, number);
        let token = body["token"].as_str().unwrap();
        assert!(token.starts_with("tok_sandbox_"), "{body}");
        assert!(!token.contains(last4), "{body}");
        assert_eq!(body["card"]["brand"], "visa");
        assert_eq!(body["card"]["last4"], last4);
        assert_eq!(body["card"]["funding"], "credit");
        // The server's sandbox and another one read the same token.
        assert_eq!(sandbox(&app).card(token).unwrap().last4, last4);
    }
}

#[test]
fn the_ledger_lists_an_organizations_charges_and_refunds_newest_first() {
    let app = TestApp::spawn();
    let a = app.org("ledger-a");
    let b = app.org("ledger-b");
    let gw = sandbox(&app);
    let visa = tokenize(&app, test_cards::VISA)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let poor = tokenize(&app, test_cards::INSUFFICIENT_FUNDS)["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let first = gw.charge(&a.id, &visa, eur(10_000), "a-1").unwrap();
    app.clock.advance(Duration::minutes(1));
    assert_eq!(
        gw.charge(&a.id, &poor, eur(5_000), "a-2"),
        Err(GatewayError::InsufficientFunds)
    );
    app.clock.advance(Duration::minutes(1));
    gw.charge(&a.id, &visa, eur(3_000), "a-3").unwrap();
    // Sent again: still one charge.
    gw.charge(&a.id, &visa, eur(3_000), "a-3").unwrap();
    app.clock.advance(Duration::minutes(1));
    gw.charge(&b.id, &visa, eur(700), "b-1").unwrap();
    let refund = gw
        .refund(&a.id, &first.charge_id, eur(2_500), "a-r1")
        .unwrap();

    // First page: the two newest; then the rest.
    let page = ok(get(&app, "/v1/sandbox/charges?limit=2", &a.admin));
    assert_eq!(keys(&page), ["a-3", "a-2"]);
    let failed = &page["data"][1];
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["failure_code"], "insufficient_funds");
    assert_eq!(failed["amount"], json!({"amount": 5000, "currency": "EUR"}));
    assert_eq!(failed["card"], json!({"brand": "visa", "last4": "9995"}));
    assert_eq!(failed["refunded"], json!({"amount": 0, "currency": "EUR"}));
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = ok(get(
        &app,
        &format!("/v1/sandbox/charges?limit=2&cursor={cursor}"),
        &a.admin,
    ));
    assert_eq!(keys(&rest), ["a-1"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let charge = &rest["data"][0];
    assert_eq!(charge["id"], first.charge_id.as_str());
    assert_eq!(charge["outcome"], "succeeded");
    assert_eq!(charge["failure_code"], Value::Null);
    assert_eq!(charge["card"], json!({"brand": "visa", "last4": "4242"}));
    assert_eq!(
        charge["amount"],
        json!({"amount": 10000, "currency": "EUR"})
    );
    assert_eq!(
        charge["refunded"],
        json!({"amount": 2500, "currency": "EUR"})
    );
    assert_eq!(charge["created_at"], "2026-11-22T09:00:00Z");
    // No card data beyond brand and last four digits.
    assert!(!rest.to_string().contains("4242424242424242"));
    assert!(!rest.to_string().contains(&visa));

    // The default page holds them all; an API key reads them too.
    let key = api_key(&app, &a);
    let all = ok(get(&app, "/v1/sandbox/charges", &key));
    assert_eq!(keys(&all), ["a-3", "a-2", "a-1"]);
    assert_eq!(all["next_cursor"], Value::Null);

    let refunds = ok(get(&app, "/v1/sandbox/refunds", &a.admin));
    assert_eq!(keys(&refunds), ["a-r1"]);
    let item = &refunds["data"][0];
    assert_eq!(item["id"], refund.refund_id.as_str());
    assert_eq!(item["charge_id"], first.charge_id.as_str());
    assert_eq!(item["amount"], json!({"amount": 2500, "currency": "EUR"}));
    assert_eq!(item["outcome"], "succeeded");
    assert_eq!(item["failure_code"], Value::Null);
    assert_eq!(item["created_at"], "2026-11-22T09:03:00Z");

    // Another organization sees only its own.
    let theirs = ok(get(&app, "/v1/sandbox/charges", &b.admin));
    assert_eq!(keys(&theirs), ["b-1"]);
    let none = ok(get(&app, "/v1/sandbox/refunds", &b.admin));
    assert_eq!(none, json!({"data": [], "next_cursor": null}));
    // Its cursor is no use to them either.
    let crossed = ok(get(
        &app,
        &format!("/v1/sandbox/charges?cursor={cursor}"),
        &b.admin,
    ));
    assert_eq!(crossed["data"], json!([]));
}

#[test]
fn the_ledger_is_for_admins_and_api_keys() {
    let app = TestApp::spawn();
    let org = app.org("ledger-auth");
    let (_, customer) = app.registered_customer(&org, "client@ledger-auth.example.com", None);
    for path in ["/v1/sandbox/charges", "/v1/sandbox/refunds"] {
        get(&app, path, &customer.access).assert_problem(403, "forbidden");
        let res = app.request("GET", path).send();
        res.assert_problem(401, "unauthenticated");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
        for bad in ["limit=0", "limit=101", "limit=ten", "cursor=%21%21"] {
            get(&app, &format!("{path}?{bad}"), &org.admin)
                .assert_problem(400, "invalid_parameter");
        }
        ok(get(&app, &format!("{path}?limit=100"), &org.admin));
    }
}
