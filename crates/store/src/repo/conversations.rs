//! The `conversations`, `conversation_messages` and `message_attachments`
//! tables: a customer writes to the business, staff answer. Every query is
//! scoped to an organization, and the customer's to the customer too.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::documents::{self, Document};
use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{
    conversation_messages, conversations, documents as documents_t, message_attachments,
};

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub subject: String,
    /// `open` or `closed`.
    pub status: String,
    pub assigned_staff_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_message_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
struct ConvRow {
    id: String,
    org_id: String,
    customer_id: String,
    subject: String,
    status: String,
    assigned_staff_id: Option<String>,
    created_at: NaiveDateTime,
    last_message_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
}

impl From<ConvRow> for Conversation {
    fn from(r: ConvRow) -> Self {
        Conversation {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            subject: r.subject,
            status: r.status,
            assigned_staff_id: r.assigned_staff_id,
            created_at: from_db_time(r.created_at),
            last_message_at: from_db_time(r.last_message_at),
            closed_at: opt_from_db_time(r.closed_at),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub org_id: String,
    /// `customer`, `staff` or `api_key`.
    pub author_kind: String,
    pub author_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversation_messages)]
struct MsgRow {
    id: String,
    conversation_id: String,
    org_id: String,
    author_kind: String,
    author_id: String,
    body: String,
    created_at: NaiveDateTime,
    read_at: Option<NaiveDateTime>,
}

impl From<MsgRow> for Message {
    fn from(r: MsgRow) -> Self {
        Message {
            id: r.id,
            conversation_id: r.conversation_id,
            org_id: r.org_id,
            author_kind: r.author_kind,
            author_id: r.author_id,
            body: r.body,
            created_at: from_db_time(r.created_at),
            read_at: opt_from_db_time(r.read_at),
        }
    }
}

pub fn insert(conn: &mut DbConnection, c: &Conversation) -> Result<(), StoreError> {
    diesel::insert_into(conversations::table)
        .values((
            conversations::id.eq(&c.id),
            conversations::org_id.eq(&c.org_id),
            conversations::customer_id.eq(&c.customer_id),
            conversations::subject.eq(&c.subject),
            conversations::status.eq(&c.status),
            conversations::assigned_staff_id.eq(&c.assigned_staff_id),
            conversations::created_at.eq(to_db_time(c.created_at)),
            conversations::last_message_at.eq(to_db_time(c.last_message_at)),
            conversations::closed_at.eq(c.closed_at.map(to_db_time)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds a message and moves the conversation's `last_message_at`.
pub fn add_message(conn: &mut DbConnection, m: &Message) -> Result<(), StoreError> {
    diesel::insert_into(conversation_messages::table)
        .values((
            conversation_messages::id.eq(&m.id),
            conversation_messages::conversation_id.eq(&m.conversation_id),
            conversation_messages::org_id.eq(&m.org_id),
            conversation_messages::author_kind.eq(&m.author_kind),
            conversation_messages::author_id.eq(&m.author_id),
            conversation_messages::body.eq(&m.body),
            conversation_messages::created_at.eq(to_db_time(m.created_at)),
            conversation_messages::read_at.eq(m.read_at.map(to_db_time)),
        ))
        .execute(conn)?;
    diesel::update(
        conversations::table
            .filter(conversations::org_id.eq(&m.org_id))
            .filter(conversations::id.eq(&m.conversation_id)),
    )
    .set(conversations::last_message_at.eq(to_db_time(m.created_at)))
    .execute(conn)?;
    Ok(())
}

/// Attaches the customer's uploaded attachments (in order) to a message.
/// Each must be an attachment of this customer not attached yet: otherwise
/// `NotFound` (nothing says whose it is).
pub fn attach(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    message_id: &str,
    document_ids: &[String],
) -> Result<(), StoreError> {
    for (position, id) in document_ids.iter().enumerate() {
        let doc = documents::get_for_customer(conn, org_id, customer_id, id)?;
        if doc.kind != documents::KIND_ATTACHMENT {
            return Err(StoreError::NotFound);
        }
        let taken: i64 = message_attachments::table
            .filter(message_attachments::document_id.eq(id))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(StoreError::NotFound);
        }
        diesel::insert_into(message_attachments::table)
            .values((
                message_attachments::document_id.eq(id),
                message_attachments::message_id.eq(message_id),
                message_attachments::org_id.eq(org_id),
                message_attachments::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Conversation, StoreError> {
    Ok(conversations::table
        .filter(conversations::org_id.eq(org_id))
        .filter(conversations::id.eq(id))
        .select(ConvRow::as_select())
        .first(conn)?
        .into())
}

pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Conversation, StoreError> {
    Ok(conversations::table
        .filter(conversations::org_id.eq(org_id))
        .filter(conversations::customer_id.eq(customer_id))
        .filter(conversations::id.eq(id))
        .select(ConvRow::as_select())
        .first(conn)?
        .into())
}

/// Filters of the staff's list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub customer_id: Option<String>,
    pub status: Option<String>,
}

/// Conversations, most recently active first, after the cursor's
/// `(last_message_at, id)`.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<Conversation>, StoreError> {
    let mut q = conversations::table
        .filter(conversations::org_id.eq(org_id))
        .into_boxed();
    if let Some(customer) = &filter.customer_id {
        q = q.filter(conversations::customer_id.eq(customer.clone()));
    }
    if let Some(status) = &filter.status {
        q = q.filter(conversations::status.eq(status.clone()));
    }
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = q.filter(
            conversations::last_message_at
                .lt(at)
                .or(conversations::last_message_at
                    .eq(at)
                    .and(conversations::id.gt(id.to_owned()))),
        );
    }
    Ok(q.order((
        conversations::last_message_at.desc(),
        conversations::id.asc(),
    ))
    .limit(limit)
    .select(ConvRow::as_select())
    .load(conn)?
    .into_iter()
    .map(Conversation::from)
    .collect())
}

/// The conversation's messages, oldest first.
pub fn messages(
    conn: &mut DbConnection,
    org_id: &str,
    conversation_id: &str,
) -> Result<Vec<Message>, StoreError> {
    Ok(conversation_messages::table
        .filter(conversation_messages::org_id.eq(org_id))
        .filter(conversation_messages::conversation_id.eq(conversation_id))
        .order((
            conversation_messages::created_at.asc(),
            conversation_messages::id.asc(),
        ))
        .select(MsgRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Message::from)
        .collect())
}

/// The attachments of these messages: `(message_id, document)` in order.
pub fn attachments(
    conn: &mut DbConnection,
    org_id: &str,
    message_ids: &[String],
) -> Result<Vec<(String, Document)>, StoreError> {
    let links: Vec<(String, String)> = message_attachments::table
        .filter(message_attachments::org_id.eq(org_id))
        .filter(message_attachments::message_id.eq_any(message_ids))
        .order((
            message_attachments::message_id.asc(),
            message_attachments::position.asc(),
        ))
        .select((
            message_attachments::message_id,
            message_attachments::document_id,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(links.len());
    for (message_id, document_id) in links {
        out.push((message_id, documents::get(conn, org_id, &document_id)?));
    }
    Ok(out)
}

/// Whether the document is attached to a message of this conversation.
pub fn has_attachment(
    conn: &mut DbConnection,
    org_id: &str,
    conversation_id: &str,
    document_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 = message_attachments::table
        .inner_join(
            conversation_messages::table
                .on(conversation_messages::id.eq(message_attachments::message_id)),
        )
        .filter(message_attachments::org_id.eq(org_id))
        .filter(message_attachments::document_id.eq(document_id))
        .filter(conversation_messages::conversation_id.eq(conversation_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Read markers: marks read every message of the conversation written by
/// the other side (`reader` is `customer` or `staff`).
pub fn mark_read(
    conn: &mut DbConnection,
    org_id: &str,
    conversation_id: &str,
    reader: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let base = conversation_messages::table
        .filter(conversation_messages::org_id.eq(org_id))
        .filter(conversation_messages::conversation_id.eq(conversation_id))
        .filter(conversation_messages::read_at.is_null());
    let set = conversation_messages::read_at.eq(to_db_time(now));
    if reader == "customer" {
        diesel::update(base.filter(conversation_messages::author_kind.ne("customer")))
            .set(set)
            .execute(conn)?;
    } else {
        diesel::update(base.filter(conversation_messages::author_kind.eq("customer")))
            .set(set)
            .execute(conn)?;
    }
    Ok(())
}

/// Opens or closes the conversation.
pub fn set_status(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let closed_at = (status == "closed").then(|| to_db_time(now));
    diesel::update(
        conversations::table
            .filter(conversations::org_id.eq(org_id))
            .filter(conversations::id.eq(id)),
    )
    .set((
        conversations::status.eq(status),
        conversations::closed_at.eq(closed_at),
    ))
    .execute(conn)?;
    Ok(())
}

/// Assigns the conversation to a staff member (or to nobody).
pub fn assign(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    staff_id: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(
        conversations::table
            .filter(conversations::org_id.eq(org_id))
            .filter(conversations::id.eq(id)),
    )
    .set(conversations::assigned_staff_id.eq(staff_id))
    .execute(conn)?;
    Ok(())
}

/// Messages from the business the customer has not read yet.
pub fn unread_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<i64, StoreError> {
    Ok(conversation_messages::table
        .inner_join(
            conversations::table.on(conversations::id.eq(conversation_messages::conversation_id)),
        )
        .filter(conversations::org_id.eq(org_id))
        .filter(conversations::customer_id.eq(customer_id))
        .filter(conversation_messages::author_kind.ne("customer"))
        .filter(conversation_messages::read_at.is_null())
        .count()
        .get_result(conn)?)
}

/// A conversation of the customer's with messages from the business they
/// have not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadConversation {
    pub id: String,
    pub subject: String,
    /// `open` or `closed`.
    pub status: String,
    pub last_message_at: DateTime<Utc>,
    /// Messages from the business not read yet.
    pub unread: i64,
}

/// The customer's conversations with unread messages from the business,
/// most recently active first, in one grouped query.
pub fn unread_conversations(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<UnreadConversation>, StoreError> {
    let rows: Vec<(String, String, String, NaiveDateTime, i64)> = conversation_messages::table
        .inner_join(
            conversations::table.on(conversations::id.eq(conversation_messages::conversation_id)),
        )
        .filter(conversations::org_id.eq(org_id))
        .filter(conversations::customer_id.eq(customer_id))
        .filter(conversation_messages::org_id.eq(org_id))
        .filter(conversation_messages::author_kind.ne("customer"))
        .filter(conversation_messages::read_at.is_null())
        .group_by((
            conversations::id,
            conversations::subject,
            conversations::status,
            conversations::last_message_at,
        ))
        .order((
            conversations::last_message_at.desc(),
            conversations::id.asc(),
        ))
        .select((
            conversations::id,
            conversations::subject,
            conversations::status,
            conversations::last_message_at,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, subject, status, at, unread)| UnreadConversation {
            id,
            subject,
            status,
            last_message_at: from_db_time(at),
            unread,
        })
        .collect())
}

/// Unread messages of one conversation, for the side `reader`.
pub fn unread_in(
    conn: &mut DbConnection,
    org_id: &str,
    conversation_id: &str,
    reader: &str,
) -> Result<i64, StoreError> {
    let base = conversation_messages::table
        .filter(conversation_messages::org_id.eq(org_id))
        .filter(conversation_messages::conversation_id.eq(conversation_id))
        .filter(conversation_messages::read_at.is_null());
    Ok(if reader == "customer" {
        base.filter(conversation_messages::author_kind.ne("customer"))
            .count()
            .get_result(conn)?
    } else {
        base.filter(conversation_messages::author_kind.eq("customer"))
            .count()
            .get_result(conn)?
    })
}

/// Whether a document is one of the customer's attachments (any message).
pub fn is_attachment_of(
    conn: &mut DbConnection,
    org_id: &str,
    document_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 = documents_t::table
        .filter(documents_t::org_id.eq(org_id))
        .filter(documents_t::id.eq(document_id))
        .filter(documents_t::kind.eq(documents::KIND_ATTACHMENT))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
