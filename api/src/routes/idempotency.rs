//! The `Idempotency-Key` of the requests that charge, schedule or sign
//! (docs/API-DESIGN.md, "Money-moving requests"): reading the header,
//! claiming the key before the work, replaying a stored answer, and
//! recording the outcome after it.
//!
//! A key is 1 to 255 visible ASCII characters. A malformed one answers 400
//! `invalid_parameter` (field `Idempotency-Key`) wherever it is sent; a
//! payment without one answers 400 `idempotency_key_required`.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, Utc};
use guichet_store::repo::idempotency::{self, Claim};

use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, ProblemCode};
use crate::state::AppState;

const HEADER: &str = "idempotency-key";

/// The header when the request carries one.
pub fn optional_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(|v| Some(v.to_owned()))
        .ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "L'en-tête Idempotency-Key compte 1 à 255 caractères ASCII visibles.",
                    "The Idempotency-Key header has 1 to 255 visible ASCII characters.",
                )
                .field("Idempotency-Key", "invalid")
        })
}

/// The header, which a payment must carry.
pub fn required_key(req: &HttpRequest) -> Result<String, ApiError> {
    optional_key(req)?.ok_or_else(|| {
        ApiError::new(ProblemCode::IdempotencyKeyRequired).detail(
            "Un en-tête Idempotency-Key (1 à 255 caractères ASCII visibles) est obligatoire pour un paiement.",
            "A payment needs an Idempotency-Key header (1 to 255 visible ASCII characters).",
        )
    })
}

/// The answer stored for a key, to give again.
#[derive(Debug)]
pub struct Replay {
    status: StatusCode,
    body: String,
}

impl Replay {
    /// The stored status and body, `Idempotent-Replayed: true`, and the
    /// content type of a success or of a problem; `more` adds the
    /// endpoint's own headers.
    pub fn respond(self, more: impl FnOnce(&mut HttpResponseBuilder)) -> HttpResponse {
        let content_type = if self.status.is_success() {
            "application/json"
        } else {
            PROBLEM_CONTENT_TYPE
        };
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header((CONTENT_TYPE, content_type))
            .insert_header(("Idempotent-Replayed", "true"));
        more(&mut response);
        response.body(self.body)
    }
}

/// Claims `key` in `scope` (the caller) for a request whose body hashes to
/// `hash`: `None` when the work is to be done now, the stored answer when
/// the same request already got one. The same key still running answers
/// 409 `idempotency_key_in_progress`; the same key with another body, 422
/// `idempotency_key_reused`.
pub async fn claim(
    state: &AppState,
    scope: String,
    key: String,
    hash: String,
    now: DateTime<Utc>,
) -> Result<Option<Replay>, ApiError> {
    let store = state.store.clone();
    let claim = web::block(move || {
        let mut conn = store.conn()?;
        idempotency::claim(&mut conn, &scope, &key, &hash, now)
    })
    .await??;
    match claim {
        Claim::New => Ok(None),
        Claim::Replay { status, body } => Ok(Some(Replay {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        })),
        Claim::InProgress => Err(ApiError::new(ProblemCode::IdempotencyKeyInProgress).detail(
            "Une requête avec cette clé d'idempotence est en cours ; réessayez dans un instant.",
            "A request with this idempotency key is still running; retry shortly.",
        )),
        Claim::Mismatch => Err(ApiError::new(ProblemCode::IdempotencyKeyReused).detail(
            "Cette clé d'idempotence a déjà servi pour une autre requête.",
            "This idempotency key was already used for another request.",
        )),
    }
}

/// Records what became of a claimed key: `Some((status, body))` is the
/// answer to replay; `None` frees the key, for a request that changed
/// nothing and may be sent again. The caller's answer does not depend on
/// it: a failure here is logged, and leaves the key claimed until it
/// expires.
pub async fn settle(state: &AppState, scope: String, key: String, answer: Option<(u16, String)>) {
    let store = state.store.clone();
    let settled = web::block(move || {
        let mut conn = store.conn()?;
        match answer {
            Some((status, body)) => idempotency::complete(&mut conn, &scope, &key, status, &body),
            None => idempotency::release(&mut conn, &scope, &key),
        }
    })
    .await;
    if !matches!(settled, Ok(Ok(()))) {
        tracing::warn!("could not record the outcome of an idempotency key");
    }
}
