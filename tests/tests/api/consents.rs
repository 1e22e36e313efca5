//! Consent invitations: the office orders, tracks, edits, resends and
//! revokes; the cardholder activates alone by link (SMS code, card, client
//! reference, terms, the bank's strong authentication), and the contacts
//! are erased once the confirmation is sent.

use std::sync::{Arc, Barrier};

use chrono::{Duration, TimeZone, Utc};
use guichet_domain::Clock;
use guichet_domain::gateway::test_cards;
use guichet_jobs::consents::ConsentExpiry;
use guichet_tests::identity::Org;
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

const REFERENCE: &str = "BE-CARO-0042-4242";
const TERMS: &str = "2026-11";

pub(crate) struct Office {
    pub(crate) org: Org,
    pub(crate) account: String,
}

fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.request("POST", path).bearer(token).json(body).send()
}

fn admin_get(app: &TestApp, org: &Org, path: &str) -> Value {
    let res = app.request("GET", path).bearer(&org.admin).send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn office(app: &TestApp, slug: &str) -> Office {
    office_of(app, app.org(slug))
}

/// Consent settings and a consent account for `org`.
pub(crate) fn office_of(app: &TestApp, org: Org) -> Office {
    let res = app
        .request("PUT", "/v1/admin/consents/settings")
        .bearer(&org.admin)
        .json(&json!({
            "activation_url": "https://app.example.com/activation/{token}",
            "video_url": "https://video.example.com/5-steps",
            "terms_version": TERMS,
            "terms_url": "https://example.com/terms/2026-11",
        }))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let res = post(
        app,
        "/v1/admin/consent-accounts",
        &org.admin,
        &json!({"company_name": "Boulangerie Martin SRL", "client_reference": REFERENCE}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    Office {
        account: res.json()["id"].as_str().unwrap().to_owned(),
        org,
    }
}

pub(crate) fn order(app: &TestApp, office: &Office, email: &str, mobile: &str) -> Value {
    let res = post(
        app,
        "/v1/admin/consents",
        &office.org.admin,
        &json!({
            "account_id": office.account,
            "cardholder_name": "Anne Martin",
            "email": email,
            "mobile": mobile,
            "language": "fr",
        }),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

/// The token of the newest invitation to `email` once `count` were sent.
pub(crate) fn link(app: &TestApp, email: &str, count: usize) -> String {
    let message = app.nth_message(email, count);
    let start = message
        .body
        .find("https://app.example.com/activation/")
        .expect("the activation link");
    message.body[start + "https://app.example.com/activation/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub(crate) fn public(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Response {
    let req = app.request(method, path);
    match body {
        Some(body) => req.json(&body).send(),
        None => req.send(),
    }
}

/// Sends and verifies the SMS code; returns the step token.
pub(crate) fn verified(app: &TestApp, token: &str, mobile: &str, sms_before: usize) -> String {
    let res = public(app, "POST", &format!("/v1/consents/{token}/sms-code"), None);
    assert_eq!(res.status, 202, "{}", res.text());
    let code = app.nth_message(mobile, sms_before + 1).code(6).unwrap();
    let res = public(
        app,
        "POST",
        &format!("/v1/consents/{token}/sms-code/verification"),
        Some(json!({"code": code})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["step_token"].as_str().unwrap().to_owned()
}

pub(crate) fn card(app: &TestApp, token: &str, step: &str, card_token: &str) -> Response {
    public(
        app,
        "POST",
        &format!("/v1/consents/{token}/card"),
        Some(json!({
            "step_token": step,
            "card_token": card_token,
            "client_reference": "be-caro 0042 4242",
            "terms_accepted": true,
            "terms_version": TERMS,
        })),
    )
}

pub(crate) fn visa() -> String {
    sandbox_token(test_cards::VISA, 12, 2030).0
}

/// The sandbox bank answers `outcome` for the session of `url`.
pub(crate) fn bank(app: &TestApp, url: &str, outcome: &str) {
    let path = &url[url.find("/v1/sandbox/sca/").unwrap()..];
    let res = public(app, "POST", path, Some(json!({"outcome": outcome})));
    assert_eq!(res.status, 200, "{}", res.text());
}

fn steps(consent: &Value) -> Vec<String> {
    consent["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn consent(app: &TestApp, org: &Org, id: &str) -> Value {
    admin_get(app, org, &format!("/v1/admin/consents/{id}"))
}

/// The office's admin signed in again (after the clock moved past the
/// access token's life).
fn signed_in_again(app: &TestApp, org: &Org) -> Org {
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": org.slug, "email": org.admin_email, "password": guichet_tests::identity::PASSWORD}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    Org {
        admin: res.json()["access_token"].as_str().unwrap().to_owned(),
        ..org.clone()
    }
}

/// The consent events of the organization, by type, sorted (events
/// recorded at the same frozen instant have no order between them).
fn sorted_types(app: &TestApp, org_id: &str) -> Vec<String> {
    let mut types: Vec<String> = event_types(app, org_id).into_iter().map(|e| e.0).collect();
    types.sort();
    types
}

fn event_types(app: &TestApp, org_id: &str) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use guichet_store::schema::events;
    let mut conn = app.store.conn().unwrap();
    events::table
        .filter(events::org_id.eq(org_id))
        .filter(events::object_type.eq("consent"))
        .order(events::created_at.asc())
        .select((events::event_type, events::data))
        .load::<(String, String)>(&mut conn)
        .unwrap()
}

// ------------------------------------------------------------ the office

#[test]
fn an_order_sends_a_fourteen_day_link_stored_only_as_a_hash() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-order");
    let created = order(&app, &office, "anne@cons-order.example", "+32470123467");
    assert_eq!(created["status"], "invitation_sent");
    assert_eq!(created["email"], "anne@cons-order.example");
    assert_eq!(created["mobile"], "+32470123467");
    assert_eq!(created["account"]["client_reference"], REFERENCE);
    let expires = chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(expires, app.clock.now() + Duration::days(14));
    assert_eq!(steps(&created), ["invitation_sent"]);
    assert_eq!(created["timeline"][0]["detail"], created["email_masked"]);

    let mail = app.nth_message("anne@cons-order.example", 1);
    for needle in [
        "https://video.example.com/5-steps",
        "SMS",
        "lecteur de carte",
        "relevé",
        "14 jours",
    ] {
        assert!(mail.body.contains(needle), "{needle}: {}", mail.body);
    }
    let token = link(&app, "anne@cons-order.example", 1);
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    // Only a hash is kept, of the link and of the sealed e-mail.
    {
        use diesel::prelude::*;
        use guichet_store::schema::{consent_invitations, outbox};
        let mut conn = app.store.conn().unwrap();
        let hashes: Vec<String> = consent_invitations::table
            .select(consent_invitations::token_hash)
            .load(&mut conn)
            .unwrap();
        assert_eq!(hashes.len(), 1);
        assert!(!hashes[0].contains(&token));
        let bodies: Vec<String> = outbox::table.select(outbox::body).load(&mut conn).unwrap();
        assert!(bodies.iter().all(|b| !b.contains(&token)));
    }
    // The event carries the consent masked.
    let events = event_types(&app, &office.org.id);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "consent.invitation_sent");
    assert!(
        !events[0].1.contains("anne@cons-order.example"),
        "{}",
        events[0].1
    );
    assert!(!events[0].1.contains("+32470123467"), "{}", events[0].1);
    assert!(
        events[0]
            .1
            .contains(created["mobile_masked"].as_str().unwrap())
    );

    // Tracked in the list, filtered by status.
    let list = admin_get(
        &app,
        &office.org,
        "/v1/admin/consents?status=invitation_sent",
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let list = admin_get(&app, &office.org, "/v1/admin/consents?status=active");
    assert!(list["data"].as_array().unwrap().is_empty());
    app.request("GET", "/v1/admin/consents?status=sleeping")
        .bearer(&office.org.admin)
        .send()
        .assert_problem(400, "invalid_parameter");
    let accounts = admin_get(&app, &office.org, "/v1/admin/consent-accounts");
    assert_eq!(accounts["data"][0]["client_reference"], REFERENCE);
}

#[test]
fn ordering_needs_settings_a_known_account_and_valid_contacts() {
    let app = TestApp::spawn();
    let org = app.org("cons-rules");
    let res = post(
        &app,
        "/v1/admin/consent-accounts",
        &org.admin,
        &json!({"company_name": "Client", "client_reference": "REF-1"}),
    );
    let account = res.json()["id"].as_str().unwrap().to_owned();
    post(
        &app,
        "/v1/admin/consent-accounts",
        &org.admin,
        &json!({"company_name": "Other", "client_reference": "REF-1"}),
    )
    .assert_problem(409, "client_reference_taken");
    let body = json!({"account_id": account, "cardholder_name": "A", "email": "a@x.example", "mobile": "+32470123467", "language": "fr"});
    post(&app, "/v1/admin/consents", &org.admin, &body)
        .assert_problem(409, "consent_settings_missing");
    let office = office(&app, "cons-rules-2");
    for (patch, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"mobile": "0470123467"}), "mobile"),
    ] {
        let mut bad = json!({"account_id": office.account, "cardholder_name": "A", "email": "a@x.example", "mobile": "+32470123467", "language": "fr"});
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let p = post(&app, "/v1/admin/consents", &office.org.admin, &bad)
            .assert_problem(400, "invalid_field");
        assert_eq!(p["errors"][0]["field"], field);
    }
    let mut bad = body.clone();
    bad["account_id"] = json!(office.account);
    bad["language"] = json!("de");
    post(&app, "/v1/admin/consents", &office.org.admin, &bad).assert_problem(400, "invalid_field");
    bad["language"] = json!("fr");
    bad["extra"] = json!(1);
    post(&app, "/v1/admin/consents", &office.org.admin, &bad).assert_problem(400, "unknown_field");
    bad.as_object_mut().unwrap().remove("extra");
    bad["cardholder_name"] = json!("Anne\u{0}");
    assert_eq!(
        post(&app, "/v1/admin/consents", &office.org.admin, &bad).status,
        400
    );
    let res = app
        .request("POST", "/v1/admin/consents")
        .bearer(&office.org.admin)
        .header("content-type", "application/json")
        .body(b"{\"account_id\": ".to_vec())
        .send();
    res.assert_problem(400, "malformed_json");
    // Another organization's account is unknown here.
    post(&app, "/v1/admin/consents", &office.org.admin, &body).assert_problem(404, "not_found");
    // Nothing was stored by the refusals.
    let list = admin_get(&app, &office.org, "/v1/admin/consents");
    assert!(list["data"].as_array().unwrap().is_empty());
    // Settings: http(s) addresses and a {token}.
    let res = app
        .request("PUT", "/v1/admin/consents/settings")
        .bearer(&office.org.admin)
        .json(&json!({"activation_url": "https://app.example.com/activation", "video_url": "https://v.example.com/x", "terms_version": "1", "terms_url": "https://t.example.com/x"}))
        .send();
    res.assert_problem(400, "invalid_field");
}

#[test]
fn only_the_office_sees_its_consents() {
    let app = TestApp::spawn();
    let a = office(&app, "cons-iso-a");
    let b = office(&app, "cons-iso-b");
    let created = order(&app, &a, "anne@cons-iso.example", "+32470123467");
    let id = created["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v1/admin/consents/{id}")),
        ("PATCH", format!("/v1/admin/consents/{id}")),
        ("POST", format!("/v1/admin/consents/{id}/invitations")),
        ("POST", format!("/v1/admin/consents/{id}/revocation")),
        ("GET", format!("/v1/admin/consents/templates?consent={id}")),
    ] {
        let req = app.request(method, &path).bearer(&b.org.admin);
        let res = if method == "PATCH" {
            req.json(&json!({"mobile": "+32470000000"})).send()
        } else {
            req.send()
        };
        res.assert_problem(404, "not_found");
        app.request(method, &path)
            .send()
            .assert_problem(401, "unauthenticated");
    }
    assert!(
        admin_get(&app, &b.org, "/v1/admin/consents")["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, customer) = app.registered_customer(&a.org, "cust@cons-iso.example", None);
    for path in ["/v1/admin/consents", "/v1/admin/consent-accounts"] {
        app.request("GET", path)
            .bearer(&customer.access)
            .send()
            .assert_problem(403, "forbidden");
    }
    // An API key of the office may order and track.
    let key = post(
        &app,
        "/v1/admin/api-keys",
        &a.org.admin,
        &json!({"name": "books"}),
    )
    .json();
    let secret = key["secret"].as_str().unwrap();
    let list = app
        .request("GET", "/v1/admin/consents")
        .bearer(secret)
        .send();
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 1);
    // Settings are for admins, not API keys.
    app.request("PUT", "/v1/admin/consents/settings")
        .bearer(secret)
        .json(&json!({"activation_url": "https://a.example.com/{token}", "video_url": "https://v.example.com/x", "terms_version": "1", "terms_url": "https://t.example.com/x"}))
        .send()
        .assert_problem(403, "forbidden");
    // The link of organization A shows organization A.
    let token = link(&app, "anne@cons-iso.example", 1);
    let welcome = public(&app, "GET", &format!("/v1/consents/{token}"), None).json();
    assert_eq!(welcome["office"]["name"], "Org cons-iso-a");
}

// ------------------------------------------------------- the cardholder

#[test]
fn the_cardholder_activates_and_the_contacts_are_erased() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-flow");
    let email = "anne.martin@cons-flow.example";
    let mobile = "+32470123467";
    // Ordered with an idempotency key: its stored answer holds the
    // contacts too, until they are erased.
    let res = app
        .request("POST", "/v1/admin/consents")
        .bearer(&office.org.admin)
        .header("idempotency-key", "order-anne")
        .json(
            &json!({"account_id": office.account, "cardholder_name": "Anne Martin",
                      "email": email, "mobile": mobile, "language": "fr"}),
        )
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let token = link(&app, email, 1);

    let welcome = public(&app, "GET", &format!("/v1/consents/{token}"), None);
    assert_eq!(welcome.status, 200, "{}", welcome.text());
    let welcome = welcome.json();
    assert_eq!(welcome["client_reference"], REFERENCE);
    assert_eq!(welcome["mobile_masked"], created["mobile_masked"]);
    assert_eq!(welcome["terms_version"], TERMS);
    assert_eq!(welcome["shared_from"], "2026-12-01");
    assert_eq!(welcome["office"]["name"], "Org cons-flow");
    assert_eq!(consent(&app, &office.org, &id)["status"], "opened");

    let res = public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/sms-code"),
        None,
    );
    assert_eq!(res.status, 202);
    assert_eq!(res.json()["destination"], created["mobile_masked"]);
    let tracked = consent(&app, &office.org, &id);
    assert_eq!(tracked["status"], "code_sent");
    let code = app.nth_message(mobile, 1).code(6).unwrap();
    let res = public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/sms-code/verification"),
        Some(json!({"code": code})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let step = res.json()["step_token"].as_str().unwrap().to_owned();
    assert_eq!(consent(&app, &office.org, &id)["status"], "code_verified");

    // Completion before the card.
    public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/completion"),
        None,
    )
    .assert_problem(409, "bank_step_not_started");
    let res = card(&app, &token, &step, &visa());
    assert_eq!(res.status, 202, "{}", res.text());
    let accepted = res.json();
    assert_eq!(accepted["status"], "requires_action");
    assert_eq!(accepted["next_action"]["type"], "redirect_to_bank");
    let url = accepted["next_action"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.base), "{url}");
    let tracked = consent(&app, &office.org, &id);
    assert_eq!(tracked["status"], "awaiting_bank");
    assert_eq!(tracked["card"], json!({"brand": "visa", "last4": "4242"}));
    // The step token served once.
    card(&app, &token, &step, &visa()).assert_problem(403, "step_not_completed");
    // The bank's page; the outcome is not known yet.
    let page = app.get(&url[app.base.len()..]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("card_blocked"));
    public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/completion"),
        None,
    )
    .assert_problem(409, "bank_authentication_pending");
    bank(&app, &url, "succeeded");
    // Redirect parameters are not read: a bare completion asks the gateway.
    let res = public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/completion?outcome=failed"),
        None,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let done = res.json();
    assert_eq!(done["status"], "active");
    assert_eq!(done["effective_from"], "2026-12-01");

    // The confirmation names the terms and the office for revoking.
    let confirmation = app.nth_message(email, 2);
    assert!(
        confirmation
            .body
            .contains("https://example.com/terms/2026-11")
    );
    assert!(confirmation.body.contains("révoquer"));
    assert!(confirmation.body.contains("2026-12-01"));

    // Once it is sent, the contacts are erased everywhere.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let tracked = loop {
        let tracked = consent(&app, &office.org, &id);
        if tracked["contacts_erased"] == true {
            break tracked;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never erased: {tracked}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(tracked["status"], "active");
    assert_eq!(tracked["email"], Value::Null);
    assert_eq!(tracked["mobile"], Value::Null);
    assert_eq!(tracked["email_masked"], created["email_masked"]);
    assert_eq!(
        steps(&tracked),
        [
            "invitation_sent",
            "link_opened",
            "code_sent",
            "code_verified",
            "bank_started",
            "bank_succeeded",
            "confirmation_sent",
            "contacts_erased",
        ]
    );
    assert_no_trace(&app, &[email, mobile]);
    // The order's key still replays its answer, with the contacts erased.
    let replay = app
        .request("POST", "/v1/admin/consents")
        .bearer(&office.org.admin)
        .header("idempotency-key", "order-anne")
        .json(
            &json!({"account_id": office.account, "cardholder_name": "Anne Martin",
                      "email": email, "mobile": mobile, "language": "fr"}),
        )
        .send();
    assert_eq!(replay.status, 201, "{}", replay.text());
    assert_eq!(replay.json()["id"], created["id"]);
    assert_eq!(replay.json()["email"], Value::Null);

    assert_eq!(
        sorted_types(&app, &office.org.id),
        [
            "consent.activated",
            "consent.invitation_sent",
            "consent.opened"
        ]
    );
    // The link has served.
    let p = public(&app, "GET", &format!("/v1/consents/{token}"), None)
        .assert_problem(409, "consent_already_active");
    assert_eq!(p["consent_status"], "active");
    // Nothing to edit or resend any more.
    post(
        &app,
        &format!("/v1/admin/consents/{id}/invitations"),
        &office.org.admin,
        &json!({}),
    )
    .assert_problem(409, "consent_not_reinvitable");
    // The cardholder revokes through the office.
    let res = post(
        &app,
        &format!("/v1/admin/consents/{id}/revocation"),
        &office.org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "revoked");
}

/// Neither the SQLite file (and its log) nor any PostgreSQL row of the
/// consent tables, the outbox and the events holds any of `secrets`.
fn assert_no_trace(app: &TestApp, secrets: &[&str]) {
    match app.backend {
        guichet_store::Backend::Sqlite => {
            {
                use diesel::connection::SimpleConnection;
                let mut conn = app.store.conn().unwrap();
                conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
                    .unwrap();
            }
            for file in ["guichet.db", "guichet.db-wal"] {
                let Ok(bytes) = std::fs::read(app.data_dir.join(file)) else {
                    continue;
                };
                for secret in secrets {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{secret} is still in {file}"
                    );
                }
            }
        }
        guichet_store::Backend::Postgres => {
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct Text {
                #[diesel(sql_type = diesel::sql_types::Text)]
                t: String,
            }
            let mut conn = app.store.conn().unwrap();
            for table in [
                "consents",
                "consent_invitations",
                "consent_steps",
                "outbox",
                "events",
                "one_time_codes",
                "webhook_deliveries",
                "idempotency_keys",
            ] {
                let rows: Vec<Text> =
                    diesel::sql_query(format!("SELECT row_to_json(x)::text AS t FROM {table} x"))
                        .load(&mut conn)
                        .unwrap();
                for row in rows {
                    for secret in secrets {
                        assert!(!row.t.contains(secret), "{secret} in {table}: {}", row.t);
                    }
                }
            }
        }
    }
}

#[test]
fn each_refused_card_names_what_to_check_and_the_step_can_be_retried() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-cards");
    let created = order(&app, &office, "anne@cons-cards.example", "+32470123467");
    let id = created["id"].as_str().unwrap();
    let token = link(&app, "anne@cons-cards.example", 1);
    let step = verified(&app, &token, "+32470123467", 0);
    let path = format!("/v1/consents/{token}/card");
    let body = |card: &str, reference: &str, accepted: bool, version: &str| {
        json!({"step_token": step, "card_token": card, "client_reference": reference,
               "terms_accepted": accepted, "terms_version": version})
    };
    let debit = sandbox_token(test_cards::VISA_DEBIT, 12, 2030).0;
    let mastercard = sandbox_token(test_cards::MASTERCARD, 12, 2030).0;
    // Tokenized by the server's sandbox, on the server's day.
    let res = public(
        &app,
        "POST",
        "/v1/sandbox/card-tokens",
        Some(json!({"number": test_cards::VISA, "exp_month": 11, "exp_year": 2026, "cvc": "123"})),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let expiring = res.json()["token"].as_str().unwrap().to_owned();
    let cases = [
        (body(&visa(), REFERENCE, false, TERMS), "terms_not_accepted"),
        (
            body(&visa(), REFERENCE, true, "2020-01"),
            "terms_not_accepted",
        ),
        (
            body(&visa(), "BE-CARO-0042-9999", true, TERMS),
            "client_reference_mismatch",
        ),
        (body(&debit, REFERENCE, true, TERMS), "card_not_credit"),
        (
            body(&mastercard, REFERENCE, true, TERMS),
            "card_reference_mismatch",
        ),
        (
            body("tok_sandbox_nonsense", REFERENCE, true, TERMS),
            "card_token_invalid",
        ),
    ];
    for (body, code) in &cases {
        let p = public(&app, "POST", &path, Some(body.clone())).assert_problem(422, code);
        assert!(p["detail"].as_str().is_some_and(|d| d.len() > 20), "{p}");
    }
    let p = public(
        &app,
        "POST",
        &path,
        Some(body(&debit, REFERENCE, true, TERMS)),
    )
    .assert_problem(422, "card_not_credit");
    assert!(p["detail"].as_str().unwrap().contains("Débit"), "{p}");
    // The card expires at the end of November: refused on 1 December
    // (the link is still valid).
    // (The step token lives 15 minutes: a new code after the clock moved.)
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap());
    let step = verified(&app, &token, "+32470123467", 1);
    card(&app, &token, &step, &expiring).assert_problem(422, "card_expired");
    let tracked = consent(&app, &signed_in_again(&app, &office.org), id);
    let refused: Vec<&str> = tracked["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "card_refused")
        .map(|s| s["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        refused,
        [
            "terms_not_accepted",
            "terms_not_accepted",
            "client_reference_mismatch",
            "card_not_credit",
            "card_reference_mismatch",
            "card_not_credit",
            "card_expired",
        ]
    );
    assert_eq!(tracked["status"], "code_verified");
    // A refusal does not spend the step token: the right card goes on.
    let res = card(&app, &token, &step, &visa());
    assert_eq!(res.status, 202, "{}", res.text());
    // A card number is never taken.
    let mut with_pan = body(&visa(), REFERENCE, true, TERMS);
    with_pan["card_token"] = json!("4242424242424242");
    public(&app, "POST", &path, Some(with_pan)).assert_problem(400, "card_number_refused");
}

#[test]
fn steps_cannot_be_skipped() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-skip");
    order(&app, &office, "anne@cons-skip.example", "+32470123467");
    let token = link(&app, "anne@cons-skip.example", 1);
    let path = format!("/v1/consents/{token}/card");
    let no_step = json!({"card_token": visa(), "client_reference": REFERENCE, "terms_accepted": true, "terms_version": TERMS});
    public(&app, "POST", &path, Some(no_step.clone())).assert_problem(403, "step_not_completed");
    let mut forged = no_step.clone();
    forged["step_token"] = json!("x".repeat(43));
    public(&app, "POST", &path, Some(forged)).assert_problem(403, "step_not_completed");
    public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/completion"),
        None,
    )
    .assert_problem(409, "bank_step_not_started");
    // A step token of another link does not serve here.
    order(&app, &office, "bob@cons-skip.example", "+32470999999");
    let other = link(&app, "bob@cons-skip.example", 1);
    let step = verified(&app, &other, "+32470999999", 0);
    card(&app, &token, &step, &visa()).assert_problem(403, "step_not_completed");
    // A tampered link is unknown.
    let mut tampered = token.clone();
    tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    public(&app, "GET", &format!("/v1/consents/{tampered}"), None).assert_problem(404, "not_found");
    // The step token expires after 15 minutes.
    let step = verified(&app, &token, "+32470123467", 0);
    app.clock.advance(Duration::minutes(16));
    card(&app, &token, &step, &visa()).assert_problem(403, "step_not_completed");
}

#[test]
fn a_bank_failure_is_named_and_the_card_step_can_be_retried() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-bank");
    let created = order(&app, &office, "anne@cons-bank.example", "+32470123467");
    let id = created["id"].as_str().unwrap();
    let token = link(&app, "anne@cons-bank.example", 1);
    let mut step = verified(&app, &token, "+32470123467", 0);
    for reason in [
        "online_payments_disabled",
        "card_blocked",
        "card_not_activated",
        "wrong_data",
        "technical_error",
    ] {
        let res = card(&app, &token, &step, &visa());
        assert_eq!(res.status, 202, "{}", res.text());
        let url = res.json()["next_action"]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        bank(&app, &url, reason);
        let p = public(
            &app,
            "POST",
            &format!("/v1/consents/{token}/completion"),
            None,
        )
        .assert_problem(422, "bank_authentication_failed");
        assert_eq!(p["reason"], reason);
        assert_eq!(p["office"]["name"], "Org cons-bank");
        let tracked = consent(&app, &office.org, id);
        assert_eq!(tracked["status"], "failed");
        assert_eq!(tracked["failure_reason"], reason);
        let last = tracked["timeline"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["step"], "bank_failed");
        assert_eq!(last["detail"], reason);
        // The answer is final: asking again does not fail twice.
        public(
            &app,
            "POST",
            &format!("/v1/consents/{token}/completion"),
            None,
        )
        .assert_problem(409, "bank_step_not_started");
        step = p["step_token"].as_str().unwrap().to_owned();
    }
    let p = {
        let res = card(&app, &token, &step, &visa());
        let url = res.json()["next_action"]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        // The page is answered once.
        bank(&app, &url, "succeeded");
        let path = &url[url.find("/v1/sandbox/sca/").unwrap()..];
        public(&app, "POST", path, Some(json!({"outcome": "card_blocked"})))
            .assert_problem(409, "sca_already_decided");
        public(&app, "POST", path, Some(json!({"outcome": "maybe"})))
            .assert_problem(400, "invalid_field");
        public(
            &app,
            "POST",
            &format!("/v1/consents/{token}/completion"),
            None,
        )
    };
    assert_eq!(p.status, 200, "{}", p.text());
    let types = sorted_types(&app, &office.org.id);
    assert_eq!(types.iter().filter(|t| *t == "consent.failed").count(), 5);
    assert_eq!(
        types.iter().filter(|t| *t == "consent.activated").count(),
        1
    );
}

#[test]
fn concurrent_completions_activate_once() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-race");
    order(&app, &office, "anne@cons-race.example", "+32470123467");
    let token = link(&app, "anne@cons-race.example", 1);
    let step = verified(&app, &token, "+32470123467", 0);
    let url = card(&app, &token, &step, &visa()).json()["next_action"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    bank(&app, &url, "succeeded");
    let barrier = Barrier::new(20);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    public(
                        &app,
                        "POST",
                        &format!("/v1/consents/{token}/completion"),
                        None,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert!(ok >= 1);
    for r in &answers {
        assert!(
            r.status == 200 || (r.status == 409 && r.json()["code"] == "consent_already_active"),
            "{}",
            r.text()
        );
    }
    let activated = event_types(&app, &office.org.id)
        .into_iter()
        .filter(|e| e.0 == "consent.activated")
        .count();
    assert_eq!(activated, 1);
    assert_eq!(app.wait_for_messages("anne@cons-race.example", 2).len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        app.messages_now("anne@cons-race.example").len(),
        2,
        "one confirmation"
    );
}

#[test]
fn sms_codes_are_capped_per_link_even_at_once() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-cap");
    order(&app, &office, "anne@cons-cap.example", "+32470123467");
    let token = link(&app, "anne@cons-cap.example", 1);
    let barrier = Barrier::new(20);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    public(
                        &app,
                        "POST",
                        &format!("/v1/consents/{token}/sms-code"),
                        None,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|r| r.status == 202).count(), 3);
    for r in answers.iter().filter(|r| r.status != 202) {
        r.assert_problem(429, "rate_limited");
        assert!(r.header("retry-after").is_some());
    }
    assert_eq!(app.wait_for_messages("+32470123467", 3).len(), 3);
    // Five wrong codes burn the code.
    let path = format!("/v1/consents/{token}/sms-code/verification");
    let right = app.nth_message("+32470123467", 3).code(6).unwrap();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        public(&app, "POST", &path, Some(json!({"code": wrong})))
            .assert_problem(422, "invalid_code");
    }
    public(&app, "POST", &path, Some(json!({"code": wrong})))
        .assert_problem(429, "code_attempts_exceeded");
    public(&app, "POST", &path, Some(json!({"code": right})))
        .assert_problem(429, "code_attempts_exceeded");
}

#[test]
fn sms_codes_are_capped_per_number_across_links() {
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--code-send-limit-per-destination".into(), "4".into()],
        ..Default::default()
    });
    let office = office(&app, "cons-dest");
    let mobile = "+32470123467";
    order(&app, &office, "anne@cons-dest.example", mobile);
    order(&app, &office, "bob@cons-dest.example", mobile);
    let first = link(&app, "anne@cons-dest.example", 1);
    let second = link(&app, "bob@cons-dest.example", 1);
    let send = |token: &str| {
        public(
            &app,
            "POST",
            &format!("/v1/consents/{token}/sms-code"),
            None,
        )
    };
    for _ in 0..3 {
        assert_eq!(send(&first).status, 202);
    }
    assert_eq!(send(&second).status, 202);
    // The fifth code to that number this hour, from a link under its own
    // cap.
    let refused = send(&second);
    refused.assert_problem(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(app.wait_for_messages(mobile, 4).len(), 4);
}

/// `n` requests at once, released together; their answers.
fn at_once(n: usize, send: impl Fn(usize) -> Response + Sync) -> Vec<Response> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, send) = (&barrier, &send);
                scope.spawn(move || {
                    barrier.wait();
                    send(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn thirty_wrong_codes_at_once_get_four_comparisons_and_burn_the_code() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-guess");
    let id = order(&app, &office, "anne@cons-guess.example", "+32470123467")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link(&app, "anne@cons-guess.example", 1);
    let res = public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/sms-code"),
        None,
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let right = app.nth_message("+32470123467", 1).code(6).unwrap();
    let path = format!("/v1/consents/{token}/sms-code/verification");
    // Thirty different wrong codes, none of them the right one.
    let wrong: Vec<String> = (0..30u32)
        .map(|i| format!("{:06}", i * 7 + 100_000))
        .filter(|c| *c != right)
        .take(29)
        .collect();
    let answers = at_once(wrong.len(), |i| {
        public(&app, "POST", &path, Some(json!({"code": wrong[i]})))
    });
    let compared = answers.iter().filter(|r| r.status == 422).count();
    assert_eq!(compared, 4, "four wrong codes compared, the fifth burns it");
    for r in &answers {
        if r.status == 422 {
            r.assert_problem(422, "invalid_code");
        } else {
            r.assert_problem(429, "code_attempts_exceeded");
        }
    }
    // The right code no longer opens the step, and nothing moved on.
    public(&app, "POST", &path, Some(json!({"code": right})))
        .assert_problem(429, "code_attempts_exceeded");
    let view = consent(&app, &office.org, &id);
    assert_eq!(view["status"], "code_sent", "{view}");
    assert_eq!(count_steps(&view, "code_verified"), 0, "{view}");
    // A new code starts a new count.
    let res = public(
        &app,
        "POST",
        &format!("/v1/consents/{token}/sms-code"),
        None,
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let fresh = app.nth_message("+32470123467", 2).code(6).unwrap();
    let res = public(&app, "POST", &path, Some(json!({"code": fresh})));
    assert_eq!(res.status, 200, "{}", res.text());
}

#[test]
fn codes_to_one_number_are_capped_across_links_even_at_once() {
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--code-send-limit-per-destination".into(), "4".into()],
        ..Default::default()
    });
    let office = office(&app, "cons-dest-race");
    let mobile = "+32470123468";
    // Ten invitations to the same mobile, each link under its own cap of 3.
    let tokens: Vec<String> = (0..10)
        .map(|i| {
            let email = format!("holder{i}@cons-dest-race.example");
            order(&app, &office, &email, mobile);
            link(&app, &email, 1)
        })
        .collect();
    let answers = at_once(30, |i| {
        let token = &tokens[i % tokens.len()];
        public(
            &app,
            "POST",
            &format!("/v1/consents/{token}/sms-code"),
            None,
        )
    });
    let sent = answers.iter().filter(|r| r.status == 202).count();
    assert_eq!(sent, 4, "the number's cap, whatever the link");
    for r in answers.iter().filter(|r| r.status != 202) {
        r.assert_problem(429, "rate_limited");
        assert!(r.header("retry-after").is_some());
    }
    assert_eq!(app.wait_for_messages(mobile, 4).len(), 4);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(app.messages_now(mobile).len(), 4, "no fifth SMS");
}

// ---------------------------------------------------- expiry and resend

#[test]
fn a_link_lives_fourteen_days_and_a_new_invitation_fourteen_more() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-expiry");
    let created = order(&app, &office, "anne@cons-expiry.example", "+32470123467");
    let id = created["id"].as_str().unwrap();
    let token = link(&app, "anne@cons-expiry.example", 1);
    let start = app.clock.now();
    app.clock
        .set(start + Duration::days(13) + Duration::hours(23));
    let res = public(&app, "GET", &format!("/v1/consents/{token}"), None);
    assert_eq!(res.status, 200, "{}", res.text());
    let step = verified(&app, &token, "+32470123467", 0);
    app.clock
        .set(start + Duration::days(14) + Duration::minutes(1));
    for (method, path, body) in [
        ("GET", format!("/v1/consents/{token}"), None),
        ("POST", format!("/v1/consents/{token}/sms-code"), None),
        (
            "POST",
            format!("/v1/consents/{token}/sms-code/verification"),
            Some(json!({"code": "123456"})),
        ),
        (
            "POST",
            format!("/v1/consents/{token}/card"),
            Some(
                json!({"step_token": step, "card_token": visa(), "client_reference": REFERENCE, "terms_accepted": true, "terms_version": TERMS}),
            ),
        ),
        ("POST", format!("/v1/consents/{token}/completion"), None),
    ] {
        let p = public(&app, method, &path, body).assert_problem(410, "invitation_expired");
        assert_eq!(p["office"]["name"], "Org cons-expiry");
    }
    let office = Office {
        org: signed_in_again(&app, &office.org),
        account: office.account,
    };
    let tracked = consent(&app, &office.org, id);
    assert_eq!(tracked["status"], "expired");
    assert_eq!(steps(&tracked).last().unwrap(), "expired");
    let list = admin_get(&app, &office.org, "/v1/admin/consents?status=expired");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let expired_events = event_types(&app, &office.org.id)
        .into_iter()
        .filter(|e| e.0 == "consent.expired")
        .count();
    assert_eq!(expired_events, 1);

    // The office sends a new invitation, valid 14 days again; the old link
    // is dead.
    let res = post(
        &app,
        &format!("/v1/admin/consents/{id}/invitations"),
        &office.org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let again = res.json();
    assert_eq!(again["status"], "invitation_sent");
    let expires =
        chrono::DateTime::parse_from_rfc3339(again["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.with_timezone(&Utc),
        app.clock.now() + Duration::days(14)
    );
    let fresh = link(&app, "anne@cons-expiry.example", 2);
    assert_ne!(fresh, token);
    public(&app, "GET", &format!("/v1/consents/{token}"), None).assert_problem(404, "not_found");
    assert_eq!(
        public(&app, "GET", &format!("/v1/consents/{fresh}"), None).status,
        200
    );
}

/// The sweep `guichet serve` runs periodically, as one node runs it.
fn sweep(app: &TestApp) -> u64 {
    ConsentExpiry::new(app.store.clone(), Arc::new(app.clock.clone()))
        .run()
        .unwrap()
        .expired
}

/// The `consent.expired` events of the organization, as the office reads
/// them.
fn expired_events(app: &TestApp, org: &Org) -> Vec<Value> {
    admin_get(app, org, "/v1/admin/events?type=consent.expired&limit=100")["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn count_steps(consent: &Value, step: &str) -> usize {
    steps(consent).iter().filter(|s| *s == step).count()
}

/// Orders a consent for `email` and takes it through the card and the bank
/// (`outcome`) up to the completion; returns its id.
fn through_the_bank(
    app: &TestApp,
    office: &Office,
    email: &str,
    mobile: &str,
    outcome: &str,
) -> String {
    let id = order(app, office, email, mobile)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link(app, email, 1);
    let step = verified(app, &token, mobile, 0);
    let res = card(app, &token, &step, &visa());
    assert_eq!(res.status, 202, "{}", res.text());
    bank(
        app,
        res.json()["next_action"]["url"].as_str().unwrap(),
        outcome,
    );
    let res = public(
        app,
        "POST",
        &format!("/v1/consents/{token}/completion"),
        None,
    );
    let expected = if outcome == "succeeded" { 200 } else { 422 };
    assert_eq!(res.status, expected, "{}", res.text());
    id
}

#[test]
fn the_sweep_expires_dead_links_once_whoever_reads_them() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-sweep");
    let start = app.clock.now();
    let sent = order(&app, &office, "anne@cons-sweep.example", "+32470000011")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = through_the_bank(
        &app,
        &office,
        "bob@cons-sweep.example",
        "+32470000012",
        "card_blocked",
    );
    let active = through_the_bank(
        &app,
        &office,
        "carl@cons-sweep.example",
        "+32470000013",
        "succeeded",
    );
    let revoked = order(&app, &office, "dora@cons-sweep.example", "+32470000014")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = post(
        &app,
        &format!("/v1/admin/consents/{revoked}/revocation"),
        &office.org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let token = link(&app, "anne@cons-sweep.example", 1);

    // 13 days 23 hours: every link lives; the sweep leaves them be.
    app.clock
        .set(start + Duration::days(13) + Duration::hours(23));
    assert_eq!(sweep(&app), 0);
    let org = signed_in_again(&app, &office.org);
    assert!(expired_events(&app, &org).is_empty());
    assert_eq!(consent(&app, &org, &sent)["status"], "invitation_sent");
    assert_eq!(consent(&app, &org, &failed)["status"], "failed");

    // 14 days and 1 minute: the sweep expires the two under way (a failed
    // bank step included), nobody having read them; the event is recorded
    // once each, by the system, without the contacts in clear.
    app.clock
        .set(start + Duration::days(14) + Duration::minutes(1));
    assert_eq!(sweep(&app), 2);
    let org = signed_in_again(&app, &org);
    let events = expired_events(&app, &org);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["object"]["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![sent.as_str(), failed.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    for event in &events {
        assert_eq!(event["type"], "consent.expired");
        assert_eq!(event["actor"], "system");
        assert_eq!(event["data"]["status"], "expired");
        assert_eq!(event["data"]["failure_reason"], Value::Null);
        assert_eq!(event["data"]["email"], Value::Null);
        assert_eq!(event["data"]["mobile"], Value::Null);
        assert_eq!(
            event["data"]["timeline"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["step"],
            "expired"
        );
    }

    // A second sweep, and reads by the office and by the cardholder, add
    // nothing; nor does a request that read the consent before the sweep
    // committed and expires it after (what a read racing a sweep does).
    assert_eq!(sweep(&app), 0);
    let mut conn = app.store.conn().unwrap();
    let late = guichet_store::transaction(&mut conn, |conn| {
        guichet_store::repo::consents::expire(conn, &org.id, &sent, app.clock.now())
    })
    .unwrap();
    assert!(!late);
    drop(conn);
    for id in [&sent, &failed] {
        let tracked = consent(&app, &org, id);
        assert_eq!(tracked["status"], "expired");
        assert_eq!(count_steps(&tracked, "expired"), 1);
        let at = chrono::DateTime::parse_from_rfc3339(
            tracked["timeline"].as_array().unwrap().last().unwrap()["at"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            at.with_timezone(&Utc),
            start + Duration::days(14),
            "dated when the link died"
        );
    }
    let list = admin_get(&app, &org, "/v1/admin/consents?status=expired");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    public(&app, "GET", &format!("/v1/consents/{token}"), None)
        .assert_problem(410, "invitation_expired");
    assert_eq!(expired_events(&app, &org).len(), 2);
    assert_eq!(consent(&app, &org, &active)["status"], "active");
    assert_eq!(consent(&app, &org, &revoked)["status"], "revoked");

    // A new invitation after the sweep: 14 days again, which the sweep
    // respects.
    let res = post(
        &app,
        &format!("/v1/admin/consents/{sent}/invitations"),
        &org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["status"], "invitation_sent");
    let fresh = link(&app, "anne@cons-sweep.example", 2);
    assert_eq!(
        public(&app, "GET", &format!("/v1/consents/{fresh}"), None).status,
        200
    );
    assert_eq!(sweep(&app), 0);
    assert_eq!(consent(&app, &org, &sent)["status"], "opened");
    assert_eq!(expired_events(&app, &org).len(), 2);
}

#[test]
fn concurrent_sweeps_and_reads_expire_each_consent_once() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-race");
    let start = app.clock.now();
    let ids: Vec<String> = (0..7)
        .map(|n| {
            order(
                &app,
                &office,
                &format!("c{n}@cons-race.example"),
                &format!("+3247000010{n}"),
            )["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    app.clock
        .set(start + Duration::days(14) + Duration::minutes(1));
    let org = signed_in_again(&app, &office.org);

    // Twenty requests read the first consent at once (each read expires
    // it if it finds it due) while three nodes sweep in small batches and
    // four more requests read the others.
    let barrier = Barrier::new(20 + 3 + 4);
    let swept: u64 = std::thread::scope(|scope| {
        let mut reads = Vec::new();
        for n in 0..24 {
            let (ids, org, barrier, app) = (&ids, &org, &barrier, &app);
            reads.push(scope.spawn(move || {
                barrier.wait();
                let mine: Vec<&String> = if n < 20 {
                    vec![&ids[0]]
                } else {
                    ids.iter().cycle().skip(n).take(ids.len()).collect()
                };
                for id in mine {
                    assert_eq!(consent(app, org, id)["status"], "expired");
                }
            }));
        }
        let sweeps: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    ConsentExpiry::new(app.store.clone(), Arc::new(app.clock.clone()))
                        .with_batch(2)
                        .run()
                        .unwrap()
                        .expired
                })
            })
            .collect();
        for read in reads {
            read.join().unwrap();
        }
        sweeps.into_iter().map(|s| s.join().unwrap()).sum()
    });
    assert!(swept <= 7, "{swept}");

    let events = expired_events(&app, &org);
    let mut expired: Vec<&str> = events
        .iter()
        .map(|e| e["object"]["id"].as_str().unwrap())
        .collect();
    expired.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(expired, want, "one consent.expired per consent");
    for id in &ids {
        assert_eq!(count_steps(&consent(&app, &org, id), "expired"), 1);
    }
    assert_eq!(sweep(&app), 0);
    assert_eq!(expired_events(&app, &org).len(), 7);
}

#[test]
fn the_office_edits_the_mobile_and_resends() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-edit");
    let created = order(&app, &office, "anne@cons-edit.example", "+32470000001");
    let id = created["id"].as_str().unwrap();
    let old = link(&app, "anne@cons-edit.example", 1);
    let res = app
        .request("PATCH", &format!("/v1/admin/consents/{id}"))
        .bearer(&office.org.admin)
        .json(&json!({"mobile": "+32470000002", "email": "anne.m@cons-edit.example"}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let edited = res.json();
    assert_eq!(edited["mobile"], "+32470000002");
    assert_eq!(steps(&edited).last().unwrap(), "contacts_edited");
    let res = post(
        &app,
        &format!("/v1/admin/consents/{id}/invitations"),
        &office.org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 201);
    public(&app, "GET", &format!("/v1/consents/{old}"), None).assert_problem(404, "not_found");
    let fresh = link(&app, "anne.m@cons-edit.example", 1);
    let step = verified(&app, &fresh, "+32470000002", 0);
    assert!(!step.is_empty());
    assert!(app.messages_now("+32470000001").is_empty());
    // Revoked: the link is gone, nothing may change.
    let res = post(
        &app,
        &format!("/v1/admin/consents/{id}/revocation"),
        &office.org.admin,
        &json!({}),
    );
    assert_eq!(res.status, 200);
    public(&app, "GET", &format!("/v1/consents/{fresh}"), None)
        .assert_problem(410, "consent_revoked");
    post(
        &app,
        &format!("/v1/admin/consents/{id}/revocation"),
        &office.org.admin,
        &json!({}),
    )
    .assert_problem(409, "consent_already_revoked");
    post(
        &app,
        &format!("/v1/admin/consents/{id}/invitations"),
        &office.org.admin,
        &json!({}),
    )
    .assert_problem(409, "consent_not_reinvitable");
    app.request("PATCH", &format!("/v1/admin/consents/{id}"))
        .bearer(&office.org.admin)
        .json(&json!({"mobile": "+32470000003"}))
        .send()
        .assert_problem(409, "consent_not_reinvitable");
    assert_eq!(
        sorted_types(&app, &office.org.id),
        [
            "consent.invitation_sent",
            "consent.invitation_sent",
            "consent.revoked"
        ]
    );
}

#[test]
fn templates_inform_the_client_and_the_cardholder() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-tpl");
    let created = order(&app, &office, "anne@cons-tpl.example", "+32470123467");
    let blank = admin_get(
        &app,
        &office.org,
        "/v1/admin/consents/templates?language=en",
    );
    assert_eq!(blank["language"], "en");
    let names: Vec<&str> = blank["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inform_client", "inform_cardholder"]);
    assert!(
        blank["data"][1]["body"]
            .as_str()
            .unwrap()
            .contains("{cardholder}")
    );
    assert!(
        blank["data"][1]["body"]
            .as_str()
            .unwrap()
            .contains("phishing")
    );
    let filled = admin_get(
        &app,
        &office.org,
        &format!(
            "/v1/admin/consents/templates?consent={}",
            created["id"].as_str().unwrap()
        ),
    );
    assert_eq!(filled["language"], "fr");
    let body = filled["data"][1]["body"].as_str().unwrap();
    for needle in [
        "Anne Martin",
        "Boulangerie Martin SRL",
        REFERENCE,
        "anne@cons-tpl.example",
        "https://video.example.com/5-steps",
    ] {
        assert!(body.contains(needle), "{needle}: {body}");
    }
    assert!(!body.contains('{'), "{body}");
    app.request("GET", "/v1/admin/consents/templates?language=de")
        .bearer(&office.org.admin)
        .send()
        .assert_problem(400, "invalid_parameter");
}

#[test]
fn an_order_with_an_idempotency_key_is_made_once() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-idem");
    let body = json!({"account_id": office.account, "cardholder_name": "Anne Martin",
                      "email": "anne@cons-idem.example", "mobile": "+32470123467", "language": "fr"});
    let send = |body: &Value, key: &str| {
        app.request("POST", "/v1/admin/consents")
            .bearer(&office.org.admin)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let barrier = Barrier::new(20);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    send(&body, "order-anne-1")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<&Response> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in &answers {
        assert!(
            r.status == 201 || (r.status == 409 && r.json()["code"] == "idempotency_key_in_use"),
            "{}",
            r.text()
        );
    }
    let ids: std::collections::HashSet<String> = created
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one consent");
    let replay = send(&body, "order-anne-1");
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["id"], created[0].json()["id"]);
    let mut other = body.clone();
    other["mobile"] = json!("+32470999999");
    send(&other, "order-anne-1").assert_problem(422, "idempotency_key_reused");
    let list = admin_get(&app, &office.org, "/v1/admin/consents");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.messages_now("anne@cons-idem.example").len(),
        1,
        "one invitation"
    );
}

// ------------------------------------------- a link that dies under a step

/// The outbox messages of the organization on `channel`, by id.
fn queued(app: &TestApp, org_id: &str, channel: &str) -> Vec<String> {
    use diesel::prelude::*;
    use guichet_store::schema::outbox;
    let mut conn = app.store.conn().unwrap();
    let mut ids: Vec<String> = outbox::table
        .filter(outbox::org_id.eq(org_id))
        .filter(outbox::channel.eq(channel))
        .select(outbox::id)
        .load(&mut conn)
        .unwrap();
    ids.sort_unstable();
    ids
}

/// The consent's timeline in its order, with the message of each step.
fn timeline_rows(app: &TestApp, consent_id: &str) -> Vec<(String, Option<String>)> {
    use diesel::prelude::*;
    use guichet_store::schema::consent_steps;
    let mut conn = app.store.conn().unwrap();
    consent_steps::table
        .filter(consent_steps::consent_id.eq(consent_id))
        .order(consent_steps::seq.asc())
        .select((consent_steps::kind, consent_steps::message_id))
        .load(&mut conn)
        .unwrap()
}

/// The office revokes the consent, as `POST .../revocation` does it (in
/// the caller's transaction).
fn revoke_in(
    conn: &mut guichet_store::DbConnection,
    org_id: &str,
    id: &str,
    at: chrono::DateTime<Utc>,
) {
    use guichet_domain::consent::ConsentStatus;
    use guichet_store::repo::consents::{self, Step};
    let consent = consents::get(conn, org_id, id).unwrap();
    let others: Vec<ConsentStatus> = ConsentStatus::ALL
        .into_iter()
        .filter(|s| *s != ConsentStatus::Revoked)
        .collect();
    assert!(
        consents::transition(conn, org_id, id, &others, ConsentStatus::Revoked, None, at).unwrap()
    );
    consents::kill_invitations(conn, id, at).unwrap();
    consents::add_step(conn, &Step::new(&consent, "revoked", None, at)).unwrap();
}

/// Sends `request` while the test holds the consent's lock, and, once the
/// request has had the time to read the link and reach the lock, makes
/// `change` in that transaction and commits: the step then acts after the
/// change on what it read before it (on SQLite the request waits for the
/// writer's lock, on PostgreSQL for the row's).
fn in_the_gap(
    app: &TestApp,
    org_id: &str,
    consent_id: &str,
    change: impl FnOnce(&mut guichet_store::DbConnection),
    request: impl FnOnce() -> Response + Send,
) -> Response {
    let mut conn = app.store.conn().unwrap();
    std::thread::scope(|scope| {
        let mut pending = None;
        guichet_store::transaction(&mut conn, |conn| {
            guichet_store::repo::consents::lock(conn, org_id, consent_id)?;
            pending = Some(scope.spawn(request));
            std::thread::sleep(std::time::Duration::from_millis(700));
            change(conn);
            Ok::<_, guichet_store::StoreError>(())
        })
        .unwrap();
        pending.unwrap().join().unwrap()
    })
}

/// A consent at each step: `at` says how far the cardholder went. Returns
/// the consent's id, its link, and what the next step needs (the SMS code
/// or the step token).
fn at_step(app: &TestApp, office: &Office, n: usize, at: &str) -> (String, String, String) {
    let email = format!("c{n}@cons-gap.example");
    let mobile = format!("+3247000020{n}");
    let id = order(app, office, &email, &mobile)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link(app, &email, 1);
    let next = match at {
        "welcome" | "sms-code" => String::new(),
        "verification" => {
            let res = public(app, "POST", &format!("/v1/consents/{token}/sms-code"), None);
            assert_eq!(res.status, 202, "{}", res.text());
            app.nth_message(&mobile, 1).code(6).unwrap()
        }
        "card" => verified(app, &token, &mobile, 0),
        "completion" => {
            let step = verified(app, &token, &mobile, 0);
            let res = card(app, &token, &step, &visa());
            assert_eq!(res.status, 202, "{}", res.text());
            bank(
                app,
                res.json()["next_action"]["url"].as_str().unwrap(),
                "succeeded",
            );
            String::new()
        }
        other => unreachable!("{other}"),
    };
    (id, token, next)
}

/// The request of the step `at` on the link `token`, with `next` (the SMS
/// code or the step token) or, when empty, a well-formed one.
fn step_request(app: &TestApp, at: &str, token: &str, next: &str) -> Response {
    let code = if next.is_empty() { "000000" } else { next };
    let step = if next.is_empty() {
        "no-such-step"
    } else {
        next
    };
    match at {
        "welcome" => public(app, "GET", &format!("/v1/consents/{token}"), None),
        "sms-code" => public(app, "POST", &format!("/v1/consents/{token}/sms-code"), None),
        "verification" => public(
            app,
            "POST",
            &format!("/v1/consents/{token}/sms-code/verification"),
            Some(json!({"code": code})),
        ),
        "card" => card(app, token, step, &visa()),
        "completion" => public(
            app,
            "POST",
            &format!("/v1/consents/{token}/completion"),
            None,
        ),
        other => unreachable!("{other}"),
    }
}

const STEPS: [&str; 5] = ["welcome", "sms-code", "verification", "card", "completion"];

#[test]
fn a_revoked_consent_refuses_every_step_and_sends_nothing() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-revoked");
    for (n, at) in STEPS.into_iter().enumerate() {
        let (id, token, next) = at_step(&app, &office, n, at);
        let res = post(
            &app,
            &format!("/v1/admin/consents/{id}/revocation"),
            &office.org.admin,
            &json!({}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
        let sms = queued(&app, &office.org.id, "sms");
        let emails = queued(&app, &office.org.id, "email");
        let before = timeline_rows(&app, &id);
        // Every step, the one it was at and the others, answers the
        // revocation with the office's contact.
        for step in STEPS {
            let next = if step == at { next.as_str() } else { "" };
            let p = step_request(&app, step, &token, next).assert_problem(410, "consent_revoked");
            assert!(p["office"]["name"].is_string(), "{step}");
        }
        assert_eq!(queued(&app, &office.org.id, "sms"), sms, "{at}: no SMS");
        assert_eq!(
            queued(&app, &office.org.id, "email"),
            emails,
            "{at}: no e-mail"
        );
        assert_eq!(timeline_rows(&app, &id), before, "{at}: no step");
        assert_eq!(consent(&app, &office.org, &id)["status"], "revoked");
    }
}

#[test]
fn a_replaced_link_is_unknown_on_every_step() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-replaced");
    for (n, at) in STEPS.into_iter().enumerate() {
        let (id, token, next) = at_step(&app, &office, n, at);
        let res = post(
            &app,
            &format!("/v1/admin/consents/{id}/invitations"),
            &office.org.admin,
            &json!({}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        let sms = queued(&app, &office.org.id, "sms");
        let before = timeline_rows(&app, &id);
        for step in STEPS {
            let next = if step == at { next.as_str() } else { "" };
            step_request(&app, step, &token, next).assert_problem(404, "not_found");
        }
        assert_eq!(queued(&app, &office.org.id, "sms"), sms, "{at}: no SMS");
        assert_eq!(timeline_rows(&app, &id), before, "{at}: no step");
        assert_eq!(consent(&app, &office.org, &id)["status"], "invitation_sent");
        // The new link is the one that works.
        let fresh = link(&app, &format!("c{n}@cons-gap.example"), 2);
        let res = public(&app, "GET", &format!("/v1/consents/{fresh}"), None);
        assert_eq!(res.status, 200, "{}", res.text());
    }
}

#[test]
fn a_revocation_while_a_step_waits_for_the_consent_is_its_answer() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-gap");
    for (n, at) in STEPS.into_iter().enumerate() {
        let (id, token, next) = at_step(&app, &office, n, at);
        let sms = queued(&app, &office.org.id, "sms");
        let emails = queued(&app, &office.org.id, "email");
        let before = timeline_rows(&app, &id);
        let now = app.clock.now();
        let res = in_the_gap(
            &app,
            &office.org.id,
            &id,
            |conn| revoke_in(conn, &office.org.id, &id, now),
            || step_request(&app, at, &token, &next),
        );
        res.assert_problem(410, "consent_revoked");
        assert_eq!(queued(&app, &office.org.id, "sms"), sms, "{at}: no SMS");
        assert_eq!(
            queued(&app, &office.org.id, "email"),
            emails,
            "{at}: no e-mail"
        );
        let after = timeline_rows(&app, &id);
        assert_eq!(after.len(), before.len() + 1, "{at}: {after:?}");
        assert_eq!(after.last().unwrap().0, "revoked", "{at}");
        assert_eq!(consent(&app, &office.org, &id)["status"], "revoked");
    }
    let opened = event_types(&app, &office.org.id)
        .into_iter()
        .filter(|e| e.0 == "consent.opened" || e.0 == "consent.activated")
        .count();
    assert_eq!(opened, 0, "neither opened nor activated");
}

#[test]
fn an_expiry_or_a_new_link_while_a_code_waits_for_the_consent_sends_nothing() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-gap-expiry");
    let start = app.clock.now();
    let later = start + Duration::days(14) + Duration::minutes(1);

    // The sweep (on a node whose clock is past the 14 days) expires the
    // consent while the request, which read it alive, waits for it.
    let (id, token, _) = at_step(&app, &office, 0, "sms-code");
    let res = in_the_gap(
        &app,
        &office.org.id,
        &id,
        |conn| {
            assert!(
                guichet_store::repo::consents::expire(conn, &office.org.id, &id, later).unwrap()
            );
        },
        || step_request(&app, "sms-code", &token, ""),
    );
    let p = res.assert_problem(410, "invitation_expired");
    assert!(p["office"]["name"].is_string());
    assert!(queued(&app, &office.org.id, "sms").is_empty());
    let kinds: Vec<String> = timeline_rows(&app, &id).into_iter().map(|r| r.0).collect();
    assert_eq!(kinds, ["invitation_sent", "expired"]);

    // The office sends a new link while the request of the old one waits.
    let (id, token, _) = at_step(&app, &office, 1, "sms-code");
    let res = in_the_gap(
        &app,
        &office.org.id,
        &id,
        |conn| {
            let consent = guichet_store::repo::consents::get(conn, &office.org.id, &id).unwrap();
            guichet_store::repo::consents::insert_invitation(
                conn,
                &guichet_store::repo::consents::Invitation {
                    id: format!("cin_gap{}", consent.id),
                    consent_id: consent.id.clone(),
                    org_id: consent.org_id.clone(),
                    token_hash: format!("replaced-{}", consent.id),
                    email: consent.email.clone(),
                    email_masked: consent.email_masked.clone(),
                    expires_at: start + Duration::days(14),
                    dead_at: None,
                    opened_at: None,
                    created_at: start,
                },
            )
            .unwrap();
        },
        || step_request(&app, "sms-code", &token, ""),
    );
    res.assert_problem(404, "not_found");
    assert!(queued(&app, &office.org.id, "sms").is_empty());
    let kinds: Vec<String> = timeline_rows(&app, &id).into_iter().map(|r| r.0).collect();
    assert_eq!(kinds, ["invitation_sent"]);
}

#[test]
fn codes_racing_a_revocation_are_not_sent_after_it() {
    let app = TestApp::spawn();
    let office = office(&app, "cons-gap-race");
    let mut sms_sent: Vec<String> = Vec::new();
    for n in 0..3 {
        let (id, token, _) = at_step(&app, &office, n, "sms-code");
        let barrier = Barrier::new(9);
        let (codes, revoked): (Vec<Response>, Response) = std::thread::scope(|scope| {
            let codes: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        step_request(&app, "sms-code", &token, "")
                    })
                })
                .collect();
            let revoked = scope.spawn(|| {
                barrier.wait();
                post(
                    &app,
                    &format!("/v1/admin/consents/{id}/revocation"),
                    &office.org.admin,
                    &json!({}),
                )
            });
            (
                codes.into_iter().map(|h| h.join().unwrap()).collect(),
                revoked.join().unwrap(),
            )
        });
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        let mut sent = 0;
        for r in &codes {
            match r.status {
                202 => sent += 1,
                410 => assert_eq!(r.json()["code"], "consent_revoked", "{}", r.text()),
                _ => assert_eq!(r.json()["code"], "rate_limited", "{}", r.text()),
            }
        }
        // The revocation won: it is the last step; every SMS queued has its
        // `code_sent` before it, and every code answered 202 is one of them.
        let rows = timeline_rows(&app, &id);
        assert_eq!(rows.last().unwrap().0, "revoked", "{rows:?}");
        let before: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == "code_sent")
            .map(|r| r.1.clone().unwrap())
            .collect();
        assert_eq!(before.len(), sent, "{rows:?}");
        // The outbox holds no other SMS: none queued after the revocation.
        sms_sent.extend(before);
        sms_sent.sort_unstable();
        assert_eq!(queued(&app, &office.org.id, "sms"), sms_sent);
    }
}
