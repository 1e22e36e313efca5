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
    /// What the charge is for: [`INSTALMENT`] or [`REGULARIZATION`].
    pub purpose: String,
    /// The client request that asked for it: its idempotency scope and key.
    pub request: Option<(String, String)>,
    /// The recovery point: what finishing the operation needs (JSON), for
    /// the request's retry or the reconciliation job.
    pub details: Option<String>,
}

/// [`Charge::purpose`] of a debit run's charge of an instalment.
pub const INSTALMENT: &str = "instalment";
/// [`Charge::purpose`] of the first payment of a regularization.
pub const REGULARIZATION: &str = "regularization";

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
    purpose: String,
    request_scope: Option<String>,
    request_key: Option<String>,
    details: Option<String>,
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
            purpose: r.purpose,
            request: r.request_scope.zip(r.request_key),
            details: r.details,
        })
    }
}

/// A charge about to be sent, as inserted (status `pending`).
#[derive(Insertable)]
#[diesel(table_name = charges)]
struct PendingRow<'a> {
    id: &'a str,
    org_id: &'a str,
    order_id: &'a str,
    instalment_id: Option<&'a str>,
    idempotency_key: &'a str,
    amount: i64,
    currency: &'a str,
    status: &'a str,
    created_at: NaiveDateTime,
    purpose: &'a str,
    request_scope: Option<&'a str>,
    request_key: Option<&'a str>,
    details: Option<&'a str>,
}

impl<'a> From<&'a Charge> for PendingRow<'a> {
    fn from(c: &'a Charge) -> Self {
        PendingRow {
            id: &c.id,
            org_id: &c.org_id,
            order_id: &c.order_id,
            instalment_id: c.instalment_id.as_deref(),
            idempotency_key: &c.idempotency_key,
            amount: c.amount.amount,
            currency: c.amount.currency.as_str(),
            status: "pending",
            created_at: to_db_time(c.created_at),
            purpose: &c.purpose,
            request_scope: c.request.as_ref().map(|(scope, _)| scope.as_str()),
            request_key: c.request.as_ref().map(|(_, key)| key.as_str()),
            details: c.details.as_deref(),
        }
    }
}

/// Records a charge about to be sent (status `pending`). A second record
/// with the same idempotency key is a `Conflict`.
pub fn insert_pending(conn: &mut DbConnection, c: &Charge) -> Result<(), StoreError> {
    diesel::insert_into(charges::table)
        .values(PendingRow::from(c))
        .execute(conn)?;
    Ok(())
}

/// Rows per multi-row statement or `IN` list: within both backends' limits
/// on bound parameters (SQLite 32 766, PostgreSQL 65 535).
const ROWS_PER_STATEMENT: usize = 1_000;

/// Records charges about to be sent (status `pending`). A key already
/// recorded fails with `Conflict`; run it in a transaction so that nothing
/// is recorded then. On PostgreSQL, multi-row inserts: one round trip per
/// `ROWS_PER_STATEMENT` charges. On SQLite, in the process, there is no
/// round trip to save: the one-row insert, whose prepared statement is
/// reused (measured as fast as a multi-row insert, parsed each time).
pub fn insert_pending_many(conn: &mut DbConnection, list: &[&Charge]) -> Result<(), StoreError> {
    let DbConnection::Postgresql(pg) = conn else {
        for charge in list {
            insert_pending(conn, charge)?;
        }
        return Ok(());
    };
    for part in list.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<PendingRow<'_>> = part.iter().map(|c| PendingRow::from(*c)).collect();
        // On the inner connection: diesel's MultiConnection inserts one row
        // at a time.
        diesel::insert_into(charges::table)
            .values(&rows)
            .execute(pg)?;
    }
    Ok(())
}

/// The charges recorded under these idempotency keys (those that exist).
pub fn find_by_keys(conn: &mut DbConnection, keys: &[String]) -> Result<Vec<Charge>, StoreError> {
    let mut found = Vec::new();
    for part in keys.chunks(ROWS_PER_STATEMENT) {
        // Boxed, so not kept as a prepared statement: PostgreSQL would
        // settle on a generic plan made while the table was small (a
        // sequential scan) and keep it while the run fills the table,
        // unless something analyzes it meanwhile.
        let rows: Vec<Row> = charges::table
            .filter(charges::idempotency_key.eq_any(part))
            .select(Row::as_select())
            .into_boxed()
            .load(conn)?;
        for row in rows {
            found.push(Charge::try_from(row)?);
        }
    }
    Ok(found)
}

/// The gateway's answer about one charge, for [`complete_many`].
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    pub id: &'a str,
    pub succeeded: bool,
    pub gateway_charge_id: Option<&'a str>,
    pub failure_code: Option<&'a str>,
}

/// `WITH v (id, status, gateway_charge_id, failure_code) AS (VALUES ...)
/// UPDATE charges ...` for `rows` charges: `$1` is the completion time,
/// then four parameters per charge.
fn completions_sql(rows: usize) -> String {
    let mut sql = String::from("WITH v (id, status, gateway_charge_id, failure_code) AS (VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let n = 2 + row * 4;
        sql.push_str(&format!("(${n}, ${}, ${}, ${})", n + 1, n + 2, n + 3));
    }
    sql.push_str(
        ") UPDATE charges SET status = v.status, gateway_charge_id = v.gateway_charge_id, \
         failure_code = v.failure_code, completed_at = $1 FROM v WHERE charges.id = v.id",
    );
    sql
}

/// Completes charges with the gateway's answers: on PostgreSQL with one
/// `UPDATE ... FROM (VALUES ...)` per `ROWS_PER_STATEMENT` charges, on the
/// inner connection; on SQLite with one prepared `UPDATE` per charge (see
/// [`insert_pending_many`]).
pub fn complete_many(
    conn: &mut DbConnection,
    list: &[Completion<'_>],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{Nullable, Text, Timestamp};
    let DbConnection::Postgresql(pg) = conn else {
        for c in list {
            complete(
                conn,
                c.id,
                c.succeeded,
                c.gateway_charge_id,
                c.failure_code,
                now,
            )?;
        }
        return Ok(());
    };
    for part in list.chunks(ROWS_PER_STATEMENT) {
        let mut query = diesel::sql_query(completions_sql(part.len()))
            .into_boxed()
            .bind::<Timestamp, _>(to_db_time(now));
        for c in part {
            query = query
                .bind::<Text, _>(c.id)
                .bind::<Text, _>(if c.succeeded { "succeeded" } else { "failed" })
                .bind::<Nullable<Text>, _>(c.gateway_charge_id)
                .bind::<Nullable<Text>, _>(c.failure_code);
        }
        query.execute(pg)?;
    }
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

/// The charge `id`.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Charge, StoreError> {
    charges::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .map_err(StoreError::from)
        .and_then(Charge::try_from)
}
