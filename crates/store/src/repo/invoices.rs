//! The invoice tables: `invoices` with their `invoice_lines`, the
//! `invoice_payments` made on them, and the `invoice_counters` that number
//! them. Amounts are minor units; the totals are the domain's
//! (`guichet_domain::invoice`), computed once when the invoice is written.
//!
//! A payment made online is a row written `pending` before the gateway is
//! called, under a gateway key derived from the invoice and the attempt's
//! number (never from the client's key), and completed by [`settle`] in
//! one transaction with the invoice's new amount paid. At most one payment
//! of an invoice is pending at a time (a unique index): two requests can
//! never charge the same invoice at once.
//!
//! Every query is scoped to an organization, and the customer's reads to
//! the customer too; only the reconciliation of stale pending payments, a
//! job over every organization, is not.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::events::{Actor, EventType};
use guichet_domain::gateway::{ChargeReceipt, GatewayError};
use guichet_domain::invoice::{self as rules, Kind, Line, Status};
use guichet_domain::{Currency, Money};

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{invoice_counters, invoice_lines, invoice_payments, invoices};

/// An invoice or payment request as stored, with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub kind: Kind,
    pub number: Option<String>,
    pub status: Status,
    pub currency: Currency,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub amount_paid: i64,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub document_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
    /// In order.
    pub lines: Vec<Line>,
}

impl Invoice {
    /// What is left to pay.
    pub fn amount_due(&self) -> i64 {
        if matches!(self.status, Status::Void | Status::Draft) {
            0
        } else {
            self.total - self.amount_paid
        }
    }

    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invoices)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    kind: String,
    number: Option<String>,
    status: String,
    currency: String,
    subtotal: i64,
    tax: i64,
    total: i64,
    amount_paid: i64,
    reason: Option<String>,
    note: Option<String>,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    document_id: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    issued_at: Option<NaiveDateTime>,
    paid_at: Option<NaiveDateTime>,
    voided_at: Option<NaiveDateTime>,
    void_reason: Option<String>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("stored {what} {value:?} is invalid"))
}

impl Row {
    fn into_invoice(self, lines: Vec<Line>) -> Result<Invoice, StoreError> {
        Ok(Invoice {
            kind: Kind::parse(&self.kind).ok_or_else(|| corrupt("invoice kind", &self.kind))?,
            status: Status::parse(&self.status)
                .ok_or_else(|| corrupt("invoice status", &self.status))?,
            currency: Currency::parse(&self.currency)
                .map_err(|_| corrupt("currency", &self.currency))?,
            id: self.id,
            org_id: self.org_id,
            customer_id: self.customer_id,
            number: self.number,
            subtotal: self.subtotal,
            tax: self.tax,
            total: self.total,
            amount_paid: self.amount_paid,
            reason: self.reason,
            note: self.note,
            issue_date: self.issue_date,
            due_date: self.due_date,
            document_id: self.document_id,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
            issued_at: opt_from_db_time(self.issued_at),
            paid_at: opt_from_db_time(self.paid_at),
            voided_at: opt_from_db_time(self.voided_at),
            void_reason: self.void_reason,
            lines,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invoice_lines)]
struct LineRow {
    description: String,
    quantity: i64,
    unit_amount: i64,
    tax_rate_bp: i32,
}

fn lines_of(conn: &mut DbConnection, invoice_id: &str) -> Result<Vec<Line>, StoreError> {
    let rows: Vec<LineRow> = invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(invoice_id))
        .order(invoice_lines::position.asc())
        .select(LineRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Line {
            description: r.description,
            quantity: r.quantity,
            unit_amount: r.unit_amount,
            tax_rate_bp: r.tax_rate_bp,
        })
        .collect())
}

fn with_lines(conn: &mut DbConnection, row: Row) -> Result<Invoice, StoreError> {
    let lines = lines_of(conn, &row.id)?;
    row.into_invoice(lines)
}

/// Writes a new invoice (a draft) with its lines. A number already taken
/// in the organization fails with [`StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, inv: &Invoice) -> Result<(), StoreError> {
    crate::transaction(conn, |conn| {
        diesel::insert_into(invoices::table)
            .values((
                invoices::id.eq(&inv.id),
                invoices::org_id.eq(&inv.org_id),
                invoices::customer_id.eq(&inv.customer_id),
                invoices::kind.eq(inv.kind.as_str()),
                invoices::number.eq(&inv.number),
                invoices::status.eq(inv.status.as_str()),
                invoices::currency.eq(inv.currency.as_str()),
                invoices::subtotal.eq(inv.subtotal),
                invoices::tax.eq(inv.tax),
                invoices::total.eq(inv.total),
                invoices::amount_paid.eq(inv.amount_paid),
                invoices::reason.eq(&inv.reason),
                invoices::note.eq(&inv.note),
                invoices::issue_date.eq(inv.issue_date),
                invoices::due_date.eq(inv.due_date),
                invoices::created_at.eq(to_db_time(inv.created_at)),
                invoices::updated_at.eq(to_db_time(inv.updated_at)),
            ))
            .execute(conn)?;
        for (i, line) in inv.lines.iter().enumerate() {
            let amounts = line
                .amounts()
                .ok_or_else(|| StoreError::Database("an invoice line overflows".into()))?;
            diesel::insert_into(invoice_lines::table)
                .values((
                    invoice_lines::invoice_id.eq(&inv.id),
                    invoice_lines::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    invoice_lines::description.eq(&line.description),
                    invoice_lines::quantity.eq(line.quantity),
                    invoice_lines::unit_amount.eq(line.unit_amount),
                    invoice_lines::tax_rate_bp.eq(line.tax_rate_bp),
                    invoice_lines::net.eq(amounts.net),
                    invoice_lines::tax.eq(amounts.tax),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// One invoice of the organization.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Invoice, StoreError> {
    let row: Row = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::id.eq(id))
        .select(Row::as_select())
        .first(conn)?;
    with_lines(conn, row)
}

/// One invoice of the customer, as the customer may see it: issued (never
/// a draft).
pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Invoice, StoreError> {
    let row: Row = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::customer_id.eq(customer_id))
        .filter(invoices::id.eq(id))
        .filter(invoices::status.ne(Status::Draft.as_str()))
        .select(Row::as_select())
        .first(conn)?;
    with_lines(conn, row)
}

/// Locks an invoice's row until the end of the transaction (PostgreSQL;
/// SQLite's writers are serialized by `BEGIN IMMEDIATE`).
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            invoices::table
                .filter(invoices::org_id.eq(org_id))
                .filter(invoices::id.eq(id))
                .select(invoices::id)
                .for_update()
                .first::<String>(pg)?;
            Ok(())
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// The filters of the business's list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub customer_id: Option<String>,
    /// A shown status: `overdue` is an open invoice due before `today`.
    pub status: Option<rules::ShownStatus>,
    pub kind: Option<Kind>,
}

/// The backend of [`DbConnection`] (either database).
type Db = <DbConnection as diesel::Connection>::Backend;

fn status_condition<'a>(
    status: rules::ShownStatus,
    today: NaiveDate,
) -> Box<dyn BoxableExpression<invoices::table, Db, SqlType = diesel::sql_types::Bool> + 'a> {
    use rules::ShownStatus as S;
    match status {
        S::Draft => Box::new(invoices::status.eq("draft")),
        S::Paid => Box::new(invoices::status.eq("paid")),
        S::Void => Box::new(invoices::status.eq("void")),
        S::Open => Box::new(
            invoices::status
                .eq("open")
                .and(invoices::due_date.ge(today)),
        ),
        S::Overdue => Box::new(
            invoices::status
                .eq("open")
                .and(invoices::due_date.lt(today)),
        ),
    }
}

/// The page of `q` after the (created_at, id) position `after`, newest
/// first, `limit + 1` rows (the extra one tells whether there is a next
/// page), each with its lines.
fn newest_page<'a>(
    conn: &mut DbConnection,
    mut q: invoices::BoxedQuery<'a, Db, RowSql>,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Invoice>, StoreError> {
    if let Some((at, id)) = after {
        let at = to_db_time(*at);
        q = q.filter(
            invoices::created_at
                .lt(at)
                .or(invoices::created_at.eq(at).and(invoices::id.lt(id.clone()))),
        );
    }
    let rows: Vec<Row> = q
        .order((invoices::created_at.desc(), invoices::id.desc()))
        .limit(limit + 1)
        .load(conn)?;
    rows.into_iter().map(|r| with_lines(conn, r)).collect()
}

/// The SQL type of a selected [`Row`].
type RowSql = diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<Row, Db>>;

/// A page of the organization's invoices, newest first, after the
/// (created_at, id) position `after`; `limit + 1` rows tell whether there
/// is a next page.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &Filter,
    today: NaiveDate,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Invoice>, StoreError> {
    let mut q = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .select(Row::as_select())
        .into_boxed::<Db>();
    if let Some(c) = &filter.customer_id {
        q = q.filter(invoices::customer_id.eq(c.clone()));
    }
    if let Some(s) = filter.status {
        q = q.filter(status_condition(s, today));
    }
    if let Some(k) = filter.kind {
        q = q.filter(invoices::kind.eq(k.as_str()));
    }
    newest_page(conn, q, after, limit)
}

/// The customer's issued invoices: with `status`, only those (`open` takes
/// in the overdue ones too: everything left to pay), newest first.
pub fn list_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    status: Option<rules::ShownStatus>,
    today: NaiveDate,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Invoice>, StoreError> {
    let mut q = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::customer_id.eq(customer_id))
        .filter(invoices::status.ne("draft"))
        .select(Row::as_select())
        .into_boxed::<Db>();
    match status {
        Some(rules::ShownStatus::Open) => q = q.filter(invoices::status.eq("open")),
        Some(s) => q = q.filter(status_condition(s, today)),
        None => {}
    }
    newest_page(conn, q, after, limit)
}

/// The customer's open invoices, oldest due first: the dashboard's
/// sources.
pub fn open_of_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<Invoice>, StoreError> {
    let rows: Vec<Row> = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::customer_id.eq(customer_id))
        .filter(invoices::status.eq("open"))
        .order((invoices::due_date.asc(), invoices::id.asc()))
        .select(Row::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|r| r.into_invoice(Vec::new()))
        .collect()
}

/// The next number of `kind` for the organization in `year`, in the
/// caller's transaction (the counter's row is written, so concurrent
/// issuers are serialized on it).
pub fn next_number(
    conn: &mut DbConnection,
    org_id: &str,
    kind: Kind,
    year: i32,
) -> Result<String, StoreError> {
    let updated = diesel::update(
        invoice_counters::table
            .filter(invoice_counters::org_id.eq(org_id))
            .filter(invoice_counters::kind.eq(kind.as_str()))
            .filter(invoice_counters::year.eq(year)),
    )
    .set(invoice_counters::last_seq.eq(invoice_counters::last_seq + 1))
    .execute(conn)?;
    if updated == 0 {
        let insert = diesel::insert_into(invoice_counters::table).values((
            invoice_counters::org_id.eq(org_id),
            invoice_counters::kind.eq(kind.as_str()),
            invoice_counters::year.eq(year),
            invoice_counters::last_seq.eq(1_i64),
        ));
        // Two first issues of the year at once on PostgreSQL: one inserts
        // the counter, the other's insert fails inside a savepoint and it
        // counts on from the row the first wrote. (SQLite's writers are
        // serialized: no race.)
        let first = match conn {
            DbConnection::Postgresql(pg) => pg
                .transaction(|pg| insert.execute(pg))
                .map_err(StoreError::from),
            DbConnection::Sqlite(_) => insert.execute(conn).map_err(StoreError::from),
        };
        match first {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                diesel::update(
                    invoice_counters::table
                        .filter(invoice_counters::org_id.eq(org_id))
                        .filter(invoice_counters::kind.eq(kind.as_str()))
                        .filter(invoice_counters::year.eq(year)),
                )
                .set(invoice_counters::last_seq.eq(invoice_counters::last_seq + 1))
                .execute(conn)?;
            }
            Err(e) => return Err(e),
        }
    }
    let seq: i64 = invoice_counters::table
        .filter(invoice_counters::org_id.eq(org_id))
        .filter(invoice_counters::kind.eq(kind.as_str()))
        .filter(invoice_counters::year.eq(year))
        .select(invoice_counters::last_seq)
        .first(conn)?;
    Ok(rules::generated_number(kind, year, seq))
}

/// Gives a draft the number `number` (generated when it is issued).
pub fn set_draft_number(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    number: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        invoices::table
            .filter(invoices::org_id.eq(org_id))
            .filter(invoices::id.eq(id))
            .filter(invoices::status.eq("draft")),
    )
    .set((
        invoices::number.eq(number),
        invoices::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// Whether the organization already has an invoice numbered `number`.
pub fn number_taken(
    conn: &mut DbConnection,
    org_id: &str,
    number: &str,
) -> Result<bool, StoreError> {
    let n: i64 = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::number.eq(number))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Issues a draft, in the caller's transaction: it gets its number (the
/// one chosen, else the next generated for the issue date's year) and its
/// shared document. `Ok(None)` when it is no longer a draft.
pub fn issue(
    conn: &mut DbConnection,
    inv: &Invoice,
    document_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, StoreError> {
    let number = match &inv.number {
        Some(n) => n.clone(),
        None => next_number(conn, &inv.org_id, inv.kind, inv.issue_date.year())?,
    };
    let updated = diesel::update(
        invoices::table
            .filter(invoices::org_id.eq(&inv.org_id))
            .filter(invoices::id.eq(&inv.id))
            .filter(invoices::status.eq("draft")),
    )
    .set((
        invoices::status.eq("open"),
        invoices::number.eq(&number),
        invoices::document_id.eq(document_id),
        invoices::issued_at.eq(to_db_time(now)),
        invoices::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    get(conn, &inv.org_id, &inv.id).map(Some)
}

/// Voids an invoice in the caller's transaction: a draft, or an open one
/// nothing was paid on, with no payment in flight. `Ok(None)` when it is
/// not (any more) in such a state.
pub fn void(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, StoreError> {
    if pending_of(conn, id)?.is_some() {
        return Ok(None);
    }
    let updated = diesel::update(
        invoices::table
            .filter(invoices::org_id.eq(org_id))
            .filter(invoices::id.eq(id))
            .filter(invoices::status.eq_any(["draft", "open"]))
            .filter(invoices::amount_paid.eq(0_i64)),
    )
    .set((
        invoices::status.eq("void"),
        invoices::void_reason.eq(reason),
        invoices::voided_at.eq(to_db_time(now)),
        invoices::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    get(conn, org_id, id).map(Some)
}

/// Adds `amount` to what was paid on an open invoice, in the caller's
/// transaction, and marks it paid when nothing is left. Refuses (returns
/// `false`) when the invoice is not open or the amount is more than what
/// is due, so the sums always match.
fn apply_payment(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    amount: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inv = get(conn, org_id, id)?;
    if inv.status != Status::Open || amount <= 0 || amount > inv.amount_due() {
        return Ok(false);
    }
    let (paid, status) = rules::after_payment(inv.total, inv.amount_paid, amount);
    let updated = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id))
            .filter(invoices::status.eq("open"))
            .filter(invoices::amount_paid.eq(inv.amount_paid)),
    )
    .set((
        invoices::amount_paid.eq(paid),
        invoices::status.eq(status.as_str()),
        invoices::paid_at.eq((status == Status::Paid).then(|| to_db_time(now))),
        invoices::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

// ---------------------------------------------------------------------------
// Payments

/// `status` of a payment sent to the gateway and not answered yet.
pub const PENDING: &str = "pending";
/// `status` of a payment that took the money.
pub const SUCCEEDED: &str = "succeeded";
/// `status` of a payment that did not.
pub const FAILED: &str = "failed";
/// `failure_code` of a payment the gateway never received, given up by the
/// reconciliation of a request that is gone.
pub const ABANDONED: &str = "abandoned";
/// `failure_code` of a payment that succeeded but could not be applied (the
/// invoice was voided or paid another way meanwhile). The charge is kept as
/// succeeded (money was taken) and logged at `error` for staff to refund.
pub const NOT_APPLIED: &str = "not_applied";
/// `failure_code` of a direct debit whose collection was cancelled before
/// it was presented (its mandate revoked or expired): not a refusal.
pub const COLLECTION_CANCELLED: &str = "collection_cancelled";
/// `failure_code` of a direct debit the debtor's bank returned (the
/// collection carries the bank's reason).
pub const DEBIT_REJECTED: &str = "debit_rejected";
/// `method` of a payment by a SEPA direct debit (autopay through a mandate).
pub const SEPA_DEBIT: &str = "sepa_debit";

/// One payment of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub org_id: String,
    pub invoice_id: String,
    pub customer_id: String,
    pub amount: Money,
    /// `customer`, `autopay` or `staff`.
    pub source: String,
    /// `card`, `sepa_debit`, `cash`, `cheque`, `bank_transfer` or `other`.
    pub method: String,
    pub status: String,
    pub gateway_key: Option<String>,
    pub gateway_charge_id: Option<String>,
    pub failure_code: Option<String>,
    /// The client request that asked for it: idempotency scope and key.
    pub request: Option<(String, String)>,
    /// What finishing it needs (JSON).
    pub details: Option<String>,
    pub reference: Option<String>,
    pub paid_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invoice_payments)]
struct PaymentRow {
    id: String,
    org_id: String,
    invoice_id: String,
    customer_id: String,
    amount: i64,
    currency: String,
    source: String,
    method: String,
    status: String,
    gateway_key: Option<String>,
    gateway_charge_id: Option<String>,
    failure_code: Option<String>,
    request_scope: Option<String>,
    request_key: Option<String>,
    details: Option<String>,
    reference: Option<String>,
    paid_on: Option<NaiveDate>,
    created_at: NaiveDateTime,
    completed_at: Option<NaiveDateTime>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;
    fn try_from(r: PaymentRow) -> Result<Self, StoreError> {
        Ok(Payment {
            amount: Money::new(
                r.amount,
                Currency::parse(&r.currency).map_err(|_| corrupt("currency", &r.currency))?,
            ),
            id: r.id,
            org_id: r.org_id,
            invoice_id: r.invoice_id,
            customer_id: r.customer_id,
            source: r.source,
            method: r.method,
            status: r.status,
            gateway_key: r.gateway_key,
            gateway_charge_id: r.gateway_charge_id,
            failure_code: r.failure_code,
            request: r.request_scope.zip(r.request_key),
            details: r.details,
            reference: r.reference,
            paid_on: r.paid_on,
            created_at: from_db_time(r.created_at),
            completed_at: opt_from_db_time(r.completed_at),
        })
    }
}

fn insert_payment(conn: &mut DbConnection, p: &Payment) -> Result<(), StoreError> {
    diesel::insert_into(invoice_payments::table)
        .values((
            invoice_payments::id.eq(&p.id),
            invoice_payments::org_id.eq(&p.org_id),
            invoice_payments::invoice_id.eq(&p.invoice_id),
            invoice_payments::customer_id.eq(&p.customer_id),
            invoice_payments::amount.eq(p.amount.amount),
            invoice_payments::currency.eq(p.amount.currency.as_str()),
            invoice_payments::source.eq(&p.source),
            invoice_payments::method.eq(&p.method),
            invoice_payments::status.eq(&p.status),
            invoice_payments::gateway_key.eq(&p.gateway_key),
            invoice_payments::gateway_charge_id.eq(&p.gateway_charge_id),
            invoice_payments::request_scope.eq(p.request.as_ref().map(|(s, _)| s.as_str())),
            invoice_payments::request_key.eq(p.request.as_ref().map(|(_, k)| k.as_str())),
            invoice_payments::details.eq(&p.details),
            invoice_payments::reference.eq(&p.reference),
            invoice_payments::paid_on.eq(p.paid_on),
            invoice_payments::created_at.eq(to_db_time(p.created_at)),
            invoice_payments::completed_at.eq(p.completed_at.map(to_db_time)),
        ))
        .execute(conn)?;
    Ok(())
}

/// One payment by id.
pub fn payment(conn: &mut DbConnection, id: &str) -> Result<Payment, StoreError> {
    let row: PaymentRow = invoice_payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .first(conn)?;
    row.try_into()
}

/// The payments of an invoice, oldest first.
pub fn payments_of(conn: &mut DbConnection, invoice_id: &str) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> = invoice_payments::table
        .filter(invoice_payments::invoice_id.eq(invoice_id))
        .order((
            invoice_payments::created_at.asc(),
            invoice_payments::id.asc(),
        ))
        .select(PaymentRow::as_select())
        .into_boxed()
        .load(conn)?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// The invoice's payment in flight, if any.
pub fn pending_of(
    conn: &mut DbConnection,
    invoice_id: &str,
) -> Result<Option<Payment>, StoreError> {
    // Boxed (not a kept prepared statement), as every lookup of one
    // invoice's payments: a generic plan made while the table was small
    // would scan it whole at every payment (`sandbox::find`).
    let row: Option<PaymentRow> = invoice_payments::table
        .filter(invoice_payments::invoice_id.eq(invoice_id))
        .filter(invoice_payments::status.eq(PENDING))
        .select(PaymentRow::as_select())
        .into_boxed()
        .first(conn)
        .optional()?;
    row.map(Payment::try_from).transpose()
}

/// The payment a client request (idempotency scope and key) created, if
/// any.
pub fn of_request(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
) -> Result<Option<Payment>, StoreError> {
    let row: Option<PaymentRow> = invoice_payments::table
        .filter(invoice_payments::request_scope.eq(scope))
        .filter(invoice_payments::request_key.eq(key))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Payment::try_from).transpose()
}

/// How many online payments were ever attempted on the invoice: the next
/// attempt's number is one more.
pub fn attempts(conn: &mut DbConnection, invoice_id: &str) -> Result<i64, StoreError> {
    Ok(invoice_payments::table
        .filter(invoice_payments::invoice_id.eq(invoice_id))
        .filter(invoice_payments::gateway_key.is_not_null())
        .count()
        .into_boxed()
        .get_result(conn)?)
}

/// What recording a new online payment found.
#[derive(Debug)]
pub enum Recorded {
    /// The pending payment, written.
    Written(Payment),
    /// Another payment of the invoice is still pending.
    Pending(Payment),
    /// The invoice, as it is now, cannot take this payment (paid or voided
    /// meanwhile, or less is due than asked).
    Refused(rules::PaymentRefusal),
    /// The caller's condition said no (an autopay retry not due yet).
    NotDue,
}

/// Records the pending online payment `p` under the invoice's lock (the
/// invoice must still take it), with a
/// gateway key derived from the invoice and the attempt's number: no other
/// request can charge the invoice at the same time (the unique index on a
/// pending payment per invoice holds it on every node).
pub fn record_pending(
    conn: &mut DbConnection,
    p: Payment,
    partial_allowed: bool,
) -> Result<Recorded, StoreError> {
    record_pending_if(conn, p, partial_allowed, |_, _| Ok(true))
}

/// [`record_pending`], when `due` (asked under the invoice's lock, with the
/// invoice as it is) says the payment may be made now; else
/// [`Recorded::NotDue`]. The autopay run's retry policy.
pub fn record_pending_if(
    conn: &mut DbConnection,
    p: Payment,
    partial_allowed: bool,
    due: impl FnOnce(&mut DbConnection, &Invoice) -> Result<bool, StoreError>,
) -> Result<Recorded, StoreError> {
    record_pending_with(conn, p, partial_allowed, due, |_, _| Ok(()))
}

/// [`record_pending_if`], with `then` run in the same transaction once the
/// payment is written (the SEPA collection that pays it). A card payment
/// gets its gateway key; a direct debit (`sepa_debit`) has none: its
/// collection is its only trace outside.
pub fn record_pending_with(
    conn: &mut DbConnection,
    p: Payment,
    partial_allowed: bool,
    due: impl FnOnce(&mut DbConnection, &Invoice) -> Result<bool, StoreError>,
    then: impl FnOnce(&mut DbConnection, &Payment) -> Result<(), StoreError>,
) -> Result<Recorded, StoreError> {
    crate::transaction(conn, |conn| {
        lock(conn, &p.org_id, &p.invoice_id)?;
        if let Some(other) = pending_of(conn, &p.invoice_id)? {
            return Ok(Recorded::Pending(other));
        }
        // Checked again under the lock: an earlier payment may have been
        // settled since the request looked.
        let inv = get(conn, &p.org_id, &p.invoice_id)?;
        if let Err(refusal) = rules::payable(
            inv.status,
            inv.total_money(),
            inv.amount_paid,
            Some(p.amount),
            partial_allowed,
        ) {
            return Ok(Recorded::Refused(refusal));
        }
        if !due(conn, &inv)? {
            return Ok(Recorded::NotDue);
        }
        let gateway_key = if p.method == SEPA_DEBIT {
            None
        } else {
            Some(gateway_key(
                &p.invoice_id,
                attempts(conn, &p.invoice_id)? + 1,
            ))
        };
        let p = Payment {
            gateway_key,
            status: PENDING.to_owned(),
            ..p
        };
        insert_payment(conn, &p)?;
        then(conn, &p)?;
        Ok(Recorded::Written(p))
    })
}

/// The gateway key of the `attempt`-th online payment of an invoice.
pub fn gateway_key(invoice_id: &str, attempt: i64) -> String {
    guichet_domain::schedule::idempotency_key(
        &format!("{invoice_id}:payment"),
        u32::try_from(attempt).unwrap_or(u32::MAX),
    )
}

/// Gives up a pending payment the gateway never received, whose request is
/// gone: failed ([`ABANDONED`]), the invoice unchanged. `false` when it was
/// no longer pending.
pub fn abandon(
    conn: &mut DbConnection,
    p: &Payment,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        invoice_payments::table
            .filter(invoice_payments::id.eq(&p.id))
            .filter(invoice_payments::status.eq(PENDING)),
    )
    .set((
        invoice_payments::status.eq(FAILED),
        invoice_payments::failure_code.eq(ABANDONED),
        invoice_payments::completed_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(updated > 0)
}

/// What finishing an online payment needs, stored with it: the card's
/// gateway token and what may be shown of the card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Details {
    pub card_token: String,
    pub card: guichet_domain::card::CardView,
    /// The saved payment method it came from, if any.
    #[serde(default)]
    pub payment_method_id: Option<String>,
}

impl Details {
    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::Database(e.to_string()))
    }

    /// The details stored with `p`, if any (an offline payment has none).
    pub fn of(p: &Payment) -> Result<Option<Details>, StoreError> {
        p.details
            .as_deref()
            .map(|json| serde_json::from_str(json).map_err(|e| StoreError::Database(e.to_string())))
            .transpose()
    }
}

/// The SEPA collection that pays `p`, for a direct debit.
pub fn collection_id(p: &Payment) -> Option<&str> {
    (p.method == SEPA_DEBIT)
        .then_some(p.gateway_charge_id.as_deref())
        .flatten()
}

/// What [`settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Someone else settled it first: nothing was done.
    AlreadyDone,
    /// The charge was refused: the payment is failed, the invoice as it
    /// was.
    Failed,
    /// Paid: the invoice after it.
    Paid(Box<Invoice>),
    /// Money was taken but the invoice could no longer take it
    /// ([`NOT_APPLIED`]).
    NotApplied,
}

/// Completes the pending payment `p` with the gateway's `outcome`, in one
/// transaction: on success the invoice's amount paid grows (paid when
/// nothing is left) and `invoice.paid` or `invoice.partially_paid` is
/// recorded; on a refusal the payment is failed and
/// `invoice.payment_failed` recorded. `on_paid` runs inside the
/// transaction on success (the receipt e-mail), `before_commit` last (the
/// API's test-only fault pause). Exactly once: a payment no longer pending
/// is left alone.
///
/// A transient outcome (`Unavailable`, `Timeout`) says nothing of the
/// charge and must not be passed here: the payment stays pending.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    conn: &mut DbConnection,
    p: &Payment,
    outcome: &Result<ChargeReceipt, GatewayError>,
    now: DateTime<Utc>,
    actor: Actor,
    on_paid: impl FnOnce(&mut DbConnection, &Invoice, &Payment) -> Result<(), StoreError>,
    before_commit: impl FnOnce(),
) -> Result<Settled, StoreError> {
    if let Err(error) = outcome
        && error.is_transient()
    {
        return Err(StoreError::Database(format!(
            "an invoice payment cannot be settled on {}",
            error.code()
        )));
    }
    let outcome = match outcome {
        Ok(receipt) => Outcome::Succeeded {
            charge_id: Some(receipt.charge_id.as_str()),
        },
        Err(error) => Outcome::Failed { code: error.code() },
    };
    crate::transaction(conn, |conn| {
        settle_in(conn, p, outcome, now, actor, on_paid, before_commit)
    })
}

/// How a pending payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The money was taken (`charge_id`: the gateway's, if any).
    Succeeded { charge_id: Option<&'a str> },
    /// It was not (`code`: the payment's `failure_code`).
    Failed { code: &'a str },
}

/// [`settle`] inside the caller's transaction, with an outcome that is not
/// the gateway's (a direct debit's bank answer).
#[allow(clippy::too_many_arguments)]
pub fn settle_in(
    conn: &mut DbConnection,
    p: &Payment,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
    actor: Actor,
    on_paid: impl FnOnce(&mut DbConnection, &Invoice, &Payment) -> Result<(), StoreError>,
    before_commit: impl FnOnce(),
) -> Result<Settled, StoreError> {
    {
        lock(conn, &p.org_id, &p.invoice_id)?;
        let succeeded = matches!(outcome, Outcome::Succeeded { .. });
        let (status, gateway_id, failure) = match outcome {
            Outcome::Succeeded { charge_id } => (SUCCEEDED, charge_id, None),
            Outcome::Failed { code } => (FAILED, None, Some(code)),
        };
        let updated = diesel::update(
            invoice_payments::table
                .filter(invoice_payments::id.eq(&p.id))
                .filter(invoice_payments::status.eq(PENDING)),
        )
        .set((
            invoice_payments::status.eq(status),
            invoice_payments::gateway_charge_id.eq(gateway_id.or(p.gateway_charge_id.as_deref())),
            invoice_payments::failure_code.eq(failure),
            invoice_payments::paid_on.eq(succeeded.then(|| now.date_naive())),
            invoice_payments::completed_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
        if updated == 0 {
            before_commit();
            return Ok(Settled::AlreadyDone);
        }
        let customer = (actor == Actor::Customer).then_some(p.customer_id.as_str());
        if !succeeded {
            let inv = get(conn, &p.org_id, &p.invoice_id)?;
            let settled = payment(conn, &p.id)?;
            super::events::emit(
                conn,
                EventType::InvoicePaymentFailed,
                &p.org_id,
                &p.invoice_id,
                customer,
                actor,
                &crate::snapshots::invoice_event(&inv, Some(&settled), now.date_naive()),
                now,
            )?;
            before_commit();
            return Ok(Settled::Failed);
        }
        if !apply_payment(conn, &p.org_id, &p.invoice_id, p.amount.amount, now)? {
            tracing::error!(
                payment = %p.id,
                invoice = %p.invoice_id,
                "an invoice payment was charged but the invoice could no longer take it: \
                 the charge is kept, not applied; refund it"
            );
            diesel::update(invoice_payments::table.find(&p.id))
                .set(invoice_payments::failure_code.eq(NOT_APPLIED))
                .execute(conn)?;
            before_commit();
            return Ok(Settled::NotApplied);
        }
        let inv = get(conn, &p.org_id, &p.invoice_id)?;
        let settled = payment(conn, &p.id)?;
        let kind = if inv.status == Status::Paid {
            EventType::InvoicePaid
        } else {
            EventType::InvoicePartiallyPaid
        };
        super::events::emit(
            conn,
            kind,
            &p.org_id,
            &p.invoice_id,
            customer,
            actor,
            &crate::snapshots::invoice_event(&inv, Some(&settled), now.date_naive()),
            now,
        )?;
        on_paid(conn, &inv, &settled)?;
        before_commit();
        Ok(Settled::Paid(Box::new(inv)))
    }
}

/// Fails the pending direct debits whose collection of `mandate_id` was
/// just cancelled (the mandate revoked or expired before presentation):
/// [`COLLECTION_CANCELLED`] with `invoice.payment_failed`, the invoice left
/// open. Run it in the transaction that cancelled them. Returns how many.
pub fn fail_cancelled_debits(
    conn: &mut DbConnection,
    mandate_id: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    use crate::schema::sepa_collections;
    let ids: Vec<Option<String>> = sepa_collections::table
        .filter(sepa_collections::mandate_id.eq(mandate_id))
        .filter(sepa_collections::status.eq("cancelled"))
        .filter(sepa_collections::invoice_payment_id.is_not_null())
        .select(sepa_collections::invoice_payment_id)
        .load(conn)?;
    let mut failed = 0;
    for id in ids.into_iter().flatten() {
        let p = payment(conn, &id)?;
        if p.status != PENDING {
            continue;
        }
        let outcome = Outcome::Failed {
            code: COLLECTION_CANCELLED,
        };
        if settle_in(conn, &p, outcome, now, actor, |_, _, _| Ok(()), || {})? == Settled::Failed {
            failed += 1;
        }
    }
    Ok(failed)
}

/// Records a payment the business received another way (cash, cheque,
/// transfer), in one transaction with the invoice's new amount paid and its
/// event. `Ok(None)` when the invoice is not open, a payment is in flight,
/// or the amount is more than what is due.
pub fn record_offline(
    conn: &mut DbConnection,
    p: &Payment,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, StoreError> {
    crate::transaction(conn, |conn| {
        lock(conn, &p.org_id, &p.invoice_id)?;
        if pending_of(conn, &p.invoice_id)?.is_some() {
            return Ok(None);
        }
        if !apply_payment(conn, &p.org_id, &p.invoice_id, p.amount.amount, now)? {
            return Ok(None);
        }
        insert_payment(conn, p)?;
        let inv = get(conn, &p.org_id, &p.invoice_id)?;
        let kind = if inv.status == Status::Paid {
            EventType::InvoicePaid
        } else {
            EventType::InvoicePartiallyPaid
        };
        super::events::emit(
            conn,
            kind,
            &p.org_id,
            &p.invoice_id,
            None,
            actor,
            &crate::snapshots::invoice_event(&inv, Some(p), now.date_naive()),
            now,
        )?;
        Ok(Some(inv))
    })
}

/// Pending payments older than `before`, over every organization: the
/// reconciliation's work (their requests are gone). Direct debits are not
/// among them: the bank's answer to their collection settles them.
pub fn stale_pending(
    conn: &mut DbConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> = invoice_payments::table
        .filter(invoice_payments::status.eq(PENDING))
        .filter(invoice_payments::method.ne(SEPA_DEBIT))
        .filter(invoice_payments::created_at.lt(to_db_time(before)))
        .order(invoice_payments::created_at.asc())
        .limit(limit)
        .select(PaymentRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// An open invoice due on or before the run's day whose customer has
/// autopay on: what the autopay run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutopayCandidate {
    pub org_id: String,
    pub invoice_id: String,
    pub customer_id: String,
}

/// Up to `limit` open invoices due on or before `as_of` whose customer has
/// autopay on and that have no payment in flight, after the invoice id
/// `after` (id order, over every organization).
pub fn autopay_candidates(
    conn: &mut DbConnection,
    as_of: NaiveDate,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AutopayCandidate>, StoreError> {
    use crate::schema::customer_autopay;
    let mut q = invoices::table
        .inner_join(
            customer_autopay::table.on(customer_autopay::org_id
                .eq(invoices::org_id)
                .and(customer_autopay::customer_id.eq(invoices::customer_id))),
        )
        .filter(invoices::status.eq("open"))
        .filter(invoices::due_date.le(as_of))
        .filter(customer_autopay::enabled.eq(true))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            invoice_payments::table
                .filter(invoice_payments::invoice_id.eq(invoices::id))
                .filter(invoice_payments::status.eq(PENDING)),
        )))
        .select((invoices::org_id, invoices::id, invoices::customer_id))
        .into_boxed::<Db>();
    if let Some(after) = after {
        q = q.filter(invoices::id.gt(after.to_owned()));
    }
    let rows: Vec<(String, String, String)> =
        q.order(invoices::id.asc()).limit(limit).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(org_id, invoice_id, customer_id)| AutopayCandidate {
            org_id,
            invoice_id,
            customer_id,
        })
        .collect())
}

/// The autopay charges of an invoice the gateway refused: how many, and
/// when the last was answered. A charge given up because the gateway never
/// received it ([`ABANDONED`]), or a direct debit whose collection was
/// cancelled ([`COLLECTION_CANCELLED`]), is not a refusal.
pub fn autopay_refusals(
    conn: &mut DbConnection,
    invoice_id: &str,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    let rows: Vec<Option<NaiveDateTime>> = invoice_payments::table
        .filter(invoice_payments::invoice_id.eq(invoice_id))
        .filter(invoice_payments::source.eq("autopay"))
        .filter(invoice_payments::status.eq(FAILED))
        .filter(
            invoice_payments::failure_code
                .ne_all([ABANDONED, COLLECTION_CANCELLED])
                .or(invoice_payments::failure_code.is_null()),
        )
        .select(invoice_payments::completed_at)
        .into_boxed()
        .load(conn)?;
    let last = rows.iter().flatten().max().copied().map(from_db_time);
    Ok((i64::try_from(rows.len()).unwrap_or(i64::MAX), last))
}

/// Rows to delete with an organization, children first.
pub fn delete_org(conn: &mut DbConnection, org_id: &str) -> Result<(), StoreError> {
    diesel::delete(invoice_payments::table.filter(invoice_payments::org_id.eq(org_id)))
        .execute(conn)?;
    let ids = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .select(invoices::id);
    diesel::delete(invoice_lines::table.filter(invoice_lines::invoice_id.eq_any(ids)))
        .execute(conn)?;
    diesel::delete(invoices::table.filter(invoices::org_id.eq(org_id))).execute(conn)?;
    diesel::delete(invoice_counters::table.filter(invoice_counters::org_id.eq(org_id)))
        .execute(conn)?;
    Ok(())
}
