//! The `outbox` table: e-mails and SMS written in the same transaction as
//! the change that causes them, delivered later by the dispatcher.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{customers, outbox, outbox_attachments, portal_settings};

/// What the body of a delivered message is replaced with: codes and links
/// do not stay in the database once sent.
pub const DELIVERED_BODY: &str = "[delivered]";

/// A message waiting for (or past) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub org_id: Option<String>,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient: String,
    /// Empty for SMS.
    pub subject: String,
    pub body: String,
    /// Which template produced it (`login_code`, `password_reset`, ...).
    pub template: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox)]
struct Row {
    id: String,
    org_id: Option<String>,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    template: String,
    attempts: i32,
    created_at: NaiveDateTime,
}

impl From<Row> for Message {
    fn from(r: Row) -> Self {
        Message {
            id: r.id,
            org_id: r.org_id,
            channel: r.channel,
            recipient: r.recipient,
            subject: r.subject,
            body: r.body,
            template: r.template,
            attempts: r.attempts,
            created_at: from_db_time(r.created_at),
        }
    }
}

/// Whether `recipient` is the e-mail address or the mobile of the
/// organization's test customer (the one staff preview the portal as):
/// nothing is ever sent there.
fn is_test_customer_contact(
    conn: &mut DbConnection,
    org_id: &str,
    recipient: &str,
) -> Result<bool, StoreError> {
    let n: i64 = portal_settings::table
        .inner_join(
            customers::table.on(customers::id
                .nullable()
                .eq(portal_settings::test_customer_id)),
        )
        .filter(portal_settings::org_id.eq(org_id))
        .filter(customers::org_id.eq(org_id))
        .filter(
            customers::email
                .eq(recipient)
                .or(customers::mobile.eq(recipient)),
        )
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Queues a message for delivery now. A message to the organization's test
/// customer is not queued: a preview session's e-mails go to the staff
/// member instead (the API decides), and nothing else reaches that
/// fictitious address.
pub fn enqueue(conn: &mut DbConnection, m: &Message) -> Result<(), StoreError> {
    insert(conn, m).map(drop)
}

/// Whether the message was queued (see [`enqueue`]).
fn insert(conn: &mut DbConnection, m: &Message) -> Result<bool, StoreError> {
    if let Some(org_id) = &m.org_id
        && is_test_customer_contact(conn, org_id, &m.recipient)?
    {
        return Ok(false);
    }
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(&m.id),
            outbox::org_id.eq(&m.org_id),
            outbox::channel.eq(&m.channel),
            outbox::recipient.eq(&m.recipient),
            outbox::subject.eq(&m.subject),
            outbox::body.eq(&m.body),
            outbox::template.eq(&m.template),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(to_db_time(m.created_at)),
            outbox::created_at.eq(to_db_time(m.created_at)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// A file sent with an e-mail (e.g. the signed mandate PDF attached to
/// its confirmation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the recipient sees, e.g. `mandat-GCH20261122ABCD.pdf`.
    pub filename: String,
    /// A MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file; empty while [`Attachment::render`] says how to make it.
    pub content: Vec<u8>,
    /// For a file that costs too much to make inside the transaction that
    /// queues the message (an invoice receipt, a PDF): what makes it when
    /// the message is sent, as JSON the dispatcher's renderer reads.
    /// `None`: `content` is the file.
    pub render: Option<String>,
}

/// Queues a message with files attached (e-mail only), in the caller's
/// transaction.
pub fn enqueue_with_attachments(
    conn: &mut DbConnection,
    m: &Message,
    attachments: &[Attachment],
) -> Result<(), StoreError> {
    if !insert(conn, m)? {
        return Ok(());
    }
    for (index, a) in attachments.iter().enumerate() {
        diesel::insert_into(outbox_attachments::table)
            .values((
                outbox_attachments::id.eq(format!("{}-{index}", m.id)),
                outbox_attachments::outbox_id.eq(&m.id),
                outbox_attachments::filename.eq(&a.filename),
                outbox_attachments::content_type.eq(&a.content_type),
                outbox_attachments::content.eq(&a.content),
                outbox_attachments::render.eq(&a.render),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The files attached to message `outbox_id`, in the order they were
/// given.
pub fn attachments(
    conn: &mut DbConnection,
    outbox_id: &str,
) -> Result<Vec<Attachment>, StoreError> {
    type Row = (String, String, String, Vec<u8>, Option<String>);
    let rows: Vec<Row> = outbox_attachments::table
        .filter(outbox_attachments::outbox_id.eq(outbox_id))
        .select((
            outbox_attachments::id,
            outbox_attachments::filename,
            outbox_attachments::content_type,
            outbox_attachments::content,
            outbox_attachments::render,
        ))
        .load(conn)?;
    let mut rows: Vec<(usize, Attachment)> = rows
        .into_iter()
        .map(|(id, filename, content_type, content, render)| {
            let index = id
                .rsplit_once('-')
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or(usize::MAX);
            (
                index,
                Attachment {
                    filename,
                    content_type,
                    content,
                    render,
                },
            )
        })
        .collect();
    rows.sort_by_key(|(index, _)| *index);
    Ok(rows.into_iter().map(|(_, a)| a).collect())
}

/// Claims up to `limit` due messages for `lease`: other dispatchers (other
/// nodes) skip them until the lease ends. The claim is one conditional
/// UPDATE, so two dispatchers never claim the same message.
pub fn claim_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
    claim_token: &str,
) -> Result<Vec<Message>, StoreError> {
    let now_db = to_db_time(now);
    let due = outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .filter(outbox::next_attempt_at.le(now_db))
        .order(outbox::next_attempt_at.asc())
        .select(outbox::id)
        .limit(limit);
    let ids: Vec<String> = due.load(conn)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(&ids))
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(now_db)),
    )
    .set((
        outbox::claim_token.eq(claim_token),
        outbox::next_attempt_at.eq(to_db_time(now + lease)),
        outbox::attempts.eq(outbox::attempts + 1),
    ))
    .execute(conn)?;
    Ok(outbox::table
        .filter(outbox::claim_token.eq(claim_token))
        .filter(outbox::sent_at.is_null())
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Message::from)
        .collect())
}

/// Records a delivery and drops the body.
pub fn mark_sent(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::sent_at.eq(to_db_time(now)),
            outbox::body.eq(DELIVERED_BODY),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or given up when `None`.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let target = outbox::table.find(id);
    match retry_at {
        Some(at) => diesel::update(target)
            .set((
                outbox::last_error.eq(error),
                outbox::next_attempt_at.eq(to_db_time(at)),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                outbox::last_error.eq(error),
                outbox::failed_at.eq(to_db_time(now)),
                outbox::body.eq(DELIVERED_BODY),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Messages not yet delivered nor given up (for metrics and tests).
pub fn pending_count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)?)
}
