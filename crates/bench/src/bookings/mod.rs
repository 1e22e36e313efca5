//! The bookings scenarios (issue 18), in the demo organization, set up
//! through the API as the business and its customers would: `booking_slots`
//! (`slots.rs`), the free slots of a busy service against `GET /v1/me`, and
//! `booking_race` (`race.rs`), customers racing for the same slots. Here:
//! the business's set-up, the slots' request and answer, and requests sent
//! on several connections at once.

mod race;
mod slots;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use guichet_store::DbConnection;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::http::{Conn, RequestSpec};
use crate::scenarios::{DEMO_ORGANIZATION, Response, Setup, staff_login, string_field};
use crate::schedules::quote;

pub use race::{Latency, RACE_CLIENTS, RACE_ROUNDS, RACE_SLOTS, RaceOutcome, RaceRound, run_race};
pub use slots::{BOOKINGS, PROVIDERS, SlotsSetup, prepare_slots};

/// Days asked (the most one call may ask).
pub const DAYS: u64 = 31;
/// The first day asked, in days after today (UTC): far enough that the
/// whole range is beyond the minimum notice, whatever the hour.
const FIRST_DAY: u64 = 2;
/// Connections that make the set-up's bookings and activations.
const SETUP_CONNECTIONS: usize = 4;
/// A set-up request taking longer than this fails the run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The business's settings: online booking on, confirmed at once, 60 days
/// ahead, 12 hours' notice (the defaults otherwise), in Paris.
fn settings() -> Value {
    json!({
        "online_booking": true,
        "confirmation": "automatic",
        "horizon_days": 60,
        "min_notice_minutes": 720,
        "cancellation": {"allowed": true, "until_hours_before": 24},
        "reschedule": {"allowed": true, "until_hours_before": 24},
        "max_pending": 2,
        "reminder_hours_before": 24,
        "time_zone": "Europe/Paris",
    })
}

/// Monday to Saturday, 08:00–20:00.
fn week() -> Value {
    let windows: Vec<Value> = (1..=6)
        .map(|d| json!({"weekday": d, "start": "08:00", "end": "20:00"}))
        .collect();
    json!({ "windows": windows })
}

fn token(answer: &Value, what: &str) -> Result<String, String> {
    string_field(answer, "access_token", what)
}

fn id(answer: &Value, what: &str) -> Result<String, String> {
    string_field(answer, "id", what)
}

fn send_json(
    setup: &mut Setup<'_>,
    spec: &RequestSpec,
    status: u16,
    what: &str,
) -> Result<Value, String> {
    setup
        .send(spec)?
        .expect(status)
        .map_err(|e| format!("{what}: {e}"))?
        .json()
}

fn admin_token(setup: &mut Setup<'_>) -> Result<String, String> {
    token(
        &send_json(setup, &staff_login(), 200, "staff login")?,
        "staff login",
    )
}

/// Turns online booking on, adds `providers` providers open [`week`] and a
/// 30-minute service they deliver; returns the service and the providers.
fn business(
    setup: &mut Setup<'_>,
    admin: &str,
    service: &str,
    providers: &[String],
) -> Result<(String, Vec<String>), String> {
    let put = RequestSpec::json("PUT", "/v1/admin/booking-settings", &settings()).bearer(admin);
    send_json(setup, &put, 200, "booking settings")?;
    let mut ids = Vec::new();
    for name in providers {
        let create = RequestSpec::json(
            "POST",
            "/v1/admin/booking-providers",
            &json!({"name": name, "kind": "staff"}),
        )
        .bearer(admin);
        let provider = id(&send_json(setup, &create, 201, "a provider")?, "a provider")?;
        let open = RequestSpec::json(
            "PUT",
            &format!("/v1/admin/booking-providers/{provider}/availability"),
            &week(),
        )
        .bearer(admin);
        send_json(setup, &open, 200, "a provider's week")?;
        ids.push(provider);
    }
    let create = RequestSpec::json(
        "POST",
        "/v1/admin/booking-services",
        &json!({
            "names": {"fr": service, "en": service},
            "duration_minutes": 30,
            "provider_ids": ids,
        }),
    )
    .bearer(admin);
    let service = id(&send_json(setup, &create, 201, "a service")?, "a service")?;
    Ok((service, ids))
}

/// A customer of the demo organization, made by its admin; their id.
fn new_customer(
    setup: &mut Setup<'_>,
    admin: &str,
    name: &str,
    email: &str,
) -> Result<String, String> {
    let create = RequestSpec::json(
        "POST",
        "/v1/admin/customers",
        &json!({"name": name, "email": email}),
    )
    .bearer(admin);
    id(&send_json(setup, &create, 201, "a customer")?, "a customer")
}

/// The first day asked and the last (included), [`DAYS`] days.
pub fn range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = today + Days::new(FIRST_DAY);
    (from, from + Days::new(DAYS - 1))
}

fn slots_request(token: &str, service: &str, from: NaiveDate, to: NaiveDate) -> RequestSpec {
    RequestSpec::get(&format!(
        "/v1/me/booking-slots?service={service}&from={from}&to={to}"
    ))
    .bearer(token)
}

/// A free start and who is free then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub providers: Vec<String>,
}

fn instant(v: &Value, name: &str) -> Result<DateTime<Utc>, String> {
    let text = v[name].as_str().ok_or_else(|| format!("no {name}"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{name} {text:?}: {e}"))
}

fn wire_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The slots of a `GET /v1/me/booking-slots` answer.
pub fn parse_slots(body: &Value) -> Result<Vec<Slot>, String> {
    let data = body["data"].as_array().ok_or("slots: no data")?;
    data.iter()
        .map(|s| {
            let providers = s["provider_ids"]
                .as_array()
                .ok_or("slots: no provider_ids")?
                .iter()
                .map(|p| p.as_str().map(str::to_owned).ok_or("slots: a provider id"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Slot {
                start: instant(s, "start")?,
                end: instant(s, "end")?,
                providers,
            })
        })
        .collect()
}

/// A response and how long it took.
pub struct Answer {
    pub response: Response,
    pub latency: Duration,
}

/// Sends `specs` on `connections` keep-alive connections at once, each
/// taking the next request when its last one is answered; the answers in
/// the order of `specs`.
fn send_all(
    runtime: &Runtime,
    addr: SocketAddr,
    host: &str,
    specs: &[RequestSpec],
    connections: usize,
) -> Result<Vec<Answer>, String> {
    let wires = Arc::new(
        specs
            .iter()
            .map(|s| s.encode(host))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let next = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..connections.clamp(1, wires.len().max(1)) {
            let (wires, next) = (Arc::clone(&wires), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(wire) = wires.get(i) else {
                        break;
                    };
                    let mut body = Vec::new();
                    let started = Instant::now();
                    let status =
                        tokio::time::timeout(SETUP_TIMEOUT, conn.round_trip(wire, &mut body))
                            .await
                            .map_err(|_| format!("no answer within {SETUP_TIMEOUT:?}"))?
                            .map_err(|e| e.to_string())?;
                    let latency = started.elapsed();
                    done.push((
                        i,
                        Answer {
                            response: Response { status, body },
                            latency,
                        },
                    ));
                }
                Ok::<_, String>(done)
            }));
        }
        let mut answers: Vec<Option<Answer>> = (0..wires.len()).map(|_| None).collect();
        for task in tasks {
            for (i, answer) in task
                .await
                .map_err(|e| format!("a connection failed: {e}"))??
            {
                answers[i] = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| "a request went unanswered".to_owned()))
            .collect()
    })
}

/// The demo organization's id.
fn org_id(conn: &mut DbConnection) -> Result<String, String> {
    crate::schedules::ids(
        conn,
        &format!(
            "SELECT id FROM organizations WHERE slug = {}",
            quote(DEMO_ORGANIZATION)
        ),
    )?
    .pop()
    .ok_or_else(|| "no demo organization".to_owned())
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

    use super::Slot;

    /// `h:m` UTC on 2026-12-09.
    pub fn at(h: u32, m: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 12, 9)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    }

    /// A 30-minute slot at `h:m` with `providers` free.
    pub fn slot(h: u32, m: u32, providers: &[&str]) -> Slot {
        Slot {
            start: at(h, m),
            end: at(h, m) + TimeDelta::minutes(30),
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::slot;
    use super::slots::pairs;
    use super::*;

    #[test]
    fn the_range_is_31_days_from_the_day_after_tomorrow() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let (from, to) = range(today);
        assert_eq!(from, NaiveDate::from_ymd_opt(2026, 12, 9).unwrap());
        assert_eq!(to, NaiveDate::from_ymd_opt(2027, 1, 8).unwrap());
        assert_eq!((to - from).num_days() + 1, 31);
    }
    #[test]
    fn slots_are_parsed_from_the_answer() {
        let body = json!({"data": [
            {"start": "2026-12-09T07:00:00Z", "end": "2026-12-09T07:30:00Z",
             "provider_ids": ["prv_a", "prv_b"]},
        ]});
        let slots = parse_slots(&body).unwrap();
        assert_eq!(slots, [slot(7, 0, &["prv_a", "prv_b"])]);
        assert_eq!(pairs(&slots).len(), 2);
        assert!(parse_slots(&json!({})).is_err());
    }
}
