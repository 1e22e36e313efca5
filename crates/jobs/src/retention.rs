//! The events' retention: events older than the retention are deleted with
//! their webhook deliveries and attempts, by a periodic thread of
//! `guichet serve`. Deleting rows created before a cutoff is idempotent, so
//! every node of a cluster may run it at once.

use std::sync::Arc;
use std::time::Duration;

use guichet_domain::Clock;
use guichet_store::repo::events;
use guichet_store::{Store, StoreError};

use crate::runner::Periodic;

/// Events are kept this many days unless configured.
pub const DEFAULT_DAYS: u32 = 30;

/// Events deleted per transaction.
pub const BATCH: i64 = 1_000;

/// One purge of the events older than `days` days, as of the clock.
pub struct EventsPurge {
    store: Store,
    clock: Arc<dyn Clock>,
    days: u32,
}

impl EventsPurge {
    pub fn new(store: Store, clock: Arc<dyn Clock>, days: u32) -> Self {
        EventsPurge { store, clock, days }
    }

    /// Deletes every event created more than `days` days before now (with
    /// its deliveries and attempts), batch by batch; returns how many.
    pub fn run(&self) -> Result<u64, StoreError> {
        let cutoff = self.clock.now() - chrono::Duration::days(i64::from(self.days));
        let mut conn = self.store.conn()?;
        let mut total = 0u64;
        loop {
            let deleted = events::purge(&mut conn, cutoff, BATCH)?;
            total += deleted as u64;
            if (deleted as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Runs every `interval` on a thread (the first run at once) until
    /// [`Periodic::stop`].
    pub fn spawn(self, interval: Duration) -> Periodic {
        Periodic::spawn("events-purge", interval, move |_stop| match self.run() {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days = self.days, "old events deleted"),
            Err(error) => tracing::warn!(%error, "events purge failed; trying again later"),
        })
    }
}
