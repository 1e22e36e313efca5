//! The `idempotency_keys` table: money-moving requests replay their first
//! answer for the same key and body, for 24 hours.
//!
//! The life of a key:
//!
//! 1. [`claim`] before the work, in its own statement (not inside a
//!    transaction). A new key is inserted locked for a short lease
//!    (`locked_until`); a key whose first attempt's lease ran out is taken
//!    over by this caller and locked again ([`Claim::Resume`]).
//! 2. The effect and its answer commit together: inside the effect's
//!    transaction, [`hold_in`] first (it locks the key's row, so two
//!    attempts of one key never run their effects side by side, and says
//!    whether the key is still unanswered), then the effect, then
//!    [`complete_in`]. When either says `false`, another attempt answered
//!    first: roll the transaction back and give [`answer`] instead.
//! 3. A refusal that changed nothing [`release`]s the key, so that it can
//!    be sent again.
//!
//! A crash between 1 and the commit leaves the key unanswered and locked
//! until its lease ends; the next retry then resumes it. Nothing committed
//! in between, since the effect commits with its answer.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::idempotency_keys;

/// How long a key is remembered.
pub fn retention() -> Duration {
    Duration::hours(24)
}

/// A stored key: its request hash, answer (status, body) and lock.
type KeyRow = (String, Option<i32>, Option<String>, Option<NaiveDateTime>);

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: the key is now locked for this caller; do the work and
    /// complete it in the same transaction ([`complete_in`]).
    New,
    /// The key was unanswered and its lease had run out (the first attempt
    /// crashed or gave up): it is now locked for this caller, who must find
    /// out what the first attempt did and finish the request.
    Resume,
    /// Done before with the same body: answer this again.
    Replay { status: u16, body: String },
    /// Another attempt with this key holds it until `until`.
    InUse { until: DateTime<Utc> },
    /// The key was used with another body.
    Mismatch,
}

/// Claims `key` in `scope` (the caller) for a request whose body hashes to
/// `request_hash`, locking it for `lease` when the work is to be done now.
/// Of several concurrent claims of one key, exactly one gets [`Claim::New`]
/// or [`Claim::Resume`]. Not to be called inside a transaction (a lost
/// insert race aborts it on PostgreSQL).
pub fn claim(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Claim, StoreError> {
    claim_kept(conn, scope, key, request_hash, now, lease, retention())
}

/// [`claim`] with keys of this scope forgotten after `keep` instead of 24
/// hours, and locked for `keep`: a short-lived lock (e.g. one
/// regularization per order at a time) that a crash cannot leave behind for
/// long.
pub fn claim_for(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    keep: Duration,
) -> Result<Claim, StoreError> {
    claim_kept(conn, scope, key, request_hash, now, keep, keep)
}

fn claim_kept(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    lease: Duration,
    keep: Duration,
) -> Result<Claim, StoreError> {
    let until = to_db_time(now + lease);
    // Forget expired keys of this scope first.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::created_at.le(to_db_time(now - keep))),
    )
    .execute(conn)?;
    // A key released between two of these steps is claimed again from the
    // start; twice is plenty.
    for _ in 0..3 {
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::scope.eq(scope),
                idempotency_keys::key.eq(key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::created_at.eq(to_db_time(now)),
                idempotency_keys::locked_until.eq(Some(until)),
            ))
            .execute(conn)
            .map_err(StoreError::from);
        match inserted {
            Ok(_) => return Ok(Claim::New),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // Take over an unanswered key whose lease has run out. One statement,
        // conditional on the lease: of concurrent takers exactly one updates
        // the row (PostgreSQL re-checks the condition after the row lock;
        // SQLite runs writers one at a time).
        let taken = diesel::update(
            idempotency_keys::table
                .filter(idempotency_keys::scope.eq(scope))
                .filter(idempotency_keys::key.eq(key))
                .filter(idempotency_keys::request_hash.eq(request_hash))
                .filter(idempotency_keys::status_code.is_null())
                .filter(
                    idempotency_keys::locked_until
                        .is_null()
                        .or(idempotency_keys::locked_until.le(to_db_time(now))),
                ),
        )
        .set(idempotency_keys::locked_until.eq(Some(until)))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Claim::Resume);
        }
        let row: Option<KeyRow> = idempotency_keys::table
            .find((scope, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status_code,
                idempotency_keys::response,
                idempotency_keys::locked_until,
            ))
            .first(conn)
            .optional()?;
        let Some((hash, status, body, locked_until)) = row else {
            continue;
        };
        if hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        return Ok(match (status, body) {
            (Some(status), Some(body)) => Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            _ => Claim::InUse {
                until: locked_until.map_or(now, from_db_time),
            },
        });
    }
    Err(StoreError::Conflict(format!(
        "idempotency key {scope}/{key} kept changing while being claimed"
    )))
}

/// Inside the effect's transaction, before the effect: locks the key's row
/// until the commit and says whether the key is still unanswered. `false`:
/// another attempt answered first; roll back and give [`answer`].
pub fn hold_in(conn: &mut DbConnection, scope: &str, key: &str) -> Result<bool, StoreError> {
    let held = diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::status_code.is_null()),
    )
    .set(idempotency_keys::locked_until.eq(idempotency_keys::locked_until))
    .execute(conn)?;
    Ok(held == 1)
}

/// Inside the effect's transaction, after the effect: records the answer
/// given for `key`, if the key is still unanswered. `false`: another
/// attempt answered first; roll the whole transaction back and give
/// [`answer`] instead.
pub fn complete_in(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<bool, StoreError> {
    let completed = diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::status_code.is_null()),
    )
    .set((
        idempotency_keys::status_code.eq(i32::from(status)),
        idempotency_keys::response.eq(body),
        idempotency_keys::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(completed == 1)
}

/// The answer stored for `key`, if any.
pub fn answer(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
) -> Result<Option<(u16, String)>, StoreError> {
    let row: Option<(Option<i32>, Option<String>)> = idempotency_keys::table
        .find((scope, key))
        .select((idempotency_keys::status_code, idempotency_keys::response))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(status), Some(body))) => Some((u16::try_from(status).unwrap_or(500), body)),
        _ => None,
    })
}

/// Records the answer given for `key` after the effect committed, in a
/// transaction of its own. A crash before it leaves the key unanswered
/// although the effect happened: prefer [`complete_in`].
pub fn complete(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    complete_in(conn, scope, key, status, body).map(|_| ())
}

/// Forgets `key` while it is unanswered (the request was refused without
/// changing anything, and may be sent again). An answered key is kept.
pub fn release(conn: &mut DbConnection, scope: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::status_code.is_null()),
    )
    .execute(conn)?;
    Ok(())
}
