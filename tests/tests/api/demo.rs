//! The demo lender (`guichet serve --demo`) and the README's curl session
//! against it: log in, list schedules, refused card changes, regularize in
//! three payments. On both backends, with the harness's fixed clock.

use std::sync::Arc;

use guichet_api::blobs::Blobs;
use guichet_api::demo;
use guichet_domain::gateway::test_cards;
use guichet_tests::{Response, TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

fn blobs(app: &TestApp) -> Blobs {
    Blobs::local(&app.data_dir.join("blobs")).unwrap()
}

fn seed(app: &TestApp) -> demo::DemoSummary {
    demo::seed(
        &app.store,
        &blobs(app),
        Arc::new(app.clock.clone()),
        TEST_SECRET_KEY.as_bytes(),
    )
    .unwrap()
}

fn seeded() -> TestApp {
    let app = TestApp::spawn();
    let summary = seed(&app);
    assert!(summary.created);
    let slugs: Vec<&str> = summary
        .organizations
        .iter()
        .map(|o| o.slug.as_str())
        .collect();
    assert_eq!(slugs, ["demo", "fractio", "gerance", "fiduciaire", "kine"]);
    app
}

fn login(app: &TestApp, email: &str, password: &str) -> String {
    login_to(app, "fractio", email, password)
}

fn login_to(app: &TestApp, org: &str, email: &str, password: &str) -> String {
    let res = app
        .request("POST", "/v1/auth/login")
        .json(&json!({"organization": org, "email": email, "password": password}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["access_token"].as_str().unwrap().to_owned()
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

fn schedules(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let res = app
        .request("GET", &format!("/v1/me/schedules{query}"))
        .bearer(token)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["data"].as_array().unwrap().clone()
}

fn by_number<'a>(list: &'a [Value], number: &str) -> &'a Value {
    list.iter()
        .find(|s| s["order_number"] == number)
        .unwrap_or_else(|| panic!("no schedule {number} in {list:?}"))
}

fn change_card(app: &TestApp, token: &str, id: &str, card_token: &str) -> Response {
    app.request("PUT", &format!("/v1/me/schedules/{id}/card"))
        .bearer(token)
        .json(&json!({"card_token": card_token}))
        .send()
}

fn statuses(schedule: &Value) -> Vec<&str> {
    schedule["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect()
}

fn sum(schedule: &Value, field: &str) -> i64 {
    schedule["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field]["amount"].as_i64().unwrap())
        .sum()
}

#[test]
fn the_lender_has_a_schedule_in_every_state() {
    let app = seeded();
    let token = login(&app, "sophie.laurent@example.com", "Sophie-Demo-2026!");
    let all = schedules(&app, &token, "");
    assert_eq!(all.len(), 5, "{all:?}");

    let open = by_number(&all, "FR-10421");
    assert_eq!(open["status"], "in_progress");
    assert_eq!(open["merchant_brand"], "Maison Lumière");
    assert_eq!(statuses(open), ["paid", "paid", "pending", "pending"]);
    assert_eq!(open["actions"], json!(["change_card"]));

    let soon = by_number(&all, "FR-10433");
    assert_eq!(soon["status"], "in_progress");
    assert_eq!(statuses(soon), ["paid", "pending", "pending"]);

    let done = by_number(&all, "FR-10377");
    assert_eq!(done["status"], "completed");
    assert_eq!(statuses(done), ["paid", "paid", "paid"]);
    assert_eq!(done["actions"], json!([]));

    let unpaid = by_number(&all, "FR-10398");
    assert_eq!(unpaid["status"], "unpaid");
    assert_eq!(statuses(unpaid), ["paid", "unpaid", "pending"]);
    assert_eq!(unpaid["unpaid"]["amount"], 11_999);
    assert_eq!(unpaid["actions"], json!(["regularize"]));

    let cut = by_number(&all, "FR-10402");
    assert_eq!(cut["status"], "in_progress");
    assert_eq!(statuses(cut), ["paid", "pending", "pending", "cancelled"]);
    assert_eq!(sum(cut, "amount"), 40_000, "600 € less the 200 € cancelled");
    let adjustments = cut["adjustments"].as_array().unwrap();
    assert_eq!(adjustments.len(), 1, "{adjustments:?}");
    assert_eq!(adjustments[0]["amount"]["amount"], 20_000);

    for (query, expected) in [
        ("?status=in_progress", 3),
        ("?status=completed", 1),
        ("?status=unpaid", 1),
        ("?status=cancelled", 0),
    ] {
        assert_eq!(schedules(&app, &token, query).len(), expected, "{query}");
    }
    let karim = login(&app, "karim.benali@example.com", "Karim-Demo-2026!");
    let theirs = schedules(&app, &karim, "?status=cancelled");
    assert_eq!(theirs.len(), 1);
    let refund = &theirs[0]["adjustments"][0];
    assert_eq!(refund["amount"]["amount"], 15_000);
    assert_eq!(refund["refund"]["amount"], 10_000, "{refund}");
    // Nothing in the demo is due yet: a debit run at start changes nothing.
    for s in all {
        for i in s["instalments"].as_array().unwrap() {
            if i["status"] == "pending" {
                assert!(i["due_date"].as_str().unwrap() > "2026-11-22", "{i}");
            }
        }
    }
}

#[test]
fn the_readme_session_refused_card_changes_then_a_regularization_in_three_payments() {
    let app = seeded();
    let token = login(&app, "sophie.laurent@example.com", "Sophie-Demo-2026!");
    let all = schedules(&app, &token, "");
    let id = |number: &str| by_number(&all, number)["id"].as_str().unwrap().to_owned();
    let mastercard = tokenize(&app, test_cards::MASTERCARD, 12, 2030);

    // The next debit is within the 7 days' notice.
    change_card(&app, &token, &id("FR-10433"), &mastercard)
        .assert_problem(422, "debit_already_scheduled");
    // Unpaid: regularize instead.
    change_card(&app, &token, &id("FR-10398"), &mastercard).assert_problem(422, "schedule_unpaid");
    // Completed.
    change_card(&app, &token, &id("FR-10377"), &mastercard).assert_problem(422, "schedule_closed");
    // The new card itself: brand, expiry, and a token the gateway refuses.
    let amex = tokenize(&app, test_cards::AMEX, 12, 2030);
    change_card(&app, &token, &id("FR-10421"), &amex)
        .assert_problem(422, "card_brand_not_accepted");
    let short = tokenize(&app, test_cards::VISA, 11, 2026); // valid through November
    change_card(&app, &token, &id("FR-10421"), &short)
        .assert_problem(422, "card_expires_before_last_instalment");
    change_card(
        &app,
        &token,
        &id("FR-10421"),
        "tok_sandbox_000000000000000000000000",
    )
    .assert_problem(422, "card_token_invalid");
    // And an accepted one.
    let changed = change_card(&app, &token, &id("FR-10421"), &mastercard);
    assert_eq!(changed.status, 200, "{}", changed.text());

    let unpaid = id("FR-10398");
    let path = format!("/v1/me/schedules/{unpaid}/regularization");
    let offers = app.request("GET", &path).bearer(&token).send();
    assert_eq!(offers.status, 200, "{}", offers.text());
    let offers = offers.json();
    assert_eq!(offers["unpaid"]["amount"], 11_999);
    let three = offers["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["payments"] == 3)
        .unwrap()
        .clone();
    let parts: Vec<i64> = three["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(parts, [4_000, 4_000, 3_999]);

    let visa = tokenize(&app, test_cards::VISA, 12, 2030);
    let paid = app
        .request("POST", &path)
        .bearer(&token)
        .header("idempotency-key", "demo-regularization-1")
        .json(&json!({"payments": 3, "card_token": visa}))
        .send();
    assert_eq!(paid.status, 200, "{}", paid.text());
    let after = paid.json();
    assert_eq!(after["status"], "in_progress", "{after}");
    assert_eq!(after["unpaid"]["amount"], 0);
    assert_eq!(after["actions"], json!(["change_card"]));
}

/// The property manager's README session: the IBAN check, a one-off
/// mandate for the lease, its unsigned PDF, a code by SMS, the signature
/// and the signed PDF; and the parking account's signed recurring mandate.
#[test]
fn the_property_manager_session_from_iban_check_to_signed_pdf() {
    let app = seeded();
    let token = login_to(
        &app,
        "gerance",
        "nadia.haddad@example.com",
        "Nadia-Demo-2026!",
    );
    let get = |path: &str| {
        let res = app.request("GET", path).bearer(&token).send();
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        res
    };
    let accounts = get("/v1/me/accounts").json()["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let by_ref = |r: &str| {
        accounts
            .iter()
            .find(|a| a["reference"] == r)
            .unwrap_or_else(|| panic!("no account {r}"))
            .clone()
    };
    let lease = by_ref("LOC-2024-0042");
    assert_eq!(lease["balance"]["amount"], 85_000);
    assert_eq!(lease["has_recurring_mandate"], false);
    let parking = by_ref("PKG-2024-0012");
    assert_eq!(parking["has_recurring_mandate"], true);
    assert_eq!(parking["covered"]["amount"], 12_000, "{parking}");

    let history = get("/v1/me/mandates").json();
    let mandates = history["data"].as_array().unwrap();
    assert_eq!(mandates.len(), 1);
    assert_eq!(mandates[0]["status"], "signed");
    let signed_id = mandates[0]["id"].as_str().unwrap().to_owned();
    let signed_pdf = get(&format!("/v1/me/mandates/{signed_id}/document")).body;
    assert!(signed_pdf.starts_with(b"%PDF-"));

    let bank = get("/v1/me/bank-details?iban=FR1420041010050500013M02606").json();
    assert_eq!(bank["bic"], "PSSTFRPP", "{bank}");

    let lease_id = lease["id"].as_str().unwrap();
    let draft = app
        .request("POST", &format!("/v1/me/accounts/{lease_id}/mandates"))
        .bearer(&token)
        .json(&json!({"iban": "FR1420041010050500013M02606", "mode": "one_off"}))
        .send();
    assert_eq!(draft.status, 201, "{}", draft.text());
    let id = draft.json()["id"].as_str().unwrap().to_owned();
    let unsigned = get(&format!("/v1/me/mandates/{id}/document")).body;
    assert!(unsigned.starts_with(b"%PDF-"));

    let sent = app
        .request("POST", &format!("/v1/me/mandates/{id}/otp"))
        .bearer(&token)
        .json(&json!({"channel": "sms"}))
        .send();
    assert_eq!(sent.status, 202, "{}", sent.text());
    let code = app.nth_message("+33622334455", 1).code(6).unwrap();
    let signed = app
        .request("POST", &format!("/v1/me/mandates/{id}/signature"))
        .bearer(&token)
        .json(&json!({"code": code}))
        .send();
    assert_eq!(signed.status, 200, "{}", signed.text());
    assert_eq!(signed.json()["status"], "signed");
    let first = get(&format!("/v1/me/mandates/{id}/document")).body;
    let again = get(&format!("/v1/me/mandates/{id}/document")).body;
    assert_eq!(first, again, "a signed mandate's PDF never changes");

    // The parking account is paid by a recurring mandate: no way back.
    let parking_id = parking["id"].as_str().unwrap();
    app.request("POST", &format!("/v1/me/accounts/{parking_id}/mandates"))
        .bearer(&token)
        .json(&json!({"iban": "FR1420041010050500013M02606", "mode": "one_off", "amount": 100}))
        .send()
        .assert_problem(409, "recurring_mandate_exists");
}

/// The accounting office: one consent in each status, each with its
/// timeline, the active one's contacts erased; a new order for the
/// README's client account goes through.
#[test]
fn the_accounting_office_has_a_consent_in_each_status() {
    let app = seeded();
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": "fiduciaire", "email": "admin@fiduciaire.guichet.localhost", "password": "Admin-Fiduciaire-2026!"}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let admin = res.json()["access_token"].as_str().unwrap().to_owned();
    let get = |path: &str| {
        let res = app.request("GET", path).bearer(&admin).send();
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        res.json()
    };
    let all = get("/v1/admin/consents?limit=100");
    let mut statuses: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [
            "active",
            "awaiting_bank",
            "code_sent",
            "code_verified",
            "expired",
            "failed",
            "invitation_sent",
            "opened",
            "revoked"
        ]
    );
    for c in all["data"].as_array().unwrap() {
        assert!(!c["timeline"].as_array().unwrap().is_empty(), "{c}");
        if c["status"] == "active" {
            assert_eq!(c["email"], Value::Null);
            assert_eq!(c["contacts_erased"], true);
            assert_eq!(c["card"]["last4"], "4444");
        }
        if c["status"] == "failed" {
            assert_eq!(c["failure_reason"], "card_blocked");
        }
    }
    let accounts = get("/v1/admin/consent-accounts");
    let readme = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client_reference"] == "BE-CARO-0042-4242")
        .unwrap()["id"]
        .clone();
    let res = app
        .request("POST", "/v1/admin/consents")
        .bearer(&admin)
        .json(&json!({"account_id": readme, "cardholder_name": "Anne Martin", "email": "anne.martin@example.com", "mobile": "+32470123467", "language": "fr"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(
        app.nth_message("anne.martin@example.com", 1)
            .body
            .contains("http://127.0.0.1:8080/v1/consents/")
    );
}

/// The practice's portal: configured, a test customer, Julie signs in by
/// a code sent by SMS (Hugo, without a mobile, by e-mail), and her
/// dashboard shows her notifications.
#[test]
fn the_practice_portal_signs_in_by_code_and_shows_the_dashboard() {
    let app = seeded();
    let p = app.get("/v1/portal/kine");
    assert_eq!(p.status, 200, "{}", p.text());
    let p = p.json();
    assert_eq!(p["branding"]["display_name"], "Kiné des Lilas");
    assert_eq!(p["sign_in_methods"], "code");

    let start = |email: &str| {
        let res = app
            .request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": "kine", "email": email}))
            .send();
        assert_eq!(res.status, 202, "{}", res.text());
        res.json()
    };
    assert_eq!(start("julie.moreau@example.com")["channel"], "sms");
    assert_eq!(start("hugo.lefevre@example.com")["channel"], "email");
    let code = app.nth_message("+33611223344", 1).code(6).unwrap();
    let res = app
        .request("POST", "/v1/auth/otp/verify")
        .json(&json!({"organization": "kine", "email": "julie.moreau@example.com", "code": code}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let token = res.json()["access_token"].as_str().unwrap().to_owned();

    let me = app
        .request("GET", "/v1/me/portal")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(me["actions"][0]["action"], "documents");
    assert_eq!(me["actions"][3]["action"], "bookings");
    assert_eq!(me["actions"][3]["enabled"], true);
    let d = app
        .request("GET", "/v1/me/dashboard")
        .bearer(&token)
        .send()
        .json();
    // Two notes from the practice, two documents shared, one answer, and
    // her invoice paid by cheque.
    assert_eq!(d["notifications"]["unread_count"], 6, "{d}");
    assert_eq!(d["notifications"]["latest"][0]["title"], "Nouvelle réponse");
    assert_eq!(d["notifications"]["latest"][1]["title"], "Séance de jeudi");
    // Two invoices left to pay: one overdue, one due next week.
    let sources = d["amount_due"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{d}");
    assert_eq!(sources[0]["kind"], "invoice");
    assert_eq!(sources[0]["overdue"], true);
    assert_eq!(
        d["amount_due"]["overdue"],
        json!([{"amount": 9000, "currency": "EUR"}])
    );
    assert_eq!(
        d["amount_due"]["due_soon"],
        json!([{"amount": 6000, "currency": "EUR"}])
    );
    // Her exercises and her paid invoice are read; her assessment and the
    // two invoices left to pay are new.
    assert_eq!(d["new_documents"]["count"], 3, "{d}");
    let doc = &d["new_documents"]["latest"][0];
    assert_eq!(doc["title"], "Bilan kinésithérapique initial");
    assert_eq!(doc["content_type"], "application/pdf");
    assert_eq!(d["messages"]["unread_count"], 1, "{d}");
    // Her next bookings: the session in three days, then her request.
    let next = d["upcoming_bookings"]["next"].as_array().unwrap();
    assert_eq!(next.len(), 2, "{d}");
    assert_eq!(next[0]["status"], "confirmed");
    assert_eq!(next[0]["service"], "Séance de kinésithérapie");
    assert_eq!(next[0]["provider_name"], "Claire Petit");
    assert_eq!(next[1]["status"], "pending");
    let history = app
        .request("GET", "/v1/me/bookings?view=history")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(history["data"][0]["status"], "completed", "{history}");
    let services = app
        .request("GET", "/v1/me/booking-services")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(services["data"].as_array().unwrap().len(), 2, "{services}");
    let conv = d["messages"]["conversations"][0]["link"]
        .as_str()
        .unwrap()
        .to_owned();

    // The assessment is a real PDF, served whole with its hash.
    let file = app
        .request("GET", doc["link"].as_str().unwrap())
        .bearer(&token)
        .send();
    assert_eq!(file.status, 200, "{}", file.text());
    assert!(file.body.starts_with(b"%PDF-1.7"));
    assert!(file.body.trim_ascii_end().ends_with(b"%%EOF"));
    assert_eq!(file.body.len() as u64, doc["size"].as_u64().unwrap());
    let list = app
        .request("GET", "/v1/me/documents")
        .bearer(&token)
        .send()
        .json();
    let titles: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles[..2],
        ["Exercices à domicile", "Bilan kinésithérapique initial"]
    );
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert!(
        titles[2..].iter().all(|t| t.starts_with("Facture F-")),
        "{titles:?}"
    );
    // The practice's answer to her question.
    let c = app.request("GET", &conv).bearer(&token).send().json();
    assert_eq!(c["subject"], "Séance de jeudi");
    let authors: Vec<&str> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["customer", "staff"], "{c}");

    // The staff's preview lands on the test customer, not on a patient.
    let staff = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": "kine", "email": "admin@kine.guichet.localhost", "password": "Admin-Kine-2026!"}))
        .send();
    assert_eq!(staff.status, 200, "{}", staff.text());
    let staff = staff.json()["access_token"].as_str().unwrap().to_owned();
    let preview = app
        .request("POST", "/v1/admin/portal/preview-session")
        .bearer(&staff)
        .send();
    assert_eq!(preview.status, 201, "{}", preview.text());
    assert_eq!(preview.json()["customer"]["test"], true);
}

/// Each start of the demo resets the practice: its documents are written
/// again (under new keys) and the previous start's are reported stale;
/// Hugo, without a mobile, has his PDF after every start.
#[test]
fn the_practice_documents_are_there_after_every_start() {
    let app = seeded();
    let first = seed(&app);
    assert!(first.reset.iter().any(|s| s == "kine"), "{:?}", first.reset);
    // Three documents and Julie's three invoices.
    assert_eq!(first.stale_blobs.len(), 6, "{:?}", first.stale_blobs);
    assert_eq!(blobs(&app).delete_all_blocking(&first.stale_blobs), 6);
    let again = seed(&app);
    assert!(
        again
            .stale_blobs
            .iter()
            .all(|k| !first.stale_blobs.contains(k))
    );

    let res = app
        .request("POST", "/v1/auth/otp/start")
        .json(&json!({"organization": "kine", "email": "hugo.lefevre@example.com"}))
        .send();
    assert_eq!(res.status, 202, "{}", res.text());
    let code = app
        .nth_message("hugo.lefevre@example.com", 1)
        .code(6)
        .unwrap();
    let res = app
        .request("POST", "/v1/auth/otp/verify")
        .json(&json!({"organization": "kine", "email": "hugo.lefevre@example.com", "code": code}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let d = app
        .request("GET", "/v1/me/dashboard")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(d["new_documents"]["count"], 1, "{d}");
    assert_eq!(d["messages"]["unread_count"], 0, "{d}");
    let doc = &d["new_documents"]["latest"][0];
    assert_eq!(doc["title"], "Attestation de séances");
    let file = app
        .request("GET", doc["link"].as_str().unwrap())
        .bearer(&token)
        .send();
    assert_eq!(file.status, 200, "{}", file.text());
    assert!(file.body.starts_with(b"%PDF-"));
}
