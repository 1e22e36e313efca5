//! Extractors for authenticated callers. A handler that takes
//! [`CustomerPrincipal`] serves customers only; [`StaffPrincipal`] serves
//! staff and API keys; [`AdminPrincipal`] serves admin staff only.
//!
//! Missing credentials answer 401 `unauthenticated`, bad ones 401
//! `invalid_token` (both with `WWW-Authenticate: Bearer`), a valid caller of
//! the wrong kind 403 `forbidden`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::{DateTime, Utc};
use guichet_domain::identity::{StaffRole, SubjectKind};
use guichet_store::DbConnection;
use guichet_store::repo::{api_keys, sessions, staff};
use sha2::{Digest, Sha256};

use super::tokens::{AccessClaims, Role};
use crate::problem::{ApiError, ProblemCode};
use crate::state::AppState;

/// The prefix of API keys.
pub const API_KEY_PREFIX: &str = "gk_";

/// A signed-in customer.
#[derive(Debug, Clone)]
pub struct CustomerPrincipal {
    pub customer_id: String,
    pub org_id: String,
    pub session_id: String,
    /// On a preview session: the staff member seeing the portal as the
    /// organization's test customer. What such a session does is flagged
    /// test; it sends no SMS and e-mails only that staff member.
    pub preview_by: Option<String>,
}

/// Who acts on the business side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffActor {
    Staff {
        id: String,
        role: StaffRole,
        session_id: String,
    },
    ApiKey {
        id: String,
    },
}

/// A staff member or an API key, within its organization.
#[derive(Debug, Clone)]
pub struct StaffPrincipal {
    pub org_id: String,
    pub actor: StaffActor,
}

/// An admin staff member (not an API key).
#[derive(Debug, Clone)]
pub struct AdminPrincipal {
    pub org_id: String,
    pub staff_id: String,
    pub session_id: String,
}

/// The hash under which an API key is stored (keys are long random
/// strings, so an unkeyed hash is enough).
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

enum Credentials {
    Session(AccessClaims),
    ApiKey { id: String, org_id: String },
}

fn unauthenticated() -> ApiError {
    ApiError::new(ProblemCode::Unauthenticated).detail(
        "Un jeton d'accès est requis (Authorization: Bearer ...).",
        "An access token is required (Authorization: Bearer ...).",
    )
}

fn invalid_token(cause: impl Into<String>) -> ApiError {
    ApiError::new(ProblemCode::InvalidToken)
        .detail(
            "Le jeton est invalide, expiré ou révoqué.",
            "The token is invalid, expired or revoked.",
        )
        .cause(cause)
}

fn forbidden() -> ApiError {
    ApiError::new(ProblemCode::Forbidden).detail(
        "Votre rôle ne permet pas cette opération.",
        "Your role does not allow this operation.",
    )
}

/// What the `Authorization` header carries, its signature checked but
/// nothing read from the database yet.
enum Bearer {
    ApiKey(String),
    Jwt(AccessClaims),
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

/// Reads the bearer credentials; verifies a JWT's signature and claims.
fn bearer(req: &HttpRequest, state: &AppState, now: DateTime<Utc>) -> Result<Bearer, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(unauthenticated)?
        .to_str()
        .map_err(|_| invalid_token("authorization header is not text"))?;
    let (scheme, value) = header.split_once(' ').ok_or_else(unauthenticated)?;
    if !scheme.eq_ignore_ascii_case("bearer") || value.trim().is_empty() {
        return Err(unauthenticated());
    }
    let value = value.trim();
    if value.starts_with(API_KEY_PREFIX) {
        return Ok(Bearer::ApiKey(value.to_owned()));
    }
    state
        .tokens
        .verify(value, now)
        .map(Bearer::Jwt)
        .map_err(|e| invalid_token(e.to_string()))
}

/// Checks that the token's session is still active and belongs to the
/// token's subject, organization and kind: a revoked session stops its
/// tokens at once.
fn check_session(
    conn: &mut DbConnection,
    claims: &AccessClaims,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let session = sessions::get(conn, &claims.sid).map_err(|e| match e {
        guichet_store::StoreError::NotFound => invalid_token("unknown session"),
        other => other.into(),
    })?;
    let kind = match claims.role {
        Role::Customer => SubjectKind::Customer,
        Role::Admin | Role::Agent => SubjectKind::Staff,
    };
    if !session.is_active(now)
        || session.subject_id != claims.sub
        || session.org_id != claims.org
        || session.subject_kind != kind
    {
        return Err(invalid_token("session ended or does not match"));
    }
    Ok(())
}

async fn authenticate(req: &HttpRequest) -> Result<Credentials, ApiError> {
    let state = app_state(req)?;
    let now = state.clock.now();
    match bearer(req, &state, now)? {
        Bearer::ApiKey(value) => {
            let hash = api_key_hash(&value);
            let store = state.store.clone();
            let key = web::block(move || {
                let mut conn = store.conn()?;
                let key = api_keys::find_by_hash(&mut conn, &hash)?;
                if key.revoked_at.is_none() {
                    api_keys::touch(&mut conn, &key.id, now)?;
                }
                Ok::<_, guichet_store::StoreError>(key)
            })
            .await?
            .map_err(|e| match e {
                guichet_store::StoreError::NotFound => invalid_token("unknown API key"),
                other => other.into(),
            })?;
            if key.revoked_at.is_some() {
                return Err(invalid_token("revoked API key"));
            }
            Ok(Credentials::ApiKey {
                id: key.id,
                org_id: key.org_id,
            })
        }
        Bearer::Jwt(claims) => {
            let store = state.store.clone();
            web::block(move || {
                let mut conn = store.conn()?;
                check_session(&mut conn, &claims, now)?;
                Ok::<_, ApiError>(claims)
            })
            .await?
            .map(Credentials::Session)
        }
    }
}

/// A customer's access token, its signature and claims verified, whose
/// session is checked by the handler on the connection it reads with
/// ([`CustomerToken::authorize`], the only way to the
/// [`CustomerPrincipal`]): one blocking task and one pooled connection per
/// request instead of two, for the customer's most frequent reads. Any
/// other bearer (an API key, a staff token) is checked in full here and
/// refused as [`CustomerPrincipal`] refuses it.
#[derive(Debug)]
pub struct CustomerToken {
    claims: AccessClaims,
    now: DateTime<Utc>,
}

impl CustomerToken {
    /// Checks the token's session on `conn` and gives the principal.
    pub fn authorize(self, conn: &mut DbConnection) -> Result<CustomerPrincipal, ApiError> {
        check_session(conn, &self.claims, self.now)?;
        Ok(CustomerPrincipal {
            customer_id: self.claims.sub,
            org_id: self.claims.org,
            session_id: self.claims.sid,
            preview_by: self.claims.pvw,
        })
    }
}

impl FromRequest for CustomerToken {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let now = state.clock.now();
            match bearer(&req, &state, now)? {
                Bearer::Jwt(claims) if claims.role == Role::Customer => {
                    Ok(CustomerToken { claims, now })
                }
                // Checked in full, so that a bad or revoked credential
                // answers 401 before the 403 of a caller of the wrong kind.
                _ => {
                    authenticate(&req).await?;
                    Err(forbidden())
                }
            }
        })
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for CustomerPrincipal {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(&req).await? {
                Credentials::Session(c) if c.role == Role::Customer => Ok(CustomerPrincipal {
                    customer_id: c.sub,
                    org_id: c.org,
                    session_id: c.sid,
                    preview_by: c.pvw,
                }),
                _ => Err(forbidden()),
            }
        })
    }
}

impl FromRequest for StaffPrincipal {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(&req).await? {
                Credentials::ApiKey { id, org_id } => Ok(StaffPrincipal {
                    org_id,
                    actor: StaffActor::ApiKey { id },
                }),
                Credentials::Session(c) => {
                    if c.role == Role::Customer {
                        return Err(forbidden());
                    }
                    let role = current_staff_role(&req, &c.org, &c.sub).await?;
                    Ok(StaffPrincipal {
                        org_id: c.org,
                        actor: StaffActor::Staff {
                            id: c.sub,
                            role,
                            session_id: c.sid,
                        },
                    })
                }
            }
        })
    }
}

impl FromRequest for AdminPrincipal {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let staff = StaffPrincipal::from_request(req, payload);
        Box::pin(async move {
            let staff = staff.await?;
            match staff.actor {
                StaffActor::Staff {
                    id,
                    role: StaffRole::Admin,
                    session_id,
                } => Ok(AdminPrincipal {
                    org_id: staff.org_id,
                    staff_id: id,
                    session_id,
                }),
                _ => Err(forbidden()),
            }
        })
    }
}

/// A staff member's role comes from the database, not from the token: a
/// demoted or disabled member loses rights at once.
async fn current_staff_role(
    req: &HttpRequest,
    org_id: &str,
    id: &str,
) -> Result<StaffRole, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    let member = web::block(move || {
        let mut conn = state.store.conn()?;
        staff::get(&mut conn, &org_id, &id)
    })
    .await??;
    if member.disabled_at.is_some() {
        return Err(invalid_token("staff member disabled"));
    }
    Ok(member.role)
}
