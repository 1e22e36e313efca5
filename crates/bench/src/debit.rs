//! `guichet-bench debit`: the throughput of `guichet jobs debit`.
//!
//! A fresh database is migrated (`guichet migrate`) and seeded in SQL with
//! `--instalments` orders of 4 monthly instalments each: the first paid a
//! month ago, the second due on `--as-of` (the one the run presents), the
//! last two later. Their cards are sandbox tokens made with the secret key
//! the job is given, so the job's sandbox accepts them; most succeed, a few
//! decline (see [`Case`]). Then `guichet jobs debit --as-of` is timed from
//! spawn to exit, and the database is checked: every due instalment charged
//! exactly once under its attempt's idempotency key, with its own amount,
//! its result applied, its claim released, and the sums equal to the seed's.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, Months, NaiveDate};
use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
use guichet_domain::schedule::idempotency_key;
use guichet_domain::{Clock, SystemClock};
use guichet_store::schema::{charges, instalments, orders, outbox};
use guichet_store::{DatabaseUrl, DbConnection};
use serde::Serialize;
use serde_json::Value;

use crate::Target;
use crate::server::{self, Backend, Database, DatabaseArgs};

/// The secret key of the throwaway database's job: its sandbox tokens are
/// keyed with it. Never used anywhere else.
const SECRET_KEY: &str = "guichet-bench-debit-throwaway-secret-key-0123456789";

/// The target of issue #4, in instalments per second.
const TARGET_PER_S: f64 = 2_000.0;

/// Ids are a prefix and `ID_BASE + n`: fixed width, so they sort by `n`,
/// with the same SQL on both backends.
const ID_BASE: u64 = 10_000_000;

/// How many instalments each seeded order has.
const PER_ORDER: u32 = 4;

/// Customers hold this many orders each.
const ORDERS_PER_CUSTOMER: u32 = 10;

/// Problems listed in full in the report; the rest are counted.
const MAX_PROBLEMS: usize = 20;

#[derive(Debug, Parser)]
#[command(
    name = "guichet-bench debit",
    about = "Seeds a fresh database with due instalments, times `guichet jobs debit` over \
             them and checks that each was charged exactly once; prints JSON."
)]
pub struct DebitArgs {
    #[command(flatten)]
    db: DatabaseArgs,

    /// Due instalments (one per order) presented by the run.
    #[arg(long, default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
    instalments: u32,

    /// The job's --batch (instalments claimed at once) [default: the job's]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: Option<u32>,

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

pub(crate) fn parse_date(value: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{value:?} is not a date: expected YYYY-MM-DD"))
}

/// What happens to the due instalment of order `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A card that is charged (Visa, Mastercard or Visa debit in turn).
    Paid,
    /// First attempt, insufficient funds: a retry is scheduled.
    InsufficientFunds,
    /// First attempt, the card has expired at the issuer: a retry is
    /// scheduled.
    Expired,
    /// The retry of an insufficient-funds failure, failing again: unpaid
    /// (the schedule becomes unpaid and the customer gets an e-mail).
    RetryUnpaid,
}

/// The sandbox cards of the seed, by index: what they do and their number.
const CARDS: [(&str, &str); 5] = [
    ("visa", test_cards::VISA),
    ("mastercard", test_cards::MASTERCARD),
    ("visa_debit", test_cards::VISA_DEBIT),
    ("insufficient_funds", test_cards::INSUFFICIENT_FUNDS),
    ("expired", test_cards::EXPIRED),
];

/// The case of order `n` by `n % 100`: 97 % paid, 2 % retried later,
/// 1 % unpaid. [`CASE_SQL`] says the same in SQL.
pub fn case_of(n: u64) -> Case {
    match n % 100 {
        0 => Case::InsufficientFunds,
        25 => Case::RetryUnpaid,
        50 => Case::Expired,
        _ => Case::Paid,
    }
}

/// The index in [`CARDS`] of order `n`'s card, as [`case_of`].
#[cfg(test)]
fn card_of(n: u64) -> usize {
    match case_of(n) {
        Case::Paid => (n % 3) as usize,
        Case::InsufficientFunds | Case::RetryUnpaid => 3,
        Case::Expired => 4,
    }
}

/// [`card_of`] and whether the due instalment is a retry, in SQL over `n`.
const CASE_SQL: &str = "CASE WHEN n % 100 IN (0, 25) THEN 3 WHEN n % 100 = 50 THEN 4 \
                        ELSE n % 3 END AS ci, CASE WHEN n % 100 = 25 THEN 1 ELSE 0 END AS retry";

/// The total of order `n`, in cents (40.00 to 999.99 EUR).
fn total_of(n: u64) -> i64 {
    4_000 + ((n * 7_919) % 96_000) as i64
}

/// [`total_of`] in SQL over `n`.
const TOTAL_SQL: &str = "(4000 + (n * 7919) % 96000)";

/// Instalment `k` (1-based) of a total split in [`PER_ORDER`]: the
/// remainder cents go to the first ones.
fn instalment_amount(total: i64, k: u32) -> i64 {
    let per = i64::from(PER_ORDER);
    total / per + i64::from(i64::from(k) <= total % per)
}

fn order_id(n: u64) -> String {
    format!("ord_b{}", ID_BASE + n)
}

fn instalment_id(n: u64, k: u32) -> String {
    format!("ins_b{}_{k}", ID_BASE + n)
}

/// What the run must have done, from the seed alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub presented: u64,
    pub paid: u64,
    pub retry_scheduled: u64,
    pub unpaid: u64,
    /// The sum of the instalments that must be paid, in cents.
    pub paid_amount: i64,
    /// The sum of every due instalment, in cents.
    pub due_amount: i64,
}

pub fn expected(instalments: u64) -> Expected {
    let mut e = Expected::default();
    for n in 1..=instalments {
        let amount = instalment_amount(total_of(n), 2);
        e.presented += 1;
        e.due_amount += amount;
        match case_of(n) {
            Case::Paid => {
                e.paid += 1;
                e.paid_amount += amount;
            }
            Case::InsufficientFunds | Case::Expired => e.retry_scheduled += 1,
            Case::RetryUnpaid => e.unpaid += 1,
        }
    }
    e
}

/// SQL literals that differ between the backends.
#[derive(Debug, Clone, Copy)]
struct Dialect(Backend);

impl Dialect {
    fn date(self, d: NaiveDate) -> String {
        match self.0 {
            Backend::Sqlite => format!("'{d}'"),
            Backend::Postgres => format!("DATE '{d}'"),
        }
    }

    fn timestamp(self, d: NaiveDate) -> String {
        match self.0 {
            Backend::Sqlite => format!("'{d} 09:00:00'"),
            Backend::Postgres => format!("TIMESTAMP '{d} 09:00:00'"),
        }
    }

    /// A temporary table `bench_n (n, ci, retry)` of the orders 1..=count.
    fn numbers(self, count: u32) -> String {
        match self.0 {
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
}

/// A sandbox token, keyed like the job's sandbox.
fn token(number: &str) -> Result<(String, String, String, String), String> {
    sandbox_token(SECRET_KEY, number)
}

/// A sandbox token of the test card `number` under `secret_key` (expiring
/// 12/2030), with its brand, last 4 digits and funding.
pub(crate) fn sandbox_token(
    secret_key: &str,
    number: &str,
) -> Result<(String, String, String, String), String> {
    let tokens = SandboxTokens::new(secret_key.as_bytes());
    let cvc = if number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    let card = tokens
        .tokenize(
            CardDetails {
                number: Pan::parse(number).map_err(|e| e.to_string())?,
                exp_month: 12,
                exp_year: 2030,
                cvc: Cvc::parse(cvc).map_err(|e| e.to_string())?,
            },
            SystemClock.today(),
        )
        .map_err(|e| format!("the sandbox refused a test card: {e}"))?;
    Ok((
        card.token,
        card.card.brand.as_str().to_owned(),
        card.card.last4,
        card.card.funding.as_str().to_owned(),
    ))
}

pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The seed, as SQL statements for `backend`.
fn seed_sql(backend: Backend, count: u32, as_of: NaiveDate) -> Result<Vec<String>, String> {
    let sql = Dialect(backend);
    let month = |m: i32| {
        let date = if m < 0 {
            as_of.checked_sub_months(Months::new(m.unsigned_abs()))
        } else {
            as_of.checked_add_months(Months::new(m.unsigned_abs()))
        };
        date.ok_or_else(|| format!("{as_of} is out of range"))
    };
    let (d1, d3, d4) = (month(-1)?, month(1)?, month(2)?);
    let retry_due = as_of
        .checked_sub_days(Days::new(3))
        .ok_or_else(|| format!("{as_of} is out of range"))?;
    let created = sql.timestamp(d1);
    let customers = count.div_ceil(ORDERS_PER_CUSTOMER);
    let mut cards = Vec::new();
    for (i, (_, number)) in CARDS.iter().enumerate() {
        let (token, brand, last4, funding) = token(number)?;
        cards.push(format!(
            "({i}, {}, {}, {}, {})",
            quote(&token),
            quote(&brand),
            quote(&last4),
            quote(&funding)
        ));
    }
    let total = TOTAL_SQL;
    let (d1s, d2s, d3s, d4s, rds) = (
        sql.date(d1),
        sql.date(as_of),
        sql.date(d3),
        sql.date(d4),
        sql.date(retry_due),
    );
    Ok(vec![
        sql.numbers(count),
        "CREATE TEMP TABLE bench_cards (ci INTEGER, token TEXT, brand TEXT, last4 TEXT, \
         funding TEXT);"
            .to_owned(),
        format!("INSERT INTO bench_cards VALUES {};", cards.join(", ")),
        format!(
            "INSERT INTO organizations (id, slug, name, locale, created_at, support_phone) \
             VALUES ('org_bench', 'bench-debit', 'Banc d''essai', 'fr', {created}, \
             '+33100000000');"
        ),
        format!(
            "INSERT INTO customers (id, org_id, email, name, locale, created_at, updated_at) \
             SELECT 'cus_b' || ({ID_BASE} + n), 'org_bench', \
             'client' || n || '@bench.example.com', 'Client ' || n, 'fr', {created}, {created} \
             FROM bench_n WHERE n <= {customers};"
        ),
        format!(
            "INSERT INTO cards (id, org_id, customer_id, token, brand, last4, exp_month, \
             exp_year, funding, created_at) \
             SELECT 'crd_b' || ({ID_BASE} + n), 'org_bench', \
             'cus_b' || ({ID_BASE} + 1 + n % {customers}), c.token, c.brand, c.last4, 12, \
             2030, c.funding, {created} FROM bench_n JOIN bench_cards c USING (ci);"
        ),
        format!(
            "INSERT INTO orders (id, org_id, customer_id, order_number, merchant_brand, \
             purchase_date, total_amount, currency, card_id, status, created_at, updated_at) \
             SELECT 'ord_b' || ({ID_BASE} + n), 'org_bench', \
             'cus_b' || ({ID_BASE} + 1 + n % {customers}), 'BENCH-' || n, 'Maison & Jardin', \
             {d1s}, {total}, 'EUR', 'crd_b' || ({ID_BASE} + n), 'in_progress', {created}, \
             {created} FROM bench_n;"
        ),
        // Instalment 1 paid a month ago; 2 due now (or, for a retry, due
        // three days ago and retried now); 3 and 4 later.
        format!(
            "INSERT INTO instalments (id, order_id, org_id, number, due_date, amount, \
             currency, status, paid_at, attempts, next_attempt_on, debit_on) \
             SELECT 'ins_b' || ({ID_BASE} + n) || '_' || k, 'ord_b' || ({ID_BASE} + n), \
             'org_bench', k, \
             CASE k WHEN 1 THEN {d1s} WHEN 2 THEN CASE retry WHEN 1 THEN {rds} ELSE {d2s} END \
               WHEN 3 THEN {d3s} ELSE {d4s} END, \
             {total} / {PER_ORDER} + CASE WHEN k <= {total} % {PER_ORDER} THEN 1 ELSE 0 END, \
             'EUR', CASE k WHEN 1 THEN 'paid' ELSE 'pending' END, \
             CASE k WHEN 1 THEN {created} ELSE NULL END, \
             CASE WHEN k = 1 OR (k = 2 AND retry = 1) THEN 1 ELSE 0 END, \
             CASE WHEN k = 2 AND retry = 1 THEN {d2s} ELSE NULL END, \
             CASE k WHEN 1 THEN NULL WHEN 2 THEN {d2s} WHEN 3 THEN {d3s} ELSE {d4s} END \
             FROM bench_n CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 \
               UNION ALL SELECT 4) AS ks;"
        ),
        "DROP TABLE bench_n; DROP TABLE bench_cards;".to_owned(),
    ])
}

/// One plain connection to the benchmark database (migrated already).
pub(crate) fn connect(url: &str) -> Result<DbConnection, String> {
    let failed = |e: diesel::ConnectionError| format!("cannot open the database: {e}");
    match DatabaseUrl::parse(url).map_err(|e| e.to_string())? {
        DatabaseUrl::Sqlite(path) => {
            let path = path
                .to_str()
                .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
            Ok(DbConnection::Sqlite(
                diesel::SqliteConnection::establish(path).map_err(failed)?,
            ))
        }
        DatabaseUrl::Postgres(url) => Ok(DbConnection::Postgresql(
            diesel::PgConnection::establish(&url).map_err(failed)?,
        )),
    }
}

/// Seeds the migrated database; returns how long it took.
fn seed(
    conn: &mut DbConnection,
    backend: Backend,
    count: u32,
    as_of: NaiveDate,
) -> Result<Duration, String> {
    let started = Instant::now();
    let statements = seed_sql(backend, count, as_of)?;
    conn.batch_execute("BEGIN")
        .map_err(|e| format!("seed: {e}"))?;
    for statement in &statements {
        conn.batch_execute(statement)
            .map_err(|e| format!("seed: {e}\n{statement}"))?;
    }
    conn.batch_execute("COMMIT")
        .map_err(|e| format!("seed: {e}"))?;
    // As a database in service would be: planner statistics, and the seed
    // out of the write-ahead log.
    let settle = match backend {
        Backend::Sqlite => "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);",
        Backend::Postgres => "ANALYZE; CHECKPOINT;",
    };
    conn.batch_execute(settle)
        .map_err(|e| format!("seed: {e}"))?;
    Ok(started.elapsed())
}

/// `guichet jobs debit` on the database: its JSON output (`report`, and
/// `sepa` for its SEPA step) and how long the process took from spawn to
/// exit.
fn debit_run(
    binary: &Path,
    url: &str,
    data_dir: &Path,
    as_of: NaiveDate,
    batch: Option<u32>,
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
    if let Some(batch) = batch {
        command.args(["--batch", &batch.to_string()]);
    }
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
    /// Charge rows, all runs together.
    pub charges: u64,
    pub succeeded_charges: u64,
    pub failed_charges: u64,
    pub pending_charges: u64,
    /// The sum of succeeded charges, in cents.
    pub charged_amount: i64,
    pub expected_charged_amount: i64,
    /// The sum of the instalments now paid by the run, in cents.
    pub paid_instalments_amount: i64,
    pub unpaid_orders: u64,
    pub emails_queued: u64,
    pub claims_left: u64,
    /// What a second run the same day presented (it must find nothing).
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

type ChargeRow = (
    Option<String>,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
);
type InstalmentRow = (
    String,
    i32,
    String,
    i32,
    i64,
    Option<chrono::NaiveDateTime>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<String>,
);

/// Checks the database after the run against the seed.
pub fn verify(
    conn: &mut DbConnection,
    count: u32,
    as_of: NaiveDate,
) -> Result<Verification, String> {
    let count = u64::from(count);
    let db = |e: diesel::result::Error| format!("verify: {e}");
    let want = expected(count);
    let mut v = Verification {
        expected_charged_amount: want.paid_amount,
        ..Verification::default()
    };
    let rows: Vec<ChargeRow> = charges::table
        .select((
            charges::instalment_id,
            charges::idempotency_key,
            charges::amount,
            charges::status,
            charges::gateway_charge_id,
            charges::failure_code,
        ))
        .load(conn)
        .map_err(db)?;
    let mut by_instalment: std::collections::HashMap<String, Vec<ChargeRow>> =
        std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        v.charges += 1;
        match row.3.as_str() {
            "succeeded" => {
                v.succeeded_charges += 1;
                v.charged_amount += row.2;
            }
            "failed" => v.failed_charges += 1,
            _ => v.pending_charges += 1,
        }
        let Some(id) = row.0.clone() else {
            v.problem(format!("a charge without instalment: {row:?}"));
            continue;
        };
        by_instalment.entry(id).or_default().push(row);
    }
    let rows: Vec<InstalmentRow> = instalments::table
        .select((
            instalments::id,
            instalments::number,
            instalments::status,
            instalments::attempts,
            instalments::amount,
            instalments::paid_at,
            instalments::next_attempt_on,
            instalments::debit_on,
            instalments::claim_token,
        ))
        .load(conn)
        .map_err(db)?;
    if rows.len() as u64 != count * u64::from(PER_ORDER) {
        v.problem(format!(
            "{} instalments in the database, {} seeded",
            rows.len(),
            count * u64::from(PER_ORDER)
        ));
    }
    for (id, number, status, attempts, amount, paid_at, next, debit_on, claim) in rows {
        if claim.is_some() {
            v.claims_left += 1;
        }
        let charges = by_instalment.remove(&id).unwrap_or_default();
        if number != 2 {
            // Paid before the run, or not due yet: untouched.
            let untouched = charges.is_empty()
                && attempts == i32::from(number == 1)
                && status == if number == 1 { "paid" } else { "pending" };
            if !untouched {
                v.problem(format!(
                    "{id} was not due but is {status} after {attempts} attempts with {} \
                     charges",
                    charges.len()
                ));
            }
            continue;
        }
        let Some(n) = id
            .strip_prefix("ins_b")
            .and_then(|rest| rest.strip_suffix("_2"))
            .and_then(|digits| digits.parse::<u64>().ok())
            .and_then(|value| value.checked_sub(ID_BASE))
            .filter(|&n| (1..=count).contains(&n) && instalment_id(n, 2) == id)
        else {
            v.problem(format!("unexpected instalment {id}"));
            continue;
        };
        let case = case_of(n);
        let want_amount = instalment_amount(total_of(n), 2);
        let prior = u32::from(case == Case::RetryUnpaid);
        let [charge] = charges.as_slice() else {
            v.problem(format!("{id} has {} charges, not 1", charges.len()));
            continue;
        };
        if charge.1 != idempotency_key(&id, prior + 1) {
            v.problem(format!(
                "{id}: the charge's key is not that of attempt {}",
                prior + 1
            ));
        }
        if charge.2 != want_amount || amount != want_amount {
            v.problem(format!(
                "{id}: charged {} for an instalment of {amount}, {want_amount} seeded",
                charge.2
            ));
        }
        let (want_charge, want_code) = match case {
            Case::Paid => ("succeeded", None),
            Case::InsufficientFunds | Case::RetryUnpaid => ("failed", Some("insufficient_funds")),
            Case::Expired => ("failed", Some("expired_card")),
        };
        if charge.3 != want_charge
            || charge.5.as_deref() != want_code
            || charge.4.is_some() != (want_charge == "succeeded")
        {
            v.problem(format!("{id}: unexpected charge {charge:?} for {case:?}"));
        }
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let applied = match case {
            Case::Paid => {
                if status == "paid" {
                    v.paid_instalments_amount += amount;
                }
                status == "paid" && paid_at.is_some() && next.is_none() && debit_on.is_none()
            }
            Case::InsufficientFunds | Case::Expired => {
                status == "pending"
                    && next.is_some_and(|d| d > as_of)
                    && debit_on == next
                    && paid_at.is_none()
            }
            Case::RetryUnpaid => status == "unpaid" && debit_on.is_none() && paid_at.is_none(),
        };
        if !applied || attempts != prior + 1 {
            v.problem(format!(
                "{id} ({case:?}): {status} after {attempts} attempts, next {next:?}, debit \
                 on {debit_on:?}"
            ));
        }
    }
    for (id, rows) in by_instalment {
        v.problem(format!(
            "{} charges of an unknown instalment {id}",
            rows.len()
        ));
    }
    if v.charged_amount != want.paid_amount || v.paid_instalments_amount != want.paid_amount {
        v.problem(format!(
            "sums: {} charged and {} paid, {} expected",
            v.charged_amount, v.paid_instalments_amount, want.paid_amount
        ));
    }
    if v.claims_left > 0 {
        v.problem(format!("{} claims left", v.claims_left));
    }
    let unpaid: Vec<String> = orders::table
        .filter(orders::status.eq("unpaid"))
        .select(orders::id)
        .order(orders::id)
        .load(conn)
        .map_err(db)?;
    v.unpaid_orders = unpaid.len() as u64;
    let want_unpaid: Vec<String> = (1..=count)
        .filter(|&n| case_of(n) == Case::RetryUnpaid)
        .map(order_id)
        .collect();
    if unpaid != want_unpaid {
        v.problem(format!(
            "{} orders unpaid, not those of the retried instalments",
            unpaid.len()
        ));
    }
    v.emails_queued = count_of(outbox::table.count().get_result(conn)).map_err(db)?;
    if v.unpaid_orders != want.unpaid || v.emails_queued != want.unpaid {
        v.problem(format!(
            "{} unpaid orders and {} e-mails, {} expected",
            v.unpaid_orders, v.emails_queued, want.unpaid
        ));
    }
    Ok(v)
}

fn count_of(result: Result<i64, diesel::result::Error>) -> Result<u64, diesel::result::Error> {
    result.map(|c| u64::try_from(c).unwrap_or(0))
}

/// Checks the job's own report against the seed.
fn check_report(report: &Value, want: &Expected, v: &mut Verification) {
    let field = |name: &str| report[name].as_u64();
    for (name, value) in [
        ("presented", want.presented),
        ("paid", want.paid),
        ("retry_scheduled", want.retry_scheduled),
        ("unpaid", want.unpaid),
        ("transient_failures", 0),
        ("reconciled", 0),
        ("errors", 0),
    ] {
        if field(name) != Some(value) {
            v.problem(format!(
                "the run reported {name} = {}, {value} expected",
                report[name]
            ));
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    backend: Backend,
    instalments: u32,
    orders: u32,
    instalment_rows: u64,
    as_of: NaiveDate,
    /// The job's --batch; `null`: its default.
    batch: Option<u32>,
    cores: usize,
    /// 1-minute load average when the run started and when it ended.
    load_average_1m: [Option<f64>; 2],
    seed_ms: f64,
    expected: Expected,
    /// `guichet jobs debit`, spawn to exit.
    run_ms: f64,
    instalments_per_s: f64,
    /// The job's JSON report.
    run_report: Value,
    /// The report of the job's SEPA step (nothing to do here).
    run_sepa: Value,
    verification: Verification,
    targets: Vec<Target>,
}

pub(crate) fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn progress(message: &str) {
    eprintln!("guichet-bench debit: {message}");
}

pub(crate) fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

/// `guichet-bench debit ...`: `args` starts with the subcommand's name.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = match DebitArgs::try_parse_from(args) {
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

fn run(args: &DebitArgs) -> Result<ExitCode, String> {
    let binary = server::resolve_binary(args.server.as_deref())?;
    let as_of = args.as_of.unwrap_or_else(|| SystemClock.today());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_at_start = load_average_1m();
    let work_dir = tempfile::Builder::new()
        .prefix("guichet-bench-debit-")
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
        "seeding {} orders of {PER_ORDER} instalments, {} due on {as_of}",
        args.instalments, args.instalments
    ));
    let seeded = seed(&mut conn, args.db.backend, args.instalments, as_of)?;
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

    progress(&format!(
        "timing guichet jobs debit --as-of {as_of}{}",
        args.batch
            .map(|b| format!(" --batch {b}"))
            .unwrap_or_default()
    ));
    let log = work_dir.path().join("debit-run.log");
    let (output, elapsed) = debit_run(&binary, &url, &data_dir, as_of, args.batch, &log)?;
    let run_report = output["report"].clone();
    let load_at_end = load_average_1m();
    let per_s = f64::from(args.instalments) / elapsed.as_secs_f64();
    progress(&format!(
        "{} instalments in {:.2} s: {per_s:.0} instalments/s",
        args.instalments,
        elapsed.as_secs_f64()
    ));

    progress("checking every charge, instalment and sum");
    let want = expected(u64::from(args.instalments));
    let mut verification = verify(&mut conn, args.instalments, as_of)?;
    check_report(&run_report, &want, &mut verification);
    let (second, _) = debit_run(
        &binary,
        &url,
        &data_dir,
        as_of,
        args.batch,
        &work_dir.path().join("debit-second-run.log"),
    )?;
    let second = second["report"].clone();
    if second["presented"].as_u64() != Some(0) || second["errors"].as_u64() != Some(0) {
        verification.problem(format!("a second run the same day did something: {second}"));
    }
    verification.second_run = second;
    drop(conn);

    let value = round(per_s, 1);
    let report = Report {
        benchmark: "debit",
        backend: args.db.backend,
        instalments: args.instalments,
        orders: args.instalments,
        instalment_rows: u64::from(args.instalments) * u64::from(PER_ORDER),
        as_of,
        batch: args.batch,
        cores,
        load_average_1m: [load_at_start, load_at_end],
        seed_ms: round(seeded.as_secs_f64() * 1000.0, 1),
        expected: want,
        run_ms: round(elapsed.as_secs_f64() * 1000.0, 1),
        instalments_per_s: value,
        run_report,
        run_sepa: output["sepa"].clone(),
        targets: vec![Target {
            name: "debit_instalments_per_s",
            comparison: "at_least",
            limit: TARGET_PER_S,
            value: Some(value),
            met: Some(value >= TARGET_PER_S && verification.ok()),
            note: Some(format!(
                "{} due instalments in {:.2} s, guichet jobs debit spawn to exit{}",
                args.instalments,
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
        format!("target debit_instalments_per_s not met: {value}, wanted >= {TARGET_PER_S}")
    });
    finish(
        &json,
        Kept {
            bench: "debit",
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

/// What a run made that `--keep` keeps, and the bench's name for its
/// messages.
pub(crate) struct Kept<'a> {
    /// `debit`, `autopay`.
    pub bench: &'a str,
    pub keep: bool,
    pub work_dir: tempfile::TempDir,
    pub database: Database,
    pub url: &'a str,
    /// The job's logs in the work directory, as a glob.
    pub logs: &'a str,
}

/// Prints the report, keeps or drops what the run made, and says how it
/// ended: 0 when the check passed (the target, met or `missed`, is in the
/// JSON), 1 with the problems when it failed.
pub(crate) fn finish(
    json: &str,
    kept: Kept<'_>,
    problems: &[String],
    missed: Option<String>,
) -> Result<ExitCode, String> {
    println!("{json}");
    let Kept {
        bench,
        keep,
        work_dir,
        mut database,
        url,
        logs,
    } = kept;
    let progress = |message: &str| eprintln!("guichet-bench {bench}: {message}");
    if keep {
        let kept = work_dir.keep();
        progress(&format!(
            "kept {} (database {url}, logs {logs})",
            kept.display()
        ));
        std::mem::forget(database);
    } else {
        database.drop_now()?;
    }
    if problems.is_empty() {
        if let Some(missed) = missed {
            progress(&missed);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in problems {
            progress(problem);
        }
        Ok(ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_cases_and_cards_are_those_of_rust() {
        assert_eq!(case_of(100), Case::InsufficientFunds);
        assert_eq!(case_of(125), Case::RetryUnpaid);
        assert_eq!(case_of(150), Case::Expired);
        assert_eq!(case_of(101), Case::Paid);
        assert_eq!((card_of(3), card_of(4), card_of(5)), (0, 1, 2));
        assert_eq!((card_of(200), card_of(225), card_of(250)), (3, 3, 4));
        let e = expected(1_000);
        assert_eq!(
            (e.presented, e.paid, e.retry_scheduled, e.unpaid),
            (1_000, 970, 20, 10)
        );
        assert!(e.paid_amount < e.due_amount);
    }

    #[test]
    fn instalments_sum_to_the_total() {
        for n in [1, 2, 3, 99, 12_345] {
            let total = total_of(n);
            assert!((4_000..100_000).contains(&total));
            let sum: i64 = (1..=PER_ORDER).map(|k| instalment_amount(total, k)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(instalment_amount(4_003, 1), 1_001);
        assert_eq!(instalment_amount(4_003, 3), 1_001);
        assert_eq!(instalment_amount(4_003, 4), 1_000);
        assert_eq!(order_id(7), "ord_b10000007");
        assert_eq!(instalment_id(7, 2), "ins_b10000007_2");
    }

    #[test]
    fn the_command_line_parses() {
        let args = DebitArgs::try_parse_from(["debit", "--backend", "postgres"]).unwrap();
        assert_eq!(args.db.backend, Backend::Postgres);
        assert_eq!(args.instalments, 100_000);
        assert_eq!(args.batch, None);
        let args = DebitArgs::try_parse_from([
            "debit",
            "--instalments",
            "500",
            "--batch",
            "250",
            "--as-of",
            "2026-11-22",
        ])
        .unwrap();
        assert_eq!((args.instalments, args.batch), (500, Some(250)));
        assert_eq!(args.as_of, NaiveDate::from_ymd_opt(2026, 11, 22));
        assert!(DebitArgs::try_parse_from(["debit", "--instalments", "0"]).is_err());
        assert!(DebitArgs::try_parse_from(["debit", "--as-of", "22/11/2026"]).is_err());
    }

    /// The seed on a real SQLite database, and the verification of a
    /// database nobody debited: every due instalment is reported.
    #[test]
    fn the_seed_runs_on_sqlite_and_an_undebited_database_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("seed.db").display());
        let store = guichet_store::Store::connect(
            &DatabaseUrl::parse(&url).unwrap(),
            &guichet_store::PoolOptions::default(),
        )
        .unwrap();
        drop(store);
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let mut conn = connect(&url).unwrap();
        seed(&mut conn, Backend::Sqlite, 200, as_of).unwrap();

        let due: i64 = instalments::table
            .filter(instalments::status.eq("pending"))
            .filter(instalments::debit_on.le(as_of))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(due, 200);
        let due_amounts: Vec<i64> = instalments::table
            .filter(instalments::number.eq(2))
            .select(instalments::amount)
            .load(&mut conn)
            .unwrap();
        assert_eq!(due_amounts.iter().sum::<i64>(), expected(200).due_amount);
        let id = instalment_id(25, 2);
        let retry: (i32, Option<NaiveDate>) = instalments::table
            .find(&id)
            .select((instalments::attempts, instalments::next_attempt_on))
            .first(&mut conn)
            .unwrap();
        assert_eq!(retry, (1, Some(as_of)));
        let token: String = guichet_store::schema::cards::table
            .find("crd_b10000025")
            .select(guichet_store::schema::cards::token)
            .first(&mut conn)
            .unwrap();
        let tokens = SandboxTokens::new(SECRET_KEY.as_bytes());
        assert_eq!(tokens.decode(&token).unwrap().view.last4, "9995");

        let v = verify(&mut conn, 200, as_of).unwrap();
        assert!(!v.ok());
        assert_eq!(v.charges, 0);
        // Each due instalment, the sums, the unpaid orders and their e-mails.
        assert_eq!(v.problems.len() as u64 + v.more_problems, 200 + 3);
    }
}
