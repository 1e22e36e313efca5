//! The consents' expiry sweep: a consent whose activation link passed its
//! 14 days while the cardholder's flow was under way becomes `expired`,
//! with its timeline step and its `consent.expired` event, whether or not
//! anybody reads it. `guichet serve` runs it periodically; `guichet jobs
//! consent-expiry` once.
//!
//! Every node of a cluster may sweep at once: each consent is expired by
//! one conditional update, so its event is recorded once, whichever of the
//! sweeps or of the requests that read it (they expire it too) comes first.

use std::sync::Arc;
use std::time::Duration;

use guichet_domain::Clock;
use guichet_store::repo::consents;
use guichet_store::{Store, StoreError};
use serde::Serialize;

use crate::runner::{Ending, Periodic, Stop};

/// Consents expired per transaction.
pub const BATCH: i64 = 200;

/// Seconds between two sweeps inside `guichet serve`, unless configured.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    /// Consents this sweep expired (one `consent.expired` event each).
    pub expired: u64,
    /// Whether a stop was asked for before the end.
    pub interrupted: bool,
}

impl ExpiryReport {
    pub fn ending(&self) -> Ending {
        if self.interrupted {
            Ending::Stopped
        } else {
            Ending::Done
        }
    }
}

/// One sweep of the consents whose link died, as of the clock.
pub struct ConsentExpiry {
    store: Store,
    clock: Arc<dyn Clock>,
    batch: i64,
}

impl ConsentExpiry {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        ConsentExpiry {
            store,
            clock,
            batch: BATCH,
        }
    }

    /// Consents expired per transaction (at least 1).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Expires every consent whose link died by now, batch by batch.
    pub fn run(&self) -> Result<ExpiryReport, StoreError> {
        self.run_until(&Stop::new())
    }

    /// As [`ConsentExpiry::run`], stopping between batches when `stop` is
    /// requested.
    pub fn run_until(&self, stop: &Stop) -> Result<ExpiryReport, StoreError> {
        let now = self.clock.now();
        let mut conn = self.store.conn()?;
        let mut report = ExpiryReport::default();
        loop {
            let batch = consents::expire_due(&mut conn, now, self.batch)?;
            report.expired += batch.expired as u64;
            // A full batch of which nothing could be expired would come
            // back whole: leave it to the next sweep.
            if (batch.taken as i64) < self.batch || batch.expired == 0 {
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
        Periodic::spawn("consent-expiry", interval, move |stop| {
            match self.run_until(stop) {
                Ok(report) if report.expired == 0 => {}
                Ok(report) => tracing::info!(expired = report.expired, "consents expired"),
                Err(error) => tracing::warn!(%error, "consent expiry failed; trying again later"),
            }
        })
    }
}
