//! The signed-in customer: profile, password, sessions.

use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

/// A password that meets the rule and differs from [`PASSWORD`].
const NEW_PASSWORD: &str = "Another-Stable-77?";

fn signed_in(res: &Response) -> Tokens {
    assert_eq!(res.status, 200, "{}", res.text());
    Tokens::from_json(&res.json())
}

fn me(app: &TestApp, token: &str) -> Response {
    app.request("GET", "/v1/me").bearer(token).send()
}

fn change_password(app: &TestApp, token: &str, body: &Value) -> Response {
    app.request("PUT", "/v1/me/password")
        .bearer(token)
        .json(body)
        .send()
}

fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app.request("GET", "/v1/me/sessions").bearer(token).send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["data"].as_array().unwrap().clone()
}

fn end_session(app: &TestApp, token: &str, id: &str) -> Response {
    app.request("DELETE", &format!("/v1/me/sessions/{id}"))
        .bearer(token)
        .send()
}

/// An organization with one registered customer `email`, signed in.
fn customer_of(app: &TestApp, slug: &str, email: &str) -> (Org, Tokens) {
    let org = app.org(slug);
    let (_, tokens) = app.registered_customer(&org, email, None);
    (org, tokens)
}

// ------------------------------------------------------------------ profile

#[test]
fn me_shows_the_profile_with_masked_contacts_and_the_organization() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) =
        app.registered_customer(&org, "thomas.petit@example.com", Some("+33612345678"));

    let res = me(&app, &tokens.access);

    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["name"], "Test Customer");
    assert_eq!(body["email"], "t***@example.com");
    assert_eq!(body["mobile"], "+33 6** ** ** 78");
    assert_eq!(body["locale"], "fr");
    assert!(body["registered_at"].is_string(), "{body}");
    assert_eq!(body["organization"]["slug"], "acme");
    assert_eq!(body["organization"]["name"], "Org acme");
    let text = res.text();
    assert!(!text.contains("thomas.petit"), "e-mail not masked: {text}");
    assert!(!text.contains("612345678"), "mobile not masked: {text}");
    assert!(!text.contains("$argon2"), "a password hash leaked: {text}");
    assert!(!text.contains("password"), "{text}");
}

#[test]
fn me_without_a_token_is_401_unauthenticated_with_a_bearer_challenge() {
    let app = TestApp::spawn();

    let res = app.get("/v1/me");

    res.assert_problem(401, "unauthenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn me_with_a_garbage_token_is_401_invalid_token() {
    let app = TestApp::spawn();

    let res = me(&app, "not-a-jwt");

    res.assert_problem(401, "invalid_token");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn a_staff_token_is_403_forbidden_on_every_me_route() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, customer) = app.registered_customer(&org, "claire@example.com", None);

    let profile = me(&app, &org.admin);
    let password = change_password(
        &app,
        &org.admin,
        &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    );
    let list = app
        .request("GET", "/v1/me/sessions")
        .bearer(&org.admin)
        .send();
    let end = end_session(&app, &org.admin, &customer.session_id);

    profile.assert_problem(403, "forbidden");
    password.assert_problem(403, "forbidden");
    list.assert_problem(403, "forbidden");
    end.assert_problem(403, "forbidden");
    assert_eq!(
        me(&app, &customer.access).status,
        200,
        "the customer's session was not ended by staff"
    );
}

// ----------------------------------------------------------------- password

#[test]
fn a_wrong_current_password_is_422_and_changes_nothing() {
    let app = TestApp::spawn();
    let (org, tokens) = customer_of(&app, "acme", "claire@example.com");
    let other = signed_in(&app.login(&org, "claire@example.com", PASSWORD));

    let res = change_password(
        &app,
        &tokens.access,
        &json!({"current_password": "Wrong-Password-1!", "new_password": NEW_PASSWORD}),
    );

    let problem = res.assert_problem(422, "current_password_incorrect");
    assert_eq!(
        problem["errors"][0]["field"], "current_password",
        "{problem}"
    );
    assert_eq!(
        app.login(&org, "claire@example.com", NEW_PASSWORD).status,
        401
    );
    assert_eq!(app.login(&org, "claire@example.com", PASSWORD).status, 200);
    assert_eq!(me(&app, &other.access).status, 200, "other sessions stay");
    assert_eq!(
        app.messages_now("claire@example.com").len(),
        1,
        "only the registration code, no change notice"
    );
}

#[test]
fn a_weak_new_password_is_422_with_the_rule_code_on_new_password() {
    let app = TestApp::spawn();
    let (org, tokens) = customer_of(&app, "acme", "claire@example.com");

    let short = change_password(
        &app,
        &tokens.access,
        &json!({"current_password": PASSWORD, "new_password": "Ab1!"}),
    );
    let no_upper = change_password(
        &app,
        &tokens.access,
        &json!({"current_password": PASSWORD, "new_password": "lower-case-only-42!"}),
    );

    let problem = short.assert_problem(422, "password_too_short");
    assert_eq!(
        problem["errors"],
        json!([{"field": "new_password", "code": "password_too_short"}])
    );
    let problem = no_upper.assert_problem(422, "password_missing_uppercase");
    assert_eq!(
        problem["errors"],
        json!([{"field": "new_password", "code": "password_missing_uppercase"}])
    );
    assert_eq!(app.login(&org, "claire@example.com", PASSWORD).status, 200);
    assert_eq!(
        app.login(&org, "claire@example.com", "lower-case-only-42!")
            .status,
        401
    );
}

#[test]
fn changing_the_password_keeps_this_session_ends_the_others_and_sends_a_notice() {
    let app = TestApp::spawn();
    let (org, _) = customer_of(&app, "acme", "claire@example.com");
    let here = signed_in(&app.login(&org, "claire@example.com", PASSWORD));
    let elsewhere = signed_in(&app.login(&org, "claire@example.com", PASSWORD));
    assert_eq!(me(&app, &elsewhere.access).status, 200);

    let res = change_password(
        &app,
        &here.access,
        &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    );

    assert_eq!(res.status, 204, "{}", res.text());
    assert!(res.body.is_empty());
    assert_eq!(me(&app, &here.access).status, 200, "this session stays");
    me(&app, &elsewhere.access).assert_problem(401, "invalid_token");
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
    assert_eq!(
        app.login(&org, "claire@example.com", NEW_PASSWORD).status,
        200
    );
    // Outbox files of one second sort by random id: look for the notice.
    let messages = app.wait_for_messages("claire@example.com", 2);
    let notice = messages
        .iter()
        .find(|m| m.body.contains("vient d'être modifié"))
        .unwrap_or_else(|| panic!("no password-changed notice: {messages:?}"));
    assert!(!notice.body.contains(NEW_PASSWORD), "{notice:?}");
}

#[test]
fn bad_password_change_bodies_are_400_with_their_code_and_change_nothing() {
    let app = TestApp::spawn();
    let (org, tokens) = customer_of(&app, "acme", "claire@example.com");
    let cases: [(&str, String, &str, Option<&str>); 3] = [
        (
            "malformed",
            format!(r#"{{"current_password": "{PASSWORD}", "new_password": "#),
            "malformed_json",
            None,
        ),
        (
            "unknown field",
            json!({
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            })
            .to_string(),
            "unknown_field",
            Some("confirm_password"),
        ),
        (
            "wrong type",
            json!({"current_password": PASSWORD, "new_password": 12345678}).to_string(),
            "invalid_field",
            Some("new_password"),
        ),
    ];

    for (case, body, code, field) in cases {
        let res = app
            .request("PUT", "/v1/me/password")
            .bearer(&tokens.access)
            .header("content-type", "application/json")
            .body(body.into_bytes())
            .send();

        let problem = res.assert_problem(400, code);
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{case}: {problem}");
        }
    }
    assert_eq!(app.login(&org, "claire@example.com", PASSWORD).status, 200);
    assert_eq!(
        app.login(&org, "claire@example.com", NEW_PASSWORD).status,
        401
    );
    assert_eq!(me(&app, &tokens.access).status, 200);
}

// ----------------------------------------------------------------- sessions

#[test]
fn sessions_lists_the_active_sessions_and_marks_the_callers_as_current() {
    let app = TestApp::spawn();
    let (org, first) = customer_of(&app, "acme", "claire@example.com");
    let second = signed_in(&app.login(&org, "claire@example.com", PASSWORD));

    let list = sessions(&app, &second.access);

    assert_eq!(list.len(), 2, "{list:?}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list:?}");
    assert_eq!(current[0]["id"], second.session_id.as_str());
    let other = list
        .iter()
        .find(|s| s["id"] == first.session_id.as_str())
        .unwrap_or_else(|| panic!("first session missing: {list:?}"));
    assert_eq!(other["current"], false);
    assert!(other["expires_at"].is_string());
    let seen_by_first = sessions(&app, &first.access);
    let current_for_first = seen_by_first.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current_for_first["id"], first.session_id.as_str());
}

#[test]
fn ending_another_session_stops_its_token_at_once_and_drops_it_from_the_list() {
    let app = TestApp::spawn();
    let (org, first) = customer_of(&app, "acme", "claire@example.com");
    let second = signed_in(&app.login(&org, "claire@example.com", PASSWORD));
    assert_eq!(me(&app, &first.access).status, 200);

    let res = end_session(&app, &second.access, &first.session_id);

    assert_eq!(res.status, 204, "{}", res.text());
    me(&app, &first.access).assert_problem(401, "invalid_token");
    assert_eq!(me(&app, &second.access).status, 200);
    let list = sessions(&app, &second.access);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], second.session_id.as_str());
}

#[test]
fn another_customers_session_cannot_be_ended() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, mine) = app.registered_customer(&org, "claire@example.com", None);
    let (_, theirs) = app.registered_customer(&org, "paul@example.com", None);

    let res = end_session(&app, &mine.access, &theirs.session_id);

    res.assert_problem(404, "not_found");
    assert_eq!(me(&app, &theirs.access).status, 200, "still works");
    assert_eq!(sessions(&app, &theirs.access).len(), 1);
}

#[test]
fn another_organizations_customer_session_cannot_be_ended() {
    let app = TestApp::spawn();
    let (_, mine) = customer_of(&app, "acme", "claire@example.com");
    // Another address: the outbox cannot tell two orgs' codes apart.
    let (_, theirs) = customer_of(&app, "globex", "paul@example.com");

    let res = end_session(&app, &mine.access, &theirs.session_id);

    res.assert_problem(404, "not_found");
    assert_eq!(me(&app, &theirs.access).status, 200);
}

#[test]
fn a_staff_session_id_cannot_be_ended_by_a_customer() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, customer) = app.registered_customer(&org, "claire@example.com", None);
    let staff = signed_in(
        &app.request("POST", "/v1/auth/staff/login")
            .json(&json!({
                "organization": "acme",
                "email": org.admin_email,
                "password": PASSWORD,
            }))
            .send(),
    );

    let res = end_session(&app, &customer.access, &staff.session_id);

    res.assert_problem(404, "not_found");
    let still = app
        .request("GET", "/v1/admin/staff")
        .bearer(&staff.access)
        .send();
    assert_eq!(still.status, 200, "{}", still.text());
}

#[test]
fn an_unknown_session_id_is_404() {
    let app = TestApp::spawn();
    let (_, tokens) = customer_of(&app, "acme", "claire@example.com");

    let res = end_session(&app, &tokens.access, "ses_00000000000000000000");

    res.assert_problem(404, "not_found");
    assert_eq!(sessions(&app, &tokens.access).len(), 1);
}
