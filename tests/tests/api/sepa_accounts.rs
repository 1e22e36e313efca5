//! SEPA groundwork: the creditor's settings, customer accounts with their
//! balance history, and the bank details proposed for an IBAN.

use diesel::RunQueryDsl;
use guichet_tests::identity::{Org, PASSWORD};
use guichet_tests::{Options, Response, TestApp};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

const CREDITOR: &str = "/v1/admin/settings/creditor";
const MY_ACCOUNTS: &str = "/v1/me/accounts";
const BANK_DETAILS: &str = "/v1/me/bank-details";

/// A valid French IBAN of Crédit Agricole (bank code 30006).
const IBAN: &str = "FR7630006000011234567890189";
/// A valid French IBAN whose bank code (99999) no directory knows.
const UNKNOWN_BANK_IBAN: &str = "FR5899999000011234567890185";

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

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

fn fields(problem: &Value) -> Vec<String> {
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

fn api_key(app: &TestApp, org: &Org) -> String {
    ok(
        post(
            app,
            "/v1/admin/api-keys",
            &org.admin,
            &json!({"name": "billing back-office"}),
        ),
        201,
    )["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn creditor_body() -> Value {
    json!({
        "name": "Régie Immobilière du Parc",
        "address": ["12 rue des Lilas", "75011 Paris"],
        "creditor_id": "fr72 zzz 123456",
        "iban": "fr76 3000 6000 0112 3456 7890 189",
        "bic": "agrifrpp",
    })
}

fn accounts_path(customer_id: &str) -> String {
    format!("/v1/admin/customers/{customer_id}/accounts")
}

fn create_account(
    app: &TestApp,
    token: &str,
    customer_id: &str,
    reference: &str,
    initial: i64,
) -> Value {
    ok(
        post(
            app,
            &accounts_path(customer_id),
            token,
            &json!({"label": "Appartement 3B", "reference": reference, "initial_balance": eur(initial)}),
        ),
        201,
    )
}

fn stored_accounts(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use guichet_store::schema::accounts;
    let mut conn = app.store.conn().unwrap();
    accounts::table.count().get_result(&mut conn).unwrap()
}

fn stored_entries(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use guichet_store::schema::account_entries;
    let mut conn = app.store.conn().unwrap();
    account_entries::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

/// Stores a mandate on the account and a collection of it (as the mandate
/// and collection slices do), straight in the database.
fn seed_mandate(
    app: &TestApp,
    org: &Org,
    customer_id: &str,
    account_id: &str,
    status: &str,
    payment_type: &str,
    collection: Option<(i64, &str)>,
) {
    let mut conn = app.store.conn().unwrap();
    let mandate_id = guichet_domain::ids::new_id("mdt");
    diesel::sql_query(format!(
        "INSERT INTO mandates (id, org_id, customer_id, account_id, status, payment_type, iban, \
         bic, email, debtor_name, created_at, updated_at) VALUES ('{mandate_id}', '{}', \
         '{customer_id}', '{account_id}', '{status}', '{payment_type}', '{IBAN}', 'AGRIFRPP', \
         'x@example.com', 'Claire', '2026-11-22 09:00:00', '2026-11-22 09:00:00')",
        org.id
    ))
    .execute(&mut *conn)
    .unwrap();
    if let Some((amount, collection_status)) = collection {
        let id = guichet_domain::ids::new_id("col");
        diesel::sql_query(format!(
            "INSERT INTO sepa_collections (id, org_id, mandate_id, account_id, end_to_end_id, \
             sequence_type, amount, currency, due_date, status, created_at, updated_at) VALUES \
             ('{id}', '{}', '{mandate_id}', '{account_id}', '{id}', 'OOFF', {amount}, 'EUR', \
             '2026-12-06', '{collection_status}', '2026-11-22 09:00:00', '2026-11-22 09:00:00')",
            org.id
        ))
        .execute(&mut *conn)
        .unwrap();
    }
}

// ----------------------------------------------------------- creditor settings

#[test]
fn creditor_settings_are_absent_until_an_admin_sets_them_normalized() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let problem = get(&app, CREDITOR, &org.admin).assert_problem(404, "not_found");
    assert!(problem["detail"].as_str().unwrap().contains("créancier"));

    let stored = ok(put(&app, CREDITOR, &org.admin, &creditor_body()), 200);
    assert_eq!(stored["name"], "Régie Immobilière du Parc");
    assert_eq!(
        stored["address"],
        json!(["12 rue des Lilas", "75011 Paris"])
    );
    assert_eq!(stored["creditor_id"], "FR72ZZZ123456");
    assert_eq!(stored["iban"], IBAN);
    assert_eq!(stored["bic"], "AGRIFRPP");
    assert_eq!(stored["prenotification_days"], 14);
    assert_eq!(stored["updated_at"], "2026-11-22T09:00:00Z");
    assert_eq!(ok(get(&app, CREDITOR, &org.admin), 200), stored);

    let mut body = creditor_body();
    body["prenotification_days"] = json!(2);
    body["name"] = json!("  Régie du Parc  ");
    let replaced = ok(put(&app, CREDITOR, &org.admin, &body), 200);
    assert_eq!(replaced["prenotification_days"], 2);
    assert_eq!(replaced["name"], "Régie du Parc");
    assert_eq!(ok(get(&app, CREDITOR, &org.admin), 200), replaced);

    // Another organization has its own (none yet).
    let other = app.org("other");
    get(&app, CREDITOR, &other.admin).assert_problem(404, "not_found");
}

#[test]
fn creditor_settings_refuse_wrong_identifiers_and_bad_values() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let with = |key: &str, value: Value| {
        let mut body = creditor_body();
        body[key] = value;
        body
    };
    let rules: Vec<(Value, &str, &str)> = vec![
        (
            with("creditor_id", json!("FR73ZZZ123456")),
            "creditor_id_invalid",
            "creditor_id",
        ),
        (
            with("creditor_id", json!("123456")),
            "creditor_id_invalid",
            "creditor_id",
        ),
        (
            with("iban", json!("FR7630006000011234567890188")),
            "iban_invalid",
            "iban",
        ),
        (with("bic", json!("AGRI")), "bic_invalid", "bic"),
        (
            with("bic", json!("DEUTDEFF")),
            "bic_country_mismatch",
            "bic",
        ),
    ];
    for (body, code, field) in rules {
        let problem = put(&app, CREDITOR, &org.admin, &body).assert_problem(422, code);
        assert_eq!(fields(&problem), vec![field.to_owned()], "{problem}");
    }
    let problem = app
        .request("PUT", CREDITOR)
        .bearer(&org.admin)
        .header("accept-language", "en")
        .json(&with("iban", json!("FR76 1234")))
        .send()
        .assert_problem(422, "iban_invalid");
    assert_eq!(problem["detail"], "IBAN format is incorrect");

    let bad: Vec<(Value, &str, &str)> = vec![
        (
            with("prenotification_days", json!(1)),
            "invalid_field",
            "prenotification_days",
        ),
        (
            with("prenotification_days", json!(15)),
            "invalid_field",
            "prenotification_days",
        ),
        (
            with("prenotification_days", json!("14")),
            "invalid_field",
            "prenotification_days",
        ),
        (with("name", json!("   ")), "invalid_field", "name"),
        (with("name", json!("x".repeat(71))), "invalid_field", "name"),
        (with("address", json!([])), "invalid_field", "address"),
        (
            with("address", json!(["ok", " "])),
            "invalid_field",
            "address",
        ),
        (with("iban", json!(12)), "invalid_field", "iban"),
        (with("colour", json!("red")), "unknown_field", "colour"),
    ];
    for (body, code, field) in bad {
        let problem = put(&app, CREDITOR, &org.admin, &body).assert_problem(400, code);
        assert!(
            fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    let mut missing = creditor_body();
    missing.as_object_mut().unwrap().remove("bic");
    put(&app, CREDITOR, &org.admin, &missing).assert_problem(400, "invalid_field");
    app.request("PUT", CREDITOR)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"name\": ".to_vec())
        .send()
        .assert_problem(400, "malformed_json");
    // Nothing was stored.
    get(&app, CREDITOR, &org.admin).assert_problem(404, "not_found");
}

#[test]
fn only_admins_set_the_creditor_settings() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    ok(put(&app, CREDITOR, &org.admin, &creditor_body()), 200);
    let agent = staff_member(&app, &org, "agent@regie.example.com", "agent");
    let key = api_key(&app, &org);
    ok(get(&app, CREDITOR, &agent), 200);
    ok(get(&app, CREDITOR, &key), 200);
    let mut body = creditor_body();
    body["prenotification_days"] = json!(5);
    put(&app, CREDITOR, &agent, &body).assert_problem(403, "forbidden");
    put(&app, CREDITOR, &key, &body).assert_problem(403, "forbidden");
    let (_, customer) = app.registered_customer(&org, "claire@regie.example.com", None);
    get(&app, CREDITOR, &customer.access).assert_problem(403, "forbidden");
    put(&app, CREDITOR, &customer.access, &body).assert_problem(403, "forbidden");
    app.get(CREDITOR).assert_problem(401, "unauthenticated");
    app.request("PUT", CREDITOR)
        .json(&body)
        .send()
        .assert_problem(401, "unauthenticated");
    assert_eq!(
        ok(get(&app, CREDITOR, &org.admin), 200)["prenotification_days"],
        14
    );
}

// ------------------------------------------------------------------ accounts

#[test]
fn an_account_opens_with_its_initial_balance_as_a_first_charge() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let customer = app.customer(&org, "claire@regie.example.com", None);
    let customer_id = customer["id"].as_str().unwrap();

    let res = post(
        &app,
        &accounts_path(customer_id),
        &org.admin,
        &json!({"label": " Appartement 3B ", "reference": " LOC-1 ", "initial_balance": eur(85000)}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let account = res.json();
    let id = account["id"].as_str().unwrap();
    assert!(id.starts_with("acc_"), "{id}");
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/admin/accounts/{id}").as_str())
    );
    assert_eq!(account["customer_id"], customer_id);
    assert_eq!(account["label"], "Appartement 3B");
    assert_eq!(account["reference"], "LOC-1");
    assert_eq!(account["balance"], eur(85000));
    assert_eq!(account["covered"], eur(0));
    assert_eq!(account["collectible"], eur(85000));
    assert_eq!(account["has_recurring_mandate"], false);
    let entries = account["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "charge");
    assert_eq!(entries[0]["amount"], eur(85000));
    assert_eq!(entries[0]["label"], "Solde initial");
    assert!(entries[0]["collection_id"].is_null());

    // Without an initial balance: zero, no entry.
    let empty = ok(
        post(
            &app,
            &accounts_path(customer_id),
            &org.admin,
            &json!({"label": "Parking", "reference": "LOC-2"}),
        ),
        201,
    );
    assert_eq!(empty["balance"], eur(0));
    assert_eq!(empty["entries"], json!([]));

    assert_eq!(
        ok(
            get(&app, &format!("/v1/admin/accounts/{id}"), &org.admin),
            200
        ),
        account
    );
    let list = ok(get(&app, &accounts_path(customer_id), &org.admin), 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(list["next_cursor"].is_null());
}

#[test]
fn an_account_reference_is_unique_in_the_organization() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let a = app.customer(&org, "a@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.customer(&org, "b@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_account(&app, &org.admin, &a, "LOC-1", 0);
    let problem = post(
        &app,
        &accounts_path(&b),
        &org.admin,
        &json!({"label": "Autre", "reference": "LOC-1", "initial_balance": eur(100)}),
    )
    .assert_problem(409, "account_reference_taken");
    assert_eq!(fields(&problem), vec!["reference".to_owned()]);
    assert_eq!(stored_accounts(&app), 1);
    assert_eq!(stored_entries(&app), 0);

    // Another organization may use it.
    let other = app.org("other");
    let c = app.customer(&other, "c@other.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_account(&app, &other.admin, &c, "LOC-1", 0);
}

#[test]
fn a_malformed_account_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let customer_id = app.customer(&org, "claire@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = accounts_path(&customer_id);
    let base = json!({"label": "Appartement", "reference": "LOC-1", "initial_balance": eur(100)});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with("initial_balance", eur(-1)),
            "invalid_field",
            "initial_balance.amount",
        ),
        (
            with("initial_balance", eur(1_000_000_001)),
            "invalid_field",
            "initial_balance.amount",
        ),
        (
            with("initial_balance", json!({"amount": 100, "currency": "USD"})),
            "invalid_field",
            "initial_balance.currency",
        ),
        (
            with("initial_balance", json!({"amount": 1.5, "currency": "EUR"})),
            "invalid_field",
            "initial_balance.amount",
        ),
        (
            with("initial_balance", json!(100)),
            "invalid_field",
            "initial_balance",
        ),
        (with("label", json!(" ")), "invalid_field", "label"),
        (with("reference", json!("")), "invalid_field", "reference"),
        (
            with("reference", json!("x".repeat(36))),
            "invalid_field",
            "reference",
        ),
        (with("balance", json!(3)), "unknown_field", "balance"),
    ];
    for (body, code, field) in cases {
        let problem = post(&app, &path, &org.admin, &body).assert_problem(400, code);
        assert!(
            fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    app.request("POST", &path)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{not json".to_vec())
        .send()
        .assert_problem(400, "malformed_json");
    app.request("POST", &path)
        .bearer(&org.admin)
        .header("content-type", "text/plain")
        .body(base.to_string().into_bytes())
        .send()
        .assert_problem(415, "unsupported_media_type");
    assert_eq!(stored_accounts(&app), 0);
    assert_eq!(stored_entries(&app), 0);
}

#[test]
fn charges_raise_the_balance_and_the_history_shows_the_newest_first() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let customer_id = app.customer(&org, "claire@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = create_account(&app, &org.admin, &customer_id, "LOC-1", 1000);
    let id = account["id"].as_str().unwrap();
    let charges = format!("/v1/admin/accounts/{id}/charges");

    app.clock.advance(chrono::Duration::minutes(5));
    let res = post(
        &app,
        &charges,
        &org.admin,
        &json!({"amount": eur(85000), "label": "Loyer décembre 2026"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/admin/accounts/{id}").as_str())
    );
    let after = res.json();
    assert_eq!(after["balance"], eur(86000));
    assert_eq!(after["collectible"], eur(86000));
    assert_eq!(after["updated_at"], "2026-11-22T09:05:00Z");

    app.clock.advance(chrono::Duration::minutes(5));
    let key = api_key(&app, &org);
    let after = ok(
        post(
            &app,
            &charges,
            &key,
            &json!({"amount": eur(1500), "label": "Charges"}),
        ),
        201,
    );
    assert_eq!(after["balance"], eur(87500));
    let labels: Vec<&str> = after["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Charges", "Loyer décembre 2026", "Solde initial"]);
    assert_eq!(after["entries"][0]["created_at"], "2026-11-22T09:10:00Z");
    assert_eq!(
        ok(
            get(&app, &format!("/v1/admin/accounts/{id}"), &org.admin),
            200
        ),
        after
    );

    // Refused charges change nothing.
    let bad: Vec<(Value, &str)> = vec![
        (json!({"amount": eur(0), "label": "x"}), "amount.amount"),
        (json!({"amount": eur(-5), "label": "x"}), "amount.amount"),
        (
            json!({"amount": {"amount": 5, "currency": "GBP"}, "label": "x"}),
            "amount.currency",
        ),
        (json!({"amount": eur(5), "label": ""}), "label"),
        (json!({"amount": eur(5)}), "label"),
        (
            json!({"amount": eur(5), "label": "x", "kind": "collection"}),
            "kind",
        ),
    ];
    for (body, field) in bad {
        let problem = post(&app, &charges, &org.admin, &body);
        assert_eq!(problem.status, 400, "{}", problem.text());
        assert!(
            fields(&problem.json()).contains(&field.to_owned()),
            "{field}: {}",
            problem.text()
        );
    }
    assert_eq!(stored_entries(&app), 3);
    post(
        &app,
        "/v1/admin/accounts/acc_00000000000000000000/charges",
        &org.admin,
        &json!({"amount": eur(5), "label": "x"}),
    )
    .assert_problem(404, "not_found");
    assert_eq!(
        ok(
            get(&app, &format!("/v1/admin/accounts/{id}"), &org.admin),
            200
        )["balance"],
        eur(87500)
    );
}

#[test]
fn accounts_are_for_the_staff_of_their_organization() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let (customer_id, customer) = app.registered_customer(&org, "claire@regie.example.com", None);
    let account = create_account(&app, &org.admin, &customer_id, "LOC-1", 500);
    let id = account["id"].as_str().unwrap();
    let detail = format!("/v1/admin/accounts/{id}");
    let charges = format!("{detail}/charges");
    let charge = json!({"amount": eur(100), "label": "Loyer"});

    // Agents and API keys manage accounts.
    let agent = staff_member(&app, &org, "agent@regie.example.com", "agent");
    ok(post(&app, &charges, &agent, &charge), 201);
    create_account(&app, &agent, &customer_id, "LOC-2", 0);
    ok(get(&app, &accounts_path(&customer_id), &agent), 200);

    // Another organization sees none of it.
    let other = app.org("other");
    get(&app, &detail, &other.admin).assert_problem(404, "not_found");
    post(&app, &charges, &other.admin, &charge).assert_problem(404, "not_found");
    get(&app, &accounts_path(&customer_id), &other.admin).assert_problem(404, "not_found");
    post(
        &app,
        &accounts_path(&customer_id),
        &other.admin,
        &json!({"label": "x", "reference": "LOC-9"}),
    )
    .assert_problem(404, "not_found");
    get(&app, &accounts_path("cus_00000000000000000000"), &org.admin)
        .assert_problem(404, "not_found");

    // Customers and anonymous callers do not reach admin routes.
    get(&app, &detail, &customer.access).assert_problem(403, "forbidden");
    post(&app, &charges, &customer.access, &charge).assert_problem(403, "forbidden");
    get(&app, &accounts_path(&customer_id), &customer.access).assert_problem(403, "forbidden");
    app.get(&detail).assert_problem(401, "unauthenticated");
    app.request("POST", &charges)
        .json(&charge)
        .send()
        .assert_problem(401, "unauthenticated");
    assert_eq!(ok(get(&app, &detail, &org.admin), 200)["balance"], eur(600));
    assert_eq!(stored_accounts(&app), 2);
}

#[test]
fn accounts_are_listed_by_page() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let customer_id = app.customer(&org, "claire@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..3 {
        create_account(&app, &org.admin, &customer_id, &format!("LOC-{n}"), 0);
    }
    let path = accounts_path(&customer_id);
    let first = ok(get(&app, &format!("{path}?limit=2"), &org.admin), 200);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok(
        get(&app, &format!("{path}?limit=2&cursor={cursor}"), &org.admin),
        200,
    );
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let mut ids: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    get(&app, &format!("{path}?limit=0"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{path}?limit=101"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{path}?cursor=%%%"), &org.admin).assert_problem(400, "invalid_parameter");
    get(&app, &format!("{path}?sort=id"), &org.admin).assert_problem(400, "invalid_parameter");
}

// --------------------------------------------------------- customer accounts

#[test]
fn customers_see_their_own_accounts_with_what_is_covered() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let (claire_id, claire) = app.registered_customer(&org, "claire@regie.example.com", None);
    let (bob_id, bob) = app.registered_customer(&org, "bob@regie.example.com", None);
    let flat = create_account(&app, &org.admin, &claire_id, "LOC-1", 90000);
    let parking = create_account(&app, &org.admin, &claire_id, "LOC-2", 5000);
    create_account(&app, &org.admin, &bob_id, "LOC-3", 100);
    let flat_id = flat["id"].as_str().unwrap();
    let parking_id = parking["id"].as_str().unwrap();

    // A one-off mandate with a scheduled collection, a presented one that
    // no longer counts, and a signed recurrent mandate on the parking.
    seed_mandate(
        &app,
        &org,
        &claire_id,
        flat_id,
        "signed",
        "one_off",
        Some((30000, "scheduled")),
    );
    seed_mandate(
        &app,
        &org,
        &claire_id,
        flat_id,
        "signed",
        "one_off",
        Some((1000, "presented")),
    );
    seed_mandate(
        &app,
        &org,
        &claire_id,
        parking_id,
        "signed",
        "recurrent",
        None,
    );
    seed_mandate(
        &app,
        &org,
        &claire_id,
        flat_id,
        "revoked",
        "recurrent",
        None,
    );

    let mine = ok(get(&app, MY_ACCOUNTS, &claire.access), 200);
    let data = mine["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(mine["next_cursor"].is_null());
    let find = |id: &str| data.iter().find(|a| a["id"] == id).unwrap().clone();
    let flat = find(flat_id);
    assert_eq!(flat["balance"], eur(90000));
    assert_eq!(flat["covered"], eur(30000));
    assert_eq!(flat["collectible"], eur(60000));
    assert_eq!(flat["has_recurring_mandate"], false);
    let parking = find(parking_id);
    assert_eq!(parking["collectible"], eur(5000));
    assert_eq!(parking["has_recurring_mandate"], true);
    assert_eq!(parking["reference"], "LOC-2");

    let bobs = ok(get(&app, MY_ACCOUNTS, &bob.access), 200);
    assert_eq!(bobs["data"].as_array().unwrap().len(), 1);
    assert_eq!(bobs["data"][0]["balance"], eur(100));

    let page = ok(
        get(&app, &format!("{MY_ACCOUNTS}?limit=1"), &claire.access),
        200,
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());
    get(&app, &format!("{MY_ACCOUNTS}?limit=500"), &claire.access)
        .assert_problem(400, "invalid_parameter");

    // The same account as the business sees it.
    let admin_view = ok(
        get(&app, &format!("/v1/admin/accounts/{flat_id}"), &org.admin),
        200,
    );
    assert_eq!(admin_view["covered"], eur(30000));

    get(&app, MY_ACCOUNTS, &org.admin).assert_problem(403, "forbidden");
    app.get(MY_ACCOUNTS).assert_problem(401, "unauthenticated");
}

// -------------------------------------------------------------- bank details

#[test]
fn bank_details_propose_the_bic_of_a_known_bank() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let (_, claire) = app.registered_customer(&org, "claire@regie.example.com", None);

    let known = ok(
        get(
            &app,
            &format!("{BANK_DETAILS}?iban=fr76%203000%206000%200112%203456%207890%20189"),
            &claire.access,
        ),
        200,
    );
    assert_eq!(
        known,
        json!({
            "iban": IBAN,
            "iban_masked": "FR76 **** **** **** **** ***0 189",
            "country": "FR",
            "bank_code": "30006",
            "bic": "AGRIFRPP",
            "bank_name": "Crédit Agricole SA",
            "bic_required": false,
        })
    );

    let unknown = ok(
        get(
            &app,
            &format!("{BANK_DETAILS}?iban={UNKNOWN_BANK_IBAN}"),
            &claire.access,
        ),
        200,
    );
    assert_eq!(unknown["iban"], UNKNOWN_BANK_IBAN);
    assert_eq!(unknown["bank_code"], "99999");
    assert!(unknown["bic"].is_null());
    assert!(unknown["bank_name"].is_null());
    assert_eq!(unknown["bic_required"], true);

    let problem = get(
        &app,
        &format!("{BANK_DETAILS}?iban=FR7630006000011234567890188"),
        &claire.access,
    )
    .assert_problem(422, "iban_invalid");
    assert_eq!(problem["detail"], "Format de l'IBAN incorrect");
    assert_eq!(fields(&problem), vec!["iban".to_owned()]);
    let problem = app
        .request("GET", &format!("{BANK_DETAILS}?iban=XX12"))
        .bearer(&claire.access)
        .header("accept-language", "en")
        .send()
        .assert_problem(422, "iban_invalid");
    assert_eq!(problem["detail"], "IBAN format is incorrect");
    get(&app, &format!("{BANK_DETAILS}?iban="), &claire.access).assert_problem(422, "iban_invalid");

    get(&app, BANK_DETAILS, &claire.access).assert_problem(400, "invalid_parameter");
    get(
        &app,
        &format!("{BANK_DETAILS}?iban={IBAN}&bic=AGRIFRPP"),
        &claire.access,
    )
    .assert_problem(400, "invalid_parameter");
    get(&app, &format!("{BANK_DETAILS}?iban={IBAN}"), &org.admin).assert_problem(403, "forbidden");
    app.get(&format!("{BANK_DETAILS}?iban={IBAN}"))
        .assert_problem(401, "unauthenticated");
}

#[test]
fn an_operator_bank_directory_adds_and_corrects_banks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("banks.csv");
    std::fs::write(
        &file,
        "# our banks\ncountry,bank_code,bic,name\nFR,99999,TESTFRPP,Banque de Test\nFR,30006,AGRIFRPPXXX,Crédit Agricole (siège)\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(Options {
        args: vec!["--bank-directory".into(), file.display().to_string()],
        ..Options::default()
    });
    let org = app.org("regie");
    let (_, claire) = app.registered_customer(&org, "claire@regie.example.com", None);
    let added = ok(
        get(
            &app,
            &format!("{BANK_DETAILS}?iban={UNKNOWN_BANK_IBAN}"),
            &claire.access,
        ),
        200,
    );
    assert_eq!(added["bic"], "TESTFRPP");
    assert_eq!(added["bank_name"], "Banque de Test");
    assert_eq!(added["bic_required"], false);
    let corrected = ok(
        get(&app, &format!("{BANK_DETAILS}?iban={IBAN}"), &claire.access),
        200,
    );
    assert_eq!(corrected["bic"], "AGRIFRPPXXX");
    // The built-in banks are still known.
    let bnp = ok(
        get(
            &app,
            &format!("{BANK_DETAILS}?iban=FR7630004000031234567890143"),
            &claire.access,
        ),
        200,
    );
    assert_eq!(bnp["bic"], "BNPAFRPP");
}

#[test]
fn a_malformed_bank_directory_stops_the_start_with_its_line() {
    use clap::Parser;
    use guichet_api::config::{Cli, Command, Settings};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("banks.csv");
    std::fs::write(
        &file,
        "country,bank_code,bic,name\nFR,99999,TESTFRPP,Banque de Test\nFR,12,NOTABIC,Broken\n",
    )
    .unwrap();
    let args = |path: &str| {
        let argv = [
            "guichet",
            "serve",
            "--database-url",
            "sqlite://unused.db",
            "--data-dir",
            &dir.path().display().to_string(),
            "--jwt-secret",
            guichet_tests::TEST_JWT_SECRET,
            "--secret-key",
            guichet_tests::TEST_SECRET_KEY,
            "--bank-directory",
            path,
        ];
        let Command::Serve(args) = Cli::parse_from(argv).command else {
            unreachable!("serve was given")
        };
        args
    };
    let error = Settings::from_args(&args(&file.display().to_string())).unwrap_err();
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("banks.csv"), "{error}");
    let missing = dir.path().join("absent.csv");
    let error = Settings::from_args(&args(&missing.display().to_string())).unwrap_err();
    assert!(error.contains("absent.csv"), "{error}");
}

#[test]
fn a_charge_with_an_idempotency_key_is_recorded_once() {
    let app = TestApp::spawn();
    let org = app.org("regie");
    let customer_id = app.customer(&org, "claire@regie.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = create_account(&app, &org.admin, &customer_id, "LOC-1", 0);
    let id = account["id"].as_str().unwrap();
    let charges = format!("/v1/admin/accounts/{id}/charges");
    let body = json!({"amount": eur(85000), "label": "Loyer décembre 2026"});
    let send = |key: &str, body: &Value| {
        app.request("POST", &charges)
            .bearer(&org.admin)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };

    let first = send("rent-2026-12", &body);
    assert_eq!(first.status, 201, "{}", first.text());
    assert!(first.header("idempotent-replayed").is_none());
    let again = send("rent-2026-12", &body);
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.header("location"),
        Some(format!("/v1/admin/accounts/{id}").as_str())
    );
    assert_eq!(again.json(), first.json());
    assert_eq!(stored_entries(&app), 1);

    send(
        "rent-2026-12",
        &json!({"amount": eur(1), "label": "Loyer décembre 2026"}),
    )
    .assert_problem(422, "idempotency_key_reused");
    let bad = send("bad key", &body);
    bad.assert_problem(400, "invalid_parameter");
    assert_eq!(bad.json()["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(stored_entries(&app), 1);

    // Another key is another charge; a refused charge leaves its key free.
    ok(send("rent-2027-01", &body), 201);
    app.request(
        "POST",
        "/v1/admin/accounts/acc_00000000000000000000/charges",
    )
    .bearer(&org.admin)
    .header("idempotency-key", "lost")
    .json(&body)
    .send()
    .assert_problem(404, "not_found");
    ok(send("lost", &body), 201);
    assert_eq!(
        ok(
            get(&app, &format!("/v1/admin/accounts/{id}"), &org.admin),
            200
        )["balance"],
        eur(255000)
    );
}
