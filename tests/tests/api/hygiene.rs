//! Input hygiene at the edge, on every operation: control characters in
//! any string (body, nested, query, path), bodies and fields of the wrong
//! JSON type, and card numbers hidden inside free text. Each refusal is a
//! 400 problem naming the field, and nothing is stored.

use guichet_tests::identity::Org;
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

fn send(app: &TestApp, method: &str, path: &str, token: &str, body: &[u8]) -> Response {
    app.request(method, path)
        .bearer(token)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
}

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn customers(app: &TestApp, org: &Org) -> Vec<Value> {
    let res = app
        .request("GET", "/v1/admin/customers")
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["data"].as_array().unwrap().clone()
}

fn orders(app: &TestApp, org: &Org) -> Vec<Value> {
    let res = app
        .request("GET", "/v1/admin/orders")
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["data"].as_array().unwrap().clone()
}

fn order_body(customer_id: &str) -> Value {
    let (token, _) = sandbox_token("4242424242424242", 12, 2030);
    json!({
        "customer_id": customer_id,
        "order_number": "CMD-1",
        "merchant_brand": "Maison & Jardin",
        "purchase_date": "2026-11-20",
        "total": {"amount": 10000, "currency": "EUR"},
        "plan": [
            {"due_date": "2026-12-05", "amount": {"amount": 5000, "currency": "EUR"}},
            {"due_date": "2027-01-05", "amount": {"amount": 5000, "currency": "EUR"}},
        ],
        "card_token": token,
    })
}

#[test]
fn a_control_character_in_any_string_is_400_with_its_path_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    // Top level: NUL, escape and DEL, written as JSON escapes and raw.
    for body in [
        br#"{"name": "Cl\u0000aire", "email": "nul@example.com"}"#.to_vec(),
        br#"{"name": "Claire\u001b[31m", "email": "nul@example.com"}"#.to_vec(),
        "{\"name\": \"Claire\u{7f}\", \"email\": \"nul@example.com\"}"
            .as_bytes()
            .to_vec(),
        br#"{"name": "Claire", "email": "nul@example.com", "external_ref": "A\u0000"}"#.to_vec(),
    ] {
        let res = send(&app, "POST", "/v1/admin/customers", &org.admin, &body);
        let problem = res.assert_problem(400, "invalid_field");
        let errors = fields(&problem);
        assert_eq!(errors.len(), 1, "{problem}");
        assert_eq!(errors[0].1, "control_character", "{problem}");
        assert!(errors[0].0 == "name" || errors[0].0 == "external_ref");
    }
    assert!(customers(&app, &org).is_empty());

    // Nested, in an array: the path names the element.
    let customer = app.customer(&org, "claire@example.com", None);
    let mut body = order_body(customer["id"].as_str().unwrap());
    body["plan"][1]["due_date"] = json!("2027-01-05\u{0}");
    let res = app
        .request("POST", "/v1/admin/orders")
        .bearer(&org.admin)
        .json(&body)
        .send();
    let problem = res.assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [(
            "plan[1].due_date".to_owned(),
            "control_character".to_owned()
        )]
    );
    body = order_body(customer["id"].as_str().unwrap());
    body["total"]["currency"] = json!("EU\u{1}R");
    let problem = app
        .request("POST", "/v1/admin/orders")
        .bearer(&org.admin)
        .json(&body)
        .send()
        .assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [("total.currency".to_owned(), "control_character".to_owned())]
    );
    assert!(orders(&app, &org).is_empty());

    // An update: refused, the customer unchanged.
    let path = format!("/v1/admin/customers/{}", customer["id"].as_str().unwrap());
    let problem = send(&app, "PATCH", &path, &org.admin, br#"{"name": "\u0000"}"#)
        .assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [("name".to_owned(), "control_character".to_owned())]
    );
    let after = app.request("GET", &path).bearer(&org.admin).send().json();
    assert_eq!(after["name"], customer["name"]);

    // Public routes too.
    let problem = app
        .request("POST", "/v1/auth/login")
        .json(
            &json!({"organization": "acme", "email": "claire@example.com", "password": "x\u{0}y"}),
        )
        .send()
        .assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [("password".to_owned(), "control_character".to_owned())]
    );

    // Tab, carriage return and line feed are text.
    let res = app
        .request("POST", "/v1/admin/customers")
        .bearer(&org.admin)
        .json(&json!({"name": "Claire\tMartin\r\n", "email": "tab@example.com"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn a_control_character_in_a_query_or_path_parameter_is_400() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let customer = app.customer(&org, "claire@example.com", None);
    for (path, field) in [
        ("/v1/admin/customers?cursor=%00", "cursor"),
        ("/v1/admin/customers?limit=1&cursor=a%1Fb", "cursor"),
        ("/v1/admin/orders?status=%00active", "status"),
        ("/v1/admin/customers/cus_%00", "(path)"),
    ] {
        let problem = app
            .request("GET", path)
            .bearer(&org.admin)
            .send()
            .assert_problem(400, "invalid_parameter");
        assert_eq!(
            fields(&problem),
            [(field.to_owned(), "control_character".to_owned())],
            "{path}"
        );
    }
    // Nothing changed, and plain parameters still work.
    let res = app
        .request("GET", "/v1/admin/customers?limit=5")
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["data"][0]["id"], customer["id"]);
}

#[test]
fn a_body_of_the_wrong_json_type_is_400_naming_the_expected_type() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    // The sandbox took an array of a card's fields for the card.
    for body in [
        br#"["4242424242424242", 12, 2030, "123"]"#.as_slice(),
        br#""4242424242424242""#,
        b"42",
        b"null",
    ] {
        let res = app
            .request("POST", "/v1/sandbox/card-tokens")
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send();
        let problem = res.assert_problem(400, "invalid_field");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("un objet JSON"),
            "{problem}"
        );
    }
    let res = app
        .request("POST", "/v1/admin/customers")
        .bearer(&org.admin)
        .header("accept-language", "en")
        .header("content-type", "application/json")
        .body(br#"["Claire", "claire@example.com"]"#.to_vec())
        .send();
    let problem = res.assert_problem(400, "invalid_field");
    assert_eq!(problem["detail"], "The body must be a JSON object.");
    assert!(customers(&app, &org).is_empty());

    // Nested: an object given as an array.
    let customer = app.customer(&org, "claire@example.com", None);
    let mut body = order_body(customer["id"].as_str().unwrap());
    body["total"] = json!([10000, "EUR"]);
    let problem = app
        .request("POST", "/v1/admin/orders")
        .bearer(&org.admin)
        .json(&body)
        .send()
        .assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [("total".to_owned(), "invalid_type".to_owned())]
    );
    assert!(orders(&app, &org).is_empty());
}

#[test]
fn a_type_error_names_the_field() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let before = app
        .request("GET", "/v1/admin/organization")
        .bearer(&org.admin)
        .send()
        .json();
    // Enum fields, given a number, a boolean, an object.
    for (body, field) in [
        (json!({"login_methods": 5}), "login_methods"),
        (json!({"login_methods": ["password"]}), "login_methods"),
        (json!({"locale": true}), "locale"),
        (json!({"name": 12}), "name"),
    ] {
        let problem = app
            .request("PATCH", "/v1/admin/organization")
            .bearer(&org.admin)
            .header("accept-language", "en")
            .json(&body)
            .send()
            .assert_problem(400, "invalid_field");
        assert_eq!(
            fields(&problem),
            [(field.to_owned(), "invalid_type".to_owned())],
            "{body}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    let customer = app.customer(&org, "claire@example.com", None);
    let mut body = order_body(customer["id"].as_str().unwrap());
    body["plan"][0]["amount"]["amount"] = json!("5000");
    let problem = app
        .request("POST", "/v1/admin/orders")
        .bearer(&org.admin)
        .json(&body)
        .send()
        .assert_problem(400, "invalid_field");
    assert_eq!(
        fields(&problem),
        [(
            "plan[0].amount.amount".to_owned(),
            "invalid_type".to_owned()
        )]
    );
    let after = app
        .request("GET", "/v1/admin/organization")
        .bearer(&org.admin)
        .send()
        .json();
    assert_eq!(before, after);
    assert!(orders(&app, &org).is_empty());
}

#[test]
fn a_card_number_inside_free_text_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    for name in [
        "my card 4242 4242 4242 4242 thanks",
        "Carte 4000056655665556 exp 12/30",
        "pan:5555-5555-5555-4444.",
    ] {
        let res = app
            .request("POST", "/v1/admin/customers")
            .bearer(&org.admin)
            .json(&json!({"name": name, "email": "pan@example.com"}))
            .send();
        let problem = res.assert_problem(400, "card_number_refused");
        let text = problem.to_string();
        assert!(!text.contains("4242") && !text.contains("5556") && !text.contains("4444"));
        assert_eq!(
            fields(&problem),
            [("name".to_owned(), "card_number".to_owned())]
        );
    }
    assert!(customers(&app, &org).is_empty());

    let customer = app.customer(&org, "claire@example.com", None);
    let mut body = order_body(customer["id"].as_str().unwrap());
    body["merchant_brand"] = json!("Carte 4000056655665556 exp 12/30");
    app.request("POST", "/v1/admin/orders")
        .bearer(&org.admin)
        .json(&body)
        .send()
        .assert_problem(400, "card_number_refused");
    assert!(orders(&app, &org).is_empty());

    // Numbers that are not card numbers pass: an IBAN, a phone number, an
    // order number that fails the Luhn check, a date.
    for (reference, email) in [
        ("FR76 3000 6000 0112 3456 7890 189", "iban@example.com"),
        ("+33 6 12 34 56 78", "phone@example.com"),
        // 15 digits that pass the Luhn check, as one phone number in ten
        // does: after `+`, a phone number.
        ("+605414666789641", "luhn-phone@example.com"),
        ("Commande 4242424242424241", "order@example.com"),
        ("2026-11-22 12345", "date@example.com"),
    ] {
        let res = app
            .request("POST", "/v1/admin/customers")
            .bearer(&org.admin)
            .json(&json!({"name": "Ok", "email": email, "external_ref": reference}))
            .send();
        assert_eq!(res.status, 201, "{reference}: {}", res.text());
    }

    // The sandbox's tokenization is the one route that takes card numbers.
    let res = app
        .request("POST", "/v1/sandbox/card-tokens")
        .json(&json!({"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
}
