//! The load generator: N keep-alive connections, each sending a request
//! back to back until the deadline, recording every latency. The request
//! is the same every time, or the next of a prepared list shared by the
//! connections ([`Requests`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::http::{Conn, WireRequest};

/// A request that takes longer than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed request, so that a dead server is not hammered in a
/// tight loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What the connections send.
#[derive(Debug, Clone)]
pub enum Requests {
    /// One request, again and again.
    Same(Arc<WireRequest>),
    /// Each request of a list once, in order, whichever connection is free
    /// takes the next (requests that change the server's state, such as
    /// payments with their own idempotency key).
    Each(Arc<Sequence>),
}

impl From<Arc<WireRequest>> for Requests {
    fn from(request: Arc<WireRequest>) -> Self {
        Requests::Same(request)
    }
}

/// Prepared requests consumed in order, across loads (warm-ups included):
/// each is sent once. When none is left, a connection counts an
/// `exhausted` error and stops.
#[derive(Debug)]
pub struct Sequence {
    requests: Vec<WireRequest>,
    next: AtomicUsize,
}

impl Sequence {
    pub fn new(requests: Vec<WireRequest>) -> Sequence {
        Sequence {
            requests,
            next: AtomicUsize::new(0),
        }
    }

    /// How many were handed out.
    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.requests.len())
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    fn take(&self) -> Option<&WireRequest> {
        self.requests.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// What one measurement window produced.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Requests started in the window, successful or not.
    pub requests: u64,
    /// Non-2xx answers, I/O and protocol errors, timeouts.
    pub errors: u64,
    /// `errors` by kind: `status_503`, `io`, `protocol`, `timeout`.
    pub error_kinds: BTreeMap<String, u64>,
    /// Latencies of the successful requests in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The first error seen, to show the user.
    pub first_error: Option<String>,
}

impl LoadOutcome {
    fn error(&mut self, kind: String, detail: impl FnOnce() -> String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail());
        }
    }

    /// Adds `other` (latencies are no longer sorted).
    pub fn merge(&mut self, other: LoadOutcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (kind, count) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs the warm-up then the measured window. Connections stay open from
/// one to the other; only requests started inside the window count.
pub async fn run(config: LoadConfig, requests: impl Into<Requests>) -> Result<LoadOutcome, String> {
    let requests = requests.into();
    let measure_from = Instant::now() + config.warmup;
    let until = measure_from + config.duration;
    let mut tasks = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        tasks.push(tokio::spawn(drive(
            config.addr,
            requests.clone(),
            measure_from,
            until,
        )));
    }
    let mut total = LoadOutcome::default();
    for task in tasks {
        let outcome = task
            .await
            .map_err(|e| format!("a load connection failed: {e}"))?;
        total.merge(outcome);
    }
    total.latencies_us.sort_unstable();
    Ok(total)
}

async fn drive(
    addr: SocketAddr,
    requests: Requests,
    measure_from: Instant,
    until: Instant,
) -> LoadOutcome {
    let mut conn = Conn::new(addr);
    let mut body = Vec::new();
    let mut outcome = LoadOutcome::default();
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let measured = started >= measure_from;
        let request = match &requests {
            Requests::Same(request) => &**request,
            Requests::Each(sequence) => match sequence.take() {
                Some(request) => request,
                None => {
                    if measured {
                        outcome.requests += 1;
                        outcome.error("exhausted".to_owned(), || {
                            format!("all {} prepared requests were sent", sequence.len())
                        });
                    }
                    break;
                }
            },
        };
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, conn.round_trip(request, &mut body)).await;
        let elapsed = started.elapsed();
        if measured {
            outcome.requests += 1;
        }
        match result {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                if measured {
                    let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
                    outcome.latencies_us.push(us);
                }
            }
            Ok(Ok(status)) => {
                if measured {
                    outcome.error(format!("status_{status}"), || {
                        format!(
                            "status {status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        )
                    });
                }
            }
            Ok(Err(e)) => {
                if measured {
                    outcome.error(e.kind.to_owned(), || e.to_string());
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                conn.reset();
                if measured {
                    outcome.error("timeout".to_owned(), || {
                        format!("no answer within {REQUEST_TIMEOUT:?}")
                    });
                }
            }
        }
    }
    outcome
}

/// Nearest-rank percentile of sorted values: the smallest value such that
/// at least `p` percent of the values are at or below it.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let n = sorted.len();
    // p * n first: exact for the integral p used here.
    let rank = (p * n as f64 / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 50.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 99.0), Some(4));
        let thousand: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99.0), Some(990));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1], 101.0), None);
    }

    /// Answers 200 and 503 in turn, closing the connection after every
    /// third answer.
    async fn fake_server(listener: tokio::net::TcpListener) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let counter = Arc::new(AtomicUsize::new(0));
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for answered in 1..=3 {
                    while crate::http::find_head_end(&buf).is_none() {
                        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    buf.clear();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let status = if n & 1 == 0 { "200 OK" } else { "503 Busy" };
                    let close = if answered == 3 {
                        "Connection: close\r\n"
                    } else {
                        ""
                    };
                    let response =
                        format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n{close}\r\nok");
                    if stream.write_all(response.as_bytes()).await.is_err() || !close.is_empty() {
                        return;
                    }
                }
            });
        }
    }

    #[test]
    fn load_counts_answers_and_survives_closed_connections() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(fake_server(listener));
            let config = LoadConfig {
                addr,
                connections: 2,
                warmup: Duration::ZERO,
                duration: Duration::from_millis(200),
            };
            let request = crate::http::RequestSpec::get("/x").encode("h").unwrap();
            run(config, Arc::new(request)).await.unwrap()
        });
        assert!(outcome.requests > 10, "{outcome:?}");
        assert_eq!(
            outcome.error_kinds.keys().collect::<Vec<_>>(),
            ["status_503"]
        );
        let successes = outcome.requests - outcome.errors;
        assert_eq!(outcome.latencies_us.len() as u64, successes);
        assert!(outcome.latencies_us.is_sorted());
        assert!(successes.abs_diff(outcome.errors) <= 2, "{outcome:?}");
    }

    /// Each prepared request is sent once, whichever connection sends it,
    /// and the connections stop when none is left.
    #[test]
    fn a_sequence_sends_each_request_once() {
        use std::sync::Mutex;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sequence = Arc::new(Sequence::new(
            (0..50)
                .map(|i| {
                    crate::http::RequestSpec::get(&format!("/pay/{i}"))
                        .encode("h")
                        .unwrap()
                })
                .collect(),
        ));
        let outcome = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server_seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let seen = Arc::clone(&server_seen);
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        loop {
                            while crate::http::find_head_end(&buf).is_none() {
                                if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                            let line = String::from_utf8_lossy(&buf)
                                .lines()
                                .next()
                                .map(str::to_owned);
                            seen.lock().unwrap().extend(line);
                            buf.clear();
                            let ok = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
                            if stream.write_all(ok).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            let config = LoadConfig {
                addr,
                connections: 4,
                warmup: Duration::ZERO,
                duration: Duration::from_secs(30),
            };
            run(config, Requests::Each(Arc::clone(&sequence)))
                .await
                .unwrap()
        });
        assert_eq!(sequence.taken(), 50);
        // 50 sent, and each connection found the list empty once.
        assert_eq!(outcome.latencies_us.len(), 50);
        assert_eq!(outcome.error_kinds["exhausted"], 4);
        assert_eq!(outcome.requests, 54);
        let mut lines = seen.lock().unwrap().clone();
        lines.sort();
        let mut want: Vec<String> = (0..50).map(|i| format!("GET /pay/{i} HTTP/1.1")).collect();
        want.sort();
        assert_eq!(lines, want);
    }

    #[test]
    fn outcomes_merge() {
        let mut a = LoadOutcome {
            requests: 3,
            latencies_us: vec![5, 1],
            ..LoadOutcome::default()
        };
        a.error("io".to_owned(), || "first".to_owned());
        let mut b = LoadOutcome {
            requests: 2,
            latencies_us: vec![3],
            ..LoadOutcome::default()
        };
        b.error("io".to_owned(), || "second".to_owned());
        b.error("status_503".to_owned(), || "third".to_owned());
        a.merge(b);
        assert_eq!(a.requests, 5);
        assert_eq!(a.errors, 3);
        assert_eq!(a.error_kinds["io"], 2);
        assert_eq!(a.error_kinds["status_503"], 1);
        assert_eq!(a.latencies_us, vec![5, 1, 3]);
        assert_eq!(a.first_error.as_deref(), Some("first"));
    }
}
