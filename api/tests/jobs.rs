//! `guichet jobs debit` through the real binary, on the database the crash
//! harness gives (a SQLite file, or a throwaway PostgreSQL database when
//! `GUICHET_TEST_DATABASE_URL` names a server): its exit status and what it
//! says after a run killed with SIGKILL, when stopped by SIGTERM, and when
//! the database goes away in the middle of a run. Every test ends by
//! checking, in the sandbox gateway's ledger, that each instalment was
//! charged exactly once.
//!
//! The demo data (`serve --demo`) is the starting point; the tests add
//! orders through the store, among them one paid with the sandbox's slow
//! test card (answered 15 s after the charge is made), so that a run is
//! inside a gateway call, holding its claims, when the test acts on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::gateway::sandbox::SandboxTokens;
use guichet_domain::gateway::{CardDetails, Cvc, Pan, test_cards};
use guichet_domain::schedule::{Schedule, plan_equal};
use guichet_domain::{Currency, Money, ids};
use guichet_store::repo::schedules::{self, Card, Order};
use guichet_store::repo::{customers, organizations};
use guichet_store::schema::{charges, instalments, sandbox_ledger};
use guichet_store::{Backend, DatabaseUrl, PoolOptions, Store};
use serde_json::Value;
use support::{BIN, Db, Server};

/// The server secret key, given to `serve` and to every run, so that the
/// cards tokenized here are read by the runs' sandbox.
const KEY: &str = "jobs-test-secret-key-0123456789abcdef";

/// The demo's buy-now-pay-later lender and its customer.
const LENDER: &str = "fractio";
const CUSTOMER: &str = "sophie.laurent@example.com";

/// The slow test card's last four digits, as the ledger keeps them.
const SLOW_LAST4: &str = "0077";

/// A demo database (created by `serve --demo`, which is then killed) and a
/// store on it.
struct Demo {
    db: Db,
    store: Store,
    org_id: String,
    customer_id: String,
    today: NaiveDate,
}

impl Demo {
    fn new(name: &str) -> Demo {
        let db = Db::fresh(name);
        Server::start(&db, &["--secret-key", KEY]).kill();
        let store = Store::connect(
            &DatabaseUrl::parse(&db.url).unwrap(),
            &PoolOptions::one_shot(),
        )
        .unwrap();
        let mut conn = store.conn().unwrap();
        let org = organizations::find_by_slug(&mut conn, LENDER).unwrap();
        let customer = customers::find_by_email(&mut conn, &org.id, CUSTOMER).unwrap();
        drop(conn);
        Demo {
            db,
            store,
            org_id: org.id,
            customer_id: customer.id,
            today: Utc::now().date_naive(),
        }
    }

    fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// An order of `count` (2 to 12) equal monthly instalments from
    /// `first_due`, paid
    /// with the sandbox card `number`; returns its instalments' ids.
    fn seed_order(
        &self,
        total: i64,
        count: u32,
        first_due: NaiveDate,
        number: &str,
    ) -> Vec<String> {
        let mut orders = self.seed_orders(1, total, count, first_due, number);
        orders.pop().unwrap()
    }

    /// `how_many` orders as [`Demo::seed_order`], in one transaction.
    fn seed_orders(
        &self,
        how_many: usize,
        total: i64,
        count: u32,
        first_due: NaiveDate,
        number: &str,
    ) -> Vec<Vec<String>> {
        let tokens = SandboxTokens::new(KEY.as_bytes());
        let card = tokens
            .tokenize(
                CardDetails {
                    number: Pan::parse(number).unwrap(),
                    exp_month: 12,
                    exp_year: 2035,
                    cvc: Cvc::parse("123").unwrap(),
                },
                self.today,
            )
            .unwrap();
        let now = Utc::now();
        let money = Money::new(total, Currency::EUR);
        let mut seeded = Vec::with_capacity(how_many);
        let mut conn = self.store.conn().unwrap();
        guichet_store::transaction(&mut conn, |conn| {
            for _ in 0..how_many {
                let schedule =
                    Schedule::new(money, plan_equal(money, count, first_due).unwrap()).unwrap();
                let mut order = Order {
                    id: ids::new_id("ord"),
                    org_id: self.org_id.clone(),
                    customer_id: self.customer_id.clone(),
                    order_number: ids::new_id("CMD"),
                    merchant_brand: "Maison Lumière".to_owned(),
                    purchase_date: first_due,
                    card: Card {
                        id: ids::new_id("crd"),
                        org_id: self.org_id.clone(),
                        customer_id: self.customer_id.clone(),
                        token: card.token.clone(),
                        view: card.card.clone(),
                        created_at: now,
                    },
                    instalment_ids: Default::default(),
                    refunds: Vec::new(),
                    schedule,
                    created_at: now,
                    updated_at: now,
                };
                let mut ids_of_order = Vec::new();
                for i in &order.schedule.instalments {
                    let id = ids::new_id("ins");
                    ids_of_order.push(id.clone());
                    order.instalment_ids.insert(i.number, id);
                }
                schedules::insert_card(conn, &order.card)?;
                schedules::insert_order(conn, &order)?;
                seeded.push(ids_of_order);
            }
            Ok::<_, guichet_store::StoreError>(())
        })
        .unwrap();
        seeded
    }

    /// The pending instalments due on or before `as_of`.
    fn due(&self, as_of: NaiveDate) -> Vec<String> {
        instalments::table
            .filter(instalments::status.eq("pending"))
            .filter(instalments::debit_on.le(as_of))
            .select(instalments::id)
            .load(&mut *self.store.conn().unwrap())
            .unwrap()
    }

    fn status(&self, instalment: &str) -> String {
        instalments::table
            .find(instalment)
            .select(instalments::status)
            .first(&mut *self.store.conn().unwrap())
            .unwrap()
    }

    /// The instalments some run holds a claim on, with the claims' ends.
    fn claims(&self) -> Vec<(String, Option<NaiveDateTime>)> {
        instalments::table
            .filter(
                instalments::claim_token
                    .is_not_null()
                    .or(instalments::claimed_until.is_not_null()),
            )
            .select((instalments::id, instalments::claimed_until))
            .load(&mut *self.store.conn().unwrap())
            .unwrap()
    }

    /// Ends every claim a minute ago, as if its lease had run out.
    ///
    /// The lease is fixed ([`guichet_jobs::debit::LEASE`], 5 minutes; no
    /// option or variable shortens it), so the test moves `claimed_until`
    /// into the past in SQL rather than wait.
    fn expire_claims(&self) -> usize {
        let past = (Utc::now() - chrono::Duration::minutes(1)).naive_utc();
        diesel::update(instalments::table.filter(instalments::claimed_until.is_not_null()))
            .set(instalments::claimed_until.eq(past))
            .execute(&mut *self.store.conn().unwrap())
            .unwrap()
    }

    /// Whether the sandbox has recorded a charge of the slow card: the run
    /// is then inside that gateway call, for 15 s.
    fn slow_charge_made(&self) -> bool {
        let n: i64 = sandbox_ledger::table
            .filter(sandbox_ledger::kind.eq("charge"))
            .filter(sandbox_ledger::last4.eq(SLOW_LAST4))
            .count()
            .get_result(&mut *self.store.conn().unwrap())
            .unwrap();
        n > 0
    }

    fn ledger_charges(&self) -> i64 {
        sandbox_ledger::table
            .filter(sandbox_ledger::kind.eq("charge"))
            .count()
            .get_result(&mut *self.store.conn().unwrap())
            .unwrap()
    }

    /// Each instalment charged exactly once: every charge the gateway made
    /// has one `charges` row under its key, completed (none left pending),
    /// every `charges` row reached the gateway, no instalment holds more
    /// than one successful charge, and each of `paid` holds exactly one.
    fn assert_charged_exactly_once(&self, paid: &[String]) {
        let mut conn = self.store.conn().unwrap();
        let ledger: Vec<(String, String)> = sandbox_ledger::table
            .filter(sandbox_ledger::kind.eq("charge"))
            .select((sandbox_ledger::idempotency_key, sandbox_ledger::outcome))
            .load(&mut *conn)
            .unwrap();
        let rows: Vec<(String, Option<String>, String)> = charges::table
            .select((
                charges::idempotency_key,
                charges::instalment_id,
                charges::status,
            ))
            .load(&mut *conn)
            .unwrap();
        let by_key: HashMap<&str, (&Option<String>, &str)> = rows
            .iter()
            .map(|(key, instalment, status)| (key.as_str(), (instalment, status.as_str())))
            .collect();
        assert_eq!(by_key.len(), rows.len(), "two charges rows share a key");
        assert_eq!(
            ledger.len(),
            rows.len(),
            "charges made at the gateway and charges recorded differ"
        );
        let mut successes: HashMap<&str, u32> = HashMap::new();
        for (key, outcome) in &ledger {
            let Some((instalment, status)) = by_key.get(key.as_str()) else {
                panic!("the gateway charged {key}, which no charges row records");
            };
            assert_ne!(*status, "pending", "charge {key} left pending");
            if outcome == "succeeded" {
                let instalment = instalment.as_deref().unwrap();
                *successes.entry(instalment).or_default() += 1;
            }
        }
        for (instalment, n) in &successes {
            assert_eq!(*n, 1, "instalment {instalment} charged {n} times");
        }
        for instalment in paid {
            assert_eq!(
                successes.get(instalment.as_str()),
                Some(&1),
                "paid instalment {instalment}"
            );
        }
    }
}

/// `guichet jobs debit --as-of as_of --json` on `url`.
fn debit(demo: &Demo, url: &str, as_of: NaiveDate, json: bool) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(demo.db.dir.path())
        .env_remove("GUICHET_DATABASE_URL")
        .env_remove("GUICHET_SECRET_KEY")
        .env_remove("GUICHET_ENV")
        .env_remove("GUICHET_PAYMENT_GATEWAY")
        .env("GUICHET_LOG", "info")
        .args(["jobs", "debit", "--database-url", url])
        .arg("--data-dir")
        .arg(demo.db.data_dir())
        .args(["--secret-key", KEY])
        .args(["--as-of", &as_of.to_string()]);
    if json {
        cmd.arg("--json");
    }
    cmd
}

/// A run in the background, its output going to files.
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    fn spawn(demo: &Demo, mut cmd: Command, name: &str) -> Running {
        let stdout = demo.db.dir.path().join(format!("{name}.out"));
        let stderr = demo.db.dir.path().join(format!("{name}.err"));
        let child = cmd
            .stdout(Stdio::from(File::create(&stdout).unwrap()))
            .stderr(Stdio::from(File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until `ready` holds, failing if the run ends first.
    fn wait_until(&mut self, what: &str, within: Duration, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the run ended ({status}) before {what}:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "not {what} within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (up to `within`) for the exit; the status, stdout and stderr.
    fn wait(mut self, within: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the run did not end within {within:?}:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status,
            std::fs::read_to_string(&self.stdout).unwrap(),
            std::fs::read_to_string(&self.stderr).unwrap(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn count(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

/// The debit counters' identity (docs/SCHEDULES.md): every item a run takes
/// ends in exactly one bucket.
fn assert_balanced(report: &Value) {
    let taken = count(report, "claimed") + count(report, "stale");
    let ended: u64 = [
        "paid",
        "retry_scheduled",
        "unpaid",
        "regularizations",
        "skipped",
        "transient_failures",
        "errors",
        "interrupted",
    ]
    .iter()
    .map(|f| count(report, f))
    .sum();
    assert_eq!(taken, ended, "{report}");
}

fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// -------------------------------------------------------------------- tests

#[test]
fn after_a_killed_run_the_next_says_what_it_holds_and_a_later_one_settles_it_once() {
    let demo = Demo::new("jobs_kill");
    let today = demo.today;
    // Far enough ahead that the demo's pending instalments are due too; the
    // slow card's instalment is the oldest, so it is claimed first.
    let as_of = today + chrono::Duration::days(25);
    let slow = demo.seed_order(
        30_000,
        2,
        today - chrono::Duration::days(2),
        test_cards::SLOW,
    );
    demo.seed_orders(3, 20_000, 2, today, test_cards::VISA);
    let due = demo.due(as_of);
    assert!(due.len() >= 5, "{due:?}");
    let url = demo.db.url.clone();

    // A first run, killed while the gateway is making the slow charge: it
    // claimed every due instalment and settled none.
    let started = Utc::now();
    let mut first = Running::spawn(&demo, debit(&demo, &url, as_of, true), "first");
    first.wait_until("inside the slow charge", Duration::from_secs(30), || {
        demo.slow_charge_made()
    });
    first.child.kill().unwrap();
    let (status, stdout, _) = first.wait(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal: {status}");
    assert!(stdout.is_empty(), "{stdout}");
    let claims = demo.claims();
    assert_eq!(claims.len(), due.len(), "{claims:?}");
    let held_until = claims.iter().filter_map(|(_, until)| *until).max().unwrap();
    let held_until = DateTime::<Utc>::from_naive_utc_and_offset(held_until, Utc);
    let lease = chrono::Duration::from_std(guichet_jobs::debit::LEASE).unwrap();
    assert!(
        held_until >= started + lease - chrono::Duration::seconds(1)
            && held_until <= Utc::now() + lease,
        "{held_until}"
    );
    let until = held_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    // A second run at once: nothing to take, and it says why.
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, as_of, true));
    assert_eq!(code, Some(3), "unfinished\n{stdout}\n{stderr}");
    let report = json(&stdout);
    assert_eq!(report["ending"], "unfinished", "{report}");
    let debits = &report["report"];
    assert_eq!(count(debits, "claimed"), 0, "{report}");
    assert_eq!(count(debits, "presented"), 0, "{report}");
    assert_eq!(count(debits, "left_due"), due.len() as u64, "{report}");
    assert_eq!(
        count(debits, "held_elsewhere"),
        due.len() as u64,
        "{report}"
    );
    let reported: DateTime<Utc> = debits["held_until"].as_str().unwrap().parse().unwrap();
    assert!(
        (reported - held_until).num_milliseconds().abs() < 1000,
        "{reported} against {held_until}"
    );
    let n = due.len();
    assert!(
        stderr.contains(&format!("guichet: {n} due instalments left unsettled")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "guichet: {n} of them are claimed by another run (possibly dead) until {until}"
        )),
        "{stderr}"
    );
    // The same without --json.
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, as_of, false));
    assert_eq!(code, Some(3), "unfinished\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("left due:           {n}")),
        "{stdout}"
    );
    assert!(stderr.contains(&format!("until {until}")), "{stderr}");
    assert_eq!(demo.status(&slow[0]), "pending");

    // Once the dead run's lease is over, a run settles everything: the
    // charges the dead run made are looked up under their keys, not sent
    // again.
    assert_eq!(demo.expire_claims(), due.len());
    let third_started = Instant::now();
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, as_of, true));
    assert_eq!(code, Some(0), "done\n{stdout}\n{stderr}");
    // The slow charge was found at the gateway, not made again (which would
    // take 15 s).
    assert!(third_started.elapsed() < Duration::from_secs(14));
    let report = json(&stdout);
    assert_eq!(report["ending"], "done", "{report}");
    let debits = &report["report"];
    assert_balanced(debits);
    // Everything due, plus any instalment whose retry date (after a failed
    // attempt in this run) falls on or before `as_of`.
    assert!(count(debits, "claimed") >= due.len() as u64, "{report}");
    assert!(count(debits, "reconciled") >= 1, "{report}");
    assert_eq!(count(debits, "left_due"), 0, "{report}");
    assert_eq!(debits["held_until"], Value::Null, "{report}");
    assert_eq!(demo.status(&slow[0]), "paid");
    assert!(demo.claims().is_empty(), "{:?}", demo.claims());
    let paid: Vec<String> = due
        .iter()
        .filter(|id| demo.status(id) == "paid")
        .cloned()
        .collect();
    assert!(paid.len() >= 4, "{paid:?}");
    demo.assert_charged_exactly_once(&paid);
}

#[test]
fn sigterm_finishes_the_charge_in_hand_releases_every_claim_and_exits_4() {
    let demo = Demo::new("jobs_term");
    let today = demo.today;
    let slow = demo.seed_order(
        30_000,
        2,
        today - chrono::Duration::days(2),
        test_cards::SLOW,
    );
    demo.seed_orders(4, 20_000, 2, today, test_cards::VISA);
    let due = demo.due(today);
    assert!(due.len() >= 5, "{due:?}");
    let url = demo.db.url.clone();

    let mut run = Running::spawn(&demo, debit(&demo, &url, today, true), "term");
    run.wait_until("inside the slow charge", Duration::from_secs(30), || {
        demo.slow_charge_made()
    });
    run.signal("-TERM");
    let signalled = Instant::now();
    // The slow charge answers 15 s after it was made; then the run settles
    // it and stops.
    let (status, stdout, stderr) = run.wait(Duration::from_secs(30));
    assert!(signalled.elapsed() < Duration::from_secs(20));

    assert_eq!(status.code(), Some(4), "stopped\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("guichet: stopped by a signal;")
            && stderr.contains("what this run held was released"),
        "{stderr}"
    );
    let report = json(&stdout);
    assert_eq!(report["ending"], "stopped", "{report}");
    let debits = &report["report"];
    assert_eq!(debits["stopped"], true, "{report}");
    assert_balanced(debits);
    // The charge in hand was settled; nothing was sent after the signal:
    // every charge the gateway made is settled, and the left-over claims
    // were let go.
    assert_eq!(demo.status(&slow[0]), "paid");
    assert!(count(debits, "paid") >= 1, "{report}");
    let settled =
        count(debits, "paid") + count(debits, "retry_scheduled") + count(debits, "unpaid");
    assert_eq!(count(debits, "presented"), settled, "{report}");
    assert_eq!(demo.ledger_charges(), settled as i64, "{report}");
    assert_eq!(
        count(debits, "left_due"),
        due.len() as u64 - settled,
        "{report}"
    );
    assert!(demo.claims().is_empty(), "claims held: {:?}", demo.claims());
    assert_eq!(report["sepa"], Value::Null, "{report}");

    // A later run does the rest.
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, today, true));
    assert_eq!(code, Some(0), "done\n{stdout}\n{stderr}");
    let report = json(&stdout);
    assert_eq!(count(&report["report"], "left_due"), 0, "{report}");
    assert_eq!(
        count(&report["report"], "claimed"),
        due.len() as u64 - settled,
        "{report}"
    );
    for id in &due {
        assert_eq!(demo.status(id), "paid", "{id}");
    }
    demo.assert_charged_exactly_once(&due);
}

#[test]
fn a_database_outage_in_the_middle_of_a_run_aborts_it_fast_with_exit_1() {
    let demo = Demo::new("jobs_outage");
    if demo.backend() != Backend::Postgres {
        eprintln!("skipped: the database outage is played on PostgreSQL only");
        return;
    }
    let today = demo.today;
    demo.seed_orders(1_000, 20_000, 2, today, test_cards::VISA);
    let due = demo.due(today);
    // The run reaches the database through a proxy the test cuts; the
    // server itself is left alone.
    let url = demo.db.url.clone();
    let target = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let proxy = support::Proxy::start(&target);
    let proxied = url.replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);

    // One instalment per batch, so that the run is long and the cut falls
    // in its middle.
    let mut cmd = debit(&demo, &proxied, today, true);
    cmd.args(["--batch", "1"]);
    let mut run = Running::spawn(&demo, cmd, "outage");
    run.wait_until("a few charges made", Duration::from_secs(30), || {
        demo.ledger_charges() >= 5
    });
    proxy.cut();
    let cut = Instant::now();
    let (status, stdout, stderr) = run.wait(Duration::from_secs(30));
    let took = cut.elapsed();

    // At most one connection wait of the run's own (5 s), after one of the
    // sandbox gateway's when the cut falls in a charge (its ledger is in
    // the same database).
    assert!(took < Duration::from_secs(12), "{took:?} after the cut");
    assert_eq!(status.code(), Some(1), "aborted\n{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("debit run aborted: the database is unavailable")
            && stderr.contains("run it again once the database is back"),
        "{stderr}"
    );
    assert!(
        demo.ledger_charges() < due.len() as i64,
        "the run had finished before the cut"
    );

    // With the database back, and the claim the aborted run could not
    // release let go (its lease is moved into the past, see
    // `expire_claims`), a run settles everything exactly once.
    demo.expire_claims();
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, today, true));
    assert_eq!(code, Some(0), "done\n{stdout}\n{stderr}");
    assert_eq!(count(&json(&stdout)["report"], "left_due"), 0, "{stdout}");
    for id in &due {
        assert_eq!(demo.status(id), "paid", "{id}");
    }
    demo.assert_charged_exactly_once(&due);
}

/// The demo practice's patient paying by autopay.
const PRACTICE: &str = "kine";
const HUGO: &str = "hugo.lefevre@example.com";

#[test]
fn an_autopay_run_killed_inside_the_gateway_call_is_charged_once_by_a_later_run() {
    use guichet_store::repo::payment_methods::{self, MethodDetails, PaymentMethod};
    use guichet_store::schema::invoice_payments;

    let demo = Demo::new("jobs_autopay_kill");
    let today = demo.today;
    let (org_id, hugo) = {
        let mut conn = demo.store.conn().unwrap();
        let org = organizations::find_by_slug(&mut conn, PRACTICE).unwrap();
        let hugo = customers::find_by_email(&mut conn, &org.id, HUGO).unwrap();
        (org.id, hugo.id)
    };
    // An invoice of 60.00 EUR due today, issued by the practice's admin.
    let server = Server::start(&demo.db, &["--secret-key", KEY]);
    let login = server.post(
        "/v1/auth/staff/login",
        None,
        &[],
        &serde_json::json!({"organization": PRACTICE, "email": "admin@kine.guichet.localhost",
                            "password": "Admin-Kine-2026!"}),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let admin = login.json()["access_token"].as_str().unwrap().to_owned();
    let draft = server.post(
        "/v1/admin/invoices",
        Some(&admin),
        &[],
        &serde_json::json!({"customer_id": hugo, "amount": 6000, "reason": "Séances",
                            "issue_date": today, "due_date": today}),
    );
    assert_eq!(draft.status, 201, "{}", draft.body);
    let invoice = draft.json()["id"].as_str().unwrap().to_owned();
    let issued = server.post(
        &format!("/v1/admin/invoices/{invoice}/issue"),
        Some(&admin),
        &[],
        &serde_json::json!({}),
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    server.kill();
    // Hugo's autopay now pays with the sandbox's slow card.
    let card = SandboxTokens::new(KEY.as_bytes())
        .tokenize(
            CardDetails {
                number: Pan::parse(test_cards::SLOW).unwrap(),
                exp_month: 12,
                exp_year: 2035,
                cvc: Cvc::parse("123").unwrap(),
            },
            today,
        )
        .unwrap();
    let method = PaymentMethod {
        id: ids::new_id("pm"),
        org_id: org_id.clone(),
        customer_id: hugo.clone(),
        details: MethodDetails::Card {
            token: card.token,
            view: card.card,
        },
        is_default: false,
        created_at: Utc::now(),
        removed_at: None,
    };
    {
        let mut conn = demo.store.conn().unwrap();
        payment_methods::insert(&mut conn, &method).unwrap();
        guichet_store::repo::autopay::set(
            &mut conn,
            &org_id,
            &hugo,
            true,
            Some(&method.id),
            Utc::now(),
        )
        .unwrap();
    }
    let key = guichet_store::repo::invoices::gateway_key(&invoice, 1);
    let charged = |outcome: &str| -> i64 {
        sandbox_ledger::table
            .filter(sandbox_ledger::kind.eq("charge"))
            .filter(sandbox_ledger::idempotency_key.eq(&key))
            .filter(sandbox_ledger::outcome.eq(outcome))
            .count()
            .get_result(&mut *demo.store.conn().unwrap())
            .unwrap()
    };
    let payments = || -> Vec<(String, Option<String>)> {
        invoice_payments::table
            .filter(invoice_payments::invoice_id.eq(&invoice))
            .select((invoice_payments::status, invoice_payments::gateway_key))
            .load(&mut *demo.store.conn().unwrap())
            .unwrap()
    };
    let url = demo.db.url.clone();

    // A run killed while the gateway makes the slow charge: the charge is
    // made, the invoice's payment left pending.
    let mut first = Running::spawn(&demo, debit(&demo, &url, today, true), "first");
    first.wait_until("inside the slow charge", Duration::from_secs(60), || {
        charged("succeeded") == 1
    });
    first.child.kill().unwrap();
    let (status, _, _) = first.wait(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal: {status}");
    assert_eq!(
        payments(),
        vec![("pending".to_owned(), Some(key.clone()))],
        "left pending"
    );

    // A run at once does not charge it again: the payment in flight holds
    // the invoice until it is reconciled.
    demo.expire_claims();
    let (_, stdout, stderr) = output(&mut debit(&demo, &url, today, true));
    let report = json(&stdout);
    assert_eq!(
        count(&report["report"]["autopay"], "presented"),
        0,
        "{report}\n{stderr}"
    );
    assert_eq!(charged("succeeded"), 1);

    // Once the payment is stale (its run is gone), a run looks its key up
    // at the gateway and settles it: paid, charged once, not sent again
    // (which would take 15 s).
    let past = (Utc::now() - chrono::Duration::minutes(11)).naive_utc();
    diesel::update(invoice_payments::table.filter(invoice_payments::invoice_id.eq(&invoice)))
        .set(invoice_payments::created_at.eq(past))
        .execute(&mut *demo.store.conn().unwrap())
        .unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = output(&mut debit(&demo, &url, today, true));
    assert_eq!(code, Some(0), "done\n{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(14));
    let report = json(&stdout);
    assert!(count(&report["report"], "reconciled") >= 1, "{report}");
    assert_eq!(
        payments(),
        vec![("succeeded".to_owned(), Some(key.clone()))]
    );
    assert_eq!(charged("succeeded"), 1, "charged once");
    let retries: Vec<String> = (2..=3)
        .map(|n| guichet_store::repo::invoices::gateway_key(&invoice, n))
        .collect();
    let later_attempts: i64 = sandbox_ledger::table
        .filter(sandbox_ledger::idempotency_key.eq_any(&retries))
        .count()
        .get_result(&mut *demo.store.conn().unwrap())
        .unwrap();
    assert_eq!(later_attempts, 0, "no second attempt reached the gateway");
    let (status, paid): (String, i64) = guichet_store::schema::invoices::table
        .find(&invoice)
        .select((
            guichet_store::schema::invoices::status,
            guichet_store::schema::invoices::amount_paid,
        ))
        .first(&mut *demo.store.conn().unwrap())
        .unwrap();
    assert_eq!((status.as_str(), paid), ("paid", 6000));
}
