//! The `charges` table: every charge sent to the payment gateway, written
//! before the call (status `pending`) and completed after it, so that a
//! crash in between is found and reconciled with the same idempotency key.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::{Currency, Money};

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::charges;

/// A charge as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub org_id: String,
    pub order_id: String,
    pub instalment_id: Option<String>,
    /// Also sent to the gateway: the same key never charges twice.
    pub idempotency_key: String,
    pub amount: Money,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub gateway_charge_id: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = charges)]
struct Row {
    id: String,
    org_id: String,
    order_id: String,
    instalment_id: Option<String>,
    idempotency_key: String,
    amount: i64,
    currency: String,
    status: String,
    gateway_charge_id: Option<String>,
    failure_code: Option<String>,
    created_at: NaiveDateTime,
}

impl TryFrom<Row> for Charge {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Charge {
            amount: Money::new(
                r.amount,
                Currency::parse(&r.currency)
                    .map_err(|_| StoreError::Database("stored currency is invalid".into()))?,
            ),
            id: r.id,
            org_id: r.org_id,
            order_id: r.order_id,
            instalment_id: r.instalment_id,
            idempotency_key: r.idempotency_key,
            status: r.status,
            gateway_charge_id: r.gateway_charge_id,
            failure_code: r.failure_code,
            created_at: from_db_time(r.created_at),
        })
    }
}

/// Records a charge about to be sent (status `pending`). A second record
/// with the same idempotency key is a `Conflict`.
pub fn insert_pending(conn: &mut DbConnection, c: &Charge) -> Result<(), StoreError> {
    diesel::insert_into(charges::table)
        .values((
            charges::id.eq(&c.id),
            charges::org_id.eq(&c.org_id),
            charges::order_id.eq(&c.order_id),
            charges::instalment_id.eq(&c.instalment_id),
            charges::idempotency_key.eq(&c.idempotency_key),
            charges::amount.eq(c.amount.amount),
            charges::currency.eq(c.amount.currency.as_str()),
            charges::status.eq("pending"),
            charges::created_at.eq(to_db_time(c.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The charge recorded under this idempotency key, if any.
pub fn find_by_key(conn: &mut DbConnection, key: &str) -> Result<Option<Charge>, StoreError> {
    charges::table
        .filter(charges::idempotency_key.eq(key))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(Charge::try_from)
        .transpose()
}

/// Completes a charge with the gateway's answer.
pub fn complete(
    conn: &mut DbConnection,
    id: &str,
    succeeded: bool,
    gateway_charge_id: Option<&str>,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(charges::table.find(id))
        .set((
            charges::status.eq(if succeeded { "succeeded" } else { "failed" }),
            charges::gateway_charge_id.eq(gateway_charge_id),
            charges::failure_code.eq(failure_code),
            charges::completed_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Charges still `pending` created before `before`: a run crashed between
/// the gateway call and its record; replay them with their key.
pub fn stale_pending(
    conn: &mut DbConnection,
    before: DateTime<Utc>,
) -> Result<Vec<Charge>, StoreError> {
    charges::table
        .filter(charges::status.eq("pending"))
        .filter(charges::created_at.lt(to_db_time(before)))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Charge::try_from)
        .collect()
}

/// Successful charges of an order, in order (for tests and reports).
pub fn succeeded_for_order(
    conn: &mut DbConnection,
    order_id: &str,
) -> Result<Vec<Charge>, StoreError> {
    charges::table
        .filter(charges::order_id.eq(order_id))
        .filter(charges::status.eq("succeeded"))
        .order((charges::created_at.asc(), charges::id.asc()))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Charge::try_from)
        .collect()
}
