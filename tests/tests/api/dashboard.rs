//! The dashboard's documents and messages sections: new documents (shared,
//! not opened), conversations with unread answers from the business, each
//! present only while its action is on for the customer, and never counting
//! another customer's.

use chrono::Duration;
use guichet_tests::identity::Org;
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

use crate::documents::{PDF, share};

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    res.json()
}

fn dashboard(app: &TestApp, token: &str) -> Value {
    ok(
        app.request("GET", "/v1/me/dashboard").bearer(token).send(),
        200,
    )
}

fn shared(app: &TestApp, org: &Org, customer: &str, title: &str) -> String {
    let res = share(app, &org.admin, customer, title, "application/pdf", PDF);
    ok(res, 201)["id"].as_str().unwrap().to_owned()
}

fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Value {
    ok(
        app.request("POST", path).bearer(token).json(body).send(),
        201,
    )
}

fn settings(documents: bool, messages: bool) -> Value {
    json!({
        "slug": "dash",
        "actions": [
            {"action": "documents", "enabled": documents},
            {"action": "messages", "enabled": messages},
            {"action": "payments", "enabled": true},
            {"action": "bookings", "enabled": true}
        ],
        "sign_in_methods": "both",
        "branding": {"display_name": "Cabinet Martin"}
    })
}

fn put(app: &TestApp, token: &str, path: &str, body: &Value) {
    ok(
        app.request("PUT", path).bearer(token).json(body).send(),
        200,
    );
}

#[test]
fn new_documents_are_those_shared_and_not_yet_opened() {
    let app = TestApp::spawn();
    let org = app.org("dash");
    let (anne, anne_t) = app.registered_customer(&org, "anne@example.com", None);
    let (bob, bob_t) = app.registered_customer(&org, "bob@example.com", None);

    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["new_documents"], json!({"count": 0, "latest": []}), "{d}");

    let first = shared(&app, &org, &anne, "Bilan");
    app.clock.advance(Duration::minutes(1));
    let second = shared(&app, &org, &anne, "Ordonnance");
    shared(&app, &org, &bob, "Facture de Bob");
    // Anne's own attachment to a message is not a shared document.
    let att = app
        .request("POST", "/v1/me/attachments?title=Scan")
        .bearer(&anne_t.access)
        .header("Content-Type", "application/pdf")
        .body(PDF.to_vec())
        .send();
    assert_eq!(att.status, 201, "{}", att.text());

    let d = dashboard(&app, &anne_t.access);
    let docs = &d["new_documents"];
    assert_eq!(docs["count"], 2, "{d}");
    let latest = docs["latest"].as_array().unwrap();
    assert_eq!(latest.len(), 2, "{d}");
    assert_eq!(latest[0]["id"], second.as_str());
    assert_eq!(latest[0]["title"], "Ordonnance");
    assert_eq!(latest[0]["content_type"], "application/pdf");
    assert_eq!(latest[0]["size"], PDF.len());
    assert_eq!(
        latest[0]["link"],
        format!("/v1/me/documents/{second}/content")
    );
    assert_eq!(latest[1]["id"], first.as_str());
    assert_eq!(dashboard(&app, &bob_t.access)["new_documents"]["count"], 1);

    // Opened: no longer new. Withdrawn: no longer there.
    let file = app
        .request("GET", latest[0]["link"].as_str().unwrap())
        .bearer(&anne_t.access)
        .send();
    assert_eq!(file.status, 200, "{}", file.text());
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["new_documents"]["count"], 1, "{d}");
    assert_eq!(d["new_documents"]["latest"][0]["id"], first.as_str());
    let res = app
        .request("DELETE", &format!("/v1/admin/documents/{first}"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["new_documents"], json!({"count": 0, "latest": []}), "{d}");

    // Five listed at most; the count says how many.
    for i in 0..6 {
        shared(&app, &org, &anne, &format!("Séance {i}"));
    }
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["new_documents"]["count"], 6, "{d}");
    assert_eq!(d["new_documents"]["latest"].as_array().unwrap().len(), 5);
    assert_eq!(dashboard(&app, &bob_t.access)["new_documents"]["count"], 1);
}

#[test]
fn unread_messages_are_the_business_answers_not_yet_read() {
    let app = TestApp::spawn();
    let org = app.org("dash");
    let (_, anne_t) = app.registered_customer(&org, "anne@example.com", None);
    let (_, bob_t) = app.registered_customer(&org, "bob@example.com", None);
    let empty = json!({"unread_count": 0, "conversation_count": 0, "conversations": []});

    let conv = post(
        &app,
        "/v1/me/conversations",
        &anne_t.access,
        &json!({"subject": "Rendez-vous", "body": "Bonjour"}),
    );
    let id = conv["id"].as_str().unwrap().to_owned();
    // Her own message is not unread for her.
    assert_eq!(dashboard(&app, &anne_t.access)["messages"], empty);

    let other = post(
        &app,
        "/v1/me/conversations",
        &anne_t.access,
        &json!({"subject": "Facture", "body": "Une question"}),
    );
    let other = other["id"].as_str().unwrap().to_owned();
    let bobs = post(
        &app,
        "/v1/me/conversations",
        &bob_t.access,
        &json!({"subject": "Bob", "body": "Bonjour"}),
    );
    let bobs = bobs["id"].as_str().unwrap().to_owned();
    for (conv, body) in [(&id, "Mardi 10 h ?"), (&id, "Ou jeudi."), (&bobs, "Oui")] {
        post(
            &app,
            &format!("/v1/admin/conversations/{conv}/messages"),
            &org.admin,
            &json!({"body": body}),
        );
    }
    app.clock.advance(Duration::minutes(1));
    post(
        &app,
        &format!("/v1/admin/conversations/{other}/messages"),
        &org.admin,
        &json!({"body": "Envoyée hier."}),
    );

    let d = dashboard(&app, &anne_t.access);
    let m = &d["messages"];
    assert_eq!(m["unread_count"], 3, "{d}");
    assert_eq!(m["conversation_count"], 2, "{d}");
    let convs = m["conversations"].as_array().unwrap();
    assert_eq!(convs[0]["id"], other.as_str(), "{d}");
    assert_eq!(convs[0]["unread"], 1);
    assert_eq!(convs[0]["subject"], "Facture");
    assert_eq!(convs[0]["status"], "open");
    assert_eq!(convs[0]["link"], format!("/v1/me/conversations/{other}"));
    assert_eq!(convs[1]["id"], id.as_str());
    assert_eq!(convs[1]["unread"], 2);
    // Bob's one unread answer is his alone.
    let b = dashboard(&app, &bob_t.access);
    assert_eq!(b["messages"]["unread_count"], 1, "{b}");
    assert_eq!(b["messages"]["conversations"][0]["id"], bobs.as_str());

    // Read: gone from the section.
    let res = app
        .request("POST", &format!("/v1/me/conversations/{id}/read"))
        .bearer(&anne_t.access)
        .send();
    assert_eq!(res.status, 204, "{}", res.text());
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["messages"]["unread_count"], 1, "{d}");
    assert_eq!(d["messages"]["conversations"][0]["id"], other.as_str());
    // A closed conversation's unread answer still shows.
    ok(
        app.request("POST", &format!("/v1/admin/conversations/{other}/close"))
            .bearer(&org.admin)
            .send(),
        200,
    );
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["messages"]["conversations"][0]["status"], "closed", "{d}");
}

#[test]
fn sections_of_actions_turned_off_are_absent() {
    let app = TestApp::spawn();
    let org = app.org("dash");
    let (anne, anne_t) = app.registered_customer(&org, "anne@example.com", None);
    let (_, bob_t) = app.registered_customer(&org, "bob@example.com", None);
    shared(&app, &org, &anne, "Bilan");

    // Off for the organization: absent at once from open sessions.
    put(
        &app,
        &org.admin,
        "/v1/admin/portal/settings",
        &settings(false, false),
    );
    for t in [&anne_t.access, &bob_t.access] {
        let d = dashboard(&app, t);
        assert!(d.get("new_documents").is_none(), "{d}");
        assert!(d.get("messages").is_none(), "{d}");
        assert!(d.get("amount_due").is_some(), "{d}");
        assert!(d.get("notifications").is_some(), "{d}");
    }

    // Anne's override turns documents back on for her alone.
    let overrides = format!("/v1/admin/customers/{anne}/portal-settings");
    put(&app, &org.admin, &overrides, &json!({"documents": true}));
    let d = dashboard(&app, &anne_t.access);
    assert_eq!(d["new_documents"]["count"], 1, "{d}");
    assert!(d.get("messages").is_none(), "{d}");
    assert!(
        dashboard(&app, &bob_t.access)
            .get("new_documents")
            .is_none()
    );

    // On for everyone, off for Anne by her override.
    put(
        &app,
        &org.admin,
        "/v1/admin/portal/settings",
        &settings(true, true),
    );
    put(
        &app,
        &org.admin,
        &overrides,
        &json!({"documents": false, "messages": false}),
    );
    let d = dashboard(&app, &anne_t.access);
    assert!(d.get("new_documents").is_none(), "{d}");
    assert!(d.get("messages").is_none(), "{d}");
    let b = dashboard(&app, &bob_t.access);
    assert_eq!(b["new_documents"]["count"], 0, "{b}");
    assert_eq!(b["messages"]["unread_count"], 0, "{b}");
}
