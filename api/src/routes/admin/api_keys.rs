//! `/v1/admin/api-keys`: server-to-server keys, managed by admins.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::{ids, secret};
use guichet_store::repo::api_keys::{self, ApiKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{AUTH_FAILURES, ROLE_FAILURE};
use crate::auth::AdminPrincipal;
use crate::auth::principal::{API_KEY_PREFIX, api_key_hash};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "key_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "gk_3F9a")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key, with its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The secret: `Authorization: Bearer gk_...`. Shown once, stored hashed.
    #[schema(example = "gk_3F9a...")]
    pub secret: String,
}

/// Every key of the organization, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyView>,
    /// Always null: every key is listed.
    pub next_cursor: Option<String>,
}

/// A new key's label.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for (e.g. "billing back-office").
    #[validate(
        length(max = 100),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: String,
}

/// A new random API key for the organization.
pub fn new_key(org_id: &str, name: &str, now: DateTime<Utc>) -> (ApiKey, String, String) {
    let secret = format!("{API_KEY_PREFIX}{}", secret::token(32));
    let key = ApiKey {
        id: ids::new_id("key"),
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        prefix: secret.chars().take(7).collect(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let hash = api_key_hash(&secret);
    (key, secret, hash)
}

/// Create an API key for server-to-server calls to `/v1/admin/...`.
#[utoipa::path(
    operation_id = "createApiKey",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `secret` is shown this once.", body = CreatedApiKey),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let (key, secret, hash) = new_key(&principal.org_id, body.0.name.trim(), now);
    let store = state.store.clone();
    let saved = key.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        api_keys::insert(&mut conn, &saved, &hash)
    })
    .await??;
    Ok(HttpResponse::Created().json(CreatedApiKey {
        key: key.into(),
        secret,
    }))
}

/// The organization's API keys (without secrets).
#[utoipa::path(
    operation_id = "listApiKeys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys.", body = ApiKeyList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    let store = state.store.clone();
    let keys = web::block(move || {
        let mut conn = store.conn()?;
        api_keys::list(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyView::from).collect(),
        next_cursor: None,
    }))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(
    operation_id = "revokeApiKey",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Key id (`key_...`).")),
    responses(
        (status = 204, description = "Revoked (revoking twice is harmless)."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/{id}")]
pub async fn revoke(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        api_keys::get(&mut conn, &principal.org_id, &id)?;
        api_keys::revoke(&mut conn, &principal.org_id, &id, now)
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}
