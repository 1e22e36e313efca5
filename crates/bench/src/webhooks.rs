//! `guichet-bench webhooks`: the targets of issue #14, against a release
//! server with its webhook dispatcher running, and a receiver in this
//! process on 127.0.0.1 that verifies every signature.
//!
//! 1. **Dispatch throughput**: `--endpoints` endpoints of the `demo`
//!    organization, each subscribed to one event type; `--events` events
//!    of those types (in turn) are written in one transaction, with their
//!    deliveries, as `events::record` writes them; the time from the commit
//!    to the last delivery received gives deliveries/s (target ≥ 2 000).
//! 2. **The API while the dispatcher drains**: `GET /v1/me` is loaded with
//!    the dispatcher idle, then `--drain-events` events are written the
//!    same way and `GET /v1/me` is loaded again while they are delivered;
//!    the ratio of the two rates (target ≥ 0.70).
//! 3. **What an event costs the action that writes it**: a card change by
//!    the lender's demo customer (`PUT /v1/me/schedules/{id}/card`, which
//!    writes `schedule.card_changed`), loaded in turns with no enabled
//!    endpoint, then with one endpoint subscribed to every type (the event
//!    fanned out and delivered meanwhile); the rate with ÷ the rate without
//!    (target ≥ 0.90, i.e. ≤ 10 % lost).
//!
//! Every delivery is checked: a valid Standard Webhooks signature under its
//! endpoint's secret, the right endpoint for its type, and no event
//! delivered twice to one endpoint. Prints one JSON object.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use diesel::connection::SimpleConnection;
use guichet_store::{DatabaseUrl, DbConnection, PoolOptions, Store};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::RequestSpec;
use crate::load::{self, LoadConfig, LoadOutcome};
use crate::procfs;
use crate::scenarios::{self, Setup};
use crate::server::{self, Backend, Database, DatabaseArgs, Server, ServerConfig};

/// The demo organization's admin (`api/src/demo/mod.rs`).
const DEMO_ADMIN: (&str, &str) = ("admin@demo.guichet.localhost", "Admin-Demo-2026!");
/// The lender's admin and customer (`api/src/demo/lender.rs`), and the
/// schedule of hers that takes a new card.
const LENDER: &str = "fractio";
const LENDER_ADMIN: (&str, &str) = ("admin@fractio.guichet.localhost", "Admin-Fractio-2026!");
const SOPHIE: (&str, &str) = ("sophie.laurent@example.com", "Sophie-Demo-2026!");
const CARD_CHANGE_ORDER: &str = "FR-10421";

/// Types the seeded events take, one per endpoint (known to the server's
/// catalogue, so that an endpoint can subscribe to each).
const TYPES: [&str; 10] = [
    "schedule.card_changed",
    "schedule.regularized",
    "instalment.paid",
    "instalment.failed",
    "schedule.unpaid",
    "order.cancelled",
    "mandate.signed",
    "mandate.revoked",
    "collection.presented",
    "collection.paid",
];

#[derive(Debug, Parser)]
#[command(
    name = "guichet-bench webhooks",
    about = "Measures webhook dispatch throughput, GET /v1/me while the dispatcher drains, and \
             what writing an event costs the action that causes it; prints JSON."
)]
pub struct WebhookArgs {
    #[command(flatten)]
    db: DatabaseArgs,

    /// Events written for the throughput measurement (one delivery each).
    #[arg(long, default_value_t = 50_000)]
    events: u32,

    /// Events the dispatcher drains while `GET /v1/me` is measured.
    #[arg(long, default_value_t = 100_000)]
    drain_events: u32,

    /// Endpoints (at most 10), each subscribed to one event type.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    endpoints: u32,

    /// Keep-alive connections loading `GET /v1/me` and the card changes.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,

    /// Measured seconds of each `GET /v1/me` window and of each turn of
    /// the card change measurement.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration_secs: u64,

    /// Turns of the card change measurement (each: without, then with the endpoint).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    turns: u32,

    /// Longest wait for a drain, in seconds.
    #[arg(long, default_value_t = 900)]
    drain_timeout_secs: u64,

    /// The `guichet` binary [default: the one next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,

    /// Extra arguments for `guichet serve` (e.g. `--webhook-concurrency=32`).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

pub fn main(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = WebhookArgs::parse_from(args);
    match run(&args) {
        Ok((report, ok)) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("guichet-bench webhooks: {e}");
            ExitCode::from(2)
        }
    }
}

fn progress(message: &str) {
    eprintln!("guichet-bench webhooks: {message}");
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

// ------------------------------------------------------------------ receiver

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Signing keys by path (`/e0` ...), set once the endpoints exist.
    keys: HashMap<String, Vec<Vec<u8>>>,
    /// The type each path's endpoint wants (`*`: any).
    wants: HashMap<String, String>,
    received: u64,
    bad_signatures: u64,
    wrong_endpoint: u64,
    duplicates: u64,
    unknown_path: u64,
    delivered: HashSet<(String, String)>,
    per_path: HashMap<String, u64>,
    last_at: Option<Instant>,
    first_error: Option<String>,
}

impl Seen {
    fn error(&mut self, message: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }

    fn record(&mut self, path: &str, headers: &[(String, String)], body: &[u8]) {
        self.received += 1;
        self.last_at = Some(Instant::now());
        *self.per_path.entry(path.to_owned()).or_default() += 1;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let id = header("webhook-id").to_owned();
        let timestamp = header("webhook-timestamp");
        let signatures = header("webhook-signature");
        let Some(keys) = self.keys.get(path) else {
            self.unknown_path += 1;
            self.error(|| format!("a delivery to unknown path {path}"));
            return;
        };
        let mut message = format!("{id}.{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        let valid = keys.iter().any(|key| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                return false;
            };
            mac.update(&message);
            let expected = format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            );
            signatures.split(' ').any(|s| s == expected)
        });
        if !valid {
            self.bad_signatures += 1;
            self.error(|| format!("a bad signature on {path}: {signatures}"));
        }
        let event_type = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let wants = self.wants.get(path).cloned().unwrap_or_default();
        if wants != "*" && wants != event_type {
            self.wrong_endpoint += 1;
            self.error(|| format!("{event_type} delivered to {path}, which wants {wants}"));
        }
        if !self.delivered.insert((path.to_owned(), id.clone())) {
            self.duplicates += 1;
            self.error(|| format!("{id} delivered twice to {path}"));
        }
    }
}

/// A minimal HTTP/1.1 server (keep-alive, `Content-Length` bodies) on its
/// own thread and single-threaded runtime: answers 200 to everything and
/// records it.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    fn start() -> Result<Receiver, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("receiver: cannot bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("receiver: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("receiver: {e}"))?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = Arc::clone(&seen);
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("guichet-bench webhooks: receiver runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((stream, _)) = listener.accept().await {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let _ = serve_connection(stream, state).await;
                    });
                }
            });
        });
        Ok(Receiver { addr, seen })
    }

    fn received(&self) -> u64 {
        self.seen.lock().map_or(0, |s| s.received)
    }
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    seen: Arc<Mutex<Seen>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0_u8; 16 * 1024];
    loop {
        // The head.
        let head_end = loop {
            if let Some(end) = crate::http::find_head_end(&buf) {
                break end;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        if let Ok(mut seen) = seen.lock() {
            seen.record(&path, &headers, &body);
        }
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok",
            )
            .await?;
        if close {
            return Ok(());
        }
    }
}

// ------------------------------------------------------------------ the run

fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| format!("a secret without whsec_: {secret}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("a secret that is not base64: {e}"))
}

fn staff_token(setup: &mut Setup<'_>, org: &str, who: (&str, &str)) -> Result<String, String> {
    let body = json!({"organization": org, "email": who.0, "password": who.1});
    setup
        .send(&RequestSpec::json("POST", "/v1/auth/staff/login", &body))?
        .expect(200)
        .map_err(|e| format!("staff login ({org}): {e}"))?
        .json()?["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "staff login: no access_token".to_owned())
}

/// Creates an endpoint of the token's organization at `url` for `types`;
/// returns its id and signing key.
fn create_endpoint(
    setup: &mut Setup<'_>,
    token: &str,
    url: &str,
    types: &[&str],
) -> Result<(String, Vec<u8>), String> {
    let body = json!({"url": url, "event_types": types, "description": "guichet-bench"});
    let created = setup
        .send(&RequestSpec::json("POST", "/v1/admin/webhook-endpoints", &body).bearer(token))?
        .expect(201)
        .map_err(|e| format!("creating an endpoint: {e}"))?
        .json()?;
    let id = created["id"].as_str().ok_or("endpoint: no id")?.to_owned();
    let secret = created["secret"].as_str().ok_or("endpoint: no secret")?;
    Ok((id, key_of(secret)?))
}

fn org_id(conn: &mut DbConnection, slug: &str) -> Result<String, String> {
    use diesel::prelude::*;
    use guichet_store::schema::organizations;
    organizations::table
        .filter(organizations::slug.eq(slug))
        .select(organizations::id)
        .first::<String>(conn)
        .map_err(|e| format!("organization {slug}: {e}"))
}

/// Writes `count` events of organization `org` (types in turn over
/// `types`) and one pending delivery each to the endpoint of its type, due
/// now, in one transaction, as `events::record` would for an organization
/// whose endpoints each want one type. Returns when it committed.
fn seed_events(
    conn: &mut DbConnection,
    backend: Backend,
    org: &str,
    run: &str,
    endpoints: &[(String, &str)],
    count: u32,
) -> Result<Instant, String> {
    let k = endpoints.len();
    let numbers = match backend {
        Backend::Sqlite => format!(
            "CREATE TEMP TABLE bench_ev AS WITH RECURSIVE seq(n) AS \
             (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {last}) \
             SELECT n, n % {k} AS e FROM seq;",
            last = count - 1
        ),
        Backend::Postgres => format!(
            "CREATE TEMP TABLE bench_ev AS SELECT n, n % {k} AS e \
             FROM generate_series(0::bigint, {last}::bigint) AS g(n);",
            last = count - 1
        ),
    };
    let (now, concat) = match backend {
        // As diesel writes a NaiveDateTime on each backend.
        Backend::Sqlite => ("strftime('%Y-%m-%d %H:%M:%f', 'now')", "||"),
        Backend::Postgres => ("(now() AT TIME ZONE 'UTC')", "||"),
    };
    let mut map = String::from("CREATE TEMP TABLE bench_map (e BIGINT, endpoint TEXT, t TEXT);");
    for (i, (endpoint, t)) in endpoints.iter().enumerate() {
        map.push_str(&format!(
            "INSERT INTO bench_map VALUES ({i}, '{endpoint}', '{t}');"
        ));
    }
    let id = |prefix: &str| format!("'{prefix}_bench{run}_' {concat} CAST(n AS TEXT)");
    let statements = [
        "DROP TABLE IF EXISTS bench_ev; DROP TABLE IF EXISTS bench_map;".to_owned(),
        numbers,
        map,
        "BEGIN".to_owned(),
        format!(
            "INSERT INTO events (id, org_id, event_type, object_type, object_id, customer_id, \
             actor, data, created_at) \
             SELECT {evt}, '{org}', m.t, 'schedule', {obj}, NULL, 'system', \
             '{{\"id\":\"' {concat} {obj} {concat} '\",\"bench\":true}}', {now} \
             FROM bench_ev b JOIN bench_map m ON m.e = b.e;",
            evt = id("evt"),
            obj = id("ord"),
        ),
        format!(
            "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, status, attempts, \
             next_attempt_at, created_at, updated_at) \
             SELECT {whd}, '{org}', m.endpoint, {evt}, 'pending', 0, {now}, {now}, {now} \
             FROM bench_ev b JOIN bench_map m ON m.e = b.e;",
            whd = id("whd"),
            evt = id("evt"),
        ),
        "COMMIT".to_owned(),
        "DROP TABLE bench_ev; DROP TABLE bench_map;".to_owned(),
    ];
    for statement in &statements {
        conn.batch_execute(statement)
            .map_err(|e| format!("seeding events: {e}\n{statement}"))?;
    }
    Ok(Instant::now())
}

/// Waits until the receiver has `total` deliveries; returns the instant of
/// the last one.
fn drain(receiver: &Receiver, total: u64, limit: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + limit;
    loop {
        let (received, last) = {
            let seen = receiver.seen.lock().map_err(|_| "receiver poisoned")?;
            (seen.received, seen.last_at)
        };
        if received >= total {
            return last.ok_or_else(|| "no delivery".to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {received} of {total} deliveries within {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rate(outcome: &LoadOutcome, window: Duration) -> f64 {
    let ok = outcome.requests.saturating_sub(outcome.errors);
    ok as f64 / window.as_secs_f64()
}

fn load_json(outcome: &LoadOutcome, window: Duration) -> Value {
    json!({
        "requests": outcome.requests,
        "errors": outcome.errors,
        "error_kinds": outcome.error_kinds,
        "first_error": outcome.first_error,
        "req_per_s": round(rate(outcome, window), 1),
        "p50_ms": load::percentile(&outcome.latencies_us, 50.0).map(|us| f64::from(us) / 1000.0),
        "p99_ms": load::percentile(&outcome.latencies_us, 99.0).map(|us| f64::from(us) / 1000.0),
    })
}

fn target(name: &str, comparison: &str, limit: f64, value: f64, note: String) -> Value {
    let met = match comparison {
        "at_least" => value >= limit,
        _ => value <= limit,
    };
    json!({"name": name, "comparison": comparison, "limit": limit, "value": round(value, 3),
           "met": met, "note": note})
}

fn run(args: &WebhookArgs) -> Result<(Value, bool), String> {
    let binary = server::resolve_binary(args.server.as_deref())?;
    let load_at_start = procfs::load_average_1m();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let work = tempfile::tempdir().map_err(|e| format!("cannot create a work dir: {e}"))?;
    let mut database = Database::create(args.db.backend, &args.db.pg_admin_url, work.path())?;
    let receiver = Receiver::start()?;
    progress(&format!("receiver on {}", receiver.addr));

    let config = ServerConfig {
        binary,
        database_url: database.url().to_owned(),
        work_dir: work.path().to_path_buf(),
        workers: None,
        password_hash_concurrency: None,
        demo: true,
    };
    let mut extra = vec![
        "--webhook-allow-http".to_owned(),
        "--webhook-allow-address".to_owned(),
        "127.0.0.1".to_owned(),
        "--debit-interval-secs".to_owned(),
        "0".to_owned(),
    ];
    extra.extend(args.serve_args.iter().cloned());
    let mut server = Server::spawn_with(&config, "webhooks", &extra)?;
    runtime.block_on(server.wait_ready(Duration::from_secs(60)))?;
    let store = Store::connect(
        &DatabaseUrl::parse(database.url()).map_err(|e| e.to_string())?,
        &PoolOptions::default(),
    )
    .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    let demo_org = org_id(&mut conn, scenarios::DEMO_ORGANIZATION)?;

    let mut setup = Setup::new(&runtime, server.addr);
    let admin = staff_token(&mut setup, scenarios::DEMO_ORGANIZATION, DEMO_ADMIN)?;
    let mut endpoints: Vec<(String, &str)> = Vec::new();
    for (i, t) in TYPES.iter().take(args.endpoints as usize).enumerate() {
        let path = format!("/e{i}");
        let url = format!("http://{}{path}", receiver.addr);
        let (id, key) = create_endpoint(&mut setup, &admin, &url, &[t])?;
        let mut seen = receiver.seen.lock().map_err(|_| "receiver poisoned")?;
        seen.keys.insert(path.clone(), vec![key]);
        seen.wants.insert(path, (*t).to_owned());
        endpoints.push((id, t));
    }
    let me = scenarios::me(&mut setup)?;
    let me = Arc::new(me.encode(&server.addr.to_string())?);
    let window = Duration::from_secs(args.duration_secs);
    let load_config = LoadConfig {
        addr: server.addr,
        connections: usize::from(args.connections),
        warmup: Duration::from_secs(1),
        duration: window,
    };

    // 1. Throughput, nothing else running.
    progress(&format!("dispatch: {} events", args.events));
    let seed_started = Instant::now();
    let committed = seed_events(
        &mut conn,
        args.db.backend,
        &demo_org,
        "a",
        &endpoints,
        args.events,
    )?;
    let seed_secs = committed.duration_since(seed_started).as_secs_f64();
    let last = drain(
        &receiver,
        u64::from(args.events),
        Duration::from_secs(args.drain_timeout_secs),
    )?;
    let dispatch_secs = last.duration_since(committed).as_secs_f64();
    let dispatch_rate = f64::from(args.events) / dispatch_secs;
    progress(&format!(
        "dispatch: {} deliveries in {dispatch_secs:.1} s: {dispatch_rate:.0}/s",
        args.events
    ));
    server.check_alive()?;

    // 2. GET /v1/me idle, then while the dispatcher drains.
    progress("GET /v1/me, dispatcher idle");
    let idle = runtime.block_on(load::run(load_config, Arc::clone(&me)))?;
    let before = receiver.received();
    progress(&format!("drain: {} events", args.drain_events));
    let seed2_started = Instant::now();
    let committed2 = seed_events(
        &mut conn,
        args.db.backend,
        &demo_org,
        "b",
        &endpoints,
        args.drain_events,
    )?;
    let seed2_secs = committed2.duration_since(seed2_started).as_secs_f64();
    progress("GET /v1/me while the dispatcher drains");
    let at_window_start = receiver.received() - before;
    let busy = runtime.block_on(load::run(load_config, Arc::clone(&me)))?;
    let at_window_end = receiver.received() - before;
    let total = before + u64::from(args.drain_events);
    let last2 = drain(
        &receiver,
        total,
        Duration::from_secs(args.drain_timeout_secs),
    )?;
    let drain_secs = last2.duration_since(committed2).as_secs_f64();
    server.check_alive()?;
    let idle_rate = rate(&idle, window);
    let busy_rate = rate(&busy, window);
    let draining_throughout = at_window_end < u64::from(args.drain_events);
    progress(&format!(
        "GET /v1/me: {idle_rate:.0}/s idle, {busy_rate:.0}/s draining; drain {drain_secs:.1} s"
    ));

    // 3. A card change, without and with one endpoint subscribed.
    let lender_admin = staff_token(&mut setup, LENDER, LENDER_ADMIN)?;
    let sophie = setup
        .send(&RequestSpec::json(
            "POST",
            "/v1/auth/login",
            &json!({"organization": LENDER, "email": SOPHIE.0, "password": SOPHIE.1}),
        ))?
        .expect(200)
        .map_err(|e| format!("Sophie's login: {e}"))?
        .json()?["access_token"]
        .as_str()
        .ok_or("login: no access_token")?
        .to_owned();
    let schedules = setup
        .send(&RequestSpec::get("/v1/me/schedules?limit=100").bearer(&sophie))?
        .expect(200)
        .map_err(|e| format!("Sophie's schedules: {e}"))?
        .json()?;
    let schedule = schedules["data"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["order_number"] == CARD_CHANGE_ORDER))
        .and_then(|s| s["id"].as_str())
        .ok_or_else(|| format!("Sophie has no schedule {CARD_CHANGE_ORDER}"))?
        .to_owned();
    let card_token = setup
        .send(&RequestSpec::json(
            "POST",
            "/v1/sandbox/card-tokens",
            &json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
        ))?
        .expect(201)
        .map_err(|e| format!("a sandbox card token: {e}"))?
        .json()?["token"]
        .as_str()
        .ok_or("no card token")?
        .to_owned();
    let card_change = RequestSpec::json(
        "PUT",
        &format!("/v1/me/schedules/{schedule}/card"),
        &json!({"card_token": card_token}),
    )
    .bearer(&sophie);
    setup
        .send(&card_change)?
        .expect(200)
        .map_err(|e| format!("a card change: {e}"))?;
    let card_change = Arc::new(card_change.encode(&server.addr.to_string())?);
    let (lender_endpoint, lender_key) = create_endpoint(
        &mut setup,
        &lender_admin,
        &format!("http://{}/g", receiver.addr),
        &["*"],
    )?;
    {
        let mut seen = receiver.seen.lock().map_err(|_| "receiver poisoned")?;
        seen.keys.insert("/g".to_owned(), vec![lender_key]);
        seen.wants.insert("/g".to_owned(), "*".to_owned());
    }
    let set_enabled = |setup: &mut Setup<'_>, enabled: bool| -> Result<(), String> {
        setup
            .send(
                &RequestSpec::json(
                    "PATCH",
                    &format!("/v1/admin/webhook-endpoints/{lender_endpoint}"),
                    &json!({"enabled": enabled}),
                )
                .bearer(&lender_admin),
            )?
            .expect(200)
            .map(|_| ())
            .map_err(|e| format!("enabling the endpoint: {e}"))
    };
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut without_outcomes = Vec::new();
    let mut with_outcomes = Vec::new();
    for turn in 0..args.turns {
        progress(&format!("card changes, turn {}: no endpoint", turn + 1));
        set_enabled(&mut setup, false)?;
        let outcome = runtime.block_on(load::run(load_config, Arc::clone(&card_change)))?;
        without.push(rate(&outcome, window));
        without_outcomes.push(load_json(&outcome, window));
        progress(&format!("card changes, turn {}: one endpoint", turn + 1));
        set_enabled(&mut setup, true)?;
        let outcome = runtime.block_on(load::run(load_config, Arc::clone(&card_change)))?;
        with.push(rate(&outcome, window));
        with_outcomes.push(load_json(&outcome, window));
    }
    server.check_alive()?;
    // What the endpoint got of the card changes' events, once delivered.
    std::thread::sleep(Duration::from_secs(2));
    let card_change_events: u64 = {
        use diesel::prelude::*;
        use guichet_store::schema::webhook_deliveries;
        webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(&lender_endpoint))
            .count()
            .get_result::<i64>(&mut conn)
            .map_err(|e| e.to_string())?
            .try_into()
            .unwrap_or(0)
    };
    let without_mean = without.iter().sum::<f64>() / without.len() as f64;
    let with_mean = with.iter().sum::<f64>() / with.len() as f64;
    let peak_rss = procfs::read_mib(server.pid()?, "VmHWM").ok();
    server.stop()?;
    drop(conn);
    drop(store);
    database.drop_now()?;

    let seen = receiver.seen.lock().map_err(|_| "receiver poisoned")?;
    let problems = seen.bad_signatures + seen.wrong_endpoint + seen.duplicates + seen.unknown_path;
    let ratio_me = busy_rate / idle_rate;
    let ratio_card_change = with_mean / without_mean;
    let targets = vec![
        target(
            "dispatch_deliveries_per_s",
            "at_least",
            2000.0,
            dispatch_rate,
            format!(
                "{} deliveries to {} endpoints in {dispatch_secs:.2} s",
                args.events, args.endpoints
            ),
        ),
        target(
            "me_while_draining_vs_idle",
            "at_least",
            0.70,
            ratio_me,
            format!(
                "{busy_rate:.0} ÷ {idle_rate:.0} req/s; {} of {} deliveries made during the \
                 window (drain still running at its end: {draining_throughout})",
                at_window_end - at_window_start,
                args.drain_events
            ),
        ),
        target(
            "card_change_with_endpoint_vs_without",
            "at_least",
            0.90,
            ratio_card_change,
            format!(
                "{with_mean:.0} ÷ {without_mean:.0} card changes/s, {} turns",
                args.turns
            ),
        ),
    ];
    let report = json!({
        "backend": args.db.backend,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "load_average_1m": [load_at_start, procfs::load_average_1m()],
        "connections": args.connections,
        "duration_secs": args.duration_secs,
        "serve_args": args.serve_args,
        "dispatch": {
            "events": args.events,
            "endpoints": args.endpoints,
            "seed_secs": round(seed_secs, 2),
            "secs": round(dispatch_secs, 2),
            "deliveries_per_s": round(dispatch_rate, 1),
        },
        "me_while_draining": {
            "events": args.drain_events,
            "seed_secs": round(seed2_secs, 2),
            "drain_secs": round(drain_secs, 2),
            "deliveries_per_s_under_load": round(f64::from(args.drain_events) / drain_secs, 1),
            "deliveries_in_window": at_window_end - at_window_start,
            "drain_running_throughout": draining_throughout,
            "idle": load_json(&idle, window),
            "draining": load_json(&busy, window),
            "ratio": round(ratio_me, 3),
        },
        "card_change_event_cost": {
            "without_endpoint_per_s": without.iter().map(|r| round(*r, 1)).collect::<Vec<_>>(),
            "with_endpoint_per_s": with.iter().map(|r| round(*r, 1)).collect::<Vec<_>>(),
            "without": without_outcomes,
            "with": with_outcomes,
            "deliveries_queued_for_the_endpoint": card_change_events,
            "ratio": round(ratio_card_change, 3),
        },
        "receiver": {
            "received": seen.received,
            "bad_signatures": seen.bad_signatures,
            "wrong_endpoint": seen.wrong_endpoint,
            "duplicates": seen.duplicates,
            "unknown_path": seen.unknown_path,
            "first_error": seen.first_error,
        },
        "server_peak_rss_mib": peak_rss,
        "targets": targets,
    });
    Ok((report, problems == 0))
}
