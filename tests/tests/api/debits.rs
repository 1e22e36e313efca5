//! Debit runs: presenting due instalments exactly once.
//!
//! The runs are built in-process on the test server's store, with a sandbox
//! keyed like the server's and the server's clock. Results are checked in
//! the store and, when the server serves it, over HTTP as the customer
//! (`GET /v1/me/schedules/{id}`).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use diesel::prelude::*;
use guichet_domain::gateway::{PaymentGateway, test_cards};
use guichet_domain::schedule::{Schedule, idempotency_key, plan_equal};
use guichet_domain::{Clock, Currency, Money, ids};
use guichet_gateway::SandboxGateway;
use guichet_jobs::debit::{DebitReport, DebitRun};
use guichet_jobs::runner::Ending;
use guichet_store::repo::charges::{self, Charge};
use guichet_store::repo::schedules::{self, Card, Order};
use guichet_store::schema::{charges as charges_table, instalments};
use guichet_store::{Backend, DatabaseUrl, PoolOptions, Store};
use guichet_tests::identity::Tokens;
use guichet_tests::orders::sandbox_token;
use guichet_tests::{TEST_SECRET_KEY, TestApp};
use serde_json::Value;

// ------------------------------------------------------------------ helpers

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The test server's date (the clock starts on 2026-11-22).
fn today(app: &TestApp) -> NaiveDate {
    app.clock.today()
}

/// A sandbox keyed like the test server's, on the server's clock, sharing
/// the server's ledger (its database).
fn sandbox(app: &TestApp) -> Arc<SandboxGateway> {
    Arc::new(SandboxGateway::with_token_key(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        TEST_SECRET_KEY.as_bytes(),
    ))
}

fn debit_run(app: &TestApp, gateway: &Arc<SandboxGateway>) -> DebitRun {
    DebitRun::new(
        app.store.clone(),
        gateway.clone(),
        Arc::new(app.clock.clone()),
    )
}

fn run(app: &TestApp, gateway: &Arc<SandboxGateway>) -> DebitReport {
    debit_run(app, gateway).run(today(app), 100).unwrap()
}

/// An organization and a customer signed in to it.
fn customer(app: &TestApp, slug: &str) -> (String, String, Tokens) {
    let org = app.org(slug);
    let (customer_id, tokens) =
        app.registered_customer(&org, &format!("client@{slug}.example.com"), None);
    (org.id, customer_id, tokens)
}

fn order(app: &TestApp, org_id: &str, id: &str) -> Order {
    schedules::get(&mut app.store.conn().unwrap(), org_id, id).unwrap()
}

fn instalment_id(order: &Order, number: u32) -> String {
    order.instalment_ids[&number].clone()
}

/// The schedule as the customer sees it over HTTP. The tests move the clock
/// by days, past any access token's life, so the customer signs in afresh.
fn customer_view(app: &TestApp, _tokens: &Tokens, org_id: &str, id: &str) -> Option<Value> {
    let mut conn = app.store.conn().unwrap();
    let order = schedules::get(&mut conn, org_id, id).unwrap();
    let customer =
        guichet_store::repo::customers::get(&mut conn, org_id, &order.customer_id).unwrap();
    let org = guichet_store::repo::organizations::get(&mut conn, org_id).unwrap();
    drop(conn);
    let login = app
        .request("POST", "/v1/auth/login")
        .json(&serde_json::json!({
            "organization": org.slug.as_str(),
            "email": customer.email,
            "password": guichet_tests::identity::PASSWORD,
        }))
        .send();
    assert_eq!(login.status, 200, "{}", login.text());
    let access = login.json()["access_token"].as_str().unwrap().to_owned();
    let res = app
        .request("GET", &format!("/v1/me/schedules/{id}"))
        .bearer(&access)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    Some(res.json())
}

/// Checks the schedule's status and its instalments' statuses, in the store
/// and over HTTP as the customer.
fn assert_schedule(
    app: &TestApp,
    tokens: &Tokens,
    org_id: &str,
    id: &str,
    status: &str,
    instalments: &[&str],
) -> Order {
    let stored = order(app, org_id, id);
    assert_eq!(stored.status().as_str(), status, "{stored:?}");
    let statuses: Vec<&str> = stored
        .schedule
        .instalments
        .iter()
        .map(|i| i.status.as_str())
        .collect();
    assert_eq!(statuses, instalments, "{stored:?}");
    if let Some(view) = customer_view(app, tokens, org_id, id) {
        assert_eq!(view["status"], status, "{view}");
        let seen: Vec<&str> = view["instalments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap())
            .collect();
        assert_eq!(seen, instalments, "{view}");
    }
    stored
}

fn attempts(order: &Order) -> Vec<u32> {
    order
        .schedule
        .instalments
        .iter()
        .map(|i| i.attempts)
        .collect()
}

/// Records a pending charge for attempt 1 of the first instalment, as a run
/// that died right after the gateway call leaves it (the sandbox is charged
/// with the same key first); returns the key.
fn dead_run_charge(
    app: &TestApp,
    gateway: &SandboxGateway,
    order: &Order,
    created_at: chrono::DateTime<Utc>,
) -> String {
    let first = &order.schedule.instalments[0];
    let id = instalment_id(order, 1);
    let key = idempotency_key(&id, first.attempts + 1);
    gateway
        .charge(&order.org_id, &order.card.token, first.amount, &key)
        .unwrap();
    charges::insert_pending(
        &mut app.store.conn().unwrap(),
        &Charge {
            id: ids::new_id("chg"),
            org_id: order.org_id.clone(),
            order_id: order.id.clone(),
            instalment_id: Some(id),
            idempotency_key: key.clone(),
            amount: first.amount,
            status: "pending".into(),
            gateway_charge_id: None,
            failure_code: None,
            created_at,
            purpose: charges::INSTALMENT.into(),
            request: None,
            details: None,
        },
    )
    .unwrap();
    key
}

// -------------------------------------------------------------------- tests

#[test]
fn due_instalments_are_paid_and_later_ones_are_left_alone() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = customer(&app, "debits-due");
    // 400.00 in 4: Oct 22 and Nov 22 are due on Nov 22, Dec and Jan are not;
    // nothing of the other order is due before January.
    let started = app.seed_order(
        &org,
        &customer,
        40_000,
        4,
        date(2026, 10, 22),
        test_cards::VISA,
    );
    let later = app.seed_order(
        &org,
        &customer,
        30_000,
        3,
        date(2027, 1, 5),
        test_cards::MASTERCARD,
    );
    let gateway = sandbox(&app);

    let report = run(&app, &gateway);

    assert_eq!(
        report,
        DebitReport {
            claimed: 2,
            presented: 2,
            paid: 2,
            ..DebitReport::default()
        }
    );
    assert!(report.balanced());
    let paid = assert_schedule(
        &app,
        &tokens,
        &org,
        &started,
        "in_progress",
        &["paid", "paid", "pending", "pending"],
    );
    assert_eq!(attempts(&paid), [1, 1, 0, 0]);
    assert!(
        paid.schedule.instalments[..2]
            .iter()
            .all(|i| i.paid_at == Some(app.clock.now()))
    );
    let untouched = assert_schedule(
        &app,
        &tokens,
        &org,
        &later,
        "in_progress",
        &["pending", "pending", "pending"],
    );
    assert_eq!(attempts(&untouched), [0, 0, 0]);
    // One successful charge per paid instalment, recorded and at the gateway.
    let recorded = charges::succeeded_for_order(&mut app.store.conn().unwrap(), &started).unwrap();
    assert_eq!(recorded.len(), 2);
    for number in [1, 2] {
        let key = idempotency_key(&instalment_id(&paid, number), 1);
        let charge = recorded.iter().find(|c| c.idempotency_key == key).unwrap();
        assert_eq!(charge.amount, paid.schedule.instalments[0].amount);
        assert!(charge.gateway_charge_id.is_some());
        assert_eq!(gateway.charge_count(&key).unwrap(), 1);
    }
    assert_eq!(gateway.successful_charges().unwrap(), 2);
    assert_eq!(gateway.total_charged().unwrap(), 20_000);

    // A second run the same day has nothing new to present.
    assert_eq!(run(&app, &gateway), DebitReport::default());
    assert_eq!(gateway.successful_charges().unwrap(), 2);

    // A month later, the December instalment is due, and only it.
    app.clock.advance(Duration::days(30));
    let report = run(&app, &gateway);
    assert_eq!((report.presented, report.paid), (1, 1));
    assert_schedule(
        &app,
        &tokens,
        &org,
        &started,
        "in_progress",
        &["paid", "paid", "paid", "pending"],
    );
    assert_eq!(gateway.total_charged().unwrap(), 30_000);
}

#[test]
fn insufficient_funds_is_retried_three_days_later_then_left_unpaid() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = customer(&app, "debits-poor");
    let id = app.seed_order(
        &org,
        &customer,
        20_000,
        2,
        today(&app),
        test_cards::INSUFFICIENT_FUNDS,
    );
    let gateway = sandbox(&app);

    let report = run(&app, &gateway);

    assert_eq!(
        report,
        DebitReport {
            claimed: 1,
            presented: 1,
            retry_scheduled: 1,
            ..DebitReport::default()
        }
    );
    let stored = assert_schedule(
        &app,
        &tokens,
        &org,
        &id,
        "in_progress",
        &["pending", "pending"],
    );
    let first = &stored.schedule.instalments[0];
    assert_eq!(first.attempts, 1);
    assert_eq!(first.next_attempt_on, Some(date(2026, 11, 25)));
    if let Some(view) = customer_view(&app, &tokens, &org, &id) {
        assert_eq!(view["instalments"][0]["next_attempt_on"], "2026-11-25");
    }
    let failed_key = idempotency_key(&instalment_id(&stored, 1), 1);
    let failed = charges::find_by_key(&mut app.store.conn().unwrap(), &failed_key)
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.failure_code.as_deref(), Some("insufficient_funds"));

    // Not again before the retry date.
    assert_eq!(run(&app, &gateway), DebitReport::default());
    app.clock.advance(Duration::days(2));
    assert_eq!(run(&app, &gateway), DebitReport::default());

    // The retry fails too: no retry left, unpaid.
    app.clock.advance(Duration::days(1));
    let report = run(&app, &gateway);

    assert_eq!(
        report,
        DebitReport {
            claimed: 1,
            presented: 1,
            unpaid: 1,
            ..DebitReport::default()
        }
    );
    let stored = assert_schedule(&app, &tokens, &org, &id, "unpaid", &["unpaid", "pending"]);
    assert_eq!(attempts(&stored), [2, 0]);
    assert_eq!(stored.schedule.instalments[0].next_attempt_on, None);
    let retry_key = idempotency_key(&instalment_id(&stored, 1), 2);
    assert_ne!(retry_key, failed_key);
    assert_eq!(
        charges::find_by_key(&mut app.store.conn().unwrap(), &retry_key)
            .unwrap()
            .unwrap()
            .status,
        "failed"
    );
    assert_eq!(gateway.successful_charges().unwrap(), 0);
    // The customer is told, once (the first message was the registration code).
    let notice = app.nth_message("client@debits-poor.example.com", 2);
    assert!(notice.body.contains("100.00 EUR"), "{}", notice.body);
    assert!(notice.body.contains("régulariser"), "{}", notice.body);
    // An unpaid instalment is never presented again.
    app.clock.advance(Duration::days(3));
    assert_eq!(run(&app, &gateway), DebitReport::default());
}

#[test]
fn a_run_that_died_after_charging_is_completed_without_charging_twice() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = customer(&app, "debits-crash");
    let now = app.clock.now();
    // Died a moment ago: found again when the instalment is claimed.
    let fresh = app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    // Died an hour ago: found among the stale pending charges.
    let stale = app.seed_order(&org, &customer, 30_000, 3, today(&app), test_cards::VISA);
    let gateway = sandbox(&app);
    let fresh_key = dead_run_charge(&app, &gateway, &order(&app, &org, &fresh), now);
    let stale_key = dead_run_charge(
        &app,
        &gateway,
        &order(&app, &org, &stale),
        now - Duration::hours(1),
    );
    assert_eq!(gateway.successful_charges().unwrap(), 2);

    let report = run(&app, &gateway);

    // Both charges are looked up under their key before anything is sent
    // (the fresh one found again when its instalment is claimed, the stale
    // one during reconciliation): found, nothing is sent again.
    assert_eq!(
        report,
        DebitReport {
            claimed: 1,
            stale: 1,
            presented: 0,
            paid: 2,
            reconciled: 2,
            ..DebitReport::default()
        }
    );
    assert!(report.balanced());
    for (id, key, statuses) in [
        (&fresh, &fresh_key, &["paid", "pending"][..]),
        (&stale, &stale_key, &["paid", "pending", "pending"][..]),
    ] {
        let stored = assert_schedule(&app, &tokens, &org, id, "in_progress", statuses);
        assert_eq!(stored.schedule.instalments[0].attempts, 1);
        assert_eq!(gateway.charge_count(key).unwrap(), 1, "charged once");
        let recorded = charges::succeeded_for_order(&mut app.store.conn().unwrap(), id).unwrap();
        assert_eq!(recorded.len(), 1, "one charge row");
        assert_eq!(&recorded[0].idempotency_key, key);
    }
    assert_eq!(gateway.successful_charges().unwrap(), 2);
    assert_eq!(gateway.total_charged().unwrap(), 10_000 + 10_000);
    assert_eq!(run(&app, &gateway), DebitReport::default());
}

#[test]
fn a_gateway_outage_leaves_the_instalment_for_the_next_run() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = customer(&app, "debits-outage");
    let id = app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    let other = app.seed_order(&org, &customer, 30_000, 3, today(&app), test_cards::VISA);
    let gateway = sandbox(&app);
    gateway.set_unavailable(true);

    let report = run(&app, &gateway);

    // The whole batch failed: the run stops instead of claiming again.
    assert_eq!(
        report,
        DebitReport {
            claimed: 2,
            presented: 2,
            transient_failures: 2,
            left_due: 2,
            ..DebitReport::default()
        }
    );
    assert_eq!(report.ending(), Ending::Unfinished);
    for id in [&id, &other] {
        let stored = order(&app, &org, id);
        assert_eq!(stored.schedule.instalments[0].attempts, 0, "untouched");
        let key = idempotency_key(&instalment_id(&stored, 1), 1);
        let charge = charges::find_by_key(&mut app.store.conn().unwrap(), &key)
            .unwrap()
            .unwrap();
        assert_eq!(charge.status, "pending", "the charge is still pending");
    }

    // Back up: the same keys go through once; the claims were released.
    gateway.set_unavailable(false);
    let report = run(&app, &gateway);

    assert_eq!(
        report,
        DebitReport {
            claimed: 2,
            presented: 2,
            paid: 2,
            ..DebitReport::default()
        }
    );
    let stored = assert_schedule(
        &app,
        &tokens,
        &org,
        &id,
        "in_progress",
        &["paid", "pending"],
    );
    assert_eq!(
        gateway
            .charge_count(&idempotency_key(&instalment_id(&stored, 1), 1))
            .unwrap(),
        1
    );
    assert_eq!(gateway.successful_charges().unwrap(), 2);
}

/// Stores `count` orders of 4 instalments, all due by `as_of`, in one
/// transaction; returns the instalment ids and the total of their amounts.
fn seed_many(
    app: &TestApp,
    org_id: &str,
    customer_id: &str,
    count: usize,
    first_due: NaiveDate,
) -> (Vec<String>, i64) {
    let (token, view) = sandbox_token(test_cards::VISA, 12, 2030);
    let now = Utc::now();
    let mut instalment_ids = Vec::with_capacity(count * 4);
    let mut total_amount = 0;
    let mut conn = app.store.conn().unwrap();
    guichet_store::transaction(&mut conn, |conn| {
        for k in 0..count {
            let total = Money::new(10_000 + i64::try_from(k).unwrap(), Currency::EUR);
            let schedule = Schedule::new(total, plan_equal(total, 4, first_due).unwrap()).unwrap();
            let mut order = Order {
                id: ids::new_id("ord"),
                org_id: org_id.to_owned(),
                customer_id: customer_id.to_owned(),
                order_number: format!("CMD-{k}"),
                merchant_brand: "Maison & Jardin".to_owned(),
                purchase_date: first_due,
                card: Card {
                    id: ids::new_id("crd"),
                    org_id: org_id.to_owned(),
                    customer_id: customer_id.to_owned(),
                    token: token.clone(),
                    view: view.clone(),
                    created_at: now,
                },
                instalment_ids: Default::default(),
                refunds: Vec::new(),
                schedule,
                created_at: now,
                updated_at: now,
            };
            for i in &order.schedule.instalments {
                let id = ids::new_id("ins");
                instalment_ids.push(id.clone());
                order.instalment_ids.insert(i.number, id);
            }
            total_amount += total.amount;
            schedules::insert_card(conn, &order.card)?;
            schedules::insert_order(conn, &order)?;
        }
        Ok::<_, guichet_store::StoreError>(())
    })
    .unwrap();
    (instalment_ids, total_amount)
}

#[test]
fn concurrent_runs_pay_each_of_5000_instalments_exactly_once() {
    let app = TestApp::spawn();
    if app.backend != Backend::Postgres {
        eprintln!("skipped: concurrent debit runs are tested on PostgreSQL only");
        return;
    }
    let org = app.org("debits-many");
    let customer = app.customer(&org, "many@debits.example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_of = today(&app);
    let seeding = Instant::now();
    let (instalment_ids, total_amount) =
        seed_many(&app, &org.id, &customer, 1_250, date(2026, 8, 22));
    eprintln!(
        "seeded 1250 orders (5000 instalments) in {:?}",
        seeding.elapsed()
    );
    assert_eq!(instalment_ids.len(), 5_000);
    // The test server's database; its URL carries no password here, so the
    // redacted form is the URL itself.
    let url = DatabaseUrl::parse(&app.store.redacted_url()).unwrap();
    let gateway = sandbox(&app);

    let started = Instant::now();
    let reports: Vec<DebitReport> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let store = Store::connect(
                    &url,
                    &PoolOptions {
                        max_size: 2,
                        ..PoolOptions::default()
                    },
                )
                .unwrap();
                let run = DebitRun::new(store, gateway.clone(), Arc::new(app.clock.clone()));
                scope.spawn(move || run.run(as_of, 50).unwrap())
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();

    let sum = |f: fn(&DebitReport) -> u64| reports.iter().map(f).sum::<u64>();
    eprintln!("4 concurrent runs settled 5000 instalments in {elapsed:?}: {reports:?}");
    assert_eq!(
        sum(|r| r.presented),
        5_000,
        "each instalment presented once"
    );
    // A result read back from its charge row (the schedule was overwritten
    // by a concurrent save) is applied again and counted as reconciled.
    assert_eq!(sum(|r| r.paid), 5_000 + sum(|r| r.reconciled));
    assert_eq!(sum(|r| r.transient_failures), 0);
    assert_eq!(sum(|r| r.errors), 0);
    assert!(
        reports.iter().all(DebitReport::balanced),
        "the counters add up"
    );
    assert!(
        reports.iter().all(|r| r.presented > 0),
        "the runs split the work"
    );

    assert_eq!(gateway.successful_charges().unwrap(), 5_000);
    assert_eq!(gateway.total_charged().unwrap(), total_amount);
    for id in &instalment_ids {
        assert_eq!(
            gateway.charge_count(&idempotency_key(id, 1)).unwrap(),
            1,
            "{id}"
        );
    }
    let mut conn = app.store.conn().unwrap();
    let paid: i64 = instalments::table
        .filter(instalments::status.eq("paid"))
        .filter(instalments::attempts.eq(1))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(paid, 5_000);
    let succeeded: i64 = charges_table::table
        .filter(charges_table::status.eq("succeeded"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    let rows: i64 = charges_table::table.count().get_result(&mut *conn).unwrap();
    assert_eq!((succeeded, rows), (5_000, 5_000));
    let claimed: i64 = instalments::table
        .filter(instalments::claim_token.is_not_null())
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(claimed, 0, "every claim was released");
    drop(conn);
    assert_eq!(
        DebitRun::new(
            app.store.clone(),
            gateway.clone(),
            Arc::new(app.clock.clone())
        )
        .run(as_of, 50)
        .unwrap(),
        DebitReport::default()
    );
}

// ------------------------------------------------- what a run says, truly

/// A gateway that counts the charges sent to it under each key, over the
/// sandbox: to tell a lookup from a second send.
struct Counting {
    inner: Arc<SandboxGateway>,
    sent: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Counting {
    fn new(inner: Arc<SandboxGateway>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            sent: Default::default(),
        })
    }

    fn sent(&self, key: &str) -> u32 {
        self.sent.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl PaymentGateway for Counting {
    fn tokenize(
        &self,
        card: guichet_domain::gateway::CardDetails,
    ) -> Result<guichet_domain::gateway::CardToken, guichet_domain::gateway::GatewayError> {
        self.inner.tokenize(card)
    }
    fn charge(
        &self,
        merchant: &str,
        token: &str,
        amount: Money,
        key: &str,
    ) -> Result<guichet_domain::gateway::ChargeReceipt, guichet_domain::gateway::GatewayError> {
        *self.sent.lock().unwrap().entry(key.to_owned()).or_default() += 1;
        self.inner.charge(merchant, token, amount, key)
    }
    fn refund(
        &self,
        merchant: &str,
        charge_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<guichet_domain::gateway::RefundReceipt, guichet_domain::gateway::GatewayError> {
        self.inner.refund(merchant, charge_id, amount, key)
    }
    fn find_charge(
        &self,
        merchant: &str,
        key: &str,
    ) -> Result<
        guichet_domain::gateway::Lookup<guichet_domain::gateway::ChargeReceipt>,
        guichet_domain::gateway::GatewayError,
    > {
        self.inner.find_charge(merchant, key)
    }
    fn find_refund(
        &self,
        merchant: &str,
        key: &str,
    ) -> Result<
        guichet_domain::gateway::Lookup<guichet_domain::gateway::RefundReceipt>,
        guichet_domain::gateway::GatewayError,
    > {
        self.inner.find_refund(merchant, key)
    }
    fn card(
        &self,
        token: &str,
    ) -> Result<guichet_domain::card::CardView, guichet_domain::gateway::GatewayError> {
        self.inner.card(token)
    }
    fn card_matches_reference(
        &self,
        merchant: &str,
        token: &str,
        client_reference: &str,
    ) -> Result<bool, guichet_domain::gateway::GatewayError> {
        self.inner
            .card_matches_reference(merchant, token, client_reference)
    }
    fn start_authentication(
        &self,
        merchant: &str,
        token: &str,
        key: &str,
    ) -> Result<guichet_domain::gateway::AuthenticationSession, guichet_domain::gateway::GatewayError>
    {
        self.inner.start_authentication(merchant, token, key)
    }
    fn authentication_outcome(
        &self,
        merchant: &str,
        session_id: &str,
    ) -> Result<guichet_domain::gateway::AuthenticationOutcome, guichet_domain::gateway::GatewayError>
    {
        self.inner.authentication_outcome(merchant, session_id)
    }
}

#[test]
fn a_timed_out_charge_is_reconciled_by_lookup_not_sent_again() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = customer(&app, "debits-timeout");
    let id = app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::TIMEOUT);
    let sandbox = sandbox(&app);
    let gateway = Counting::new(sandbox.clone());
    let run = || {
        DebitRun::new(
            app.store.clone(),
            gateway.clone(),
            Arc::new(app.clock.clone()),
        )
        .run(today(&app), 100)
        .unwrap()
    };

    let report = run();

    // Charged, but the answer was lost: the outcome is unknown.
    assert_eq!(
        (report.claimed, report.presented, report.transient_failures),
        (1, 1, 1)
    );
    assert!(report.balanced(), "{report:?}");
    assert_eq!(report.left_due, 1);
    assert_eq!(report.ending(), Ending::Unfinished);
    let key = idempotency_key(&instalment_id(&order(&app, &org, &id), 1), 1);
    let charge = charges::find_by_key(&mut app.store.conn().unwrap(), &key)
        .unwrap()
        .unwrap();
    assert_eq!(charge.status, "pending");

    // Stale now: looked up under its key, found, settled.
    app.clock.advance(Duration::minutes(11));
    let report = run();

    assert_eq!(
        (
            report.stale,
            report.reconciled,
            report.paid,
            report.presented
        ),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert!(report.balanced(), "{report:?}");
    assert_eq!(report.ending(), Ending::Done);
    assert_eq!(gateway.sent(&key), 1, "sent once, then looked up");
    assert_eq!(sandbox.charge_count(&key).unwrap(), 1);
    assert_schedule(
        &app,
        &tokens,
        &org,
        &id,
        "in_progress",
        &["paid", "pending"],
    );
    let claimed: i64 = instalments::table
        .filter(instalments::claim_token.is_not_null())
        .count()
        .get_result(&mut *app.store.conn().unwrap())
        .unwrap();
    assert_eq!(claimed, 0, "no claim stays behind");
}

#[test]
fn a_processing_error_is_a_failed_attempt_retried_per_the_policy() {
    let app = TestApp::spawn();
    let (org, customer, _) = customer(&app, "debits-processing");
    let id = app.seed_order(
        &org,
        &customer,
        20_000,
        2,
        today(&app),
        test_cards::PROCESSING_ERROR,
    );
    let gateway = sandbox(&app);

    let report = run(&app, &gateway);

    assert_eq!(
        (report.presented, report.retry_scheduled),
        (1, 1),
        "{report:?}"
    );
    assert!(report.balanced());
    let stored = order(&app, &org, &id);
    assert_eq!(stored.schedule.instalments[0].attempts, 1);
    assert_eq!(
        stored.schedule.instalments[0].next_attempt_on,
        Some(date(2026, 11, 25))
    );
    let key = idempotency_key(&instalment_id(&stored, 1), 1);
    let charge = charges::find_by_key(&mut app.store.conn().unwrap(), &key)
        .unwrap()
        .unwrap();
    assert_eq!(
        (charge.status.as_str(), charge.failure_code.as_deref()),
        ("failed", Some("processing_error"))
    );
}

#[test]
fn the_counters_add_up_over_a_mixed_run() {
    let app = TestApp::spawn();
    let (org, customer, _) = customer(&app, "debits-mixed");
    for card in [
        test_cards::VISA,
        test_cards::INSUFFICIENT_FUNDS,
        test_cards::PROCESSING_ERROR,
        test_cards::TIMEOUT,
        test_cards::EXPIRED,
    ] {
        app.seed_order(&org, &customer, 30_000, 3, date(2026, 10, 22), card);
    }
    // A dead run's stale charge, too.
    let stale = app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    let gateway = sandbox(&app);
    dead_run_charge(
        &app,
        &gateway,
        &order(&app, &org, &stale),
        app.clock.now() - Duration::hours(1),
    );

    let report = run(&app, &gateway);

    eprintln!("{report:?}");
    assert!(report.balanced(), "{report:?}");
    assert_eq!(report.stale, 1);
    assert_eq!(report.claimed, 10);
    assert_eq!(report.paid, 3, "two VISA, one reconciled");
    assert_eq!(report.transient_failures, 2, "the TIMEOUT card's two");
    assert_eq!(report.retry_scheduled, 6);
    assert_eq!(report.reconciled, 1);
    assert_eq!(report.left_due, 2);
    assert_eq!(report.ending(), Ending::Unfinished);
}

#[test]
fn claims_held_by_a_dead_run_are_reported_and_fail_the_run() {
    let app = TestApp::spawn();
    let (org, customer, _) = customer(&app, "debits-held");
    app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    app.seed_order(&org, &customer, 30_000, 3, today(&app), test_cards::VISA);
    // A run claimed both, then died.
    let now = app.clock.now();
    let held = schedules::claim_due(
        &mut app.store.conn().unwrap(),
        today(&app),
        now,
        Duration::minutes(5),
        100,
        &ids::new_id("dbr"),
    )
    .unwrap();
    assert_eq!(held.len(), 2);
    let gateway = sandbox(&app);

    let report = run(&app, &gateway);

    assert_eq!(report.claimed, 0);
    assert_eq!(
        (report.left_due, report.held_elsewhere),
        (2, 2),
        "{report:?}"
    );
    assert_eq!(report.held_until, Some(now + Duration::minutes(5)));
    assert_eq!(report.ending(), Ending::Unfinished);
    assert_ne!(report.ending().exit_code(), 0);
    assert_eq!(gateway.successful_charges().unwrap(), 0);

    // Once the lease ends, a run takes them.
    app.clock.advance(Duration::minutes(6));
    let report = run(&app, &gateway);
    assert_eq!((report.claimed, report.paid, report.left_due), (2, 2, 0));
    assert_eq!(report.ending(), Ending::Done);
}

#[test]
fn a_stop_request_releases_every_claim_and_says_so() {
    let app = TestApp::spawn();
    let (org, customer, _) = customer(&app, "debits-stop");
    app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    let gateway = sandbox(&app);
    let stop = guichet_jobs::runner::Stop::new();
    stop.request();

    let report = debit_run(&app, &gateway)
        .run_until(today(&app), 100, stop.flag())
        .unwrap();

    assert!(report.stopped);
    assert_eq!(report.ending(), Ending::Stopped);
    assert_eq!(report.ending().exit_code(), 4);
    assert!(report.balanced());
    assert_eq!(gateway.successful_charges().unwrap(), 0);
    let claimed: i64 = instalments::table
        .filter(instalments::claim_token.is_not_null())
        .count()
        .get_result(&mut *app.store.conn().unwrap())
        .unwrap();
    assert_eq!(claimed, 0);
}

#[test]
fn a_database_outage_aborts_the_run_quickly() {
    let app = TestApp::spawn();
    if app.backend != Backend::Postgres {
        eprintln!("skipped: the database outage is played on PostgreSQL only");
        return;
    }
    let (org, customer, _) = customer(&app, "debits-db-outage");
    for _ in 0..3 {
        app.seed_order(&org, &customer, 20_000, 2, today(&app), test_cards::VISA);
    }
    let url = app.store.redacted_url();
    let target = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let proxy = guichet_tests::proxy::Proxy::start(&target);
    let proxied = url.replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    let store = Store::connect(
        &DatabaseUrl::parse(&proxied).unwrap(),
        &PoolOptions::one_shot(),
    )
    .unwrap();
    let gateway = sandbox(&app);
    proxy.cut();
    let started = Instant::now();

    let result =
        DebitRun::new(store, gateway.clone(), Arc::new(app.clock.clone())).run(today(&app), 1);

    let error = result.unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(error.contains("database is unavailable"), "{error}");
    assert_eq!(gateway.successful_charges().unwrap(), 0);
}
