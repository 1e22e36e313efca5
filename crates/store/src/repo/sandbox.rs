//! The `sandbox_ledger` table: the sandbox gateway's own record of every
//! charge and refund it received, by merchant (organization), kind and
//! idempotency key, as an external PSP keeps it. Only the sandbox gateway
//! writes it; the sandbox's list routes read it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::{Currency, Money};

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::sandbox_ledger as t;

/// A charge or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Refund,
}

impl Kind {
    /// As stored: `charge` or `refund`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Charge => "charge",
            Kind::Refund => "refund",
        }
    }
}

/// What the gateway answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The money moved.
    Succeeded,
    /// Nothing moved; `failure_code` says why.
    Failed,
}

impl Outcome {
    /// As stored: `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "succeeded" => Ok(Outcome::Succeeded),
            "failed" => Ok(Outcome::Failed),
            _ => Err(StoreError::Database(
                "stored sandbox outcome is invalid".into(),
            )),
        }
    }
}

/// One operation the sandbox received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub merchant: String,
    pub kind: Kind,
    pub idempotency_key: String,
    /// `ch_sandbox_...` or `re_sandbox_...`.
    pub id: String,
    /// The card token of a charge; the charge id of a refund.
    pub reference: String,
    pub amount: Money,
    /// The card's brand and last four digits (a refund copies its charge's).
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub outcome: Outcome,
    pub failure_code: Option<String>,
    /// On a charge: how much of it was refunded, in minor units.
    pub refunded: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = t)]
struct Row {
    merchant: String,
    kind: String,
    idempotency_key: String,
    id: String,
    reference: String,
    amount: i64,
    currency: String,
    brand: Option<String>,
    last4: Option<String>,
    outcome: String,
    failure_code: Option<String>,
    refunded: i64,
    created_at: NaiveDateTime,
}

impl TryFrom<Row> for Entry {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let kind = match r.kind.as_str() {
            "charge" => Kind::Charge,
            "refund" => Kind::Refund,
            _ => {
                return Err(StoreError::Database(
                    "stored sandbox kind is invalid".into(),
                ));
            }
        };
        Ok(Entry {
            amount: Money::new(
                r.amount,
                Currency::parse(&r.currency)
                    .map_err(|_| StoreError::Database("stored currency is invalid".into()))?,
            ),
            outcome: Outcome::parse(&r.outcome)?,
            kind,
            merchant: r.merchant,
            idempotency_key: r.idempotency_key,
            id: r.id,
            reference: r.reference,
            brand: r.brand,
            last4: r.last4,
            failure_code: r.failure_code,
            refunded: r.refunded,
            created_at: from_db_time(r.created_at),
        })
    }
}

fn entries(rows: Vec<Row>) -> Result<Vec<Entry>, StoreError> {
    rows.into_iter().map(Entry::try_from).collect()
}

/// Records an operation. A second one under the same merchant, kind and
/// key answers [`StoreError::Conflict`] (and aborts the transaction it is
/// in, on PostgreSQL).
pub fn insert(conn: &mut DbConnection, entry: &Entry) -> Result<(), StoreError> {
    diesel::insert_into(t::table)
        .values((
            t::merchant.eq(&entry.merchant),
            t::kind.eq(entry.kind.as_str()),
            t::idempotency_key.eq(&entry.idempotency_key),
            t::id.eq(&entry.id),
            t::reference.eq(&entry.reference),
            t::amount.eq(entry.amount.amount),
            t::currency.eq(entry.amount.currency.as_str()),
            t::brand.eq(entry.brand.as_deref()),
            t::last4.eq(entry.last4.as_deref()),
            t::outcome.eq(entry.outcome.as_str()),
            t::failure_code.eq(entry.failure_code.as_deref()),
            t::refunded.eq(entry.refunded),
            t::created_at.eq(to_db_time(entry.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The operation `merchant` sent under `idempotency_key`, if any.
pub fn find(
    conn: &mut DbConnection,
    merchant: &str,
    kind: Kind,
    idempotency_key: &str,
) -> Result<Option<Entry>, StoreError> {
    // By the primary key. Boxed, so not kept as a prepared statement: a
    // generic plan made while the ledger was small could read every
    // operation of the merchant by another index, and be kept while a run
    // fills the ledger (`docs/BENCHMARKS.md`, "Invoices and autopay").
    let row = t::table
        .filter(t::merchant.eq(merchant))
        .filter(t::kind.eq(kind.as_str()))
        .filter(t::idempotency_key.eq(idempotency_key))
        .select(Row::as_select())
        .into_boxed()
        .first(conn)
        .optional()?;
    row.map(Entry::try_from).transpose()
}

/// The operation of `merchant` with this id, if any.
pub fn find_by_id(
    conn: &mut DbConnection,
    merchant: &str,
    kind: Kind,
    id: &str,
) -> Result<Option<Entry>, StoreError> {
    let row = t::table
        .filter(t::id.eq(id))
        .filter(t::merchant.eq(merchant))
        .filter(t::kind.eq(kind.as_str()))
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    row.map(Entry::try_from).transpose()
}

/// Adds `amount` to what was refunded of the successful charge `charge_id`
/// of `merchant`, in one conditional statement: only when the total stays
/// within the charge, so that concurrent refunds can never exceed it.
/// Whether it was added.
pub fn add_refunded(
    conn: &mut DbConnection,
    merchant: &str,
    charge_id: &str,
    amount: i64,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        t::table
            .filter(t::id.eq(charge_id))
            .filter(t::merchant.eq(merchant))
            .filter(t::kind.eq(Kind::Charge.as_str()))
            .filter(t::outcome.eq(Outcome::Succeeded.as_str()))
            .filter((t::refunded + amount).le(t::amount)),
    )
    .set(t::refunded.eq(t::refunded + amount))
    .execute(conn)?;
    Ok(updated == 1)
}

/// A page of `merchant`'s operations of `kind`, newest first (then by id,
/// descending), after the one with id `after`.
pub fn list(
    conn: &mut DbConnection,
    merchant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    let mut query = t::table
        .filter(t::merchant.eq(merchant))
        .filter(t::kind.eq(kind.as_str()))
        .select(Row::as_select())
        .order((t::created_at.desc(), t::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        let Some(cursor) = find_by_id(conn, merchant, kind, after)? else {
            return Ok(Vec::new());
        };
        let at = to_db_time(cursor.created_at);
        query = query.filter(
            t::created_at
                .lt(at)
                .or(t::created_at.eq(at).and(t::id.lt(cursor.id))),
        );
    }
    entries(query.load(conn)?)
}

/// How many successful charges were made under `idempotency_key` (0 or 1
/// per merchant), all merchants together. For tests.
pub fn successful_charges_under(
    conn: &mut DbConnection,
    idempotency_key: &str,
) -> Result<i64, StoreError> {
    Ok(t::table
        .filter(t::kind.eq(Kind::Charge.as_str()))
        .filter(t::outcome.eq(Outcome::Succeeded.as_str()))
        .filter(t::idempotency_key.eq(idempotency_key))
        .count()
        .get_result(conn)?)
}

/// The successful charges' amounts and refunded totals, all merchants and
/// currencies together. For tests.
pub fn successful_charge_amounts(conn: &mut DbConnection) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(t::table
        .filter(t::kind.eq(Kind::Charge.as_str()))
        .filter(t::outcome.eq(Outcome::Succeeded.as_str()))
        .select((t::amount, t::refunded))
        .load(conn)?)
}
