//! `/v1/me/autopay`: whether the customer's open invoices are charged on
//! their due date, with which saved method, and what the business lets
//! them change (read at each request: a settings change applies at once).

use actix_web::{get, put, web};
use chrono::NaiveDate;
use guichet_domain::autopay::AutopaySettings;
use guichet_jobs::notify::templates::AutopayChange;
use guichet_store::DbConnection;
use guichet_store::repo::payment_methods::{self, MethodDetails};
use guichet_store::repo::{autopay as autopay_repo, customers, portal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::notices::{self, Change};
use super::{
    AutopaySource, PaymentMethodView, autopay_method_id, autopay_of, card_expired,
    change_not_allowed, require_payments,
};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

const UNAUTHENTICATED: &str = "Codes: `unauthenticated`, `invalid_token`.";
const OFF: &str =
    "Payments are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.";

/// Your autopay and what you may do with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutopayView {
    /// Open invoices are charged on their due date.
    pub enabled: bool,
    /// The method charged, while autopay is on.
    pub payment_method: Option<PaymentMethodView>,
    /// Whether you may turn autopay on or off and change its method (the
    /// business's `customers_can_change_autopay`): hide the toggle when
    /// false.
    pub can_change: bool,
    /// Whether the "use this method for autopay" box starts checked when
    /// you add a method.
    pub checkbox_default: bool,
    /// Whether saving a new method turns autopay on with it.
    pub auto_enable_on_new_method: bool,
}

/// The customer's autopay under `settings`, as shown.
pub fn view(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    settings: &AutopaySettings,
    today: NaiveDate,
) -> Result<AutopayView, ApiError> {
    let autopay = autopay_repo::get(conn, org_id, customer_id)?;
    let method = match autopay_method_id(autopay.as_ref()) {
        Some(id) => payment_methods::get(conn, org_id, customer_id, id)
            .ok()
            .map(|m| PaymentMethodView::new(&m, true, today)),
        None => None,
    };
    Ok(AutopayView {
        enabled: method.is_some(),
        payment_method: method,
        can_change: settings.customers_can_change,
        checkbox_default: settings.checkbox_default,
        auto_enable_on_new_method: settings.auto_enable_on_new_method,
    })
}

/// Your autopay.
///
/// Whether autopay is on and with which method, and the business's
/// settings a frontend needs: `can_change` (show the toggle or not) and
/// `checkbox_default` (pre-check the box when adding a method).
#[utoipa::path(
    operation_id = "getMyAutopay",
    tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your autopay.", body = AutopayView),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn get_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<AutopayView>, ApiError> {
    let store = state.store.clone();
    let today = state.clock.today();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_payments(conn, &principal)?;
        let settings = portal::autopay_settings(conn, &principal.org_id)?;
        view(
            conn,
            &principal.org_id,
            &principal.customer_id,
            &settings,
            today,
        )
    })
    .await??;
    Ok(web::Json(v))
}

/// Autopay on or off, and its method.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopayInput {
    pub enabled: bool,
    /// A saved method of yours (`pm_...`). When turning autopay on without
    /// it: the method autopay used before, else your default.
    #[serde(default)]
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "pm_3k9x0d2m7q8r4t6v1w5y", min_length = 1, max_length = 64)]
    pub payment_method_id: Option<String>,
}

fn method_required() -> ApiError {
    ApiError::new(ProblemCode::PaymentMethodRequired).detail(
        "Le paiement automatique a besoin d'un moyen de paiement : enregistrez-en un, ou indiquez `payment_method_id`.",
        "Autopay needs a payment method: save one, or give `payment_method_id`.",
    )
}

/// Turn autopay on or off, or change its method.
///
/// Only when the business lets customers change autopay (else 403
/// `autopay_change_not_allowed`, whatever the body). Turning it on uses
/// `payment_method_id`, else the method autopay used before, else your
/// default; an expired card is refused. Turning it off keeps the method
/// for a later `enabled: true` (`payment_method_id`, if given, replaces
/// it). A change (on, off, another method) e-mails the business's billing
/// contact and emits `customer.autopay_updated` (`source:
/// autopay_changed`); a request that changes nothing does neither.
#[utoipa::path(
    operation_id = "updateMyAutopay",
    tag = "payments",
    security(("bearer" = [])),
    request_body = AutopayInput,
    responses(
        (status = 200, description = "Your autopay after the change.", body = AutopayView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Payments are off for you, the business does not let you change autopay, or a staff token. Codes: `portal_action_disabled`, `autopay_change_not_allowed`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such method of yours (removed, or another customer's). Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `payment_method_required` (turning on with no method given, used before or default), `card_expired`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("")]
pub async fn put_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    body: Json<AutopayInput>,
) -> Result<web::Json<AutopayView>, ApiError> {
    let body = body.0;
    let store = state.store.clone();
    let now = state.clock.now();
    let today = state.clock.today();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            require_payments(conn, &principal)?;
            let settings = portal::autopay_settings(conn, &principal.org_id)?;
            if !settings.customers_can_change {
                return Err(change_not_allowed());
            }
            customers::lock(conn, &principal.org_id, &principal.customer_id)?;
            let (org, customer) = (&principal.org_id, &principal.customer_id);
            let before = autopay_of(conn, &principal)?;
            let before_on = autopay_method_id(before.as_ref()).map(str::to_owned);
            let given = match &body.payment_method_id {
                Some(id) => Some(payment_methods::get(conn, org, customer, id)?),
                None => None,
            };
            let remembered = match before.as_ref().and_then(|a| a.payment_method_id.clone()) {
                Some(id) => payment_methods::get(conn, org, customer, &id).ok(),
                None => None,
            };
            if body.enabled {
                let method = match given.or(remembered) {
                    Some(m) => m,
                    None => payment_methods::list(conn, org, customer)?
                        .into_iter()
                        .find(|m| m.is_default)
                        .ok_or_else(method_required)?,
                };
                if let MethodDetails::Card { view, .. } = &method.details
                    && view.is_expired(today)
                {
                    return Err(card_expired());
                }
                if before_on.as_deref() != Some(method.id.as_str()) {
                    autopay_repo::set(conn, org, customer, true, Some(&method.id), now)?;
                    let kind = if before_on.is_some() {
                        AutopayChange::MethodChanged
                    } else {
                        AutopayChange::TurnedOn
                    };
                    notices::autopay_changed(
                        conn,
                        &principal,
                        &Change {
                            kind,
                            source: AutopaySource::AutopayChanged,
                            method: &method,
                            autopay_now: Some(&method),
                        },
                        today,
                        now,
                    )?;
                }
            } else {
                let keep = given.or(remembered);
                let keep_id = keep.as_ref().map(|m| m.id.clone());
                let stored = before.as_ref().is_some_and(|a| !a.enabled)
                    && before.as_ref().and_then(|a| a.payment_method_id.clone()) == keep_id;
                if !stored {
                    autopay_repo::set(conn, org, customer, false, keep_id.as_deref(), now)?;
                }
                if let Some(was) = &before_on {
                    let method = payment_methods::get_any(conn, org, customer, was)?;
                    notices::autopay_changed(
                        conn,
                        &principal,
                        &Change {
                            kind: AutopayChange::TurnedOff,
                            source: AutopaySource::AutopayChanged,
                            method: &method,
                            autopay_now: None,
                        },
                        today,
                        now,
                    )?;
                }
            }
            view(
                conn,
                &principal.org_id,
                &principal.customer_id,
                &settings,
                today,
            )
        })
    })
    .await??;
    Ok(web::Json(v))
}
