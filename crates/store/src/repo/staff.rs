//! The `staff_users` table.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::identity::{StaffRole, StaffUser};

use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::staff_users;

#[derive(Queryable, Selectable)]
#[diesel(table_name = staff_users)]
struct StaffRow {
    id: String,
    org_id: String,
    email: String,
    name: String,
    role: String,
    password_hash: Option<String>,
    disabled_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl TryFrom<StaffRow> for StaffUser {
    type Error = StoreError;
    fn try_from(row: StaffRow) -> Result<Self, StoreError> {
        Ok(StaffUser {
            role: StaffRole::parse(&row.role).ok_or_else(|| {
                StoreError::Database(format!("unknown staff role {:?}", row.role))
            })?,
            has_password: row.password_hash.is_some(),
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            name: row.name,
            disabled_at: opt_from_db_time(row.disabled_at),
            created_at: from_db_time(row.created_at),
        })
    }
}

/// Stores a new staff member (without password).
pub fn insert(conn: &mut DbConnection, s: &StaffUser) -> Result<(), StoreError> {
    diesel::insert_into(staff_users::table)
        .values((
            staff_users::id.eq(&s.id),
            staff_users::org_id.eq(&s.org_id),
            staff_users::email.eq(&s.email),
            staff_users::name.eq(&s.name),
            staff_users::role.eq(s.role.as_str()),
            staff_users::password_hash.eq(None::<String>),
            staff_users::disabled_at.eq(opt_to_db_time(s.disabled_at)),
            staff_users::created_at.eq(to_db_time(s.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<StaffUser, StoreError> {
    staff_users::table
        .filter(staff_users::org_id.eq(org_id))
        .filter(staff_users::id.eq(id))
        .select(StaffRow::as_select())
        .first(conn)?
        .try_into()
}

pub fn find_by_email(
    conn: &mut DbConnection,
    org_id: &str,
    email: &str,
) -> Result<StaffUser, StoreError> {
    staff_users::table
        .filter(staff_users::org_id.eq(org_id))
        .filter(staff_users::email.eq(email))
        .select(StaffRow::as_select())
        .first(conn)?
        .try_into()
}

/// Every staff member of the organization, oldest first.
pub fn list(conn: &mut DbConnection, org_id: &str) -> Result<Vec<StaffUser>, StoreError> {
    staff_users::table
        .filter(staff_users::org_id.eq(org_id))
        .order((staff_users::created_at.asc(), staff_users::id.asc()))
        .select(StaffRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StaffUser::try_from)
        .collect()
}

pub fn password_hash(conn: &mut DbConnection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(staff_users::table
        .find(id)
        .select(staff_users::password_hash)
        .first(conn)?)
}

pub fn set_password(conn: &mut DbConnection, id: &str, hash: &str) -> Result<(), StoreError> {
    diesel::update(staff_users::table.find(id))
        .set(staff_users::password_hash.eq(hash))
        .execute(conn)?;
    Ok(())
}

pub fn set_role(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    role: StaffRole,
) -> Result<(), StoreError> {
    let n = diesel::update(
        staff_users::table
            .filter(staff_users::org_id.eq(org_id))
            .filter(staff_users::id.eq(id)),
    )
    .set(staff_users::role.eq(role.as_str()))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn set_disabled(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let n = diesel::update(
        staff_users::table
            .filter(staff_users::org_id.eq(org_id))
            .filter(staff_users::id.eq(id)),
    )
    .set(staff_users::disabled_at.eq(opt_to_db_time(at)))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// How many admins of the organization can work: enabled, and with a
/// password set (a member who never used their setup token cannot sign in).
pub fn count_working_admins(conn: &mut DbConnection, org_id: &str) -> Result<i64, StoreError> {
    Ok(staff_users::table
        .filter(staff_users::org_id.eq(org_id))
        .filter(staff_users::role.eq("admin"))
        .filter(staff_users::disabled_at.is_null())
        .filter(staff_users::password_hash.is_not_null())
        .count()
        .get_result(conn)?)
}

/// Locks the member until the end of the transaction (PostgreSQL row lock;
/// SQLite writers are already serialized by `BEGIN IMMEDIATE`) and reads
/// them. Call it inside the transaction.
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<StaffUser, StoreError> {
    if let DbConnection::Postgresql(pg) = conn {
        staff_users::table
            .filter(staff_users::org_id.eq(org_id))
            .filter(staff_users::id.eq(id))
            .select(staff_users::id)
            .for_update()
            .first::<String>(pg)?;
    }
    get(conn, org_id, id)
}

/// Locks the organization's staff until the end of the transaction (the
/// organization's row, on PostgreSQL; SQLite writers are already serialized
/// by `BEGIN IMMEDIATE`), so that two changes deciding on "is another admin
/// left?" run one after the other. Call it first in the transaction.
pub fn lock_organization(conn: &mut DbConnection, org_id: &str) -> Result<(), StoreError> {
    use crate::schema::organizations;
    if let DbConnection::Postgresql(pg) = conn {
        organizations::table
            .filter(organizations::id.eq(org_id))
            .select(organizations::id)
            .for_update()
            .first::<String>(pg)?;
    }
    Ok(())
}
