//! `GET /v1/admin/events` and `GET /v1/admin/events/{id}`: the event log,
//! for integrators who poll instead of receiving webhooks.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use guichet_domain::events::EventType;
use guichet_store::repo::events::{self, PagePosition};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::auth::StaffPrincipal;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, parse_time_cursor, time_cursor};
use crate::state::AppState;

/// An event type's name (`noun.verb`), one of the catalogue.
pub struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An event type, `noun.verb`; the catalogue is in docs/EVENTS.md and in `webhooks`.",
            ))
            .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
            .examples([serde_json::json!("schedule.card_changed")])
            .into()
    }
}

impl ToSchema for EventTypeName {
    fn name() -> std::borrow::Cow<'static, str> {
        "EventType".into()
    }
}

/// What a webhook endpoint subscribes to: an event type of the catalogue,
/// or `*` for all of them.
pub struct EventTypeSelector;

impl PartialSchema for EventTypeSelector {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An event type of the catalogue (`noun.verb`, docs/EVENTS.md), or `*` for every type.",
            ))
            .enum_values(Some(
                std::iter::once("*").chain(EventType::ALL.iter().map(|t| t.as_str())),
            ))
            .examples([serde_json::json!("*")])
            .into()
    }
}

impl ToSchema for EventTypeSelector {
    fn name() -> std::borrow::Cow<'static, str> {
        "EventTypeSelector".into()
    }
}

/// Who caused an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EventActor)]
pub enum EventActorName {
    Customer,
    Staff,
    ApiKey,
    System,
    Cardholder,
}

/// What an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventObject {
    /// `schedule`, `instalment`, `order`, `refund`, `mandate`,
    /// `collection`, `customer`, `consent`, `document`, `conversation`, `message` or
    /// `webhook_endpoint`.
    #[serde(rename = "type")]
    #[schema(example = "schedule")]
    pub object_type: String,
    /// Its id (for a schedule, its order's id).
    #[schema(example = "ord_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
}

/// An event: what happened to an object, when, caused by whom, with the
/// object as the API showed it then. The same JSON is a webhook's body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    #[schema(example = "evt_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName)]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub object: EventObject,
    /// The customer who acted (customer actions only).
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: Option<String>,
    #[schema(value_type = EventActorName)]
    pub actor: String,
    /// The object as the API showed it right after the change; its schema
    /// for each type is in the document's `webhooks`. Never a card number,
    /// CVC, code, password, token or full IBAN.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<events::Event> for EventView {
    fn from(e: events::Event) -> Self {
        let data = serde_json::from_str(&e.data).unwrap_or(serde_json::Value::Null);
        EventView {
            id: e.id,
            event_type: e.event_type,
            created_at: e.created_at,
            object: EventObject {
                object_type: e.object_type,
                id: e.object_id,
            },
            customer_id: e.customer_id,
            actor: e.actor,
            data,
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Each one `Event::envelope()`, the shape of [`EventView`].
    #[schema(value_type = Vec<EventView>)]
    pub data: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `?type=&after=&limit=&cursor=`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<EventTypeName>, nullable = false)]
    pub event_type: Option<String>,
    /// Only events created after this instant (RFC 3339, e.g.
    /// `2026-11-22T09:30:00Z`).
    #[param(value_type = Option<String>, format = DateTime, nullable = false)]
    pub after: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

fn invalid(field: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidParameter)
        .detail(fr, en)
        .field(field, "invalid")
}

/// A cursor names the last event of a page by its instant and id.
fn cursor_of(e: &events::Event) -> String {
    time_cursor(e.created_at, &e.id)
}

fn position_of(cursor: &str) -> Option<PagePosition> {
    parse_time_cursor(cursor).map(|(created_at, id)| PagePosition { created_at, id })
}

const LIST_400: &str = "`type` not in the catalogue, `after` not an RFC 3339 instant, `limit` outside 1–100, a bad cursor, or an unknown parameter. Codes: `invalid_parameter`.";

/// The organization's events, newest first.
///
/// Events are kept 30 days by default (`--events-retention-days`). Poll with `after` set to
/// the `created_at` of the newest event seen (events of the same instant are all after the one
/// before it), or page through with `cursor`.
#[utoipa::path(
    operation_id = "listEvents",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events, newest first.", body = EventList),
        (status = 400, description = LIST_400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<EventQuery>,
) -> Result<web::Json<EventList>, ApiError> {
    let query = query.into_inner();
    let (limit, _) = Page {
        limit: query.limit,
        cursor: None,
    }
    .resolve()?;
    let cursor = query.cursor;
    let position = match cursor {
        None => None,
        Some(decoded) => Some(
            position_of(&decoded)
                .ok_or_else(|| invalid("cursor", "Curseur invalide.", "Invalid cursor."))?,
        ),
    };
    let event_type = match query.event_type {
        None => None,
        Some(name) => Some(EventType::parse(&name).ok_or_else(|| {
            invalid(
                "type",
                "type n'est pas un type d'événement connu.",
                "type is not a known event type.",
            )
        })?),
    };
    let since = match query.after {
        None => None,
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    invalid(
                        "after",
                        "after est un instant RFC 3339 (2026-11-22T09:30:00Z).",
                        "after is an RFC 3339 instant (2026-11-22T09:30:00Z).",
                    )
                })?,
        ),
    };
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        events::list(
            &mut conn,
            &principal.org_id,
            event_type.map(EventType::as_str),
            since,
            position.as_ref(),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(0) {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(cursor_of)
    } else {
        None
    };
    Ok(web::Json(EventList {
        data: items.iter().map(events::Event::envelope).collect(),
        next_cursor,
    }))
}

/// One event.
#[utoipa::path(
    operation_id = "getEvent",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Event id (`evt_...`).")),
    responses(
        (status = 200, description = "The event (the body a webhook delivers).", body = EventView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event in your organization (or it is older than the retention). Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let event = web::block(move || {
        let mut conn = store.conn()?;
        events::get(&mut conn, &principal.org_id, &id)
    })
    .await??
    .ok_or_else(|| ApiError::from(guichet_store::StoreError::NotFound))?;
    Ok(web::Json(event.envelope()))
}
