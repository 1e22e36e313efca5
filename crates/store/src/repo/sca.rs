//! The `sandbox_sca_sessions` table: the sandbox issuer's strong-
//! authentication sessions, by merchant and idempotency key, shared by
//! every node like the sandbox's ledger.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::sandbox_sca_sessions;

/// A session of the sandbox issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaSession {
    pub id: String,
    pub merchant: String,
    pub idempotency_key: String,
    pub card_token: String,
    /// `None` while undecided.
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

const COLUMNS: (
    sandbox_sca_sessions::id,
    sandbox_sca_sessions::merchant,
    sandbox_sca_sessions::idempotency_key,
    sandbox_sca_sessions::card_token,
    sandbox_sca_sessions::outcome,
    sandbox_sca_sessions::created_at,
    sandbox_sca_sessions::decided_at,
) = (
    sandbox_sca_sessions::id,
    sandbox_sca_sessions::merchant,
    sandbox_sca_sessions::idempotency_key,
    sandbox_sca_sessions::card_token,
    sandbox_sca_sessions::outcome,
    sandbox_sca_sessions::created_at,
    sandbox_sca_sessions::decided_at,
);

fn of(r: Row) -> ScaSession {
    ScaSession {
        id: r.0,
        merchant: r.1,
        idempotency_key: r.2,
        card_token: r.3,
        outcome: r.4,
        created_at: from_db_time(r.5),
        decided_at: opt_from_db_time(r.6),
    }
}

/// Inserts the session; [`StoreError::Conflict`] when the merchant already
/// has one under this key.
pub fn insert(conn: &mut DbConnection, s: &ScaSession) -> Result<(), StoreError> {
    diesel::insert_into(sandbox_sca_sessions::table)
        .values((
            sandbox_sca_sessions::id.eq(&s.id),
            sandbox_sca_sessions::merchant.eq(&s.merchant),
            sandbox_sca_sessions::idempotency_key.eq(&s.idempotency_key),
            sandbox_sca_sessions::card_token.eq(&s.card_token),
            sandbox_sca_sessions::created_at.eq(to_db_time(s.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_by_key(
    conn: &mut DbConnection,
    merchant: &str,
    key: &str,
) -> Result<Option<ScaSession>, StoreError> {
    Ok(sandbox_sca_sessions::table
        .filter(sandbox_sca_sessions::merchant.eq(merchant))
        .filter(sandbox_sca_sessions::idempotency_key.eq(key))
        .select(COLUMNS)
        .first::<Row>(conn)
        .optional()?
        .map(of))
}

/// Session `id`, of any merchant (the issuer's page knows only the id).
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<ScaSession>, StoreError> {
    Ok(sandbox_sca_sessions::table
        .filter(sandbox_sca_sessions::id.eq(id))
        .select(COLUMNS)
        .first::<Row>(conn)
        .optional()?
        .map(of))
}

/// Records the cardholder's answer once; false when already decided.
pub fn decide(
    conn: &mut DbConnection,
    id: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        sandbox_sca_sessions::table
            .filter(sandbox_sca_sessions::id.eq(id))
            .filter(sandbox_sca_sessions::outcome.is_null()),
    )
    .set((
        sandbox_sca_sessions::outcome.eq(outcome),
        sandbox_sca_sessions::decided_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
