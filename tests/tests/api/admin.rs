//! The business side: customers, staff, API keys, organization settings.

use std::collections::HashSet;

use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

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

fn patch(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, "PATCH", path, token, Some(body))
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    }
}

fn customer_path(id: &str) -> String {
    format!("/v1/admin/customers/{id}")
}

fn create_customer(app: &TestApp, token: &str, body: &Value) -> Response {
    post(app, "/v1/admin/customers", token, body)
}

/// The ids on one page of `/v1/admin/customers?{query}`, and the cursor.
fn page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, Value) {
    let body = ok(
        get(app, &format!("/v1/admin/customers?{query}"), token),
        200,
    );
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["next_cursor"].clone())
}

/// Every customer the store holds for `org` (what a refused request must
/// not have added to).
fn stored_customers(app: &TestApp, org: &Org) -> usize {
    let mut conn = app.store.conn().unwrap();
    guichet_store::repo::customers::list(&mut conn, &org.id, None, 100)
        .unwrap()
        .len()
}

fn staff_list(app: &TestApp, org: &Org) -> Vec<Value> {
    ok(get(app, "/v1/admin/staff", &org.admin), 200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn staff_id(app: &TestApp, org: &Org, email: &str) -> String {
    staff_list(app, org)
        .iter()
        .find(|s| s["email"] == email)
        .unwrap_or_else(|| panic!("no staff member {email}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds a staff member with `role` and completes their setup with the
/// token e-mailed to them; returns their id and access token.
fn staff_member(app: &TestApp, org: &Org, email: &str, role: &str) -> (String, String) {
    let created = ok(
        post(
            app,
            "/v1/admin/staff",
            &org.admin,
            &json!({"email": email, "name": "Member", "role": role}),
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
    (
        created["id"].as_str().unwrap().to_owned(),
        signed_in["access_token"].as_str().unwrap().to_owned(),
    )
}

fn staff_login(app: &TestApp, org: &Org, email: &str) -> Response {
    app.request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": org.slug, "email": email, "password": PASSWORD}))
        .send()
}

/// A new API key of `org`: its id and secret.
fn api_key(app: &TestApp, org: &Org) -> (String, String) {
    let key = ok(
        post(
            app,
            "/v1/admin/api-keys",
            &org.admin,
            &json!({"name": "billing back-office"}),
        ),
        201,
    );
    (
        key["id"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    )
}

fn field_errors(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every admin operation with a body that would succeed for an admin.
fn admin_routes(
    customer_id: &str,
    staff_id: &str,
    key_id: &str,
) -> Vec<(&'static str, String, Option<Value>)> {
    let customer = customer_path(customer_id);
    vec![
        ("GET", "/v1/admin/customers".into(), None),
        (
            "POST",
            "/v1/admin/customers".into(),
            Some(json!({"name": "Intruder", "email": "intruder@example.com"})),
        ),
        ("GET", customer.clone(), None),
        ("PATCH", customer.clone(), Some(json!({"name": "Renamed"}))),
        ("POST", format!("{customer}/block"), None),
        ("POST", format!("{customer}/unblock"), None),
        ("POST", format!("{customer}/activation-codes"), None),
        ("GET", "/v1/admin/staff".into(), None),
        (
            "POST",
            "/v1/admin/staff".into(),
            Some(
                json!({"email": "intruder@acme.example.com", "name": "Intruder", "role": "admin"}),
            ),
        ),
        (
            "PATCH",
            format!("/v1/admin/staff/{staff_id}"),
            Some(json!({"role": "admin"})),
        ),
        ("GET", "/v1/admin/api-keys".into(), None),
        (
            "POST",
            "/v1/admin/api-keys".into(),
            Some(json!({"name": "intruder"})),
        ),
        ("DELETE", format!("/v1/admin/api-keys/{key_id}"), None),
        ("GET", "/v1/admin/organization".into(), None),
        (
            "PATCH",
            "/v1/admin/organization".into(),
            Some(json!({"name": "Renamed"})),
        ),
    ]
}

// ---------------------------------------------------------------- customers

#[test]
fn creating_a_customer_answers_201_with_location_and_normalized_fields() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = create_customer(
        &app,
        &org.admin,
        &json!({
            "name": "  Claire Martin ",
            "email": "Claire.Martin@Example.COM",
            "mobile": "+33612345678",
        }),
    );

    let body = ok(res.clone(), 201);
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"), "{body}");
    assert_eq!(res.header("location"), Some(customer_path(id).as_str()));
    assert_eq!(body["name"], "Claire Martin");
    assert_eq!(body["email"], "claire.martin@example.com");
    assert_eq!(body["mobile"], "+33612345678");
    assert_eq!(body["locale"], "fr");
    assert_eq!(body["registered"], false);
    assert_eq!(body["registered_at"], Value::Null);
    assert_eq!(body["blocked"], false);
    assert_eq!(body["blocked_at"], Value::Null);
    assert!(!res.text().contains("password"), "{body}");
    let fetched = ok(get(&app, &customer_path(id), &org.admin), 200);
    assert_eq!(fetched, body);
}

#[test]
fn a_customer_can_be_created_in_english_without_a_mobile() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let body = ok(
        create_customer(
            &app,
            &org.admin,
            &json!({"name": "Paul", "email": "paul@example.com", "locale": "en"}),
        ),
        201,
    );

    assert_eq!(body["locale"], "en");
    assert_eq!(body["mobile"], Value::Null);
}

#[test]
fn an_unknown_customer_id_is_404() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = get(&app, &customer_path("cus_00000000000000000000"), &org.admin);

    res.assert_problem(404, "not_found");
}

#[test]
fn a_duplicate_email_in_the_same_organization_is_409_whatever_its_case() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    let res = create_customer(
        &app,
        &org.admin,
        &json!({"name": "Claire again", "email": "Claire@Example.com"}),
    );

    let problem = res.assert_problem(409, "email_already_used");
    assert_eq!(field_errors(&problem), ["email"]);
    assert_eq!(stored_customers(&app, &org), 1);
}

#[test]
fn the_same_email_in_another_organization_is_fine() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    app.customer(&acme, "claire@example.com", None);

    let res = create_customer(
        &app,
        &globex.admin,
        &json!({"name": "Claire", "email": "claire@example.com"}),
    );

    ok(res, 201);
    assert_eq!(stored_customers(&app, &acme), 1);
    assert_eq!(stored_customers(&app, &globex), 1);
}

#[test]
fn invalid_customer_fields_are_400_on_their_field_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let valid = json!({"name": "Claire", "email": "claire@example.com"});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("email", json!("claire.example.com")),
            "invalid_field",
            "email",
        ),
        (with("email", json!("claire@")), "invalid_field", "email"),
        (
            with("mobile", json!("0612345678")),
            "invalid_field",
            "mobile",
        ),
        (
            with("mobile", json!("+33 6 12 34 56 78")),
            "invalid_field",
            "mobile",
        ),
        (with("locale", json!("de")), "invalid_field", "locale"),
        (with("name", json!("")), "invalid_field", "name"),
        (
            with("name", json!("a".repeat(201))),
            "invalid_field",
            "name",
        ),
        (with("name", json!(42)), "invalid_field", "name"),
        (
            with("password", json!(PASSWORD)),
            "unknown_field",
            "password",
        ),
        (json!({"name": "Claire"}), "invalid_field", "email"),
    ];

    for (body, code, field) in cases {
        let res = create_customer(&app, &org.admin, &body);

        let problem = res.assert_problem(400, code);
        assert_eq!(field_errors(&problem), [field], "{body}: {problem}");
    }
    assert_eq!(stored_customers(&app, &org), 0);
    let (ids, _) = page(&app, &org.admin, "limit=100");
    assert!(ids.is_empty(), "{ids:?}");
}

#[test]
fn a_name_of_200_characters_is_the_longest_accepted() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = create_customer(
        &app,
        &org.admin,
        &json!({"name": "é".repeat(200), "email": "claire@example.com"}),
    );

    assert_eq!(ok(res, 201)["name"], "é".repeat(200));
}

#[test]
fn a_blank_name_is_refused_on_create_and_on_update() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = app.customer(&org, "paul@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let created = create_customer(
        &app,
        &org.admin,
        &json!({"name": "   ", "email": "claire@example.com"}),
    );
    let updated = patch(
        &app,
        &customer_path(&id),
        &org.admin,
        &json!({"name": "  "}),
    );

    let problem = created.assert_problem(400, "invalid_field");
    assert_eq!(field_errors(&problem), ["name"]);
    let problem = updated.assert_problem(400, "invalid_field");
    assert_eq!(field_errors(&problem), ["name"]);
    assert_eq!(stored_customers(&app, &org), 1);
    assert_eq!(
        ok(get(&app, &customer_path(&id), &org.admin), 200)["name"],
        "Test Customer"
    );
}

#[test]
fn listing_pages_through_customers_with_limit_and_cursor() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let created: HashSet<String> = (1..=5)
        .map(|i| {
            app.customer(&org, &format!("c{i}@example.com"), None)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    let (first, cursor1) = page(&app, &org.admin, "limit=2");
    let (second, cursor2) = page(
        &app,
        &org.admin,
        &format!("limit=2&cursor={}", cursor1.as_str().unwrap()),
    );
    let (third, cursor3) = page(
        &app,
        &org.admin,
        &format!("limit=2&cursor={}", cursor2.as_str().unwrap()),
    );

    assert_eq!((first.len(), second.len(), third.len()), (2, 2, 1));
    assert_eq!(cursor3, Value::Null);
    let all: Vec<String> = [first, second, third].concat();
    let seen: HashSet<String> = all.iter().cloned().collect();
    assert_eq!(seen.len(), 5, "no duplicates: {all:?}");
    assert_eq!(seen, created);
    let (everything, cursor) = page(&app, &org.admin, "");
    assert_eq!(everything, all, "pages follow the default order");
    assert_eq!(cursor, Value::Null);
}

#[test]
fn an_exact_last_page_has_no_cursor() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    for i in 1..=2 {
        app.customer(&org, &format!("c{i}@example.com"), None);
    }

    let (ids, cursor) = page(&app, &org.admin, "limit=2");

    assert_eq!(ids.len(), 2);
    assert_eq!(cursor, Value::Null);
}

#[test]
fn any_cursor_of_the_documented_shape_is_a_position_and_others_are_400() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let mut ids: Vec<String> = (1..=3)
        .map(|i| {
            app.customer(&org, &format!("c{i}@example.com"), None)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();

    // A cursor is a position in the id order, whether or not an item has it.
    assert_eq!(page(&app, &org.admin, "cursor=0").0, ids);
    assert_eq!(page(&app, &org.admin, "cursor=zzz").0, Vec::<String>::new());
    assert_eq!(
        page(&app, &org.admin, &format!("cursor={}", ids[0])).0,
        ids[1..]
    );
    assert_eq!(
        page(&app, &org.admin, &format!("cursor={}", "A".repeat(64)))
            .0
            .len(),
        3
    );

    for cursor in ["Europe%2FParis", "a.b", "%C3%A9t%C3%A9", &"a".repeat(65)] {
        let res = get(
            &app,
            &format!("/v1/admin/customers?cursor={cursor}"),
            &org.admin,
        );
        res.assert_problem(400, "invalid_parameter");
    }
}

#[test]
fn bad_paging_parameters_are_400_invalid_parameter() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    for query in [
        "limit=0",
        "limit=101",
        "cursor=***",
        "limit=-1",
        "limit=ten",
    ] {
        let res = get(&app, &format!("/v1/admin/customers?{query}"), &org.admin);

        res.assert_problem(400, "invalid_parameter");
    }
    assert_eq!(page(&app, &org.admin, "limit=100").0.len(), 1);
    assert_eq!(page(&app, &org.admin, "limit=1").0.len(), 1);
}

#[test]
fn patch_changes_the_given_fields_keeps_absent_ones_and_null_clears_the_mobile() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let created = ok(
        create_customer(
            &app,
            &org.admin,
            &json!({
                "name": "Claire",
                "email": "claire@example.com",
                "mobile": "+33612345678",
                "locale": "en",
            }),
        ),
        201,
    );
    let path = customer_path(created["id"].as_str().unwrap());

    let renamed = ok(
        patch(
            &app,
            &path,
            &org.admin,
            &json!({"name": "Claire Martin", "mobile": "+33698765432"}),
        ),
        200,
    );
    let cleared = ok(
        patch(&app, &path, &org.admin, &json!({"mobile": null})),
        200,
    );

    assert_eq!(renamed["name"], "Claire Martin");
    assert_eq!(renamed["mobile"], "+33698765432");
    assert_eq!(renamed["email"], "claire@example.com");
    assert_eq!(renamed["locale"], "en");
    assert_eq!(cleared["mobile"], Value::Null);
    assert_eq!(cleared["name"], "Claire Martin");
    assert_eq!(cleared["email"], "claire@example.com");
    assert_eq!(cleared["locale"], "en");
    assert_eq!(ok(get(&app, &path, &org.admin), 200), cleared);
}

#[test]
fn patch_refuses_bad_values_and_changes_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let created = app.customer(&org, "claire@example.com", Some("+33612345678"));
    let path = customer_path(created["id"].as_str().unwrap());

    for (body, code, field) in [
        (json!({"mobile": "0612345678"}), "invalid_field", "mobile"),
        (json!({"email": "nope"}), "invalid_field", "email"),
        (json!({"locale": "de"}), "invalid_field", "locale"),
        (json!({"name": "x".repeat(201)}), "invalid_field", "name"),
        (json!({"nickname": "Clo"}), "unknown_field", "nickname"),
    ] {
        let res = patch(&app, &path, &org.admin, &body);

        let problem = res.assert_problem(400, code);
        assert_eq!(field_errors(&problem), [field], "{body}");
    }
    let now = ok(get(&app, &path, &org.admin), 200);
    assert_eq!(now["mobile"], "+33612345678");
    assert_eq!(now["email"], "claire@example.com");
    assert_eq!(now["name"], "Test Customer");
}

#[test]
fn patch_to_an_email_already_used_is_409_and_changes_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    let paul = app.customer(&org, "paul@example.com", None);
    let path = customer_path(paul["id"].as_str().unwrap());

    let res = patch(
        &app,
        &path,
        &org.admin,
        &json!({"email": "CLAIRE@example.com", "name": "Paul Durand"}),
    );

    let problem = res.assert_problem(409, "email_already_used");
    assert_eq!(field_errors(&problem), ["email"]);
    let now = ok(get(&app, &path, &org.admin), 200);
    assert_eq!(now["email"], "paul@example.com");
    assert_eq!(now["name"], "Test Customer");
}

#[test]
fn patch_to_a_new_email_moves_the_login_once_the_customer_confirms_it() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);

    let res = patch(
        &app,
        &customer_path(&id),
        &org.admin,
        &json!({"email": "Claire.Martin@Example.com"}),
    );

    // The customer has access: the new address waits for confirmation.
    let view = ok(res, 200);
    assert_eq!(view["email"], "claire@example.com");
    assert_eq!(
        view["pending_contact_changes"][0]["value"],
        "claire.martin@example.com"
    );
    app.login(&org, "claire.martin@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
    let code = app
        .nth_message("claire.martin@example.com", 1)
        .code(6)
        .unwrap();
    let change = view["pending_contact_changes"][0]["id"].as_str().unwrap();
    let confirmed = app
        .request(
            "POST",
            &format!("/v1/me/contact-changes/{change}/confirmation"),
        )
        .bearer(&tokens.access)
        .json(&json!({"code": code}))
        .send();
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(
        app.login(&org, "claire.martin@example.com", PASSWORD)
            .status,
        200
    );
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
}

// ---------------------------------------------------------------- isolation

fn assert_foreign_customer_is_404(app: &TestApp, token: &str, id: &str) {
    let path = customer_path(id);
    for (method, path, body) in [
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), Some(json!({"name": "Hijacked"}))),
        ("POST", format!("{path}/block"), None),
        ("POST", format!("{path}/unblock"), None),
        ("POST", format!("{path}/activation-codes"), None),
    ] {
        let res = call(app, method, &path, token, body.as_ref());

        res.assert_problem(404, "not_found");
    }
}

#[test]
fn another_organizations_admin_gets_404_on_a_customer() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    let id = app.customer(&acme, "claire@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_foreign_customer_is_404(&app, &globex.admin, &id);

    let still = ok(get(&app, &customer_path(&id), &acme.admin), 200);
    assert_eq!(still["name"], "Test Customer");
    assert_eq!(still["blocked"], false);
}

#[test]
fn another_organizations_api_key_gets_404_on_a_customer() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    let (_, key) = api_key(&app, &globex);
    let (id, tokens) = app.registered_customer(&acme, "claire@example.com", None);

    assert_foreign_customer_is_404(&app, &key, &id);

    let still = ok(get(&app, &customer_path(&id), &acme.admin), 200);
    assert_eq!(still["name"], "Test Customer");
    assert_eq!(still["blocked"], false);
    assert_eq!(
        get(&app, "/v1/me", &tokens.access).status,
        200,
        "the block did not reach the customer"
    );
}

#[test]
fn lists_never_show_another_organizations_customers() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    let (_, globex_key) = api_key(&app, &globex);
    let acme_ids: HashSet<String> = ["a1@example.com", "a2@example.com"]
        .iter()
        .map(|e| {
            app.customer(&acme, e, None)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let globex_id = app.customer(&globex, "g1@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (seen_by_acme, _) = page(&app, &acme.admin, "limit=100");
    let (seen_by_globex, _) = page(&app, &globex.admin, "limit=100");
    let (seen_by_key, _) = page(&app, &globex_key, "limit=100");

    assert_eq!(seen_by_acme.into_iter().collect::<HashSet<_>>(), acme_ids);
    assert_eq!(seen_by_globex, [globex_id.as_str()]);
    assert_eq!(seen_by_key, [globex_id]);
}

#[test]
fn a_cursor_from_another_organization_shows_nothing_of_it() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    for i in 1..=3 {
        app.customer(&acme, &format!("a{i}@example.com"), None);
    }
    let (_, cursor) = page(&app, &acme.admin, "limit=1");

    let (ids, next) = page(
        &app,
        &globex.admin,
        &format!("cursor={}", cursor.as_str().unwrap()),
    );

    assert!(ids.is_empty(), "{ids:?}");
    assert_eq!(next, Value::Null);
}

#[test]
fn staff_and_keys_of_another_organization_are_404() {
    let app = TestApp::spawn();
    let acme = app.org("acme");
    let globex = app.org("globex");
    let acme_admin = staff_id(&app, &acme, &acme.admin_email);
    let (acme_key_id, acme_key) = api_key(&app, &acme);

    let demote = patch(
        &app,
        &format!("/v1/admin/staff/{acme_admin}"),
        &globex.admin,
        &json!({"disabled": true}),
    );
    let revoke = call(
        &app,
        "DELETE",
        &format!("/v1/admin/api-keys/{acme_key_id}"),
        &globex.admin,
        None,
    );

    demote.assert_problem(404, "not_found");
    revoke.assert_problem(404, "not_found");
    assert_eq!(get(&app, "/v1/admin/staff", &acme.admin).status, 200);
    assert_eq!(get(&app, "/v1/admin/customers", &acme_key).status, 200);
    let globex_staff = staff_list(&app, &globex);
    assert_eq!(globex_staff.len(), 1, "{globex_staff:?}");
    let keys = ok(get(&app, "/v1/admin/api-keys", &globex.admin), 200);
    assert_eq!(keys["data"], json!([]));
}

// -------------------------------------------------------------------- roles

#[test]
fn admin_routes_without_a_token_are_401_unauthenticated() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let customer = app.customer(&org, "claire@example.com", None);
    let admin = staff_id(&app, &org, &org.admin_email);
    let (key, _) = api_key(&app, &org);

    for (method, path, body) in admin_routes(customer["id"].as_str().unwrap(), &admin, &key) {
        let request = app.request(method, &path);
        let res = match &body {
            Some(body) => request.json(body).send(),
            None => request.send(),
        };

        res.assert_problem(401, "unauthenticated");
        assert_eq!(
            res.header("www-authenticate"),
            Some("Bearer"),
            "{method} {path}"
        );
    }
    assert_eq!(stored_customers(&app, &org), 1);
}

#[test]
fn a_bad_token_on_an_admin_route_is_401_invalid_token() {
    let app = TestApp::spawn();
    app.org("acme");

    for token in ["not-a-jwt", "gk_not-a-key"] {
        let res = get(&app, "/v1/admin/customers", token);

        res.assert_problem(401, "invalid_token");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }
}

#[test]
fn a_customer_token_is_403_forbidden_on_every_admin_route() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let admin = staff_id(&app, &org, &org.admin_email);
    let (key, _) = api_key(&app, &org);

    for (method, path, body) in admin_routes(&id, &admin, &key) {
        let res = call(&app, method, &path, &tokens.access, body.as_ref());

        assert_eq!(res.status, 403, "{method} {path}: {}", res.text());
        res.assert_problem(403, "forbidden");
    }
    assert_eq!(stored_customers(&app, &org), 1);
    let me = ok(get(&app, &customer_path(&id), &org.admin), 200);
    assert_eq!(me["name"], "Test Customer");
    assert_eq!(me["blocked"], false);
    assert_eq!(staff_list(&app, &org).len(), 1);
    let settings = ok(get(&app, "/v1/admin/organization", &org.admin), 200);
    assert_eq!(settings["name"], "Org acme");
    let keys = ok(get(&app, "/v1/admin/api-keys", &org.admin), 200);
    assert_eq!(keys["data"][0]["revoked_at"], Value::Null);
}

#[test]
fn an_agent_manages_customers_but_not_staff_keys_or_settings() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (agent_id, agent) = staff_member(&app, &org, "agent@acme.example.com", "agent");
    let (key_id, _) = api_key(&app, &org);

    let created = ok(
        create_customer(
            &app,
            &agent,
            &json!({"name": "Claire", "email": "claire@example.com"}),
        ),
        201,
    );
    let path = customer_path(created["id"].as_str().unwrap());
    ok(get(&app, "/v1/admin/customers", &agent), 200);
    ok(get(&app, &path, &agent), 200);
    ok(
        patch(&app, &path, &agent, &json!({"name": "Claire M."})),
        200,
    );
    ok(
        post(&app, &format!("{path}/block"), &agent, &json!({})),
        200,
    );
    ok(
        post(&app, &format!("{path}/unblock"), &agent, &json!({})),
        200,
    );
    ok(
        post(
            &app,
            &format!("{path}/activation-codes"),
            &agent,
            &json!({}),
        ),
        201,
    );
    ok(get(&app, "/v1/admin/organization", &agent), 200);

    for (method, path, body) in [
        ("GET", "/v1/admin/staff".to_owned(), None),
        (
            "POST",
            "/v1/admin/staff".to_owned(),
            Some(json!({"email": "other@acme.example.com", "name": "Other", "role": "agent"})),
        ),
        (
            "PATCH",
            format!("/v1/admin/staff/{agent_id}"),
            Some(json!({"role": "admin"})),
        ),
        ("GET", "/v1/admin/api-keys".to_owned(), None),
        (
            "POST",
            "/v1/admin/api-keys".to_owned(),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", format!("/v1/admin/api-keys/{key_id}"), None),
        (
            "PATCH",
            "/v1/admin/organization".to_owned(),
            Some(json!({"name": "Agent Corp"})),
        ),
    ] {
        let res = call(&app, method, &path, &agent, body.as_ref());

        assert_eq!(res.status, 403, "{method} {path}: {}", res.text());
        res.assert_problem(403, "forbidden");
    }
    let staff = staff_list(&app, &org);
    assert_eq!(staff.len(), 2, "{staff:?}");
    let me = staff.iter().find(|s| s["id"] == agent_id.as_str()).unwrap();
    assert_eq!(me["role"], "agent");
    let keys = ok(get(&app, "/v1/admin/api-keys", &org.admin), 200);
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    assert_eq!(keys["data"][0]["revoked_at"], Value::Null);
    assert_eq!(
        ok(get(&app, "/v1/admin/organization", &org.admin), 200)["name"],
        "Org acme"
    );
}

#[test]
fn an_api_key_manages_customers_but_not_staff_or_keys() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let admin = staff_id(&app, &org, &org.admin_email);

    let created = post(
        &app,
        "/v1/admin/api-keys",
        &org.admin,
        &json!({"name": "billing back-office"}),
    );

    let created = ok(created, 201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("gk_"), "{created}");
    assert!(secret.len() > 20, "{created}");
    assert!(key_id.starts_with("key_"), "{created}");
    assert_eq!(created["name"], "billing back-office");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    let customer = ok(
        create_customer(
            &app,
            &secret,
            &json!({"name": "Claire", "email": "claire@example.com"}),
        ),
        201,
    );
    let (ids, _) = page(&app, &secret, "");
    assert_eq!(ids, [customer["id"].as_str().unwrap()]);
    ok(get(&app, "/v1/admin/organization", &secret), 200);
    for (method, path, body) in [
        ("GET", "/v1/admin/staff".to_owned(), None),
        (
            "POST",
            "/v1/admin/staff".to_owned(),
            Some(json!({"email": "bot@acme.example.com", "name": "Bot", "role": "admin"})),
        ),
        (
            "PATCH",
            format!("/v1/admin/staff/{admin}"),
            Some(json!({"disabled": true})),
        ),
        ("GET", "/v1/admin/api-keys".to_owned(), None),
        (
            "POST",
            "/v1/admin/api-keys".to_owned(),
            Some(json!({"name": "another"})),
        ),
        ("DELETE", format!("/v1/admin/api-keys/{key_id}"), None),
        (
            "PATCH",
            "/v1/admin/organization".to_owned(),
            Some(json!({"name": "Bot Corp"})),
        ),
    ] {
        let res = call(&app, method, &path, &secret, body.as_ref());

        assert_eq!(res.status, 403, "{method} {path}: {}", res.text());
        res.assert_problem(403, "forbidden");
    }
    assert_eq!(staff_list(&app, &org).len(), 1);
    assert_eq!(get(&app, "/v1/admin/customers", &secret).status, 200);
}

#[test]
fn a_revoked_api_key_is_401_invalid_token_at_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, secret) = api_key(&app, &org);
    assert_eq!(get(&app, "/v1/admin/customers", &secret).status, 200);

    let res = call(
        &app,
        "DELETE",
        &format!("/v1/admin/api-keys/{id}"),
        &org.admin,
        None,
    );

    assert_eq!(res.status, 204, "{}", res.text());
    let refused = get(&app, "/v1/admin/customers", &secret);
    refused.assert_problem(401, "invalid_token");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let listed = ok(get(&app, "/v1/admin/api-keys", &org.admin), 200);
    assert!(listed["data"][0]["revoked_at"].is_string(), "{listed}");
}

#[test]
fn revoking_an_unknown_key_is_404() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = call(
        &app,
        "DELETE",
        "/v1/admin/api-keys/key_00000000000000000000",
        &org.admin,
        None,
    );

    res.assert_problem(404, "not_found");
}

#[test]
fn listing_api_keys_never_shows_a_secret() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, secret) = api_key(&app, &org);
    // A used key too: last_used_at is recorded, the secret still not shown.
    assert_eq!(get(&app, "/v1/admin/customers", &secret).status, 200);

    let res = get(&app, "/v1/admin/api-keys", &org.admin);

    let body = ok(res.clone(), 200);
    let text = res.text();
    assert!(!text.contains(&secret), "{text}");
    assert!(!text.contains(&secret["gk_".len()..]), "{text}");
    assert!(!text.contains("\"secret\""), "{text}");
    assert!(!text.contains("hash"), "{text}");
    let keys = body["data"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], id.as_str());
    assert_eq!(keys[0]["name"], "billing back-office");
    assert!(secret.starts_with(keys[0]["prefix"].as_str().unwrap()));
    assert!(keys[0]["prefix"].as_str().unwrap().len() < secret.len() / 2);
}

// ------------------------------------------------------- block and password

#[test]
fn blocking_a_customer_ends_their_sessions_and_refuses_sign_in_until_unblocked() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    assert_eq!(get(&app, "/v1/me", &tokens.access).status, 200);

    let blocked = ok(
        post(
            &app,
            &format!("{}/block", customer_path(&id)),
            &org.admin,
            &json!({}),
        ),
        200,
    );

    assert_eq!(blocked["blocked"], true);
    assert!(blocked["blocked_at"].is_string(), "{blocked}");
    get(&app, "/v1/me", &tokens.access).assert_problem(401, "invalid_token");
    app.request("POST", "/v1/auth/refresh")
        .json(&json!({"refresh_token": tokens.refresh}))
        .send()
        .assert_problem(401, "invalid_refresh_token");
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(403, "account_blocked");

    let unblocked = ok(
        post(
            &app,
            &format!("{}/unblock", customer_path(&id)),
            &org.admin,
            &json!({}),
        ),
        200,
    );

    assert_eq!(unblocked["blocked"], false);
    assert_eq!(unblocked["blocked_at"], Value::Null);
    let again = ok(app.login(&org, "claire@example.com", PASSWORD), 200);
    let fresh = Tokens::from_json(&again);
    assert_eq!(get(&app, "/v1/me", &fresh.access).status, 200);
    get(&app, "/v1/me", &tokens.access).assert_problem(401, "invalid_token");
}

#[test]
fn staff_can_never_set_a_customers_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let path = customer_path(&id);
    let chosen = "Staff-Chosen-99!";

    let patched = patch(&app, &path, &org.admin, &json!({"password": chosen}));
    let put = call(
        &app,
        "PUT",
        &format!("{path}/password"),
        &org.admin,
        Some(&json!({"password": chosen})),
    );
    let posted = post(
        &app,
        &format!("{path}/password"),
        &org.admin,
        &json!({"password": chosen}),
    );
    let reset = post(
        &app,
        &format!("{path}/password-reset"),
        &org.admin,
        &json!({}),
    );

    let problem = patched.assert_problem(400, "unknown_field");
    assert_eq!(field_errors(&problem), ["password"]);
    put.assert_problem(404, "not_found");
    posted.assert_problem(404, "not_found");
    reset.assert_problem(404, "not_found");
    app.login(&org, "claire@example.com", chosen)
        .assert_problem(401, "invalid_credentials");
    assert_eq!(app.login(&org, "claire@example.com", PASSWORD).status, 200);
}

#[test]
fn an_activation_code_is_for_customers_without_access_only() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (registered, _) = app.registered_customer(&org, "claire@example.com", None);
    let fresh = app.customer(&org, "paul@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = post(
        &app,
        &format!("{}/activation-codes", customer_path(&registered)),
        &org.admin,
        &json!({}),
    );
    let issued = post(
        &app,
        &format!("{}/activation-codes", customer_path(&fresh)),
        &org.admin,
        &json!({}),
    );

    refused.assert_problem(409, "already_registered");
    let code = ok(issued, 201);
    assert!(code["activation_code"].is_string(), "{code}");
    assert!(code["expires_at"].is_string(), "{code}");
    assert_eq!(app.login(&org, "claire@example.com", PASSWORD).status, 200);
}

// -------------------------------------------------------------------- staff

#[test]
fn the_staff_list_shows_every_member_with_role_and_state() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    ok(
        post(
            &app,
            "/v1/admin/staff",
            &org.admin,
            &json!({"email": "agent@acme.example.com", "name": "Agent", "role": "agent"}),
        ),
        201,
    );

    let staff = staff_list(&app, &org);

    assert_eq!(staff.len(), 2, "{staff:?}");
    let admin = staff
        .iter()
        .find(|s| s["email"] == org.admin_email)
        .unwrap();
    assert_eq!(admin["role"], "admin");
    assert_eq!(admin["active"], true);
    assert_eq!(admin["disabled"], false);
    let agent = staff
        .iter()
        .find(|s| s["email"] == "agent@acme.example.com")
        .unwrap();
    assert_eq!(agent["role"], "agent");
    assert_eq!(agent["active"], false, "no password chosen yet");
    let text = serde_json::to_string(&staff).unwrap();
    assert!(!text.contains("password"), "{text}");
}

#[test]
fn a_new_member_receives_a_setup_email_and_a_duplicate_email_is_409() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = post(
        &app,
        "/v1/admin/staff",
        &org.admin,
        &json!({"email": "Agent@Acme.example.com", "name": "Agent", "role": "agent"}),
    );

    let created = ok(res, 201);
    assert!(created["id"].as_str().unwrap().starts_with("stf_"));
    assert_eq!(created["email"], "agent@acme.example.com");
    assert_eq!(created["role"], "agent");
    assert_eq!(created["active"], false);
    let token = app
        .nth_message("agent@acme.example.com", 1)
        .token()
        .expect("a setup token in the e-mail");
    let duplicate = post(
        &app,
        "/v1/admin/staff",
        &org.admin,
        &json!({"email": "agent@acme.example.com", "name": "Again", "role": "admin"}),
    );
    let problem = duplicate.assert_problem(409, "email_already_used");
    assert_eq!(field_errors(&problem), ["email"]);
    let setup = app
        .request("POST", "/v1/auth/staff/setup")
        .json(&json!({"token": token, "password": PASSWORD}))
        .send();
    let signed_in = ok(setup, 200);
    let agent_token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(get(&app, "/v1/admin/customers", agent_token).status, 200);
    let staff = staff_list(&app, &org);
    assert_eq!(staff.len(), 2, "{staff:?}");
    let agent = staff
        .iter()
        .find(|s| s["email"] == "agent@acme.example.com")
        .unwrap();
    assert_eq!(agent["active"], true);
    assert_eq!(agent["role"], "agent");
}

#[test]
fn promoting_an_agent_to_admin_gives_admin_rights_at_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, agent) = staff_member(&app, &org, "agent@acme.example.com", "agent");
    get(&app, "/v1/admin/staff", &agent).assert_problem(403, "forbidden");

    let res = patch(
        &app,
        &format!("/v1/admin/staff/{id}"),
        &org.admin,
        &json!({"role": "admin"}),
    );

    assert_eq!(ok(res, 200)["role"], "admin");
    assert_eq!(get(&app, "/v1/admin/staff", &agent).status, 200);
}

#[test]
fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, second) = staff_member(&app, &org, "second@acme.example.com", "admin");
    assert_eq!(get(&app, "/v1/admin/staff", &second).status, 200);

    let res = patch(
        &app,
        &format!("/v1/admin/staff/{id}"),
        &org.admin,
        &json!({"role": "agent"}),
    );

    assert_eq!(ok(res, 200)["role"], "agent");
    get(&app, "/v1/admin/staff", &second).assert_problem(403, "forbidden");
    get(&app, "/v1/admin/api-keys", &second).assert_problem(403, "forbidden");
    assert_eq!(
        get(&app, "/v1/admin/customers", &second).status,
        200,
        "an agent still manages customers"
    );
}

#[test]
fn disabling_a_member_ends_their_sessions_at_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, agent) = staff_member(&app, &org, "agent@acme.example.com", "agent");
    assert_eq!(get(&app, "/v1/admin/customers", &agent).status, 200);

    let res = patch(
        &app,
        &format!("/v1/admin/staff/{id}"),
        &org.admin,
        &json!({"disabled": true}),
    );

    let member = ok(res, 200);
    assert_eq!(member["disabled"], true);
    assert!(member["disabled_at"].is_string(), "{member}");
    get(&app, "/v1/admin/customers", &agent).assert_problem(401, "invalid_token");
    staff_login(&app, &org, "agent@acme.example.com").assert_problem(403, "account_blocked");

    let enabled = patch(
        &app,
        &format!("/v1/admin/staff/{id}"),
        &org.admin,
        &json!({"disabled": false}),
    );

    assert_eq!(ok(enabled, 200)["disabled"], false);
    let again = ok(staff_login(&app, &org, "agent@acme.example.com"), 200);
    assert_eq!(
        get(
            &app,
            "/v1/admin/customers",
            again["access_token"].as_str().unwrap()
        )
        .status,
        200
    );
    get(&app, "/v1/admin/customers", &agent).assert_problem(401, "invalid_token");
}

#[test]
fn the_last_enabled_admin_cannot_be_demoted_or_disabled() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let admin = staff_id(&app, &org, &org.admin_email);
    let path = format!("/v1/admin/staff/{admin}");

    let demote = patch(&app, &path, &org.admin, &json!({"role": "agent"}));
    let disable = patch(&app, &path, &org.admin, &json!({"disabled": true}));
    let both = patch(
        &app,
        &path,
        &org.admin,
        &json!({"role": "agent", "disabled": true}),
    );

    demote.assert_problem(409, "last_admin");
    disable.assert_problem(409, "last_admin");
    both.assert_problem(409, "last_admin");
    let me = staff_list(&app, &org)
        .into_iter()
        .find(|s| s["id"] == admin.as_str())
        .unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["disabled"], false);
    assert_eq!(get(&app, "/v1/admin/api-keys", &org.admin).status, 200);
}

#[test]
fn a_disabled_admin_does_not_count_as_the_remaining_admin() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let admin = staff_id(&app, &org, &org.admin_email);
    let (second, _) = staff_member(&app, &org, "second@acme.example.com", "admin");
    ok(
        patch(
            &app,
            &format!("/v1/admin/staff/{second}"),
            &org.admin,
            &json!({"disabled": true}),
        ),
        200,
    );

    let res = patch(
        &app,
        &format!("/v1/admin/staff/{admin}"),
        &org.admin,
        &json!({"role": "agent"}),
    );

    res.assert_problem(409, "last_admin");
    assert_eq!(get(&app, "/v1/admin/staff", &org.admin).status, 200);
}

#[test]
fn with_another_enabled_admin_an_admin_may_step_down() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let admin = staff_id(&app, &org, &org.admin_email);
    let (_, second) = staff_member(&app, &org, "second@acme.example.com", "admin");

    let res = patch(
        &app,
        &format!("/v1/admin/staff/{admin}"),
        &org.admin,
        &json!({"role": "agent"}),
    );

    assert_eq!(ok(res, 200)["role"], "agent");
    get(&app, "/v1/admin/staff", &org.admin).assert_problem(403, "forbidden");
    let path = format!(
        "/v1/admin/staff/{}",
        staff_id_with(&app, &second, "second@acme.example.com")
    );
    patch(&app, &path, &second, &json!({"role": "agent"})).assert_problem(409, "last_admin");
}

fn staff_id_with(app: &TestApp, token: &str, email: &str) -> String {
    ok(get(app, "/v1/admin/staff", token), 200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == email)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ------------------------------------------------------------- organization

#[test]
fn organization_settings_are_readable_by_staff_and_api_keys() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, key) = api_key(&app, &org);

    let by_admin = ok(get(&app, "/v1/admin/organization", &org.admin), 200);
    let by_key = ok(get(&app, "/v1/admin/organization", &key), 200);

    assert_eq!(by_admin["id"], org.id.as_str());
    assert_eq!(by_admin["slug"], "acme");
    assert_eq!(by_admin["name"], "Org acme");
    assert_eq!(by_admin["locale"], "fr");
    assert_eq!(by_admin["login_methods"], "both");
    assert_eq!(by_admin["support_email"], Value::Null);
    assert_eq!(by_admin["support_phone"], Value::Null);
    assert_eq!(by_key, by_admin);
}

#[test]
fn an_admin_updates_the_organization_settings() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, customer) = app.registered_customer(&org, "claire@example.com", None);

    let res = patch(
        &app,
        "/v1/admin/organization",
        &org.admin,
        &json!({
            "name": "Acme SA",
            "login_methods": "password",
            "support_email": "Help@Acme.example.com",
            "support_phone": "+33123456789",
        }),
    );

    let updated = ok(res, 200);
    assert_eq!(updated["name"], "Acme SA");
    assert_eq!(updated["slug"], "acme");
    assert_eq!(updated["login_methods"], "password");
    assert_eq!(updated["support_email"], "help@acme.example.com");
    assert_eq!(updated["support_phone"], "+33123456789");
    assert_eq!(updated["locale"], "fr", "absent fields stay");
    assert_eq!(
        ok(get(&app, "/v1/admin/organization", &org.admin), 200),
        updated
    );
    let me = ok(get(&app, "/v1/me", &customer.access), 200);
    assert_eq!(me["organization"]["name"], "Acme SA");
    assert_eq!(me["organization"]["support_email"], "help@acme.example.com");
    let cleared = ok(
        patch(
            &app,
            "/v1/admin/organization",
            &org.admin,
            &json!({"support_phone": null}),
        ),
        200,
    );
    assert_eq!(cleared["support_phone"], Value::Null);
    assert_eq!(cleared["support_email"], "help@acme.example.com");
}

#[test]
fn invalid_organization_settings_are_400_and_change_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    for (body, code, field) in [
        (
            json!({"login_methods": "sms"}),
            "invalid_field",
            "login_methods",
        ),
        (
            json!({"support_phone": "01 23 45 67 89"}),
            "invalid_field",
            "support_phone",
        ),
        (
            json!({"support_email": "help"}),
            "invalid_field",
            "support_email",
        ),
        (json!({"name": ""}), "invalid_field", "name"),
        (json!({"slug": "other"}), "unknown_field", "slug"),
    ] {
        let res = patch(&app, "/v1/admin/organization", &org.admin, &body);

        let problem = res.assert_problem(400, code);
        assert_eq!(field_errors(&problem), [field], "{body}");
    }
    let settings = ok(get(&app, "/v1/admin/organization", &org.admin), 200);
    assert_eq!(settings["name"], "Org acme");
    assert_eq!(settings["slug"], "acme");
    assert_eq!(settings["login_methods"], "both");
    assert_eq!(settings["support_phone"], Value::Null);
    assert_eq!(settings["support_email"], Value::Null);
}
