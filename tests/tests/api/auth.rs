//! Customer and staff sign-in flows, tokens, throttling and abuse limits.

use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use guichet_api::auth::tokens::{Role, TokenService};
use guichet_api::secrets::{JwtKey, JwtKeys};
use guichet_domain::Clock;
use guichet_domain::identity::SubjectKind;
use guichet_store::repo::{outbox, sessions};
use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::outbox::Delivered;
use guichet_tests::{Options, Response, TEST_JWT_SECRET, TestApp};
use serde_json::{Value, json};

/// Another password that meets the rule.
const NEW_PASSWORD: &str = "Battery-Staple-97?";

// ------------------------------------------------------------------ helpers

fn post(app: &TestApp, path: &str, body: &Value) -> Response {
    app.request("POST", path).json(body).send()
}

fn me(app: &TestApp, access: &str) -> Response {
    app.request("GET", "/v1/me").bearer(access).send()
}

fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    post(
        app,
        "/v1/auth/refresh",
        &json!({"refresh_token": refresh_token}),
    )
}

/// A fresh challenge from the server, solved: `{"token", "nonce"}`.
fn solved_challenge(app: &TestApp) -> Value {
    let res = app.get("/v1/auth/challenge");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    let token = body["token"].as_str().unwrap().to_owned();
    let difficulty = u8::try_from(body["difficulty"].as_u64().unwrap()).unwrap();
    let nonce = guichet_domain::challenge::solve(&token, difficulty);
    json!({"token": token, "nonce": nonce})
}

/// A challenge with a nonce that does not solve it: the reference solver
/// returns the smallest solving decimal nonce, so "0" is wrong unless the
/// solution is "0" itself (then take another challenge).
fn unsolved_challenge(app: &TestApp) -> Value {
    loop {
        let solved = solved_challenge(app);
        if solved["nonce"] != "0" {
            return json!({"token": solved["token"], "nonce": "0"});
        }
    }
}

/// Customer password login, with a challenge when given.
fn login_with(
    app: &TestApp,
    org: &Org,
    email: &str,
    password: &str,
    challenge: Option<&Value>,
) -> Response {
    let mut body = json!({"organization": org.slug, "email": email, "password": password});
    if let Some(challenge) = challenge {
        body["challenge"] = challenge.clone();
    }
    post(app, "/v1/auth/login", &body)
}

/// The problem body without its per-request member.
fn without_request_id(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("request_id");
    body
}

fn parse_time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// The decoded header and payload of a JWT.
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = || {
        let bytes = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let header = decode();
    let payload = decode();
    (header, payload)
}

/// The message to `to` delivered after those in `seen` (files are named
/// by clock second and random id, so the newest is found by difference).
fn next_message(app: &TestApp, to: &str, seen: &[Delivered]) -> Delivered {
    app.wait_for_messages(to, seen.len() + 1)
        .into_iter()
        .find(|m| !seen.iter().any(|s| s.file == m.file))
        .unwrap()
}

/// Every message to `to` once the outbox is empty: a message queued by an
/// earlier request is then delivered, so none can be missed.
fn delivered_to(app: &TestApp, to: &str) -> Vec<Delivered> {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        let pending = outbox::pending_count(&mut app.store.conn().unwrap()).unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} message(s) still queued"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
    app.emails()
        .into_iter()
        .chain(app.sms())
        .filter(|m| m.to.contains(to))
        .collect()
}

/// A six-digit code other than `code`.
fn other_code(code: &str) -> String {
    if code == "000000" {
        "111111".to_owned()
    } else {
        "000000".to_owned()
    }
}

fn register(app: &TestApp, org: &Org, email: &str, password: &str) -> Response {
    post(
        app,
        "/v1/auth/register",
        &json!({"organization": org.slug, "email": email, "password": password}),
    )
}

fn register_verify(app: &TestApp, org: &Org, email: &str, code: &str) -> Response {
    post(
        app,
        "/v1/auth/register/verify",
        &json!({"organization": org.slug, "email": email, "code": code}),
    )
}

fn otp_start(app: &TestApp, org: &Org, email: &str) -> Response {
    post(
        app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": email}),
    )
}

fn otp_verify(app: &TestApp, org: &Org, email: &str, code: &str) -> Response {
    post(
        app,
        "/v1/auth/otp/verify",
        &json!({"organization": org.slug, "email": email, "code": code}),
    )
}

fn activate(app: &TestApp, org: &Org, email: &str, code: &str) -> Response {
    post(
        app,
        "/v1/auth/activate",
        &json!({
            "organization": org.slug,
            "email": email,
            "activation_code": code,
            "password": PASSWORD,
        }),
    )
}

fn activation_code(app: &TestApp, org: &Org, customer_id: &str) -> String {
    let res = app
        .request(
            "POST",
            &format!("/v1/admin/customers/{customer_id}/activation-codes"),
        )
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["activation_code"].as_str().unwrap().to_owned()
}

fn forgot(app: &TestApp, org: &Org, email: &str) -> Response {
    post(
        app,
        "/v1/auth/password/forgot",
        &json!({"organization": org.slug, "email": email}),
    )
}

fn reset(app: &TestApp, token: &str, password: &str) -> Response {
    post(
        app,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": password}),
    )
}

fn set_login_methods(app: &TestApp, org: &Org, methods: &str) {
    let res = app
        .request("PATCH", "/v1/admin/organization")
        .bearer(&org.admin)
        .json(&json!({"login_methods": methods}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["login_methods"], methods);
}

fn customer_id(app: &TestApp, org: &Org, email: &str, mobile: Option<&str>) -> String {
    app.customer(org, email, mobile)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn active_sessions(app: &TestApp, customer_id: &str) -> usize {
    let mut conn = app.store.conn().unwrap();
    sessions::list_active(
        &mut conn,
        SubjectKind::Customer,
        customer_id,
        app.clock.now(),
    )
    .unwrap()
    .len()
}

/// Asserts a sign-in answer and returns its tokens.
fn assert_signed_in(res: &Response) -> Tokens {
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    Tokens::from_json(&body)
}

// -------------------------------------------------------------------- login

#[test]
fn login_returns_bearer_tokens_for_a_12_hour_session_that_open_me() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let now = app.clock.now();

    let res = app.login(&org, "claire@example.com", PASSWORD);

    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(
        parse_time(&body["refresh_expires_at"]),
        now + Duration::hours(12)
    );
    let profile = me(&app, body["access_token"].as_str().unwrap());
    assert_eq!(profile.status, 200, "{}", profile.text());
    assert_eq!(profile.json()["id"], id.as_str());
}

#[test]
fn login_with_remember_me_opens_a_30_day_session() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let now = app.clock.now();

    let res = post(
        &app,
        "/v1/auth/login",
        &json!({
            "organization": org.slug,
            "email": "claire@example.com",
            "password": PASSWORD,
            "remember_me": true,
        }),
    );

    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        parse_time(&res.json()["refresh_expires_at"]),
        now + Duration::days(30)
    );
}

#[test]
fn unknown_email_and_wrong_password_get_the_same_answer_after_a_hash() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);

    let started = Instant::now();
    let wrong_password = app.login(&org, "claire@example.com", "Wrong-Password-1!");
    let wrong_password_took = started.elapsed();
    let started = Instant::now();
    let unknown_email = app.login(&org, "nobody@example.com", PASSWORD);
    let unknown_email_took = started.elapsed();

    let wrong_password = wrong_password.assert_problem(401, "invalid_credentials");
    let unknown_email = unknown_email.assert_problem(401, "invalid_credentials");
    assert_eq!(
        without_request_id(wrong_password),
        without_request_id(unknown_email)
    );
    assert!(
        wrong_password_took > StdDuration::from_millis(5),
        "{wrong_password_took:?}"
    );
    assert!(
        unknown_email_took > StdDuration::from_millis(5),
        "an unknown e-mail also costs a hash: {unknown_email_took:?}"
    );
}

#[test]
fn login_to_an_unknown_organization_is_404() {
    let app = TestApp::spawn();

    let res = post(
        &app,
        "/v1/auth/login",
        &json!({"organization": "nowhere", "email": "claire@example.com", "password": PASSWORD}),
    );

    res.assert_problem(404, "not_found");
}

// ----------------------------------------------------------------- throttle

#[test]
fn after_three_failures_a_solved_single_use_challenge_is_required() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let email = "claire@example.com";
    for _ in 0..3 {
        login_with(&app, &org, email, "Wrong-Password-1!", None)
            .assert_problem(401, "invalid_credentials");
    }

    let without = login_with(&app, &org, email, PASSWORD, None);
    let wrong_nonce = login_with(&app, &org, email, PASSWORD, Some(&unsolved_challenge(&app)));
    let challenge = solved_challenge(&app);
    let proceeds = login_with(&app, &org, email, "Wrong-Password-1!", Some(&challenge));
    let reused = login_with(&app, &org, email, PASSWORD, Some(&challenge));
    let fresh = login_with(&app, &org, email, PASSWORD, Some(&solved_challenge(&app)));

    without.assert_problem(401, "challenge_required");
    assert_eq!(without.header("www-authenticate"), Some("Bearer"));
    wrong_nonce.assert_problem(401, "challenge_invalid");
    proceeds.assert_problem(401, "invalid_credentials");
    reused.assert_problem(401, "challenge_invalid");
    assert_signed_in(&fresh);
}

#[test]
fn ten_failures_lock_the_account_for_15_minutes_even_for_the_right_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let email = "claire@example.com";
    for attempt in 1..=10 {
        let challenge = (attempt > 3).then(|| solved_challenge(&app));
        login_with(&app, &org, email, "Wrong-Password-1!", challenge.as_ref())
            .assert_problem(401, "invalid_credentials");
    }

    let right = login_with(&app, &org, email, PASSWORD, Some(&solved_challenge(&app)));
    let wrong = login_with(&app, &org, email, "Wrong-Password-1!", None);
    app.clock.advance(Duration::minutes(14));
    let still_locked = login_with(&app, &org, email, PASSWORD, Some(&solved_challenge(&app)));
    app.clock.advance(Duration::minutes(2));
    let after = login_with(&app, &org, email, PASSWORD, Some(&solved_challenge(&app)));

    right.assert_problem(429, "account_locked");
    assert_eq!(right.header("retry-after"), Some("900"));
    wrong.assert_problem(429, "account_locked");
    assert!(wrong.header("retry-after").is_some());
    still_locked.assert_problem(429, "account_locked");
    assert_eq!(still_locked.header("retry-after"), Some("60"));
    assert_signed_in(&after);
}

#[test]
fn an_expired_lock_still_asks_for_a_challenge() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let email = "claire@example.com";
    for attempt in 1..=10 {
        let challenge = (attempt > 3).then(|| solved_challenge(&app));
        login_with(&app, &org, email, "Wrong-Password-1!", challenge.as_ref())
            .assert_problem(401, "invalid_credentials");
    }
    app.clock.advance(Duration::minutes(16));

    let res = login_with(&app, &org, email, PASSWORD, None);

    res.assert_problem(401, "challenge_required");
}

#[test]
fn an_unknown_email_is_throttled_like_a_known_one() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    for _ in 0..3 {
        login_with(&app, &org, "claire@example.com", "Wrong-Password-1!", None)
            .assert_problem(401, "invalid_credentials");
        login_with(&app, &org, "nobody@example.com", "Wrong-Password-1!", None)
            .assert_problem(401, "invalid_credentials");
    }

    let known = login_with(&app, &org, "claire@example.com", PASSWORD, None);
    let unknown = login_with(&app, &org, "nobody@example.com", PASSWORD, None);
    let unknown_solved = login_with(
        &app,
        &org,
        "nobody@example.com",
        PASSWORD,
        Some(&solved_challenge(&app)),
    );

    let known = known.assert_problem(401, "challenge_required");
    let unknown = unknown.assert_problem(401, "challenge_required");
    assert_eq!(without_request_id(known), without_request_id(unknown));
    unknown_solved.assert_problem(401, "invalid_credentials");
}

// ------------------------------------------------------------------ blocked

#[test]
fn a_blocked_customer_cannot_sign_in_and_loses_its_tokens_at_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    assert_eq!(me(&app, &tokens.access).status, 200);

    let block = app
        .request("POST", &format!("/v1/admin/customers/{id}/block"))
        .bearer(&org.admin)
        .send();
    assert_eq!(block.status, 200, "{}", block.text());
    let old_token = me(&app, &tokens.access);
    let right = app.login(&org, "claire@example.com", PASSWORD);
    let wrong = app.login(&org, "claire@example.com", "Wrong-Password-1!");

    old_token.assert_problem(401, "invalid_token");
    right.assert_problem(403, "account_blocked");
    wrong.assert_problem(401, "invalid_credentials");
    refresh(&app, &tokens.refresh).assert_problem(401, "invalid_refresh_token");
}

// --------------------------------------------------------- first connection

#[test]
fn a_weak_password_is_refused_with_every_unmet_rule_and_nothing_is_sent() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    let res = register(&app, &org, "claire@example.com", "abc");

    let problem = res.assert_problem(422, "password_too_short");
    assert_eq!(
        problem["errors"],
        json!([
            {"field": "password", "code": "password_too_short"},
            {"field": "password", "code": "password_missing_uppercase"},
            {"field": "password", "code": "password_missing_digit"},
            {"field": "password", "code": "password_missing_special"},
        ])
    );
    assert!(delivered_to(&app, "claire@example.com").is_empty());
}

#[test]
fn password_characters_are_read_by_their_unicode_categories_as_documented() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    // A circled letter is a symbol (So), not an upper-case letter (Lu); a
    // non-breaking space is white space, not a special character.
    let circled = register(&app, &org, "claire@example.com", "Ⓐbricot-vital-9");
    let nbsp = register(&app, &org, "claire@example.com", "Abricot\u{a0}vital9");
    let accented = register(&app, &org, "claire@example.com", "Élan-vital-9");

    let problem = circled.assert_problem(422, "password_missing_uppercase");
    assert_eq!(
        problem["errors"],
        json!([{"field": "password", "code": "password_missing_uppercase"}])
    );
    nbsp.assert_problem(422, "password_missing_special");
    assert_eq!(accented.status, 202, "{}", accented.text());
}

#[test]
fn a_10_kb_password_is_refused_as_too_long() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    let long = "Aa1!".repeat(2560);

    let res = register(&app, &org, "claire@example.com", &long);

    let problem = res.assert_problem(422, "password_too_long");
    assert_eq!(
        problem["errors"],
        json!([{"field": "password", "code": "password_too_long"}])
    );
    assert!(delivered_to(&app, "claire@example.com").is_empty());
}

#[test]
fn a_common_password_meeting_the_character_rules_is_refused() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    let res = register(&app, &org, "claire@example.com", "P@ssw0rd");

    let problem = res.assert_problem(422, "password_too_common");
    assert_eq!(
        problem["errors"],
        json!([{"field": "password", "code": "password_too_common"}])
    );
    assert!(delivered_to(&app, "claire@example.com").is_empty());
}

#[test]
fn registering_an_unknown_email_answers_like_a_real_one_and_sends_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "nina@example.com", None);

    let real = register(&app, &org, "nina@example.com", PASSWORD);
    let unknown = register(&app, &org, "noah@example.com", PASSWORD);

    assert_eq!(real.status, 202, "{}", real.text());
    assert_eq!(unknown.status, 202, "{}", unknown.text());
    assert_eq!(
        real.json(),
        json!({"channel": "email", "destination": "n***@example.com", "expires_in_minutes": 10})
    );
    assert_eq!(unknown.json(), real.json());
    app.wait_for_messages("nina@example.com", 1);
    assert!(delivered_to(&app, "noah@example.com").is_empty());
}

#[test]
fn a_wrong_registration_code_counts_down_then_voids_the_code() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    assert_eq!(
        register(&app, &org, "claire@example.com", PASSWORD).status,
        202
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    let wrong = other_code(&code);

    let first = register_verify(&app, &org, "claire@example.com", &wrong);
    let middle: Vec<Response> = (0..3)
        .map(|_| register_verify(&app, &org, "claire@example.com", &wrong))
        .collect();
    let fifth = register_verify(&app, &org, "claire@example.com", &wrong);
    let right = register_verify(&app, &org, "claire@example.com", &code);

    let first = first.assert_problem(422, "invalid_code");
    assert_eq!(first["remaining_attempts"], 4);
    for (res, remaining) in middle.iter().zip([3, 2, 1]) {
        let problem = res.assert_problem(422, "invalid_code");
        assert_eq!(problem["remaining_attempts"], remaining);
    }
    fifth.assert_problem(429, "code_attempts_exceeded");
    right.assert_problem(429, "code_attempts_exceeded");
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
}

#[test]
fn the_right_registration_code_signs_in_and_sets_the_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    assert_eq!(
        app.login(&org, "claire@example.com", PASSWORD).status,
        401,
        "no password before registration"
    );
    assert_eq!(
        register(&app, &org, "claire@example.com", PASSWORD).status,
        202
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();

    let res = register_verify(&app, &org, "claire@example.com", &code);

    let tokens = assert_signed_in(&res);
    assert_eq!(me(&app, &tokens.access).json()["id"], id.as_str());
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
}

#[test]
fn a_login_code_cannot_verify_a_registration() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    assert_eq!(
        register(&app, &org, "claire@example.com", PASSWORD).status,
        202
    );
    let register_message = app.nth_message("claire@example.com", 1);
    assert_eq!(otp_start(&app, &org, "claire@example.com").status, 202);
    let register_code = register_message.code(6).unwrap();
    let mut seen = vec![register_message];
    let login_code = loop {
        // A new login code replaces the previous one; ask again in the
        // one-in-a-million case where it equals the registration code.
        let message = next_message(&app, "claire@example.com", &seen);
        let login_code = message.code(6).unwrap();
        if login_code != register_code {
            break login_code;
        }
        seen.push(message);
        assert_eq!(otp_start(&app, &org, "claire@example.com").status, 202);
    };

    let with_login_code = register_verify(&app, &org, "claire@example.com", &login_code);
    let with_register_code = register_verify(&app, &org, "claire@example.com", &register_code);

    let problem = with_login_code.assert_problem(422, "invalid_code");
    assert_eq!(problem["remaining_attempts"], 4);
    assert_signed_in(&with_register_code);
}

#[test]
fn a_registration_code_expires_after_10_minutes() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    assert_eq!(
        register(&app, &org, "claire@example.com", PASSWORD).status,
        202
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    app.clock.advance(Duration::minutes(11));

    let res = register_verify(&app, &org, "claire@example.com", &code);

    res.assert_problem(422, "code_expired");
}

#[test]
fn registering_an_already_registered_customer_sends_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let before = app.wait_for_messages("claire@example.com", 1).len();

    let res = register(&app, &org, "claire@example.com", NEW_PASSWORD);

    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(delivered_to(&app, "claire@example.com").len(), before);
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
}

// ------------------------------------------------------------- passwordless

#[test]
fn a_sign_in_code_goes_by_sms_when_there_is_a_mobile_and_works_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", Some("+33612345678"));

    let start = otp_start(&app, &org, "claire@example.com");

    assert_eq!(start.status, 202, "{}", start.text());
    assert_eq!(
        start.json(),
        json!({"channel": "sms", "destination": "+33 6** ** ** 78", "expires_in_minutes": 10})
    );
    let code = app.nth_message("+33612345678", 1).code(6).unwrap();
    assert!(delivered_to(&app, "claire@example.com").is_empty());
    let tokens = assert_signed_in(&otp_verify(&app, &org, "claire@example.com", &code));
    assert_eq!(me(&app, &tokens.access).json()["id"], id.as_str());
    otp_verify(&app, &org, "claire@example.com", &code).assert_problem(422, "code_expired");
}

#[test]
fn a_sign_in_code_goes_by_email_without_a_mobile() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);

    let start = otp_start(&app, &org, "claire@example.com");

    assert_eq!(start.status, 202, "{}", start.text());
    assert_eq!(
        start.json(),
        json!({"channel": "email", "destination": "c***@example.com", "expires_in_minutes": 10})
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    assert_signed_in(&otp_verify(&app, &org, "claire@example.com", &code));
}

#[test]
fn a_sign_in_code_for_an_unknown_email_answers_email_and_sends_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let start = otp_start(&app, &org, "nobody@example.com");

    assert_eq!(start.status, 202, "{}", start.text());
    assert_eq!(
        start.json(),
        json!({"channel": "email", "destination": "n***@example.com", "expires_in_minutes": 10})
    );
    assert!(delivered_to(&app, "nobody@example.com").is_empty());
}

#[test]
fn passwordless_is_refused_when_the_organization_offers_passwords_only() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    set_login_methods(&app, &org, "password");

    let start = otp_start(&app, &org, "claire@example.com");

    start.assert_problem(403, "login_method_disabled");
    assert_eq!(delivered_to(&app, "claire@example.com").len(), 1);
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
}

#[test]
fn password_sign_in_is_refused_when_the_organization_is_passwordless() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    set_login_methods(&app, &org, "passwordless");

    let res = app.login(&org, "claire@example.com", PASSWORD);

    res.assert_problem(403, "login_method_disabled");
    assert_eq!(otp_start(&app, &org, "claire@example.com").status, 202);
}

// --------------------------------------------------------------- activation

#[test]
fn an_activation_code_activates_once_whatever_its_case_and_spacing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let code = activation_code(&app, &org, &id);
    let typed = code.to_lowercase().replace('-', " ");

    let first = activate(&app, &org, "claire@example.com", &typed);
    let again = activate(&app, &org, "claire@example.com", &code);

    let tokens = assert_signed_in(&first);
    assert_eq!(me(&app, &tokens.access).json()["id"], id.as_str());
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
    again.assert_problem(422, "invalid_link");
}

#[test]
fn an_activation_code_works_only_with_its_customers_email() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let other = customer_id(&app, &org, "marc@example.com", None);
    let code = activation_code(&app, &org, &id);

    let res = activate(&app, &org, "marc@example.com", &code);

    res.assert_problem(422, "invalid_link");
    assert_eq!(active_sessions(&app, &other), 0);
    assert_signed_in(&activate(&app, &org, "claire@example.com", &code));
}

#[test]
fn an_activation_code_expires_after_30_days() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let code = activation_code(&app, &org, &id);
    app.clock.advance(Duration::days(31));

    let res = activate(&app, &org, "claire@example.com", &code);

    res.assert_problem(410, "link_expired");
    assert_eq!(active_sessions(&app, &id), 0);
}

// ------------------------------------------------------------ forgot/reset

#[test]
fn forgot_password_emails_a_token_and_answers_the_same_for_unknown_addresses() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "nina@example.com", None);
    let seen = app.wait_for_messages("nina@example.com", 1);

    let real = forgot(&app, &org, "nina@example.com");
    let unknown = forgot(&app, &org, "noah@example.com");

    assert_eq!(real.status, 202, "{}", real.text());
    assert_eq!(unknown.status, 202, "{}", unknown.text());
    assert_eq!(
        real.json(),
        json!({"channel": "email", "destination": "n***@example.com", "expires_in_minutes": 30})
    );
    assert_eq!(unknown.json(), real.json());
    assert!(
        next_message(&app, "nina@example.com", &seen)
            .token()
            .is_some()
    );
    assert!(delivered_to(&app, "noah@example.com").is_empty());
}

#[test]
fn a_password_reset_ends_every_session_and_swaps_the_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, first) = app.registered_customer(&org, "claire@example.com", None);
    let second = assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
    let mut seen = app.wait_for_messages("claire@example.com", 1);
    assert_eq!(forgot(&app, &org, "claire@example.com").status, 202);
    let reset_message = next_message(&app, "claire@example.com", &seen);
    let token = reset_message.token().unwrap();
    seen.push(reset_message);

    let res = reset(&app, &token, NEW_PASSWORD);

    assert_eq!(res.status, 204, "{}", res.text());
    assert!(res.body.is_empty());
    for tokens in [&first, &second] {
        me(&app, &tokens.access).assert_problem(401, "invalid_token");
        refresh(&app, &tokens.refresh).assert_problem(401, "invalid_refresh_token");
    }
    assert_eq!(active_sessions(&app, &id), 0);
    app.login(&org, "claire@example.com", PASSWORD)
        .assert_problem(401, "invalid_credentials");
    assert_signed_in(&app.login(&org, "claire@example.com", NEW_PASSWORD));
    let notice = next_message(&app, "claire@example.com", &seen);
    assert!(notice.body.contains("modifié"), "{}", notice.body);
    assert_eq!(notice.token(), None);
}

#[test]
fn a_reset_token_works_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let seen = app.wait_for_messages("claire@example.com", 1);
    assert_eq!(forgot(&app, &org, "claire@example.com").status, 202);
    let token = next_message(&app, "claire@example.com", &seen)
        .token()
        .unwrap();
    assert_eq!(reset(&app, &token, NEW_PASSWORD).status, 204);

    let again = reset(&app, &token, "Third-Password-55#");

    again.assert_problem(422, "invalid_link");
    assert_signed_in(&app.login(&org, "claire@example.com", NEW_PASSWORD));
}

#[test]
fn a_reset_token_expires_after_30_minutes() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    let seen = app.wait_for_messages("claire@example.com", 1);
    assert_eq!(forgot(&app, &org, "claire@example.com").status, 202);
    let token = next_message(&app, "claire@example.com", &seen)
        .token()
        .unwrap();
    app.clock.advance(Duration::minutes(31));

    let res = reset(&app, &token, NEW_PASSWORD);

    res.assert_problem(410, "link_expired");
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
}

// ----------------------------------------------------------- refresh/logout

#[test]
fn refresh_rotates_the_refresh_token() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);

    let first = refresh(&app, &tokens.refresh);

    let rotated = assert_signed_in(&first);
    assert_ne!(rotated.refresh, tokens.refresh);
    assert_eq!(rotated.session_id, tokens.session_id);
    assert_eq!(me(&app, &rotated.access).status, 200);
    let second = assert_signed_in(&refresh(&app, &rotated.refresh));
    assert_ne!(second.refresh, rotated.refresh);
}

#[test]
fn a_replayed_refresh_token_ends_the_whole_session() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let rotated = assert_signed_in(&refresh(&app, &tokens.refresh));

    let replay = refresh(&app, &tokens.refresh);

    replay.assert_problem(401, "invalid_refresh_token");
    refresh(&app, &rotated.refresh).assert_problem(401, "invalid_refresh_token");
    me(&app, &rotated.access).assert_problem(401, "invalid_token");
    me(&app, &tokens.access).assert_problem(401, "invalid_token");
}

#[test]
fn logout_ends_the_session_of_its_refresh_token() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let other = assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));

    let res = post(
        &app,
        "/v1/auth/logout",
        &json!({"refresh_token": tokens.refresh}),
    );

    assert_eq!(res.status, 204, "{}", res.text());
    me(&app, &tokens.access).assert_problem(401, "invalid_token");
    refresh(&app, &tokens.refresh).assert_problem(401, "invalid_refresh_token");
    assert_eq!(me(&app, &other.access).status, 200, "other sessions stay");
}

#[test]
fn logout_with_an_unknown_token_is_still_204() {
    let app = TestApp::spawn();

    let res = post(
        &app,
        "/v1/auth/logout",
        &json!({"refresh_token": "garbage"}),
    );

    assert_eq!(res.status, 204, "{}", res.text());
}

// ------------------------------------------------------------ access tokens

/// The server's signer, with the kid of the live key but `secret`.
fn signer(kid: &str, secret: &str) -> TokenService {
    TokenService::new(JwtKeys {
        signing: JwtKey {
            kid: kid.to_owned(),
            secret: secret.as_bytes().to_vec(),
        },
        verifying: Vec::new(),
    })
}

#[test]
fn an_access_token_is_a_typed_hs256_jwt_with_every_claim() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let now = app.clock.now().timestamp();

    let (header, payload) = jwt_parts(&tokens.access);

    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(payload["iss"], "guichet");
    assert_eq!(payload["aud"], "guichet-api");
    assert_eq!(payload["sub"], id.as_str());
    assert_eq!(payload["org"], org.id.as_str());
    assert_eq!(payload["role"], "customer");
    assert_eq!(payload["sid"], tokens.session_id.as_str());
    assert_eq!(payload["iat"], now);
    assert_eq!(payload["nbf"], now);
    assert_eq!(payload["exp"], now + 900);
    assert!(payload["jti"].as_str().is_some_and(|j| !j.is_empty()));
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let (header, _) = jwt_parts(&tokens.access);
    let kid = header["kid"].as_str().unwrap();
    let now = app.clock.now();
    let issue = |secret: &str| {
        signer(kid, secret)
            .issue(&id, &org.id, Role::Customer, &tokens.session_id, now)
            .unwrap()
            .0
    };
    let genuine = issue(TEST_JWT_SECRET);
    let forged = issue("another-secret-0123456789abcdef0123456789");

    let accepted = me(&app, &genuine);
    let refused = me(&app, &forged);

    assert_eq!(accepted.status, 200, "the same token with the right key");
    refused.assert_problem(401, "invalid_token");
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn a_token_with_alg_none_is_refused() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let (header, _) = jwt_parts(&tokens.access);
    let payload = tokens.access.split('.').nth(1).unwrap();
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    let unsigned = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string())
    );

    let res = me(&app, &unsigned);

    res.assert_problem(401, "invalid_token");
    assert_eq!(me(&app, &tokens.access).status, 200);
}

#[test]
fn an_access_token_expires_after_15_minutes() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    app.clock.advance(Duration::minutes(14));
    assert_eq!(me(&app, &tokens.access).status, 200);
    app.clock.advance(Duration::minutes(2));

    let res = me(&app, &tokens.access);

    res.assert_problem(401, "invalid_token");
}

#[test]
fn an_access_token_from_the_future_is_refused() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let issued_at = app.clock.now();
    assert_eq!(me(&app, &tokens.access).status, 200);
    app.clock.set(issued_at - Duration::minutes(5));

    let res = me(&app, &tokens.access);

    res.assert_problem(401, "invalid_token");
}

#[test]
fn no_credentials_or_another_scheme_is_unauthenticated() {
    let app = TestApp::spawn();

    let none = app.get("/v1/me");
    let basic = app
        .request("GET", "/v1/me")
        .header("authorization", "Basic x")
        .send();

    none.assert_problem(401, "unauthenticated");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    basic.assert_problem(401, "unauthenticated");
    assert_eq!(basic.header("www-authenticate"), Some("Bearer"));
}

// -------------------------------------------------------------------- staff

#[test]
fn staff_sign_in_gives_an_admin_token_that_is_not_a_customer_token() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = post(
        &app,
        "/v1/auth/staff/login",
        &json!({"organization": org.slug, "email": org.admin_email, "password": PASSWORD}),
    );

    let tokens = assert_signed_in(&res);
    assert_eq!(jwt_parts(&tokens.access).1["role"], "admin");
    let customers = app
        .request("GET", "/v1/admin/customers")
        .bearer(&tokens.access)
        .send();
    assert_eq!(customers.status, 200, "{}", customers.text());
    me(&app, &tokens.access).assert_problem(403, "forbidden");
}

#[test]
fn a_customer_token_is_forbidden_on_admin_routes() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);

    let res = app
        .request("GET", "/v1/admin/customers")
        .bearer(&tokens.access)
        .send();

    res.assert_problem(403, "forbidden");
}

#[test]
fn a_staff_setup_token_works_once() {
    let app = TestApp::spawn();
    let (_, _, setup_token) = app.provision_org("acme");
    let first = post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": setup_token, "password": PASSWORD}),
    );
    assert_signed_in(&first);

    let again = post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": setup_token, "password": NEW_PASSWORD}),
    );

    again.assert_problem(422, "invalid_link");
    let login = post(
        &app,
        "/v1/auth/staff/login",
        &json!({"organization": "acme", "email": "admin@acme.example.com", "password": PASSWORD}),
    );
    assert_signed_in(&login);
}

// -------------------------------------------------------------- rate limits

fn with_args(args: &[&str]) -> TestApp {
    TestApp::spawn_with(Options {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
}

/// An answer the limit let through: the route's own answer, not 429.
fn let_through(res: &Response) {
    assert!(
        res.status != 429 && res.status < 500,
        "{} {}",
        res.status,
        res.text()
    );
}

/// The limit's refusal, with a wait within the minute.
fn limited(res: &Response) {
    res.assert_problem(429, "rate_limited");
    let wait: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[test]
fn the_fourth_sign_in_attempt_in_a_minute_from_one_address_is_rate_limited() {
    let app = with_args(&["--auth-sign-in-limit", "3"]);
    let nowhere =
        json!({"organization": "nowhere", "email": "claire@example.com", "password": PASSWORD});
    post(&app, "/v1/auth/login", &nowhere).assert_problem(404, "not_found");
    let_through(&post(&app, "/v1/auth/staff/login", &nowhere));
    let_through(&post(
        &app,
        "/v1/auth/otp/verify",
        &json!({"organization": "nowhere", "email": "claire@example.com", "code": "123456"}),
    ));

    // Every sign-in route shares the purpose's bucket.
    limited(&post(
        &app,
        "/v1/auth/password/reset",
        &json!({"token": "x".repeat(43), "password": PASSWORD}),
    ));
    limited(&post(&app, "/v1/auth/login", &nowhere));
    limited(&post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": "x", "password": PASSWORD}),
    ));
    assert_eq!(app.get("/healthz").status, 200, "only /v1/auth is limited");
}

#[test]
fn one_purpose_used_up_does_not_block_another() {
    let app = with_args(&[
        "--auth-sign-in-limit",
        "1",
        "--auth-code-send-limit",
        "1",
        "--auth-registration-limit",
        "1",
        "--auth-rate-limit",
        "1",
    ]);
    // No organization is set up: provisioning signs its admin in, which
    // would spend the sign-in bucket. Each route still runs and answers.
    let login =
        json!({"organization": "nowhere", "email": "claire@example.com", "password": PASSWORD});
    let send = json!({"organization": "nowhere", "email": "claire@example.com"});
    let code = json!({"organization": "nowhere", "email": "claire@example.com", "code": "123456"});
    let session = json!({"refresh_token": "x"});

    // Each purpose admits its one request, whatever the others spent.
    post(&app, "/v1/auth/login", &login).assert_problem(404, "not_found");
    limited(&post(&app, "/v1/auth/login", &login));
    let_through(&post(&app, "/v1/auth/otp/start", &send));
    limited(&post(&app, "/v1/auth/password/forgot", &send));
    let_through(&post(&app, "/v1/auth/register", &login));
    limited(&post(&app, "/v1/auth/register/verify", &code));
    assert_eq!(app.get("/v1/auth/challenge").status, 200);
    limited(&app.get("/v1/auth/challenge"));
    // Challenges and session upkeep share the option, not the bucket.
    let_through(&post(&app, "/v1/auth/refresh", &session));
    limited(&post(&app, "/v1/auth/logout", &session));
    // And each used-up purpose stays refused on its other routes.
    limited(&post(&app, "/v1/auth/activate", &login));
    limited(&post(&app, "/v1/auth/otp/verify", &code));
}

#[test]
fn a_wrong_method_on_an_auth_route_answers_405_even_after_the_limit() {
    let app = with_args(&[
        "--auth-sign-in-limit",
        "1",
        "--auth-code-send-limit",
        "1",
        "--auth-registration-limit",
        "1",
        "--auth-rate-limit",
        "1",
    ]);
    let body =
        json!({"organization": "nowhere", "email": "claire@example.com", "password": PASSWORD});
    for path in [
        "/v1/auth/login",
        "/v1/auth/otp/start",
        "/v1/auth/register",
        "/v1/auth/refresh",
    ] {
        let_through(&post(&app, path, &body));
        limited(&post(&app, path, &body));
    }
    let_through(&app.get("/v1/auth/challenge"));
    limited(&app.get("/v1/auth/challenge"));

    for (method, path, allow) in [
        ("GET", "/v1/auth/login", "POST"),
        ("PUT", "/v1/auth/login", "POST"),
        ("GET", "/v1/auth/otp/start", "POST"),
        ("DELETE", "/v1/auth/register", "POST"),
        ("GET", "/v1/auth/refresh", "POST"),
        ("POST", "/v1/auth/challenge", "GET"),
    ] {
        for _ in 0..3 {
            let res = app.request(method, path).send();
            res.assert_problem(405, "method_not_allowed");
            assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
        }
    }
    app.get("/v1/auth/nothing-here")
        .assert_problem(404, "not_found");
}

/// `GET /v1/auth/challenge` through a proxy that says it forwards for
/// `forwarded`.
fn challenge_from(app: &TestApp, forwarded: &str) -> Response {
    app.request("GET", "/v1/auth/challenge")
        .header("X-Forwarded-For", forwarded)
        .send()
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit_and_address() {
    let app = with_args(&[
        "--auth-rate-limit",
        "2",
        "--trusted-proxies",
        "10.0.0.0/8,127.0.0.1",
    ]);
    let from = |forwarded: &str| challenge_from(&app, forwarded);
    assert_eq!(from("203.0.113.1").status, 200);
    assert_eq!(from("203.0.113.1").status, 200);
    from("203.0.113.1").assert_problem(429, "rate_limited");
    // A client that writes its own entry first is still known by the
    // entry the proxy appended.
    from("198.51.100.1, 203.0.113.1").assert_problem(429, "rate_limited");
    // Another client behind the same proxy has its own window, also when
    // the request went through an inner trusted proxy.
    assert_eq!(from("203.0.113.2").status, 200);
    assert_eq!(from("203.0.113.3, 10.1.2.3").status, 200);
}

#[test]
fn behind_a_trusted_proxy_a_session_records_the_forwarded_address() {
    let app = with_args(&["--trusted-proxies", "127.0.0.1"]);
    let org = app.org("acme");
    app.registered_customer(&org, "paul@example.com", None);
    let login = app
        .request("POST", "/v1/auth/login")
        .header("X-Forwarded-For", "203.0.113.77")
        .json(&json!({"organization": "acme", "email": "paul@example.com", "password": PASSWORD}))
        .send();
    let tokens = assert_signed_in(&login);
    let listed = app
        .request("GET", "/v1/me/sessions")
        .bearer(&tokens.access)
        .send()
        .json();
    let ips: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert!(ips.contains(&"203.0.113.77"), "{listed}");
    assert!(
        ips.contains(&"127.0.0.1"),
        "the first session came without the header: {listed}"
    );
}

#[test]
fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = with_args(&["--auth-rate-limit", "2"]);
    let from = |forwarded: &str| challenge_from(&app, forwarded);
    assert_eq!(from("203.0.113.1").status, 200);
    assert_eq!(from("203.0.113.2").status, 200);
    from("203.0.113.3").assert_problem(429, "rate_limited");
}

#[test]
fn the_third_code_request_from_one_address_is_rate_limited() {
    let app = with_args(&["--code-send-limit-per-ip", "2"]);
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    assert_eq!(otp_start(&app, &org, "claire@example.com").status, 202);
    assert_eq!(otp_start(&app, &org, "nobody@example.com").status, 202);

    let third = otp_start(&app, &org, "claire@example.com");

    third.assert_problem(429, "rate_limited");
    assert!(third.header("retry-after").is_some());
    app.wait_for_messages("claire@example.com", 1);
    assert_eq!(delivered_to(&app, "claire@example.com").len(), 1);
}

#[test]
fn the_third_code_to_one_destination_is_silently_not_sent() {
    let app = with_args(&["--code-send-limit-per-destination", "2"]);
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", Some("+33612345678"));
    let first = otp_start(&app, &org, "claire@example.com");
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(otp_start(&app, &org, "claire@example.com").status, 202);
    app.wait_for_messages("+33612345678", 2);

    let third = otp_start(&app, &org, "claire@example.com");

    assert_eq!(third.status, 202, "{}", third.text());
    assert_eq!(third.json(), first.json());
    assert_eq!(delivered_to(&app, "+33612345678").len(), 2);
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_login_bodies_are_refused_and_open_no_session() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let sessions_before = active_sessions(&app, &id);
    let good =
        json!({"organization": org.slug, "email": "claire@example.com", "password": PASSWORD});
    let with = |name: &str, value: Value| {
        let mut body = good.clone();
        body[name] = value;
        body
    };
    let good_text = good.to_string();

    let malformed = app
        .request("POST", "/v1/auth/login")
        .header("content-type", "application/json")
        .body(good_text.as_bytes()[..good_text.len() - 1].to_vec())
        .send();
    let unknown = post(&app, "/v1/auth/login", &with("colour", json!("blue")));
    let bad_email = post(
        &app,
        "/v1/auth/login",
        &with("email", json!("not-an-email")),
    );
    let wrong_type = post(&app, "/v1/auth/login", &with("remember_me", json!("yes")));
    let plain = app
        .request("POST", "/v1/auth/login")
        .header("content-type", "text/plain")
        .body(good_text.clone().into_bytes())
        .send();

    malformed.assert_problem(400, "malformed_json");
    let unknown = unknown.assert_problem(400, "unknown_field");
    assert_eq!(unknown["errors"][0]["field"], "colour");
    assert!(unknown["detail"].as_str().unwrap().contains("colour"));
    let bad_email = bad_email.assert_problem(400, "invalid_field");
    assert_eq!(bad_email["errors"][0]["field"], "email");
    let wrong_type = wrong_type.assert_problem(400, "invalid_field");
    assert_eq!(wrong_type["errors"][0]["field"], "remember_me");
    plain.assert_problem(415, "unsupported_media_type");
    assert_eq!(active_sessions(&app, &id), sessions_before);
    assert_signed_in(&app.login(&org, "claire@example.com", PASSWORD));
}

#[test]
fn bad_bodies_on_code_routes_send_nothing() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.customer(&org, "claire@example.com", None);
    let good = json!({"organization": org.slug, "email": "claire@example.com"});
    let mut unknown = good.clone();
    unknown["mobile"] = json!("+33612345678");

    let unknown = post(&app, "/v1/auth/otp/start", &unknown);
    let plain = app
        .request("POST", "/v1/auth/password/forgot")
        .header("content-type", "text/plain")
        .body(good.to_string().into_bytes())
        .send();
    let bad_email = post(
        &app,
        "/v1/auth/register",
        &json!({"organization": org.slug, "email": "not-an-email", "password": PASSWORD}),
    );

    let unknown = unknown.assert_problem(400, "unknown_field");
    assert_eq!(unknown["errors"][0]["field"], "mobile");
    plain.assert_problem(415, "unsupported_media_type");
    let bad_email = bad_email.assert_problem(400, "invalid_field");
    assert_eq!(bad_email["errors"][0]["field"], "email");
    assert!(delivered_to(&app, "claire@example.com").is_empty());
    assert!(app.sms().is_empty());
}
