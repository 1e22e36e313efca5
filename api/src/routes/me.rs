//! `/v1/me/...`: the signed-in customer's own profile, password and
//! sessions. Every id is looked up inside the customer's own data.

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::SubjectKind;
use guichet_domain::password::{self, Verification};
use guichet_store::repo::security_events::{self, Actor, Kind, SecurityEvent};
use guichet_store::repo::{customers, organizations, sessions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::flows;
use crate::auth::{CustomerPrincipal, CustomerToken};
use crate::edge::json::Json;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// The organization as its customers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationSummary {
    #[schema(example = "my-shop")]
    pub slug: String,
    pub name: String,
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
}

/// The signed-in customer, contact data masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub name: String,
    /// Masked: `c***@example.com`.
    #[schema(example = "c***@example.com")]
    pub email: String,
    /// Masked: `+33 6** ** ** 78`.
    #[schema(example = "+33 6** ** ** 78")]
    pub mobile: Option<String>,
    /// `fr` or `en`.
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub locale: String,
    pub registered_at: Option<DateTime<Utc>>,
    pub organization: OrganizationSummary,
}

const AUTH_FAILURES: &str = "Codes: `unauthenticated`, `invalid_token`.";

/// The signed-in customer's profile.
#[utoipa::path(
    operation_id = "getMe",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile, contact data masked.", body = Me),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn me(
    token: CustomerToken,
    state: web::Data<AppState>,
) -> Result<web::Json<Me>, ApiError> {
    let store = state.store.clone();
    let (customer, org) = web::block(move || {
        let mut conn = store.conn()?;
        let principal = token.authorize(&mut conn)?;
        let customer = customers::get(&mut conn, &principal.org_id, &principal.customer_id)?;
        let org = organizations::get(&mut conn, &principal.org_id)?;
        Ok::<_, ApiError>((customer, org))
    })
    .await??;
    Ok(web::Json(Me {
        email: Email::parse(&customer.email)
            .map(|e| e.masked())
            .unwrap_or_default(),
        mobile: customer
            .mobile
            .as_deref()
            .and_then(|m| Msisdn::parse(m).ok())
            .map(|m| m.masked()),
        id: customer.id,
        name: customer.name,
        locale: customer.locale.as_str().to_owned(),
        registered_at: customer.registered_at,
        organization: OrganizationSummary {
            slug: org.slug.as_str().to_owned(),
            name: org.name,
            support_email: org.support_email,
            support_phone: org.support_phone,
        },
    }))
}

/// Change the password.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// Same rule as first connection.
    #[validate(length(max = 20000))]
    #[schema(max_length = 20000)]
    pub new_password: String,
    /// Required after three wrong passwords (sign-ins and changes count
    /// together): see `GET /v1/auth/challenge`.
    pub challenge: Option<flows::ChallengeAnswer>,
}

/// Change the password.
///
/// Change the password: needs the current one, checked under the same
/// throttle as sign-in (the failures count together: a challenge after 3,
/// locked 15 minutes after 10); ends every other session and e-mails a
/// notice.
#[utoipa::path(
    operation_id = "changeMyPassword",
    tag = "me",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; the other sessions are ended, this one stays."),
        (status = 401, description = "Codes: `unauthenticated`, `invalid_token`, `challenge_required` (after 3 wrong passwords), `challenge_invalid`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `current_password_incorrect`, and the password rule codes on `new_password`: `password_too_short`, `password_too_long`, `password_missing_uppercase`, `password_missing_lowercase`, `password_missing_digit`, `password_missing_special`, `password_too_common`, `password_contains_personal_data`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Codes: `account_locked` (10 wrong passwords: 15 minutes, see `Retry-After`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/password")]
pub async fn change_password(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    body: Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    flows::check_new_password(
        "new_password",
        &body.new_password,
        &guichet_domain::password::Personal::none(),
    )?;
    let now = state.clock.now();
    let state = state.clone();
    web::block(move || {
        let (customer, org, key, hash) = {
            let mut conn = state.store.conn()?;
            let conn = &mut conn;
            let customer = customers::get(conn, &principal.org_id, &principal.customer_id)?;
            let org = organizations::get(conn, &principal.org_id)?;
            flows::check_new_password(
                "new_password",
                &body.new_password,
                &flows::personal(&org, Some(&customer.name), &customer.email),
            )?;
            // The sign-in throttle of this customer: the attempt is counted
            // before the check.
            let key = flows::throttle_key(&state, &org.id, SubjectKind::Customer, &customer.email);
            flows::pass_gate(conn, &state, &key, body.challenge.as_ref(), now)?;
            let hash = customers::password_hash(conn, &customer.id)?;
            (customer, org, key, hash)
        };
        // No connection is held while the hash runs.
        let current = body.current_password.clone();
        let verified = state.hash_slots.run(move || match hash {
            Some(h) => password::verify_password(&current, &h),
            None => Verification::Mismatch,
        });
        if verified == Verification::Mismatch {
            return Err(ApiError::new(ProblemCode::CurrentPasswordIncorrect)
                .detail(
                    "Mot de passe actuel incorrect.",
                    "The current password is wrong.",
                )
                .field("current_password", "incorrect"));
        }
        let new_hash = state
            .hash_slots
            .run({
                let new_password = body.new_password.clone();
                move || password::hash_password(&new_password)
            })
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut conn = state.store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            flows::passed_gate(conn, &key)?;
            customers::set_password(conn, &customer.id, &new_hash, now)?;
            sessions::revoke_all(
                conn,
                SubjectKind::Customer,
                &customer.id,
                Some(&principal.session_id),
                now,
            )?;
            let (channel, to) = crate::routes::portal_hooks::recipient(
                conn,
                &principal,
                Channel::Email,
                &customer.email,
            )?;
            notify::queue(
                conn,
                Some(&org.id),
                channel,
                &to,
                &Template::PasswordChanged { org_name: org.name },
                customer.locale,
                now,
            )?;
            crate::routes::security::record(conn, &customer, Kind::PasswordChanged, now)?;
            Ok(())
        })
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// A session of the signed-in customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(example = "ses_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// Whether it is the session of the token making this request.
    pub current: bool,
    pub remember_me: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The active sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub data: Vec<SessionView>,
    /// Always null: every active session is listed.
    pub next_cursor: Option<String>,
}

/// The customer's active sessions.
#[utoipa::path(
    operation_id = "listMySessions",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active sessions, newest first.", body = SessionList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/sessions")]
pub async fn list_sessions(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<SessionList>, ApiError> {
    let now = state.clock.now();
    let store = state.store.clone();
    let customer_id = principal.customer_id.clone();
    let list = web::block(move || {
        let mut conn = store.conn()?;
        sessions::list_active(&mut conn, SubjectKind::Customer, &customer_id, now)
    })
    .await??;
    Ok(web::Json(SessionList {
        data: list
            .into_iter()
            .map(|s| SessionView {
                current: s.id == principal.session_id,
                id: s.id,
                remember_me: s.remember_me,
                user_agent: s.user_agent,
                ip: s.ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            })
            .collect(),
        next_cursor: None,
    }))
}

/// End one of the customer's sessions (the current one included).
#[utoipa::path(
    operation_id = "endMySession",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id (`ses_...`).")),
    responses(
        (status = 204, description = "The session is ended; its tokens stop working at once."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active session of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/sessions/{id}")]
pub async fn end_session(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        let session = sessions::get(&mut conn, &id)?;
        if session.subject_kind != SubjectKind::Customer
            || session.subject_id != principal.customer_id
            || !session.is_active(now)
        {
            return Err(guichet_store::StoreError::NotFound);
        }
        guichet_store::transaction(&mut conn, |conn| {
            if sessions::revoke(conn, &id, now)? {
                security_events::insert(
                    conn,
                    &SecurityEvent::new(
                        &session.org_id,
                        &session.subject_id,
                        Kind::SessionEnded,
                        Actor::Customer,
                        now,
                    )
                    .session(&id, session.ip.as_deref()),
                )?;
            }
            Ok::<_, guichet_store::StoreError>(())
        })
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}
