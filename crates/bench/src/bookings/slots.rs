//! `booking_slots`: a 30-minute service delivered by [`PROVIDERS`]
//! providers open Monday to Saturday 08:00–20:00 (Europe/Paris), and
//! [`BOOKINGS`] bookings made by staff (`POST /v1/admin/bookings`) over the
//! [`DAYS`](super::DAYS) days asked, spread evenly over the free (start, provider)
//! pairs. `GET /v1/me/booking-slots` over those days for the demo customer
//! is then measured in turns with `GET /v1/me` (same token, `main.rs`).
//! Before that, its answer is checked: not empty, no provider listed free
//! at a start that overlaps one of its bookings, and exactly the pairs open
//! before the bookings less the booked ones; and the endpoint's work is
//! timed step by step from this process ([`profile_slots`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use guichet_api::routes::bookings::customer::{SlotList, SlotView};
use guichet_api::routes::bookings::{availability, day_start, settings_of, timing_of};
use guichet_domain::bookings::{booking_window, free_slots};
use guichet_domain::portal::PortalAction;
use guichet_store::DbConnection;
use guichet_store::repo::{bookings as store, portal};
use serde::Serialize;
use serde_json::json;
use tokio::runtime::Runtime;

use super::{
    SETUP_CONNECTIONS, Slot, admin_token, business, id, instant, new_customer, org_id, parse_slots,
    range, round, send_all, send_json, slots_request, token, wire_instant,
};
use crate::http::RequestSpec;
use crate::scenarios::{Setup, login, string_field};
use crate::schedules::{QueryPlan, plan_is_indexed, plan_of, quote};
use crate::server::Backend;

/// Providers of the measured service.
pub const PROVIDERS: usize = 5;
/// Bookings made before the slots are measured.
pub const BOOKINGS: usize = 2000;
/// Customers the staff bookings are spread over.
const BOOKING_CUSTOMERS: usize = 20;
/// How long the set-up's e-mails may take to go out before measuring.
const OUTBOX_LIMIT: Duration = Duration::from_secs(300);
/// Calls of each step of the slots' profile (after one not counted).
const PROFILE_CALLS: u32 = 100;

/// A provider held from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub provider: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Every (start, provider) pair of `slots`, in order.
pub fn pairs(slots: &[Slot]) -> Vec<(DateTime<Utc>, String)> {
    slots
        .iter()
        .flat_map(|s| s.providers.iter().map(|p| (s.start, p.clone())))
        .collect()
}

/// `count` indexes spread evenly over `0..total`.
pub fn spread(total: usize, count: usize) -> Vec<usize> {
    let count = count.min(total);
    (0..count).map(|j| j * total / count).collect()
}

/// Checks the slots answered once `booked` are made, against `open`, those
/// answered before: not empty, no provider free at a start overlapping one
/// of its bookings, exactly the open pairs less the booked ones. Returns
/// the number of free pairs.
pub fn check_slots(open: &[Slot], booked: &[Held], now: &[Slot]) -> Result<usize, String> {
    if now.is_empty() {
        return Err("the slots answer is empty".to_owned());
    }
    for slot in now {
        for provider in &slot.providers {
            if let Some(b) = booked
                .iter()
                .find(|b| &b.provider == provider && b.start < slot.end && slot.start < b.end)
            {
                return Err(format!(
                    "the slot at {} lists {provider} as free, booked from {} to {}",
                    wire_instant(slot.start),
                    wire_instant(b.start),
                    wire_instant(b.end)
                ));
            }
        }
    }
    let taken: BTreeSet<(DateTime<Utc>, String)> = booked
        .iter()
        .map(|b| (b.start, b.provider.clone()))
        .collect();
    let expected: BTreeSet<(DateTime<Utc>, String)> = pairs(open)
        .into_iter()
        .filter(|p| !taken.contains(p))
        .collect();
    let seen: BTreeSet<(DateTime<Utc>, String)> = pairs(now).into_iter().collect();
    if seen != expected {
        let missing = expected.difference(&seen).count();
        let extra = seen.difference(&expected).count();
        return Err(format!(
            "the slots answer {} free (start, provider) pairs, expected {} ({} open less {} \
             booked): {missing} missing, {extra} unexpected",
            seen.len(),
            expected.len(),
            pairs(open).len(),
            taken.len()
        ));
    }
    Ok(seen.len())
}

/// Waits until the outbox holds no message waiting to go (the set-up's
/// e-mails are sent by the server's dispatcher meanwhile); how long that
/// took, or `None` if they were still going after [`OUTBOX_LIMIT`].
fn wait_for_outbox(conn: &mut DbConnection) -> Result<Option<f64>, String> {
    let started = Instant::now();
    loop {
        let waiting = crate::schedules::count(
            conn,
            "SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )?;
        if waiting == 0 {
            return Ok(Some(round(started.elapsed().as_secs_f64(), 1)));
        }
        if started.elapsed() > OUTBOX_LIMIT {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the `booking_slots` scenario measured on, and its check.
#[derive(Debug, Clone, Serialize)]
pub struct SlotsSetup {
    pub providers: usize,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Free (start, provider) pairs before any booking.
    pub open_pairs: usize,
    pub bookings: usize,
    /// Free pairs once booked: `open_pairs - bookings`, checked.
    pub free_pairs: usize,
    /// Starts in the measured answer, and its size.
    pub slots: usize,
    pub body_bytes: usize,
    /// The staff bookings, on [`SETUP_CONNECTIONS`] connections.
    pub booking_secs: f64,
    /// Until the outbox had sent their e-mails (`null`: still sending
    /// after 300 s, measured anyway).
    pub outbox_drain_secs: Option<f64>,
    /// Where the endpoint's time goes, measured from this process.
    pub profile: SlotsProfile,
}

/// A part of `GET /v1/me/booking-slots`'s work, as its handler does it,
/// timed in this process on a connection of its own (the server idle).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// SQL statements it sends.
    pub statements: u32,
    /// Rows it reads, or for the computing steps the items it makes.
    pub rows: usize,
    pub us_per_call: f64,
}

/// The endpoint's work step by step, and the plans of its three
/// availability queries.
#[derive(Debug, Clone, Serialize)]
pub struct SlotsProfile {
    /// Calls timed per step.
    pub calls: u32,
    /// All but HTTP and the token check (the session read, one statement,
    /// which the handler's `CustomerPrincipal` makes in a blocking task and
    /// on a pooled connection of its own).
    pub steps: Vec<Step>,
    pub total_us: f64,
    /// `busy_of`, `windows_of`, `exceptions_of`: `EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN (ANALYZE, BUFFERS)` on PostgreSQL.
    pub query_plans: Vec<QueryPlan>,
}

/// `f` once not counted, then [`PROFILE_CALLS`] times: its last result and
/// the mean time per call in µs.
fn timed<T>(mut f: impl FnMut() -> Result<T, String>) -> Result<(T, f64), String> {
    let mut last = f()?;
    let started = Instant::now();
    for _ in 0..PROFILE_CALLS {
        last = f()?;
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(PROFILE_CALLS);
    Ok((last, round(us, 1)))
}

/// The SQL of the store's availability queries for `providers` (as diesel
/// writes them), with the handler's bounds.
fn availability_sql(
    org_id: &str,
    providers: &[String],
    days: (NaiveDate, NaiveDate),
    range: (DateTime<Utc>, DateTime<Utc>),
) -> [(&'static str, String); 3] {
    let org = quote(org_id);
    let list = providers
        .iter()
        .map(|p| quote(p))
        .collect::<Vec<_>>()
        .join(", ");
    let time = |t: DateTime<Utc>| quote(&t.naive_utc().to_string());
    [
        (
            "busy_of",
            format!(
                r#"SELECT "bookings"."provider_id", "bookings"."start_at", "bookings"."busy_until" FROM "bookings" WHERE "bookings"."provider_id" IN (SELECT "booking_providers"."id" FROM "booking_providers" WHERE "booking_providers"."org_id" = {org} AND "booking_providers"."id" IN ({list})) AND "bookings"."status" IN ('pending', 'confirmed') AND "bookings"."busy_until" > {} AND "bookings"."start_at" < {} ORDER BY "bookings"."provider_id" ASC, "bookings"."busy_until" ASC"#,
                time(range.0),
                time(range.1)
            ),
        ),
        (
            "windows_of",
            format!(
                r#"SELECT "booking_windows"."id", "booking_windows"."org_id", "booking_windows"."provider_id", "booking_windows"."weekday", "booking_windows"."start_minute", "booking_windows"."end_minute" FROM "booking_windows" WHERE "booking_windows"."org_id" = {org} AND "booking_windows"."provider_id" IN ({list}) ORDER BY "booking_windows"."provider_id" ASC, "booking_windows"."weekday" ASC, "booking_windows"."start_minute" ASC"#
            ),
        ),
        (
            "exceptions_of",
            format!(
                r#"SELECT "booking_exceptions"."id", "booking_exceptions"."org_id", "booking_exceptions"."provider_id", "booking_exceptions"."day", "booking_exceptions"."kind", "booking_exceptions"."start_minute", "booking_exceptions"."end_minute", "booking_exceptions"."note", "booking_exceptions"."created_at" FROM "booking_exceptions" WHERE "booking_exceptions"."org_id" = {org} AND "booking_exceptions"."provider_id" IN ({list}) AND "booking_exceptions"."day" >= {} AND "booking_exceptions"."day" <= {} ORDER BY "booking_exceptions"."provider_id" ASC, "booking_exceptions"."day" ASC, "booking_exceptions"."start_minute" ASC, "booking_exceptions"."id" ASC"#,
                quote(&days.0.to_string()),
                quote(&days.1.to_string())
            ),
        ),
    ]
}

/// Times each step of the slots handler for `customer_id` and the service
/// over `from..=to`, with the plans of its availability queries.
pub fn profile_slots(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    service_id: &str,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<SlotsProfile, String> {
    let api = |e: guichet_api::problem::ApiError| e.to_string();
    let db = |e: guichet_store::StoreError| e.to_string();
    let mut steps = Vec::new();
    let mut step = |step, statements, rows, us_per_call| {
        steps.push(Step {
            step,
            statements,
            rows,
            us_per_call,
        });
    };
    let (_, us) = timed(|| {
        portal::action_enabled(conn, org_id, customer_id, PortalAction::Bookings).map_err(db)
    })?;
    step("portal action enabled", 2, 2, us);
    let (settings, us) = timed(|| settings_of(conn, org_id).map_err(api))?;
    step("booking settings", 1, 1, us);
    let (service, us) = timed(|| store::get_service(conn, org_id, service_id).map_err(db))?;
    step(
        "service and its providers",
        2,
        1 + service.provider_ids.len(),
        us,
    );
    let tz = settings.time_zone.tz();
    let (start, end) = (day_start(tz, from), day_start(tz, to + Days::new(1)));
    let range = (start - TimeDelta::days(1), end + TimeDelta::days(1));
    let days = (from.pred_opt().unwrap_or(from), to.succ_opt().unwrap_or(to));
    let (providers, us) =
        timed(|| store::providers_by_ids(conn, org_id, &service.provider_ids).map_err(db))?;
    step("providers_by_ids", 1, providers.len(), us);
    let active: Vec<String> = providers
        .into_iter()
        .filter(|p| p.active)
        .map(|p| p.id)
        .collect();
    let (windows, us) = timed(|| store::windows_of(conn, org_id, &active).map_err(db))?;
    step("windows_of", 1, windows.len(), us);
    let (exceptions, us) =
        timed(|| store::exceptions_of(conn, org_id, &active, days.0, days.1).map_err(db))?;
    step("exceptions_of", 1, exceptions.len(), us);
    let (busy, us) = timed(|| store::busy_of(conn, org_id, &active, range.0, range.1).map_err(db))?;
    step("busy_of", 1, busy.len(), us);
    let (avail, busy) = availability(
        conn,
        org_id,
        &service.provider_ids,
        from,
        to,
        range.0,
        range.1,
        None,
    )
    .map_err(api)?;
    let (earliest, latest) = booking_window(&settings, Utc::now());
    let timing = timing_of(&service);
    let (slots, us) = timed(|| {
        Ok(free_slots(
            &timing, &avail, &busy, tz, start, end, earliest, latest,
        ))
    })?;
    step("free_slots (domain)", 0, slots.len(), us);
    let (json, us) = timed(|| {
        let list = SlotList {
            service_id: service.id.clone(),
            time_zone: settings.time_zone.name().to_owned(),
            from,
            to,
            data: slots
                .iter()
                .map(|s| SlotView {
                    start: s.start,
                    end: s.end,
                    provider_ids: s.provider_ids.clone(),
                })
                .collect(),
        };
        serde_json::to_vec(&list).map_err(|e| e.to_string())
    })?;
    step("answer as JSON", 0, json.len(), us);
    let total_us = round(steps.iter().map(|s| s.us_per_call).sum(), 1);
    let mut query_plans = Vec::new();
    for (query, sql) in availability_sql(org_id, &active, days, range) {
        let plan = plan_of(conn, &sql, true).map_err(|e| format!("{query}: {e}"))?;
        query_plans.push(QueryPlan {
            query,
            indexed: plan_is_indexed(&plan, "provider_id"),
            plan,
        });
    }
    Ok(SlotsProfile {
        calls: PROFILE_CALLS,
        steps,
        total_us,
        query_plans,
    })
}

/// The two requests to compare (`GET /v1/me/booking-slots` over [`DAYS`]
/// days and `GET /v1/me`, one token) and what they run on.
pub struct SlotsPrepared {
    pub slots: RequestSpec,
    pub me: RequestSpec,
    pub setup: SlotsSetup,
}

/// Sets the business up, books [`BOOKINGS`] slots and checks the answer.
pub fn prepare_slots(
    setup: &mut Setup<'_>,
    runtime: &Runtime,
    addr: SocketAddr,
    database_url: &str,
    backend: Backend,
    progress: &dyn Fn(&str),
) -> Result<SlotsPrepared, String> {
    let admin = admin_token(setup)?;
    let sign_in = login(setup)?;
    let customer = token(
        &send_json(setup, &sign_in, 200, "customer login")?,
        "customer login",
    )?;
    let me = RequestSpec::get("/v1/me").bearer(&customer);
    let customer_id = id(&send_json(setup, &me, 200, "GET /v1/me")?, "GET /v1/me")?;
    let names: Vec<String> = (1..=PROVIDERS).map(|i| format!("Praticien {i}")).collect();
    let (service, _) = business(setup, &admin, "Consultation", &names)?;
    let customers = (0..BOOKING_CUSTOMERS)
        .map(|i| {
            new_customer(
                setup,
                &admin,
                &format!("Client agenda {i}"),
                &format!("agenda.{i}@example.com"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (from, to) = range(Utc::now().date_naive());
    let slots = slots_request(&customer, &service, from, to);
    let open = parse_slots(&send_json(setup, &slots, 200, "free slots")?)?;
    let open_pairs = pairs(&open);
    if open_pairs.len() < BOOKINGS {
        return Err(format!(
            "{} free (start, provider) pairs from {from} to {to}, fewer than {BOOKINGS}",
            open_pairs.len()
        ));
    }
    progress(&format!(
        "{} free (start, provider) pairs from {from} to {to}; booking {BOOKINGS} of them \
         as staff on {SETUP_CONNECTIONS} connections",
        open_pairs.len()
    ));
    let requests: Vec<RequestSpec> = spread(open_pairs.len(), BOOKINGS)
        .into_iter()
        .enumerate()
        .map(|(j, k)| {
            let (start, provider) = &open_pairs[k];
            RequestSpec::json(
                "POST",
                "/v1/admin/bookings",
                &json!({
                    "customer_id": customers[j % customers.len()],
                    "service_id": service,
                    "start": wire_instant(*start),
                    "provider_id": provider,
                }),
            )
            .bearer(&admin)
        })
        .collect();
    let started = Instant::now();
    let answers = send_all(runtime, addr, setup.host(), &requests, SETUP_CONNECTIONS)?;
    let booking_secs = round(started.elapsed().as_secs_f64(), 1);
    let booked = answers
        .into_iter()
        .map(|a| {
            let b = a
                .response
                .expect(201)
                .map_err(|e| format!("a staff booking: {e}"))?
                .json()?;
            Ok(Held {
                provider: string_field(&b, "provider_id", "a staff booking")?,
                start: instant(&b, "start")?,
                end: instant(&b, "end")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut conn = crate::schedules::connect(database_url)?;
    let conn = &mut *conn;
    progress(&format!(
        "{BOOKINGS} bookings in {booking_secs} s; waiting for their e-mails to go out"
    ));
    let outbox_drain_secs = wait_for_outbox(conn)?;
    if backend == Backend::Postgres {
        // What autovacuum would do a minute later (it is off on the bench's
        // server): statistics for the tables just filled.
        crate::schedules::execute(conn, "ANALYZE bookings, outbox, events")?;
    }
    let body = setup
        .send(&slots)?
        .expect(200)
        .map_err(|e| format!("free slots: {e}"))?;
    let body_bytes = body.body.len();
    let now = parse_slots(&body.json()?)?;
    let free_pairs = check_slots(&open, &booked, &now)?;
    progress("timing the endpoint's steps from here");
    let org = org_id(conn)?;
    let profile = profile_slots(conn, &org, &customer_id, &service, (from, to))?;
    Ok(SlotsPrepared {
        slots,
        me,
        setup: SlotsSetup {
            providers: PROVIDERS,
            from,
            to,
            open_pairs: open_pairs.len(),
            bookings: booked.len(),
            free_pairs,
            slots: now.len(),
            body_bytes,
            booking_secs,
            outbox_drain_secs,
            profile,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{at, slot};
    use super::*;

    fn held(provider: &str, h: u32, m: u32) -> Held {
        Held {
            provider: provider.to_owned(),
            start: at(h, m),
            end: at(h, m) + TimeDelta::minutes(30),
        }
    }
    #[test]
    fn bookings_are_spread_evenly() {
        assert_eq!(spread(10, 4), [0, 2, 5, 7]);
        assert_eq!(spread(3, 5), [0, 1, 2]);
        assert!(spread(0, 5).is_empty());
        let picked = spread(3240, 2000);
        assert_eq!(picked.len(), 2000);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert!(*picked.last().unwrap() < 3240);
    }
    #[test]
    fn free_slots_must_be_the_open_ones_less_the_booked() {
        let open = [slot(7, 0, &["a", "b"]), slot(7, 30, &["a", "b"])];
        let booked = [held("a", 7, 0), held("b", 7, 30)];
        let right = [slot(7, 0, &["b"]), slot(7, 30, &["a"])];
        assert_eq!(check_slots(&open, &booked, &right), Ok(2));
        // A booked provider listed as free.
        let overlapping = [slot(7, 0, &["a", "b"]), slot(7, 30, &["a"])];
        let e = check_slots(&open, &booked, &overlapping).unwrap_err();
        assert!(e.contains("lists a as free"), "{e}");
        // A free pair missing.
        let e = check_slots(&open, &booked, &[slot(7, 0, &["b"])]).unwrap_err();
        assert!(e.contains("1 missing"), "{e}");
        assert!(check_slots(&open, &booked, &[]).is_err());
    }
}
