//! Invoices and payment requests: written, issued (numbered, PDF shared and
//! e-mailed), voided, paid offline by staff and online by the customer,
//! exactly once.

use std::sync::Barrier;

use guichet_domain::Clock;
use guichet_domain::gateway::test_cards;
use guichet_tests::identity::Org;
use guichet_tests::orders::sandbox_token;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
    let req = app.request(method, path).bearer(token);
    match body {
        Some(body) => req.json(&body).send(),
        None => req.send(),
    }
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if status == 204 {
        Value::Null
    } else {
        res.json()
    }
}

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

/// An organization with one signed-in customer: (org, customer id, token).
fn shop(app: &TestApp, slug: &str) -> (Org, String, String) {
    let org = app.org(slug);
    let email = format!("anne@{slug}.example");
    let (id, tokens) = app.registered_customer(&org, &email, None);
    (org, id, tokens.access)
}

/// Moves the clock `days` on; the admin and the customer `email` sign in
/// again (their access tokens do not outlive it): the customer's token.
fn later(app: &TestApp, org: &mut Org, days: i64, email: &str) -> String {
    use guichet_tests::identity::PASSWORD;
    app.clock.advance(chrono::Duration::days(days));
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": org.slug, "email": org.admin_email, "password": PASSWORD}))
        .send();
    org.admin = ok(res, 200)["access_token"].as_str().unwrap().to_owned();
    ok(app.login(org, email, PASSWORD), 200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn draft(app: &TestApp, org: &Org, customer_id: &str, body: Value) -> Value {
    let mut body = body;
    body["customer_id"] = json!(customer_id);
    ok(
        send(app, "POST", "/v1/admin/invoices", &org.admin, Some(body)),
        201,
    )
}

fn two_lines(due: &str) -> Value {
    json!({
        "lines": [
            {"description": "Séance de kinésithérapie", "quantity": 2, "unit_amount": 4500},
            {"description": "Bande de rééducation", "quantity": 3, "unit_amount": 1999, "tax_rate_bp": 2000},
        ],
        "due_date": due,
        "note": "Merci de votre confiance.",
    })
}

fn issue(app: &TestApp, org: &Org, id: &str) -> Value {
    ok(
        send(
            app,
            "POST",
            &format!("/v1/admin/invoices/{id}/issue"),
            &org.admin,
            None,
        ),
        200,
    )
}

/// An issued invoice of 150.00 EUR due in 10 days: its id.
fn open_invoice(app: &TestApp, org: &Org, customer_id: &str) -> String {
    let due = (app.clock.today() + chrono::Duration::days(10)).to_string();
    let d = draft(
        app,
        org,
        customer_id,
        json!({"amount": 15000, "reason": "Bilan", "due_date": due}),
    );
    let id = d["id"].as_str().unwrap().to_owned();
    issue(app, org, &id);
    id
}

fn card(number: &str) -> String {
    sandbox_token(number, 12, 2030).0
}

fn pay(app: &TestApp, token: &str, id: &str, key: &str, body: Value) -> Response {
    app.request("POST", &format!("/v1/me/invoices/{id}/payments"))
        .bearer(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
}

fn charges(app: &TestApp, org: &Org) -> Vec<Value> {
    ok(
        send(
            app,
            "GET",
            "/v1/sandbox/charges?limit=100",
            &org.admin,
            None,
        ),
        200,
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn events(app: &TestApp, org: &Org, kind: &str) -> Vec<Value> {
    ok(
        send(
            app,
            "GET",
            &format!("/v1/admin/events?type={kind}"),
            &org.admin,
            None,
        ),
        200,
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn an_invoice_is_written_as_a_draft_then_issued_numbered_shared_and_emailed() {
    let app = TestApp::spawn();
    let (mut org, cus, token) = shop(&app, "inv-issue");
    let due = (app.clock.today() + chrono::Duration::days(30)).to_string();
    let d = draft(&app, &org, &cus, two_lines(&due));
    // 2 × 45.00 at 0 % + 3 × 19.99 at 20 % (59.97 → tax 11.994 → 11.99).
    assert_eq!(d["status"], "draft");
    assert_eq!(d["kind"], "invoice");
    assert_eq!(d["number"], Value::Null);
    assert_eq!(d["subtotal"], 9000 + 5997);
    assert_eq!(d["tax"], 1199);
    assert_eq!(d["total"], 9000 + 5997 + 1199);
    assert_eq!(d["amount_due"], 0);
    assert_eq!(
        d["taxes"],
        json!([{"rate_bp": 0, "base": 9000, "tax": 0}, {"rate_bp": 2000, "base": 5997, "tax": 1199}])
    );
    assert_eq!(d["lines"][1]["net"], 5997);
    assert_eq!(d["lines"][1]["tax"], 1199);
    let id = d["id"].as_str().unwrap().to_owned();

    // A draft is the business's alone.
    send(&app, "GET", &format!("/v1/me/invoices/{id}"), &token, None)
        .assert_problem(404, "not_found");
    assert_eq!(
        ok(send(&app, "GET", "/v1/me/invoices", &token, None), 200)["data"],
        json!([])
    );
    send(
        &app,
        "GET",
        &format!("/v1/admin/invoices/{id}/document"),
        &org.admin,
        None,
    )
    .assert_problem(404, "not_found");

    let issued = issue(&app, &org, &id);
    let year = app.clock.today().format("%Y").to_string();
    assert_eq!(issued["number"], format!("F-{year}-00001"));
    assert_eq!(issued["status"], "open");
    assert_eq!(issued["amount_due"], issued["total"]);
    assert!(issued["issued_at"].is_string());
    let doc_id = issued["document_id"].as_str().unwrap().to_owned();
    // Issued once only.
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/issue"),
        &org.admin,
        None,
    )
    .assert_problem(409, "invoice_not_draft");

    // The customer: e-mailed the PDF, notified, and sees it everywhere.
    let mail = app.nth_message("anne@inv-issue.example", 2);
    assert!(
        mail.subject.contains(&format!("F-{year}-00001")),
        "{}",
        mail.subject
    );
    assert!(mail.body.contains("161,96"), "{}", mail.body);
    assert_eq!(mail.attachments.len(), 1);
    let pdf = &mail.attachments[0];
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.filename, format!("facture-F-{year}-00001.pdf"));
    assert!(pdf.content.starts_with(b"%PDF-"));

    let mine = ok(
        send(&app, "GET", &format!("/v1/me/invoices/{id}"), &token, None),
        200,
    );
    assert_eq!(
        mine,
        ok(
            send(
                &app,
                "GET",
                &format!("/v1/admin/invoices/{id}"),
                &org.admin,
                None
            ),
            200
        )
    );
    let list = ok(
        send(&app, "GET", "/v1/me/invoices?status=open", &token, None),
        200,
    );
    assert_eq!(list["data"][0]["id"], json!(id));
    assert_eq!(
        ok(
            send(&app, "GET", "/v1/me/invoices?status=paid", &token, None),
            200
        )["data"],
        json!([])
    );
    let download = send(
        &app,
        "GET",
        &format!("/v1/me/invoices/{id}/document"),
        &token,
        None,
    );
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(download.body, pdf.content);
    let docs = ok(send(&app, "GET", "/v1/me/documents", &token, None), 200);
    assert!(
        docs["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == json!(doc_id))
    );
    let notes = ok(send(&app, "GET", "/v1/me/notifications", &token, None), 200);
    assert!(
        notes["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "invoice.issued"),
        "{notes}"
    );

    let issued_events = events(&app, &org, "invoice.issued");
    assert_eq!(issued_events.len(), 1);
    assert_eq!(
        issued_events[0]["data"]["invoice"]["number"],
        format!("F-{year}-00001")
    );
    assert_eq!(issued_events[0]["data"]["payment"], Value::Null);

    // Overdue the day after its due date.
    later(&app, &mut org, 31, "anne@inv-issue.example");
    let later = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{id}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(later["status"], "overdue");
    let overdue = ok(
        send(
            &app,
            "GET",
            "/v1/admin/invoices?status=overdue",
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(overdue["data"].as_array().unwrap().len(), 1);
}

#[test]
fn numbers_are_unique_per_organization_and_payment_requests_have_their_own() {
    let app = TestApp::spawn();
    let (org, cus, _) = shop(&app, "inv-numbers");
    let year = app.clock.today().format("%Y").to_string();
    let due = (app.clock.today() + chrono::Duration::days(5)).to_string();
    // A number chosen by hand that is also the next generated one.
    let chosen = draft(
        &app,
        &org,
        &cus,
        json!({"amount": 1000, "reason": "x", "number": format!("F-{year}-00001"), "due_date": due}),
    );
    assert_eq!(chosen["kind"], "payment_request");
    assert_eq!(chosen["number"], format!("F-{year}-00001"));
    let mut body = two_lines(&due);
    body["customer_id"] = json!(cus);
    body["number"] = json!(format!("F-{year}-00001"));
    send(&app, "POST", "/v1/admin/invoices", &org.admin, Some(body))
        .assert_problem(409, "invoice_number_taken");

    let a = draft(&app, &org, &cus, two_lines(&due));
    let issued = issue(&app, &org, a["id"].as_str().unwrap());
    assert_eq!(issued["number"], format!("F-{year}-00002"));
    let r = draft(
        &app,
        &org,
        &cus,
        json!({"amount": 6000, "reason": "Bilan initial", "due_date": due}),
    );
    let issued = issue(&app, &org, r["id"].as_str().unwrap());
    assert_eq!(issued["number"], format!("D-{year}-00001"));
    assert_eq!(issued["kind"], "payment_request");
    assert_eq!(issued["lines"], json!([]));
    assert_eq!(issued["total"], 6000);
    assert_eq!(issued["tax"], 0);
    assert_eq!(issued["reason"], "Bilan initial");

    // Another organization counts from 1 again.
    let (other, other_cus, _) = shop(&app, "inv-numbers-b");
    let b = draft(&app, &other, &other_cus, two_lines(&due));
    assert_eq!(
        issue(&app, &other, b["id"].as_str().unwrap())["number"],
        format!("F-{year}-00001")
    );
}

#[test]
fn concurrent_issues_of_drafts_give_distinct_numbers_and_one_issue_each() {
    let app = TestApp::spawn();
    let (org, cus, _) = shop(&app, "inv-race");
    let due = (app.clock.today() + chrono::Duration::days(5)).to_string();
    let ids: Vec<String> = (0..12)
        .map(|_| {
            draft(&app, &org, &cus, two_lines(&due))["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Each draft issued twice at once: 24 requests.
    let results = at_once(24, |i| {
        send(
            &app,
            "POST",
            &format!("/v1/admin/invoices/{}/issue", ids[i % 12]),
            &org.admin,
            None,
        )
    });
    let won: Vec<&Response> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        won.len(),
        12,
        "{:?}",
        results
            .iter()
            .map(|r| (r.status, r.text()))
            .collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_problem(409, "invoice_not_draft");
    }
    let mut numbers: Vec<String> = ids
        .iter()
        .map(|id| {
            ok(
                send(
                    &app,
                    "GET",
                    &format!("/v1/admin/invoices/{id}"),
                    &org.admin,
                    None,
                ),
                200,
            )["number"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 12);
    assert_eq!(events(&app, &org, "invoice.issued").len(), 12);
}

#[test]
fn the_customer_pays_in_full_once_with_a_receipt() {
    let app = TestApp::spawn();
    let (org, _cus, token) = shop(&app, "inv-pay");
    let cus = _cus;
    let id = open_invoice(&app, &org, &cus);
    let body = json!({"card_token": card(test_cards::VISA)});

    let first = pay(&app, &token, &id, "pay-1", body.clone());
    let paid = ok(first, 201);
    assert_eq!(paid["invoice"]["status"], "paid");
    assert_eq!(paid["invoice"]["amount_paid"], 15000);
    assert_eq!(paid["invoice"]["amount_due"], 0);
    assert_eq!(paid["payment"]["amount"], 15000);
    assert_eq!(paid["payment"]["status"], "succeeded");
    assert_eq!(
        paid["payment"]["card"],
        json!({"brand": "visa", "last4": "4242"})
    );
    assert!(!paid.to_string().contains("tok_"), "no token in the answer");

    // The same key replays the answer; another key finds it paid.
    let replay = pay(&app, &token, &id, "pay-1", body.clone());
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), paid);
    pay(&app, &token, &id, "pay-2", body.clone()).assert_problem(409, "invoice_already_paid");
    assert_eq!(charges(&app, &org).len(), 1);

    let receipt = app.nth_message("anne@inv-pay.example", 3);
    assert!(receipt.subject.contains("D-"), "{}", receipt.subject);
    assert!(
        receipt.body.contains("reçu votre paiement"),
        "{}",
        receipt.body
    );
    assert!(receipt.body.contains("150,00"), "{}", receipt.body);
    assert!(
        receipt.body.contains("entièrement réglée"),
        "{}",
        receipt.body
    );
    assert_eq!(receipt.attachments.len(), 1);
    assert!(receipt.attachments[0].content.starts_with(b"%PDF-"));

    let paid_events = events(&app, &org, "invoice.paid");
    assert_eq!(paid_events.len(), 1);
    assert_eq!(paid_events[0]["actor"], "customer");
    assert_eq!(paid_events[0]["data"]["payment"]["amount"], 15000);
    let list = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{id}/payments"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(
            send(&app, "GET", "/v1/me/invoices?status=paid", &token, None),
            200
        )["data"][0]["id"],
        json!(id)
    );
}

#[test]
fn partial_payments_follow_the_business_setting_and_never_exceed_what_is_due() {
    let app = TestApp::spawn();
    let (org, cus, token) = shop(&app, "inv-part");
    let id = open_invoice(&app, &org, &cus);
    let visa = card(test_cards::VISA);
    let p = pay(
        &app,
        &token,
        &id,
        "p-1",
        json!({"amount": 4000, "card_token": visa}),
    )
    .assert_problem(422, "partial_payment_not_allowed");
    assert_eq!(p["amount_due"], 15000);
    let mut settings = ok(
        send(&app, "GET", "/v1/admin/settings/payments", &org.admin, None),
        200,
    );
    assert_eq!(settings["invoice_partial_payments"], false);
    settings["invoice_partial_payments"] = json!(true);
    let obj = settings.as_object_mut().unwrap();
    obj.remove("updated_at");
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/settings/payments",
            &org.admin,
            Some(settings),
        ),
        200,
    );

    let part = ok(
        pay(
            &app,
            &token,
            &id,
            "p-2",
            json!({"amount": 4000, "card_token": visa}),
        ),
        201,
    );
    assert_eq!(part["invoice"]["status"], "open");
    assert_eq!(part["invoice"]["amount_paid"], 4000);
    assert_eq!(part["invoice"]["amount_due"], 11000);
    let p = pay(
        &app,
        &token,
        &id,
        "p-3",
        json!({"amount": 11001, "card_token": visa}),
    )
    .assert_problem(422, "amount_above_due");
    assert_eq!(p["amount_due"], 11000);
    let rest = ok(
        pay(&app, &token, &id, "p-4", json!({"card_token": visa})),
        201,
    );
    assert_eq!(rest["payment"]["amount"], 11000);
    assert_eq!(rest["invoice"]["status"], "paid");
    // Each receipt's PDF is made when its e-mail is sent, and says what was
    // left after its own payment, however late it is made.
    let first = part["payment"]["id"].as_str().unwrap();
    let render: Option<String> = {
        use diesel::prelude::*;
        use guichet_store::schema::outbox_attachments as a;
        a::table
            .filter(a::filename.eq(format!("recu-{first}.pdf")))
            .select(a::render)
            .first(&mut app.store.conn().unwrap())
            .unwrap()
    };
    let late = guichet_jobs::invoices::render_attachment(
        &mut app.store.conn().unwrap(),
        &render.expect("made when sent"),
    )
    .unwrap();
    let text = guichet_tests::pdf_text(&late);
    assert!(text.contains("Montant réglé 40,00"), "{text}");
    assert!(text.contains("Reste dû 110,00"), "{text}");
    let mails = app.wait_for_messages("anne@inv-part.example", 4);
    let sent = mails
        .iter()
        .flat_map(|m| &m.attachments)
        .find(|a| a.filename == format!("recu-{first}.pdf"))
        .expect("the first receipt was sent");
    assert_eq!(sent.content, late, "the same bytes whenever it is made");
    assert_eq!(events(&app, &org, "invoice.partially_paid").len(), 1);
    assert_eq!(events(&app, &org, "invoice.paid").len(), 1);
    let sum: i64 = charges(&app, &org)
        .iter()
        .map(|c| c["amount"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 15000);
}

#[test]
fn a_refused_card_changes_nothing_and_gives_the_contact_channels() {
    let app = TestApp::spawn();
    let (mut org, cus, token) = shop(&app, "inv-declined");
    let id = open_invoice(&app, &org, &cus);
    let before = ok(
        send(&app, "GET", &format!("/v1/me/invoices/{id}"), &token, None),
        200,
    );
    let p = pay(
        &app,
        &token,
        &id,
        "d-1",
        json!({"card_token": card(test_cards::INSUFFICIENT_FUNDS)}),
    )
    .assert_problem(422, "payment_failed");
    assert_eq!(p["reason"], "insufficient_funds");
    assert!(p["contact_channels"]["data"].is_array(), "{p}");
    assert_eq!(
        ok(
            send(&app, "GET", &format!("/v1/me/invoices/{id}"), &token, None),
            200
        ),
        before
    );
    // The refusal is the key's answer.
    let again = pay(
        &app,
        &token,
        &id,
        "d-1",
        json!({"card_token": card(test_cards::INSUFFICIENT_FUNDS)}),
    );
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(events(&app, &org, "invoice.payment_failed").len(), 1);

    // Brand and expiry rules of the organization.
    pay(
        &app,
        &token,
        &id,
        "d-2",
        json!({"card_token": card(test_cards::AMEX)}),
    )
    .assert_problem(422, "card_brand_not_accepted");
    // A card valid to the end of this month, used two months later.
    let today = app.clock.today();
    let res = app
        .request("POST", "/v1/sandbox/card-tokens")
        .json(&json!({
            "number": test_cards::VISA,
            "exp_month": chrono::Datelike::month(&today),
            "exp_year": chrono::Datelike::year(&today),
            "cvc": "123",
        }))
        .send();
    let short = ok(res, 201)["token"].as_str().unwrap().to_owned();
    let token = later(&app, &mut org, 62, "anne@inv-declined.example");
    pay(&app, &token, &id, "d-3", json!({"card_token": short})).assert_problem(422, "card_expired");
    pay(
        &app,
        &token,
        &id,
        "d-4",
        json!({"card_token": "tok_nonsense"}),
    )
    .assert_problem(422, "card_token_invalid");
    // Then a good card pays.
    ok(
        pay(
            &app,
            &token,
            &id,
            "d-5",
            json!({"card_token": card(test_cards::VISA)}),
        ),
        201,
    );
}

#[test]
fn payments_at_once_charge_the_invoice_once() {
    let app = TestApp::spawn();
    let (org, cus, token) = shop(&app, "inv-once");
    let id = open_invoice(&app, &org, &cus);
    let visa = card(test_cards::VISA);
    let results = at_once(24, |i| {
        pay(
            &app,
            &token,
            &id,
            &format!("race-{i}"),
            json!({"card_token": visa}),
        )
    });
    let won = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        results
            .iter()
            .map(|r| (r.status, r.text()))
            .collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{}", r.text());
        let code = r.json()["code"].as_str().unwrap().to_owned();
        assert!(
            ["invoice_payment_in_progress", "invoice_already_paid"].contains(&code.as_str()),
            "{code}"
        );
    }
    assert_eq!(charges(&app, &org).len(), 1);
    let inv = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{id}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(inv["amount_paid"], 15000);
    assert_eq!(inv["status"], "paid");
    assert_eq!(events(&app, &org, "invoice.paid").len(), 1);
}

#[test]
fn a_lost_gateway_answer_is_looked_up_by_the_retry_never_charged_twice() {
    let app = TestApp::spawn();
    let (org, cus, token) = shop(&app, "inv-timeout");
    let id = open_invoice(&app, &org, &cus);
    let lost = card(test_cards::TIMEOUT);
    pay(&app, &token, &id, "t-1", json!({"card_token": lost}))
        .assert_problem(503, "gateway_timeout");
    // Another key is told a payment is under way.
    pay(
        &app,
        &token,
        &id,
        "t-2",
        json!({"card_token": card(test_cards::VISA)}),
    )
    .assert_problem(409, "invoice_payment_in_progress");
    let done = ok(
        pay(&app, &token, &id, "t-1", json!({"card_token": lost})),
        201,
    );
    assert_eq!(done["invoice"]["status"], "paid");
    assert_eq!(charges(&app, &org).len(), 1);
}

#[test]
fn staff_void_and_record_offline_payments() {
    let app = TestApp::spawn();
    let (org, cus, token) = shop(&app, "inv-void");
    let id = open_invoice(&app, &org, &cus);
    let voided = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/invoices/{id}/void"),
            &org.admin,
            Some(json!({"reason": "Émise en double"})),
        ),
        200,
    );
    assert_eq!(voided["status"], "void");
    assert_eq!(voided["amount_due"], 0);
    assert_eq!(voided["void_reason"], "Émise en double");
    pay(
        &app,
        &token,
        &id,
        "v-1",
        json!({"card_token": card(test_cards::VISA)}),
    )
    .assert_problem(409, "invoice_void");
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/void"),
        &org.admin,
        Some(json!({})),
    )
    .assert_problem(409, "invoice_void");
    assert_eq!(events(&app, &org, "invoice.voided").len(), 1);

    let id = open_invoice(&app, &org, &cus);
    let part = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/invoices/{id}/payments"),
            &org.admin,
            Some(json!({"amount": 5000, "method": "cheque", "reference": "Chèque 1234567"})),
        ),
        201,
    );
    assert_eq!(part["invoice"]["amount_paid"], 5000);
    assert_eq!(part["payment"]["method"], "cheque");
    assert_eq!(part["payment"]["source"], "staff");
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/void"),
        &org.admin,
        Some(json!({})),
    )
    .assert_problem(409, "invoice_has_payments");
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/payments"),
        &org.admin,
        Some(json!({"amount": 10001, "method": "cash"})),
    )
    .assert_problem(422, "amount_above_due");
    let rest = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/invoices/{id}/payments"),
            &org.admin,
            Some(json!({"method": "bank_transfer"})),
        ),
        201,
    );
    assert_eq!(rest["invoice"]["status"], "paid");
    assert_eq!(rest["payment"]["amount"], 10000);
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/payments"),
        &org.admin,
        Some(json!({"method": "cash"})),
    )
    .assert_problem(409, "invoice_already_paid");
    // Drafts cannot take payments.
    let due = (app.clock.today() + chrono::Duration::days(5)).to_string();
    let d = draft(&app, &org, &cus, two_lines(&due));
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{}/payments", d["id"].as_str().unwrap()),
        &org.admin,
        Some(json!({"method": "cash"})),
    )
    .assert_problem(409, "invoice_not_draft");
}

#[test]
fn the_dashboard_counts_open_invoices_and_payments_can_be_turned_off() {
    let app = TestApp::spawn();
    let (mut org, cus, token) = shop(&app, "inv-dash");
    let id = open_invoice(&app, &org, &cus);
    let dash = ok(send(&app, "GET", "/v1/me/dashboard", &token, None), 200);
    let sources = dash["amount_due"]["sources"].as_array().unwrap();
    let item = sources
        .iter()
        .find(|s| s["kind"] == "invoice")
        .expect("an invoice source");
    assert_eq!(item["amount"], 15000);
    assert_eq!(item["link"], format!("/v1/me/invoices/{id}"));
    assert_eq!(item["overdue"], false);
    assert_eq!(
        dash["amount_due"]["due_soon"],
        json!([{"amount": 15000, "currency": "EUR"}])
    );
    let token = later(&app, &mut org, 11, "anne@inv-dash.example");
    let dash = ok(send(&app, "GET", "/v1/me/dashboard", &token, None), 200);
    assert_eq!(
        dash["amount_due"]["overdue"],
        json!([{"amount": 15000, "currency": "EUR"}])
    );

    // The `payments` action off for this customer: every invoice endpoint
    // of theirs answers 403.
    ok(
        send(
            &app,
            "PUT",
            &format!("/v1/admin/customers/{cus}/portal-settings"),
            &org.admin,
            Some(json!({"payments": false})),
        ),
        200,
    );
    let token = ok(
        app.login(
            &org,
            "anne@inv-dash.example",
            guichet_tests::identity::PASSWORD,
        ),
        200,
    )["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, "GET", "/v1/me/invoices", &token, None)
        .assert_problem(403, "portal_action_disabled");
    send(&app, "GET", &format!("/v1/me/invoices/{id}"), &token, None)
        .assert_problem(403, "portal_action_disabled");
    pay(
        &app,
        &token,
        &id,
        "off-1",
        json!({"card_token": card(test_cards::VISA)}),
    )
    .assert_problem(403, "portal_action_disabled");
    assert_eq!(charges(&app, &org).len(), 0);
}

#[test]
fn invoices_are_isolated_and_guarded() {
    let app = TestApp::spawn();
    let (org, cus, _token) = shop(&app, "inv-iso");
    let id = open_invoice(&app, &org, &cus);
    let (_, other_token) = app.registered_customer(&org, "bob@inv-iso.example", None);
    let other = other_token.access;
    send(&app, "GET", &format!("/v1/me/invoices/{id}"), &other, None)
        .assert_problem(404, "not_found");
    send(
        &app,
        "GET",
        &format!("/v1/me/invoices/{id}/document"),
        &other,
        None,
    )
    .assert_problem(404, "not_found");
    pay(
        &app,
        &other,
        &id,
        "iso-1",
        json!({"card_token": card(test_cards::VISA)}),
    )
    .assert_problem(404, "not_found");
    // Another organization's staff.
    let (org_b, _, _) = shop(&app, "inv-iso-b");
    send(
        &app,
        "GET",
        &format!("/v1/admin/invoices/{id}"),
        &org_b.admin,
        None,
    )
    .assert_problem(404, "not_found");
    send(
        &app,
        "POST",
        &format!("/v1/admin/invoices/{id}/issue"),
        &org_b.admin,
        None,
    )
    .assert_problem(404, "not_found");
    assert_eq!(
        ok(
            send(&app, "GET", "/v1/admin/invoices", &org_b.admin, None),
            200
        )["data"],
        json!([])
    );
    // A customer on admin routes, no token.
    send(&app, "GET", "/v1/admin/invoices", &other, None).assert_problem(403, "forbidden");
    let due = (app.clock.today() + chrono::Duration::days(5)).to_string();
    let mut body = two_lines(&due);
    body["customer_id"] = json!(cus);
    send(&app, "POST", "/v1/admin/invoices", &other, Some(body)).assert_problem(403, "forbidden");
    app.request("GET", "/v1/admin/invoices")
        .send()
        .assert_problem(401, "unauthenticated");
    app.request("GET", "/v1/me/invoices")
        .send()
        .assert_problem(401, "unauthenticated");
    app.request("POST", &format!("/v1/me/invoices/{id}/payments"))
        .header("idempotency-key", "x")
        .json(&json!({}))
        .send()
        .assert_problem(401, "unauthenticated");
    assert_eq!(charges(&app, &org).len(), 0);
}

#[test]
fn bad_input_is_refused_and_stores_nothing() {
    let app = TestApp::spawn();
    let (org, cus, token) = shop(&app, "inv-bad");
    let due = (app.clock.today() + chrono::Duration::days(5)).to_string();
    let with = |patch: Value| {
        let mut body = two_lines(&due);
        body["customer_id"] = json!(cus);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(json!({"amount": 100})), "validation_failed"),
        (with(json!({"lines": null})), "validation_failed"),
        (
            with(json!({"lines": null, "amount": 100})),
            "validation_failed",
        ),
        (with(json!({"reason": "x"})), "validation_failed"),
        (with(json!({"lines": []})), "invalid_field"),
        (
            with(json!({"lines": [{"description": "x", "quantity": 0, "unit_amount": 1}]})),
            "invalid_field",
        ),
        (
            with(
                json!({"lines": [{"description": "x", "quantity": 1, "unit_amount": 1, "tax_rate_bp": 10001}]}),
            ),
            "invalid_field",
        ),
        (
            with(json!({"lines": [{"description": "x", "quantity": 1, "unit_amount": -1}]})),
            "invalid_field",
        ),
        (
            with(json!({"lines": [{"description": "x", "quantity": 1, "unit_amount": 0}]})),
            "validation_failed",
        ),
        (
            with(json!({"lines": [{"description": " ", "quantity": 1, "unit_amount": 1}]})),
            "invalid_field",
        ),
        (
            with(json!({"lines": [{"description": "x", "quantity": "2", "unit_amount": 1}]})),
            "invalid_field",
        ),
        (
            with(json!({"lines": [{"description": "x\u{0}", "quantity": 1, "unit_amount": 1}]})),
            "invalid_field",
        ),
        (
            with(
                json!({"lines": [{"description": "x", "quantity": 1, "unit_amount": 1, "colour": "red"}]}),
            ),
            "unknown_field",
        ),
        (with(json!({"due_date": "2000-01-01"})), "validation_failed"),
        (with(json!({"due_date": "tomorrow"})), "invalid_field"),
        (with(json!({"currency": "eur"})), "invalid_field"),
        (with(json!({"number": "-1"})), "invalid_field"),
        (
            with(json!({"number": null, "note": null, "extra": 1})),
            "unknown_field",
        ),
        (
            with(json!({"note": "Carte 4242 4242 4242 4242"})),
            "card_number_refused",
        ),
        (json!([1, 2]), "invalid_field"),
    ];
    for (body, code) in cases {
        let res = send(
            &app,
            "POST",
            "/v1/admin/invoices",
            &org.admin,
            Some(body.clone()),
        );
        // The fields' own rules are 400; their rules together, 422.
        let status = if code == "validation_failed" {
            422
        } else {
            400
        };
        assert_eq!(res.status, status, "{body} → {}", res.text());
        assert_eq!(res.json()["code"], code, "{body} → {}", res.text());
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
    }
    let raw = app
        .request("POST", "/v1/admin/invoices")
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"customer_id\":".to_vec())
        .send();
    raw.assert_problem(400, "malformed_json");
    let mut unknown = with(json!({}));
    unknown["customer_id"] = json!("cus_nobody");
    send(
        &app,
        "POST",
        "/v1/admin/invoices",
        &org.admin,
        Some(unknown),
    )
    .assert_problem(404, "not_found");
    assert_eq!(
        ok(
            send(&app, "GET", "/v1/admin/invoices", &org.admin, None),
            200
        )["data"],
        json!([])
    );

    // The payment's body.
    let id = open_invoice(&app, &org, &cus);
    for (body, code) in [
        (json!({}), "validation_failed"),
        (json!({"card_token": ""}), "invalid_field"),
        (json!({"card_token": "tok", "amount": 0}), "invalid_field"),
        (
            json!({"card_token": "tok", "amount": "10"}),
            "invalid_field",
        ),
        (json!({"card_token": "tok", "tip": 1}), "unknown_field"),
        (
            json!({"card_token": "4242424242424242"}),
            "card_number_refused",
        ),
    ] {
        let res = pay(&app, &token, &id, "bad", body.clone());
        let status = if code == "validation_failed" {
            422
        } else {
            400
        };
        assert_eq!(res.status, status, "{body} → {}", res.text());
        assert_eq!(res.json()["code"], code, "{body}");
    }
    app.request("POST", &format!("/v1/me/invoices/{id}/payments"))
        .bearer(&token)
        .json(&json!({"card_token": card(test_cards::VISA)}))
        .send()
        .assert_problem(400, "idempotency_key_required");
    send(&app, "GET", "/v1/me/invoices?status=draft", &token, None)
        .assert_problem(400, "invalid_parameter");
    send(
        &app,
        "GET",
        "/v1/admin/invoices?status=late",
        &org.admin,
        None,
    )
    .assert_problem(400, "invalid_parameter");
    assert_eq!(charges(&app, &org).len(), 0);
    let inv = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{id}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(inv["amount_paid"], 0);
}

// ------------------------------------------------------------------ autopay

/// Saves the card `number` with the autopay box checked.
fn autopay_card(app: &TestApp, token: &str, number: &str) {
    let res = app
        .request("POST", "/v1/me/payment-methods")
        .bearer(token)
        .json(&json!({"type": "card", "card_token": card(number), "autopay": true}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let autopay = ok(send(app, "GET", "/v1/me/autopay", token, None), 200);
    assert_eq!(autopay["enabled"], true, "{autopay}");
}

/// An issued payment request of `amount` due in `days` days: its id.
fn due_in(app: &TestApp, org: &Org, customer_id: &str, amount: i64, days: i64) -> String {
    let today = app.clock.today();
    let d = draft(
        app,
        org,
        customer_id,
        json!({"amount": amount, "reason": "Séances", "issue_date": today.to_string(),
               "due_date": (today + chrono::Duration::days(days)).to_string()}),
    );
    let id = d["id"].as_str().unwrap().to_owned();
    issue(app, org, &id);
    id
}

#[test]
fn autopay_charges_each_due_invoice_once_even_with_runners_at_once() {
    let app = TestApp::spawn();
    let (org, anne, token) = shop(&app, "inv-autopay");
    autopay_card(&app, &token, test_cards::VISA);
    let due = due_in(&app, &org, &anne, 7000, 0);
    let later_one = due_in(&app, &org, &anne, 3000, 10);
    // Bob has no autopay: his due invoice waits for him.
    let (bob, _) = app.registered_customer(&org, "bob@inv-autopay.example", None);
    let bobs = due_in(&app, &org, &bob, 5000, 0);

    let today = app.clock.today();
    let barrier = Barrier::new(4);
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (barrier, app) = (&barrier, &app);
                s.spawn(move || {
                    let run = app.debit_run();
                    barrier.wait();
                    run.run(today, 10).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: u64 = reports.iter().map(|r| r.autopay.paid).sum();
    let presented: u64 = reports.iter().map(|r| r.autopay.presented).sum();
    assert_eq!((paid, presented), (1, 1), "{reports:?}");
    assert_eq!(charges(&app, &org).len(), 1);
    let inv = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{due}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(inv["status"], "paid");
    let payments = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{due}/payments"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(payments["data"][0]["source"], "autopay");
    assert_eq!(
        payments["data"][0]["card"],
        json!({"brand": "visa", "last4": "4242"})
    );
    for id in [&later_one, &bobs] {
        let inv = ok(
            send(
                &app,
                "GET",
                &format!("/v1/admin/invoices/{id}"),
                &org.admin,
                None,
            ),
            200,
        );
        assert_eq!(inv["status"], "open", "{inv}");
    }
    let paid_events = events(&app, &org, "invoice.paid");
    assert_eq!(paid_events.len(), 1);
    assert_eq!(paid_events[0]["actor"], "system");
    let receipt = app.wait_for_messages("anne@inv-autopay.example", 4);
    assert!(
        receipt.iter().any(|m| m.body.contains("70,00")),
        "{:?}",
        receipt.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // Another run finds nothing left to charge.
    let again = app.debit_run().run(today, 10).unwrap();
    assert_eq!(again.autopay.presented, 0, "{again:?}");
    assert_eq!(charges(&app, &org).len(), 1);
}

#[test]
fn a_refused_autopay_charge_is_retried_per_the_retry_policy_then_left() {
    let app = TestApp::spawn();
    let (mut org, anne, token) = shop(&app, "inv-autopay-refused");
    autopay_card(&app, &token, test_cards::INSUFFICIENT_FUNDS);
    let id = due_in(&app, &org, &anne, 4000, 0);
    // The default policy: one retry, three days later.
    let run = |app: &TestApp| app.debit_run().run(app.clock.today(), 10).unwrap().autopay;
    let first = run(&app);
    assert_eq!((first.presented, first.refused), (1, 1), "{first:?}");
    let notes = ok(send(&app, "GET", "/v1/me/notifications", &token, None), 200);
    assert!(
        notes["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "invoice.payment_failed"),
        "{notes}"
    );
    // Not again the same day.
    assert_eq!(run(&app).presented, 0);
    later(&app, &mut org, 3, "anne@inv-autopay-refused.example");
    let retry = run(&app);
    assert_eq!((retry.presented, retry.refused), (1, 1), "{retry:?}");
    later(&app, &mut org, 3, "anne@inv-autopay-refused.example");
    assert_eq!(run(&app).presented, 0, "no retry left");
    assert_eq!(charges(&app, &org).len(), 2);
    let inv = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/invoices/{id}"),
            &org.admin,
            None,
        ),
        200,
    );
    assert_eq!(inv["status"], "overdue");
    assert_eq!(events(&app, &org, "invoice.payment_failed").len(), 2);
}

#[test]
fn a_saved_card_pays_an_invoice_and_another_customers_method_is_not_found() {
    let app = TestApp::spawn();
    let (org, anne, token) = shop(&app, "inv-saved");
    let res = app
        .request("POST", "/v1/me/payment-methods")
        .bearer(&token)
        .json(
            &json!({"type": "card", "card_token": card(test_cards::MASTERCARD), "autopay": false}),
        )
        .send();
    let method = ok(res, 201)["id"].as_str().unwrap().to_owned();
    let id = open_invoice(&app, &org, &anne);
    // Bob cannot pay with Anne's card, even on his own invoice.
    let (bob, bob_tokens) = app.registered_customer(&org, "bob@inv-saved.example", None);
    let bobs = open_invoice(&app, &org, &bob);
    pay(
        &app,
        &bob_tokens.access,
        &bobs,
        "s-0",
        json!({"payment_method_id": method}),
    )
    .assert_problem(404, "not_found");
    // One of the two, never both.
    pay(
        &app,
        &token,
        &id,
        "s-1",
        json!({"payment_method_id": method, "card_token": card(test_cards::VISA)}),
    )
    .assert_problem(422, "validation_failed");
    let paid = ok(
        pay(
            &app,
            &token,
            &id,
            "s-2",
            json!({"payment_method_id": method}),
        ),
        201,
    );
    assert_eq!(paid["invoice"]["status"], "paid");
    assert_eq!(
        paid["payment"]["card"],
        json!({"brand": "mastercard", "last4": "4444"})
    );
    assert_eq!(charges(&app, &org).len(), 1);
}
