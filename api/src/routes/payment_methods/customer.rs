//! `/v1/me/payment-methods...`: the customer's saved cards and SEPA
//! mandates, which one is the default, and removing one.

use actix_web::{HttpResponse, delete, get, post, web};
use guichet_domain::autopay::{AutopayRefusal, autopay_on_save};
use guichet_domain::card::CardView;
use guichet_domain::events::EventType;
use guichet_domain::ids;
use guichet_domain::sepa::{Iban, PaymentType};
use guichet_jobs::notify::templates::AutopayChange;
use guichet_store::repo::mandates::{self, MandateStatus};
use guichet_store::repo::payment_methods::{self, MethodDetails, PaymentMethod};
use guichet_store::repo::{autopay as autopay_repo, customers, payment, portal, schedules};
use guichet_store::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::notices::{self, Change};
use super::{
    AutopaySource, PaymentMethodView, autopay_method_id, autopay_of, card_expired,
    change_not_allowed, require_payments,
};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::schedules::cards::{card_of, refusal_problem};
use crate::state::AppState;

const UNAUTHENTICATED: &str = "Codes: `unauthenticated`, `invalid_token`.";
const OFF: &str =
    "Payments are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.";
const NOT_FOUND: &str = "No such payment method of yours (never saved, removed, or another customer's). Codes: `not_found`.";

/// The customer's saved methods.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodList {
    /// The default first, then newest first.
    pub data: Vec<PaymentMethodView>,
}

/// The customer's live methods, as shown.
pub fn views(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    today: chrono::NaiveDate,
) -> Result<Vec<PaymentMethodView>, ApiError> {
    let autopay = autopay_repo::get(conn, org_id, customer_id)?;
    let on = autopay_method_id(autopay.as_ref()).map(str::to_owned);
    Ok(payment_methods::list(conn, org_id, customer_id)?
        .iter()
        .map(|m| PaymentMethodView::new(m, on.as_deref() == Some(m.id.as_str()), today))
        .collect())
}

fn view_of(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    id: &str,
    today: chrono::NaiveDate,
) -> Result<PaymentMethodView, ApiError> {
    let m = payment_methods::get(conn, &principal.org_id, &principal.customer_id, id)?;
    let autopay = autopay_of(conn, principal)?;
    let on = autopay_method_id(autopay.as_ref()) == Some(m.id.as_str());
    Ok(PaymentMethodView::new(&m, on, today))
}

/// Your saved payment methods.
///
/// Cards (brand, last four digits, expiry, whether expired) and SEPA
/// direct-debit mandates (masked IBAN, reference), the default first, then
/// newest first. `autopay` marks the method autopay charges while it is on.
#[utoipa::path(
    operation_id = "listMyPaymentMethods",
    tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The methods.", body = PaymentMethodList),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<PaymentMethodList>, ApiError> {
    let store = state.store.clone();
    let today = state.clock.today();
    let data = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_payments(conn, &principal)?;
        views(conn, &principal.org_id, &principal.customer_id, today)
    })
    .await??;
    Ok(web::Json(PaymentMethodList { data }))
}

/// One of your saved payment methods.
#[utoipa::path(
    operation_id = "getMyPaymentMethod",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The method (`pm_...`).")),
    responses(
        (status = 200, description = "The method.", body = PaymentMethodView),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PaymentMethodView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let today = state.clock.today();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        let conn = &mut conn;
        require_payments(conn, &principal)?;
        view_of(conn, &principal, &id, today)
    })
    .await??;
    Ok(web::Json(v))
}

/// The kind of method to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewMethodType {
    Card,
    SepaDebit,
}

/// A method to save: a card as a gateway token (never a card number), or a
/// signed recurring SEPA mandate of yours. A null member counts as absent.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPaymentMethod {
    #[serde(rename = "type")]
    pub kind: NewMethodType,
    /// With `card`: from the gateway (`POST /v1/sandbox/card-tokens` with
    /// the sandbox).
    #[serde(default)]
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7",
        min_length = 1,
        max_length = 200
    )]
    pub card_token: Option<String>,
    /// With `sepa_debit`: a signed recurring mandate (`mdt_...`).
    #[serde(default)]
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "mdt_3k9x0d2m7q8r4t6v1w5y", min_length = 1, max_length = 64)]
    pub mandate_id: Option<String>,
    /// The "use this method for autopay" box. Omitted (or null): the
    /// business's default (see the operation). Refused (403
    /// `autopay_change_not_allowed`) when the business does not let
    /// customers change autopay.
    #[serde(default)]
    pub autopay: Option<bool>,
}

fn missing(field: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            format!("Le champ « {field} » est requis pour ce type."),
            format!("The field `{field}` is required for this type."),
        )
        .field(field, "required")
}

fn unexpected(field: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            format!("Le champ « {field} » ne va pas avec ce type."),
            format!("The field `{field}` does not go with this type."),
        )
        .field(field, "not_allowed")
}

fn exists() -> ApiError {
    ApiError::new(ProblemCode::PaymentMethodExists).detail(
        "Ce moyen de paiement est déjà enregistré.",
        "This payment method is already saved.",
    )
}

fn mandate_not_usable() -> ApiError {
    ApiError::new(ProblemCode::MandateNotUsable).detail(
        "Seul un mandat de prélèvement automatique (récurrent) signé et en vigueur peut être enregistré.",
        "Only a signed recurring mandate still in force can be saved.",
    )
}

/// What the customer asked to save, once checked outside the transaction.
enum Asked {
    Card { token: String, view: CardView },
    Sepa { mandate_id: String },
}

/// Save a payment method.
///
/// A card (`"type": "card"` with `card_token`, resolved at the gateway; a
/// card number anywhere in the body is refused) under the organization's
/// accepted brands and not expired, or a SEPA direct-debit mandate
/// (`"type": "sepa_debit"` with `mandate_id`) of yours that is signed and
/// recurring. The first method saved becomes the default. The same card
/// token or mandate cannot be saved twice.
///
/// **Autopay on save** (the business's `autopay` settings, read now):
///
/// | customers may change autopay | `autopay` in the body | autopay after the save |
/// |---|---|---|
/// | yes | `true` / `false` | that value |
/// | yes | omitted | `auto_enable_on_new_method` or `checkbox_default` |
/// | no | given | refused: 403 `autopay_change_not_allowed`, nothing saved |
/// | no | omitted | `auto_enable_on_new_method` |
///
/// When the result is true, autopay is on with this method (replacing the
/// method it used). The business's billing contact is e-mailed either way
/// ("saved ... and turned on autopay" / "... and did not turn on
/// autopay"), and `payment_method.saved` and `customer.autopay_updated`
/// are emitted.
#[utoipa::path(
    operation_id = "createMyPaymentMethod",
    tag = "payments",
    security(("bearer" = [])),
    request_body = NewPaymentMethod,
    responses(
        (status = 201, description = "Saved.", body = PaymentMethodView,
            headers(("Location" = String, description = "`/v1/me/payment-methods/{id}`."))),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (also `card_token` without `card`, `mandate_id` without `sepa_debit`, or the one needed missing), `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Payments are off for you, the business does not let you change autopay and `autopay` was given, or a staff token. Codes: `portal_action_disabled`, `autopay_change_not_allowed`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such mandate of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This card token or mandate is already saved. Codes: `payment_method_exists`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `card_token_invalid` (unknown to the gateway), `card_brand_not_accepted` (with `accepted_brands`), `card_expired`, `mandate_not_usable` (not signed, revoked, expired or one-off).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    body: Json<NewPaymentMethod>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let (card_token, mandate_id) = match body.kind {
        NewMethodType::Card => {
            if body.mandate_id.is_some() {
                return Err(unexpected("mandate_id"));
            }
            (
                Some(body.card_token.ok_or_else(|| missing("card_token"))?),
                None,
            )
        }
        NewMethodType::SepaDebit => {
            if body.card_token.is_some() {
                return Err(unexpected("card_token"));
            }
            (
                None,
                Some(body.mandate_id.ok_or_else(|| missing("mandate_id"))?),
            )
        }
    };
    let requested = body.autopay;
    // Refusals that need no gateway come first: payments off, autopay
    // not the customer's to choose.
    {
        let store = state.store.clone();
        let principal = principal.clone();
        web::block(move || {
            let mut conn = store.conn()?;
            let conn = &mut conn;
            require_payments(conn, &principal)?;
            let settings = portal::autopay_settings(conn, &principal.org_id)?;
            autopay_on_save(&settings, requested)
                .map_err(|AutopayRefusal::ChangeNotAllowed| change_not_allowed())?;
            Ok::<_, ApiError>(())
        })
        .await??;
    }
    let asked = match (card_token, mandate_id) {
        (Some(token), _) => {
            let view = card_of(&state, &token).await?;
            Asked::Card { token, view }
        }
        (None, Some(mandate_id)) => Asked::Sepa { mandate_id },
        (None, None) => return Err(missing("card_token")),
    };
    let store = state.store.clone();
    let now = state.clock.now();
    let today = state.clock.today();
    let view = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            require_payments(conn, &principal)?;
            customers::lock(conn, &principal.org_id, &principal.customer_id)?;
            let settings = portal::autopay_settings(conn, &principal.org_id)?;
            let on = autopay_on_save(&settings, requested)
                .map_err(|AutopayRefusal::ChangeNotAllowed| change_not_allowed())?;
            let details = match asked {
                Asked::Card { token, view } => {
                    let accepted = payment::get(conn, &principal.org_id)?.accepted_brands;
                    if !accepted.contains(&view.brand) {
                        return Err(refusal_problem(
                            &guichet_domain::card::CardChangeRefusal::BrandNotAccepted,
                            &accepted,
                        ));
                    }
                    if view.is_expired(today) {
                        return Err(card_expired());
                    }
                    MethodDetails::Card { token, view }
                }
                Asked::Sepa { mandate_id } => {
                    let m = mandates::get_for_customer(
                        conn,
                        &principal.org_id,
                        &principal.customer_id,
                        &mandate_id,
                    )?;
                    if m.status != MandateStatus::Signed || m.payment_type != PaymentType::Recurrent
                    {
                        return Err(mandate_not_usable());
                    }
                    MethodDetails::SepaDebit {
                        mandate_id: m.id,
                        iban_masked: Iban::parse(&m.iban)
                            .map_or_else(|_| "****".to_owned(), |i| i.masked()),
                        umr: m.umr.unwrap_or_default(),
                    }
                }
            };
            if payment_methods::find_live(
                conn,
                &principal.org_id,
                &principal.customer_id,
                &details,
            )?
            .is_some()
            {
                return Err(exists());
            }
            let first =
                !payment_methods::has_default(conn, &principal.org_id, &principal.customer_id)?;
            let method = PaymentMethod {
                id: ids::new_id("pm"),
                org_id: principal.org_id.clone(),
                customer_id: principal.customer_id.clone(),
                details,
                is_default: first,
                created_at: now,
                removed_at: None,
            };
            payment_methods::insert(conn, &method).map_err(|e| match e {
                StoreError::Conflict(_) => exists(),
                e => e.into(),
            })?;
            let before = autopay_of(conn, &principal)?;
            if on {
                autopay_repo::set(
                    conn,
                    &principal.org_id,
                    &principal.customer_id,
                    true,
                    Some(&method.id),
                    now,
                )?;
            }
            notices::method_event(conn, EventType::PaymentMethodSaved, &method, on, today, now)?;
            let current = if on {
                Some(method.clone())
            } else {
                match autopay_method_id(before.as_ref()) {
                    Some(id) => {
                        payment_methods::get(conn, &principal.org_id, &principal.customer_id, id)
                            .ok()
                    }
                    None => None,
                }
            };
            notices::autopay_changed(
                conn,
                &principal,
                &Change {
                    kind: if on {
                        AutopayChange::SavedOn
                    } else {
                        AutopayChange::SavedOff
                    },
                    source: AutopaySource::MethodSaved,
                    method: &method,
                    autopay_now: current.as_ref(),
                },
                today,
                now,
            )?;
            Ok::<_, ApiError>(PaymentMethodView::new(&method, on, today))
        })
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/me/payment-methods/{}", view.id)))
        .json(view))
}

/// `?replacement=` of a removal.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Another method of yours (`pm_...`) that autopay uses from now on,
    /// when the method removed is autopay's (read only then).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub replacement: Option<String>,
}

fn in_use(used_by: &[String]) -> ApiError {
    ApiError::new(ProblemCode::PaymentMethodInUse)
        .detail(
            format!(
                "Ce moyen de paiement est utilisé ({}) : choisissez-en un autre d'abord (paiement automatique : `?replacement=` ; échéancier : changez sa carte).",
                used_by.join(", ")
            ),
            format!(
                "This payment method is in use ({}): choose another first (autopay: `?replacement=`; a schedule: change its card).",
                used_by.join(", ")
            ),
        )
        .extension("used_by", json!(used_by))
}

/// Remove a saved payment method.
///
/// The method is no longer shown nor charged (it is kept for the
/// business's history). When it is the default, your newest remaining
/// method becomes the default. A card that a schedule in progress (or
/// unpaid) is debited from cannot be removed: change the schedule's card
/// first (`PUT /v1/me/schedules/{id}/card`). The method autopay charges
/// cannot be removed without `?replacement=pm_...`, which moves autopay to
/// that method (only when the business lets customers change autopay; the
/// billing contact is told, and `customer.autopay_updated` is emitted with
/// `source: method_removed`). Emits `payment_method.removed`.
#[utoipa::path(
    operation_id = "deleteMyPaymentMethod",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The method (`pm_...`)."), RemoveQuery),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Payments are off for you, a `replacement` while the business does not let you change autopay, or a staff token. Codes: `portal_action_disabled`, `autopay_change_not_allowed`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such method of yours, or no such `replacement`. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It pays an active autopay (without `replacement`) or a schedule. Codes: `payment_method_in_use` (with `used_by`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The replacement is the method removed, or an expired card. Codes: `validation_failed`, `card_expired`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/{id}")]
pub async fn remove(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<RemoveQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let replacement = query.into_inner().replacement;
    let store = state.store.clone();
    let now = state.clock.now();
    let today = state.clock.today();
    web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            require_payments(conn, &principal)?;
            customers::lock(conn, &principal.org_id, &principal.customer_id)?;
            let method =
                payment_methods::get(conn, &principal.org_id, &principal.customer_id, &id)?;
            let autopay = autopay_of(conn, &principal)?;
            let pays_autopay = autopay_method_id(autopay.as_ref()) == Some(method.id.as_str());
            let mut used_by = Vec::new();
            if pays_autopay && replacement.is_none() {
                used_by.push("autopay".to_owned());
            }
            if let MethodDetails::Card { token, .. } = &method.details {
                used_by.extend(schedules::open_orders_with_card_token(
                    conn,
                    &principal.org_id,
                    &principal.customer_id,
                    token,
                )?);
            }
            if !used_by.is_empty() {
                return Err(in_use(&used_by));
            }
            let new_autopay = match (&replacement, pays_autopay) {
                (Some(other), true) => {
                    if !portal::autopay_settings(conn, &principal.org_id)?.customers_can_change {
                        return Err(change_not_allowed());
                    }
                    if *other == method.id {
                        return Err(ApiError::new(ProblemCode::ValidationFailed)
                            .detail(
                                "Le moyen de remplacement est celui que vous retirez.",
                                "The replacement is the method you remove.",
                            )
                            .field("replacement", "same_method"));
                    }
                    let other = payment_methods::get(
                        conn,
                        &principal.org_id,
                        &principal.customer_id,
                        other,
                    )?;
                    if let MethodDetails::Card { view, .. } = &other.details
                        && view.is_expired(today)
                    {
                        return Err(card_expired());
                    }
                    Some(other)
                }
                _ => None,
            };
            payment_methods::remove(conn, &principal.org_id, &principal.customer_id, &id, now)?;
            match &new_autopay {
                Some(other) => autopay_repo::set(
                    conn,
                    &principal.org_id,
                    &principal.customer_id,
                    true,
                    Some(&other.id),
                    now,
                )?,
                None => {
                    // Autopay (off) forgets a method that is gone.
                    if let Some(a) = &autopay
                        && a.payment_method_id.as_deref() == Some(method.id.as_str())
                    {
                        autopay_repo::set(
                            conn,
                            &principal.org_id,
                            &principal.customer_id,
                            false,
                            None,
                            now,
                        )?;
                    }
                }
            }
            notices::method_event(
                conn,
                EventType::PaymentMethodRemoved,
                &method,
                false,
                today,
                now,
            )?;
            if let Some(other) = &new_autopay {
                notices::autopay_changed(
                    conn,
                    &principal,
                    &Change {
                        kind: AutopayChange::MethodRemoved,
                        source: AutopaySource::MethodRemoved,
                        method: &method,
                        autopay_now: Some(other),
                    },
                    today,
                    now,
                )?;
            }
            Ok::<_, ApiError>(())
        })
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Make a payment method your default.
///
/// The default is the method offered first; autopay does not change (see
/// `PUT /v1/me/autopay`).
#[utoipa::path(
    operation_id = "setMyDefaultPaymentMethod",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The method (`pm_...`).")),
    responses(
        (status = 200, description = "The method, now the default.", body = PaymentMethodView),
        (status = 401, description = UNAUTHENTICATED, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = OFF, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/default")]
pub async fn make_default(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PaymentMethodView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let today = state.clock.today();
    let v = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            require_payments(conn, &principal)?;
            customers::lock(conn, &principal.org_id, &principal.customer_id)?;
            payment_methods::set_default(conn, &principal.org_id, &principal.customer_id, &id)?;
            view_of(conn, &principal, &id, today)
        })
    })
    .await??;
    Ok(web::Json(v))
}
