//! The `Idempotency-Key` of the requests that charge, schedule or sign
//! (docs/API-DESIGN.md, "Money-moving requests"): reading the header,
//! claiming the key before the work, committing the answer with the
//! effect, and replaying a stored answer.
//!
//! A key is 1 to 255 visible ASCII characters. A malformed one answers 400
//! `invalid_parameter` (field `Idempotency-Key`) wherever it is sent; a
//! payment without one answers 400 `idempotency_key_required`.
//!
//! An endpoint:
//!
//! 1. [`begin`]s with the key: a stored answer is replayed; the key still
//!    locked by another attempt answers 409 `idempotency_key_in_use` with
//!    `Retry-After`; the key used with another body answers 422
//!    `idempotency_key_reused`; otherwise it gets a [`Ticket`], fresh or
//!    resumed (the first attempt's lease ran out: the caller finds out what
//!    it did, or, when nothing but the answer's commit can tell, redoes the
//!    work).
//! 2. Does its effect through [`commit`], which runs it in one transaction
//!    with the answer, so that a crash leaves either both or neither.
//! 3. [`release`]s the ticket when it refuses without changing anything, so
//!    that the key can be sent again.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, Utc};
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::idempotency::{self, Claim};

use crate::faults::FaultPoint;
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
    fn stored(status: u16, body: String) -> Self {
        Replay {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        }
    }

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

/// A key locked for this request: the work is to be done now, and its
/// answer recorded with it ([`commit`]) or the key given back
/// ([`release`]).
#[derive(Debug, Clone)]
pub struct Ticket {
    scope: String,
    key: String,
}

impl Ticket {
    /// The caller's scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The `Idempotency-Key`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// What [`begin`] decided.
#[derive(Debug)]
pub enum Begun {
    /// First time with this key: do the work.
    Fresh(Ticket),
    /// The key's first attempt never answered and its lease ran out: the
    /// key is now this request's. Find out what the first attempt did, and
    /// finish the request.
    Resumed(Ticket),
    /// Answered before: give this again.
    Replay(Replay),
}

/// Claims `key` in `scope` (the caller) for a request whose body hashes to
/// `hash`, locking it for the configured lease (`state.idempotency_lock`).
/// Refusals: 409 `idempotency_key_in_use` with `Retry-After` while another
/// attempt holds the key, 422 `idempotency_key_reused` for another body.
pub async fn begin(
    state: &AppState,
    scope: String,
    key: String,
    hash: String,
    now: DateTime<Utc>,
) -> Result<Begun, ApiError> {
    let store = state.store.clone();
    let lease = state.idempotency_lock;
    let (scope, key, claim) = web::block(move || -> Result<_, StoreError> {
        let mut conn = store.conn()?;
        let claim = idempotency::claim(&mut conn, &scope, &key, &hash, now, lease)?;
        Ok((scope, key, claim))
    })
    .await??;
    match claim {
        Claim::New => Ok(Begun::Fresh(Ticket { scope, key })),
        Claim::Resume => Ok(Begun::Resumed(Ticket { scope, key })),
        Claim::Replay { status, body } => Ok(Begun::Replay(Replay::stored(status, body))),
        Claim::InUse { until } => Err(in_use(until, now)),
        Claim::Mismatch => Err(ApiError::new(ProblemCode::IdempotencyKeyReused).detail(
            "Cette clé d'idempotence a déjà servi pour une autre requête.",
            "This idempotency key was already used for another request.",
        )),
    }
}

/// [`begin`] for an endpoint that treats a resumed key as a fresh one:
/// `None` when the work is to be done now, the stored answer when the same
/// request already got one. Record the outcome with [`settle`].
pub async fn claim(
    state: &AppState,
    scope: String,
    key: String,
    hash: String,
    now: DateTime<Utc>,
) -> Result<Option<Replay>, ApiError> {
    Ok(match begin(state, scope, key, hash, now).await? {
        Begun::Fresh(_) | Begun::Resumed(_) => None,
        Begun::Replay(replay) => Some(replay),
    })
}

/// The 409 `idempotency_key_in_use` while the key is locked until `until`.
pub fn in_use(until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let millis = (until - now).num_milliseconds().max(0);
    let seconds = ((millis + 999) / 1000).max(1);
    ApiError::new(ProblemCode::IdempotencyKeyInUse)
        .detail(
            "Une autre requête avec cette clé d'idempotence est peut-être en cours ; réessayez après le délai indiqué par Retry-After.",
            "Another request with this idempotency key may still be running; retry after the Retry-After delay.",
        )
        .header(RETRY_AFTER, HeaderValue::from(seconds))
}

/// What [`commit`] did.
#[derive(Debug)]
pub enum Committed {
    /// The effect and its answer (this body) are committed.
    Done(String),
    /// Another attempt with the same key answered first: nothing of this
    /// one was kept; give its answer.
    Replay(Replay),
}

enum Abort {
    Answered,
    Api(ApiError),
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Abort::Api(e.into())
    }
}

/// Runs `effect` in one transaction (call it from a blocking thread) and,
/// with a `ticket`, records its answer (`status`, the body `effect`
/// returns) in the same transaction: first the key's row is locked (so two
/// attempts with one key never write side by side), then the effect, then
/// the answer, conditional on the key being still unanswered. When another
/// attempt answered first, everything is rolled back and its answer comes
/// back as [`Committed::Replay`]. The fault point `point` pauses right
/// before the COMMIT (tests only). An error from `effect` rolls back and
/// leaves the key locked: [`release`] it when nothing changed.
pub fn commit<F>(
    conn: &mut DbConnection,
    state: &AppState,
    point: FaultPoint,
    ticket: Option<&Ticket>,
    status: StatusCode,
    effect: F,
) -> Result<Committed, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<String, ApiError>,
{
    let done = guichet_store::transaction(conn, |conn| -> Result<String, Abort> {
        if let Some(t) = ticket
            && !idempotency::hold_in(conn, &t.scope, &t.key)?
        {
            return Err(Abort::Answered);
        }
        let body = effect(conn).map_err(Abort::Api)?;
        if let Some(t) = ticket
            && !idempotency::complete_in(conn, &t.scope, &t.key, status.as_u16(), &body)?
        {
            return Err(Abort::Answered);
        }
        state.faults.pause(point);
        Ok(body)
    });
    match done {
        Ok(body) => Ok(Committed::Done(body)),
        Err(Abort::Api(e)) => Err(e),
        Err(Abort::Answered) => {
            let Some(t) = ticket else {
                return Err(ApiError::internal("no ticket but the key was answered"));
            };
            match idempotency::answer(conn, &t.scope, &t.key)? {
                Some((status, body)) => Ok(Committed::Replay(Replay::stored(status, body))),
                // Released by a late first attempt's refusal: the work was
                // not done; the client may retry.
                None => {
                    let now = state.clock.now();
                    Err(in_use(now, now))
                }
            }
        }
    }
}

/// The answer to a request run through [`commit`]: `done` shapes the
/// first answer from its body; a replay is given as stored, `replayed`
/// adding the endpoint's own headers; a refusal changed nothing, so the key
/// is given back ([`release`]) and the refusal answered, unless another
/// attempt with the key has answered meanwhile, whose answer is given
/// instead.
pub async fn answer(
    state: &AppState,
    ticket: Option<Ticket>,
    outcome: Result<Committed, ApiError>,
    done: impl FnOnce(String) -> HttpResponse,
    replayed: impl FnOnce(&mut HttpResponseBuilder),
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Ok(Committed::Done(body)) => Ok(done(body)),
        Ok(Committed::Replay(replay)) => Ok(replay.respond(replayed)),
        Err(refused) => match ticket {
            Some(ticket) => match release(state, ticket).await {
                Some(replay) => Ok(replay.respond(replayed)),
                None => Err(refused),
            },
            None => Err(refused),
        },
    }
}

/// 201 with the body and `Location: {prefix}/{id}`, the `id` read from
/// the body (a creation's first answer, for [`answer`]).
pub fn created(prefix: &str, body: String) -> HttpResponse {
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    HttpResponse::Created()
        .insert_header(("Location", format!("{prefix}/{id}")))
        .content_type("application/json")
        .body(body)
}

/// Gives the key back after a refusal that changed nothing, so that it may
/// be sent again. When another attempt with the key has answered meanwhile
/// (a first attempt that outlived its lease), the key is kept and its
/// answer comes back, to give instead of the refusal. A failure here is
/// logged and leaves the key locked until its lease ends.
pub async fn release(state: &AppState, ticket: Ticket) -> Option<Replay> {
    let store = state.store.clone();
    let released = web::block(move || {
        let mut conn = store.conn()?;
        idempotency::release(&mut conn, &ticket.scope, &ticket.key)?;
        idempotency::answer(&mut conn, &ticket.scope, &ticket.key)
    })
    .await;
    match released {
        Ok(Ok(answer)) => answer.map(|(status, body)| Replay::stored(status, body)),
        _ => {
            tracing::warn!("could not release an idempotency key");
            None
        }
    }
}

/// Records what became of a key claimed with [`claim`], after the work's
/// own transaction: `Some((status, body))` is the answer to replay; `None`
/// frees the key. A crash before it leaves the key locked until its lease
/// ends although the work was done: prefer [`begin`] and [`commit`], which
/// record the answer with the work. A failure here is logged.
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
