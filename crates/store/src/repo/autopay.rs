//! The `customer_autopay` table: whether a customer's open invoices are
//! charged on their due date, and with which saved method. No row means
//! off. Writers lock the customer first (`customers::lock`).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::payment_methods::{self, MethodDetails, PaymentMethod};
use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::{OptionalExt, StoreError};
use crate::schema::{customer_autopay, mandates};

/// A customer's autopay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerAutopay {
    pub enabled: bool,
    /// The method autopay uses (kept while it is off, cleared when the
    /// method is removed).
    pub payment_method_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The customer's autopay, if it was ever set.
pub fn get(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Option<CustomerAutopay>, StoreError> {
    let row: Option<(bool, Option<String>, NaiveDateTime)> = customer_autopay::table
        .filter(customer_autopay::org_id.eq(org_id))
        .filter(customer_autopay::customer_id.eq(customer_id))
        .select((
            customer_autopay::enabled,
            customer_autopay::payment_method_id,
            customer_autopay::updated_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(enabled, payment_method_id, at)| CustomerAutopay {
        enabled,
        payment_method_id,
        updated_at: from_db_time(at),
    }))
}

/// Sets the customer's autopay (insert or replace). Turning it on without
/// a method is refused by the table (`CHECK`).
pub fn set(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    enabled: bool,
    payment_method_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = diesel::update(
        customer_autopay::table
            .filter(customer_autopay::org_id.eq(org_id))
            .filter(customer_autopay::customer_id.eq(customer_id)),
    )
    .set((
        customer_autopay::enabled.eq(enabled),
        customer_autopay::payment_method_id.eq(payment_method_id),
        customer_autopay::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if n == 0 {
        diesel::insert_into(customer_autopay::table)
            .values((
                customer_autopay::org_id.eq(org_id),
                customer_autopay::customer_id.eq(customer_id),
                customer_autopay::enabled.eq(enabled),
                customer_autopay::payment_method_id.eq(payment_method_id),
                customer_autopay::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The method an autopay charge of this customer uses now, with what the
/// charge needs (`MethodDetails::Card`'s token for the gateway, or
/// `MethodDetails::SepaDebit`'s mandate id for a pain.008 collection):
/// `None` when autopay is off, its method was removed, or its mandate is
/// no longer signed. An expired card is returned: the charge fails at the
/// gateway and the run's failure path tells the customer.
pub fn effective_for_charge(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Option<PaymentMethod>, StoreError> {
    let Some(autopay) = get(conn, org_id, customer_id)? else {
        return Ok(None);
    };
    let (true, Some(method_id)) = (autopay.enabled, autopay.payment_method_id) else {
        return Ok(None);
    };
    let Some(method) = payment_methods::get(conn, org_id, customer_id, &method_id).optional()?
    else {
        return Ok(None);
    };
    if let MethodDetails::SepaDebit { mandate_id, .. } = &method.details {
        let status: Option<String> = mandates::table
            .filter(mandates::org_id.eq(org_id))
            .filter(mandates::id.eq(mandate_id))
            .select(mandates::status)
            .first(conn)
            .optional()?;
        if status.as_deref() != Some("signed") {
            return Ok(None);
        }
    }
    Ok(Some(method))
}
