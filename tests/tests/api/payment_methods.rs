//! Saved payment methods and autopay: the business's autopay settings, the
//! customer's cards and SEPA mandates, the autopay rules on save and on
//! change, what the business is told, and the store reads an autopay
//! charge uses.

use std::sync::Barrier;

use chrono::{NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
use guichet_domain::{Clock, ids};
use guichet_store::repo::autopay;
use guichet_store::repo::payment_methods::{self, MethodDetails};
use guichet_store::schema::{accounts, customer_autopay, mandate_signatures, mandates};
use guichet_tests::identity::Org;
use guichet_tests::{Response, TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

const METHODS: &str = "/v1/me/payment-methods";
const AUTOPAY: &str = "/v1/me/autopay";
const DEBTOR_IBAN: &str = "FR1420041010050500013M02606";

fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if status == 204 {
        Value::Null
    } else {
        res.json()
    }
}

fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
    let req = app.request(method, path).bearer(token);
    match body {
        Some(body) => req.json(&body).send(),
        None => req.send(),
    }
}

/// A customer of an organization, signed in.
struct World {
    org: Org,
    customer_id: String,
    email: String,
    token: String,
}

fn world(app: &TestApp, slug: &str) -> World {
    let org = app.org(slug);
    let email = format!("lea@{slug}.example");
    let (customer_id, tokens) = app.registered_customer(&org, &email, None);
    World {
        org,
        customer_id,
        email,
        token: tokens.access,
    }
}

/// The portal settings with `autopay` (left out when `None`).
fn settings(app: &TestApp, org: &Org, autopay: Option<Value>, contact: Option<&str>) -> Response {
    let mut body = json!({
        "slug": org.slug,
        "actions": [
            {"action": "payments", "enabled": true},
            {"action": "documents", "enabled": true},
            {"action": "messages", "enabled": true},
            {"action": "bookings", "enabled": true}
        ],
        "sign_in_methods": "both",
    });
    if let Some(contact) = contact {
        body["branding"] = json!({"contact_email": contact});
    }
    if let Some(autopay) = autopay {
        body["autopay"] = autopay;
    }
    send(
        app,
        "PUT",
        "/v1/admin/portal/settings",
        &org.admin,
        Some(body),
    )
}

fn set_autopay_rules(app: &TestApp, org: &Org, can_change: bool, auto: bool, checkbox: bool) {
    ok(
        settings(
            app,
            org,
            Some(json!({
                "customers_can_change_autopay": can_change,
                "auto_enable_on_new_method": auto,
                "checkbox_default": checkbox,
                "billing_contact_email": format!("billing@{}.example", org.slug),
            })),
            None,
        ),
        200,
    );
}

fn tokenize(app: &TestApp, number: &str) -> String {
    tokenize_exp(app, number, 12, 2030)
}

fn tokenize_exp(app: &TestApp, number: &str, exp_month: u8, exp_year: u16) -> String {
    let cvc = if number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    ok(
        app.request("POST", "/v1/sandbox/card-tokens")
            .json(&json!({"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}))
            .send(),
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A token the sandbox made on 2025-01-01 for a card that expired in June
/// 2025 (the server's today is later).
fn expired_token() -> String {
    SandboxTokens::new(TEST_SECRET_KEY.as_bytes())
        .tokenize(
            CardDetails {
                number: Pan::parse(test_cards::MASTERCARD).unwrap(),
                exp_month: 6,
                exp_year: 2025,
                cvc: Cvc::parse("123").unwrap(),
            },
            NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        )
        .unwrap()
        .token
}

fn save(app: &TestApp, token: &str, body: Value) -> Response {
    send(app, "POST", METHODS, token, Some(body))
}

fn save_card(app: &TestApp, w: &World, number: &str, autopay: Option<bool>) -> Value {
    let mut body = json!({"type": "card", "card_token": tokenize(app, number)});
    if let Some(a) = autopay {
        body["autopay"] = json!(a);
    }
    ok(save(app, &w.token, body), 201)
}

fn list(app: &TestApp, token: &str) -> Vec<Value> {
    ok(send(app, "GET", METHODS, token, None), 200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn my_autopay(app: &TestApp, token: &str) -> Value {
    ok(send(app, "GET", AUTOPAY, token, None), 200)
}

fn put_autopay(app: &TestApp, token: &str, body: Value) -> Response {
    send(app, "PUT", AUTOPAY, token, Some(body))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The e-mails delivered to `to`, once the outbox is empty.
fn mails_to(app: &TestApp, to: &str) -> Vec<guichet_tests::outbox::Delivered> {
    app.emails_once_sent()
        .into_iter()
        .filter(|m| m.to.contains(to))
        .collect()
}

/// The organization's events of `kind`, newest first.
fn events_of(app: &TestApp, org: &Org, kind: &str) -> Vec<Value> {
    ok(
        send(
            app,
            "GET",
            &format!("/v1/admin/events?type={kind}&limit=100"),
            &org.admin,
            None,
        ),
        200,
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn method_rows(app: &TestApp, customer_id: &str) -> i64 {
    use guichet_store::schema::payment_methods;
    payment_methods::table
        .filter(payment_methods::customer_id.eq(customer_id))
        .count()
        .get_result(&mut app.store.conn().unwrap())
        .unwrap()
}

/// A mandate of the customer, stored as signed (`status`), recurring or
/// one-off; returns its id.
fn mandate(app: &TestApp, w: &World, status: &str, recurrent: bool) -> String {
    let mut conn = app.store.conn().unwrap();
    let now = app.clock.now().naive_utc();
    let account = ids::new_id("acc");
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&account),
            accounts::org_id.eq(&w.org.id),
            accounts::customer_id.eq(&w.customer_id),
            accounts::label.eq("Loyer"),
            accounts::reference.eq(ids::new_id("REF")),
            accounts::balance.eq(10_000),
            accounts::currency.eq("EUR"),
            accounts::created_at.eq(now),
            accounts::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    let id = ids::new_id("mdt");
    let umr = (status != "draft").then(|| format!("RUM-{}", &id[4..16].to_ascii_uppercase()));
    diesel::insert_into(mandates::table)
        .values((
            mandates::id.eq(&id),
            mandates::org_id.eq(&w.org.id),
            mandates::customer_id.eq(&w.customer_id),
            mandates::account_id.eq(&account),
            mandates::status.eq(status),
            mandates::payment_type.eq(if recurrent { "recurrent" } else { "one_off" }),
            mandates::iban.eq(DEBTOR_IBAN),
            mandates::bic.eq("PSSTFRPPPAR"),
            mandates::email.eq(&w.email),
            mandates::amount.eq((!recurrent).then_some(10_000_i64)),
            mandates::spread_months.eq(None::<i32>),
            mandates::debtor_name.eq("Léa Dubois"),
            mandates::debtor_address.eq(None::<String>),
            mandates::umr.eq(umr.as_ref()),
            mandates::created_at.eq(now),
            mandates::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
    if status != "draft" {
        diesel::insert_into(mandate_signatures::table)
            .values((
                mandate_signatures::mandate_id.eq(&id),
                mandate_signatures::signed_at.eq(now),
                mandate_signatures::channel.eq("email"),
                mandate_signatures::destination.eq("l***@example.com"),
                mandate_signatures::ip.eq("127.0.0.1"),
                mandate_signatures::user_agent.eq("tests"),
                mandate_signatures::document_sha256.eq("00"),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    id
}

// ------------------------------------------------------------- settings

#[test]
fn the_autopay_settings_start_from_the_defaults_survive_an_omitting_put_and_apply_at_once() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-settings");
    let path = "/v1/admin/portal/settings";
    let s = ok(send(&app, "GET", path, &w.org.admin, None), 200);
    assert_eq!(
        s["autopay"],
        json!({
            "customers_can_change_autopay": true,
            "auto_enable_on_new_method": false,
            "checkbox_default": false,
            "billing_contact_email": null,
        })
    );
    let before = my_autopay(&app, &w.token);
    assert_eq!(before["can_change"], true);
    assert_eq!(before["checkbox_default"], false);
    assert_eq!(before["enabled"], false);
    assert!(before["payment_method"].is_null());

    let rules = json!({
        "customers_can_change_autopay": false,
        "auto_enable_on_new_method": true,
        "checkbox_default": true,
        "billing_contact_email": "factures@ap-settings.example",
    });
    let saved = ok(settings(&app, &w.org, Some(rules.clone()), None), 200);
    assert_eq!(saved["autopay"], rules);
    // The customer's open session sees the change on its next request.
    let now = my_autopay(&app, &w.token);
    assert_eq!(now["can_change"], false);
    assert_eq!(now["checkbox_default"], true);
    assert_eq!(now["auto_enable_on_new_method"], true);
    put_autopay(&app, &w.token, json!({"enabled": false}))
        .assert_problem(403, "autopay_change_not_allowed");

    // A PUT that leaves `autopay` out (or null) keeps it.
    let kept = ok(settings(&app, &w.org, None, Some("accueil@x.example")), 200);
    assert_eq!(kept["autopay"], rules);
    let kept = ok(settings(&app, &w.org, Some(json!(null)), None), 200);
    assert_eq!(kept["autopay"], rules);
    assert_eq!(
        ok(send(&app, "GET", path, &w.org.admin, None), 200)["autopay"],
        rules
    );
    // A section given replaces it; its omitted fields take their defaults.
    let partial = ok(
        settings(&app, &w.org, Some(json!({"checkbox_default": true})), None),
        200,
    );
    assert_eq!(
        partial["autopay"],
        json!({
            "customers_can_change_autopay": true,
            "auto_enable_on_new_method": false,
            "checkbox_default": true,
            "billing_contact_email": null,
        })
    );

    // Bad input in the section is refused and changes nothing.
    for (autopay, code) in [
        (json!({"checkbox_default": "yes"}), "invalid_field"),
        (json!({"checkbox_default": null}), "invalid_field"),
        (json!({"surprise": true}), "unknown_field"),
        (
            json!({"billing_contact_email": "not-an-email"}),
            "invalid_field",
        ),
        (
            json!({"billing_contact_email": "a\u{0}b@x.example"}),
            "invalid_field",
        ),
        (json!([]), "invalid_field"),
    ] {
        let res = settings(&app, &w.org, Some(autopay.clone()), None);
        assert_eq!(res.status, 400, "{autopay}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || problem["code"] == "malformed_json",
            "{autopay}: {problem}"
        );
    }
    assert_eq!(
        ok(send(&app, "GET", path, &w.org.admin, None), 200)["autopay"],
        partial["autopay"]
    );
    // A customer token cannot change them.
    settings_as(&app, &w.org, &w.token).assert_problem(403, "forbidden");
}

fn settings_as(app: &TestApp, org: &Org, token: &str) -> Response {
    send(
        app,
        "PUT",
        "/v1/admin/portal/settings",
        token,
        Some(json!({"slug": org.slug, "actions": [], "sign_in_methods": "both"})),
    )
}

// ------------------------------------------------------------ saving

#[test]
fn a_card_saved_with_the_box_pre_checked_turns_autopay_on_and_the_business_is_told() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-save");
    set_autopay_rules(&app, &w.org, true, false, true);
    let billing = "billing@ap-save.example";

    let token = tokenize(&app, test_cards::VISA);
    let res = save(&app, &w.token, json!({"type": "card", "card_token": token}));
    assert_eq!(res.status, 201, "{}", res.text());
    let visa = res.json();
    assert_eq!(
        res.header("location").unwrap(),
        format!("/v1/me/payment-methods/{}", id(&visa))
    );
    assert!(id(&visa).starts_with("pm_"));
    assert_eq!(visa["type"], "card");
    assert_eq!(
        visa["card"],
        json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "expired": false})
    );
    assert!(visa["sepa_debit"].is_null());
    assert_eq!(visa["default"], true);
    assert_eq!(visa["autopay"], true);
    assert!(
        !visa.to_string().contains(&token),
        "the token is never shown"
    );
    let a = my_autopay(&app, &w.token);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["payment_method"]["id"], visa["id"]);

    let mail = mails_to(&app, billing);
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].subject.contains("Test Customer"),
        "{}",
        mail[0].subject
    );
    assert!(
        mail[0].body.contains(&format!(
            "Test Customer ({}) a enregistré une carte Visa •••• 4242 et a activé le paiement automatique.",
            w.email
        )),
        "{}",
        mail[0].body
    );
    assert!(mail[0].body.contains("Paiement automatique : activé"));

    // The second card, box unchecked: autopay stays on the first one.
    let mc = save_card(&app, &w, test_cards::MASTERCARD, Some(false));
    assert_eq!(mc["default"], false);
    assert_eq!(mc["autopay"], false);
    let mail = mails_to(&app, billing);
    assert_eq!(mail.len(), 2);
    assert!(
        mail[1].body.contains(&format!(
            "Test Customer ({}) a enregistré une carte Mastercard •••• 4444 et n'a pas activé le paiement automatique.",
            w.email
        )),
        "{}",
        mail[1].body
    );
    assert!(
        mail[1]
            .body
            .contains("activé, avec une carte Visa •••• 4242")
    );

    // Default first, then newest.
    let l = list(&app, &w.token);
    assert_eq!(
        l.iter().map(id).collect::<Vec<_>>(),
        vec![id(&visa), id(&mc)]
    );
    ok(
        send(
            &app,
            "POST",
            &format!("{METHODS}/{}/default", id(&mc)),
            &w.token,
            None,
        ),
        200,
    );
    let l = list(&app, &w.token);
    assert_eq!(
        l.iter().map(id).collect::<Vec<_>>(),
        vec![id(&mc), id(&visa)]
    );
    assert_eq!(l[0]["default"], true);
    assert_eq!(l[1]["default"], false);
    assert_eq!(l[1]["autopay"], true, "the default is not autopay's method");
    assert_eq!(
        ok(
            send(
                &app,
                "GET",
                &format!("{METHODS}/{}", id(&visa)),
                &w.token,
                None
            ),
            200
        )["autopay"],
        true
    );

    // The events: each save, and autopay for each save.
    // (The server's clock stands still: events of the same instant come
    // in no set order.)
    let saved = events_of(&app, &w.org, "payment_method.saved");
    assert_eq!(saved.len(), 2);
    let first = saved
        .iter()
        .find(|e| e["object"]["id"] == visa["id"])
        .unwrap();
    assert_eq!(first["actor"], "customer");
    assert_eq!(first["data"]["customer_id"], w.customer_id.as_str());
    assert_eq!(first["data"]["card"]["last4"], "4242");
    assert_eq!(first["data"]["autopay"], true);
    let updated = events_of(&app, &w.org, "customer.autopay_updated");
    assert_eq!(updated.len(), 2);
    assert!(
        updated
            .iter()
            .all(|e| e["object"]["id"] == w.customer_id.as_str()
                && e["data"]["source"] == "method_saved"
                && e["data"]["enabled"] == true
                && e["data"]["payment_method"]["id"] == visa["id"])
    );
    for e in saved.iter().chain(&updated) {
        assert!(!e.to_string().contains("tok_"), "no token in events: {e}");
    }

    // What an autopay charge reads: the card's gateway token.
    let mut conn = app.store.conn().unwrap();
    let m = autopay::effective_for_charge(&mut conn, &w.org.id, &w.customer_id)
        .unwrap()
        .unwrap();
    assert_eq!(m.id, id(&visa));
    assert_eq!(
        m.details,
        MethodDetails::Card {
            token,
            view: m.details.clone().card_view()
        }
    );
}

trait CardViewOf {
    fn card_view(self) -> guichet_domain::card::CardView;
}

impl CardViewOf for MethodDetails {
    fn card_view(self) -> guichet_domain::card::CardView {
        match self {
            MethodDetails::Card { view, .. } => view,
            MethodDetails::SepaDebit { .. } => panic!("not a card"),
        }
    }
}

#[test]
fn saving_follows_the_autopay_rules_table() {
    let app = TestApp::spawn();
    // (may change, auto-enable, box default, `autopay` sent) -> autopay on
    // (`None`: refused).
    type Case = (bool, bool, bool, Option<bool>, Option<bool>);
    let cases: [Case; 8] = [
        (true, false, false, Some(true), Some(true)),
        (true, true, true, Some(false), Some(false)),
        (true, false, true, None, Some(true)),
        (true, true, false, None, Some(true)),
        (true, false, false, None, Some(false)),
        (false, false, true, Some(true), None),
        (false, true, false, None, Some(true)),
        (false, false, true, None, Some(false)),
    ];
    for (i, (can, auto, checkbox, sent, want)) in cases.into_iter().enumerate() {
        let w = world(&app, &format!("ap-rule{i}"));
        set_autopay_rules(&app, &w.org, can, auto, checkbox);
        let mut body = json!({"type": "card", "card_token": tokenize(&app, test_cards::VISA)});
        if let Some(a) = sent {
            body["autopay"] = json!(a);
        }
        let res = save(&app, &w.token, body);
        let billing = format!("billing@ap-rule{i}.example");
        match want {
            Some(on) => {
                let m = ok(res, 201);
                assert_eq!(m["autopay"], on, "case {i}");
                assert_eq!(my_autopay(&app, &w.token)["enabled"], on, "case {i}");
                let mail = mails_to(&app, &billing);
                assert_eq!(mail.len(), 1, "case {i}");
                let phrase = if on {
                    "et a activé le paiement automatique"
                } else {
                    "et n'a pas activé le paiement automatique"
                };
                assert!(mail[0].body.contains(phrase), "case {i}: {}", mail[0].body);
            }
            None => {
                res.assert_problem(403, "autopay_change_not_allowed");
                assert_eq!(method_rows(&app, &w.customer_id), 0, "case {i}");
                assert!(mails_to(&app, &billing).is_empty(), "case {i}");
            }
        }
    }
}

#[test]
fn cards_follow_the_organization_s_brand_and_expiry_rules_and_are_saved_once() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-cards");
    let refusals: Vec<(Value, u16, &str)> = vec![
        (
            json!({"type": "card", "card_token": tokenize(&app, test_cards::AMEX)}),
            422,
            "card_brand_not_accepted",
        ),
        (
            json!({"type": "card", "card_token": expired_token()}),
            422,
            "card_expired",
        ),
        (
            json!({"type": "card", "card_token": "tok_sandbox_unknown"}),
            422,
            "card_token_invalid",
        ),
        (
            json!({"type": "card", "card_token": test_cards::VISA}),
            400,
            "card_number_refused",
        ),
    ];
    for (body, status, code) in refusals {
        let problem = save(&app, &w.token, body.clone()).assert_problem(status, code);
        if code == "card_brand_not_accepted" {
            assert_eq!(problem["accepted_brands"], json!(["visa", "mastercard"]));
        }
    }
    assert_eq!(method_rows(&app, &w.customer_id), 0);
    assert!(events_of(&app, &w.org, "payment_method.saved").is_empty());

    let token = tokenize(&app, test_cards::VISA);
    ok(
        save(&app, &w.token, json!({"type": "card", "card_token": token})),
        201,
    );
    save(&app, &w.token, json!({"type": "card", "card_token": token}))
        .assert_problem(409, "payment_method_exists");
    assert_eq!(method_rows(&app, &w.customer_id), 1);
    // Another customer may save the same token.
    let other = app
        .registered_customer(&w.org, "other@ap-cards.example", None)
        .1
        .access;
    ok(
        save(&app, &other, json!({"type": "card", "card_token": token})),
        201,
    );
}

#[test]
fn only_a_signed_recurring_mandate_of_the_customer_is_saved() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-sepa");
    let signed = mandate(&app, &w, "signed", true);
    let m = ok(
        save(
            &app,
            &w.token,
            json!({"type": "sepa_debit", "mandate_id": signed, "autopay": true}),
        ),
        201,
    );
    assert_eq!(m["type"], "sepa_debit");
    assert!(m["card"].is_null());
    assert_eq!(m["sepa_debit"]["mandate_id"], signed.as_str());
    let masked = m["sepa_debit"]["iban_masked"].as_str().unwrap();
    assert_eq!(
        masked,
        guichet_domain::sepa::Iban::parse(DEBTOR_IBAN)
            .unwrap()
            .masked()
    );
    assert!(
        masked.starts_with("FR14") && masked.contains('*'),
        "{masked}"
    );
    assert!(!masked.contains("2004101005"), "{masked}");
    assert!(m["sepa_debit"]["umr"].as_str().unwrap().starts_with("RUM-"));
    assert_eq!(m["autopay"], true);
    let mail = mails_to(&app, "admin@ap-sepa.example.com");
    assert_eq!(mail.len(), 1, "no billing or contact e-mail: the admins");
    assert!(
        mail[0]
            .body
            .contains(&format!("un mandat de prélèvement SEPA sur {masked}")),
        "{}",
        mail[0].body
    );
    save(
        &app,
        &w.token,
        json!({"type": "sepa_debit", "mandate_id": signed}),
    )
    .assert_problem(409, "payment_method_exists");

    // What an autopay charge reads: the mandate.
    let mut conn = app.store.conn().unwrap();
    let charge = autopay::effective_for_charge(&mut conn, &w.org.id, &w.customer_id)
        .unwrap()
        .unwrap();
    assert!(
        matches!(&charge.details, MethodDetails::SepaDebit { mandate_id, .. } if *mandate_id == signed)
    );
    // A mandate revoked afterwards is no longer charged.
    diesel::update(mandates::table.filter(mandates::id.eq(&signed)))
        .set(mandates::status.eq("revoked"))
        .execute(&mut conn)
        .unwrap();
    assert!(
        autopay::effective_for_charge(&mut conn, &w.org.id, &w.customer_id)
            .unwrap()
            .is_none()
    );
    drop(conn);

    for (status, recurrent) in [
        ("draft", true),
        ("revoked", true),
        ("expired", true),
        ("signed", false),
    ] {
        let id = mandate(&app, &w, status, recurrent);
        save(
            &app,
            &w.token,
            json!({"type": "sepa_debit", "mandate_id": id}),
        )
        .assert_problem(422, "mandate_not_usable");
    }
    let stranger = world(&app, "ap-sepa-other");
    let theirs = mandate(&app, &stranger, "signed", true);
    for id in [theirs.as_str(), "mdt_unknown"] {
        save(
            &app,
            &w.token,
            json!({"type": "sepa_debit", "mandate_id": id}),
        )
        .assert_problem(404, "not_found");
    }
    assert_eq!(method_rows(&app, &w.customer_id), 1);
}

#[test]
fn bad_input_is_refused_and_stores_nothing() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-bad");
    let token = tokenize(&app, test_cards::VISA);
    let bodies = vec![
        (
            json!({"type": "cash", "card_token": token}),
            "invalid_field",
        ),
        (json!({"card_token": token}), "invalid_field"),
        (json!({"type": "card"}), "invalid_field"),
        (json!({"type": "card", "card_token": ""}), "invalid_field"),
        (
            json!({"type": "card", "card_token": "x".repeat(201)}),
            "invalid_field",
        ),
        (json!({"type": "card", "card_token": null}), "invalid_field"),
        (json!({"type": "card", "card_token": 42}), "invalid_field"),
        (
            json!({"type": "card", "card_token": token, "autopay": "yes"}),
            "invalid_field",
        ),
        (
            json!({"type": "card", "card_token": token, "mandate_id": "mdt_1"}),
            "invalid_field",
        ),
        (
            json!({"type": "sepa_debit", "card_token": token}),
            "invalid_field",
        ),
        (json!({"type": "sepa_debit"}), "invalid_field"),
        (
            json!({"type": "card", "card_token": token, "extra": 1}),
            "unknown_field",
        ),
        (
            json!({"type": "card", "card_token": "tok\u{0}x"}),
            "invalid_field",
        ),
        (json!([]), "invalid_field"),
    ];
    for (body, code) in bodies {
        let res = save(&app, &w.token, body.clone());
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || problem["code"] == "malformed_json",
            "{body}: {problem}"
        );
    }
    let res = app
        .request("POST", METHODS)
        .bearer(&w.token)
        .header("content-type", "application/json")
        .body(b"{\"type\": \"card\",".to_vec())
        .send();
    res.assert_problem(400, "malformed_json");
    for body in [
        json!({"enabled": "yes"}),
        json!({"enabled": true, "surprise": 1}),
        json!({}),
    ] {
        let res = put_autopay(&app, &w.token, body.clone());
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    assert_eq!(method_rows(&app, &w.customer_id), 0);
    let rows: i64 = customer_autopay::table
        .count()
        .get_result(&mut app.store.conn().unwrap())
        .unwrap();
    assert_eq!(rows, 0);
}

// --------------------------------------------------------- authorization

#[test]
fn methods_are_the_customer_s_own_and_need_the_payments_action() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-auth");
    let visa = save_card(&app, &w, test_cards::VISA, Some(true));
    let other = app
        .registered_customer(&w.org, "other@ap-auth.example", None)
        .1
        .access;
    let vid = id(&visa);
    let theirs = vec![
        ("GET", format!("{METHODS}/{vid}"), None),
        ("DELETE", format!("{METHODS}/{vid}"), None),
        ("POST", format!("{METHODS}/{vid}/default"), None),
        (
            "PUT",
            AUTOPAY.to_owned(),
            Some(json!({"enabled": true, "payment_method_id": vid})),
        ),
    ];
    for (method, path, body) in &theirs {
        send(&app, method, path, &other, body.clone()).assert_problem(404, "not_found");
    }
    assert!(list(&app, &other).is_empty());
    assert_eq!(my_autopay(&app, &other)["enabled"], false);

    let all = vec![
        ("GET", METHODS.to_owned(), None),
        (
            "POST",
            METHODS.to_owned(),
            Some(json!({"type": "card", "card_token": tokenize(&app, test_cards::MASTERCARD)})),
        ),
        ("GET", format!("{METHODS}/{vid}"), None),
        ("DELETE", format!("{METHODS}/{vid}"), None),
        ("POST", format!("{METHODS}/{vid}/default"), None),
        ("GET", AUTOPAY.to_owned(), None),
        ("PUT", AUTOPAY.to_owned(), Some(json!({"enabled": false}))),
    ];
    for (method, path, body) in &all {
        let req = app.request(method, path);
        let res = match body {
            Some(b) => req.json(b).send(),
            None => req.send(),
        };
        assert_eq!(res.status, 401, "{method} {path}");
        send(&app, method, path, &w.org.admin, body.clone()).assert_problem(403, "forbidden");
    }
    // Payments off for this customer: every route says so, at once.
    ok(
        send(
            &app,
            "PUT",
            &format!("/v1/admin/customers/{}/portal-settings", w.customer_id),
            &w.org.admin,
            Some(json!({"payments": false})),
        ),
        200,
    );
    for (method, path, body) in &all {
        send(&app, method, path, &w.token, body.clone())
            .assert_problem(403, "portal_action_disabled");
    }
    assert_eq!(method_rows(&app, &w.customer_id), 1);
}

// -------------------------------------------------------------- removal

#[test]
fn removing_a_method_respects_autopay_and_schedules_and_moves_the_default() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-remove");
    set_autopay_rules(&app, &w.org, true, false, false);
    let billing = "billing@ap-remove.example";
    // A second between saves, so that "newest" means one thing.
    let tick = || app.clock.advance(chrono::Duration::seconds(1));
    let visa = save_card(&app, &w, test_cards::VISA, Some(true));
    tick();
    let mc = save_card(&app, &w, test_cards::MASTERCARD, None);
    tick();
    let debit = save_card(&app, &w, test_cards::VISA_DEBIT, None);
    assert_eq!(mails_to(&app, billing).len(), 3);

    // Autopay's method: not without a replacement.
    let problem = send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}", id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(409, "payment_method_in_use");
    assert_eq!(problem["used_by"], json!(["autopay"]));
    send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}?replacement={}", id(&visa), id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(422, "validation_failed");
    send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}?replacement=pm_unknown", id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(404, "not_found");
    send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}?surprise=1", id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(400, "invalid_parameter");

    // With a replacement, the business being strict: refused.
    set_autopay_rules(&app, &w.org, false, false, false);
    send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}?replacement={}", id(&visa), id(&mc)),
        &w.token,
        None,
    )
    .assert_problem(403, "autopay_change_not_allowed");
    set_autopay_rules(&app, &w.org, true, false, false);
    ok(
        send(
            &app,
            "DELETE",
            &format!("{METHODS}/{}?replacement={}", id(&visa), id(&mc)),
            &w.token,
            None,
        ),
        204,
    );
    let a = my_autopay(&app, &w.token);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["payment_method"]["id"], mc["id"]);
    // The default (the removed Visa) went to the newest remaining method.
    let l = list(&app, &w.token);
    assert_eq!(
        l.iter().map(id).collect::<Vec<_>>(),
        vec![id(&debit), id(&mc)]
    );
    assert_eq!(l[0]["default"], true);
    let mail = mails_to(&app, billing);
    assert_eq!(mail.len(), 4);
    assert!(
        mail[3]
            .body
            .contains("a retiré une carte Visa •••• 4242, qui servait au paiement automatique."),
        "{}",
        mail[3].body
    );
    assert!(
        mail[3]
            .body
            .contains("activé, avec une carte Mastercard •••• 4444")
    );
    let updated = events_of(&app, &w.org, "customer.autopay_updated");
    let moved: Vec<&Value> = updated
        .iter()
        .filter(|e| e["data"]["source"] == "method_removed")
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["data"]["payment_method"]["id"], mc["id"]);
    assert_eq!(moved[0]["data"]["enabled"], true);
    let removed = events_of(&app, &w.org, "payment_method.removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["object"]["id"], visa["id"]);
    // Gone: hidden, and 404.
    send(
        &app,
        "GET",
        &format!("{METHODS}/{}", id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(404, "not_found");
    send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}", id(&visa)),
        &w.token,
        None,
    )
    .assert_problem(404, "not_found");

    // A card a schedule in progress is debited from stays.
    let today = app.clock.today();
    let order = app.seed_order(
        &w.org.id,
        &w.customer_id,
        30_000,
        3,
        today + chrono::Duration::days(20),
        test_cards::VISA_DEBIT,
    );
    let order_token: String = {
        use guichet_store::repo::schedules;
        let mut conn = app.store.conn().unwrap();
        schedules::get(&mut conn, &w.org.id, &order)
            .unwrap()
            .card
            .token
    };
    let saved_token = {
        let mut conn = app.store.conn().unwrap();
        match payment_methods::get(&mut conn, &w.org.id, &w.customer_id, &id(&debit))
            .unwrap()
            .details
        {
            MethodDetails::Card { token, .. } => token,
            MethodDetails::SepaDebit { .. } => unreachable!(),
        }
    };
    assert_eq!(order_token, saved_token, "the same card, the same token");
    let problem = send(
        &app,
        "DELETE",
        &format!("{METHODS}/{}", id(&debit)),
        &w.token,
        None,
    )
    .assert_problem(409, "payment_method_in_use");
    assert_eq!(problem["used_by"], json!([order]));

    // A method nothing uses goes; no autopay e-mail for it.
    let removable = ok(
        save(
            &app,
            &w.token,
            json!({"type": "card", "card_token": tokenize_exp(&app, test_cards::MASTERCARD, 1, 2031)}),
        ),
        201,
    );
    let before = mails_to(&app, billing).len();
    ok(
        send(
            &app,
            "DELETE",
            &format!("{METHODS}/{}", id(&removable)),
            &w.token,
            None,
        ),
        204,
    );
    assert_eq!(mails_to(&app, billing).len(), before);
    // And a removed card may be saved again.
    ok(
        save(
            &app,
            &w.token,
            json!({"type": "card", "card_token": tokenize(&app, test_cards::VISA)}),
        ),
        201,
    );
}

// -------------------------------------------------------------- autopay

#[test]
fn autopay_is_turned_off_on_and_moved_under_the_rules_and_each_change_is_told() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-put");
    set_autopay_rules(&app, &w.org, true, false, false);
    let billing = "billing@ap-put.example";

    // No method yet: nothing to turn on.
    put_autopay(&app, &w.token, json!({"enabled": true}))
        .assert_problem(422, "payment_method_required");
    let visa = save_card(&app, &w, test_cards::VISA, None);
    let mc = save_card(&app, &w, test_cards::MASTERCARD, None);
    assert_eq!(mails_to(&app, billing).len(), 2);

    // On, without a method: the default.
    let a = ok(put_autopay(&app, &w.token, json!({"enabled": true})), 200);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["payment_method"]["id"], visa["id"]);
    assert_eq!(a["payment_method"]["autopay"], true);
    assert_eq!(a["can_change"], true);
    let mail = mails_to(&app, billing);
    assert_eq!(mail.len(), 3);
    assert!(
        mail[2].body.contains(&format!(
            "Test Customer ({}) a activé le paiement automatique avec une carte Visa •••• 4242.",
            w.email
        )),
        "{}",
        mail[2].body
    );
    // The same again changes nothing and tells nobody.
    ok(put_autopay(&app, &w.token, json!({"enabled": true})), 200);
    assert_eq!(mails_to(&app, billing).len(), 3);

    // Another method.
    let a = ok(
        put_autopay(
            &app,
            &w.token,
            json!({"enabled": true, "payment_method_id": id(&mc)}),
        ),
        200,
    );
    assert_eq!(a["payment_method"]["id"], mc["id"]);
    let mail = mails_to(&app, billing);
    assert!(
        mail[3]
            .body
            .contains("paie désormais automatiquement avec une carte Mastercard •••• 4444"),
        "{}",
        mail[3].body
    );

    // Off: the method is remembered for the next "on".
    let a = ok(put_autopay(&app, &w.token, json!({"enabled": false})), 200);
    assert_eq!(a["enabled"], false);
    assert!(a["payment_method"].is_null());
    assert!(list(&app, &w.token).iter().all(|m| m["autopay"] == false));
    let mail = mails_to(&app, billing);
    assert_eq!(mail.len(), 5);
    assert!(
        mail[4].body.contains(
            "a désactivé le paiement automatique (il utilisait une carte Mastercard •••• 4444)."
        ),
        "{}",
        mail[4].body
    );
    assert!(mail[4].body.contains("Paiement automatique : désactivé."));
    ok(put_autopay(&app, &w.token, json!({"enabled": false})), 200);
    assert_eq!(mails_to(&app, billing).len(), 5);
    let a = ok(put_autopay(&app, &w.token, json!({"enabled": true})), 200);
    assert_eq!(a["payment_method"]["id"], mc["id"]);

    let mut sources: Vec<String> = events_of(&app, &w.org, "customer.autopay_updated")
        .iter()
        .map(|e| format!("{} {}", e["data"]["source"], e["data"]["enabled"]))
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        vec![
            "\"autopay_changed\" false",
            "\"autopay_changed\" true",
            "\"autopay_changed\" true",
            "\"autopay_changed\" true",
            "\"method_saved\" false",
            "\"method_saved\" false",
        ]
    );

    // Refusals: a removed or unknown method, an expired card, a strict
    // business.
    ok(
        send(
            &app,
            "DELETE",
            &format!("{METHODS}/{}", id(&visa)),
            &w.token,
            None,
        ),
        204,
    );
    for bad in [id(&visa), "pm_unknown".to_owned()] {
        put_autopay(
            &app,
            &w.token,
            json!({"enabled": true, "payment_method_id": bad}),
        )
        .assert_problem(404, "not_found");
    }
    let expired = {
        use guichet_store::repo::payment_methods::PaymentMethod;
        let mut conn = app.store.conn().unwrap();
        let m = PaymentMethod {
            id: ids::new_id("pm"),
            org_id: w.org.id.clone(),
            customer_id: w.customer_id.clone(),
            details: MethodDetails::Card {
                token: expired_token(),
                view: guichet_domain::card::CardView {
                    brand: guichet_domain::card::CardBrand::Mastercard,
                    last4: "4444".into(),
                    exp_month: 6,
                    exp_year: 2025,
                    funding: guichet_domain::card::Funding::Credit,
                },
            },
            is_default: false,
            created_at: Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap(),
            removed_at: None,
        };
        payment_methods::insert(&mut conn, &m).unwrap();
        m.id
    };
    let shown = ok(
        send(&app, "GET", &format!("{METHODS}/{expired}"), &w.token, None),
        200,
    );
    assert_eq!(shown["card"]["expired"], true);
    put_autopay(
        &app,
        &w.token,
        json!({"enabled": true, "payment_method_id": expired}),
    )
    .assert_problem(422, "card_expired");
    set_autopay_rules(&app, &w.org, false, false, false);
    for body in [json!({"enabled": false}), json!({"enabled": true})] {
        put_autopay(&app, &w.token, body).assert_problem(403, "autopay_change_not_allowed");
    }
    let a = my_autopay(&app, &w.token);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["can_change"], false);
    assert_eq!(a["payment_method"]["id"], mc["id"]);
}

#[test]
fn concurrent_first_saves_leave_one_default_and_concurrent_toggles_a_consistent_autopay() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-race");
    // 24 distinct cards (three brands, twelve months, two years), saved at
    // once.
    let brands = [
        test_cards::VISA,
        test_cards::MASTERCARD,
        test_cards::VISA_DEBIT,
    ];
    let tokens: Vec<String> = (0..24_u32)
        .map(|i| {
            let month = u8::try_from(i % 12 + 1).unwrap();
            let year = 2031 + u16::try_from(i / 12).unwrap();
            tokenize_exp(&app, brands[i as usize % brands.len()], month, year)
        })
        .collect();
    let results = at_once(tokens.len(), |i| {
        save(
            &app,
            &w.token,
            json!({"type": "card", "card_token": tokens[i], "autopay": i % 2 == 0}),
        )
        .status
    });
    assert!(results.iter().all(|s| *s == 201), "{results:?}");
    let l = list(&app, &w.token);
    assert_eq!(l.len(), tokens.len());
    assert_eq!(l.iter().filter(|m| m["default"] == true).count(), 1);
    assert!(l[0]["default"] == true);
    assert!(l.iter().filter(|m| m["autopay"] == true).count() <= 1);

    // The same token saved at once: one method.
    let token = tokenize_exp(&app, test_cards::MASTERCARD, 7, 2031);
    let results = at_once(24, |_| {
        save(&app, &w.token, json!({"type": "card", "card_token": token})).status
    });
    assert_eq!(
        results.iter().filter(|s| **s == 201).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().all(|s| *s == 201 || *s == 409),
        "{results:?}"
    );

    // Toggles at once: whatever wins, autopay and the methods agree.
    let ids: Vec<String> = l.iter().map(id).collect();
    let results = at_once(24, |i| {
        put_autopay(
            &app,
            &w.token,
            json!({"enabled": i % 3 != 0, "payment_method_id": ids[i % ids.len()]}),
        )
        .status
    });
    assert!(results.iter().all(|s| *s == 200), "{results:?}");
    let a = my_autopay(&app, &w.token);
    let flagged: Vec<Value> = list(&app, &w.token)
        .into_iter()
        .filter(|m| m["autopay"] == true)
        .collect();
    if a["enabled"] == true {
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0]["id"], a["payment_method"]["id"]);
    } else {
        assert!(flagged.is_empty());
        assert!(a["payment_method"].is_null());
    }
    let mut conn = app.store.conn().unwrap();
    let stored = autopay::get(&mut conn, &w.org.id, &w.customer_id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.enabled, a["enabled"] == true);
}

// ---------------------------------------------- who the business tells

#[test]
fn the_billing_contact_falls_back_to_the_branding_contact_then_the_admins_and_a_preview_tells_the_previewer()
 {
    let app = TestApp::spawn();
    let w = world(&app, "ap-who");
    let admin = "admin@ap-who.example.com";
    save_card(&app, &w, test_cards::VISA, Some(true));
    assert_eq!(mails_to(&app, admin).len(), 1, "nothing set: the admins");

    ok(
        settings(&app, &w.org, None, Some("accueil@ap-who.example")),
        200,
    );
    save_card(&app, &w, test_cards::MASTERCARD, Some(false));
    assert_eq!(mails_to(&app, "accueil@ap-who.example").len(), 1);
    assert_eq!(mails_to(&app, admin).len(), 1);

    ok(
        settings(
            &app,
            &w.org,
            Some(json!({"billing_contact_email": "compta@ap-who.example"})),
            Some("accueil@ap-who.example"),
        ),
        200,
    );
    ok(put_autopay(&app, &w.token, json!({"enabled": false})), 200);
    assert_eq!(mails_to(&app, "compta@ap-who.example").len(), 1);
    assert_eq!(mails_to(&app, "accueil@ap-who.example").len(), 1);

    // A preview: the test customer saves a card; only the staff member
    // previewing is e-mailed.
    let p = ok(
        send(
            &app,
            "POST",
            "/v1/admin/portal/preview-session",
            &w.org.admin,
            None,
        ),
        201,
    );
    let preview = p["access_token"].as_str().unwrap();
    let sms = app.sms().len();
    let m = ok(
        save(
            &app,
            preview,
            json!({"type": "card", "card_token": tokenize(&app, test_cards::VISA)}),
        ),
        201,
    );
    assert_eq!(m["default"], true);
    let mails = mails_to(&app, admin);
    assert_eq!(mails.len(), 2);
    assert!(mails[1].body.contains("Client test"), "{}", mails[1].body);
    assert_eq!(mails_to(&app, "compta@ap-who.example").len(), 1);
    assert_eq!(app.sms().len(), sms);
}

#[test]
fn staff_read_a_customer_s_methods_and_autopay_without_the_tokens() {
    let app = TestApp::spawn();
    let w = world(&app, "ap-staff");
    let visa = save_card(&app, &w, test_cards::VISA, Some(true));
    let other = world(&app, "ap-staff-other");
    let path = |c: &str, what: &str| format!("/v1/admin/customers/{c}/{what}");

    let l = ok(
        send(
            &app,
            "GET",
            &path(&w.customer_id, "payment-methods"),
            &w.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(l["data"], json!(list(&app, &w.token)));
    assert!(!l.to_string().contains("tok_"));
    let a = ok(
        send(
            &app,
            "GET",
            &path(&w.customer_id, "autopay"),
            &w.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(a, my_autopay(&app, &w.token));
    assert_eq!(a["payment_method"]["id"], visa["id"]);

    for what in ["payment-methods", "autopay"] {
        // Another organization's customer, or nobody.
        send(
            &app,
            "GET",
            &path(&other.customer_id, what),
            &w.org.admin,
            None,
        )
        .assert_problem(404, "not_found");
        send(&app, "GET", &path("cus_unknown", what), &w.org.admin, None)
            .assert_problem(404, "not_found");
        send(&app, "GET", &path(&w.customer_id, what), &w.token, None)
            .assert_problem(403, "forbidden");
        assert_eq!(app.get(&path(&w.customer_id, what)).status, 401);
    }
}
