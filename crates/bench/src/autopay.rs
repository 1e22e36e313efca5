//! `guichet-bench autopay`: the throughput of the autopay part of
//! `guichet jobs debit` (issue #17).
//!
//! A fresh database is migrated (`guichet migrate`) and seeded in SQL with
//! one organization (its payment settings: one retry 3 days later) and
//! `--invoices` customers, each with autopay on with a saved card (a
//! `payment_methods` row, the default, and its `customer_autopay` row) and
//! one open invoice due on `--as-of` (one line, 20 % tax); one customer in
//! ten also has an invoice due a month later, which the run must leave
//! alone. The cards are sandbox tokens made with the secret key the job is
//! given; most are charged, a few decline (see [`Case`]). Then
//! `guichet jobs debit --as-of` is timed from spawn to exit, and the
//! database is checked: every due invoice charged exactly once (one
//! sandbox ledger entry per invoice key, one payment row), with its own
//! amount, its result applied, and the sums equal to the seed's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, Months, NaiveDate};
use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use guichet_domain::gateway::test_cards;
use guichet_domain::invoice::Line;
use guichet_domain::{Clock, SystemClock};
use guichet_store::DbConnection;
use guichet_store::schema::{invoice_payments, invoices, outbox, sandbox_ledger};
use serde::Serialize;
use serde_json::Value;

use crate::Target;
use crate::debit::{
    Kept, connect, finish, load_average_1m, parse_date, quote, round, sandbox_token,
};
use crate::server::{self, Backend, Database, DatabaseArgs};

/// The secret key of the throwaway database's job: its sandbox tokens are
/// keyed with it. Never used anywhere else.
const SECRET_KEY: &str = "guichet-bench-autopay-throwaway-secret-key-0123456789";

/// The target of issue #17, in invoices per second.
const TARGET_PER_S: f64 = 2_000.0;

/// Ids are a prefix and `ID_BASE + n`: fixed width, so they sort by `n`,
/// with the same SQL on both backends.
pub(crate) const ID_BASE: u64 = 10_000_000;

/// The seeded organization.
const ORG_ID: &str = "org_bautopay";

/// One customer in this many also has an invoice due a month after
/// `--as-of`, which the run must not touch.
const LATER_EVERY: u64 = 10;

/// Problems listed in full in the report; the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// The tax rate of every seeded line, in basis points (20 %).
pub const TAX_RATE_BP: i32 = 2_000;

#[derive(Debug, Parser)]
#[command(
    name = "guichet-bench autopay",
    about = "Seeds a fresh database with open invoices due of customers with autopay on, times \
             `guichet jobs debit` over them and checks that each was charged exactly once; \
             prints JSON."
)]
pub struct AutopayArgs {
    #[command(flatten)]
    db: DatabaseArgs,

    /// Open invoices due on --as-of (one per customer) presented by the run.
    #[arg(long, default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
    invoices: u32,

    /// The run's --as-of (YYYY-MM-DD) [default: today, UTC]. The sandbox
    /// checks card expiry against the real date, not this one.
    #[arg(long, value_parser = parse_date)]
    as_of: Option<NaiveDate>,

    /// The `guichet` binary [default: the one next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,

    /// Keep the seeded and debited database (and the job's log) and print
    /// where they are, instead of dropping them.
    #[arg(long)]
    keep: bool,

    /// Only migrate and seed a database, keep it and print how to run the
    /// job on it (for profiling).
    #[arg(long)]
    seed_only: bool,
}

/// What happens to the due invoice of customer `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A card that is charged (Visa, Mastercard or Visa debit in turn).
    Paid,
    /// Refused: insufficient funds.
    InsufficientFunds,
    /// Refused: the card has expired at the issuer.
    Expired,
}

impl Case {
    /// The failure code the gateway gives, `None` when charged.
    pub fn failure_code(self) -> Option<&'static str> {
        match self {
            Case::Paid => None,
            Case::InsufficientFunds => Some("insufficient_funds"),
            Case::Expired => Some("expired_card"),
        }
    }
}

/// The sandbox cards of the seed, by index: what they do and their number.
/// (The sandbox's generic decline card cannot be tokenized: it is refused
/// when saved, never at a later charge.)
const CARDS: [(&str, &str); 5] = [
    ("visa", test_cards::VISA),
    ("mastercard", test_cards::MASTERCARD),
    ("visa_debit", test_cards::VISA_DEBIT),
    ("insufficient_funds", test_cards::INSUFFICIENT_FUNDS),
    ("expired", test_cards::EXPIRED),
];

/// The case of customer `n` by `n % 100`: 97 % charged, 3 % refused (2 %
/// insufficient funds, 1 % card expired at the issuer). [`CASE_SQL`] says
/// the same in SQL.
pub fn case_of(n: u64) -> Case {
    match n % 100 {
        0 | 75 => Case::InsufficientFunds,
        50 => Case::Expired,
        _ => Case::Paid,
    }
}

/// The index in [`CARDS`] of customer `n`'s card, as [`case_of`].
#[cfg(test)]
fn card_of(n: u64) -> usize {
    match case_of(n) {
        Case::Paid => (n % 3) as usize,
        Case::InsufficientFunds => 3,
        Case::Expired => 4,
    }
}

/// [`card_of`] in SQL over `n`.
const CASE_SQL: &str = "CASE WHEN n % 100 IN (0, 75) THEN 3 WHEN n % 100 = 50 THEN 4 \
                        ELSE n % 3 END AS ci";

/// The one line of invoice `n`: 1 to 4 units of 10.00 to 499.99 EUR, 20 %.
pub fn line_of(n: u64) -> Line {
    Line {
        description: "Abonnement mensuel".to_owned(),
        quantity: 1 + (n % 4) as i64,
        unit_amount: 1_000 + ((n * 7_919) % 49_000) as i64,
        tax_rate_bp: TAX_RATE_BP,
    }
}

/// Invoice `n`'s net, tax and total, as the seed's SQL computes them (the
/// tests check that `guichet_domain::invoice` agrees).
pub fn amounts_of(n: u64) -> (i64, i64, i64) {
    let line = line_of(n);
    let net = line.quantity * line.unit_amount;
    let tax = (net * i64::from(TAX_RATE_BP) + 5_000) / 10_000;
    (net, tax, net + tax)
}

/// [`line_of`]'s quantity, unit amount, net and tax in SQL over `n`: the
/// tax is `net × 2 000 / 10 000` rounded half away from zero, which for a
/// positive net is `(net × 2 000 + 5 000) / 10 000` in integers.
const QUANTITY_SQL: &str = "(1 + n % 4)";
const UNIT_SQL: &str = "(1000 + (n * 7919) % 49000)";
const NET_SQL: &str = "((1 + n % 4) * (1000 + (n * 7919) % 49000))";
const TAX_SQL: &str = "(((1 + n % 4) * (1000 + (n * 7919) % 49000) * 2000 + 5000) / 10000)";

fn invoice_id(n: u64) -> String {
    format!("inv_a{}", ID_BASE + n)
}

/// What the run must have done, from the seed alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub presented: u64,
    pub paid: u64,
    pub refused: u64,
    /// The sum of the invoices that must be paid, in cents.
    pub paid_amount: i64,
    /// The sum of every due invoice, in cents.
    pub due_amount: i64,
    /// Invoices due later, left open.
    pub not_due: u64,
}

pub fn expected(count: u64) -> Expected {
    let mut e = Expected::default();
    for n in 1..=count {
        let total = amounts_of(n).2;
        e.presented += 1;
        e.due_amount += total;
        if case_of(n) == Case::Paid {
            e.paid += 1;
            e.paid_amount += total;
        } else {
            e.refused += 1;
        }
        if n % LATER_EVERY == 0 {
            e.not_due += 1;
        }
    }
    e
}

/// SQL literals that differ between the backends.
pub(crate) fn sql_date(backend: Backend, d: NaiveDate) -> String {
    match backend {
        Backend::Sqlite => format!("'{d}'"),
        Backend::Postgres => format!("DATE '{d}'"),
    }
}

pub(crate) fn sql_timestamp(backend: Backend, d: NaiveDate) -> String {
    match backend {
        Backend::Sqlite => format!("'{d} 09:00:00'"),
        Backend::Postgres => format!("TIMESTAMP '{d} 09:00:00'"),
    }
}

/// A temporary table `bench_n (n, ci)` of 1..=count.
pub(crate) fn numbers_sql(backend: Backend, count: u64) -> String {
    match backend {
        Backend::Sqlite => format!(
            "CREATE TEMP TABLE bench_n AS WITH RECURSIVE seq(n) AS \
             (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {count}) \
             SELECT n, {CASE_SQL} FROM seq;"
        ),
        Backend::Postgres => format!(
            "CREATE TEMP TABLE bench_n AS SELECT n, {CASE_SQL} \
             FROM generate_series(1::bigint, {count}::bigint) AS g(n);"
        ),
    }
}

/// Where seeded invoices go: ids `{id_prefix}{ID_BASE + n}`, numbers
/// `{number_prefix}{ID_BASE + n}`, the customer an SQL expression over `n`.
pub(crate) struct InvoiceSeed<'a> {
    pub backend: Backend,
    pub org_id: &'a str,
    pub customer_sql: &'a str,
    pub id_prefix: &'a str,
    pub number_prefix: &'a str,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Only the rows of `bench_n` matching this SQL condition.
    pub filter: &'a str,
}

/// Open, numbered invoices of one line each for the rows of `bench_n`:
/// the invoices, then their lines. Totals as [`amounts_of`].
pub(crate) fn invoices_sql(s: &InvoiceSeed<'_>) -> [String; 2] {
    let issue = sql_date(s.backend, s.issue_date);
    let due = sql_date(s.backend, s.due_date);
    let at = sql_timestamp(s.backend, s.issue_date);
    let (org, customer, id, number, filter) = (
        quote(s.org_id),
        s.customer_sql,
        quote(s.id_prefix),
        quote(s.number_prefix),
        s.filter,
    );
    [
        format!(
            "INSERT INTO invoices (id, org_id, customer_id, kind, number, status, currency, \
             subtotal, tax, total, amount_paid, issue_date, due_date, created_at, updated_at, \
             issued_at) \
             SELECT {id} || ({ID_BASE} + n), {org}, {customer}, 'invoice', \
             {number} || ({ID_BASE} + n), 'open', 'EUR', {NET_SQL}, {TAX_SQL}, \
             {NET_SQL} + {TAX_SQL}, 0, {issue}, {due}, {at}, {at}, {at} \
             FROM bench_n WHERE {filter};"
        ),
        format!(
            "INSERT INTO invoice_lines (invoice_id, position, description, quantity, \
             unit_amount, tax_rate_bp, net, tax) \
             SELECT {id} || ({ID_BASE} + n), 0, 'Abonnement mensuel', {QUANTITY_SQL}, \
             {UNIT_SQL}, {TAX_RATE_BP}, {NET_SQL}, {TAX_SQL} FROM bench_n WHERE {filter};"
        ),
    ]
}

/// The seed, as SQL statements for `backend`.
fn seed_sql(backend: Backend, count: u32, as_of: NaiveDate) -> Result<Vec<String>, String> {
    let out_of_range = || format!("{as_of} is out of range");
    let issued = as_of
        .checked_sub_months(Months::new(1))
        .ok_or_else(out_of_range)?;
    let later = as_of
        .checked_add_months(Months::new(1))
        .ok_or_else(out_of_range)?;
    let created = sql_timestamp(backend, issued);
    let mut cards = Vec::new();
    for (i, (_, number)) in CARDS.iter().enumerate() {
        let (token, brand, last4, funding) = sandbox_token(SECRET_KEY, number)?;
        cards.push(format!(
            "({i}, {}, {}, {}, {})",
            quote(&token),
            quote(&brand),
            quote(&last4),
            quote(&funding)
        ));
    }
    let customer = format!("'cus_a' || ({ID_BASE} + n)");
    let number_prefix = format!("F-{}-", as_of.year());
    let due = InvoiceSeed {
        backend,
        org_id: ORG_ID,
        customer_sql: &customer,
        id_prefix: "inv_a",
        number_prefix: &number_prefix,
        issue_date: issued,
        due_date: as_of,
        filter: "TRUE",
    };
    let later_filter = format!("n % {LATER_EVERY} = 0");
    let later_number = format!("F-{}-L", as_of.year());
    let not_due = InvoiceSeed {
        id_prefix: "inv_l",
        number_prefix: &later_number,
        issue_date: as_of,
        due_date: later,
        filter: &later_filter,
        ..due
    };
    let mut statements = vec![
        numbers_sql(backend, u64::from(count)),
        "CREATE TEMP TABLE bench_cards (ci INTEGER, token TEXT, brand TEXT, last4 TEXT, \
         funding TEXT);"
            .to_owned(),
        format!("INSERT INTO bench_cards VALUES {};", cards.join(", ")),
        format!(
            "INSERT INTO organizations (id, slug, name, locale, created_at, support_phone) \
             VALUES ('{ORG_ID}', 'bench-autopay', 'Cabinet d''essai', 'fr', {created}, \
             '+33100000000');"
        ),
        // What `PUT /v1/admin/payment-settings` stores by default.
        format!(
            "INSERT INTO payment_settings (org_id, collections_phone, card_change_notice_days, \
             accepted_brands, retry_count, retry_delay_days, updated_at, \
             invoice_partial_payments) \
             VALUES ('{ORG_ID}', NULL, 7, 'visa,mastercard', 1, 3, {created}, FALSE);"
        ),
        format!(
            "INSERT INTO customers (id, org_id, email, name, locale, created_at, updated_at) \
             SELECT {customer}, '{ORG_ID}', 'client' || n || '@bench.example.com', \
             'Client ' || n, 'fr', {created}, {created} FROM bench_n;"
        ),
        format!(
            "INSERT INTO payment_methods (id, org_id, customer_id, kind, card_token, card_brand, \
             card_last4, card_exp_month, card_exp_year, card_funding, is_default, created_at) \
             SELECT 'pm_a' || ({ID_BASE} + n), '{ORG_ID}', {customer}, 'card', c.token, \
             c.brand, c.last4, 12, 2030, c.funding, TRUE, {created} \
             FROM bench_n JOIN bench_cards c USING (ci);"
        ),
        format!(
            "INSERT INTO customer_autopay (org_id, customer_id, enabled, payment_method_id, \
             updated_at) \
             SELECT '{ORG_ID}', {customer}, TRUE, 'pm_a' || ({ID_BASE} + n), {created} \
             FROM bench_n;"
        ),
    ];
    statements.extend(invoices_sql(&due));
    statements.extend(invoices_sql(&not_due));
    statements.push("DROP TABLE bench_n; DROP TABLE bench_cards;".to_owned());
    Ok(statements)
}

/// Seeds the migrated database; returns how long it took.
fn seed(
    conn: &mut DbConnection,
    backend: Backend,
    count: u32,
    as_of: NaiveDate,
) -> Result<Duration, String> {
    let started = Instant::now();
    run_in_transaction(conn, &seed_sql(backend, count, as_of)?)?;
    settle(conn, backend)?;
    Ok(started.elapsed())
}

/// Runs `statements` in one transaction.
pub(crate) fn run_in_transaction(
    conn: &mut DbConnection,
    statements: &[String],
) -> Result<(), String> {
    conn.batch_execute("BEGIN")
        .map_err(|e| format!("seed: {e}"))?;
    for statement in statements {
        conn.batch_execute(statement)
            .map_err(|e| format!("seed: {e}\n{statement}"))?;
    }
    conn.batch_execute("COMMIT")
        .map_err(|e| format!("seed: {e}"))
}

/// As a database in service would be: planner statistics, and the seed
/// out of the write-ahead log.
pub(crate) fn settle(conn: &mut DbConnection, backend: Backend) -> Result<(), String> {
    let settle = match backend {
        Backend::Sqlite => "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);",
        Backend::Postgres => "ANALYZE; CHECKPOINT;",
    };
    conn.batch_execute(settle).map_err(|e| format!("seed: {e}"))
}

/// `guichet jobs debit` on the database: its JSON output and how long the
/// process took from spawn to exit.
fn debit_run(
    binary: &Path,
    url: &str,
    data_dir: &Path,
    as_of: NaiveDate,
    log: &Path,
) -> Result<(Value, Duration), String> {
    let stderr =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .args(["jobs", "debit", "--json", "--database-url", url])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--secret-key", SECRET_KEY])
        .args(["--as-of", &as_of.to_string()])
        .env("GUICHET_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        return Err(format!(
            "guichet jobs debit failed ({}): {}",
            output.status,
            text.lines().rev().take(10).collect::<Vec<_>>().join("\n")
        ));
    }
    let json: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "guichet jobs debit printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    Ok((json, elapsed))
}

/// What the database says after the run, against [`Expected`].
#[derive(Debug, Default, Serialize)]
pub struct Verification {
    /// Payment rows of the organization's invoices, all runs together.
    pub payments: u64,
    pub succeeded_payments: u64,
    pub failed_payments: u64,
    pub pending_payments: u64,
    /// Charges in the sandbox's ledger (`sandbox_ledger`, kind `charge`).
    pub gateway_charges: u64,
    pub gateway_succeeded: u64,
    /// The sum of succeeded payments, of succeeded gateway charges and of
    /// the invoices' amount paid, in cents.
    pub paid_amount: i64,
    pub gateway_charged_amount: i64,
    pub invoices_amount_paid: i64,
    pub expected_paid_amount: i64,
    pub invoices_paid: u64,
    pub invoices_open: u64,
    /// E-mails queued by the run (the receipts, with their PDF).
    pub emails_queued: u64,
    /// What a second run the same day did (it must charge nothing).
    pub second_run: Value,
    /// Everything that differs from the expectations (the first
    /// [`MAX_PROBLEMS`]); empty when the run was right.
    pub problems: Vec<String>,
    pub more_problems: u64,
}

impl Verification {
    fn problem(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        } else {
            self.more_problems += 1;
        }
    }

    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

type PaymentRow = (
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
type LedgerRow = (String, i64, String, Option<String>);
type InvoiceRow = (String, String, i64, i64, Option<chrono::NaiveDateTime>);

/// The `n` of a seeded due invoice's id.
fn n_of(id: &str, count: u64) -> Option<u64> {
    id.strip_prefix("inv_a")
        .and_then(|digits| digits.parse::<u64>().ok())
        .and_then(|value| value.checked_sub(ID_BASE))
        .filter(|&n| (1..=count).contains(&n) && invoice_id(n) == id)
}

/// Checks the database after the run against the seed.
pub fn verify(conn: &mut DbConnection, count: u32) -> Result<Verification, String> {
    let count = u64::from(count);
    let db = |e: diesel::result::Error| format!("verify: {e}");
    let want = expected(count);
    let mut v = Verification {
        expected_paid_amount: want.paid_amount,
        ..Verification::default()
    };
    let ledger: Vec<LedgerRow> = sandbox_ledger::table
        .filter(sandbox_ledger::merchant.eq(ORG_ID))
        .filter(sandbox_ledger::kind.eq("charge"))
        .select((
            sandbox_ledger::idempotency_key,
            sandbox_ledger::amount,
            sandbox_ledger::outcome,
            sandbox_ledger::failure_code,
        ))
        .load(conn)
        .map_err(db)?;
    let mut by_key: HashMap<String, LedgerRow> = HashMap::with_capacity(ledger.len());
    for row in ledger {
        v.gateway_charges += 1;
        if row.2 == "succeeded" {
            v.gateway_succeeded += 1;
            v.gateway_charged_amount += row.1;
        }
        // The ledger's key is its primary key with the merchant and kind:
        // one entry per key by construction; counted anyway.
        if let Some(old) = by_key.insert(row.0.clone(), row) {
            v.problem(format!("two gateway charges under the key {}", old.0));
        }
    }
    let rows: Vec<PaymentRow> = invoice_payments::table
        .filter(invoice_payments::org_id.eq(ORG_ID))
        .select((
            invoice_payments::invoice_id,
            invoice_payments::amount,
            invoice_payments::status,
            invoice_payments::source,
            invoice_payments::method,
            invoice_payments::gateway_key,
            invoice_payments::gateway_charge_id,
            invoice_payments::failure_code,
        ))
        .load(conn)
        .map_err(db)?;
    let mut by_invoice: HashMap<String, Vec<PaymentRow>> = HashMap::with_capacity(rows.len());
    for row in rows {
        v.payments += 1;
        match row.2.as_str() {
            "succeeded" => {
                v.succeeded_payments += 1;
                v.paid_amount += row.1;
            }
            "failed" => v.failed_payments += 1,
            _ => v.pending_payments += 1,
        }
        by_invoice.entry(row.0.clone()).or_default().push(row);
    }
    let invoice_rows: Vec<InvoiceRow> = invoices::table
        .filter(invoices::org_id.eq(ORG_ID))
        .select((
            invoices::id,
            invoices::status,
            invoices::total,
            invoices::amount_paid,
            invoices::paid_at,
        ))
        .load(conn)
        .map_err(db)?;
    if invoice_rows.len() as u64 != count + want.not_due {
        v.problem(format!(
            "{} invoices in the database, {} seeded",
            invoice_rows.len(),
            count + want.not_due
        ));
    }
    for (id, status, total, amount_paid, paid_at) in invoice_rows {
        v.invoices_amount_paid += amount_paid;
        match status.as_str() {
            "paid" => v.invoices_paid += 1,
            "open" => v.invoices_open += 1,
            _ => {}
        }
        let payments = by_invoice.remove(&id).unwrap_or_default();
        let Some(n) = n_of(&id, count) else {
            let untouched = id.starts_with("inv_l")
                && payments.is_empty()
                && status == "open"
                && amount_paid == 0;
            if !untouched {
                v.problem(format!(
                    "{id} was not due but is {status} with {amount_paid} paid and {} payments",
                    payments.len()
                ));
            }
            continue;
        };
        let case = case_of(n);
        let want_total = amounts_of(n).2;
        if total != want_total {
            v.problem(format!("{id}: total {total}, {want_total} seeded"));
        }
        let [p] = payments.as_slice() else {
            v.problem(format!("{id} has {} payments, not 1", payments.len()));
            continue;
        };
        let key = guichet_store::repo::invoices::gateway_key(&id, 1);
        if p.5.as_deref() != Some(key.as_str()) {
            v.problem(format!(
                "{id}: the payment's gateway key is not that of attempt 1"
            ));
        }
        if p.1 != want_total || p.3 != "autopay" || p.4 != "card" {
            v.problem(format!(
                "{id}: a {} {} payment of {}, an autopay card payment of {want_total} expected",
                p.3, p.4, p.1
            ));
        }
        let want_status = if case == Case::Paid {
            "succeeded"
        } else {
            "failed"
        };
        if p.2 != want_status
            || p.7.as_deref() != case.failure_code()
            || p.6.is_some() != (case == Case::Paid)
        {
            v.problem(format!("{id}: unexpected payment {p:?} for {case:?}"));
        }
        match by_key.remove(&key) {
            None => v.problem(format!("{id}: no gateway charge under its key")),
            Some((_, amount, outcome, code)) => {
                if amount != want_total
                    || outcome != want_status
                    || code.as_deref() != case.failure_code()
                {
                    v.problem(format!(
                        "{id}: gateway charge {outcome} {code:?} of {amount}, {want_status} of \
                         {want_total} expected"
                    ));
                }
            }
        }
        let applied = match case {
            Case::Paid => status == "paid" && amount_paid == total && paid_at.is_some(),
            _ => status == "open" && amount_paid == 0 && paid_at.is_none(),
        };
        if !applied {
            v.problem(format!(
                "{id} ({case:?}): {status} with {amount_paid} of {total} paid"
            ));
        }
    }
    for (id, rows) in by_invoice {
        v.problem(format!(
            "{} payments of an unknown invoice {id}",
            rows.len()
        ));
    }
    for key in by_key.keys() {
        v.problem(format!("a gateway charge of no seeded invoice: {key}"));
    }
    if v.paid_amount != want.paid_amount
        || v.gateway_charged_amount != want.paid_amount
        || v.invoices_amount_paid != want.paid_amount
    {
        v.problem(format!(
            "sums: {} paid, {} charged at the gateway, {} on the invoices, {} expected",
            v.paid_amount, v.gateway_charged_amount, v.invoices_amount_paid, want.paid_amount
        ));
    }
    if v.invoices_paid != want.paid || v.invoices_open != want.refused + want.not_due {
        v.problem(format!(
            "{} invoices paid and {} open, {} and {} expected",
            v.invoices_paid,
            v.invoices_open,
            want.paid,
            want.refused + want.not_due
        ));
    }
    v.emails_queued = outbox::table
        .count()
        .get_result::<i64>(conn)
        .map(|c| u64::try_from(c).unwrap_or(0))
        .map_err(db)?;
    if v.emails_queued != want.paid {
        v.problem(format!(
            "{} e-mails queued, {} receipts expected",
            v.emails_queued, want.paid
        ));
    }
    Ok(v)
}

/// Checks the job's own report against the seed.
fn check_report(report: &Value, want: &Expected, v: &mut Verification) {
    let autopay = &report["autopay"];
    for (name, value) in [
        ("examined", want.presented),
        ("presented", want.presented),
        ("paid", want.paid),
        ("refused", want.refused),
        ("unknown", 0),
        ("skipped", 0),
        ("collections", 0),
        ("errors", 0),
    ] {
        if autopay[name].as_u64() != Some(value) {
            v.problem(format!(
                "the run reported autopay.{name} = {}, {value} expected",
                autopay[name]
            ));
        }
    }
    for name in ["presented", "errors"] {
        if report[name].as_u64() != Some(0) {
            v.problem(format!(
                "the run reported {name} = {} instalments, 0 expected",
                report[name]
            ));
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    backend: Backend,
    invoices: u32,
    customers: u32,
    /// Invoices due a month later, which the run must leave alone.
    invoices_not_due: u64,
    as_of: NaiveDate,
    cores: usize,
    /// 1-minute load average when the run started and when it ended.
    load_average_1m: [Option<f64>; 2],
    seed_ms: f64,
    expected: Expected,
    /// `guichet jobs debit`, spawn to exit.
    run_ms: f64,
    invoices_per_s: f64,
    /// The job's JSON report (`autopay` is this benchmark's part).
    run_report: Value,
    verification: Verification,
    targets: Vec<Target>,
}

fn progress(message: &str) {
    eprintln!("guichet-bench autopay: {message}");
}

/// `guichet-bench autopay ...`: `args` starts with the subcommand's name.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = match AutopayArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            progress(&e);
            ExitCode::from(2)
        }
    }
}

fn run(args: &AutopayArgs) -> Result<ExitCode, String> {
    let binary = server::resolve_binary(args.server.as_deref())?;
    let as_of = args.as_of.unwrap_or_else(|| SystemClock.today());
    // The seed's own range check, before anything is created.
    as_of
        .checked_sub_days(Days::new(62))
        .and_then(|d| d.checked_add_months(Months::new(3)))
        .ok_or_else(|| format!("{as_of} is out of range"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_at_start = load_average_1m();
    let work_dir = tempfile::Builder::new()
        .prefix("guichet-bench-autopay-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let data_dir = work_dir.path().join("data");
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let database = Database::create(args.db.backend, &args.db.pg_admin_url, work_dir.path())?;
    let url = database.url().to_owned();

    progress(&format!(
        "migrating a fresh {} database",
        args.db.backend.name()
    ));
    let migrated = Command::new(&binary)
        .args(["migrate", "--database-url", &url])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("GUICHET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    if !migrated.success() {
        return Err(format!("guichet migrate failed ({migrated})"));
    }
    let mut conn = connect(&url)?;
    progress(&format!(
        "seeding {} customers with autopay on, each with an open invoice due on {as_of}",
        args.invoices
    ));
    let seeded = seed(&mut conn, args.db.backend, args.invoices, as_of)?;
    progress(&format!("seeded in {:.1} s", seeded.as_secs_f64()));
    if args.seed_only {
        let kept = work_dir.keep();
        std::mem::forget(database);
        println!(
            "{} jobs debit --database-url {url} --data-dir {} --secret-key {SECRET_KEY} \\\n  \
             --as-of {as_of} --json",
            binary.display(),
            kept.join("data").display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    progress(&format!("timing guichet jobs debit --as-of {as_of}"));
    let log = work_dir.path().join("debit-run.log");
    let (output, elapsed) = debit_run(&binary, &url, &data_dir, as_of, &log)?;
    let run_report = output["report"].clone();
    let load_at_end = load_average_1m();
    let per_s = f64::from(args.invoices) / elapsed.as_secs_f64();
    progress(&format!(
        "{} invoices in {:.2} s: {per_s:.0} invoices/s",
        args.invoices,
        elapsed.as_secs_f64()
    ));

    progress("checking every payment, gateway charge, invoice and sum");
    let want = expected(u64::from(args.invoices));
    let mut verification = verify(&mut conn, args.invoices)?;
    check_report(&run_report, &want, &mut verification);
    let (second, _) = debit_run(
        &binary,
        &url,
        &data_dir,
        as_of,
        &work_dir.path().join("debit-second-run.log"),
    )?;
    let second = second["report"]["autopay"].clone();
    // The refused invoices are examined again and skipped: their retry is
    // 3 days later.
    if second["presented"].as_u64() != Some(0)
        || second["errors"].as_u64() != Some(0)
        || second["skipped"].as_u64() != Some(want.refused)
    {
        verification.problem(format!(
            "a second run the same day did not skip the {} refused invoices and only them: \
             {second}",
            want.refused
        ));
    }
    verification.second_run = second;
    drop(conn);

    let value = round(per_s, 1);
    let report = Report {
        benchmark: "autopay",
        backend: args.db.backend,
        invoices: args.invoices,
        customers: args.invoices,
        invoices_not_due: want.not_due,
        as_of,
        cores,
        load_average_1m: [load_at_start, load_at_end],
        seed_ms: round(seeded.as_secs_f64() * 1000.0, 1),
        expected: want,
        run_ms: round(elapsed.as_secs_f64() * 1000.0, 1),
        invoices_per_s: value,
        run_report,
        targets: vec![Target {
            name: "autopay_invoices_per_s",
            comparison: "at_least",
            limit: TARGET_PER_S,
            value: Some(value),
            met: Some(value >= TARGET_PER_S && verification.ok()),
            note: Some(format!(
                "{} open invoices due with autopay on in {:.2} s, guichet jobs debit spawn to \
                 exit{}",
                args.invoices,
                elapsed.as_secs_f64(),
                if verification.ok() {
                    ""
                } else {
                    "; the verification failed"
                }
            )),
        }],
        verification,
    };
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| format!("cannot write JSON: {e}"))?;
    let missed = (report.targets[0].met == Some(false)).then(|| {
        format!("target autopay_invoices_per_s not met: {value}, wanted >= {TARGET_PER_S}")
    });
    finish(
        &json,
        Kept {
            bench: "autopay",
            keep: args.keep,
            work_dir,
            database,
            url: &url,
            logs: "debit-*.log",
        },
        &report.verification.problems,
        missed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_cases_and_cards_are_those_of_rust() {
        assert_eq!(case_of(100), Case::InsufficientFunds);
        assert_eq!(case_of(150), Case::Expired);
        assert_eq!(case_of(175), Case::InsufficientFunds);
        assert_eq!(case_of(101), Case::Paid);
        assert_eq!((card_of(3), card_of(4), card_of(5)), (0, 1, 2));
        assert_eq!((card_of(200), card_of(250), card_of(275)), (3, 4, 3));
        let e = expected(1_000);
        assert_eq!(
            (e.presented, e.paid, e.refused, e.not_due),
            (1_000, 970, 30, 100)
        );
        assert!(e.paid_amount < e.due_amount);
    }

    #[test]
    fn totals_follow_the_domain_rounding() {
        // 3 × 12.34 = 37.02, 20 % = 7.404 → 7.40; 1 × 10.03 → 2.006 → 2.01.
        let line = Line {
            quantity: 3,
            unit_amount: 1_234,
            ..line_of(1)
        };
        let a = line.amounts().unwrap();
        assert_eq!((a.net, a.tax), (3_702, 740));
        for n in [1, 2, 3, 99, 12_345, 99_999] {
            let (net, tax, total) = amounts_of(n);
            assert_eq!(
                line_of(n).amounts(),
                Some(guichet_domain::invoice::LineAmounts { net, tax }),
                "n = {n}"
            );
            assert_eq!(total, net + tax);
            assert!((1_000..=2_500_000).contains(&total));
        }
        assert_eq!(invoice_id(7), "inv_a10000007");
        assert_eq!(n_of("inv_a10000007", 10), Some(7));
        assert_eq!(n_of("inv_a10000007", 6), None);
        assert_eq!(n_of("inv_l10000007", 10), None);
    }

    #[test]
    fn the_command_line_parses() {
        let args = AutopayArgs::try_parse_from(["autopay", "--backend", "postgres"]).unwrap();
        assert_eq!(args.db.backend, Backend::Postgres);
        assert_eq!(args.invoices, 100_000);
        let args =
            AutopayArgs::try_parse_from(["autopay", "--invoices", "500", "--as-of", "2026-12-07"])
                .unwrap();
        assert_eq!(args.invoices, 500);
        assert_eq!(args.as_of, NaiveDate::from_ymd_opt(2026, 12, 7));
        assert!(AutopayArgs::try_parse_from(["autopay", "--invoices", "0"]).is_err());
    }

    /// The seed on a real SQLite database, read back by the store's own
    /// queries, and the verification of a database nobody debited: every
    /// due invoice is reported.
    #[test]
    fn the_seed_runs_on_sqlite_and_an_undebited_database_fails_the_check() {
        use guichet_store::DatabaseUrl;
        use guichet_store::repo::invoices as repo;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("seed.db").display());
        let store = guichet_store::Store::connect(
            &DatabaseUrl::parse(&url).unwrap(),
            &guichet_store::PoolOptions::default(),
        )
        .unwrap();
        let as_of = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let mut conn = connect(&url).unwrap();
        seed(&mut conn, Backend::Sqlite, 200, as_of).unwrap();

        let mut pooled = store.conn().unwrap();
        let candidates = repo::autopay_candidates(&mut pooled, as_of, None, 1_000).unwrap();
        assert_eq!(candidates.len(), 200);
        let inv = repo::get(&mut pooled, ORG_ID, &invoice_id(25)).unwrap();
        assert_eq!(inv.total, amounts_of(25).2);
        assert_eq!(inv.lines, vec![line_of(25)]);
        assert_eq!(
            guichet_domain::invoice::totals(&inv.lines).unwrap().total,
            inv.total
        );
        assert_eq!(inv.amount_due(), inv.total);
        let method = guichet_store::repo::autopay::effective_for_charge(
            &mut pooled,
            ORG_ID,
            "cus_a10000027",
        )
        .unwrap()
        .unwrap();
        let guichet_store::repo::payment_methods::MethodDetails::Card { token, .. } =
            method.details
        else {
            panic!("not a card");
        };
        let tokens = guichet_domain::gateway::sandbox::SandboxTokens::new(SECRET_KEY.as_bytes());
        assert_eq!(tokens.decode(&token).unwrap().view.last4, "4242");
        let settings = guichet_store::repo::payment::get(&mut pooled, ORG_ID).unwrap();
        assert_eq!((settings.retry.retries, settings.retry.delay_days), (1, 3));
        drop(pooled);

        let v = verify(&mut conn, 200).unwrap();
        assert!(!v.ok());
        assert_eq!(v.payments, 0);
        // Each due invoice, the sums, the counts, the e-mails.
        assert_eq!(v.problems.len() as u64 + v.more_problems, 200 + 3);
    }
}
