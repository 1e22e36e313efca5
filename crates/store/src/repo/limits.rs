//! The `rate_limit_keys` and `rate_limit_hits` tables: sliding-window
//! limits that hold across API nodes (codes and links sent per destination
//! and per client address).
//!
//! A use is reserved before the work it guards: [`reserve`] locks the key's
//! row (a PostgreSQL row lock; SQLite writers are serialized by
//! `BEGIN IMMEDIATE`), counts the uses still inside the window and records a
//! new one only when the count is under the limit, all in one transaction.
//! So N concurrent requests on any number of nodes never get more than the
//! limit.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::to_db_time;
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{rate_limit_hits, rate_limit_keys};

/// Reserves one use of `key` at `now` when fewer than `limit` were
/// reserved within `window` before it; false (and nothing recorded) when
/// the limit is reached. Runs its own transaction: not to be called inside
/// one.
pub fn reserve(
    conn: &mut DbConnection,
    key: &str,
    limit: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let since = to_db_time(now - window);
    crate::transaction(conn, |conn| {
        let row = (
            rate_limit_keys::key.eq(key),
            rate_limit_keys::updated_at.eq(to_db_time(now)),
        );
        match conn {
            DbConnection::Postgresql(pg) => diesel::insert_into(rate_limit_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::insert_into(rate_limit_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(lite)?,
        };
        // Takes the row lock: concurrent reservations of this key queue here.
        diesel::update(rate_limit_keys::table.find(key))
            .set(rate_limit_keys::updated_at.eq(to_db_time(now)))
            .execute(conn)?;
        diesel::delete(
            rate_limit_hits::table
                .filter(rate_limit_hits::key.eq(key))
                .filter(rate_limit_hits::at.le(since)),
        )
        .execute(conn)?;
        let used: i64 = rate_limit_hits::table
            .filter(rate_limit_hits::key.eq(key))
            .filter(rate_limit_hits::at.gt(since))
            .count()
            .get_result(conn)?;
        if used >= i64::from(limit) {
            return Ok(false);
        }
        diesel::insert_into(rate_limit_hits::table)
            .values((
                rate_limit_hits::id.eq(guichet_domain::ids::new_id("rlh")),
                rate_limit_hits::key.eq(key),
                rate_limit_hits::at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// How many uses of `key` are reserved within `window` before `now`.
pub fn used(
    conn: &mut DbConnection,
    key: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(rate_limit_hits::table
        .filter(rate_limit_hits::key.eq(key))
        .filter(rate_limit_hits::at.gt(to_db_time(now - window)))
        .count()
        .get_result(conn)?)
}

/// The oldest use of `key` still inside the window (to tell a client when
/// the next one frees up).
pub fn oldest(
    conn: &mut DbConnection,
    key: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(rate_limit_hits::table
        .filter(rate_limit_hits::key.eq(key))
        .filter(rate_limit_hits::at.gt(to_db_time(now - window)))
        .select(diesel::dsl::min(rate_limit_hits::at))
        .first::<Option<chrono::NaiveDateTime>>(conn)?
        .map(super::from_db_time))
}
