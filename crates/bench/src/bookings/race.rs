//! `booking_race`: [`RACE_CLIENTS`] customers (distinct, each signed in with
//! an activation code) ask at once for [`RACE_SLOTS`] slots of a
//! one-provider service (client `i` for slot `i mod 10`), in [`RACE_ROUNDS`]
//! rounds on fresh slots. A round passes when exactly 10 answers are `201`,
//! one per slot, every other one is `409 slot_taken`, and the database then
//! holds exactly those 10 bookings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use super::{
    Answer, SETUP_CONNECTIONS, SETUP_TIMEOUT, admin_token, business, instant, new_customer, org_id,
    parse_slots, range, round, send_all, send_json, slots_request, token, wire_instant,
};
use crate::http::{Conn, RequestSpec};
use crate::load::percentile;
use crate::scenarios::{DEMO_ORGANIZATION, Response, Setup, string_field};
use crate::schedules::quote;

/// Clients racing, slots they race for, and rounds (each on fresh slots).
pub const RACE_CLIENTS: usize = 64;
pub const RACE_SLOTS: usize = 10;
pub const RACE_ROUNDS: usize = 5;
/// The racing customers' password (set with their activation codes).
const RACE_PASSWORD: &str = "Tempo-Rapide-2026!";

/// Latencies of one kind of answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latency {
    fn of(mut us: Vec<u32>) -> Latency {
        us.sort_unstable();
        let ms = |v: Option<u32>| v.map(|v| round(f64::from(v) / 1000.0, 2));
        Latency {
            count: us.len(),
            p50_ms: ms(percentile(&us, 50.0)),
            p99_ms: ms(percentile(&us, 99.0)),
            max_ms: ms(us.last().copied()),
        }
    }
}

/// One round of the race.
#[derive(Debug, Clone, Serialize)]
pub struct RaceRound {
    /// The first of the round's slots.
    pub first_start: String,
    pub created: usize,
    pub slot_taken: usize,
    /// Any other answer, by `status_code` (`409_too_many_pending`, `503`...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, usize>,
    pub server_errors: usize,
    /// Holding bookings of the provider over the round's slots, read from
    /// the database after the round.
    pub in_database: usize,
    /// From the first request written to the last answer read.
    pub wall_ms: f64,
    /// Why the round failed; empty when it passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What the `booking_race` scenario saw.
#[derive(Debug, Clone, Serialize)]
pub struct RaceOutcome {
    pub clients: usize,
    pub slots: usize,
    pub rounds: Vec<RaceRound>,
    /// Latency of the `201` and of the `409 slot_taken` answers, all rounds.
    pub created_latency: Latency,
    pub slot_taken_latency: Latency,
    /// Bookings of the service in the database after every round.
    pub service_bookings: usize,
    /// Every round passed and the service holds `rounds × slots` bookings.
    pub passed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl RaceOutcome {
    /// The `201` count of the round furthest from [`RACE_SLOTS`].
    pub fn worst_created(&self) -> Option<usize> {
        self.rounds
            .iter()
            .map(|r| r.created)
            .max_by_key(|&c| c.abs_diff(RACE_SLOTS))
    }

    pub fn server_errors(&self) -> usize {
        self.rounds.iter().map(|r| r.server_errors).sum()
    }
}

/// The round's answers judged: `starts[i % starts.len()]` was asked by
/// client `i`; `held` are the provider's holding bookings over the slots
/// afterwards, from the database.
pub fn judge_round(
    starts: &[DateTime<Utc>],
    answers: &[(u16, Value)],
    held: &[DateTime<Utc>],
    wall: Duration,
) -> RaceRound {
    let mut round = RaceRound {
        first_start: starts.first().map(|s| wire_instant(*s)).unwrap_or_default(),
        created: 0,
        slot_taken: 0,
        other: BTreeMap::new(),
        server_errors: 0,
        in_database: held.len(),
        wall_ms: (wall.as_secs_f64() * 10_000.0).round() / 10.0,
        problems: Vec::new(),
    };
    let mut won: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    for (i, (status, body)) in answers.iter().enumerate() {
        let asked = starts[i % starts.len()];
        let code = body["code"].as_str().unwrap_or("");
        match (status, code) {
            (201, _) => {
                round.created += 1;
                match instant(body, "start") {
                    Ok(start) if start == asked => *won.entry(start).or_default() += 1,
                    Ok(start) => round.problems.push(format!(
                        "client {i} asked for {} and got {}",
                        wire_instant(asked),
                        wire_instant(start)
                    )),
                    Err(e) => round.problems.push(format!("client {i}'s booking: {e}")),
                }
            }
            (409, "slot_taken") => round.slot_taken += 1,
            (status, code) => {
                if *status >= 500 {
                    round.server_errors += 1;
                }
                let key = if code.is_empty() {
                    status.to_string()
                } else {
                    format!("{status}_{code}")
                };
                *round.other.entry(key).or_default() += 1;
            }
        }
    }
    if round.created != starts.len() {
        round.problems.push(format!(
            "{} bookings made, expected {}",
            round.created,
            starts.len()
        ));
    }
    for (start, n) in &won {
        if *n > 1 {
            round
                .problems
                .push(format!("{} booked {n} times", wire_instant(*start)));
        }
    }
    if won.len() != starts.len() {
        round.problems.push(format!(
            "{} of the {} slots booked",
            won.len(),
            starts.len()
        ));
    }
    let others = answers.len().saturating_sub(starts.len());
    if round.slot_taken != others || !round.other.is_empty() {
        round.problems.push(format!(
            "{} answers 409 slot_taken, expected {others}; others: {:?}",
            round.slot_taken, round.other
        ));
    }
    let mut held_sorted = held.to_vec();
    held_sorted.sort_unstable();
    let mut wanted = starts.to_vec();
    wanted.sort_unstable();
    if held_sorted != wanted {
        round.problems.push(format!(
            "the database holds {} bookings of the provider over the slots, expected {} at \
             the slots' starts",
            held.len(),
            starts.len()
        ));
    }
    round
}

/// Opens one connection per client, warms each with `warm` (which must
/// answer 200), then sends every `shot` at once; each answer with its
/// latency, and the time from the first shot to the last answer.
fn race(
    runtime: &Runtime,
    addr: SocketAddr,
    host: &str,
    warm: &[RequestSpec],
    shots: &[RequestSpec],
) -> Result<(Vec<Answer>, Duration), String> {
    let encode = |specs: &[RequestSpec]| {
        specs
            .iter()
            .map(|s| s.encode(host))
            .collect::<Result<Vec<_>, _>>()
    };
    let (warm, shots) = (encode(warm)?, encode(shots)?);
    let barrier = Arc::new(tokio::sync::Barrier::new(shots.len()));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (warm, shot) in warm.into_iter().zip(shots) {
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let mut body = Vec::new();
                let warmed =
                    match tokio::time::timeout(SETUP_TIMEOUT, conn.round_trip(&warm, &mut body))
                        .await
                    {
                        Ok(Ok(200)) => Ok(()),
                        Ok(Ok(status)) => Err(format!("warm-up answered {status}")),
                        Ok(Err(e)) => Err(format!("warm-up: {e}")),
                        Err(_) => Err("warm-up: no answer".to_owned()),
                    };
                // Everybody waits, so that a failed warm-up cannot leave
                // the others waiting for ever.
                barrier.wait().await;
                warmed?;
                let started = Instant::now();
                let status = tokio::time::timeout(SETUP_TIMEOUT, conn.round_trip(&shot, &mut body))
                    .await
                    .map_err(|_| format!("no answer within {SETUP_TIMEOUT:?}"))?
                    .map_err(|e| e.to_string())?;
                let latency = started.elapsed();
                Ok::<_, String>((
                    started,
                    Answer {
                        response: Response { status, body },
                        latency,
                    },
                ))
            }));
        }
        let mut answers = Vec::new();
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        for task in tasks {
            let (started, answer) = task.await.map_err(|e| format!("a client failed: {e}"))??;
            let ended = started + answer.latency;
            first = Some(first.map_or(started, |f| f.min(started)));
            last = Some(last.map_or(ended, |l| l.max(ended)));
            answers.push(answer);
        }
        let wall = first
            .zip(last)
            .map_or(Duration::ZERO, |(f, l)| l.saturating_duration_since(f));
        Ok((answers, wall))
    })
}

/// Sets up the racing service and customers, runs the rounds and checks
/// each against the database.
pub fn run_race(
    setup: &mut Setup<'_>,
    runtime: &Runtime,
    addr: SocketAddr,
    database_url: &str,
    progress: &dyn Fn(&str),
) -> Result<RaceOutcome, String> {
    let admin = admin_token(setup)?;
    let (service, providers) = business(
        setup,
        &admin,
        "Séance express",
        &["Cabine unique".to_owned()],
    )?;
    progress(&format!(
        "creating {RACE_CLIENTS} customers, each signing in with an activation code"
    ));
    let mut activations = Vec::new();
    for i in 0..RACE_CLIENTS {
        let email = format!("course.{i}@example.com");
        let customer = new_customer(setup, &admin, &format!("Client course {i}"), &email)?;
        let issue = RequestSpec::new(
            "POST",
            &format!("/v1/admin/customers/{customer}/activation-codes"),
        )
        .bearer(&admin);
        let code = string_field(
            &send_json(setup, &issue, 201, "an activation code")?,
            "activation_code",
            "an activation code",
        )?;
        activations.push(RequestSpec::json(
            "POST",
            "/v1/auth/activate",
            &json!({
                "organization": DEMO_ORGANIZATION,
                "email": email,
                "activation_code": code,
                "password": RACE_PASSWORD,
            }),
        ));
    }
    let tokens = send_all(runtime, addr, setup.host(), &activations, SETUP_CONNECTIONS)?
        .into_iter()
        .map(|a| {
            let answer = a
                .response
                .expect(200)
                .map_err(|e| format!("an activation: {e}"))?
                .json()?;
            token(&answer, "an activation")
        })
        .collect::<Result<Vec<_>, String>>()?;

    let (from, to) = range(Utc::now().date_naive());
    let listed = parse_slots(&send_json(
        setup,
        &slots_request(&tokens[0], &service, from, to),
        200,
        "free slots",
    )?)?;
    let wanted = RACE_ROUNDS * RACE_SLOTS;
    if listed.len() < wanted {
        return Err(format!(
            "{} free slots from {from} to {to}, fewer than {wanted}",
            listed.len()
        ));
    }
    let mut conn = crate::schedules::connect(database_url)?;
    let conn = &mut *conn;
    let org_id = org_id(conn)?;
    let warm: Vec<RequestSpec> = tokens
        .iter()
        .map(|t| RequestSpec::get("/v1/me").bearer(t))
        .collect();
    let mut rounds = Vec::new();
    let mut created_us = Vec::new();
    let mut taken_us = Vec::new();
    for (r, chunk) in listed.chunks(RACE_SLOTS).take(RACE_ROUNDS).enumerate() {
        let starts: Vec<DateTime<Utc>> = chunk.iter().map(|s| s.start).collect();
        let shots: Vec<RequestSpec> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                RequestSpec::json(
                    "POST",
                    "/v1/me/bookings",
                    &json!({
                        "service_id": service,
                        "start": wire_instant(starts[i % starts.len()]),
                    }),
                )
                .bearer(t)
            })
            .collect();
        let (answers, wall) = race(runtime, addr, setup.host(), &warm, &shots)?;
        let mut judged = Vec::with_capacity(answers.len());
        for a in &answers {
            let body: Value = serde_json::from_slice(&a.response.body).unwrap_or(Value::Null);
            let us = u32::try_from(a.latency.as_micros()).unwrap_or(u32::MAX);
            match (a.response.status, body["code"].as_str()) {
                (201, _) => created_us.push(us),
                (409, Some("slot_taken")) => taken_us.push(us),
                _ => {}
            }
            judged.push((a.response.status, body));
        }
        let last = starts.iter().max().copied().unwrap_or_else(Utc::now);
        let held: Vec<DateTime<Utc>> = guichet_store::repo::bookings::busy_of(
            conn,
            &org_id,
            &providers,
            starts.iter().min().copied().unwrap_or(last),
            last + TimeDelta::minutes(30),
        )
        .map_err(|e| format!("reading the bookings back: {e}"))?
        .into_iter()
        .map(|(_, start, _)| start)
        .collect();
        let round = judge_round(&starts, &judged, &held, wall);
        progress(&format!(
            "round {}: {} × 201, {} × 409 slot_taken, others {:?}, {} in the database, {} ms{}",
            r + 1,
            round.created,
            round.slot_taken,
            round.other,
            round.in_database,
            round.wall_ms,
            if round.problems.is_empty() {
                String::new()
            } else {
                format!(" — {}", round.problems.join("; "))
            }
        ));
        rounds.push(round);
    }
    let service_bookings = usize::try_from(crate::schedules::count(
        conn,
        &format!(
            "SELECT COUNT(*) AS n FROM bookings WHERE service_id = {}",
            quote(&service)
        ),
    )?)
    .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if service_bookings != RACE_ROUNDS * RACE_SLOTS {
        problems.push(format!(
            "the service has {service_bookings} bookings after {RACE_ROUNDS} rounds, expected {}",
            RACE_ROUNDS * RACE_SLOTS
        ));
    }
    let passed = problems.is_empty() && rounds.iter().all(|r| r.problems.is_empty());
    Ok(RaceOutcome {
        clients: RACE_CLIENTS,
        slots: RACE_SLOTS,
        rounds,
        created_latency: Latency::of(created_us),
        slot_taken_latency: Latency::of(taken_us),
        service_bookings,
        passed,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::at;
    use super::*;

    fn answer(status: u16, start: Option<DateTime<Utc>>, code: Option<&str>) -> (u16, Value) {
        let mut body = json!({});
        if let Some(s) = start {
            body["start"] = json!(wire_instant(s));
        }
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        (status, body)
    }

    #[test]
    fn a_round_passes_with_one_booking_per_slot_and_409_for_the_rest() {
        let starts = [at(7, 0), at(7, 30)];
        let mut answers: Vec<(u16, Value)> = (0..6)
            .map(|i| {
                if i < 2 {
                    answer(201, Some(starts[i % 2]), None)
                } else {
                    answer(409, None, Some("slot_taken"))
                }
            })
            .collect();
        let round = judge_round(&starts, &answers, &starts, Duration::from_millis(12));
        assert!(round.problems.is_empty(), "{:?}", round.problems);
        assert_eq!(
            (round.created, round.slot_taken, round.in_database),
            (2, 4, 2)
        );
        assert_eq!(round.wall_ms, 12.0);

        // The database holding one booking less.
        let round = judge_round(&starts, &answers, &starts[..1], Duration::ZERO);
        assert_eq!(round.problems.len(), 1, "{:?}", round.problems);

        // One slot booked twice (clients 0 and 2 both asked for 07:00).
        answers[1] = answer(409, None, Some("slot_taken"));
        answers[2] = answer(201, Some(starts[0]), None);
        let round = judge_round(&starts, &answers, &starts, Duration::ZERO);
        assert!(
            round.problems.iter().any(|p| p.contains("booked 2 times")),
            "{:?}",
            round.problems
        );

        // A 503 among the losers.
        answers[1] = answer(201, Some(starts[1]), None);
        answers[2] = answer(409, None, Some("slot_taken"));
        answers[3] = answer(503, None, Some("service_unavailable"));
        let round = judge_round(&starts, &answers, &starts, Duration::ZERO);
        assert_eq!(round.server_errors, 1);
        assert_eq!(round.other.get("503_service_unavailable"), Some(&1));
        assert!(!round.problems.is_empty());
    }

    #[test]
    fn latencies_are_summarised() {
        let l = Latency::of(vec![3000, 1000, 2000]);
        assert_eq!(l.count, 3);
        assert_eq!(l.p50_ms, Some(2.0));
        assert_eq!(l.max_ms, Some(3.0));
        assert_eq!(Latency::of(Vec::new()).p50_ms, None);
    }
}
