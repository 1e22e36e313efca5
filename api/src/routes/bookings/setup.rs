//! The business's booking setup: its online-booking settings, the
//! providers (staff members or resources) with their weekly windows and
//! exceptions, and the services they deliver. Staff tokens and API keys
//! read; admins and API keys write.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, NaiveDate, Utc, Weekday};
use guichet_domain::bookings::{
    BookingSettings, ChangePolicy, Confirmation, DayException, ExceptionKind, MAX_WEEKLY_WINDOWS,
    ServiceTiming, WeeklyWindow, validate_exception, validate_weekly,
};
use guichet_domain::contact_channels::OrgTimeZone;
use guichet_domain::{Currency, ids};
use guichet_store::StoreError;
use guichet_store::repo::bookings::{self, ExceptionRow, ProviderRow, ServiceRow, WindowRow};
use guichet_store::repo::staff;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{hhmm, invalid_field, minutes_of, problem, require_setup_writer, settings_of, to_row};
use crate::auth::StaffPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, TimePage, page_end, time_cursor};
use crate::routes::views::MoneyView;
use crate::state::AppState;

const WRITE_ROLE: &str =
    "A customer token, or an agent (admins and API keys change the setup). Codes: `forbidden`.";
const PROVIDER_NOT_FOUND: &str = "No such provider in your organization. Codes: `not_found`.";
const SERVICE_NOT_FOUND: &str = "No such service in your organization. Codes: `not_found`.";

// --------------------------------------------------------------- settings

/// Whether and until when customers may cancel (or reschedule) themselves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePolicyBody {
    /// Customers may do it online at all.
    pub allowed: bool,
    /// Up to this many hours before the start (0: until the start).
    #[validate(range(min = 0, max = 720))]
    #[schema(minimum = 0, maximum = 720, example = 24)]
    pub until_hours_before: u32,
}

impl From<ChangePolicyBody> for ChangePolicy {
    fn from(p: ChangePolicyBody) -> Self {
        ChangePolicy {
            allowed: p.allowed,
            until_hours_before: p.until_hours_before,
        }
    }
}

impl From<ChangePolicy> for ChangePolicyBody {
    fn from(p: ChangePolicy) -> Self {
        ChangePolicyBody {
            allowed: p.allowed,
            until_hours_before: p.until_hours_before,
        }
    }
}

/// The online-booking settings, every field given.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingSettingsBody {
    /// Customers may book online.
    pub online_booking: bool,
    /// `automatic`: a request is confirmed at once; `manual`: it waits,
    /// `pending`, until staff approve it.
    #[schema(value_type = crate::routes::enums::BookingConfirmation)]
    pub confirmation: String,
    /// How many days ahead customers may book.
    #[validate(range(min = 1, max = 365))]
    #[schema(minimum = 1, maximum = 365, example = 60)]
    pub horizon_days: u32,
    /// How many minutes ahead of its start a booking must be made.
    #[validate(range(min = 0, max = 43_200))]
    #[schema(minimum = 0, maximum = 43_200, example = 720)]
    pub min_notice_minutes: u32,
    #[validate(nested)]
    pub cancellation: ChangePolicyBody,
    #[validate(nested)]
    pub reschedule: ChangePolicyBody,
    /// How many pending requests one customer may hold.
    #[validate(range(min = 1, max = 20))]
    #[schema(minimum = 1, maximum = 20, example = 2)]
    pub max_pending: u32,
    /// How many hours before its start the reminder goes.
    #[validate(range(min = 1, max = 168))]
    #[schema(minimum = 1, maximum = 168, example = 24)]
    pub reminder_hours_before: u32,
    /// The IANA time zone of the windows, the slots' dates and the calendar
    /// invitations.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "Europe/Paris", min_length = 1, max_length = 64)]
    pub time_zone: String,
}

/// The online-booking settings in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingSettingsView {
    pub online_booking: bool,
    #[schema(value_type = crate::routes::enums::BookingConfirmation)]
    pub confirmation: &'static str,
    pub horizon_days: u32,
    pub min_notice_minutes: u32,
    pub cancellation: ChangePolicyBody,
    pub reschedule: ChangePolicyBody,
    pub max_pending: u32,
    pub reminder_hours_before: u32,
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
}

impl From<&BookingSettings> for BookingSettingsView {
    fn from(s: &BookingSettings) -> Self {
        BookingSettingsView {
            online_booking: s.online_booking,
            confirmation: s.confirmation.as_str(),
            horizon_days: s.horizon_days,
            min_notice_minutes: s.min_notice_minutes,
            cancellation: s.cancellation.into(),
            reschedule: s.reschedule.into(),
            max_pending: s.max_pending,
            reminder_hours_before: s.reminder_hours_before,
            time_zone: s.time_zone.name().to_owned(),
        }
    }
}

/// The online-booking settings.
///
/// Without a `PUT`, the defaults: online booking off, automatic
/// confirmation, 60 days ahead, 12 hours' notice, cancel and reschedule
/// until 24 hours before, 2 pending requests, a reminder 24 hours before,
/// Europe/Paris.
#[utoipa::path(
    operation_id = "getBookingSettings",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = BookingSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn get_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<BookingSettingsView>, ApiError> {
    let store = state.store.clone();
    let settings = web::block(move || {
        let mut conn = store.conn()?;
        settings_of(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json((&settings).into()))
}

/// Set the online-booking settings.
///
/// Apply at once to every customer: slots, requests, cancellations and
/// reschedules read them on each request.
#[utoipa::path(
    operation_id = "putBookingSettings",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = BookingSettingsBody,
    responses(
        (status = 200, description = "The settings.", body = BookingSettingsView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (a number out of its range, an unknown time zone or confirmation mode).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("")]
pub async fn put_settings(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<BookingSettingsBody>,
) -> Result<web::Json<BookingSettingsView>, ApiError> {
    require_setup_writer(&principal)?;
    let body = body.0;
    let bad = |field: &str, fr: &str, en: &str| {
        ApiError::new(ProblemCode::InvalidField)
            .detail(fr, en)
            .field(field, "invalid")
    };
    let confirmation = Confirmation::parse(&body.confirmation).ok_or_else(|| {
        bad(
            "confirmation",
            "confirmation vaut automatic ou manual.",
            "confirmation is automatic or manual.",
        )
    })?;
    let time_zone = OrgTimeZone::parse(&body.time_zone).map_err(|_| {
        bad(
            "time_zone",
            "Fuseau horaire IANA inconnu.",
            "Unknown IANA time zone.",
        )
    })?;
    let settings = BookingSettings {
        online_booking: body.online_booking,
        confirmation,
        horizon_days: body.horizon_days,
        min_notice_minutes: body.min_notice_minutes,
        cancellation: body.cancellation.into(),
        reschedule: body.reschedule.into(),
        max_pending: body.max_pending,
        reminder_hours_before: body.reminder_hours_before,
        time_zone,
    };
    settings.validate().map_err(|e| problem(&e))?;
    let row = to_row(&principal.org_id, &settings, state.clock.now());
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        bookings::put_settings(&mut conn, &row)
    })
    .await??;
    Ok(web::Json((&settings).into()))
}

// -------------------------------------------------------------- providers

/// A new provider.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// As customers see it (`Dr Claire Petit`, `Salle 2`).
    #[validate(length(min = 1, max = 100))]
    #[schema(
        example = "Claire Petit",
        min_length = 1,
        max_length = 100,
        pattern = "\\S"
    )]
    pub name: String,
    /// `staff` (a person) or `resource` (a room, a machine).
    #[schema(value_type = crate::routes::enums::ProviderKind)]
    pub kind: String,
    /// The staff member, for a `staff` provider with a staff account.
    #[validate(length(min = 1, max = 64))]
    #[schema(
        example = "stf_3k9x0d2m7q8r4t6v1w5y",
        min_length = 1,
        max_length = 64,
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub staff_id: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// Changes to a provider.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100, pattern = "\\S", nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub name: Option<String>,
    /// An inactive provider offers no slot and takes no new booking; its
    /// bookings stay.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub active: Option<bool>,
}

/// A provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    #[schema(example = "prv_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub name: String,
    #[schema(value_type = crate::routes::enums::ProviderKind)]
    pub kind: String,
    pub staff_id: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProviderRow> for ProviderView {
    fn from(p: ProviderRow) -> Self {
        ProviderView {
            id: p.id,
            name: p.name,
            kind: p.kind,
            staff_id: p.staff_id,
            active: p.active,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A page of providers, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub data: Vec<ProviderView>,
    pub next_cursor: Option<String>,
}

fn blank(field: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            "Ce champ ne peut pas être vide.",
            "This field cannot be blank.",
        )
        .field(field, "blank")
}

/// Add a provider.
///
/// A staff member or a resource that delivers services. Give it weekly
/// windows (`PUT .../availability`) and link it to services.
#[utoipa::path(
    operation_id = "createBookingProvider",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = NewProvider,
    responses(
        (status = 201, description = "Added.", body = ProviderView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (a blank name, an unknown kind).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`staff_id` is not a staff member of your organization. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create_provider(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<NewProvider>,
) -> Result<HttpResponse, ApiError> {
    require_setup_writer(&principal)?;
    let body = body.0;
    let name = body.name.trim().to_owned();
    if name.is_empty() {
        return Err(blank("name"));
    }
    if !matches!(body.kind.as_str(), "staff" | "resource") {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail("kind vaut staff ou resource.", "kind is staff or resource.")
            .field("kind", "invalid"));
    }
    let now = state.clock.now();
    let row = ProviderRow {
        id: ids::new_id("prv"),
        org_id: principal.org_id.clone(),
        name,
        kind: body.kind,
        staff_id: body.staff_id,
        active: body.active.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let store = state.store.clone();
    let saved = row.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        if let Some(staff_id) = &saved.staff_id
            && staff::get(&mut conn, &saved.org_id, staff_id).is_err()
        {
            return Err(invalid_field(
                "staff_id",
                "not a staff member of your organization",
            ));
        }
        bookings::insert_provider(&mut conn, &saved)?;
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(HttpResponse::Created().json(ProviderView::from(row)))
}

/// The providers.
#[utoipa::path(
    operation_id = "listBookingProviders",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(TimePage),
    responses(
        (status = 200, description = "A page, oldest first.", body = ProviderList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_providers(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<TimePage>,
) -> Result<web::Json<ProviderList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let store = state.store.clone();
    let mut rows = web::block(move || {
        let mut conn = store.conn()?;
        bookings::list_providers(
            &mut conn,
            &principal.org_id,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = page_end(&mut rows, limit, |p| time_cursor(p.created_at, &p.id));
    Ok(web::Json(ProviderList {
        data: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One provider.
#[utoipa::path(
    operation_id = "getBookingProvider",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`).")),
    responses(
        (status = 200, description = "The provider.", body = ProviderView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_provider(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ProviderView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        bookings::get_provider(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(row.into()))
}

/// Change a provider.
///
/// Its name, or whether it is active.
#[utoipa::path(
    operation_id = "updateBookingProvider",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`).")),
    request_body = ProviderPatch,
    responses(
        (status = 200, description = "The provider.", body = ProviderView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update_provider(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ProviderPatch>,
) -> Result<web::Json<ProviderView>, ApiError> {
    require_setup_writer(&principal)?;
    let id = path.into_inner();
    let body = body.0;
    let name = match body.name {
        Some(n) if n.trim().is_empty() => return Err(blank("name")),
        other => other.map(|n| n.trim().to_owned()),
    };
    let now = state.clock.now();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let mut row = bookings::get_provider(conn, &principal.org_id, &id)?;
            if let Some(name) = name {
                row.name = name;
            }
            if let Some(active) = body.active {
                row.active = active;
            }
            row.updated_at = now;
            bookings::update_provider(conn, &row)?;
            Ok::<_, StoreError>(row)
        })
    })
    .await??;
    Ok(web::Json(row.into()))
}

// ----------------------------------------------------------- availability

/// A weekly opening window, in the settings' time zone.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    /// 1 = Monday … 7 = Sunday.
    #[validate(range(min = 1, max = 7))]
    #[schema(minimum = 1, maximum = 7, example = 1)]
    pub weekday: u8,
    /// Local `HH:MM`.
    #[schema(example = "09:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// Local `HH:MM`, after `start` (`24:00`: midnight).
    #[schema(example = "12:30", pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
}

/// A provider's week: every window (a `PUT` replaces them all).
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// At most 56, no two overlapping on a day.
    #[validate(length(max = 56), nested)]
    #[schema(max_items = 56)]
    pub windows: Vec<WindowBody>,
}

fn weekday(n: u8) -> Option<Weekday> {
    match n {
        1..=7 => Weekday::try_from(n - 1).ok(),
        _ => None,
    }
}

fn window_view(w: &WindowRow) -> WindowBody {
    let minutes = |m: i32| u16::try_from(m).unwrap_or(0);
    WindowBody {
        weekday: u8::try_from(w.weekday).unwrap_or(1),
        start: hhmm(minutes(w.start_minute)),
        end: hhmm(minutes(w.end_minute)),
    }
}

fn bad_time(field: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            "Une heure locale HH:MM est attendue.",
            "A local time HH:MM is expected.",
        )
        .field(field, "invalid")
}

/// The weekly windows of a provider.
#[utoipa::path(
    operation_id = "getBookingAvailability",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`).")),
    responses(
        (status = 200, description = "The week, by day then time.", body = Availability),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/availability")]
pub async fn get_availability(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<Availability>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let rows = web::block(move || {
        let mut conn = store.conn()?;
        bookings::get_provider(&mut conn, &principal.org_id, &id)?;
        bookings::windows_of(&mut conn, &principal.org_id, std::slice::from_ref(&id))
    })
    .await??;
    let mut windows: Vec<WindowBody> = rows.iter().map(window_view).collect();
    windows.sort_by(|a, b| (a.weekday, &a.start).cmp(&(b.weekday, &b.start)));
    Ok(web::Json(Availability { windows }))
}

/// Set the weekly windows of a provider.
///
/// Replaces every window. Local times in the settings' time zone: a 09:00
/// opening is 09:00 on both sides of a daylight-saving change
/// (docs/BOOKINGS.md). Existing bookings stay.
#[utoipa::path(
    operation_id = "putBookingAvailability",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`).")),
    request_body = Availability,
    responses(
        (status = 200, description = "The week.", body = Availability),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (a time that is not `HH:MM`, a weekday out of 1–7, more than 56 windows).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A window ends before it starts, or two overlap on a day. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/{id}/availability")]
pub async fn put_availability(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Availability>,
) -> Result<web::Json<Availability>, ApiError> {
    require_setup_writer(&principal)?;
    let id = path.into_inner();
    let body = body.0;
    if body.windows.len() > MAX_WEEKLY_WINDOWS {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail("56 créneaux au plus.", "At most 56 windows.")
            .field("windows", "length"));
    }
    let mut week = Vec::with_capacity(body.windows.len());
    for (i, w) in body.windows.iter().enumerate() {
        let day = weekday(w.weekday).ok_or_else(|| bad_time(&format!("windows[{i}].weekday")))?;
        let start =
            minutes_of(&w.start, false).ok_or_else(|| bad_time(&format!("windows[{i}].start")))?;
        let end = minutes_of(&w.end, true).ok_or_else(|| bad_time(&format!("windows[{i}].end")))?;
        week.push(WeeklyWindow {
            weekday: day,
            start_minute: start,
            end_minute: end,
        });
    }
    validate_weekly(&week).map_err(|e| problem(&e))?;
    let rows: Vec<WindowRow> = week
        .iter()
        .map(|w| WindowRow {
            id: ids::new_id("bwn"),
            org_id: principal.org_id.clone(),
            provider_id: id.clone(),
            weekday: i32::from(w.weekday.number_from_monday() as u8),
            start_minute: i32::from(w.start_minute),
            end_minute: i32::from(w.end_minute),
        })
        .collect();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            bookings::get_provider(conn, &principal.org_id, &id)?;
            bookings::replace_windows(conn, &principal.org_id, &id, &rows)
        })
    })
    .await??;
    let mut windows: Vec<WindowBody> = body.windows;
    windows.sort_by(|a, b| (a.weekday, &a.start).cmp(&(b.weekday, &b.start)));
    Ok(web::Json(Availability { windows }))
}

/// A day that differs from the week.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewException {
    /// The local day.
    pub date: NaiveDate,
    /// `closed` (the whole day, or `start`–`end` of it) or `open`
    /// (`start`–`end` added to the week's windows).
    #[schema(value_type = crate::routes::enums::ExceptionKindName)]
    pub kind: String,
    #[schema(
        example = "14:00",
        pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$",
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub start: Option<String>,
    #[schema(
        example = "16:00",
        pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub end: Option<String>,
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "Formation",
        min_length = 1,
        max_length = 200,
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub note: Option<String>,
}

/// An exception.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionView {
    #[schema(example = "bex_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub provider_id: String,
    pub date: NaiveDate,
    #[schema(value_type = crate::routes::enums::ExceptionKindName)]
    pub kind: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ExceptionRow> for ExceptionView {
    fn from(e: ExceptionRow) -> Self {
        let time = |m: Option<i32>| m.and_then(|m| u16::try_from(m).ok()).map(hhmm);
        ExceptionView {
            start: time(e.start_minute),
            end: time(e.end_minute),
            id: e.id,
            provider_id: e.provider_id,
            date: e.day,
            kind: e.kind,
            note: e.note,
            created_at: e.created_at,
        }
    }
}

/// A provider's exceptions, by day.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionList {
    pub data: Vec<ExceptionView>,
}

/// `?from=&to=` of the exceptions (local days, both included).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DayRange {
    /// Default: today.
    #[param(nullable = false)]
    pub from: Option<NaiveDate>,
    /// Default: a year after `from` (before `from`: an empty list).
    #[param(nullable = false)]
    pub to: Option<NaiveDate>,
}

/// Add an exception.
///
/// Closes a day (or part of it) or opens extra hours on it. Existing
/// bookings stay; new slots follow it at once.
#[utoipa::path(
    operation_id = "createBookingException",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`).")),
    request_body = NewException,
    responses(
        (status = 201, description = "Added.", body = ExceptionView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (a time that is not `HH:MM`, an unknown kind).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An opening without times, only one of `start` and `end`, or an end before the start. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/exceptions")]
pub async fn create_exception(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<NewException>,
) -> Result<HttpResponse, ApiError> {
    require_setup_writer(&principal)?;
    let id = path.into_inner();
    let body = body.0;
    let kind = ExceptionKind::parse(&body.kind).ok_or_else(|| {
        ApiError::new(ProblemCode::InvalidField)
            .detail("kind vaut closed ou open.", "kind is closed or open.")
            .field("kind", "invalid")
    })?;
    let start = match &body.start {
        None => None,
        Some(s) => Some(minutes_of(s, false).ok_or_else(|| bad_time("start"))?),
    };
    let end = match &body.end {
        None => None,
        Some(s) => Some(minutes_of(s, true).ok_or_else(|| bad_time("end"))?),
    };
    validate_exception(&DayException {
        date: body.date,
        kind,
        start_minute: start,
        end_minute: end,
    })
    .map_err(|e| problem(&e))?;
    let note = match body.note {
        Some(n) if n.trim().is_empty() => return Err(blank("note")),
        other => other.map(|n| n.trim().to_owned()),
    };
    let row = ExceptionRow {
        id: ids::new_id("bex"),
        org_id: principal.org_id.clone(),
        provider_id: id.clone(),
        day: body.date,
        kind: kind.as_str().to_owned(),
        start_minute: start.map(i32::from),
        end_minute: end.map(i32::from),
        note,
        created_at: state.clock.now(),
    };
    let store = state.store.clone();
    let saved = row.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            bookings::get_provider(conn, &principal.org_id, &id)?;
            bookings::insert_exception(conn, &saved)
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(ExceptionView::from(row)))
}

/// A provider's exceptions.
#[utoipa::path(
    operation_id = "listBookingExceptions",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Provider id (`prv_...`)."), DayRange),
    responses(
        (status = 200, description = "By day.", body = ExceptionList),
        (status = 400, description = "A malformed date. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = PROVIDER_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/exceptions")]
pub async fn list_exceptions(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    range: web::Query<DayRange>,
) -> Result<web::Json<ExceptionList>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let clock = state.clock.clone();
    let range = range.into_inner();
    let data = web::block(move || {
        let mut conn = store.conn()?;
        let settings = settings_of(&mut conn, &principal.org_id)?;
        let today = clock
            .now()
            .with_timezone(&settings.time_zone.tz())
            .date_naive();
        let from = range.from.unwrap_or(today);
        let to = range.to.unwrap_or_else(|| {
            from.checked_add_days(chrono::Days::new(365))
                .unwrap_or(from)
        });
        bookings::get_provider(&mut conn, &principal.org_id, &id)?;
        if to < from {
            return Ok::<_, ApiError>(Vec::new());
        }
        Ok(bookings::exceptions_of(
            &mut conn,
            &principal.org_id,
            std::slice::from_ref(&id),
            from,
            to,
        )?)
    })
    .await??;
    Ok(web::Json(ExceptionList {
        data: data.into_iter().map(Into::into).collect(),
    }))
}

/// Remove an exception.
#[utoipa::path(
    operation_id = "deleteBookingException",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(
        ("id" = String, Path, description = "Provider id (`prv_...`)."),
        ("exception_id" = String, Path, description = "Exception id (`bex_...`)."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such exception of this provider. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/{id}/exceptions/{exception_id}")]
pub async fn delete_exception(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    require_setup_writer(&principal)?;
    let (provider, exception) = path.into_inner();
    let store = state.store.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            bookings::get_provider(conn, &principal.org_id, &provider)?;
            let theirs = bookings::exceptions_of(
                conn,
                &principal.org_id,
                std::slice::from_ref(&provider),
                NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
                NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default(),
            )?
            .iter()
            .any(|e| e.id == exception);
            if !theirs || !bookings::delete_exception(conn, &principal.org_id, &exception)? {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

// --------------------------------------------------------------- services

/// A service's name in each language (at least one).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceNames {
    #[validate(length(min = 1, max = 100))]
    #[schema(
        example = "Consultation",
        min_length = 1,
        max_length = 100,
        pattern = "\\S",
        nullable = false
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub fr: Option<String>,
    #[validate(length(min = 1, max = 100))]
    #[schema(
        example = "Consultation",
        min_length = 1,
        max_length = 100,
        pattern = "\\S",
        nullable = false
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub en: Option<String>,
}

impl ServiceNames {
    fn to_map(&self) -> Result<BTreeMap<String, String>, ApiError> {
        let mut map = BTreeMap::new();
        for (lang, name) in [("fr", &self.fr), ("en", &self.en)] {
            if let Some(name) = name {
                if name.trim().is_empty() {
                    return Err(blank(&format!("names.{lang}")));
                }
                map.insert(lang.to_owned(), name.trim().to_owned());
            }
        }
        if map.is_empty() {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "Un nom au moins (fr ou en).",
                    "At least one name (fr or en).",
                )
                .field("names", "required"));
        }
        Ok(map)
    }

    pub fn of_map(map: &BTreeMap<String, String>) -> Self {
        ServiceNames {
            fr: map.get("fr").cloned(),
            en: map.get("en").cloned(),
        }
    }
}

/// A price in minor units.
#[derive(Debug, Clone, Copy, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Minor units (cents), 0 to 99 999 999 999.
    #[validate(range(min = 0, max = 99_999_999_999_i64))]
    #[schema(example = 6000, minimum = 0, maximum = 99_999_999_999_i64)]
    pub amount: i64,
    /// Three upper-case letters.
    #[schema(value_type = String, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Currency,
}

/// A new service.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    #[validate(nested)]
    pub names: ServiceNames,
    /// 5 to 480 minutes, a multiple of 5.
    #[validate(range(min = 5, max = 480))]
    #[schema(minimum = 5, maximum = 480, multiple_of = 5, example = 30)]
    pub duration_minutes: u32,
    /// Free time the provider keeps after it, 0 to 240 minutes, a multiple
    /// of 5 (default 0).
    #[validate(range(min = 0, max = 240))]
    #[schema(
        minimum = 0,
        maximum = 240,
        multiple_of = 5,
        example = 10,
        nullable = false
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub buffer_after_minutes: Option<u32>,
    #[validate(nested)]
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub price: Option<PriceInput>,
    /// Who can deliver it: 1 to 20 providers of your organization.
    #[validate(length(min = 1, max = 20))]
    #[schema(min_items = 1, max_items = 20)]
    pub provider_ids: Vec<String>,
    /// Default true.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub active: Option<bool>,
}

/// Changes to a service.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    #[validate(nested)]
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub names: Option<ServiceNames>,
    #[validate(range(min = 5, max = 480))]
    #[schema(minimum = 5, maximum = 480, multiple_of = 5, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub duration_minutes: Option<u32>,
    #[validate(range(min = 0, max = 240))]
    #[schema(minimum = 0, maximum = 240, multiple_of = 5, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub buffer_after_minutes: Option<u32>,
    /// `null` removes the price.
    #[validate(nested)]
    #[serde(default, deserialize_with = "double_option")]
    pub price: Option<Option<PriceInput>>,
    #[validate(length(min = 1, max = 20))]
    #[schema(min_items = 1, max_items = 20, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub provider_ids: Option<Vec<String>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub active: Option<bool>,
}

fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    #[schema(example = "svc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub names: ServiceNames,
    pub duration_minutes: u32,
    pub buffer_after_minutes: u32,
    pub price: Option<MoneyView>,
    pub provider_ids: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ServiceRow> for ServiceView {
    fn from(s: ServiceRow) -> Self {
        ServiceView {
            id: s.id,
            names: ServiceNames::of_map(&s.names),
            duration_minutes: u32::try_from(s.duration_minutes).unwrap_or(0),
            buffer_after_minutes: u32::try_from(s.buffer_after_minutes).unwrap_or(0),
            price: match (s.price_amount, s.price_currency) {
                (Some(amount), Some(currency)) => Currency::parse(&currency)
                    .ok()
                    .map(|currency| MoneyView { amount, currency }),
                _ => None,
            },
            provider_ids: s.provider_ids,
            active: s.active,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A page of services, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceList {
    pub data: Vec<ServiceView>,
    pub next_cursor: Option<String>,
}

/// The timing of a service, checked.
fn timing(duration: u32, buffer: u32) -> Result<ServiceTiming, ApiError> {
    let timing = ServiceTiming {
        duration_minutes: duration,
        buffer_after_minutes: buffer,
    };
    timing.validate().map_err(|e| problem(&e))?;
    Ok(timing)
}

/// The providers, each of the organization, once.
fn check_providers(
    conn: &mut guichet_store::DbConnection,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = ids.to_vec();
    ids.sort();
    ids.dedup();
    let found = bookings::providers_by_ids(conn, org_id, &ids)?;
    if found.len() != ids.len() {
        return Err(invalid_field(
            "provider_ids",
            "each must be a provider of your organization",
        ));
    }
    Ok(ids)
}

/// Add a service.
///
/// Its names, duration, buffer, optional price and the providers who can
/// deliver it. Customers see it (`GET /v1/me/booking-slots?service=`)
/// while it is active.
#[utoipa::path(
    operation_id = "createBookingService",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = NewService,
    responses(
        (status = 201, description = "Added.", body = ServiceView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (no name, a number out of range).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A duration or buffer that is not a multiple of 5, or a provider that is not yours. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create_service(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<NewService>,
) -> Result<HttpResponse, ApiError> {
    require_setup_writer(&principal)?;
    let body = body.0;
    let names = body.names.to_map()?;
    timing(
        body.duration_minutes,
        body.buffer_after_minutes.unwrap_or(0),
    )?;
    let now = state.clock.now();
    let org_id = principal.org_id.clone();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let providers = check_providers(conn, &org_id, &body.provider_ids)?;
            let row = ServiceRow {
                id: ids::new_id("svc"),
                org_id: org_id.clone(),
                names,
                duration_minutes: i32::try_from(body.duration_minutes).unwrap_or(0),
                buffer_after_minutes: i32::try_from(body.buffer_after_minutes.unwrap_or(0))
                    .unwrap_or(0),
                price_amount: body.price.map(|p| p.amount),
                price_currency: body.price.map(|p| p.currency.to_string()),
                active: body.active.unwrap_or(true),
                created_at: now,
                updated_at: now,
                provider_ids: providers.clone(),
            };
            bookings::insert_service(conn, &row, &providers)?;
            Ok::<_, ApiError>(row)
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(ServiceView::from(row)))
}

/// The services.
#[utoipa::path(
    operation_id = "listBookingServices",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(TimePage),
    responses(
        (status = 200, description = "A page, oldest first.", body = ServiceList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_services(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<TimePage>,
) -> Result<web::Json<ServiceList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let store = state.store.clone();
    let mut rows = web::block(move || {
        let mut conn = store.conn()?;
        bookings::list_services(
            &mut conn,
            &principal.org_id,
            false,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = page_end(&mut rows, limit, |s| time_cursor(s.created_at, &s.id));
    Ok(web::Json(ServiceList {
        data: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One service.
#[utoipa::path(
    operation_id = "getBookingService",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Service id (`svc_...`).")),
    responses(
        (status = 200, description = "The service.", body = ServiceView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer token. Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = SERVICE_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_service(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        bookings::get_service(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(row.into()))
}

/// Change a service.
///
/// Existing bookings keep their times; new slots follow the change at
/// once.
#[utoipa::path(
    operation_id = "updateBookingService",
    tag = "bookings",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Service id (`svc_...`).")),
    request_body = ServicePatch,
    responses(
        (status = 200, description = "The service.", body = ServiceView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = WRITE_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = SERVICE_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A duration or buffer that is not a multiple of 5, or a provider that is not yours. Codes: `validation_failed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[patch("/{id}")]
pub async fn update_service(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ServicePatch>,
) -> Result<web::Json<ServiceView>, ApiError> {
    require_setup_writer(&principal)?;
    let id = path.into_inner();
    let body = body.0;
    let names = body.names.as_ref().map(ServiceNames::to_map).transpose()?;
    let now = state.clock.now();
    let store = state.store.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let mut row = bookings::get_service(conn, &principal.org_id, &id)?;
            if let Some(names) = names {
                row.names = names;
            }
            let duration = body
                .duration_minutes
                .unwrap_or(u32::try_from(row.duration_minutes).unwrap_or(0));
            let buffer = body
                .buffer_after_minutes
                .unwrap_or(u32::try_from(row.buffer_after_minutes).unwrap_or(0));
            timing(duration, buffer)?;
            row.duration_minutes = i32::try_from(duration).unwrap_or(0);
            row.buffer_after_minutes = i32::try_from(buffer).unwrap_or(0);
            if let Some(price) = body.price {
                row.price_amount = price.map(|p| p.amount);
                row.price_currency = price.map(|p| p.currency.to_string());
            }
            if let Some(ids) = &body.provider_ids {
                row.provider_ids = check_providers(conn, &principal.org_id, ids)?;
            }
            if let Some(active) = body.active {
                row.active = active;
            }
            row.updated_at = now;
            let providers = row.provider_ids.clone();
            bookings::update_service(conn, &row, &providers)?;
            Ok::<_, ApiError>(row)
        })
    })
    .await??;
    Ok(web::Json(row.into()))
}
