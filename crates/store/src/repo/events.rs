//! The `events` table: what happened, written in the same transaction as
//! the change that causes it, and fanned out at once into one
//! `webhook_deliveries` row per enabled endpoint of the organization that
//! wants its type (the outbox pattern: an event exists if and only if its
//! change was committed, and so do its deliveries).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{events, webhook_deliveries, webhook_endpoints};

/// One event. `data` is the JSON snapshot of the object as the API shows
/// it; the caller builds it from an API view, which never holds a PAN,
/// CVC, code, password, token or full IBAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_...`
    pub id: String,
    pub org_id: String,
    /// `noun.verb`, e.g. `schedule.card_changed`.
    pub event_type: String,
    /// `schedule`, `instalment`, `order`, `mandate`, ...
    pub object_type: String,
    pub object_id: String,
    /// For customer actions: which customer.
    pub customer_id: Option<String>,
    /// `customer`, `staff`, `api_key` or `system`.
    pub actor: String,
    /// The JSON snapshot, serialized.
    pub data: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct Row {
    id: String,
    org_id: String,
    event_type: String,
    object_type: String,
    object_id: String,
    customer_id: Option<String>,
    actor: String,
    data: String,
    created_at: NaiveDateTime,
}

impl From<Row> for Event {
    fn from(r: Row) -> Self {
        Event {
            id: r.id,
            org_id: r.org_id,
            event_type: r.event_type,
            object_type: r.object_type,
            object_id: r.object_id,
            customer_id: r.customer_id,
            actor: r.actor,
            data: r.data,
            created_at: from_db_time(r.created_at),
        }
    }
}

/// Records `event`, queues one delivery per enabled endpoint of its
/// organization subscribed to its type, and writes the portal
/// notification it gives its customer (if any), in the caller's
/// transaction.
pub fn record(conn: &mut DbConnection, event: &Event) -> Result<(), StoreError> {
    insert(conn, event)?;
    fan_out(conn, event)?;
    super::notifications::from_event(conn, event)?;
    Ok(())
}

/// Records `event` without queuing any delivery (e.g. a `ping` sent to one
/// endpoint only).
pub fn insert(conn: &mut DbConnection, event: &Event) -> Result<(), StoreError> {
    diesel::insert_into(events::table)
        .values((
            events::id.eq(&event.id),
            events::org_id.eq(&event.org_id),
            events::event_type.eq(&event.event_type),
            events::object_type.eq(&event.object_type),
            events::object_id.eq(&event.object_id),
            events::customer_id.eq(&event.customer_id),
            events::actor.eq(&event.actor),
            events::data.eq(&event.data),
            events::created_at.eq(to_db_time(event.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether an endpoint's subscription (a JSON array of types, `"*"` for
/// all) covers `event_type`. A subscription that does not parse covers
/// nothing.
pub fn subscribed(event_types_json: &str, event_type: &str) -> bool {
    serde_json::from_str::<Vec<String>>(event_types_json)
        .map(|types| types.iter().any(|t| t == "*" || t == event_type))
        .unwrap_or(false)
}

/// Queues `event` for every enabled endpoint of its organization that
/// wants it, due now.
pub fn fan_out(conn: &mut DbConnection, event: &Event) -> Result<(), StoreError> {
    let endpoints: Vec<(String, String)> = webhook_endpoints::table
        .filter(webhook_endpoints::org_id.eq(&event.org_id))
        .filter(webhook_endpoints::enabled.eq(true))
        .select((webhook_endpoints::id, webhook_endpoints::event_types))
        .load(conn)?;
    for (endpoint_id, types) in endpoints {
        if subscribed(&types, &event.event_type) {
            queue_delivery(conn, event, &endpoint_id)?;
        }
    }
    Ok(())
}

/// Queues one delivery of `event` to `endpoint_id`, due at the event's
/// instant. Returns the delivery's id.
pub fn queue_delivery(
    conn: &mut DbConnection,
    event: &Event,
    endpoint_id: &str,
) -> Result<String, StoreError> {
    let id = guichet_domain::ids::new_id("whd");
    let at = to_db_time(event.created_at);
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(&id),
            webhook_deliveries::org_id.eq(&event.org_id),
            webhook_deliveries::endpoint_id.eq(endpoint_id),
            webhook_deliveries::event_id.eq(&event.id),
            webhook_deliveries::status.eq("pending"),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(Some(at)),
            webhook_deliveries::created_at.eq(at),
            webhook_deliveries::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Event `id` of organization `org_id`, if it exists there.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Option<Event>, StoreError> {
    let row = events::table
        .filter(events::id.eq(id))
        .filter(events::org_id.eq(org_id))
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Event::from))
}

impl Event {
    /// The event as the API shows it and as webhooks deliver it (the one
    /// shape of both):
    /// `{"id", "type", "created_at", "object": {"type", "id"}, "customer_id",
    /// "actor", "data"}`. `data` is the stored snapshot (JSON `null` if it
    /// does not parse, which a caller never writes).
    pub fn envelope(&self) -> serde_json::Value {
        let data = serde_json::from_str::<serde_json::Value>(&self.data)
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "created_at": self.created_at,
            "object": { "type": self.object_type, "id": self.object_id },
            "customer_id": self.customer_id,
            "actor": self.actor,
            "data": data,
        })
    }
}
