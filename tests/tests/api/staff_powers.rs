//! Staff cannot become the customer: a contact changed by staff or an API
//! key for a customer with portal access waits for the customer's
//! confirmation; the customer's security history; the activation letter
//! only for a customer with no working access; and what staff can and
//! cannot do (docs/IDENTITY.md, "What staff can do to a customer's access").

use guichet_domain::Clock;
use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

const CUSTOMERS: &str = "/v1/admin/customers";
const CHANGES: &str = "/v1/me/contact-changes";
const EVENTS: &str = "/v1/me/security-events";

fn patch(app: &TestApp, token: &str, id: &str, body: &Value) -> Response {
    app.request("PATCH", &format!("{CUSTOMERS}/{id}"))
        .bearer(token)
        .json(body)
        .send()
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    }
}

fn get(app: &TestApp, path: &str, token: &str) -> Response {
    app.request("GET", path).bearer(token).send()
}

fn confirm(app: &TestApp, token: &str, id: &str, code: &str) -> Response {
    app.request("POST", &format!("{CHANGES}/{id}/confirmation"))
        .bearer(token)
        .json(&json!({"code": code}))
        .send()
}

fn api_key(app: &TestApp, org: &Org) -> String {
    let key = ok(
        app.request("POST", "/v1/admin/api-keys")
            .bearer(&org.admin)
            .json(&json!({"name": "back-office"}))
            .send(),
        201,
    );
    key["secret"].as_str().unwrap().to_owned()
}

/// An agent of `org`, signed in.
fn agent(app: &TestApp, org: &Org) -> String {
    let email = "agent@acme.example.com";
    ok(
        app.request("POST", "/v1/admin/staff")
            .bearer(&org.admin)
            .json(&json!({"email": email, "name": "Agent", "role": "agent"}))
            .send(),
        201,
    );
    let token = app.nth_message(email, 1).token().unwrap();
    let res = ok(
        app.request("POST", "/v1/auth/staff/setup")
            .json(&json!({"token": token, "password": PASSWORD}))
            .send(),
        200,
    );
    res["access_token"].as_str().unwrap().to_owned()
}

/// A customer who signed in by code only (no password): portal access
/// all the same.
fn code_only_customer(app: &TestApp, org: &Org, email: &str) -> (String, Tokens) {
    let id = app.customer(org, email, None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.wait_for_messages(email, 0).len();
    ok(
        app.request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": org.slug, "email": email}))
            .send(),
        202,
    );
    let code = app.nth_message(email, before + 1).code(6).unwrap();
    let res = ok(
        app.request("POST", "/v1/auth/otp/verify")
            .json(&json!({"organization": org.slug, "email": email, "code": code}))
            .send(),
        200,
    );
    (id, Tokens::from_json(&res))
}

fn events(app: &TestApp, token: &str) -> Vec<Value> {
    ok(get(app, &format!("{EVENTS}?limit=100"), token), 200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_email_changed_by_staff_is_pending_until_the_customer_confirms_it() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let agent = agent(&app, &org);
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    app.clock.advance(chrono::Duration::minutes(1));

    // The agent puts their own address on the customer.
    let view = ok(
        patch(
            &app,
            &agent,
            &id,
            &json!({"email": "agent.own@evil.example", "name": "Claire M."}),
        ),
        200,
    );
    assert_eq!(view["email"], "claire@example.com", "the old e-mail stays");
    assert_eq!(view["name"], "Claire M.", "other fields apply at once");
    let pending = view["pending_contact_changes"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["field"], "email");
    assert_eq!(pending[0]["value"], "agent.own@evil.example");
    let change_id = pending[0]["id"].as_str().unwrap().to_owned();

    // The new address gets the code; the old one is told.
    let code = app
        .nth_message("agent.own@evil.example", 1)
        .code(6)
        .unwrap();
    let notice = app.nth_message("claire@example.com", 2);
    assert!(notice.body.contains("a***@evil.example"), "{}", notice.body);
    assert!(!notice.body.contains(&code));

    // The pending address cannot sign in, nor receive a reset or a code.
    app.login(&org, "agent.own@evil.example", PASSWORD)
        .assert_problem(401, "invalid_credentials");
    ok(
        app.request("POST", "/v1/auth/password/forgot")
            .json(&json!({"organization": "acme", "email": "agent.own@evil.example"}))
            .send(),
        202,
    );
    ok(
        app.request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": "acme", "email": "agent.own@evil.example"}))
            .send(),
        202,
    );
    assert_eq!(app.messages_now("agent.own@evil.example").len(), 1);
    ok(app.login(&org, "claire@example.com", PASSWORD), 200);

    // The customer sees the request, masked, and confirms it.
    let list = ok(get(&app, CHANGES, &tokens.access), 200);
    assert_eq!(list["next_cursor"], Value::Null);
    assert_eq!(list["data"][0]["id"], change_id.as_str());
    assert_eq!(list["data"][0]["new_value"], "a***@evil.example");
    assert_eq!(list["data"][0]["requested_by"], "staff");
    assert!(!list.to_string().contains("agent.own"));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let problem =
        confirm(&app, &tokens.access, &change_id, wrong).assert_problem(422, "invalid_code");
    assert_eq!(problem["remaining_attempts"], 4);
    app.clock.advance(chrono::Duration::minutes(1));
    let done = ok(confirm(&app, &tokens.access, &change_id, &code), 200);
    assert_eq!(done["status"], "confirmed");
    confirm(&app, &tokens.access, &change_id, &code).assert_problem(404, "not_found");
    assert!(
        ok(get(&app, CHANGES, &tokens.access), 200)["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Now the new address is the login.
    app.clock.advance(chrono::Duration::minutes(1));
    ok(app.login(&org, "agent.own@evil.example", PASSWORD), 200);
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
    let view = ok(get(&app, &format!("{CUSTOMERS}/{id}"), &org.admin), 200);
    assert_eq!(view["email"], "agent.own@evil.example");
    assert!(
        view["pending_contact_changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The history, newest first, masked, without the code.
    let history = events(&app, &tokens.access);
    let kinds = types(&history);
    assert_eq!(kinds[0], "signed_in");
    assert!(kinds.contains(&"contact_change_confirmed".to_owned()));
    let requested = history
        .iter()
        .find(|e| e["type"] == "contact_change_requested")
        .unwrap();
    assert_eq!(requested["actor"], "staff");
    assert_eq!(requested["field"], "email");
    assert_eq!(requested["value"], "a***@evil.example");
    let text = Value::Array(history).to_string();
    assert!(!text.contains(&code) && !text.contains("agent.own") && !text.contains("claire@"));
}

#[test]
fn a_mobile_changed_by_an_api_key_for_a_code_only_customer_is_pending() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let key = api_key(&app, &org);
    let (id, tokens) = code_only_customer(&app, &org, "marc@example.com");

    let view = ok(
        patch(&app, &key, &id, &json!({"mobile": "+33698765432"})),
        200,
    );
    assert_eq!(view["mobile"], Value::Null);
    assert_eq!(view["pending_contact_changes"][0]["field"], "mobile");
    let code = app.nth_message("+33698765432", 1).code(6).unwrap();
    // No mobile before: the e-mail is told.
    let notice = app.nth_message("marc@example.com", 2);
    assert!(notice.body.contains("+33 6** ** ** 32"), "{}", notice.body);

    // A sign-in code still goes to the e-mail, never to the pending mobile.
    let sent = ok(
        app.request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": "acme", "email": "marc@example.com"}))
            .send(),
        202,
    );
    assert_eq!(sent["channel"], "email");
    assert_eq!(app.messages_now("+33698765432").len(), 1);

    let list = ok(get(&app, CHANGES, &tokens.access), 200);
    assert_eq!(list["data"][0]["requested_by"], "api_key");
    let change = list["data"][0]["id"].as_str().unwrap().to_owned();
    ok(confirm(&app, &tokens.access, &change, &code), 200);
    let sent = ok(
        app.request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": "acme", "email": "marc@example.com"}))
            .send(),
        202,
    );
    assert_eq!(sent["channel"], "sms");
    assert_eq!(app.wait_for_messages("+33698765432", 2).len(), 2);
}

#[test]
fn a_customer_without_access_is_edited_directly_and_it_is_recorded() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = app.customer(&org, "new@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = ok(
        patch(
            &app,
            &org.admin,
            &id,
            &json!({"email": "fixed@example.com", "mobile": "+33612345678"}),
        ),
        200,
    );
    assert_eq!(view["email"], "fixed@example.com");
    assert_eq!(view["mobile"], "+33612345678");
    assert!(
        view["pending_contact_changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(app.messages_now("fixed@example.com").is_empty());
    // The history keeps the change (masked), seen once the customer signs in.
    let mut conn = app.store.conn().unwrap();
    let recorded = guichet_store::repo::security_events::list(&mut conn, &id, None, 10).unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|e| e.kind
        == guichet_store::repo::security_events::Kind::ContactChanged
        && e.value.as_deref().is_some_and(|v| v.contains('*'))));
}

#[test]
fn a_pending_email_taken_meanwhile_or_already_used_is_409() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    app.customer(&org, "taken@example.com", None);
    patch(
        &app,
        &org.admin,
        &id,
        &json!({"email": "taken@example.com"}),
    )
    .assert_problem(409, "email_already_used");
    let view = ok(get(&app, &format!("{CUSTOMERS}/{id}"), &org.admin), 200);
    assert!(
        view["pending_contact_changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn confirmation_codes_are_limited_atomically_and_expire() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    ok(
        patch(&app, &org.admin, &id, &json!({"email": "next@example.com"})),
        200,
    );
    let code = app.nth_message("next@example.com", 1).code(6).unwrap();
    let change = ok(get(&app, CHANGES, &tokens.access), 200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };

    // 20 wrong codes at once: exactly 5 are compared.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| confirm(&app, &tokens.access, &change, wrong).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let compared = statuses.iter().filter(|s| **s == 422).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(compared + refused, 20, "{statuses:?}");
    assert_eq!(compared, 4, "{statuses:?}");
    // The right code no longer works: the change is void.
    confirm(&app, &tokens.access, &change, &code).assert_problem(429, "code_attempts_exceeded");
    ok(app.login(&org, "claire@example.com", PASSWORD), 200);

    // A new request, left 7 days: expired.
    ok(
        patch(
            &app,
            &org.admin,
            &id,
            &json!({"email": "later@example.com"}),
        ),
        200,
    );
    let code = app.nth_message("later@example.com", 1).code(6).unwrap();
    let mut conn = app.store.conn().unwrap();
    let pending = guichet_store::repo::contact_changes::pending(
        &mut conn,
        std::slice::from_ref(&id),
        app.clock.now(),
        None,
        10,
    )
    .unwrap();
    drop(conn);
    let change = pending[0].id.clone();
    app.clock.advance(chrono::Duration::days(7));
    let tokens = Tokens::from_json(&ok(app.login(&org, "claire@example.com", PASSWORD), 200));
    confirm(&app, &tokens.access, &change, &code).assert_problem(422, "code_expired");
    assert!(
        ok(get(&app, CHANGES, &tokens.access), 200)["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.login(&org, "later@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
}

#[test]
fn bad_confirmations_are_400_and_change_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    ok(
        patch(&app, &org.admin, &id, &json!({"email": "next@example.com"})),
        200,
    );
    let code = app.nth_message("next@example.com", 1).code(6).unwrap();
    let change = ok(get(&app, CHANGES, &tokens.access), 200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{CHANGES}/{change}/confirmation");
    for (body, code_expected) in [
        (b"{\"code\": ".to_vec(), "malformed_json"),
        (
            b"{\"code\": \"123456\", \"extra\": 1}".to_vec(),
            "unknown_field",
        ),
        (b"{\"code\": 123456}".to_vec(), "invalid_field"),
        (b"[\"123456\"]".to_vec(), "invalid_field"),
        (b"{\"code\": \"\"}".to_vec(), "invalid_field"),
        (
            b"{\"code\": \"12345678901234567\"}".to_vec(),
            "invalid_field",
        ),
        (b"{\"code\": \"12\\u00003456\"}".to_vec(), "invalid_field"),
        (b"{}".to_vec(), "invalid_field"),
    ] {
        app.request("POST", &path)
            .bearer(&tokens.access)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .assert_problem(400, code_expected);
    }
    // No attempt was used, nothing was confirmed.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let problem = confirm(&app, &tokens.access, &change, wrong).assert_problem(422, "invalid_code");
    assert_eq!(problem["remaining_attempts"], 4);
    assert_eq!(
        ok(get(&app, &format!("{CUSTOMERS}/{id}"), &org.admin), 200)["email"],
        "claire@example.com"
    );
}

#[test]
fn contact_changes_and_history_are_the_customers_own() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let (_, other) = app.registered_customer(&org, "paul@example.com", None);
    ok(
        patch(&app, &org.admin, &id, &json!({"email": "next@example.com"})),
        200,
    );
    let code = app.nth_message("next@example.com", 1).code(6).unwrap();
    let mut conn = app.store.conn().unwrap();
    let change = guichet_store::repo::contact_changes::pending(
        &mut conn,
        std::slice::from_ref(&id),
        app.clock.now(),
        None,
        10,
    )
    .unwrap()[0]
        .id
        .clone();
    drop(conn);

    // Another customer: 404, and sees none of it.
    confirm(&app, &other.access, &change, &code).assert_problem(404, "not_found");
    assert!(
        ok(get(&app, CHANGES, &other.access), 200)["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(!types(&events(&app, &other.access)).contains(&"contact_change_requested".into()));
    confirm(&app, &other.access, "cch_unknown", "123456").assert_problem(404, "not_found");
    // Staff tokens and API keys are not customers; no token is 401.
    let key = api_key(&app, &org);
    for token in [&org.admin, &key] {
        get(&app, CHANGES, token).assert_problem(403, "forbidden");
        get(&app, EVENTS, token).assert_problem(403, "forbidden");
        confirm(&app, token, &change, &code).assert_problem(403, "forbidden");
    }
    app.get(CHANGES).assert_problem(401, "unauthenticated");
    app.get(EVENTS).assert_problem(401, "unauthenticated");
    app.request("POST", &format!("{CHANGES}/{change}/confirmation"))
        .json(&json!({"code": code}))
        .send()
        .assert_problem(401, "unauthenticated");
    // The change is still pending.
    let view = ok(get(&app, &format!("{CUSTOMERS}/{id}"), &org.admin), 200);
    assert_eq!(view["pending_contact_changes"].as_array().unwrap().len(), 1);
}

#[test]
fn the_security_history_lists_each_kind_newest_first_and_pages() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let step = || app.clock.advance(chrono::Duration::minutes(1));
    step();
    let second = Tokens::from_json(&ok(app.login(&org, "claire@example.com", PASSWORD), 200));
    step();
    ok(
        app.request("DELETE", &format!("/v1/me/sessions/{}", second.session_id))
            .bearer(&tokens.access)
            .send(),
        204,
    );
    step();
    ok(
        app.request("PUT", "/v1/me/password")
            .bearer(&tokens.access)
            .json(&json!({"current_password": PASSWORD, "new_password": "Another-Horse-43!"}))
            .send(),
        204,
    );
    step();
    ok(
        patch(&app, &org.admin, &id, &json!({"mobile": "+33612345678"})),
        200,
    );
    step();
    ok(
        app.request("POST", &format!("{CUSTOMERS}/{id}/block"))
            .bearer(&org.admin)
            .send(),
        200,
    );
    step();
    ok(
        app.request("POST", &format!("{CUSTOMERS}/{id}/unblock"))
            .bearer(&org.admin)
            .send(),
        200,
    );
    step();
    let tokens = Tokens::from_json(&ok(
        app.login(&org, "claire@example.com", "Another-Horse-43!"),
        200,
    ));
    let all = events(&app, &tokens.access);
    assert_eq!(
        types(&all),
        [
            "signed_in",
            "unblocked",
            "blocked",
            "contact_change_requested",
            "password_changed",
            "session_ended",
            "signed_in",
            "signed_in",
        ]
    );
    assert_eq!(all[2]["actor"], "staff");
    assert_eq!(all[5]["session_id"], second.session_id.as_str());
    assert_eq!(all[0]["ip"], "127.0.0.1");
    let text = Value::Array(all.clone()).to_string();
    assert!(!text.contains("+33612345678") && !text.contains("Horse"));

    // Pages of 3 give the same events in the same order.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{EVENTS}?limit=3&cursor={c}"),
            None => format!("{EVENTS}?limit=3"),
        };
        let page = ok(get(&app, &path, &tokens.access), 200);
        paged.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=%%%",
        "cursor=bm9wZQ",
    ] {
        get(&app, &format!("{EVENTS}?{bad}"), &tokens.access)
            .assert_problem(400, "invalid_parameter");
    }
    get(&app, &format!("{EVENTS}?unknown=1"), &tokens.access)
        .assert_problem(400, "invalid_parameter");
}

#[test]
fn an_activation_letter_is_only_for_a_customer_with_no_working_access() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let letter = |id: &str| {
        app.request("POST", &format!("{CUSTOMERS}/{id}/activation-codes"))
            .bearer(&org.admin)
            .send()
    };
    // A registered customer, and one who signed in by code only: refused.
    let (registered, _) = app.registered_customer(&org, "claire@example.com", None);
    letter(&registered).assert_problem(409, "already_registered");
    let (code_only, _) = code_only_customer(&app, &org, "marc@example.com");
    letter(&code_only).assert_problem(409, "already_registered");

    // A letter issued before the customer got access no longer works
    // once they have it.
    let id = app.customer(&org, "lea@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = ok(letter(&id), 201)["activation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.wait_for_messages("lea@example.com", 0).len();
    ok(
        app.request("POST", "/v1/auth/otp/start")
            .json(&json!({"organization": "acme", "email": "lea@example.com"}))
            .send(),
        202,
    );
    let otp = app
        .nth_message("lea@example.com", before + 1)
        .code(6)
        .unwrap();
    ok(
        app.request("POST", "/v1/auth/otp/verify")
            .json(&json!({"organization": "acme", "email": "lea@example.com", "code": otp}))
            .send(),
        200,
    );
    app.request("POST", "/v1/auth/activate")
        .json(&json!({"organization": "acme", "email": "lea@example.com", "activation_code": code, "password": PASSWORD}))
        .send()
        .assert_problem(409, "already_registered");

    // A customer with no access at all: the letter works.
    let id = app.customer(&org, "tom@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = ok(letter(&id), 201)["activation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        app.request("POST", "/v1/auth/activate")
            .json(&json!({"organization": "acme", "email": "tom@example.com", "activation_code": code, "password": PASSWORD}))
            .send(),
        200,
    );
}

#[test]
fn staff_can_never_set_read_or_reset_a_password_nor_get_a_customer_token() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let key = api_key(&app, &org);
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    for token in [&org.admin, &key] {
        // No password field to write...
        patch(&app, token, &id, &json!({"password": "Staff-Chosen-42!"}))
            .assert_problem(400, "unknown_field");
        app.request("POST", CUSTOMERS)
            .bearer(token)
            .json(&json!({"name": "X", "email": "x@example.com", "password": "Staff-Chosen-42!"}))
            .send()
            .assert_problem(400, "unknown_field");
        // ...or to read.
        let view = ok(get(&app, &format!("{CUSTOMERS}/{id}"), token), 200);
        let text = view.to_string();
        assert!(
            !text.contains("password") && !text.contains("argon2"),
            "{text}"
        );
        // No customer route works with a staff credential.
        get(&app, "/v1/me", token).assert_problem(403, "forbidden");
    }
    app.login(&org, "claire@example.com", "Staff-Chosen-42!")
        .assert_problem(401, "invalid_credentials");
    // No admin operation hands out a password, a reset or a session,
    // except the portal preview, whose session is always the
    // organization's test customer's, never a real customer's.
    const PREVIEW: &str = "/v1/admin/portal/preview-session";
    let preview = ok(app.request("POST", PREVIEW).bearer(&org.admin).send(), 201);
    assert_eq!(preview["customer"]["test"], true);
    assert_ne!(preview["customer"]["id"], id.as_str());
    let seen = ok(
        get(&app, "/v1/me", preview["access_token"].as_str().unwrap()),
        200,
    );
    assert_ne!(seen["id"], id.as_str());
    app.request("POST", PREVIEW)
        .bearer(&key)
        .send()
        .assert_problem(403, "forbidden");
    let spec = app.get("/api-docs/openapi.json").json();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/admin/") || path == PREVIEW {
            continue;
        }
        for word in ["password", "session", "token", "impersonat", "login"] {
            assert!(!path.contains(word), "{path}");
        }
        for (_, op) in item.as_object().unwrap() {
            let responses = op["responses"].to_string();
            assert!(!responses.contains("TokenResponse"), "{path}");
        }
    }
    // The customer's own session is untouched by all of this.
    ok(get(&app, "/v1/me", &tokens.access), 200);
}
