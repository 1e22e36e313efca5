//! What the customer's dashboard sums: the amounts a customer owes, one
//! source at a time. Each kind of debt adds its own loader here (unpaid
//! and due instalments, account balances; invoices when they exist).

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{accounts, instalments, orders};

/// What a due amount comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// An instalment of a schedule (unpaid, late, or due soon).
    Instalment,
    /// The balance of an account (SEPA).
    Account,
}

/// One amount the customer owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSource {
    pub kind: DueKind,
    /// The instalment's or the account's id.
    pub id: String,
    /// The schedule of an instalment.
    pub parent_id: Option<String>,
    /// Order number and brand, or the account's label.
    pub label: String,
    pub amount: i64,
    pub currency: String,
    /// The instalment's due date (an account's balance has none).
    pub due_date: Option<NaiveDate>,
    /// Past its due date or unpaid after every attempt.
    pub overdue: bool,
}

/// Instalment, order, order number, brand, due date, amount, currency,
/// status.
type InstalmentRow = (
    String,
    String,
    String,
    String,
    NaiveDate,
    i64,
    String,
    String,
);

/// The customer's instalments that are unpaid, late, or due by `until`,
/// oldest first.
pub fn instalments_due(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    today: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<DueSource>, StoreError> {
    let rows: Vec<InstalmentRow> = instalments::table
        .inner_join(orders::table.on(orders::id.eq(instalments::order_id)))
        .filter(orders::org_id.eq(org_id))
        .filter(orders::customer_id.eq(customer_id))
        .filter(instalments::org_id.eq(org_id))
        .filter(
            instalments::status.eq("unpaid").or(instalments::status
                .eq("pending")
                .and(instalments::due_date.le(until))),
        )
        .order((instalments::due_date.asc(), instalments::id.asc()))
        .select((
            instalments::id,
            orders::id,
            orders::order_number,
            orders::merchant_brand,
            instalments::due_date,
            instalments::amount,
            instalments::currency,
            instalments::status,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, order_id, number, brand, due, amount, currency, status)| DueSource {
                kind: DueKind::Instalment,
                id,
                parent_id: Some(order_id),
                label: format!("{brand} {number}"),
                amount,
                currency,
                due_date: Some(due),
                overdue: status == "unpaid" || due < today,
            },
        )
        .collect())
}

/// The customer's accounts with a balance owed (positive).
pub fn account_balances(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<DueSource>, StoreError> {
    let rows: Vec<(String, String, i64, String)> = accounts::table
        .filter(accounts::org_id.eq(org_id))
        .filter(accounts::customer_id.eq(customer_id))
        .filter(accounts::balance.gt(0))
        .order(accounts::id.asc())
        .select((
            accounts::id,
            accounts::label,
            accounts::balance,
            accounts::currency,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, label, amount, currency)| DueSource {
            kind: DueKind::Account,
            id,
            parent_id: None,
            label,
            amount,
            currency,
            due_date: None,
            overdue: false,
        })
        .collect())
}
