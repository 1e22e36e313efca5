//! `guichet-bench`: starts a release `guichet` on a fresh database, loads it
//! with keep-alive connections and prints req/s, latency and memory as JSON.
//! `guichet-bench debit ...` measures the debit job instead (`debit.rs`).

mod argon;
mod autopay;
mod bookings;
mod dashboard;
mod debit;
mod downloads;
mod http;
mod invoice_payments;
mod load;
mod procfs;
mod scenarios;
mod schedules;
mod sepa;
mod server;
mod webhooks;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use crate::argon::RawArgon2;
use crate::http::{RequestSpec, WireRequest};
use crate::load::{LoadConfig, LoadOutcome, Requests, percentile};
use crate::scenarios::{Kind, Setup};
use crate::server::{Backend, Database, DatabaseArgs, Server, ServerConfig};

/// The error rate above which a run fails.
const MAX_ERROR_RATE: f64 = 0.01;

/// How long the server is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Other benchmarks: `guichet-bench debit --help` (the debit job), \
                  `guichet-bench autopay --help` (the debit job's autopay of invoices), \
                  `guichet-bench sepa --help` (SEPA documents and exports), \
                  `guichet-bench webhooks --help` (webhook dispatch)."
)]
struct Args {
    #[command(flatten)]
    db: DatabaseArgs,

    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    connections: u16,

    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,

    /// Seconds of load before each measurement, not counted.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup_secs: u64,

    /// The `guichet` binary [default: the one next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,

    /// HTTP worker threads of the server [default: the server's, one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,

    /// Concurrent keep-alive connections of `login`, alone and during the
    /// storm: argon2, not the connections, bounds its rate.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=4096))]
    login_connections: u16,

    /// Password hashes the server computes at once (its
    /// --password-hash-concurrency) [default: the server's, one per core]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    password_hash_concurrency: Option<u16>,

    /// Run only this scenario (with the healthz baseline and the scenarios
    /// it is compared with).
    #[arg(long)]
    only: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: Backend,
    connections: u16,
    login_connections: u16,
    duration_secs: u64,
    warmup_secs: u64,
    /// `null`: the server's default.
    workers: Option<u16>,
    /// `null`: the server's default (one per core).
    password_hash_concurrency: Option<u16>,
    cores: usize,
    /// The machine's 1-minute load average when the run started and ended,
    /// this run included: above `cores`, other work competed for the CPU.
    load_average_1m: [Option<f64>; 2],
    startup: Startup,
    results: Vec<ScenarioResult>,
    /// `null` when the `raw_argon2` scenario did not run.
    raw_argon2: Option<RawArgon2>,
    /// The databases of the `schedules` scenario: rows, time to fill, query
    /// plans; `null` when it did not run.
    schedules_databases: Option<schedules::Databases>,
    /// The `downloads` scenario's figures; `null` when it did not run.
    downloads: Option<downloads::Outcome>,
    /// What `booking_slots` measured on and its check; `null` when it did
    /// not run.
    booking_slots: Option<bookings::SlotsSetup>,
    /// The `booking_race` rounds; `null` when it did not run.
    booking_race: Option<bookings::RaceOutcome>,
    /// The invoices `invoice_payments` paid and what the database says of
    /// them; `null` when it did not run.
    invoice_payments: Option<InvoicePaymentsOutcome>,
    peak_rss_mib: f64,
    targets: Vec<Target>,
}

/// The invoices of `invoice_payments`: seeded, paid by the requests sent
/// (the set-up's one, warm-ups and measured windows), and in the database
/// afterwards.
#[derive(Debug, Serialize)]
struct InvoicePaymentsOutcome {
    seeded: u64,
    seed_ms: f64,
    sent: u64,
    paid_invoices: u64,
    succeeded_payments: u64,
    other_payments: u64,
}

#[derive(Debug, Serialize)]
struct Startup {
    ready_ms_existing_db: f64,
    idle_rss_mib: f64,
    ready_ms_fresh_db: f64,
}

#[derive(Debug, Serialize)]
struct ScenarioResult {
    name: &'static str,
    method: String,
    path: String,
    connections: usize,
    requests: u64,
    errors: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    error_kinds: BTreeMap<String, u64>,
    req_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_healthz: Option<f64>,
    /// The server process's CPU time (user + system) in the measured
    /// windows ÷ successful requests (scenarios measured in turns).
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_us_per_request: Option<f64>,
}

/// A target of an issue and whether this run met it (every report).
#[derive(Debug, Serialize)]
pub struct Target {
    pub name: &'static str,
    /// `at_most`, `at_least` or `exactly`.
    pub comparison: &'static str,
    pub limit: f64,
    pub value: Option<f64>,
    /// `null` when the run cannot tell (wrong connection count, no data).
    pub met: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "debit") {
        return debit::main(std::env::args_os().skip(1));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "autopay") {
        return autopay::main(std::env::args_os().skip(1));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "sepa") {
        return sepa::main(std::env::args_os().skip(1));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "webhooks") {
        return webhooks::main(std::env::args_os().skip(1));
    }
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("guichet-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn progress(message: &str) {
    eprintln!("guichet-bench: {message}");
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

fn ms(duration: Duration) -> f64 {
    round(duration.as_secs_f64() * 1000.0, 1)
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn us_to_ms(us: Option<u32>) -> Option<f64> {
    us.map(|us| round(f64::from(us) / 1000.0, 3))
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let binary = server::resolve_binary(args.server.as_deref())?;
    let scenarios = scenarios::select(scenarios::all(), args.only.as_deref())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_at_start = procfs::load_average_1m();
    // One thread: the generator keeps to one core and leaves the rest to
    // the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // Dropped in reverse order: the server, then the database, then the
    // directory.
    let work_dir = tempfile::Builder::new()
        .prefix("guichet-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut database = Database::create(args.db.backend, &args.db.pg_admin_url, work_dir.path())?;
    let config = ServerConfig {
        binary,
        database_url: database.url().to_owned(),
        work_dir: work_dir.path().to_path_buf(),
        workers: args.workers.map(usize::from),
        password_hash_concurrency: args.password_hash_concurrency,
        demo: false,
    };

    progress(&format!(
        "starting {} on a fresh {} database",
        config.binary.display(),
        args.db.backend.name()
    ));
    let mut first = Server::spawn(&config, "fresh")?;
    let ready_fresh = runtime.block_on(first.wait_ready(Duration::from_secs(60)))?;
    first.stop()?;
    progress(&format!(
        "ready in {} ms on the fresh database; restarting on the migrated one",
        ms(ready_fresh)
    ));
    if scenarios.iter().any(|s| s.demo) {
        // A start of its own, so that neither start-up figure includes the
        // demo's password hashing.
        progress("creating the demo data (guichet serve --demo, not measured)");
        let seeding = ServerConfig {
            demo: true,
            ..config.clone()
        };
        let mut seeder = Server::spawn(&seeding, "demo")?;
        runtime.block_on(seeder.wait_ready(Duration::from_secs(60)))?;
        seeder.stop()?;
    }
    let seeded_invoices = if scenarios
        .iter()
        .any(|s| matches!(s.kind, Kind::InvoicePayments))
    {
        // Payments run in their own turns: the first warm-up, the measured
        // windows, and a short warm-up before every turn but the first.
        let (count, _) = turns(Duration::from_secs(args.duration_secs));
        let load = Duration::from_secs(args.warmup_secs + args.duration_secs)
            + TURN_WARMUP * count.saturating_sub(1);
        let count = invoice_payments::needed(load);
        progress(&format!(
            "{}: seeding {count} open invoices of the demo customer in SQL (not measured)",
            scenarios::INVOICE_PAYMENTS
        ));
        let seeded = invoice_payments::seed(
            database.url(),
            args.db.backend,
            count,
            chrono::Utc::now().date_naive(),
        )?;
        progress(&format!(
            "{}: seeded in {} ms",
            scenarios::INVOICE_PAYMENTS,
            seeded.seed_ms
        ));
        Some(seeded)
    } else {
        None
    };
    let mut server = Server::spawn(&config, "existing")?;
    let ready_existing = runtime.block_on(server.wait_ready(Duration::from_secs(30)))?;
    std::thread::sleep(SETTLE);
    server.check_alive()?;
    let idle_rss = procfs::read_mib(server.pid()?, "VmRSS")?;
    progress(&format!(
        "ready in {} ms; idle RSS {:.1} MiB",
        ms(ready_existing),
        idle_rss
    ));

    let main_load = LoadConfig {
        addr: server.addr,
        connections: usize::from(args.connections),
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
    };
    let login_load = LoadConfig {
        connections: usize::from(args.login_connections),
        ..main_load
    };
    let mut setup = Setup::new(&runtime, server.addr);
    let mut results = Vec::new();
    let mut raw_argon2 = None;
    let mut schedules_databases = None;
    let mut downloads_outcome = None;
    let mut booking_slots = None;
    let mut booking_race = None;
    let mut invoice_payments_outcome = None;
    let mut failed = Vec::new();
    for scenario in &scenarios {
        let name = scenario.name;
        match &scenario.kind {
            Kind::Http { prepare } => {
                let spec = prepare(&mut setup).map_err(|e| format!("{name}: set-up: {e}"))?;
                let wire = check_once(&mut setup, name, &spec)?;
                let load = main_load;
                progress(&format!(
                    "{name}: {} {} with {} connections, {} s warm-up, {} s measured",
                    spec.method, spec.path, load.connections, args.warmup_secs, args.duration_secs
                ));
                let outcome = runtime.block_on(load::run(load, wire))?;
                results.push(record(name, &spec, &outcome, load, &mut failed));
            }
            Kind::LoginVsRawArgon2 => {
                let spec = scenarios::login(&mut setup)?;
                let wire = check_once(&mut setup, name, &spec)?;
                let verifier = argon::Verifier::new(scenarios::DEMO_PASSWORD)
                    .map_err(|e| format!("{name}: {e}"))?;
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: {} {} with {} connections, in {count} turns of {turn:?} with \
                     argon2id verifications on {cores} threads in this process",
                    spec.method, spec.path, login_load.connections
                ));
                let mut verifications = 0;
                let mut outcome = LoadOutcome::default();
                for i in 0..count {
                    let warmup = turn_warmup(i, main_load.warmup);
                    verifications += verifier
                        .run(cores, warmup, turn)
                        .map_err(|e| format!("{name}: {e}"))?;
                    let load = LoadConfig {
                        warmup,
                        duration: turn,
                        ..login_load
                    };
                    outcome.merge(runtime.block_on(load::run(load, Arc::clone(&wire)))?);
                }
                outcome.latencies_us.sort_unstable();
                let measured = turn * count;
                let raw = RawArgon2::new(cores, verifications, measured);
                progress(&format!(
                    "{RAW_ARGON2}: {} verifications/s, {} ms each",
                    raw.verifications_per_s, raw.ms_per_verification
                ));
                let load = LoadConfig {
                    duration: measured,
                    ..login_load
                };
                results.push(record(name, &spec, &outcome, load, &mut failed));
                raw_argon2 = Some(raw);
            }
            Kind::Storm => {
                let me = scenarios::me(&mut setup).map_err(|e| format!("{name}: set-up: {e}"))?;
                let login =
                    scenarios::login(&mut setup).map_err(|e| format!("{name}: set-up: {e}"))?;
                let me_wire = check_once(&mut setup, name, &me)?;
                let login_wire = check_once(&mut setup, name, &login)?;
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: {} {} with {} connections, in {count} turns of {turn:?} alone \
                     and {count} while {} {} runs on {} more",
                    me.method,
                    me.path,
                    main_load.connections,
                    login.method,
                    login.path,
                    login_load.connections,
                ));
                let mut quiet = LoadOutcome::default();
                let mut stormy = LoadOutcome::default();
                let mut storm = LoadOutcome::default();
                for i in 0..count {
                    let warmup = turn_warmup(i, main_load.warmup);
                    let me_load = LoadConfig {
                        warmup,
                        duration: turn,
                        ..main_load
                    };
                    let login_turn = LoadConfig {
                        warmup,
                        duration: turn,
                        ..login_load
                    };
                    quiet.merge(runtime.block_on(load::run(me_load, Arc::clone(&me_wire)))?);
                    let (me_outcome, login_outcome) = runtime.block_on(async {
                        tokio::join!(
                            load::run(me_load, Arc::clone(&me_wire)),
                            load::run(login_turn, Arc::clone(&login_wire))
                        )
                    });
                    stormy.merge(me_outcome?);
                    storm.merge(login_outcome?);
                }
                let measured = turn * count;
                for (result, spec, outcome, load) in [
                    (QUIET_ME, &me, &mut quiet, main_load),
                    (STORM_ME, &me, &mut stormy, main_load),
                    (STORM_LOGIN, &login, &mut storm, login_load),
                ] {
                    outcome.latencies_us.sort_unstable();
                    let load = LoadConfig {
                        duration: measured,
                        ..load
                    };
                    results.push(record(result, spec, outcome, load, &mut failed));
                }
            }
            Kind::Dashboard => {
                let (dashboard, me) =
                    dashboard::prepare(&mut setup).map_err(|e| format!("{name}: set-up: {e}"))?;
                let dashboard_wire = check_once(&mut setup, name, &dashboard)?;
                let me_wire = check_once(&mut setup, name, &me)?;
                let pid = server.pid()?;
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: GET /v1/me/dashboard ({} documents, {} conversations, {} \
                     notifications) and GET /v1/me with {} connections, in {count} turns of \
                     {turn:?} each",
                    dashboard::DOCUMENTS,
                    dashboard::CONVERSATIONS,
                    dashboard::NOTIFICATIONS,
                    main_load.connections
                ));
                let loads = [
                    (DASHBOARD_ME, me, me_wire.into(), main_load, pid),
                    (
                        scenarios::DASHBOARD,
                        dashboard,
                        dashboard_wire.into(),
                        main_load,
                        pid,
                    ),
                ];
                results.extend(in_turns(&runtime, &loads, main_load, &mut failed)?);
            }
            Kind::InvoicePayments => {
                let seeded = seeded_invoices
                    .as_ref()
                    .ok_or("invoice_payments: no invoices were seeded")?;
                let prepared = invoice_payments::prepare(&mut setup, seeded)
                    .map_err(|e| format!("{name}: set-up: {e}"))?;
                let me_wire = check_once(&mut setup, name, &prepared.me)?;
                let pid = server.pid()?;
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: {} (one open invoice each, {} prepared, a sandbox card token) and \
                     GET /v1/me with {} connections, in {count} turns of {turn:?} each",
                    prepared.shown.method,
                    prepared.payments.len(),
                    main_load.connections
                ));
                let loads = [
                    (
                        INVOICE_PAYMENTS_ME,
                        prepared.me,
                        me_wire.into(),
                        main_load,
                        pid,
                    ),
                    (
                        scenarios::INVOICE_PAYMENTS,
                        prepared.shown,
                        Requests::Each(Arc::clone(&prepared.payments)),
                        main_load,
                        pid,
                    ),
                ];
                results.extend(in_turns(&runtime, &loads, main_load, &mut failed)?);
                // The set-up's payment and those the load sent.
                let sent = prepared.payments.taken() as u64 + 1;
                let check = invoice_payments::check(database.url())?;
                progress(&format!(
                    "{name}: {sent} payments sent; in the database {} seeded invoices paid, {} \
                     succeeded payments, {} other payments",
                    check.paid_invoices, check.succeeded_payments, check.other_payments
                ));
                if check.paid_invoices != check.succeeded_payments
                    || check.other_payments > 0
                    || check.succeeded_payments > sent
                {
                    failed.push(format!(
                        "{name}: {sent} payments sent, but {} invoices paid with {} succeeded \
                         payments and {} others",
                        check.paid_invoices, check.succeeded_payments, check.other_payments
                    ));
                }
                invoice_payments_outcome = Some(InvoicePaymentsOutcome {
                    seeded: seeded.invoices.len() as u64,
                    seed_ms: seeded.seed_ms,
                    sent,
                    paid_invoices: check.paid_invoices,
                    succeeded_payments: check.succeeded_payments,
                    other_payments: check.other_payments,
                });
            }
            Kind::Downloads => {
                let (spec, sha256, rss_before_upload) =
                    downloads::prepare(&mut setup, server.pid()?)
                        .map_err(|e| format!("{name}: set-up: {e}"))?;
                progress(&format!(
                    "{name}: {} rounds (after one not measured) of {} concurrent {} {} of {} \
                     bytes, every body's SHA-256 checked",
                    downloads::ROUNDS,
                    downloads::CONCURRENT,
                    spec.method,
                    spec.path,
                    downloads::SIZE
                ));
                let outcome = downloads::run(
                    &runtime,
                    server.addr,
                    setup.host(),
                    &spec,
                    sha256,
                    server.pid()?,
                    rss_before_upload,
                )?;
                progress(&format!(
                    "{name}: {} MiB/s, RSS {} -> {} MiB (+{}), {} errors{}",
                    outcome.mib_per_s,
                    outcome.rss_before_mib,
                    outcome.rss_peak_mib,
                    outcome.rss_growth_mib,
                    outcome.errors,
                    outcome
                        .first_error
                        .as_deref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ));
                if outcome.errors > 0 {
                    failed.push(format!(
                        "{name}: {} failed downloads (first: {})",
                        outcome.errors,
                        outcome.first_error.as_deref().unwrap_or("?")
                    ));
                }
                downloads_outcome = Some(outcome);
            }
            Kind::BookingSlots => {
                progress(&format!(
                    "{name}: {} providers, {} bookings made through the API",
                    bookings::PROVIDERS,
                    bookings::BOOKINGS
                ));
                let prepared = bookings::prepare_slots(
                    &mut setup,
                    &runtime,
                    server.addr,
                    database.url(),
                    args.db.backend,
                    &|m| progress(&format!("{name}: {m}")),
                )
                .map_err(|e| format!("{name}: set-up: {e}"))?;
                let slots_wire = check_once(&mut setup, name, &prepared.slots)?;
                let me_wire = check_once(&mut setup, name, &prepared.me)?;
                let pid = server.pid()?;
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: checked ({} free pairs in {} slots, {} bytes); GET \
                     /v1/me/booking-slots over {} days and GET /v1/me with {} connections, in \
                     {count} turns of {turn:?} each",
                    prepared.setup.free_pairs,
                    prepared.setup.slots,
                    prepared.setup.body_bytes,
                    bookings::DAYS,
                    main_load.connections
                ));
                let loads = [
                    (
                        BOOKING_SLOTS_ME,
                        prepared.me,
                        me_wire.into(),
                        main_load,
                        pid,
                    ),
                    (
                        scenarios::BOOKING_SLOTS,
                        prepared.slots,
                        slots_wire.into(),
                        main_load,
                        pid,
                    ),
                ];
                results.extend(in_turns(&runtime, &loads, main_load, &mut failed)?);
                booking_slots = Some(prepared.setup);
            }
            Kind::BookingRace => {
                progress(&format!(
                    "{name}: {} rounds of {} customers asking at once for {} slots of one \
                     provider",
                    bookings::RACE_ROUNDS,
                    bookings::RACE_CLIENTS,
                    bookings::RACE_SLOTS
                ));
                let outcome =
                    bookings::run_race(&mut setup, &runtime, server.addr, database.url(), &|m| {
                        progress(&format!("{name}: {m}"))
                    })
                    .map_err(|e| format!("{name}: {e}"))?;
                if !outcome.passed {
                    failed.push(format!(
                        "{name}: the race went wrong: {}",
                        outcome
                            .problems
                            .iter()
                            .chain(outcome.rounds.iter().flat_map(|r| &r.problems))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
                booking_race = Some(outcome);
            }
            Kind::Schedules => {
                // The main server's database becomes the big one; the small
                // one gets a database and a server of its own, started the
                // same way (a --demo start, then a plain one).
                let small_dir = work_dir.path().join("small");
                std::fs::create_dir_all(&small_dir)
                    .map_err(|e| format!("cannot create {}: {e}", small_dir.display()))?;
                let mut small_db = Database::create_labelled(
                    args.db.backend,
                    &args.db.pg_admin_url,
                    &small_dir,
                    "small",
                )?;
                let small_config = ServerConfig {
                    database_url: small_db.url().to_owned(),
                    work_dir: small_dir,
                    demo: true,
                    ..config.clone()
                };
                progress(&format!(
                    "{name}: starting a second server on a small database"
                ));
                let mut seeder = Server::spawn(&small_config, "small-demo")?;
                runtime.block_on(seeder.wait_ready(Duration::from_secs(60)))?;
                seeder.stop()?;
                let small_config = ServerConfig {
                    demo: false,
                    ..small_config
                };
                let mut small = Server::spawn(&small_config, "small")?;
                runtime.block_on(small.wait_ready(Duration::from_secs(30)))?;

                let mut filled = Vec::new();
                let mut loads = Vec::new();
                for (label, addr, url, population, names) in [
                    (
                        "big",
                        server.addr,
                        database.url().to_owned(),
                        schedules::BIG,
                        [SCHEDULES_READYZ, scenarios::SCHEDULES],
                    ),
                    (
                        "small",
                        small.addr,
                        small_db.url().to_owned(),
                        schedules::SMALL,
                        [SCHEDULES_SMALL_READYZ, SCHEDULES_SMALL],
                    ),
                ] {
                    progress(&format!(
                        "{name}: filling the {label} database ({} customers, {} instalments)",
                        population.customers, population.instalments
                    ));
                    let mut db_setup = Setup::new(&runtime, addr);
                    let prepared = schedules::prepare(
                        &mut db_setup,
                        args.db.backend,
                        &url,
                        population,
                        &|m| progress(&format!("{name}: {label}: {m}")),
                    )
                    .map_err(|e| format!("{name}: {label} database: {e}"))?;
                    let readyz = RequestSpec::get("/readyz");
                    let readyz_wire = check_once(&mut db_setup, name, &readyz)?;
                    let wire = check_once(&mut db_setup, name, &prepared.request)?;
                    let load = LoadConfig { addr, ..main_load };
                    let pid = if label == "big" {
                        server.pid()?
                    } else {
                        small.pid()?
                    };
                    if label == "big" {
                        // The cheapest authenticated read, same customer,
                        // same token: what any page costs before its own
                        // queries (a reference, not a target).
                        let me = RequestSpec {
                            path: "/v1/me".to_owned(),
                            ..prepared.request.clone()
                        };
                        let me_wire = check_once(&mut db_setup, name, &me)?;
                        loads.push((SCHEDULES_ME, me, me_wire.into(), load, pid));
                    }
                    loads.push((names[0], readyz, readyz_wire.into(), load, pid));
                    loads.push((names[1], prepared.request, wire.into(), load, pid));
                    filled.push(prepared.filled);
                }
                let (count, turn) = turns(main_load.duration);
                progress(&format!(
                    "{name}: GET /readyz and GET /v1/me/schedules on each database with {} \
                     connections, in {count} turns of {turn:?} each",
                    main_load.connections
                ));
                results.extend(in_turns(&runtime, &loads, main_load, &mut failed)?);
                small.check_alive()?;
                small.stop()?;
                small_db.drop_now()?;
                let small_filled = filled.pop().ok_or("no small database")?;
                let big_filled = filled.pop().ok_or("no big database")?;
                schedules_databases = Some(schedules::Databases {
                    big: big_filled,
                    small: small_filled,
                });
            }
        }
        server.check_alive()?;
    }
    let peak_rss = procfs::read_mib(server.pid()?, "VmHWM")?;
    server.stop()?;
    database.drop_now()?;

    let baseline = results
        .iter()
        .find(|r| r.name == scenarios::BASELINE)
        .map(|r| r.req_per_s);
    for result in &mut results {
        if result.name != scenarios::BASELINE {
            result.ratio_to_healthz = baseline
                .filter(|&b| b > 0.0)
                .map(|b| round(result.req_per_s / b, 3));
        }
    }
    let report = Report {
        backend: args.db.backend,
        connections: args.connections,
        login_connections: args.login_connections,
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        workers: args.workers,
        password_hash_concurrency: args.password_hash_concurrency,
        cores,
        load_average_1m: [load_at_start, procfs::load_average_1m()],
        startup: Startup {
            ready_ms_existing_db: ms(ready_existing),
            idle_rss_mib: round(idle_rss, 1),
            ready_ms_fresh_db: ms(ready_fresh),
        },
        targets: targets(&Measured {
            backend: args.db.backend,
            connections: args.connections,
            results: &results,
            raw_argon2: raw_argon2.as_ref(),
            idle_rss_mib: round(idle_rss, 1),
            ready_ms_existing_db: ms(ready_existing),
            downloads: downloads_outcome.as_ref(),
            booking_race: booking_race.as_ref(),
        }),
        results,
        raw_argon2,
        schedules_databases,
        downloads: downloads_outcome,
        booking_slots,
        booking_race,
        invoice_payments: invoice_payments_outcome,
        peak_rss_mib: round(peak_rss, 1),
    };
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| format!("cannot write JSON: {e}"))?;
    println!("{json}");
    for target in &report.targets {
        if target.met == Some(false) {
            let wanted = match target.comparison {
                AT_LEAST => ">=",
                EXACTLY => "==",
                _ => "<=",
            };
            progress(&format!(
                "target {} not met: {}, wanted {wanted} {}",
                target.name,
                show(target.value),
                target.limit
            ));
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in &failed {
            progress(&format!("failed: {failure}"));
        }
        Ok(ExitCode::from(1))
    }
}

/// The name of the raw argon2 figures.
const RAW_ARGON2: &str = "raw_argon2";
/// The name of `me` measured in the storm scenario, between storms.
const QUIET_ME: &str = "me_without_storm";
/// The name of `me` measured during the login storm.
const STORM_ME: &str = "me_during_login_storm";
/// The name of `login` measured during the storm.
const STORM_LOGIN: &str = "login_during_storm";

/// The length of a turn when two measurements take turns, so that both see
/// the same machine: on a shared one, other work comes and goes.
const TURN: Duration = Duration::from_secs(2);

/// Load before every turn but the first, not counted.
const TURN_WARMUP: Duration = Duration::from_millis(500);

/// `duration` cut into turns of about [`TURN`]: their number and length.
fn turns(duration: Duration) -> (u32, Duration) {
    let count = (duration.as_secs_f64() / TURN.as_secs_f64())
        .floor()
        .max(1.0) as u32;
    (count, duration / count)
}

/// The warm-up of turn `i`: the run's before the first, then [`TURN_WARMUP`].
fn turn_warmup(i: u32, first: Duration) -> Duration {
    if i == 0 { first } else { TURN_WARMUP }
}

/// The order of `n` measurements in turn `i`: forwards, then backwards, so
/// that none always comes first or right after the same other one.
fn turn_order(i: u32, n: usize) -> Vec<usize> {
    if i.is_multiple_of(2) {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

/// `GET /readyz` on the big database, in turns with `schedules` (the
/// scenario's own name: the endpoint on the big database).
const SCHEDULES_READYZ: &str = "schedules_readyz";
/// `GET /v1/me` on the big database, same token, in the same turns.
const SCHEDULES_ME: &str = "schedules_me";
/// `GET /v1/me` in turns with the dashboard, same token.
const DASHBOARD_ME: &str = "dashboard_me";
/// `GET /v1/me` in turns with the booking slots, same token.
const BOOKING_SLOTS_ME: &str = "booking_slots_me";
/// `GET /v1/me` in turns with the invoice payments, same token.
const INVOICE_PAYMENTS_ME: &str = "invoice_payments_me";
/// The endpoint on the small database, and `GET /readyz` of its server.
const SCHEDULES_SMALL: &str = "schedules_small_db";
const SCHEDULES_SMALL_READYZ: &str = "schedules_small_db_readyz";

const AT_MOST: &str = "at_most";
const AT_LEAST: &str = "at_least";
const EXACTLY: &str = "exactly";

/// One measurement taken in turns with others: its result's name, the
/// request, its encoding, the load and the server's pid (for its CPU time).
type Turned = (&'static str, RequestSpec, Requests, LoadConfig, u32);

/// Measures `loads` in turns (see [`turn_order`]) for the run's duration,
/// with the server's CPU time per request.
fn in_turns(
    runtime: &tokio::runtime::Runtime,
    loads: &[Turned],
    main_load: LoadConfig,
    failed: &mut Vec<String>,
) -> Result<Vec<ScenarioResult>, String> {
    let (count, turn) = turns(main_load.duration);
    let mut outcomes: Vec<LoadOutcome> = loads.iter().map(|_| LoadOutcome::default()).collect();
    // The server's CPU time in each measured window, in ticks.
    let mut cpu: Vec<Option<u64>> = loads.iter().map(|_| Some(0)).collect();
    for i in 0..count {
        for k in turn_order(i, loads.len()) {
            let (_, _, wire, load, pid) = &loads[k];
            let load = LoadConfig {
                warmup: turn_warmup(i, main_load.warmup),
                duration: turn,
                ..*load
            };
            let (outcome, ticks) = runtime.block_on(async {
                let at_start = async {
                    tokio::time::sleep(load.warmup).await;
                    schedules::cpu_ticks(*pid)
                };
                let (outcome, start) = tokio::join!(load::run(load, wire.clone()), at_start);
                let end = schedules::cpu_ticks(*pid);
                (outcome, start.zip(end).map(|(a, b)| b.saturating_sub(a)))
            });
            outcomes[k].merge(outcome?);
            cpu[k] = cpu[k].zip(ticks).map(|(a, b)| a + b);
        }
    }
    let mut results = Vec::with_capacity(loads.len());
    for (((result, spec, _, load, _), outcome), ticks) in loads.iter().zip(&mut outcomes).zip(&cpu)
    {
        outcome.latencies_us.sort_unstable();
        let load = LoadConfig {
            duration: turn * count,
            ..*load
        };
        let mut summary = record(result, spec, outcome, load, failed);
        summary.server_cpu_us_per_request =
            schedules::us_per_request(*ticks, outcome.requests - outcome.errors);
        results.push(summary);
    }
    Ok(results)
}

/// Sends `spec` once (a scenario that cannot succeed once is not worth
/// loading) and encodes it for the load.
fn check_once(
    setup: &mut Setup<'_>,
    name: &str,
    spec: &RequestSpec,
) -> Result<Arc<WireRequest>, String> {
    setup
        .send(spec)?
        .expect_success()
        .map_err(|e| format!("{name}: {} {}: {e}", spec.method, spec.path))?;
    Ok(Arc::new(spec.encode(setup.host())?))
}

/// Summarises and reports `outcome`; notes it in `failed` if it had too
/// many errors.
fn record(
    name: &'static str,
    spec: &RequestSpec,
    outcome: &LoadOutcome,
    load: LoadConfig,
    failed: &mut Vec<String>,
) -> ScenarioResult {
    let result = summarise(name, spec, outcome, load);
    progress(&format!(
        "{name}: {} req/s, p50 {} ms, p99 {} ms, {} errors",
        result.req_per_s,
        show(result.p50_ms),
        show(result.p99_ms),
        result.errors
    ));
    if outcome.errors as f64 > MAX_ERROR_RATE * outcome.requests as f64 {
        failed.push(format!(
            "{name}: {} errors in {} requests (first: {})",
            outcome.errors,
            outcome.requests,
            outcome.first_error.as_deref().unwrap_or("?")
        ));
    } else if let Some(first) = &outcome.first_error {
        progress(&format!(
            "{name}: {} errors, first: {first}",
            outcome.errors
        ));
    }
    result
}

fn summarise(
    name: &'static str,
    spec: &RequestSpec,
    outcome: &LoadOutcome,
    load: LoadConfig,
) -> ScenarioResult {
    let successes = outcome.requests - outcome.errors;
    ScenarioResult {
        name,
        method: spec.method.clone(),
        path: spec.path.clone(),
        connections: load.connections,
        requests: outcome.requests,
        errors: outcome.errors,
        error_kinds: outcome.error_kinds.clone(),
        req_per_s: round(successes as f64 / load.duration.as_secs_f64(), 1),
        p50_ms: us_to_ms(percentile(&outcome.latencies_us, 50.0)),
        p99_ms: us_to_ms(percentile(&outcome.latencies_us, 99.0)),
        max_ms: us_to_ms(outcome.latencies_us.last().copied()),
        ratio_to_healthz: None,
        server_cpu_us_per_request: None,
    }
}

/// What the targets are checked against.
struct Measured<'a> {
    backend: Backend,
    connections: u16,
    results: &'a [ScenarioResult],
    raw_argon2: Option<&'a RawArgon2>,
    idle_rss_mib: f64,
    ready_ms_existing_db: f64,
    downloads: Option<&'a downloads::Outcome>,
    booking_race: Option<&'a bookings::RaceOutcome>,
}

impl Measured<'_> {
    fn result(&self, name: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

fn targets(m: &Measured<'_>) -> Vec<Target> {
    let check = |name, comparison, limit: f64, value: Option<f64>| Target {
        name,
        comparison,
        limit,
        value,
        met: value.map(|v| {
            if comparison == AT_LEAST {
                v >= limit
            } else {
                v <= limit
            }
        }),
        note: None,
    };
    let healthz_p99 = m.result(scenarios::BASELINE).and_then(|r| r.p99_ms);
    let mut p99 = check("healthz_p99_ms_at_64", AT_MOST, 10.0, healthz_p99);
    if m.connections != 64 {
        p99.met = None;
        p99.note = Some(format!(
            "measured at {} connections; the target is defined at 64",
            m.connections
        ));
    }

    let login = m.result(scenarios::LOGIN);
    let raw_per_s = m
        .raw_argon2
        .map(|r| r.verifications_per_s)
        .filter(|&v| v > 0.0);
    let mut login_vs_raw = check(
        "login_vs_raw_argon2",
        AT_LEAST,
        0.8,
        login
            .zip(raw_per_s)
            .map(|(l, raw)| round(l.req_per_s / raw, 3)),
    );
    login_vs_raw.note = Some(match (login, m.raw_argon2) {
        (Some(l), Some(raw)) => format!(
            "login {} req/s on {} connections ÷ raw argon2 {} verifications/s on {} threads",
            l.req_per_s, l.connections, raw.verifications_per_s, raw.threads
        ),
        _ => "not measured in this run (scenario login)".to_owned(),
    });

    let alone = m.result(QUIET_ME).and_then(|r| r.p99_ms);
    let storm = m.result(STORM_ME).and_then(|r| r.p99_ms);
    let mut storm_ratio = check(
        "me_p99_storm_ratio",
        AT_MOST,
        3.0,
        alone
            .zip(storm)
            .filter(|&(a, _)| a > 0.0)
            .map(|(a, s)| round(s / a, 3)),
    );
    storm_ratio.note = Some(match (alone, storm) {
        (Some(a), Some(s)) => format!(
            "me p99 {s} ms during the login storm ÷ {a} ms without it{}",
            m.result(STORM_LOGIN)
                .map(|l| format!(
                    " (storm: {} logins/s on {} connections)",
                    l.req_per_s, l.connections
                ))
                .unwrap_or_default()
        ),
        _ => "not measured in this run (scenario login_storm)".to_owned(),
    });

    let per_s = |name| m.result(name).map(|r| r.req_per_s);
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b.filter(|&b| b > 0.0)).map(|(a, b)| round(a / b, 3))
    };
    let (schedules, readyz) = (per_s(scenarios::SCHEDULES), per_s(SCHEDULES_READYZ));
    let (small, small_readyz) = (per_s(SCHEDULES_SMALL), per_s(SCHEDULES_SMALL_READYZ));
    let not_measured = "not measured in this run (scenario schedules)".to_owned();
    // The old target, GET /readyz, could not be met: authentication alone
    // costs more. The schedule page is compared with the cheapest
    // authenticated read instead.
    let me = per_s(SCHEDULES_ME);
    let mut schedules_vs_me = check(
        "schedules_vs_me",
        AT_LEAST,
        match m.backend {
            Backend::Sqlite => 0.35,
            Backend::Postgres => 0.5,
        },
        ratio(schedules, me),
    );
    let cpu = |name| m.result(name).and_then(|r| r.server_cpu_us_per_request);
    schedules_vs_me.note = Some(match (schedules, me) {
        (Some(s), Some(me)) => format!(
            "GET /v1/me/schedules {s} req/s ÷ GET /v1/me {me} req/s, same server and token, \
             1 000 000 instalments, in turns (server CPU per request {} µs and {} µs; \
             GET /v1/me/schedules ÷ GET /readyz: {}; small database: {})",
            show(cpu(scenarios::SCHEDULES)),
            show(cpu(SCHEDULES_ME)),
            show(ratio(schedules, readyz)),
            show(ratio(small, small_readyz)),
        ),
        _ => not_measured.clone(),
    });
    let mut big_vs_small = check(
        "schedules_big_vs_small_db",
        AT_LEAST,
        0.9,
        ratio(schedules, small),
    );
    big_vs_small.note = Some(match (schedules, small) {
        (Some(b), Some(s)) => format!(
            "GET /v1/me/schedules {b} req/s on 1 000 000 instalments ÷ {s} req/s on 1 000, \
             in turns (each ÷ its server's GET /readyz: {}; server CPU per request {} µs ÷ {} \
             µs: {})",
            show(ratio(ratio(schedules, readyz), ratio(small, small_readyz))),
            show(cpu(scenarios::SCHEDULES)),
            show(cpu(SCHEDULES_SMALL)),
            show(ratio(cpu(scenarios::SCHEDULES), cpu(SCHEDULES_SMALL))),
        ),
        _ => not_measured,
    });

    let (dashboard, dashboard_me) = (per_s(scenarios::DASHBOARD), per_s(DASHBOARD_ME));
    let mut dashboard_vs_me = check(
        "dashboard_vs_me",
        AT_LEAST,
        0.5,
        ratio(dashboard, dashboard_me),
    );
    dashboard_vs_me.note = Some(match (dashboard, dashboard_me) {
        (Some(d), Some(me)) => format!(
            "GET /v1/me/dashboard {d} req/s ÷ GET /v1/me {me} req/s, same server and token, \
             {} documents, {} conversations, {} notifications, in turns (server CPU per \
             request {} µs and {} µs)",
            dashboard::DOCUMENTS,
            dashboard::CONVERSATIONS,
            dashboard::NOTIFICATIONS,
            show(cpu(scenarios::DASHBOARD)),
            show(cpu(DASHBOARD_ME)),
        ),
        _ => "not measured in this run (scenario dashboard)".to_owned(),
    });

    // A run with a failed download has no verdict: its bytes were wrong.
    let downloads = m.downloads.filter(|d| d.errors == 0);
    let mut downloads_rss = check(
        "downloads_rss_growth_mib",
        AT_MOST,
        64.0,
        downloads.map(|d| d.rss_growth_mib),
    );
    let mut downloads_rate = check(
        "downloads_mib_per_s",
        AT_LEAST,
        200.0,
        downloads.map(|d| d.mib_per_s),
    );
    let downloads_note = match m.downloads {
        Some(d) => format!(
            "{} rounds of {} concurrent downloads of {} bytes from the local store, every \
             body's SHA-256 checked, {} failed; server RSS {} MiB before the upload, {} MiB \
             before the downloads, {} MiB at most (sampled every 5 ms); {} MiB in {} s; \
             server CPU {} ms per MiB",
            d.rounds,
            d.concurrent,
            d.size_bytes,
            d.errors,
            d.rss_before_upload_mib,
            d.rss_before_mib,
            d.rss_peak_mib,
            round(d.bytes as f64 / 1_048_576.0, 1),
            d.secs,
            show(d.server_cpu_ms_per_mib),
        ),
        None => "not measured in this run (scenario downloads)".to_owned(),
    };
    downloads_rss.note = Some(downloads_note.clone());
    downloads_rate.note = Some(downloads_note);

    let (slots, slots_me) = (per_s(scenarios::BOOKING_SLOTS), per_s(BOOKING_SLOTS_ME));
    let mut slots_vs_me = check("booking_slots_vs_me", AT_LEAST, 0.3, ratio(slots, slots_me));
    slots_vs_me.note = Some(match (slots, slots_me) {
        (Some(s), Some(me)) => format!(
            "GET /v1/me/booking-slots over {} days {s} req/s ÷ GET /v1/me {me} req/s, same \
             server and token, {} providers, {} bookings, in turns (server CPU per request {} \
             µs and {} µs)",
            bookings::DAYS,
            bookings::PROVIDERS,
            bookings::BOOKINGS,
            show(cpu(scenarios::BOOKING_SLOTS)),
            show(cpu(BOOKING_SLOTS_ME)),
        ),
        _ => "not measured in this run (scenario booking_slots)".to_owned(),
    });
    let race = race_target(m.booking_race);

    let (payments, payments_me) = (
        per_s(scenarios::INVOICE_PAYMENTS),
        per_s(INVOICE_PAYMENTS_ME),
    );
    let mut payments_vs_me = check(
        "invoice_payments_vs_me",
        AT_LEAST,
        0.3,
        ratio(payments, payments_me),
    );
    payments_vs_me.note = Some(match (payments, payments_me) {
        (Some(p), Some(me)) => format!(
            "POST /v1/me/invoices/{{id}}/payments {p} req/s (each a different open invoice paid \
             in full with a sandbox card token, under its own Idempotency-Key) ÷ GET /v1/me {me} \
             req/s, same server and token, in turns (server CPU per request {} µs and {} µs)",
            show(cpu(scenarios::INVOICE_PAYMENTS)),
            show(cpu(INVOICE_PAYMENTS_ME)),
        ),
        _ => "not measured in this run (scenario invoice_payments)".to_owned(),
    });

    vec![
        p99,
        check("idle_rss_mib", AT_MOST, 40.0, Some(m.idle_rss_mib)),
        check(
            "ready_ms_existing_db",
            AT_MOST,
            500.0,
            Some(m.ready_ms_existing_db),
        ),
        login_vs_raw,
        storm_ratio,
        schedules_vs_me,
        big_vs_small,
        dashboard_vs_me,
        downloads_rss,
        downloads_rate,
        slots_vs_me,
        race,
        payments_vs_me,
    ]
}

/// `booking_race_winners`: exactly 10 bookings in every round, every
/// other answer `409 slot_taken`, the database holding those 10. The
/// value is the `201` count of the round furthest from 10.
fn race_target(race: Option<&bookings::RaceOutcome>) -> Target {
    let limit = bookings::RACE_SLOTS as f64;
    let Some(race) = race else {
        return Target {
            name: "booking_race_winners",
            comparison: EXACTLY,
            limit,
            value: None,
            met: None,
            note: Some("not measured in this run (scenario booking_race)".to_owned()),
        };
    };
    let list = |f: &dyn Fn(&bookings::RaceRound) -> usize| {
        race.rounds
            .iter()
            .map(|r| f(r).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let others: usize = race
        .rounds
        .iter()
        .map(|r| r.other.values().sum::<usize>())
        .sum();
    let latency = |l: &bookings::Latency| {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms",
            show(l.p50_ms),
            show(l.p99_ms),
            show(l.max_ms)
        )
    };
    Target {
        name: "booking_race_winners",
        comparison: EXACTLY,
        limit,
        value: race.worst_created().map(|c| c as f64),
        met: Some(race.passed),
        note: Some(format!(
            "{} rounds of {} customers asking at once for {} slots of one provider: 201 {}; \
             409 slot_taken {}; other answers {others} ({} 5xx); in the database {}; {} bookings \
             of the service in all; 201 {}, 409 {}",
            race.rounds.len(),
            race.clients,
            race.slots,
            list(&|r| r.created),
            list(&|r| r.slot_taken),
            race.server_errors(),
            list(&|r| r.in_database),
            race.service_bookings,
            latency(&race.created_latency),
            latency(&race.slot_taken_latency),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &'static str, req_per_s: f64, p99_ms: Option<f64>) -> ScenarioResult {
        ScenarioResult {
            name,
            method: "GET".to_owned(),
            path: "/".to_owned(),
            connections: 8,
            requests: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            req_per_s,
            p50_ms: None,
            p99_ms,
            max_ms: None,
            ratio_to_healthz: None,
            server_cpu_us_per_request: None,
        }
    }

    fn measured<'a>(
        connections: u16,
        results: &'a [ScenarioResult],
        raw_argon2: Option<&'a RawArgon2>,
    ) -> Measured<'a> {
        Measured {
            backend: Backend::Sqlite,
            connections,
            results,
            raw_argon2,
            idle_rss_mib: 41.0,
            ready_ms_existing_db: 120.0,
            downloads: None,
            booking_race: None,
        }
    }

    #[test]
    fn targets_compare_with_their_limits() {
        let healthz = [result("healthz", 1.0, Some(9.5))];
        let t = targets(&measured(64, &healthz, None));
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(false));
        assert_eq!(t[2].met, Some(true));
        // Not measured: no value, no verdict.
        assert_eq!((t[3].value, t[3].met), (None, None));
        assert_eq!((t[4].value, t[4].met), (None, None));
        let t = targets(&measured(32, &healthz, None));
        assert_eq!(t[0].met, None);
        assert!(t[0].note.is_some());
        assert_eq!(targets(&measured(64, &[], None))[0].met, None);
    }

    #[test]
    fn login_and_storm_targets_are_ratios() {
        let raw = RawArgon2::new(2, 500, Duration::from_secs(10));
        let results = [
            result(scenarios::LOGIN, 41.0, Some(200.0)),
            result(QUIET_ME, 5000.0, Some(10.0)),
            result(STORM_ME, 3000.0, Some(31.0)),
            result(STORM_LOGIN, 20.0, Some(400.0)),
        ];
        let t = targets(&measured(64, &results, Some(&raw)));
        assert_eq!(t[3].name, "login_vs_raw_argon2");
        assert_eq!((t[3].comparison, t[3].value), (AT_LEAST, Some(0.82)));
        assert_eq!(t[3].met, Some(true));
        assert_eq!(t[4].name, "me_p99_storm_ratio");
        assert_eq!((t[4].comparison, t[4].value), (AT_MOST, Some(3.1)));
        assert_eq!(t[4].met, Some(false));
        assert!(t[4].note.as_deref().unwrap().contains("20 logins/s"));
        let slow = [result(scenarios::LOGIN, 39.0, None)];
        assert_eq!(
            targets(&measured(64, &slow, Some(&raw)))[3].met,
            Some(false)
        );
    }

    #[test]
    fn downloads_targets_need_every_byte_right() {
        let target = |t: &[Target], name: &str| {
            let found = t.iter().find(|t| t.name == name).unwrap();
            (found.comparison, found.limit, found.value, found.met)
        };
        let t = targets(&measured(64, &[], None));
        assert_eq!(
            target(&t, "downloads_rss_growth_mib"),
            (AT_MOST, 64.0, None, None)
        );
        assert_eq!(
            target(&t, "downloads_mib_per_s"),
            (AT_LEAST, 200.0, None, None)
        );
        let mut outcome = downloads::Outcome {
            concurrent: 16,
            size_bytes: downloads::SIZE,
            rounds: 5,
            bytes: 1_677_721_600,
            secs: 6.4,
            mib_per_s: 250.0,
            errors: 0,
            first_error: None,
            rss_before_upload_mib: 15.0,
            rss_before_mib: 20.0,
            rss_peak_mib: 90.0,
            rss_growth_mib: 70.0,
            server_cpu_ms_per_mib: Some(2.0),
        };
        let with = |o: &downloads::Outcome| {
            targets(&Measured {
                downloads: Some(o),
                ..measured(64, &[], None)
            })
        };
        let t = with(&outcome);
        assert_eq!(
            target(&t, "downloads_rss_growth_mib"),
            (AT_MOST, 64.0, Some(70.0), Some(false))
        );
        assert_eq!(
            target(&t, "downloads_mib_per_s"),
            (AT_LEAST, 200.0, Some(250.0), Some(true))
        );
        outcome.errors = 1;
        let t = with(&outcome);
        assert_eq!(target(&t, "downloads_mib_per_s").3, None);
        assert_eq!(target(&t, "downloads_rss_growth_mib").3, None);
    }

    #[test]
    fn schedules_targets_compare_within_the_run() {
        let target = |t: &[Target], name: &str| {
            let found = t.iter().find(|t| t.name == name).unwrap();
            (found.comparison, found.limit, found.value, found.met)
        };
        let t = targets(&measured(64, &[], None));
        assert_eq!(target(&t, "schedules_vs_me"), (AT_LEAST, 0.35, None, None));
        assert_eq!(
            target(&t, "schedules_big_vs_small_db"),
            (AT_LEAST, 0.9, None, None)
        );
        assert_eq!(target(&t, "dashboard_vs_me"), (AT_LEAST, 0.5, None, None));
        let results = [
            result(scenarios::SCHEDULES, 900.0, None),
            result(SCHEDULES_ME, 2000.0, None),
            result(SCHEDULES_READYZ, 2000.0, None),
            result(SCHEDULES_SMALL, 1000.0, None),
            result(SCHEDULES_SMALL_READYZ, 1600.0, None),
            result(scenarios::DASHBOARD, 990.0, None),
            result(DASHBOARD_ME, 2000.0, None),
        ];
        let t = targets(&measured(64, &results, None));
        assert_eq!(
            target(&t, "schedules_vs_me"),
            (AT_LEAST, 0.35, Some(0.45), Some(true))
        );
        assert_eq!(
            target(&t, "dashboard_vs_me"),
            (AT_LEAST, 0.5, Some(0.495), Some(false))
        );
        assert_eq!(
            target(&t, "schedules_big_vs_small_db"),
            (AT_LEAST, 0.9, Some(0.9), Some(true))
        );
        let note = t
            .iter()
            .find(|t| t.name == "schedules_big_vs_small_db")
            .and_then(|t| t.note.as_deref())
            .unwrap();
        // Each ÷ its readyz: 0.45 ÷ 0.625.
        assert!(note.contains("0.72"), "{note}");
        // PostgreSQL's limit is higher.
        let mut pg = measured(64, &results, None);
        pg.backend = Backend::Postgres;
        assert_eq!(
            target(&targets(&pg), "schedules_vs_me"),
            (AT_LEAST, 0.5, Some(0.45), Some(false))
        );
    }

    #[test]
    fn booking_targets_compare_within_the_run_and_check_the_race() {
        let target = |t: &[Target], name: &str| {
            let found = t.iter().find(|t| t.name == name).unwrap();
            (found.comparison, found.limit, found.value, found.met)
        };
        let t = targets(&measured(64, &[], None));
        assert_eq!(
            target(&t, "booking_slots_vs_me"),
            (AT_LEAST, 0.3, None, None)
        );
        assert_eq!(
            target(&t, "booking_race_winners"),
            (EXACTLY, 10.0, None, None)
        );
        let results = [
            result(scenarios::BOOKING_SLOTS, 600.0, None),
            result(BOOKING_SLOTS_ME, 2000.0, None),
        ];
        let round = |created: usize, slot_taken: usize| bookings::RaceRound {
            first_start: "2026-12-09T07:00:00Z".to_owned(),
            created,
            slot_taken,
            other: BTreeMap::new(),
            server_errors: 0,
            in_database: created,
            wall_ms: 40.0,
            problems: if created == 10 {
                Vec::new()
            } else {
                vec!["wrong".to_owned()]
            },
        };
        let mut race = bookings::RaceOutcome {
            clients: 64,
            slots: 10,
            rounds: vec![round(10, 54), round(10, 54)],
            created_latency: bookings::Latency::default(),
            slot_taken_latency: bookings::Latency::default(),
            service_bookings: 20,
            passed: true,
            problems: Vec::new(),
        };
        let with = |race: &bookings::RaceOutcome| {
            targets(&Measured {
                booking_race: Some(race),
                ..measured(64, &results, None)
            })
        };
        let t = with(&race);
        assert_eq!(
            target(&t, "booking_slots_vs_me"),
            (AT_LEAST, 0.3, Some(0.3), Some(true))
        );
        assert_eq!(
            target(&t, "booking_race_winners"),
            (EXACTLY, 10.0, Some(10.0), Some(true))
        );
        race.rounds.push(round(11, 53));
        race.passed = false;
        assert_eq!(
            target(&with(&race), "booking_race_winners"),
            (EXACTLY, 10.0, Some(11.0), Some(false))
        );
    }

    #[test]
    fn invoice_payments_compare_with_me_in_the_same_run() {
        let target = |t: &[Target]| {
            let found = t
                .iter()
                .find(|t| t.name == "invoice_payments_vs_me")
                .unwrap();
            (found.comparison, found.limit, found.value, found.met)
        };
        assert_eq!(
            target(&targets(&measured(64, &[], None))),
            (AT_LEAST, 0.3, None, None)
        );
        let results = [
            result(scenarios::INVOICE_PAYMENTS, 600.0, None),
            result(INVOICE_PAYMENTS_ME, 2000.0, None),
        ];
        assert_eq!(
            target(&targets(&measured(64, &results, None))),
            (AT_LEAST, 0.3, Some(0.3), Some(true))
        );
        let slow = [
            result(scenarios::INVOICE_PAYMENTS, 500.0, None),
            result(INVOICE_PAYMENTS_ME, 2000.0, None),
        ];
        let t = targets(&measured(64, &slow, None));
        assert_eq!(target(&t), (AT_LEAST, 0.3, Some(0.25), Some(false)));
        let note = t
            .iter()
            .find(|t| t.name == "invoice_payments_vs_me")
            .and_then(|t| t.note.as_deref())
            .unwrap();
        assert!(note.contains("500 req/s"), "{note}");
    }

    #[test]
    fn turns_alternate_their_order() {
        assert_eq!(turn_order(0, 3), [0, 1, 2]);
        assert_eq!(turn_order(1, 3), [2, 1, 0]);
        assert_eq!(turn_order(2, 3), [0, 1, 2]);
    }

    #[test]
    fn durations_are_cut_into_turns() {
        assert_eq!(turns(Duration::from_secs(10)), (5, Duration::from_secs(2)));
        assert_eq!(
            turns(Duration::from_secs(5)),
            (2, Duration::from_millis(2500))
        );
        assert_eq!(turns(Duration::from_secs(3)), (1, Duration::from_secs(3)));
        assert_eq!(turns(Duration::from_secs(1)), (1, Duration::from_secs(1)));
        assert_eq!(
            turn_warmup(0, Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(turn_warmup(1, Duration::from_secs(2)), TURN_WARMUP);
    }

    #[test]
    fn summaries_count_successes_per_second() {
        let outcome = LoadOutcome {
            requests: 1000,
            errors: 10,
            latencies_us: (1..=990).collect(),
            ..LoadOutcome::default()
        };
        let spec = RequestSpec::get("/healthz");
        let load = LoadConfig {
            addr: "127.0.0.1:1".parse().unwrap(),
            connections: 64,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(10),
        };
        let r = summarise("healthz", &spec, &outcome, load);
        assert_eq!(r.connections, 64);
        assert_eq!(r.req_per_s, 99.0);
        assert_eq!(r.p50_ms, Some(0.495));
        assert_eq!(r.p99_ms, Some(0.981));
        assert_eq!(r.max_ms, Some(0.99));
    }

    #[test]
    fn the_command_line_parses() {
        let args = Args::try_parse_from([
            "guichet-bench",
            "--backend",
            "postgres",
            "--connections",
            "8",
            "--only",
            "readyz",
        ])
        .unwrap();
        assert_eq!(args.db.backend, Backend::Postgres);
        assert_eq!(args.connections, 8);
        assert_eq!(args.duration_secs, 10);
        assert_eq!(args.login_connections, 8);
        assert_eq!(args.password_hash_concurrency, None);
        let args =
            Args::try_parse_from(["guichet-bench", "--password-hash-concurrency", "2"]).unwrap();
        assert_eq!(args.password_hash_concurrency, Some(2));
        assert!(
            Args::try_parse_from(["guichet-bench", "--password-hash-concurrency", "0"]).is_err()
        );
        assert!(Args::try_parse_from(["guichet-bench", "--connections", "0"]).is_err());
    }
}
