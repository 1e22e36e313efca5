//! The `security_events` table: a customer's security history (sign-ins,
//! password and contact changes, sessions ended, blocks), written in the
//! same transaction as the change it records. Details are masked by the
//! caller: never a code, token, hash or full contact.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::security_events;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SignedIn,
    PasswordChanged,
    PasswordReset,
    /// Staff or an API key asked to change the e-mail or mobile; pending
    /// until the customer confirms.
    ContactChangeRequested,
    /// The customer confirmed a requested change: it is in force.
    ContactChangeConfirmed,
    /// Staff changed a contact of a customer without portal access (or
    /// removed the mobile): in force at once.
    ContactChanged,
    SessionEnded,
    Blocked,
    Unblocked,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::SignedIn,
        Kind::PasswordChanged,
        Kind::PasswordReset,
        Kind::ContactChangeRequested,
        Kind::ContactChangeConfirmed,
        Kind::ContactChanged,
        Kind::SessionEnded,
        Kind::Blocked,
        Kind::Unblocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SignedIn => "signed_in",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::ContactChangeRequested => "contact_change_requested",
            Kind::ContactChangeConfirmed => "contact_change_confirmed",
            Kind::ContactChanged => "contact_changed",
            Kind::SessionEnded => "session_ended",
            Kind::Blocked => "blocked",
            Kind::Unblocked => "unblocked",
        }
    }

    pub fn parse(value: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Customer,
    Staff,
    ApiKey,
    System,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Customer => "customer",
            Actor::Staff => "staff",
            Actor::ApiKey => "api_key",
            Actor::System => "system",
        }
    }

    pub fn parse(value: &str) -> Option<Actor> {
        [Actor::Customer, Actor::Staff, Actor::ApiKey, Actor::System]
            .into_iter()
            .find(|a| a.as_str() == value)
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub kind: Kind,
    pub actor: Actor,
    /// `email` or `mobile` for contact events.
    pub field: Option<String>,
    /// A masked value (`c***@example.com`, `+33 6** ** ** 78`).
    pub value: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl SecurityEvent {
    /// A new event of `kind` by `actor` for the customer, at `now`, with no
    /// details yet.
    pub fn new(
        org_id: &str,
        customer_id: &str,
        kind: Kind,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Self {
        SecurityEvent {
            id: guichet_domain::ids::new_id("sev"),
            org_id: org_id.to_owned(),
            customer_id: customer_id.to_owned(),
            kind,
            actor,
            field: None,
            value: None,
            session_id: None,
            ip: None,
            created_at: now,
        }
    }

    /// With the changed field and its masked value.
    pub fn contact(mut self, field: &str, masked: Option<String>) -> Self {
        self.field = Some(field.to_owned());
        self.value = masked;
        self
    }

    /// With the session concerned.
    pub fn session(mut self, session_id: &str, ip: Option<&str>) -> Self {
        self.session_id = Some(session_id.to_owned());
        self.ip = ip.map(str::to_owned);
        self
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = security_events)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    kind: String,
    actor: String,
    field: Option<String>,
    value: Option<String>,
    session_id: Option<String>,
    ip: Option<String>,
    created_at: NaiveDateTime,
}

impl TryFrom<Row> for SecurityEvent {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(SecurityEvent {
            kind: Kind::parse(&r.kind)
                .ok_or_else(|| StoreError::Database(format!("unknown event {:?}", r.kind)))?,
            actor: Actor::parse(&r.actor)
                .ok_or_else(|| StoreError::Database(format!("unknown actor {:?}", r.actor)))?,
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            field: r.field,
            value: r.value,
            session_id: r.session_id,
            ip: r.ip,
            created_at: from_db_time(r.created_at),
        })
    }
}

/// Records `event`; call it inside the transaction of the change.
pub fn insert(conn: &mut DbConnection, event: &SecurityEvent) -> Result<(), StoreError> {
    diesel::insert_into(security_events::table)
        .values((
            security_events::id.eq(&event.id),
            security_events::org_id.eq(&event.org_id),
            security_events::customer_id.eq(&event.customer_id),
            security_events::kind.eq(event.kind.as_str()),
            security_events::actor.eq(event.actor.as_str()),
            security_events::field.eq(&event.field),
            security_events::value.eq(&event.value),
            security_events::session_id.eq(&event.session_id),
            security_events::ip.eq(&event.ip),
            security_events::created_at.eq(to_db_time(event.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records an event with no details (one line in a flow).
pub fn record(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    kind: Kind,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert(
        conn,
        &SecurityEvent::new(org_id, customer_id, kind, actor, now),
    )
}

/// Where a page of events starts: after the event at `created_at` with id
/// `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// A page of the customer's events, newest first, after `after`.
pub fn list(
    conn: &mut DbConnection,
    customer_id: &str,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let mut query = security_events::table
        .filter(security_events::customer_id.eq(customer_id))
        .order((
            security_events::created_at.desc(),
            security_events::id.desc(),
        ))
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if let Some(after) = after {
        let at = to_db_time(after.created_at);
        query = query.filter(
            security_events::created_at
                .lt(at)
                .or(security_events::created_at
                    .eq(at)
                    .and(security_events::id.lt(after.id.clone()))),
        );
    }
    query
        .load(conn)?
        .into_iter()
        .map(SecurityEvent::try_from)
        .collect()
}
