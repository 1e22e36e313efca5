//! Killing the server in the middle of a money-moving request: the effect
//! and the `Idempotency-Key`'s answer commit together, so a retry with the
//! same key after a crash gets 409 `idempotency_key_in_use` while the
//! first attempt's lease runs, then finishes the request exactly once.
//!
//! Runs on SQLite, or on PostgreSQL with `GUICHET_TEST_DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Db, RENT_ACCOUNT, Response, Server};

/// The first server's lease: long enough for a restart to happen inside
/// it even on a loaded machine (a PostgreSQL restart with migrations took
/// over 3 s while other builds ran), short enough to wait out.
const FIRST_LEASE: &str = "8";

/// [`FIRST_LEASE`] in seconds.
fn first_lease() -> u64 {
    FIRST_LEASE.parse().unwrap()
}

fn charge_body() -> Value {
    json!({"amount": {"amount": 4_200, "currency": "EUR"}, "label": "Régularisation charges"})
}

fn charge(server: &Server, token: &str, account: &str, key: &str) -> Response {
    server.post(
        &format!("/v1/admin/accounts/{account}/charges"),
        Some(token),
        &[("Idempotency-Key", key)],
        &charge_body(),
    )
}

fn account(server: &Server, token: &str, account: &str) -> Value {
    let res = server.get(&format!("/v1/admin/accounts/{account}"), Some(token));
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
}

fn charges_labelled(detail: &Value, label: &str) -> usize {
    detail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["label"] == label)
        .count()
}

/// A retry within the lease: 409 `idempotency_key_in_use` with a
/// `Retry-After` of 1 to `lease` seconds; returns it.
fn assert_in_use(res: &Response, lease: u64) -> u64 {
    assert_eq!(res.status, 409, "{}", res.body);
    assert_eq!(
        res.code().as_deref(),
        Some("idempotency_key_in_use"),
        "{}",
        res.body
    );
    let seconds: u64 = res
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {res:?}"))
        .parse()
        .unwrap();
    assert!((1..=lease).contains(&seconds), "Retry-After {seconds}");
    seconds
}

/// Sleeps past `Retry-After` seconds.
fn wait_out(seconds: u64) {
    std::thread::sleep(Duration::from_millis(seconds * 1000 + 200));
}

#[test]
fn a_charge_killed_inside_its_commit_is_finished_once_by_the_retry() {
    let db = Db::fresh("charge");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "account_charge:30000",
        ],
    );
    let admin = server.admin_token();
    let tenant = server.tenant_token();
    let id = server.tenant_account(&tenant, RENT_ACCOUNT);
    let before = account(&server, &admin, &id);
    let balance = before["balance"]["amount"].as_i64().unwrap();

    // The first attempt stops right before its COMMIT, and the server dies.
    let addr = server.addr.clone();
    let (admin_for, id_for) = (admin.clone(), id.clone());
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            &format!("/v1/admin/accounts/{id_for}/charges"),
            Some(&admin_for),
            &[("Idempotency-Key", "rent-adjustment-1")],
            Some(&charge_body()),
        )
    });
    server.wait_for_pause("account_charge");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &["--idempotency-lock-seconds", "2"]);
    let admin = server.admin_token();
    // Nothing committed, and the key is locked for the rest of its lease.
    let after_crash = account(&server, &admin, &id);
    assert_eq!(after_crash["balance"]["amount"], balance, "{after_crash}");
    let busy = charge(&server, &admin, &id, "rent-adjustment-1");
    let wait = assert_in_use(&busy, first_lease());

    // After the lease the retry takes the key over and charges, once.
    wait_out(wait);
    let done = charge(&server, &admin, &id, "rent-adjustment-1");
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(done.header("idempotent-replayed").is_none());
    assert_eq!(done.json()["balance"]["amount"], balance + 4_200);
    let again = charge(&server, &admin, &id, "rent-adjustment-1");
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);
    let detail = account(&server, &admin, &id);
    assert_eq!(detail["balance"]["amount"], balance + 4_200, "{detail}");
    assert_eq!(
        charges_labelled(&detail, "Régularisation charges"),
        1,
        "{detail}"
    );

    // A new key is a new charge (the client asked for two).
    let second = charge(&server, &admin, &id, "rent-adjustment-2");
    assert_eq!(second.status, 201, "{}", second.body);
    let detail = account(&server, &admin, &id);
    assert_eq!(detail["balance"]["amount"], balance + 8_400, "{detail}");
    assert_eq!(charges_labelled(&detail, "Régularisation charges"), 2);
    server.kill();
}

/// A one-off mandate drafted for the tenant's rent account, and a code sent
/// by SMS to sign it; returns the mandate id and the code.
fn draft_with_code(server: &Server, db: &Db, tenant: &str) -> (String, String) {
    let id = server.tenant_account(tenant, RENT_ACCOUNT);
    let draft = server.post(
        &format!("/v1/me/accounts/{id}/mandates"),
        Some(tenant),
        &[],
        &json!({"iban": "FR1420041010050500013M02606", "mode": "one_off",
                "debtor_address": ["8 rue des Lilas", "75011 Paris"]}),
    );
    assert_eq!(draft.status, 201, "{}", draft.body);
    let mandate = draft.json()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {}", draft.body))
        .to_owned();
    let before = db.sms().len();
    let sent = server.post(
        &format!("/v1/me/mandates/{mandate}/otp"),
        Some(tenant),
        &[],
        &json!({"channel": "sms"}),
    );
    assert!(sent.status < 300, "{}", sent.body);
    (mandate, db.sms_code_after(before))
}

fn sign(server: &Server, tenant: &str, mandate: &str, code: &str, key: &str) -> Response {
    server.post(
        &format!("/v1/me/mandates/{mandate}/signature"),
        Some(tenant),
        &[("Idempotency-Key", key)],
        &json!({"code": code}),
    )
}

/// The confirmation e-mails (with the signed PDF) of `umr`, waiting a
/// moment for the outbox.
fn confirmations(db: &Db, umr: &str) -> usize {
    std::thread::sleep(Duration::from_millis(500));
    db.emails().iter().filter(|e| e.contains(umr)).count()
}

#[test]
fn a_signature_killed_inside_its_commit_is_finished_once_by_the_retry() {
    let db = Db::fresh("signature");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "mandate_signature:30000",
        ],
    );
    let tenant = server.tenant_token();
    let (mandate, code) = draft_with_code(&server, &db, &tenant);

    let addr = server.addr.clone();
    let (tenant_for, mandate_for, code_for) = (tenant.clone(), mandate.clone(), code.clone());
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            &format!("/v1/me/mandates/{mandate_for}/signature"),
            Some(&tenant_for),
            &[("Idempotency-Key", "sign-1")],
            Some(&json!({"code": code_for})),
        )
    });
    server.wait_for_pause("mandate_signature");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &["--idempotency-lock-seconds", "2"]);
    let tenant = server.tenant_token();
    let draft = server.get(&format!("/v1/me/mandates/{mandate}"), Some(&tenant));
    assert_eq!(draft.json()["status"], "draft", "{}", draft.body);
    let busy = sign(&server, &tenant, &mandate, &code, "sign-1");
    let wait = assert_in_use(&busy, first_lease());

    wait_out(wait);
    let done = sign(&server, &tenant, &mandate, &code, "sign-1");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.header("idempotent-replayed").is_none());
    let review = done.json();
    assert_eq!(review["status"], "signed", "{review}");
    let umr = review["umr"].as_str().unwrap().to_owned();
    assert_eq!(
        review["collections"].as_array().unwrap().len(),
        1,
        "{review}"
    );
    let again = sign(&server, &tenant, &mandate, &code, "sign-1");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);

    // Signed once: one reference, one confirmation with its PDF; a new key
    // finds the mandate no longer a draft.
    let other = sign(&server, &tenant, &mandate, &code, "sign-2");
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code().as_deref(), Some("mandate_not_draft"));
    let read = server.get(&format!("/v1/me/mandates/{mandate}"), Some(&tenant));
    assert_eq!(read.json()["umr"], umr.as_str());
    assert_eq!(read.json()["collections"], review["collections"]);
    assert_eq!(confirmations(&db, &umr), 1);
    server.kill();
}

#[test]
fn of_twelve_concurrent_charges_with_one_key_exactly_one_charges() {
    let db = Db::fresh("concurrent");
    // A short pause before the COMMIT keeps the first attempt running while
    // the others arrive.
    let server = Server::start(&db, &["--fault-pause", "account_charge:300"]);
    let admin = server.admin_token();
    let tenant = server.tenant_token();
    let id = server.tenant_account(&tenant, RENT_ACCOUNT);
    let balance = account(&server, &admin, &id)["balance"]["amount"]
        .as_i64()
        .unwrap();

    let answers: Vec<Response> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| charge(&server, &admin, &id, "same-key")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let fresh = answers
        .iter()
        .filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "{answers:#?}");
    for r in &answers {
        let replayed = r.status == 201 && r.header("idempotent-replayed") == Some("true");
        let busy = r.status == 409
            && r.code().as_deref() == Some("idempotency_key_in_use")
            && r.header("retry-after").is_some();
        assert!(
            replayed || busy || r.header("idempotent-replayed").is_none() && r.status == 201,
            "{r:?}"
        );
    }
    let detail = account(&server, &admin, &id);
    assert_eq!(detail["balance"]["amount"], balance + 4_200, "{detail}");
    assert_eq!(charges_labelled(&detail, "Régularisation charges"), 1);
    server.kill();
}

// ----------------------------------------------------------------- regularizations

/// The lender of the demo data, its admin and the customer of the README's
/// session, whose schedule `FR-10398` has an unpaid debit.
const LENDER: &str = "fractio";
const LENDER_ADMIN: (&str, &str) = ("admin@fractio.guichet.localhost", "Admin-Fractio-2026!");
const SOPHIE: (&str, &str) = ("sophie.laurent@example.com", "Sophie-Demo-2026!");

fn lender_token(server: &Server, path: &str, who: (&str, &str)) -> String {
    let res = server.post(
        path,
        None,
        &[],
        &json!({"organization": LENDER, "email": who.0, "password": who.1}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["access_token"].as_str().unwrap().to_owned()
}

/// Sophie's token and the id of her unpaid schedule.
fn sophie_and_unpaid(server: &Server) -> (String, String) {
    let token = lender_token(server, "/v1/auth/login", SOPHIE);
    let res = server.get("/v1/me/schedules?limit=100", Some(&token));
    assert_eq!(res.status, 200, "{}", res.body);
    let id = res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["order_number"] == "FR-10398")
        .unwrap_or_else(|| panic!("no FR-10398: {}", res.body))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, id)
}

fn card_token(server: &Server, number: &str) -> String {
    let res = server.post(
        "/v1/sandbox/card-tokens",
        None,
        &[],
        &json!({"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["token"].as_str().unwrap().to_owned()
}

fn regularize(server: &Server, token: &str, id: &str, key: &str, card: &str) -> Response {
    server.post(
        &format!("/v1/me/schedules/{id}/regularization"),
        Some(token),
        &[("Idempotency-Key", key)],
        &json!({"payments": 1, "card_token": card}),
    )
}

/// The lender's sandbox ledger: what the payment service provider charged.
fn ledger(server: &Server) -> Vec<Value> {
    let admin = lender_token(server, "/v1/auth/staff/login", LENDER_ADMIN);
    let res = server.get("/v1/sandbox/charges?limit=100", Some(&admin));
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["data"].as_array().unwrap().clone()
}

/// The gateway key of the `attempt`-th regularization of schedule `id`.
fn gateway_key(id: &str, attempt: u32) -> String {
    guichet_domain::schedule::idempotency_key(&format!("{id}:regularization"), attempt)
}

/// The ledger's successful charges for the regularizations of `id` (other
/// demo schedules may be debited by the server's own debit run meanwhile).
fn succeeded(ledger: &[Value], id: &str) -> usize {
    let keys = [gateway_key(id, 1), gateway_key(id, 2), gateway_key(id, 3)];
    ledger
        .iter()
        .filter(|c| c["outcome"] == "succeeded")
        .filter(|c| keys.iter().any(|k| c["idempotency_key"] == k.as_str()))
        .count()
}

/// Starts a regularization that the server will not answer (it is killed
/// first), then returns once `ready` says the moment has come.
fn regularize_then_kill(
    server: Server,
    card: &str,
    key: &str,
    ready: impl FnOnce(&Server, &str),
) -> (String, String, i64) {
    let (token, id) = sophie_and_unpaid(&server);
    let unpaid = server
        .get(&format!("/v1/me/schedules/{id}"), Some(&token))
        .json()["unpaid"]["amount"]
        .as_i64()
        .unwrap();
    assert!(unpaid > 0);
    let card = card_token(&server, card);
    let addr = server.addr.clone();
    let (token_for, id_for, key_for, card_for) =
        (token.clone(), id.clone(), key.to_owned(), card.clone());
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            &format!("/v1/me/schedules/{id_for}/regularization"),
            Some(&token_for),
            &[("Idempotency-Key", &key_for)],
            Some(&json!({"payments": 1, "card_token": card_for})),
        )
    });
    ready(&server, &id);
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );
    (id, card, unpaid)
}

/// After the crash: the key is locked for the rest of its lease, then the
/// retry with the same key looks the charge up and finishes it, once; a new
/// key finds nothing left to pay, and the gateway charged once.
fn retry_finishes_once(db: &Db, id: &str, card: &str, key: &str) {
    let server = Server::start(db, &["--idempotency-lock-seconds", "2"]);
    let (token, _) = sophie_and_unpaid(&server);
    assert_eq!(
        succeeded(&ledger(&server), id),
        1,
        "the gateway charged before the crash"
    );
    let busy = regularize(&server, &token, id, key, card);
    let wait = assert_in_use(&busy, first_lease());
    wait_out(wait);
    let done = regularize(&server, &token, id, key, card);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["unpaid"]["amount"], 0, "{}", done.body);
    let again = regularize(&server, &token, id, key, card);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);
    let other = regularize(&server, &token, id, &format!("{key}-new"), card);
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code().as_deref(), Some("nothing_to_regularize"));
    let charged = ledger(&server);
    assert_eq!(succeeded(&charged, id), 1, "charged once: {charged:?}");
    assert!(
        charged
            .iter()
            .all(|c| c["idempotency_key"] != gateway_key(id, 2).as_str()),
        "no second attempt reached the gateway: {charged:?}"
    );
    server.kill();
}

#[test]
fn a_regularization_killed_between_the_gateway_charge_and_its_commit_is_charged_once() {
    let db = Db::fresh("regslow");
    let server = Server::start(&db, &["--idempotency-lock-seconds", FIRST_LEASE]);
    // The slow test card is charged at once and answered 15 s later: the
    // server dies in between, once the gateway's ledger shows the charge.
    let (id, card, unpaid) =
        regularize_then_kill(server, "4000000000000077", "reg-crash-1", |server, id| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while succeeded(&ledger(server), id) == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the gateway was never called"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    assert!(unpaid > 0);
    retry_finishes_once(&db, &id, &card, "reg-crash-1");
}

#[test]
fn a_regularization_killed_inside_its_commit_is_charged_once() {
    let db = Db::fresh("regcommit");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "regularization:30000",
        ],
    );
    let (id, card, _) =
        regularize_then_kill(server, "4242424242424242", "reg-crash-2", |server, _| {
            server.wait_for_pause("regularization")
        });
    retry_finishes_once(&db, &id, &card, "reg-crash-2");
}

/// The demo's accounting office (consent invitations).
const OFFICE: (&str, &str, &str) = (
    "fiduciaire",
    "admin@fiduciaire.guichet.localhost",
    "Admin-Fiduciaire-2026!",
);
const CLIENT_REFERENCE: &str = "BE-CARO-0042-4242";

fn office_token(server: &Server) -> String {
    let res = server.post(
        "/v1/auth/staff/login",
        None,
        &[],
        &json!({"organization": OFFICE.0, "email": OFFICE.1, "password": OFFICE.2}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["access_token"].as_str().unwrap().to_owned()
}

fn consent_account(server: &Server, office: &str) -> String {
    let res = server.get("/v1/admin/consent-accounts", Some(office));
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client_reference"] == CLIENT_REFERENCE)
        .unwrap_or_else(|| panic!("no consent account: {}", res.body))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn order_body(account: &str, email: &str) -> Value {
    json!({"account_id": account, "cardholder_name": "Anne Martin", "email": email,
           "mobile": "+32470123467", "language": "fr"})
}

/// The e-mails to `to` written by the outbox so far, waiting a moment for
/// it.
fn emails_to(db: &Db, to: &str) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(500));
    db.emails().into_iter().filter(|e| e.contains(to)).collect()
}

/// The consent events of the office with this consent id.
fn consent_events(server: &Server, office: &str, consent: &str, kind: &str) -> usize {
    let res = server.get(
        &format!("/v1/admin/events?type={kind}&limit=100"),
        Some(office),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"]["id"] == consent)
        .count()
}

#[test]
fn a_consent_order_killed_inside_its_commit_is_made_once_by_the_retry() {
    let db = Db::fresh("consent_order");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "consent_order:30000",
        ],
    );
    let office = office_token(&server);
    let account = consent_account(&server, &office);
    let email = "crash.order@example.com";
    let addr = server.addr.clone();
    let (office_for, body) = (office.clone(), order_body(&account, email));
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            "/v1/admin/consents",
            Some(&office_for),
            &[("Idempotency-Key", "order-1")],
            Some(&body),
        )
    });
    server.wait_for_pause("consent_order");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &["--idempotency-lock-seconds", "2"]);
    let office = office_token(&server);
    let order = |key: &str| {
        server.post(
            "/v1/admin/consents",
            Some(&office),
            &[("Idempotency-Key", key)],
            &order_body(&account, email),
        )
    };
    let busy = order("order-1");
    let wait = assert_in_use(&busy, first_lease());
    assert!(emails_to(&db, email).is_empty(), "nothing was sent");
    wait_out(wait);
    let done = order("order-1");
    assert_eq!(done.status, 201, "{}", done.body);
    let again = order("order-1");
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);
    let id = done.json()["id"].as_str().unwrap().to_owned();
    let list = server.get("/v1/admin/consents?limit=100", Some(&office));
    let ordered = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["email"] == email)
        .count();
    assert_eq!(ordered, 1, "one consent: {}", list.body);
    assert_eq!(emails_to(&db, email).len(), 1, "one invitation");
    assert_eq!(
        consent_events(&server, &office, &id, "consent.invitation_sent"),
        1
    );
    server.kill();
}

/// Takes a fresh consent through the SMS code, the card and the bank
/// (succeeded); returns its id and its link's token.
fn consent_at_the_bank(server: &Server, db: &Db, office: &str, email: &str) -> (String, String) {
    let account = consent_account(server, office);
    let res = server.post(
        "/v1/admin/consents",
        Some(office),
        &[],
        &order_body(&account, email),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let id = res.json()["id"].as_str().unwrap().to_owned();
    // The body may be quoted-printable: undo its soft line breaks.
    let invitation = emails_to(db, email)
        .pop()
        .expect("the invitation")
        .replace("=\r\n", "");
    let start = invitation.find("/v1/consents/").expect("the link") + "/v1/consents/".len();
    let link: String = invitation[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let sms_before = db.sms().len();
    let sent = server.post(
        &format!("/v1/consents/{link}/sms-code"),
        None,
        &[],
        &json!({}),
    );
    assert_eq!(sent.status, 202, "{}", sent.body);
    let code = db.sms_code_after(sms_before);
    let verified = server.post(
        &format!("/v1/consents/{link}/sms-code/verification"),
        None,
        &[],
        &json!({"code": code}),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    let step = verified.json()["step_token"].as_str().unwrap().to_owned();
    let card = card_token(server, "4242424242424242");
    let res = server.post(
        &format!("/v1/consents/{link}/card"),
        None,
        &[],
        &json!({"step_token": step, "card_token": card, "client_reference": CLIENT_REFERENCE,
                "terms_accepted": true, "terms_version": "2026-11"}),
    );
    assert_eq!(res.status, 202, "{}", res.body);
    let url = res.json()["next_action"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = &url[url.find("/v1/sandbox/sca/").unwrap()..];
    let bank = server.post(path, None, &[], &json!({"outcome": "succeeded"}));
    assert_eq!(bank.status, 200, "{}", bank.body);
    (id, link)
}

#[test]
fn a_consent_completion_killed_inside_its_commit_is_finished_once_by_the_retry() {
    let db = Db::fresh("consent_completion");
    let server = Server::start(&db, &["--fault-pause", "consent_completion:30000"]);
    let office = office_token(&server);
    let email = "crash.completion@example.com";
    let (id, link) = consent_at_the_bank(&server, &db, &office, email);
    let invitations = emails_to(&db, email).len();

    let addr = server.addr.clone();
    let link_for = link.clone();
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            &format!("/v1/consents/{link_for}/completion"),
            None,
            &[],
            None,
        )
    });
    server.wait_for_pause("consent_completion");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &[]);
    let office = office_token(&server);
    // Nothing committed: still at the bank, no confirmation, no event.
    let view = server.get(&format!("/v1/admin/consents/{id}"), Some(&office));
    assert_eq!(view.json()["status"], "awaiting_bank", "{}", view.body);
    assert_eq!(emails_to(&db, email).len(), invitations);
    assert_eq!(
        consent_events(&server, &office, &id, "consent.activated"),
        0
    );

    // The cardholder comes back from the bank again: activated once.
    let done = server.post(
        &format!("/v1/consents/{link}/completion"),
        None,
        &[],
        &json!({}),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["status"], "active", "{}", done.body);
    let again = server.post(
        &format!("/v1/consents/{link}/completion"),
        None,
        &[],
        &json!({}),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.code().as_deref(), Some("consent_already_active"));
    assert_eq!(
        emails_to(&db, email).len(),
        invitations + 1,
        "one confirmation"
    );
    assert_eq!(
        consent_events(&server, &office, &id, "consent.activated"),
        1
    );
    let view = server.get(&format!("/v1/admin/consents/{id}"), Some(&office));
    let view = view.json();
    assert_eq!(view["status"], "active", "{view}");
    let activated = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "bank_succeeded")
        .count();
    assert_eq!(activated, 1, "{view}");
    server.kill();
}

/// Julie Moreau of the demo practice, signed in by the code sent to her
/// mobile.
fn julie(server: &Server, db: &Db) -> String {
    let before = db.sms().len();
    let started = server.post(
        "/v1/auth/otp/start",
        None,
        &[],
        &json!({"organization": "kine", "email": "julie.moreau@example.com"}),
    );
    assert!(started.status < 300, "{}", started.body);
    let code = db.sms_code_after(before);
    let verified = server.post(
        "/v1/auth/otp/verify",
        None,
        &[],
        &json!({"organization": "kine", "email": "julie.moreau@example.com", "code": code}),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    verified.json()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_booking_request_killed_inside_its_commit_is_made_once_by_the_retry() {
    let db = Db::fresh("booking_request");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "booking_request:30000",
        ],
    );
    let token = julie(&server, &db);
    let services = server.get("/v1/me/booking-services", Some(&token));
    let service = services.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["duration_minutes"] == 30)
        .unwrap_or_else(|| panic!("no 30-minute service: {}", services.body))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let from = chrono::Utc::now().date_naive() + chrono::Days::new(3);
    let to = from + chrono::Days::new(6);
    let slots = server.get(
        &format!("/v1/me/booking-slots?service={service}&from={from}&to={to}"),
        Some(&token),
    );
    assert_eq!(slots.status, 200, "{}", slots.body);
    let slot = slots.json()["data"][0].clone();
    let start = slot["start"].as_str().unwrap().to_owned();
    // With its practitioner: a second request for that start finds her
    // taken, whoever else is free then.
    let body =
        json!({"service_id": service, "start": start, "provider_id": slot["provider_ids"][0]});
    let upcoming = |server: &Server, token: &str| {
        server.get("/v1/me/bookings?limit=100", Some(token)).json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["start"] == start.as_str())
            .count()
    };

    let addr = server.addr.clone();
    let (token_for, body_for) = (token.clone(), body.clone());
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            "/v1/me/bookings",
            Some(&token_for),
            &[("Idempotency-Key", "book-1")],
            Some(&body_for),
        )
    });
    server.wait_for_pause("booking_request");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &["--idempotency-lock-seconds", "2"]);
    assert_eq!(upcoming(&server, &token), 0, "nothing committed");
    let book = |key: &str| {
        server.post(
            "/v1/me/bookings",
            Some(&token),
            &[("Idempotency-Key", key)],
            &body,
        )
    };
    let busy = book("book-1");
    let wait = assert_in_use(&busy, first_lease());
    wait_out(wait);
    let done = book("book-1");
    assert_eq!(done.status, 201, "{}", done.body);
    assert!(done.header("idempotent-replayed").is_none());
    let again = book("book-1");
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);
    assert_eq!(upcoming(&server, &token), 1, "booked once");
    // Another key asks for the same slot again: taken.
    let other = book("book-2");
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code().as_deref(), Some("slot_taken"));
    server.kill();
}

/// A token of the demo practice's admin.
fn kine_admin(server: &Server) -> String {
    let res = server.post(
        "/v1/auth/staff/login",
        None,
        &[],
        &json!({"organization": "kine", "email": "admin@kine.guichet.localhost", "password": "Admin-Kine-2026!"}),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["access_token"].as_str().unwrap().to_owned()
}

/// An issued payment request of 80.00 EUR to Julie: its id.
fn invoice_for_julie(server: &Server, admin: &str, julie_token: &str) -> String {
    let me = server.get("/v1/me", Some(julie_token));
    assert_eq!(me.status, 200, "{}", me.body);
    let customer = me.json()["id"].as_str().unwrap().to_owned();
    let due = chrono::Utc::now().date_naive() + chrono::Days::new(20);
    let res = server.post(
        "/v1/admin/invoices",
        Some(admin),
        &[],
        &json!({"customer_id": customer, "amount": 8000, "reason": "Séances", "due_date": due}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let issued = server.post(
        &format!("/v1/admin/invoices/{id}/issue"),
        Some(admin),
        &[],
        &json!({}),
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    id
}

/// The demo practice's successful sandbox charges of invoice `id`.
fn invoice_charges(server: &Server, admin: &str, id: &str) -> usize {
    let keys: Vec<String> = (1..=3)
        .map(|n| guichet_domain::schedule::idempotency_key(&format!("{id}:payment"), n))
        .collect();
    let res = server.get("/v1/sandbox/charges?limit=100", Some(admin));
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "succeeded")
        .filter(|c| keys.iter().any(|k| c["idempotency_key"] == k.as_str()))
        .count()
}

#[test]
fn an_invoice_payment_killed_inside_its_commit_is_charged_once() {
    let db = Db::fresh("invoice_payment");
    let server = Server::start(
        &db,
        &[
            "--idempotency-lock-seconds",
            FIRST_LEASE,
            "--fault-pause",
            "invoice_payment:30000",
        ],
    );
    let token = julie(&server, &db);
    let admin = kine_admin(&server);
    let id = invoice_for_julie(&server, &admin, &token);
    let card = card_token(&server, "4242424242424242");
    let body = json!({"card_token": card});
    let addr = server.addr.clone();
    let (token_for, path, body_for) = (
        token.clone(),
        format!("/v1/me/invoices/{id}/payments"),
        body.clone(),
    );
    let first = std::thread::spawn(move || {
        support::try_request(
            &addr,
            "POST",
            &path,
            Some(&token_for),
            &[("Idempotency-Key", "inv-1")],
            Some(&body_for),
        )
    });
    server.wait_for_pause("invoice_payment");
    server.kill();
    assert!(
        first.join().unwrap().is_none(),
        "the killed request got no answer"
    );

    let server = Server::start(&db, &["--idempotency-lock-seconds", "2"]);
    let admin = kine_admin(&server);
    assert_eq!(
        invoice_charges(&server, &admin, &id),
        1,
        "charged before the crash"
    );
    let invoice = server.get(&format!("/v1/admin/invoices/{id}"), Some(&admin));
    assert_eq!(
        invoice.json()["amount_paid"],
        0,
        "nothing committed: {}",
        invoice.body
    );
    let pay = |key: &str| {
        server.post(
            &format!("/v1/me/invoices/{id}/payments"),
            Some(&token),
            &[("Idempotency-Key", key)],
            &body,
        )
    };
    let busy = pay("inv-1");
    let wait = assert_in_use(&busy, first_lease());
    wait_out(wait);
    let done = pay("inv-1");
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(done.json()["invoice"]["status"], "paid", "{}", done.body);
    let again = pay("inv-1");
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, done.body);
    let other = pay("inv-2");
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code().as_deref(), Some("invoice_already_paid"));
    assert_eq!(invoice_charges(&server, &admin, &id), 1, "charged once");
    let events = server.get("/v1/admin/events?type=invoice.paid&limit=100", Some(&admin));
    let paid = events.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"]["id"] == id.as_str())
        .count();
    assert_eq!(paid, 1, "{}", events.body);
    server.kill();
}
