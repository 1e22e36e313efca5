//! What a preview session sends: no SMS, and e-mails to the staff member
//! previewing only — never to the business's contact address for the test
//! customer's messages, never to the test customer's own address, whoever
//! causes the message.

use chrono::NaiveDate;
use guichet_store::repo::{customers, outbox};
use guichet_tests::outbox::Delivered;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

const CONTACT: &str = "accueil@kine.example";

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    res.json()
}

fn to(emails: &[Delivered], address: &str) -> Vec<Delivered> {
    emails
        .iter()
        .filter(|m| m.to.contains(address))
        .cloned()
        .collect()
}

/// The test customer's own address (`GET /v1/me` shows it masked).
fn address_of(app: &TestApp, org_id: &str, customer_id: &str) -> String {
    let mut conn = app.store.conn().unwrap();
    let address = customers::get(&mut conn, org_id, customer_id)
        .unwrap()
        .email;
    assert!(address.ends_with(".invalid"), "{address}");
    address
}

fn settings() -> Value {
    json!({
        "slug": "kine",
        "actions": [
            {"action": "documents", "enabled": true},
            {"action": "messages", "enabled": true},
            {"action": "payments", "enabled": true},
            {"action": "bookings", "enabled": true}
        ],
        "sign_in_methods": "code",
        "branding": {"display_name": "Cabinet Martin", "contact_email": CONTACT}
    })
}

#[test]
fn a_preview_sends_no_sms_and_e_mails_only_the_staff_member() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (_, anne) = app.registered_customer(&org, "anne@example.com", Some("+33612345678"));
    ok(
        app.request("PUT", "/v1/admin/portal/settings")
            .bearer(&org.admin)
            .json(&settings())
            .send(),
        200,
    );
    let p = ok(
        app.request("POST", "/v1/admin/portal/preview-session")
            .bearer(&org.admin)
            .send(),
        201,
    );
    let token = p["access_token"].as_str().unwrap().to_owned();
    let test_customer = p["customer"]["id"].as_str().unwrap().to_owned();
    let test_address = address_of(&app, &org.id, &test_customer);
    let sms_before = app.sms().len();

    // The preview writes to the business: the staff member is told, not
    // the business's contact address.
    let conv = ok(
        app.request("POST", "/v1/me/conversations")
            .bearer(&token)
            .json(&json!({"subject": "Essai", "body": "Message de test"}))
            .send(),
        201,
    );
    let conv = conv["id"].as_str().unwrap().to_owned();
    let emails = app.emails_once_sent();
    assert!(to(&emails, CONTACT).is_empty(), "{emails:?}");
    let staff = to(&emails, &org.admin_email);
    assert_eq!(staff.len(), 1, "{emails:?}");
    assert!(
        staff[0]
            .body
            .contains(&format!("/v1/admin/conversations/{conv}"))
    );

    // Staff answer the test customer: a notification flagged test, and no
    // e-mail to the test customer's address.
    ok(
        app.request("POST", &format!("/v1/admin/conversations/{conv}/messages"))
            .bearer(&org.admin)
            .json(&json!({"body": "Réponse de test"}))
            .send(),
        201,
    );
    let notes = ok(
        app.request("GET", "/v1/me/notifications")
            .bearer(&token)
            .send(),
        200,
    );
    assert_eq!(notes["data"][0]["kind"], "message.answered");
    assert_eq!(notes["data"][0]["test"], true);

    // A card change in the preview: its confirmation goes to the staff
    // member.
    let first = NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
    let order = app.seed_order(&org.id, &test_customer, 9000, 3, first, "4242424242424242");
    let card = ok(
        app.request("POST", "/v1/sandbox/card-tokens")
            .json(&json!({"number": "5555555555554444", "exp_month": 12, "exp_year": 2030, "cvc": "123"}))
            .send(),
        201,
    );
    ok(
        app.request("PUT", &format!("/v1/me/schedules/{order}/card"))
            .bearer(&token)
            .json(&json!({"card_token": card["token"]}))
            .send(),
        200,
    );
    let emails = app.emails_once_sent();
    assert_eq!(to(&emails, &org.admin_email).len(), 2, "{emails:?}");
    assert!(to(&emails, &test_address).is_empty(), "{emails:?}");
    assert!(to(&emails, CONTACT).is_empty(), "{emails:?}");
    assert_eq!(app.sms().len(), sms_before, "{:?}", app.sms());

    // A real customer's message still reaches the contact address.
    ok(
        app.request("POST", "/v1/me/conversations")
            .bearer(&anne.access)
            .json(&json!({"subject": "Vrai", "body": "Bonjour"}))
            .send(),
        201,
    );
    assert_eq!(to(&app.emails_once_sent(), CONTACT).len(), 1);
}

#[test]
fn nothing_is_queued_for_the_test_customer_s_own_address() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let p = ok(
        app.request("POST", "/v1/admin/portal/preview-session")
            .bearer(&org.admin)
            .send(),
        201,
    );
    let address = &address_of(&app, &org.id, p["customer"]["id"].as_str().unwrap());
    let message = |recipient: &str| outbox::Message {
        id: guichet_domain::ids::new_id("msg"),
        org_id: Some(org.id.clone()),
        channel: "email".into(),
        recipient: recipient.into(),
        subject: "s".into(),
        body: "b".into(),
        template: "t".into(),
        attempts: 0,
        created_at: guichet_domain::Clock::now(&app.clock),
    };
    app.emails_once_sent();
    let mut conn = app.store.conn().unwrap();
    // A job or a staff action writing to the test customer: not queued.
    outbox::enqueue(&mut conn, &message(address)).unwrap();
    assert_eq!(outbox::pending_count(&mut conn).unwrap(), 0);
    outbox::enqueue_with_attachments(
        &mut conn,
        &message(address),
        &[outbox::Attachment {
            filename: "a.pdf".into(),
            content_type: "application/pdf".into(),
            content: b"%PDF-1.4".to_vec(),
            render: None,
        }],
    )
    .unwrap();
    assert_eq!(outbox::pending_count(&mut conn).unwrap(), 0);
    // Anyone else's is.
    outbox::enqueue(&mut conn, &message("anne@example.com")).unwrap();
    drop(conn);
    let emails = app.emails_once_sent();
    assert_eq!(to(&emails, "anne@example.com").len(), 1, "{emails:?}");
    assert!(to(&emails, address).is_empty(), "{emails:?}");
}
