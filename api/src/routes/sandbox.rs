//! `GET /v1/sandbox/charges` and `GET /v1/sandbox/refunds`: the sandbox
//! gateway's ledger of the caller's organization, as a PSP's dashboard shows
//! it, so that tests and demos can see what the gateway really received.
//! Served only when the sandbox is the gateway; admins and API keys only.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use guichet_domain::Money;
use guichet_domain::identity::StaffRole;
use guichet_store::repo::sandbox::{self as ledger, Entry, Kind, Outcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{StaffActor, StaffPrincipal};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, next_cursor};
use crate::routes::views::MoneyView;
use crate::state::AppState;

/// Registers this module's operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(scope("/v1/sandbox/charges").service(list_charges))
        .service(scope("/v1/sandbox/refunds").service(list_refunds));
}

const ROLE_FAILURE: &str = "A customer token, or staff who is not an admin. Codes: `forbidden`.";
const NOT_SERVED: &str = "Not served: the payment gateway is not the sandbox. Codes: `not_found`.";

/// `?limit=&cursor=` of the ledger lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerPage {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// What the gateway answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOutcome {
    /// The money moved.
    Succeeded,
    /// Nothing moved; `failure_code` says why.
    Failed,
}

impl From<Outcome> for LedgerOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => LedgerOutcome::Succeeded,
            Outcome::Failed => LedgerOutcome::Failed,
        }
    }
}

/// The card a charge was made to: brand and last four digits only.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerCard {
    /// `visa`, `mastercard`, `amex` or `other`.
    #[schema(value_type = crate::routes::enums::CardBrand, example = "visa")]
    pub brand: String,
    #[schema(example = "4242")]
    pub last4: String,
}

/// A charge the sandbox received.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxChargeView {
    #[schema(example = "ch_sandbox_5f0c2a9e41d7b3a8c6e2f019")]
    pub id: String,
    /// The key the charge was sent under.
    pub idempotency_key: String,
    pub amount: MoneyView,
    /// Null when the card is not known (never for a charge the sandbox
    /// recorded).
    pub card: Option<LedgerCard>,
    pub outcome: LedgerOutcome,
    /// Why it failed (`insufficient_funds`, `expired_card`,
    /// `processing_error`, `card_declined`); null when it succeeded.
    #[schema(example = json!(null))]
    pub failure_code: Option<String>,
    /// How much of it was refunded so far.
    pub refunded: MoneyView,
    pub created_at: DateTime<Utc>,
}

impl From<Entry> for SandboxChargeView {
    fn from(e: Entry) -> Self {
        SandboxChargeView {
            card: match (e.brand, e.last4) {
                (Some(brand), Some(last4)) => Some(LedgerCard { brand, last4 }),
                _ => None,
            },
            refunded: MoneyView::from(Money::new(e.refunded, e.amount.currency)),
            amount: MoneyView::from(e.amount),
            outcome: e.outcome.into(),
            id: e.id,
            idempotency_key: e.idempotency_key,
            failure_code: e.failure_code,
            created_at: e.created_at,
        }
    }
}

/// A refund the sandbox received.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxRefundView {
    #[schema(example = "re_sandbox_9a1e4c7b20d5f8e3a6c1b042")]
    pub id: String,
    /// The key the refund was sent under.
    pub idempotency_key: String,
    /// The refunded charge.
    #[schema(example = "ch_sandbox_5f0c2a9e41d7b3a8c6e2f019")]
    pub charge_id: String,
    pub amount: MoneyView,
    pub outcome: LedgerOutcome,
    /// Why it failed (`refund_failed`); null when it succeeded.
    #[schema(example = json!(null))]
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Entry> for SandboxRefundView {
    fn from(e: Entry) -> Self {
        SandboxRefundView {
            amount: MoneyView::from(e.amount),
            outcome: e.outcome.into(),
            id: e.id,
            idempotency_key: e.idempotency_key,
            charge_id: e.reference,
            failure_code: e.failure_code,
            created_at: e.created_at,
        }
    }
}

/// A page of the sandbox's charges.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxChargeList {
    pub data: Vec<SandboxChargeView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of the sandbox's refunds.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxRefundList {
    pub data: Vec<SandboxRefundView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The organization whose ledger the caller may read: an admin's or an API
/// key's (an agent is refused).
fn merchant_of(principal: StaffPrincipal) -> Result<String, ApiError> {
    match principal.actor {
        StaffActor::ApiKey { .. }
        | StaffActor::Staff {
            role: StaffRole::Admin,
            ..
        } => Ok(principal.org_id),
        StaffActor::Staff { .. } => Err(ApiError::new(ProblemCode::Forbidden).detail(
            "Votre rôle ne permet pas cette opération.",
            "Your role does not allow this operation.",
        )),
    }
}

/// A page of `kind` entries of the caller's organization, newest first.
async fn page_of(
    state: &web::Data<AppState>,
    principal: StaffPrincipal,
    page: LedgerPage,
    kind: Kind,
) -> Result<(Vec<Entry>, Option<String>), ApiError> {
    if !state.sandbox {
        return Err(ApiError::not_found());
    }
    let merchant = merchant_of(principal)?;
    let (limit, after) = Page {
        limit: page.limit,
        cursor: page.cursor,
    }
    .resolve()?;
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        ledger::list(&mut conn, &merchant, kind, after.as_deref(), limit + 1)
    })
    .await??;
    let next = next_cursor(&mut items, limit, |e| &e.id);
    Ok((items, next))
}

/// List the sandbox's charges.
///
/// Every charge the sandbox gateway received for the caller's organization,
/// succeeded or failed, newest first (sandbox gateway only: this route
/// answers 404 with a real gateway). A charge appears once however often its
/// idempotency key was sent.
#[utoipa::path(
    tag = "sandbox",
    operation_id = "listSandboxCharges",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(LedgerPage),
    responses(
        (status = 200, description = "A page of charges, newest first.", body = SandboxChargeList),
        (status = 400, description = "`limit` is not 1 to 100, or the cursor is not one of ours. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_SERVED, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_charges(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<LedgerPage>,
) -> Result<web::Json<SandboxChargeList>, ApiError> {
    let (items, next_cursor) = page_of(&state, principal, page.into_inner(), Kind::Charge).await?;
    Ok(web::Json(SandboxChargeList {
        data: items.into_iter().map(SandboxChargeView::from).collect(),
        next_cursor,
    }))
}

/// List the sandbox's refunds.
///
/// Every refund the sandbox gateway received for the caller's organization,
/// succeeded or failed, newest first (sandbox gateway only: this route
/// answers 404 with a real gateway).
#[utoipa::path(
    tag = "sandbox",
    operation_id = "listSandboxRefunds",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(LedgerPage),
    responses(
        (status = 200, description = "A page of refunds, newest first.", body = SandboxRefundList),
        (status = 400, description = "`limit` is not 1 to 100, or the cursor is not one of ours. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_SERVED, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_refunds(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    page: web::Query<LedgerPage>,
) -> Result<web::Json<SandboxRefundList>, ApiError> {
    let (items, next_cursor) = page_of(&state, principal, page.into_inner(), Kind::Refund).await?;
    Ok(web::Json(SandboxRefundList {
        data: items.into_iter().map(SandboxRefundView::from).collect(),
        next_cursor,
    }))
}
