//! `guichet-bench`: starts a release `guichet` on a fresh database, loads it
//! with keep-alive connections and prints req/s, latency and memory as JSON.
//! `guichet-bench debit ...` measures the debit job instead (`debit.rs`).

mod debit;
mod http;
mod load;
mod procfs;
mod scenarios;
mod sepa;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use crate::load::{LoadConfig, LoadOutcome, percentile};
use crate::server::{Backend, Database, Server, ServerConfig};

/// The error rate above which a run fails.
const MAX_ERROR_RATE: f64 = 0.01;

/// How long the server is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Other benchmarks: `guichet-bench debit --help` (the debit job), \
                  `guichet-bench sepa --help` (SEPA documents and exports)."
)]
struct Args {
    /// Storage backend of the server under test.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,

    /// PostgreSQL server on which the throwaway database is created.
    #[arg(
        long,
        env = "GUICHET_BENCH_PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pg_admin_url: String,

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

    /// Run only this scenario (and the healthz baseline).
    #[arg(long)]
    only: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: Backend,
    connections: u16,
    duration_secs: u64,
    warmup_secs: u64,
    /// `null`: the server's default.
    workers: Option<u16>,
    cores: usize,
    startup: Startup,
    results: Vec<ScenarioResult>,
    peak_rss_mib: f64,
    targets: Vec<Target>,
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
}

#[derive(Debug, Serialize)]
struct Target {
    name: &'static str,
    limit: u64,
    value: Option<f64>,
    /// `null` when the run cannot tell (wrong connection count, no data).
    met: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "debit") {
        return debit::main(std::env::args_os().skip(1));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "sepa") {
        return sepa::main(std::env::args_os().skip(1));
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
    let mut database = Database::create(args.backend, &args.pg_admin_url, work_dir.path())?;
    let config = ServerConfig {
        binary,
        database_url: database.url().to_owned(),
        work_dir: work_dir.path().to_path_buf(),
        workers: args.workers.map(usize::from),
    };

    progress(&format!(
        "starting {} on a fresh {} database",
        config.binary.display(),
        args.backend.name()
    ));
    let mut first = Server::spawn(&config, "fresh")?;
    let ready_fresh = runtime.block_on(first.wait_ready(Duration::from_secs(60)))?;
    first.stop()?;
    progress(&format!(
        "ready in {} ms on the fresh database; restarting on the migrated one",
        ms(ready_fresh)
    ));
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

    let load = LoadConfig {
        addr: server.addr,
        connections: usize::from(args.connections),
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
    };
    let host = server.addr.to_string();
    let mut setup = scenarios::Setup::new(&runtime, server.addr);
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for scenario in &scenarios {
        let name = scenario.name;
        let spec = (scenario.prepare)(&mut setup).map_err(|e| format!("{name}: set-up: {e}"))?;
        // One request first: a scenario that cannot succeed once is not
        // worth loading.
        setup
            .send(&spec)?
            .expect_success()
            .map_err(|e| format!("{name}: {} {}: {e}", spec.method, spec.path))?;
        let wire = Arc::new(spec.encode(&host)?);
        progress(&format!(
            "{name}: {} {} with {} connections, {} s warm-up, {} s measured",
            spec.method, spec.path, args.connections, args.warmup_secs, args.duration_secs
        ));
        let outcome = runtime.block_on(load::run(load, wire))?;
        server.check_alive()?;
        let result = summarise(name, &spec, &outcome, load.duration);
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
        results.push(result);
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
    let healthz_p99 = results
        .iter()
        .find(|r| r.name == scenarios::BASELINE)
        .and_then(|r| r.p99_ms);
    let report = Report {
        backend: args.backend,
        connections: args.connections,
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        workers: args.workers,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        startup: Startup {
            ready_ms_existing_db: ms(ready_existing),
            idle_rss_mib: round(idle_rss, 1),
            ready_ms_fresh_db: ms(ready_fresh),
        },
        targets: targets(
            args.connections,
            healthz_p99,
            round(idle_rss, 1),
            ms(ready_existing),
        ),
        results,
        peak_rss_mib: round(peak_rss, 1),
    };
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| format!("cannot write JSON: {e}"))?;
    println!("{json}");
    for target in &report.targets {
        if target.met == Some(false) {
            progress(&format!(
                "target {} not met: {} > {}",
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
            progress(&format!("more than 1% errors: {failure}"));
        }
        Ok(ExitCode::from(1))
    }
}

fn summarise(
    name: &'static str,
    spec: &http::RequestSpec,
    outcome: &LoadOutcome,
    duration: Duration,
) -> ScenarioResult {
    let successes = outcome.requests - outcome.errors;
    ScenarioResult {
        name,
        method: spec.method.clone(),
        path: spec.path.clone(),
        requests: outcome.requests,
        errors: outcome.errors,
        error_kinds: outcome.error_kinds.clone(),
        req_per_s: round(successes as f64 / duration.as_secs_f64(), 1),
        p50_ms: us_to_ms(percentile(&outcome.latencies_us, 50.0)),
        p99_ms: us_to_ms(percentile(&outcome.latencies_us, 99.0)),
        max_ms: us_to_ms(outcome.latencies_us.last().copied()),
        ratio_to_healthz: None,
    }
}

fn targets(
    connections: u16,
    healthz_p99_ms: Option<f64>,
    idle_rss_mib: f64,
    ready_ms_existing_db: f64,
) -> Vec<Target> {
    let check = |name, limit: u64, value: Option<f64>| Target {
        name,
        limit,
        value,
        met: value.map(|v| v <= limit as f64),
        note: None,
    };
    let mut p99 = check("healthz_p99_ms_at_64", 10, healthz_p99_ms);
    if connections != 64 {
        p99.met = None;
        p99.note = Some(format!(
            "measured at {connections} connections; the target is defined at 64"
        ));
    }
    vec![
        p99,
        check("idle_rss_mib", 40, Some(idle_rss_mib)),
        check("ready_ms_existing_db", 500, Some(ready_ms_existing_db)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_with_their_limits() {
        let t = targets(64, Some(9.5), 41.0, 120.0);
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(false));
        assert_eq!(t[2].met, Some(true));
        let t = targets(32, Some(1.0), 10.0, 10.0);
        assert_eq!(t[0].met, None);
        assert!(t[0].note.is_some());
        assert_eq!(targets(64, None, 1.0, 1.0)[0].met, None);
    }

    #[test]
    fn summaries_count_successes_per_second() {
        let outcome = LoadOutcome {
            requests: 1000,
            errors: 10,
            latencies_us: (1..=990).collect(),
            ..LoadOutcome::default()
        };
        let spec = http::RequestSpec::get("/healthz");
        let r = summarise("healthz", &spec, &outcome, Duration::from_secs(10));
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
        assert_eq!(args.backend, Backend::Postgres);
        assert_eq!(args.connections, 8);
        assert_eq!(args.duration_secs, 10);
        assert!(Args::try_parse_from(["guichet-bench", "--connections", "0"]).is_err());
    }
}
