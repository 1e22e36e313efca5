//! The customer's bookings (`/v1/me/booking-slots`, `/v1/me/bookings...`),
//! while the portal's `bookings` action is on: free slots, requests,
//! cancellations and reschedules under the business's online-booking
//! settings.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc};
use guichet_domain::bookings::{
    self as rules, BookingSettings, BookingStatus, MAX_RANGE_DAYS, View, check_cancel,
    check_customer_start, check_pending_limit, check_reschedule, customer_actions, free_slots,
    initial_status, reminder_due_at, slot_at,
};
use guichet_domain::events::EventType;
use guichet_domain::ids;
use guichet_domain::portal::PortalAction;
use guichet_jobs::notify::templates::BookingNotice;
use guichet_store::DbConnection;
use guichet_store::repo::bookings::{
    self, BookingClause, BookingRow, HOLDING_STATUSES, STATUS_CANCELLED, STATUS_CONFIRMED,
    STATUS_PENDING, ServiceRow,
};
use guichet_store::repo::customers;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::notices;
use super::setup::ServiceNames;
use super::{
    availability, local_day, problem, record, slot_taken, status_of, store_problem, timing_of,
};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{TimePosition, page_end, resolve_time_page, time_cursor};
use crate::routes::idempotency::{self, Begun};
use crate::state::AppState;

const UNAUTHENTICATED: &str = "Codes: `unauthenticated`, `invalid_token`.";
const OFF: &str =
    "Bookings are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.";
const NOT_FOUND: &str = "No such booking of yours. Codes: `not_found`.";

/// The scope prefix of a customer's booking `Idempotency-Key`s.
const REQUEST_SCOPE_PREFIX: &str = "booking_request:";

/// Who gets the e-mails of a customer's request: the customer, or in a
/// preview session the staff member previewing.
fn recipient(principal: &CustomerPrincipal) -> notices::To<'_> {
    match &principal.preview_by {
        Some(staff) => notices::To::Staff(staff),
        None => notices::To::Customer,
    }
}

fn require_bookings(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
) -> Result<(), ApiError> {
    crate::routes::portal_hooks::require_action(conn, principal, PortalAction::Bookings)
}

// --------------------------------------------------------------- services

/// Who delivers a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyProvider {
    #[schema(example = "prv_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "Claire Petit")]
    pub name: String,
}

/// A service the customer may book.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyService {
    #[schema(example = "svc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub names: ServiceNames,
    pub duration_minutes: u32,
    pub price: Option<crate::routes::views::MoneyView>,
    /// Its active providers.
    pub providers: Vec<MyProvider>,
}

/// The services the customer may book.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyServiceList {
    /// Oldest first.
    pub data: Vec<MyService>,
}

/// The services you may book.
///
/// The business's active services with their active providers; their
/// free slots are at `GET /v1/me/booking-slots?service=`.
#[utoipa::path(
    operation_id = "listMyBookingServices",
    tag = "bookings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The services.", body = MyServiceList),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn services(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<MyServiceList>, ApiError> {
    let store = state.store.clone();
    let data = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        let rows = bookings::list_services(conn, &principal.org_id, true, None, 500)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let providers = bookings::providers_by_ids(conn, &principal.org_id, &row.provider_ids)?
                .into_iter()
                .filter(|p| p.active)
                .map(|p| MyProvider {
                    id: p.id,
                    name: p.name,
                })
                .collect();
            let view = super::setup::ServiceView::from(row);
            out.push(MyService {
                id: view.id,
                names: view.names,
                duration_minutes: view.duration_minutes,
                price: view.price,
                providers,
            });
        }
        Ok::<_, ApiError>(out)
    })
    .await??;
    Ok(web::Json(MyServiceList { data }))
}

// ------------------------------------------------------------------ slots

/// `?service=&from=&to=` of the free slots.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// The service (`svc_...`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub service: String,
    /// The first local day (in the organization's time zone).
    pub from: NaiveDate,
    /// The last local day, included: at most 31 days from `from`.
    pub to: NaiveDate,
}

/// A free start, and who is free then.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The providers free at that start (`provider_id` of a request may
    /// choose one).
    pub provider_ids: Vec<String>,
}

/// The free slots of a service over some days.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    pub service_id: String,
    /// The zone of `from` and `to`.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Soonest first.
    pub data: Vec<SlotView>,
}

fn range_problem() -> ApiError {
    ApiError::new(ProblemCode::ValidationFailed)
        .detail(
            format!("`to` suit `from`, sur {MAX_RANGE_DAYS} jours au plus."),
            format!("`to` is on or after `from`, over at most {MAX_RANGE_DAYS} days."),
        )
        .field("to", "range")
}

fn online(settings: &BookingSettings) -> Result<(), ApiError> {
    if settings.online_booking {
        Ok(())
    } else {
        Err(problem(&rules::BookingError::OnlineBookingDisabled))
    }
}

/// An active service of the organization, or 404.
fn active_service(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<ServiceRow, ApiError> {
    let service = bookings::get_service(conn, org_id, id)?;
    if !service.active {
        return Err(ApiError::not_found());
    }
    Ok(service)
}

/// The free slots of a service.
///
/// From the providers' weekly windows and exceptions, less their pending
/// and confirmed bookings (with buffers), between now plus the minimum
/// notice and now plus the horizon (docs/BOOKINGS.md, "Slots").
#[utoipa::path(
    operation_id = "listMyBookingSlots",
    tag = "bookings",
    security(("bearer" = [])),
    params(SlotQuery),
    responses(
        (status = 200, description = "The free slots.", body = SlotList),
        (status = 400, description = "A missing or malformed parameter. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Bookings are off for you, online booking is closed, or a staff token. Codes: `portal_action_disabled`, `online_booking_disabled`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active service. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` before `from`, or 31 days or more after it. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn slots(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<SlotQuery>,
) -> Result<web::Json<SlotList>, ApiError> {
    let query = query.into_inner();
    if !crate::routes::admin::is_id_cursor(&query.service) {
        return Err(ApiError::new(ProblemCode::InvalidParameter)
            .detail("Identifiant invalide.", "Invalid id.")
            .field("service", "invalid"));
    }
    for (name, day) in [("from", query.from), ("to", query.to)] {
        if !(0..=9999).contains(&day.year()) {
            return Err(ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "Une date AAAA-MM-JJ est attendue.",
                    "A YYYY-MM-DD date is expected.",
                )
                .field(name, "invalid"));
        }
    }
    if query.to < query.from || (query.to - query.from).num_days() >= MAX_RANGE_DAYS {
        return Err(range_problem());
    }
    let now = state.clock.now();
    let store = state.store.clone();
    let answer = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        let settings = super::settings_of(conn, &principal.org_id)?;
        online(&settings)?;
        let service = active_service(conn, &principal.org_id, &query.service)?;
        let tz = settings.time_zone.tz();
        let from = super::day_start(tz, query.from);
        let to = super::day_start(
            tz,
            query
                .to
                .checked_add_days(Days::new(1))
                .ok_or_else(range_problem)?,
        );
        let (providers, busy) = availability(
            conn,
            &principal.org_id,
            &service.provider_ids,
            query.from,
            query.to,
            from - TimeDelta::days(1),
            to + TimeDelta::days(1),
            None,
        )?;
        let (earliest, latest) = rules::booking_window(&settings, now);
        let slots = free_slots(
            &timing_of(&service),
            &providers,
            &busy,
            tz,
            from,
            to,
            earliest,
            latest,
        );
        Ok::<_, ApiError>(SlotList {
            service_id: service.id,
            time_zone: settings.time_zone.name().to_owned(),
            from: query.from,
            to: query.to,
            data: slots
                .into_iter()
                .map(|s| SlotView {
                    start: s.start,
                    end: s.end,
                    provider_ids: s.provider_ids,
                })
                .collect(),
        })
    })
    .await??;
    Ok(web::Json(answer))
}

// --------------------------------------------------------------- bookings

/// What the customer may do with a booking now.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingActions {
    /// Cancel online until then (exclusive); null: not possible now.
    pub cancel_until: Option<DateTime<Utc>>,
    /// Reschedule online until then (exclusive); null: not possible now.
    pub reschedule_until: Option<DateTime<Utc>>,
}

/// A booking as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyBooking {
    #[schema(example = "bkg_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub service_id: String,
    /// The service's names.
    pub service: ServiceNames,
    pub provider_id: String,
    /// Who delivers it.
    #[schema(example = "Claire Petit")]
    pub provider_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[schema(value_type = crate::routes::enums::BookingStatusName)]
    pub status: String,
    pub note: Option<String>,
    /// Why the business declined or cancelled it.
    pub reason: Option<String>,
    pub actions: BookingActions,
    pub created_at: DateTime<Utc>,
}

/// A page of the customer's bookings.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyBookingList {
    pub data: Vec<MyBooking>,
    pub next_cursor: Option<String>,
}

fn my_booking(
    conn: &mut DbConnection,
    settings: &BookingSettings,
    booking: BookingRow,
    now: DateTime<Utc>,
) -> Result<MyBooking, ApiError> {
    let service = bookings::get_service(conn, &booking.org_id, &booking.service_id)?;
    let provider = bookings::get_provider(conn, &booking.org_id, &booking.provider_id)?;
    let status = status_of(&booking)?;
    let actions = customer_actions(settings, status, booking.start_at, now);
    Ok(MyBooking {
        id: booking.id,
        service_id: booking.service_id,
        service: ServiceNames::of_map(&service.names),
        provider_id: booking.provider_id,
        provider_name: provider.name,
        start: booking.start_at,
        end: booking.end_at,
        status: booking.status,
        note: booking.note,
        reason: booking.reason,
        actions: BookingActions {
            cancel_until: actions.cancel_until,
            reschedule_until: actions.reschedule_until,
        },
        created_at: booking.created_at,
    })
}

/// `?view=&limit=&cursor=` of the customer's bookings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `upcoming` (confirmed, still to come, soonest first; the default),
    /// `pending` (waiting for the business, soonest first) or `history`
    /// (the rest, newest first).
    #[param(value_type = Option<crate::routes::enums::BookingListView>, nullable = false)]
    pub view: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

const CLOSED: [&str; 4] = ["declined", STATUS_CANCELLED, "completed", "no_show"];

/// Your bookings.
///
/// The source's three lists: upcoming bookings, pending requests and the
/// history.
#[utoipa::path(
    operation_id = "listMyBookings",
    tag = "bookings",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page.", body = MyBookingList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<MyBookingList>, ApiError> {
    let query = query.into_inner();
    let view = match query.view.as_deref() {
        None => View::Upcoming,
        Some(v) => View::parse(v).ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "view vaut upcoming, pending ou history.",
                    "view is upcoming, pending or history.",
                )
                .field("view", "invalid")
        })?,
    };
    let (limit, after): (i64, Option<TimePosition>) =
        resolve_time_page(query.limit, query.cursor.as_deref())?;
    let now = state.clock.now();
    let store = state.store.clone();
    let (data, next_cursor) = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        let settings = super::settings_of(conn, &principal.org_id)?;
        let pending = [STATUS_PENDING];
        let confirmed = [STATUS_CONFIRMED];
        let (clauses, newest_first): (Vec<BookingClause<'_>>, bool) = match view {
            View::Upcoming => (
                vec![BookingClause {
                    statuses: &confirmed,
                    ends_after: Some(now),
                    ended_by: None,
                }],
                false,
            ),
            View::Pending => (
                vec![BookingClause {
                    statuses: &pending,
                    ends_after: None,
                    ended_by: None,
                }],
                false,
            ),
            View::History => (
                vec![
                    BookingClause {
                        statuses: &CLOSED,
                        ends_after: None,
                        ended_by: None,
                    },
                    BookingClause {
                        statuses: &confirmed,
                        ends_after: None,
                        ended_by: Some(now),
                    },
                ],
                true,
            ),
        };
        let mut rows = bookings::list_customer_bookings(
            conn,
            &principal.org_id,
            &principal.customer_id,
            &clauses,
            newest_first,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
        )?;
        let next = page_end(&mut rows, limit, |b| time_cursor(b.start_at, &b.id));
        let data = rows
            .into_iter()
            .map(|b| my_booking(conn, &settings, b, now))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ApiError>((data, next))
    })
    .await??;
    Ok(web::Json(MyBookingList { data, next_cursor }))
}

/// One of your bookings.
///
/// With what you may do now (`actions`).
#[utoipa::path(
    operation_id = "getMyBooking",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "The booking.", body = MyBooking),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MyBooking>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let booking = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        let settings = super::settings_of(conn, &principal.org_id)?;
        let row =
            bookings::get_customer_booking(conn, &principal.org_id, &principal.customer_id, &id)?;
        my_booking(conn, &settings, row, now)
    })
    .await??;
    Ok(web::Json(booking))
}

/// One of your bookings as a calendar file.
///
/// The iCalendar (RFC 5545) invitation also attached to its e-mails:
/// `METHOD:REQUEST`, or `METHOD:CANCEL` once cancelled or declined; one
/// UID per booking, its `SEQUENCE` raised by each reschedule and
/// cancellation; times in the organization's time zone.
#[utoipa::path(
    operation_id = "getMyBookingCalendar",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "The `.ics` file.", content_type = "text/calendar", body = String),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/calendar.ics")]
pub async fn calendar(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let (file, id) = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        let row =
            bookings::get_customer_booking(conn, &principal.org_id, &principal.customer_id, &id)?;
        Ok::<_, ApiError>((notices::calendar(conn, &row, now)?, row.id))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{id}.ics\""),
        ))
        .body(file))
}

/// A booking request.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    /// The service (`svc_...`).
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub service_id: String,
    /// A `start` of `GET /v1/me/booking-slots`.
    pub start: DateTime<Utc>,
    /// One of the slot's `provider_ids` (default: the first free).
    #[validate(length(min = 1, max = 64))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub provider_id: Option<String>,
    /// For the business.
    #[validate(length(min = 1, max = 500))]
    #[schema(min_length = 1, max_length = 500, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub note: Option<String>,
}

/// The provider a request for `start` takes: the one asked for, or the
/// first free. 409 `slot_taken` when the start is a slot but nobody (or
/// not the one asked for) is free any more; 422 `slot_unavailable` when it
/// is not a slot at all.
#[allow(clippy::too_many_arguments)]
fn pick_provider(
    conn: &mut DbConnection,
    settings: &BookingSettings,
    service: &ServiceRow,
    providers: &[String],
    start: DateTime<Utc>,
    wanted: Option<&str>,
    except: Option<&BookingRow>,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let tz = settings.time_zone.tz();
    let day = local_day(settings, start);
    let (avail, busy) = availability(
        conn,
        &service.org_id,
        providers,
        day,
        day,
        start - TimeDelta::days(1),
        start + TimeDelta::days(1),
        except,
    )?;
    let (earliest, latest) = rules::booking_window(settings, now);
    let timing = timing_of(service);
    let free = slot_at(&timing, &avail, &busy, tz, start, earliest, latest);
    let chosen = free.and_then(|slot| match wanted {
        None => slot.provider_ids.first().cloned(),
        Some(w) => slot.provider_ids.iter().find(|p| p.as_str() == w).cloned(),
    });
    if let Some(provider) = chosen {
        return Ok(provider);
    }
    let open = slot_at(&timing, &avail, &[], tz, start, earliest, latest);
    match open {
        Some(slot) if wanted.is_none_or(|w| slot.provider_ids.iter().any(|p| p == w)) => {
            Err(slot_taken())
        }
        _ => Err(ApiError::new(ProblemCode::SlotUnavailable).detail(
            "Ce début n'est pas un créneau du service : choisissez-en un de GET /v1/me/booking-slots.",
            "This start is not a slot of the service: choose one from GET /v1/me/booking-slots.",
        )),
    }
}

fn request_hash(body: &NewBooking) -> String {
    hex::encode(Sha256::digest(
        serde_json::json!({
            "service_id": body.service_id,
            "start": body.start,
            "provider_id": body.provider_id,
            "note": body.note,
        })
        .to_string()
        .as_bytes(),
    ))
}

/// Book a slot.
///
/// `confirmed` at once, or `pending` until the business approves it, per
/// its settings. An `Idempotency-Key` makes a retried request give the
/// first answer (one booking).
#[utoipa::path(
    operation_id = "createMyBooking",
    tag = "bookings",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: 1 to 255 visible ASCII characters, scoped to you; the same key and body replay the first answer for 24 hours (one booking).")),
    request_body = NewBooking,
    responses(
        (status = 201, description = "Booked (`confirmed`) or requested (`pending`).", body = MyBooking),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`, `invalid_parameter` (a malformed `Idempotency-Key`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Bookings are off for you, online booking is closed, or a staff token. Codes: `portal_action_disabled`, `online_booking_disabled`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active service. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `slot_taken` (taken meanwhile: choose another), `too_many_pending`, `idempotency_key_in_use`.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: whole seconds until the key's lock ends."))),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `outside_booking_window` (with `earliest` and `latest`), `slot_unavailable`, `idempotency_key_reused`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    req: HttpRequest,
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    body: Json<NewBooking>,
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
    let key = idempotency::optional_key(&req)?;
    let now = state.clock.now();
    let mut ticket = None;
    if let Some(key) = key {
        let scope = format!("{REQUEST_SCOPE_PREFIX}{}", principal.customer_id);
        match idempotency::begin(&state, scope, key, request_hash(&body), now).await? {
            Begun::Fresh(t) | Begun::Resumed(t) => ticket = Some(t),
            Begun::Replay(replay) => return Ok(replay.respond(|_| {})),
        }
    }
    let state_for = state.clone();
    let ticket_for = ticket.clone();
    let outcome = web::block(move || {
        let state = &*state_for;
        let mut conn = state.store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        idempotency::commit(
            conn,
            state,
            FaultPoint::BookingRequest,
            ticket_for.as_ref(),
            StatusCode::CREATED,
            |conn| {
                // One request of a customer at a time: the pending count
                // below holds on several nodes.
                customers::lock(conn, &principal.org_id, &principal.customer_id)?;
                let settings = super::settings_of(conn, &principal.org_id)?;
                check_customer_start(&settings, body.start, now).map_err(|e| problem(&e))?;
                let service = active_service(conn, &principal.org_id, &body.service_id)?;
                let pending =
                    bookings::count_pending(conn, &principal.org_id, &principal.customer_id, now)?;
                check_pending_limit(&settings, pending).map_err(|e| problem(&e))?;
                let provider = pick_provider(
                    conn,
                    &settings,
                    &service,
                    &service.provider_ids,
                    body.start,
                    body.provider_id.as_deref(),
                    None,
                    now,
                )?;
                let timing = timing_of(&service);
                let status = initial_status(&settings);
                let row = BookingRow {
                    id: ids::new_id("bkg"),
                    org_id: principal.org_id.clone(),
                    customer_id: principal.customer_id.clone(),
                    service_id: service.id.clone(),
                    provider_id: provider,
                    start_at: body.start,
                    end_at: timing.end(body.start),
                    busy_until: timing.busy_until(body.start),
                    status: status.as_str().to_owned(),
                    note: note.clone(),
                    created_by_kind: "customer".to_owned(),
                    created_by: principal.customer_id.clone(),
                    reason: None,
                    cancelled_by_kind: None,
                    sequence: 0,
                    test: principal.preview_by.is_some(),
                    reminder_due_at: Some(reminder_due_at(&settings, body.start)),
                    reminder_sent_at: None,
                    created_at: now,
                    updated_at: now,
                };
                bookings::insert_booking(conn, &row).map_err(store_problem)?;
                let kind = if status == BookingStatus::Pending {
                    EventType::BookingRequested
                } else {
                    EventType::BookingConfirmed
                };
                record(conn, &row, kind, "customer", now)?;
                let what = if status == BookingStatus::Pending {
                    BookingNotice::Requested
                } else {
                    BookingNotice::Confirmed
                };
                notices::tell(conn, &row, what, recipient(&principal), now)?;
                let view = my_booking(conn, &settings, row, now)?;
                serde_json::to_string(&view).map_err(|e| ApiError::internal(e.to_string()))
            },
        )
    })
    .await?;
    idempotency::answer(
        &state,
        ticket,
        outcome,
        |body| idempotency::created("/v1/me/bookings", body),
        |_| {},
    )
    .await
}

/// Cancel one of your bookings.
///
/// While the business's settings allow it (`actions.cancel_until`). The
/// slot is free again at once.
#[utoipa::path(
    operation_id = "cancelMyBooking",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    responses(
        (status = 200, description = "Cancelled.", body = MyBooking),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `cancellation_not_allowed`, `too_late_to_cancel` (with `cancel_until`), `booking_status_conflict` (already cancelled, declined or done).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/cancellation")]
pub async fn cancel(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MyBooking>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let booking = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        guichet_store::transaction(conn, |conn| {
            let settings = super::settings_of(conn, &principal.org_id)?;
            let row = bookings::get_customer_booking(
                conn,
                &principal.org_id,
                &principal.customer_id,
                &id,
            )?;
            check_cancel(&settings, status_of(&row)?, row.start_at, now)
                .map_err(|e| problem(&e))?;
            if !bookings::set_status(
                conn,
                &principal.org_id,
                &id,
                &HOLDING_STATUSES,
                STATUS_CANCELLED,
                None,
                Some("customer"),
                now,
            )? {
                let fresh = bookings::get_booking(conn, &principal.org_id, &id)?;
                return Err(problem(&rules::BookingError::InvalidTransition {
                    status: status_of(&fresh)?,
                    action: "cancelled",
                }));
            }
            let row = bookings::get_booking(conn, &principal.org_id, &id)?;
            record(conn, &row, EventType::BookingCancelled, "customer", now)?;
            notices::tell(
                conn,
                &row,
                BookingNotice::Cancelled,
                recipient(&principal),
                now,
            )?;
            my_booking(conn, &settings, row, now)
        })
    })
    .await??;
    Ok(web::Json(booking))
}

/// A new start.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    /// A `start` of `GET /v1/me/booking-slots` for the same service, when
    /// the booking's provider is free.
    pub start: DateTime<Utc>,
}

/// Move one of your bookings.
///
/// To another free start of the same service with the same provider, while
/// the business's settings allow it (`actions.reschedule_until`). A pending
/// request stays pending.
#[utoipa::path(
    operation_id = "rescheduleMyBooking",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Booking id (`bkg_...`).")),
    request_body = Reschedule,
    responses(
        (status = 200, description = "Moved.", body = MyBooking),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Bookings are off for you, online booking is closed, or a staff token. Codes: `portal_action_disabled`, `online_booking_disabled`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `reschedule_not_allowed`, `too_late_to_reschedule` (with `reschedule_until`), `booking_status_conflict`, `slot_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `outside_booking_window`, `slot_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/reschedule")]
pub async fn reschedule(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Reschedule>,
) -> Result<web::Json<MyBooking>, ApiError> {
    let id = path.into_inner();
    let start = body.0.start;
    let now = state.clock.now();
    let store = state.store.clone();
    let booking = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_bookings(conn, &principal)?;
        guichet_store::transaction(conn, |conn| {
            let settings = super::settings_of(conn, &principal.org_id)?;
            let row = bookings::get_customer_booking(
                conn,
                &principal.org_id,
                &principal.customer_id,
                &id,
            )?;
            check_reschedule(&settings, status_of(&row)?, row.start_at, now)
                .map_err(|e| problem(&e))?;
            check_customer_start(&settings, start, now).map_err(|e| problem(&e))?;
            let service = bookings::get_service(conn, &principal.org_id, &row.service_id)?;
            pick_provider(
                conn,
                &settings,
                &service,
                std::slice::from_ref(&row.provider_id),
                start,
                Some(&row.provider_id),
                Some(&row),
                now,
            )?;
            let timing = timing_of(&service);
            if !bookings::reschedule(
                conn,
                &principal.org_id,
                &id,
                start,
                timing.end(start),
                timing.busy_until(start),
                Some(reminder_due_at(&settings, start)),
                now,
            )
            .map_err(store_problem)?
            {
                let fresh = bookings::get_booking(conn, &principal.org_id, &id)?;
                return Err(problem(&rules::BookingError::InvalidTransition {
                    status: status_of(&fresh)?,
                    action: "rescheduled",
                }));
            }
            let row = bookings::get_booking(conn, &principal.org_id, &id)?;
            record(conn, &row, EventType::BookingRescheduled, "customer", now)?;
            notices::tell(
                conn,
                &row,
                BookingNotice::Rescheduled,
                recipient(&principal),
                now,
            )?;
            my_booking(conn, &settings, row, now)
        })
    })
    .await??;
    Ok(web::Json(booking))
}
