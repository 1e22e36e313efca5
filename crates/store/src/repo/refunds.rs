//! The `refunds` and `refund_parts` tables: what a cancellation owes the
//! customer back, and how it is paid (one part per charge it draws on).
//! A refund is `pending` until the refunds job settles it `paid` or
//! `failed` (with `failure_code`), at `settled_at`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::{Currency, Money};

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{orders, refund_parts, refunds};

/// A refund as recorded, with its order's organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub org_id: String,
    pub order_id: String,
    pub amount: Money,
    /// `pending`, `paid` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// One part of a refund: what it takes back from one charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPart {
    pub id: String,
    pub refund_id: String,
    /// `charges.id`.
    pub charge_id: String,
    /// Sent to the gateway: derived from (refund, charge).
    pub idempotency_key: String,
    pub amount: Money,
    /// `pending`, `succeeded`, `failed` or `cancelled` (never sent: an
    /// earlier part of the refund was refused).
    pub status: String,
    pub gateway_refund_id: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

type RefundRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|_| StoreError::Database("stored currency is invalid".into()))
}

fn refund(row: RefundRow) -> Result<Refund, StoreError> {
    let (id, org_id, order_id, amount, cur, status, failure_code, created_at, settled_at) = row;
    Ok(Refund {
        amount: Money::new(amount, currency(&cur)?),
        id,
        org_id,
        order_id,
        status,
        failure_code,
        created_at: from_db_time(created_at),
        settled_at: opt_from_db_time(settled_at),
    })
}

macro_rules! refund_columns {
    () => {
        (
            refunds::id,
            orders::org_id,
            refunds::order_id,
            refunds::amount,
            refunds::currency,
            refunds::status,
            refunds::failure_code,
            refunds::created_at,
            refunds::settled_at,
        )
    };
}

/// The refunds of these orders, oldest first.
pub fn for_orders(conn: &mut DbConnection, order_ids: &[&str]) -> Result<Vec<Refund>, StoreError> {
    refunds::table
        .inner_join(orders::table)
        .filter(refunds::order_id.eq_any(order_ids))
        .order((refunds::created_at.asc(), refunds::id.asc()))
        .select(refund_columns!())
        .load::<RefundRow>(conn)?
        .into_iter()
        .map(refund)
        .collect()
}

/// The refund `id`.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Refund, StoreError> {
    refund(
        refunds::table
            .inner_join(orders::table)
            .filter(refunds::id.eq(id))
            .select(refund_columns!())
            .first::<RefundRow>(conn)?,
    )
}

/// Leases up to `limit` pending refunds created before `now` that no other
/// run holds, oldest first, to `token` until `until`: one atomic `UPDATE
/// ... WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until
/// < now)` (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent runs
/// split the work; in a `BEGIN IMMEDIATE` transaction on SQLite).
pub fn claim(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
    token: &str,
) -> Result<Vec<Refund>, StoreError> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = Text)]
        id: String,
    }
    let pick = |backend_lock: &str| {
        format!(
            "UPDATE refunds SET claim_token = $1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM refunds \
               WHERE status = 'pending' AND created_at <= $3 \
                 AND (claimed_until IS NULL OR claimed_until < $3) \
               ORDER BY created_at, id LIMIT $4{backend_lock}) \
               AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $3) \
             RETURNING id"
        )
    };
    let ids: Vec<Claimed> = match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(pick(" FOR UPDATE SKIP LOCKED"))
            .bind::<Text, _>(token)
            .bind::<Timestamp, _>(to_db_time(until))
            .bind::<Timestamp, _>(to_db_time(now))
            .bind::<BigInt, _>(limit)
            .load(pg)?,
        DbConnection::Sqlite(_) => crate::transaction(conn, |conn| {
            let DbConnection::Sqlite(lite) = conn else {
                return Ok(Vec::new());
            };
            Ok::<_, StoreError>(
                diesel::sql_query(pick(""))
                    .bind::<Text, _>(token)
                    .bind::<Timestamp, _>(to_db_time(until))
                    .bind::<Timestamp, _>(to_db_time(now))
                    .bind::<BigInt, _>(limit)
                    .load(lite)?,
            )
        })?,
    };
    let ids: Vec<String> = ids.into_iter().map(|c| c.id).collect();
    let mut list: Vec<Refund> = refunds::table
        .inner_join(orders::table)
        .filter(refunds::id.eq_any(&ids))
        .select(refund_columns!())
        .load::<RefundRow>(conn)?
        .into_iter()
        .map(refund)
        .collect::<Result<_, _>>()?;
    list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(list)
}

/// Lets go of a refund's lease, if `token` still holds it.
pub fn release(conn: &mut DbConnection, id: &str, token: &str) -> Result<(), StoreError> {
    diesel::update(
        refunds::table
            .filter(refunds::id.eq(id))
            .filter(refunds::claim_token.eq(token)),
    )
    .set((
        refunds::claim_token.eq(None::<String>),
        refunds::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Settles a pending refund held by `token`: `paid`, or `failed` with
/// `failure_code`, at `now`, and lets go of the lease. `false` when it was
/// not pending or not held by `token` any more (nothing changed).
pub fn settle(
    conn: &mut DbConnection,
    id: &str,
    token: &str,
    paid: bool,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let rows = diesel::update(
        refunds::table
            .filter(refunds::id.eq(id))
            .filter(refunds::status.eq("pending"))
            .filter(refunds::claim_token.eq(token)),
    )
    .set((
        refunds::status.eq(if paid { "paid" } else { "failed" }),
        refunds::failure_code.eq(failure_code),
        refunds::settled_at.eq(to_db_time(now)),
        refunds::claim_token.eq(None::<String>),
        refunds::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(rows == 1)
}

type PartRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
);

fn part(row: PartRow) -> Result<RefundPart, StoreError> {
    let (id, refund_id, charge_id, key, amount, cur, status, gateway_refund_id, failure_code, at) =
        row;
    Ok(RefundPart {
        amount: Money::new(amount, currency(&cur)?),
        id,
        refund_id,
        charge_id,
        idempotency_key: key,
        status,
        gateway_refund_id,
        failure_code,
        created_at: from_db_time(at),
    })
}

macro_rules! part_columns {
    () => {
        (
            refund_parts::id,
            refund_parts::refund_id,
            refund_parts::charge_id,
            refund_parts::idempotency_key,
            refund_parts::amount,
            refund_parts::currency,
            refund_parts::status,
            refund_parts::gateway_refund_id,
            refund_parts::failure_code,
            refund_parts::created_at,
        )
    };
}

/// The parts of a refund, in the order they are sent (their charges',
/// oldest first, as allocated).
pub fn parts(conn: &mut DbConnection, refund_id: &str) -> Result<Vec<RefundPart>, StoreError> {
    refund_parts::table
        .filter(refund_parts::refund_id.eq(refund_id))
        .order(refund_parts::id.asc())
        .select(part_columns!())
        .load::<PartRow>(conn)?
        .into_iter()
        .map(part)
        .collect()
}

/// What the parts of other refunds already take from each of these
/// charges (parts not failed or cancelled), by charge id.
pub fn taken_from(
    conn: &mut DbConnection,
    charge_ids: &[&str],
    except_refund: &str,
) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = refund_parts::table
        .filter(refund_parts::charge_id.eq_any(charge_ids))
        .filter(refund_parts::refund_id.ne(except_refund))
        .filter(refund_parts::status.eq_any(["pending", "succeeded"]))
        .select((refund_parts::charge_id, refund_parts::amount))
        .load(conn)?;
    let mut taken = HashMap::new();
    for (charge, amount) in rows {
        *taken.entry(charge).or_insert(0) += amount;
    }
    Ok(taken)
}

/// Records the parts of a refund (status `pending`). Part ids must sort in
/// the order the parts are to be sent.
pub fn insert_parts(conn: &mut DbConnection, list: &[RefundPart]) -> Result<(), StoreError> {
    for p in list {
        diesel::insert_into(refund_parts::table)
            .values((
                refund_parts::id.eq(&p.id),
                refund_parts::refund_id.eq(&p.refund_id),
                refund_parts::charge_id.eq(&p.charge_id),
                refund_parts::idempotency_key.eq(&p.idempotency_key),
                refund_parts::amount.eq(p.amount.amount),
                refund_parts::currency.eq(p.amount.currency.as_str()),
                refund_parts::status.eq("pending"),
                refund_parts::created_at.eq(to_db_time(p.created_at)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Completes a pending part with the gateway's answer (`succeeded`,
/// `failed` or `cancelled`).
pub fn complete_part(
    conn: &mut DbConnection,
    id: &str,
    status: &str,
    gateway_refund_id: Option<&str>,
    failure_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        refund_parts::table
            .filter(refund_parts::id.eq(id))
            .filter(refund_parts::status.eq("pending")),
    )
    .set((
        refund_parts::status.eq(status),
        refund_parts::gateway_refund_id.eq(gateway_refund_id),
        refund_parts::failure_code.eq(failure_code),
        refund_parts::completed_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// Pending refunds created at or before `now`, and of those the ones
/// another run holds at `now` (with the end of the last such lease).
pub fn pending_left(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<(i64, i64, Option<DateTime<Utc>>), StoreError> {
    let pending = refunds::table
        .filter(refunds::status.eq("pending"))
        .filter(refunds::created_at.le(to_db_time(now)));
    let left: i64 = pending.count().get_result(conn)?;
    let held = pending.filter(refunds::claimed_until.ge(to_db_time(now)));
    let count: i64 = held.count().get_result(conn)?;
    let until: Option<NaiveDateTime> = held
        .select(diesel::dsl::max(refunds::claimed_until))
        .first(conn)?;
    Ok((left, count, opt_from_db_time(until)))
}
