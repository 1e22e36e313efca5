//! The delivery log of an endpoint, test pings and redeliveries.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use guichet_domain::ids;
use guichet_store::StoreError;
use guichet_store::repo::events::{self, Event};
use guichet_store::repo::webhooks::{self, Attempt, Delivery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{ADMIN_ONLY, WebhookEndpointView, actor, admin_or_key};
use crate::auth::StaffPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem};
use crate::routes::admin::{AUTH_FAILURES, Page, next_cursor, status_filter};
use crate::state::AppState;

/// A delivery's status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: due at `next_attempt_at`.
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Every attempt failed for 3 days: given up.
    Failed,
}

/// An attempt's outcome.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
}

fn status(value: &str) -> DeliveryStatus {
    match value {
        "succeeded" => DeliveryStatus::Succeeded,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Pending,
    }
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    /// 1 for the first.
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    /// The receiver's status (`null` when none came: timeout, refused
    /// connection, forbidden address).
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    /// The first 1 KiB of the receiver's answer.
    pub response: String,
    /// What went wrong without an HTTP status.
    #[schema(example = "timeout")]
    pub error: Option<String>,
    /// When the delivery is tried again (`null` on success or once given
    /// up).
    pub next_retry_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
}

impl From<Attempt> for WebhookAttemptView {
    fn from(a: Attempt) -> Self {
        WebhookAttemptView {
            attempt: a.attempt,
            outcome: if a.outcome == "succeeded" {
                AttemptOutcome::Succeeded
            } else {
                AttemptOutcome::Failed
            },
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            response: a.response,
            error: a.error,
            next_retry_at: a.next_retry_at,
            started_at: a.started_at,
        }
    }
}

/// One event to one endpoint, with its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    #[schema(example = "whd_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "evt_3k9x0d2m7q8r4t6v1w5y")]
    pub event_id: String,
    #[schema(example = "schedule.card_changed")]
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is due (`null` once succeeded or failed).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_attempt: Option<WebhookAttemptView>,
}

fn view(d: Delivery, last: Option<Attempt>) -> WebhookDeliveryView {
    WebhookDeliveryView {
        status: status(&d.status),
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        updated_at: d.updated_at,
        last_attempt: last.map(WebhookAttemptView::from),
    }
}

/// A delivery with every attempt, first to last.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryDetail {
    #[serde(flatten)]
    pub delivery: WebhookDeliveryView,
    pub attempts_log: Vec<WebhookAttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub data: Vec<WebhookDeliveryView>,
    /// The cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `?status=&limit=&cursor=` of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries with this status: `pending`, `succeeded` or `failed`.
    #[param(nullable = false, pattern = "^(pending|succeeded|failed)$")]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

const ENDPOINT_NOT_FOUND: &str =
    "No such webhook endpoint (or delivery) in your organization. Codes: `not_found`.";

/// An endpoint's delivery log, newest first.
///
/// An endpoint's deliveries, newest first, each with its status, number of
/// attempts, next attempt and last attempt (HTTP status, latency, the
/// first 1 KiB of the answer).
#[utoipa::path(
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`)."), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries.", body = WebhookDeliveryList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = ENDPOINT_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/deliveries")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<web::Json<WebhookDeliveryList>, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let query = query.into_inner();
    let wanted = status_filter(
        query.status.as_deref(),
        |s| {
            ["pending", "succeeded", "failed"]
                .contains(&s)
                .then(|| s.to_owned())
        },
        &["pending", "succeeded", "failed"],
    )?;
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let store = state.store.clone();
    let (items, next) = web::block(move || {
        let mut conn = store.conn()?;
        webhooks::get(&mut conn, &principal.org_id, &id)?;
        let mut items = webhooks::deliveries(
            &mut conn,
            &principal.org_id,
            &id,
            wanted.as_deref(),
            after.as_deref(),
            limit + 1,
        )?;
        let next = next_cursor(&mut items, limit, |(d, _)| &d.id);
        Ok::<_, StoreError>((items, next))
    })
    .await??;
    Ok(web::Json(WebhookDeliveryList {
        data: items.into_iter().map(|(d, a)| view(d, a)).collect(),
        next_cursor: next,
    }))
}

/// One delivery of an endpoint, with every attempt.
#[utoipa::path(
    operation_id = "getWebhookDelivery",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(
        ("id" = String, Path, description = "Endpoint id (`whe_...`)."),
        ("delivery_id" = String, Path, description = "Delivery id (`whd_...`)."),
    ),
    responses(
        (status = 200, description = "The delivery and its attempts (`attempts_log`).", body = WebhookDeliveryDetail),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = ENDPOINT_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/deliveries/{delivery_id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<WebhookDeliveryDetail>, ApiError> {
    admin_or_key(&principal)?;
    let (id, delivery_id) = path.into_inner();
    let store = state.store.clone();
    let (delivery, attempts) = web::block(move || {
        let mut conn = store.conn()?;
        webhooks::delivery_with_attempts(&mut conn, &principal.org_id, &id, &delivery_id)
    })
    .await??;
    let last = attempts.last().cloned();
    Ok(web::Json(WebhookDeliveryDetail {
        delivery: view(delivery, last),
        attempts_log: attempts.into_iter().map(WebhookAttemptView::from).collect(),
    }))
}

/// A test event queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// The `ping` event.
    #[schema(example = "evt_3k9x0d2m7q8r4t6v1w5y")]
    pub event_id: String,
    /// Its delivery to this endpoint (see the delivery log).
    #[schema(example = "whd_3k9x0d2m7q8r4t6v1w5y")]
    pub delivery_id: String,
}

/// Send a `ping` event to this endpoint.
///
/// Records a `ping` event (its data is the endpoint as the API shows it)
/// and queues it to this endpoint only, due now, whatever its event types.
/// A disabled endpoint receives it once enabled.
#[utoipa::path(
    operation_id = "testWebhookEndpoint",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Endpoint id (`whe_...`).")),
    responses(
        (status = 202, description = "Queued.", body = TestQueued),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = ENDPOINT_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/test")]
pub async fn test(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let acting = actor(&principal);
    let store = state.store.clone();
    let queued = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let endpoint = webhooks::get(conn, &principal.org_id, &id)?;
            let data = serde_json::to_string(&WebhookEndpointView::from(endpoint.clone()))
                .map_err(|e| StoreError::Database(e.to_string()))?;
            let event = Event {
                id: ids::new_id("evt"),
                org_id: principal.org_id.clone(),
                event_type: "ping".to_owned(),
                object_type: "webhook_endpoint".to_owned(),
                object_id: endpoint.id.clone(),
                customer_id: None,
                actor: acting.to_owned(),
                data,
                created_at: now,
            };
            events::insert(conn, &event)?;
            let delivery_id = webhooks::queue(conn, &event, &endpoint.id, now)?;
            Ok::<_, StoreError>(TestQueued {
                event_id: event.id,
                delivery_id,
            })
        })
    })
    .await??;
    Ok(HttpResponse::Accepted().json(queued))
}

/// Which endpoint to send an event to again.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// Only this endpoint (`whe_...`; it gets the event even if it does not
    /// subscribe to its type). Absent: every enabled endpoint that
    /// subscribes to the event's type.
    #[validate(length(max = 64))]
    #[schema(max_length = 64, example = "whe_3k9x0d2m7q8r4t6v1w5y")]
    pub endpoint_id: Option<String>,
}

/// A delivery queued by a redelivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedDelivery {
    #[schema(example = "whd_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "whe_3k9x0d2m7q8r4t6v1w5y")]
    pub endpoint_id: String,
    pub event_id: String,
    /// Always `pending`.
    pub status: DeliveryStatus,
    /// Now.
    pub next_attempt_at: DateTime<Utc>,
}

/// The deliveries a redelivery queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveryQueued {
    pub data: Vec<QueuedDelivery>,
}

/// Send an event again now.
///
/// Queues a new delivery of the event, due now, to one endpoint (`endpoint_id`)
/// or to every enabled endpoint subscribed to its type. The receiver gets
/// the same `webhook-id` (the event's id) as before, so it can tell a
/// redelivery from a new event.
#[utoipa::path(
    operation_id = "redeliverEvent",
    tag = "webhooks",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Event id (`evt_...`).")),
    request_body = Redelivery,
    responses(
        (status = 202, description = "Queued (possibly none, when no enabled endpoint subscribes).", body = RedeliveryQueued),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ADMIN_ONLY, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or no such endpoint, in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/events/{id}/redelivery")]
pub async fn redeliver(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Redelivery>,
) -> Result<HttpResponse, ApiError> {
    admin_or_key(&principal)?;
    let id = path.into_inner();
    let only = body.0.endpoint_id;
    let now = state.clock.now();
    let store = state.store.clone();
    let data = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let event = events::get(conn, &principal.org_id, &id)?.ok_or(StoreError::NotFound)?;
            let targets: Vec<String> = match &only {
                Some(endpoint_id) => {
                    vec![webhooks::get(conn, &principal.org_id, endpoint_id)?.id]
                }
                None => {
                    let mut targets = Vec::new();
                    let mut after: Option<String> = None;
                    loop {
                        let page = webhooks::list(conn, &principal.org_id, after.as_deref(), 100)?;
                        let Some(last) = page.last() else { break };
                        after = Some(last.id.clone());
                        targets.extend(
                            page.into_iter()
                                .filter(|e| {
                                    e.enabled
                                        && e.event_types
                                            .iter()
                                            .any(|t| t == "*" || *t == event.event_type)
                                })
                                .map(|e| e.id),
                        );
                    }
                    targets
                }
            };
            let mut queued = Vec::with_capacity(targets.len());
            for endpoint_id in targets {
                let delivery_id = webhooks::queue(conn, &event, &endpoint_id, now)?;
                queued.push(QueuedDelivery {
                    id: delivery_id,
                    endpoint_id,
                    event_id: event.id.clone(),
                    status: DeliveryStatus::Pending,
                    next_attempt_at: now,
                });
            }
            Ok::<_, StoreError>(queued)
        })
    })
    .await??;
    Ok(HttpResponse::Accepted().json(RedeliveryQueued { data }))
}
