//! `PUT /v1/me/schedules/{id}/card`: replace the card a schedule is debited
//! from ("Modifier"), under the organization's rules.

use actix_web::{put, web};
use chrono::NaiveDate;
use guichet_domain::card::{CardBrand, CardChangeRefusal, CardView, check_card_change};
use guichet_domain::ids;
use guichet_store::repo::payment;
use guichet_store::repo::schedules::{self, Card};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use super::sandbox::gateway_problem;
use super::{AUTH_FAILURES, NOT_FOUND, ROLE_FAILURE};
use crate::auth::CustomerPrincipal;
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::views::{CardSummary, ScheduleView};
use crate::state::AppState;

/// The new card, as a payment-gateway token (never a card number).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCard {
    /// From the gateway (`POST /v1/sandbox/card-tokens` with the sandbox).
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7",
        min_length = 1,
        max_length = 200
    )]
    pub card_token: String,
}

/// The card now on the schedule, and the schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardChanged {
    pub card: CardSummary,
    pub schedule: ScheduleView,
}

fn brand_list(brands: &[CardBrand]) -> String {
    brands
        .iter()
        .map(|b| b.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The problem for a refused card change, stating the rule.
pub fn refusal_problem(refusal: &CardChangeRefusal, accepted: &[CardBrand]) -> ApiError {
    match refusal {
        CardChangeRefusal::NothingToPay => ApiError::new(ProblemCode::ScheduleClosed).detail(
            "Cet échéancier est soldé ou annulé : il ne reste aucun prélèvement.",
            "This schedule is completed or cancelled: no debit is left.",
        ),
        CardChangeRefusal::ScheduleUnpaid => ApiError::new(ProblemCode::ScheduleUnpaid).detail(
            "Cet échéancier a un impayé : régularisez-le d'abord (POST /v1/me/schedules/{id}/regularization).",
            "This schedule has an unpaid debit: regularize it first (POST /v1/me/schedules/{id}/regularization).",
        ),
        CardChangeRefusal::NextDebitTooClose {
            next_due,
            notice_days,
        } => ApiError::new(ProblemCode::DebitAlreadyScheduled)
            .detail(
                format!(
                    "Un prélèvement est déjà programmé le {next_due} : la carte se change au moins {notice_days} jours avant un prélèvement."
                ),
                format!(
                    "A debit is already scheduled on {next_due}: the card can be changed at least {notice_days} days before a debit."
                ),
            )
            .extension("next_debit_on", json!(next_due))
            .extension("notice_days", json!(notice_days)),
        CardChangeRefusal::BrandNotAccepted => ApiError::new(ProblemCode::CardBrandNotAccepted)
            .detail(
                format!(
                    "Ce réseau de carte n'est pas accepté ; réseaux acceptés : {}.",
                    brand_list(accepted)
                ),
                format!(
                    "This card brand is not accepted; accepted brands: {}.",
                    brand_list(accepted)
                ),
            )
            .extension(
                "accepted_brands",
                json!(accepted.iter().map(|b| b.as_str()).collect::<Vec<_>>()),
            ),
        CardChangeRefusal::CardExpired => ApiError::new(ProblemCode::CardExpired)
            .detail("La carte est expirée.", "The card has expired."),
        CardChangeRefusal::ExpiresBeforeLastInstalment { last_due } => {
            expires_before_problem(*last_due)
        }
    }
}

/// The problem for a card that expires before `last_due`.
pub fn expires_before_problem(last_due: NaiveDate) -> ApiError {
    ApiError::new(ProblemCode::CardExpiresBeforeLastInstalment)
        .detail(
            format!("La carte expire avant la dernière échéance du {last_due}."),
            format!("The card expires before the last instalment on {last_due}."),
        )
        .extension("last_due_date", json!(last_due))
}

/// Resolves a card token at the gateway.
pub async fn card_of(state: &web::Data<AppState>, token: &str) -> Result<CardView, ApiError> {
    let gateway = state.gateway.clone();
    let token = token.to_owned();
    web::block(move || gateway.card(&token))
        .await?
        .map_err(|e| gateway_problem(&e))
}

/// Replace the schedule's card.
///
/// Allowed while the schedule is in progress, at least the organization's notice period (7 days by
/// default) before the next debit, with an accepted brand (Visa and Mastercard by default) and a
/// card valid through the last pending due date.
#[utoipa::path(
    operation_id = "changeMyScheduleCard",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Schedule (order) id (`ord_...`).")),
    request_body = ChangeCard,
    responses(
        (status = 200, description = "The card is changed; later debits use it.", body = CardChanged),
        (status = 400, description = "Codes: `invalid_field`, `unknown_field`, `malformed_json`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The change is refused; `detail` states the rule. Codes: `card_token_invalid`, `schedule_closed`, `schedule_unpaid`, `debit_already_scheduled` (with `next_debit_on` and `notice_days`), `card_brand_not_accepted` (with `accepted_brands`), `card_expired`, `card_expires_before_last_instalment` (with `last_due_date`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/{id}/card")]
pub async fn change_card(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ChangeCard>,
) -> Result<web::Json<CardChanged>, ApiError> {
    let id = path.into_inner();
    let token = body.0.card_token;
    // Not found first: another customer's id never reaches the gateway.
    super::load_order(&state, &principal, id.clone()).await?;
    let view = card_of(&state, &token).await?;
    let now = state.clock.now();
    let today = state.clock.today();
    let store = state.store.clone();
    let order = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            schedules::lock(conn, &principal.org_id, &id)?;
            let mut order =
                schedules::get_for_customer(conn, &principal.org_id, &principal.customer_id, &id)?;
            let settings = payment::get(conn, &principal.org_id)?;
            check_card_change(
                &order.schedule,
                &view,
                &settings.accepted_brands,
                settings.card_change_notice_days,
                today,
            )
            .map_err(|r| refusal_problem(&r, &settings.accepted_brands))?;
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
            schedules::save_schedule(conn, &mut order, now)?;
            crate::routes::events::by_customer(
                conn,
                guichet_domain::events::EventType::ScheduleCardChanged,
                &principal.org_id,
                &principal.customer_id,
                &order.id,
                &ScheduleView::from(&order),
                now,
            )?;
            let customer = guichet_store::repo::customers::get(
                conn,
                &principal.org_id,
                &principal.customer_id,
            )?;
            let org = guichet_store::repo::organizations::get(conn, &principal.org_id)?;
            let (channel, to) = crate::routes::portal_hooks::recipient(
                conn,
                &principal,
                crate::notify::Channel::Email,
                &customer.email,
            )?;
            crate::notify::queue(
                conn,
                Some(&org.id),
                channel,
                &to,
                &crate::notify::Template::CardChanged {
                    org_name: org.name,
                    last4: order.card.view.last4.clone(),
                    order_number: order.order_number.clone(),
                },
                customer.locale,
                now,
            )?;
            Ok::<_, ApiError>(order)
        })
    })
    .await??;
    Ok(web::Json(CardChanged {
        card: CardSummary::from(&order.card.view),
        schedule: ScheduleView::from(&order),
    }))
}
