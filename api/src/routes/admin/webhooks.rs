//! `/v1/admin/webhook-endpoints`: where the organization's events are sent,
//! signed the Standard Webhooks way. Admins and API keys only.

pub mod deliveries;

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::identity::StaffRole;
use guichet_domain::ids;
use guichet_domain::webhooks::Secret;
use guichet_store::StoreError;
use guichet_store::repo::webhooks::{self, Endpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{AUTH_FAILURES, Page, next_cursor};
use crate::auth::StaffPrincipal;
use crate::auth::principal::StaffActor;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// The documented role failure of webhook routes.
pub const ADMIN_ONLY: &str =
    "A customer token, or a staff member who is not an admin. Codes: `forbidden`.";
const NOT_FOUND: &str = "No such webhook endpoint in your organization. Codes: `not_found`.";
const URL_REFUSALS: &str = "The URL is not `https://` (or `http://` when the server allows it), or is malformed (`validation_failed`); its host leads to an internal address (`webhook_url_forbidden`); an event type is unknown (`unknown_event_type`). Codes: `validation_failed`, `webhook_url_forbidden`, `unknown_event_type`.";

/// Admins and API keys may manage webhooks; agents may not.
pub fn admin_or_key(principal: &StaffPrincipal) -> Result<(), ApiError> {
    match &principal.actor {
        StaffActor::ApiKey { .. }
        | StaffActor::Staff {
            role: StaffRole::Admin,
            ..
        } => Ok(()),
        StaffActor::Staff { .. } => Err(ApiError::new(ProblemCode::Forbidden).detail(
            "Seuls les administrateurs gèrent les webhooks.",
            "Only admins manage webhooks.",
        )),
    }
}

/// Who acts, as events name it.
pub fn actor(principal: &StaffPrincipal) -> &'static str {
    match principal.actor {
        StaffActor::ApiKey { .. } => "api_key",
        StaffActor::Staff { .. } => "staff",
    }
}

/// Why an endpoint is disabled.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// An admin disabled it.
    Manual,
    /// Every delivery failed for 3 days.
    Failing,
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    #[schema(example = "whe_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "https://hooks.example.com/guichet")]
    pub url: String,
    /// The event types sent to it, or `["*"]` for all.
    #[schema(value_type = Vec<crate::routes::events::admin::EventTypeSelector>, example = json!(["schedule.card_changed", "instalment.failed"]))]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled (`null` while enabled).
    pub disabled_reason: Option<DisabledReason>,
    pub description: String,
    /// Since when every delivery has failed (`null` after a success).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookEndpointView {
    fn from(e: Endpoint) -> Self {
        WebhookEndpointView {
            disabled_reason: match e.disabled_reason.as_deref() {
                None => None,
                Some("failing") => Some(DisabledReason::Failing),
                Some(_) => Some(DisabledReason::Manual),
            },
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            enabled: e.enabled,
            description: e.description,
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint, with its signing secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookEndpoint {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointView,
    /// The signing secret: `whsec_` and the base64 of 32 random bytes (the
    /// HMAC key). Shown once; stored sealed.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// A page of endpoints, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpointView>,
    /// The cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A new endpoint.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// Where events are POSTed: `https://` (plain `http://` only when the
    /// server runs with `--webhook-allow-http`). Its host may not lead to
    /// an internal address.
    #[validate(length(max = 2048))]
    #[schema(
        max_length = 2048,
        format = "uri",
        example = "https://hooks.example.com/guichet"
    )]
    pub url: String,
    /// The event types to send (see docs/EVENTS.md), or `["*"]` for all
    /// (the default).
    #[validate(length(min = 1, max = 50))]
    #[schema(value_type = Option<Vec<crate::routes::events::admin::EventTypeSelector>>, min_items = 1, max_items = 50, example = json!(["*"]))]
    pub event_types: Option<Vec<String>>,
    /// What the endpoint is for (default empty).
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Whether events are sent to it (default true).
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; absent fields stay. Enabling a disabled
/// endpoint clears `disabled_reason` and `failing_since`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    #[validate(length(max = 2048))]
    #[schema(max_length = 2048, format = "uri")]
    pub url: Option<String>,
    #[validate(length(min = 1, max = 50))]
    #[schema(value_type = Option<Vec<crate::routes::events::admin::EventTypeSelector>>, min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<String>>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A new signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotation {
    /// The new secret, shown once. Deliveries are signed with it at once.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    /// Until then the former secret still signs too: each delivery carries
    /// both signatures in `webhook-signature`.
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// Checks the types against the catalogue: the list without duplicates,
/// `["*"]` when it names `*`.
fn event_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    for (i, t) in types.iter().enumerate() {
        if t != "*" && guichet_domain::events::EventType::parse(t).is_none() {
            let shown: String = t.chars().take(100).collect();
            return Err(ApiError::new(ProblemCode::UnknownEventType)
                .detail(
                    format!("Type d'événement inconnu : {shown:?}."),
                    format!("Unknown event type: {shown:?}."),
                )
                .field(format!("event_types[{i}]"), "unknown"));
        }
    }
    if types.iter().any(|t| t == "*") {
        return Ok(vec!["*".to_owned()]);
    }
    let mut unique: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique)
}

/// Checks a URL where it leads, off the async threads.
async fn vet(state: &web::Data<AppState>, url: String) -> Result<String, ApiError> {
    let webhooks = state.webhooks.clone();
    web::block(move || webhooks.vet(&url).map(|u| u.as_str().to_owned())).await?
}

fn not_found_for(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found().detail(
            "Aucun point de réception de webhooks de ce nom dans votre organisation.",
            "No such webhook endpoint in your organization.",
        ),
        other => other.into(),
    }
}

/// Create a webhook endpoint; its signing secret is shown once.
///
/// Create a webhook endpoint: the organization's events of the chosen
/// types are POSTed to its URL, signed the Standard Webhooks way
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The answer
/// carries the signing secret, shown this once. The URL's host is resolved
/// now and at each delivery; an internal address (loopback, private,
/// link-local, multicast, ...) is refused unless the server allows it.
#[utoipa::path(
    operation_id = "createWebhookEndpoint",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = CreateWebhookEndpoint,
    responses(
        (status = 201, description = "Created; `secret` is shown this once.", body = CreatedWebhookEndpoint,
            headers(("Location" = String, description = "The endpoint's address: `/v1/admin/webhook-endpoints/{id}`."))),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = URL_REFUSALS, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateWebhookEndpoint>,
) -> Result<HttpResponse, ApiError> {
    admin_or_key(&principal)?;
    let body = body.0;
    let types = event_types(body.event_types.unwrap_or_else(|| vec!["*".to_owned()]))?;
    let url = vet(&state, body.url).await?;
    let now = state.clock.now();
    let enabled = body.enabled.unwrap_or(true);
    let endpoint = Endpoint {
        id: ids::new_id("whe"),
        org_id: principal.org_id.clone(),
        url,
        description: body.description.unwrap_or_default().trim().to_owned(),
        event_types: types,
        enabled,
        disabled_reason: (!enabled).then(|| "manual".to_owned()),
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let secret = Secret::generate();
    let sealed = state.outbox_key().seal(secret.expose());
    let store = state.store.clone();
    let saved = endpoint.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        webhooks::insert(&mut conn, &saved, &sealed)
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/v1/admin/webhook-endpoints/{}", endpoint.id),
        ))
        .json(CreatedWebhookEndpoint {
            endpoint: endpoint.into(),
            secret: secret.expose().to_owned(),
        }))
}

/// The organization's webhook endpoints, newest first.
#[utoipa::path(
    operation_id = "listWebhookEndpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(Page),
    responses(
        (status = 200, description = "A page of endpoints (never their secrets).", body = WebhookEndpointList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<Page>,
) -> Result<web::Json<WebhookEndpointList>, ApiError> {
    admin_or_key(&principal)?;
    let (limit, after) = page.resolve()?;
    let store = state.store.clone();
    let (items, next_cursor) = web::block(move || {
        let mut conn = store.conn()?;
        let mut items = webhooks::list(&mut conn, &principal.org_id, after.as_deref(), limit + 1)?;
        let next = next_cursor(&mut items, limit, |e| &e.id);
        Ok::<_, StoreError>((items, next))
    })
    .await??;
    Ok(web::Json(WebhookEndpointList {
        data: items.into_iter().map(WebhookEndpointView::from).collect(),
        next_cursor,
    }))
}

/// One webhook endpoint.
#[utoipa::path(
    operation_id = "getWebhookEndpoint",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`).")),
    responses(
        (status = 200, description = "The endpoint (never its secret).", body = WebhookEndpointView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<WebhookEndpointView>, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let store = state.store.clone();
    let endpoint = web::block(move || {
        let mut conn = store.conn()?;
        webhooks::get(&mut conn, &principal.org_id, &id)
    })
    .await?
    .map_err(not_found_for)?;
    Ok(web::Json(endpoint.into()))
}

/// Change a webhook endpoint's URL, event types, description or enablement.
///
/// Change a webhook endpoint. A new URL is checked as at creation.
/// Disabling it (`"enabled": false`) holds its deliveries until it is
/// enabled again; enabling it clears `disabled_reason` and `failing_since`.
#[utoipa::path(
    operation_id = "updateWebhookEndpoint",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`).")),
    request_body = UpdateWebhookEndpoint,
    responses(
        (status = 200, description = "The endpoint after the change.", body = WebhookEndpointView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = URL_REFUSALS, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<UpdateWebhookEndpoint>,
) -> Result<web::Json<WebhookEndpointView>, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let body = body.0;
    let types = body.event_types.map(event_types).transpose()?;
    let url = match body.url {
        Some(url) => Some(vet(&state, url).await?),
        None => None,
    };
    let now = state.clock.now();
    let store = state.store.clone();
    let endpoint = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let mut endpoint = webhooks::lock(conn, &principal.org_id, &id)?;
            if let Some(url) = url {
                endpoint.url = url;
            }
            if let Some(types) = types {
                endpoint.event_types = types;
            }
            if let Some(description) = body.description {
                endpoint.description = description.trim().to_owned();
            }
            match body.enabled {
                Some(true) if !endpoint.enabled => {
                    endpoint.enabled = true;
                    endpoint.disabled_reason = None;
                    endpoint.failing_since = None;
                }
                Some(false) if endpoint.enabled => {
                    endpoint.enabled = false;
                    endpoint.disabled_reason = Some("manual".to_owned());
                }
                _ => {}
            }
            endpoint.updated_at = now;
            webhooks::update(conn, &endpoint)?;
            Ok::<_, StoreError>(endpoint)
        })
    })
    .await?
    .map_err(not_found_for)?;
    Ok(web::Json(endpoint.into()))
}

/// Delete a webhook endpoint, its pending deliveries and its log.
#[utoipa::path(
    operation_id = "deleteWebhookEndpoint",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`).")),
    responses(
        (status = 204, description = "Deleted: nothing more is sent to it."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/{id}")]
pub async fn remove(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            webhooks::delete(conn, &principal.org_id, &id)
        })
    })
    .await?
    .map_err(not_found_for)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a new signing secret; the former one stays valid 24 hours.
///
/// Issue a new signing secret, shown once. For 24 hours deliveries carry
/// two signatures (the new secret's and the former one's) so that the
/// receiver can switch without losing an event.
#[utoipa::path(
    operation_id = "rotateWebhookEndpointSecret",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`).")),
    responses(
        (status = 200, description = "The new secret, shown this once.", body = SecretRotation),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/secret-rotation")]
pub async fn rotate_secret(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<SecretRotation>, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let expires = now + chrono::Duration::hours(24);
    let secret = Secret::generate();
    let sealed = state.outbox_key().seal(secret.expose());
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        webhooks::rotate_secret(&mut conn, &principal.org_id, &id, &sealed, expires, now)
    })
    .await?
    .map_err(not_found_for)?;
    Ok(web::Json(SecretRotation {
        secret: secret.expose().to_owned(),
        previous_secret_expires_at: expires,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked_and_normalized() {
        assert_eq!(
            event_types(vec![
                "schedule.card_changed".into(),
                "schedule.card_changed".into()
            ])
            .unwrap(),
            vec!["schedule.card_changed".to_owned()]
        );
        assert_eq!(
            event_types(vec!["order.created".into(), "*".into()]).unwrap(),
            vec!["*".to_owned()]
        );
        let e = event_types(vec!["order.created".into(), "order.eaten".into()]).unwrap_err();
        assert_eq!(e.code, ProblemCode::UnknownEventType);
        assert_eq!(e.errors[0].field, "event_types[1]");
    }
}
