//! The `events` table: what happened, written in the same transaction as
//! the change that causes it, and fanned out at once into one
//! `webhook_deliveries` row per enabled endpoint of the organization that
//! wants its type (the outbox pattern: an event exists if and only if its
//! change was committed, and so do its deliveries).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use guichet_domain::events::{Actor, EventType};

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

impl Event {
    /// A new event (`evt_...`) of type `kind` about `object_id` (of
    /// `kind`'s object type), with `data` as its snapshot.
    pub fn new(
        kind: EventType,
        org_id: &str,
        object_id: &str,
        customer_id: Option<&str>,
        actor: Actor,
        data: &impl serde::Serialize,
        at: DateTime<Utc>,
    ) -> Result<Event, StoreError> {
        let data = serde_json::to_string(data)
            .map_err(|e| StoreError::Database(format!("cannot serialize an event: {e}")))?;
        Ok(Event {
            id: guichet_domain::ids::new_id("evt"),
            org_id: org_id.to_owned(),
            event_type: kind.as_str().to_owned(),
            object_type: kind.object_type().to_owned(),
            object_id: object_id.to_owned(),
            customer_id: customer_id.map(str::to_owned),
            actor: actor.as_str().to_owned(),
            data,
            created_at: at,
        })
    }
}

/// Builds and [`record`]s an event in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    conn: &mut DbConnection,
    kind: EventType,
    org_id: &str,
    object_id: &str,
    customer_id: Option<&str>,
    actor: Actor,
    data: &impl serde::Serialize,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    record(
        conn,
        &Event::new(kind, org_id, object_id, customer_id, actor, data, at)?,
    )
}

/// Where a page of the log starts: after the event created at `created_at`
/// with id `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePosition {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// Events of `org_id`, newest first (by instant, then id), optionally of
/// one type and created after `since`, starting after `position`, at most
/// `limit`.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    event_type: Option<&str>,
    since: Option<DateTime<Utc>>,
    position: Option<&PagePosition>,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut query = events::table
        .filter(events::org_id.eq(org_id))
        .select(Row::as_select())
        .order((events::created_at.desc(), events::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(t) = event_type {
        query = query.filter(events::event_type.eq(t.to_owned()));
    }
    if let Some(since) = since {
        query = query.filter(events::created_at.gt(to_db_time(since)));
    }
    if let Some(p) = position {
        let at = to_db_time(p.created_at);
        query = query.filter(
            events::created_at
                .lt(at)
                .or(events::created_at.eq(at).and(events::id.lt(p.id.clone()))),
        );
    }
    Ok(query.load(conn)?.into_iter().map(Event::from).collect())
}

/// Deletes the events created before `cutoff`, with their webhook
/// deliveries and attempts, at most `batch` events per call (one
/// transaction). Idempotent, so several nodes may run it at once. Returns
/// how many events were deleted; call again while it returns `batch`.
pub fn purge(
    conn: &mut DbConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<usize, StoreError> {
    use crate::schema::webhook_attempts;
    let cutoff = to_db_time(cutoff);
    crate::transaction(conn, |conn| {
        let ids: Vec<String> = events::table
            .filter(events::created_at.lt(cutoff))
            .select(events::id)
            .order(events::created_at.asc())
            .limit(batch)
            .load(conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::event_id.eq_any(&ids)))
            .execute(conn)?;
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::event_id.eq_any(&ids)))
            .execute(conn)?;
        Ok(diesel::delete(events::table.filter(events::id.eq_any(&ids))).execute(conn)?)
    })
}
