//! Booking reminders: a confirmed booking's customer is reminded
//! `reminder_hours_before` its start (the organization's booking
//! settings), by e-mail and, when they have a mobile, by SMS, with a
//! `booking.reminder_sent` event and a portal notification. `guichet
//! serve` runs it periodically; `guichet jobs booking-reminders` once.
//!
//! Every node of a cluster may run it at once: the due bookings are taken
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's writers are one at a
//! time) and marked sent in the transaction that queues the messages, so
//! each reminder goes once. The organization's test customer (portal
//! previews) gets no reminder: a preview sends no SMS and e-mails only the
//! staff member previewing, whom a job does not know; its booking is
//! marked sent with nothing queued.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use guichet_domain::Clock;
use guichet_domain::contact_channels::OrgTimeZone;
use guichet_domain::events::EventType;
use guichet_domain::ids;
use guichet_store::repo::bookings::{self, BookingRow};
use guichet_store::repo::events::{self, Event};
use guichet_store::repo::{customers, organizations};
use guichet_store::{DbConnection, Store, StoreError, snapshots};
use serde::Serialize;

use crate::notify::templates::BookingNotice;
use crate::notify::{self, Channel, Template};
use crate::runner::{Ending, Periodic, Stop};

/// Reminders sent per transaction.
pub const BATCH: i64 = 100;

/// Seconds between two runs inside `guichet serve`, unless configured.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReminderReport {
    /// Bookings reminded (one `booking.reminder_sent` event each).
    pub reminded: u64,
    /// E-mails and SMS queued.
    pub messages: u64,
    /// Whether a stop was asked for before the end.
    pub interrupted: bool,
}

impl ReminderReport {
    pub fn ending(&self) -> Ending {
        if self.interrupted {
            Ending::Stopped
        } else {
            Ending::Done
        }
    }
}

/// One run of the reminders due, as of the clock.
pub struct BookingReminders {
    store: Store,
    clock: Arc<dyn Clock>,
    batch: i64,
}

impl BookingReminders {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        BookingReminders {
            store,
            clock,
            batch: BATCH,
        }
    }

    /// Reminders per transaction (at least 1).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Sends every reminder due by now, batch by batch.
    pub fn run(&self) -> Result<ReminderReport, StoreError> {
        self.run_until(&Stop::new())
    }

    /// As [`BookingReminders::run`], stopping between batches when `stop`
    /// is requested.
    pub fn run_until(&self, stop: &Stop) -> Result<ReminderReport, StoreError> {
        let now = self.clock.now();
        let mut conn = self.store.conn()?;
        let mut report = ReminderReport::default();
        loop {
            let (taken, messages) = guichet_store::transaction(&mut conn, |conn| {
                let due = bookings::claim_due_reminders(conn, now, self.batch)?;
                let mut messages = 0;
                let mut reminded = 0;
                for booking in &due {
                    if bookings::mark_reminder_sent(conn, &booking.id, now)? {
                        messages += remind(conn, booking, now)?;
                        reminded += 1;
                    }
                }
                Ok::<_, StoreError>((reminded, messages))
            })?;
            report.reminded += taken;
            report.messages += messages;
            if (taken as i64) < self.batch {
                return Ok(report);
            }
            if stop.requested() {
                report.interrupted = true;
                return Ok(report);
            }
        }
    }

    /// Runs every `interval` on a thread (the first run at once) until
    /// [`Periodic::stop`].
    pub fn spawn(self, interval: Duration) -> Periodic {
        Periodic::spawn("booking-reminders", interval, move |stop| {
            match self.run_until(stop) {
                Ok(report) if report.reminded == 0 => {}
                Ok(report) => tracing::info!(
                    reminded = report.reminded,
                    messages = report.messages,
                    "booking reminders sent"
                ),
                Err(error) => {
                    tracing::warn!(%error, "booking reminders failed; trying again later")
                }
            }
        })
    }
}

/// Queues the reminder of `booking` and records its event; the number of
/// messages queued.
fn remind(
    conn: &mut DbConnection,
    booking: &BookingRow,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let org = organizations::get(conn, &booking.org_id)?;
    let customer = customers::get(conn, &booking.org_id, &booking.customer_id)?;
    let service = bookings::get_service(conn, &booking.org_id, &booking.service_id)?;
    let provider = bookings::get_provider(conn, &booking.org_id, &booking.provider_id)?;
    let zone = bookings::get_settings(conn, &booking.org_id)?
        .and_then(|s| OrgTimeZone::parse(&s.time_zone).ok())
        .unwrap_or(OrgTimeZone::PARIS);
    let local = booking.start_at.with_timezone(&zone.tz());
    let template = Template::BookingNotice {
        org_name: org.name.clone(),
        what: BookingNotice::Reminder,
        service: service
            .names
            .get(customer.locale.as_str())
            .or_else(|| service.names.values().next())
            .cloned()
            .unwrap_or_default(),
        when: format!("{} ({})", local.format("%Y-%m-%d %H:%M"), zone.name()),
        provider: provider.name,
        reason: None,
    };
    let mut messages = 0;
    if !booking.test {
        let org_id = Some(booking.org_id.as_str());
        notify::queue(
            conn,
            org_id,
            Channel::Email,
            &customer.email,
            &template,
            customer.locale,
            now,
        )?;
        messages += 1;
        if let Some(mobile) = &customer.mobile {
            notify::queue(
                conn,
                org_id,
                Channel::Sms,
                mobile,
                &template,
                customer.locale,
                now,
            )?;
            messages += 1;
        }
    }
    let mut sent = booking.clone();
    sent.reminder_sent_at = Some(now);
    events::record(
        conn,
        &Event {
            id: ids::new_id("evt"),
            org_id: booking.org_id.clone(),
            event_type: EventType::BookingReminderSent.as_str().to_owned(),
            object_type: "booking".to_owned(),
            object_id: booking.id.clone(),
            customer_id: Some(booking.customer_id.clone()),
            actor: "system".to_owned(),
            data: snapshots::booking(&sent).to_string(),
            created_at: now,
        },
    )?;
    Ok(messages)
}
