//! E-mail delivery: `.eml` files (development) or an SMTP server.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, SmtpTransport, Transport};

use super::{DeliveryError, files};
use crate::config::{EmailDeliveryMode, NotifySettings, SmtpTls};
use guichet_store::repo::outbox::{Attachment, Message};

/// How long the SMTP client waits on the server for each step.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where e-mails go, resolved once from the settings.
pub(super) struct EmailSender {
    from: Mailbox,
    target: Target,
}

enum Target {
    /// `<outbox dir>/email/`.
    File(PathBuf),
    /// One transport for the life of the dispatcher (it opens a connection
    /// per message: there is no pool).
    Smtp(Box<SmtpTransport>),
}

impl EmailSender {
    /// Checks the sender address and builds the SMTP transport when needed.
    pub(super) fn new(settings: &NotifySettings) -> Result<EmailSender, String> {
        let from: Mailbox = settings
            .email_from
            .parse()
            .map_err(|e| format!("invalid sender address {:?}: {e}", settings.email_from))?;
        let target = match settings.email {
            EmailDeliveryMode::File => Target::File(settings.outbox_dir.join("email")),
            EmailDeliveryMode::Smtp => Target::Smtp(Box::new(smtp_transport(settings)?)),
        };
        Ok(EmailSender { from, target })
    }

    /// Delivers `message` (written at `now` for file delivery).
    pub(super) fn send(
        &self,
        message: &Message,
        attachments: &[Attachment],
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let email = self.build(message, attachments, now)?;
        match &self.target {
            Target::File(dir) => {
                let name = files::file_name(now, &message.id, "eml");
                files::write_atomically(dir, &name, &email.formatted())
                    .map(|_| ())
                    .map_err(DeliveryError::retry)
            }
            Target::Smtp(transport) => transport
                .send(&email)
                .map(|_| ())
                .map_err(|e| DeliveryError::retry(format!("SMTP: {e}"))),
        }
    }

    /// The MIME message: `text/plain; charset=utf-8` (in a
    /// `multipart/mixed` with one base64 part per file when there are
    /// attachments), the subject encoded by lettre when it is not ASCII, a
    /// Message-ID derived from the outbox id so that a retried message
    /// keeps the same one.
    fn build(
        &self,
        message: &Message,
        attachments: &[Attachment],
        now: DateTime<Utc>,
    ) -> Result<lettre::Message, DeliveryError> {
        let to: Address = message
            .recipient
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("invalid recipient address: {e}")))?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(message.subject.as_str())
            .date(SystemTime::from(now))
            .message_id(Some(format!(
                "<{}@{}>",
                message.id,
                self.from.email.domain()
            )));
        let built = if attachments.is_empty() {
            builder.singlepart(SinglePart::plain(message.body.clone()))
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(message.body.clone()));
            for file in attachments {
                let content_type = ContentType::parse(&file.content_type).map_err(|e| {
                    DeliveryError::permanent(format!("invalid attachment content type: {e}"))
                })?;
                parts = parts.singlepart(
                    MimeAttachment::new(file.filename.clone())
                        .body(file.content.clone(), content_type),
                );
            }
            builder.multipart(parts)
        };
        built.map_err(|e| DeliveryError::permanent(format!("cannot build the e-mail: {e}")))
    }
}

/// The SMTP transport `settings` describe: plain, STARTTLS (required) or
/// TLS from the first byte, on the given port or the mode's usual one,
/// authenticated when both a user name and a password are set.
fn smtp_transport(settings: &NotifySettings) -> Result<SmtpTransport, String> {
    let host = settings
        .smtp_host
        .as_deref()
        .filter(|h| !h.trim().is_empty())
        .ok_or("e-mail delivery by SMTP needs an SMTP host")?;
    let (builder, default_port) = match settings.smtp_tls {
        SmtpTls::None => (SmtpTransport::builder_dangerous(host), 25),
        SmtpTls::Starttls => (
            SmtpTransport::starttls_relay(host)
                .map_err(|e| format!("SMTP STARTTLS setup for {host}: {e}"))?,
            587,
        ),
        SmtpTls::Tls => (
            SmtpTransport::relay(host).map_err(|e| format!("SMTP TLS setup for {host}: {e}"))?,
            465,
        ),
    };
    let mut builder = builder
        .port(settings.smtp_port.unwrap_or(default_port))
        .timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}
