//! `/v1/auth/...`: public sign-in flows for customers and staff.
//!
//! Every route here is rate limited per IP address. Answers never tell
//! whether an e-mail address has an account: unknown addresses and wrong
//! passwords give the same status and body, after the same work.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact::Email;
use guichet_domain::identity::{CODE_MAX_ATTEMPTS, SubjectKind, lifetimes};
use guichet_domain::password::{self, Personal, Verification};
use guichet_domain::{challenge, ids, secret};
use guichet_store::repo::codes::{self, OneTimeCode};
use guichet_store::repo::security_events::Kind as SecurityKind;
use guichet_store::repo::sessions::{self, RefreshUse};
use guichet_store::repo::{customers, staff, throttles};
use guichet_store::{DbConnection, OptionalExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::flows::{self, ChallengeAnswer, ClientInfo, TokenResponse};
use crate::edge::json::Json;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// Purposes of one-time codes and links.
pub mod purpose {
    pub const REGISTER: &str = "register";
    pub const LOGIN: &str = "login";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const ACTIVATION: &str = "activation";
    pub const STAFF_SETUP: &str = "staff_setup";
}

fn method_disabled() -> ApiError {
    ApiError::new(ProblemCode::LoginMethodDisabled).detail(
        "Ce mode de connexion n'est pas proposé par cette organisation.",
        "This organization does not offer this sign-in method.",
    )
}

fn hash_new_password(state: &AppState, password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    state
        .hash_slots
        .run(move || password::hash_password(&password))
        .map_err(|e| ApiError::internal(format!("hashing failed: {e}")))
}

/// Verifies `password` against `hash`, or burns the same time when there is
/// no hash (unknown account), so that both answers take as long.
fn verify(state: &AppState, password: &str, hash: Option<&str>) -> Verification {
    let (password, hash) = (password.to_owned(), hash.map(str::to_owned));
    state.hash_slots.run(move || match hash {
        Some(hash) => password::verify_password(&password, &hash),
        None => {
            password::burn_dummy_verification(&password);
            Verification::Mismatch
        }
    })
}

/// Runs `f` on a blocking thread with the state; `f` takes database
/// connections itself, so that it can give them back while it waits for a
/// password-hashing thread (a storm of sign-ins must not drain the pool).
async fn blocking_with_state<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    web::block(move || f(&state)).await?
}

async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&mut DbConnection, &AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    web::block(move || {
        let mut conn = state.store.conn()?;
        f(&mut conn, &state)
    })
    .await?
}

// ---------------------------------------------------------------- challenge

/// A proof-of-work challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeResponse {
    /// Opaque; send it back with the nonce you found.
    pub token: String,
    /// Leading zero bits required of SHA-256(token ":" nonce).
    pub difficulty: u8,
    pub expires_at: DateTime<Utc>,
    /// How to solve it.
    pub algorithm: &'static str,
}

/// Get a proof-of-work challenge.
///
/// Get a proof-of-work challenge (our captcha, no third party). Needed to
/// sign in after three failures: find a decimal nonce such that
/// SHA-256(token + ":" + nonce) starts with `difficulty` zero bits, then
/// send `{"token", "nonce"}` as `challenge` with the sign-in request.
#[utoipa::path(
    operation_id = "getChallenge",
    security(()),
    tag = "auth",
    responses(
        (status = 200, description = "A fresh challenge, valid 10 minutes, usable once.", body = ChallengeResponse),
        (status = 429, description = "Too many requests from this address. Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/challenge")]
pub async fn get_challenge(state: web::Data<AppState>) -> web::Json<ChallengeResponse> {
    let c = challenge::issue(
        &state.secret_key,
        state.clock.now(),
        challenge::DEFAULT_DIFFICULTY,
        lifetimes::one_time_code(),
    );
    web::Json(ChallengeResponse {
        token: c.token,
        difficulty: c.difficulty,
        expires_at: c.expires_at,
        algorithm: "Find the smallest decimal nonce (\"0\", \"1\", ...) such that SHA-256(token + \":\" + nonce) begins with `difficulty` zero bits.",
    })
}

// -------------------------------------------------------------------- login

/// Sign in with e-mail and password.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The organization's slug.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "my-shop", min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email", example = "jeanne.durand@example.org")]
    pub email: Email,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// A 30-day session instead of 12 hours.
    #[serde(default)]
    pub remember_me: bool,
    /// Required after three failed attempts.
    pub challenge: Option<ChallengeAnswer>,
}

/// Customer sign-in with e-mail and password.
#[utoipa::path(
    operation_id = "login",
    security(()),
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, description = "Codes: `invalid_credentials` (unknown e-mail or wrong password, never told apart), `challenge_required` (after 3 failures), `challenge_invalid`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Codes: `account_blocked` (right password, blocked by the business), `login_method_disabled`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `account_locked` (10 failures: 15 minutes, see `Retry-After`), `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking_with_state(&state, move |state| {
        let (key, customer, hash) = {
            let mut conn = state.store.conn()?;
            let conn = &mut *conn;
            let org = flows::organization(conn, &body.organization)?;
            if !org.login_methods.allows_password() {
                return Err(method_disabled());
            }
            let email = body.email.as_str();
            let key = flows::throttle_key(state, &org.id, SubjectKind::Customer, email);
            flows::pass_gate(conn, state, &key, body.challenge.as_ref(), now)?;
            let customer = customers::find_by_email(conn, &org.id, email).optional()?;
            let hash = match &customer {
                Some(c) => customers::password_hash(conn, &c.id)?,
                None => None,
            };
            (key, customer, hash)
        };
        // No connection is held while the hash runs.
        let verification = verify(state, &body.password, hash.as_deref());
        // The attempt was counted as a failure before the check.
        let (Verification::Match { needs_rehash }, Some(customer)) = (verification, customer)
        else {
            return Err(flows::invalid_credentials());
        };
        let rehashed = if needs_rehash {
            Some(hash_new_password(state, &body.password)?)
        } else {
            None
        };
        let mut conn = state.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            flows::passed_gate(conn, &key)?;
            if let Some(rehashed) = &rehashed {
                customers::set_password(conn, &customer.id, rehashed, now)?;
            }
            flows::open_customer_session(conn, state, &customer, body.remember_me, &client, now)
        })
    })
    .await
    .map(web::Json)
}

// ----------------------------------------------------------------- register

/// First connection: prove the e-mail and choose a password.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "my-shop", min_length = 1, max_length = 64)]
    pub organization: String,
    /// The e-mail given to the business (the login).
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// At least 8 characters with an upper-case letter, a lower-case letter,
    /// a digit and a special character; at most 128; not a common password.
    #[validate(length(max = 20000))]
    #[schema(max_length = 20000)]
    pub password: String,
}

/// Where a code was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// `sms` or `email`.
    #[schema(value_type = crate::routes::enums::SentChannel, example = "email")]
    pub channel: &'static str,
    /// The masked destination.
    #[schema(example = "c***@example.com")]
    pub destination: String,
    /// Minutes the code stays valid.
    #[schema(example = 10)]
    pub expires_in_minutes: i64,
}

fn code_sent(channel: Channel, destination: String) -> CodeSent {
    CodeSent {
        channel: channel.as_str(),
        destination,
        expires_in_minutes: lifetimes::one_time_code().num_minutes(),
    }
}

/// Stores a new code (voiding older ones of the same purpose) and queues
/// its message, in one transaction.
#[allow(clippy::too_many_arguments)]
fn send_code(
    conn: &mut DbConnection,
    state: &AppState,
    org: &guichet_domain::Organization,
    kind: SubjectKind,
    subject_id: &str,
    purpose: &str,
    channel: Channel,
    raw_destination: &str,
    masked_destination: &str,
    payload: Option<String>,
    template: impl FnOnce(String) -> Template,
    locale: guichet_domain::Locale,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let code = secret::numeric_code(6);
    let record = OneTimeCode {
        id: ids::new_id("otc"),
        org_id: org.id.clone(),
        subject_kind: kind,
        subject_id: subject_id.to_owned(),
        purpose: purpose.to_owned(),
        code_hash: flows::code_hash(state, purpose, &code),
        channel: channel.as_str().to_owned(),
        destination: masked_destination.to_owned(),
        destination_key: flows::destination_key(state, raw_destination),
        payload,
        attempts: 0,
        max_attempts: CODE_MAX_ATTEMPTS,
        expires_at: now + lifetimes::one_time_code(),
        consumed_at: None,
        created_at: now,
    };
    guichet_store::transaction(conn, |conn| {
        codes::void_all(conn, subject_id, purpose, now)?;
        codes::insert(conn, &record)?;
        notify::queue_sealed(
            conn,
            &state.outbox_key(),
            Some(&org.id),
            channel,
            raw_destination,
            &template(code),
            locale,
            now,
        )
    })?;
    Ok(())
}

/// First connection, step 1: e-mail a code to prove the address.
///
/// First connection, step 1: checks the password rule, then e-mails a
/// 6-digit code to prove the address is the customer's. The answer is the
/// same whether or not the address belongs to a customer.
#[utoipa::path(
    operation_id = "register",
    security(()),
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 202, description = "If the address belongs to a customer without access, a code was e-mailed.", body = CodeSent),
        (status = 403, description = "Codes: `login_method_disabled`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the rule; `errors` lists every unmet rule. Codes: `password_too_short`, `password_too_long`, `password_missing_uppercase`, `password_missing_lowercase`, `password_missing_digit`, `password_missing_special`, `password_too_common`, `password_contains_personal_data` (the organization's name or the e-mail given).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/register")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    flows::check_new_password("password", &body.password, &Personal::none())?;
    flows::limit_sends(&state, &req).await?;
    let now = state.clock.now();
    let masked = body.email.masked();
    blocking_with_state(&state, move |state| {
        let org = flows::organization(&mut *state.store.conn()?, &body.organization)?;
        if !org.login_methods.allows_password() {
            return Err(method_disabled());
        }
        // Only what the request itself gives (the organization and the
        // e-mail): the customer's name would tell whether the address has
        // an account.
        flows::check_new_password(
            "password",
            &body.password,
            &flows::personal(&org, None, body.email.as_str()),
        )?;
        // Hash, whatever happens next: the same work for every address,
        // and no connection held while it runs.
        let pending_hash = hash_new_password(state, &body.password)?;
        let mut conn = state.store.conn()?;
        let conn = &mut *conn;
        let email = body.email.as_str();
        let customer = customers::find_by_email(conn, &org.id, email).optional()?;
        let destination_key = flows::destination_key(state, email);
        let waiting = customer.filter(|c| c.registered_at.is_none() && c.blocked_at.is_none());
        if let Some(c) = waiting {
            if !flows::may_send(conn, state, &destination_key, now)? {
                return Ok(());
            }
            {
                let org_name = org.name.clone();
                send_code(
                    conn,
                    state,
                    &org,
                    SubjectKind::Customer,
                    &c.id,
                    purpose::REGISTER,
                    Channel::Email,
                    email,
                    &body.email.masked(),
                    Some(pending_hash),
                    |code| Template::RegisterCode { org_name, code },
                    c.locale,
                    now,
                )?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Accepted().json(code_sent(Channel::Email, masked)))
}

/// The code received, with the organization and e-mail it was sent for.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyCodeRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// The 6-digit code.
    #[validate(length(min = 1, max = 12))]
    #[schema(example = "123456", min_length = 1, max_length = 12)]
    pub code: String,
    /// A 30-day session instead of 12 hours.
    #[serde(default)]
    pub remember_me: bool,
}

/// The documented failures of a code check.
const CODE_FAILURES: &str =
    "Codes: `invalid_code` (with `remaining_attempts`), `code_expired` (none waiting: ask again).";

/// First connection, step 2: the code proves the e-mail and signs in.
///
/// First connection, step 2: the code proves the e-mail; the password
/// chosen at step 1 is set and the customer is signed in.
#[utoipa::path(
    operation_id = "verifyRegistration",
    security(()),
    tag = "auth",
    request_body = VerifyCodeRequest,
    responses(
        (status = 200, description = "Access created; signed in.", body = TokenResponse),
        (status = 403, description = "The customer was blocked after the code was sent. Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = CODE_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `code_attempts_exceeded` (5 wrong codes: ask again), `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/register/verify")]
pub async fn register_verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<VerifyCodeRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let org = flows::organization(conn, &body.organization)?;
        let customer = customers::find_by_email(conn, &org.id, body.email.as_str()).optional()?;
        let record = flows::check_code(
            conn,
            state,
            customer.as_ref().map(|c| c.id.as_str()),
            purpose::REGISTER,
            &body.code,
            now,
        )?;
        let customer = customer.ok_or_else(ApiError::not_found)?;
        let pending = record
            .payload
            .clone()
            .ok_or_else(|| ApiError::internal("registration code without password"))?;
        guichet_store::transaction(conn, |conn| {
            if !codes::consume(conn, &record.id, now)? {
                return Err(ApiError::new(ProblemCode::CodeExpired));
            }
            customers::set_password(conn, &customer.id, &pending, now)?;
            flows::open_customer_session(conn, state, &customer, body.remember_me, &client, now)
        })
    })
    .await
    .map(web::Json)
}

// --------------------------------------------------------------- otp login

/// Ask for a sign-in code.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpStartRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email")]
    pub email: Email,
}

/// Passwordless sign-in, step 1: send a 6-digit code.
///
/// Passwordless sign-in, step 1: a 6-digit code goes by SMS when the
/// customer has a mobile number, otherwise by e-mail; the answer names the
/// channel and the masked destination. For an address without account the
/// answer is the e-mail one, and nothing is sent.
#[utoipa::path(
    operation_id = "startOtpSignIn",
    security(()),
    tag = "auth",
    request_body = OtpStartRequest,
    responses(
        (status = 202, description = "A code was sent (if the address has an account).", body = CodeSent),
        (status = 403, description = "Codes: `login_method_disabled`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/otp/start")]
pub async fn otp_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<OtpStartRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    flows::limit_sends(&state, &req).await?;
    let now = state.clock.now();
    let sent = blocking(&state, move |conn, state| {
        let org = flows::organization(conn, &body.organization)?;
        if !org.login_methods.allows_passwordless() {
            return Err(method_disabled());
        }
        let customer = customers::find_by_email(conn, &org.id, body.email.as_str()).optional()?;
        let Some(c) = customer.filter(|c| c.blocked_at.is_none()) else {
            return Ok(code_sent(Channel::Email, body.email.masked()));
        };
        let mobile = c
            .mobile
            .as_deref()
            .and_then(|m| guichet_domain::contact::Msisdn::parse(m).ok());
        let (channel, raw, masked) = match &mobile {
            Some(m) => (Channel::Sms, m.as_str().to_owned(), m.masked()),
            None => (Channel::Email, c.email.clone(), body.email.masked()),
        };
        if flows::may_send(conn, state, &flows::destination_key(state, &raw), now)? {
            let org_name = org.name.clone();
            send_code(
                conn,
                state,
                &org,
                SubjectKind::Customer,
                &c.id,
                purpose::LOGIN,
                channel,
                &raw,
                &masked,
                None,
                |code| Template::LoginCode { org_name, code },
                c.locale,
                now,
            )?;
        }
        Ok(code_sent(channel, masked))
    })
    .await?;
    Ok(HttpResponse::Accepted().json(sent))
}

/// Passwordless sign-in, step 2: the code signs the customer in.
#[utoipa::path(
    operation_id = "verifyOtpSignIn",
    security(()),
    tag = "auth",
    request_body = VerifyCodeRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 403, description = "Codes: `account_blocked`, `login_method_disabled`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = CODE_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `code_attempts_exceeded`, `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/otp/verify")]
pub async fn otp_verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<VerifyCodeRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let org = flows::organization(conn, &body.organization)?;
        if !org.login_methods.allows_passwordless() {
            return Err(method_disabled());
        }
        let customer = customers::find_by_email(conn, &org.id, body.email.as_str()).optional()?;
        let record = flows::check_code(
            conn,
            state,
            customer.as_ref().map(|c| c.id.as_str()),
            purpose::LOGIN,
            &body.code,
            now,
        )?;
        let customer = customer.ok_or_else(ApiError::not_found)?;
        guichet_store::transaction(conn, |conn| {
            if !codes::consume(conn, &record.id, now)? {
                return Err(ApiError::new(ProblemCode::CodeExpired));
            }
            flows::open_customer_session(conn, state, &customer, body.remember_me, &client, now)
        })
    })
    .await
    .map(web::Json)
}

// ---------------------------------------------------------------- activation

/// Activate access with the code printed on a letter, and set a password.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    /// The access code from the letter (`XXXX-XXXX-XXXX`; case, spaces and
    /// hyphens do not matter).
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "ABCD-EFGH-JKMN", min_length = 1, max_length = 64)]
    pub activation_code: String,
    /// The new password (same rule as first connection).
    #[validate(length(max = 20000))]
    #[schema(max_length = 20000)]
    pub password: String,
    #[serde(default)]
    pub remember_me: bool,
}

fn invalid_link() -> ApiError {
    ApiError::new(ProblemCode::InvalidLink).detail(
        "Ce lien ou ce code n'est pas valable (ou a déjà servi).",
        "This link or code is not valid (or was already used).",
    )
}

fn link_expired() -> ApiError {
    ApiError::new(ProblemCode::LinkExpired).detail(
        "Ce lien ou ce code a expiré : demandez-en un nouveau.",
        "This link or code has expired: ask for a new one.",
    )
}

/// A usable long-lived secret (reset token, activation code, setup token)
/// of `purpose`, or the reason it is not.
fn usable_link(
    conn: &mut DbConnection,
    state: &AppState,
    purpose: &str,
    secret_value: &str,
    now: DateTime<Utc>,
) -> Result<OneTimeCode, ApiError> {
    let record = codes::find_by_hash(
        conn,
        purpose,
        &flows::code_hash(state, purpose, secret_value),
    )?
    .ok_or_else(invalid_link)?;
    if record.consumed_at.is_some() {
        return Err(invalid_link());
    }
    if record.expires_at <= now {
        return Err(link_expired());
    }
    Ok(record)
}

/// Sign in for the first time with an activation code.
///
/// Activation by access code: staff generate the code (printed on a
/// letter, valid 30 days); the customer proves it with their e-mail and
/// chooses a password. Only for customers who have no access yet.
#[utoipa::path(
    operation_id = "activate",
    security(()),
    tag = "auth",
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "Access activated; signed in.", body = TokenResponse),
        (status = 403, description = "Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer already has access. Codes: `already_registered`.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The code has expired. Codes: `link_expired`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_link` (unknown, used or not this customer's code), and the password rule codes: `password_too_short`, `password_too_long`, `password_missing_uppercase`, `password_missing_lowercase`, `password_missing_digit`, `password_missing_special`, `password_too_common`, `password_contains_personal_data`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/activate")]
pub async fn activate(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<ActivateRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    flows::check_new_password("password", &body.password, &Personal::none())?;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let org = flows::organization(conn, &body.organization)?;
        let code = secret::normalize_activation_code(&body.activation_code);
        let record = usable_link(conn, state, purpose::ACTIVATION, &code, now)?;
        let customer = customers::find_by_email(conn, &org.id, body.email.as_str())
            .optional()?
            .filter(|c| c.id == record.subject_id && c.org_id == record.org_id)
            .ok_or_else(invalid_link)?;
        // Working access (a password, or a sign-in ever): a letter code
        // never replaces it, so staff who saw the code cannot take it over.
        if crate::routes::security::has_portal_access(conn, &customer)? {
            return Err(ApiError::new(ProblemCode::AlreadyRegistered).detail(
                "Votre accès est déjà activé : connectez-vous ou utilisez « Mot de passe oublié ».",
                "Your access is already active: sign in or use \"Forgot password\".",
            ));
        }
        flows::check_new_password(
            "password",
            &body.password,
            &flows::personal(&org, Some(&customer.name), &customer.email),
        )?;
        let hash = hash_new_password(state, &body.password)?;
        guichet_store::transaction(conn, |conn| {
            if !codes::consume(conn, &record.id, now)? {
                return Err(invalid_link());
            }
            customers::set_password(conn, &customer.id, &hash, now)?;
            flows::open_customer_session(conn, state, &customer, body.remember_me, &client, now)
        })
    })
    .await
    .map(web::Json)
}

// ------------------------------------------------------------------ password

/// Ask for a password-reset link.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email")]
    pub email: Email,
}

/// Forgotten password: e-mail a single-use reset token.
///
/// Forgotten password: e-mails a single-use reset token valid 30 minutes to
/// a customer who has access. The answer is the same for any address.
#[utoipa::path(
    operation_id = "forgotPassword",
    security(()),
    tag = "auth",
    request_body = ForgotRequest,
    responses(
        (status = 202, description = "If the address has an access, a reset token was e-mailed.", body = CodeSent),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/password/forgot")]
pub async fn password_forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<ForgotRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    flows::limit_sends(&state, &req).await?;
    let now = state.clock.now();
    let masked = body.email.masked();
    blocking(&state, move |conn, state| {
        let org = flows::organization(conn, &body.organization)?;
        let email = body.email.as_str();
        let customer = customers::find_by_email(conn, &org.id, email).optional()?;
        let Some(c) = customer.filter(|c| c.registered_at.is_some() && c.blocked_at.is_none())
        else {
            return Ok(());
        };
        let destination_key = flows::destination_key(state, email);
        if !flows::may_send(conn, state, &destination_key, now)? {
            return Ok(());
        }
        let token = secret::token(32);
        let mut record = flows::link_record(
            &state.secret_key,
            &org.id,
            SubjectKind::Customer,
            &c.id,
            purpose::PASSWORD_RESET,
            &token,
            Some((Channel::Email.as_str(), body.email.masked())),
            lifetimes::password_reset(),
            now,
        );
        record.destination_key = destination_key;
        guichet_store::transaction(conn, |conn| {
            codes::void_all(conn, &c.id, purpose::PASSWORD_RESET, now)?;
            codes::insert(conn, &record)?;
            notify::queue_sealed(
                conn,
                &state.outbox_key(),
                Some(&org.id),
                Channel::Email,
                email,
                &Template::PasswordReset {
                    org_name: org.name.clone(),
                    token,
                },
                c.locale,
                now,
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Accepted().json(CodeSent {
        channel: Channel::Email.as_str(),
        destination: masked,
        expires_in_minutes: lifetimes::password_reset().num_minutes(),
    }))
}

/// Choose a new password with the reset token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The token from the e-mail.
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    #[validate(length(max = 20000))]
    #[schema(max_length = 20000)]
    pub password: String,
}

/// Reset the password with the e-mailed token.
///
/// Reset the password with the e-mailed token: sets it, ends every session
/// of the customer and e-mails a notice. The token works once.
#[utoipa::path(
    operation_id = "resetPassword",
    security(()),
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 204, description = "Password changed; every session ended."),
        (status = 403, description = "The customer was blocked meanwhile. Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The token has expired. Codes: `link_expired`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_link` (unknown or used), and the password rule codes: `password_too_short`, `password_too_long`, `password_missing_uppercase`, `password_missing_lowercase`, `password_missing_digit`, `password_missing_special`, `password_too_common`, `password_contains_personal_data`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/password/reset")]
pub async fn password_reset(
    state: web::Data<AppState>,
    body: Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    flows::check_new_password("password", &body.password, &Personal::none())?;
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let record = usable_link(conn, state, purpose::PASSWORD_RESET, body.token.trim(), now)?;
        let customer = customers::get(conn, &record.org_id, &record.subject_id)?;
        let org = guichet_store::repo::organizations::get(conn, &record.org_id)?;
        flows::check_new_password(
            "password",
            &body.password,
            &flows::personal(&org, Some(&customer.name), &customer.email),
        )?;
        let hash = hash_new_password(state, &body.password)?;
        guichet_store::transaction(conn, |conn| {
            flows::may_sign_in(conn, &org.id, SubjectKind::Customer, &customer.id)?;
            if !codes::consume(conn, &record.id, now)? {
                return Err(invalid_link());
            }
            customers::set_password(conn, &customer.id, &hash, now)?;
            sessions::revoke_all(conn, SubjectKind::Customer, &customer.id, None, now)?;
            throttles::reset(
                conn,
                &flows::throttle_key(state, &org.id, SubjectKind::Customer, &customer.email),
            )?;
            notify::queue(
                conn,
                Some(&org.id),
                Channel::Email,
                &customer.email,
                &Template::PasswordChanged {
                    org_name: org.name.clone(),
                },
                customer.locale,
                now,
            )?;
            crate::routes::security::record(conn, &customer, SecurityKind::PasswordReset, now)?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ------------------------------------------------------------ refresh/logout

/// A refresh token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

fn invalid_refresh() -> ApiError {
    ApiError::new(ProblemCode::InvalidRefreshToken).detail(
        "Session expirée : reconnectez-vous.",
        "Session expired: sign in again.",
    )
}

/// Exchange a refresh token for new tokens.
///
/// Each refresh token works once: presenting a used one again ends the whole session (it was stolen
/// or replayed).
#[utoipa::path(
    operation_id = "refreshTokens",
    security(()),
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens.", body = TokenResponse),
        (status = 401, description = "Unknown, used (the session is now ended) or expired token, or blocked account. Codes: `invalid_refresh_token`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The customer is blocked or the staff member disabled (checked when the tokens are issued). Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let hash = flows::refresh_hash(state, body.refresh_token.trim());
        let used = guichet_store::transaction(conn, |conn| {
            sessions::use_refresh(conn, &hash, now).map_err(ApiError::from)
        })?;
        let session_id = match used {
            RefreshUse::Unknown => return Err(invalid_refresh()),
            RefreshUse::Replayed { session_id } => {
                sessions::revoke(conn, &session_id, now)?;
                tracing::warn!(session = %session_id, "refresh token replayed: session revoked");
                return Err(invalid_refresh().cause("refresh token replayed"));
            }
            RefreshUse::Fresh { session_id } => session_id,
        };
        let session = sessions::get(conn, &session_id)?;
        if !session.is_active(now) {
            return Err(invalid_refresh());
        }
        guichet_store::transaction(conn, |conn| {
            sessions::touch(conn, &session.id, now)?;
            flows::tokens_for(conn, state, &session, now)
        })
    })
    .await
    .map(web::Json)
}

/// End the session a refresh token belongs to.
///
/// Always 204, so that a client can sign out even with a stale token.
#[utoipa::path(
    operation_id = "logout",
    security(()),
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out (if the token was known, its session is ended)."),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let hash = flows::refresh_hash(state, body.refresh_token.trim());
        let found = guichet_store::transaction(conn, |conn| {
            sessions::use_refresh(conn, &hash, now).map_err(ApiError::from)
        })?;
        if let RefreshUse::Fresh { session_id } | RefreshUse::Replayed { session_id } = found
            && sessions::revoke(conn, &session_id, now)?
        {
            crate::routes::security::record_session_end(conn, &session_id, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

// --------------------------------------------------------------------- staff

/// Staff sign-in.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLoginRequest {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub organization: String,
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// Required after three failed attempts.
    pub challenge: Option<ChallengeAnswer>,
}

/// Staff sign-in with e-mail and password (same throttle as customers).
#[utoipa::path(
    operation_id = "staffLogin",
    security(()),
    tag = "auth",
    request_body = StaffLoginRequest,
    responses(
        (status = 200, description = "Signed in; the token's role is `admin` or `agent`.", body = TokenResponse),
        (status = 401, description = "Codes: `invalid_credentials`, `challenge_required`, `challenge_invalid`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Right password, disabled member. Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `account_locked`, `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/staff/login")]
pub async fn staff_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<StaffLoginRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking_with_state(&state, move |state| {
        let (org, key, member, hash) = {
            let mut conn = state.store.conn()?;
            let conn = &mut *conn;
            let org = flows::organization(conn, &body.organization)?;
            let email = body.email.as_str();
            let key = flows::throttle_key(state, &org.id, SubjectKind::Staff, email);
            flows::pass_gate(conn, state, &key, body.challenge.as_ref(), now)?;
            let member = staff::find_by_email(conn, &org.id, email).optional()?;
            let hash = match &member {
                Some(m) => staff::password_hash(conn, &m.id)?,
                None => None,
            };
            (org, key, member, hash)
        };
        // No connection is held while the hash runs.
        let verification = verify(state, &body.password, hash.as_deref());
        // The attempt was counted as a failure before the check.
        let (Verification::Match { needs_rehash }, Some(member)) = (verification, member) else {
            return Err(flows::invalid_credentials());
        };
        let rehashed = if needs_rehash {
            Some(hash_new_password(state, &body.password)?)
        } else {
            None
        };
        let mut conn = state.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            flows::passed_gate(conn, &key)?;
            if let Some(rehashed) = &rehashed {
                staff::set_password(conn, &member.id, rehashed)?;
            }
            flows::open_session(
                conn,
                state,
                &org.id,
                SubjectKind::Staff,
                &member.id,
                false,
                &client,
                now,
            )
        })
    })
    .await
    .map(web::Json)
}

/// A new staff member sets a password with their setup token.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffSetupRequest {
    /// The setup token (printed by `guichet admin create-org`, or e-mailed
    /// when an admin adds a member).
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    #[validate(length(max = 20000))]
    #[schema(max_length = 20000)]
    pub password: String,
}

/// Staff setup: choose a password with a setup token.
///
/// Staff setup: the first admin (token printed by `guichet admin
/// create-org`) or a new member (token e-mailed) chooses a password and is
/// signed in. The token works once and lasts 7 days.
#[utoipa::path(
    operation_id = "staffSetup",
    security(()),
    tag = "auth",
    request_body = StaffSetupRequest,
    responses(
        (status = 200, description = "Password set; signed in.", body = TokenResponse),
        (status = 403, description = "The member is disabled. Codes: `account_blocked`.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Codes: `link_expired`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `invalid_link`, and the password rule codes: `password_too_short`, `password_too_long`, `password_missing_uppercase`, `password_missing_lowercase`, `password_missing_digit`, `password_missing_special`, `password_too_common`, `password_contains_personal_data`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `rate_limited`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/staff/setup")]
pub async fn staff_setup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<StaffSetupRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = body.0;
    flows::check_new_password("password", &body.password, &Personal::none())?;
    let client = ClientInfo::of(&req);
    let now = state.clock.now();
    blocking(&state, move |conn, state| {
        let record = usable_link(conn, state, purpose::STAFF_SETUP, body.token.trim(), now)?;
        let member = staff::get(conn, &record.org_id, &record.subject_id)?;
        let org = guichet_store::repo::organizations::get(conn, &record.org_id)?;
        flows::check_new_password(
            "password",
            &body.password,
            &flows::personal(&org, Some(&member.name), &member.email),
        )?;
        let hash = hash_new_password(state, &body.password)?;
        guichet_store::transaction(conn, |conn| {
            if !codes::consume(conn, &record.id, now)? {
                return Err(invalid_link());
            }
            staff::set_password(conn, &member.id, &hash)?;
            flows::open_session(
                conn,
                state,
                &member.org_id,
                SubjectKind::Staff,
                &member.id,
                false,
                &client,
                now,
            )
        })
    })
    .await
    .map(web::Json)
}

/// Creates a staff setup token (7 days) for `member`; returns the token.
pub fn new_staff_setup_token(
    conn: &mut DbConnection,
    state_secret: &[u8],
    member: &guichet_domain::identity::StaffUser,
    now: DateTime<Utc>,
) -> Result<String, guichet_store::StoreError> {
    let token = secret::token(32);
    codes::void_all(conn, &member.id, purpose::STAFF_SETUP, now)?;
    codes::insert(
        conn,
        &flows::link_record(
            state_secret,
            &member.org_id,
            SubjectKind::Staff,
            &member.id,
            purpose::STAFF_SETUP,
            &token,
            None,
            lifetimes::staff_setup(),
            now,
        ),
    )?;
    Ok(token)
}
