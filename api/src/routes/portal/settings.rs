//! `/v1/admin/portal/...`: the business configures its portal (actions,
//! sign-in methods, branding, slug, logo), one customer's overrides, and
//! the preview session on its test customer.

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::{Customer, SubjectKind};
use guichet_domain::portal::{self as rules, LogoType, PortalAction, PortalActions};
use guichet_domain::{Locale, Slug, ids};
use guichet_store::repo::portal::{self, Logo};
use guichet_store::repo::{customers, organizations, sessions, staff};
use guichet_store::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use super::views::{
    ActionConfig, ActionName, AutopaySettingsView, Branding, PortalSettingsView, SignInMethods,
};
use crate::auth::{AdminPrincipal, StaffActor, StaffPrincipal};
use crate::edge::json::{Json, payload_too_large};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, ROLE_FAILURE};
use crate::state::AppState;

/// How long a preview session lasts.
pub const PREVIEW_MINUTES: i64 = 10;

/// The business's branding and contact details (absent fields are unset).
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingInput {
    /// The name shown (default: the organization's name).
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
    /// `#rrggbb`.
    #[validate(custom(function = "check_accent_color"))]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#0a7d6b")]
    pub accent_color: Option<String>,
    #[schema(value_type = Option<String>, format = "email")]
    pub contact_email: Option<Email>,
    /// E.164.
    #[schema(value_type = Option<String>, pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: Option<Msisdn>,
    #[validate(
        length(min = 1, max = 300),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    pub address: Option<String>,
    /// An `https://` or `http://` URL.
    #[validate(length(max = 200), custom(function = "check_website"))]
    #[schema(max_length = 200, pattern = "^https?://[^\\s]+$", format = "uri")]
    pub website: Option<String>,
}

fn check_accent_color(value: &str) -> Result<(), validator::ValidationError> {
    if rules::is_accent_color(value) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid"))
    }
}

fn check_website(value: &str) -> Result<(), validator::ValidationError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(validator::ValidationError::new("invalid")),
    }
}

fn check_slug(value: &str) -> Result<(), validator::ValidationError> {
    Slug::parse(value)
        .map(|_| ())
        .map_err(|_| validator::ValidationError::new("invalid"))
}

/// The whole portal configuration (it replaces the previous one).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalSettingsInput {
    /// The public slug: 2 to 40 lower-case letters, digits and single
    /// hyphens, not at either end.
    #[validate(custom(function = "check_slug"))]
    #[schema(
        min_length = 2,
        max_length = 40,
        pattern = "^[a-z0-9]+(-[a-z0-9]+)*$",
        example = "cabinet-kine"
    )]
    pub slug: String,
    /// The actions in display order, each at most once; an action left out
    /// is off and shown last.
    #[validate(length(max = 4), nested)]
    #[schema(max_items = 4)]
    pub actions: Vec<ActionConfig>,
    pub sign_in_methods: SignInMethods,
    #[serde(default)]
    #[validate(nested)]
    pub branding: BrandingInput,
    /// The autopay rules. Omitted (or null): the current ones stay (unlike
    /// the other sections, so that a client that does not know them
    /// cannot reset them); given: it replaces them, its omitted fields
    /// taking their defaults.
    #[serde(default)]
    #[validate(nested)]
    pub autopay: Option<AutopaySettingsInput>,
}

fn yes() -> bool {
    true
}

/// The autopay rules (seed 004).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopaySettingsInput {
    /// Customers may turn autopay on or off and change its method
    /// (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub customers_can_change_autopay: bool,
    /// Saving a new method turns autopay on with it (default false).
    #[serde(default)]
    #[schema(default = false)]
    pub auto_enable_on_new_method: bool,
    /// The "use this method for autopay" box starts checked (default false).
    #[serde(default)]
    #[schema(default = false)]
    pub checkbox_default: bool,
    /// Who receives the autopay e-mails (default: the branding's
    /// `contact_email`, else the organization's admins).
    #[schema(value_type = Option<String>, format = "email")]
    pub billing_contact_email: Option<Email>,
}

/// The settings view of `org_id`.
fn view(
    conn: &mut DbConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<PortalSettingsView, StoreError> {
    let s = portal::get(conn, org_id, now)?;
    let org = organizations::get(conn, org_id)?;
    let sha = portal::logo_sha256(conn, org_id)?;
    Ok(PortalSettingsView {
        slug: s.slug.clone(),
        actions: s.actions.list().iter().map(ActionConfig::from).collect(),
        sign_in_methods: org.login_methods.into(),
        branding: Branding::new(&s, &org.name, sha.as_deref()),
        autopay: AutopaySettingsView::new(&s),
        updated_at: s.updated_at,
    })
}

/// The portal settings.
///
/// The actions customers have (in display order, with label overrides),
/// the sign-in methods, the branding and the public slug. An organization
/// that has configured nothing has every action on and its own slug.
#[utoipa::path(
    operation_id = "getPortalSettings",
    tag = "portal",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = PortalSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/portal/settings")]
pub async fn get_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<PortalSettingsView>, ApiError> {
    let store = state.store.clone();
    let now = state.clock.now();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        view(&mut conn, &principal.org_id, now)
    })
    .await??;
    Ok(web::Json(v))
}

fn slug_taken() -> ApiError {
    ApiError::new(ProblemCode::SlugTaken)
        .detail(
            "Un autre portail utilise déjà cette adresse.",
            "Another portal already uses this slug.",
        )
        .field("slug", "taken")
}

/// Replace the portal settings (admins only).
///
/// Replaces the whole configuration, but for an omitted `autopay`
/// section, which keeps the current autopay rules. Changes apply at once
/// to every open customer session: an action turned off answers 403
/// `portal_action_disabled` from the next request on, and the autopay
/// rules govern the next autopay request. The sign-in methods
/// are the organization's (`login_methods` of the organization settings).
#[utoipa::path(
    operation_id = "updatePortalSettings",
    tag = "portal",
    security(("bearer" = [])),
    request_body = PortalSettingsInput,
    responses(
        (status = 200, description = "The settings after the change.", body = PortalSettingsView),
        (status = 400, description = "Malformed body, unknown field, invalid value, or an action listed twice. Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another portal answers at this slug. Codes: `slug_taken`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/v1/admin/portal/settings")]
pub async fn put_settings(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<PortalSettingsInput>,
) -> Result<web::Json<PortalSettingsView>, ApiError> {
    let body = body.0;
    let actions = PortalActions::new(
        body.actions
            .iter()
            .map(|a| rules::ActionSetting {
                action: a.action.into(),
                enabled: a.enabled,
                labels: a.labels.to_map(),
            })
            .collect(),
    )
    .map_err(|e| {
        ApiError::new(ProblemCode::InvalidField)
            .detail(
                "Une action est listée deux fois.",
                "An action is listed twice.",
            )
            .field("actions", "duplicate")
            .cause(e.to_string())
    })?;
    let store = state.store.clone();
    let now = state.clock.now();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            staff::lock_organization(conn, &principal.org_id)?;
            if portal::slug_taken(conn, &principal.org_id, &body.slug)? {
                return Err(slug_taken());
            }
            let mut s = portal::get(conn, &principal.org_id, now)?;
            s.slug = body.slug.clone();
            s.actions = actions;
            let b = body.branding;
            s.display_name = b.display_name.map(|v| v.trim().to_owned());
            s.accent_color = b.accent_color.map(|v| v.to_ascii_lowercase());
            s.contact_email = b.contact_email.map(|e| e.as_str().to_owned());
            s.phone = b.phone.map(|p| p.as_str().to_owned());
            s.address = b.address.map(|v| v.trim().to_owned());
            s.website = b.website;
            if let Some(a) = body.autopay {
                s.autopay = guichet_domain::autopay::AutopaySettings {
                    customers_can_change: a.customers_can_change_autopay,
                    auto_enable_on_new_method: a.auto_enable_on_new_method,
                    checkbox_default: a.checkbox_default,
                };
                s.billing_contact_email = a.billing_contact_email.map(|e| e.as_str().to_owned());
            }
            s.updated_at = now;
            portal::save(conn, &s).map_err(|e| match e {
                StoreError::Conflict(_) => slug_taken(),
                e => e.into(),
            })?;
            let mut org = organizations::get(conn, &principal.org_id)?;
            org.login_methods = body.sign_in_methods.into();
            organizations::update_settings(conn, &org)?;
            Ok::<_, ApiError>(view(conn, &principal.org_id, now)?)
        })
    })
    .await??;
    Ok(web::Json(v))
}

/// Upload the portal's logo (admins only).
///
/// The raw image as the body: PNG or JPEG, recognized by its first bytes
/// whatever `Content-Type` says, at most 512 KiB. It replaces the previous
/// logo and is served publicly at the `logo_url` of the branding.
#[utoipa::path(
    operation_id = "uploadPortalLogo",
    tag = "portal",
    security(("bearer" = [])),
    request_body(content = inline(crate::openapi::Binary), description = "The image (PNG or JPEG, at most 512 KiB).", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "The settings, with the new logo URL.", body = PortalSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 512 KiB. Codes: `payload_too_large`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither PNG nor JPEG. Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/v1/admin/portal/logo")]
pub async fn put_logo(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Json<PortalSettingsView>, ApiError> {
    let limit = rules::LOGO_MAX_BYTES;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(payload_too_large(limit));
    }
    let mut content = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(ProblemCode::BadRequest).cause(e.to_string()))?;
        if content.len() + chunk.len() > limit {
            return Err(payload_too_large(limit));
        }
        content.extend_from_slice(&chunk);
    }
    let Some(kind) = LogoType::sniff(&content) else {
        return Err(ApiError::new(ProblemCode::UnsupportedMediaType).detail(
            "Le logo doit être une image PNG ou JPEG.",
            "The logo must be a PNG or JPEG image.",
        ));
    };
    let now = state.clock.now();
    let logo = Logo {
        content_type: kind.content_type().to_owned(),
        sha256: hex::encode(Sha256::digest(&content)),
        content,
        updated_at: now,
    };
    let store = state.store.clone();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            // The settings row exists once a logo does, so that the logo
            // is served at the portal's slug.
            staff::lock_organization(conn, &principal.org_id)?;
            if portal::find(conn, &principal.org_id)?.is_none() {
                let s = portal::get(conn, &principal.org_id, now)?;
                portal::save(conn, &s)?;
            }
            portal::put_logo(conn, &principal.org_id, &logo)?;
            Ok::<_, ApiError>(view(conn, &principal.org_id, now)?)
        })
    })
    .await??;
    Ok(web::Json(v))
}

/// Remove the portal's logo (admins only).
#[utoipa::path(
    operation_id = "deletePortalLogo",
    tag = "portal",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No logo any more."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "There was no logo. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/admin/portal/logo")]
pub async fn delete_logo(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let found = web::block(move || {
        let mut conn = store.conn()?;
        portal::delete_logo(&mut conn, &principal.org_id)
    })
    .await??;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::from(StoreError::NotFound))
    }
}

/// One action's override for one customer: `true` or `false` forces it,
/// `null` goes back to the organization's setting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerOverrides {
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub bookings: Option<Option<bool>>,
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub payments: Option<Option<bool>>,
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub documents: Option<Option<bool>>,
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub messages: Option<Option<bool>>,
}

impl Validate for CustomerOverrides {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

/// One customer's portal settings: the overrides and the effective
/// actions (the organization's with the overrides on top).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPortalSettings {
    pub customer_id: String,
    /// The actions this customer has forced on or off.
    pub overrides: Vec<ActionOverride>,
    /// The effective actions, in display order.
    pub actions: Vec<ActionConfig>,
}

/// An action forced on or off for one customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOverride {
    pub action: ActionName,
    pub enabled: bool,
}

/// Turn portal actions on or off for one customer.
///
/// Each field present forces that action on (`true`) or off (`false`)
/// for this customer, or (`null`) gives it back the organization's
/// setting; absent fields keep their override. Applies at once to the
/// customer's open sessions.
#[utoipa::path(
    operation_id = "updateCustomerPortalSettings",
    tag = "portal",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "The customer's id (`cus_...`).")),
    request_body = CustomerOverrides,
    responses(
        (status = 200, description = "The customer's overrides and effective actions.", body = CustomerPortalSettings),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer in the organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/v1/admin/customers/{id}/portal-settings")]
pub async fn put_customer_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CustomerOverrides>,
) -> Result<web::Json<CustomerPortalSettings>, ApiError> {
    let customer_id = path.into_inner();
    let b = body.0;
    let changes: Vec<(PortalAction, Option<bool>)> = [
        (PortalAction::Bookings, b.bookings),
        (PortalAction::Payments, b.payments),
        (PortalAction::Documents, b.documents),
        (PortalAction::Messages, b.messages),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .collect();
    let store = state.store.clone();
    let now = state.clock.now();
    let out = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            customers::get(conn, &principal.org_id, &customer_id)?;
            portal::set_overrides(conn, &principal.org_id, &customer_id, &changes, now)?;
            let mut overrides = portal::overrides(conn, &principal.org_id, &customer_id)?;
            overrides.sort();
            let actions = portal::effective_actions(conn, &principal.org_id, &customer_id)?;
            Ok::<_, StoreError>(CustomerPortalSettings {
                customer_id: customer_id.clone(),
                overrides: overrides
                    .into_iter()
                    .map(|(a, enabled)| ActionOverride {
                        action: a.into(),
                        enabled,
                    })
                    .collect(),
                actions: actions.iter().map(ActionConfig::from).collect(),
            })
        })
    })
    .await??;
    Ok(web::Json(out))
}

/// A preview session: a short-lived access token on the organization's
/// test customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewSession {
    /// The access token (JWT), marked as a preview: `Authorization: Bearer ...`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token and its session end (no refresh token).
    #[schema(example = 600)]
    pub expires_in: i64,
    pub session_id: String,
    pub customer: TestCustomer,
}

/// The organization's test customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestCustomer {
    pub id: String,
    pub name: String,
    /// Always `true`.
    pub test: bool,
}

/// The organization's test customer, created on first use.
pub fn test_customer(
    conn: &mut DbConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<Customer, StoreError> {
    // One test customer even when several previews start at once, and no
    // settings change in between loses it.
    staff::lock_organization(conn, org_id)?;
    let mut s = portal::get(conn, org_id, now)?;
    if let Some(id) = &s.test_customer_id
        && let Ok(c) = customers::get(conn, org_id, id)
    {
        return Ok(c);
    }
    let org = organizations::get(conn, org_id)?;
    let id = ids::new_id("cus");
    let c = Customer {
        email: format!(
            "test-customer+{}@{}.invalid",
            &id[4..12].to_ascii_lowercase(),
            org.slug.as_str()
        ),
        id,
        org_id: org_id.to_owned(),
        name: match org.locale {
            Locale::Fr => "Client test".to_owned(),
            Locale::En => "Test customer".to_owned(),
        },
        // No mobile: a preview never sends an SMS.
        mobile: None,
        locale: org.locale,
        external_ref: None,
        registered_at: None,
        blocked_at: None,
        created_at: now,
        updated_at: now,
    };
    customers::insert(conn, &c)?;
    s.test_customer_id = Some(c.id.clone());
    s.updated_at = now;
    portal::save(conn, &s)?;
    Ok(c)
}

/// Open a preview session on the test customer (staff).
///
/// Gives the calling staff member a short-lived customer session (10
/// minutes, no refresh token) on the organization's test customer, created
/// on first use: the portal as a customer sees it. The token is marked as
/// a preview; what it does is flagged test; it sends no SMS and e-mails
/// only the staff member. It never opens a real customer's session. API
/// keys cannot preview.
#[utoipa::path(
    operation_id = "createPortalPreviewSession",
    tag = "portal",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The preview session.", body = PreviewSession),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token or an API key. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/portal/preview-session")]
pub async fn create_preview_session(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let StaffActor::Staff { id: staff_id, .. } = principal.actor.clone() else {
        return Err(ApiError::new(ProblemCode::Forbidden).detail(
            "Seul un membre du personnel peut prévisualiser le portail.",
            "Only a staff member can preview the portal.",
        ));
    };
    let client = crate::auth::flows::ClientInfo::of(&req);
    let now = state.clock.now();
    let expires_at = now + Duration::minutes(PREVIEW_MINUTES);
    let store = state.store.clone();
    let st = state.clone();
    let out = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let customer = test_customer(conn, &principal.org_id, now)?;
            let session = sessions::Session {
                id: ids::new_id("ses"),
                org_id: principal.org_id.clone(),
                subject_kind: SubjectKind::Customer,
                subject_id: customer.id.clone(),
                remember_me: false,
                user_agent: client.user_agent.clone(),
                ip: Some(client.ip.clone()),
                created_at: now,
                last_used_at: now,
                expires_at,
                revoked_at: None,
            };
            sessions::insert(conn, &session)?;
            let (token, _) = st
                .tokens
                .issue_preview(
                    &customer.id,
                    &principal.org_id,
                    &session.id,
                    &staff_id,
                    expires_at,
                    now,
                )
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok::<_, ApiError>(PreviewSession {
                access_token: token,
                token_type: "Bearer",
                expires_in: (expires_at - now).num_seconds(),
                session_id: session.id,
                customer: TestCustomer {
                    id: customer.id,
                    name: customer.name,
                    test: true,
                },
            })
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(out))
}
