//! `GET /v1/me/schedules` and `GET /v1/me/schedules/{id}`.

use actix_web::{get, web};
use guichet_domain::schedule::ScheduleStatus;
use guichet_store::repo::schedules;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{AUTH_FAILURES, NOT_FOUND, ROLE_FAILURE};
use crate::auth::CustomerToken;
use crate::problem::{ApiError, Problem};
use crate::routes::admin::{Page, next_cursor, status_filter};
use crate::routes::views::{ScheduleList, ScheduleView};
use crate::state::AppState;

/// `?status=&limit=&cursor=` of the schedule list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    /// Only schedules of this status: `in_progress`, `completed`, `unpaid`
    /// or `cancelled`.
    #[param(value_type = Option<crate::routes::enums::ScheduleStatus>, nullable = false)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// The signed-in customer's schedules, oldest id first.
#[utoipa::path(
    operation_id = "listMySchedules",
    tag = "me",
    security(("bearer" = [])),
    params(ScheduleQuery),
    responses(
        (status = 200, description = "A page of schedules.", body = ScheduleList),
        (status = 400, description = "Unknown status, limit out of range or bad cursor. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    token: CustomerToken,
    state: web::Data<AppState>,
    query: web::Query<ScheduleQuery>,
) -> Result<web::Json<ScheduleList>, ApiError> {
    let query = query.into_inner();
    let store = state.store.clone();
    // The session is checked first, so that an ended session answers 401
    // whatever the query says.
    let (mut items, limit) = web::block(move || {
        let mut conn = store.conn()?;
        let principal = token.authorize(&mut conn)?;
        let status = status_filter(
            query.status.as_deref(),
            ScheduleStatus::parse,
            &["in_progress", "completed", "unpaid", "cancelled"],
        )?;
        let (limit, after) = Page {
            limit: query.limit,
            cursor: query.cursor,
        }
        .resolve()?;
        let items = schedules::list_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            status,
            after.as_deref(),
            limit + 1,
        )?;
        Ok::<_, ApiError>((items, limit))
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |o| &o.id);
    Ok(web::Json(ScheduleList {
        data: items.iter().map(ScheduleView::from).collect(),
        next_cursor,
    }))
}

/// One of the customer's schedules.
///
/// One of the customer's schedules, with its instalments, adjustments and
/// the action available now.
#[utoipa::path(
    operation_id = "getMySchedule",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule (order) id (`ord_...`).")),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    token: CustomerToken,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ScheduleView>, ApiError> {
    let store = state.store.clone();
    let id = path.into_inner();
    let order = web::block(move || {
        let mut conn = store.conn()?;
        let principal = token.authorize(&mut conn)?;
        Ok::<_, ApiError>(schedules::get_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &id,
        )?)
    })
    .await??;
    Ok(web::Json(ScheduleView::from(&order)))
}
