//! The `used_challenges` table: proof-of-work challenges already spent, so
//! that a solved challenge works once, on every node.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::to_db_time;
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::used_challenges;

/// Marks the challenge used; false if it already was. Not to be called
/// inside a transaction: on PostgreSQL the refused insert aborts it.
pub fn spend(
    conn: &mut DbConnection,
    id: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match diesel::insert_into(used_challenges::table)
        .values((
            used_challenges::id.eq(id),
            used_challenges::expires_at.eq(to_db_time(expires_at)),
        ))
        .execute(conn)
        .map_err(StoreError::from)
    {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Forgets challenges that have expired anyway.
pub fn purge(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        used_challenges::table.filter(used_challenges::expires_at.lt(to_db_time(now))),
    )
    .execute(conn)?)
}
