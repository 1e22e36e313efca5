//! `/v1/admin/staff`: the organization's staff, managed by admins.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact::Email;
use guichet_domain::identity::{StaffRole, StaffUser, SubjectKind};
use guichet_domain::ids;
use guichet_store::StoreError;
use guichet_store::repo::{organizations, sessions, staff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{AUTH_FAILURES, ROLE_FAILURE};
use crate::auth::AdminPrincipal;
use crate::edge::json::Json;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::auth::new_staff_setup_token;
use crate::state::AppState;

/// A staff member.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffView {
    #[schema(example = "stf_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub email: String,
    pub name: String,
    /// `admin` or `agent`.
    #[schema(value_type = crate::routes::enums::StaffRole, example = "agent")]
    pub role: StaffRole,
    /// Whether the member has chosen a password.
    pub active: bool,
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<StaffUser> for StaffView {
    fn from(s: StaffUser) -> Self {
        StaffView {
            active: s.has_password,
            disabled: s.disabled_at.is_some(),
            id: s.id,
            email: s.email,
            name: s.name,
            role: s.role,
            disabled_at: s.disabled_at,
            created_at: s.created_at,
        }
    }
}

/// Every staff member.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffList {
    pub data: Vec<StaffView>,
    /// Always null: every member is listed.
    pub next_cursor: Option<String>,
}

/// A new staff member: a setup token is e-mailed to them.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    #[schema(value_type = String, format = "email")]
    pub email: Email,
    #[validate(
        length(max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(value_type = crate::routes::enums::StaffRole, example = "agent")]
    pub role: StaffRole,
}

/// A change of role or of enablement.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    #[schema(value_type = Option<crate::routes::enums::StaffRole>)]
    pub role: Option<StaffRole>,
    /// `true` disables the member (sessions end at once), `false` enables.
    pub disabled: Option<bool>,
}

/// Every staff member of the organization.
#[utoipa::path(
    operation_id = "listStaff",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The staff.", body = StaffList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (agents, API keys and customers may not). Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<StaffList>, ApiError> {
    let store = state.store.clone();
    let members = web::block(move || {
        let mut conn = store.conn()?;
        staff::list(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(StaffList {
        data: members.into_iter().map(StaffView::from).collect(),
        next_cursor: None,
    }))
}

/// Add a staff member, who receives a setup token by e-mail.
///
/// Add a staff member; they receive a setup token (7 days) by e-mail and
/// choose their password at `POST /v1/auth/staff/setup`.
#[utoipa::path(
    operation_id = "createStaffMember",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateStaff,
    responses(
        (status = 201, description = "Created; the setup e-mail is queued.", body = StaffView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `email_already_used`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateStaff>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let now = state.clock.now();
    let member = StaffUser {
        id: ids::new_id("stf"),
        org_id: principal.org_id.clone(),
        email: body.email.as_str().to_owned(),
        name: body.name.trim().to_owned(),
        role: body.role,
        has_password: false,
        disabled_at: None,
        created_at: now,
    };
    let state = state.clone();
    let saved = member.clone();
    web::block(move || {
        let mut conn = state.store.conn()?;
        let org = organizations::get(&mut conn, &principal.org_id)?;
        guichet_store::transaction(&mut conn, |conn| {
            staff::insert(conn, &saved)?;
            let token = new_staff_setup_token(conn, &state.secret_key, &saved, now)?;
            notify::queue_sealed(
                conn,
                &state.outbox_key(),
                Some(&org.id),
                Channel::Email,
                &saved.email,
                &Template::StaffSetup {
                    org_name: org.name.clone(),
                    token,
                },
                org.locale,
                now,
            )
        })
    })
    .await?
    .map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::new(ProblemCode::EmailAlreadyUsed)
            .detail(
                "Un membre de l'équipe utilise déjà cette adresse.",
                "A staff member already uses this address.",
            )
            .field("email", "taken"),
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(StaffView::from(member)))
}

/// Change a member's role, or disable or enable them.
///
/// Change a member's role, or disable / enable them. The organization
/// always keeps one enabled admin who can sign in (has set a password).
#[utoipa::path(
    operation_id = "updateStaffMember",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Staff id (`stf_...`).")),
    request_body = UpdateStaff,
    responses(
        (status = 200, description = "The member after the change.", body = StaffView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave no enabled admin who can sign in (one with a password). Codes: `last_admin`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateStaff>,
) -> Result<web::Json<StaffView>, ApiError> {
    let body = body.0;
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let member = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            // One staff change of the organization at a time: two admins
            // disabling each other at once must not both succeed.
            staff::lock_organization(conn, &principal.org_id)?;
            let current = staff::get(conn, &principal.org_id, &id)?;
            if let Some(role) = body.role {
                staff::set_role(conn, &principal.org_id, &id, role)?;
            }
            match body.disabled {
                Some(true) if current.disabled_at.is_none() => {
                    staff::set_disabled(conn, &principal.org_id, &id, Some(now))?;
                    sessions::revoke_all(conn, SubjectKind::Staff, &id, None, now)?;
                }
                Some(false) => staff::set_disabled(conn, &principal.org_id, &id, None)?,
                _ => {}
            }
            // Only admins who can sign in count: enabled, with a password.
            if staff::count_working_admins(conn, &principal.org_id)? == 0 {
                return Err(ApiError::new(ProblemCode::LastAdmin).detail(
                    "L'organisation doit garder au moins un administrateur actif qui peut se connecter.",
                    "The organization must keep at least one enabled admin who can sign in.",
                ));
            }
            Ok(staff::get(conn, &principal.org_id, &id)?)
        })
    })
    .await??;
    Ok(web::Json(member.into()))
}
