//! Regularizations in flight: the first payment of a plan is a `charges` row
//! with purpose [`REGULARIZATION`](super::charges::REGULARIZATION), written
//! `pending` before the gateway is called, with the recovery point
//! ([`Details`]) that finishing it needs. Whoever learns the gateway's
//! answer first, the request itself, its retry after a crash, another
//! request for the same debt, or the reconciliation job, calls [`settle`]:
//! the charge is completed and the plan applied in one transaction, once.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use guichet_domain::card::CardView;
use guichet_domain::events::{Actor, EventType};
use guichet_domain::gateway::{ChargeReceipt, GatewayError};
use guichet_domain::ids;
use guichet_domain::schedule::Offer;
use serde::{Deserialize, Serialize};

use super::charges::{self, Charge, REGULARIZATION};
use super::schedules::{self, Card};
use super::to_db_time;
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::charges as table;

/// `failure_code` of a charge the gateway never received, given up by the
/// reconciliation of a request that is gone.
pub const ABANDONED: &str = "abandoned";

/// `failure_code` of a charge that succeeded but could not be applied,
/// because the debt changed between the customer's choice and the gateway's
/// answer. The charge is kept as succeeded (money was taken) and logged at
/// `error` for staff to refund.
pub const NOT_APPLIED: &str = "not_applied";

/// What finishing a regularization needs, stored with its charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// Whose schedule it is.
    pub customer_id: String,
    /// The day the offer was made: the offer is checked against that day's
    /// offers for the debt.
    pub offered_on: NaiveDate,
    /// The plan chosen: its first part is this charge.
    pub offer: Offer,
    /// The gateway token of the card paying.
    pub card_token: String,
    /// What may be shown of that card.
    pub card: CardView,
    /// Whether the card becomes the schedule's card for every later debit.
    pub replace_card: bool,
}

impl Details {
    /// As stored in `charges.details`.
    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::Database(e.to_string()))
    }

    /// The details stored with `charge`.
    pub fn of(charge: &Charge) -> Result<Details, StoreError> {
        let json = charge.details.as_deref().ok_or_else(|| {
            StoreError::Database("a regularization charge without details".into())
        })?;
        serde_json::from_str(json).map_err(|e| StoreError::Database(e.to_string()))
    }
}

/// The regularization charges of an order, oldest first.
pub fn of_order(conn: &mut DbConnection, order_id: &str) -> Result<Vec<Charge>, StoreError> {
    let ids: Vec<String> = table::table
        .filter(table::order_id.eq(order_id))
        .filter(table::purpose.eq(REGULARIZATION))
        .order((table::created_at.asc(), table::id.asc()))
        .select(table::id)
        .load(conn)?;
    ids.iter().map(|id| get(conn, id)).collect()
}

/// One charge by id.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Charge, StoreError> {
    charges::get(conn, id)
}

/// The regularization charge a client request (idempotency scope and key)
/// created, if any.
pub fn of_request(
    conn: &mut DbConnection,
    scope: &str,
    key: &str,
) -> Result<Option<Charge>, StoreError> {
    let id: Option<String> = table::table
        .filter(table::request_scope.eq(scope))
        .filter(table::request_key.eq(key))
        .filter(table::purpose.eq(REGULARIZATION))
        .select(table::id)
        .first(conn)
        .optional()?;
    id.map(|id| get(conn, &id)).transpose()
}

/// Gives up a pending regularization charge that the gateway never
/// received, whose request is gone: marked failed ([`ABANDONED`]), the
/// schedule unchanged. `false` when it was no longer pending.
pub fn abandon(
    conn: &mut DbConnection,
    charge: &Charge,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        table::table
            .filter(table::id.eq(&charge.id))
            .filter(table::status.eq("pending")),
    )
    .set((
        table::status.eq("failed"),
        table::failure_code.eq(ABANDONED),
        table::completed_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(updated > 0)
}

/// Completes the pending regularization `charge` with the gateway's
/// `outcome`, in one transaction: on success the plan is applied to the
/// schedule (and the card put on it when asked) and a `schedule.regularized`
/// event caused by `actor` is recorded; on a refusal the charge is
/// marked failed and the schedule is left as it was. Exactly once: a charge
/// that is no longer pending is left alone and `false` is returned.
///
/// A transient outcome (`Unavailable`, `Timeout`) says nothing about the
/// charge and must not be passed here; the caller keeps it pending.
pub fn settle(
    conn: &mut DbConnection,
    charge: &Charge,
    outcome: &Result<ChargeReceipt, GatewayError>,
    now: DateTime<Utc>,
    actor: Actor,
) -> Result<bool, StoreError> {
    settle_with(conn, charge, outcome, now, actor, || {})
}

/// [`settle`], calling `before_commit` last inside the transaction (the
/// API's test-only fault pause).
pub fn settle_with(
    conn: &mut DbConnection,
    charge: &Charge,
    outcome: &Result<ChargeReceipt, GatewayError>,
    now: DateTime<Utc>,
    actor: Actor,
    before_commit: impl FnOnce(),
) -> Result<bool, StoreError> {
    if let Err(error) = outcome
        && error.is_transient()
    {
        return Err(StoreError::Database(format!(
            "a regularization charge cannot be settled on {}",
            error.code()
        )));
    }
    let details = Details::of(charge)?;
    crate::transaction(conn, |conn| {
        let (status, gateway_id, failure) = match outcome {
            Ok(receipt) => ("succeeded", Some(receipt.charge_id.as_str()), None),
            Err(error) => ("failed", None, Some(error.code())),
        };
        let updated = diesel::update(
            table::table
                .filter(table::id.eq(&charge.id))
                .filter(table::status.eq("pending")),
        )
        .set((
            table::status.eq(status),
            table::gateway_charge_id.eq(gateway_id),
            table::failure_code.eq(failure),
            table::completed_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
        if updated == 0 || outcome.is_err() {
            before_commit();
            return Ok(updated > 0);
        }
        schedules::lock(conn, &charge.org_id, &charge.order_id)?;
        let mut order = schedules::get_for_customer(
            conn,
            &charge.org_id,
            &details.customer_id,
            &charge.order_id,
        )?;
        if let Err(error) =
            order
                .schedule
                .apply_regularization(&details.offer, details.offered_on, now)
        {
            tracing::error!(
                charge = %charge.id,
                order = %charge.order_id,
                %error,
                "a regularization was charged but the debt changed since it was offered: \
                 the charge is kept, not applied; refund it"
            );
            diesel::update(table::table.find(&charge.id))
                .set(table::failure_code.eq(NOT_APPLIED))
                .execute(conn)?;
            before_commit();
            return Ok(true);
        }
        if details.replace_card && order.card.token != details.card_token {
            let card = Card {
                id: ids::new_id("crd"),
                org_id: charge.org_id.clone(),
                customer_id: details.customer_id.clone(),
                token: details.card_token.clone(),
                view: details.card.clone(),
                created_at: now,
            };
            schedules::insert_card(conn, &card)?;
            order.card = card;
        }
        schedules::save_schedule(conn, &mut order, now)?;
        super::events::emit(
            conn,
            EventType::ScheduleRegularized,
            &charge.org_id,
            &order.id,
            (actor == Actor::Customer).then_some(details.customer_id.as_str()),
            actor,
            &crate::snapshots::order(&order),
            now,
        )?;
        before_commit();
        Ok(true)
    })
}
