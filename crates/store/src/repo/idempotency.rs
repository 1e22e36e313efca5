//! The `idempotency_keys` table: money-moving requests replay their first
//! answer for the same key and body, for 24 hours.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::to_db_time;
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::idempotency_keys;

/// How long a key is remembered.
pub fn retention() -> Duration {
    Duration::hours(24)
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: go ahead, then [`complete`].
    New,
    /// Done before with the same body: answer this again.
    Replay { status: u16, body: String },
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with another body.
    Mismatch,
}

/// Claims `key` in `scope` (the caller) for a request whose body hashes to
/// `request_hash`. Not to be called inside a transaction (a lost insert
/// race aborts it on PostgreSQL).
pub fn claim(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    claim_for(conn, scope, key, request_hash, now, retention())
}

/// [`claim`] with keys of this scope forgotten after `keep` instead of 24
/// hours: a short-lived lock (e.g. one regularization per order at a time)
/// that a crash cannot leave behind for long.
pub fn claim_for(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    keep: Duration,
) -> Result<Claim, StoreError> {
    // Forget expired keys of this scope first.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::created_at.lt(to_db_time(now - keep))),
    )
    .execute(conn)?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)
        .map_err(StoreError::from);
    match inserted {
        Ok(_) => return Ok(Claim::New),
        Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    let (hash, status, body, _): (String, Option<i32>, Option<String>, NaiveDateTime) =
        idempotency_keys::table
            .find((scope, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status_code,
                idempotency_keys::response,
                idempotency_keys::created_at,
            ))
            .first(conn)?;
    if hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    Ok(match (status, body) {
        (Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        _ => Claim::InProgress,
    })
}

/// Records the answer given for `key`.
pub fn complete(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status_code.eq(i32::from(status)),
            idempotency_keys::response.eq(body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets `key` (the request failed in a way that must not be replayed,
/// e.g. the database went away mid-way).
pub fn release(conn: &mut DbConnection, scope: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn)?;
    Ok(())
}
