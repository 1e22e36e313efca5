//! Webhook endpoints, their deliveries and the delivery log.
//!
//! Secrets are stored sealed (the caller seals and opens them with the
//! server's outbox key); this module never sees one in clear. Deliveries
//! are claimed with a lease like the other jobs ([`claim`]): one atomic
//! `UPDATE ... WHERE claimed_until IS NULL OR claimed_until < now`, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several dispatchers (several
//! nodes) never hold the same delivery, and a dead one's claims come back
//! when their lease ends.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::events::Event;
use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints};

/// An endpoint, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `whe_...`
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// The subscribed types, or `["*"]`.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// `manual` or `failing` while disabled.
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
struct EndpointRow {
    id: String,
    org_id: String,
    url: String,
    description: String,
    event_types: String,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<EndpointRow> for Endpoint {
    fn from(r: EndpointRow) -> Self {
        Endpoint {
            id: r.id,
            org_id: r.org_id,
            url: r.url,
            description: r.description,
            event_types: serde_json::from_str(&r.event_types).unwrap_or_default(),
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: opt_from_db_time(r.failing_since),
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        }
    }
}

fn types_json(types: &[String]) -> String {
    serde_json::to_string(types).unwrap_or_else(|_| "[]".to_owned())
}

/// Stores a new endpoint with its sealed secret.
pub fn insert(
    conn: &mut DbConnection,
    endpoint: &Endpoint,
    secret_sealed: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::id.eq(&endpoint.id),
            webhook_endpoints::org_id.eq(&endpoint.org_id),
            webhook_endpoints::url.eq(&endpoint.url),
            webhook_endpoints::description.eq(&endpoint.description),
            webhook_endpoints::event_types.eq(types_json(&endpoint.event_types)),
            webhook_endpoints::enabled.eq(endpoint.enabled),
            webhook_endpoints::disabled_reason.eq(&endpoint.disabled_reason),
            webhook_endpoints::secret_sealed.eq(secret_sealed),
            webhook_endpoints::failing_since.eq(opt_to_db_time(endpoint.failing_since)),
            webhook_endpoints::created_at.eq(to_db_time(endpoint.created_at)),
            webhook_endpoints::updated_at.eq(to_db_time(endpoint.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Endpoint `id` of organization `org_id` (`NotFound` otherwise).
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Endpoint, StoreError> {
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::org_id.eq(org_id))
        .filter(webhook_endpoints::id.eq(id))
        .select(EndpointRow::as_select())
        .first(conn)?
        .into())
}

/// Locks the endpoint until the end of the transaction (PostgreSQL row
/// lock; SQLite writers are already serialized by `BEGIN IMMEDIATE`) and
/// reads it. Call it inside the transaction.
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Endpoint, StoreError> {
    if let DbConnection::Postgresql(pg) = conn {
        webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq(org_id))
            .filter(webhook_endpoints::id.eq(id))
            .select(webhook_endpoints::id)
            .for_update()
            .first::<String>(pg)?;
    }
    get(conn, org_id, id)
}

/// Up to `limit` endpoints of the organization, newest first, after the
/// endpoint `after` (the previous page's last).
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Endpoint>, StoreError> {
    let mut query = webhook_endpoints::table
        .filter(webhook_endpoints::org_id.eq(org_id))
        .select(EndpointRow::as_select())
        .order((
            webhook_endpoints::created_at.desc(),
            webhook_endpoints::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        let at: Option<NaiveDateTime> = webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq(org_id))
            .filter(webhook_endpoints::id.eq(after))
            .select(webhook_endpoints::created_at)
            .first(conn)
            .optional()?;
        let Some(at) = at else {
            return Ok(Vec::new());
        };
        query = query.filter(
            webhook_endpoints::created_at
                .lt(at)
                .or(webhook_endpoints::created_at
                    .eq(at)
                    .and(webhook_endpoints::id.lt(after.to_owned()))),
        );
    }
    Ok(query.load(conn)?.into_iter().map(Endpoint::from).collect())
}

/// Writes what an admin may change (url, types, description, enablement
/// and its reason, `failing_since`) as they are in `endpoint`.
pub fn update(conn: &mut DbConnection, endpoint: &Endpoint) -> Result<(), StoreError> {
    let n = diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq(&endpoint.org_id))
            .filter(webhook_endpoints::id.eq(&endpoint.id)),
    )
    .set((
        webhook_endpoints::url.eq(&endpoint.url),
        webhook_endpoints::description.eq(&endpoint.description),
        webhook_endpoints::event_types.eq(types_json(&endpoint.event_types)),
        webhook_endpoints::enabled.eq(endpoint.enabled),
        webhook_endpoints::disabled_reason.eq(&endpoint.disabled_reason),
        webhook_endpoints::failing_since.eq(opt_to_db_time(endpoint.failing_since)),
        webhook_endpoints::updated_at.eq(to_db_time(endpoint.updated_at)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes an endpoint with its deliveries (pending ones are thereby
/// cancelled) and their attempts. `NotFound` when it is not the
/// organization's.
/// Call it inside a transaction: the endpoint is locked first, so that a
/// dispatcher recording attempts ([`lock_endpoints`]) and the deletion
/// run one after the other.
pub fn delete(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    lock(conn, org_id, id)?;
    diesel::delete(
        webhook_attempts::table
            .filter(webhook_attempts::org_id.eq(org_id))
            .filter(webhook_attempts::endpoint_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::org_id.eq(org_id))
            .filter(webhook_deliveries::endpoint_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq(org_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// Replaces the secret by `new_sealed` and keeps the former one valid
/// until `previous_expires_at`, in one statement.
pub fn rotate_secret(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    new_sealed: &str,
    previous_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq(org_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .set((
        webhook_endpoints::previous_secret_sealed.eq(webhook_endpoints::secret_sealed.nullable()),
        webhook_endpoints::previous_secret_expires_at.eq(Some(to_db_time(previous_expires_at))),
        webhook_endpoints::secret_sealed.eq(new_sealed),
        webhook_endpoints::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Queues one delivery of `event` to `endpoint_id`, created and due at
/// `now` (a redelivery or a test ping). Returns its id.
pub fn queue(
    conn: &mut DbConnection,
    event: &Event,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let id = guichet_domain::ids::new_id("whd");
    let at = to_db_time(now);
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(&id),
            webhook_deliveries::org_id.eq(&event.org_id),
            webhook_deliveries::endpoint_id.eq(endpoint_id),
            webhook_deliveries::event_id.eq(&event.id),
            webhook_deliveries::status.eq(STATUS_PENDING),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(Some(at)),
            webhook_deliveries::created_at.eq(at),
            webhook_deliveries::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_SUCCEEDED: &str = "succeeded";
pub const STATUS_FAILED: &str = "failed";

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `whd_...`
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: i32,
    /// `succeeded` or `failed`.
    pub outcome: String,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    /// The first 1 KiB of the answer, as text.
    pub response: String,
    pub error: Option<String>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
}

type DeliveryTuple = (
    String,
    String,
    String,
    String,
    String,
    i32,
    Option<NaiveDateTime>,
    NaiveDateTime,
    NaiveDateTime,
);

fn delivery(t: DeliveryTuple) -> Delivery {
    Delivery {
        id: t.0,
        endpoint_id: t.1,
        event_id: t.2,
        event_type: t.3,
        status: t.4,
        attempts: t.5,
        next_attempt_at: opt_from_db_time(t.6),
        created_at: from_db_time(t.7),
        updated_at: from_db_time(t.8),
    }
}

macro_rules! delivery_columns {
    () => {
        (
            webhook_deliveries::id,
            webhook_deliveries::endpoint_id,
            webhook_deliveries::event_id,
            events::event_type,
            webhook_deliveries::status,
            webhook_deliveries::attempts,
            webhook_deliveries::next_attempt_at,
            webhook_deliveries::created_at,
            webhook_deliveries::updated_at,
        )
    };
}

type AttemptTuple = (
    String,
    i32,
    String,
    Option<i32>,
    i32,
    String,
    Option<String>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

fn attempt(t: AttemptTuple) -> (String, Attempt) {
    (
        t.0,
        Attempt {
            attempt: t.1,
            outcome: t.2,
            http_status: t.3,
            latency_ms: t.4,
            response: t.5,
            error: t.6,
            next_retry_at: opt_from_db_time(t.7),
            started_at: from_db_time(t.8),
        },
    )
}

macro_rules! attempt_columns {
    () => {
        (
            webhook_attempts::delivery_id,
            webhook_attempts::attempt,
            webhook_attempts::outcome,
            webhook_attempts::http_status,
            webhook_attempts::latency_ms,
            webhook_attempts::response,
            webhook_attempts::error,
            webhook_attempts::next_retry_at,
            webhook_attempts::started_at,
        )
    };
}

/// Up to `limit` deliveries of an endpoint, newest first, after delivery
/// `after`, optionally of one status; each with its last attempt.
pub fn deliveries(
    conn: &mut DbConnection,
    org_id: &str,
    endpoint_id: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Delivery, Option<Attempt>)>, StoreError> {
    let mut query = webhook_deliveries::table
        .inner_join(events::table)
        .filter(webhook_deliveries::org_id.eq(org_id))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .select(delivery_columns!())
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.to_owned()));
    }
    if let Some(after) = after {
        let at: Option<NaiveDateTime> = webhook_deliveries::table
            .filter(webhook_deliveries::org_id.eq(org_id))
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .filter(webhook_deliveries::id.eq(after))
            .select(webhook_deliveries::created_at)
            .first(conn)
            .optional()?;
        let Some(at) = at else {
            return Ok(Vec::new());
        };
        query = query.filter(
            webhook_deliveries::created_at
                .lt(at)
                .or(webhook_deliveries::created_at
                    .eq(at)
                    .and(webhook_deliveries::id.lt(after.to_owned()))),
        );
    }
    let list: Vec<Delivery> = query
        .load::<DeliveryTuple>(conn)?
        .into_iter()
        .map(delivery)
        .collect();
    let ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
    let mut last: std::collections::HashMap<String, Attempt> = std::collections::HashMap::new();
    for (delivery_id, a) in webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&ids))
        .select(attempt_columns!())
        .load::<AttemptTuple>(conn)?
        .into_iter()
        .map(attempt)
    {
        match last.get(&delivery_id) {
            Some(kept) if kept.attempt >= a.attempt => {}
            _ => {
                last.insert(delivery_id, a);
            }
        }
    }
    Ok(list
        .into_iter()
        .map(|d| {
            let a = last.remove(&d.id);
            (d, a)
        })
        .collect())
}

/// One delivery of an endpoint with all its attempts, first to last.
pub fn delivery_with_attempts(
    conn: &mut DbConnection,
    org_id: &str,
    endpoint_id: &str,
    id: &str,
) -> Result<(Delivery, Vec<Attempt>), StoreError> {
    let found = webhook_deliveries::table
        .inner_join(events::table)
        .filter(webhook_deliveries::org_id.eq(org_id))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .filter(webhook_deliveries::id.eq(id))
        .select(delivery_columns!())
        .first::<DeliveryTuple>(conn)?;
    let attempts = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq(id))
        .select(attempt_columns!())
        .order(webhook_attempts::attempt.asc())
        .load::<AttemptTuple>(conn)?
        .into_iter()
        .map(|t| attempt(t).1)
        .collect();
    Ok((delivery(found), attempts))
}

/// A delivery claimed by a dispatcher, with what it takes to send it.
#[derive(Debug, Clone)]
pub struct Due {
    /// `whd_...`
    pub id: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// When attempt 1 was made (`None` before it).
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub endpoint_id: String,
    pub url: String,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub event: Event,
}

/// Leases up to `limit` due pending deliveries of enabled endpoints that no
/// other dispatcher holds, to `token` until `until`: one atomic `UPDATE`
/// (with `FOR UPDATE SKIP LOCKED` on PostgreSQL; in a `BEGIN IMMEDIATE`
/// transaction on SQLite). Returned in order: due first, then in the
/// order they were queued (`seq`).
pub fn claim(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
    token: &str,
) -> Result<Vec<Due>, StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = Nullable<BigInt>)]
        seq: Option<i64>,
    }
    let pick = |lock: &str| {
        format!(
            "UPDATE webhook_deliveries SET claim_token = $1, claimed_until = $2 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
               JOIN webhook_endpoints e ON e.id = d.endpoint_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 AND e.enabled \
                 AND (d.claimed_until IS NULL OR d.claimed_until < $3) \
               ORDER BY d.next_attempt_at, d.seq LIMIT $4{lock}) \
               AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $3) \
             RETURNING id, seq"
        )
    };
    let ids: Vec<Claimed> = match conn {
        // The batch must come from the due index, in its order: sorting
        // every due delivery to take the first `limit` costs in proportion
        // to the backlog, at each claim. A planner without fresh statistics
        // (a backlog written since the last ANALYZE) estimates a few dozen
        // due rows and would sort; `enable_sort = off`, for this
        // transaction only, makes it follow the index.
        DbConnection::Postgresql(_) => crate::transaction(conn, |conn| {
            let DbConnection::Postgresql(pg) = conn else {
                return Ok(Vec::new());
            };
            diesel::sql_query("SET LOCAL enable_sort = off").execute(pg)?;
            Ok::<_, StoreError>(
                diesel::sql_query(pick(" FOR UPDATE OF d SKIP LOCKED"))
                    .bind::<Text, _>(token)
                    .bind::<Timestamp, _>(to_db_time(until))
                    .bind::<Timestamp, _>(to_db_time(now))
                    .bind::<BigInt, _>(limit)
                    .load(pg)?,
            )
        })?,
        DbConnection::Sqlite(_) => crate::transaction(conn, |conn| {
            let DbConnection::Sqlite(lite) = conn else {
                return Ok(Vec::new());
            };
            Ok::<_, StoreError>(
                diesel::sql_query(pick(""))
                    .bind::<Text, _>(token)
                    .bind::<Timestamp, _>(to_db_time(until))
                    .bind::<Timestamp, _>(to_db_time(now))
                    .bind::<BigInt, _>(limit)
                    .load(lite)?,
            )
        })?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let order: std::collections::HashMap<String, i64> = ids
        .iter()
        .map(|c| (c.id.clone(), c.seq.unwrap_or(i64::MAX)))
        .collect();
    let ids: Vec<String> = ids.into_iter().map(|c| c.id).collect();
    type DueRow = (
        (String, i32, NaiveDateTime, NaiveDateTime),
        (
            String,
            String,
            String,
            Option<String>,
            Option<NaiveDateTime>,
        ),
        (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            NaiveDateTime,
        ),
    );
    let rows: Vec<DueRow> = webhook_deliveries::table
        .inner_join(events::table)
        .inner_join(webhook_endpoints::table)
        .filter(webhook_deliveries::id.eq_any(&ids))
        .filter(webhook_deliveries::claim_token.eq(token))
        .select((
            (
                webhook_deliveries::id,
                webhook_deliveries::attempts,
                webhook_deliveries::next_attempt_at.assume_not_null(),
                webhook_deliveries::created_at,
            ),
            (
                webhook_endpoints::id,
                webhook_endpoints::url,
                webhook_endpoints::secret_sealed,
                webhook_endpoints::previous_secret_sealed,
                webhook_endpoints::previous_secret_expires_at,
            ),
            (
                events::id,
                events::org_id,
                events::event_type,
                events::object_type,
                events::object_id,
                events::customer_id,
                events::actor,
                events::data,
                events::created_at,
            ),
        ))
        .load(conn)?;
    let retried: Vec<&str> = rows
        .iter()
        .filter(|r| r.0.1 > 0)
        .map(|r| r.0.0.as_str())
        .collect();
    let firsts: std::collections::HashMap<String, NaiveDateTime> = if retried.is_empty() {
        Default::default()
    } else {
        webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq_any(&retried))
            .filter(webhook_attempts::attempt.eq(1))
            .select((webhook_attempts::delivery_id, webhook_attempts::started_at))
            .load::<(String, NaiveDateTime)>(conn)?
            .into_iter()
            .collect()
    };
    let mut due: Vec<(NaiveDateTime, i64, Due)> = rows
        .into_iter()
        .map(|(d, e, v)| {
            let first_attempt_at = firsts.get(&d.0).copied().map(from_db_time);
            (
                d.2,
                order.get(&d.0).copied().unwrap_or(i64::MAX),
                Due {
                    first_attempt_at,
                    id: d.0,
                    attempts: d.1,
                    endpoint_id: e.0,
                    url: e.1,
                    secret_sealed: e.2,
                    previous_secret_sealed: e.3,
                    previous_secret_expires_at: opt_from_db_time(e.4),
                    event: Event {
                        id: v.0,
                        org_id: v.1,
                        event_type: v.2,
                        object_type: v.3,
                        object_id: v.4,
                        customer_id: v.5,
                        actor: v.6,
                        data: v.7,
                        created_at: from_db_time(v.8),
                    },
                },
            )
        })
        .collect();
    due.sort_by_key(|d| (d.0, d.1));
    Ok(due.into_iter().map(|(_, _, d)| d).collect())
}

/// Lets go of deliveries `token` still holds (a stopping dispatcher).
pub fn release(conn: &mut DbConnection, ids: &[&str], token: &str) -> Result<(), StoreError> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(ids))
            .filter(webhook_deliveries::claim_token.eq(token)),
    )
    .set((
        webhook_deliveries::claim_token.eq(None::<String>),
        webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// What one attempt of a claimed delivery gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: String,
    pub org_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub succeeded: bool,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub response: String,
    pub error: Option<String>,
    /// When to try again; `None` on success or when given up.
    pub next_retry_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
}

/// Locks the endpoints `ids` until the end of the transaction (PostgreSQL
/// row locks, taken in id order; SQLite writers are already serialized)
/// and returns those that still exist. A dispatcher calls it before
/// recording attempts, so that an endpoint deleted meanwhile is seen gone.
pub fn lock_endpoints(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let found: Vec<String> = match conn {
        DbConnection::Postgresql(pg) => webhook_endpoints::table
            .filter(webhook_endpoints::id.eq_any(&sorted))
            .select(webhook_endpoints::id)
            .order(webhook_endpoints::id)
            .for_update()
            .load(pg)?,
        DbConnection::Sqlite(_) => webhook_endpoints::table
            .filter(webhook_endpoints::id.eq_any(&sorted))
            .select(webhook_endpoints::id)
            .load(conn)?,
    };
    Ok(found.into_iter().collect())
}

/// Records a batch of attempts of deliveries `token` holds, in the
/// caller's transaction, in a few statements whatever the batch's size:
/// the held deliveries are locked (PostgreSQL) and read back, then updated
/// by outcome, and their attempts inserted together. Returns, for each
/// outcome, whether it was recorded (`false`: no longer held by `token`,
/// nothing written for it).
pub fn record_all(
    conn: &mut DbConnection,
    outcomes: &[Outcome],
    token: &str,
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    const CHUNK: usize = 500;
    let mut held: std::collections::HashSet<String> = std::collections::HashSet::new();
    for chunk in outcomes.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|o| o.delivery_id.as_str()).collect();
        let query = webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(ids))
            .filter(webhook_deliveries::claim_token.eq(token))
            .select(webhook_deliveries::id);
        let found: Vec<String> = match conn {
            DbConnection::Postgresql(pg) => query.for_update().load(pg)?,
            DbConnection::Sqlite(_) => query.load(conn)?,
        };
        held.extend(found);
    }
    let recorded: Vec<bool> = outcomes
        .iter()
        .map(|o| held.contains(&o.delivery_id))
        .collect();
    let at = to_db_time(now);
    let mut ended: [(&str, Vec<&str>); 2] =
        [(STATUS_SUCCEEDED, Vec::new()), (STATUS_FAILED, Vec::new())];
    for (o, kept) in outcomes.iter().zip(&recorded) {
        if !kept {
            continue;
        }
        match (o.succeeded, o.next_retry_at) {
            (true, _) => ended[0].1.push(&o.delivery_id),
            (false, None) => ended[1].1.push(&o.delivery_id),
            (false, Some(next)) => {
                diesel::update(
                    webhook_deliveries::table.filter(webhook_deliveries::id.eq(&o.delivery_id)),
                )
                .set((
                    webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                    webhook_deliveries::next_attempt_at.eq(Some(to_db_time(next))),
                    webhook_deliveries::claim_token.eq(None::<String>),
                    webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
                    webhook_deliveries::updated_at.eq(at),
                ))
                .execute(conn)?;
            }
        }
    }
    for (status, ids) in &ended {
        for chunk in ids.chunks(CHUNK) {
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(chunk)))
                .set((
                    webhook_deliveries::status.eq(*status),
                    webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                    webhook_deliveries::next_attempt_at.eq(None::<NaiveDateTime>),
                    webhook_deliveries::claim_token.eq(None::<String>),
                    webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
                    webhook_deliveries::updated_at.eq(at),
                ))
                .execute(conn)?;
        }
    }
    let rows: Vec<_> = outcomes
        .iter()
        .zip(&recorded)
        .filter(|(_, kept)| **kept)
        .map(|(o, _)| {
            (
                webhook_attempts::id.eq(guichet_domain::ids::new_id("wha")),
                webhook_attempts::delivery_id.eq(&o.delivery_id),
                webhook_attempts::org_id.eq(&o.org_id),
                webhook_attempts::endpoint_id.eq(&o.endpoint_id),
                webhook_attempts::event_id.eq(&o.event_id),
                webhook_attempts::attempt.eq(o.attempt),
                webhook_attempts::outcome.eq(if o.succeeded {
                    STATUS_SUCCEEDED
                } else {
                    STATUS_FAILED
                }),
                webhook_attempts::http_status.eq(o.http_status),
                webhook_attempts::latency_ms.eq(o.latency_ms),
                webhook_attempts::response.eq(&o.response),
                webhook_attempts::error.eq(&o.error),
                webhook_attempts::next_retry_at.eq(opt_to_db_time(o.next_retry_at)),
                webhook_attempts::started_at.eq(to_db_time(o.started_at)),
            )
        })
        .collect();
    match conn {
        // One statement per chunk: a round trip each.
        DbConnection::Postgresql(pg) => {
            for chunk in rows.chunks(CHUNK) {
                diesel::insert_into(webhook_attempts::table)
                    .values(chunk)
                    .execute(pg)?;
            }
        }
        // In-process: one cached statement per row costs little.
        DbConnection::Sqlite(lite) => {
            for row in rows {
                diesel::insert_into(webhook_attempts::table)
                    .values(row)
                    .execute(lite)?;
            }
        }
    }
    Ok(recorded)
}

/// After a success: the endpoints are no longer failing (one statement).
pub fn mark_healthy(conn: &mut DbConnection, endpoint_ids: &[&str]) -> Result<(), StoreError> {
    if endpoint_ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq_any(endpoint_ids))
            .filter(webhook_endpoints::failing_since.is_not_null()),
    )
    .set(webhook_endpoints::failing_since.eq(None::<NaiveDateTime>))
    .execute(conn)?;
    Ok(())
}

/// After a failure at `now`: the endpoint fails since `now` unless it
/// already did; once it has failed since `disable_before` or earlier it is
/// disabled (`failing`). Returns the endpoint's organization when this call
/// disabled it (its admins are then told), `None` otherwise.
pub fn mark_failing(
    conn: &mut DbConnection,
    endpoint_id: &str,
    now: DateTime<Utc>,
    disable_before: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(endpoint_id))
            .filter(webhook_endpoints::failing_since.is_null()),
    )
    .set(webhook_endpoints::failing_since.eq(Some(to_db_time(now))))
    .execute(conn)?;
    let n = diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(endpoint_id))
            .filter(webhook_endpoints::enabled.eq(true))
            .filter(webhook_endpoints::failing_since.le(to_db_time(disable_before))),
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::disabled_reason.eq(Some("failing")),
        webhook_endpoints::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::id.eq(endpoint_id))
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()?
        .map(Endpoint::from))
}

/// The queue: pending deliveries, and when the longest-waiting due one of
/// an enabled endpoint became due (`None` when nothing is due at `now`).
pub fn queue_stats(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    let depth: i64 = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(STATUS_PENDING))
        .count()
        .get_result(conn)?;
    let oldest: Option<NaiveDateTime> = webhook_deliveries::table
        .inner_join(webhook_endpoints::table)
        .filter(webhook_endpoints::enabled.eq(true))
        .filter(webhook_deliveries::status.eq(STATUS_PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(to_db_time(now)))
        .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
        .first(conn)?;
    Ok((depth, opt_from_db_time(oldest)))
}

/// Pending deliveries left at `now`, those of them another (possibly
/// dead) dispatcher holds, and when the last such lease ends.
pub fn pending_left(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<(i64, i64, Option<DateTime<Utc>>), StoreError> {
    let due = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(STATUS_PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(to_db_time(now)));
    let left: i64 = due.count().get_result(conn)?;
    let held = due.filter(webhook_deliveries::claimed_until.ge(to_db_time(now)));
    let count: i64 = held.count().get_result(conn)?;
    let until: Option<NaiveDateTime> = held
        .select(diesel::dsl::max(webhook_deliveries::claimed_until))
        .first(conn)?;
    Ok((left, count, opt_from_db_time(until)))
}
