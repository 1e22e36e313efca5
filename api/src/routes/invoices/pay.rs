//! `POST /v1/me/invoices/{id}/payments`: the customer pays an invoice
//! online, all of it or part (when the business allows), exactly once.
//!
//! The pattern of the regularization: the payment is written `pending`
//! under the invoice's lock, with a gateway key derived from the invoice
//! and the attempt's number (never from the client's key), before the
//! gateway is called; whoever learns the gateway's answer first (the
//! request, its retry with the same `Idempotency-Key` after a crash or a
//! timeout, another request for the same invoice past its lease) settles
//! it, in one transaction with the invoice's amount paid. A charge whose
//! outcome is unknown is looked up, never sent again under a new key.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, post, web};
use guichet_domain::card::CardChangeRefusal;
use guichet_domain::events::Actor;
use guichet_domain::gateway::{ChargeReceipt, GatewayError};
use guichet_domain::invoice as rules;
use guichet_domain::{Money, ids};
use guichet_store::repo::invoices::{self, Details, Payment, Recorded, Settled};
use guichet_store::repo::payment;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use super::admin::payment_refusal;
use super::customer::load_mine;
use super::{InvoicePaymentView, InvoiceView};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::faults::FaultPoint;
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, Problem, ProblemCode};
use crate::routes::idempotency;
use crate::routes::schedules::cards::{card_of, refusal_problem};
use crate::routes::schedules::regularization::{contacts, locale_and_id};
use crate::routes::schedules::sandbox::gateway_problem;
use crate::state::AppState;
use guichet_jobs::invoices as render;

/// What to pay and with what.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayInvoice {
    /// Minor units: at most what is due; less only when the business
    /// allows partial payments. Default: all that is due.
    #[validate(range(min = 1_i64, max = 1_000_000_000_000_000_i64))]
    #[schema(
        minimum = 1,
        maximum = 1_000_000_000_000_000_i64,
        nullable = false,
        example = 4500
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub amount: Option<i64>,
    /// A payment-gateway card token (never a card number). Exactly one of
    /// `card_token` and `payment_method_id`.
    #[validate(length(min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        nullable = false,
        example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub card_token: Option<String>,
    /// One of the customer's saved cards (`pm_...`, `GET
    /// /v1/me/payment-methods`). Exactly one of `card_token` and
    /// `payment_method_id`.
    #[validate(length(min = 1, max = 64))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        nullable = false,
        example = "pm_3k9x0d2m7q8r4t6v1w5y"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub payment_method_id: Option<String>,
}

/// A payment that went through, and the invoice after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePaid {
    pub payment: InvoicePaymentView,
    pub invoice: InvoiceView,
}

fn request_hash(invoice_id: &str, body: &PayInvoice) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"invoice-payment\0");
    hasher.update(invoice_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(body.amount.unwrap_or(0).to_be_bytes());
    hasher.update(body.card_token.as_deref().unwrap_or("").as_bytes());
    hasher.update(b"\0");
    hasher.update(body.payment_method_id.as_deref().unwrap_or("").as_bytes());
    hex::encode(hasher.finalize())
}

/// How an attempt ended when it did not succeed.
enum Failure {
    /// The charge was refused: a final answer, remembered under the key.
    Payment(ApiError),
    /// Anything else: nothing was decided, the key is let go.
    Refused(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Refused(e)
    }
}

impl From<guichet_store::StoreError> for Failure {
    fn from(e: guichet_store::StoreError) -> Self {
        Failure::Refused(e.into())
    }
}

impl From<actix_web::error::BlockingError> for Failure {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Failure::Refused(e.into())
    }
}

fn in_progress(retry_after: i64) -> ApiError {
    ApiError::new(ProblemCode::InvoicePaymentInProgress)
        .detail(
            "Un paiement de cette facture est déjà en cours ; réessayez dans un instant.",
            "A payment of this invoice is already under way; retry shortly.",
        )
        .header(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(retry_after.max(1)),
        )
}

fn payment_failed(amount: Money, reason: &str) -> ApiError {
    ApiError::new(ProblemCode::PaymentFailed)
        .detail(
            format!("Le paiement de {amount} a été refusé ({reason}) ; la facture est inchangée."),
            format!("The payment of {amount} was refused ({reason}); the invoice is unchanged."),
        )
        .extension("reason", json!(reason))
}

/// Pay one of my invoices.
///
/// All that is due (default) or part of it when the business allows
/// partial payments (never more than what is due), with a card token or
/// one of the customer's saved cards.
/// Requires `Idempotency-Key`: the same key and body replay the first
/// answer (status and body, success or refused payment) for 24 hours;
/// after a crash or a gateway timeout, a retry with the same key looks the
/// charge up and finishes it, never charging twice. Success e-mails a
/// receipt (PDF) and records `invoice.paid` or `invoice.partially_paid`;
/// a refused card changes nothing and its problem carries the contact
/// channels.
#[utoipa::path(
    tag = "me",
    operation_id = "payMyInvoice",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Invoice id (`inv_...`)."),
        ("Idempotency-Key" = String, Header, description = "Required: a unique key per payment attempt (1 to 255 visible ASCII characters), scoped to the customer."),
    ),
    request_body = PayInvoice,
    responses(
        (status = 201, description = "Paid: the payment and the invoice after it (also the replay of a first success, with `Idempotent-Replayed: true`).", body = InvoicePaid),
        (status = 400, description = "Codes: `idempotency_key_required`, `invalid_parameter` (a malformed key), `invalid_field`, `unknown_field`, `malformed_json`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Codes: `unauthenticated`, `invalid_token`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer token, or the `payments` action is off for the customer. Codes: `forbidden`, `portal_action_disabled`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice of yours, or no such saved payment method of yours. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `invoice_void`, `invoice_already_paid`, `idempotency_key_in_use` (with `Retry-After`), `invoice_payment_in_progress` (another payment of this invoice is under way, whatever its key; with `Retry-After`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use` and `invoice_payment_in_progress`: whole seconds before a retry may go through."))),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `payment_failed` (the charge was refused: `reason` is the gateway's code; the invoice is unchanged), `amount_above_due` and `partial_payment_not_allowed` (with `amount_due`), `card_brand_not_accepted` (with `accepted_brands`), `card_expired`, `card_token_invalid`, `payment_method_not_supported` (a saved SEPA mandate), `validation_failed` (both `card_token` and `payment_method_id`, or neither), `idempotency_key_reused`. The payment and card refusals carry `contact_channels` (and `collections` when the business has a collections phone).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable` (retry with the same key), `gateway_timeout` (retry with the same key, which looks the charge up first), `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/payments")]
pub async fn pay(
    req: HttpRequest,
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<PayInvoice>,
) -> Result<HttpResponse, ApiError> {
    let invoice_id = path.into_inner();
    let body = body.0;
    // Not found (or payments off) first: another customer's id never
    // reaches the idempotency store nor the gateway.
    load_mine(&state, &principal, invoice_id.clone()).await?;
    let key = idempotency::required_key(&req)?;
    let hash = request_hash(&invoice_id, &body);
    let now = state.clock.now();
    let scope = principal.customer_id.clone();
    if let Some(replay) = idempotency::claim(&state, scope.clone(), key.clone(), hash, now).await? {
        return Ok(replay.respond(|_| {}));
    }
    match attempt(&state, &principal, &invoice_id, &body, &key).await {
        Ok(json) => {
            idempotency::settle(&state, scope, key, Some((201, json.clone()))).await;
            Ok(HttpResponse::Created()
                .insert_header(("Location", format!("/v1/me/invoices/{invoice_id}")))
                .content_type("application/json")
                .body(json))
        }
        Err(Failure::Payment(problem)) => {
            let (locale, request_id) = locale_and_id(&req);
            let rendered = problem.to_problem(locale, request_id.as_deref());
            let text =
                serde_json::to_string(&rendered).map_err(|e| ApiError::internal(e.to_string()))?;
            idempotency::settle(
                &state,
                scope,
                key,
                Some((problem.status().as_u16(), text.clone())),
            )
            .await;
            Ok(HttpResponse::build(problem.status())
                .insert_header((CONTENT_TYPE, PROBLEM_CONTENT_TYPE))
                .body(text))
        }
        Err(Failure::Refused(error)) => {
            idempotency::settle(&state, scope, key, None).await;
            Err(error)
        }
    }
}

/// Asks the gateway what became of a pending payment and settles it. With
/// `send`, a charge the gateway never received is sent now; without, it
/// is given up. `Ok(Err(_))`: the outcome is still unknown, the payment
/// stays pending.
async fn settle_pending(
    state: &web::Data<AppState>,
    p: &Payment,
    lookup_first: bool,
    send: bool,
) -> Result<Result<(), GatewayError>, ApiError> {
    let details = Details::of(p)?
        .ok_or_else(|| ApiError::internal("an online invoice payment without details"))?;
    let key = p
        .gateway_key
        .clone()
        .ok_or_else(|| ApiError::internal("an online invoice payment without a gateway key"))?;
    let gateway = state.gateway.clone();
    let pending = p.clone();
    let outcome = web::block(move || {
        let found = if lookup_first {
            gateway.find_charge(&pending.org_id, &key)?
        } else {
            None
        };
        match found {
            Some(outcome) => Ok(Some(outcome)),
            None if send => Ok(Some(gateway.charge(
                &pending.org_id,
                &details.card_token,
                pending.amount,
                &key,
            ))),
            None => Ok(None),
        }
    })
    .await?;
    let outcome: Option<Result<ChargeReceipt, GatewayError>> = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return Ok(Err(error)),
    };
    if let Some(Err(error)) = &outcome
        && error.is_transient()
    {
        return Ok(Err(error.clone()));
    }
    let state = state.clone();
    let pending = p.clone();
    let now = state.clock.now();
    web::block(move || {
        let mut conn = state.store.conn()?;
        match outcome {
            Some(outcome) => invoices::settle(
                &mut conn,
                &pending,
                &outcome,
                now,
                Actor::Customer,
                |conn, inv, paid| render::tell_paid(conn, inv, paid, now),
                || state.faults.pause(FaultPoint::InvoicePayment),
            )
            .map(|_: Settled| ()),
            None => invoices::abandon(&mut conn, &pending, now).map(|_| ()),
        }
    })
    .await??;
    Ok(Ok(()))
}

/// The final answer of a settled payment: the payment and the invoice, or
/// the refused payment.
async fn answer_of(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    payment_id: String,
) -> Result<String, Failure> {
    let store = state.store.clone();
    let principal = principal.clone();
    let (p, inv) = web::block(move || {
        let mut conn = store.conn()?;
        let p = invoices::payment(&mut conn, &payment_id)?;
        let inv = invoices::get_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &p.invoice_id,
        )?;
        Ok::<_, ApiError>((p, inv))
    })
    .await??;
    match p.status.as_str() {
        invoices::SUCCEEDED => serde_json::to_string(&InvoicePaid {
            payment: InvoicePaymentView::from(&p),
            invoice: InvoiceView::new(&inv, state.clock.today()),
        })
        .map_err(|e| Failure::Refused(ApiError::internal(e.to_string()))),
        invoices::FAILED => {
            let reason = p.failure_code.as_deref().unwrap_or("unknown");
            let problem = payment_failed(p.amount, reason);
            Err(Failure::Payment(
                contacts(state, &p.org_id, problem, state.clock.now()).await,
            ))
        }
        _ => Err(Failure::Refused(ApiError::internal(
            "an invoice payment is still pending after settlement",
        ))),
    }
}

/// Takes a pending payment of this attempt to its end.
async fn finish(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    p: Payment,
    resumed: bool,
) -> Result<String, Failure> {
    if p.status == invoices::PENDING {
        match settle_pending(state, &p, resumed, true).await? {
            Ok(()) => {}
            Err(error) => return Err(Failure::Refused(gateway_problem(&error))),
        }
    }
    answer_of(state, principal, p.id).await
}

/// The card token to charge: the one given, or the saved card's (another
/// customer's or a removed method is 404; a SEPA mandate pays by autopay,
/// not at once).
async fn method_of(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    body: &PayInvoice,
) -> Result<(String, Option<String>), Failure> {
    match (&body.card_token, &body.payment_method_id) {
        (Some(token), None) => Ok((token.clone(), None)),
        (None, Some(id)) => {
            let store = state.store.clone();
            let (org, customer, id) = (
                principal.org_id.clone(),
                principal.customer_id.clone(),
                id.clone(),
            );
            let method = web::block(move || {
                let mut conn = store.conn()?;
                guichet_store::repo::payment_methods::get(&mut conn, &org, &customer, &id)
            })
            .await?
            .map_err(|e| match e {
                guichet_store::StoreError::NotFound => Failure::Refused(
                    ApiError::new(ProblemCode::NotFound)
                        .detail("Moyen de paiement introuvable.", "No such payment method."),
                ),
                e => e.into(),
            })?;
            match method.details {
                guichet_store::repo::payment_methods::MethodDetails::Card { token, .. } => {
                    Ok((token, Some(method.id)))
                }
                guichet_store::repo::payment_methods::MethodDetails::SepaDebit { .. } => {
                    Err(Failure::Refused(
                        ApiError::new(ProblemCode::PaymentMethodNotSupported)
                            .detail(
                                "Un mandat SEPA ne règle pas une facture immédiatement : choisissez une carte.",
                                "A SEPA mandate does not pay an invoice at once: choose a card.",
                            )
                            .field("payment_method_id", "sepa_debit"),
                    ))
                }
            }
        }
        _ => Err(Failure::Refused(
            ApiError::new(ProblemCode::ValidationFailed)
                .detail(
                    "Donnez soit card_token, soit payment_method_id.",
                    "Give either card_token or payment_method_id.",
                )
                .field("card_token", "one_of"),
        )),
    }
}

/// Checks the card, records the pending payment and takes it to its end.
async fn attempt(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    invoice_id: &str,
    body: &PayInvoice,
    key: &str,
) -> Result<String, Failure> {
    let scope = principal.customer_id.clone();
    let earlier = {
        let store = state.store.clone();
        let (scope, key) = (scope.clone(), key.to_owned());
        web::block(move || {
            let mut conn = store.conn()?;
            invoices::of_request(&mut conn, &scope, &key)
        })
        .await??
    };
    if let Some(p) = earlier {
        if p.invoice_id != invoice_id {
            return Err(Failure::Refused(
                ApiError::new(ProblemCode::IdempotencyKeyReused).detail(
                    "Cette clé d'idempotence a déjà servi pour une autre requête.",
                    "This idempotency key was already used for another request.",
                ),
            ));
        }
        return finish(state, principal, p, true).await;
    }
    for _ in 0..2 {
        let now = state.clock.now();
        let today = now.date_naive();
        let inv = load_mine(state, principal, invoice_id.to_owned()).await?;
        let settings = {
            let store = state.store.clone();
            let org_id = principal.org_id.clone();
            web::block(move || {
                let mut conn = store.conn()?;
                payment::get(&mut conn, &org_id)
            })
            .await??
        };
        let amount = rules::payable(
            inv.status,
            inv.total_money(),
            inv.amount_paid,
            body.amount.map(|a| Money::new(a, inv.currency)),
            settings.invoice_partial_payments,
        )
        .map_err(|r| Failure::Refused(payment_refusal(&r)))?;
        let (token, method_id) = method_of(state, principal, body).await?;
        let card = match card_of(state, &token).await {
            Ok(view) if !settings.accepted_brands.contains(&view.brand) => Err(refusal_problem(
                &CardChangeRefusal::BrandNotAccepted,
                &settings.accepted_brands,
            )),
            Ok(view) if view.is_expired(today) => Err(refusal_problem(
                &CardChangeRefusal::CardExpired,
                &settings.accepted_brands,
            )),
            other => other,
        };
        let card = match card {
            Ok(card) => card,
            Err(problem) if problem.status().is_client_error() => {
                return Err(Failure::Refused(
                    contacts(state, &principal.org_id, problem, now).await,
                ));
            }
            Err(problem) => return Err(Failure::Refused(problem)),
        };
        let details = Details {
            card_token: token,
            card,
            payment_method_id: method_id,
        };
        let p = Payment {
            id: ids::new_id("ipy"),
            org_id: principal.org_id.clone(),
            invoice_id: invoice_id.to_owned(),
            customer_id: principal.customer_id.clone(),
            amount,
            source: "customer".to_owned(),
            method: "card".to_owned(),
            status: invoices::PENDING.to_owned(),
            gateway_key: None,
            gateway_charge_id: None,
            failure_code: None,
            request: Some((scope.clone(), key.to_owned())),
            details: Some(details.to_json()?),
            reference: None,
            paid_on: None,
            created_at: now,
            completed_at: None,
        };
        let store = state.store.clone();
        let partial = settings.invoice_partial_payments;
        let recorded = web::block(move || {
            let mut conn = store.conn()?;
            invoices::record_pending(&mut conn, p, partial)
        })
        .await?;
        let recorded = match recorded {
            Ok(r) => r,
            // The unique index on a pending payment per invoice: another
            // node's request got in between.
            Err(guichet_store::StoreError::Conflict(_)) => {
                return Err(Failure::Refused(in_progress(1)));
            }
            Err(e) => return Err(e.into()),
        };
        match recorded {
            Recorded::Written(p) => return finish(state, principal, p, false).await,
            Recorded::Refused(refusal) => return Err(Failure::Refused(payment_refusal(&refusal))),
            Recorded::NotDue => return Err(Failure::Refused(in_progress(1))),
            Recorded::Pending(other) => {
                let lease = state.idempotency_lease();
                let age = now - other.created_at;
                if age < lease {
                    let left = (lease - age).num_seconds() + 1;
                    return Err(Failure::Refused(in_progress(left)));
                }
                if let Err(error) = settle_pending(state, &other, true, false).await? {
                    return Err(Failure::Refused(gateway_problem(&error)));
                }
            }
        }
    }
    Err(Failure::Refused(in_progress(1)))
}
