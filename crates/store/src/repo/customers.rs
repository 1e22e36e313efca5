//! The `customers` table. Every query is scoped to one organization.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::Locale;
use guichet_domain::identity::Customer;

use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::customers;

#[derive(Queryable, Selectable)]
#[diesel(table_name = customers)]
struct CustomerRow {
    id: String,
    org_id: String,
    email: String,
    name: String,
    mobile: Option<String>,
    locale: String,
    external_ref: Option<String>,
    registered_at: Option<NaiveDateTime>,
    blocked_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            name: row.name,
            mobile: row.mobile,
            locale: Locale::parse(&row.locale).unwrap_or_default(),
            external_ref: row.external_ref,
            registered_at: opt_from_db_time(row.registered_at),
            blocked_at: opt_from_db_time(row.blocked_at),
            created_at: from_db_time(row.created_at),
            updated_at: from_db_time(row.updated_at),
        }
    }
}

/// Stores a new customer; an e-mail already used in the organization is a
/// `Conflict`.
pub fn insert(conn: &mut DbConnection, c: &Customer) -> Result<(), StoreError> {
    diesel::insert_into(customers::table)
        .values((
            customers::id.eq(&c.id),
            customers::org_id.eq(&c.org_id),
            customers::email.eq(&c.email),
            customers::name.eq(&c.name),
            customers::mobile.eq(&c.mobile),
            customers::locale.eq(c.locale.as_str()),
            customers::external_ref.eq(&c.external_ref),
            customers::password_hash.eq(None::<String>),
            customers::registered_at.eq(opt_to_db_time(c.registered_at)),
            customers::blocked_at.eq(opt_to_db_time(c.blocked_at)),
            customers::created_at.eq(to_db_time(c.created_at)),
            customers::updated_at.eq(to_db_time(c.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The customer `id` of organization `org_id`.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Customer, StoreError> {
    Ok(customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::id.eq(id))
        .select(CustomerRow::as_select())
        .first(conn)?
        .into())
}

/// The customer with this e-mail (lower-case) in organization `org_id`.
pub fn find_by_email(
    conn: &mut DbConnection,
    org_id: &str,
    email: &str,
) -> Result<Customer, StoreError> {
    Ok(customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::email.eq(email))
        .select(CustomerRow::as_select())
        .first(conn)?
        .into())
}

/// A page of the organization's customers ordered by id, after `cursor`.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Customer>, StoreError> {
    let mut query = customers::table
        .filter(customers::org_id.eq(org_id))
        .select(CustomerRow::as_select())
        .order(customers::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(customers::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?.into_iter().map(Customer::from).collect())
}

/// Writes the profile fields staff may change.
pub fn update_profile(conn: &mut DbConnection, c: &Customer) -> Result<(), StoreError> {
    let n = diesel::update(
        customers::table
            .filter(customers::org_id.eq(&c.org_id))
            .filter(customers::id.eq(&c.id)),
    )
    .set((
        customers::email.eq(&c.email),
        customers::name.eq(&c.name),
        customers::mobile.eq(&c.mobile),
        customers::locale.eq(c.locale.as_str()),
        customers::external_ref.eq(&c.external_ref),
        customers::updated_at.eq(to_db_time(c.updated_at)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Blocks (`Some(at)`) or unblocks (`None`) the customer.
pub fn set_blocked(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    blocked_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let n = diesel::update(
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq(id)),
    )
    .set(customers::blocked_at.eq(opt_to_db_time(blocked_at)))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The stored password hash (PHC string), if the customer has one.
pub fn password_hash(conn: &mut DbConnection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(customers::table
        .find(id)
        .select(customers::password_hash)
        .first(conn)?)
}

/// Sets the password hash; marks the customer registered if not yet.
pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let registered: Option<NaiveDateTime> = customers::table
        .find(id)
        .select(customers::registered_at)
        .first(conn)?;
    diesel::update(customers::table.find(id))
        .set((
            customers::password_hash.eq(hash),
            customers::registered_at.eq(registered.unwrap_or(to_db_time(now))),
            customers::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Locks the customer until the end of the transaction (PostgreSQL row
/// lock; SQLite writers are already serialized by `BEGIN IMMEDIATE`) and
/// reads it, so that a sign-in deciding on `blocked_at` and a block never
/// interleave: either the block comes first and is seen, or it comes after
/// and ends the new session with the others. Call it inside the
/// transaction.
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Customer, StoreError> {
    if let DbConnection::Postgresql(pg) = conn {
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq(id))
            .select(customers::id)
            .for_update()
            .first::<String>(pg)?;
    }
    get(conn, org_id, id)
}
