//! `/v1/admin/mandates`: the organization's SEPA mandates, and their
//! revocation.

use actix_web::{get, post, web};
use guichet_store::repo::mandates::{self, Filter, MandateStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::mandates::{MandateReview, MandateSummary, review};
use crate::auth::StaffPrincipal;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor, status_filter};
use crate::state::AppState;

const NOT_FOUND: &str = "No such mandate in your organization. Codes: `not_found`.";

/// `?status=&customer_id=&limit=&cursor=` of the mandate list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MandateQuery {
    /// Only mandates of this status: `draft`, `signed`, `revoked` or
    /// `expired`.
    #[param(value_type = Option<crate::routes::enums::MandateStatus>, nullable = false)]
    pub status: Option<String>,
    /// Only this customer's mandates (`cus_...`).
    #[param(nullable = false)]
    pub customer_id: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    pub cursor: Option<String>,
}

/// A page of mandates.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateList {
    pub data: Vec<MandateSummary>,
    pub next_cursor: Option<String>,
}

/// The organization's mandates, newest first.
///
/// The organization's mandates, newest first, optionally of one status or
/// one customer.
#[utoipa::path(
    operation_id = "listMandates",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(MandateQuery),
    responses(
        (status = 200, description = "A page of mandates (IBANs masked).", body = MandateList),
        (status = 400, description = "Unknown status, limit out of range or bad cursor. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/mandates")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<MandateQuery>,
) -> Result<web::Json<MandateList>, ApiError> {
    let query = query.into_inner();
    let status = status_filter(
        query.status.as_deref(),
        MandateStatus::parse,
        &["draft", "signed", "revoked", "expired"],
    )?;
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let filter = Filter {
        customer_id: query.customer_id,
        status,
    };
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        mandates::list(
            &mut conn,
            &principal.org_id,
            &filter,
            after.as_deref(),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |m| &m.id);
    Ok(web::Json(MandateList {
        data: items.iter().map(MandateSummary::from).collect(),
        next_cursor,
    }))
}

/// One mandate with its account, creditor, collections and signature.
#[utoipa::path(
    operation_id = "getMandate",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Mandate id (`mdt_...`).")),
    responses(
        (status = 200, description = "The mandate.", body = MandateReview),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/mandates/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MandateReview>, ApiError> {
    let id = path.into_inner();
    let today = state.clock.today();
    let store = state.store.clone();
    let review = web::block(move || {
        let mut conn = store.conn()?;
        let mandate = mandates::get(&mut conn, &principal.org_id, &id)?;
        review(&mut conn, &mandate, today)
    })
    .await??;
    Ok(web::Json(review))
}

/// Revoke a signed mandate.
///
/// Revoke a signed mandate: it becomes `revoked` and its collections not
/// yet presented (`scheduled`) are `cancelled`; collections already
/// presented are not undone.
#[utoipa::path(
    operation_id = "revokeMandate",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Mandate id (`mdt_...`).")),
    responses(
        (status = 200, description = "The revoked mandate.", body = MandateReview),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Only a signed mandate can be revoked (`mandate_status` is the mandate's). Codes: `mandate_not_signed`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/mandates/{id}/revocation")]
pub async fn revoke(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<MandateReview>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let today = state.clock.today();
    let store = state.store.clone();
    let review = web::block(move || {
        let mut conn = store.conn()?;
        let org_id = principal.org_id;
        let mandate = guichet_store::transaction(&mut conn, |conn| {
            mandates::lock(conn, &org_id, &id)?;
            let mandate = mandates::get(conn, &org_id, &id)?;
            if mandates::revoke(conn, &org_id, &id, now)?.is_none() {
                return Err(ApiError::new(ProblemCode::MandateNotSigned)
                    .detail(
                        format!(
                            "Seul un mandat signé peut être révoqué (statut : {}).",
                            mandate.status.as_str()
                        ),
                        format!(
                            "Only a signed mandate can be revoked (status: {}).",
                            mandate.status.as_str()
                        ),
                    )
                    .extension("mandate_status", mandate.status.as_str().into()));
            }
            let mandate = mandates::get(conn, &org_id, &id)?;
            let review = review(conn, &mandate, today)?;
            crate::routes::events::by_staff(
                conn,
                guichet_domain::events::EventType::MandateRevoked,
                &org_id,
                &id,
                &principal.actor,
                &review,
                now,
            )?;
            Ok(review)
        })?;
        Ok::<_, ApiError>(mandate)
    })
    .await??;
    Ok(web::Json(review))
}
