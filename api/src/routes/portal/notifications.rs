//! `/v1/me/notifications`: what the portal tells the signed-in customer,
//! newest first, and the read markers. Another customer's notification
//! answers 404.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use guichet_store::repo::notifications::{self, After, Notification};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, parse_time_cursor, time_cursor};
use crate::state::AppState;

/// A notification, in the customer's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    #[schema(example = "ntf_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// What caused it, e.g. `schedule.card_changed`, `mandate.signed`,
    /// `document.shared`, `message.answered`.
    #[schema(example = "mandate.signed")]
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The API path of the object it is about.
    #[schema(example = "/v1/me/mandates/mdt_3k9x0d2m7q8r4t6v1w5y")]
    pub link: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    /// Caused by a preview session on the test customer.
    pub test: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            title: n.title,
            body: n.body,
            link: n.link,
            object_type: n.object_type,
            object_id: n.object_id,
            read: n.read_at.is_some(),
            read_at: n.read_at,
            test: n.test,
            created_at: n.created_at,
        }
    }
}

/// A page of notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub data: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=&unread=`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// Items per page, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
    /// `true`: unread ones only.
    #[param(nullable = false)]
    pub unread: Option<bool>,
}

fn invalid(field: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidParameter)
        .detail(fr.to_owned(), en.to_owned())
        .field(field.to_owned(), "invalid")
}

fn read_cursor(cursor: &str) -> Result<After, ApiError> {
    let (created_at, id) = parse_time_cursor(cursor)
        .ok_or_else(|| invalid("cursor", "Curseur invalide.", "Invalid cursor."))?;
    Ok(After { created_at, id })
}

fn cursor_of(n: &Notification) -> String {
    time_cursor(n.created_at, &n.id)
}

/// The customer's notifications.
///
/// Newest first, paged; `unread=true` keeps the unread ones.
#[utoipa::path(
    operation_id = "listMyNotifications",
    tag = "me",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page of notifications.", body = NotificationList),
        (status = 400, description = "Bad `limit`, `cursor` or `unread`. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/notifications")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<NotificationQuery>,
) -> Result<web::Json<NotificationList>, ApiError> {
    let q = query.into_inner();
    q.validate().map_err(|_| {
        ApiError::new(ProblemCode::InvalidParameter)
            .detail("limit va de 1 à 100.", "limit must be 1 to 100.")
            .field("limit", "range")
    })?;
    let limit = q.limit.unwrap_or(20);
    let after = q.cursor.as_deref().map(read_cursor).transpose()?;
    let unread = q.unread.unwrap_or(false);
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        notifications::list(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            unread,
            after.as_ref(),
            limit + 1,
        )
    })
    .await??;
    let mut next_cursor = None;
    if items.len() > usize::try_from(limit).unwrap_or(0) {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        next_cursor = items.last().map(cursor_of);
    }
    Ok(web::Json(NotificationList {
        data: items.into_iter().map(NotificationView::from).collect(),
        next_cursor,
    }))
}

/// Mark a notification read.
///
/// Idempotent: a notification already read keeps its first `read_at`.
#[utoipa::path(
    operation_id = "readMyNotification",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The notification's id (`ntf_...`).")),
    responses(
        (status = 200, description = "The notification, read.", body = NotificationView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such notification of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/me/notifications/{id}/read")]
pub async fn read_one(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<NotificationView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let now = state.clock.now();
    let n = web::block(move || {
        let mut conn = store.conn()?;
        notifications::mark_read(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &id,
            now,
        )
    })
    .await??;
    Ok(web::Json(n.into()))
}

/// How many notifications a call marked read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAll {
    pub marked_read: usize,
}

/// Mark every notification read.
#[utoipa::path(
    operation_id = "readAllMyNotifications",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were unread.", body = ReadAll),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/me/notifications/read-all")]
pub async fn read_all(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<ReadAll>, ApiError> {
    let store = state.store.clone();
    let now = state.clock.now();
    let n = web::block(move || {
        let mut conn = store.conn()?;
        notifications::mark_all_read(&mut conn, &principal.org_id, &principal.customer_id, now)
    })
    .await??;
    Ok(web::Json(ReadAll { marked_read: n }))
}
