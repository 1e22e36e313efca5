//! Messages: a customer writes with attachments, staff answer, close,
//! reopen and assign; read markers; the hourly limit under concurrency;
//! isolation and bad input.

use guichet_tests::TestApp;
use serde_json::{Value, json};

const PDF: &[u8] = b"%PDF-1.4\n%%EOF\n";

fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> guichet_tests::Response {
    app.request("POST", path).bearer(token).json(body).send()
}

#[test]
fn a_conversation_from_start_to_close() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (customer, tokens) = app.registered_customer(&org, "lea@example.com", None);

    let att = app
        .request("POST", "/v1/me/attachments?title=Ordonnance")
        .bearer(&tokens.access)
        .header("Content-Type", "application/pdf")
        .body(PDF.to_vec())
        .send();
    assert_eq!(att.status, 201, "{}", att.text());
    let att_id = att.json()["id"].as_str().unwrap().to_owned();
    app.request("POST", "/v1/me/attachments?title=Virus")
        .bearer(&tokens.access)
        .body(b"MZ\x90\x00".to_vec())
        .send()
        .assert_problem(415, "unsupported_media_type");

    let res = post(
        &app,
        "/v1/me/conversations",
        &tokens.access,
        &json!({
            "subject": "Rendez-vous", "body": "Bonjour, voici mon ordonnance.", "attachments": [att_id]
        }),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let conv = res.json();
    let id = conv["id"].as_str().unwrap().to_owned();
    assert_eq!(conv["status"], "open");
    assert_eq!(conv["messages"][0]["attachments"][0]["id"], att_id.as_str());
    // An attachment is used once.
    post(
        &app,
        &format!("/v1/me/conversations/{id}/messages"),
        &tokens.access,
        &json!({"body": "encore", "attachments": [att_id]}),
    )
    .assert_problem(400, "invalid_field");

    // Staff see it, unread, and answer.
    let list = app
        .request("GET", "/v1/admin/conversations?status=open")
        .bearer(&org.admin)
        .send();
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["unread"], 1);
    let by_customer = app
        .request(
            "GET",
            &format!("/v1/admin/conversations?customer={customer}"),
        )
        .bearer(&org.admin)
        .send()
        .json();
    assert_eq!(by_customer["data"].as_array().unwrap().len(), 1);
    app.request("GET", "/v1/admin/conversations?status=pending")
        .bearer(&org.admin)
        .send()
        .assert_problem(400, "invalid_parameter");
    // Staff read the attachment.
    let file = app
        .request("GET", &format!("/v1/admin/documents/{att_id}/content"))
        .bearer(&org.admin)
        .send();
    assert_eq!(file.body, PDF);

    let res = post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &org.admin,
        &json!({"body": "Bien reçu, à mardi."}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["author"], "staff");
    let mine = app
        .request("GET", &format!("/v1/me/conversations/{id}"))
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(mine["messages"].as_array().unwrap().len(), 2);
    assert_eq!(mine["unread"], 1);
    assert!(mine.get("assigned_staff_id").is_none());
    let res = app
        .request("POST", &format!("/v1/me/conversations/{id}/read"))
        .bearer(&tokens.access)
        .send();
    assert_eq!(res.status, 204);
    let mine = app
        .request("GET", "/v1/me/conversations")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(mine["data"][0]["unread"], 0);

    // Assign, close, reopen.
    let me = app
        .request("GET", "/v1/admin/staff")
        .bearer(&org.admin)
        .send()
        .json();
    let staff_id = me["data"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .request("PUT", &format!("/v1/admin/conversations/{id}/assignee"))
        .bearer(&org.admin)
        .json(&json!({"staff_id": staff_id}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["assigned_staff_id"], staff_id.as_str());
    let res = app
        .request("PUT", &format!("/v1/admin/conversations/{id}/assignee"))
        .bearer(&org.admin)
        .json(&json!({"staff_id": "stf_nobody"}))
        .send();
    res.assert_problem(422, "invalid_field");
    let res = app
        .request("PUT", &format!("/v1/admin/conversations/{id}/assignee"))
        .bearer(&org.admin)
        .json(&json!({"staff_id": null, "x": 1}))
        .send();
    res.assert_problem(400, "unknown_field");
    let res = app
        .request("POST", &format!("/v1/admin/conversations/{id}/close"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.json()["status"], "closed");
    post(
        &app,
        &format!("/v1/me/conversations/{id}/messages"),
        &tokens.access,
        &json!({"body": "Et ensuite ?"}),
    )
    .assert_problem(409, "conversation_closed");
    post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &org.admin,
        &json!({"body": "x"}),
    )
    .assert_problem(409, "conversation_closed");
    let res = app
        .request("POST", &format!("/v1/admin/conversations/{id}/reopen"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.json()["status"], "open");
    assert_eq!(
        post(
            &app,
            &format!("/v1/me/conversations/{id}/messages"),
            &tokens.access,
            &json!({"body": "Merci"})
        )
        .status,
        201
    );

    // Events.
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct T {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_type: String,
    }
    let mut conn = app.store.conn().unwrap();
    let types: Vec<String> = diesel::sql_query("SELECT event_type FROM events")
        .load::<T>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|t| t.event_type)
        .collect();
    for t in [
        "conversation.created",
        "message.created",
        "conversation.closed",
        "conversation.reopened",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
}

#[test]
fn bad_input_isolation_and_authorization() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (_, tokens) = app.registered_customer(&org, "lea@example.com", None);
    let (_, neighbour) = app.registered_customer(&org, "max@example.com", None);
    let other = app.org("other");

    for body in [
        json!({"subject": "S"}),
        json!({"subject": "S", "body": "B", "colour": "red"}),
        json!({"subject": 3, "body": "B"}),
        json!({"subject": "   ", "body": "B"}),
        json!({"subject": "S", "body": "x".repeat(10_001)}),
        json!({"subject": "S", "body": "a\u{0}b"}),
        json!({"subject": "S", "body": "B", "attachments": ["a", "b", "c", "d", "e", "f"]}),
        json!({"subject": "S", "body": "B", "attachments": ["doc_unknown"]}),
    ] {
        let res = post(&app, "/v1/me/conversations", &tokens.access, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    let res = app
        .request("POST", "/v1/me/conversations")
        .bearer(&tokens.access)
        .header("Content-Type", "application/json")
        .body(b"{".to_vec())
        .send();
    assert_eq!(res.status, 400);
    let list = app
        .request("GET", "/v1/me/conversations")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing stored");
    // 10 000 characters exactly is fine.
    let res = post(
        &app,
        "/v1/me/conversations",
        &tokens.access,
        &json!({"subject": "S", "body": "é".repeat(10_000)}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();

    // Another customer, another organization: 404.
    app.request("GET", &format!("/v1/me/conversations/{id}"))
        .bearer(&neighbour.access)
        .send()
        .assert_problem(404, "not_found");
    post(
        &app,
        &format!("/v1/me/conversations/{id}/messages"),
        &neighbour.access,
        &json!({"body": "x"}),
    )
    .assert_problem(404, "not_found");
    app.request("GET", &format!("/v1/admin/conversations/{id}"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &other.admin,
        &json!({"body": "x"}),
    )
    .assert_problem(404, "not_found");
    app.request("POST", &format!("/v1/admin/conversations/{id}/close"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    let theirs = app
        .request("GET", "/v1/admin/conversations")
        .bearer(&other.admin)
        .send()
        .json();
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0);
    // Customer on admin routes, staff on customer routes, no token.
    app.request("GET", "/v1/admin/conversations")
        .bearer(&tokens.access)
        .send()
        .assert_problem(403, "forbidden");
    post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &tokens.access,
        &json!({"body": "x"}),
    )
    .assert_problem(403, "forbidden");
    app.request("GET", "/v1/me/conversations")
        .bearer(&org.admin)
        .send()
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.request("GET", "/v1/me/conversations").send().status,
        401
    );
    assert_eq!(
        app.request("POST", "/v1/me/conversations")
            .json(&json!({"subject": "S", "body": "B"}))
            .send()
            .status,
        401
    );
    assert_eq!(
        app.request("GET", "/v1/admin/conversations").send().status,
        401
    );
}

#[test]
fn customer_messages_are_limited_to_20_an_hour_even_at_once() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (_, tokens) = app.registered_customer(&org, "lea@example.com", None);
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..26)
            .map(|i| {
                let (app, token) = (&app, &tokens.access);
                s.spawn(move || {
                    let res = post(
                        app,
                        "/v1/me/conversations",
                        token,
                        &json!({"subject": format!("S{i}"), "body": "B"}),
                    );
                    (res.status, res.header("retry-after").map(str::to_owned))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 201).count(),
        20,
        "{statuses:?}"
    );
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(limited.len(), 6, "{statuses:?}");
    assert!(
        limited
            .iter()
            .all(|(_, r)| r.as_deref().is_some_and(|r| r.parse::<u64>().unwrap() > 0))
    );
    let list = app
        .request("GET", "/v1/me/conversations?limit=100")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 20);
    // An hour later, writing works again.
    app.clock.advance(chrono::Duration::minutes(61));
    let fresh = app.login(&org, "lea@example.com", guichet_tests::identity::PASSWORD);
    assert_eq!(fresh.status, 200, "{}", fresh.text());
    let access = fresh.json()["access_token"].as_str().unwrap().to_owned();
    let res = post(
        &app,
        "/v1/me/conversations",
        &access,
        &json!({"subject": "S", "body": "B"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
}

pub(crate) fn portal_settings(slug: &str, messages: bool, contact_email: Option<&str>) -> Value {
    let mut branding = json!({"display_name": "Cabinet Martin"});
    if let Some(e) = contact_email {
        branding["contact_email"] = json!(e);
    }
    json!({
        "slug": slug,
        "actions": [
            {"action": "messages", "enabled": messages},
            {"action": "documents", "enabled": true},
            {"action": "payments", "enabled": true},
            {"action": "bookings", "enabled": true}
        ],
        "sign_in_methods": "both",
        "branding": branding
    })
}

#[test]
fn messages_follow_the_portal_settings_and_each_side_is_told() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (lea, tokens) = app.registered_customer(&org, "lea@example.com", None);
    let (_, tom) = app.registered_customer(&org, "tom@example.com", None);
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings("msgs", true, Some("accueil@kine.example")))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());

    // A customer writes with an attachment: the business's contact address
    // gets a link, never the attachment nor the text.
    let att = app
        .request("POST", "/v1/me/attachments?title=Ordonnance")
        .bearer(&tokens.access)
        .header("Content-Type", "application/pdf")
        .body(PDF.to_vec())
        .send();
    assert_eq!(att.status, 201, "{}", att.text());
    let att_id = att.json()["id"].as_str().unwrap().to_owned();
    let res = post(
        &app,
        "/v1/me/conversations",
        &tokens.access,
        &json!({"subject": "Rendez-vous", "body": "Texte confidentiel", "attachments": [att_id]}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let to_business: Vec<_> = app
        .emails_once_sent()
        .into_iter()
        .filter(|m| m.to.contains("accueil@kine.example"))
        .collect();
    assert_eq!(to_business.len(), 1, "{to_business:?}");
    let mail = &to_business[0];
    assert!(mail.attachments.is_empty());
    assert!(
        mail.body.contains(&format!("/v1/admin/conversations/{id}")),
        "{}",
        mail.body
    );
    assert!(!mail.body.contains("Texte confidentiel"));

    // Staff answer: a portal notification and an e-mail to the customer.
    let before = app.emails().len();
    let res = post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &org.admin,
        &json!({"body": "Bien reçu, à mardi."}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let notes = app
        .request("GET", "/v1/me/notifications?unread=true")
        .bearer(&tokens.access)
        .send();
    assert_eq!(notes.status, 200, "{}", notes.text());
    let notes = notes.json();
    assert_eq!(notes["data"][0]["kind"], "message.answered");
    assert_eq!(notes["data"][0]["object_id"], id.as_str());
    let emails = app.emails_once_sent();
    let to_lea: Vec<_> = emails[before..]
        .iter()
        .filter(|m| m.to.contains("lea@example.com"))
        .collect();
    assert_eq!(to_lea.len(), 1, "{to_lea:?}");
    assert!(
        to_lea[0]
            .body
            .contains(&format!("/v1/me/conversations/{id}"))
    );
    assert!(to_lea[0].subject.contains("Rendez-vous"));

    // Off for the organization: refused at once in the open session.
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings(
            "msgs",
            false,
            Some("accueil@kine.example"),
        ))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let list = |t: &str| app.request("GET", "/v1/me/conversations").bearer(t).send();
    list(&tokens.access).assert_problem(403, "portal_action_disabled");
    app.request("GET", &format!("/v1/me/conversations/{id}"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(403, "portal_action_disabled");
    post(
        &app,
        &format!("/v1/me/conversations/{id}/messages"),
        &tokens.access,
        &json!({"body": "encore"}),
    )
    .assert_problem(403, "portal_action_disabled");
    post(
        &app,
        "/v1/me/conversations",
        &tom.access,
        &json!({"subject": "S", "body": "B"}),
    )
    .assert_problem(403, "portal_action_disabled");

    // Back on for Léa alone by her override; Tom stays refused.
    let res = app
        .request("PUT", &format!("/v1/admin/customers/{lea}/portal-settings"))
        .bearer(&org.admin)
        .json(&json!({"messages": true}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(list(&tokens.access).status, 200);
    list(&tom.access).assert_problem(403, "portal_action_disabled");
    // And off for her alone while on for everyone.
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings("msgs", true, Some("accueil@kine.example")))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app
        .request("PUT", &format!("/v1/admin/customers/{lea}/portal-settings"))
        .bearer(&org.admin)
        .json(&json!({"messages": false}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    list(&tokens.access).assert_problem(403, "portal_action_disabled");
    assert_eq!(list(&tom.access).status, 200);
}

#[test]
fn without_a_contact_address_no_e_mail_is_sent_for_a_customer_message() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (_, tokens) = app.registered_customer(&org, "lea@example.com", None);
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings("msgs", true, None))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let before = app.emails_once_sent().len();
    let res = post(
        &app,
        "/v1/me/conversations",
        &tokens.access,
        &json!({"subject": "Rendez-vous", "body": "Bonjour"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(app.emails_once_sent().len(), before);
}

#[test]
fn conversation_lists_page_by_time_cursors_and_staff_answers_are_text_only() {
    let app = TestApp::spawn();
    let org = app.org("msgs");
    let (customer, tokens) = app.registered_customer(&org, "lea@example.com", None);
    let mut created = Vec::new();
    for n in 0..3 {
        let res = post(
            &app,
            "/v1/me/conversations",
            &tokens.access,
            &json!({"subject": format!("S{n}"), "body": "B"}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        created.push(res.json()["id"].as_str().unwrap().to_owned());
    }
    let cursor_shape = |c: &str| {
        let (micros, id) = c.split_once('.').expect("time.id");
        !micros.is_empty() && micros.bytes().all(|b| b.is_ascii_digit()) && id.starts_with("cnv_")
    };
    for (path, token) in [
        ("/v1/me/conversations".to_owned(), tokens.access.clone()),
        (
            format!("/v1/admin/conversations?customer={customer}"),
            org.admin.clone(),
        ),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let first = app
            .request("GET", &format!("{path}{sep}limit=2"))
            .bearer(&token)
            .send();
        assert_eq!(first.status, 200, "{}", first.text());
        let first = first.json();
        assert_eq!(first["data"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        assert!(cursor_shape(&cursor), "{cursor}");
        let second = app
            .request("GET", &format!("{path}{sep}limit=2&cursor={cursor}"))
            .bearer(&token)
            .send()
            .json();
        assert_eq!(second["data"].as_array().unwrap().len(), 1);
        assert!(second["next_cursor"].is_null());
        let mut seen: Vec<String> = first["data"]
            .as_array()
            .unwrap()
            .iter()
            .chain(second["data"].as_array().unwrap())
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        seen.sort();
        let mut want = created.clone();
        want.sort();
        assert_eq!(seen, want, "each conversation once, over the two pages");
        // Any string of the documented shape is a position; others are 400.
        let res = app
            .request("GET", &format!("{path}{sep}cursor=0.cnv_unknown"))
            .bearer(&token)
            .send();
        assert_eq!(res.status, 200, "{}", res.text());
        for bad in ["", "cnv_1", "x.cnv_1", "1.a%20b"] {
            app.request("GET", &format!("{path}{sep}cursor={bad}"))
                .bearer(&token)
                .send()
                .assert_problem(400, "invalid_parameter");
        }
    }
    app.request("GET", "/v1/admin/conversations?customer=0.5")
        .bearer(&org.admin)
        .send()
        .assert_problem(400, "invalid_parameter");

    // Staff answer with text; files go as shared documents.
    let id = &created[0];
    post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &org.admin,
        &json!({"body": "Voici", "attachments": []}),
    )
    .assert_problem(400, "unknown_field");
    let res = post(
        &app,
        &format!("/v1/admin/conversations/{id}/messages"),
        &org.admin,
        &json!({"body": "Voici"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
}
