//! Limits under concurrent requests, re-authentication, the one block
//! check and the last working admin: every limit is reserved before the
//! work it guards, so requests sent at the same time never get past more
//! than requests sent one after the other.

use std::sync::Barrier;

use chrono::Duration;
use guichet_domain::Clock;
use guichet_store::repo::{codes, staff};
use guichet_tests::identity::{Org, PASSWORD, Tokens};
use guichet_tests::{Options, Response, TestApp};
use serde_json::{Value, json};

const WRONG: &str = "Wrong-Password-1!";
const NEW_PASSWORD: &str = "Battery-Staple-97?";

// ------------------------------------------------------------------ helpers

/// Runs `f(i)` for `i` in `0..n` on `n` threads released at the same time.
fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// How many answers carry `status` and problem `code`.
fn count(answers: &[Response], status: u16, code: &str) -> usize {
    answers
        .iter()
        .filter(|r| r.status == status && r.json()["code"] == code)
        .count()
}

/// Fails unless every answer is one of `allowed` (status, code).
fn only(answers: &[Response], allowed: &[(u16, &str)]) {
    for r in answers {
        let code = r.json()["code"].as_str().unwrap_or_default().to_owned();
        assert!(
            allowed.iter().any(|(s, c)| *s == r.status && *c == code),
            "unexpected answer {} {}",
            r.status,
            r.text()
        );
    }
}

fn post(app: &TestApp, path: &str, body: &Value) -> Response {
    app.request("POST", path).json(body).send()
}

fn solved_challenge(app: &TestApp) -> Value {
    let res = app.get("/v1/auth/challenge");
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    let token = body["token"].as_str().unwrap().to_owned();
    let difficulty = u8::try_from(body["difficulty"].as_u64().unwrap()).unwrap();
    let nonce = guichet_domain::challenge::solve(&token, difficulty);
    json!({"token": token, "nonce": nonce})
}

fn login(
    app: &TestApp,
    org: &Org,
    email: &str,
    password: &str,
    challenge: Option<&Value>,
) -> Response {
    let mut body = json!({"organization": org.slug, "email": email, "password": password});
    if let Some(c) = challenge {
        body["challenge"] = c.clone();
    }
    post(app, "/v1/auth/login", &body)
}

fn change_password(
    app: &TestApp,
    access: &str,
    current: &str,
    new: &str,
    challenge: Option<&Value>,
) -> Response {
    let mut body = json!({"current_password": current, "new_password": new});
    if let Some(c) = challenge {
        body["challenge"] = c.clone();
    }
    app.request("PUT", "/v1/me/password")
        .bearer(access)
        .json(&body)
        .send()
}

fn block(app: &TestApp, org: &Org, customer_id: &str) {
    let res = app
        .request("POST", &format!("/v1/admin/customers/{customer_id}/block"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
}

fn customer_id(app: &TestApp, org: &Org, email: &str, mobile: Option<&str>) -> String {
    app.customer(org, email, mobile)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ------------------------------------------------------ failed sign-ins

#[test]
fn thirty_wrong_passwords_at_once_get_three_checks_then_a_challenge() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);

    let answers = at_once(30, |_| login(&app, &org, "claire@example.com", WRONG, None));
    only(
        &answers,
        &[(401, "invalid_credentials"), (401, "challenge_required")],
    );
    // As in sequence: three checks, then a challenge for everything else.
    assert_eq!(count(&answers, 401, "invalid_credentials"), 3);
    assert_eq!(count(&answers, 401, "challenge_required"), 27);
    // The right password now needs a challenge too.
    login(&app, &org, "claire@example.com", PASSWORD, None)
        .assert_problem(401, "challenge_required");
}

#[test]
fn wrong_passwords_with_solved_challenges_at_once_stop_at_the_lock() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    for _ in 0..3 {
        login(&app, &org, "claire@example.com", WRONG, None)
            .assert_problem(401, "invalid_credentials");
    }
    let challenges = at_once(20, |_| solved_challenge(&app));

    let answers = at_once(20, |i| {
        login(
            &app,
            &org,
            "claire@example.com",
            WRONG,
            Some(&challenges[i]),
        )
    });
    only(
        &answers,
        &[(401, "invalid_credentials"), (429, "account_locked")],
    );
    // Failures 4 to 10 are checked; the tenth locks, whatever the timing.
    assert_eq!(count(&answers, 401, "invalid_credentials"), 7);
    assert_eq!(count(&answers, 429, "account_locked"), 13);
    let locked = login(
        &app,
        &org,
        "claire@example.com",
        PASSWORD,
        Some(&solved_challenge(&app)),
    );
    locked.assert_problem(429, "account_locked");
    assert!(locked.header("retry-after").is_some());
}

#[test]
fn an_unknown_email_is_throttled_the_same_under_concurrency() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let answers = at_once(20, |_| login(&app, &org, "nobody@example.com", WRONG, None));
    assert_eq!(count(&answers, 401, "invalid_credentials"), 3);
    assert_eq!(count(&answers, 401, "challenge_required"), 17);
}

#[test]
fn staff_sign_in_is_throttled_under_concurrency() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let answers = at_once(20, |_| {
        post(
            &app,
            "/v1/auth/staff/login",
            &json!({"organization": org.slug, "email": org.admin_email, "password": WRONG}),
        )
    });
    assert_eq!(count(&answers, 401, "invalid_credentials"), 3);
    assert_eq!(count(&answers, 401, "challenge_required"), 17);
}

#[test]
fn after_an_expired_lock_concurrent_attempts_get_one_check() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    app.registered_customer(&org, "claire@example.com", None);
    for i in 0..10 {
        let challenge = (i >= 3).then(|| solved_challenge(&app));
        login(&app, &org, "claire@example.com", WRONG, challenge.as_ref())
            .assert_problem(401, "invalid_credentials");
    }
    app.clock.advance(Duration::minutes(16));
    let challenges = at_once(10, |_| solved_challenge(&app));
    let answers = at_once(10, |i| {
        login(
            &app,
            &org,
            "claire@example.com",
            WRONG,
            Some(&challenges[i]),
        )
    });
    assert_eq!(count(&answers, 401, "invalid_credentials"), 1);
    assert_eq!(count(&answers, 429, "account_locked"), 9);
}

// --------------------------------------------------------- password change

#[test]
fn wrong_current_passwords_are_throttled_like_sign_ins() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);

    // In sequence: three checks, then a challenge, then the lock.
    for _ in 0..3 {
        change_password(&app, &tokens.access, WRONG, NEW_PASSWORD, None)
            .assert_problem(422, "current_password_incorrect");
    }
    change_password(&app, &tokens.access, WRONG, NEW_PASSWORD, None)
        .assert_problem(401, "challenge_required");
    for _ in 3..10 {
        let challenge = solved_challenge(&app);
        change_password(&app, &tokens.access, WRONG, NEW_PASSWORD, Some(&challenge))
            .assert_problem(422, "current_password_incorrect");
    }
    let challenge = solved_challenge(&app);
    let locked = change_password(
        &app,
        &tokens.access,
        PASSWORD,
        NEW_PASSWORD,
        Some(&challenge),
    );
    locked.assert_problem(429, "account_locked");
    assert!(locked.header("retry-after").is_some());
    // The sign-in of the same customer is locked with it.
    login(
        &app,
        &org,
        "claire@example.com",
        PASSWORD,
        Some(&solved_challenge(&app)),
    )
    .assert_problem(429, "account_locked");
    // After the lock (and the access token, 15 minutes), the right
    // password with a challenge signs in, and the change works again.
    app.clock.advance(Duration::minutes(16));
    let challenge = solved_challenge(&app);
    let res = login(&app, &org, "claire@example.com", PASSWORD, Some(&challenge));
    assert_eq!(res.status, 200, "{}", res.text());
    let tokens = Tokens::from_json(&res.json());
    let res = change_password(&app, &tokens.access, PASSWORD, NEW_PASSWORD, None);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(
        login(&app, &org, "claire@example.com", NEW_PASSWORD, None).status,
        200
    );
}

#[test]
fn twenty_wrong_current_passwords_at_once_get_three_checks() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    let answers = at_once(20, |_| {
        change_password(&app, &tokens.access, WRONG, NEW_PASSWORD, None)
    });
    only(
        &answers,
        &[
            (422, "current_password_incorrect"),
            (401, "challenge_required"),
        ],
    );
    assert_eq!(count(&answers, 422, "current_password_incorrect"), 3);
    assert_eq!(count(&answers, 401, "challenge_required"), 17);
}

// ------------------------------------------------------------ code attempts

/// The stored record of the newest login code of `customer_id`.
fn login_code_record(app: &TestApp, customer_id: &str) -> codes::OneTimeCode {
    let mut conn = app.store.conn().unwrap();
    codes::latest_usable(&mut conn, customer_id, "login", app.clock.now())
        .unwrap()
        .expect("a login code is waiting")
}

#[test]
fn twenty_wrong_codes_at_once_are_compared_at_most_five_times() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let res = post(
        &app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let answers = at_once(20, |_| {
        post(
            &app,
            "/v1/auth/otp/verify",
            &json!({"organization": org.slug, "email": "claire@example.com", "code": wrong}),
        )
    });
    only(
        &answers,
        &[(422, "invalid_code"), (429, "code_attempts_exceeded")],
    );
    assert!(count(&answers, 422, "invalid_code") <= 4);
    assert!(count(&answers, 429, "code_attempts_exceeded") >= 16);
    // Exactly five entries were reserved (so at most five compared).
    assert_eq!(login_code_record(&app, &id).attempts, 5);
    // The right code is void now.
    post(
        &app,
        "/v1/auth/otp/verify",
        &json!({"organization": org.slug, "email": "claire@example.com", "code": code}),
    )
    .assert_problem(429, "code_attempts_exceeded");
}

#[test]
fn the_right_code_among_concurrent_wrong_ones_signs_in_at_most_once() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    customer_id(&app, &org, "claire@example.com", None);
    post(
        &app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    let answers = at_once(20, |_| {
        post(
            &app,
            "/v1/auth/otp/verify",
            &json!({"organization": org.slug, "email": "claire@example.com", "code": code}),
        )
    });
    let signed_in = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(signed_in, 1, "a code works once");
    only(
        &answers
            .into_iter()
            .filter(|r| r.status != 200)
            .collect::<Vec<_>>(),
        &[(422, "code_expired"), (429, "code_attempts_exceeded")],
    );
}

// ---------------------------------------------------------------- sending

#[test]
fn twenty_code_requests_at_once_send_no_more_than_the_destination_limit() {
    let app = TestApp::spawn_with(Options {
        args: vec!["--code-send-limit-per-destination".into(), "5".into()],
        ..Options::default()
    });
    let org = app.org("acme");
    customer_id(&app, &org, "claire@example.com", None);
    let answers = at_once(20, |_| {
        post(
            &app,
            "/v1/auth/otp/start",
            &json!({"organization": org.slug, "email": "claire@example.com"}),
        )
    });
    // The answer never changes (no enumeration)...
    assert!(answers.iter().all(|r| r.status == 202));
    // ...but only five codes go out.
    app.wait_for_messages("claire@example.com", 5);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(app.messages_now("claire@example.com").len(), 5);
    // An hour later, the destination may receive codes again.
    app.clock.advance(Duration::minutes(61));
    post(
        &app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    app.wait_for_messages("claire@example.com", 6);
}

#[test]
fn twenty_code_requests_at_once_from_one_address_stop_at_the_ip_limit() {
    let app = TestApp::spawn_with(Options {
        args: vec!["--code-send-limit-per-ip".into(), "5".into()],
        ..Options::default()
    });
    let org = app.org("acme");
    let answers = at_once(20, |i| {
        post(
            &app,
            "/v1/auth/password/forgot",
            &json!({"organization": org.slug, "email": format!("user{i}@example.com")}),
        )
    });
    only(&answers, &[(202, ""), (429, "rate_limited")]);
    assert_eq!(answers.iter().filter(|r| r.status == 202).count(), 5);
    assert_eq!(count(&answers, 429, "rate_limited"), 15);
    let refused = answers.iter().find(|r| r.status == 429).unwrap();
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    // The window slides with the server's clock.
    app.clock.advance(Duration::minutes(61));
    let res = post(
        &app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": "late@example.com"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
}

// ---------------------------------------------------------- a block is a block

#[test]
fn a_customer_blocked_after_otp_start_cannot_verify() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    post(
        &app,
        "/v1/auth/otp/start",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    block(&app, &org, &id);
    post(
        &app,
        "/v1/auth/otp/verify",
        &json!({"organization": org.slug, "email": "claire@example.com", "code": code}),
    )
    .assert_problem(403, "account_blocked");
}

#[test]
fn a_customer_blocked_after_register_cannot_verify_nor_gets_a_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let res = post(
        &app,
        "/v1/auth/register",
        &json!({"organization": org.slug, "email": "claire@example.com", "password": PASSWORD}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let code = app.nth_message("claire@example.com", 1).code(6).unwrap();
    block(&app, &org, &id);
    post(
        &app,
        "/v1/auth/register/verify",
        &json!({"organization": org.slug, "email": "claire@example.com", "code": code}),
    )
    .assert_problem(403, "account_blocked");
    // Nothing was set: the customer still has no access.
    let mut conn = app.store.conn().unwrap();
    assert_eq!(
        guichet_store::repo::customers::password_hash(&mut conn, &id).unwrap(),
        None
    );
}

#[test]
fn a_customer_blocked_after_the_activation_code_cannot_activate() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let id = customer_id(&app, &org, "claire@example.com", None);
    let res = app
        .request(
            "POST",
            &format!("/v1/admin/customers/{id}/activation-codes"),
        )
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let code = res.json()["activation_code"].as_str().unwrap().to_owned();
    block(&app, &org, &id);
    post(
        &app,
        "/v1/auth/activate",
        &json!({"organization": org.slug, "email": "claire@example.com",
                "activation_code": code, "password": PASSWORD}),
    )
    .assert_problem(403, "account_blocked");
}

#[test]
fn a_customer_blocked_after_forgot_cannot_reset() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let before = app.wait_for_messages("claire@example.com", 0).len();
    let res = post(
        &app,
        "/v1/auth/password/forgot",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let token = app
        .nth_message("claire@example.com", before + 1)
        .token()
        .unwrap();
    block(&app, &org, &id);
    post(
        &app,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": NEW_PASSWORD}),
    )
    .assert_problem(403, "account_blocked");
    // The old password is still the one (and the customer still blocked).
    login(&app, &org, "claire@example.com", PASSWORD, None).assert_problem(403, "account_blocked");
}

#[test]
fn a_blocked_customer_cannot_refresh_nor_sign_in_with_the_right_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, tokens) = app.registered_customer(&org, "claire@example.com", None);
    block(&app, &org, &id);
    post(
        &app,
        "/v1/auth/refresh",
        &json!({"refresh_token": tokens.refresh}),
    )
    .assert_problem(401, "invalid_refresh_token");
    login(&app, &org, "claire@example.com", PASSWORD, None).assert_problem(403, "account_blocked");
}

#[test]
fn a_disabled_staff_member_cannot_set_up_nor_sign_in_nor_refresh() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let res = app
        .request("POST", "/v1/admin/staff")
        .bearer(&org.admin)
        .json(&json!({"email": "agent@acme.example.com", "name": "Agent", "role": "agent"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let agent_id = res.json()["id"].as_str().unwrap().to_owned();
    let token = app
        .nth_message("agent@acme.example.com", 1)
        .token()
        .unwrap();
    let disable = |disabled: bool| {
        let res = app
            .request("PATCH", &format!("/v1/admin/staff/{agent_id}"))
            .bearer(&org.admin)
            .json(&json!({"disabled": disabled}))
            .send();
        assert_eq!(res.status, 200, "{}", res.text());
    };
    disable(true);
    post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": token, "password": PASSWORD}),
    )
    .assert_problem(403, "account_blocked");
    disable(false);
    let res = post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": token, "password": PASSWORD}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let tokens = Tokens::from_json(&res.json());
    disable(true);
    post(
        &app,
        "/v1/auth/staff/login",
        &json!({"organization": org.slug, "email": "agent@acme.example.com", "password": PASSWORD}),
    )
    .assert_problem(403, "account_blocked");
    post(
        &app,
        "/v1/auth/refresh",
        &json!({"refresh_token": tokens.refresh}),
    )
    .assert_problem(401, "invalid_refresh_token");
}

#[test]
fn sign_ins_racing_a_block_leave_no_working_session() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "claire@example.com", None);
    let answers = at_once(11, |i| {
        if i == 0 {
            block(&app, &org, &id);
            None
        } else {
            Some(login(&app, &org, "claire@example.com", PASSWORD, None))
        }
    });
    // Whatever won, no token given out works after the block.
    for res in answers.into_iter().flatten() {
        if res.status == 200 {
            let access = res.json()["access_token"].as_str().unwrap().to_owned();
            app.request("GET", "/v1/me")
                .bearer(&access)
                .send()
                .assert_problem(401, "invalid_token");
        } else {
            assert!(
                res.status == 403 || res.status == 401,
                "{} {}",
                res.status,
                res.text()
            );
        }
    }
}

// ------------------------------------------------------------ password rule

const DECORATED_COMMON: [&str; 4] = ["Password1!", "Welcome1!", "Azerty123!", "Abcdef1!"];

#[test]
fn register_refuses_decorated_common_passwords_and_personal_ones() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    customer_id(&app, &org, "claire.martin@example.com", None);
    for password in DECORATED_COMMON {
        let res = post(
            &app,
            "/v1/auth/register",
            &json!({"organization": org.slug, "email": "claire.martin@example.com", "password": password}),
        );
        let body = res.assert_problem(422, "password_too_common");
        assert_eq!(body["errors"][0]["field"], "password", "{password}");
    }
    // The e-mail's local part and the organization's name or slug.
    for password in ["Martin-2026!", "Cl@ire.Martin9", "Acme-Rocks-42!"] {
        post(
            &app,
            "/v1/auth/register",
            &json!({"organization": org.slug, "email": "claire.martin@example.com", "password": password}),
        )
        .assert_problem(422, "password_contains_personal_data");
    }
    // Nothing was sent.
    assert!(app.messages_now("claire.martin@example.com").is_empty());
}

#[test]
fn reset_and_change_refuse_decorated_common_and_personal_passwords() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    // The harness names customers "Test Customer".
    let (_, tokens) = app.registered_customer(&org, "claire@example.com", None);
    for password in DECORATED_COMMON {
        change_password(&app, &tokens.access, PASSWORD, password, None)
            .assert_problem(422, "password_too_common");
    }
    change_password(&app, &tokens.access, PASSWORD, "Customer-2026!", None)
        .assert_problem(422, "password_contains_personal_data");

    let before = app.wait_for_messages("claire@example.com", 0).len();
    post(
        &app,
        "/v1/auth/password/forgot",
        &json!({"organization": org.slug, "email": "claire@example.com"}),
    );
    let token = app
        .nth_message("claire@example.com", before + 1)
        .token()
        .unwrap();
    for password in DECORATED_COMMON {
        post(
            &app,
            "/v1/auth/password/reset",
            &json!({"token": token, "password": password}),
        )
        .assert_problem(422, "password_too_common");
    }
    post(
        &app,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": "Test-Claire-77!"}),
    )
    .assert_problem(422, "password_contains_personal_data");
    // The token still works with an acceptable password.
    let res = post(
        &app,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": NEW_PASSWORD}),
    );
    assert_eq!(res.status, 204, "{}", res.text());
}

// ------------------------------------------------------------- last admin

/// Adds an admin to `org`; with `set_up`, they choose a password and sign
/// in. Returns the member's id and, when set up, their access token.
fn add_admin(app: &TestApp, org: &Org, email: &str, set_up: bool) -> (String, Option<String>) {
    let res = app
        .request("POST", "/v1/admin/staff")
        .bearer(&org.admin)
        .json(&json!({"email": email, "name": "Second Admin", "role": "admin"}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();
    if !set_up {
        return (id, None);
    }
    let token = app.nth_message(email, 1).token().unwrap();
    let res = post(
        app,
        "/v1/auth/staff/setup",
        &json!({"token": token, "password": PASSWORD}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    (
        id,
        Some(res.json()["access_token"].as_str().unwrap().to_owned()),
    )
}

fn admin_id(app: &TestApp, org: &Org) -> String {
    let mut conn = app.store.conn().unwrap();
    staff::find_by_email(&mut conn, &org.id, &org.admin_email)
        .unwrap()
        .id
}

fn set_disabled(app: &TestApp, token: &str, id: &str, disabled: bool) -> Response {
    app.request("PATCH", &format!("/v1/admin/staff/{id}"))
        .bearer(token)
        .json(&json!({"disabled": disabled}))
        .send()
}

#[test]
fn an_admin_cannot_leave_only_an_admin_who_never_set_a_password() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (second, _) = add_admin(&app, &org, "second@acme.example.com", false);
    let me = admin_id(&app, &org);
    set_disabled(&app, &org.admin, &me, true).assert_problem(409, "last_admin");
    // Nor demote themselves.
    app.request("PATCH", &format!("/v1/admin/staff/{me}"))
        .bearer(&org.admin)
        .json(&json!({"role": "agent"}))
        .send()
        .assert_problem(409, "last_admin");
    // Once the other admin has a password, it can be done.
    let token = app
        .nth_message("second@acme.example.com", 1)
        .token()
        .unwrap();
    let res = post(
        &app,
        "/v1/auth/staff/setup",
        &json!({"token": token, "password": PASSWORD}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let res = set_disabled(&app, &org.admin, &me, true);
    assert_eq!(res.status, 200, "{}", res.text());
    let mut conn = app.store.conn().unwrap();
    assert_eq!(staff::count_working_admins(&mut conn, &org.id).unwrap(), 1);
    assert!(
        staff::get(&mut conn, &org.id, &second)
            .unwrap()
            .disabled_at
            .is_none()
    );
}

#[test]
fn two_admins_disabling_each_other_at_once_leave_one_working_admin() {
    let app = TestApp::spawn();
    for round in 0..5 {
        let org = app.org(&format!("org{round}"));
        let email = format!("second@org{round}.example.com");
        let (second, second_token) = add_admin(&app, &org, &email, true);
        let second_token = second_token.unwrap();
        let first = admin_id(&app, &org);
        let answers = at_once(2, |i| {
            if i == 0 {
                set_disabled(&app, &org.admin, &second, true)
            } else {
                set_disabled(&app, &second_token, &first, true)
            }
        });
        let succeeded = answers.iter().filter(|r| r.status == 200).count();
        assert!(succeeded <= 1, "round {round}: both admins were disabled");
        for r in answers.iter().filter(|r| r.status != 200) {
            assert!(
                (r.status == 409 && r.json()["code"] == "last_admin")
                    || (r.status == 401 && r.json()["code"] == "invalid_token"),
                "round {round}: {} {}",
                r.status,
                r.text()
            );
        }
        let mut conn = app.store.conn().unwrap();
        assert_eq!(
            staff::count_working_admins(&mut conn, &org.id).unwrap(),
            2 - succeeded as i64,
            "round {round}"
        );
    }
}
