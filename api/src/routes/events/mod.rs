//! Events: what happened, recorded in the same transaction as the change
//! that causes it (`guichet_store::repo::events`), listed to integrators
//! who poll (`GET /v1/admin/events`) and described, type by type, in the
//! OpenAPI document's `webhooks`.

pub mod admin;
pub mod docs;

use chrono::{DateTime, Utc};
use guichet_domain::events::{Actor, EventType};
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::events;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::StaffActor;
use crate::routes::views::{InstalmentView, RefundView, ScheduleView};

/// Who acted, for a staff member or an API key.
pub fn staff_actor(actor: &StaffActor) -> Actor {
    match actor {
        StaffActor::Staff { .. } => Actor::Staff,
        StaffActor::ApiKey { .. } => Actor::ApiKey,
    }
}

/// Records an event caused by staff or an API key, in the caller's
/// transaction; `data` is the object as the API shows it.
pub fn by_staff(
    conn: &mut DbConnection,
    kind: EventType,
    org_id: &str,
    object_id: &str,
    actor: &StaffActor,
    data: &impl Serialize,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    events::emit(
        conn,
        kind,
        org_id,
        object_id,
        None,
        staff_actor(actor),
        data,
        at,
    )
}

/// Records an event caused by the signed-in customer, in the caller's
/// transaction.
pub fn by_customer(
    conn: &mut DbConnection,
    kind: EventType,
    org_id: &str,
    customer_id: &str,
    object_id: &str,
    data: &impl Serialize,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    events::emit(
        conn,
        kind,
        org_id,
        object_id,
        Some(customer_id),
        Actor::Customer,
        data,
        at,
    )
}

/// The snapshot of `instalment.*` events: the instalment with its id, its
/// order and customer, and the order after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalmentEventData {
    #[schema(example = "ins_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "ord_3k9x0d2m7q8r4t6v1w5y")]
    pub order_id: String,
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    #[serde(flatten)]
    pub instalment: InstalmentView,
    /// The order with its schedule, after the change.
    pub schedule: ScheduleView,
}

/// The snapshot of `refund.*` events: the refund and its order.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundEventData {
    #[serde(flatten)]
    pub refund: RefundView,
    #[schema(example = "ord_3k9x0d2m7q8r4t6v1w5y")]
    pub order_id: String,
}

/// The snapshot of `ping` events: the endpoint tested.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingData {
    #[schema(example = "whe_3k9x0d2m7q8r4t6v1w5y")]
    pub endpoint_id: String,
}

#[cfg(test)]
mod tests;
