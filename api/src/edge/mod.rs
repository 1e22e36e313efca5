//! What every request goes through before and after its handler: request
//! id, logging, size checks, CORS, metrics, `Cache-Control`, and rendering
//! every error as problem+json in the caller's language.

pub mod client_ip;
pub mod cors;
pub mod json;
pub mod routes;
pub mod strict;

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue,
};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use guichet_domain::Locale;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, ProblemCode};

/// The request id header, read from the client when well-formed and always
/// sent back.
pub const REQUEST_ID: &str = "x-request-id";

/// Limits and policies the edge applies, from configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub body_limit: usize,
    /// The largest document upload (routes of [`is_upload`]).
    pub upload_limit: u64,
    pub header_limit: usize,
    pub cors: cors::CorsPolicy,
}

/// The request's id, available to handlers through extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The language negotiated from `Accept-Language`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLocale(pub Locale);

fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| guichet_domain::ids::new_id("req"), str::to_owned)
}

fn head_size(req: &ServiceRequest) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len()
}

/// The body limit of the uploads that have their own (instead of
/// `--body-limit`); their handlers enforce it on the bytes read as well.
fn own_body_limit(req: &ServiceRequest) -> Option<usize> {
    (req.method() == actix_web::http::Method::PUT && req.path() == "/v1/admin/portal/logo")
        .then_some(guichet_domain::portal::LOGO_MAX_BYTES)
}

/// Refusals decided from the request head alone, before routing.
fn precheck(req: &ServiceRequest, config: &EdgeConfig) -> Option<ApiError> {
    if head_size(req) > config.header_limit {
        return Some(ApiError::new(ProblemCode::RequestHeaderTooLarge).detail(
            format!(
                "Les en-têtes de la requête dépassent {} octets.",
                config.header_limit
            ),
            format!("The request headers exceed {} bytes.", config.header_limit),
        ));
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if is_upload(req) {
        // The file plus what a multipart form wraps it in.
        let limit = config.upload_limit.saturating_add(UPLOAD_OVERHEAD);
        if declared.is_some_and(|n| n > limit) {
            return Some(json::payload_too_large(
                usize::try_from(config.upload_limit).unwrap_or(usize::MAX),
            ));
        }
    } else {
        let limit = own_body_limit(req).unwrap_or(config.body_limit);
        if declared.is_some_and(|n| n > limit as u64) {
            return Some(json::payload_too_large(limit));
        }
    }
    control_in_url(req)
}

/// Room for a multipart form's boundaries, headers and title around an
/// uploaded file.
pub const UPLOAD_OVERHEAD: u64 = 16 * 1024;

/// The routes whose body is a file (limited by `--document-max-bytes`,
/// not `--body-limit`; their handlers count the bytes as they stream).
pub fn is_upload(req: &ServiceRequest) -> bool {
    if req.method() != actix_web::http::Method::POST {
        return false;
    }
    let path = req.path();
    if path == "/v1/me/attachments" {
        return true;
    }
    path.strip_prefix("/v1/admin/customers/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(id, tail)| !id.is_empty() && tail == "documents")
}

/// The decoded form of a URL component: `%XX` escapes, and `+` as a space
/// in a query string. Invalid escapes stay as they are.
fn percent_decode(raw: &str, plus_is_space: bool) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A control character (NUL included; tab, CR and LF aside) in the decoded
/// path or in a query parameter's name or value: 400 `invalid_parameter`
/// naming the parameter, before any handler or database sees it.
fn control_in_url(req: &ServiceRequest) -> Option<ApiError> {
    use guichet_domain::free_text::is_refused_control;
    let refused = |name: &str| {
        ApiError::new(ProblemCode::InvalidParameter)
            .detail(
                format!("Le paramètre « {name} » contient un caractère de contrôle."),
                format!("The parameter `{name}` holds a control character."),
            )
            .field(name, "control_character")
    };
    if percent_decode(req.path(), false)
        .chars()
        .any(is_refused_control)
    {
        return Some(refused("(path)"));
    }
    for pair in req.query_string().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name, true);
        if name.chars().any(is_refused_control) {
            return Some(refused("(query)"));
        }
        if percent_decode(value, true).chars().any(is_refused_control) {
            return Some(refused(&name));
        }
    }
    None
}

/// The edge middleware (see the module documentation).
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = request_id_from(&req);
    let locale = Locale::negotiate(
        req.headers()
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(RequestLocale(locale));
    let config = req
        .app_data::<web::Data<EdgeConfig>>()
        .map(|c| c.get_ref().clone());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let origin = req.headers().get(header::ORIGIN).cloned();

    // Answers decided from the head alone: oversized head or body, and
    // CORS preflights (allowed: 204; refused: 403 problem).
    let early = config.as_ref().and_then(|config| {
        precheck(&req, config)
            .map(Err)
            .or_else(|| config.cors.preflight(&req))
    });
    let mut res = match early {
        Some(Ok(answer)) => req.into_response(answer),
        Some(Err(problem)) => req.into_response(problem.render(locale, Some(&request_id))),
        // Handlers' errors arrive here as responses carrying the error; an
        // `Err` could only come from an inner middleware (there is none), and
        // actix renders it through `ResponseError` (still problem+json).
        None => next
            .call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
    };

    res = as_problem(res, locale, &request_id, &span);
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(header::HeaderName::from_static(REQUEST_ID), value);
    }
    if !res.request().path().starts_with("/swagger-ui") {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let (Some(config), Some(origin)) = (&config, &origin) {
        config.cors.decorate(origin, res.headers_mut());
    }

    let status = res.status();
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        let route = res.request().match_pattern();
        metrics.observe(
            route.as_deref().unwrap_or("unmatched"),
            res.request().method().as_str(),
            status.as_u16(),
            elapsed,
        );
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            // Whole microseconds divided once: 0.114, not 0.11359200000000001.
            latency_ms = elapsed.as_micros() as f64 / 1000.0,
            "request served"
        );
    });
    Ok(res)
}

/// Makes sure an error answer is problem+json in `locale` with the request
/// id: our own errors are rendered again; anything else (a framework error)
/// is replaced by the problem for its status.
fn as_problem(
    res: ServiceResponse<BoxBody>,
    locale: Locale,
    request_id: &str,
    span: &tracing::Span,
) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if status.as_u16() < 400 {
        return res;
    }
    let error = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        Some(api_error) => api_error.clone(),
        None => {
            let already_problem = res
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
            if already_problem && res.response().error().is_none() {
                return res;
            }
            let cause = res.response().error().map(|e| e.to_string());
            let mut error = ApiError::new(code_for_status(status));
            if error.code.status() != status {
                error.status_override = Some(status);
            }
            if let Some(cause) = cause {
                error = error.cause(cause);
            }
            error
        }
    };
    span.in_scope(|| match (&error.code, &error.cause) {
        (ProblemCode::InternalError, cause) => {
            tracing::error!(
                cause = cause.as_deref().unwrap_or("unknown"),
                "internal error"
            );
        }
        (ProblemCode::DatabaseUnavailable, cause) => {
            tracing::warn!(
                cause = cause.as_deref().unwrap_or("unknown"),
                "database unavailable"
            );
        }
        (code, Some(cause)) => {
            tracing::debug!(code = code.as_str(), %cause, "request refused");
        }
        _ => {}
    });
    let shown_id = Some(request_id);
    let response = error.render(locale, shown_id);
    res.into_response(response)
}

fn code_for_status(status: StatusCode) -> ProblemCode {
    match status.as_u16() {
        404 => ProblemCode::NotFound,
        405 => ProblemCode::MethodNotAllowed,
        413 => ProblemCode::PayloadTooLarge,
        415 => ProblemCode::UnsupportedMediaType,
        431 => ProblemCode::RequestHeaderTooLarge,
        503 => ProblemCode::DatabaseUnavailable,
        400..=499 => ProblemCode::BadRequest,
        _ => ProblemCode::InternalError,
    }
}
