//! Refunds runs: a cancellation's refund is paid at the gateway exactly
//! once, and the customer sees it.

use std::sync::Arc;

use chrono::{Duration, SecondsFormat};
use guichet_domain::gateway::test_cards;
use guichet_domain::{Clock, ids};
use guichet_gateway::SandboxGateway;
use guichet_jobs::debit::DebitRun;
use guichet_jobs::refunds::{RefundReport, RefundRun};
use guichet_jobs::runner::Ending;
use guichet_store::repo::{charges, refunds, schedules};
use guichet_store::{Backend, DatabaseUrl, PoolOptions, Store};
use guichet_tests::identity::Tokens;
use guichet_tests::{TEST_SECRET_KEY, TestApp};
use serde_json::{Value, json};

fn sandbox(app: &TestApp) -> Arc<SandboxGateway> {
    Arc::new(SandboxGateway::with_token_key(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        TEST_SECRET_KEY.as_bytes(),
    ))
}

fn refund_run(app: &TestApp, gateway: &Arc<SandboxGateway>) -> RefundRun {
    RefundRun::new(
        app.store.clone(),
        gateway.clone(),
        Arc::new(app.clock.clone()),
    )
}

/// An order of `total` in `count` monthly instalments, the first `paid`
/// months ago, whose due instalments a debit run pays; then cancelled in
/// full by the business, which records a refund of what was paid.
fn paid_then_cancelled(
    app: &TestApp,
    slug: &str,
    card: &str,
    total: i64,
    count: u32,
    paid: u32,
    gateway: &Arc<SandboxGateway>,
) -> (String, String, Tokens) {
    let org = app.org(slug);
    let (customer, tokens) =
        app.registered_customer(&org, &format!("client@{slug}.example.com"), None);
    let today = app.clock.today();
    let first = today
        .checked_sub_months(chrono::Months::new(paid - 1))
        .unwrap();
    let id = app.seed_order(&org.id, &customer, total, count, first, card);
    let report = DebitRun::new(
        app.store.clone(),
        gateway.clone(),
        Arc::new(app.clock.clone()),
    )
    .run(today, 100)
    .unwrap();
    assert_eq!(report.paid, u64::from(paid), "{report:?}");
    let res = app
        .request("POST", &format!("/v1/admin/orders/{id}/cancellations"))
        .bearer(&org.admin)
        .json(&json!({"amount": {"amount": total, "currency": "EUR"}}))
        .send();
    assert!(res.status < 300, "{}", res.text());
    (org.id, id, tokens)
}

fn schedule_view(app: &TestApp, tokens: &Tokens, id: &str) -> Value {
    let res = app
        .request("GET", &format!("/v1/me/schedules/{id}"))
        .bearer(&tokens.access)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[test]
fn a_cancelled_orders_refund_is_paid_once_and_the_customer_sees_it() {
    let app = TestApp::spawn();
    let gateway = sandbox(&app);
    let (org, id, tokens) = paid_then_cancelled(
        &app,
        "refunds-paid",
        test_cards::VISA,
        30_000,
        3,
        1,
        &gateway,
    );
    let view = schedule_view(&app, &tokens, &id);
    assert_eq!(view["refunds"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["refunds"][0]["status"], "pending");
    assert_eq!(view["refunds"][0]["settled_at"], Value::Null);
    assert_eq!(
        view["refunds"][0]["amount"],
        json!({"amount": 10_000, "currency": "EUR"})
    );

    let report = refund_run(&app, &gateway).run().unwrap();

    assert_eq!(
        report,
        RefundReport {
            claimed: 1,
            paid: 1,
            parts_sent: 1,
            ..RefundReport::default()
        }
    );
    assert!(report.balanced());
    assert_eq!(report.ending(), Ending::Done);
    assert_eq!(gateway.total_refunded().unwrap(), 10_000);
    let view = schedule_view(&app, &tokens, &id);
    let refund = &view["refunds"][0];
    assert_eq!(refund["status"], "paid", "{view}");
    assert_eq!(
        refund["settled_at"],
        app.clock
            .now()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            .as_str(),
        "{view}"
    );
    let order = schedules::get(&mut app.store.conn().unwrap(), &org, &id).unwrap();
    assert_eq!(order.refunds[0].status, "paid");

    // Nothing more to do, and nothing refunded twice.
    app.clock.advance(Duration::minutes(30));
    let again = refund_run(&app, &gateway).run().unwrap();
    assert_eq!(again, RefundReport::default());
    assert_eq!(gateway.total_refunded().unwrap(), 10_000);
}

#[test]
fn a_refund_the_gateway_refuses_is_failed_with_its_code() {
    let app = TestApp::spawn();
    let gateway = sandbox(&app);
    let (org, id, tokens) = paid_then_cancelled(
        &app,
        "refunds-refused",
        test_cards::REFUND_FAILS,
        20_000,
        2,
        1,
        &gateway,
    );

    let report = refund_run(&app, &gateway).run().unwrap();

    assert_eq!((report.claimed, report.failed, report.paid), (1, 1, 0));
    assert!(report.balanced());
    assert_eq!(gateway.total_refunded().unwrap(), 0);
    let order = schedules::get(&mut app.store.conn().unwrap(), &org, &id).unwrap();
    assert_eq!(order.refunds[0].status, "failed");
    assert_eq!(
        order.refunds[0].failure_code.as_deref(),
        Some("refund_failed")
    );
    assert_eq!(order.refunds[0].settled_at, Some(app.clock.now()));
    let view = schedule_view(&app, &tokens, &id);
    assert_eq!(view["refunds"][0]["status"], "failed", "{view}");
    // A failed refund is not tried again.
    assert_eq!(
        refund_run(&app, &gateway).run().unwrap(),
        RefundReport::default()
    );
}

#[test]
fn a_refund_spanning_two_charges_is_split_oldest_first() {
    let app = TestApp::spawn();
    let gateway = sandbox(&app);
    let (org, id, _) = paid_then_cancelled(
        &app,
        "refunds-split",
        test_cards::VISA,
        30_000,
        3,
        2,
        &gateway,
    );
    let mut conn = app.store.conn().unwrap();
    let order = schedules::get(&mut conn, &org, &id).unwrap();
    assert_eq!(order.refunds[0].amount.amount, 20_000);
    let paid = charges::succeeded_for_order(&mut conn, &id).unwrap();
    assert_eq!(paid.len(), 2);
    drop(conn);

    let report = refund_run(&app, &gateway).run().unwrap();

    assert_eq!((report.paid, report.parts_sent), (1, 2), "{report:?}");
    let parts = refunds::parts(&mut app.store.conn().unwrap(), &order.refunds[0].id).unwrap();
    let taken: Vec<(&str, i64, &str)> = parts
        .iter()
        .map(|p| (p.charge_id.as_str(), p.amount.amount, p.status.as_str()))
        .collect();
    assert_eq!(
        taken,
        [
            (paid[0].id.as_str(), 10_000, "succeeded"),
            (paid[1].id.as_str(), 10_000, "succeeded")
        ]
    );
    assert_eq!(
        parts[0].idempotency_key,
        guichet_jobs::refunds::part_key(&order.refunds[0].id, &paid[0].id)
    );
    assert_eq!(gateway.total_refunded().unwrap(), 20_000);
}

#[test]
fn a_refund_part_left_by_a_dead_run_is_looked_up_not_sent_twice() {
    let app = TestApp::spawn();
    let gateway = sandbox(&app);
    let (org, id, _) = paid_then_cancelled(
        &app,
        "refunds-dead",
        test_cards::VISA,
        20_000,
        2,
        1,
        &gateway,
    );
    let mut conn = app.store.conn().unwrap();
    let order = schedules::get(&mut conn, &org, &id).unwrap();
    let refund = &order.refunds[0];
    let charge = &charges::succeeded_for_order(&mut conn, &id).unwrap()[0];
    // A run allocated the part and sent it, then died before recording the
    // answer (and its lease ran out).
    let key = guichet_jobs::refunds::part_key(&refund.id, &charge.id);
    refunds::insert_parts(
        &mut conn,
        &[refunds::RefundPart {
            id: ids::new_id("rfp"),
            refund_id: refund.id.clone(),
            charge_id: charge.id.clone(),
            idempotency_key: key.clone(),
            amount: refund.amount,
            status: "pending".into(),
            gateway_refund_id: None,
            failure_code: None,
            created_at: app.clock.now(),
        }],
    )
    .unwrap();
    drop(conn);
    use guichet_domain::gateway::PaymentGateway;
    gateway
        .refund(
            &org,
            charge.gateway_charge_id.as_deref().unwrap(),
            refund.amount,
            &key,
        )
        .unwrap();

    let report = refund_run(&app, &gateway).run().unwrap();

    assert_eq!(
        (report.paid, report.parts_found, report.parts_sent),
        (1, 1, 0)
    );
    assert_eq!(gateway.total_refunded().unwrap(), 10_000);
}

#[test]
fn concurrent_refund_runs_pay_each_refund_exactly_once() {
    let app = TestApp::spawn();
    if app.backend != Backend::Postgres {
        eprintln!("skipped: concurrent refund runs are tested on PostgreSQL only");
        return;
    }
    let gateway = sandbox(&app);
    let mut expected = 0;
    for k in 0..12 {
        paid_then_cancelled(
            &app,
            &format!("refunds-many-{k}"),
            test_cards::VISA,
            20_000,
            2,
            1,
            &gateway,
        );
        expected += 10_000;
    }
    let url = DatabaseUrl::parse(&app.store.redacted_url()).unwrap();

    let reports: Vec<RefundReport> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let store = Store::connect(
                    &url,
                    &PoolOptions {
                        max_size: 2,
                        ..PoolOptions::default()
                    },
                )
                .unwrap();
                let run = RefundRun::new(store, gateway.clone(), Arc::new(app.clock.clone()));
                scope.spawn(move || run.run().unwrap())
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });

    eprintln!("{reports:?}");
    assert_eq!(reports.iter().map(|r| r.paid).sum::<u64>(), 12);
    assert_eq!(reports.iter().map(|r| r.parts_sent).sum::<u64>(), 12);
    assert!(reports.iter().all(RefundReport::balanced));
    assert_eq!(gateway.total_refunded().unwrap(), expected);
    assert_eq!(refund_run(&app, &gateway).run().unwrap().claimed, 0);
}
