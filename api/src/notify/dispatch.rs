//! The outbox dispatcher: a background thread that claims due messages,
//! delivers them (files, SMTP, HTTP SMS provider) and records the outcome,
//! retrying failures with a growing delay.
//!
//! Several nodes may run a dispatcher on one database: a claim is a lease
//! (see [`outbox::claim_due`]), so a message is delivered by one of them.
//! Delivery is at least once: if recording a delivery fails, the message
//! goes out again when its lease ends.
//!
//! Bodies and subjects carry codes and links: they are never logged. Logs
//! name the message id, channel, template and a masked recipient.

mod email;
mod files;
mod sms;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use guichet_domain::{Clock, ids};
use guichet_jobs::notify::{OutboxKey, seal};
use guichet_store::Store;
use guichet_store::repo::outbox::{self, Message};

use self::email::EmailSender;
use self::sms::SmsSender;
use crate::config::NotifySettings;

/// Messages claimed per pass.
pub const BATCH_SIZE: i64 = 50;

/// How long a claim keeps other dispatchers off the claimed messages.
pub const LEASE: Duration = Duration::from_secs(60);

/// Once a pass has run this long, the messages it has not tried yet are
/// handed back instead of risking delivery after the lease has ended (when
/// another node may claim them too).
const LEASE_BUDGET: Duration = Duration::from_secs(45);

/// Delay before the next try after a failed attempt number 1, 2, ...; the
/// attempt after the last one is not retried.
pub const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(12 * 60 * 60),
];

/// The longest an error kept in the outbox row may be.
const MAX_ERROR_LEN: usize = 500;

/// When a message that failed its `attempt`-th delivery (counted from 1) is
/// tried again, or `None` when it is given up (after the 6th attempt).
pub fn retry_delay(attempt: i32) -> Option<Duration> {
    let index = usize::try_from(attempt.max(1) - 1).ok()?;
    RETRY_DELAYS.get(index).copied()
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchReport {
    /// Messages delivered.
    pub sent: usize,
    /// Messages that failed and will be tried again later.
    pub retried: usize,
    /// Messages that failed for the last time (or can never be delivered).
    pub given_up: usize,
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug)]
struct DeliveryError {
    message: String,
    /// The message itself is unusable (a malformed address): no retry.
    permanent: bool,
}

impl DeliveryError {
    fn retry(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Delivers the outbox: [`Dispatcher::run_once`] for one pass,
/// [`Dispatcher::spawn`] for the background thread.
pub struct Dispatcher {
    store: Store,
    clock: Arc<dyn Clock>,
    email: EmailSender,
    sms: SmsSender,
    interval: Duration,
    /// Opens the bodies stored sealed (messages carrying a secret).
    outbox_key: OutboxKey,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("store", &self.store)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Resolves the delivery settings: the sender address is checked and the
    /// SMTP transport (when e-mail goes by SMTP) is built once, here. Fails
    /// on settings that cannot work (no SMTP host, no SMS provider URL, a
    /// malformed sender address).
    pub fn new(
        settings: &NotifySettings,
        store: Store,
        clock: Arc<dyn Clock>,
        outbox_key: OutboxKey,
    ) -> Result<Dispatcher, String> {
        Ok(Dispatcher {
            store,
            clock,
            email: EmailSender::new(settings)?,
            sms: SmsSender::new(settings)?,
            interval: settings.interval,
            outbox_key,
        })
    }

    /// One pass: claims up to [`BATCH_SIZE`] due messages for [`LEASE`],
    /// delivers each and records it as sent, to be retried (see
    /// [`retry_delay`]) or given up. Fails only when the messages cannot be
    /// claimed (the database is down); a failed record of one outcome is
    /// logged and the pass goes on.
    pub fn run_once(&self) -> Result<DispatchReport, String> {
        self.pass(&AtomicBool::new(false))
    }

    /// Starts the background thread: a pass, then a pause of the configured
    /// interval, until [`DispatcherHandle::stop`]. Dropping the handle
    /// without stopping also ends the thread (after its current pass), but
    /// without waiting for it.
    pub fn spawn(self) -> DispatcherHandle {
        let (wake, sleep) = mpsc::channel::<()>();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = std::thread::spawn(move || self.run_loop(&sleep, &flag));
        DispatcherHandle {
            wake,
            stopping,
            thread,
        }
    }

    fn run_loop(&self, sleep: &mpsc::Receiver<()>, stopping: &AtomicBool) {
        tracing::info!(
            interval_ms = self.interval.as_millis(),
            "outbox dispatcher started"
        );
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.pass(stopping))) {
                Ok(Ok(report)) if report != DispatchReport::default() => tracing::debug!(
                    sent = report.sent,
                    retried = report.retried,
                    given_up = report.given_up,
                    "outbox pass"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "outbox pass failed; trying again at the next one");
                }
                Err(_) => tracing::error!("outbox pass panicked; trying again at the next one"),
            }
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            match sleep.recv_timeout(self.interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        tracing::info!("outbox dispatcher stopped");
    }

    fn pass(&self, stopping: &AtomicBool) -> Result<DispatchReport, String> {
        let claim_token = ids::new_id("clm");
        let lease = chrono::Duration::from_std(LEASE).map_err(|e| e.to_string())?;
        let messages = {
            let mut conn = self
                .store
                .conn()
                .map_err(|e| format!("outbox: no database connection: {e}"))?;
            outbox::claim_due(&mut conn, self.clock.now(), lease, BATCH_SIZE, &claim_token)
                .map_err(|e| format!("outbox: cannot claim messages: {e}"))?
        };
        let started = Instant::now();
        let mut report = DispatchReport::default();
        for (done, message) in messages.iter().enumerate() {
            let out_of_time = started.elapsed() >= LEASE_BUDGET;
            if out_of_time || stopping.load(Ordering::SeqCst) {
                self.hand_back(&messages[done..], out_of_time);
                break;
            }
            let outcome = self.deliver(message);
            match self.record(message, outcome) {
                Outcome::Sent => report.sent += 1,
                Outcome::Retried => report.retried += 1,
                Outcome::GivenUp => report.given_up += 1,
            }
        }
        Ok(report)
    }

    fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let now = self.clock.now();
        // A sealed body is opened here, for this delivery only; the stored
        // body is erased once it is sent.
        let opened;
        let message = if seal::is_sealed(&message.body) {
            let body = self.outbox_key.open(&message.body).map_err(|e| {
                DeliveryError::permanent(format!("cannot open the sealed message: {e}"))
            })?;
            opened = Message {
                body,
                ..message.clone()
            };
            &opened
        } else {
            message
        };
        match message.channel.as_str() {
            "email" => {
                let attachments = self
                    .store
                    .conn()
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| {
                        let mut files = outbox::attachments(&mut conn, &message.id)
                            .map_err(|e| e.to_string())?;
                        // Files made at sending (an invoice receipt's PDF).
                        for file in &mut files {
                            if let Some(render) = &file.render {
                                file.content =
                                    guichet_jobs::invoices::render_attachment(&mut conn, render)
                                        .map_err(|e| format!("{}: {e}", file.filename))?;
                            }
                        }
                        Ok(files)
                    })
                    .map_err(|e| DeliveryError::retry(format!("cannot read attachments: {e}")))?;
                self.email.send(message, &attachments, now)
            }
            "sms" => self.sms.send(message, now),
            other => Err(DeliveryError::permanent(format!(
                "unknown channel {other:?}"
            ))),
        }
    }

    /// Writes the outcome of one delivery to the outbox and logs it.
    fn record(&self, message: &Message, outcome: Result<(), DeliveryError>) -> Outcome {
        let now = self.clock.now();
        let to = mask_recipient(&message.channel, &message.recipient);
        match outcome {
            Ok(()) => {
                tracing::info!(
                    id = %message.id,
                    channel = %message.channel,
                    template = %message.template,
                    to = %to,
                    attempt = message.attempts,
                    "message delivered"
                );
                let saved = self
                    .store
                    .conn()
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| {
                        // A consent's confirmation sent: its e-mail address and
                        // mobile number are erased in the same transaction.
                        guichet_store::transaction(&mut conn, |conn| {
                            outbox::mark_sent(conn, &message.id, now)?;
                            guichet_store::repo::consents::erase_contacts_after(
                                conn,
                                &message.id,
                                now,
                            )
                        })
                        .map_err(|e| e.to_string())
                    });
                if let Err(error) = saved {
                    tracing::warn!(
                        id = %message.id,
                        %error,
                        "delivered but not recorded: it will be sent again when its lease ends"
                    );
                }
                Outcome::Sent
            }
            Err(failure) => {
                // The recipient may be echoed by a server: keep it masked.
                let error = if message.recipient.is_empty() {
                    truncate(&failure.message)
                } else {
                    truncate(&failure.message.replace(&message.recipient, &to))
                };
                let delay = if failure.permanent {
                    None
                } else {
                    retry_delay(message.attempts)
                };
                let retry_at = delay
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| now + d);
                match retry_at {
                    Some(at) => tracing::warn!(
                        id = %message.id,
                        channel = %message.channel,
                        template = %message.template,
                        to = %to,
                        attempt = message.attempts,
                        retry_at = %at.to_rfc3339(),
                        %error,
                        "delivery failed; will retry"
                    ),
                    None => tracing::error!(
                        id = %message.id,
                        channel = %message.channel,
                        template = %message.template,
                        to = %to,
                        attempt = message.attempts,
                        %error,
                        "delivery failed; giving up"
                    ),
                }
                self.save_failure(&message.id, &error, retry_at, now);
                if retry_at.is_some() {
                    Outcome::Retried
                } else {
                    Outcome::GivenUp
                }
            }
        }
    }

    /// Makes messages this pass claimed but did not try due again at once
    /// (their claim counted an attempt all the same).
    fn hand_back(&self, messages: &[Message], out_of_time: bool) {
        let reason = if out_of_time {
            "not tried: the pass ran out of lease time"
        } else {
            "not tried: the dispatcher was stopping"
        };
        tracing::info!(
            count = messages.len(),
            reason,
            "outbox messages handed back"
        );
        let now = self.clock.now();
        for message in messages {
            self.save_failure(&message.id, reason, Some(now), now);
        }
    }

    fn save_failure(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        let saved = self
            .store
            .conn()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                outbox::mark_failed(&mut conn, id, error, retry_at, now).map_err(|e| e.to_string())
            });
        if let Err(error) = saved {
            tracing::warn!(
                %id,
                %error,
                "failure not recorded: the message is tried again when its lease ends"
            );
        }
    }
}

enum Outcome {
    Sent,
    Retried,
    GivenUp,
}

/// The running dispatcher thread.
#[derive(Debug)]
pub struct DispatcherHandle {
    wake: mpsc::Sender<()>,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops the thread and waits for it: a pause ends at once, a pass ends
    /// after the delivery in progress (the messages it has not tried yet
    /// are handed back).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // The thread may already be gone (it only ends on a stop or a
        // dropped handle); then there is nobody to wake.
        let _ = self.wake.send(());
        if self.thread.join().is_err() {
            tracing::error!("the outbox dispatcher thread panicked");
        }
    }
}

/// The recipient as logs show it: `a***@example.com` for an e-mail,
/// `***42` (the last two digits) for a phone number.
pub fn mask_recipient(channel: &str, recipient: &str) -> String {
    if channel == "email" {
        match recipient.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    } else {
        let digits: Vec<char> = recipient.chars().filter(char::is_ascii_digit).collect();
        let last: String = digits[digits.len().saturating_sub(2)..].iter().collect();
        format!("***{last}")
    }
}

/// At most [`MAX_ERROR_LEN`] bytes, cut on a character boundary.
fn truncate(error: &str) -> String {
    if error.len() <= MAX_ERROR_LEN {
        return error.to_owned();
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &error[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_give_up_after_the_sixth_attempt() {
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(retry_delay(1), minutes(1));
        assert_eq!(retry_delay(2), minutes(5));
        assert_eq!(retry_delay(3), minutes(30));
        assert_eq!(retry_delay(4), minutes(120));
        assert_eq!(retry_delay(5), minutes(720));
        assert_eq!(retry_delay(6), None);
        assert_eq!(retry_delay(7), None);
        assert_eq!(retry_delay(0), minutes(1));
    }

    #[test]
    fn recipients_are_masked() {
        assert_eq!(
            mask_recipient("email", "alice@example.com"),
            "a***@example.com"
        );
        assert_eq!(
            mask_recipient("email", "émile@exemple.fr"),
            "é***@exemple.fr"
        );
        assert_eq!(mask_recipient("email", "nobody"), "***");
        assert_eq!(mask_recipient("sms", "+33612345678"), "***78");
        assert_eq!(mask_recipient("sms", "7"), "***7");
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_ERROR_LEN + 3);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
