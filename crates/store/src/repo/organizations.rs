//! The `organizations` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use guichet_domain::identity::LoginMethods;
use guichet_domain::{Locale, Organization, Slug};

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::organizations;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
struct OrganizationRow {
    id: String,
    slug: String,
    name: String,
    locale: String,
    created_at: NaiveDateTime,
    login_methods: String,
    support_email: Option<String>,
    support_phone: Option<String>,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = StoreError;
    fn try_from(row: OrganizationRow) -> Result<Self, Self::Error> {
        Ok(Organization {
            slug: Slug::parse(&row.slug).map_err(|_| {
                StoreError::Database(format!("stored slug {:?} is invalid", row.slug))
            })?,
            locale: Locale::parse(&row.locale).unwrap_or_default(),
            login_methods: LoginMethods::parse(&row.login_methods).unwrap_or_default(),
            support_email: row.support_email,
            support_phone: row.support_phone,
            id: row.id,
            name: row.name,
            created_at: from_db_time(row.created_at),
        })
    }
}

/// Stores a new organization; a taken slug is a `Conflict`.
pub fn insert(conn: &mut DbConnection, org: &Organization) -> Result<(), StoreError> {
    let row = OrganizationRow {
        id: org.id.clone(),
        slug: org.slug.as_str().to_owned(),
        name: org.name.clone(),
        locale: org.locale.as_str().to_owned(),
        created_at: to_db_time(org.created_at),
        login_methods: org.login_methods.as_str().to_owned(),
        support_email: org.support_email.clone(),
        support_phone: org.support_phone.clone(),
    };
    diesel::insert_into(organizations::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The organization with this slug.
pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Organization, StoreError> {
    organizations::table
        .filter(organizations::slug.eq(slug))
        .select(OrganizationRow::as_select())
        .first(conn)?
        .try_into()
}

/// The organization with this id.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Organization, StoreError> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)?
        .try_into()
}

/// How many organizations exist.
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(organizations::table.count().get_result(conn)?)
}

/// Writes the settings an admin may change (not the slug).
pub fn update_settings(conn: &mut DbConnection, org: &Organization) -> Result<(), StoreError> {
    diesel::update(organizations::table.find(&org.id))
        .set((
            organizations::name.eq(&org.name),
            organizations::locale.eq(org.locale.as_str()),
            organizations::login_methods.eq(org.login_methods.as_str()),
            organizations::support_email.eq(&org.support_email),
            organizations::support_phone.eq(&org.support_phone),
        ))
        .execute(conn)?;
    Ok(())
}
