//! The webhook dispatcher: sends each pending delivery (an event to an
//! endpoint, queued in the transaction that recorded the event) to its
//! endpoint, signed the Standard Webhooks way, at least once, with retries.
//!
//! One pass:
//!
//! 1. **Claim** a batch of due deliveries with a lease
//!    ([`webhooks::claim`]: one atomic `UPDATE`, `FOR UPDATE SKIP LOCKED`
//!    on PostgreSQL), so several dispatchers (several nodes) never send the
//!    same attempt at once, and a dead one's claims come back when the lease
//!    ends.
//! 2. **Send** them on a small pool of threads: each thread takes one
//!    endpoint's deliveries and sends them in order, one after the other
//!    (per-endpoint order is kept as far as retries allow). The URL's host
//!    is resolved and each address checked against the [`AddressPolicy`]
//!    by the HTTP client's resolver; the connection goes to the checked
//!    address and no other (no second resolution: DNS rebinding cannot slip
//!    a private address in), with the original `Host` and TLS server name.
//!    No attempt starts unless it can end (15 s) before the lease does.
//! 3. **Record** every attempt of the batch in one transaction: the
//!    delivery succeeds (2xx), is retried later
//!    ([`guichet_domain::webhooks::next_retry`]) or is given up after 3
//!    days; an endpoint failing for 3 days is disabled and its
//!    organization's admins are e-mailed.

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use guichet_domain::webhooks::{self as rules, AddressPolicy, Forbidden, Secret};
use guichet_domain::{Clock, identity::StaffRole};
use guichet_store::repo::webhooks::{self, Due, Outcome};
use guichet_store::repo::{organizations, staff};
use guichet_store::{DbConnection, Store, StoreError};
use serde::Serialize;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::notify::{self, Channel, OutboxKey, Template};
use crate::runner::{Ending, Lease, Periodic};

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole attempt may take (resolution, connection, request,
/// answer).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an answer is read.
pub const READ_LIMIT: u64 = 4096;
/// How much of an answer the delivery log keeps.
pub const LOGGED_ANSWER: usize = 1024;
/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = "Guichet-Webhooks/1";

/// Deliveries by outcome, since the process started (for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Attempts answered with a 2xx.
    pub succeeded: AtomicU64,
    /// Failed attempts that will be retried.
    pub retrying: AtomicU64,
    /// Failed attempts after which the delivery was given up.
    pub failed: AtomicU64,
}

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which addresses deliveries may go to.
    pub policy: AddressPolicy,
    /// Whether `http://` endpoints may be delivered to.
    pub allow_http: bool,
    /// Deliveries claimed at once.
    pub batch: i64,
    /// Threads sending at once (at most one per endpoint).
    pub concurrency: usize,
    /// How long a claim lasts.
    pub lease: Duration,
    /// Multiplies the retry delays and the 3-day limits (1.0; tests
    /// shorten them).
    pub backoff_scale: f64,
    /// The nice value the dispatcher thread of `guichet serve` and its
    /// senders take (0: the process's; Linux only), so that while it
    /// drains a backlog the API's workers get the CPU first.
    pub nice: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: AddressPolicy::default(),
            allow_http: false,
            batch: 500,
            concurrency: 16,
            lease: Duration::from_secs(120),
            backoff_scale: 1.0,
            nice: 0,
        }
    }
}

/// What a dispatcher run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookReport {
    /// Deliveries claimed.
    pub claimed: u64,
    /// Attempts answered with a 2xx.
    pub succeeded: u64,
    /// Failed attempts, tried again later.
    pub retrying: u64,
    /// Failed attempts after which the delivery was given up (3 days).
    pub failed: u64,
    /// Claimed but not sent (stop asked, or not enough lease left):
    /// released.
    pub interrupted: u64,
    /// Attempts whose outcome could not be recorded (their endpoint was
    /// deleted meanwhile, or the lease ran out).
    pub lost: u64,
    /// Endpoints disabled by this run (failing for 3 days).
    pub endpoints_disabled: u64,
    /// After the run: deliveries due and still pending.
    pub left_pending: u64,
    /// Of those, the ones another (possibly dead) dispatcher holds.
    pub held_elsewhere: u64,
    /// When the last of those leases ends.
    pub held_until: Option<DateTime<Utc>>,
    /// Whether the run was asked to stop before the end.
    pub stopped: bool,
}

impl WebhookReport {
    /// Adds the counts of one batch.
    fn add(&mut self, batch: &WebhookReport) {
        self.succeeded += batch.succeeded;
        self.retrying += batch.retrying;
        self.failed += batch.failed;
        self.interrupted += batch.interrupted;
        self.lost += batch.lost;
        self.endpoints_disabled += batch.endpoints_disabled;
    }

    /// Stopped, unfinished (due deliveries left, or attempts failed and
    /// retried later) or done.
    pub fn ending(&self) -> Ending {
        if self.stopped {
            Ending::Stopped
        } else if self.left_pending > 0 || self.retrying > 0 || self.lost > 0 {
            Ending::Unfinished
        } else {
            Ending::Done
        }
    }
}

/// The dispatcher: its store, clock, key (to open secrets), settings,
/// counters and HTTP client.
#[derive(Clone)]
pub struct WebhookRun {
    store: Store,
    clock: Arc<dyn Clock>,
    key: OutboxKey,
    settings: Settings,
    counters: Arc<Counters>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for WebhookRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRun")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The resolver of deliveries: resolves the URL's host (an address literal
/// is taken as it is) and keeps only the addresses the policy permits; the
/// client connects to one of those, never resolving again.
#[derive(Debug)]
struct VettingResolver {
    policy: AddressPolicy,
    inner: DefaultResolver,
}

/// Every address of the host is forbidden.
#[derive(Debug)]
struct AddressForbidden(IpAddr, Forbidden);

impl std::fmt::Display for AddressForbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "address forbidden: {} is a {}", self.0, self.1)
    }
}

impl std::error::Error for AddressForbidden {}

impl Resolver for VettingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.host().and_then(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        });
        let resolved = match literal {
            Some(ip) => {
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("http") => 80,
                    _ => 443,
                });
                let mut list = self.inner.empty();
                list.push(std::net::SocketAddr::new(ip, port));
                list
            }
            None => self.inner.resolve(uri, config, timeout)?,
        };
        let mut kept = self.inner.empty();
        let mut refused = None;
        for address in resolved.iter() {
            match self.policy.check(address.ip()) {
                Ok(()) => kept.push(*address),
                Err(why) => refused = Some(AddressForbidden(address.ip(), why)),
            }
        }
        match refused {
            Some(refused) if kept.is_empty() => Err(ureq::Error::Other(Box::new(refused))),
            _ if kept.is_empty() => Err(ureq::Error::HostNotFound),
            _ => Ok(kept),
        }
    }
}

/// The HTTP client of deliveries: connect within 5 s, everything within
/// 15 s, no redirect followed, no proxy, statuses as answers.
fn agent(policy: AddressPolicy) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TOTAL_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(USER_AGENT)
        .max_idle_connections(256)
        .max_idle_connections_per_host(64)
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::new(),
        VettingResolver {
            policy,
            inner: DefaultResolver::default(),
        },
    )
}

/// One claimed delivery, sent.
struct Sent {
    due: Due,
    /// `None` when it was not sent (released).
    result: Option<Attempted>,
}

struct Attempted {
    started_at: DateTime<Utc>,
    succeeded: bool,
    http_status: Option<i32>,
    latency_ms: i32,
    response: String,
    error: Option<String>,
}

impl WebhookRun {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        key: OutboxKey,
        settings: Settings,
        counters: Arc<Counters>,
    ) -> WebhookRun {
        let agent = agent(settings.policy.clone());
        WebhookRun {
            store,
            clock,
            key,
            settings,
            counters,
            agent,
        }
    }

    /// Sends everything due, then returns. Fails (aborts) when the database
    /// is unavailable.
    pub fn run(&self) -> Result<WebhookReport, String> {
        self.run_until(&AtomicBool::new(false))
    }

    /// [`WebhookRun::run`], ending early once `stop` is set (after the
    /// attempts in flight; what is held is released).
    pub fn run_until(&self, stop: &AtomicBool) -> Result<WebhookReport, String> {
        let mut report = WebhookReport::default();
        let unavailable = |e: StoreError| format!("webhook dispatch aborted: {e}");
        // A batch's attempts are recorded on a thread of their own while the
        // next batch is claimed and sent (one endpoint's deliveries of the
        // next batch still go after those of this one).
        std::thread::scope(|scope| {
            let mut recording: Option<std::thread::ScopedJoinHandle<'_, _>> = None;
            let join = |recording: Option<
                std::thread::ScopedJoinHandle<'_, Result<WebhookReport, StoreError>>,
            >,
                        report: &mut WebhookReport| {
                match recording.map(|handle| handle.join()) {
                    None => Ok(()),
                    Some(Ok(Ok(delta))) => {
                        report.add(&delta);
                        Ok(())
                    }
                    Some(Ok(Err(e))) => Err(unavailable(e)),
                    Some(Err(_)) => Err("webhook dispatch aborted: recording panicked".to_owned()),
                }
            };
            loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let lease = Lease::new("whl", self.settings.lease);
                let claimed_at = Instant::now();
                let now = self.clock.now();
                let claimed = self.store.conn().and_then(|mut conn| {
                    webhooks::claim(
                        &mut conn,
                        now,
                        lease.until(now),
                        self.settings.batch,
                        &lease.token,
                    )
                });
                let claimed = match claimed {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        join(recording.take(), &mut report)?;
                        return Err(unavailable(e));
                    }
                };
                if claimed.is_empty() {
                    break;
                }
                report.claimed += claimed.len() as u64;
                let sent = self.send_all(claimed, stop, claimed_at);
                join(recording.take(), &mut report)?;
                recording = Some(scope.spawn(move || self.record(sent, &lease)));
            }
            join(recording.take(), &mut report)
        })?;
        report.stopped = stop.load(Ordering::SeqCst);
        let mut conn = self.store.conn().map_err(unavailable)?;
        let (left, held, until) =
            webhooks::pending_left(&mut conn, self.clock.now()).map_err(unavailable)?;
        report.left_pending = u64::try_from(left).unwrap_or(0);
        report.held_elsewhere = u64::try_from(held).unwrap_or(0);
        report.held_until = until;
        Ok(report)
    }

    /// Sends a batch: one queue of deliveries per endpoint, in claim order,
    /// taken by up to `concurrency` threads.
    fn send_all(&self, claimed: Vec<Due>, stop: &AtomicBool, claimed_at: Instant) -> Vec<Sent> {
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Due>> = HashMap::new();
        for due in claimed {
            if !groups.contains_key(&due.endpoint_id) {
                order.push(due.endpoint_id.clone());
            }
            groups.entry(due.endpoint_id.clone()).or_default().push(due);
        }
        let queue: Mutex<VecDeque<Vec<Due>>> = Mutex::new(
            order
                .iter()
                .filter_map(|endpoint| groups.remove(endpoint))
                .collect(),
        );
        let results: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
        // The last instant an attempt may start and still end in the lease.
        let deadline = claimed_at
            + self
                .settings
                .lease
                .saturating_sub(TOTAL_TIMEOUT + Duration::from_secs(2));
        let threads = self.settings.concurrency.clamp(1, order.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        let Some(group) = next else { break };
                        let sent = self.send_group(group, stop, deadline);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(sent);
                    }
                });
            }
        });
        results.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one endpoint's deliveries in order. After an attempt that got
    /// no answer (timeout, refused connection, forbidden address) the rest
    /// wait for the next pass instead of waiting out the same failure.
    fn send_group(&self, group: Vec<Due>, stop: &AtomicBool, deadline: Instant) -> Vec<Sent> {
        let mut secrets: Option<Result<Vec<Secret>, String>> = None;
        let mut unreachable = false;
        let mut out = Vec::with_capacity(group.len());
        for due in group {
            if unreachable || stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
                out.push(Sent { due, result: None });
                continue;
            }
            let keys = secrets.get_or_insert_with(|| self.open_secrets(&due));
            let result = self.attempt(&due, keys);
            unreachable = !result.succeeded && result.http_status.is_none();
            out.push(Sent {
                due,
                result: Some(result),
            });
        }
        out
    }

    /// The endpoint's valid secrets: the current one, and the previous one
    /// until it expires.
    fn open_secrets(&self, due: &Due) -> Result<Vec<Secret>, String> {
        let open = |sealed: &str| {
            self.key
                .open(sealed)
                .ok()
                .and_then(|text| Secret::parse(&text).ok())
                .ok_or_else(|| {
                    "the endpoint's secret does not open with this server's secret key".to_owned()
                })
        };
        let mut keys = vec![open(&due.secret_sealed)?];
        if let (Some(previous), Some(until)) =
            (&due.previous_secret_sealed, due.previous_secret_expires_at)
            && until > self.clock.now()
        {
            keys.push(open(previous)?);
        }
        Ok(keys)
    }

    fn attempt(&self, due: &Due, secrets: &Result<Vec<Secret>, String>) -> Attempted {
        let started_at = self.clock.now();
        let started = Instant::now();
        let failed = |error: String| Attempted {
            started_at,
            succeeded: false,
            http_status: None,
            latency_ms: 0,
            response: String::new(),
            error: Some(error),
        };
        let secrets = match secrets {
            Ok(secrets) => secrets,
            Err(e) => return failed(e.clone()),
        };
        if !self.settings.allow_http && due.url.to_ascii_lowercase().starts_with("http://") {
            return failed("plain http is not allowed (--webhook-allow-http)".into());
        }
        let body = due.event.envelope().to_string();
        let timestamp = started_at.timestamp();
        let refs: Vec<&Secret> = secrets.iter().collect();
        let signature = rules::signature_header(&refs, &due.event.id, timestamp, body.as_bytes());
        let sent = self
            .agent
            .post(&due.url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .send(body.as_bytes());
        let answer = sent.map(|response| {
            let status = response.status().as_u16();
            let mut bytes = Vec::new();
            // What the receiver says is informative only: a body that
            // breaks off does not change the status it gave.
            let _ = response
                .into_body()
                .into_reader()
                .take(READ_LIMIT)
                .read_to_end(&mut bytes);
            (status, bytes)
        });
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match answer {
            Ok((status, bytes)) => Attempted {
                started_at,
                succeeded: (200..300).contains(&status),
                http_status: Some(i32::from(status)),
                latency_ms,
                response: logged_answer(&bytes),
                error: None,
            },
            Err(e) => Attempted {
                latency_ms,
                ..failed(describe(&e))
            },
        }
    }

    /// Records a batch's attempts in one transaction, and releases what was
    /// not sent.
    fn record(&self, sent: Vec<Sent>, lease: &Lease) -> Result<WebhookReport, StoreError> {
        let mut report = WebhookReport::default();
        let now = self.clock.now();
        let scale = self.settings.backoff_scale;
        let disable_before = now
            - chrono::Duration::milliseconds(
                (rules::GIVE_UP_AFTER.num_milliseconds() as f64 * scale).round() as i64,
            );
        let mut released: Vec<&str> = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        // The last outcome per endpoint, in the batch's order.
        let mut health: Vec<(String, bool)> = Vec::new();
        for s in &sent {
            let Some(result) = &s.result else {
                released.push(&s.due.id);
                continue;
            };
            let attempt = s.due.attempts + 1;
            let first = s.due.first_attempt_at.unwrap_or(result.started_at);
            let next_retry_at = if result.succeeded {
                None
            } else {
                rules::next_retry(
                    u32::try_from(attempt).unwrap_or(u32::MAX),
                    first,
                    now,
                    scale,
                    rules::random_jitter(),
                )
            };
            match health.iter_mut().find(|(e, _)| *e == s.due.endpoint_id) {
                Some(entry) => entry.1 = result.succeeded,
                None => health.push((s.due.endpoint_id.clone(), result.succeeded)),
            }
            outcomes.push(Outcome {
                delivery_id: s.due.id.clone(),
                org_id: s.due.event.org_id.clone(),
                endpoint_id: s.due.endpoint_id.clone(),
                event_id: s.due.event.id.clone(),
                attempt,
                succeeded: result.succeeded,
                http_status: result.http_status,
                latency_ms: result.latency_ms,
                response: result.response.clone(),
                error: result.error.clone(),
                next_retry_at,
                started_at: result.started_at,
            });
        }
        report.interrupted += released.len() as u64;
        let mut conn = self.store.conn()?;
        let (recorded, disabled) = guichet_store::transaction(&mut conn, |conn| {
            let involved: Vec<&str> = sent.iter().map(|s| s.due.endpoint_id.as_str()).collect();
            let alive = webhooks::lock_endpoints(conn, &involved)?;
            let recorded = webhooks::record_all(conn, &outcomes, &lease.token, now)?;
            let mut disabled = 0u64;
            let healthy: Vec<&str> = health
                .iter()
                .filter(|(e, healthy)| *healthy && alive.contains(e))
                .map(|(e, _)| e.as_str())
                .collect();
            webhooks::mark_healthy(conn, &healthy)?;
            for (endpoint_id, _) in health
                .iter()
                .filter(|(e, healthy)| !*healthy && alive.contains(e))
            {
                if let Some(endpoint) =
                    webhooks::mark_failing(conn, endpoint_id, now, disable_before)?
                {
                    disabled += 1;
                    tell_admins(conn, &endpoint, now)?;
                }
            }
            if !released.is_empty() {
                webhooks::release(conn, &released, &lease.token)?;
            }
            Ok::<_, StoreError>((recorded, disabled))
        })?;
        report.endpoints_disabled += disabled;
        for (outcome, recorded) in outcomes.iter().zip(recorded) {
            let counter = if !recorded {
                report.lost += 1;
                continue;
            } else if outcome.succeeded {
                report.succeeded += 1;
                &self.counters.succeeded
            } else if outcome.next_retry_at.is_some() {
                report.retrying += 1;
                &self.counters.retrying
            } else {
                report.failed += 1;
                &self.counters.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// Runs the dispatcher on its own thread every `interval` (each pass
    /// sends everything due), until stopped.
    pub fn spawn(self, interval: Duration) -> Periodic {
        let mut nice = Some(self.settings.nice).filter(|n| *n != 0);
        Periodic::spawn("webhooks", interval, move |stop| {
            // On the thread's first pass: the threads it starts inherit it.
            if let Some(nice) = nice.take()
                && let Err(error) = crate::runner::lower_thread_priority(nice)
            {
                tracing::warn!(%error, nice, "cannot lower the webhook dispatcher's priority");
            }
            match self.run_until(stop.flag()) {
                Ok(report) if report.claimed > 0 => tracing::debug!(
                    claimed = report.claimed,
                    succeeded = report.succeeded,
                    retrying = report.retrying,
                    failed = report.failed,
                    endpoints_disabled = report.endpoints_disabled,
                    "webhook deliveries"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "webhook dispatch failed; trying again later"),
            }
        })
    }
}

/// E-mails the organization's enabled admins that `endpoint` was disabled.
fn tell_admins(
    conn: &mut DbConnection,
    endpoint: &webhooks::Endpoint,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let org = organizations::get(conn, &endpoint.org_id)?;
    tracing::warn!(endpoint = %endpoint.id, org = %org.id, "webhook endpoint failing for 3 days: disabled");
    for admin in staff::list(conn, &org.id)? {
        if admin.role != StaffRole::Admin || admin.disabled_at.is_some() {
            continue;
        }
        notify::queue(
            conn,
            Some(&org.id),
            Channel::Email,
            &admin.email,
            &Template::WebhookEndpointDisabled {
                org_name: org.name.clone(),
                endpoint_id: endpoint.id.clone(),
                url: endpoint.url.clone(),
            },
            org.locale,
            now,
        )?;
    }
    Ok(())
}

/// The first [`LOGGED_ANSWER`] bytes of an answer, as text (invalid UTF-8
/// replaced, cut on a character boundary).
fn logged_answer(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LOGGED_ANSWER)]).into_owned();
    let mut end = text.len().min(LOGGED_ANSWER);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What went wrong, for the delivery log (never a secret: the request's
/// headers are not part of any error).
fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(_) => "timeout".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::Other(inner) => match inner.downcast_ref::<AddressForbidden>() {
            Some(forbidden) => forbidden.to_string(),
            None => inner.to_string(),
        },
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        other => {
            let mut text = other.to_string();
            text.truncate(300);
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_first_kib_of_an_answer_on_a_character_boundary() {
        assert_eq!(logged_answer(b"ok"), "ok");
        let long = "é".repeat(1000);
        let kept = logged_answer(long.as_bytes());
        assert!(kept.len() <= LOGGED_ANSWER && kept.chars().all(|c| c == 'é'));
        assert_eq!(logged_answer(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn a_run_that_failed_attempts_is_unfinished() {
        let report = WebhookReport {
            retrying: 1,
            ..WebhookReport::default()
        };
        assert_eq!(report.ending(), Ending::Unfinished);
        assert_eq!(WebhookReport::default().ending(), Ending::Done);
    }
}
