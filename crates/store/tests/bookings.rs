//! The booking repository: no double booking as a database fact (one
//! winner among concurrent writers), reminders claimed once across
//! concurrent claimers, and the lists and updates the API builds on. On a
//! throwaway SQLite file, or a throwaway PostgreSQL database when
//! `GUICHET_TEST_DATABASE_URL` names a PostgreSQL server (an administrative
//! URL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use guichet_store::repo::bookings::{
    self, BookingClause, BookingRow, BookingSettingsRow, ExceptionRow, ProviderRow, ServiceRow,
    WindowRow,
};
use guichet_store::{Backend, DatabaseUrl, DbConnection, PoolOptions, Store, StoreError, admin};

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

static DB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh database with one organization (`org`, and `other`), a staff
/// member and two customers each; the pool has room for the concurrent
/// tests' connections.
fn test_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let options = PoolOptions {
        max_size: 24,
        ..PoolOptions::one_shot()
    };
    let db = match std::env::var("GUICHET_TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let prefix =
                std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".to_owned());
            let name = format!(
                "{prefix}bk_{}_{}_{}",
                std::process::id(),
                DB_SEQ.fetch_add(1, Ordering::Relaxed),
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
            let url = DatabaseUrl::Sqlite(dir.path().join("g.db"));
            let store = Store::connect(&url, &options).unwrap();
            TestDb {
                store,
                _dir: dir,
                pg: None,
            }
        }
    };
    let mut conn = db.store.conn().unwrap();
    for (org, slug) in [("org", "org-a"), ("other", "org-b")] {
        conn.batch_execute(&format!(
            "
INSERT INTO organizations (id, slug, name, locale, created_at, login_methods)
  VALUES ('{org}', '{slug}', 'Org', 'fr', '2026-01-05 10:00:00', 'both');
INSERT INTO staff_users (id, org_id, email, name, role, created_at)
  VALUES ('{org}_stf', '{org}', 'admin@{slug}.example', 'Admin', 'admin', '2026-01-05 10:00:00');
INSERT INTO customers (id, org_id, email, name, locale, created_at, updated_at)
  VALUES ('{org}_cus', '{org}', 'c@{slug}.example', 'C', 'fr', '2026-01-05 10:00:00', '2026-01-05 10:00:00');
INSERT INTO customers (id, org_id, email, name, locale, created_at, updated_at)
  VALUES ('{org}_cus2', '{org}', 'd@{slug}.example', 'D', 'fr', '2026-01-05 10:00:00', '2026-01-05 10:00:00');
"
        ))
        .unwrap();
    }
    drop(conn);
    db
}

fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, h, m, 0).unwrap()
}

fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0).unwrap()
}

fn provider(org: &str, id: &str, minute: u32) -> ProviderRow {
    let t = created() + Duration::minutes(i64::from(minute));
    ProviderRow {
        id: id.to_owned(),
        org_id: org.to_owned(),
        name: format!("Provider {id}"),
        kind: "staff".to_owned(),
        staff_id: None,
        active: true,
        created_at: t,
        updated_at: t,
    }
}

fn service(org: &str, id: &str, minute: u32) -> ServiceRow {
    let t = created() + Duration::minutes(i64::from(minute));
    ServiceRow {
        id: id.to_owned(),
        org_id: org.to_owned(),
        names: BTreeMap::from([
            ("en".to_owned(), "Haircut".to_owned()),
            ("fr".to_owned(), "Coupe \"courte\"".to_owned()),
        ]),
        duration_minutes: 30,
        buffer_after_minutes: 10,
        price_amount: Some(4500),
        price_currency: Some("EUR".to_owned()),
        active: true,
        created_at: t,
        updated_at: t,
        provider_ids: Vec::new(),
    }
}

/// A confirmed 30-minute booking with a 10-minute buffer of the
/// organization's customer, service `svc`.
fn booking(id: &str, provider_id: &str, start: DateTime<Utc>) -> BookingRow {
    BookingRow {
        id: id.to_owned(),
        org_id: "org".to_owned(),
        customer_id: "org_cus".to_owned(),
        service_id: "svc".to_owned(),
        provider_id: provider_id.to_owned(),
        start_at: start,
        end_at: start + Duration::minutes(30),
        busy_until: start + Duration::minutes(40),
        status: "confirmed".to_owned(),
        note: Some("First visit".to_owned()),
        created_by_kind: "customer".to_owned(),
        created_by: "org_cus".to_owned(),
        reason: None,
        cancelled_by_kind: None,
        sequence: 0,
        test: false,
        reminder_due_at: Some(start - Duration::hours(24)),
        reminder_sent_at: None,
        created_at: created(),
        updated_at: created(),
    }
}

/// Two providers (`p1`, `p2`) and a service `svc` they both deliver.
fn seed_catalog(conn: &mut DbConnection) {
    bookings::insert_provider(conn, &provider("org", "p1", 0)).unwrap();
    bookings::insert_provider(conn, &provider("org", "p2", 1)).unwrap();
    bookings::insert_service(
        conn,
        &service("org", "svc", 0),
        &["p1".to_owned(), "p2".to_owned()],
    )
    .unwrap();
}

fn ids(rows: &[BookingRow]) -> Vec<&str> {
    rows.iter().map(|b| b.id.as_str()).collect()
}

#[test]
fn settings_providers_services_and_availability_round_trip() {
    let db = test_db();
    let mut conn = db.store.conn().unwrap();
    let conn = &mut *conn;

    // Settings: none, then written, then changed.
    assert_eq!(bookings::get_settings(conn, "org").unwrap(), None);
    let mut settings = BookingSettingsRow {
        org_id: "org".to_owned(),
        online_booking: true,
        confirmation: "manual".to_owned(),
        horizon_days: 60,
        min_notice_minutes: 720,
        cancel_allowed: true,
        cancel_until_hours: 24,
        reschedule_allowed: false,
        reschedule_until_hours: 48,
        max_pending: 2,
        reminder_hours_before: 24,
        time_zone: "Europe/Paris".to_owned(),
        updated_at: created(),
    };
    bookings::put_settings(conn, &settings).unwrap();
    assert_eq!(
        bookings::get_settings(conn, "org").unwrap(),
        Some(settings.clone())
    );
    settings.online_booking = false;
    settings.confirmation = "automatic".to_owned();
    settings.updated_at = created() + Duration::hours(1);
    bookings::put_settings(conn, &settings).unwrap();
    assert_eq!(
        bookings::get_settings(conn, "org").unwrap(),
        Some(settings.clone())
    );
    assert_eq!(bookings::get_settings(conn, "other").unwrap(), None);

    // Providers: pages by (created_at, id), scoped to the organization.
    let mut p1 = provider("org", "p1", 0);
    p1.staff_id = Some("org_stf".to_owned());
    bookings::insert_provider(conn, &p1).unwrap();
    bookings::insert_provider(conn, &provider("org", "p3", 1)).unwrap();
    bookings::insert_provider(conn, &provider("org", "p2", 1)).unwrap();
    bookings::insert_provider(conn, &provider("other", "q1", 0)).unwrap();
    assert_eq!(bookings::get_provider(conn, "org", "p1").unwrap(), p1);
    assert!(matches!(
        bookings::get_provider(conn, "other", "p1"),
        Err(StoreError::NotFound)
    ));
    let page = bookings::list_providers(conn, "org", None, 2).unwrap();
    assert_eq!(
        page.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p1", "p2"]
    );
    let last = page.last().unwrap();
    let page = bookings::list_providers(conn, "org", Some((last.created_at, &last.id)), 2).unwrap();
    assert_eq!(
        page.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p3"]
    );
    let mut p3 = bookings::get_provider(conn, "org", "p3").unwrap();
    p3.active = false;
    p3.kind = "resource".to_owned();
    p3.name = "Room 3".to_owned();
    p3.updated_at = created() + Duration::hours(2);
    assert!(bookings::update_provider(conn, &p3).unwrap());
    assert_eq!(bookings::get_provider(conn, "org", "p3").unwrap(), p3);
    let mut foreign = p3.clone();
    foreign.org_id = "other".to_owned();
    assert!(!bookings::update_provider(conn, &foreign).unwrap());
    let some = bookings::providers_by_ids(
        conn,
        "org",
        &["p3".to_owned(), "q1".to_owned(), "p1".to_owned()],
    )
    .unwrap();
    assert_eq!(
        some.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p1", "p3"]
    );

    // Services: names as JSON, links replaced on update, another
    // organization's provider refused.
    let svc = service("org", "svc", 0);
    bookings::insert_service(conn, &svc, &["p2".to_owned(), "p1".to_owned()]).unwrap();
    let mut off = service("org", "svc_off", 1);
    off.active = false;
    off.price_amount = None;
    off.price_currency = None;
    bookings::insert_service(conn, &off, &[]).unwrap();
    let got = bookings::get_service(conn, "org", "svc").unwrap();
    assert_eq!(got.names, svc.names);
    assert_eq!(got.provider_ids, ["p1", "p2"]);
    assert_eq!(
        ServiceRow {
            provider_ids: Vec::new(),
            ..got
        },
        svc
    );
    assert!(matches!(
        bookings::get_service(conn, "other", "svc"),
        Err(StoreError::NotFound)
    ));
    let all = bookings::list_services(conn, "org", false, None, 10).unwrap();
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["svc", "svc_off"]
    );
    assert_eq!(all[0].provider_ids, ["p1", "p2"]);
    assert!(all[1].provider_ids.is_empty());
    let active = bookings::list_services(conn, "org", true, None, 10).unwrap();
    assert_eq!(
        active.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["svc"]
    );
    let after_first =
        bookings::list_services(conn, "org", false, Some((all[0].created_at, "svc")), 10).unwrap();
    assert_eq!(after_first.len(), 1);
    let mut changed = bookings::get_service(conn, "org", "svc").unwrap();
    changed.duration_minutes = 60;
    changed.names.insert("de".to_owned(), "Schnitt".to_owned());
    assert!(bookings::update_service(conn, &changed, &["p3".to_owned()]).unwrap());
    let got = bookings::get_service(conn, "org", "svc").unwrap();
    assert_eq!(got.duration_minutes, 60);
    assert_eq!(got.names.len(), 3);
    assert_eq!(got.provider_ids, ["p3"]);
    assert!(matches!(
        bookings::update_service(conn, &changed, &["q1".to_owned()]),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        bookings::insert_service(conn, &service("org", "svc_x", 2), &["nope".to_owned()]),
        Err(StoreError::Conflict(_))
    ));

    // Weekly windows: replaced as a whole.
    let window = |id: &str, weekday: i32, start: i32, end: i32| WindowRow {
        id: id.to_owned(),
        org_id: "org".to_owned(),
        provider_id: "p1".to_owned(),
        weekday,
        start_minute: start,
        end_minute: end,
    };
    bookings::replace_windows(
        conn,
        "org",
        "p1",
        &[
            window("w1", 2, 840, 1080),
            window("w2", 1, 540, 720),
            window("w3", 2, 540, 720),
        ],
    )
    .unwrap();
    bookings::replace_windows(conn, "org", "p2", &[window("w4", 5, 600, 660)]).unwrap();
    let ws = bookings::windows_of(conn, "org", &["p1".to_owned()]).unwrap();
    assert_eq!(
        ws.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["w2", "w3", "w1"]
    );
    bookings::replace_windows(conn, "org", "p1", &[window("w5", 3, 0, 1440)]).unwrap();
    let ws = bookings::windows_of(conn, "org", &["p1".to_owned(), "p2".to_owned()]).unwrap();
    assert_eq!(
        ws.iter()
            .map(|w| (w.id.as_str(), w.provider_id.as_str()))
            .collect::<Vec<_>>(),
        [("w5", "p1"), ("w4", "p2")]
    );
    assert!(
        bookings::windows_of(conn, "other", &["p1".to_owned()])
            .unwrap()
            .is_empty()
    );

    // Exceptions: by day range, deleted one at a time.
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let exception = |id: &str, d: u32, kind: &str, minutes: Option<(i32, i32)>| ExceptionRow {
        id: id.to_owned(),
        org_id: "org".to_owned(),
        provider_id: "p1".to_owned(),
        day: day(d),
        kind: kind.to_owned(),
        start_minute: minutes.map(|m| m.0),
        end_minute: minutes.map(|m| m.1),
        note: Some("note".to_owned()),
        created_at: created(),
    };
    let closed = exception("x1", 10, "closed", None);
    bookings::insert_exception(conn, &closed).unwrap();
    bookings::insert_exception(conn, &exception("x2", 12, "open", Some((1080, 1200)))).unwrap();
    bookings::insert_exception(conn, &exception("x3", 31, "closed", Some((540, 600)))).unwrap();
    let xs = bookings::exceptions_of(conn, "org", &["p1".to_owned()], day(10), day(12)).unwrap();
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0], closed);
    assert_eq!(xs[1].start_minute, Some(1080));
    assert!(!bookings::delete_exception(conn, "other", "x1").unwrap());
    assert!(bookings::delete_exception(conn, "org", "x1").unwrap());
    assert!(!bookings::delete_exception(conn, "org", "x1").unwrap());
    let xs = bookings::exceptions_of(conn, "org", &["p1".to_owned()], day(1), day(31)).unwrap();
    assert_eq!(
        xs.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["x2", "x3"]
    );
}

#[test]
fn a_provider_is_never_booked_twice_for_the_same_time() {
    let db = test_db();
    let mut conn = db.store.conn().unwrap();
    let conn = &mut *conn;
    seed_catalog(conn);

    // 10:00–10:30, busy until 10:40.
    let first = booking("b1", "p1", at(2, 10, 0));
    bookings::insert_booking(conn, &first).unwrap();
    assert_eq!(bookings::get_booking(conn, "org", "b1").unwrap(), first);

    // Overlapping it, in its buffer, or around it: refused, pending too.
    for (id, start) in [
        ("b2", at(2, 10, 0)),
        ("b3", at(2, 10, 20)),
        ("b4", at(2, 10, 39)),
        ("b5", at(2, 9, 31)),
    ] {
        let mut b = booking(id, "p1", start);
        b.status = "pending".to_owned();
        assert!(
            matches!(
                bookings::insert_booking(conn, &b),
                Err(StoreError::SlotTaken)
            ),
            "{id} at {start}"
        );
    }
    let mut around = booking("b6", "p1", at(2, 9, 0));
    around.end_at = at(2, 12, 0);
    around.busy_until = at(2, 12, 0);
    assert!(matches!(
        bookings::insert_booking(conn, &around),
        Err(StoreError::SlotTaken)
    ));

    // Touching ranges are fine on both sides; so is another provider, and
    // a booking that holds nothing (declined).
    bookings::insert_booking(conn, &booking("b7", "p1", at(2, 10, 40))).unwrap();
    bookings::insert_booking(conn, &booking("b8", "p1", at(2, 9, 20))).unwrap();
    bookings::insert_booking(conn, &booking("b9", "p2", at(2, 10, 0))).unwrap();
    let mut declined = booking("b10", "p1", at(2, 10, 10));
    declined.status = "declined".to_owned();
    bookings::insert_booking(conn, &declined).unwrap();

    // The declined one cannot come back to hold the taken slot.
    assert!(matches!(
        bookings::set_status(
            conn,
            "org",
            "b10",
            &["declined"],
            "confirmed",
            None,
            None,
            at(1, 8, 0)
        ),
        Err(StoreError::SlotTaken)
    ));

    // A cancelled booking frees its range, and its SEQUENCE moves on.
    assert!(
        bookings::set_status(
            conn,
            "org",
            "b1",
            &["pending", "confirmed"],
            "cancelled",
            Some("Ill"),
            Some("customer"),
            at(1, 8, 0),
        )
        .unwrap()
    );
    let cancelled = bookings::get_booking(conn, "org", "b1").unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.sequence, 1);
    assert_eq!(cancelled.reason.as_deref(), Some("Ill"));
    assert_eq!(cancelled.cancelled_by_kind.as_deref(), Some("customer"));
    assert_eq!(cancelled.updated_at, at(1, 8, 0));
    // Only once: it is no longer pending or confirmed.
    assert!(
        !bookings::set_status(
            conn,
            "org",
            "b1",
            &["pending", "confirmed"],
            "cancelled",
            None,
            None,
            at(1, 9, 0),
        )
        .unwrap()
    );
    bookings::insert_booking(conn, &booking("b11", "p1", at(2, 10, 0))).unwrap();

    // Approving a pending booking keeps its own slot; the SEQUENCE stays.
    let mut pending = booking("b12", "p1", at(3, 10, 0));
    pending.status = "pending".to_owned();
    bookings::insert_booking(conn, &pending).unwrap();
    assert!(
        bookings::set_status(
            conn,
            "org",
            "b12",
            &["pending"],
            "confirmed",
            None,
            None,
            at(1, 8, 0)
        )
        .unwrap()
    );
    assert_eq!(
        bookings::get_booking(conn, "org", "b12").unwrap().sequence,
        0
    );
    // Another organization cannot touch it.
    assert!(
        !bookings::set_status(
            conn,
            "other",
            "b12",
            &["confirmed"],
            "cancelled",
            None,
            None,
            at(1, 8, 0)
        )
        .unwrap()
    );

    // Rescheduling onto a taken range is refused and changes nothing.
    let before = bookings::get_booking(conn, "org", "b12").unwrap();
    assert!(matches!(
        bookings::reschedule(
            conn,
            "org",
            "b12",
            at(2, 10, 30),
            at(2, 11, 0),
            at(2, 11, 10),
            Some(at(1, 10, 30)),
            at(1, 9, 0),
        ),
        Err(StoreError::SlotTaken)
    ));
    assert_eq!(bookings::get_booking(conn, "org", "b12").unwrap(), before);

    // Onto its own range shifted by a little (overlapping only itself):
    // fine; the reminder is due again and the SEQUENCE moves on.
    assert!(bookings::mark_reminder_sent(conn, "b12", at(2, 10, 0)).unwrap());
    assert!(
        bookings::reschedule(
            conn,
            "org",
            "b12",
            at(3, 10, 15),
            at(3, 10, 45),
            at(3, 10, 55),
            Some(at(2, 10, 15)),
            at(1, 9, 0),
        )
        .unwrap()
    );
    let moved = bookings::get_booking(conn, "org", "b12").unwrap();
    assert_eq!(
        (moved.start_at, moved.end_at, moved.busy_until),
        (at(3, 10, 15), at(3, 10, 45), at(3, 10, 55))
    );
    assert_eq!(moved.sequence, 1);
    assert_eq!(moved.reminder_due_at, Some(at(2, 10, 15)));
    assert_eq!(moved.reminder_sent_at, None);
    assert_eq!(moved.updated_at, at(1, 9, 0));

    // A cancelled booking is not rescheduled.
    assert!(
        !bookings::reschedule(
            conn,
            "org",
            "b1",
            at(4, 10, 0),
            at(4, 10, 30),
            at(4, 10, 40),
            None,
            at(1, 9, 0),
        )
        .unwrap()
    );

    // What the slot search subtracts: holding bookings overlapping the
    // range, by provider and start.
    let busy = bookings::busy_of(
        conn,
        "org",
        &["p1".to_owned(), "p2".to_owned()],
        at(2, 9, 50),
        at(2, 10, 40),
    )
    .unwrap();
    assert_eq!(
        busy,
        [
            ("p1".to_owned(), at(2, 9, 20), at(2, 10, 0)),
            ("p1".to_owned(), at(2, 10, 0), at(2, 10, 40)),
            ("p2".to_owned(), at(2, 10, 0), at(2, 10, 40)),
        ]
    );
    assert!(
        bookings::busy_of(conn, "other", &["p1".to_owned()], at(2, 0, 0), at(3, 0, 0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sixteen_concurrent_writers_of_one_slot_leave_one_booking() {
    const WRITERS: usize = 16;
    let db = test_db();
    {
        let mut conn = db.store.conn().unwrap();
        seed_catalog(&mut conn);
    }
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = store.conn().unwrap();
                let mut b = booking(&format!("race{i:02}"), "p1", at(5, 14, 0));
                // Each writer's range overlaps the others' differently.
                b.start_at += Duration::minutes(i as i64 % 3 * 5);
                b.end_at += Duration::minutes(i as i64 % 3 * 5);
                b.busy_until += Duration::minutes(i as i64 % 3 * 5);
                b.status = if i % 2 == 0 { "pending" } else { "confirmed" }.to_owned();
                barrier.wait();
                guichet_store::transaction(&mut conn, |conn| bookings::insert_booking(conn, &b))
            })
        })
        .collect();
    let outcomes: Vec<Result<(), StoreError>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let taken = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::SlotTaken)))
        .count();
    assert_eq!((won, taken), (1, WRITERS - 1), "{outcomes:?}");

    let mut conn = db.store.conn().unwrap();
    let held = bookings::busy_of(
        &mut conn,
        "org",
        &["p1".to_owned()],
        at(5, 0, 0),
        at(6, 0, 0),
    )
    .unwrap();
    assert_eq!(held.len(), 1);
    let all = bookings::list_org_bookings(
        &mut conn,
        "org",
        at(5, 0, 0),
        at(6, 0, 0),
        None,
        None,
        None,
        100,
    )
    .unwrap();
    assert_eq!(all.len(), 1);
}

#[test]
fn customer_and_staff_lists() {
    let db = test_db();
    let mut conn = db.store.conn().unwrap();
    let conn = &mut *conn;
    seed_catalog(conn);
    let now = at(10, 12, 0);

    let with = |id: &str, provider: &str, start: DateTime<Utc>, status: &str| {
        let mut b = booking(id, provider, start);
        b.status = status.to_owned();
        b
    };
    for b in [
        with("past_done", "p1", at(3, 9, 0), "completed"),
        with("past_confirmed", "p1", at(4, 9, 0), "confirmed"),
        with("past_pending", "p1", at(5, 9, 0), "pending"),
        with("now_confirmed", "p1", at(10, 11, 45), "confirmed"),
        with("soon", "p1", at(11, 9, 0), "confirmed"),
        with("soon_pending", "p2", at(11, 9, 0), "pending"),
        with("later", "p2", at(12, 9, 0), "confirmed"),
        with("later_pending", "p1", at(13, 9, 0), "pending"),
        with("future_cancelled", "p1", at(14, 9, 0), "cancelled"),
        with("future_declined", "p2", at(14, 9, 0), "declined"),
    ] {
        bookings::insert_booking(conn, &b).unwrap();
    }
    let mut theirs = with("theirs", "p2", at(15, 9, 0), "confirmed");
    theirs.customer_id = "org_cus2".to_owned();
    bookings::insert_booking(conn, &theirs).unwrap();

    // The customer reads only their own bookings.
    assert!(bookings::get_customer_booking(conn, "org", "org_cus", "soon").is_ok());
    assert!(matches!(
        bookings::get_customer_booking(conn, "org", "org_cus", "theirs"),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        bookings::get_customer_booking(conn, "other", "org_cus", "soon"),
        Err(StoreError::NotFound)
    ));

    let list =
        |conn: &mut DbConnection, clauses: &[BookingClause<'_>], newest_first: bool, limit: i64| {
            let mut out = Vec::new();
            let mut after: Option<(DateTime<Utc>, String)> = None;
            loop {
                let page = bookings::list_customer_bookings(
                    conn,
                    "org",
                    "org_cus",
                    clauses,
                    newest_first,
                    after.as_ref().map(|(t, id)| (*t, id.as_str())),
                    limit,
                )
                .unwrap();
                let Some(last) = page.last() else { break };
                after = Some((last.start_at, last.id.clone()));
                out.extend(page.into_iter().map(|b| b.id));
            }
            out
        };

    // Upcoming: confirmed and not over, soonest first, two to a page.
    let upcoming = [BookingClause {
        statuses: &["confirmed"],
        ends_after: Some(now),
        ended_by: None,
    }];
    assert_eq!(
        list(conn, &upcoming, false, 2),
        ["now_confirmed", "soon", "later"]
    );
    // Pending, whenever.
    let pending = [BookingClause {
        statuses: &["pending"],
        ends_after: None,
        ended_by: None,
    }];
    assert_eq!(
        list(conn, &pending, false, 1),
        ["past_pending", "soon_pending", "later_pending"]
    );
    // History: closed ones, and confirmed ones that are over; newest first.
    let history = [
        BookingClause {
            statuses: &["declined", "cancelled", "completed", "no_show"],
            ends_after: None,
            ended_by: None,
        },
        BookingClause {
            statuses: &["confirmed"],
            ends_after: None,
            ended_by: Some(now),
        },
    ];
    // (Two start at the same time: by id, descending.)
    assert_eq!(
        list(conn, &history, true, 2),
        [
            "future_declined",
            "future_cancelled",
            "past_confirmed",
            "past_done"
        ]
    );
    assert!(list(conn, &[], false, 10).is_empty());

    // Pending requests that still count, and the dashboard's next ones.
    assert_eq!(
        bookings::count_pending(conn, "org", "org_cus", now).unwrap(),
        2
    );
    assert_eq!(
        bookings::count_pending(conn, "org", "org_cus2", now).unwrap(),
        0
    );
    let next = bookings::next_upcoming(conn, "org", "org_cus", now, 3).unwrap();
    assert_eq!(ids(&next), ["soon", "soon_pending", "later"]);

    // Staff: a day range, by provider and status, paged.
    let day = bookings::list_org_bookings(
        conn,
        "org",
        at(11, 0, 0),
        at(15, 0, 0),
        None,
        None,
        None,
        100,
    )
    .unwrap();
    assert_eq!(
        ids(&day),
        [
            "soon",
            "soon_pending",
            "later",
            "later_pending",
            "future_cancelled",
            "future_declined"
        ]
    );
    let p1 = bookings::list_org_bookings(
        conn,
        "org",
        at(11, 0, 0),
        at(15, 0, 0),
        Some("p1"),
        None,
        None,
        100,
    )
    .unwrap();
    assert_eq!(ids(&p1), ["soon", "later_pending", "future_cancelled"]);
    let pending_p1 = bookings::list_org_bookings(
        conn,
        "org",
        at(1, 0, 0),
        at(31, 0, 0),
        Some("p1"),
        Some("pending"),
        None,
        100,
    )
    .unwrap();
    assert_eq!(ids(&pending_p1), ["past_pending", "later_pending"]);
    let first =
        bookings::list_org_bookings(conn, "org", at(11, 0, 0), at(15, 0, 0), None, None, None, 2)
            .unwrap();
    let last = first.last().unwrap();
    let rest = bookings::list_org_bookings(
        conn,
        "org",
        at(11, 0, 0),
        at(15, 0, 0),
        None,
        None,
        Some((last.start_at, &last.id)),
        2,
    )
    .unwrap();
    assert_eq!(ids(&rest), ["later", "later_pending"]);
    assert!(
        bookings::list_org_bookings(
            conn,
            "other",
            at(1, 0, 0),
            at(31, 0, 0),
            None,
            None,
            None,
            100
        )
        .unwrap()
        .is_empty()
    );
}

/// Confirmed bookings `due00..` whose reminders are due at `now`, and
/// bookings whose reminder is not to be sent: not due yet, already sent,
/// not confirmed, or already started.
fn seed_reminders(conn: &mut DbConnection, due: usize, now: DateTime<Utc>) {
    seed_catalog(conn);
    for i in 0..due {
        // One provider, one booking an hour, so that none overlaps.
        let mut b = booking(
            &format!("due{i:02}"),
            "p1",
            now + Duration::hours(2 + i as i64),
        );
        b.reminder_due_at = Some(now - Duration::minutes(i as i64));
        bookings::insert_booking(conn, &b).unwrap();
    }
    let mut later = booking("not_due", "p2", now + Duration::hours(30));
    later.reminder_due_at = Some(now + Duration::hours(6));
    let mut sent = booking("sent", "p2", now + Duration::hours(3));
    sent.reminder_due_at = Some(now - Duration::hours(1));
    sent.reminder_sent_at = Some(now - Duration::minutes(50));
    let mut pending = booking("pending", "p2", now + Duration::hours(5));
    pending.status = "pending".to_owned();
    pending.reminder_due_at = Some(now - Duration::hours(1));
    let mut started = booking("started", "p2", now - Duration::minutes(10));
    started.reminder_due_at = Some(now - Duration::hours(24));
    let mut none = booking("no_reminder", "p2", now + Duration::hours(8));
    none.reminder_due_at = None;
    for b in [later, sent, pending, started, none] {
        bookings::insert_booking(conn, &b).unwrap();
    }
}

#[test]
fn due_reminders_are_claimed_once() {
    let db = test_db();
    let now = at(20, 8, 0);
    let mut conn = db.store.conn().unwrap();
    seed_reminders(&mut conn, 5, now);

    // Soonest due first; the others are not due.
    let claimed = guichet_store::transaction(&mut conn, |conn| {
        let claimed = bookings::claim_due_reminders(conn, now, 3)?;
        for b in &claimed {
            assert!(bookings::mark_reminder_sent(conn, &b.id, now)?);
        }
        Ok::<_, StoreError>(claimed)
    })
    .unwrap();
    assert_eq!(ids(&claimed), ["due04", "due03", "due02"]);
    let claimed = guichet_store::transaction(&mut conn, |conn| {
        let claimed = bookings::claim_due_reminders(conn, now, 10)?;
        for b in &claimed {
            bookings::mark_reminder_sent(conn, &b.id, now)?;
        }
        Ok::<_, StoreError>(claimed)
    })
    .unwrap();
    assert_eq!(ids(&claimed), ["due01", "due00"]);
    assert!(
        bookings::claim_due_reminders(&mut conn, now, 10)
            .unwrap()
            .is_empty()
    );
    assert!(!bookings::mark_reminder_sent(&mut conn, "due00", now).unwrap());
    assert_eq!(
        bookings::get_booking(&mut conn, "org", "due00")
            .unwrap()
            .reminder_sent_at,
        Some(now)
    );
    // The one not due yet comes when it is.
    let later = now + Duration::hours(6);
    assert_eq!(
        ids(&bookings::claim_due_reminders(&mut conn, later, 10).unwrap()),
        ["not_due"]
    );
}

#[test]
fn concurrent_reminder_claimers_never_share_a_booking() {
    const DUE: usize = 12;
    const CLAIMERS: usize = 2;
    let db = test_db();
    let now = at(20, 8, 0);
    {
        let mut conn = db.store.conn().unwrap();
        seed_reminders(&mut conn, DUE, now);
    }
    let postgres = db.store.backend() == Backend::Postgres;
    // On PostgreSQL both claimers hold their claim at the same time (the
    // barrier is inside their transactions), so a claim that did not skip
    // the other's rows would take the same bookings or wait for them (the
    // lock timeout then fails the test). SQLite's writers are one at a
    // time: the second claimer starts once the first has committed.
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let handles: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = store.conn().unwrap();
                let mut mine = Vec::new();
                loop {
                    let claimed = guichet_store::transaction(&mut conn, |conn| {
                        if postgres {
                            conn.batch_execute("SET LOCAL lock_timeout = '5s'")?;
                        }
                        let claimed = bookings::claim_due_reminders(conn, now, 4);
                        // Reached whatever the claim gave, so that a
                        // failed claimer does not leave the other waiting.
                        if postgres && mine.is_empty() {
                            barrier.wait();
                        }
                        let claimed = claimed?;
                        for b in &claimed {
                            assert!(bookings::mark_reminder_sent(conn, &b.id, now)?);
                        }
                        Ok::<_, StoreError>(claimed)
                    })
                    .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    mine.extend(claimed.into_iter().map(|b| b.id));
                }
                mine
            })
        })
        .collect();
    let claims: Vec<Vec<String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut seen = BTreeSet::new();
    for id in claims.iter().flatten() {
        assert!(seen.insert(id.clone()), "{id} claimed twice: {claims:?}");
    }
    let expected: BTreeSet<String> = (0..DUE).map(|i| format!("due{i:02}")).collect();
    assert_eq!(seen, expected);
    if postgres {
        assert!(claims.iter().all(|c| !c.is_empty()), "{claims:?}");
    }
}
