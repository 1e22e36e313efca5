//! `/v1/admin/orders`: orders with their instalment schedule, and their
//! cancellations.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use chrono::NaiveDate;
use guichet_domain::gateway::GatewayError;
use guichet_domain::schedule::{Schedule, ScheduleError, plan_equal, plan_explicit};
use guichet_domain::{Currency, Money, ids};
use guichet_store::StoreError;
use guichet_store::repo::customers;
use guichet_store::repo::schedules::{self, Card, Order};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::StaffPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor};
use crate::routes::events;
use crate::routes::views::{AdjustmentView, ScheduleList, ScheduleView};
use crate::state::AppState;
use guichet_domain::events::EventType;

/// An amount in minor units with its ISO 4217 currency.
#[derive(Debug, Clone, Copy, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Minor units (cents): a positive integer, at most 99 999 999 999
    /// (999 999 999.99 in a two-decimal currency).
    #[schema(example = 12999, minimum = 1, maximum = 99_999_999_999_i64)]
    pub amount: i64,
    /// Three upper-case letters.
    #[schema(value_type = String, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Currency,
}

/// The largest amount an order takes, in minor units: below the 13 digits
/// of the shortest card number, so that no amount is ever taken for one.
pub const MAX_AMOUNT: i64 = 99_999_999_999;

/// Refuses an amount above [`MAX_AMOUNT`] (400 `invalid_field`; the lower
/// bound is the schedule rules' own).
fn amount_in_range(field: &str, money: &MoneyInput) -> Result<(), ApiError> {
    if money.amount > MAX_AMOUNT {
        return Err(invalid_field(
            field,
            "range",
            "Le montant dépasse 99 999 999 999 unités mineures.",
            "The amount exceeds 99,999,999,999 minor units.",
        ));
    }
    Ok(())
}

impl From<MoneyInput> for Money {
    fn from(m: MoneyInput) -> Self {
        Money::new(m.amount, m.currency)
    }
}

/// One instalment of an explicit plan.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    pub due_date: NaiveDate,
    pub amount: MoneyInput,
}

/// A new order. Give either `instalments` with `first_due_date` (equal
/// monthly instalments, the remainder cents on the first ones) or `plan`
/// (explicit due dates and amounts), not both.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// The customer (`cus_...`) of your organization.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y", min_length = 1, max_length = 64)]
    pub customer_id: String,
    /// Unique in the organization.
    #[validate(
        length(min = 1, max = 64),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "CMD-2026-000123",
        min_length = 1,
        max_length = 64,
        pattern = r"\S"
    )]
    pub order_number: String,
    /// The merchant's brand ("enseigne").
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "Maison & Jardin",
        min_length = 1,
        max_length = 200,
        pattern = r"\S"
    )]
    pub merchant_brand: String,
    pub purchase_date: NaiveDate,
    /// The order total: a positive amount.
    pub total: MoneyInput,
    /// Equal monthly instalments: 2 to 12 (with `first_due_date`).
    #[validate(range(min = 2, max = 12))]
    #[schema(example = 3, minimum = 2, maximum = 12)]
    pub instalments: Option<u32>,
    /// The due date of the first equal instalment; the others fall on the
    /// same day of the following months.
    pub first_due_date: Option<NaiveDate>,
    /// Explicit instalments (2 to 12, increasing dates, positive amounts
    /// summing to the total).
    pub plan: Option<Vec<PlanEntry>>,
    /// The payment gateway's token for the customer's card (never a card
    /// number).
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "tok_sandbox_00122030a1b2c3d4e5f6a7b8",
        min_length = 1,
        max_length = 200
    )]
    pub card_token: String,
}

/// A cancellation of part or all of what is left of an order.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCancellation {
    /// The amount cancelled, in the order's currency.
    pub amount: MoneyInput,
}

/// A cancellation and the schedule after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationResult {
    pub adjustment: AdjustmentView,
    pub schedule: ScheduleView,
}

/// `?customer_id=&limit=&cursor=` of the order list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Only this customer's orders (`cus_...`).
    #[param(nullable = false)]
    pub customer_id: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

fn invalid_field(field: &str, code: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(fr, en)
        .field(field, code)
}

fn schedule_problem(field: &str, error: &ScheduleError) -> ApiError {
    let field = match error {
        ScheduleError::TotalNotPositive => "total.amount",
        _ => field,
    };
    ApiError::new(ProblemCode::InvalidSchedule)
        .detail(
            format!("L'échéancier n'est pas valide : {error}."),
            format!("The schedule is not valid: {error}."),
        )
        .field(field, error.code())
}

/// The schedule the body asks for, checked by the schedule rules.
fn build_schedule(body: &CreateOrder) -> Result<Schedule, ApiError> {
    amount_in_range("total.amount", &body.total)?;
    for (i, entry) in body.plan.iter().flatten().enumerate() {
        amount_in_range(&format!("plan[{i}].amount.amount"), &entry.amount)?;
    }
    if body.total.amount <= 0 {
        return Err(invalid_field(
            "total.amount",
            "range",
            "Le montant total doit être positif.",
            "The total amount must be positive.",
        ));
    }
    let total = Money::from(body.total);
    let (field, plan) = match (&body.instalments, &body.plan) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "Donnez soit instalments et first_due_date, soit plan, pas les deux.",
                    "Give either instalments with first_due_date, or plan, not both.",
                )
                .field("instalments", "exclusive")
                .field("plan", "exclusive"));
        }
        (None, None) => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "Donnez instalments et first_due_date, ou plan.",
                    "Give instalments with first_due_date, or plan.",
                )
                .field("instalments", "required")
                .field("plan", "required"));
        }
        (Some(count), None) => {
            let Some(first_due) = body.first_due_date else {
                return Err(invalid_field(
                    "first_due_date",
                    "required",
                    "first_due_date accompagne instalments.",
                    "first_due_date goes with instalments.",
                ));
            };
            (
                "instalments",
                plan_equal(total, *count, first_due)
                    .map_err(|e| schedule_problem("instalments", &e)),
            )
        }
        (None, Some(entries)) => {
            if body.first_due_date.is_some() {
                return Err(invalid_field(
                    "first_due_date",
                    "unexpected",
                    "first_due_date ne va qu'avec instalments.",
                    "first_due_date only goes with instalments.",
                ));
            }
            let entries = entries
                .iter()
                .map(|e| (e.due_date, Money::from(e.amount)))
                .collect();
            (
                "plan",
                plan_explicit(total, entries).map_err(|e| schedule_problem("plan", &e)),
            )
        }
    };
    Schedule::new(total, plan?).map_err(|e| schedule_problem(field, &e))
}

fn card_token_invalid(code: &str) -> ApiError {
    ApiError::new(ProblemCode::CardTokenInvalid)
        .detail(
            "La passerelle de paiement ne reconnaît pas ce jeton de carte, ou la carte a expiré.",
            "The payment gateway does not know this card token, or the card has expired.",
        )
        .field("card_token", code)
}

fn order_number_taken() -> ApiError {
    ApiError::new(ProblemCode::OrderNumberTaken)
        .detail(
            "Une commande de l'organisation porte déjà ce numéro.",
            "An order of the organization already has this number.",
        )
        .field("order_number", "taken")
}

const CREATE_422: &str = "The card token is unknown or its card has expired, or the plan breaks a schedule rule (`errors[].code` is the rule: `invalid_instalment_count`, `instalment_not_positive`, `due_dates_not_increasing`, `instalments_sum_mismatch`, `currency_mismatch`, `out_of_range`). Codes: `card_token_invalid`, `invalid_schedule`.";

/// Create an order with its instalment schedule.
///
/// Create an order with its instalment schedule, paid by the card behind a
/// payment-gateway token.
#[utoipa::path(
    operation_id = "createOrder",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "Created; `Location` is the order's address.", body = ScheduleView,
            headers(("Location" = String, description = "The order's address: `/v1/admin/orders/{id}`."))),
        (status = 400, description = "Malformed body, unknown field, wrong type, non-positive total, `instalments` outside 2–12, both or neither of the plan forms. Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `order_number_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = CREATE_422, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The payment gateway cannot check the card token now. Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateOrder>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let schedule = build_schedule(&body)?;
    let now = state.clock.now();
    let today = state.clock.today();
    let state = state.clone();
    let org_id = principal.org_id;
    let actor = principal.actor;
    let order = web::block(move || {
        let mut conn = state.store.conn()?;
        let customer = customers::get(&mut conn, &org_id, &body.customer_id)?;
        let view = match state.gateway.card(&body.card_token) {
            Ok(view) => view,
            Err(GatewayError::Unavailable) => {
                return Err(ApiError::new(ProblemCode::GatewayUnavailable).detail(
                    "La passerelle de paiement ne répond pas ; réessayez plus tard.",
                    "The payment gateway is not answering; retry later.",
                ));
            }
            Err(e) => return Err(card_token_invalid(e.code())),
        };
        if view.is_expired(today) {
            return Err(card_token_invalid("expired_card"));
        }
        let instalment_ids: BTreeMap<u32, String> = schedule
            .instalments
            .iter()
            .map(|i| (i.number, ids::new_id("ins")))
            .collect();
        let order = Order {
            id: ids::new_id("ord"),
            org_id: org_id.clone(),
            customer_id: customer.id.clone(),
            order_number: body.order_number.trim().to_owned(),
            merchant_brand: body.merchant_brand.trim().to_owned(),
            purchase_date: body.purchase_date,
            card: Card {
                id: ids::new_id("crd"),
                org_id,
                customer_id: customer.id,
                token: body.card_token,
                view,
                created_at: now,
            },
            schedule,
            instalment_ids,
            refunds: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        guichet_store::transaction(&mut conn, |conn| {
            schedules::insert_card(conn, &order.card)?;
            schedules::insert_order(conn, &order)?;
            events::by_staff(
                conn,
                EventType::OrderCreated,
                &order.org_id,
                &order.id,
                &actor,
                &ScheduleView::from(&order),
                now,
            )
        })
        .map_err(|e| match e {
            StoreError::Conflict(_) => order_number_taken(),
            other => other.into(),
        })?;
        Ok(order)
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/admin/orders/{}", order.id)))
        .json(ScheduleView::from(&order)))
}

/// The organization's orders, oldest id first, optionally of one customer.
#[utoipa::path(
    operation_id = "listOrders",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(OrderQuery),
    responses(
        (status = 200, description = "A page of orders with their schedule.", body = ScheduleList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<OrderQuery>,
) -> Result<web::Json<ScheduleList>, ApiError> {
    let query = query.into_inner();
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let customer_id = query.customer_id;
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        schedules::list_for_org(
            &mut conn,
            &principal.org_id,
            customer_id.as_deref(),
            after.as_deref(),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |o| &o.id);
    Ok(web::Json(ScheduleList {
        data: items.iter().map(ScheduleView::from).collect(),
        next_cursor,
    }))
}

const NOT_FOUND: &str = "No such order in your organization. Codes: `not_found`.";

/// One order with its schedule.
#[utoipa::path(
    operation_id = "getOrder",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Order id (`ord_...`).")),
    responses(
        (status = 200, description = "The order.", body = ScheduleView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<ScheduleView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let order = web::block(move || {
        let mut conn = store.conn()?;
        schedules::get(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(ScheduleView::from(&order)))
}

const CANCEL_422: &str = "The cancellation cannot apply (`errors[].code`: `currency_mismatch`, `cancellation_amount_not_positive`, `cancellation_exceeds_remaining`, `schedule_already_cancelled`). Codes: `invalid_cancellation`.";

/// Cancel part or all of what is left of an order.
///
/// The amount comes off the pending instalments from the last one (then the unpaid ones); an
/// instalment brought to zero is cancelled; what was paid beyond the new total is refunded.
/// Cancelling everything left is a total cancellation.
#[utoipa::path(
    operation_id = "cancelOrder",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Order id (`ord_...`).")),
    request_body = CreateCancellation,
    responses(
        (status = 201, description = "The adjustment recorded and the schedule after it.", body = CancellationResult),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = CANCEL_422, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/cancellations")]
pub async fn cancel(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CreateCancellation>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    amount_in_range("amount.amount", &body.0.amount)?;
    let amount = Money::from(body.0.amount);
    let now = state.clock.now();
    let store = state.store.clone();
    let (adjustment, order) = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            schedules::lock(conn, &principal.org_id, &id)?;
            let mut order = schedules::get(conn, &principal.org_id, &id)?;
            let adjustment = order.schedule.cancel(amount, now).map_err(|e| {
                ApiError::new(ProblemCode::InvalidCancellation)
                    .detail(
                        format!("Annulation impossible : {e}."),
                        format!("Cannot cancel: {e}."),
                    )
                    .field("amount", e.code())
            })?;
            schedules::save_schedule(conn, &mut order, now)?;
            // Read again: the snapshot shows the refund just recorded.
            let saved = schedules::get(conn, &principal.org_id, &id)?;
            events::by_staff(
                conn,
                EventType::OrderCancelled,
                &principal.org_id,
                &id,
                &principal.actor,
                &ScheduleView::from(&saved),
                now,
            )?;
            Ok::<_, ApiError>((adjustment, order))
        })
    })
    .await??;
    Ok(HttpResponse::Created().json(CancellationResult {
        adjustment: AdjustmentView::from(&adjustment),
        schedule: ScheduleView::from(&order),
    }))
}
