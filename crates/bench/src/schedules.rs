//! The `schedules` scenario: `GET /v1/me/schedules` for the demo customer,
//! who has 20 schedules of 4 instalments, on a big database (100 000
//! customers, 1 000 000 instalments) and on a small one (100 customers,
//! 1 000 instalments).
//!
//! Each database is filled the same way, its server running:
//!
//! 1. through the API, a sandbox card token (`POST /v1/sandbox/card-tokens`);
//! 2. in SQL, from this process, the bulk: customers of the demo
//!    organization with a card each, and orders of 4 monthly instalments
//!    spread over them (PostgreSQL `generate_series`, SQLite a recursive
//!    CTE), up to the population's counts; then PostgreSQL's statistics
//!    (`VACUUM (ANALYZE)`, what autovacuum would do a minute later);
//! 3. through the API again, the demo customer's 20 orders
//!    (`POST /v1/admin/orders` as the demo admin), two of them partly
//!    cancelled (`POST /v1/admin/orders/{id}/cancellations`).
//!
//! Bulk rows are what the server itself would write: ids of the usual
//! shape (prefix, 20 characters of the id alphabet: here hexadecimal),
//! instalment amounts that split the total as `plan_equal` does (remainder
//! cents on the first ones), instalments paid when their due date has come
//! and pending after it (so no debit run picks any), one order in ten that
//! is still running with its last instalment cancelled by a partial
//! cancellation (an `adjustments` row; the instalments then sum to the
//! total less the cancelled amount), and the order's status derived as the
//! domain does. [`verify`] checks the sums and reads bulk orders back
//! through the store.

use std::time::Instant;

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};
use guichet_store::repo::schedules as store_schedules;
use guichet_store::{DatabaseUrl, DbConnection, PoolOptions, Store, StoreError};
use serde::Serialize;

use crate::http::RequestSpec;
use crate::scenarios::{DEMO_EMAIL, DEMO_ORGANIZATION, DEMO_PASSWORD, Setup};
use crate::server::Backend;

/// The demo admin (`api/src/demo.rs`), who creates the customer's orders.
pub const ADMIN_EMAIL: &str = "admin@demo.guichet.localhost";
pub const ADMIN_PASSWORD: &str = "Admin-Demo-2026!";

/// The sandbox's Visa credit test card: every charge succeeds.
const TEST_CARD: &str = "4242424242424242";

/// Orders of the measured customer, and instalments per order (bulk too).
pub const CUSTOMER_ORDERS: u32 = 20;
pub const INSTALMENTS_PER_ORDER: u64 = 4;

/// Orders of the measured customer that get a partial cancellation.
const CUSTOMER_CANCELLATIONS: usize = 2;

/// How many rows a database holds once filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Population {
    pub customers: u64,
    pub instalments: u64,
}

/// The database the targets are about.
pub const BIG: Population = Population {
    customers: 100_000,
    instalments: 1_000_000,
};

/// The database it is compared with.
pub const SMALL: Population = Population {
    customers: 100,
    instalments: 1_000,
};

/// The rows to add in SQL so that, with the customer's orders still to
/// come, the database holds `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulk {
    pub customers: u64,
    pub instalments: u64,
}

impl Bulk {
    /// Orders of [`INSTALMENTS_PER_ORDER`] instalments, the last one with
    /// up to 3 more so that the count is exact.
    pub fn orders(self) -> u64 {
        self.instalments / INSTALMENTS_PER_ORDER
    }

    /// The instalments of the last order.
    pub fn last_order_instalments(self) -> u64 {
        INSTALMENTS_PER_ORDER + self.instalments % INSTALMENTS_PER_ORDER
    }
}

/// The bulk that brings a database holding `customers` and `instalments`
/// to `target`, counting the customer's orders still to be created.
pub fn bulk_for(target: Population, customers: u64, instalments: u64) -> Result<Bulk, String> {
    let to_come = u64::from(CUSTOMER_ORDERS) * INSTALMENTS_PER_ORDER;
    let taken = instalments + to_come;
    if customers >= target.customers || taken + INSTALMENTS_PER_ORDER > target.instalments {
        return Err(format!(
            "the database already holds {customers} customers and {instalments} \
             instalments (+{to_come} to come): too many for {} and {}",
            target.customers, target.instalments
        ));
    }
    Ok(Bulk {
        customers: target.customers - customers,
        instalments: target.instalments - taken,
    })
}

/// A card token and what the server shows of its card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub funding: String,
}

impl CardToken {
    /// Reads the answer of `POST /v1/sandbox/card-tokens`.
    pub fn from_json(v: &serde_json::Value) -> Result<CardToken, String> {
        let text = |v: &serde_json::Value, name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("card token: no {name}"))
        };
        let card = &v["card"];
        let number = |name: &str| {
            card[name]
                .as_u64()
                .ok_or_else(|| format!("card token: no card.{name}"))
        };
        Ok(CardToken {
            token: text(v, "token")?,
            brand: text(card, "brand")?,
            last4: text(card, "last4")?,
            exp_month: u8::try_from(number("exp_month")?).map_err(|e| e.to_string())?,
            exp_year: u16::try_from(number("exp_year")?).map_err(|e| e.to_string())?,
            funding: text(card, "funding")?,
        })
    }
}

/// `value` as an SQL string literal.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The SQL that differs between the backends.
struct Dialect(Backend);

impl Dialect {
    /// `insert` fed by `select`, which reads `s.n` from 1 to `count`.
    fn series_insert(&self, count: u64, insert: &str, select: &str) -> String {
        match self.0 {
            Backend::Postgres => {
                format!("{insert} {select} FROM generate_series(1, {count}) AS s(n)")
            }
            Backend::Sqlite => format!(
                "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s \
                 WHERE n < {count}) {insert} {select} FROM s"
            ),
        }
    }

    /// A new random id `prefix_` + 20 hexadecimal digits (the id alphabet
    /// holds them); `salt` is a number unique to the row.
    fn id(&self, prefix: &str, salt: &str) -> String {
        match self.0 {
            Backend::Postgres => {
                format!("'{prefix}_' || substr(md5(random()::text || ({salt})::text), 1, 20)")
            }
            Backend::Sqlite => format!("'{prefix}_' || lower(hex(randomblob(10)))"),
        }
    }

    /// Today (UTC) plus `days` (an integer expression).
    fn today_plus(&self, days: &str) -> String {
        match self.0 {
            Backend::Postgres => format!("((now() AT TIME ZONE 'UTC')::date + ({days}))"),
            Backend::Sqlite => format!("date('now', ({days}) || ' days')"),
        }
    }

    /// Now (UTC), as the server writes instants.
    fn now(&self) -> &'static str {
        match self.0 {
            Backend::Postgres => "(now() AT TIME ZONE 'UTC')",
            Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        }
    }

    /// Midnight of the date `date`, as an instant.
    fn midnight(&self, date: &str) -> String {
        match self.0 {
            Backend::Postgres => format!("({date})::timestamp"),
            Backend::Sqlite => format!("({date}) || ' 00:00:00.000'"),
        }
    }
}

/// The SQL that adds a [`Bulk`]: `setup` (temporary tables, customers and
/// their cards), `slices` of the orders with their instalments and
/// cancellations, in order, then `teardown`. Something else may write
/// between two slices: the customer's orders, so that they lie among the
/// others as in a database filled over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSql {
    pub setup: Vec<String>,
    pub slices: Vec<Vec<String>>,
    pub teardown: Vec<String>,
}

/// The statements that add `bulk` to organization `org_id`, every card
/// with `card`'s token, the orders in `slices` slices. Bulk order `n` was
/// bought `n % 150` days ago; its instalment `k` is due `30 × (k − 1)` days
/// after that. Each has 4 instalments, the last up to 7.
pub fn bulk_sql(
    backend: Backend,
    org_id: &str,
    card: &CardToken,
    bulk: Bulk,
    slices: u64,
) -> BulkSql {
    let d = Dialect(backend);
    let org = quote(org_id);
    let now = d.now();
    let customers = bulk.customers;
    // Instalment k of order o (bought o.age days ago) is due on day
    // 30 (k - 1) - o.age from today: paid if that day has come, cancelled
    // if it is the last one of an order with a cancellation, else pending.
    let due = d.today_plus("30 * (k.k - 1) - o.age");
    let paid = "30 * (k.k - 1) <= o.age";
    let cancelled = "k.k = o.parts AND o.cut = 1";
    let orders = bulk.orders();
    let last_parts = bulk.last_order_instalments();
    let setup = vec![
        "CREATE TEMP TABLE bench_customers (n INTEGER PRIMARY KEY, id TEXT NOT NULL, \
         card_id TEXT NOT NULL)"
            .to_owned(),
        d.series_insert(
            customers,
            "INSERT INTO bench_customers (n, id, card_id)",
            &format!("SELECT s.n, {}, {}", d.id("cus", "s.n"), d.id("crd", "s.n")),
        ),
        format!(
            "INSERT INTO customers (id, org_id, email, name, mobile, locale, external_ref, \
             password_hash, registered_at, blocked_at, created_at, updated_at) \
             SELECT id, {org}, 'bench.' || n || '@example.com', 'Client ' || n, NULL, 'fr', \
             NULL, NULL, NULL, NULL, {now}, {now} FROM bench_customers"
        ),
        format!(
            "INSERT INTO cards (id, org_id, customer_id, token, brand, last4, exp_month, \
             exp_year, funding, created_at) \
             SELECT card_id, {org}, id, {}, {}, {}, {}, {}, {}, {now} FROM bench_customers",
            quote(&card.token),
            quote(&card.brand),
            quote(&card.last4),
            card.exp_month,
            card.exp_year,
            quote(&card.funding),
        ),
        "CREATE TEMP TABLE bench_orders (n INTEGER PRIMARY KEY, id TEXT NOT NULL, \
         customer_n INTEGER NOT NULL, age INTEGER NOT NULL, total BIGINT NOT NULL, \
         parts INTEGER NOT NULL, cut INTEGER NOT NULL)"
            .to_owned(),
        // Totals from 40.00 to 999.99 EUR.
        d.series_insert(
            orders,
            "INSERT INTO bench_orders (n, id, customer_n, age, total, parts, cut)",
            &format!(
                "SELECT s.n, {}, (s.n - 1) % {customers} + 1, s.n % 150, \
                 4000 + (s.n * 37) % 96000, \
                 CASE WHEN s.n = {orders} THEN {last_parts} ELSE 4 END, 0",
                d.id("ord", "s.n")
            ),
        ),
        // One order in ten still running (its last instalment not yet due)
        // has a partial cancellation of that instalment.
        "UPDATE bench_orders SET cut = 1 WHERE n % 10 = 0 AND age < 30 * (parts - 1)".to_owned(),
    ];
    let slice = |lo: u64, hi: u64| {
        let within = format!("o.n > {lo} AND o.n <= {hi}");
        vec![
            format!(
                "INSERT INTO orders (id, org_id, customer_id, order_number, merchant_brand, \
             purchase_date, total_amount, currency, card_id, status, created_at, updated_at) \
             SELECT o.id, {org}, c.id, 'BENCH-' || o.n, 'Maison & Jardin', {}, o.total, 'EUR', \
             c.card_id, \
             CASE WHEN o.age >= 30 * (o.parts - 1) \
             OR (o.cut = 1 AND o.age >= 30 * (o.parts - 2)) THEN 'completed' \
             ELSE 'in_progress' END, {now}, {now} \
             FROM bench_orders o JOIN bench_customers c ON c.n = o.customer_n WHERE {within}",
                d.today_plus("-o.age"),
            ),
            format!(
                "INSERT INTO instalments (id, order_id, org_id, number, due_date, amount, \
             currency, status, paid_at, attempts, next_attempt_on, debit_on, claim_token, \
             claimed_until) \
             SELECT {id}, o.id, {org}, k.k, {due}, \
             CASE WHEN {cancelled} THEN 0 \
             ELSE o.total / o.parts + CASE WHEN k.k <= o.total % o.parts THEN 1 ELSE 0 END \
             END, 'EUR', \
             CASE WHEN {paid} THEN 'paid' WHEN {cancelled} THEN 'cancelled' \
             ELSE 'pending' END, \
             CASE WHEN {paid} THEN {paid_at} ELSE NULL END, \
             CASE WHEN {paid} THEN 1 ELSE 0 END, NULL, \
             CASE WHEN {paid} OR {cancelled} THEN NULL ELSE {due} END, NULL, NULL \
             FROM bench_orders o JOIN ({numbers}) k ON k.k <= o.parts WHERE {within}",
                id = d.id("ins", "o.n * 8 + k.k"),
                numbers = (1..=INSTALMENTS_PER_ORDER + 3)
                    .map(|k| format!("SELECT {k} AS k"))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL "),
                paid_at = d.midnight(&due),
            ),
            format!(
                "INSERT INTO adjustments (id, order_id, kind, amount, refund_amount, created_at) \
             SELECT {}, o.id, 'partial_cancellation', o.total / o.parts, NULL, {now} \
             FROM bench_orders o WHERE o.cut = 1 AND {within}",
                d.id("adj", "o.n"),
            ),
        ]
    };
    let slices = slices.max(1);
    BulkSql {
        setup,
        slices: (0..slices)
            .map(|i| slice(orders * i / slices, orders * (i + 1) / slices))
            .collect(),
        teardown: vec![
            "DROP TABLE bench_orders".to_owned(),
            "DROP TABLE bench_customers".to_owned(),
        ],
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Integer)]
    parent: i32,
    #[diesel(sql_type = Text)]
    detail: String,
}

fn db_error(what: &str) -> impl Fn(diesel::result::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Runs `sql`, a statement with no result rows.
pub fn execute(conn: &mut DbConnection, sql: &str) -> Result<(), String> {
    diesel::sql_query(sql)
        .execute(conn)
        .map(drop)
        .map_err(|e| format!("{e}, in: {}", &sql[..sql.len().min(300)]))
}

/// The `n` of the first row `sql` returns (0 without rows).
pub fn count(conn: &mut DbConnection, sql: &str) -> Result<u64, String> {
    let rows: Vec<Count> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql).load(c),
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c),
    }
    .map_err(db_error(sql))?;
    let n = rows.first().map_or(0, |r| r.n);
    u64::try_from(n).map_err(|_| format!("{sql}: negative count {n}"))
}

/// The `id` column of the rows `sql` returns.
pub fn ids(conn: &mut DbConnection, sql: &str) -> Result<Vec<String>, String> {
    let rows: Vec<Id> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql).load(c),
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c),
    }
    .map_err(db_error(sql))?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Opens a connection of its own to the database at `url`.
pub fn connect(url: &str) -> Result<guichet_store::db::PooledConn, String> {
    let url = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    let options = PoolOptions {
        max_size: 1,
        migrate: false,
        ..PoolOptions::one_shot()
    };
    let store = Store::connect(&url, &options).map_err(|e| e.to_string())?;
    store.conn().map_err(|e| e.to_string())
}

/// What a filled database holds and how long filling it took.
#[derive(Debug, Clone, Serialize)]
pub struct Filled {
    pub customers: u64,
    pub orders: u64,
    pub instalments: u64,
    pub adjustments: u64,
    /// The SQL bulk, then statistics (PostgreSQL) or a WAL checkpoint
    /// (SQLite).
    pub bulk_secs: f64,
    /// The plan of each query the endpoint runs, with the customer's ids.
    pub query_plans: Vec<QueryPlan>,
}

/// What the `schedules` scenario measured on: the main server's database
/// filled to [`BIG`], a second one to [`SMALL`].
#[derive(Debug, Clone, Serialize)]
pub struct Databases {
    pub big: Filled,
    pub small: Filled,
}

/// The measured customer's request and what the database holds.
#[derive(Debug)]
pub struct Prepared {
    pub request: RequestSpec,
    pub filled: Filled,
}

fn expect_token(response: crate::scenarios::Response, what: &str) -> Result<String, String> {
    response
        .expect(200)
        .map_err(|e| format!("{what}: {e}"))?
        .json()?["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: no access_token in the answer"))
}

/// Fills the database at `url` (its server answering through `setup`) up
/// to `target`, and returns the request listing the customer's schedules.
pub fn prepare(
    setup: &mut Setup<'_>,
    backend: Backend,
    url: &str,
    target: Population,
    progress: &dyn Fn(&str),
) -> Result<Prepared, String> {
    let admin = setup.send(&crate::scenarios::staff_login())?;
    let admin = expect_token(admin, "staff login")?;
    let card = setup
        .send(&RequestSpec::json(
            "POST",
            "/v1/sandbox/card-tokens",
            &serde_json::json!({
                "number": TEST_CARD, "exp_month": 12, "exp_year": 2030, "cvc": "123",
            }),
        ))?
        .expect(201)
        .map_err(|e| format!("card token: {e}"))?;
    let card = CardToken::from_json(&card.json()?)?;

    let mut conn = connect(url)?;
    let conn = &mut *conn;
    let org_id = ids(
        conn,
        &format!(
            "SELECT id FROM organizations WHERE slug = {}",
            quote(DEMO_ORGANIZATION)
        ),
    )?
    .pop()
    .ok_or("no demo organization")?;
    let bulk = bulk_for(
        target,
        count(conn, "SELECT COUNT(*) AS n FROM customers")?,
        count(conn, "SELECT COUNT(*) AS n FROM instalments")?,
    )?;
    let login = RequestSpec::json(
        "POST",
        "/v1/auth/login",
        &serde_json::json!({
            "organization": DEMO_ORGANIZATION,
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
        }),
    );
    let customer = expect_token(setup.send(&login)?, "login")?;
    let me = setup
        .send(&RequestSpec::get("/v1/me").bearer(&customer))?
        .expect(200)
        .map_err(|e| format!("GET /v1/me: {e}"))?
        .json()?;
    let customer_id = me["id"].as_str().ok_or("GET /v1/me: no id")?.to_owned();

    progress(&format!(
        "adding {} customers and {} orders ({} instalments) in SQL, and the customer's \
         {CUSTOMER_ORDERS} orders through the API among them",
        bulk.customers,
        bulk.orders(),
        bulk.instalments
    ));
    let started = Instant::now();
    if backend == Backend::Sqlite {
        // This connection only: a bigger page cache for the index inserts.
        execute(conn, "PRAGMA cache_size = -262144")?;
    }
    let sql = bulk_sql(
        backend,
        &org_id,
        &card,
        bulk,
        u64::from(CUSTOMER_ORDERS) + 1,
    );
    let run = |conn: &mut DbConnection, statements: &[String]| {
        guichet_store::transaction(conn, |conn| {
            for statement in statements {
                execute(conn, statement).map_err(StoreError::Database)?;
            }
            Ok::<_, StoreError>(())
        })
        .map_err(|e| format!("bulk: {e}"))
    };
    run(conn, &sql.setup)?;
    let mut created = Vec::new();
    for (j, slice) in sql.slices.iter().enumerate() {
        if j > 0 {
            created.push(create_order(setup, &admin, &customer_id, &card.token, j)?);
        }
        run(conn, slice)?;
    }
    run(conn, &sql.teardown)?;
    cancel_some(setup, &admin, &created)?;
    match backend {
        Backend::Postgres => execute(
            conn,
            "VACUUM (ANALYZE) customers, cards, orders, instalments, adjustments",
        )?,
        Backend::Sqlite => execute(conn, "PRAGMA wal_checkpoint(TRUNCATE)")?,
    }
    let bulk_secs = started.elapsed().as_secs_f64();
    progress(&format!("filled in {bulk_secs:.1} s"));

    let filled = verify(conn, &org_id, &customer_id, target)?;
    let request = RequestSpec::get("/v1/me/schedules").bearer(&customer);
    let body = setup
        .send(&request)?
        .expect(200)
        .map_err(|e| format!("GET /v1/me/schedules: {e}"))?
        .json()?;
    check_list(&body)?;
    let query_plans = explain(conn, &org_id, &customer_id)?;
    Ok(Prepared {
        request,
        filled: Filled {
            query_plans,
            bulk_secs: (bulk_secs * 10.0).round() / 10.0,
            ..filled
        },
    })
}

/// The customer's `j`-th order (from 1), through the API: equal monthly
/// instalments, bought `j` days ago, the first due `j` days from now (no
/// debit run picks them up during the run).
fn create_order(
    setup: &mut Setup<'_>,
    admin: &str,
    customer_id: &str,
    token: &str,
    j: usize,
) -> Result<String, String> {
    let today = chrono::Utc::now().date_naive();
    let days = chrono::Days::new(u64::try_from(j).map_err(|e| e.to_string())?);
    let body = serde_json::json!({
        "customer_id": customer_id,
        "order_number": format!("CLAIRE-{j:02}"),
        "merchant_brand": "Maison & Jardin",
        "purchase_date": today.checked_sub_days(days).ok_or("date out of range")?,
        "total": {"amount": 12_000 + 1_001 * j, "currency": "EUR"},
        "instalments": INSTALMENTS_PER_ORDER,
        "first_due_date": today.checked_add_days(days).ok_or("date out of range")?,
        "card_token": token,
    });
    let order = setup
        .send(&RequestSpec::json("POST", "/v1/admin/orders", &body).bearer(admin))?
        .expect(201)
        .map_err(|e| format!("POST /v1/admin/orders: {e}"))?
        .json()?;
    order["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "POST /v1/admin/orders: no id".to_owned())
}

/// Cancels part of the first of the customer's orders, through the API.
fn cancel_some(setup: &mut Setup<'_>, admin: &str, created: &[String]) -> Result<(), String> {
    for id in created.iter().take(CUSTOMER_CANCELLATIONS) {
        let body = serde_json::json!({"amount": {"amount": 2_500, "currency": "EUR"}});
        let path = format!("/v1/admin/orders/{id}/cancellations");
        setup
            .send(&RequestSpec::json("POST", &path, &body).bearer(admin))?
            .expect(201)
            .map_err(|e| format!("POST {path}: {e}"))?;
    }
    Ok(())
}

/// Counts the rows, checks that every order's instalments and
/// cancellations add up to its total, and reads a few bulk customers'
/// orders back through the store (as the server would).
fn verify(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    target: Population,
) -> Result<Filled, String> {
    let filled = Filled {
        customers: count(conn, "SELECT COUNT(*) AS n FROM customers")?,
        orders: count(conn, "SELECT COUNT(*) AS n FROM orders")?,
        instalments: count(conn, "SELECT COUNT(*) AS n FROM instalments")?,
        adjustments: count(conn, "SELECT COUNT(*) AS n FROM adjustments")?,
        bulk_secs: 0.0,
        query_plans: Vec::new(),
    };
    if filled.customers != target.customers || filled.instalments != target.instalments {
        return Err(format!(
            "the database holds {} customers and {} instalments, not {} and {}",
            filled.customers, filled.instalments, target.customers, target.instalments
        ));
    }
    // The demo organization's: the bulk and the customer's (other demo
    // organizations' schedules may have been regularized, whose replaced
    // instalments keep their amounts).
    let wrong = count(
        conn,
        &format!(
            "SELECT COUNT(*) AS n FROM orders o \
             JOIN (SELECT order_id, SUM(amount) AS s FROM instalments GROUP BY order_id) i \
             ON i.order_id = o.id \
             LEFT JOIN (SELECT order_id, SUM(amount) AS c FROM adjustments \
             WHERE kind = 'partial_cancellation' GROUP BY order_id) a ON a.order_id = o.id \
             WHERE o.org_id = {} AND i.s + COALESCE(a.c, 0) <> o.total_amount",
            quote(org_id)
        ),
    )?;
    if wrong > 0 {
        return Err(format!(
            "{wrong} orders whose instalments and cancellations do not add up to the total"
        ));
    }
    let sample = ids(
        conn,
        &format!(
            "SELECT customer_id AS id FROM orders WHERE org_id = {} AND customer_id <> {} \
             ORDER BY order_number LIMIT 10",
            quote(org_id),
            quote(customer_id)
        ),
    )?;
    for other in sample {
        let orders = store_schedules::list_for_customer(conn, org_id, &other, None, None, 100)
            .map_err(|e| format!("reading {other}'s orders through the store: {e}"))?;
        for order in &orders {
            if order.status().as_str() != order_status(conn, &order.id)? {
                return Err(format!("order {}: stored status is not derived", order.id));
            }
        }
    }
    Ok(filled)
}

fn order_status(conn: &mut DbConnection, id: &str) -> Result<String, String> {
    ids(
        conn,
        &format!("SELECT status AS id FROM orders WHERE id = {}", quote(id)),
    )?
    .pop()
    .ok_or_else(|| format!("no order {id}"))
}

/// Checks the list: [`CUSTOMER_ORDERS`] schedules of
/// [`INSTALMENTS_PER_ORDER`] instalments, on one page.
pub fn check_list(body: &serde_json::Value) -> Result<(), String> {
    let data = body["data"]
        .as_array()
        .ok_or("GET /v1/me/schedules: no data")?;
    let instalments: Vec<usize> = data
        .iter()
        .map(|s| s["instalments"].as_array().map_or(0, Vec::len))
        .collect();
    let wanted = usize::try_from(INSTALMENTS_PER_ORDER).unwrap_or(usize::MAX);
    if data.len() != CUSTOMER_ORDERS as usize
        || !body["next_cursor"].is_null()
        || instalments.iter().any(|&n| n != wanted)
    {
        return Err(format!(
            "GET /v1/me/schedules: expected {CUSTOMER_ORDERS} schedules of {wanted} \
             instalments on one page, got {} (instalments {instalments:?}, next_cursor {})",
            data.len(),
            body["next_cursor"]
        ));
    }
    Ok(())
}

/// A query the endpoint runs and the plan the database chose for it.
#[derive(Debug, Clone, Serialize)]
pub struct QueryPlan {
    pub query: &'static str,
    pub plan: Vec<String>,
    /// No table read in full, and the rows found through an index on the
    /// column that selects them (not merely one on the organization).
    pub indexed: bool,
}

/// Whether `plan` reads no table in full (no `Seq Scan` on PostgreSQL, no
/// `SCAN` without an index on SQLite) and looks its rows up by `key` in an
/// index (`Index Cond: (… key = …)`, `SEARCH … (… key=?…)`).
pub fn plan_is_indexed(plan: &[String], key: &str) -> bool {
    let no_scan = plan.iter().all(|line| {
        let line = line.trim_start().trim_start_matches("->").trim_start();
        !(line.contains("Seq Scan") || (line.starts_with("SCAN ") && !line.contains(" USING ")))
    });
    let by_key = plan.iter().any(|line| {
        let line = line.trim_start();
        (line.starts_with("Index Cond:")
            && (line.contains(&format!("({key} ")) || line.contains(&format!(" {key} "))))
            || (line.starts_with("SEARCH ")
                && (line.contains(&format!("({key}=")) || line.contains(&format!(" {key}="))))
    });
    no_scan && by_key
}

/// The queries of `GET /v1/me/schedules` as diesel sends them to
/// PostgreSQL (from its statement log; `sessions::get`, then
/// `schedules::list_for_customer`, crates/store), with named placeholders
/// for the values of [`explain`]; the page size is 20, so 21 orders are
/// asked for. Before each of the two connections the request takes from
/// the pool, the pool also sends `SELECT 1`.
const QUERIES: [(&str, &str, &str); 5] = [
    (
        "sessions::get",
        "id",
        r#"SELECT "sessions"."id", "sessions"."org_id", "sessions"."subject_kind", "sessions"."subject_id", "sessions"."remember_me", "sessions"."user_agent", "sessions"."ip", "sessions"."created_at", "sessions"."last_used_at", "sessions"."expires_at", "sessions"."revoked_at" FROM "sessions" WHERE ("sessions"."id" = $session)"#,
    ),
    (
        "orders",
        "customer_id",
        r#"SELECT "orders"."id", "orders"."org_id", "orders"."customer_id", "orders"."order_number", "orders"."merchant_brand", "orders"."purchase_date", "orders"."total_amount", "orders"."currency", "orders"."card_id", "orders"."created_at", "orders"."updated_at" FROM "orders" WHERE (("orders"."org_id" = $org) AND ("orders"."customer_id" = $customer)) ORDER BY "orders"."id" ASC LIMIT 21"#,
    ),
    (
        "instalments",
        "order_id",
        r#"SELECT "instalments"."id", "instalments"."order_id", "instalments"."number", "instalments"."due_date", "instalments"."amount", "instalments"."currency", "instalments"."status", "instalments"."paid_at", "instalments"."attempts", "instalments"."next_attempt_on" FROM "instalments" WHERE ("instalments"."order_id" = ANY($orders)) ORDER BY "instalments"."order_id" ASC, "instalments"."number" ASC"#,
    ),
    (
        "adjustments",
        "order_id",
        r#"SELECT "adjustments"."order_id", "adjustments"."kind", "adjustments"."amount", "adjustments"."refund_amount", "adjustments"."created_at" FROM "adjustments" WHERE ("adjustments"."order_id" = ANY($orders)) ORDER BY "adjustments"."created_at" ASC, "adjustments"."id" ASC"#,
    ),
    (
        "cards",
        "id",
        r#"SELECT "cards"."id", "cards"."org_id", "cards"."customer_id", "cards"."token", "cards"."brand", "cards"."last4", "cards"."exp_month", "cards"."exp_year", "cards"."funding", "cards"."created_at" FROM "cards" WHERE ("cards"."id" = ANY($cards))"#,
    ),
];

/// `sql` (from [`QUERIES`]) in the backend's form: PostgreSQL gets the
/// lists as arrays; on SQLite `list_for_customer` selects the page's
/// orders again in a subquery (one statement text, kept compiled), so
/// `$orders` and `$cards` become that subquery.
pub fn for_backend(sql: &str, backend: Backend) -> String {
    let mut out = sql.to_owned();
    for (list, column) in [("$orders", "id"), ("$cards", "card_id")] {
        let any = format!("= ANY({list})");
        out = match backend {
            Backend::Postgres => out.replace(&any, &format!("= ANY(ARRAY[{list}])")),
            Backend::Sqlite => out.replace(
                &any,
                &format!(
                    r#"IN (SELECT "orders"."{column}" FROM "orders" WHERE (("orders"."org_id" = $org) AND ("orders"."customer_id" = $customer)) ORDER BY "orders"."id" ASC LIMIT 21)"#
                ),
            ),
        };
    }
    out
}

/// `sql` with its placeholders replaced by quoted values.
pub fn bind(sql: &str, values: &[(&str, Vec<String>)]) -> String {
    let mut out = sql.to_owned();
    // Longest names first, so that `$orders` is not taken for `$order…`.
    let mut values: Vec<&(&str, Vec<String>)> = values.iter().collect();
    values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, list) in values {
        let list: Vec<String> = list.iter().map(|v| quote(v)).collect();
        // No value: NULL, which matches nothing (`IN ()` is not SQL).
        let list = if list.is_empty() {
            "NULL".to_owned()
        } else {
            list.join(", ")
        };
        out = out.replace(&format!("${name}"), &list);
    }
    out
}

/// The plans of [`QUERIES`] for the customer's first page.
fn explain(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<QueryPlan>, String> {
    let one = |v: &str| vec![v.to_owned()];
    let session = ids(
        conn,
        &format!(
            "SELECT id FROM sessions WHERE subject_id = {} ORDER BY created_at DESC LIMIT 1",
            quote(customer_id)
        ),
    )?;
    let orders = ids(
        conn,
        &format!(
            "SELECT id FROM orders WHERE org_id = {} AND customer_id = {} ORDER BY id LIMIT 21",
            quote(org_id),
            quote(customer_id)
        ),
    )?;
    let cards = ids(
        conn,
        &format!(
            "SELECT card_id AS id FROM orders WHERE org_id = {} AND customer_id = {} \
             ORDER BY id LIMIT 21",
            quote(org_id),
            quote(customer_id)
        ),
    )?;
    let values = [
        ("session", session),
        ("org", one(org_id)),
        ("customer", one(customer_id)),
        ("orders", orders),
        ("cards", cards),
    ];
    let backend = match conn {
        DbConnection::Postgresql(_) => Backend::Postgres,
        DbConnection::Sqlite(_) => Backend::Sqlite,
    };
    let mut plans = Vec::new();
    for (query, key, sql) in QUERIES {
        let sql = bind(&for_backend(sql, backend), &values);
        let plan = plan_of(conn, &sql, false).map_err(|e| format!("{query}: {e}"))?;
        plans.push(QueryPlan {
            query,
            indexed: plan_is_indexed(&plan, key),
            plan,
        });
    }
    Ok(plans)
}

/// The plan the database chooses for `sql`: `EXPLAIN` on PostgreSQL
/// (`EXPLAIN (ANALYZE, BUFFERS)` when `analyze`: the query runs), `EXPLAIN
/// QUERY PLAN` on SQLite, one line each.
pub fn plan_of(conn: &mut DbConnection, sql: &str, analyze: bool) -> Result<Vec<String>, String> {
    Ok(match conn {
        DbConnection::Postgresql(c) => {
            let explain = if analyze {
                "EXPLAIN (ANALYZE, BUFFERS)"
            } else {
                "EXPLAIN"
            };
            diesel::sql_query(format!("{explain} {sql}"))
                .load::<PgPlanLine>(c)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|l| l.line)
                .collect()
        }
        DbConnection::Sqlite(c) => {
            let lines = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<SqlitePlanLine>(c)
                .map_err(|e| e.to_string())?;
            indent_sqlite_plan(
                &lines
                    .into_iter()
                    .map(|l| (l.id, l.parent, l.detail))
                    .collect::<Vec<_>>(),
            )
        }
    })
}

/// SQLite's plan rows `(id, parent, detail)` as lines indented by depth.
pub fn indent_sqlite_plan(rows: &[(i32, i32, String)]) -> Vec<String> {
    let depth = |mut parent: i32| {
        let mut depth = 0;
        while let Some(row) = rows.iter().find(|r| r.0 == parent) {
            depth += 1;
            parent = row.1;
            if depth > rows.len() {
                break;
            }
        }
        depth
    };
    rows.iter()
        .map(|(_, parent, detail)| format!("{}{detail}", "  ".repeat(depth(*parent))))
        .collect()
}

/// User plus system CPU time of process `pid` so far, in clock ticks
/// (1/100 s), from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` of a `/proc/<pid>/stat` line (fields 14 and 15; the
/// command name, field 2, may hold spaces and parentheses).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `ticks` of CPU time spread over `requests`, in microseconds each.
pub fn us_per_request(ticks: Option<u64>, requests: u64) -> Option<f64> {
    let ticks = ticks?;
    (requests > 0).then(|| (ticks as f64 * 10_000.0 / requests as f64).round())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bulk_completes_the_population() {
        // The demo's 4 customers, no instalment yet.
        let bulk = bulk_for(BIG, 4, 0).unwrap();
        assert_eq!(bulk.customers, 99_996);
        assert_eq!((bulk.orders(), bulk.last_order_instalments()), (249_980, 4));
        // Demo schedules already there: the last order takes the rest.
        let bulk = bulk_for(SMALL, 6, 27).unwrap();
        assert_eq!(bulk.customers, 94);
        assert_eq!((bulk.orders(), bulk.last_order_instalments()), (223, 5));
        assert_eq!(
            (bulk.orders() - 1) * 4 + bulk.last_order_instalments() + 27 + 80,
            1_000
        );
        assert!(bulk_for(SMALL, 100, 0).is_err());
        assert!(bulk_for(SMALL, 4, 917).is_err());
        assert!(bulk_for(SMALL, 4, 916).is_ok());
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote("tok_1"), "'tok_1'");
        assert_eq!(quote("l'an"), "'l''an'");
        let sql = bind(
            "a = $org AND b IN ($orders) AND c = $order",
            &[
                ("orders", vec!["x".into(), "y'".into()]),
                ("order", vec!["z".into()]),
                ("org", vec!["o".into()]),
            ],
        );
        assert_eq!(sql, "a = 'o' AND b IN ('x', 'y''') AND c = 'z'");
        assert_eq!(bind("b IN ($orders)", &[("orders", vec![])]), "b IN (NULL)");
        let any = r#"WHERE ("x"."id" = ANY($cards))"#;
        assert_eq!(
            for_backend(any, Backend::Postgres),
            r#"WHERE ("x"."id" = ANY(ARRAY[$cards]))"#
        );
        assert_eq!(
            for_backend(any, Backend::Sqlite),
            r#"WHERE ("x"."id" IN (SELECT "orders"."card_id" FROM "orders" WHERE (("orders"."org_id" = $org) AND ("orders"."customer_id" = $customer)) ORDER BY "orders"."id" ASC LIMIT 21))"#
        );
        let page = r#"ORDER BY "orders"."id" ASC LIMIT 21"#;
        assert_eq!(for_backend(page, Backend::Postgres), page);
        assert_eq!(for_backend(page, Backend::Sqlite), page);
    }

    fn card() -> CardToken {
        CardToken::from_json(&serde_json::json!({
            "token": "tok_sandbox_x",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
                     "funding": "credit"},
        }))
        .unwrap()
    }

    #[test]
    fn each_backend_gets_its_series() {
        let bulk = Bulk {
            customers: 96,
            instalments: 920,
        };
        let all = |sql: BulkSql| {
            let mut all = sql.setup;
            all.extend(sql.slices.into_iter().flatten());
            all.extend(sql.teardown);
            all.join(";\n")
        };
        let pg = all(bulk_sql(Backend::Postgres, "org_1", &card(), bulk, 3));
        assert!(pg.contains("generate_series(1, 96)"), "{pg}");
        assert!(pg.contains("generate_series(1, 230)"), "{pg}");
        assert!(!pg.contains("RECURSIVE"));
        // 230 orders in 3 slices, every one in exactly one.
        assert!(pg.contains("o.n > 0 AND o.n <= 76"), "{pg}");
        assert!(pg.contains("o.n > 76 AND o.n <= 153"), "{pg}");
        assert!(pg.contains("o.n > 153 AND o.n <= 230"), "{pg}");
        let sqlite = all(bulk_sql(Backend::Sqlite, "org_1", &card(), bulk, 3));
        assert!(sqlite.contains("WITH RECURSIVE s(n)"), "{sqlite}");
        assert!(sqlite.contains("WHERE n < 230"), "{sqlite}");
        assert!(!sqlite.contains("generate_series"));
        assert!(sqlite.contains("'tok_sandbox_x'"));
    }

    #[test]
    fn the_sqlite_bulk_is_what_the_store_reads() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store =
            Store::connect(&DatabaseUrl::parse(&url).unwrap(), &PoolOptions::default()).unwrap();
        let mut conn = store.conn().unwrap();
        let conn = &mut *conn;
        execute(
            conn,
            "INSERT INTO organizations (id, slug, name, locale, created_at) \
             VALUES ('org_1', 'demo', 'Demo', 'fr', '2026-01-01 00:00:00.000')",
        )
        .unwrap();
        // 300 orders, the last of 7 instalments.
        let bulk = Bulk {
            customers: 7,
            instalments: 1203,
        };
        let sql = bulk_sql(Backend::Sqlite, "org_1", &card(), bulk, 7);
        assert_eq!(sql.slices.len(), 7);
        for statement in sql
            .setup
            .iter()
            .chain(sql.slices.iter().flatten())
            .chain(&sql.teardown)
        {
            execute(conn, statement).unwrap();
        }
        assert_eq!(
            count(conn, "SELECT COUNT(*) AS n FROM customers").unwrap(),
            7
        );
        assert_eq!(
            count(conn, "SELECT COUNT(*) AS n FROM instalments").unwrap(),
            1203
        );
        // Orders 10, 20, …, with n % 150 < 90 (their last instalment still
        // pending): 18 of the 30 multiples of 10, among them order 300 (7
        // instalments, bought today).
        assert_eq!(
            count(conn, "SELECT COUNT(*) AS n FROM adjustments").unwrap(),
            18
        );
        let none_due = count(
            conn,
            "SELECT COUNT(*) AS n FROM instalments WHERE status = 'pending' \
             AND debit_on <= date('now')",
        )
        .unwrap();
        assert_eq!(none_due, 0);
        let filled = verify(
            conn,
            "org_1",
            "cus_none",
            Population {
                customers: 7,
                instalments: 1203,
            },
        )
        .unwrap();
        assert_eq!((filled.orders, filled.adjustments), (300, 18));
        // Every order reads back through the store with its derived status.
        let customers = ids(conn, "SELECT id FROM customers").unwrap();
        let mut statuses = std::collections::BTreeMap::new();
        for customer in customers {
            for order in
                store_schedules::list_for_customer(conn, "org_1", &customer, None, None, 100)
                    .unwrap()
            {
                let parts = if order.order_number == "BENCH-300" {
                    7
                } else {
                    4
                };
                assert_eq!(order.instalment_ids.len(), parts);
                assert!(
                    guichet_domain::ids::has_shape(&order.id, "ord"),
                    "{}",
                    order.id
                );
                assert_eq!(
                    order.status().as_str(),
                    order_status(conn, &order.id).unwrap()
                );
                *statuses.entry(order.status().as_str()).or_insert(0) += 1;
            }
        }
        assert_eq!(statuses.values().sum::<i32>(), 300);
        assert!(statuses.contains_key("completed") && statuses.contains_key("in_progress"));
        let plans = explain(conn, "org_1", "cus_none").unwrap();
        assert_eq!(plans.len(), QUERIES.len());
        assert!(plans.iter().all(|p| p.indexed), "{plans:#?}");
    }

    #[test]
    fn plans_with_a_full_scan_are_flagged() {
        let lines = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let search = "SEARCH orders USING INDEX orders_customer (org_id=? AND customer_id=?)";
        assert!(plan_is_indexed(&lines(&[search]), "customer_id"));
        // The organization's index reads all its orders.
        let by_org = "SEARCH orders USING INDEX sqlite_autoindex_orders_2 (org_id=?)";
        assert!(!plan_is_indexed(
            &lines(&[by_org, "USE TEMP B-TREE FOR ORDER BY"]),
            "customer_id"
        ));
        let cards = "SEARCH cards USING INDEX sqlite_autoindex_cards_1 (id=?)";
        assert!(plan_is_indexed(&lines(&[cards]), "id"));
        assert!(!plan_is_indexed(&lines(&["SCAN instalments"]), "order_id"));
        assert!(!plan_is_indexed(
            &lines(&["SCAN instalments USING INDEX instalments_due"]),
            "order_id"
        ));
        let pg = [
            "Limit  (cost=0.42..8.44 rows=1 width=100)",
            "  ->  Index Scan using sessions_pkey on sessions  (cost=0.42..8.44 rows=1)",
            "        Index Cond: (id = 'ses_x'::text)",
        ];
        assert!(plan_is_indexed(&lines(&pg), "id"));
        assert!(!plan_is_indexed(&lines(&pg), "order_id"));
        assert!(!plan_is_indexed(
            &lines(&[
                "Sort  (cost=1.05..1.06 rows=1 width=100)",
                "  ->  Seq Scan on adjustments  (cost=0.00..1.04 rows=1 width=100)",
                "        Filter: (order_id = ANY ('{ord_x}'::text[]))",
            ]),
            "order_id"
        ));
        assert_eq!(
            indent_sqlite_plan(&[(2, 0, "A".into()), (5, 2, "B".into()), (9, 0, "C".into())]),
            ["A", "  B", "C"]
        );
    }

    #[test]
    fn cpu_time_comes_from_proc_stat() {
        let stat = "4242 (guichet (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 70 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(320));
        assert_eq!(parse_cpu_ticks("4242 (guichet) S 1"), None);
        assert_eq!(us_per_request(Some(320), 1600), Some(2000.0));
        assert_eq!(us_per_request(Some(320), 0), None);
        assert_eq!(us_per_request(None, 10), None);
        let me = cpu_ticks(std::process::id());
        assert!(me.is_some());
    }

    #[test]
    fn lists_of_twenty_schedules_pass() {
        let schedule = serde_json::json!({"instalments": [{}, {}, {}, {}]});
        let good = serde_json::json!({"data": vec![schedule.clone(); 20], "next_cursor": null});
        assert!(check_list(&good).is_ok());
        let short = serde_json::json!({"data": vec![schedule.clone(); 19], "next_cursor": null});
        assert!(check_list(&short).is_err());
        let paged = serde_json::json!({"data": vec![schedule; 20], "next_cursor": "x"});
        assert!(check_list(&paged).is_err());
    }
}
