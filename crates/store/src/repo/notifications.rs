//! The `notifications` table: what the portal tells one customer, written
//! in the customer's language in the same transaction as its cause. Every
//! query is scoped to the organization and the customer.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::Locale;
use guichet_domain::ids;
use guichet_domain::portal::{NewNotification, notification_for_event};

use super::events::Event;
use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{customers, notifications, portal_settings};

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `ntf_...`
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Caused on the organization's test customer (a preview session).
    pub test: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    kind: String,
    title: String,
    body: String,
    link: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    test: bool,
    read_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl From<Row> for Notification {
    fn from(r: Row) -> Self {
        Notification {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            kind: r.kind,
            title: r.title,
            body: r.body,
            link: r.link,
            object_type: r.object_type,
            object_id: r.object_id,
            test: r.test,
            read_at: opt_from_db_time(r.read_at),
            created_at: from_db_time(r.created_at),
        }
    }
}

/// Creates a notification for `customer_id` of `org_id`: `build` is given
/// the customer's language and returns the title, body and link in it.
/// Returns the notification's id, or `NotFound` when the customer is not
/// the organization's. Call it inside the transaction of its cause.
pub fn notify(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
    build: impl FnOnce(Locale) -> NewNotification,
) -> Result<String, StoreError> {
    let locale: String = customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::id.eq(customer_id))
        .select(customers::locale)
        .first(conn)?;
    let locale = Locale::parse(&locale).unwrap_or_default();
    let n = build(locale);
    insert(conn, org_id, customer_id, &n, now)
}

fn insert(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    n: &NewNotification,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let test: i64 = portal_settings::table
        .filter(portal_settings::org_id.eq(org_id))
        .filter(portal_settings::test_customer_id.eq(customer_id))
        .count()
        .get_result(conn)?;
    let id = ids::new_id("ntf");
    diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(&id),
            notifications::org_id.eq(org_id),
            notifications::customer_id.eq(customer_id),
            notifications::kind.eq(&n.kind),
            notifications::title.eq(&n.title),
            notifications::body.eq(&n.body),
            notifications::link.eq(&n.link),
            notifications::object_type.eq(&n.object_type),
            notifications::object_id.eq(&n.object_id),
            notifications::test.eq(test > 0),
            notifications::read_at.eq(None::<NaiveDateTime>),
            notifications::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The notification `event` gives its customer, if its type is one a
/// customer is told about (`portal::notification_for_event`). Called by
/// `events::record`, so in the event's transaction.
pub fn from_event(conn: &mut DbConnection, event: &Event) -> Result<Option<String>, StoreError> {
    // The customer is the event's, or for events a job records (an
    // instalment's debit) the one its snapshot names.
    // A customer's own booking actions are on their screen already.
    if event.object_type == "booking" && event.actor == "customer" {
        return Ok(None);
    }
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    let customer_id = match event.customer_id.as_deref() {
        Some(c) => c.to_owned(),
        None => match data
            .get("customer_id")
            .or_else(|| data.pointer("/invoice/customer_id"))
            .and_then(|v| v.as_str())
        {
            Some(c) => c.to_owned(),
            None => return Ok(None),
        },
    };
    let locale: Option<String> = customers::table
        .filter(customers::org_id.eq(&event.org_id))
        .filter(customers::id.eq(&customer_id))
        .select(customers::locale)
        .first(conn)
        .optional()?;
    let Some(locale) = locale else {
        return Ok(None);
    };
    let locale = Locale::parse(&locale).unwrap_or_default();
    let Some(mut n) = notification_for_event(
        &event.event_type,
        &event.object_type,
        &event.object_id,
        locale,
    ) else {
        return Ok(None);
    };
    // An instalment's page is its schedule's.
    if n.link.is_none()
        && let Some(order) = data.get("order_id").and_then(|v| v.as_str())
    {
        n.link = Some(format!("/v1/me/schedules/{order}"));
    }
    insert(conn, &event.org_id, &customer_id, &n, event.created_at).map(Some)
}

/// Where a page of notifications starts: after this one (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// A page of the customer's notifications, newest first, after `after`;
/// unread ones only when `unread_only`.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    unread_only: bool,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<Notification>, StoreError> {
    let mut query = notifications::table
        .filter(notifications::org_id.eq(org_id))
        .filter(notifications::customer_id.eq(customer_id))
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if unread_only {
        query = query.filter(notifications::read_at.is_null());
    }
    if let Some(after) = after {
        let at = to_db_time(after.created_at);
        query = query.filter(
            notifications::created_at
                .lt(at)
                .or(notifications::created_at
                    .eq(at)
                    .and(notifications::id.lt(after.id.clone()))),
        );
    }
    Ok(query
        .load::<Row>(conn)?
        .into_iter()
        .map(Notification::from)
        .collect())
}

/// One of the customer's notifications; `NotFound` for anyone else's.
pub fn get(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Notification, StoreError> {
    Ok(notifications::table
        .filter(notifications::org_id.eq(org_id))
        .filter(notifications::customer_id.eq(customer_id))
        .filter(notifications::id.eq(id))
        .select(Row::as_select())
        .first::<Row>(conn)?
        .into())
}

/// Marks one of the customer's notifications read (once: a second call
/// keeps the first instant) and returns it; `NotFound` for anyone else's.
pub fn mark_read(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Notification, StoreError> {
    diesel::update(
        notifications::table
            .filter(notifications::org_id.eq(org_id))
            .filter(notifications::customer_id.eq(customer_id))
            .filter(notifications::id.eq(id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(to_db_time(now)))
    .execute(conn)?;
    get(conn, org_id, customer_id, id)
}

/// Marks every unread notification of the customer read; how many were.
pub fn mark_all_read(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        notifications::table
            .filter(notifications::org_id.eq(org_id))
            .filter(notifications::customer_id.eq(customer_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(to_db_time(now)))
    .execute(conn)?)
}

/// How many of the customer's notifications are unread.
pub fn unread_count(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<i64, StoreError> {
    Ok(notifications::table
        .filter(notifications::org_id.eq(org_id))
        .filter(notifications::customer_id.eq(customer_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)?)
}
