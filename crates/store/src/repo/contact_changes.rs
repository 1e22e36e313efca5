//! The `contact_changes` table: a new e-mail or mobile asked for by staff
//! or an API key for a customer who has portal access. The value waits
//! here, out of the `customers` row (so no sign-in, reset or code can use
//! it), until the customer confirms it with the code sent to it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::contact_changes;

pub const PENDING: &str = "pending";
pub const CONFIRMED: &str = "confirmed";
pub const SUPERSEDED: &str = "superseded";

/// A requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    /// `email` or `mobile`.
    pub field: String,
    pub new_value: String,
    /// `staff` or `api_key`.
    pub requested_by: String,
    pub requester_id: String,
    /// Keyed hash of the code sent to the new contact.
    pub code_hash: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = contact_changes)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    field: String,
    new_value: String,
    requested_by: String,
    requester_id: String,
    code_hash: String,
    attempts: i32,
    max_attempts: i32,
    expires_at: NaiveDateTime,
    status: String,
    created_at: NaiveDateTime,
    decided_at: Option<NaiveDateTime>,
}

impl From<Row> for ContactChange {
    fn from(r: Row) -> Self {
        ContactChange {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            field: r.field,
            new_value: r.new_value,
            requested_by: r.requested_by,
            requester_id: r.requester_id,
            code_hash: r.code_hash,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            expires_at: from_db_time(r.expires_at),
            status: r.status,
            created_at: from_db_time(r.created_at),
            decided_at: opt_from_db_time(r.decided_at),
        }
    }
}

/// Stores a new pending change, superseding any pending change of the same
/// field for the customer.
pub fn insert(conn: &mut DbConnection, c: &ContactChange) -> Result<(), StoreError> {
    diesel::update(
        contact_changes::table
            .filter(contact_changes::customer_id.eq(&c.customer_id))
            .filter(contact_changes::field.eq(&c.field))
            .filter(contact_changes::status.eq(PENDING)),
    )
    .set((
        contact_changes::status.eq(SUPERSEDED),
        contact_changes::decided_at.eq(to_db_time(c.created_at)),
    ))
    .execute(conn)?;
    diesel::insert_into(contact_changes::table)
        .values((
            contact_changes::id.eq(&c.id),
            contact_changes::org_id.eq(&c.org_id),
            contact_changes::customer_id.eq(&c.customer_id),
            contact_changes::field.eq(&c.field),
            contact_changes::new_value.eq(&c.new_value),
            contact_changes::requested_by.eq(&c.requested_by),
            contact_changes::requester_id.eq(&c.requester_id),
            contact_changes::code_hash.eq(&c.code_hash),
            contact_changes::attempts.eq(c.attempts),
            contact_changes::max_attempts.eq(c.max_attempts),
            contact_changes::expires_at.eq(to_db_time(c.expires_at)),
            contact_changes::status.eq(&c.status),
            contact_changes::created_at.eq(to_db_time(c.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The customer's change `id` (any status).
pub fn get(
    conn: &mut DbConnection,
    customer_id: &str,
    id: &str,
) -> Result<ContactChange, StoreError> {
    Ok(contact_changes::table
        .filter(contact_changes::customer_id.eq(customer_id))
        .filter(contact_changes::id.eq(id))
        .select(Row::as_select())
        .first::<Row>(conn)?
        .into())
}

/// The pending, unexpired changes of these customers, newest first, at
/// most `limit`, after the change `after` (its `created_at` and id) when
/// given.
pub fn pending(
    conn: &mut DbConnection,
    customer_ids: &[String],
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<ContactChange>, StoreError> {
    let mut query = contact_changes::table
        .filter(contact_changes::customer_id.eq_any(customer_ids))
        .filter(contact_changes::status.eq(PENDING))
        .filter(contact_changes::expires_at.gt(to_db_time(now)))
        .order((
            contact_changes::created_at.desc(),
            contact_changes::id.desc(),
        ))
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        query = query.filter(
            contact_changes::created_at
                .lt(at)
                .or(contact_changes::created_at
                    .eq(at)
                    .and(contact_changes::id.lt(id))),
        );
    }
    Ok(query
        .load::<Row>(conn)?
        .into_iter()
        .map(ContactChange::from)
        .collect())
}

/// Reserves one attempt at the change's code, atomically: the attempt's
/// number (1 to `max_attempts`) when one was left (and is now used), `None`
/// when the change is not pending, has expired, or has no attempts left. N
/// concurrent confirmations never compare more than `max_attempts` codes,
/// and each knows how many attempts its own leaves.
pub fn reserve_attempt(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<i32>, StoreError> {
    // The update and the read back are one transaction: the row stays
    // locked by this attempt until it commits, so the number read is this
    // attempt's own, whatever runs at the same time.
    crate::transaction(conn, |conn| {
        let n = diesel::update(
            contact_changes::table
                .filter(contact_changes::id.eq(id))
                .filter(contact_changes::status.eq(PENDING))
                .filter(contact_changes::expires_at.gt(to_db_time(now)))
                .filter(contact_changes::attempts.lt(contact_changes::max_attempts)),
        )
        .set(contact_changes::attempts.eq(contact_changes::attempts + 1))
        .execute(conn)?;
        if n != 1 {
            return Ok(None);
        }
        let attempts: i32 = contact_changes::table
            .find(id)
            .select(contact_changes::attempts)
            .first(conn)?;
        Ok(Some(attempts))
    })
}

/// Marks the change confirmed; false when it was no longer pending (a
/// concurrent confirmation won).
pub fn confirm(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = diesel::update(
        contact_changes::table
            .filter(contact_changes::id.eq(id))
            .filter(contact_changes::status.eq(PENDING)),
    )
    .set((
        contact_changes::status.eq(CONFIRMED),
        contact_changes::decided_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
