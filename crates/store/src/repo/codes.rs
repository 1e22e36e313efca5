//! The `one_time_codes` table: codes sent by SMS or e-mail, reset links,
//! activation codes and setup tokens, all stored as keyed hashes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::identity::SubjectKind;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::one_time_codes;

/// A one-time secret's record (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode {
    pub id: String,
    pub org_id: String,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    /// What the code may be used for (`login`, `register`, `password_reset`, ...).
    pub purpose: String,
    pub code_hash: String,
    /// `sms`, `email` or `letter`.
    pub channel: String,
    /// The masked destination, for display.
    pub destination: String,
    /// A keyed hash of the raw destination, for rate limiting.
    pub destination_key: String,
    /// Data bound to the code (e.g. the password chosen at registration, hashed).
    pub payload: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = one_time_codes)]
struct Row {
    id: String,
    org_id: String,
    subject_kind: String,
    subject_id: String,
    purpose: String,
    code_hash: String,
    channel: String,
    destination: String,
    destination_key: String,
    payload: Option<String>,
    attempts: i32,
    max_attempts: i32,
    expires_at: NaiveDateTime,
    consumed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl TryFrom<Row> for OneTimeCode {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(OneTimeCode {
            subject_kind: SubjectKind::parse(&r.subject_kind).ok_or_else(|| {
                StoreError::Database(format!("unknown subject kind {:?}", r.subject_kind))
            })?,
            id: r.id,
            org_id: r.org_id,
            subject_id: r.subject_id,
            purpose: r.purpose,
            code_hash: r.code_hash,
            channel: r.channel,
            destination: r.destination,
            destination_key: r.destination_key,
            payload: r.payload,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            expires_at: from_db_time(r.expires_at),
            consumed_at: opt_from_db_time(r.consumed_at),
            created_at: from_db_time(r.created_at),
        })
    }
}

pub fn insert(conn: &mut DbConnection, c: &OneTimeCode) -> Result<(), StoreError> {
    diesel::insert_into(one_time_codes::table)
        .values((
            one_time_codes::id.eq(&c.id),
            one_time_codes::org_id.eq(&c.org_id),
            one_time_codes::subject_kind.eq(c.subject_kind.as_str()),
            one_time_codes::subject_id.eq(&c.subject_id),
            one_time_codes::purpose.eq(&c.purpose),
            one_time_codes::code_hash.eq(&c.code_hash),
            one_time_codes::channel.eq(&c.channel),
            one_time_codes::destination.eq(&c.destination),
            one_time_codes::destination_key.eq(&c.destination_key),
            one_time_codes::payload.eq(&c.payload),
            one_time_codes::attempts.eq(c.attempts),
            one_time_codes::max_attempts.eq(c.max_attempts),
            one_time_codes::expires_at.eq(to_db_time(c.expires_at)),
            one_time_codes::created_at.eq(to_db_time(c.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest code of this purpose for the subject that is neither spent
/// nor expired nor out of tries.
pub fn latest_usable(
    conn: &mut DbConnection,
    subject_id: &str,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<Option<OneTimeCode>, StoreError> {
    one_time_codes::table
        .filter(one_time_codes::subject_id.eq(subject_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .filter(one_time_codes::consumed_at.is_null())
        .filter(one_time_codes::expires_at.gt(to_db_time(now)))
        .order((one_time_codes::created_at.desc(), one_time_codes::id.desc()))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(OneTimeCode::try_from)
        .transpose()
}

/// The code of this purpose whose hash is `code_hash` (long random tokens:
/// reset links, activation codes, setup tokens).
pub fn find_by_hash(
    conn: &mut DbConnection,
    purpose: &str,
    code_hash: &str,
) -> Result<Option<OneTimeCode>, StoreError> {
    one_time_codes::table
        .filter(one_time_codes::code_hash.eq(code_hash))
        .filter(one_time_codes::purpose.eq(purpose))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(OneTimeCode::try_from)
        .transpose()
}

/// Reserves one entry of the code before it is compared: one conditional
/// `UPDATE` that counts it only while the code is unspent and has tries
/// left, so that N entries sent at the same time, on any number of nodes,
/// never get more than `max_attempts` comparisons. Returns the new count,
/// or `None` when nothing was reserved (out of tries, or spent meanwhile).
pub fn reserve_attempt(conn: &mut DbConnection, id: &str) -> Result<Option<i32>, StoreError> {
    #[derive(QueryableByName)]
    struct Reserved {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
    }
    // One statement that also returns this entry's own count: a read after
    // the update could see another entry's increment as well.
    let sql = |placeholder: &str| {
        format!(
            "UPDATE one_time_codes SET attempts = attempts + 1 \
             WHERE id = {placeholder} AND attempts < max_attempts AND consumed_at IS NULL \
             RETURNING attempts"
        )
    };
    let rows: Vec<Reserved> = match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(sql("$1"))
            .bind::<diesel::sql_types::Text, _>(id)
            .load(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(sql("?"))
            .bind::<diesel::sql_types::Text, _>(id)
            .load(lite)?,
    };
    Ok(rows.first().map(|r| r.attempts))
}

/// Spends the code; false if it was already spent (a concurrent use won).
pub fn consume(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = diesel::update(
        one_time_codes::table
            .filter(one_time_codes::id.eq(id))
            .filter(one_time_codes::consumed_at.is_null()),
    )
    .set(one_time_codes::consumed_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Voids every unspent code of this purpose for the subject (a new one
/// replaces them).
pub fn void_all(
    conn: &mut DbConnection,
    subject_id: &str,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        one_time_codes::table
            .filter(one_time_codes::subject_id.eq(subject_id))
            .filter(one_time_codes::purpose.eq(purpose))
            .filter(one_time_codes::consumed_at.is_null()),
    )
    .set(one_time_codes::consumed_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(())
}
