//! The sandbox against a real database: a throwaway SQLite file, or a
//! throwaway PostgreSQL database when `GUICHET_TEST_DATABASE_URL` names a
//! PostgreSQL server (an administrative URL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicU32;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use guichet_domain::FixedClock;
use guichet_domain::gateway::{Cvc, Pan, test_cards};
use guichet_domain::money::Currency;
use guichet_store::{DatabaseUrl, PoolOptions, admin};

use super::*;

/// A database that lives as long as the test.
struct TestDb {
    store: Store,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg {
            let _ = admin::drop_database(admin_url, name);
        }
    }
}

impl TestDb {
    fn new() -> TestDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let options = PoolOptions {
            max_size: 10,
            ..PoolOptions::default()
        };
        match std::env::var("GUICHET_TEST_DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                // Under the suite's prefix, so that CI drops any leftover.
                let prefix = std::env::var("GUICHET_TEST_DB_PREFIX")
                    .unwrap_or_else(|_| "guichet_t".to_owned());
                let name = format!(
                    "{prefix}gw_{}_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::SeqCst),
                    Utc::now().timestamp_subsec_nanos()
                );
                admin::create_database(&admin_url, &name).unwrap();
                let url = admin::with_database(&admin_url, &name).unwrap();
                let store = Store::connect(&DatabaseUrl::Postgres(url), &options).unwrap();
                TestDb {
                    store,
                    _dir: dir,
                    pg: Some((admin_url, name)),
                }
            }
            _ => {
                let url = DatabaseUrl::Sqlite(dir.path().join("sandbox.db"));
                let store = Store::connect(&url, &options).unwrap();
                TestDb {
                    store,
                    _dir: dir,
                    pg: None,
                }
            }
        }
    }

    fn sandbox(&self, clock: &FixedClock) -> SandboxGateway {
        SandboxGateway::new(self.store.clone(), Arc::new(clock.clone()))
    }
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

fn clock() -> FixedClock {
    FixedClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).single().unwrap())
}

fn token(gw: &SandboxGateway, number: &str) -> String {
    token_expiring(gw, number, 12, 2030)
}

fn token_expiring(gw: &SandboxGateway, number: &str, exp_month: u8, exp_year: u16) -> String {
    let cvc = if number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    gw.tokenize(CardDetails {
        number: Pan::parse(number).unwrap(),
        exp_month,
        exp_year,
        cvc: Cvc::parse(cvc).unwrap(),
    })
    .unwrap()
    .token
}

const ORG: &str = "org_t";

#[test]
fn charges_are_idempotent_per_merchant_and_key() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let visa = token(&gw, test_cards::VISA);
    let first = gw.charge(ORG, &visa, eur(10_000), "k1").unwrap();
    assert!(first.charge_id.starts_with("ch_sandbox_"));
    assert_eq!(first.amount, eur(10_000));
    assert_eq!(first.idempotency_key, "k1");
    assert_eq!(gw.charge(ORG, &visa, eur(10_000), "k1").unwrap(), first);
    assert_eq!(gw.charge_count("k1").unwrap(), 1);
    assert_eq!(gw.successful_charges().unwrap(), 1);
    assert_eq!(gw.total_charged().unwrap(), 10_000);
    // Same key, another amount or card: refused, nothing charged.
    assert_eq!(
        gw.charge(ORG, &visa, eur(9_999), "k1"),
        Err(GatewayError::IdempotencyKeyReused)
    );
    let mastercard = token(&gw, test_cards::MASTERCARD);
    assert_eq!(
        gw.charge(ORG, &mastercard, eur(10_000), "k1"),
        Err(GatewayError::IdempotencyKeyReused)
    );
    // Another key, another charge; the same key for another merchant is
    // another charge too.
    let second = gw.charge(ORG, &visa, eur(10_000), "k2").unwrap();
    assert_ne!(second.charge_id, first.charge_id);
    let other = gw.charge("org_u", &visa, eur(10_000), "k1").unwrap();
    assert_ne!(other.charge_id, first.charge_id);
    assert_eq!(gw.total_charged().unwrap(), 30_000);
    assert_eq!(gw.charge_count("never used").unwrap(), 0);

    assert_eq!(gw.find_charge(ORG, "k1"), Ok(Some(Ok(first))));
    assert_eq!(gw.find_charge(ORG, "never sent"), Ok(None));
    assert_eq!(gw.find_charge("org_v", "k1"), Ok(None));
}

#[test]
fn failed_charges_are_recorded_and_replayed_and_charge_nothing() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let poor = token(&gw, test_cards::INSUFFICIENT_FUNDS);
    let err = gw.charge(ORG, &poor, eur(5_000), "k-poor").unwrap_err();
    assert_eq!(err, GatewayError::InsufficientFunds);
    assert_eq!(
        gw.charge(ORG, &poor, eur(5_000), "k-poor"),
        Err(err.clone())
    );
    assert_eq!(gw.find_charge(ORG, "k-poor"), Ok(Some(Err(err))));
    assert_eq!(
        gw.charge(ORG, &poor, eur(5_001), "k-poor"),
        Err(GatewayError::IdempotencyKeyReused)
    );
    let mut conn = db.store.conn().unwrap();
    let row = ledger::find(&mut conn, ORG, Kind::Charge, "k-poor")
        .unwrap()
        .unwrap();
    assert_eq!(row.outcome, Outcome::Failed);
    assert_eq!(row.failure_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        (row.brand.as_deref(), row.last4.as_deref()),
        (Some("visa"), Some("9995"))
    );
    assert_eq!(row.reference, poor);

    let expired = token(&gw, test_cards::EXPIRED);
    assert_eq!(
        gw.charge(ORG, &expired, eur(5_000), "k-exp"),
        Err(GatewayError::ExpiredCard)
    );
    // Refused outright, not recorded.
    assert_eq!(
        gw.charge(ORG, "tok_sandbox_unknown", eur(5_000), "k-unknown"),
        Err(GatewayError::UnknownToken)
    );
    assert_eq!(gw.find_charge(ORG, "k-unknown"), Ok(None));
    let visa = token(&gw, test_cards::VISA);
    assert_eq!(
        gw.charge(ORG, &visa, eur(0), "k-zero"),
        Err(GatewayError::InvalidAmount)
    );
    assert_eq!(gw.find_charge(ORG, "k-zero"), Ok(None));
    assert_eq!(gw.total_charged().unwrap(), 0);
    assert_eq!(gw.successful_charges().unwrap(), 0);
}

#[test]
fn a_card_that_expires_after_tokenization_fails_at_charge() {
    let db = TestDb::new();
    let clock = clock();
    let gw = db.sandbox(&clock);
    let card = token_expiring(&gw, test_cards::VISA, 4, 2026);
    assert!(gw.charge(ORG, &card, eur(100), "k1").is_ok());
    clock.advance(chrono::Duration::days(60)); // May 9, 2026
    assert_eq!(
        gw.charge(ORG, &card, eur(100), "k2"),
        Err(GatewayError::ExpiredCard)
    );
}

#[test]
fn concurrent_charges_with_the_same_key_move_money_once() {
    let db = TestDb::new();
    let gw = Arc::new(db.sandbox(&clock()));
    let visa = token(&gw, test_cards::VISA);
    let receipts: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let gw = Arc::clone(&gw);
                let visa = visa.clone();
                scope.spawn(move || gw.charge(ORG, &visa, eur(100), "same-key"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = receipts[0].clone().unwrap();
    assert!(
        receipts.iter().all(|r| r.as_ref() == Ok(&first)),
        "{receipts:?}"
    );
    assert_eq!(gw.charge_count("same-key").unwrap(), 1);
    assert_eq!(gw.total_charged().unwrap(), 100);
    let rows = ledger::list(&mut db.store.conn().unwrap(), ORG, Kind::Charge, None, 100).unwrap();
    assert_eq!(rows.len(), 1);
}

#[test]
fn the_timeout_card_charges_then_loses_the_answer() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let card = token(&gw, test_cards::TIMEOUT);
    let err = gw.charge(ORG, &card, eur(2_500), "k-lost").unwrap_err();
    assert_eq!(err, GatewayError::Timeout);
    assert!(err.is_unknown_outcome());
    // The money moved: the lookup tells the truth, and so does a replay.
    let found = gw.find_charge(ORG, "k-lost").unwrap().unwrap().unwrap();
    assert_eq!(found.amount, eur(2_500));
    assert_eq!(gw.charge(ORG, &card, eur(2_500), "k-lost"), Ok(found));
    assert_eq!(gw.charge_count("k-lost").unwrap(), 1);
    assert_eq!(gw.total_charged().unwrap(), 2_500);
}

#[test]
fn the_processing_error_card_charges_nothing() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let card = token(&gw, test_cards::PROCESSING_ERROR);
    let err = gw.charge(ORG, &card, eur(2_500), "k-err").unwrap_err();
    assert_eq!(err, GatewayError::ProcessingError);
    assert_eq!(err.code(), "processing_error");
    assert_eq!(gw.find_charge(ORG, "k-err"), Ok(Some(Err(err))));
    let row = ledger::find(&mut db.store.conn().unwrap(), ORG, Kind::Charge, "k-err")
        .unwrap()
        .unwrap();
    assert_eq!(row.failure_code.as_deref(), Some("processing_error"));
    assert_eq!(gw.total_charged().unwrap(), 0);
}

#[test]
fn the_slow_card_is_charged_at_once_and_answered_late() {
    let db = TestDb::new();
    let gw = Arc::new(
        db.sandbox(&clock())
            .with_slow_delay(Duration::from_millis(600)),
    );
    let card = token(&gw, test_cards::SLOW);
    let started = Instant::now();
    let slow = {
        let gw = Arc::clone(&gw);
        let card = card.clone();
        std::thread::spawn(move || gw.charge(ORG, &card, eur(700), "k-slow"))
    };
    // Recorded before the answer comes.
    let mut seen = None;
    while started.elapsed() < Duration::from_millis(500) {
        if let Some(found) = gw.find_charge(ORG, "k-slow").unwrap() {
            seen = Some(found);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen
        .expect("the charge is recorded before the answer")
        .unwrap();
    let answer = slow.join().unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(answer, seen);
    // A replay answers at once.
    let again = Instant::now();
    assert_eq!(gw.charge(ORG, &card, eur(700), "k-slow"), Ok(answer));
    assert!(again.elapsed() < Duration::from_millis(500));
    assert_eq!(DEFAULT_SLOW_DELAY, Duration::from_secs(15));
}

#[test]
fn refunds_are_idempotent_and_bounded_by_the_charge() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let card = token(&gw, test_cards::MASTERCARD);
    let charge = gw.charge(ORG, &card, eur(10_000), "ch-key").unwrap();
    let refund = gw
        .refund(ORG, &charge.charge_id, eur(6_000), "re-1")
        .unwrap();
    assert!(refund.refund_id.starts_with("re_sandbox_"));
    assert_eq!(refund.charge_id, charge.charge_id);
    assert_eq!(
        gw.refund(ORG, &charge.charge_id, eur(6_000), "re-1"),
        Ok(refund.clone())
    );
    assert_eq!(gw.find_refund(ORG, "re-1"), Ok(Some(Ok(refund))));
    assert_eq!(gw.find_refund(ORG, "re-never"), Ok(None));
    assert_eq!(gw.total_refunded().unwrap(), 6_000);
    let err = gw
        .refund(ORG, &charge.charge_id, eur(4_001), "re-2")
        .unwrap_err();
    assert_eq!(err, GatewayError::RefundExceedsCharge);
    assert!(
        gw.refund(ORG, &charge.charge_id, eur(4_000), "re-3")
            .is_ok()
    );
    assert_eq!(gw.total_refunded().unwrap(), 10_000);
    assert_eq!(
        gw.refund(ORG, &charge.charge_id, eur(1), "re-1"),
        Err(GatewayError::IdempotencyKeyReused)
    );
    assert_eq!(
        gw.refund(ORG, "ch_sandbox_nope", eur(1), "re-4"),
        Err(GatewayError::UnknownCharge)
    );
    // Another merchant's charge is unknown.
    assert_eq!(
        gw.refund("org_u", &charge.charge_id, eur(1), "re-5"),
        Err(GatewayError::UnknownCharge)
    );
    assert_eq!(
        gw.refund(ORG, &charge.charge_id, eur(-1), "re-6"),
        Err(GatewayError::InvalidAmount)
    );
    // A failed charge cannot be refunded.
    let poor = token(&gw, test_cards::INSUFFICIENT_FUNDS);
    let _ = gw.charge(ORG, &poor, eur(100), "ch-poor");
    let failed_id = guichet_domain::gateway::sandbox::charge_id(ORG, "ch-poor");
    assert_eq!(
        gw.refund(ORG, &failed_id, eur(1), "re-7"),
        Err(GatewayError::UnknownCharge)
    );
}

#[test]
fn the_refund_failing_card_records_failed_refunds() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let card = token(&gw, test_cards::REFUND_FAILS);
    let charge = gw.charge(ORG, &card, eur(3_000), "ch-rf").unwrap();
    let err = gw
        .refund(ORG, &charge.charge_id, eur(1_000), "re-rf")
        .unwrap_err();
    assert_eq!(err, GatewayError::RefundFailed);
    assert_eq!(err.code(), "refund_failed");
    assert_eq!(gw.find_refund(ORG, "re-rf"), Ok(Some(Err(err.clone()))));
    assert_eq!(
        gw.refund(ORG, &charge.charge_id, eur(1_000), "re-rf"),
        Err(err)
    );
    assert_eq!(gw.total_refunded().unwrap(), 0);
    let row = ledger::find(&mut db.store.conn().unwrap(), ORG, Kind::Refund, "re-rf")
        .unwrap()
        .unwrap();
    assert_eq!(row.outcome, Outcome::Failed);
    assert_eq!(row.reference, charge.charge_id);
    assert_eq!(row.last4.as_deref(), Some("5126"));
}

#[test]
fn concurrent_refunds_cannot_exceed_the_charge() {
    let db = TestDb::new();
    let gw = Arc::new(db.sandbox(&clock()));
    let card = token(&gw, test_cards::VISA);
    let charge = gw.charge(ORG, &card, eur(1_000), "ch-c").unwrap();
    // 8 refunds of 300 under different keys, and 4 under the same key.
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let gw = Arc::clone(&gw);
                let charge_id = charge.charge_id.clone();
                let key = if i < 8 {
                    format!("re-{i}")
                } else {
                    "re-same".to_owned()
                };
                scope.spawn(move || gw.refund(ORG, &charge_id, eur(300), &key))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refunded = gw.total_refunded().unwrap();
    assert!(refunded <= 1_000, "{refunded}");
    assert_eq!(refunded, 900, "three refunds of 300 fit: {results:?}");
    for result in &results {
        assert!(
            matches!(result, Ok(_) | Err(GatewayError::RefundExceedsCharge)),
            "{result:?}"
        );
    }
    let same: Vec<_> = results[8..].iter().filter(|r| r.is_ok()).collect();
    assert!(same.windows(2).all(|w| w[0] == w[1]));
    let mut conn = db.store.conn().unwrap();
    let rows = ledger::list(&mut conn, ORG, Kind::Refund, None, 100).unwrap();
    assert_eq!(rows.iter().map(|r| r.amount.amount).sum::<i64>(), 900);
}

#[test]
fn two_instances_share_the_ledger() {
    let db = TestDb::new();
    let clock = clock();
    let one = db.sandbox(&clock);
    let two = db.sandbox(&clock);
    let visa = token(&one, test_cards::VISA);
    let receipt = one.charge(ORG, &visa, eur(4_200), "k-shared").unwrap();
    assert_eq!(
        two.charge(ORG, &visa, eur(4_200), "k-shared"),
        Ok(receipt.clone())
    );
    assert_eq!(
        two.charge(ORG, &visa, eur(1), "k-shared"),
        Err(GatewayError::IdempotencyKeyReused)
    );
    assert_eq!(
        two.find_charge(ORG, "k-shared"),
        Ok(Some(Ok(receipt.clone())))
    );
    let refund = two
        .refund(ORG, &receipt.charge_id, eur(200), "re-shared")
        .unwrap();
    assert_eq!(one.find_refund(ORG, "re-shared"), Ok(Some(Ok(refund))));
    assert_eq!(one.charge_count("k-shared").unwrap(), 1);
    // A new instance (a restart) sees it all.
    drop((one, two));
    let three = db.sandbox(&clock);
    assert_eq!(three.total_charged().unwrap(), 4_200);
    assert_eq!(three.total_refunded().unwrap(), 200);
}

#[test]
fn an_outage_fails_every_call_without_recording_it() {
    let db = TestDb::new();
    let gw = db.sandbox(&clock());
    let visa = token(&gw, test_cards::VISA);
    gw.set_unavailable(true);
    let err = gw.charge(ORG, &visa, eur(100), "k").unwrap_err();
    assert_eq!(err, GatewayError::Unavailable);
    assert!(err.is_transient());
    assert_eq!(gw.card(&visa), Err(GatewayError::Unavailable));
    assert_eq!(gw.find_charge(ORG, "k"), Err(GatewayError::Unavailable));
    assert_eq!(gw.find_refund(ORG, "k"), Err(GatewayError::Unavailable));
    assert_eq!(
        gw.refund(ORG, "ch_sandbox_x", eur(1), "r"),
        Err(GatewayError::Unavailable)
    );
    // Another node still reaches the PSP and sees nothing recorded.
    let other = db.sandbox(&clock());
    assert_eq!(other.find_charge(ORG, "k"), Ok(None));
    gw.set_unavailable(false);
    assert!(gw.charge(ORG, &visa, eur(100), "k").is_ok());
    assert_eq!(gw.charge_count("k").unwrap(), 1);
    assert_eq!(gw.card(&visa).unwrap().last4, "4242");
}

#[test]
fn the_ledger_lists_newest_first_by_merchant() {
    let db = TestDb::new();
    let clock = clock();
    let gw = db.sandbox(&clock);
    let visa = token(&gw, test_cards::VISA);
    for i in 0..5 {
        gw.charge(ORG, &visa, eur(100 + i), &format!("k{i}"))
            .unwrap();
        clock.advance(chrono::Duration::minutes(1));
    }
    gw.charge("org_u", &visa, eur(1), "k0").unwrap();
    let mut conn = db.store.conn().unwrap();
    let page = ledger::list(&mut conn, ORG, Kind::Charge, None, 3).unwrap();
    let keys: Vec<_> = page.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["k4", "k3", "k2"]);
    let rest = ledger::list(&mut conn, ORG, Kind::Charge, Some(&page[2].id), 3).unwrap();
    let keys: Vec<_> = rest.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k0"]);
    assert!(rest.iter().all(|e| e.merchant == ORG));
}
