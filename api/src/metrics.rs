//! Prometheus metrics: request counts and latency histograms per route,
//! method and status, and the database pool's state.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use guichet_store::PoolState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Non-cumulative counts per bucket; the last slot is "+Inf".
    buckets: [u64; BUCKETS.len() + 1],
}

/// The process's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<HashMap<Key, Series>>,
}

impl Metrics {
    /// Records one answered request. `route` is the matched route template
    /// (never the raw path, to keep the label set bounded).
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        let key = Key {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        entry.buckets[slot] += 1;
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, pool: PoolState, backend: &str) -> String {
        let mut snapshot: Vec<(Key, Series)> = {
            let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
            series.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        snapshot.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP guichet_build_info Version and storage backend of this process.\n# TYPE guichet_build_info gauge\nguichet_build_info{{version=\"{}\",backend=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            backend
        );
        let _ = writeln!(
            out,
            "# HELP guichet_http_requests_total Requests answered, by route, method and status.\n# TYPE guichet_http_requests_total counter"
        );
        for (key, series) in &snapshot {
            let _ = writeln!(
                out,
                "guichet_http_requests_total{{{}}} {}",
                labels(key),
                series.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP guichet_http_request_duration_seconds Time to answer, by route, method and status.\n# TYPE guichet_http_request_duration_seconds histogram"
        );
        for (key, series) in &snapshot {
            let labels = labels(key);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += series.buckets[i];
                let _ = writeln!(
                    out,
                    "guichet_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "guichet_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                series.count
            );
            let _ = writeln!(
                out,
                "guichet_http_request_duration_seconds_sum{{{labels}}} {}",
                series.sum_seconds
            );
            let _ = writeln!(
                out,
                "guichet_http_request_duration_seconds_count{{{labels}}} {}",
                series.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP guichet_db_pool_connections Open database connections.\n# TYPE guichet_db_pool_connections gauge\nguichet_db_pool_connections {}",
            pool.connections
        );
        let _ = writeln!(
            out,
            "# HELP guichet_db_pool_idle_connections Idle database connections.\n# TYPE guichet_db_pool_idle_connections gauge\nguichet_db_pool_idle_connections {}",
            pool.idle
        );
        let _ = writeln!(
            out,
            "# HELP guichet_db_pool_max_connections Pool size limit.\n# TYPE guichet_db_pool_max_connections gauge\nguichet_db_pool_max_connections {}",
            pool.max_size
        );
        out
    }
}

fn labels(key: &Key) -> String {
    format!(
        "route=\"{}\",method=\"{}\",status=\"{}\"",
        escape(&key.route),
        escape(&key.method),
        key.status
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let metrics = Metrics::default();
        metrics.observe("/healthz", "GET", 200, Duration::from_micros(500));
        metrics.observe("/healthz", "GET", 200, Duration::from_millis(30));
        metrics.observe("/healthz", "GET", 200, Duration::from_secs(20));
        let text = metrics.render(
            PoolState {
                connections: 2,
                idle: 1,
                max_size: 10,
            },
            "sqlite",
        );
        let l = "route=\"/healthz\",method=\"GET\",status=\"200\"";
        assert!(text.contains(&format!("guichet_http_requests_total{{{l}}} 3")));
        assert!(text.contains(&format!(
            "guichet_http_request_duration_seconds_bucket{{{l},le=\"0.001\"}} 1"
        )));
        assert!(text.contains(&format!(
            "guichet_http_request_duration_seconds_bucket{{{l},le=\"0.05\"}} 2"
        )));
        assert!(text.contains(&format!(
            "guichet_http_request_duration_seconds_bucket{{{l},le=\"10\"}} 2"
        )));
        assert!(text.contains(&format!(
            "guichet_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3"
        )));
        assert!(text.contains("guichet_db_pool_connections 2"));
        assert!(text.contains("guichet_db_pool_max_connections 10"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
