//! The idempotency keys' store functions on the test database: the lease,
//! taking a key over, and exactly-once completion inside the effect's
//! transaction.

use chrono::{Duration, Timelike, Utc};
use guichet_store::repo::idempotency::{Claim, answer, claim, complete_in, hold_in, release};
use guichet_tests::TestApp;

#[test]
fn a_key_is_locked_for_its_lease_then_taken_over() {
    let app = TestApp::spawn();
    let mut conn = app.store.conn().unwrap();
    // Whole seconds: the time goes through the database and back.
    let now = Utc::now().with_nanosecond(0).unwrap();
    let lease = Duration::seconds(2);

    assert_eq!(
        claim(&mut conn, "s", "k", "h", now, lease).unwrap(),
        Claim::New
    );
    assert_eq!(
        claim(&mut conn, "s", "k", "h", now + Duration::seconds(1), lease).unwrap(),
        Claim::InUse { until: now + lease }
    );
    assert_eq!(
        claim(&mut conn, "s", "k", "other", now, lease).unwrap(),
        Claim::Mismatch
    );
    let later = now + lease;
    assert_eq!(
        claim(&mut conn, "s", "k", "h", later, lease).unwrap(),
        Claim::Resume
    );
    assert!(matches!(
        claim(&mut conn, "s", "k", "h", later, lease).unwrap(),
        Claim::InUse { .. }
    ));
}

#[test]
fn only_the_first_of_two_attempts_completes_a_key() {
    let app = TestApp::spawn();
    let mut conn = app.store.conn().unwrap();
    let now = Utc::now();
    let lease = Duration::seconds(2);
    assert_eq!(
        claim(&mut conn, "s", "k", "h", now, lease).unwrap(),
        Claim::New
    );
    // The first attempt outlives its lease; a retry takes the key over.
    assert_eq!(
        claim(&mut conn, "s", "k", "h", now + lease, lease).unwrap(),
        Claim::Resume
    );

    // The first attempt commits late: its effect and its answer.
    let first: Result<bool, guichet_store::StoreError> =
        guichet_store::transaction(&mut conn, |conn| {
            assert!(hold_in(conn, "s", "k")?);
            complete_in(conn, "s", "k", 201, "first")
        });
    assert!(first.unwrap());
    // The retry finds the key answered: it rolls back and gives that answer.
    let second: Result<(bool, bool), guichet_store::StoreError> =
        guichet_store::transaction(&mut conn, |conn| {
            Ok((
                hold_in(conn, "s", "k")?,
                complete_in(conn, "s", "k", 201, "second")?,
            ))
        });
    assert_eq!(second.unwrap(), (false, false));
    assert_eq!(
        answer(&mut conn, "s", "k").unwrap(),
        Some((201, "first".to_owned()))
    );
    // An answered key is not released, and is replayed.
    release(&mut conn, "s", "k").unwrap();
    assert_eq!(
        claim(&mut conn, "s", "k", "h", now + lease * 3, lease).unwrap(),
        Claim::Replay {
            status: 201,
            body: "first".to_owned()
        }
    );
}

#[test]
fn a_released_key_can_be_claimed_again() {
    let app = TestApp::spawn();
    let mut conn = app.store.conn().unwrap();
    let now = Utc::now();
    let lease = Duration::seconds(60);
    assert_eq!(
        claim(&mut conn, "s", "k", "h", now, lease).unwrap(),
        Claim::New
    );
    release(&mut conn, "s", "k").unwrap();
    assert_eq!(answer(&mut conn, "s", "k").unwrap(), None);
    assert_eq!(
        claim(&mut conn, "s", "k", "h2", now, lease).unwrap(),
        Claim::New
    );
}
