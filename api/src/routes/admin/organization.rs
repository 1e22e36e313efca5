//! `/v1/admin/organization`: the organization's own settings.

use actix_web::{get, patch, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact::{Email, Msisdn};
use guichet_domain::identity::LoginMethods;
use guichet_domain::{Locale, Organization};
use guichet_store::repo::organizations;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{AUTH_FAILURES, ROLE_FAILURE, present};
use crate::auth::{AdminPrincipal, StaffPrincipal};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The organization's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    #[schema(example = "org_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "my-shop")]
    pub slug: String,
    pub name: String,
    /// Default language of messages: `fr` or `en`.
    #[schema(value_type = crate::routes::enums::Language, example = "fr")]
    pub locale: Locale,
    /// How customers may sign in: `password`, `passwordless` or `both`.
    #[schema(value_type = crate::routes::enums::LoginMethods, example = "both")]
    pub login_methods: LoginMethods,
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView {
            id: o.id,
            slug: o.slug.as_str().to_owned(),
            name: o.name,
            locale: o.locale,
            login_methods: o.login_methods,
            support_email: o.support_email,
            support_phone: o.support_phone,
            created_at: o.created_at,
        }
    }
}

/// Changes to the settings; absent fields stay, `null` clears a contact.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[validate(
        length(max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(value_type = Option<crate::routes::enums::Language>)]
    pub locale: Option<Locale>,
    #[schema(value_type = Option<crate::routes::enums::LoginMethods>)]
    pub login_methods: Option<LoginMethods>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = "email")]
    pub support_email: Option<Option<Email>>,
    /// E.164.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub support_phone: Option<Option<Msisdn>>,
}

/// The organization's settings.
#[utoipa::path(
    operation_id = "getOrganizationSettings",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = OrganizationView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn get_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    let store = state.store.clone();
    let org = web::block(move || {
        let mut conn = store.conn()?;
        organizations::get(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(org.into()))
}

/// Change the organization settings (admins only).
///
/// Change the settings (admins only). Changes apply at once, to every
/// request that follows.
#[utoipa::path(
    operation_id = "updateOrganizationSettings",
    tag = "admin",
    security(("bearer" = [])),
    request_body = UpdateOrganization,
    responses(
        (status = 200, description = "The settings after the change.", body = OrganizationView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("")]
pub async fn update_settings(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<UpdateOrganization>,
) -> Result<web::Json<OrganizationView>, ApiError> {
    let body = body.0;
    let store = state.store.clone();
    let org = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let mut org = organizations::get(conn, &principal.org_id)?;
            if let Some(name) = body.name {
                org.name = name.trim().to_owned();
            }
            if let Some(locale) = body.locale {
                org.locale = locale;
            }
            if let Some(methods) = body.login_methods {
                org.login_methods = methods;
            }
            if let Some(email) = body.support_email {
                org.support_email = email.map(|e| e.as_str().to_owned());
            }
            if let Some(phone) = body.support_phone {
                org.support_phone = phone.map(|p| p.as_str().to_owned());
            }
            organizations::update_settings(conn, &org)?;
            Ok::<_, guichet_store::StoreError>(org)
        })
    })
    .await??;
    Ok(web::Json(org.into()))
}
