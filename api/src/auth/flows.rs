//! The pieces every sign-in flow shares: opening a session, the login
//! throttle and its challenge, one-time code checks and send limits.

use std::time::Duration as StdDuration;

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderValue, RETRY_AFTER, USER_AGENT};
use chrono::{DateTime, Utc};
use guichet_domain::challenge;
use guichet_domain::identity::{Gate, SubjectKind, lifetimes};
use guichet_domain::password::PasswordRule;
use guichet_domain::{Organization, ids, secret};
use guichet_store::repo::codes::OneTimeCode;
use guichet_store::repo::sessions::Session;
use guichet_store::repo::{challenges, codes, organizations, sessions, throttles};
use guichet_store::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ratelimit::{Scope, client_ip, rate_limited};
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

/// Opens a session and hands out its first tokens.
#[allow(clippy::too_many_arguments)]
pub fn open_session(
    conn: &mut DbConnection,
    state: &AppState,
    org_id: &str,
    kind: SubjectKind,
    subject_id: &str,
    role: Role,
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
    sessions::insert(conn, &session)?;
    tokens_for(conn, state, &session, role, now)
}

/// Opens a customer session (the common case of [`open_session`]).
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
        Role::Customer,
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

/// New access and refresh tokens for an open session.
pub fn tokens_for(
    conn: &mut DbConnection,
    state: &AppState,
    session: &Session,
    role: Role,
    now: DateTime<Utc>,
) -> Result<TokenResponse, ApiError> {
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
    secret::keyed_hash(
        &state.secret_key,
        "login_throttle",
        &format!("{org_id}\0{}\0{email}", kind.as_str()),
    )
}

/// Lets a sign-in attempt through the throttle: a locked key answers 429,
/// and after three failures a solved, unused challenge is required.
pub fn pass_gate(
    conn: &mut DbConnection,
    state: &AppState,
    key: &str,
    answer: Option<&ChallengeAnswer>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match throttles::get(conn, key)?.gate(now) {
        Gate::Open => Ok(()),
        Gate::Locked { until } => {
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
            Err(match HeaderValue::from_str(&seconds.to_string()) {
                Ok(v) => error.header(RETRY_AFTER, v),
                Err(_) => error,
            })
        }
        Gate::ChallengeRequired => {
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
            Ok(())
        }
    }
}

/// Counts a failed sign-in and answers 401 `invalid_credentials`.
pub fn fail_credentials(
    conn: &mut DbConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<ApiError, ApiError> {
    throttles::record_failure(conn, key, now)?;
    Ok(invalid_credentials())
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

/// Checks a password against the seed rule.
pub fn check_new_password(field: &str, password: &str) -> Result<(), ApiError> {
    guichet_domain::password::check_password(password)
        .map_err(|rules| password_problem(field, &rules))
}

/// Checks `code` against the newest usable code of `purpose` for the
/// subject: 422 `code_expired` when none is waiting, 422 `invalid_code`
/// when wrong, 429 `code_attempts_exceeded` at the fifth wrong entry and
/// after. The code is not spent here.
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
    if record.attempts >= record.max_attempts {
        return Err(exceeded());
    }
    if secret::constant_time_eq(&record.code_hash, &code_hash(state, purpose, code.trim())) {
        return Ok(record);
    }
    let attempts = codes::record_attempt(conn, &record.id)?;
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

/// Whether a code may be sent to this destination now. Over the limit the
/// message is silently suppressed (`false`) so that the answer stays the
/// same whether or not the account exists; the per-IP limit
/// ([`limit_sends`]) is the one that answers 429.
pub fn may_send(
    conn: &mut DbConnection,
    state: &AppState,
    destination_key: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let sent = codes::count_sent_to(conn, destination_key, now - chrono::Duration::hours(1))?;
    Ok(sent < i64::from(state.auth_limits.codes_per_hour_per_destination))
}

/// The per-IP limit on requests that send codes or links.
pub fn limit_sends(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    state
        .limiter
        .hit(
            Scope::CodeSends,
            client_ip(req),
            state.auth_limits.codes_per_hour_per_ip,
            StdDuration::from_secs(3600),
        )
        .map_err(rate_limited)
}

/// The rate-limiting key of a destination (e-mail or mobile).
pub fn destination_key(state: &AppState, destination: &str) -> String {
    secret::keyed_hash(&state.secret_key, "destination", destination)
}
