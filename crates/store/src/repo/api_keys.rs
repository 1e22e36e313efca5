//! The `api_keys` table: server-to-server keys, stored as hashes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::api_keys;

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in a list.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct Row {
    id: String,
    org_id: String,
    name: String,
    prefix: String,
    created_at: NaiveDateTime,
    last_used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
}

impl From<Row> for ApiKey {
    fn from(r: Row) -> Self {
        ApiKey {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            prefix: r.prefix,
            created_at: from_db_time(r.created_at),
            last_used_at: opt_from_db_time(r.last_used_at),
            revoked_at: opt_from_db_time(r.revoked_at),
        }
    }
}

/// Stores a new key with the hash of its secret.
pub fn insert(conn: &mut DbConnection, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(&key.id),
            api_keys::org_id.eq(&key.org_id),
            api_keys::name.eq(&key.name),
            api_keys::prefix.eq(&key.prefix),
            api_keys::secret_hash.eq(secret_hash),
            api_keys::created_at.eq(to_db_time(key.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The key whose secret hashes to `secret_hash`, revoked or not.
pub fn find_by_hash(conn: &mut DbConnection, secret_hash: &str) -> Result<ApiKey, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::secret_hash.eq(secret_hash))
        .select(Row::as_select())
        .first(conn)?
        .into())
}

pub fn list(conn: &mut DbConnection, org_id: &str) -> Result<Vec<ApiKey>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::org_id.eq(org_id))
        .order((api_keys::created_at.desc(), api_keys::id.asc()))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(ApiKey::from)
        .collect())
}

pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<ApiKey, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::org_id.eq(org_id))
        .filter(api_keys::id.eq(id))
        .select(Row::as_select())
        .first(conn)?
        .into())
}

/// Revokes the key (idempotent: the first revocation time is kept).
pub fn revoke(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        api_keys::table
            .filter(api_keys::org_id.eq(org_id))
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(())
}

pub fn touch(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(to_db_time(now)))
        .execute(conn)?;
    Ok(())
}
