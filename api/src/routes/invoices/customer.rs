//! The customer's invoices (`/v1/me/invoices...`, customer token, while
//! the portal's `payments` action is on for the customer).

use actix_web::{HttpResponse, get, web};
use guichet_domain::invoice::ShownStatus;
use guichet_domain::portal::PortalAction;
use guichet_store::StoreError;
use guichet_store::repo::{documents, invoices};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{InvoiceList, InvoiceView, not_found, path_id};
use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, Problem};
use crate::routes::admin::{TimePosition, page_end, resolve_time_page, time_cursor};
use crate::routes::portal::require_action;
use crate::state::AppState;

const AUTH: &str = "Codes: `unauthenticated`, `invalid_token`.";
const FORBIDDEN: &str = "Not a customer token, or the `payments` action is off for the customer. Codes: `forbidden`, `portal_action_disabled`.";
const NOT_FOUND: &str = "No such invoice of yours (drafts are not shown). Codes: `not_found`.";

/// `?status=&limit=&cursor=` of the customer's invoices.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyListQuery {
    /// `open`: everything left to pay (overdue too); `overdue`: past due;
    /// `paid`. Absent: every issued invoice, void ones too.
    #[param(value_type = Option<crate::routes::enums::MyInvoiceStatus>, nullable = false)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// My invoices.
///
/// Issued invoices and payment requests, newest first; `status=open` is
/// what is left to pay.
#[utoipa::path(
    operation_id = "listMyInvoices",
    tag = "me",
    security(("bearer" = [])),
    params(MyListQuery),
    responses(
        (status = 200, description = "A page.", body = InvoiceList),
        (status = 400, description = "An unknown status or a malformed cursor. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<MyListQuery>,
) -> Result<web::Json<InvoiceList>, ApiError> {
    let query = query.into_inner();
    let (limit, after): (i64, Option<TimePosition>) =
        resolve_time_page(query.limit, query.cursor.as_deref())?;
    let status = crate::routes::admin::status_filter(
        query.status.as_deref(),
        |s| match s {
            "open" => Some(ShownStatus::Open),
            "overdue" => Some(ShownStatus::Overdue),
            "paid" => Some(ShownStatus::Paid),
            _ => None,
        },
        &["open", "overdue", "paid"],
    )?;
    let today = state.clock.today();
    let store = state.store.clone();
    let mut rows = web::block(move || {
        let mut conn = store.conn()?;
        require_action(&mut conn, &principal, PortalAction::Payments)?;
        Ok::<_, ApiError>(invoices::list_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            status,
            today,
            after.as_ref(),
            limit,
        )?)
    })
    .await??;
    let next_cursor = page_end(&mut rows, limit, |i| time_cursor(i.created_at, &i.id));
    Ok(web::Json(InvoiceList {
        data: rows.iter().map(|i| InvoiceView::new(i, today)).collect(),
        next_cursor,
    }))
}

/// Loads one of the customer's issued invoices, checking the `payments`
/// action first.
pub async fn load_mine(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    id: String,
) -> Result<invoices::Invoice, ApiError> {
    path_id(&id)?;
    let store = state.store.clone();
    let principal = principal.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        require_action(&mut conn, &principal, PortalAction::Payments)?;
        invoices::get_for_customer(&mut conn, &principal.org_id, &principal.customer_id, &id)
            .map_err(|e| match e {
                StoreError::NotFound => not_found(),
                e => e.into(),
            })
    })
    .await?
}

/// One of my invoices.
#[utoipa::path(
    operation_id = "getMyInvoice",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "The invoice.", body = InvoiceView),
        (status = 401, description = AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<InvoiceView>, ApiError> {
    let inv = load_mine(&state, &principal, path.into_inner()).await?;
    Ok(web::Json(InvoiceView::new(&inv, state.clock.today())))
}

/// The PDF of one of my invoices.
///
/// As it was issued; downloading it marks its document opened.
#[utoipa::path(
    operation_id = "getMyInvoiceDocument",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "The PDF.", content_type = "application/pdf", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"facture-F-2026-00042.pdf\"` (in the customer's language)."))),
        (status = 401, description = AUTH, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/document")]
pub async fn document(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let inv = load_mine(&state, &principal, path.into_inner()).await?;
    let response = super::admin::pdf_response(&state, &inv).await?;
    if let Some(doc_id) = inv.document_id.clone() {
        let store = state.store.clone();
        let now = state.clock.now();
        let org_id = inv.org_id.clone();
        let _ = web::block(move || {
            let mut conn = store.conn()?;
            documents::mark_opened(&mut conn, &org_id, &doc_id, now)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
        .and_then(|r| r.map_err(|e: StoreError| ApiError::from(e)));
    }
    Ok(response)
}
