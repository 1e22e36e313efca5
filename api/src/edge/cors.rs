//! CORS for third-party frontends: exact-match allowed origins (or `*`).

use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::problem::{ApiError, ProblemCode};

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str =
    "authorization, content-type, accept-language, idempotency-key, x-request-id";
const EXPOSED_HEADERS: &str = "x-request-id, retry-after, location, www-authenticate";

/// Which browser origins may call the API.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
}

impl CorsPolicy {
    /// From a list of origins (`https://app.example.com`); `*` allows any.
    pub fn new(origins: &[String]) -> Self {
        let any = origins.iter().any(|o| o.trim() == "*");
        let origins = origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| *o != "*" && !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self { any, origins }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The answer to a preflight request, or `None` when `req` is not one.
    pub fn preflight(&self, req: &ServiceRequest) -> Option<Result<HttpResponse, ApiError>> {
        if req.method() != Method::OPTIONS
            || !req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = req.headers().get(header::ORIGIN)?;
        if !self.allows(origin) {
            return Some(Err(ApiError::new(ProblemCode::OriginNotAllowed).detail(
                "Cette origine n'est pas autorisée à appeler l'API.",
                "This origin is not allowed to call the API.",
            )));
        }
        Some(Ok(HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .finish()))
    }

    /// Adds the CORS answer headers when `origin` is allowed.
    pub fn decorate(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if !self.allows(origin) {
            return;
        }
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}
