//! Repositories: one module per table family, plain functions over
//! `&mut DbConnection` that take and return domain types.

pub mod organizations;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Instants are stored as UTC `TIMESTAMP` on both backends.
pub(crate) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub(crate) fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
