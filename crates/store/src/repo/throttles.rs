//! The `login_throttles` table: failed sign-ins per account key.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::identity::{
    CHALLENGE_AFTER_FAILURES, Gate, LOCK_AFTER_FAILURES, Throttle, lock_duration,
};

use super::{opt_from_db_time, to_db_time};
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

/// The outcome of [`reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted (as a failure until a success resets the
    /// key): go ahead and check the password.
    Reserved,
    /// Too many failures: the attempt needs a solved challenge.
    ChallengeRequired,
    /// Locked until then.
    Locked { until: DateTime<Utc> },
}

/// Reserves one sign-in attempt for `key` before the password is checked,
/// counting it as a failure at once (a success then [`reset`]s the key), so
/// that N attempts sent at the same time, on any number of nodes, are
/// counted as N before any of them is checked.
///
/// Each step is one conditional `UPDATE`: an attempt without a challenge
/// (`challenge_solved` false) is reserved only while fewer than
/// [`CHALLENGE_AFTER_FAILURES`] are counted; any attempt only while the key
/// is not locked; the attempt that brings the count to
/// [`LOCK_AFTER_FAILURES`] (or any attempt after an expired lock) locks the
/// key in the same statement, so no attempt gets through beside it. Not to
/// be called inside a transaction.
pub fn reserve(
    conn: &mut DbConnection,
    key: &str,
    now: DateTime<Utc>,
    challenge_solved: bool,
) -> Result<Reservation, StoreError> {
    let lock_until = to_db_time(now + lock_duration());
    let stamp = to_db_time(now);
    for _ in 0..8 {
        let open = login_throttles::key.eq(key).and(
            login_throttles::locked_until
                .is_null()
                .or(login_throttles::locked_until.le(stamp)),
        );
        // Under the lock threshold: count it.
        let cap = if challenge_solved {
            LOCK_AFTER_FAILURES - 1
        } else {
            CHALLENGE_AFTER_FAILURES.min(LOCK_AFTER_FAILURES - 1)
        };
        let counted = diesel::update(
            login_throttles::table
                .filter(open)
                .filter(login_throttles::failed_logins.lt(cap)),
        )
        .set((
            login_throttles::failed_logins.eq(login_throttles::failed_logins + 1),
            login_throttles::updated_at.eq(stamp),
        ))
        .execute(conn)?;
        if counted == 1 {
            return Ok(Reservation::Reserved);
        }
        if challenge_solved {
            // The attempt that reaches the lock threshold, or the one
            // attempt after an expired lock: count it and lock at once.
            let locking = diesel::update(
                login_throttles::table
                    .filter(open)
                    .filter(login_throttles::failed_logins.ge(LOCK_AFTER_FAILURES - 1)),
            )
            .set((
                login_throttles::failed_logins.eq(login_throttles::failed_logins + 1),
                login_throttles::locked_until.eq(Some(lock_until)),
                login_throttles::updated_at.eq(stamp),
            ))
            .execute(conn)?;
            if locking == 1 {
                return Ok(Reservation::Reserved);
            }
        }
        let exists = login_throttles::table
            .find(key)
            .select(login_throttles::key)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            // First attempt for this key; a concurrent first insert makes
            // ours do nothing, and the loop counts against its row.
            let row = (
                login_throttles::key.eq(key),
                login_throttles::failed_logins.eq(1),
                login_throttles::updated_at.eq(stamp),
            );
            let inserted = match conn {
                DbConnection::Postgresql(pg) => diesel::insert_into(login_throttles::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(pg)?,
                DbConnection::Sqlite(lite) => diesel::insert_into(login_throttles::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(lite)?,
            };
            if inserted == 1 {
                return Ok(Reservation::Reserved);
            }
            continue;
        }
        match get(conn, key)?.gate(now) {
            Gate::Locked { until } => return Ok(Reservation::Locked { until }),
            Gate::ChallengeRequired if !challenge_solved => {
                return Ok(Reservation::ChallengeRequired);
            }
            // The row changed between the statements: try again.
            _ => continue,
        }
    }
    Err(StoreError::Database(
        "login throttle: could not reserve an attempt".to_owned(),
    ))
}

/// Clears the key after a successful sign-in.
pub fn reset(conn: &mut DbConnection, key: &str) -> Result<(), StoreError> {
    diesel::delete(login_throttles::table.find(key)).execute(conn)?;
    Ok(())
}
