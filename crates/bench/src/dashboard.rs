//! The `dashboard_vs_me` scenario: `GET /v1/me/dashboard` for the demo
//! customer holding 20 shared documents, 5 conversations and 50
//! notifications, in turns with `GET /v1/me` (same token, same server).
//!
//! Everything is made through the API, as the business and the customer
//! would: the demo admin shares the 20 documents (20 `document.shared`
//! notifications), the customer opens 5 conversations, the admin answers
//! each 6 times (30 `message.answered` notifications).

use crate::http::RequestSpec;
use crate::scenarios::{Setup, login, string_field};

pub const DOCUMENTS: usize = 20;
pub const CONVERSATIONS: usize = 5;
/// Answers per conversation: with the documents' notifications, 50.
pub const ANSWERS: usize = 6;
pub const NOTIFICATIONS: usize = DOCUMENTS + CONVERSATIONS * ANSWERS;

/// A small real PDF (what the dashboard lists does not depend on its size).
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn token(answer: &serde_json::Value, what: &str) -> Result<String, String> {
    string_field(answer, "access_token", what)
}

fn id(answer: &serde_json::Value, what: &str) -> Result<String, String> {
    string_field(answer, "id", what)
}

/// Fills the demo customer's portal; the two requests to compare:
/// `GET /v1/me/dashboard` and `GET /v1/me`, with one token.
pub fn prepare(setup: &mut Setup<'_>) -> Result<(RequestSpec, RequestSpec), String> {
    let sign_in = login(setup)?;
    let customer = token(
        &setup.send(&sign_in)?.expect(200)?.json()?,
        "customer login",
    )?;
    let me = RequestSpec::get("/v1/me").bearer(&customer);
    let customer_id = id(&setup.send(&me)?.expect(200)?.json()?, "GET /v1/me")?;
    let staff_login = crate::scenarios::staff_login();
    let admin = token(
        &setup.send(&staff_login)?.expect(200)?.json()?,
        "staff login",
    )?;
    for i in 0..DOCUMENTS {
        let mut share = RequestSpec::new(
            "POST",
            &format!("/v1/admin/customers/{customer_id}/documents?title=Compte%20rendu%20{i}"),
        )
        .bearer(&admin)
        .header("Content-Type", "application/pdf");
        share.body = Some(PDF.to_vec());
        setup
            .send(&share)?
            .expect(201)
            .map_err(|e| format!("sharing a document: {e}"))?;
    }
    for i in 0..CONVERSATIONS {
        let open = RequestSpec::json(
            "POST",
            "/v1/me/conversations",
            &serde_json::json!({"subject": format!("Question {i}"), "body": "Bonjour"}),
        )
        .bearer(&customer);
        let conversation = id(
            &setup
                .send(&open)?
                .expect(201)
                .map_err(|e| format!("opening a conversation: {e}"))?
                .json()?,
            "POST /v1/me/conversations",
        )?;
        for j in 0..ANSWERS {
            let answer = RequestSpec::json(
                "POST",
                &format!("/v1/admin/conversations/{conversation}/messages"),
                &serde_json::json!({"body": format!("Réponse {j}")}),
            )
            .bearer(&admin);
            setup
                .send(&answer)?
                .expect(201)
                .map_err(|e| format!("answering: {e}"))?;
        }
    }
    let dashboard = RequestSpec::get("/v1/me/dashboard").bearer(&customer);
    let d = setup.send(&dashboard)?.expect(200)?.json()?;
    let count = |v: &serde_json::Value| v.as_i64().unwrap_or(-1);
    let seen = (
        count(&d["new_documents"]["count"]),
        count(&d["messages"]["conversation_count"]),
        count(&d["notifications"]["unread_count"]),
    );
    // The demo may have notified the customer before: at least ours.
    if seen.0 != DOCUMENTS as i64 || seen.1 != CONVERSATIONS as i64 || seen.2 < NOTIFICATIONS as i64
    {
        return Err(format!(
            "the dashboard shows {seen:?} (new documents, conversations with unread answers, \
             unread notifications), expected ({DOCUMENTS}, {CONVERSATIONS}, >= {NOTIFICATIONS})"
        ));
    }
    Ok((dashboard, me))
}
