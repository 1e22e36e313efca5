//! The business's read of one customer's saved methods and autopay
//! (`/v1/admin/customers/{id}/payment-methods`, `.../autopay`): staff of
//! any role and API keys, never the card tokens.

use actix_web::{get, web};
use guichet_store::repo::{customers, portal};

use super::PaymentMethodView;
use super::autopay::AutopayView;
use super::customer::PaymentMethodList;
use crate::auth::StaffPrincipal;
use crate::problem::{ApiError, Problem};
use crate::routes::admin::{AUTH_FAILURES, ROLE_FAILURE};
use crate::state::AppState;

const NOT_FOUND: &str = "No such customer in the organization. Codes: `not_found`.";

/// A customer's saved payment methods.
///
/// As the customer sees them (`GET /v1/me/payment-methods`): the default
/// first, then newest first; removed methods are not listed.
#[utoipa::path(
    operation_id = "listCustomerPaymentMethods",
    tag = "payments",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "The customer's id (`cus_...`).")),
    responses(
        (status = 200, description = "The methods.", body = PaymentMethodList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/customers/{id}/payment-methods")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PaymentMethodList>, ApiError> {
    let customer_id = path.into_inner();
    let store = state.store.clone();
    let today = state.clock.today();
    let data: Vec<PaymentMethodView> = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        customers::get(conn, &principal.org_id, &customer_id)?;
        super::customer::views(conn, &principal.org_id, &customer_id, today)
    })
    .await??;
    Ok(web::Json(PaymentMethodList { data }))
}

/// A customer's autopay.
///
/// Whether autopay is on and with which method, with the organization's
/// autopay settings as the customer works under them.
#[utoipa::path(
    operation_id = "getCustomerAutopay",
    tag = "payments",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "The customer's id (`cus_...`).")),
    responses(
        (status = 200, description = "The customer's autopay.", body = AutopayView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/customers/{id}/autopay")]
pub async fn autopay(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<AutopayView>, ApiError> {
    let customer_id = path.into_inner();
    let store = state.store.clone();
    let today = state.clock.today();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        customers::get(conn, &principal.org_id, &customer_id)?;
        let settings = portal::autopay_settings(conn, &principal.org_id)?;
        super::autopay::view(conn, &principal.org_id, &customer_id, &settings, today)
    })
    .await??;
    Ok(web::Json(v))
}
