//! The booking tables: `booking_settings`, `booking_providers`,
//! `booking_services` and their `booking_service_providers`, the weekly
//! `booking_windows` and dated `booking_exceptions`, and the `bookings`
//! themselves. Statuses and kinds are the plain strings of the domain's
//! enums (`guichet_domain::bookings`); the rules that choose them are the
//! domain's. Every query is scoped to an organization, and the customer's
//! reads to the customer too; only the reminder claim, a job over every
//! organization, is not.
//!
//! No double booking is a database fact: a provider's pending and
//! confirmed bookings never overlap over `[start_at, busy_until)` (an
//! exclusion constraint on PostgreSQL, triggers on SQLite). A write that
//! would break it fails with [`StoreError::SlotTaken`]; on PostgreSQL the
//! transaction it ran in is then aborted and must be rolled back.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{
    booking_exceptions, booking_providers, booking_service_providers, booking_services,
    booking_settings, booking_windows, bookings,
};

/// A request waiting for staff approval; it holds its slot.
pub const STATUS_PENDING: &str = "pending";
/// A confirmed booking; it holds its slot.
pub const STATUS_CONFIRMED: &str = "confirmed";
/// A cancelled booking (a new iCalendar SEQUENCE: the invitation is
/// withdrawn).
pub const STATUS_CANCELLED: &str = "cancelled";
/// The statuses that hold a provider's time: the ones the overlap
/// constraint compares.
pub const HOLDING_STATUSES: [&str; 2] = [STATUS_PENDING, STATUS_CONFIRMED];

/// The backend of [`DbConnection`] (either database).
type Db = <DbConnection as diesel::Connection>::Backend;

/// A `WHERE` condition on `bookings`, chosen at run time.
type Filter<'a> = Box<
    dyn diesel::expression::BoxableExpression<
            bookings::table,
            Db,
            SqlType = diesel::sql_types::Bool,
        > + 'a,
>;

// ---------------------------------------------------------------------------
// Settings

/// An organization's online-booking settings, as stored. No row: the
/// domain's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingSettingsRow {
    pub org_id: String,
    pub online_booking: bool,
    /// `automatic` or `manual`.
    pub confirmation: String,
    pub horizon_days: i32,
    pub min_notice_minutes: i32,
    pub cancel_allowed: bool,
    pub cancel_until_hours: i32,
    pub reschedule_allowed: bool,
    pub reschedule_until_hours: i32,
    pub max_pending: i32,
    pub reminder_hours_before: i32,
    /// IANA name.
    pub time_zone: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = booking_settings)]
struct SettingsTableRow {
    org_id: String,
    online_booking: bool,
    confirmation: String,
    horizon_days: i32,
    min_notice_minutes: i32,
    cancel_allowed: bool,
    cancel_until_hours: i32,
    reschedule_allowed: bool,
    reschedule_until_hours: i32,
    max_pending: i32,
    reminder_hours_before: i32,
    time_zone: String,
    updated_at: NaiveDateTime,
}

impl From<SettingsTableRow> for BookingSettingsRow {
    fn from(r: SettingsTableRow) -> Self {
        BookingSettingsRow {
            org_id: r.org_id,
            online_booking: r.online_booking,
            confirmation: r.confirmation,
            horizon_days: r.horizon_days,
            min_notice_minutes: r.min_notice_minutes,
            cancel_allowed: r.cancel_allowed,
            cancel_until_hours: r.cancel_until_hours,
            reschedule_allowed: r.reschedule_allowed,
            reschedule_until_hours: r.reschedule_until_hours,
            max_pending: r.max_pending,
            reminder_hours_before: r.reminder_hours_before,
            time_zone: r.time_zone,
            updated_at: from_db_time(r.updated_at),
        }
    }
}

/// The organization's settings, if it has written any.
pub fn get_settings(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<Option<BookingSettingsRow>, StoreError> {
    Ok(booking_settings::table
        .find(org_id)
        .select(SettingsTableRow::as_select())
        .first(conn)
        .optional()?
        .map(BookingSettingsRow::from))
}

/// Writes the settings (updated, or inserted when the organization had
/// none). Two first writes racing may end in [`StoreError::Conflict`] for
/// one of them.
pub fn put_settings(conn: &mut DbConnection, s: &BookingSettingsRow) -> Result<(), StoreError> {
    let values = (
        booking_settings::online_booking.eq(s.online_booking),
        booking_settings::confirmation.eq(&s.confirmation),
        booking_settings::horizon_days.eq(s.horizon_days),
        booking_settings::min_notice_minutes.eq(s.min_notice_minutes),
        booking_settings::cancel_allowed.eq(s.cancel_allowed),
        booking_settings::cancel_until_hours.eq(s.cancel_until_hours),
        booking_settings::reschedule_allowed.eq(s.reschedule_allowed),
        booking_settings::reschedule_until_hours.eq(s.reschedule_until_hours),
        booking_settings::max_pending.eq(s.max_pending),
        booking_settings::reminder_hours_before.eq(s.reminder_hours_before),
        booking_settings::time_zone.eq(&s.time_zone),
        booking_settings::updated_at.eq(to_db_time(s.updated_at)),
    );
    let n = diesel::update(booking_settings::table.find(&s.org_id))
        .set(values)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(booking_settings::table)
            .values((booking_settings::org_id.eq(&s.org_id), values))
            .execute(conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Providers

/// A staff member or a resource that delivers services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// `staff` or `resource`.
    pub kind: String,
    /// The staff account of a staff member, when it has one.
    pub staff_id: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = booking_providers)]
struct ProviderTableRow {
    id: String,
    org_id: String,
    name: String,
    kind: String,
    staff_id: Option<String>,
    active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<ProviderTableRow> for ProviderRow {
    fn from(r: ProviderTableRow) -> Self {
        ProviderRow {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            kind: r.kind,
            staff_id: r.staff_id,
            active: r.active,
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        }
    }
}

pub fn insert_provider(conn: &mut DbConnection, p: &ProviderRow) -> Result<(), StoreError> {
    diesel::insert_into(booking_providers::table)
        .values((
            booking_providers::id.eq(&p.id),
            booking_providers::org_id.eq(&p.org_id),
            booking_providers::name.eq(&p.name),
            booking_providers::kind.eq(&p.kind),
            booking_providers::staff_id.eq(&p.staff_id),
            booking_providers::active.eq(p.active),
            booking_providers::created_at.eq(to_db_time(p.created_at)),
            booking_providers::updated_at.eq(to_db_time(p.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Provider `id` of the organization; [`StoreError::NotFound`] otherwise.
pub fn get_provider(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> Result<ProviderRow, StoreError> {
    Ok(booking_providers::table
        .filter(booking_providers::org_id.eq(org_id))
        .filter(booking_providers::id.eq(id))
        .select(ProviderTableRow::as_select())
        .first::<ProviderTableRow>(conn)?
        .into())
}

/// The organization's providers among `ids` (unknown ids are left out),
/// in `(created_at, id)` order.
pub fn providers_by_ids(
    conn: &mut DbConnection,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<ProviderRow>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(booking_providers::table
        .filter(booking_providers::org_id.eq(org_id))
        .filter(booking_providers::id.eq_any(ids))
        .order((
            booking_providers::created_at.asc(),
            booking_providers::id.asc(),
        ))
        .select(ProviderTableRow::as_select())
        .load::<ProviderTableRow>(conn)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A page of the organization's providers, oldest first, after the
/// `(created_at, id)` of the cursor.
pub fn list_providers(
    conn: &mut DbConnection,
    org_id: &str,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<ProviderRow>, StoreError> {
    let mut q = booking_providers::table
        .filter(booking_providers::org_id.eq(org_id))
        .into_boxed();
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = q.filter(
            booking_providers::created_at
                .gt(at)
                .or(booking_providers::created_at
                    .eq(at)
                    .and(booking_providers::id.gt(id.to_owned()))),
        );
    }
    Ok(q.order((
        booking_providers::created_at.asc(),
        booking_providers::id.asc(),
    ))
    .limit(limit)
    .select(ProviderTableRow::as_select())
    .load::<ProviderTableRow>(conn)?
    .into_iter()
    .map(Into::into)
    .collect())
}

/// Writes what may change (name, kind, staff account, active, updated
/// at); whether the organization has that provider.
pub fn update_provider(conn: &mut DbConnection, p: &ProviderRow) -> Result<bool, StoreError> {
    let n = diesel::update(
        booking_providers::table
            .filter(booking_providers::org_id.eq(&p.org_id))
            .filter(booking_providers::id.eq(&p.id)),
    )
    .set((
        booking_providers::name.eq(&p.name),
        booking_providers::kind.eq(&p.kind),
        booking_providers::staff_id.eq(&p.staff_id),
        booking_providers::active.eq(p.active),
        booking_providers::updated_at.eq(to_db_time(p.updated_at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

// ---------------------------------------------------------------------------
// Services

/// A service and the providers that can deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub id: String,
    pub org_id: String,
    /// Language -> name (`{"fr": "Coupe", "en": "Haircut"}`), stored as a
    /// JSON object.
    pub names: BTreeMap<String, String>,
    pub duration_minutes: i32,
    pub buffer_after_minutes: i32,
    /// Minor units.
    pub price_amount: Option<i64>,
    pub price_currency: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sorted. Read from the links; the writes take theirs as an argument.
    pub provider_ids: Vec<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = booking_services)]
struct ServiceTableRow {
    id: String,
    org_id: String,
    names: String,
    duration_minutes: i32,
    buffer_after_minutes: i32,
    price_amount: Option<i64>,
    price_currency: Option<String>,
    active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl ServiceTableRow {
    fn into_service(self, provider_ids: Vec<String>) -> Result<ServiceRow, StoreError> {
        let names = serde_json::from_str(&self.names).map_err(|e| {
            StoreError::Database(format!("service {} has unreadable names: {e}", self.id))
        })?;
        Ok(ServiceRow {
            id: self.id,
            org_id: self.org_id,
            names,
            duration_minutes: self.duration_minutes,
            buffer_after_minutes: self.buffer_after_minutes,
            price_amount: self.price_amount,
            price_currency: self.price_currency,
            active: self.active,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            provider_ids,
        })
    }
}

fn names_json(s: &ServiceRow) -> Result<String, StoreError> {
    serde_json::to_string(&s.names).map_err(|e| StoreError::Database(e.to_string()))
}

/// Links the service to `provider_ids`, one row at a time; a provider that
/// is not the organization's is a [`StoreError::Conflict`].
fn link_providers(
    conn: &mut DbConnection,
    org_id: &str,
    service_id: &str,
    provider_ids: &[String],
) -> Result<(), StoreError> {
    let mut ids: Vec<&String> = provider_ids.iter().collect();
    ids.sort();
    ids.dedup();
    let known: i64 = booking_providers::table
        .filter(booking_providers::org_id.eq(org_id))
        .filter(booking_providers::id.eq_any(&ids))
        .count()
        .get_result(conn)?;
    if usize::try_from(known).ok() != Some(ids.len()) {
        return Err(StoreError::Conflict(
            "a provider of the service is not one of the organization's".into(),
        ));
    }
    for provider_id in ids {
        diesel::insert_into(booking_service_providers::table)
            .values((
                booking_service_providers::service_id.eq(service_id),
                booking_service_providers::provider_id.eq(provider_id),
                booking_service_providers::org_id.eq(org_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Inserts the service and its links to `provider_ids` (`svc.provider_ids`
/// is not read); call it in a transaction.
pub fn insert_service(
    conn: &mut DbConnection,
    svc: &ServiceRow,
    provider_ids: &[String],
) -> Result<(), StoreError> {
    diesel::insert_into(booking_services::table)
        .values((
            booking_services::id.eq(&svc.id),
            booking_services::org_id.eq(&svc.org_id),
            booking_services::names.eq(names_json(svc)?),
            booking_services::duration_minutes.eq(svc.duration_minutes),
            booking_services::buffer_after_minutes.eq(svc.buffer_after_minutes),
            booking_services::price_amount.eq(svc.price_amount),
            booking_services::price_currency.eq(&svc.price_currency),
            booking_services::active.eq(svc.active),
            booking_services::created_at.eq(to_db_time(svc.created_at)),
            booking_services::updated_at.eq(to_db_time(svc.updated_at)),
        ))
        .execute(conn)?;
    link_providers(conn, &svc.org_id, &svc.id, provider_ids)
}

/// The providers of each of `service_ids`, sorted.
fn provider_ids_of(
    conn: &mut DbConnection,
    org_id: &str,
    service_ids: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if service_ids.is_empty() {
        return Ok(out);
    }
    let links: Vec<(String, String)> = booking_service_providers::table
        .filter(booking_service_providers::org_id.eq(org_id))
        .filter(booking_service_providers::service_id.eq_any(service_ids))
        .order((
            booking_service_providers::service_id.asc(),
            booking_service_providers::provider_id.asc(),
        ))
        .select((
            booking_service_providers::service_id,
            booking_service_providers::provider_id,
        ))
        .load(conn)?;
    for (service_id, provider_id) in links {
        out.entry(service_id).or_default().push(provider_id);
    }
    Ok(out)
}

/// Service `id` of the organization with its providers;
/// [`StoreError::NotFound`] otherwise.
pub fn get_service(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> Result<ServiceRow, StoreError> {
    let row = booking_services::table
        .filter(booking_services::org_id.eq(org_id))
        .filter(booking_services::id.eq(id))
        .select(ServiceTableRow::as_select())
        .first(conn)?;
    let mut links = provider_ids_of(conn, org_id, &[id])?;
    let provider_ids = links.remove(id).unwrap_or_default();
    row.into_service(provider_ids)
}

/// A page of the organization's services (only the active ones when
/// asked), oldest first, after the `(created_at, id)` of the cursor.
pub fn list_services(
    conn: &mut DbConnection,
    org_id: &str,
    active_only: bool,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<ServiceRow>, StoreError> {
    let mut q = booking_services::table
        .filter(booking_services::org_id.eq(org_id))
        .into_boxed();
    if active_only {
        q = q.filter(booking_services::active.eq(true));
    }
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = q.filter(
            booking_services::created_at
                .gt(at)
                .or(booking_services::created_at
                    .eq(at)
                    .and(booking_services::id.gt(id.to_owned()))),
        );
    }
    let rows: Vec<ServiceTableRow> = q
        .order((
            booking_services::created_at.asc(),
            booking_services::id.asc(),
        ))
        .limit(limit)
        .select(ServiceTableRow::as_select())
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut links = provider_ids_of(conn, org_id, &ids)?;
    rows.into_iter()
        .map(|r| {
            let provider_ids = links.remove(&r.id).unwrap_or_default();
            r.into_service(provider_ids)
        })
        .collect()
}

/// Writes what may change (names, timing, price, active, updated at) and
/// replaces the service's providers with `provider_ids`; whether the
/// organization has that service. Call it in a transaction.
pub fn update_service(
    conn: &mut DbConnection,
    svc: &ServiceRow,
    provider_ids: &[String],
) -> Result<bool, StoreError> {
    let n = diesel::update(
        booking_services::table
            .filter(booking_services::org_id.eq(&svc.org_id))
            .filter(booking_services::id.eq(&svc.id)),
    )
    .set((
        booking_services::names.eq(names_json(svc)?),
        booking_services::duration_minutes.eq(svc.duration_minutes),
        booking_services::buffer_after_minutes.eq(svc.buffer_after_minutes),
        booking_services::price_amount.eq(svc.price_amount),
        booking_services::price_currency.eq(&svc.price_currency),
        booking_services::active.eq(svc.active),
        booking_services::updated_at.eq(to_db_time(svc.updated_at)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(
        booking_service_providers::table
            .filter(booking_service_providers::org_id.eq(&svc.org_id))
            .filter(booking_service_providers::service_id.eq(&svc.id)),
    )
    .execute(conn)?;
    link_providers(conn, &svc.org_id, &svc.id, provider_ids)?;
    Ok(true)
}

// ---------------------------------------------------------------------------
// Availability

/// A weekly opening window of a provider, in the organization's local time.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = booking_windows)]
pub struct WindowRow {
    pub id: String,
    pub org_id: String,
    pub provider_id: String,
    /// 1 = Monday .. 7 = Sunday.
    pub weekday: i32,
    /// Minutes since local midnight, end exclusive (1440 = midnight).
    pub start_minute: i32,
    pub end_minute: i32,
}

/// Replaces the provider's weekly windows with `windows` (their `org_id`
/// and `provider_id` are taken from the arguments); call it in a
/// transaction.
pub fn replace_windows(
    conn: &mut DbConnection,
    org_id: &str,
    provider_id: &str,
    windows: &[WindowRow],
) -> Result<(), StoreError> {
    diesel::delete(
        booking_windows::table
            .filter(booking_windows::org_id.eq(org_id))
            .filter(booking_windows::provider_id.eq(provider_id)),
    )
    .execute(conn)?;
    for w in windows {
        diesel::insert_into(booking_windows::table)
            .values((
                booking_windows::id.eq(&w.id),
                booking_windows::org_id.eq(org_id),
                booking_windows::provider_id.eq(provider_id),
                booking_windows::weekday.eq(w.weekday),
                booking_windows::start_minute.eq(w.start_minute),
                booking_windows::end_minute.eq(w.end_minute),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The weekly windows of these providers, by provider, weekday and start.
pub fn windows_of(
    conn: &mut DbConnection,
    org_id: &str,
    provider_ids: &[String],
) -> Result<Vec<WindowRow>, StoreError> {
    if provider_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(booking_windows::table
        .filter(booking_windows::org_id.eq(org_id))
        .filter(booking_windows::provider_id.eq_any(provider_ids))
        .order((
            booking_windows::provider_id.asc(),
            booking_windows::weekday.asc(),
            booking_windows::start_minute.asc(),
        ))
        .select(WindowRow::as_select())
        .load(conn)?)
}

/// One local day's exception to a provider's weekly windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    pub id: String,
    pub org_id: String,
    pub provider_id: String,
    pub day: NaiveDate,
    /// `closed` (all day when no minutes) or `open` (an extra opening).
    pub kind: String,
    pub start_minute: Option<i32>,
    pub end_minute: Option<i32>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = booking_exceptions)]
struct ExceptionTableRow {
    id: String,
    org_id: String,
    provider_id: String,
    day: NaiveDate,
    kind: String,
    start_minute: Option<i32>,
    end_minute: Option<i32>,
    note: Option<String>,
    created_at: NaiveDateTime,
}

impl From<ExceptionTableRow> for ExceptionRow {
    fn from(r: ExceptionTableRow) -> Self {
        ExceptionRow {
            id: r.id,
            org_id: r.org_id,
            provider_id: r.provider_id,
            day: r.day,
            kind: r.kind,
            start_minute: r.start_minute,
            end_minute: r.end_minute,
            note: r.note,
            created_at: from_db_time(r.created_at),
        }
    }
}

pub fn insert_exception(conn: &mut DbConnection, e: &ExceptionRow) -> Result<(), StoreError> {
    diesel::insert_into(booking_exceptions::table)
        .values((
            booking_exceptions::id.eq(&e.id),
            booking_exceptions::org_id.eq(&e.org_id),
            booking_exceptions::provider_id.eq(&e.provider_id),
            booking_exceptions::day.eq(e.day),
            booking_exceptions::kind.eq(&e.kind),
            booking_exceptions::start_minute.eq(e.start_minute),
            booking_exceptions::end_minute.eq(e.end_minute),
            booking_exceptions::note.eq(&e.note),
            booking_exceptions::created_at.eq(to_db_time(e.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes exception `id` of the organization; whether there was one.
pub fn delete_exception(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let n = diesel::delete(
        booking_exceptions::table
            .filter(booking_exceptions::org_id.eq(org_id))
            .filter(booking_exceptions::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// The exceptions of these providers on the local days
/// `first_day..=last_day`, by provider, day and start.
pub fn exceptions_of(
    conn: &mut DbConnection,
    org_id: &str,
    provider_ids: &[String],
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Vec<ExceptionRow>, StoreError> {
    if provider_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(booking_exceptions::table
        .filter(booking_exceptions::org_id.eq(org_id))
        .filter(booking_exceptions::provider_id.eq_any(provider_ids))
        .filter(booking_exceptions::day.ge(first_day))
        .filter(booking_exceptions::day.le(last_day))
        .order((
            booking_exceptions::provider_id.asc(),
            booking_exceptions::day.asc(),
            booking_exceptions::start_minute.asc(),
            booking_exceptions::id.asc(),
        ))
        .select(ExceptionTableRow::as_select())
        .load::<ExceptionTableRow>(conn)?
        .into_iter()
        .map(Into::into)
        .collect())
}

// ---------------------------------------------------------------------------
// Bookings

/// A booking as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRow {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub service_id: String,
    pub provider_id: String,
    pub start_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    /// `end_at` plus the service's buffer: the provider is busy in
    /// `[start_at, busy_until)`.
    pub busy_until: DateTime<Utc>,
    /// `pending`, `confirmed`, `declined`, `cancelled`, `completed` or
    /// `no_show`.
    pub status: String,
    /// The customer's note.
    pub note: Option<String>,
    /// `customer`, `staff` or `api_key`.
    pub created_by_kind: String,
    pub created_by: String,
    /// Why it was declined or cancelled.
    pub reason: Option<String>,
    pub cancelled_by_kind: Option<String>,
    /// The iCalendar SEQUENCE.
    pub sequence: i32,
    /// Made in a preview session.
    pub test: bool,
    pub reminder_due_at: Option<DateTime<Utc>>,
    pub reminder_sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bookings)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    service_id: String,
    provider_id: String,
    start_at: NaiveDateTime,
    end_at: NaiveDateTime,
    busy_until: NaiveDateTime,
    status: String,
    note: Option<String>,
    created_by_kind: String,
    created_by: String,
    reason: Option<String>,
    cancelled_by_kind: Option<String>,
    sequence: i32,
    test: bool,
    reminder_due_at: Option<NaiveDateTime>,
    reminder_sent_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<Row> for BookingRow {
    fn from(r: Row) -> Self {
        BookingRow {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            service_id: r.service_id,
            provider_id: r.provider_id,
            start_at: from_db_time(r.start_at),
            end_at: from_db_time(r.end_at),
            busy_until: from_db_time(r.busy_until),
            status: r.status,
            note: r.note,
            created_by_kind: r.created_by_kind,
            created_by: r.created_by,
            reason: r.reason,
            cancelled_by_kind: r.cancelled_by_kind,
            sequence: r.sequence,
            test: r.test,
            reminder_due_at: opt_from_db_time(r.reminder_due_at),
            reminder_sent_at: opt_from_db_time(r.reminder_sent_at),
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        }
    }
}

/// Inserts the booking; [`StoreError::SlotTaken`] when its status holds
/// the slot and another pending or confirmed booking of the provider
/// overlaps `[start_at, busy_until)`.
pub fn insert_booking(conn: &mut DbConnection, b: &BookingRow) -> Result<(), StoreError> {
    diesel::insert_into(bookings::table)
        .values((
            (
                bookings::id.eq(&b.id),
                bookings::org_id.eq(&b.org_id),
                bookings::customer_id.eq(&b.customer_id),
                bookings::service_id.eq(&b.service_id),
                bookings::provider_id.eq(&b.provider_id),
                bookings::start_at.eq(to_db_time(b.start_at)),
                bookings::end_at.eq(to_db_time(b.end_at)),
                bookings::busy_until.eq(to_db_time(b.busy_until)),
                bookings::status.eq(&b.status),
                bookings::note.eq(&b.note),
            ),
            (
                bookings::created_by_kind.eq(&b.created_by_kind),
                bookings::created_by.eq(&b.created_by),
                bookings::reason.eq(&b.reason),
                bookings::cancelled_by_kind.eq(&b.cancelled_by_kind),
                bookings::sequence.eq(b.sequence),
                bookings::test.eq(b.test),
                bookings::reminder_due_at.eq(opt_to_db_time(b.reminder_due_at)),
                bookings::reminder_sent_at.eq(opt_to_db_time(b.reminder_sent_at)),
                bookings::created_at.eq(to_db_time(b.created_at)),
                bookings::updated_at.eq(to_db_time(b.updated_at)),
            ),
        ))
        .execute(conn)?;
    Ok(())
}

/// Booking `id` of the organization (staff's view);
/// [`StoreError::NotFound`] otherwise.
pub fn get_booking(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> Result<BookingRow, StoreError> {
    Ok(bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::id.eq(id))
        .select(Row::as_select())
        .first::<Row>(conn)?
        .into())
}

/// Booking `id` when it is the customer's; [`StoreError::NotFound`]
/// otherwise.
pub fn get_customer_booking(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<BookingRow, StoreError> {
    Ok(bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::customer_id.eq(customer_id))
        .filter(bookings::id.eq(id))
        .select(Row::as_select())
        .first::<Row>(conn)?
        .into())
}

/// `(provider_id, start_at, busy_until)`: a provider is held in
/// `[start_at, busy_until)`.
pub type BusyRange = (String, DateTime<Utc>, DateTime<Utc>);

/// The time these providers (the organization's among them) are held in
/// `[from, to)`: their pending and confirmed bookings that overlap it, as
/// `(provider_id, start_at, busy_until)`, by provider and time.
///
/// The organization is checked on the providers rather than on the
/// bookings, so that SQLite reads each provider's bookings from `from` on
/// (`bookings_provider_busy`), not its whole history up to `to`; one
/// provider's holding bookings never overlap, so ordering them by
/// `busy_until` orders them by start too.
pub fn busy_of(
    conn: &mut DbConnection,
    org_id: &str,
    provider_ids: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<BusyRange>, StoreError> {
    if provider_ids.is_empty() {
        return Ok(Vec::new());
    }
    let providers = booking_providers::table
        .filter(booking_providers::org_id.eq(org_id))
        .filter(booking_providers::id.eq_any(provider_ids))
        .select(booking_providers::id);
    let rows: Vec<(String, NaiveDateTime, NaiveDateTime)> = bookings::table
        .filter(bookings::provider_id.eq_any(providers))
        .filter(bookings::status.eq_any(HOLDING_STATUSES))
        .filter(bookings::busy_until.gt(to_db_time(from)))
        .filter(bookings::start_at.lt(to_db_time(to)))
        .order((bookings::provider_id.asc(), bookings::busy_until.asc()))
        .select((
            bookings::provider_id,
            bookings::start_at,
            bookings::busy_until,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(p, s, u)| (p, from_db_time(s), from_db_time(u)))
        .collect())
}

/// One part of a customer's list: bookings in one of `statuses` whose end
/// is within the bounds given. A list shows the bookings that match any of
/// its clauses (the domain's views: upcoming is `confirmed` ending after
/// now; history is the closed statuses, and `confirmed` ended by now).
#[derive(Debug, Clone, Copy)]
pub struct BookingClause<'a> {
    pub statuses: &'a [&'a str],
    /// Only bookings with `end_at > ends_after`.
    pub ends_after: Option<DateTime<Utc>>,
    /// Only bookings with `end_at <= ended_by`.
    pub ended_by: Option<DateTime<Utc>>,
}

fn clause_filter<'a>(c: &BookingClause<'a>) -> Filter<'a> {
    let mut f: Filter<'a> = Box::new(bookings::status.eq_any(c.statuses.to_vec()));
    if let Some(at) = c.ends_after {
        f = Box::new(f.and(bookings::end_at.gt(to_db_time(at))));
    }
    if let Some(at) = c.ended_by {
        f = Box::new(f.and(bookings::end_at.le(to_db_time(at))));
    }
    f
}

/// A page of the customer's bookings matching any of `clauses` (none: an
/// empty page), by `(start_at, id)`: ascending, or descending when
/// `newest_first`, after the cursor's `(start_at, id)` in that order.
pub fn list_customer_bookings(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    clauses: &[BookingClause<'_>],
    newest_first: bool,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<BookingRow>, StoreError> {
    let Some((first, rest)) = clauses.split_first() else {
        return Ok(Vec::new());
    };
    let mut any = clause_filter(first);
    for c in rest {
        any = Box::new(any.or(clause_filter(c)));
    }
    let mut q = bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::customer_id.eq(customer_id))
        .filter(any)
        .into_boxed();
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = if newest_first {
            q.filter(
                bookings::start_at.lt(at).or(bookings::start_at
                    .eq(at)
                    .and(bookings::id.lt(id.to_owned()))),
            )
        } else {
            q.filter(
                bookings::start_at.gt(at).or(bookings::start_at
                    .eq(at)
                    .and(bookings::id.gt(id.to_owned()))),
            )
        };
    }
    q = if newest_first {
        q.order((bookings::start_at.desc(), bookings::id.desc()))
    } else {
        q.order((bookings::start_at.asc(), bookings::id.asc()))
    };
    Ok(q.limit(limit)
        .select(Row::as_select())
        .load::<Row>(conn)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A page of the organization's bookings starting in `[from, to)`,
/// optionally of one provider and one status, by `(start_at, id)`, after
/// the cursor.
#[allow(clippy::too_many_arguments)]
pub fn list_org_bookings(
    conn: &mut DbConnection,
    org_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    provider_id: Option<&str>,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<BookingRow>, StoreError> {
    let mut q = bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::start_at.ge(to_db_time(from)))
        .filter(bookings::start_at.lt(to_db_time(to)))
        .into_boxed();
    if let Some(provider_id) = provider_id {
        q = q.filter(bookings::provider_id.eq(provider_id.to_owned()));
    }
    if let Some(status) = status {
        q = q.filter(bookings::status.eq(status.to_owned()));
    }
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = q.filter(
            bookings::start_at.gt(at).or(bookings::start_at
                .eq(at)
                .and(bookings::id.gt(id.to_owned()))),
        );
    }
    Ok(q.order((bookings::start_at.asc(), bookings::id.asc()))
        .limit(limit)
        .select(Row::as_select())
        .load::<Row>(conn)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// The customer's pending requests that start after `now`: what the
/// `max_pending` setting counts.
pub fn count_pending(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::customer_id.eq(customer_id))
        .filter(bookings::status.eq(STATUS_PENDING))
        .filter(bookings::start_at.gt(to_db_time(now)))
        .count()
        .get_result(conn)?)
}

/// Moves booking `id` from one of `from` to `to` at `now`, with the
/// reason and who cancelled (both written as given, `None` clearing
/// them): one conditional update, so of two calls racing exactly one
/// moves it. Going to `cancelled` bumps the iCalendar SEQUENCE. Returns
/// whether this call moved it; [`StoreError::SlotTaken`] when `to` holds
/// the slot and it is no longer free.
#[allow(clippy::too_many_arguments)]
pub fn set_status(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    from: &[&str],
    to: &str,
    reason: Option<&str>,
    cancelled_by_kind: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let target = bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::id.eq(id))
        .filter(bookings::status.eq_any(from.to_vec()));
    let changes = (
        bookings::status.eq(to),
        bookings::reason.eq(reason),
        bookings::cancelled_by_kind.eq(cancelled_by_kind),
        bookings::updated_at.eq(to_db_time(now)),
    );
    let n = if to == STATUS_CANCELLED {
        diesel::update(target)
            .set((changes, bookings::sequence.eq(bookings::sequence + 1)))
            .execute(conn)?
    } else {
        diesel::update(target).set(changes).execute(conn)?
    };
    Ok(n == 1)
}

/// Moves booking `id` to a new time while it is pending or confirmed:
/// bumps the iCalendar SEQUENCE, sets the new reminder time and clears
/// the sent one. Returns whether it was moved (false: no such booking of
/// the organization, or no longer pending or confirmed);
/// [`StoreError::SlotTaken`] when the new range overlaps another booking
/// of the provider.
#[allow(clippy::too_many_arguments)]
pub fn reschedule(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    new_start: DateTime<Utc>,
    new_end: DateTime<Utc>,
    new_busy_until: DateTime<Utc>,
    reminder_due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        bookings::table
            .filter(bookings::org_id.eq(org_id))
            .filter(bookings::id.eq(id))
            .filter(bookings::status.eq_any(HOLDING_STATUSES)),
    )
    .set((
        bookings::start_at.eq(to_db_time(new_start)),
        bookings::end_at.eq(to_db_time(new_end)),
        bookings::busy_until.eq(to_db_time(new_busy_until)),
        bookings::reminder_due_at.eq(opt_to_db_time(reminder_due_at)),
        bookings::reminder_sent_at.eq(None::<NaiveDateTime>),
        bookings::sequence.eq(bookings::sequence + 1),
        bookings::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The customer's next `n` pending or confirmed bookings starting after
/// `now`, soonest first (the dashboard's).
pub fn next_upcoming(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
    n: i64,
) -> Result<Vec<BookingRow>, StoreError> {
    Ok(bookings::table
        .filter(bookings::org_id.eq(org_id))
        .filter(bookings::customer_id.eq(customer_id))
        .filter(bookings::status.eq_any(HOLDING_STATUSES))
        .filter(bookings::start_at.gt(to_db_time(now)))
        .order((bookings::start_at.asc(), bookings::id.asc()))
        .limit(n)
        .select(Row::as_select())
        .load::<Row>(conn)?
        .into_iter()
        .map(Into::into)
        .collect())
}

// ---------------------------------------------------------------------------
// Reminders

/// Up to `limit` confirmed bookings of every organization whose reminder
/// is due by `now`, not sent, and that have not started, soonest due
/// first. Call it in the transaction that sends them and marks them
/// ([`mark_reminder_sent`]): on PostgreSQL they are taken `FOR UPDATE SKIP
/// LOCKED`, so that reminder runs on several nodes share the work and
/// never take the same booking; SQLite's writers are one at a time
/// (`BEGIN IMMEDIATE`).
pub fn claim_due_reminders(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<BookingRow>, StoreError> {
    let now = to_db_time(now);
    let due = bookings::table
        .filter(bookings::status.eq(STATUS_CONFIRMED))
        .filter(bookings::reminder_sent_at.is_null())
        .filter(bookings::reminder_due_at.le(now))
        .filter(bookings::start_at.gt(now))
        .order((bookings::reminder_due_at.asc(), bookings::id.asc()))
        .limit(limit);
    let rows: Vec<Row> = match conn {
        DbConnection::Postgresql(pg) => due
            .select(Row::as_select())
            .for_update()
            .skip_locked()
            .load(pg)?,
        DbConnection::Sqlite(_) => due.select(Row::as_select()).load(conn)?,
    };
    Ok(rows.into_iter().map(BookingRow::from).collect())
}

/// Records that the reminder of booking `id` went out at `now`; whether
/// this call recorded it (false: already recorded, or no such booking).
pub fn mark_reminder_sent(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        bookings::table
            .filter(bookings::id.eq(id))
            .filter(bookings::reminder_sent_at.is_null()),
    )
    .set(bookings::reminder_sent_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(n == 1)
}
