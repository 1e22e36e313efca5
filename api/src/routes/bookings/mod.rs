//! Bookings (docs/BOOKINGS.md): the business's setup (settings, providers,
//! services, availability), the customer's slots, requests, cancellations
//! and reschedules, and the staff's day.
//!
//! - `setup.rs`: `/v1/admin/booking-settings`, `/v1/admin/booking-providers...`,
//!   `/v1/admin/booking-services...`;
//! - `staff.rs`: `/v1/admin/bookings...`;
//! - `customer.rs`: `/v1/me/booking-slots`, `/v1/me/bookings...`.

pub mod customer;
pub mod notices;
pub mod setup;
pub mod staff;

use chrono::{DateTime, LocalResult, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use guichet_domain::bookings::{
    BookingError, BookingSettings, BookingStatus, Busy, ChangePolicy, Confirmation, DayException,
    ExceptionKind, ProviderAvailability, ServiceTiming, WeeklyWindow,
};
use guichet_domain::contact_channels::OrgTimeZone;
use guichet_domain::events::EventType;
use guichet_domain::identity::StaffRole;
use guichet_domain::ids;
use guichet_store::repo::bookings::{self, BookingRow, BookingSettingsRow, ServiceRow};
use guichet_store::repo::events;
use guichet_store::{DbConnection, StoreError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{StaffActor, StaffPrincipal};
use crate::problem::{ApiError, ProblemCode};

/// Registers the booking routes (fixed paths before `{id}`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/v1/admin/booking-settings")
            .service(setup::get_settings)
            .service(setup::put_settings),
    )
    .service(
        scope("/v1/admin/booking-providers")
            .service(setup::create_provider)
            .service(setup::list_providers)
            .service(setup::get_provider)
            .service(setup::update_provider)
            .service(setup::get_availability)
            .service(setup::put_availability)
            .service(setup::create_exception)
            .service(setup::list_exceptions)
            .service(setup::delete_exception),
    )
    .service(
        scope("/v1/admin/booking-services")
            .service(setup::create_service)
            .service(setup::list_services)
            .service(setup::get_service)
            .service(setup::update_service),
    )
    .service(
        scope("/v1/admin/bookings")
            .service(staff::list)
            .service(staff::create)
            .service(staff::get_one)
            .service(staff::approve)
            .service(staff::decline)
            .service(staff::cancel)
            .service(staff::complete)
            .service(staff::no_show),
    )
    .service(scope("/v1/me/booking-services").service(customer::services))
    .service(scope("/v1/me/booking-slots").service(customer::slots))
    .service(
        scope("/v1/me/bookings")
            .service(customer::list)
            .service(customer::create)
            .service(customer::get_one)
            .service(customer::calendar)
            .service(customer::cancel)
            .service(customer::reschedule),
    );
}

/// What the slot rules need to know of a service's providers: their
/// windows and exceptions over `first..=last` (local days), and their
/// pending and confirmed bookings over `[from, to)` (less `except`, the
/// booking being moved).
#[allow(clippy::too_many_arguments)]
pub fn availability(
    conn: &mut DbConnection,
    org_id: &str,
    provider_ids: &[String],
    first: NaiveDate,
    last: NaiveDate,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: Option<&BookingRow>,
) -> Result<(Vec<ProviderAvailability>, Vec<Busy>), ApiError> {
    let active: Vec<String> = bookings::providers_by_ids(conn, org_id, provider_ids)?
        .into_iter()
        .filter(|p| p.active)
        .map(|p| p.id)
        .collect();
    let windows = bookings::windows_of(conn, org_id, &active)?;
    let exceptions = bookings::exceptions_of(
        conn,
        org_id,
        &active,
        first.pred_opt().unwrap_or(first),
        last.succ_opt().unwrap_or(last),
    )?;
    let minutes = |m: i32| u16::try_from(m).unwrap_or(0);
    let providers = active
        .iter()
        .map(|id| ProviderAvailability {
            provider_id: id.clone(),
            weekly: windows
                .iter()
                .filter(|w| &w.provider_id == id)
                .filter_map(|w| {
                    Some(WeeklyWindow {
                        weekday: Weekday::try_from(u8::try_from(w.weekday - 1).ok()?).ok()?,
                        start_minute: minutes(w.start_minute),
                        end_minute: minutes(w.end_minute),
                    })
                })
                .collect(),
            exceptions: exceptions
                .iter()
                .filter(|e| &e.provider_id == id)
                .filter_map(|e| {
                    Some(DayException {
                        date: e.day,
                        kind: ExceptionKind::parse(&e.kind)?,
                        start_minute: e.start_minute.map(minutes),
                        end_minute: e.end_minute.map(minutes),
                    })
                })
                .collect(),
        })
        .collect();
    let busy = bookings::busy_of(conn, org_id, &active, from, to)?
        .into_iter()
        .filter(|(provider, start, _)| {
            except.is_none_or(|b| !(b.provider_id == *provider && b.start_at == *start))
        })
        .map(|(provider_id, start, until)| Busy {
            provider_id,
            start,
            until,
        })
        .collect();
    Ok((providers, busy))
}

/// The first instant of the local day `date` in `tz` (a midnight skipped
/// by a change starts the day at the change).
pub fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => (1..=180)
            .find_map(|m| {
                tz.from_local_datetime(&(midnight + TimeDelta::minutes(m)))
                    .earliest()
            })
            .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

/// The local day of `at` in the settings' zone.
pub fn local_day(settings: &BookingSettings, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&settings.time_zone.tz()).date_naive()
}

/// The service's timing as the rules take it.
pub fn timing_of(service: &ServiceRow) -> ServiceTiming {
    ServiceTiming {
        duration_minutes: u32::try_from(service.duration_minutes).unwrap_or(0),
        buffer_after_minutes: u32::try_from(service.buffer_after_minutes).unwrap_or(0),
    }
}

/// A stored status as the rules take it.
pub fn status_of(booking: &BookingRow) -> Result<BookingStatus, ApiError> {
    BookingStatus::parse(&booking.status)
        .ok_or_else(|| ApiError::internal("an unknown stored booking status"))
}

/// A booking as staff see it (and as its events carry it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookingView {
    #[schema(example = "bkg_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    #[schema(example = "svc_3k9x0d2m7q8r4t6v1w5y")]
    pub service_id: String,
    #[schema(example = "prv_3k9x0d2m7q8r4t6v1w5y")]
    pub provider_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[schema(value_type = crate::routes::enums::BookingStatusName)]
    pub status: String,
    /// The customer's note.
    pub note: Option<String>,
    /// Why it was declined or cancelled.
    pub reason: Option<String>,
    /// Who made it: `customer`, `staff` or `api_key`.
    #[schema(example = "customer")]
    pub created_by: String,
    /// Who cancelled it: `customer`, `staff` or `api_key`.
    pub cancelled_by: Option<String>,
    /// Made in a preview session (the organization's test customer).
    pub test: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<BookingRow> for BookingView {
    fn from(b: BookingRow) -> Self {
        BookingView {
            id: b.id,
            customer_id: b.customer_id,
            service_id: b.service_id,
            provider_id: b.provider_id,
            start: b.start_at,
            end: b.end_at,
            status: b.status,
            note: b.note,
            reason: b.reason,
            created_by: b.created_by_kind,
            cancelled_by: b.cancelled_by_kind,
            test: b.test,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// Records `event_type` about `booking` (in the caller's transaction).
pub fn record(
    conn: &mut DbConnection,
    booking: &BookingRow,
    event_type: EventType,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let data = serde_json::to_string(&BookingView::from(booking.clone()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    events::record(
        conn,
        &events::Event {
            id: ids::new_id("evt"),
            org_id: booking.org_id.clone(),
            event_type: event_type.as_str().to_owned(),
            object_type: "booking".to_owned(),
            object_id: booking.id.clone(),
            customer_id: Some(booking.customer_id.clone()),
            actor: actor.to_owned(),
            data,
            created_at: now,
        },
    )?;
    Ok(())
}

/// A store error as a problem (`StoreError::SlotTaken` is 409
/// `slot_taken`).
pub fn store_problem(error: StoreError) -> ApiError {
    error.into()
}

/// The organization's settings: its saved row, or the defaults.
pub fn settings_of(conn: &mut DbConnection, org_id: &str) -> Result<BookingSettings, ApiError> {
    Ok(match bookings::get_settings(conn, org_id)? {
        None => BookingSettings::default(),
        Some(row) => from_row(&row)?,
    })
}

fn from_row(row: &BookingSettingsRow) -> Result<BookingSettings, ApiError> {
    let num = |v: i32| u32::try_from(v).map_err(|_| ApiError::internal("a negative setting"));
    Ok(BookingSettings {
        online_booking: row.online_booking,
        confirmation: Confirmation::parse(&row.confirmation)
            .ok_or_else(|| ApiError::internal("an unknown confirmation mode"))?,
        horizon_days: num(row.horizon_days)?,
        min_notice_minutes: num(row.min_notice_minutes)?,
        cancellation: ChangePolicy {
            allowed: row.cancel_allowed,
            until_hours_before: num(row.cancel_until_hours)?,
        },
        reschedule: ChangePolicy {
            allowed: row.reschedule_allowed,
            until_hours_before: num(row.reschedule_until_hours)?,
        },
        max_pending: num(row.max_pending)?,
        reminder_hours_before: num(row.reminder_hours_before)?,
        time_zone: OrgTimeZone::parse(&row.time_zone)
            .map_err(|_| ApiError::internal("an unknown stored time zone"))?,
    })
}

/// The row that stores `s` for `org_id`.
pub fn to_row(org_id: &str, s: &BookingSettings, now: DateTime<Utc>) -> BookingSettingsRow {
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    BookingSettingsRow {
        org_id: org_id.to_owned(),
        online_booking: s.online_booking,
        confirmation: s.confirmation.as_str().to_owned(),
        horizon_days: int(s.horizon_days),
        min_notice_minutes: int(s.min_notice_minutes),
        cancel_allowed: s.cancellation.allowed,
        cancel_until_hours: int(s.cancellation.until_hours_before),
        reschedule_allowed: s.reschedule.allowed,
        reschedule_until_hours: int(s.reschedule.until_hours_before),
        max_pending: int(s.max_pending),
        reminder_hours_before: int(s.reminder_hours_before),
        time_zone: s.time_zone.name().to_owned(),
        updated_at: now,
    }
}

/// Setup writes: admins and API keys (an agent reads).
pub fn require_setup_writer(principal: &StaffPrincipal) -> Result<(), ApiError> {
    match &principal.actor {
        StaffActor::Staff {
            role: StaffRole::Agent,
            ..
        } => Err(ApiError::new(ProblemCode::Forbidden).detail(
            "Seuls les administrateurs et les clés d'API modifient les réservations.",
            "Only admins and API keys change the booking setup.",
        )),
        _ => Ok(()),
    }
}

/// `staff` or `api_key`, and its id.
pub fn actor_of(principal: &StaffPrincipal) -> (&'static str, String) {
    match &principal.actor {
        StaffActor::Staff { id, .. } => ("staff", id.clone()),
        StaffActor::ApiKey { id } => ("api_key", id.clone()),
    }
}

/// A refused rule as a problem, with what the client needs to act on it.
pub fn problem(error: &BookingError) -> ApiError {
    match error {
        BookingError::OnlineBookingDisabled => ApiError::new(ProblemCode::OnlineBookingDisabled)
            .detail(
                "L'entreprise ne prend pas de réservation en ligne pour le moment.",
                "The business does not take bookings online right now.",
            ),
        BookingError::OutsideBookingWindow { earliest, latest } => {
            ApiError::new(ProblemCode::OutsideBookingWindow)
                .detail(
                    format!("Choisissez un début entre {earliest} et {latest}."),
                    format!("Choose a start between {earliest} and {latest}."),
                )
                .extension("earliest", serde_json::json!(earliest))
                .extension("latest", serde_json::json!(latest))
        }
        BookingError::TooLateToCancel { deadline } => ApiError::new(ProblemCode::TooLateToCancel)
            .detail(
                format!("L'annulation en ligne était possible jusqu'au {deadline} : contactez l'entreprise."),
                format!("Online cancellation was possible until {deadline}: contact the business."),
            )
            .extension("cancel_until", serde_json::json!(deadline)),
        BookingError::CancellationNotAllowed => ApiError::new(ProblemCode::CancellationNotAllowed)
            .detail(
                "L'entreprise ne propose pas l'annulation en ligne : contactez-la.",
                "The business does not offer online cancellation: contact it.",
            ),
        BookingError::TooLateToReschedule { deadline } => {
            ApiError::new(ProblemCode::TooLateToReschedule)
                .detail(
                    format!("Le report en ligne était possible jusqu'au {deadline} : contactez l'entreprise."),
                    format!("Online rescheduling was possible until {deadline}: contact the business."),
                )
                .extension("reschedule_until", serde_json::json!(deadline))
        }
        BookingError::RescheduleNotAllowed => ApiError::new(ProblemCode::RescheduleNotAllowed)
            .detail(
                "L'entreprise ne propose pas le report en ligne : contactez-la.",
                "The business does not offer online rescheduling: contact it.",
            ),
        BookingError::InvalidTransition { status, action } => {
            ApiError::new(ProblemCode::BookingStatusConflict)
                .detail(
                    format!("Cette réservation est « {} » : elle ne peut pas être {action}.", status.as_str()),
                    format!("This booking is {}: it cannot be {action}.", status.as_str()),
                )
                .extension("booking_status", status.as_str().into())
        }
        BookingError::NotStartedYet { start } => ApiError::new(ProblemCode::BookingNotStarted)
            .detail(
                format!("Le rendez-vous commence le {start}."),
                format!("The booking starts at {start}."),
            ),
        BookingError::TooManyPending { max } => ApiError::new(ProblemCode::TooManyPending)
            .detail(
                format!("Vous avez déjà {max} demande(s) en attente : attendez la réponse de l'entreprise."),
                format!("You already have {max} pending request(s): wait for the business's answer."),
            )
            .extension("max_pending", (*max).into()),
        BookingError::SlotTaken { .. } => slot_taken(),
        BookingError::InvalidRange { max_days } => ApiError::new(ProblemCode::InvalidParameter)
            .detail(
                format!("`to` suit `from`, sur {max_days} jours au plus."),
                format!("`to` follows `from`, over at most {max_days} days."),
            )
            .field("to", "range"),
        other => invalid_field(setting_field(other), &other.to_string()),
    }
}

fn setting_field(error: &BookingError) -> &'static str {
    match error {
        BookingError::InvalidDuration { .. } => "duration_minutes",
        BookingError::InvalidBuffer { .. } => "buffer_after_minutes",
        BookingError::InvalidWindow { .. } => "windows",
        BookingError::InvalidException { .. } => "start",
        BookingError::InvalidSetting { field, .. } => field,
        _ => "body",
    }
}

/// 422 `validation_failed` naming `field`.
pub fn invalid_field(field: &str, why: &str) -> ApiError {
    ApiError::new(ProblemCode::ValidationFailed)
        .detail(
            format!("Valeur refusée : {why}."),
            format!("Value refused: {why}."),
        )
        .field(field, "invalid")
}

/// 409 `slot_taken`.
pub fn slot_taken() -> ApiError {
    ApiError::new(ProblemCode::SlotTaken).detail(
        "Ce créneau vient d'être pris : choisissez-en un autre.",
        "This slot was just taken: choose another one.",
    )
}

/// `HH:MM` of minutes since midnight (`24:00` for the end of the day).
pub fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Minutes since midnight of `HH:MM` (`24:00` only when `end`).
pub fn minutes_of(value: &str, end: bool) -> Option<u16> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_read_and_write_as_hh_mm() {
        assert_eq!(minutes_of("09:30", false), Some(570));
        assert_eq!(minutes_of("24:00", true), Some(1440));
        assert_eq!(minutes_of("24:00", false), None);
        assert_eq!(minutes_of("9:30", false), None);
        assert_eq!(minutes_of("12:60", true), None);
        assert_eq!(hhmm(570), "09:30");
        assert_eq!(hhmm(1440), "24:00");
    }
}
