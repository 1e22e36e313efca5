//! In-process rate limits per client IP address (fixed windows): the coarse
//! per-minute flood guard on `/v1/auth/` routes, one bucket per purpose
//! (sign-in attempts, code sends, registrations, challenges, session upkeep)
//! so that one purpose used up never blocks another. Each route is given
//! its purpose in [`purpose_of`]; a request that matches no route (a wrong
//! method, an unknown path) is not counted, so it answers 405 or 404. Limits
//! that must hold across API nodes (failed logins, code entries, codes sent
//! per destination and per IP) live in the database instead
//! (`auth::flows`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, web};

use crate::config::AuthLimits;
use crate::edge::client_ip::TrustedProxies;
use crate::problem::{ApiError, ProblemCode};
use crate::state::AppState;

/// What a limit counts: the purpose of an auth route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Presenting a secret to open a session: password sign-in (customer
    /// and staff), a sign-in code, a password reset, a staff setup token.
    SignIn,
    /// Asking for a code or link to be sent: passwordless start, forgotten
    /// password.
    CodeSends,
    /// Setting up a customer's first access: registration, its code,
    /// activation by letter.
    Registrations,
    /// Asking for a proof-of-work challenge.
    Challenges,
    /// Keeping or ending a session: refresh, logout.
    Sessions,
}

/// The purpose of the `/v1/auth/` route `method path`, `None` when no route
/// matches (the request then answers 404 or 405, uncounted).
pub fn purpose_of(method: &str, path: &str) -> Option<Scope> {
    let route = path.strip_prefix("/v1/auth")?;
    Some(match (method, route) {
        (
            "POST",
            "/login" | "/staff/login" | "/otp/verify" | "/password/reset" | "/staff/setup",
        ) => Scope::SignIn,
        ("POST", "/otp/start" | "/password/forgot") => Scope::CodeSends,
        ("POST", "/register" | "/register/verify" | "/activate") => Scope::Registrations,
        ("GET", "/challenge") => Scope::Challenges,
        ("POST", "/refresh" | "/logout") => Scope::Sessions,
        _ => return None,
    })
}

impl AuthLimits {
    /// The requests one IP address may make per minute for `scope`.
    pub fn per_minute(&self, scope: Scope) -> u32 {
        match scope {
            Scope::SignIn => self.sign_ins_per_minute_per_ip,
            Scope::CodeSends => self.code_sends_per_minute_per_ip,
            Scope::Registrations => self.registrations_per_minute_per_ip,
            Scope::Challenges | Scope::Sessions => self.requests_per_minute_per_ip,
        }
    }
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

/// Middleware for the /v1/auth/ scope: the per-IP limit of the route's
/// purpose. A request for no route passes uncounted to the router's 404 or
/// 405.
pub async fn limit_auth_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let purpose = purpose_of(req.method().as_str(), req.path());
    if let (Some(scope), Some(state)) = (purpose, req.app_data::<web::Data<AppState>>()) {
        let ip = client_ip(req.request());
        let limit = state.auth_limits.per_minute(scope);
        if let Err(retry_after) = state.limiter.hit(scope, ip, limit, Duration::from_secs(60)) {
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
            assert!(limiter.hit(Scope::SignIn, ip, 3, window).is_ok());
        }
        let wait = limiter.hit(Scope::SignIn, ip, 3, window).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.hit(Scope::SignIn, other, 3, window).is_ok());
        assert!(limiter.hit(Scope::CodeSends, ip, 3, window).is_ok());
        assert!(limiter.hit(Scope::SignIn, ip, 3, Duration::ZERO).is_ok());
    }

    #[test]
    fn every_auth_operation_has_a_purpose_and_nothing_else_does() {
        let spec = crate::openapi::spec();
        let mut seen = 0;
        for (path, item) in &spec.paths.paths {
            let ops = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in ops {
                let purpose = purpose_of(method, path);
                if present && path.starts_with("/v1/auth/") {
                    assert!(purpose.is_some(), "{method} {path} has no purpose");
                    seen += 1;
                } else {
                    assert!(purpose.is_none(), "{method} {path} is not an auth route");
                }
            }
        }
        assert!(seen >= 13, "{seen} auth operations");
        assert_eq!(purpose_of("GET", "/v1/auth/login"), None);
        assert_eq!(purpose_of("POST", "/v1/auth/login/"), None);
        assert_eq!(purpose_of("POST", "/v1/me/login"), None);
    }
}
