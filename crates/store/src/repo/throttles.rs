//! The `login_throttles` table: failed sign-ins per account key.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::identity::Throttle;

use super::{opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::login_throttles;

/// The throttle state of `key` (all clear when never seen).
pub fn get(conn: &mut DbConnection, key: &str) -> Result<Throttle, StoreError> {
    let row: Option<(i32, Option<NaiveDateTime>)> = login_throttles::table
        .find(key)
        .select((
            login_throttles::failed_logins,
            login_throttles::locked_until,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(Throttle::default, |(failed_logins, locked)| Throttle {
            failed_logins,
            locked_until: opt_from_db_time(locked),
        }),
    )
}

/// Counts one more failure atomically (several nodes may count at once)
/// and locks the key when the count reaches the limit. Not to be called
/// inside a transaction: on PostgreSQL a lost insert race aborts it.
pub fn record_failure(
    conn: &mut DbConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Throttle, StoreError> {
    // Update first, insert when there is nothing to update; a concurrent
    // first insert makes ours conflict, and the update then applies.
    let bump = |conn: &mut DbConnection| {
        diesel::update(login_throttles::table.find(key))
            .set((
                login_throttles::failed_logins.eq(login_throttles::failed_logins + 1),
                login_throttles::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)
    };
    if bump(conn)? == 0 {
        let inserted = diesel::insert_into(login_throttles::table)
            .values((
                login_throttles::key.eq(key),
                login_throttles::failed_logins.eq(1),
                login_throttles::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)
            .map_err(StoreError::from);
        match inserted {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                bump(conn)?;
            }
            Err(e) => return Err(e),
        }
    }
    let now_state = get(conn, key)?;
    let before = Throttle {
        failed_logins: now_state.failed_logins - 1,
        locked_until: now_state.locked_until,
    };
    let after = before.after_failure(now);
    if after.locked_until != before.locked_until {
        diesel::update(login_throttles::table.find(key))
            .set(login_throttles::locked_until.eq(opt_to_db_time(after.locked_until)))
            .execute(conn)?;
    }
    Ok(after)
}

/// Clears the key after a successful sign-in.
pub fn reset(conn: &mut DbConnection, key: &str) -> Result<(), StoreError> {
    diesel::delete(login_throttles::table.find(key)).execute(conn)?;
    Ok(())
}
