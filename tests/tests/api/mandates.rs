//! SEPA mandates: draft, review, PDF, one-time code, signature, history,
//! and the admin list, detail and revocation.

use chrono::Utc;
use guichet_domain::ids;
use guichet_domain::sepa::mandate_pdf::document_hash;
use guichet_store::repo::accounts::{self, Account, EntryKind};
use guichet_store::repo::creditor::{self, CreditorSettings};
use guichet_tests::identity::{Org, Tokens};
use guichet_tests::pdf_text;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

const IBAN: &str = "FR76 3000 6000 0112 3456 7890 189";
const IBAN_MASKED: &str = "FR76 **** **** **** **** ***0 189";
const MOBILE: &str = "+33612345678";
const MOBILE_MASKED: &str = "+33 6** ** ** 78";
const CREDITOR_NAME: &str = "Résidences du Parc";
const ICS: &str = "FR72ZZZ123456";

/// An organization with its creditor settings and a customer (with a
/// mobile) owing 450.00 EUR on one account.
struct World {
    org: Org,
    customer: String,
    email: String,
    tokens: Tokens,
    account: String,
}

fn set_creditor(app: &TestApp, org_id: &str) {
    let mut conn = app.store.conn().unwrap();
    creditor::put(
        &mut conn,
        &CreditorSettings {
            org_id: org_id.to_owned(),
            name: CREDITOR_NAME.to_owned(),
            address: vec![
                "10, av. de Rouargues".to_owned(),
                "34980 Saint-Clément-de-Rivière".to_owned(),
            ],
            creditor_id: ICS.to_owned(),
            iban: "FR7630004000031234567890143".to_owned(),
            bic: "BNPAFRPP".to_owned(),
            prenotification_days: 14,
            updated_at: Utc::now(),
        },
        Utc::now(),
    )
    .unwrap();
}

/// A new account of the customer owing `balance` cents.
fn seed_account(app: &TestApp, org_id: &str, customer_id: &str, balance: i64) -> String {
    let now = Utc::now();
    let account = Account {
        id: ids::new_id("acc"),
        org_id: org_id.to_owned(),
        customer_id: customer_id.to_owned(),
        label: "Appartement 12".to_owned(),
        reference: ids::new_id("REF"),
        balance: 0,
        currency: "EUR".to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = app.store.conn().unwrap();
    accounts::insert(&mut conn, &account).unwrap();
    if balance != 0 {
        accounts::add_entry(
            &mut conn,
            &account.id,
            org_id,
            EntryKind::Charge,
            balance,
            "Charges",
            None,
            now,
        )
        .unwrap();
    }
    account.id
}

fn world(app: &TestApp) -> World {
    let org = app.org("gestion");
    set_creditor(app, &org.id);
    let email = "claire@example.com".to_owned();
    let (customer, tokens) = app.registered_customer(&org, &email, Some(MOBILE));
    let account = seed_account(app, &org.id, &customer, 45_000);
    World {
        org,
        customer,
        email,
        tokens,
        account,
    }
}

fn draft(app: &TestApp, token: &str, account: &str, body: &Value) -> Response {
    app.request("POST", &format!("/v1/me/accounts/{account}/mandates"))
        .bearer(token)
        .json(body)
        .send()
}

fn send_otp(app: &TestApp, token: &str, id: &str, channel: &str) -> Response {
    app.request("POST", &format!("/v1/me/mandates/{id}/otp"))
        .bearer(token)
        .json(&json!({"channel": channel}))
        .send()
}

fn sign(app: &TestApp, token: &str, id: &str, code: &str, key: Option<&str>) -> Response {
    let mut req = app
        .request("POST", &format!("/v1/me/mandates/{id}/signature"))
        .bearer(token)
        .header("User-Agent", "MandateTest/1.0 (X11; Linux)");
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.json(&json!({"code": code})).send()
}

fn get(app: &TestApp, token: &str, path: &str) -> Response {
    app.request("GET", path).bearer(token).send()
}

/// Sends a code by SMS and returns it.
fn sms_code(app: &TestApp, w: &World, id: &str) -> String {
    let before = app.wait_for_messages(MOBILE, 0).len();
    let res = send_otp(app, &w.tokens.access, id, "sms");
    assert_eq!(res.status, 202, "{}", res.text());
    app.nth_message(MOBILE, before + 1).code(6).unwrap()
}

fn mandate_count(app: &TestApp, token: &str) -> usize {
    let res = get(app, token, "/v1/me/mandates?limit=100");
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["data"].as_array().unwrap().len()
}

#[test]
fn a_one_off_mandate_is_reviewed_signed_by_sms_and_confirmed_with_its_pdf() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;

    // The draft: BIC proposed from the IBAN, the customer's e-mail, the
    // whole balance by default.
    let res = draft(&app, token, &w.account, &json!({"iban": IBAN}));
    assert_eq!(res.status, 201, "{}", res.text());
    let review = res.json();
    let id = review["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mdt_"));
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/me/mandates/{id}").as_str())
    );
    assert_eq!(review["status"], "draft");
    assert_eq!(review["mode"], "one_off");
    assert_eq!(review["iban"], IBAN_MASKED);
    assert_eq!(review["bic"], "AGRIFRPP");
    assert_eq!(review["email"], w.email);
    assert_eq!(review["debtor_name"], "Test Customer");
    assert_eq!(
        review["amount"],
        json!({"amount": 45000, "currency": "EUR"})
    );
    assert_eq!(review["umr"], Value::Null);
    assert_eq!(review["signature"], Value::Null);
    assert_eq!(review["account"]["balance"]["amount"], 45000);
    assert_eq!(review["account"]["collectible"]["amount"], 45000);
    assert_eq!(review["creditor"]["name"], CREDITOR_NAME);
    assert_eq!(review["creditor"]["creditor_id"], ICS);
    assert_eq!(
        review["collections"],
        json!([{"id": null, "sequence_type": "OOFF", "amount": {"amount": 45000, "currency": "EUR"}, "due_date": "2026-12-06", "status": "planned"}])
    );
    assert!(!review.to_string().contains("30006000011234567890"));
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{id}")).json(),
        review
    );

    // The unsigned document.
    let res = get(&app, token, &format!("/v1/me/mandates/{id}/document"));
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/pdf"));
    let disposition = format!("inline; filename=\"mandat-brouillon-{id}.pdf\"");
    assert_eq!(
        res.header("content-disposition"),
        Some(disposition.as_str())
    );
    let unsigned = res.body.clone();
    let text = pdf_text(&unsigned);
    for expected in [
        "Mandat de prélèvement SEPA",
        "à attribuer à la signature",
        "Non signé",
        CREDITOR_NAME,
        "34980 Saint-Clément-de-Rivière",
        ICS,
        "Test Customer",
        IBAN,
        "AGRIFRPP",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // Rendered the same way each time: what the signature's hash names.
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{id}/document")).body,
        unsigned
    );

    // The code by SMS.
    let before = app.wait_for_messages(MOBILE, 0).len();
    let res = send_otp(&app, token, &id, "sms");
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["channel"], "sms");
    assert_eq!(res.json()["destination"], MOBILE_MASKED);
    assert_eq!(res.json()["expires_in_minutes"], 10);
    let code = app.nth_message(MOBILE, before + 1).code(6).unwrap();

    // A wrong code is an error, with the tries left.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let problem = sign(&app, token, &id, wrong, None).assert_problem(422, "invalid_code");
    assert_eq!(problem["remaining_attempts"], 4);
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{id}")).json()["status"],
        "draft"
    );

    // A malformed idempotency key is refused before the code is tried.
    let bad = sign(&app, token, &id, &code, Some("sign 1"));
    bad.assert_problem(400, "invalid_parameter");
    assert_eq!(bad.json()["errors"][0]["field"], "Idempotency-Key");

    // The right one signs.
    let res = sign(&app, token, &id, &code, Some("sign-1"));
    assert_eq!(res.status, 200, "{}", res.text());
    let signed = res.json();
    assert_eq!(signed["status"], "signed");
    let umr = signed["umr"].as_str().unwrap().to_owned();
    assert!(umr.starts_with("GCH20261122"), "{umr}");
    assert!(umr.len() <= 35 && umr.chars().all(|c| c.is_ascii_alphanumeric()));
    let signature = &signed["signature"];
    assert_eq!(signature["signed_at"], "2026-11-22T09:00:00Z");
    assert_eq!(signature["channel"], "sms");
    assert_eq!(signature["destination"], MOBILE_MASKED);
    assert_eq!(signature["ip"], "127.0.0.1");
    assert_eq!(signature["user_agent"], "MandateTest/1.0 (X11; Linux)");
    assert_eq!(
        signature["reviewed_document_sha256"],
        document_hash(&unsigned)
    );
    let collections = signed["collections"].as_array().unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0]["sequence_type"], "OOFF");
    assert_eq!(collections[0]["status"], "scheduled");
    assert_eq!(collections[0]["due_date"], "2026-12-06");
    assert_eq!(collections[0]["amount"]["amount"], 45000);
    assert!(collections[0]["id"].as_str().unwrap().starts_with("col_"));

    // The same key and code replay the answer; the code is spent anyway.
    let replay = sign(&app, token, &id, &code, Some("sign-1"));
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), signed);
    sign(&app, token, &id, &code, Some("sign-1-other")).assert_problem(409, "mandate_not_draft");
    sign(&app, token, &id, &code, None).assert_problem(409, "mandate_not_draft");
    send_otp(&app, token, &id, "email").assert_problem(409, "mandate_not_draft");

    // The signed document: written once, the same bytes every time.
    let first = get(&app, token, &format!("/v1/me/mandates/{id}/document"));
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/pdf"));
    // Named as the e-mail's attachment, in the customer's language.
    let disposition = format!("inline; filename=\"mandat-{umr}.pdf\"");
    assert_eq!(
        first.header("content-disposition"),
        Some(disposition.as_str())
    );
    // Archived as PDF/A.
    assert!(contains(&first.body, b"pdfaid:part"));
    let second = get(&app, token, &format!("/v1/me/mandates/{id}/document"));
    assert_eq!(first.body, second.body);
    assert_ne!(first.body, unsigned);
    let text = pdf_text(&first.body);
    for expected in [
        "Mandat de prélèvement SEPA",
        CREDITOR_NAME,
        "10, av. de Rouargues",
        "34980 Saint-Clément-de-Rivière",
        ICS,
        umr.as_str(),
        "Test Customer",
        IBAN,
        "AGRIFRPP",
        "[X] Ponctuel",
        "8 semaines",
        "13 mois",
        // No address given: the place is not the creditor's town.
        "Lieu en ligne",
        "22/11/2026",
        // 09:00 UTC, in the organization's time zone (Europe/Paris).
        "22/11/2026 à 10:00:00 (UTC+01:00)",
        "code à usage unique envoyé par SMS",
        MOBILE_MASKED,
        "127.0.0.1",
        "MandateTest/1.0 (X11; Linux)",
        &document_hash(&unsigned),
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!text.contains("Non signé"));
    assert!(!text.contains("Lieu Saint-Clément"));

    // The confirmation e-mail carries the signed PDF and pre-notifies the
    // collection.
    let mail = app
        .wait_for_messages(&w.email, 2)
        .into_iter()
        .find(|m| m.subject.contains("GCH") || m.body.contains(&umr))
        .expect("a confirmation e-mail");
    assert!(mail.body.contains(&umr), "{}", mail.body);
    assert!(mail.body.contains("2026-12-06"), "{}", mail.body);
    assert!(mail.body.contains("450.00 EUR"), "{}", mail.body);
    assert!(mail.body.contains(IBAN_MASKED), "{}", mail.body);
    assert_eq!(mail.attachments.len(), 1);
    assert_eq!(mail.attachments[0].content_type, "application/pdf");
    assert_eq!(mail.attachments[0].filename, format!("mandat-{umr}.pdf"));
    assert_eq!(mail.attachments[0].content, first.body);

    // The history, and the IBAN remembered for the next draft.
    let res = get(&app, token, "/v1/me/mandates");
    assert_eq!(res.status, 200);
    let history = res.json();
    assert_eq!(history["last_iban"], IBAN_MASKED);
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
    assert_eq!(history["data"][0]["id"], id);
    assert_eq!(history["data"][0]["iban"], IBAN_MASKED);
    assert_eq!(history["data"][0]["status"], "signed");
    assert_eq!(history["next_cursor"], Value::Null);

    // Everything is already scheduled: nothing left for another one-off.
    draft(&app, token, &w.account, &json!({"use_last_iban": true}))
        .assert_problem(409, "nothing_to_collect");
    let _ = &w.customer;
}

#[test]
fn a_recurring_mandate_spreads_the_balance_over_three_months_and_ends_one_off_debits() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let account = seed_account(&app, &w.org.id, &w.customer, 10_000);

    let res = draft(
        &app,
        token,
        &account,
        &json!({"iban": IBAN, "bic": "agri frpp xxx", "mode": "recurring", "spread_months": 3,
                "email": "Claire.Billing@Example.com", "debtor_address": ["3 rue de l'Église", "75011 Paris"]}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let review = res.json();
    let id = review["id"].as_str().unwrap().to_owned();
    assert_eq!(review["mode"], "recurring");
    assert_eq!(review["amount"], Value::Null);
    assert_eq!(review["spread_months"], 3);
    assert_eq!(review["bic"], "AGRIFRPPXXX");
    assert_eq!(review["email"], "claire.billing@example.com");
    assert_eq!(
        review["debtor_address"],
        json!(["3 rue de l'Église", "75011 Paris"])
    );
    let planned: Vec<(String, String, i64)> = review["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sequence_type"].as_str().unwrap().to_owned(),
                c["due_date"].as_str().unwrap().to_owned(),
                c["amount"]["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        vec![
            ("FRST".into(), "2026-12-06".into(), 3334),
            ("RCUR".into(), "2027-01-06".into(), 3333),
            ("RCUR".into(), "2027-02-06".into(), 3333),
        ]
    );

    // The code by e-mail goes to the mandate's address.
    let res = send_otp(&app, token, &id, "email");
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["channel"], "email");
    assert_eq!(res.json()["destination"], "c***@example.com");
    let code = app
        .nth_message("claire.billing@example.com", 1)
        .code(6)
        .unwrap();
    let res = sign(&app, token, &id, &code, None);
    assert_eq!(res.status, 200, "{}", res.text());
    let signed = res.json();
    assert_eq!(signed["signature"]["channel"], "email");
    assert_eq!(signed["signature"]["destination"], "c***@example.com");
    let scheduled: Vec<(String, String, i64, String)> = signed["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sequence_type"].as_str().unwrap().to_owned(),
                c["due_date"].as_str().unwrap().to_owned(),
                c["amount"]["amount"].as_i64().unwrap(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        scheduled,
        vec![
            ("FRST".into(), "2026-12-06".into(), 3334, "scheduled".into()),
            ("RCUR".into(), "2027-01-06".into(), 3333, "scheduled".into()),
            ("RCUR".into(), "2027-02-06".into(), 3333, "scheduled".into()),
        ]
    );
    assert_eq!(signed["account"]["collectible"]["amount"], 0);

    // The PDF says recurrent, with the debtor's address and the e-mail channel.
    let text = pdf_text(&get(&app, token, &format!("/v1/me/mandates/{id}/document")).body);
    for expected in [
        "[X] Récurrent",
        "3 rue de l'Église",
        "75011 Paris",
        // The signer's town, from the address they gave.
        "Lieu Paris",
        "AGRIFRPPXXX",
        "code à usage unique envoyé par e-mail",
        "c***@example.com",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }

    // The confirmation lists the three dates and amounts.
    let mail = app
        .wait_for_messages("claire.billing@example.com", 2)
        .pop()
        .unwrap();
    for expected in [
        "2026-12-06",
        "2027-01-06",
        "2027-02-06",
        "33.34 EUR",
        "33.33 EUR",
    ] {
        assert!(mail.body.contains(expected), "{expected} in {}", mail.body);
    }
    assert_eq!(mail.attachments.len(), 1);

    // Once automatic, one-off is no longer possible on this account.
    draft(&app, token, &account, &json!({"iban": IBAN, "amount": 100}))
        .assert_problem(409, "recurring_mandate_exists");
    draft(
        &app,
        token,
        &account,
        &json!({"iban": IBAN, "mode": "one_off"}),
    )
    .assert_problem(409, "recurring_mandate_exists");
    // Another recurring draft is possible; it would collect nothing now.
    let res = draft(
        &app,
        token,
        &account,
        &json!({"use_last_iban": true, "mode": "recurring"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["iban"], IBAN_MASKED);
    assert_eq!(res.json()["collections"], json!([]));

    // A one-off on the first account is still possible.
    let res = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 100}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["amount"]["amount"], 100);
}

#[test]
fn draft_rules_and_bad_input_are_refused_and_store_nothing() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let zero = seed_account(&app, &w.org.id, &w.customer, 0);

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"iban": "FR76 3000 6000 0112 3456 7890 188"}),
            422,
            "iban_invalid",
        ),
        (json!({"iban": "not an iban"}), 422, "iban_invalid"),
        (json!({"iban": IBAN, "bic": "AGRI"}), 422, "bic_invalid"),
        (
            json!({"iban": IBAN, "bic": "DEUTDEFF"}),
            422,
            "bic_country_mismatch",
        ),
        (
            json!({"iban": "GB29 NWBK 6016 1331 9268 19"}),
            422,
            "bic_required",
        ),
        (
            json!({"iban": IBAN, "amount": 45001}),
            422,
            "amount_exceeds_balance",
        ),
        (json!({"use_last_iban": true}), 422, "iban_invalid"),
        (json!({"iban": IBAN, "amount": 0}), 400, "invalid_field"),
        (json!({"iban": IBAN, "amount": -5}), 400, "invalid_field"),
        (json!({"iban": IBAN, "amount": "12"}), 400, "invalid_field"),
        (json!({"iban": IBAN, "amount": 12.5}), 400, "invalid_field"),
        (
            json!({"iban": IBAN, "spread_months": 3}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "mode": "recurring", "spread_months": 2}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "mode": "recurring", "amount": 100}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "mode": "monthly"}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "email": "not-an-email"}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "use_last_iban": true}),
            400,
            "invalid_field",
        ),
        (json!({}), 400, "invalid_field"),
        (
            json!({"iban": IBAN, "debtor_address": ["", "Paris"]}),
            400,
            "invalid_field",
        ),
        (
            json!({"iban": IBAN, "colour": "blue"}),
            400,
            "unknown_field",
        ),
        (json!(["iban"]), 400, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let res = draft(&app, token, &w.account, &body);
        let problem = res.assert_problem(status, code);
        if code == "amount_exceeds_balance" {
            assert_eq!(problem["collectible"]["amount"], 45000);
            assert_eq!(problem["errors"][0]["field"], "amount");
        }
    }
    let res = app
        .request("POST", &format!("/v1/me/accounts/{}/mandates", w.account))
        .bearer(token)
        .header("Content-Type", "application/json")
        .body(b"{\"iban\": ".to_vec())
        .send();
    res.assert_problem(400, "malformed_json");
    let res = app
        .request("POST", &format!("/v1/me/accounts/{}/mandates", w.account))
        .bearer(token)
        .header("Content-Type", "text/plain")
        .body(b"{}".to_vec())
        .send();
    res.assert_problem(415, "unsupported_media_type");
    // Nothing owed: nothing to collect by a one-off.
    draft(&app, token, &zero, &json!({"iban": IBAN})).assert_problem(409, "nothing_to_collect");
    assert_eq!(mandate_count(&app, token), 0);

    // A typed BIC is kept (normalized); the e-mail can be changed.
    let res = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": "fr7630006000011234567890189", "bic": "bnpa frpp", "amount": 12999, "email": "other@example.org"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["bic"], "BNPAFRPP");
    assert_eq!(res.json()["email"], "other@example.org");
    assert_eq!(res.json()["amount"]["amount"], 12999);
    assert_eq!(mandate_count(&app, token), 1);

    // Query parameters of the history.
    get(&app, token, "/v1/me/mandates?limit=0").assert_problem(400, "invalid_parameter");
    get(&app, token, "/v1/me/mandates?cursor=***").assert_problem(400, "invalid_parameter");
    get(&app, token, "/v1/me/mandates?colour=blue").assert_problem(400, "invalid_parameter");
}

#[test]
fn history_is_newest_first_and_paged() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let mut ids = Vec::new();
    for amount in [100, 200, 300] {
        let res = draft(
            &app,
            token,
            &w.account,
            &json!({"iban": IBAN, "amount": amount}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        ids.push(res.json()["id"].as_str().unwrap().to_owned());
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let res = get(&app, token, "/v1/me/mandates?limit=2");
    assert_eq!(res.status, 200);
    let page = res.json();
    let first: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, vec![ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page = get(
        &app,
        token,
        &format!("/v1/me/mandates?limit=2&cursor={cursor}"),
    )
    .json();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], ids[0]);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["last_iban"], IBAN_MASKED);
}

#[test]
fn codes_are_bound_to_their_mandate_and_void_after_five_wrong_tries() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let a = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 100}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 200}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // No code asked yet.
    sign(&app, token, &a, "123456", None).assert_problem(422, "code_expired");
    // A's code does not sign B.
    let code = sms_code(&app, &w, &a);
    sign(&app, token, &b, &code, None).assert_problem(422, "code_expired");

    // Five wrong tries void it.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in [4, 3, 2, 1] {
        let problem = sign(&app, token, &a, wrong, None).assert_problem(422, "invalid_code");
        assert_eq!(problem["remaining_attempts"], left);
    }
    sign(&app, token, &a, wrong, None).assert_problem(429, "code_attempts_exceeded");
    sign(&app, token, &a, &code, None).assert_problem(429, "code_attempts_exceeded");
    // A new code replaces it.
    let code = sms_code(&app, &w, &a);
    let res = sign(&app, token, &a, &code, None);
    assert_eq!(res.status, 200, "{}", res.text());

    // Bad bodies.
    for (body, status, code) in [
        (json!({"channel": "fax"}), 400, "invalid_field"),
        (json!({}), 400, "invalid_field"),
        (
            json!({"channel": "sms", "to": "+33700000000"}),
            400,
            "unknown_field",
        ),
    ] {
        app.request("POST", &format!("/v1/me/mandates/{b}/otp"))
            .bearer(token)
            .json(&body)
            .send()
            .assert_problem(status, code);
    }
    for (body, status, code) in [
        (json!({"code": 123456}), 400, "invalid_field"),
        (json!({}), 400, "invalid_field"),
        (json!({"code": "123456", "otp": "1"}), 400, "unknown_field"),
    ] {
        app.request("POST", &format!("/v1/me/mandates/{b}/signature"))
            .bearer(token)
            .json(&body)
            .send()
            .assert_problem(status, code);
    }
    sign(&app, token, &b, "123456", Some("   ")).assert_problem(400, "invalid_parameter");

    // An idempotency key used for another mandate or code is refused.
    let code = sms_code(&app, &w, &b);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    sign(&app, token, &b, wrong, Some("k1")).assert_problem(422, "invalid_code");
    // A refusal does not hold the key: the right code goes through with it.
    let res = sign(&app, token, &b, &code, Some("k1"));
    assert_eq!(res.status, 200, "{}", res.text());
    sign(&app, token, &b, wrong, Some("k1")).assert_problem(422, "idempotency_key_reused");

    // SMS needs a mobile.
    let (other, other_tokens) = app.registered_customer(&w.org, "nomobile@example.com", None);
    let account = seed_account(&app, &w.org.id, &other, 5000);
    let id = draft(&app, &other_tokens.access, &account, &json!({"iban": IBAN})).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send_otp(&app, &other_tokens.access, &id, "sms").assert_problem(422, "no_mobile");
    let res = send_otp(&app, &other_tokens.access, &id, "email");
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["destination"], "n***@example.com");
}

#[test]
fn codes_sent_are_limited_per_ip() {
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--code-send-limit-per-ip".into(), "2".into()],
        ..Default::default()
    });
    let org = app.org("gestion");
    set_creditor(&app, &org.id);
    let (customer, tokens) = app.registered_customer(&org, "claire@example.com", Some(MOBILE));
    let account = seed_account(&app, &org.id, &customer, 45_000);
    let id = draft(&app, &tokens.access, &account, &json!({"iban": IBAN})).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The registration sent one code from this address already.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send_otp(&app, &tokens.access, &id, "sms").status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let res = send_otp(&app, &tokens.access, &id, "sms");
    let problem = res.assert_problem(429, "rate_limited");
    assert!(problem["detail"].is_string());
    assert!(res.header("retry-after").is_some());
}

#[test]
fn the_creditor_must_be_configured_to_print_and_sign() {
    let app = TestApp::spawn();
    let org = app.org("gestion");
    let (customer, tokens) = app.registered_customer(&org, "claire@example.com", Some(MOBILE));
    let account = seed_account(&app, &org.id, &customer, 45_000);
    let token = &tokens.access;
    let res = draft(&app, token, &account, &json!({"iban": IBAN}));
    assert_eq!(res.status, 201, "{}", res.text());
    let review = res.json();
    assert_eq!(review["creditor"], Value::Null);
    let id = review["id"].as_str().unwrap();
    get(&app, token, &format!("/v1/me/mandates/{id}/document"))
        .assert_problem(409, "creditor_not_configured");
    let before = app.wait_for_messages(MOBILE, 0).len();
    assert_eq!(send_otp(&app, token, id, "sms").status, 202);
    let code = app.nth_message(MOBILE, before + 1).code(6).unwrap();
    sign(&app, token, id, &code, None).assert_problem(409, "creditor_not_configured");
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{id}")).json()["status"],
        "draft"
    );
    // Once configured, the same code signs.
    set_creditor(&app, &org.id);
    let res = sign(&app, token, id, &code, None);
    assert_eq!(res.status, 200, "{}", res.text());
}

#[test]
fn mandates_are_private_to_their_customer_and_organization() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let id = draft(&app, token, &w.account, &json!({"iban": IBAN})).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, other) = app.registered_customer(&w.org, "bruno@example.com", Some("+33698765432"));
    let other = &other.access;
    for res in [
        get(&app, other, &format!("/v1/me/mandates/{id}")),
        get(&app, other, &format!("/v1/me/mandates/{id}/document")),
        send_otp(&app, other, &id, "sms"),
        sign(&app, other, &id, "123456", None),
        draft(&app, other, &w.account, &json!({"iban": IBAN})),
        get(&app, token, "/v1/me/mandates/mdt_doesnotexist"),
        draft(&app, token, "acc_doesnotexist", &json!({"iban": IBAN})),
    ] {
        res.assert_problem(404, "not_found");
    }
    assert_eq!(
        get(&app, other, "/v1/me/mandates").json()["data"],
        json!([])
    );
    assert_eq!(
        get(&app, other, "/v1/me/mandates").json()["last_iban"],
        Value::Null
    );

    // No token.
    for res in [
        app.get("/v1/me/mandates"),
        app.get(&format!("/v1/me/mandates/{id}")),
        app.get(&format!("/v1/me/mandates/{id}/document")),
        app.request("POST", &format!("/v1/me/mandates/{id}/otp"))
            .json(&json!({"channel": "sms"}))
            .send(),
        app.request("POST", &format!("/v1/me/mandates/{id}/signature"))
            .json(&json!({"code": "123456"}))
            .send(),
        app.request("POST", &format!("/v1/me/accounts/{}/mandates", w.account))
            .json(&json!({"iban": IBAN}))
            .send(),
        app.get("/v1/admin/mandates"),
        app.get(&format!("/v1/admin/mandates/{id}")),
        app.request("POST", &format!("/v1/admin/mandates/{id}/revocation"))
            .send(),
    ] {
        res.assert_problem(401, "unauthenticated");
    }

    // A customer token on admin routes; a staff token on customer routes.
    for res in [
        get(&app, token, "/v1/admin/mandates"),
        get(&app, token, &format!("/v1/admin/mandates/{id}")),
        app.request("POST", &format!("/v1/admin/mandates/{id}/revocation"))
            .bearer(token)
            .send(),
        get(&app, &w.org.admin, "/v1/me/mandates"),
    ] {
        res.assert_problem(403, "forbidden");
    }

    // Another organization's admin.
    let other_org = app.org("autre");
    for res in [
        get(&app, &other_org.admin, &format!("/v1/admin/mandates/{id}")),
        app.request("POST", &format!("/v1/admin/mandates/{id}/revocation"))
            .bearer(&other_org.admin)
            .send(),
    ] {
        res.assert_problem(404, "not_found");
    }
    assert_eq!(
        get(&app, &other_org.admin, "/v1/admin/mandates").json()["data"],
        json!([])
    );
}

#[test]
fn staff_list_read_and_revoke_mandates() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let admin = &w.org.admin;
    let signed_id = {
        let id = draft(
            &app,
            token,
            &w.account,
            &json!({"iban": IBAN, "mode": "recurring", "spread_months": 3}),
        )
        .json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let code = sms_code(&app, &w, &id);
        assert_eq!(sign(&app, token, &id, &code, None).status, 200);
        id
    };
    app.clock.advance(chrono::Duration::seconds(1));
    let draft_id = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "mode": "recurring"}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(chrono::Duration::seconds(1));
    let (bruno, bruno_tokens) =
        app.registered_customer(&w.org, "bruno@example.com", Some("+33698765432"));
    let bruno_account = seed_account(&app, &w.org.id, &bruno, 1000);
    let bruno_id = draft(
        &app,
        &bruno_tokens.access,
        &bruno_account,
        &json!({"iban": IBAN}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ids = |res: Response| -> Vec<String> {
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(get(&app, admin, "/v1/admin/mandates")),
        vec![bruno_id.clone(), draft_id.clone(), signed_id.clone()]
    );
    assert_eq!(
        ids(get(&app, admin, "/v1/admin/mandates?status=signed")),
        vec![signed_id.clone()]
    );
    assert_eq!(
        ids(get(
            &app,
            admin,
            &format!("/v1/admin/mandates?customer_id={bruno}")
        )),
        vec![bruno_id.clone()]
    );
    assert_eq!(
        ids(get(
            &app,
            admin,
            &format!("/v1/admin/mandates?customer_id={}&status=draft", w.customer)
        )),
        vec![draft_id.clone()]
    );
    let page = get(&app, admin, "/v1/admin/mandates?limit=2").json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(
        ids(get(
            &app,
            admin,
            &format!("/v1/admin/mandates?limit=2&cursor={cursor}")
        )),
        vec![signed_id.clone()]
    );
    for path in [
        "/v1/admin/mandates?status=cancelled",
        "/v1/admin/mandates?limit=101",
        "/v1/admin/mandates?cursor=***",
        "/v1/admin/mandates?sort=asc",
    ] {
        get(&app, admin, path).assert_problem(400, "invalid_parameter");
    }
    let list = get(&app, admin, "/v1/admin/mandates").text();
    assert!(!list.contains("30006000011234567890"), "IBANs are masked");

    // One mandate.
    let res = get(&app, admin, &format!("/v1/admin/mandates/{signed_id}"));
    assert_eq!(res.status, 200);
    let mandate = res.json();
    assert_eq!(mandate["status"], "signed");
    assert_eq!(mandate["customer_id"], w.customer);
    assert_eq!(mandate["collections"].as_array().unwrap().len(), 3);
    get(&app, admin, "/v1/admin/mandates/mdt_nope").assert_problem(404, "not_found");

    // Revocation: the scheduled collections are cancelled.
    let res = app
        .request(
            "POST",
            &format!("/v1/admin/mandates/{signed_id}/revocation"),
        )
        .bearer(admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let revoked = res.json();
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["signature"]["revoked_at"].is_string());
    assert!(
        revoked["collections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "cancelled")
    );
    assert_eq!(revoked["account"]["collectible"]["amount"], 45000);
    // The customer sees it revoked; its signed PDF stays.
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{signed_id}")).json()["status"],
        "revoked"
    );
    let doc = get(
        &app,
        token,
        &format!("/v1/me/mandates/{signed_id}/document"),
    );
    assert_eq!(doc.status, 200);
    assert!(pdf_text(&doc.body).contains("[X] Récurrent"));
    // One-off is possible again once the recurring mandate is revoked.
    let res = draft(&app, token, &w.account, &json!({"iban": IBAN}));
    assert_eq!(res.status, 201, "{}", res.text());

    for id in [&signed_id, &draft_id] {
        let problem = app
            .request("POST", &format!("/v1/admin/mandates/{id}/revocation"))
            .bearer(admin)
            .send()
            .assert_problem(409, "mandate_not_signed");
        assert!(problem["mandate_status"].is_string());
    }
}

#[test]
fn an_english_speaking_customer_gets_the_mandate_and_its_confirmation_in_english() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let res = app
        .request("PATCH", &format!("/v1/admin/customers/{}", w.customer))
        .bearer(&w.org.admin)
        .json(&json!({"locale": "en"}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let id = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 2500}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = pdf_text(&get(&app, token, &format!("/v1/me/mandates/{id}/document")).body);
    for expected in [
        "SEPA Direct Debit Mandate",
        "assigned at signature",
        "Not signed",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let before = app.wait_for_messages(&w.email, 0).len();
    assert_eq!(send_otp(&app, token, &id, "email").status, 202);
    let otp = app.nth_message(&w.email, before + 1);
    assert!(otp.subject.contains("signature code"), "{}", otp.subject);
    let res = sign(&app, token, &id, &otp.code(6).unwrap(), None);
    assert_eq!(res.status, 200, "{}", res.text());
    let umr = res.json()["umr"].as_str().unwrap().to_owned();
    let text = pdf_text(&get(&app, token, &format!("/v1/me/mandates/{id}/document")).body);
    for expected in [
        "SEPA Direct Debit Mandate",
        umr.as_str(),
        "[X] One-off",
        "8 weeks",
        "22 November 2026",
        "one-time code sent by e-mail",
        "c***@example.com",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let mail = app.nth_message(&w.email, before + 2);
    assert!(mail.body.contains("Pre-notification"), "{}", mail.body);
    assert!(mail.body.contains("25.00 EUR"), "{}", mail.body);
    assert_eq!(mail.attachments.len(), 1);
    assert_eq!(mail.attachments[0].filename, format!("mandate-{umr}.pdf"));
    let res = get(&app, token, &format!("/v1/me/mandates/{id}/document"));
    let disposition = format!("inline; filename=\"mandate-{umr}.pdf\"");
    assert_eq!(
        res.header("content-disposition"),
        Some(disposition.as_str())
    );
    assert_eq!(res.body, mail.attachments[0].content);
}

/// A 4×2 PNG.
const LOGO: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x04\x00\x00\x00\x02\x08\x02\x00\x00\x00\xf0\xca\xea\x34\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\x10\x89\x3a\x01\x47\x0c\xc8\x1c\x00\x78\x6a\x09\xb1\x95\x53\x77\x80\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn has_image(pdf: &[u8]) -> bool {
    contains(pdf, b"/Subtype /Image") || contains(pdf, b"/Subtype/Image")
}

#[test]
fn the_mandate_carries_the_logo_and_unicode_names_and_is_never_rendered_again() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let res = app
        .request("PUT", "/v1/admin/portal/logo")
        .bearer(&w.org.admin)
        .header("content-type", "image/png")
        .body(LOGO.to_vec())
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let address = [
        "Łukasz Wąsik c/o Ξένια Юлия",
        "12 ulica Żółkiewskiego",
        "69003 Lyon",
    ];
    let res = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "debtor_address": address}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let unsigned = get(&app, token, &format!("/v1/me/mandates/{id}/document")).body;
    assert!(has_image(&unsigned));
    let code = sms_code(&app, &w, &id);
    let res = sign(&app, token, &id, &code, None);
    assert_eq!(res.status, 200, "{}", res.text());
    let signed = get(&app, token, &format!("/v1/me/mandates/{id}/document")).body;
    assert!(has_image(&signed));
    let text = pdf_text(&signed);
    for expected in [address[0], address[1], "Lieu Lyon"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // The stored bytes are served, whatever changes afterwards.
    let res = app
        .request("DELETE", "/v1/admin/portal/logo")
        .bearer(&w.org.admin)
        .send();
    assert!(res.status < 300, "{}", res.text());
    assert_eq!(
        get(&app, token, &format!("/v1/me/mandates/{id}/document")).body,
        signed
    );
}

#[test]
fn codes_sent_are_limited_per_destination() {
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--code-send-limit-per-destination".into(), "2".into()],
        ..Default::default()
    });
    let org = app.org("gestion");
    set_creditor(&app, &org.id);
    let (customer, tokens) = app.registered_customer(&org, "claire@example.com", Some(MOBILE));
    let account = seed_account(&app, &org.id, &customer, 45_000);
    let id = draft(&app, &tokens.access, &account, &json!({"iban": IBAN})).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        assert_eq!(send_otp(&app, &tokens.access, &id, "sms").status, 202);
    }
    send_otp(&app, &tokens.access, &id, "sms").assert_problem(429, "rate_limited");
    // Only two codes went out; the e-mail is another destination.
    assert_eq!(app.wait_for_messages(MOBILE, 2).len(), 2);
    assert_eq!(app.messages_now(MOBILE).len(), 2);
    let res = send_otp(&app, &tokens.access, &id, "email");
    assert_eq!(res.status, 202, "{}", res.text());
    // An hour later the mobile may receive codes again.
    app.clock.advance(chrono::Duration::minutes(61));
    let res = app.login(
        &org,
        "claire@example.com",
        guichet_tests::identity::PASSWORD,
    );
    let token = Tokens::from_json(&res.json()).access;
    assert_eq!(send_otp(&app, &token, &id, "sms").status, 202);
}

#[test]
fn twenty_wrong_signature_codes_at_once_are_compared_at_most_five_times() {
    let app = TestApp::spawn();
    let w = world(&app);
    let token = &w.tokens.access;
    let id = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 100}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = sms_code(&app, &w, &id);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let barrier = std::sync::Barrier::new(20);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    sign(&app, token, &id, wrong, None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let invalid = answers.iter().filter(|r| r.status == 422).count();
    let exceeded = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(invalid + exceeded, 20);
    assert!(
        invalid <= 4,
        "{invalid} wrong codes compared before the fifth"
    );
    for r in &answers {
        let expected = if r.status == 422 {
            "invalid_code"
        } else {
            "code_attempts_exceeded"
        };
        assert_eq!(r.json()["code"], expected, "{}", r.text());
    }
    // The code is void: the right one no longer signs.
    sign(&app, token, &id, &code, None).assert_problem(429, "code_attempts_exceeded");
}

#[test]
fn signature_code_entries_are_limited_per_ip() {
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--auth-sign-in-limit".into(), "40".into()],
        ..guichet_tests::Options::default()
    });
    let w = world(&app);
    let token = &w.tokens.access;
    let id = draft(
        &app,
        token,
        &w.account,
        &json!({"iban": IBAN, "amount": 100}),
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // No code waiting: each entry answers code_expired until the limit.
    let barrier = std::sync::Barrier::new(50);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    sign(&app, token, &id, "123456", None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|r| r.status == 422).count(), 40);
    let limited: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 10);
    assert_eq!(limited[0].json()["code"], "rate_limited");
    assert!(limited[0].header("retry-after").is_some());
}
