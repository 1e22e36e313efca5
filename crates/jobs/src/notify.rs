//! Notifications: messages are written to the outbox in the same
//! transaction as the change that causes them ([`queue`]) and delivered
//! later, with retries, by the API's dispatcher thread
//! (`guichet_api::notify::dispatch`).

pub mod templates;

use chrono::{DateTime, Utc};
use guichet_domain::{Locale, ids};
use guichet_store::repo::outbox::{self, Attachment, Message};
use guichet_store::{DbConnection, StoreError};

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
/// Call it inside the transaction of the change the message is about.
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
    let rendered = template.render(locale, channel);
    let attachments = if channel == Channel::Email {
        attachments
    } else {
        &[]
    };
    outbox::enqueue_with_attachments(
        conn,
        &Message {
            id: ids::new_id("msg"),
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
    )
}
