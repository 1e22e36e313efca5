//! Webhooks in the serving process: the rules the admin routes check
//! endpoint URLs with, the dispatcher thread `guichet serve` runs, its
//! `/metrics` lines, and the development receiver (`guichet dev
//! webhook-receiver`).

pub mod receiver;

use std::fmt::Write as _;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use guichet_domain::Clock;
use guichet_domain::webhooks::{AddressPolicy, EndpointUrl, Forbidden, Host, UrlError};
use guichet_jobs::notify::OutboxKey;
use guichet_jobs::runner::Periodic;
use guichet_jobs::webhooks::{Counters, WebhookRun};
use guichet_store::Store;

use crate::config::WebhookArgs;
use crate::problem::{ApiError, ProblemCode};

/// What the admin routes and `/metrics` need of webhooks.
#[derive(Debug, Clone, Default)]
pub struct WebhookState {
    /// `--webhook-allow-http`.
    pub allow_http: bool,
    /// Internal addresses are refused but for `--webhook-allow-address`.
    pub policy: AddressPolicy,
    /// Deliveries by outcome, counted by this process's dispatcher.
    pub counters: Arc<Counters>,
}

impl WebhookState {
    pub fn new(args: &WebhookArgs) -> WebhookState {
        WebhookState {
            allow_http: args.webhook_allow_http,
            policy: args.policy(),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Reads an endpoint URL and checks where it leads: its host is
    /// resolved (blocking: call it off the async threads) and every address
    /// must be allowed. A name that does not resolve now is accepted: each
    /// delivery resolves and checks it again.
    pub fn vet(&self, url: &str) -> Result<EndpointUrl, ApiError> {
        let url = EndpointUrl::parse(url, self.allow_http).map_err(url_problem)?;
        let addresses: Vec<IpAddr> = match url.host() {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => (name.as_str(), url.port())
                .to_socket_addrs()
                .map(|list| list.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        for ip in addresses {
            if let Err(why) = self.policy.check(ip) {
                return Err(forbidden(ip, why));
            }
        }
        Ok(url)
    }
}

fn url_problem(e: UrlError) -> ApiError {
    let code = match e {
        UrlError::HttpsRequired => "https_required",
        UrlError::TooLong => "too_long",
        _ => "invalid",
    };
    ApiError::new(ProblemCode::ValidationFailed)
        .detail(
            match e {
                UrlError::HttpsRequired => "L'URL doit commencer par https://.",
                UrlError::TooLong => "L'URL dépasse 2048 octets.",
                UrlError::Scheme => "L'URL doit commencer par https:// ou http://.",
                UrlError::UserInfo => "L'URL ne peut pas contenir d'identifiants (user:password@).",
                UrlError::Fragment => "L'URL ne peut pas contenir de fragment (#...).",
                UrlError::Character => "L'URL contient un caractère à encoder en pourcentage.",
                UrlError::Host => "L'URL n'a pas d'hôte valide.",
                UrlError::Port => "Le port de l'URL doit aller de 1 à 65535.",
            },
            e.to_string(),
        )
        .field("url", code)
}

fn forbidden(ip: IpAddr, why: Forbidden) -> ApiError {
    ApiError::new(ProblemCode::WebhookUrlForbidden)
        .detail(
            format!(
                "L'hôte de l'URL mène à {ip}, une adresse interne ({why}) : les webhooks n'y sont pas envoyés."
            ),
            format!(
                "The URL's host leads to {ip}, an internal address ({why}): webhooks are not sent there."
            ),
        )
        .field("url", "forbidden_address")
}

/// Starts the dispatcher thread of `guichet serve` (none with
/// `--webhook-interval-ms 0`).
pub fn spawn(
    args: &WebhookArgs,
    state: &WebhookState,
    store: Store,
    clock: Arc<dyn Clock>,
    secret_key: &[u8],
) -> Option<Periodic> {
    (args.webhook_interval_ms > 0).then(|| {
        WebhookRun::new(
            store,
            clock,
            OutboxKey::derive(secret_key),
            args.dispatcher(),
            state.counters.clone(),
        )
        .spawn(std::time::Duration::from_millis(args.webhook_interval_ms))
    })
}

/// The `/metrics` lines of webhooks: deliveries by outcome (this process),
/// and the queue (the database's, shared by every node).
pub fn render_metrics(
    counters: &Counters,
    queue: Option<(i64, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP guichet_webhook_deliveries_total Webhook delivery attempts by this process, by outcome (succeeded: 2xx; retrying: failed, tried again later; failed: failed and given up).\n# TYPE guichet_webhook_deliveries_total counter"
    );
    for (outcome, counter) in [
        ("succeeded", &counters.succeeded),
        ("retrying", &counters.retrying),
        ("failed", &counters.failed),
    ] {
        let _ = writeln!(
            out,
            "guichet_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    if let Some((depth, oldest)) = queue {
        let _ = writeln!(
            out,
            "# HELP guichet_webhook_queue_depth Webhook deliveries pending (due now or waiting for a retry).\n# TYPE guichet_webhook_queue_depth gauge\nguichet_webhook_queue_depth {depth}"
        );
        let age = oldest.map_or(0.0, |at| {
            (now - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        let _ = writeln!(
            out,
            "# HELP guichet_webhook_oldest_pending_seconds How long the longest-waiting due webhook delivery has been due (0 when none is).\n# TYPE guichet_webhook_oldest_pending_seconds gauge\nguichet_webhook_oldest_pending_seconds {age}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_outcomes_and_show_the_queue() {
        let counters = Counters::default();
        counters.succeeded.fetch_add(3, Ordering::Relaxed);
        counters.failed.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let text = render_metrics(
            &counters,
            Some((7, Some(now - chrono::Duration::seconds(12)))),
            now,
        );
        assert!(text.contains("guichet_webhook_deliveries_total{outcome=\"succeeded\"} 3"));
        assert!(text.contains("guichet_webhook_deliveries_total{outcome=\"retrying\"} 0"));
        assert!(text.contains("guichet_webhook_deliveries_total{outcome=\"failed\"} 1"));
        assert!(text.contains("guichet_webhook_queue_depth 7"));
        assert!(text.contains("guichet_webhook_oldest_pending_seconds 12"));
        let idle = render_metrics(&counters, Some((0, None)), now);
        assert!(idle.contains("guichet_webhook_oldest_pending_seconds 0"));
    }

    #[test]
    fn internal_hosts_are_refused_unless_allowed() {
        let state = WebhookState {
            allow_http: true,
            ..WebhookState::default()
        };
        for url in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
            "http://localhost:9/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let e = state.vet(url).unwrap_err();
            assert_eq!(e.code, ProblemCode::WebhookUrlForbidden, "{url}");
        }
        let allowed = WebhookState {
            allow_http: true,
            policy: AddressPolicy::new(vec!["127.0.0.1".parse().unwrap()]),
            ..WebhookState::default()
        };
        assert!(allowed.vet("http://127.0.0.1:8/").is_ok());
        let https_only = WebhookState::default();
        assert_eq!(
            https_only.vet("http://93.184.215.14/").unwrap_err().code,
            ProblemCode::ValidationFailed
        );
        assert!(https_only.vet("https://93.184.215.14/hook").is_ok());
    }
}
