//! Notifications: messages are written to the outbox in the same
//! transaction as the change that causes them ([`queue`]) and delivered
//! later, with retries, by the API's dispatcher thread
//! (`guichet_api::notify::dispatch`).

pub mod seal;
pub mod templates;

use chrono::{DateTime, Utc};
use guichet_domain::{Locale, ids};
use guichet_store::repo::outbox::{self, Attachment, Message};
use guichet_store::{DbConnection, StoreError};

pub use seal::OutboxKey;
pub use templates::Template;

/// The channel a message goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Writes `template`, rendered in `locale`, to the outbox for `recipient`.
/// Call it inside the transaction of the change the message is about. A
/// template that carries a secret is refused: it goes through
/// [`queue_sealed`].
pub fn queue(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    channel: Channel,
    recipient: &str,
    template: &Template,
    locale: Locale,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    queue_with_attachments(conn, org_id, channel, recipient, template, locale, now, &[])
}

/// [`queue`] with files attached (e-mail only: SMS carry no files).
#[allow(clippy::too_many_arguments)]
pub fn queue_with_attachments(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    channel: Channel,
    recipient: &str,
    template: &Template,
    locale: Locale,
    now: DateTime<Utc>,
    attachments: &[Attachment],
) -> Result<(), StoreError> {
    if template.carries_secret() {
        return Err(StoreError::Database(format!(
            "the {} message carries a secret: it is queued sealed",
            template.name()
        )));
    }
    enqueue(
        conn,
        org_id,
        channel,
        recipient,
        template,
        locale,
        now,
        attachments,
        None,
    )
    .map(drop)
}

/// [`queue`] for a message that carries a secret (a code, a link with a
/// token): its body is stored sealed under `key` and opened only at
/// delivery, then erased.
#[allow(clippy::too_many_arguments)]
pub fn queue_sealed(
    conn: &mut DbConnection,
    key: &OutboxKey,
    org_id: Option<&str>,
    channel: Channel,
    recipient: &str,
    template: &Template,
    locale: Locale,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    enqueue(
        conn,
        org_id,
        channel,
        recipient,
        template,
        locale,
        now,
        &[],
        Some(key),
    )
    .map(drop)
}

/// [`queue_sealed`] (when the template carries a secret) or [`queue`],
/// returning the message's id (so that what it is about can name it).
#[allow(clippy::too_many_arguments)]
pub fn queue_returning_id(
    conn: &mut DbConnection,
    key: &OutboxKey,
    org_id: Option<&str>,
    channel: Channel,
    recipient: &str,
    template: &Template,
    locale: Locale,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let seal = template.carries_secret().then_some(key);
    enqueue(
        conn,
        org_id,
        channel,
        recipient,
        template,
        locale,
        now,
        &[],
        seal,
    )
}

#[allow(clippy::too_many_arguments)]
fn enqueue(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    channel: Channel,
    recipient: &str,
    template: &Template,
    locale: Locale,
    now: DateTime<Utc>,
    attachments: &[Attachment],
    seal: Option<&OutboxKey>,
) -> Result<String, StoreError> {
    let mut rendered = template.render(locale, channel);
    if let Some(key) = seal {
        rendered.body = key.seal(&rendered.body);
    }
    let attachments = if channel == Channel::Email {
        attachments
    } else {
        &[]
    };
    let id = ids::new_id("msg");
    outbox::enqueue_with_attachments(
        conn,
        &Message {
            id: id.clone(),
            org_id: org_id.map(str::to_owned),
            channel: channel.as_str().to_owned(),
            recipient: recipient.to_owned(),
            subject: rendered.subject,
            body: rendered.body,
            template: template.name().to_owned(),
            attempts: 0,
            created_at: now,
        },
        attachments,
    )?;
    Ok(id)
}
