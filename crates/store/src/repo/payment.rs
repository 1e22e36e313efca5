//! The `payment_settings` and `contact_channels` tables: what an
//! organization decides about debits, card changes and how customers reach
//! it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::card::{CardBrand, DEFAULT_ACCEPTED_BRANDS, DEFAULT_NOTICE_DAYS};
use guichet_domain::schedule::RetryPolicy;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{contact_channels, payment_settings};

/// An organization's payment settings (defaults when never set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettings {
    pub org_id: String,
    /// Shown as a `tel:` link when a payment fails.
    pub collections_phone: Option<String>,
    /// Days before the next debit within which the card cannot change.
    pub card_change_notice_days: u32,
    pub accepted_brands: Vec<CardBrand>,
    pub retry: RetryPolicy,
    /// Whether customers may pay part of an invoice.
    pub invoice_partial_payments: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl PaymentSettings {
    /// The settings of an organization that never set any.
    pub fn defaults(org_id: &str) -> Self {
        PaymentSettings {
            org_id: org_id.to_owned(),
            collections_phone: None,
            card_change_notice_days: DEFAULT_NOTICE_DAYS,
            accepted_brands: DEFAULT_ACCEPTED_BRANDS.to_vec(),
            retry: RetryPolicy::default(),
            invoice_partial_payments: false,
            updated_at: None,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payment_settings)]
struct Row {
    org_id: String,
    collections_phone: Option<String>,
    card_change_notice_days: i32,
    accepted_brands: String,
    retry_count: i32,
    retry_delay_days: i32,
    updated_at: NaiveDateTime,
    invoice_partial_payments: bool,
}

/// The organization's payment settings.
pub fn get(conn: &mut DbConnection, org_id: &str) -> Result<PaymentSettings, StoreError> {
    let row: Option<Row> = payment_settings::table
        .find(org_id)
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    Ok(match row {
        None => PaymentSettings::defaults(org_id),
        Some(r) => PaymentSettings {
            org_id: r.org_id,
            collections_phone: r.collections_phone,
            card_change_notice_days: u32::try_from(r.card_change_notice_days).unwrap_or(0),
            accepted_brands: r
                .accepted_brands
                .split(',')
                .filter_map(CardBrand::parse)
                .collect(),
            retry: RetryPolicy {
                retries: u32::try_from(r.retry_count).unwrap_or(0),
                delay_days: u32::try_from(r.retry_delay_days).unwrap_or(0),
            },
            invoice_partial_payments: r.invoice_partial_payments,
            updated_at: Some(from_db_time(r.updated_at)),
        },
    })
}

/// Stores the organization's payment settings.
pub fn put(
    conn: &mut DbConnection,
    settings: &PaymentSettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let brands = settings
        .accepted_brands
        .iter()
        .map(|b| b.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let values = (
        payment_settings::collections_phone.eq(&settings.collections_phone),
        payment_settings::card_change_notice_days
            .eq(i32::try_from(settings.card_change_notice_days).unwrap_or(i32::MAX)),
        payment_settings::accepted_brands.eq(&brands),
        payment_settings::retry_count.eq(i32::try_from(settings.retry.retries).unwrap_or(i32::MAX)),
        payment_settings::retry_delay_days
            .eq(i32::try_from(settings.retry.delay_days).unwrap_or(i32::MAX)),
        payment_settings::updated_at.eq(to_db_time(now)),
        payment_settings::invoice_partial_payments.eq(settings.invoice_partial_payments),
    );
    let updated = diesel::update(payment_settings::table.find(&settings.org_id))
        .set(values)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(payment_settings::table)
            .values((payment_settings::org_id.eq(&settings.org_id), values))
            .execute(conn)?;
    }
    Ok(())
}

/// The organization's contact channels: its time zone and the channels as
/// the JSON document the API accepted.
pub fn contact_channels(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(contact_channels::table
        .find(org_id)
        .select((contact_channels::time_zone, contact_channels::channels))
        .first(conn)
        .optional()?)
}

/// Replaces the organization's contact channels.
pub fn put_contact_channels(
    conn: &mut DbConnection,
    org_id: &str,
    time_zone: &str,
    channels_json: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = diesel::update(contact_channels::table.find(org_id))
        .set((
            contact_channels::time_zone.eq(time_zone),
            contact_channels::channels.eq(channels_json),
            contact_channels::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(contact_channels::table)
            .values((
                contact_channels::org_id.eq(org_id),
                contact_channels::time_zone.eq(time_zone),
                contact_channels::channels.eq(channels_json),
                contact_channels::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
    }
    Ok(())
}
