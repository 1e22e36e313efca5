//! `GET` and `POST /v1/me/schedules/{id}/regularization`: pay an unpaid
//! debt at once or in 2 or 3 monthly payments ("Régulariser").

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::card::CardView;
use guichet_domain::gateway::{ChargeReceipt, GatewayError};
use guichet_domain::schedule::{Offer, idempotency_key, offers as offers_for};
use guichet_domain::{Locale, Money, ids};
use guichet_store::repo::charges::{self, Charge};
use guichet_store::repo::schedules::{self, Order};
use guichet_store::repo::{organizations, payment, regularizations};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use super::cards::{card_of, expires_before_problem, refusal_problem};
use super::contact::{channel_list, load_channels};
use super::sandbox::gateway_problem;
use super::{AUTH_FAILURES, NOT_FOUND, ROLE_FAILURE, load_order};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::edge::{RequestId, RequestLocale};
use crate::faults::FaultPoint;
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, Problem, ProblemCode};
use crate::routes::idempotency;
use crate::routes::views::{MoneyView, ScheduleView};
use crate::state::AppState;

/// One payment of an offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferPart {
    /// The first part is charged at once, today; the others are debited on
    /// their date from the card used.
    pub date: NaiveDate,
    pub amount: MoneyView,
}

/// A way to pay the unpaid amount.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    /// 1 (at once), 2 or 3 monthly payments.
    #[schema(example = 3)]
    pub payments: u8,
    pub parts: Vec<OfferPart>,
}

/// What is unpaid and how it can be paid.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegularizationOffers {
    pub unpaid: MoneyView,
    pub offers: Vec<OfferView>,
}

impl From<&Offer> for OfferView {
    fn from(offer: &Offer) -> Self {
        OfferView {
            payments: offer.payments,
            parts: offer
                .parts
                .iter()
                .map(|(date, amount)| OfferPart {
                    date: *date,
                    amount: (*amount).into(),
                })
                .collect(),
        }
    }
}

/// The chosen offer and the card to pay with.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Regularize {
    /// 1, 2 or 3: one of the offers of `GET .../regularization`.
    #[validate(range(min = 1, max = 3))]
    #[schema(example = 1, minimum = 1, maximum = 3)]
    pub payments: u8,
    /// A payment-gateway card token (never a card number).
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7",
        min_length = 1,
        max_length = 200
    )]
    pub card_token: String,
    /// With 1 payment only: `true` pays with this card once and keeps the
    /// schedule's card for the later debits. By default (`false`) the card
    /// paying also becomes the schedule's card (and must then be valid
    /// through the last debit left); with 2 or 3 payments it always does.
    #[serde(default)]
    #[schema(default = false)]
    pub keep_card: bool,
}

fn nothing_to_regularize() -> ApiError {
    ApiError::new(ProblemCode::NothingToRegularize).detail(
        "Cet échéancier n'a aucun impayé à régulariser.",
        "This schedule has no unpaid amount to regularize.",
    )
}

/// The unpaid amount and today's offers, or 409 when nothing is unpaid.
fn offers_of(order: &Order, today: NaiveDate) -> Result<(Money, Vec<Offer>), ApiError> {
    let unpaid = order.schedule.unpaid_amount();
    if unpaid.amount <= 0 {
        return Err(nothing_to_regularize());
    }
    Ok((unpaid, offers_for(unpaid, today)))
}

/// A schedule's unpaid amount and today's offers to pay it.
///
/// The unpaid amount of a schedule and today's offers to pay it: at once,
/// or in 2 or 3 monthly payments (the first charged at once; remainder cents
/// on the first payments).
#[utoipa::path(
    operation_id = "getMyRegularizationOffers",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule (order) id (`ord_...`).")),
    responses(
        (status = 200, description = "The unpaid amount and the offers.", body = RegularizationOffers),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing is unpaid. Codes: `nothing_to_regularize`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/regularization")]
pub async fn offers(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<RegularizationOffers>, ApiError> {
    let order = load_order(&state, &principal, path.into_inner()).await?;
    let (unpaid, list) = offers_of(&order, state.clock.today())?;
    Ok(web::Json(RegularizationOffers {
        unpaid: unpaid.into(),
        offers: list.iter().map(OfferView::from).collect(),
    }))
}

fn request_hash(order_id: &str, body: &Regularize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"regularization\0");
    hasher.update(order_id.as_bytes());
    hasher.update(b"\0");
    hasher.update([body.payments]);
    hasher.update(body.card_token.as_bytes());
    if body.keep_card {
        hasher.update(b"\0keep_card");
    }
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

/// The `tel:` form of a phone number as typed.
pub fn tel_link(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

/// The collections phone: the organization's collections number, else its
/// support number.
pub fn collections_phone(
    conn: &mut guichet_store::DbConnection,
    org_id: &str,
) -> Result<Option<String>, ApiError> {
    let settings = payment::get(conn, org_id)?;
    let org = organizations::get(conn, org_id)?;
    Ok(settings.collections_phone.or(org.support_phone))
}

/// `{"tel": "tel:+33...", "phone": "..."}` for a collections phone.
pub fn collections_json(phone: &str) -> serde_json::Value {
    json!({"tel": tel_link(phone), "phone": phone})
}

/// Adds what the customer needs to act on a refused regularization (the
/// seed's pop-in): the collections phone with its `tel:` link and the
/// contact channels with their status now.
fn with_contacts(
    state: &AppState,
    org_id: &str,
    problem: ApiError,
    now: DateTime<Utc>,
) -> Result<ApiError, ApiError> {
    let mut conn = state.store.conn()?;
    let phone = collections_phone(&mut conn, org_id)?;
    let channels = load_channels(&mut conn, org_id)?;
    let mut problem = problem;
    if let Some(phone) = &phone {
        problem = problem.extension("collections", collections_json(phone));
    }
    let list = channel_list(&channels, now);
    Ok(problem.extension("contact_channels", json!(list)))
}

/// [`with_contacts`] from async code.
pub(crate) async fn contacts(
    state: &web::Data<AppState>,
    org_id: &str,
    problem: ApiError,
    now: DateTime<Utc>,
) -> ApiError {
    let state = state.clone();
    let org_id = org_id.to_owned();
    match web::block(move || with_contacts(&state, &org_id, problem, now)).await {
        Ok(Ok(problem)) => problem,
        Ok(Err(e)) => e,
        Err(e) => e.into(),
    }
}

/// The problem for a refused charge (`reason`: the gateway's code), naming
/// the collections phone when there is one.
fn payment_failed(amount: Money, reason: &str, phone: Option<&str>) -> ApiError {
    let (call_fr, call_en) = match phone {
        Some(p) => (
            format!(" Appelez le service recouvrement au {p} ou contactez-nous."),
            format!(" Call the collections department on {p} or contact us."),
        ),
        None => (
            " Contactez-nous.".to_owned(),
            " Please contact us.".to_owned(),
        ),
    };
    ApiError::new(ProblemCode::PaymentFailed)
        .detail(
            format!(
                "Le paiement de {amount} a été refusé ({reason}) ; l'échéancier est inchangé.{call_fr}"
            ),
            format!(
                "The payment of {amount} was refused ({reason}); the schedule is unchanged.{call_en}"
            ),
        )
        .extension("reason", json!(reason))
}

fn in_progress(retry_after: i64) -> ApiError {
    ApiError::new(ProblemCode::RegularizationInProgress)
        .detail(
            "Un paiement de régularisation de cet échéancier est déjà en cours ; réessayez dans un instant.",
            "A regularization payment of this schedule is already under way; retry shortly.",
        )
        .header(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(retry_after.max(1)),
        )
}

/// What recording a new attempt found.
enum Recorded {
    /// The pending charge of this attempt.
    Charge(Box<Charge>),
    /// Another attempt's charge for the same debt is still pending.
    Pending(Box<Charge>),
}

/// Records the pending charge of a new attempt under the order's lock: its
/// gateway key is derived from the debt (the order) and the attempt's
/// number, never from the client's key, so no other request can charge the
/// same debt twice.
fn record_attempt(
    conn: &mut guichet_store::DbConnection,
    charge: Charge,
) -> Result<Recorded, ApiError> {
    guichet_store::transaction(conn, |conn| {
        schedules::lock(conn, &charge.org_id, &charge.order_id)?;
        let earlier = regularizations::of_order(conn, &charge.order_id)?;
        if let Some(pending) = earlier.iter().find(|c| c.status == "pending") {
            return Ok(Recorded::Pending(Box::new(pending.clone())));
        }
        let attempt = u32::try_from(earlier.len() + 1).unwrap_or(u32::MAX);
        let charge = Charge {
            idempotency_key: regularization_key(&charge.order_id, attempt),
            ..charge
        };
        match charges::insert_pending(conn, &charge) {
            Ok(()) => Ok(Recorded::Charge(Box::new(charge))),
            Err(guichet_store::StoreError::Conflict(_)) => Err(in_progress(1)),
            Err(e) => Err(e.into()),
        }
    })
}

/// The gateway key of the `attempt`-th regularization of an order.
pub fn regularization_key(order_id: &str, attempt: u32) -> String {
    idempotency_key(&format!("{order_id}:regularization"), attempt)
}

/// Asks the gateway what became of a pending charge and settles it. With
/// `send`, a charge the gateway never received is sent now (the request
/// that recorded it, or its retry); without, it is given up (another
/// request found it abandoned). `Ok(false)`: the outcome is still unknown
/// (the gateway is unavailable or timed out), and the charge stays pending.
async fn settle_pending(
    state: &web::Data<AppState>,
    charge: &Charge,
    lookup_first: bool,
    send: bool,
) -> Result<Result<(), GatewayError>, ApiError> {
    let details = regularizations::Details::of(charge)?;
    let gateway = state.gateway.clone();
    let pending = charge.clone();
    let outcome = web::block(move || {
        let found = if lookup_first {
            gateway.find_charge(&pending.org_id, &pending.idempotency_key)?
        } else {
            None
        };
        match found {
            Some(outcome) => Ok(Some(outcome)),
            None if send => Ok(Some(gateway.charge(
                &pending.org_id,
                &details.card_token,
                pending.amount,
                &pending.idempotency_key,
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
    let pending = charge.clone();
    let now = state.clock.now();
    web::block(move || {
        let mut conn = state.store.conn()?;
        match outcome {
            Some(outcome) => regularizations::settle_with(
                &mut conn,
                &pending,
                &outcome,
                now,
                guichet_domain::events::Actor::Customer,
                || state.faults.pause(FaultPoint::Regularization),
            ),
            None => regularizations::abandon(&mut conn, &pending, now),
        }
    })
    .await??;
    Ok(Ok(()))
}

/// The final answer of a settled regularization charge: the schedule after
/// it, or the refused payment.
async fn answer_of(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    charge_id: String,
) -> Result<String, Failure> {
    let store = state.store.clone();
    let principal = principal.clone();
    let (charge, order, phone) = web::block(move || {
        let mut conn = store.conn()?;
        let charge = charges::get(&mut conn, &charge_id)?;
        let order = schedules::get_for_customer(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            &charge.order_id,
        )?;
        let phone = collections_phone(&mut conn, &principal.org_id)?;
        Ok::<_, ApiError>((charge, order, phone))
    })
    .await??;
    match charge.status.as_str() {
        "succeeded" => serde_json::to_string(&ScheduleView::from(&order))
            .map_err(|e| Failure::Refused(ApiError::internal(e.to_string()))),
        "failed" => {
            let reason = charge.failure_code.as_deref().unwrap_or("unknown");
            let problem = payment_failed(charge.amount, reason, phone.as_deref());
            Err(Failure::Payment(
                contacts(state, &charge.org_id, problem, state.clock.now()).await,
            ))
        }
        _ => Err(Failure::Refused(ApiError::internal(
            "a regularization charge is still pending after settlement",
        ))),
    }
}

/// Takes a pending charge of this attempt to its end: sent (or first looked
/// up, when an earlier attempt may have sent it), settled, answered.
async fn finish(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    charge: Charge,
    resumed: bool,
) -> Result<String, Failure> {
    if charge.status == "pending" {
        match settle_pending(state, &charge, resumed, true).await? {
            Ok(()) => {}
            // The charge stays pending: the same key resumes it, and the
            // reconciliation job settles it if nobody comes back.
            Err(error) => return Err(Failure::Refused(gateway_problem(&error))),
        }
    }
    answer_of(state, principal, charge.id).await
}

/// Charges the first payment of the chosen offer and applies it. Returns
/// the schedule's JSON.
async fn attempt(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    order_id: &str,
    body: &Regularize,
    key: &str,
) -> Result<String, Failure> {
    let scope = principal.customer_id.clone();
    // An earlier attempt under this key (crashed, timed out, or cut off by
    // an outage) left its charge: resume it, never charge anew.
    let earlier = {
        let store = state.store.clone();
        let (scope, key) = (scope.clone(), key.to_owned());
        web::block(move || {
            let mut conn = store.conn()?;
            regularizations::of_request(&mut conn, &scope, &key)
        })
        .await??
    };
    if let Some(charge) = earlier {
        if charge.order_id != order_id {
            return Err(Failure::Refused(
                ApiError::new(ProblemCode::IdempotencyKeyReused).detail(
                    "Cette clé d'idempotence a déjà servi pour une autre requête.",
                    "This idempotency key was already used for another request.",
                ),
            ));
        }
        return finish(state, principal, charge, true).await;
    }
    // At most twice: a pending charge of an abandoned request is settled
    // first, then the debt is looked at again.
    for _ in 0..2 {
        let now = state.clock.now();
        let today = now.date_naive();
        let order = load_order(state, principal, order_id.to_owned()).await?;
        let (_, list) = offers_of(&order, today)?;
        let offer = list
            .into_iter()
            .find(|o| o.payments == body.payments)
            .ok_or_else(|| {
                ApiError::new(ProblemCode::RegularizationOfferUnavailable)
                    .detail(
                        format!(
                            "Le paiement en {} fois n'est pas proposé pour ce montant.",
                            body.payments
                        ),
                        format!(
                            "Paying in {} payments is not offered for this amount.",
                            body.payments
                        ),
                    )
                    .field("payments", "not_offered")
            })?;
        let first = offer
            .first_payment()
            .ok_or_else(|| ApiError::internal("an offer without payments"))?;
        let replace_card = body.payments > 1 || !body.keep_card;
        let checked = match card_of(state, &body.card_token).await {
            Ok(view) => {
                let store = state.store.clone();
                let org_id = principal.org_id.clone();
                let settings = web::block(move || {
                    let mut conn = store.conn()?;
                    payment::get(&mut conn, &org_id)
                })
                .await??;
                check_card(
                    &view,
                    &offer,
                    &order,
                    replace_card,
                    &settings.accepted_brands,
                    today,
                )
                .map(|()| view)
            }
            Err(problem) => Err(problem),
        };
        let view = match checked {
            Ok(view) => view,
            Err(problem) if problem.status().is_client_error() => {
                return Err(Failure::Refused(
                    contacts(state, &principal.org_id, problem, now).await,
                ));
            }
            Err(problem) => return Err(Failure::Refused(problem)),
        };
        let details = regularizations::Details {
            customer_id: principal.customer_id.clone(),
            offered_on: today,
            offer,
            card_token: body.card_token.clone(),
            card: view,
            replace_card,
        };
        let charge = Charge {
            id: ids::new_id("chg"),
            org_id: principal.org_id.clone(),
            order_id: order_id.to_owned(),
            instalment_id: None,
            idempotency_key: String::new(),
            amount: first,
            status: "pending".to_owned(),
            gateway_charge_id: None,
            failure_code: None,
            created_at: now,
            purpose: charges::REGULARIZATION.to_owned(),
            request: Some((scope.clone(), key.to_owned())),
            details: Some(details.to_json()?),
        };
        let store = state.store.clone();
        let recorded = web::block(move || {
            let mut conn = store.conn()?;
            record_attempt(&mut conn, charge)
        })
        .await?;
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(problem) => {
                return Err(Failure::Refused(
                    contacts(state, &principal.org_id, problem, now).await,
                ));
            }
        };
        match recorded {
            Recorded::Charge(charge) => return finish(state, principal, *charge, false).await,
            Recorded::Pending(other) => {
                // Another request's payment for this debt: while it may
                // still be running, this one waits; past the lease, its
                // client is gone and it is reconciled here.
                let lease = state.idempotency_lease();
                let age = now - other.created_at;
                if age < lease {
                    let left = (lease - age).num_seconds() + 1;
                    return Err(Failure::Refused(
                        contacts(state, &principal.org_id, in_progress(left), now).await,
                    ));
                }
                if let Err(error) = settle_pending(state, &other, true, false).await? {
                    let problem = gateway_problem(&error);
                    return Err(Failure::Refused(problem));
                }
            }
        }
    }
    Err(Failure::Refused(in_progress(1)))
}

/// The card rules of a regularization: an accepted brand, not expired, and,
/// when the card is to pay later debits (a plan in several payments, or one
/// payment that puts the card on the schedule), valid through the last of
/// all the debits left: the plan's and the schedule's.
fn check_card(
    view: &CardView,
    offer: &Offer,
    order: &Order,
    replace_card: bool,
    accepted: &[guichet_domain::card::CardBrand],
    today: NaiveDate,
) -> Result<(), ApiError> {
    use guichet_domain::card::CardChangeRefusal;
    if !accepted.contains(&view.brand) {
        return Err(refusal_problem(
            &CardChangeRefusal::BrandNotAccepted,
            accepted,
        ));
    }
    if view.is_expired(today) {
        return Err(refusal_problem(&CardChangeRefusal::CardExpired, accepted));
    }
    if !replace_card {
        return Ok(());
    }
    let plan_last = if offer.payments > 1 {
        offer.parts.last().map(|(date, _)| *date)
    } else {
        None
    };
    let last = plan_last.max(order.schedule.last_pending_due());
    if let Some(last) = last
        && view.expires_on().is_none_or(|valid| valid < last)
    {
        return Err(expires_before_problem(last));
    }
    Ok(())
}

pub(crate) fn locale_and_id(req: &HttpRequest) -> (Locale, Option<String>) {
    let extensions = req.extensions();
    (
        extensions
            .get::<RequestLocale>()
            .map_or(Locale::Fr, |l| l.0),
        extensions.get::<RequestId>().map(|r| r.0.clone()),
    )
}

/// Pay the unpaid amount with one of today's offers.
///
/// Pay the unpaid amount with one of today's offers: the first payment is
/// charged at once to the card token; on success the unpaid instalments are
/// settled (1 payment) or replaced by the new plan (2 or 3 payments). The
/// card paying becomes the schedule's card for every later debit (with 1
/// payment unless `keep_card` is true). Requires `Idempotency-Key`: the same
/// key and body replay the first answer (status and body, success or refused
/// payment) for 24 hours; after a crash or a gateway timeout, a retry with
/// the same key looks the payment up and finishes it, never charging twice.
/// Every refusal carries the collections phone (`collections`, with its
/// `tel:` link) and the contact channels (`contact_channels`).
#[utoipa::path(
    tag = "me",
    operation_id = "regularizeSchedule",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Schedule (order) id (`ord_...`)."),
        ("Idempotency-Key" = String, Header, description = "Required: a unique key per payment attempt (1 to 255 visible ASCII characters), scoped to the customer."),
    ),
    request_body = Regularize,
    responses(
        (status = 200, description = "Paid: the schedule after the regularization (also the replay of a first success, with `Idempotent-Replayed: true`).", body = ScheduleView),
        (status = 400, description = "Codes: `idempotency_key_required` (no `Idempotency-Key`), `invalid_parameter` (a malformed one), `invalid_field` (also `keep_card` true with 2 or 3 payments), `unknown_field`, `malformed_json`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `nothing_to_regularize`, `idempotency_key_in_use` (a request with this key may still be running: retry after `Retry-After`), `regularization_in_progress` (another request's payment for this debt is under way, whatever its key; with `Retry-After`, `collections` and `contact_channels`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use` and `regularization_in_progress`: whole seconds (at least 1) before a retry may go through."))),
        (status = 422, description = "Codes: `payment_failed` (the charge was refused: `reason` is the gateway's code; the schedule is unchanged), `card_brand_not_accepted`, `card_expired`, `card_expires_before_last_instalment` (the card must be valid through the last debit left, the plan's and the schedule's, when it is to pay them), `card_token_invalid`, `regularization_offer_unavailable`, `idempotency_key_reused` (this key was used with another body). `payment_failed`, the three card refusals and `card_token_invalid` carry `collections` (the collections phone with its `tel:` link) and `contact_channels` (the channels and whether they are open).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable` (retry with the same key), `gateway_timeout` (the gateway did not answer: retry with the same key, which looks the payment up first), `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/regularization")]
pub async fn regularize(
    req: HttpRequest,
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<Regularize>,
) -> Result<HttpResponse, ApiError> {
    let order_id = path.into_inner();
    let body = body.0;
    if body.keep_card && body.payments > 1 {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail(
                "keep_card ne vaut true qu'avec un paiement unique : en 2 ou 3 fois, la carte qui paie règle aussi les échéances suivantes.",
                "keep_card may be true only with a single payment: in 2 or 3 payments, the card paying also pays the later debits.",
            )
            .field("keep_card", "only_with_one_payment"));
    }
    let key = idempotency::required_key(&req)?;
    let hash = request_hash(&order_id, &body);
    let now = state.clock.now();
    let scope = principal.customer_id.clone();
    if let Some(replay) = idempotency::claim(&state, scope.clone(), key.clone(), hash, now).await? {
        return Ok(replay.respond(|_| {}));
    }
    let outcome = attempt(&state, &principal, &order_id, &body, &key).await;
    match outcome {
        Ok(json) => {
            idempotency::settle(&state, scope, key, Some((200, json.clone()))).await;
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(json))
        }
        Err(Failure::Payment(problem)) => {
            let (locale, request_id) = locale_and_id(&req);
            let rendered = problem.to_problem(locale, request_id.as_deref());
            let text =
                serde_json::to_string(&rendered).map_err(|e| ApiError::internal(e.to_string()))?;
            let answer = (problem.status().as_u16(), text.clone());
            idempotency::settle(&state, scope, key, Some(answer)).await;
            Ok(HttpResponse::build(problem.status())
                .insert_header((CONTENT_TYPE, PROBLEM_CONTENT_TYPE))
                .body(text))
        }
        Err(Failure::Refused(error)) => {
            // Nothing was decided: the key may be used again.
            idempotency::settle(&state, scope, key, None).await;
            Err(error)
        }
    }
}
