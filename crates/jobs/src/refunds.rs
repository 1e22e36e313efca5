//! The refunds run: pays back, at the gateway, the refunds cancellations
//! record (`refunds`, status `pending`), exactly once with any number of
//! runs on one database.
//!
//! For each refund:
//!
//! 1. **Lease.** Refunds are claimed with a lease ([`refunds::claim`]: an
//!    atomic `UPDATE ... WHERE claimed_until IS NULL OR claimed_until <
//!    now`, `FOR UPDATE SKIP LOCKED` on PostgreSQL), so several runs (several
//!    nodes) never hold the same refund.
//! 2. **Allocation**, once, in one transaction: the refund is split over the
//!    order's succeeded charges, oldest first, each giving what is left of it
//!    after the parts of earlier refunds ([`allocate`]), into `refund_parts`,
//!    each under the key [`part_key`]`(refund, charge)`. A later run reads
//!    the same parts back.
//! 3. **Parts.** Each pending part is sent under its key; a part that an
//!    earlier run may have sent (its outcome unknown) is first looked up
//!    ([`PaymentGateway::find_refund`]) and sent only when the gateway never
//!    received it. A `Timeout` or an outage leaves it pending for the next
//!    run.
//! 4. **Settlement.** The refund becomes `paid` when every part succeeded,
//!    `failed` (with the refused part's `failure_code`) when the gateway
//!    refused a part (the parts after it are `cancelled`, never sent), with
//!    `settled_at`. The status and `settled_at` are what the events of
//!    `refund.paid` / `refund.failed` will be made from.
//!
//! Counters: every refund claimed ends in exactly one of `paid`, `failed`,
//! `transient_failures`, `errors` or `interrupted` ([`RefundReport::balanced`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use guichet_domain::events::{Actor, EventType};
use guichet_domain::gateway::{GatewayError, PaymentGateway, RefundReceipt};
use guichet_domain::{Clock, Money, ids};
use guichet_store::repo::charges::{self, Charge};
use guichet_store::repo::events;
use guichet_store::repo::refunds::{self, Refund, RefundPart};
use guichet_store::snapshots;
use guichet_store::{Store, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::runner::{Ending, Lease, Periodic};

/// How long a claimed refund is reserved for the run that claimed it.
pub const LEASE: Duration = Duration::from_secs(5 * 60);

/// Refunds claimed at once.
pub const BATCH: i64 = 100;

/// [`RefundPart::failure_code`] when the succeeded charges of the order do
/// not cover the refund.
pub const NOT_COVERED: &str = "refund_exceeds_charges";

/// What a refunds run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefundReport {
    /// Pending refunds this run claimed.
    pub claimed: u64,
    /// Refunds paid (every part succeeded).
    pub paid: u64,
    /// Refunds failed (the gateway refused a part, or nothing to refund).
    pub failed: u64,
    /// Refunds left pending with a part whose outcome is not known yet
    /// (gateway unavailable or timed out): looked up at the next run.
    pub transient_failures: u64,
    /// Refunds that could not be handled (logged); tried again next run.
    pub errors: u64,
    /// Refunds claimed but left untouched because the run was asked to
    /// stop (released).
    pub interrupted: u64,
    /// Parts sent to the gateway.
    pub parts_sent: u64,
    /// Parts of an earlier run found at the gateway by their key.
    pub parts_found: u64,
    /// After the run: refunds still pending.
    pub left_pending: u64,
    /// Of those, the ones another (possibly dead) run holds.
    pub held_elsewhere: u64,
    /// When the last of those leases ends.
    pub held_until: Option<DateTime<Utc>>,
    /// Whether the run was asked to stop before the end.
    pub stopped: bool,
}

impl RefundReport {
    /// `claimed = paid + failed + transient_failures + errors + interrupted`.
    pub fn balanced(&self) -> bool {
        self.claimed
            == self.paid + self.failed + self.transient_failures + self.errors + self.interrupted
    }

    /// Stopped, unfinished (refunds left pending) or done.
    pub fn ending(&self) -> Ending {
        if self.stopped {
            Ending::Stopped
        } else if self.left_pending > 0 || self.errors > 0 || self.transient_failures > 0 {
            Ending::Unfinished
        } else {
            Ending::Done
        }
    }
}

/// The gateway key of the part of refund `refund_id` taken from charge
/// `charge_id` (`charges.id`): the same for every run.
pub fn part_key(refund_id: &str, charge_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"guichet-refund-part-v1\0");
    hasher.update((refund_id.len() as u64).to_be_bytes());
    hasher.update(refund_id.as_bytes());
    hasher.update(charge_id.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits `amount` over `charges` (oldest first), each giving at most what
/// is left of it (`left(charge)`): `(charge index, amount)` pairs, or
/// `None` when they do not cover it.
pub fn allocate(amount: i64, left: &[i64]) -> Option<Vec<(usize, i64)>> {
    let mut owed = amount;
    let mut parts = Vec::new();
    for (index, available) in left.iter().enumerate() {
        if owed == 0 {
            break;
        }
        let take = owed.min(*available);
        if take > 0 {
            parts.push((index, take));
            owed -= take;
        }
    }
    (owed == 0).then_some(parts)
}

/// One refunds run's dependencies.
#[derive(Clone)]
pub struct RefundRun {
    pub store: Store,
    pub gateway: Arc<dyn PaymentGateway>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RefundRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundRun")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// How one refund went.
enum Settled {
    Paid,
    Failed,
    Unknown,
}

impl RefundRun {
    pub fn new(store: Store, gateway: Arc<dyn PaymentGateway>, clock: Arc<dyn Clock>) -> Self {
        RefundRun {
            store,
            gateway,
            clock,
        }
    }

    /// Pays every pending refund. Fails (aborts) when the database is
    /// unavailable.
    pub fn run(&self) -> Result<RefundReport, String> {
        self.run_until(&AtomicBool::new(false))
    }

    /// [`RefundRun::run`], ending early once `stop` is set (after the
    /// refund in hand; what is held is released).
    pub fn run_until(&self, stop: &AtomicBool) -> Result<RefundReport, String> {
        let mut report = RefundReport::default();
        let unavailable = |e: StoreError| format!("refunds run aborted: {e}");
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let lease = Lease::new("rfr", LEASE);
            let now = self.clock.now();
            let claimed = {
                let mut conn = self.store.conn().map_err(unavailable)?;
                refunds::claim(&mut conn, now, lease.until(now), BATCH, &lease.token)
                    .map_err(unavailable)?
            };
            if claimed.is_empty() {
                break;
            }
            report.claimed += claimed.len() as u64;
            let mut progressed = false;
            for refund in &claimed {
                if stop.load(Ordering::SeqCst) {
                    report.interrupted += 1;
                    self.release(refund, &lease);
                    continue;
                }
                match self.pay(refund, &lease, &mut report) {
                    Ok(Settled::Paid) => {
                        progressed = true;
                        report.paid += 1;
                    }
                    Ok(Settled::Failed) => {
                        progressed = true;
                        report.failed += 1;
                    }
                    Ok(Settled::Unknown) => {
                        report.transient_failures += 1;
                        self.release(refund, &lease);
                    }
                    Err(StoreError::Unavailable(e)) => {
                        report.errors += 1;
                        return Err(format!(
                            "refunds run aborted: the database is unavailable ({e}); \
                             {} refunds paid before that",
                            report.paid
                        ));
                    }
                    Err(error) => {
                        report.errors += 1;
                        tracing::error!(refund = %refund.id, %error, "cannot pay a refund; tried again at the next run");
                        self.release(refund, &lease);
                    }
                }
            }
            if !progressed {
                // Nothing could be settled (gateway outage): claiming more
                // would only fail the same way.
                break;
            }
        }
        report.stopped = stop.load(Ordering::SeqCst);
        let mut conn = self.store.conn().map_err(unavailable)?;
        let (left, held, until) =
            refunds::pending_left(&mut conn, self.clock.now()).map_err(unavailable)?;
        report.left_pending = u64::try_from(left).unwrap_or(0);
        report.held_elsewhere = u64::try_from(held).unwrap_or(0);
        report.held_until = until;
        Ok(report)
    }

    fn release(&self, refund: &Refund, lease: &Lease) {
        let released = self
            .store
            .conn()
            .and_then(|mut conn| refunds::release(&mut conn, &refund.id, &lease.token));
        if let Err(error) = released {
            tracing::warn!(refund = %refund.id, %error, "cannot release a refund; its lease ends on its own");
        }
    }

    /// The refund's parts: those recorded, or allocated now in one
    /// transaction. `Err(code)` inside when the charges do not cover it.
    fn parts(
        &self,
        refund: &Refund,
    ) -> Result<Result<(Vec<RefundPart>, bool), &'static str>, StoreError> {
        let mut conn = self.store.conn()?;
        let now = self.clock.now();
        guichet_store::transaction(&mut conn, |conn| {
            guichet_store::repo::schedules::lock(conn, &refund.org_id, &refund.order_id)?;
            let recorded = refunds::parts(conn, &refund.id)?;
            if !recorded.is_empty() {
                return Ok(Ok((recorded, false)));
            }
            let charges: Vec<Charge> = charges::succeeded_for_order(conn, &refund.order_id)?
                .into_iter()
                .filter(|c| {
                    c.gateway_charge_id.is_some() && c.amount.currency == refund.amount.currency
                })
                .collect();
            let ids: Vec<&str> = charges.iter().map(|c| c.id.as_str()).collect();
            let taken = refunds::taken_from(conn, &ids, &refund.id)?;
            let left: Vec<i64> = charges
                .iter()
                .map(|c| (c.amount.amount - taken.get(&c.id).copied().unwrap_or(0)).max(0))
                .collect();
            let Some(split) = allocate(refund.amount.amount, &left) else {
                return Ok(Err(NOT_COVERED));
            };
            let base = ids::new_id("rfp");
            let parts: Vec<RefundPart> = split
                .into_iter()
                .enumerate()
                .map(|(n, (index, amount))| {
                    let charge = &charges[index];
                    RefundPart {
                        // Sorts in allocation order.
                        id: format!("{base}_{n:02}"),
                        refund_id: refund.id.clone(),
                        charge_id: charge.id.clone(),
                        idempotency_key: part_key(&refund.id, &charge.id),
                        amount: Money::new(amount, refund.amount.currency),
                        status: "pending".to_owned(),
                        gateway_refund_id: None,
                        failure_code: None,
                        created_at: now,
                    }
                })
                .collect();
            refunds::insert_parts(conn, &parts)?;
            Ok(Ok((parts, true)))
        })
    }

    /// Pays one claimed refund, part by part, and settles it.
    fn pay(
        &self,
        refund: &Refund,
        lease: &Lease,
        report: &mut RefundReport,
    ) -> Result<Settled, StoreError> {
        let (parts, fresh) = match self.parts(refund)? {
            Ok(parts) => parts,
            Err(code) => return self.settle(refund, lease, false, Some(code)),
        };
        let mut refused: Option<String> = None;
        let mut unknown = false;
        for part in &parts {
            match part.status.as_str() {
                "succeeded" => continue,
                "failed" => {
                    refused.get_or_insert_with(|| {
                        part.failure_code
                            .clone()
                            .unwrap_or_else(|| "refund_failed".into())
                    });
                    continue;
                }
                "cancelled" => continue,
                _ => {}
            }
            if let Some(code) = &refused {
                // An earlier part was refused: this one is never sent.
                let mut conn = self.store.conn()?;
                refunds::complete_part(
                    &mut conn,
                    &part.id,
                    "cancelled",
                    None,
                    Some(code),
                    self.clock.now(),
                )?;
                continue;
            }
            let outcome = self.send(refund, part, fresh, report)?;
            let mut conn = self.store.conn()?;
            let now = self.clock.now();
            match outcome {
                Ok(receipt) => refunds::complete_part(
                    &mut conn,
                    &part.id,
                    "succeeded",
                    Some(&receipt.refund_id),
                    None,
                    now,
                )?,
                Err(e) if e.is_transient() => {
                    tracing::warn!(refund = %refund.id, part = %part.id, error = %e,
                        "the outcome of a refund part is unknown; it is looked up at the next run");
                    unknown = true;
                    break;
                }
                Err(GatewayError::IdempotencyKeyReused) => {
                    return Err(StoreError::Database(format!(
                        "the gateway refused part {}'s key with another charge or amount; \
                         check it at the gateway",
                        part.id
                    )));
                }
                Err(e) => {
                    refunds::complete_part(
                        &mut conn,
                        &part.id,
                        "failed",
                        None,
                        Some(e.code()),
                        now,
                    )?;
                    refused = Some(e.code().to_owned());
                }
            }
        }
        if unknown {
            return Ok(Settled::Unknown);
        }
        match refused {
            None => self.settle(refund, lease, true, None),
            Some(code) => self.settle(refund, lease, false, Some(&code)),
        }
    }

    /// Sends a part, or, when an earlier run may have sent it, looks it up
    /// first and sends it only if the gateway never received it.
    fn send(
        &self,
        refund: &Refund,
        part: &RefundPart,
        fresh: bool,
        report: &mut RefundReport,
    ) -> Result<Result<RefundReceipt, GatewayError>, StoreError> {
        if !fresh {
            match self
                .gateway
                .find_refund(&refund.org_id, &part.idempotency_key)
            {
                Ok(Some(outcome)) => {
                    report.parts_found += 1;
                    return Ok(outcome);
                }
                Ok(None) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        let charge = charges::get(&mut *self.store.conn()?, &part.charge_id)?;
        let Some(gateway_charge_id) = charge.gateway_charge_id else {
            return Ok(Err(GatewayError::UnknownCharge));
        };
        report.parts_sent += 1;
        Ok(self.gateway.refund(
            &refund.org_id,
            &gateway_charge_id,
            part.amount,
            &part.idempotency_key,
        ))
    }

    fn settle(
        &self,
        refund: &Refund,
        lease: &Lease,
        paid: bool,
        failure_code: Option<&str>,
    ) -> Result<Settled, StoreError> {
        let mut conn = self.store.conn()?;
        let now = self.clock.now();
        guichet_store::transaction(&mut conn, |conn| {
            if !refunds::settle(conn, &refund.id, &lease.token, paid, failure_code, now)? {
                return Err(StoreError::Conflict(format!(
                    "refund {} was not pending under this run's lease any more",
                    refund.id
                )));
            }
            let settled = refunds::get(conn, &refund.id)?;
            events::emit(
                conn,
                if paid {
                    EventType::RefundPaid
                } else {
                    EventType::RefundFailed
                },
                &refund.org_id,
                &refund.id,
                None,
                Actor::System,
                &snapshots::refund(&settled),
                now,
            )
        })?;
        tracing::info!(refund = %refund.id, paid, failure_code, "refund settled");
        Ok(if paid { Settled::Paid } else { Settled::Failed })
    }

    /// Runs every `interval` on a thread (the first run at once) until
    /// [`Periodic::stop`].
    pub fn spawn(self, interval: Duration) -> Periodic {
        Periodic::spawn("refunds-run", interval, move |stop| {
            match self.run_until(stop.flag()) {
                Ok(report) if report.claimed > 0 => tracing::info!(
                    claimed = report.claimed,
                    paid = report.paid,
                    failed = report.failed,
                    transient_failures = report.transient_failures,
                    errors = report.errors,
                    left_pending = report.left_pending,
                    "refunds run"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "refunds run failed; trying again later"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_takes_from_the_oldest_charges_first() {
        assert_eq!(allocate(150, &[100, 100]), Some(vec![(0, 100), (1, 50)]));
        assert_eq!(allocate(100, &[0, 100]), Some(vec![(1, 100)]));
        assert_eq!(allocate(60, &[100, 100]), Some(vec![(0, 60)]));
        assert_eq!(allocate(250, &[100, 100]), None);
        assert_eq!(allocate(0, &[100]), Some(vec![]));
    }

    #[test]
    fn part_keys_are_deterministic_and_distinct() {
        assert_eq!(part_key("rfd_1", "chg_1"), part_key("rfd_1", "chg_1"));
        assert_ne!(part_key("rfd_1", "chg_1"), part_key("rfd_1", "chg_2"));
        assert_ne!(part_key("rfd_1", "chg_1"), part_key("rfd_2", "chg_1"));
        assert_eq!(part_key("rfd_1", "chg_1").len(), 64);
    }
}
