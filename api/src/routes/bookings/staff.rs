//! The business's bookings (`/v1/admin/bookings...`, staff token or API
//! key): the day by provider and status, a booking made for a customer,
//! and the decisions on requests and past bookings.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc};
use guichet_domain::bookings::{
    self as rules, BookingStatus, StaffAction, reminder_due_at, staff_transition,
};
use guichet_domain::events::EventType;
use guichet_domain::ids;
use guichet_jobs::notify::templates::BookingNotice;
use guichet_store::repo::bookings::{self, BookingRow};
use guichet_store::repo::customers;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::notices;
use super::{
    BookingView, actor_of, availability, local_day, problem, record, settings_of, status_of,
    store_problem, timing_of,
};
use crate::auth::StaffPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, TimePosition, page_end, resolve_time_page, time_cursor};
use crate::state::AppState;

const NOT_FOUND: &str = "No such booking in your organization. Codes: `not_found`.";
const CUSTOMER_ROLE: &str = "A customer token. Codes: `forbidden`.";

/// `?from=&to=&provider_id=&status=&limit=&cursor=` of the organization's
/// bookings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StaffListQuery {
    /// The first local day (default: today).
    #[param(nullable = false)]
    pub from: Option<NaiveDate>,
    /// The last local day, included (default: `from`; before `from`: an
    /// empty list).
    #[param(nullable = false)]
    pub to: Option<NaiveDate>,
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub provider_id: Option<String>,
    #[param(value_type = Option<crate::routes::enums::BookingStatusName>, nullable = false)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// A page of bookings, soonest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct BookingList {
    pub data: Vec<BookingView>,
    pub next_cursor: Option<String>,
}

/// The bookings.
///
/// Starting on the local days asked (the settings' time zone), by provider
/// and status, soonest first.
#[utoipa::path(
    operation_id = "listBookings",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(StaffListQuery),
    responses(
        (status = 200, description = "A page.", body = BookingList),
        (status = 400, description = "An unknown status, a malformed date or cursor. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<StaffListQuery>,
) -> Result<web::Json<BookingList>, ApiError> {
    let query = query.into_inner();
    let (limit, after): (i64, Option<TimePosition>) =
        resolve_time_page(query.limit, query.cursor.as_deref())?;
    if let Some(provider) = &query.provider_id
        && !crate::routes::admin::is_id_cursor(provider)
    {
        return Err(ApiError::new(ProblemCode::InvalidParameter)
            .detail("Identifiant invalide.", "Invalid id.")
            .field("provider_id", "invalid"));
    }
    if let Some(status) = &query.status
        && BookingStatus::parse(status).is_none()
    {
        return Err(ApiError::new(ProblemCode::InvalidParameter)
            .detail("Statut inconnu.", "Unknown status.")
            .field("status", "invalid"));
    }
    let now = state.clock.now();
    let store = state.store.clone();
    let mut rows = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        let settings = settings_of(conn, &principal.org_id)?;
        let from = query.from.unwrap_or_else(|| local_day(&settings, now));
        let to = query.to.unwrap_or(from);
        if to < from {
            return Ok::<_, ApiError>(Vec::new());
        }
        let tz = settings.time_zone.tz();
        let start = super::day_start(tz, from);
        let end = super::day_start(tz, to.checked_add_days(Days::new(1)).unwrap_or(to));
        Ok(bookings::list_org_bookings(
            conn,
            &principal.org_id,
            start,
            end,
            query.provider_id.as_deref(),
            query.status.as_deref(),
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
        )?)
    })
    .await??;
    let next_cursor = page_end(&mut rows, limit, |b| time_cursor(b.start_at, &b.id));
    Ok(web::Json(BookingList {
        data: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One booking.
#[utoipa::path(
    operation_id = "getBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "The booking.", body = BookingView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<BookingView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        bookings::get_booking(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(row.into()))
}

/// A booking made by staff for a customer.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffBooking {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub customer_id: String,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub service_id: String,
    /// Any start: the customer-side limits (notice, horizon, windows,
    /// pending requests) do not apply, but the provider must be free.
    pub start: DateTime<Utc>,
    /// One of the service's providers (default: the first one free then).
    #[validate(length(min = 1, max = 64))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub provider_id: Option<String>,
    #[validate(length(min = 1, max = 500))]
    #[schema(min_length = 1, max_length = 500, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub note: Option<String>,
}

/// Book for a customer.
///
/// Confirmed at once, outside the customer-side limits, but never over
/// another pending or confirmed booking of the provider (`409
/// slot_taken`). Records `booking.confirmed`.
#[utoipa::path(
    operation_id = "createBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = StaffBooking,
    responses(
        (status = 201, description = "Booked.", body = BookingView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer or service in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The provider (or every provider) is busy then. Codes: `slot_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`provider_id` does not deliver this service, or none of its providers is active. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<StaffBooking>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let note = match &body.note {
        Some(n) if n.trim().is_empty() => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "La note ne peut pas être vide.",
                    "The note cannot be blank.",
                )
                .field("note", "blank"));
        }
        other => other.as_ref().map(|n| n.trim().to_owned()),
    };
    if !(0..=9999).contains(&body.start.year()) {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail(
                "Une date et heure RFC 3339 est attendue.",
                "An RFC 3339 date and time is expected.",
            )
            .field("start", "invalid"));
    }
    let (actor, actor_id) = actor_of(&principal);
    let now = state.clock.now();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        guichet_store::transaction(conn, |conn| {
            let customer = customers::get(conn, &principal.org_id, &body.customer_id)?;
            let service = bookings::get_service(conn, &principal.org_id, &body.service_id)?;
            let settings = settings_of(conn, &principal.org_id)?;
            let candidates: Vec<String> = match &body.provider_id {
                Some(p) if service.provider_ids.contains(p) => vec![p.clone()],
                Some(_) => {
                    return Err(super::invalid_field(
                        "provider_id",
                        "this provider does not deliver the service",
                    ));
                }
                None => service.provider_ids.clone(),
            };
            let timing = timing_of(&service);
            let day = local_day(&settings, body.start);
            // Who is busy over the booking's range, buffers included.
            let (avail, busy) = availability(
                conn,
                &principal.org_id,
                &candidates,
                day,
                day,
                body.start - TimeDelta::days(1),
                timing.busy_until(body.start) + TimeDelta::days(1),
                None,
            )?;
            if avail.is_empty() {
                return Err(super::invalid_field(
                    "provider_id",
                    "no active provider delivers the service",
                ));
            }
            let until = timing.busy_until(body.start);
            let free = avail.iter().map(|a| &a.provider_id).find(|p| {
                !busy
                    .iter()
                    .any(|b| &b.provider_id == *p && b.start < until && body.start < b.until)
            });
            let Some(provider) = free.cloned() else {
                return Err(super::slot_taken());
            };
            let row = BookingRow {
                id: ids::new_id("bkg"),
                org_id: principal.org_id.clone(),
                customer_id: customer.id.clone(),
                service_id: service.id.clone(),
                provider_id: provider,
                start_at: body.start,
                end_at: timing.end(body.start),
                busy_until: until,
                status: BookingStatus::Confirmed.as_str().to_owned(),
                note: note.clone(),
                created_by_kind: actor.to_owned(),
                created_by: actor_id.clone(),
                reason: None,
                cancelled_by_kind: None,
                sequence: 0,
                test: guichet_store::repo::portal::find(conn, &principal.org_id)?
                    .and_then(|p| p.test_customer_id)
                    .is_some_and(|t| t == customer.id),
                reminder_due_at: Some(reminder_due_at(&settings, body.start)),
                reminder_sent_at: None,
                created_at: now,
                updated_at: now,
            };
            bookings::insert_booking(conn, &row).map_err(store_problem)?;
            record(conn, &row, EventType::BookingConfirmed, actor, now)?;
            notices::tell(
                conn,
                &row,
                BookingNotice::Confirmed,
                recipient(&principal, &row),
                now,
            )?;
            Ok::<_, ApiError>(row)
        })
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/admin/bookings/{}", row.id)))
        .json(BookingView::from(row)))
}

/// Who gets the e-mail of a staff action on `booking`: its customer, or
/// for the organization's test customer the staff member acting (nobody
/// for an API key).
fn recipient<'a>(principal: &'a StaffPrincipal, booking: &BookingRow) -> notices::To<'a> {
    match (&principal.actor, booking.test) {
        (_, false) => notices::To::Customer,
        (crate::auth::StaffActor::Staff { id, .. }, true) => notices::To::Staff(id),
        (crate::auth::StaffActor::ApiKey { .. }, true) => notices::To::Nobody,
    }
}

/// Why (a decline or a cancellation).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Shown to the customer.
    #[validate(length(min = 1, max = 500))]
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "Cabinet fermé ce jour-là."
    )]
    pub reason: String,
}

/// Applies a staff action to a booking, records its event.
async fn act(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    id: String,
    action: StaffAction,
    reason: Option<String>,
) -> Result<web::Json<BookingView>, ApiError> {
    if let Some(r) = &reason
        && r.trim().is_empty()
    {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail("Donnez une raison.", "Give a reason.")
            .field("reason", "blank"));
    }
    let (actor, _) = actor_of(&principal);
    let now = state.clock.now();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        guichet_store::transaction(conn, |conn| {
            let row = bookings::get_booking(conn, &principal.org_id, &id)?;
            let status = status_of(&row)?;
            let next =
                staff_transition(status, action, row.start_at, now).map_err(|e| problem(&e))?;
            let cancelled_by = (next == BookingStatus::Cancelled).then_some(actor);
            if !bookings::set_status(
                conn,
                &principal.org_id,
                &id,
                &[status.as_str()],
                next.as_str(),
                reason.as_deref().map(str::trim),
                cancelled_by,
                now,
            )
            .map_err(store_problem)?
            {
                let fresh = bookings::get_booking(conn, &principal.org_id, &id)?;
                return Err(problem(&rules::BookingError::InvalidTransition {
                    status: status_of(&fresh)?,
                    action: action_word(action),
                }));
            }
            let row = bookings::get_booking(conn, &principal.org_id, &id)?;
            let kind = match action {
                StaffAction::Approve => EventType::BookingConfirmed,
                StaffAction::Decline => EventType::BookingDeclined,
                StaffAction::Cancel => EventType::BookingCancelled,
                StaffAction::Complete => EventType::BookingCompleted,
                StaffAction::NoShow => EventType::BookingNoShow,
            };
            record(conn, &row, kind, actor, now)?;
            let what = match action {
                StaffAction::Approve => Some(BookingNotice::Confirmed),
                StaffAction::Decline => Some(BookingNotice::Declined),
                StaffAction::Cancel => Some(BookingNotice::Cancelled),
                StaffAction::Complete | StaffAction::NoShow => None,
            };
            if let Some(what) = what {
                notices::tell(conn, &row, what, recipient(&principal, &row), now)?;
            }
            Ok::<_, ApiError>(row)
        })
    })
    .await??;
    Ok(web::Json(row.into()))
}

fn action_word(action: StaffAction) -> &'static str {
    match action {
        StaffAction::Approve => "approved",
        StaffAction::Decline => "declined",
        StaffAction::Cancel => "cancelled",
        StaffAction::Complete => "completed",
        StaffAction::NoShow => "marked no-show",
    }
}

/// Approve a pending request.
///
/// It becomes `confirmed`; records `booking.confirmed`.
#[utoipa::path(
    operation_id = "approveBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "Confirmed.", body = BookingView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending. Codes: `booking_status_conflict`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/approval")]
pub async fn approve(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<BookingView>, ApiError> {
    act(
        principal,
        state,
        path.into_inner(),
        StaffAction::Approve,
        None,
    )
    .await
}

/// Decline a pending request.
///
/// With a reason the customer sees; the slot is free again. Records
/// `booking.declined`.
#[utoipa::path(
    operation_id = "declineBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    request_body = Reason,
    responses(
        (status = 200, description = "Declined.", body = BookingView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending. Codes: `booking_status_conflict`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/decline")]
pub async fn decline(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Reason>,
) -> Result<web::Json<BookingView>, ApiError> {
    let reason = body.0.reason;
    act(
        principal,
        state,
        path.into_inner(),
        StaffAction::Decline,
        Some(reason),
    )
    .await
}

/// Cancel a booking.
///
/// A pending or confirmed booking, with a reason the customer sees; the
/// slot is free again. Records `booking.cancelled`.
#[utoipa::path(
    operation_id = "cancelBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    request_body = Reason,
    responses(
        (status = 200, description = "Cancelled.", body = BookingView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cancelled, declined or done. Codes: `booking_status_conflict`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/cancellation")]
pub async fn cancel(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Reason>,
) -> Result<web::Json<BookingView>, ApiError> {
    let reason = body.0.reason;
    act(
        principal,
        state,
        path.into_inner(),
        StaffAction::Cancel,
        Some(reason),
    )
    .await
}

/// Mark a booking completed.
///
/// A confirmed booking whose start has passed. Records `booking.completed`.
#[utoipa::path(
    operation_id = "completeBooking",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "Completed.", body = BookingView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not confirmed, or not started yet. Codes: `booking_status_conflict`, `booking_not_started`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/completion")]
pub async fn complete(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<BookingView>, ApiError> {
    act(
        principal,
        state,
        path.into_inner(),
        StaffAction::Complete,
        None,
    )
    .await
}

/// Mark a booking as a no-show.
///
/// A confirmed booking whose start has passed. Records `booking.no_show`.
#[utoipa::path(
    operation_id = "markBookingNoShow",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "Marked.", body = BookingView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not confirmed, or not started yet. Codes: `booking_status_conflict`, `booking_not_started`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/no-show")]
pub async fn no_show(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<BookingView>, ApiError> {
    act(
        principal,
        state,
        path.into_inner(),
        StaffAction::NoShow,
        None,
    )
    .await
}
