//! Where documents and messages meet the portal settings: whether an
//! action is on for a customer, the customer's notifications and the
//! e-mails that tell each side about the other's message.

use chrono::{DateTime, Utc};
use guichet_domain::ids;
use guichet_domain::portal::{NewNotification, PortalAction};
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::conversations::{Conversation, Message};
use guichet_store::repo::documents::Document;
use guichet_store::repo::{customers, notifications, outbox, portal, staff};

use crate::notify::Channel;

use crate::auth::CustomerPrincipal;
use crate::problem::ApiError;

/// Whether `action` is on for this customer now (the organization's
/// setting with the customer's override on top, read per request); 403
/// `portal_action_disabled` when it is off.
pub fn require_action(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    action: PortalAction,
) -> Result<(), ApiError> {
    crate::routes::portal::require_action(conn, principal, action)
}

/// Where a message a customer's request sends goes: `recipient` by
/// `channel`, except in a preview session (a staff member on the test
/// customer), where it goes by e-mail to that staff member (a preview
/// sends no SMS and e-mails nobody else).
pub fn recipient(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    channel: Channel,
    recipient: &str,
) -> Result<(Channel, String), StoreError> {
    Ok(match previewer_email(conn, principal)? {
        Some(staff) => (Channel::Email, staff),
        None => (channel, recipient.to_owned()),
    })
}

/// In a preview session, the e-mail address of the staff member previewing.
pub fn previewer_email(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
) -> Result<Option<String>, StoreError> {
    match &principal.preview_by {
        None => Ok(None),
        Some(staff_id) => Ok(Some(staff::get(conn, &principal.org_id, staff_id)?.email)),
    }
}

/// The customer's notification of a newly shared document, in the
/// transaction that shares it.
pub fn document_shared(
    conn: &mut DbConnection,
    doc: &Document,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let title = doc.title.clone();
    notifications::notify(conn, &doc.org_id, &doc.customer_id, now, |locale| {
        let fr = locale == guichet_domain::organization::Locale::Fr;
        NewNotification {
            kind: "document.shared".to_owned(),
            title: if fr {
                "Nouveau document"
            } else {
                "New document"
            }
            .to_owned(),
            body: if fr {
                format!("Un document a été partagé avec vous : {title}.")
            } else {
                format!("A document was shared with you: {title}.")
            },
            link: Some("/v1/me/documents".to_owned()),
            object_type: Some("document".to_owned()),
            object_id: Some(doc.id.clone()),
        }
    })?;
    Ok(())
}

fn email(
    conn: &mut DbConnection,
    org_id: &str,
    recipient: &str,
    template: &str,
    subject: String,
    body: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    outbox::enqueue(
        conn,
        &outbox::Message {
            id: ids::new_id("msg"),
            org_id: Some(org_id.to_owned()),
            channel: "email".to_owned(),
            recipient: recipient.to_owned(),
            subject,
            body,
            template: template.to_owned(),
            attempts: 0,
            created_at: now,
        },
    )
}

/// A customer wrote (a new conversation or an answer): the business's
/// contact e-mail (portal settings) is told, with a link and never the
/// attachments nor the text. Nobody is told when no contact e-mail is set.
/// In a preview session, the staff member previewing is told instead.
pub fn customer_wrote(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    conversation: &Conversation,
    _message: &Message,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let to = match previewer_email(conn, principal)? {
        // A preview's message is the staff member's own test.
        Some(staff) => staff,
        None => {
            let Some(settings) = portal::find(conn, &conversation.org_id)? else {
                return Ok(());
            };
            let Some(to) = settings.contact_email.filter(|e| !e.trim().is_empty()) else {
                return Ok(());
            };
            to
        }
    };
    let customer = customers::get(conn, &conversation.org_id, &conversation.customer_id)?;
    email(
        conn,
        &conversation.org_id,
        &to,
        "conversation_customer_message",
        format!("Nouveau message de {}", customer.name),
        format!(
            "{} vous a écrit (« {} »).\n\nLire et répondre : /v1/admin/conversations/{}\n\n{} wrote to you (\"{}\"). Read and answer: /v1/admin/conversations/{}\n",
            customer.name,
            conversation.subject,
            conversation.id,
            customer.name,
            conversation.subject,
            conversation.id
        ),
        now,
    )
}

/// Staff answered: the customer gets a portal notification and an e-mail
/// (in their language, with a link, not the text).
pub fn staff_answered(
    conn: &mut DbConnection,
    conversation: &Conversation,
    _message: &Message,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    answer_notification(conn, conversation, now)?;
    let link = format!("/v1/me/conversations/{}", conversation.id);
    let customer = customers::get(conn, &conversation.org_id, &conversation.customer_id)?;
    let fr = customer.locale == guichet_domain::organization::Locale::Fr;
    let (title, body) = if fr {
        (
            format!("Réponse à votre message « {} »", conversation.subject),
            format!(
                "Bonjour,\n\nL'entreprise a répondu à votre message « {} ». Lisez sa réponse dans votre espace client ({link}).\n",
                conversation.subject
            ),
        )
    } else {
        (
            format!("Answer to your message \"{}\"", conversation.subject),
            format!(
                "Hello,\n\nThe business answered your message \"{}\". Read the answer in your portal ({link}).\n",
                conversation.subject
            ),
        )
    };
    email(
        conn,
        &conversation.org_id,
        &customer.email,
        "conversation_staff_answer",
        title,
        body,
        now,
    )
}

/// The customer's portal notification that staff answered
/// (`message.answered`), in the customer's language.
pub fn answer_notification(
    conn: &mut DbConnection,
    conversation: &Conversation,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let subject = conversation.subject.clone();
    let link = format!("/v1/me/conversations/{}", conversation.id);
    notifications::notify(
        conn,
        &conversation.org_id,
        &conversation.customer_id,
        now,
        |locale| {
            let fr = locale == guichet_domain::organization::Locale::Fr;
            NewNotification {
                kind: "message.answered".to_owned(),
                title: if fr {
                    "Nouvelle réponse"
                } else {
                    "New answer"
                }
                .to_owned(),
                body: if fr {
                    format!("L'entreprise a répondu à votre message « {subject} ».")
                } else {
                    format!("The business answered your message \"{subject}\".")
                },
                link: Some(link.clone()),
                object_type: Some("conversation".to_owned()),
                object_id: Some(conversation.id.clone()),
            }
        },
    )?;
    Ok(())
}
