//! In-process rate limits per client IP address (fixed windows): the coarse
//! per-minute guard on `/v1/auth/` requests. Limits that must hold across
//! API nodes (failed logins, code entries, codes sent per destination and
//! per IP) live in the database instead (`auth::flows`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, web};

use crate::edge::client_ip::TrustedProxies;
use crate::problem::{ApiError, ProblemCode};
use crate::state::AppState;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Any request to /v1/auth/.
    AuthRequests,
    /// A request that sends a code or link.
    CodeSends,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// Counters per (scope, IP).
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(Scope, IpAddr), Window>>,
}

impl RateLimiter {
    /// Counts one request; `Err(seconds)` when over `limit` per `window`,
    /// with the seconds until the window ends.
    pub fn hit(&self, scope: Scope, ip: IpAddr, limit: u32, window: Duration) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, w| now.duration_since(w.started) < window);
        }
        let entry = windows.entry((scope, ip)).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= window {
            *entry = Window {
                started: now,
                count: 0,
            };
        }
        if entry.count >= limit {
            let left = window.saturating_sub(now.duration_since(entry.started));
            return Err(left.as_secs().max(1));
        }
        entry.count += 1;
        Ok(())
    }
}

/// The problem answered when a limit is hit.
pub fn rate_limited(retry_after: u64) -> ApiError {
    let error = ApiError::new(ProblemCode::RateLimited).detail(
        format!("Trop de requêtes : réessayez dans {retry_after} s."),
        format!("Too many requests: retry in {retry_after} s."),
    );
    match HeaderValue::from_str(&retry_after.to_string()) {
        Ok(value) => error.header(RETRY_AFTER, value),
        Err(_) => error,
    }
}

/// The caller's IP address: the TCP peer, or the client a trusted proxy
/// names (`crate::edge::client_ip`).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.trusted_proxies.client_of(req),
        None => TrustedProxies::default().client_of(req),
    }
}

/// Middleware for the /v1/auth/ scope: the per-IP request limit.
pub async fn limit_auth_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let ip = client_ip(req.request());
        let limit = state.auth_limits.requests_per_minute_per_ip;
        if let Err(retry_after) =
            state
                .limiter
                .hit(Scope::AuthRequests, ip, limit, Duration::from_secs(60))
        {
            return Ok(req.error_response(rate_limited(retry_after)));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_refuses_with_the_wait() {
        let limiter = RateLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        let window = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.hit(Scope::AuthRequests, ip, 3, window).is_ok());
        }
        let wait = limiter.hit(Scope::AuthRequests, ip, 3, window).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.hit(Scope::AuthRequests, other, 3, window).is_ok());
        assert!(limiter.hit(Scope::CodeSends, ip, 3, window).is_ok());
        assert!(
            limiter
                .hit(Scope::AuthRequests, ip, 3, Duration::ZERO)
                .is_ok()
        );
    }
}
