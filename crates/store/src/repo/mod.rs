//! Repositories: one module per table family, plain functions over
//! `&mut DbConnection` that take and return domain types.

pub mod accounts;
pub mod api_keys;
pub mod autopay;
pub mod bookings;
pub mod challenges;
pub mod charges;
pub mod codes;
pub mod collections;
pub mod consents;
pub mod contact_changes;
pub mod conversations;
pub mod creditor;
pub mod customers;
pub mod dashboard;
pub mod documents;
pub mod events;
pub mod idempotency;
pub mod invoices;
pub mod limits;
pub mod mandates;
pub mod notifications;
pub mod organizations;
pub mod outbox;
pub mod payment;
pub mod payment_methods;
pub mod portal;
pub mod refunds;
pub mod regularizations;
pub mod sandbox;
pub mod sca;
pub mod schedules;
pub mod security_events;
pub mod sessions;
pub mod staff;
pub mod throttles;
pub mod webhooks;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Instants are stored as UTC `TIMESTAMP` on both backends.
pub(crate) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub(crate) fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub(crate) fn opt_to_db_time(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(to_db_time)
}

pub(crate) fn opt_from_db_time(t: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(from_db_time)
}
