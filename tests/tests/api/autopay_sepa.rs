//! Autopay through a signed SEPA mandate: the debit run pays an invoice due
//! by a collection of the pain.008 flow (pre-notified, presented when due,
//! in the day's file), without touching the mandate's account balance; the
//! bank's answer recorded on the collection settles the invoice's payment,
//! a rejection is retried per the retry policy, and a revoked mandate
//! cancels the collection and fails the payment.
//!
//! The mandate is seeded through the store (creditor settings, an account,
//! a mandate and its signature), as in `collections.rs`; everything else
//! goes over HTTP or through the job's entry points.

use std::sync::{Arc, Barrier};

use guichet_domain::Clock;
use guichet_domain::gateway::test_cards;
use guichet_jobs::sepa::SepaRun;
use guichet_store::repo::accounts;
use guichet_tests::identity::{Org, PASSWORD};
use guichet_tests::orders::sandbox_token;
use guichet_tests::sepa;
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
    res.json()
}

/// A customer of a business that collects by SEPA with `days` of notice,
/// with a signed recurring mandate (its account owes nothing) saved as the
/// autopay method: (org, customer id, e-mail, token, mandate id, account id).
struct World {
    org: Org,
    customer_id: String,
    email: String,
    token: String,
    mandate_id: String,
    account_id: String,
}

fn world(app: &TestApp, slug: &str, days: i32) -> World {
    world_signed(app, slug, days, app.clock.now())
}

/// [`world`], the mandate signed at `signed_at`.
fn world_signed(
    app: &TestApp,
    slug: &str,
    days: i32,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> World {
    let org = app.org(slug);
    let email = format!("anne@{slug}.example");
    let (customer_id, tokens) = app.registered_customer(&org, &email, None);
    sepa::creditor(app, &org.id, "Cabinet Kiné du Parc", days);
    let account_id = sepa::account(app, &org.id, &customer_id, "Séances", 0);
    let mandate_id = sepa::signed_mandate(
        app,
        &sepa::Mandate {
            org_id: &org.id,
            customer_id: &customer_id,
            account_id: &account_id,
            email: &email,
            debtor_name: "Anne Lefèvre",
            recurrent: true,
            spread_months: None,
            signed_at,
        },
    );
    let token = tokens.access;
    let m = ok(
        send(
            app,
            "POST",
            "/v1/me/payment-methods",
            &token,
            Some(json!({"type": "sepa_debit", "mandate_id": mandate_id, "autopay": true})),
        ),
        201,
    );
    assert_eq!(m["type"], "sepa_debit", "{m}");
    let autopay = ok(send(app, "GET", "/v1/me/autopay", &token, None), 200);
    assert_eq!(autopay["enabled"], true, "{autopay}");
    World {
        org,
        customer_id,
        email,
        token,
        mandate_id,
        account_id,
    }
}

/// Moves the clock `days` on; the admin and the customer sign in again.
fn later(app: &TestApp, w: &mut World, days: i64) {
    app.clock.advance(chrono::Duration::days(days));
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(
            &json!({"organization": w.org.slug, "email": w.org.admin_email, "password": PASSWORD}),
        )
        .send();
    w.org.admin = ok(res, 200)["access_token"].as_str().unwrap().to_owned();
    w.token = ok(app.login(&w.org, &w.email, PASSWORD), 200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
}

/// An issued payment request of `amount`, due today: its id.
fn due_today(app: &TestApp, w: &World, amount: i64) -> String {
    let today = app.clock.today().to_string();
    let d = ok(
        send(
            app,
            "POST",
            "/v1/admin/invoices",
            &w.org.admin,
            Some(
                json!({"customer_id": w.customer_id, "amount": amount, "reason": "Séances",
                        "issue_date": today, "due_date": today}),
            ),
        ),
        201,
    );
    let id = d["id"].as_str().unwrap().to_owned();
    ok(
        send(
            app,
            "POST",
            &format!("/v1/admin/invoices/{id}/issue"),
            &w.org.admin,
            None,
        ),
        200,
    );
    id
}

/// What `guichet jobs debit` does: the debit run (autopay included), then
/// the SEPA step; the autopay report.
fn jobs_debit(app: &TestApp) -> guichet_jobs::autopay::AutopayReport {
    let today = app.clock.today();
    let report = app.debit_run().run(today, 10).unwrap();
    SepaRun::new(app.store.clone(), Arc::new(app.clock.clone()))
        .run(today)
        .unwrap();
    report.autopay
}

fn get(app: &TestApp, w: &World, path: &str) -> Value {
    ok(send(app, "GET", path, &w.org.admin, None), 200)
}

fn payments(app: &TestApp, w: &World, invoice: &str) -> Vec<Value> {
    get(app, w, &format!("/v1/admin/invoices/{invoice}/payments"))["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn collection(app: &TestApp, w: &World, id: &str) -> Value {
    let all = get(
        app,
        w,
        &format!(
            "/v1/admin/sepa/collections?mandate_id={}&limit=100",
            w.mandate_id
        ),
    );
    all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no collection {id} in {all}"))
}

fn collections_of_mandate(app: &TestApp, w: &World) -> Vec<Value> {
    get(
        app,
        w,
        &format!(
            "/v1/admin/sepa/collections?mandate_id={}&limit=100",
            w.mandate_id
        ),
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn events(app: &TestApp, w: &World, kind: &str) -> Vec<Value> {
    get(app, w, &format!("/v1/admin/events?type={kind}&limit=100"))["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn balance(app: &TestApp, w: &World) -> i64 {
    accounts::get(&mut app.store.conn().unwrap(), &w.org.id, &w.account_id)
        .unwrap()
        .balance
}

fn result(app: &TestApp, w: &World, collection: &str, body: Value) -> Response {
    send(
        app,
        "POST",
        &format!("/v1/admin/sepa/collections/{collection}/result"),
        &w.org.admin,
        Some(body),
    )
}

#[test]
fn autopay_through_a_mandate_pays_the_invoice_by_a_collection_once() {
    let app = TestApp::spawn();
    let mut w = world(&app, "ap-sepa", 2);
    let invoice = due_today(&app, &w, 4500);

    // Three runners at once: one collection.
    let today = app.clock.today();
    let barrier = Barrier::new(3);
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (barrier, app) = (&barrier, &app);
                s.spawn(move || {
                    let run = app.debit_run();
                    barrier.wait();
                    run.run(today, 10).unwrap().autopay
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let scheduled: u64 = reports.iter().map(|r| r.collections).sum();
    let presented: u64 = reports.iter().map(|r| r.presented).sum();
    assert_eq!((scheduled, presented), (1, 0), "{reports:?}");

    let p = payments(&app, &w, &invoice);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["method"], "sepa_debit");
    assert_eq!(p[0]["source"], "autopay");
    assert_eq!(p[0]["status"], "pending");
    assert_eq!(p[0]["amount"], 4500);
    assert!(p[0]["card"].is_null());
    let col_id = p[0]["collection_id"].as_str().unwrap().to_owned();
    let c = collection(&app, &w, &col_id);
    assert_eq!(c["invoice_id"], invoice.as_str());
    assert_eq!(c["invoice_payment_id"], p[0]["id"]);
    assert_eq!(c["status"], "scheduled");
    assert_eq!(c["sequence_type"], "FRST");
    assert_eq!(c["amount"], 4500);
    assert_eq!(
        c["due_date"],
        (today + chrono::Duration::days(2)).to_string()
    );
    assert!(!c["prenotified_at"].is_null(), "{c}");
    // The pre-notification (after the sign-up's code and the invoice) names
    // the amount and the date.
    let mails = app.wait_for_messages(&w.email, 3);
    let notice = mails
        .iter()
        .find(|m| m.subject.contains("SEPA"))
        .unwrap_or_else(|| panic!("{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>()));
    assert!(notice.body.contains("45.00 EUR"), "{}", notice.body);
    assert!(
        notice
            .subject
            .contains(&(today + chrono::Duration::days(2)).to_string())
    );
    // While the debit is in flight, the invoice takes no other payment.
    let card = sandbox_token(test_cards::VISA, 12, 2030).0;
    let res = app
        .request("POST", &format!("/v1/me/invoices/{invoice}/payments"))
        .bearer(&w.token)
        .header("Idempotency-Key", "pay-during-debit")
        .json(&json!({"card_token": card}))
        .send();
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["code"], "invoice_payment_in_progress");
    // Nor does a second run collect it again.
    let again = jobs_debit(&app);
    assert_eq!((again.collections, again.presented), (0, 0), "{again:?}");
    assert_eq!(collections_of_mandate(&app, &w).len(), 1);

    // Due: presented in the day's pain.008 file; the account is untouched.
    later(&app, &mut w, 2);
    jobs_debit(&app);
    let c = collection(&app, &w, &col_id);
    assert_eq!(c["status"], "presented", "{c}");
    assert_eq!(balance(&app, &w), 0);
    let xml = app
        .request(
            "GET",
            &format!("/v1/admin/sepa/collections.xml?date={}", app.clock.today()),
        )
        .bearer(&w.org.admin)
        .send();
    assert_eq!(xml.status, 200, "{}", xml.text());
    assert!(xml.text().contains(c["end_to_end_id"].as_str().unwrap()));

    // The bank says paid: the invoice is paid, once.
    for _ in 0..2 {
        let settled = ok(result(&app, &w, &col_id, json!({"outcome": "paid"})), 200);
        assert_eq!(settled["invoice_id"], invoice.as_str());
    }
    let inv = get(&app, &w, &format!("/v1/admin/invoices/{invoice}"));
    assert_eq!(
        (inv["status"].as_str(), inv["amount_paid"].as_i64()),
        (Some("paid"), Some(4500)),
        "{inv}"
    );
    let p = payments(&app, &w, &invoice);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["status"], "succeeded");
    assert_eq!(p[0]["collection_id"], col_id.as_str());
    let paid = events(&app, &w, "invoice.paid");
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0]["data"]["payment"]["method"], "sepa_debit");
    assert_eq!(balance(&app, &w), 0);
    // The receipt is e-mailed (after the code, the invoice and the
    // pre-notice).
    let mails = app.wait_for_messages(&w.email, 4);
    let receipt = mails
        .iter()
        .find(|m| {
            m.attachments
                .iter()
                .any(|a| a.filename.starts_with("recu-"))
        })
        .unwrap_or_else(|| panic!("{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>()));
    assert!(receipt.body.contains("45,00"), "{}", receipt.body);
    assert!(receipt.attachments[0].content.starts_with(b"%PDF-"));
    // Nothing is left to collect.
    assert_eq!(jobs_debit(&app).collections, 0);
}

#[test]
fn a_rejected_debit_is_retried_per_the_policy_and_a_revoked_mandate_fails_the_next() {
    let app = TestApp::spawn();
    let mut w = world(&app, "ap-sepa-rej", 1);
    let invoice = due_today(&app, &w, 3000);
    assert_eq!(jobs_debit(&app).collections, 1);
    later(&app, &mut w, 1);
    jobs_debit(&app);
    let first = payments(&app, &w, &invoice)[0]["collection_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(collection(&app, &w, &first)["status"], "presented");

    // Rejected: the payment fails, the invoice stays due, the account too.
    let c = ok(
        result(
            &app,
            &w,
            &first,
            json!({"outcome": "rejected", "reason": "AM04"}),
        ),
        200,
    );
    assert_eq!(c["status"], "rejected");
    let p = payments(&app, &w, &invoice);
    assert_eq!(
        (p[0]["status"].as_str(), p[0]["failure_code"].as_str()),
        (Some("failed"), Some("debit_rejected"))
    );
    let inv = get(&app, &w, &format!("/v1/admin/invoices/{invoice}"));
    assert_eq!(inv["amount_paid"], 0);
    assert_eq!(inv["status"], "overdue", "{inv}");
    assert_eq!(balance(&app, &w), 0);
    let notes = ok(
        send(&app, "GET", "/v1/me/notifications", &w.token, None),
        200,
    );
    assert!(
        notes["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "invoice.payment_failed"),
        "{notes}"
    );

    // The default policy: one retry, three days after the refusal.
    assert_eq!(jobs_debit(&app).collections, 0);
    later(&app, &mut w, 3);
    assert_eq!(jobs_debit(&app).collections, 1);
    let p = payments(&app, &w, &invoice);
    assert_eq!(p.len(), 2);
    let second = p.iter().find(|p| p["status"] == "pending").unwrap()["collection_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(collection(&app, &w, &second)["sequence_type"], "RCUR");

    // Revoked before presentation: the collection is cancelled, the
    // payment failed (not a refusal), and autopay no longer uses it.
    ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/mandates/{}/revocation", w.mandate_id),
            &w.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(collection(&app, &w, &second)["status"], "cancelled");
    let p = payments(&app, &w, &invoice);
    assert!(p.iter().all(|p| p["status"] == "failed"), "{p:?}");
    assert!(
        p.iter()
            .any(|p| p["failure_code"] == "collection_cancelled"),
        "{p:?}"
    );
    assert_eq!(events(&app, &w, "invoice.payment_failed").len(), 2);
    later(&app, &mut w, 3);
    let after = jobs_debit(&app);
    assert_eq!(after.collections, 0, "{after:?}");
    assert_eq!(collections_of_mandate(&app, &w).len(), 2);
    // The customer can pay it by card now.
    let card = sandbox_token(test_cards::VISA, 12, 2030).0;
    let res = app
        .request("POST", &format!("/v1/me/invoices/{invoice}/payments"))
        .bearer(&w.token)
        .header("Idempotency-Key", "pay-after-revocation")
        .json(&json!({"card_token": card}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["invoice"]["status"], "paid");
}

#[test]
fn a_mandate_expiring_before_presentation_cancels_the_debit_and_fails_the_payment() {
    let app = TestApp::spawn();
    // Signed 37 months ago and never used: the SEPA step of the same run
    // expires it (36 months without a collection).
    let signed_at = app.clock.now() - chrono::Duration::days(37 * 31);
    let w = world_signed(&app, "ap-sepa-exp", 2, signed_at);
    let invoice = due_today(&app, &w, 2500);
    let report = jobs_debit(&app);
    assert_eq!(report.collections, 1, "{report:?}");
    let p = payments(&app, &w, &invoice);
    assert_eq!(
        (p[0]["status"].as_str(), p[0]["failure_code"].as_str()),
        (Some("failed"), Some("collection_cancelled")),
        "{p:?}"
    );
    let col = p[0]["collection_id"].as_str().unwrap();
    assert_eq!(collection(&app, &w, col)["status"], "cancelled");
    let failed = events(&app, &w, "invoice.payment_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["actor"], "system");
    let inv = get(&app, &w, &format!("/v1/admin/invoices/{invoice}"));
    assert_eq!(inv["amount_paid"], 0);
    // Autopay no longer uses the expired mandate.
    assert_eq!(jobs_debit(&app).collections, 0);
}
