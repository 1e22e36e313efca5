//! The pieces every sign-in flow shares: opening a session, the login
//! throttle and its challenge, one-time code checks and send limits.

use actix_web::http::header::{HeaderValue, RETRY_AFTER, USER_AGENT};
use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use guichet_domain::challenge;
use guichet_domain::identity::{StaffRole, SubjectKind, lifetimes};
use guichet_domain::password::{PasswordRule, Personal};
use guichet_domain::{Organization, ids, secret};
use guichet_store::repo::codes::OneTimeCode;
use guichet_store::repo::sessions::Session;
use guichet_store::repo::throttles::Reservation;
use guichet_store::repo::{
    challenges, codes, customers, limits, organizations, sessions, staff, throttles,
};
use guichet_store::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ratelimit::{client_ip, rate_limited};
use super::tokens::Role;
use crate::problem::{ApiError, ProblemCode};
use crate::state::AppState;

/// What a successful sign-in answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (JWT, 15 minutes): `Authorization: Bearer ...`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Opaque, single-use: exchange it at `/v1/auth/refresh` for new tokens.
    pub refresh_token: String,
    /// When the session (and its refresh tokens) ends: 12 hours, or 30 days
    /// with `remember_me`.
    pub refresh_expires_at: DateTime<Utc>,
    /// The session id (see `/v1/me/sessions`).
    pub session_id: String,
}

/// A solved proof-of-work challenge (see `GET /v1/auth/challenge`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeAnswer {
    /// The `token` received from `GET /v1/auth/challenge`.
    pub token: String,
    /// The nonce found.
    pub nonce: String,
}

/// The caller, as recorded with a session.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn of(req: &HttpRequest) -> Self {
        ClientInfo {
            ip: client_ip(req).to_string(),
            user_agent: req
                .headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
        }
    }
}

/// The organization a public request names by slug (404 when unknown).
pub fn organization(conn: &mut DbConnection, slug: &str) -> Result<Organization, ApiError> {
    organizations::find_by_slug(conn, slug).map_err(|e| match e {
        StoreError::NotFound => {
            ApiError::not_found().detail("Organisation inconnue.", "Unknown organization.")
        }
        other => other.into(),
    })
}

/// The problem answered to a blocked customer or a disabled staff member.
pub fn blocked() -> ApiError {
    ApiError::new(ProblemCode::AccountBlocked).detail(
        "Votre accès est bloqué : contactez le service client.",
        "Your access is blocked: contact customer service.",
    )
}

/// The token role of a staff role.
pub fn staff_role(role: StaffRole) -> Role {
    match role {
        StaffRole::Admin => Role::Admin,
        StaffRole::Agent => Role::Agent,
    }
}

/// The one check of every sign-in path, made when tokens are issued
/// ([`tokens_for`]) and when a password is reset: the subject still exists
/// and is neither a blocked customer (403 `account_blocked`) nor a disabled
/// staff member (the same). Returns the role to put in the token, read now.
///
/// It locks the subject's row until the end of the caller's transaction, so
/// a block that commits meanwhile either comes first (and is seen here) or
/// comes after (and ends the new session with the others). Call it inside a
/// transaction.
pub fn may_sign_in(
    conn: &mut DbConnection,
    org_id: &str,
    kind: SubjectKind,
    subject_id: &str,
) -> Result<Role, ApiError> {
    match kind {
        SubjectKind::Customer => {
            let customer = customers::lock(conn, org_id, subject_id)?;
            if customer.blocked_at.is_some() {
                return Err(blocked());
            }
            Ok(Role::Customer)
        }
        SubjectKind::Staff => {
            let member = staff::lock(conn, org_id, subject_id)?;
            if member.disabled_at.is_some() {
                return Err(blocked());
            }
            Ok(staff_role(member.role))
        }
    }
}

/// Opens a session and hands out its first tokens (after [`may_sign_in`],
/// through [`tokens_for`]). Call it inside a transaction.
#[allow(clippy::too_many_arguments)]
pub fn open_session(
    conn: &mut DbConnection,
    state: &AppState,
    org_id: &str,
    kind: SubjectKind,
    subject_id: &str,
    remember_me: bool,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<TokenResponse, ApiError> {
    let session = Session {
        id: ids::new_id("ses"),
        org_id: org_id.to_owned(),
        subject_kind: kind,
        subject_id: subject_id.to_owned(),
        remember_me,
        user_agent: client.user_agent.clone(),
        ip: Some(client.ip.clone()),
        created_at: now,
        last_used_at: now,
        expires_at: now
            + if remember_me {
                lifetimes::remembered_session()
            } else {
                lifetimes::session()
            },
        revoked_at: None,
    };
    may_sign_in(conn, org_id, kind, subject_id)?;
    sessions::insert(conn, &session)?;
    tokens_for(conn, state, &session, now)
}

/// Opens a customer session (the common case of [`open_session`]). Call it
/// inside a transaction.
pub fn open_customer_session(
    conn: &mut DbConnection,
    state: &AppState,
    customer: &guichet_domain::identity::Customer,
    remember_me: bool,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<TokenResponse, ApiError> {
    let tokens = open_session(
        conn,
        state,
        &customer.org_id,
        SubjectKind::Customer,
        &customer.id,
        remember_me,
        client,
        now,
    )?;
    crate::routes::security::record_sign_in(conn, customer, &tokens.session_id, &client.ip, now)?;
    Ok(tokens)
}

/// The record of a long-lived single-use secret (reset token, activation
/// code, setup token) for `subject`, valid `lifetime`. `destination` is
/// the masked address it was sent to, or `None` when it is handed over in
/// person or on a letter.
#[allow(clippy::too_many_arguments)]
pub fn link_record(
    secret_key: &[u8],
    org_id: &str,
    kind: SubjectKind,
    subject_id: &str,
    purpose: &str,
    secret_value: &str,
    destination: Option<(&str, String)>,
    lifetime: chrono::Duration,
    now: DateTime<Utc>,
) -> OneTimeCode {
    let (channel, destination, destination_key) = match destination {
        Some((channel, masked)) => (channel.to_owned(), masked, String::new()),
        None => ("letter".to_owned(), String::new(), String::new()),
    };
    OneTimeCode {
        id: ids::new_id("otc"),
        org_id: org_id.to_owned(),
        subject_kind: kind,
        subject_id: subject_id.to_owned(),
        purpose: purpose.to_owned(),
        code_hash: secret::keyed_hash(secret_key, purpose, secret_value),
        channel,
        destination,
        destination_key,
        payload: None,
        attempts: 0,
        max_attempts: 1,
        expires_at: now + lifetime,
        consumed_at: None,
        created_at: now,
    }
}

/// New access and refresh tokens for an open session, once
/// [`may_sign_in`] allows its subject: every token Guichet issues comes
/// from here. Call it inside a transaction.
pub fn tokens_for(
    conn: &mut DbConnection,
    state: &AppState,
    session: &Session,
    now: DateTime<Utc>,
) -> Result<TokenResponse, ApiError> {
    let role = may_sign_in(
        conn,
        &session.org_id,
        session.subject_kind,
        &session.subject_id,
    )?;
    let refresh_token = secret::token(32);
    sessions::insert_refresh(conn, &refresh_hash(state, &refresh_token), &session.id, now)?;
    let (access_token, expires_at) = state
        .tokens
        .issue(&session.subject_id, &session.org_id, role, &session.id, now)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: (expires_at - now).num_seconds(),
        refresh_token,
        refresh_expires_at: session.expires_at,
        session_id: session.id.clone(),
    })
}

/// The stored form of a refresh token.
pub fn refresh_hash(state: &AppState, token: &str) -> String {
    secret::keyed_hash(&state.secret_key, "refresh_token", token)
}

/// The stored form of a one-time code or link for `purpose`.
pub fn code_hash(state: &AppState, purpose: &str, code: &str) -> String {
    secret::keyed_hash(&state.secret_key, purpose, code)
}

/// The throttle key of an account, the same whether or not it exists.
pub fn throttle_key(state: &AppState, org_id: &str, kind: SubjectKind, email: &str) -> String {
    throttle_key_with(&state.secret_key, org_id, kind, email)
}

/// [`throttle_key`] under `secret_key`, for callers without the state
/// (the demo's reset).
pub fn throttle_key_with(
    secret_key: &[u8],
    org_id: &str,
    kind: SubjectKind,
    email: &str,
) -> String {
    secret::keyed_hash(
        secret_key,
        "login_throttle",
        &format!("{org_id}\0{}\0{email}", kind.as_str()),
    )
}

fn account_locked(until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let seconds = (until - now).num_seconds().max(1);
    let error = ApiError::new(ProblemCode::AccountLocked).detail(
        format!(
            "Trop d'échecs : réessayez dans {} minutes.",
            (seconds + 59) / 60
        ),
        format!(
            "Too many failures: try again in {} minutes.",
            (seconds + 59) / 60
        ),
    );
    match HeaderValue::from_str(&seconds.to_string()) {
        Ok(v) => error.header(RETRY_AFTER, v),
        Err(_) => error,
    }
}

/// Lets a password check through the throttle of `key`, reserving the
/// attempt before the password is checked (it counts as a failure until
/// [`passed_gate`] resets the key): a locked key answers 429
/// `account_locked`, and after three failures a solved, unused challenge
/// is required (401 `challenge_required`, `challenge_invalid`). Every route
/// that checks a password (sign-in, password change) goes through it. Not
/// to be called inside a transaction.
pub fn pass_gate(
    conn: &mut DbConnection,
    state: &AppState,
    key: &str,
    answer: Option<&ChallengeAnswer>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match throttles::reserve(conn, key, now, false)? {
        Reservation::Reserved => return Ok(()),
        Reservation::Locked { until } => return Err(account_locked(until, now)),
        Reservation::ChallengeRequired => {}
    }
    let Some(answer) = answer else {
        return Err(ApiError::new(ProblemCode::ChallengeRequired).detail(
            "Résolvez le défi de GET /v1/auth/challenge et joignez-le (champ « challenge »).",
            "Solve the challenge from GET /v1/auth/challenge and send it (field `challenge`).",
        ));
    };
    let invalid = || {
        ApiError::new(ProblemCode::ChallengeInvalid).detail(
            "Le défi est invalide, expiré ou déjà utilisé : demandez-en un autre.",
            "The challenge is invalid, expired or already used: ask for another.",
        )
    };
    let id = challenge::verify(&state.secret_key, &answer.token, &answer.nonce, now)
        .map_err(|e| invalid().cause(format!("{e:?}")))?;
    if !challenges::spend(conn, &id, now + lifetimes::one_time_code())? {
        return Err(invalid().cause("challenge already used"));
    }
    match throttles::reserve(conn, key, now, true)? {
        Reservation::Reserved => Ok(()),
        Reservation::Locked { until } => Err(account_locked(until, now)),
        Reservation::ChallengeRequired => Err(ApiError::internal(
            "throttle asked for a challenge after one was solved",
        )),
    }
}

/// After a right password: clears the throttle of `key`.
pub fn passed_gate(conn: &mut DbConnection, key: &str) -> Result<(), ApiError> {
    throttles::reset(conn, key)?;
    Ok(())
}

pub fn invalid_credentials() -> ApiError {
    ApiError::new(ProblemCode::InvalidCredentials).detail(
        "Adresse e-mail ou mot de passe incorrect.",
        "Wrong e-mail address or password.",
    )
}

/// The problem for an unmet password rule: its own code (the first unmet
/// rule) and every unmet rule in `errors`.
pub fn password_problem(field: &str, rules: &[PasswordRule]) -> ApiError {
    let code = |rule: PasswordRule| match rule {
        PasswordRule::TooShort => ProblemCode::PasswordTooShort,
        PasswordRule::TooLong => ProblemCode::PasswordTooLong,
        PasswordRule::MissingUppercase => ProblemCode::PasswordMissingUppercase,
        PasswordRule::MissingLowercase => ProblemCode::PasswordMissingLowercase,
        PasswordRule::MissingDigit => ProblemCode::PasswordMissingDigit,
        PasswordRule::MissingSpecial => ProblemCode::PasswordMissingSpecial,
        PasswordRule::TooCommon => ProblemCode::PasswordTooCommon,
        PasswordRule::ContainsPersonalData => ProblemCode::PasswordContainsPersonalData,
    };
    let first = rules.first().copied().unwrap_or(PasswordRule::TooShort);
    let fr: Vec<&str> = rules.iter().map(|r| r.describe(true)).collect();
    let en: Vec<&str> = rules.iter().map(|r| r.describe(false)).collect();
    let mut error = ApiError::new(code(first)).detail(fr.join(" "), en.join(" "));
    for rule in rules {
        error = error.field(field, rule.code());
    }
    error
}

/// Checks a password against the rule; `personal` names what it must not
/// contain (see [`personal`]).
pub fn check_new_password(
    field: &str,
    password: &str,
    personal: &Personal,
) -> Result<(), ApiError> {
    guichet_domain::password::check_password_for(password, personal)
        .map_err(|rules| password_problem(field, &rules))
}

/// What a password chosen in `org` by the person named `name` with the
/// e-mail `email` must not contain: the organization's name and slug, the
/// person's name and the local part of their e-mail.
pub fn personal(org: &Organization, name: Option<&str>, email: &str) -> Personal {
    let mut personal = Personal::none()
        .name(&org.name)
        .name(org.slug.as_str())
        .email(email);
    if let Some(name) = name {
        personal = personal.name(name);
    }
    personal
}

/// Checks `code` against the newest usable code of `purpose` for the
/// subject: 422 `code_expired` when none is waiting, 422 `invalid_code`
/// when wrong, 429 `code_attempts_exceeded` at the fifth wrong entry and
/// after. Each entry is counted before it is compared (right ones too), so
/// a code is compared at most `max_attempts` times whatever the
/// concurrency. The code is not spent here.
pub fn check_code(
    conn: &mut DbConnection,
    state: &AppState,
    subject_id: Option<&str>,
    purpose: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<OneTimeCode, ApiError> {
    let expired = || {
        ApiError::new(ProblemCode::CodeExpired).detail(
            "Aucun code valide n'est en attente : demandez-en un nouveau.",
            "No valid code is waiting: ask for a new one.",
        )
    };
    let exceeded = || {
        ApiError::new(ProblemCode::CodeAttemptsExceeded).detail(
            "Trop d'essais : ce code n'est plus valable, demandez-en un nouveau.",
            "Too many attempts: this code is void, ask for a new one.",
        )
    };
    let Some(subject_id) = subject_id else {
        return Err(expired());
    };
    let Some(record) = codes::latest_usable(conn, subject_id, purpose, now)? else {
        return Err(expired());
    };
    // Reserve the entry before comparing: concurrent entries never get
    // more comparisons than the code allows.
    let Some(attempts) = codes::reserve_attempt(conn, &record.id)? else {
        return Err(if record.attempts >= record.max_attempts {
            exceeded()
        } else {
            // Spent (or out of tries) meanwhile.
            match codes::latest_usable(conn, subject_id, purpose, now)? {
                Some(r) if r.id == record.id && r.attempts >= r.max_attempts => exceeded(),
                _ => expired(),
            }
        });
    };
    if secret::constant_time_eq(&record.code_hash, &code_hash(state, purpose, code.trim())) {
        return Ok(record);
    }
    let remaining = record.max_attempts - attempts;
    if remaining <= 0 {
        return Err(exceeded());
    }
    Err(ApiError::new(ProblemCode::InvalidCode)
        .detail(
            format!("Code incorrect : encore {remaining} essai(s)."),
            format!("Wrong code: {remaining} attempt(s) left."),
        )
        .extension("remaining_attempts", remaining.into()))
}

/// Reserves one code or link for this destination (at most
/// `--code-send-limit-per-destination` an hour, counted in the database
/// before anything is sent, so it holds across nodes and concurrent
/// requests). Over the limit the message is silently suppressed (`false`)
/// so that the answer stays the same whether or not the account exists;
/// the per-IP limit ([`limit_sends`]) is the one that answers 429. Not to
/// be called inside a transaction.
pub fn may_send(
    conn: &mut DbConnection,
    state: &AppState,
    destination_key: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    Ok(limits::reserve(
        conn,
        &format!("destination:{destination_key}"),
        state.auth_limits.codes_per_hour_per_destination,
        chrono::Duration::hours(1),
        now,
    )?)
}

/// The per-IP limit on requests that send codes or links
/// (`--code-send-limit-per-ip` an hour), reserved in the database before
/// anything is sent, so it holds across nodes and concurrent requests:
/// 429 `rate_limited` with `Retry-After` over the limit.
pub async fn limit_sends(state: &web::Data<AppState>, req: &HttpRequest) -> Result<(), ApiError> {
    let key = format!(
        "sends_ip:{}",
        secret::keyed_hash(&state.secret_key, "client_ip", &client_ip(req).to_string())
    );
    let state = state.clone();
    web::block(move || limit(&state, &key, state.auth_limits.codes_per_hour_per_ip, 3600)).await?
}

/// The per-IP limit on one-time code entries made outside `/v1/auth/`
/// (mandate signatures): `--auth-sign-in-limit` a minute, like sign-in
/// attempts, but reserved in the database so it holds across nodes. 429
/// `rate_limited` with `Retry-After` over the limit.
pub async fn limit_code_entries(
    state: &web::Data<AppState>,
    req: &HttpRequest,
) -> Result<(), ApiError> {
    let key = format!(
        "entries_ip:{}",
        secret::keyed_hash(&state.secret_key, "client_ip", &client_ip(req).to_string())
    );
    let state = state.clone();
    web::block(move || {
        limit(
            &state,
            &key,
            state.auth_limits.sign_ins_per_minute_per_ip,
            60,
        )
    })
    .await?
}

/// Reserves one use of `key` (at most `limit` per `window_secs`), or
/// answers 429 `rate_limited` with the seconds until the oldest use leaves
/// the window.
pub fn limit(state: &AppState, key: &str, limit: u32, window_secs: i64) -> Result<(), ApiError> {
    let now = state.clock.now();
    let window = chrono::Duration::seconds(window_secs);
    let mut conn = state.store.conn()?;
    if limits::reserve(&mut conn, key, limit, window, now)? {
        return Ok(());
    }
    let wait = limits::oldest(&mut conn, key, window, now)?
        .map_or(window_secs, |oldest| (oldest + window - now).num_seconds());
    Err(rate_limited(wait.max(1).unsigned_abs()))
}

/// The rate-limiting key of a destination (e-mail or mobile).
pub fn destination_key(state: &AppState, destination: &str) -> String {
    secret::keyed_hash(&state.secret_key, "destination", destination)
}
