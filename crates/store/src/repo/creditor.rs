//! The `creditor_settings` table: who collects SEPA direct debits for an
//! organization (its name, address, creditor identifier and account) and
//! how long before a collection the debtor is told of it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::creditor_settings;

/// Days between the pre-notification and the collection when not set.
pub const DEFAULT_PRENOTIFICATION_DAYS: u32 = 14;

/// An organization's creditor settings. Values are stored as the API
/// validated and normalized them (IBAN and BIC without spaces, upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditorSettings {
    pub org_id: String,
    pub name: String,
    /// The address, one entry per line.
    pub address: Vec<String>,
    /// The SEPA creditor identifier (ICS).
    pub creditor_id: String,
    /// The creditor's own account, credited by the collections.
    pub iban: String,
    pub bic: String,
    /// Days between the pre-notification e-mail and the collection.
    pub prenotification_days: u32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = creditor_settings)]
struct Row {
    org_id: String,
    name: String,
    address: String,
    creditor_id: String,
    iban: String,
    bic: String,
    prenotification_days: i32,
    updated_at: NaiveDateTime,
}

/// The organization's creditor settings, `None` until they are first set.
pub fn get(conn: &mut DbConnection, org_id: &str) -> Result<Option<CreditorSettings>, StoreError> {
    let row: Option<Row> = creditor_settings::table
        .find(org_id)
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|r| CreditorSettings {
        org_id: r.org_id,
        name: r.name,
        address: if r.address.is_empty() {
            Vec::new()
        } else {
            r.address.split('\n').map(str::to_owned).collect()
        },
        creditor_id: r.creditor_id,
        iban: r.iban,
        bic: r.bic,
        prenotification_days: u32::try_from(r.prenotification_days)
            .unwrap_or(DEFAULT_PRENOTIFICATION_DAYS),
        updated_at: from_db_time(r.updated_at),
    }))
}

/// Stores (creates or replaces) the organization's creditor settings;
/// `updated_at` is set to `now`.
pub fn put(
    conn: &mut DbConnection,
    settings: &CreditorSettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let address = settings.address.join("\n");
    let values = (
        creditor_settings::name.eq(&settings.name),
        creditor_settings::address.eq(&address),
        creditor_settings::creditor_id.eq(&settings.creditor_id),
        creditor_settings::iban.eq(&settings.iban),
        creditor_settings::bic.eq(&settings.bic),
        creditor_settings::prenotification_days
            .eq(i32::try_from(settings.prenotification_days).unwrap_or(i32::MAX)),
        creditor_settings::updated_at.eq(to_db_time(now)),
    );
    let updated = diesel::update(creditor_settings::table.find(&settings.org_id))
        .set(values)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(creditor_settings::table)
            .values((creditor_settings::org_id.eq(&settings.org_id), values))
            .execute(conn)?;
    }
    Ok(())
}
