//! `GET` and `POST /v1/me/schedules/{id}/regularization`: pay an unpaid
//! debt at once or in 2 or 3 monthly payments ("Régulariser").

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::card::CardView;
use guichet_domain::gateway::GatewayError;
use guichet_domain::schedule::{Offer, idempotency_key, offers as offers_for};
use guichet_domain::{Locale, Money, ids};
use guichet_store::repo::charges::{self, Charge};
use guichet_store::repo::idempotency::{self as stored_keys, Claim};
use guichet_store::repo::schedules::{self, Card, Order};
use guichet_store::repo::{organizations, payment};
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
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, Problem, ProblemCode};
use crate::routes::idempotency;
use crate::routes::views::{MoneyView, ScheduleView};
use crate::state::AppState;

/// The idempotency-key scope that serializes regularizations per order.
const ORDER_LOCK_SCOPE: &str = "regularization-order-lock";

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
    #[schema(example = 1)]
    pub payments: u8,
    /// A payment-gateway card token (never a card number).
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7")]
    pub card_token: String,
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

/// The unpaid amount of a schedule and today's offers to pay it: at once,
/// or in 2 or 3 monthly payments (the first charged at once; remainder cents
/// on the first payments).
#[utoipa::path(
    tag = "me",
    security(("bearer_jwt" = [])),
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
    hex::encode(hasher.finalize())
}

/// How an attempt ended when it did not succeed.
enum Failure {
    /// The charge was refused: a final answer, remembered under the key.
    Payment(ApiError),
    /// Anything else: nothing happened, the key is let go.
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
fn tel_link(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

/// The problem for a refused charge: the reason, the collections phone as a
/// `tel:` link and the contact channels with their status.
fn payment_failed(
    state: &AppState,
    org_id: &str,
    amount: Money,
    error: &GatewayError,
    now: DateTime<Utc>,
) -> Result<ApiError, ApiError> {
    let mut conn = state.store.conn()?;
    let settings = payment::get(&mut conn, org_id)?;
    let org = organizations::get(&mut conn, org_id)?;
    let channels = load_channels(&mut conn, org_id)?;
    let phone = settings.collections_phone.or(org.support_phone);
    let (call_fr, call_en) = match &phone {
        Some(p) => (
            format!(" Appelez le service recouvrement au {p} ou contactez-nous."),
            format!(" Call the collections department on {p} or contact us."),
        ),
        None => (
            " Contactez-nous.".to_owned(),
            " Please contact us.".to_owned(),
        ),
    };
    let mut problem = ApiError::new(ProblemCode::PaymentFailed)
        .detail(
            format!(
                "Le paiement de {amount} a été refusé ({}) ; l'échéancier est inchangé.{call_fr}",
                error.code()
            ),
            format!(
                "The payment of {amount} was refused ({}); the schedule is unchanged.{call_en}",
                error.code()
            ),
        )
        .extension("reason", json!(error.code()));
    if let Some(phone) = phone {
        problem = problem.extension(
            "collections",
            json!({"tel": tel_link(&phone), "phone": phone}),
        );
    }
    let list = channel_list(&channels, now);
    Ok(problem.extension("contact_channels", json!(list)))
}

/// Charges the first payment of the chosen offer and applies it. Returns
/// the schedule's JSON, already remembered under the key.
async fn attempt(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    order_id: &str,
    body: &Regularize,
    key: &str,
) -> Result<String, Failure> {
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
    let view: CardView = card_of(state, &body.card_token).await?;
    let store = state.store.clone();
    let org_id = principal.org_id.clone();
    let settings = web::block(move || {
        let mut conn = store.conn()?;
        payment::get(&mut conn, &org_id)
    })
    .await??;
    check_card(&view, &offer, &settings.accepted_brands, today)?;

    // Recorded before the gateway is called, completed after: a crash in
    // between leaves a `pending` charge to reconcile under the same key.
    let charge_key = idempotency_key(&format!("{order_id}:regularization:{key}"), 1);
    let charge_id = {
        let store = state.store.clone();
        let charge = Charge {
            id: ids::new_id("chg"),
            org_id: principal.org_id.clone(),
            order_id: order_id.to_owned(),
            instalment_id: None,
            idempotency_key: charge_key.clone(),
            amount: first,
            status: "pending".to_owned(),
            gateway_charge_id: None,
            failure_code: None,
            created_at: now,
            purpose: charges::REGULARIZATION.to_owned(),
            request: None,
            details: None,
        };
        web::block(move || {
            let mut conn = store.conn()?;
            // A retry after an outage finds its pending charge again.
            if let Some(existing) = charges::find_by_key(&mut conn, &charge.idempotency_key)? {
                return Ok::<_, guichet_store::StoreError>(existing.id);
            }
            charges::insert_pending(&mut conn, &charge)?;
            Ok(charge.id)
        })
        .await??
    };
    let gateway = state.gateway.clone();
    let token = body.card_token.clone();
    let key_for_gateway = charge_key.clone();
    let merchant = principal.org_id.clone();
    let outcome =
        web::block(move || gateway.charge(&merchant, &token, first, &key_for_gateway)).await?;

    match outcome {
        Ok(receipt) => {
            let store = state.store.clone();
            let principal = principal.clone();
            let order_id = order_id.to_owned();
            let key = key.to_owned();
            let token = body.card_token.clone();
            let payments = body.payments;
            let json = web::block(move || {
                let mut conn = store.conn()?;
                guichet_store::transaction(&mut conn, |conn| {
                    charges::complete(conn, &charge_id, true, Some(&receipt.charge_id), None, now)?;
                    schedules::lock(conn, &principal.org_id, &order_id)?;
                    let mut order = schedules::get_for_customer(
                        conn,
                        &principal.org_id,
                        &principal.customer_id,
                        &order_id,
                    )?;
                    order
                        .schedule
                        .apply_regularization(&offer, now)
                        .map_err(|e| ApiError::internal(format!("charged, not applied: {e}")))?;
                    if payments > 1 {
                        // The later payments are debited from this card.
                        let card = Card {
                            id: ids::new_id("crd"),
                            org_id: principal.org_id.clone(),
                            customer_id: principal.customer_id.clone(),
                            token,
                            view,
                            created_at: now,
                        };
                        schedules::insert_card(conn, &card)?;
                        order.card = card;
                    }
                    schedules::save_schedule(conn, &mut order, now)?;
                    let json = serde_json::to_string(&ScheduleView::from(&order))
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    stored_keys::complete(conn, &principal.customer_id, &key, 200, &json)?;
                    Ok::<_, ApiError>(json)
                })
            })
            .await??;
            Ok(json)
        }
        Err(GatewayError::Unavailable) => {
            // The charge stays pending; the same key retries it.
            Err(Failure::Refused(gateway_problem(
                &GatewayError::Unavailable,
            )))
        }
        Err(error) => {
            let state = state.clone();
            let org_id = principal.org_id.clone();
            let problem = web::block(move || {
                let mut conn = state.store.conn()?;
                charges::complete(&mut conn, &charge_id, false, None, Some(error.code()), now)?;
                drop(conn);
                payment_failed(&state, &org_id, first, &error, now)
            })
            .await??;
            Err(Failure::Payment(problem))
        }
    }
}

/// The card rules of a regularization: an accepted brand, not expired, and
/// for a plan in several payments valid through the last one.
fn check_card(
    view: &CardView,
    offer: &Offer,
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
    if let Some((last, _)) = offer.parts.last()
        && view.expires_on().is_none_or(|valid| valid < *last)
    {
        return Err(expires_before_problem(*last));
    }
    Ok(())
}

fn locale_and_id(req: &HttpRequest) -> (Locale, Option<String>) {
    let extensions = req.extensions();
    (
        extensions
            .get::<RequestLocale>()
            .map_or(Locale::Fr, |l| l.0),
        extensions.get::<RequestId>().map(|r| r.0.clone()),
    )
}

/// Pay the unpaid amount with one of today's offers: the first payment is
/// charged at once to the card; on success the unpaid instalments are
/// settled (1 payment) or replaced by the new plan (2 or 3 payments, whose
/// later payments are then debited from this card). Requires
/// `Idempotency-Key`: the same key and body replay the first answer (status
/// and body, success or refused payment) for 24 hours.
#[utoipa::path(
    tag = "me",
    security(("bearer_jwt" = [])),
    params(
        ("id" = String, Path, description = "Schedule (order) id (`ord_...`)."),
        ("Idempotency-Key" = String, Header, description = "Required: a unique key per payment attempt (1 to 255 visible ASCII characters), scoped to the customer."),
    ),
    request_body = Regularize,
    responses(
        (status = 200, description = "Paid: the schedule after the regularization (also the replay of a first success, with `Idempotent-Replayed: true`).", body = ScheduleView),
        (status = 400, description = "Codes: `idempotency_key_required` (no `Idempotency-Key`), `invalid_parameter` (a malformed one), `invalid_field`, `unknown_field`, `malformed_json`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `nothing_to_regularize`, `idempotency_key_in_progress` (the first request with this key is still running), `regularization_in_progress` (another regularization of this schedule is running, whatever its key).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `payment_failed` (the charge was refused: `reason` is the gateway's code, `collections` the collections phone with its `tel:` link, `contact_channels` the channels and whether they are open; the schedule is unchanged), `idempotency_key_reused` (this key was used with another body), `card_token_invalid`, `card_brand_not_accepted`, `card_expired`, `card_expires_before_last_instalment`, `regularization_offer_unavailable`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable` (retry with the same key), `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
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
    let key = idempotency::required_key(&req)?;
    let hash = request_hash(&order_id, &body);
    let now = state.clock.now();
    let scope = principal.customer_id.clone();
    if let Some(replay) = idempotency::claim(&state, scope.clone(), key.clone(), hash, now).await? {
        return Ok(replay.respond(|_| {}));
    }
    // One regularization per order at a time, whatever the key: two
    // requests with different keys must not both charge.
    let store = state.store.clone();
    let lock_order = order_id.clone();
    let locked = web::block(move || {
        let mut conn = store.conn()?;
        stored_keys::claim_for(
            &mut conn,
            ORDER_LOCK_SCOPE,
            &lock_order,
            "lock",
            now,
            chrono::Duration::minutes(2),
        )
    })
    .await??;
    if locked != Claim::New {
        idempotency::settle(&state, scope, key, None).await;
        return Err(ApiError::new(ProblemCode::RegularizationInProgress).detail(
            "Une régularisation de cet échéancier est déjà en cours ; réessayez dans un instant.",
            "A regularization of this schedule is already running; retry shortly.",
        ));
    }
    let outcome = attempt(&state, &principal, &order_id, &body, &key).await;
    let store = state.store.clone();
    let lock_order = order_id.clone();
    let unlocked = web::block(move || {
        let mut conn = store.conn()?;
        stored_keys::release(&mut conn, ORDER_LOCK_SCOPE, &lock_order)
    })
    .await;
    if !matches!(unlocked, Ok(Ok(()))) {
        tracing::warn!(order = %order_id, "could not release the regularization lock");
    }
    match outcome {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(json)),
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
