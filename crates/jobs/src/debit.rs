//! The debit run: presents every due instalment to the payment gateway,
//! exactly once per attempt, and records what came of it.
//!
//! # How a charge survives a crash
//!
//! Each attempt has its own idempotency key
//! ([`idempotency_key`]`(instalment, attempt)`). Before the gateway is
//! called, a `charges` row is committed as `pending` under that key (the
//! rows of a claimed batch in one commit); after the call, one transaction
//! completes the row, applies the result to the schedule
//! ([`record_debit_result`]) and lets go of the claim (the results of up to
//! `SETTLE_CHUNK` (500) instalments share a transaction; if it fails they are
//! applied one by one). A run that dies in between leaves a pending row: the
//! next run finds it (by key when it claims the instalment again, or among
//! the stale pending charges it reconciles first) and looks it up at the
//! gateway under its key ([`PaymentGateway::find_charge`]) before anything
//! else: found, its outcome is applied; never received, an instalment's
//! charge is sent again under the same key (a regularization's is marked
//! failed: its customer is no longer waiting). A charge whose outcome is
//! unknown (`Timeout`) is never sent blindly again: it stays pending and is
//! looked up at the next run.
//!
//! # What a run says
//!
//! Its counters satisfy one identity (tested, and documented in
//! docs/SCHEDULES.md): every item a run takes ends in exactly one bucket,
//!
//! ```text
//! claimed + stale = paid + retry_scheduled + unpaid + regularizations
//!                 + skipped + transient_failures + errors + interrupted
//! ```
//!
//! and [`DebitReport::ending`] says whether due work is left (errors,
//! unknown outcomes, or claims held by another, possibly dead, run: then
//! `held_elsewhere` and `held_until`). A run aborts at the first
//! unavailable database ([`DebitRun::run`] returns an error) and stops
//! cleanly when asked ([`crate::runner::Stop`]).
//!
//! # Throughput
//!
//! A batch costs a fixed number of statements, not a few per instalment:
//! its orders and existing charges are read, its pending charges inserted,
//! and its results completed and saved with multi-row statements
//! (instalments left in the same state share one `UPDATE`). On PostgreSQL a
//! round trip costs more than the work it carries; SQLite, which has no
//! round trips, inserts and completes the charges one prepared statement at
//! a time (`docs/BENCHMARKS.md`, "Debit runs").
//!
//! # Concurrent runs
//!
//! Instalments are claimed with a lease ([`schedules::claim_due`]): on
//! PostgreSQL, runs on several nodes split the due instalments between them
//! (`FOR UPDATE SKIP LOCKED`); on SQLite they are serialized. A result is
//! applied only when the instalment is still pending and still waiting for
//! the attempt the key names, so a replayed outcome is never applied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::events::{Actor, EventType};
use guichet_domain::gateway::{ChargeReceipt, GatewayError, PaymentGateway};
use guichet_domain::schedule::{
    DebitOutcome, Instalment, InstalmentStatus, RetryPolicy, idempotency_key, record_debit_result,
};
use guichet_domain::{Clock, ids};
use guichet_gateway::SandboxGateway;
use guichet_store::repo::charges::{self, Charge};
use guichet_store::repo::schedules::{self, ClaimedInstalment, Order};
use guichet_store::repo::{events, invoices, payment, regularizations};
use guichet_store::snapshots;
use guichet_store::{DbConnection, Store, StoreError};
use serde::Serialize;

use crate::PaymentGatewayKind;
use crate::runner::{Ending, Lease, Periodic};

/// How long a claimed instalment is reserved for the run that claimed it.
pub const LEASE: Duration = Duration::from_secs(5 * 60);

/// A `pending` charge older than this was left by a run that died between
/// the gateway call and its record: it is replayed with its own key.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// Instalments claimed at once.
pub const DEFAULT_BATCH: i64 = 500;

/// Results applied in one transaction.
const SETTLE_CHUNK: usize = 500;

/// The largest batch a run claims at once.
pub const MAX_BATCH: i64 = 10_000;

/// What a run did. Every instalment claimed and every stale charge
/// examined ends in exactly one of `paid`, `retry_scheduled`, `unpaid`,
/// `regularizations`, `skipped`, `transient_failures`, `errors` and
/// `interrupted` ([`DebitReport::balanced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DebitReport {
    /// Due instalments this run claimed.
    pub claimed: u64,
    /// Stale pending charges (left by a run that died) this run examined.
    pub stale: u64,
    /// Charges this run sent to the gateway (new attempts, and charges
    /// of an earlier run the gateway never received).
    pub presented: u64,
    /// Results applied that paid an instalment.
    pub paid: u64,
    /// Results applied that failed with a retry left (the instalment stays
    /// pending until its retry date).
    pub retry_scheduled: u64,
    /// Results applied that failed with no retry left: the instalment, and
    /// so its schedule, is unpaid.
    pub unpaid: u64,
    /// Stale regularization charges settled (applied, or marked failed)
    /// through the regularization's own settlement.
    pub regularizations: u64,
    /// Items whose result no longer applied: the instalment was paid,
    /// cancelled or moved on since (its charge is completed all the same),
    /// or a regularization another process settled first.
    pub skipped: u64,
    /// Charges whose outcome is not known yet (gateway unavailable, or a
    /// `Timeout`): nothing changed, the charge stays pending and is looked
    /// up under its key at the next run.
    pub transient_failures: u64,
    /// Charges left behind by an earlier run and settled by this one: stale
    /// pending charges and pending charges found again under their key
    /// (looked up at the gateway first), and completed charges whose
    /// result had not reached the schedule. Not a bucket of its own: their
    /// results are also counted in one of the buckets above.
    pub reconciled: u64,
    /// Instalments or charges that could not be handled (logged); they are
    /// tried again at the next run.
    pub errors: u64,
    /// Claimed instalments left unsent because the run was asked to stop;
    /// their claims were released.
    pub interrupted: u64,
    /// After the run: instalments due on or before the run's date still
    /// waiting (pending), whatever the reason.
    pub left_due: u64,
    /// Of `left_due`, those whose claim is held by another run (which may
    /// have died: the claim then ends with its lease).
    pub held_elsewhere: u64,
    /// When the last of those claims ends.
    pub held_until: Option<DateTime<Utc>>,
    /// Whether the run was asked to stop before the end.
    pub stopped: bool,
    /// The open invoices charged by autopay after the instalments
    /// (`autopay.rs`); not part of [`DebitReport::balanced`].
    pub autopay: crate::autopay::AutopayReport,
}

impl DebitReport {
    fn count(&mut self, outcome: Option<DebitOutcome>) {
        match outcome {
            Some(DebitOutcome::Paid) => self.paid += 1,
            Some(DebitOutcome::RetryOn(_)) => self.retry_scheduled += 1,
            Some(DebitOutcome::Unpaid) => self.unpaid += 1,
            None => self.skipped += 1,
        }
    }

    /// Whether the counters add up: `claimed + stale` equals the sum of
    /// the buckets (see the type's documentation).
    pub fn balanced(&self) -> bool {
        self.claimed + self.stale
            == self.paid
                + self.retry_scheduled
                + self.unpaid
                + self.regularizations
                + self.skipped
                + self.transient_failures
                + self.errors
                + self.interrupted
    }

    /// How the run ended: stopped when asked to; unfinished when due
    /// instalments are left or something failed; done otherwise.
    pub fn ending(&self) -> Ending {
        if self.stopped {
            Ending::Stopped
        } else if self.left_due > 0
            || self.errors > 0
            || self.transient_failures > 0
            || self.autopay.errors > 0
            || self.autopay.unknown > 0
        {
            Ending::Unfinished
        } else {
            Ending::Done
        }
    }
}

/// The payment gateway `kind`, as the server builds it: the sandbox's
/// tokens are keyed with the server secret key, and its ledger is in
/// `store`, so a job and the server read the same tokens and share the same
/// ledger.
pub fn gateway(
    kind: PaymentGatewayKind,
    store: Store,
    secret_key: &[u8],
    clock: Arc<dyn Clock>,
) -> Arc<dyn PaymentGateway> {
    match kind {
        PaymentGatewayKind::Sandbox => {
            Arc::new(SandboxGateway::with_token_key(store, clock, secret_key))
        }
    }
}

/// One debit run's dependencies. [`DebitRun::run`] does one run;
/// [`DebitRun::spawn`] runs it periodically on a thread.
#[derive(Clone)]
pub struct DebitRun {
    pub store: Store,
    pub gateway: Arc<dyn PaymentGateway>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DebitRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebitRun")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why one instalment or charge could not be handled; `unavailable` when
/// the database could not be reached, which aborts the whole run.
#[derive(Debug)]
struct Failure {
    msg: String,
    unavailable: bool,
}

fn failure(msg: String) -> Failure {
    Failure {
        msg,
        unavailable: false,
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure {
            unavailable: matches!(e, StoreError::Unavailable(_)),
            msg: e.to_string(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// The final answer about a charge.
#[derive(Debug)]
struct Answer {
    succeeded: bool,
    gateway_charge_id: Option<String>,
    failure_code: Option<String>,
}

impl Answer {
    /// The gateway's final answer; `None` for a transient failure (nothing
    /// known yet). A reused key (the card or amount changed since the key
    /// was first sent) is not an answer: money may have moved under the
    /// first request, so it is left for an operator.
    fn from_gateway(result: Result<ChargeReceipt, GatewayError>) -> Result<Option<Self>, Failure> {
        match result {
            Ok(receipt) => Ok(Some(Answer {
                succeeded: true,
                gateway_charge_id: Some(receipt.charge_id),
                failure_code: None,
            })),
            Err(e) if e.is_transient() => Ok(None),
            Err(GatewayError::IdempotencyKeyReused) => Err(failure(
                "the gateway refused the charge's key with another card or amount; \
                 check the charge at the gateway"
                    .into(),
            )),
            Err(e) => Ok(Some(Answer {
                succeeded: false,
                gateway_charge_id: None,
                failure_code: Some(e.code().to_owned()),
            })),
        }
    }

    /// The answer already recorded on a completed charge.
    fn recorded(charge: &Charge) -> Self {
        Answer {
            succeeded: charge.status == "succeeded",
            gateway_charge_id: charge.gateway_charge_id.clone(),
            failure_code: charge.failure_code.clone(),
        }
    }
}

/// The next attempt at a claimed instalment.
struct Attempt {
    claimed: ClaimedInstalment,
    card_token: String,
    /// Pending (to send), or completed by an earlier run whose result never
    /// reached the schedule.
    charge: Charge,
    /// Whether the charge is still to be recorded.
    new: bool,
}

/// The state of one run.
struct Pass<'a> {
    as_of: NaiveDate,
    stop: &'a AtomicBool,
    policies: HashMap<String, RetryPolicy>,
    report: DebitReport,
    /// Claims kept until the end of the run, so that the run does not claim
    /// them again (transient failures, errors).
    held: Vec<String>,
    /// Why the run was aborted (the database became unavailable).
    aborted: Option<String>,
}

impl Pass<'_> {
    /// Whether to take no more work: asked to stop, or aborted.
    fn should_stop(&self) -> bool {
        self.aborted.is_some() || self.stop.load(Ordering::SeqCst)
    }

    /// Notes an unavailable database: the run takes no more work.
    fn check(&mut self, error: &Failure) {
        if error.unavailable && self.aborted.is_none() {
            self.aborted = Some(error.msg.clone());
        }
    }

    /// An instalment that could not be handled: logged, counted, and its
    /// claim kept until the end of the run.
    fn fail(&mut self, instalment_id: &str, error: &Failure) {
        self.check(error);
        self.report.errors += 1;
        tracing::error!(
            instalment = %instalment_id,
            %error,
            "cannot present an instalment; it is tried again at the next run"
        );
        self.held.push(instalment_id.to_owned());
    }

    /// Counts a committed result.
    fn settled(&mut self, attempt: &Attempt, outcome: Option<DebitOutcome>, replayed: bool) {
        if replayed {
            self.report.reconciled += 1;
        }
        self.report.count(outcome);
        tracing::debug!(
            instalment = %attempt.claimed.instalment_id,
            order = %attempt.claimed.order_id,
            outcome = ?outcome,
            "instalment settled"
        );
    }

    /// The organization's retry policy, read once per run.
    fn policy(&mut self, conn: &mut DbConnection, org_id: &str) -> Result<RetryPolicy, Failure> {
        if let Some(policy) = self.policies.get(org_id) {
            return Ok(*policy);
        }
        let policy = payment::get(conn, org_id)?.retry;
        self.policies.insert(org_id.to_owned(), policy);
        Ok(policy)
    }
}

impl DebitRun {
    pub fn new(store: Store, gateway: Arc<dyn PaymentGateway>, clock: Arc<dyn Clock>) -> Self {
        DebitRun {
            store,
            gateway,
            clock,
        }
    }

    /// Presents every instalment due on or before `as_of`, claiming `batch`
    /// at a time (1 to [`MAX_BATCH`]) until nothing is left to claim. Stale
    /// pending charges are reconciled first. Fails (aborts) at the first
    /// unavailable database, saying what was done; one instalment's failure
    /// is logged, counted in [`DebitReport::errors`] and tried again at the
    /// next run. The report ends with what is left due
    /// ([`DebitReport::left_due`], [`DebitReport::held_elsewhere`]).
    pub fn run(&self, as_of: NaiveDate, batch: i64) -> Result<DebitReport, String> {
        self.run_until(as_of, batch, &AtomicBool::new(false))
    }

    /// [`DebitRun::run`], ending early once `stop` is set: the charges
    /// already answered are settled, nothing more is sent, and every claim
    /// the run holds is released ([`DebitReport::stopped`]).
    pub fn run_until(
        &self,
        as_of: NaiveDate,
        batch: i64,
        stop: &AtomicBool,
    ) -> Result<DebitReport, String> {
        let mut pass = Pass {
            as_of,
            stop,
            policies: HashMap::new(),
            report: DebitReport::default(),
            held: Vec::new(),
            aborted: None,
        };
        let result = self
            .reconcile(&mut pass)
            .and_then(|()| self.present_due(&mut pass, batch.clamp(1, MAX_BATCH)))
            .and_then(|()| self.autopay(&mut pass));
        if let Err(error) = &result {
            pass.check(error);
        }
        if pass.aborted.is_some() {
            // One connection wait is enough to know the database is gone:
            // the claims are not released (a second wait), they expire
            // with their lease.
            if !pass.held.is_empty() {
                tracing::warn!("cannot release claims; they expire with their lease");
            }
        } else if let Err(error) = self.release_held(&pass.held) {
            // The database went away after the last item (a gateway call
            // that could not reach the sandbox's ledger, say): the run
            // aborts here rather than wait again to count what is left.
            pass.check(&error);
        }
        if let Some(reason) = pass.aborted {
            let r = pass.report;
            return Err(format!(
                "debit run aborted: the database is unavailable ({reason}); \
                 before that: {} claimed, {} presented, {} paid, {} errors; \
                 run it again once the database is back",
                r.claimed, r.presented, r.paid, r.errors
            ));
        }
        result.map_err(|e| e.msg)?;
        pass.report.stopped = stop.load(Ordering::SeqCst);
        let left = schedules::due_left(&mut *self.conn().map_err(|e| e.msg)?, as_of, self.now())
            .map_err(|e| format!("debit run: cannot count what is left: {e}"))?;
        pass.report.left_due = u64::try_from(left.due).unwrap_or(0);
        pass.report.held_elsewhere = u64::try_from(left.held).unwrap_or(0);
        pass.report.held_until = left.held_until;
        Ok(pass.report)
    }

    fn conn(&self) -> Result<guichet_store::db::PooledConn, Failure> {
        self.store.conn().map_err(|e| Failure {
            unavailable: true,
            msg: format!("no database connection: {e}"),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Charges the open invoices due of customers with autopay on
    /// (`autopay.rs`), once the instalments are presented.
    fn autopay(&self, pass: &mut Pass<'_>) -> Result<(), Failure> {
        if pass.should_stop() {
            return Ok(());
        }
        let report = crate::autopay::run(
            &self.store,
            self.gateway.as_ref(),
            || self.now(),
            pass.as_of,
            pass.stop,
        )?;
        pass.report.autopay = report;
        Ok(())
    }

    /// Settles the charges a dead run left pending, each looked up at the
    /// gateway first.
    fn reconcile(&self, pass: &mut Pass<'_>) -> Result<(), Failure> {
        let stale_after = chrono::Duration::from_std(STALE_AFTER)
            .map_err(|e| failure(format!("stale delay: {e}")))?;
        let stale = charges::stale_pending(&mut *self.conn()?, self.now() - stale_after)?;
        for charge in stale {
            if pass.should_stop() {
                break;
            }
            pass.report.stale += 1;
            match self.reconcile_one(&charge, pass) {
                Ok(Lookup::Settled) => {}
                Ok(Lookup::Unknown) => {
                    pass.report.transient_failures += 1;
                    tracing::warn!(
                        charge = %charge.id,
                        "the outcome of a stale charge is still unknown; it is looked up again at the next run"
                    );
                }
                Ok(Lookup::GatewayDown) => {
                    pass.report.transient_failures += 1;
                    tracing::warn!(
                        charge = %charge.id,
                        "payment gateway unavailable; stale charges are looked up at the next run"
                    );
                    break;
                }
                Err(error) => {
                    pass.check(&error);
                    pass.report.errors += 1;
                    tracing::error!(charge = %charge.id, %error, "cannot reconcile a stale charge");
                }
            }
        }
        self.reconcile_invoice_payments(pass, stale_after)
    }

    /// The online invoice payments left pending by a request that is gone:
    /// looked up at the gateway under their key (no connection held across
    /// the call), then settled or given up; never sent again.
    fn reconcile_invoice_payments(
        &self,
        pass: &mut Pass<'_>,
        stale_after: chrono::Duration,
    ) -> Result<(), Failure> {
        let stale = invoices::stale_pending(&mut *self.conn()?, self.now() - stale_after, 1000)?;
        for p in stale {
            if pass.should_stop() {
                break;
            }
            pass.report.stale += 1;
            let Some(key) = p.gateway_key.clone() else {
                continue;
            };
            let found = match self.gateway.find_charge(&p.org_id, &key) {
                Ok(Some(Err(e))) if e.is_transient() => {
                    pass.report.transient_failures += 1;
                    continue;
                }
                Ok(found) => found,
                Err(GatewayError::Unavailable) => {
                    pass.report.transient_failures += 1;
                    break;
                }
                Err(_) => {
                    pass.report.transient_failures += 1;
                    continue;
                }
            };
            let now = self.now();
            match crate::invoices::settle_stale(&mut *self.conn()?, &p, found, now) {
                Ok(true) => pass.report.reconciled += 1,
                Ok(false) => pass.report.skipped += 1,
                Err(error) => {
                    let error: Failure = error.into();
                    pass.check(&error);
                    pass.report.errors += 1;
                    tracing::error!(payment = %p.id, %error, "cannot reconcile a stale invoice payment");
                }
            }
            tracing::info!(payment = %p.id, "stale invoice payment reconciled");
        }
        Ok(())
    }

    /// Looks one stale charge up and settles it.
    fn reconcile_one(&self, charge: &Charge, pass: &mut Pass<'_>) -> Result<Lookup, Failure> {
        let found = match self
            .gateway
            .find_charge(&charge.org_id, &charge.idempotency_key)
        {
            Ok(found) => found,
            Err(GatewayError::Unavailable) => return Ok(Lookup::GatewayDown),
            Err(e) if e.is_transient() => return Ok(Lookup::Unknown),
            Err(e) => return Err(failure(format!("cannot look the charge up: {e}"))),
        };
        if charge.purpose == charges::REGULARIZATION {
            // Never received: its customer is no longer waiting, so it is
            // not sent; it is settled as failed.
            if matches!(&found, Some(Err(e)) if e.is_transient()) {
                return Ok(Lookup::Unknown);
            }
            let now = self.now();
            let mut conn = self.conn()?;
            let settled = match &found {
                Some(outcome) => {
                    regularizations::settle(&mut conn, charge, outcome, now, Actor::System)?
                }
                None => regularizations::abandon(&mut conn, charge, now)?,
            };
            if settled {
                pass.report.regularizations += 1;
                pass.report.reconciled += 1;
            } else {
                pass.report.skipped += 1;
            }
            tracing::info!(charge = %charge.id, settled, "stale regularization charge reconciled");
            return Ok(Lookup::Settled);
        }
        let Some(instalment_id) = charge.instalment_id.as_deref() else {
            return Err(failure(format!(
                "a pending charge of purpose {:?} names no instalment",
                charge.purpose
            )));
        };
        // No connection is held across the gateway call: the sandbox takes
        // its own from the same pool.
        let order = schedules::get(&mut *self.conn()?, &charge.org_id, &charge.order_id)?;
        let waiting = instalment(&order, instalment_id).is_some_and(|i| {
            i.status == InstalmentStatus::Pending
                && idempotency_key(instalment_id, i.attempts + 1) == charge.idempotency_key
        });
        let answer = match found {
            Some(outcome) => match Answer::from_gateway(outcome)? {
                Some(answer) => answer,
                None => return Ok(Lookup::Unknown),
            },
            // Never received, and the instalment waits for it: sent again
            // under the same key.
            None if waiting => {
                pass.report.presented += 1;
                let result = self.gateway.charge(
                    &charge.org_id,
                    &order.card.token,
                    charge.amount,
                    &charge.idempotency_key,
                );
                match result {
                    Err(GatewayError::Unavailable) => return Ok(Lookup::GatewayDown),
                    result => match Answer::from_gateway(result)? {
                        Some(answer) => answer,
                        None => return Ok(Lookup::Unknown),
                    },
                }
            }
            // Never received, and the instalment moved on: sending it now
            // could charge what is no longer owed. Nothing moved; the charge
            // is closed as abandoned.
            None => Answer {
                succeeded: false,
                gateway_charge_id: None,
                failure_code: Some(ABANDONED.to_owned()),
            },
        };
        let mut conn = self.conn()?;
        pass.policy(&mut conn, &charge.org_id)?;
        let at = self.now();
        let item = Settling {
            charge,
            instalment_id,
            answer: &answer,
        };
        let outcome = guichet_store::transaction(&mut conn, |conn| {
            settle(conn, &[item], at, &pass.policies, true)
        })?
        .pop()
        .flatten();
        pass.report.reconciled += 1;
        pass.report.count(outcome);
        tracing::info!(
            charge = %charge.id,
            instalment = %instalment_id,
            succeeded = answer.succeeded,
            "stale charge reconciled"
        );
        Ok(Lookup::Settled)
    }

    /// Claims and presents due instalments, batch after batch.
    fn present_due(&self, pass: &mut Pass<'_>, batch: i64) -> Result<(), Failure> {
        loop {
            if pass.should_stop() {
                return Ok(());
            }
            let lease = Lease::new("dbr", LEASE);
            let claimed = schedules::claim_due(
                &mut *self.conn()?,
                pass.as_of,
                self.now(),
                lease.duration,
                batch,
                &lease.token,
            )?;
            if claimed.is_empty() {
                return Ok(());
            }
            pass.report.claimed += claimed.len() as u64;
            if self.present_batch(claimed, pass) == 0 {
                // The whole batch failed (gateway outage, database trouble):
                // claiming more would only fail the same way.
                tracing::warn!(
                    transient_failures = pass.report.transient_failures,
                    errors = pass.report.errors,
                    "no instalment of the batch could be settled; the rest waits for the next run"
                );
                return Ok(());
            }
        }
    }

    /// Presents a claimed batch: the attempts are read and recorded as
    /// pending (a few statements and one commit for the whole batch), sent
    /// one by one, and their results applied (a few statements and one
    /// commit per [`SETTLE_CHUNK`]). Returns how many instalments were
    /// settled; the others' claims are kept until the end of the run.
    fn present_batch(&self, claimed: Vec<ClaimedInstalment>, pass: &mut Pass<'_>) -> usize {
        if pass.should_stop() {
            pass.report.interrupted += claimed.len() as u64;
            pass.held
                .extend(claimed.into_iter().map(|c| c.instalment_id));
            return 0;
        }
        let (prepared, mut settled) = self.prepare(claimed, pass);
        pass.report.skipped += settled as u64;
        let prepared = self.record_pending(prepared, pass);
        let mut answered = Vec::with_capacity(prepared.len());
        for attempt in prepared {
            if pass.should_stop() {
                pass.report.interrupted += 1;
                pass.held.push(attempt.claimed.instalment_id);
                continue;
            }
            if attempt.charge.status != "pending" {
                // Completed, but the result never reached the schedule.
                let answer = Answer::recorded(&attempt.charge);
                answered.push((attempt, answer, true));
                continue;
            }
            // A pending charge of an earlier run: its outcome is looked up
            // under its key before anything is sent.
            let mut replayed = false;
            let result = if attempt.new {
                None
            } else {
                match self
                    .gateway
                    .find_charge(&attempt.charge.org_id, &attempt.charge.idempotency_key)
                {
                    Ok(found) => {
                        replayed = found.is_some();
                        found
                    }
                    Err(e) => Some(Err(e)),
                }
            };
            let result = result.unwrap_or_else(|| {
                pass.report.presented += 1;
                self.gateway.charge(
                    &attempt.charge.org_id,
                    &attempt.card_token,
                    attempt.charge.amount,
                    &attempt.charge.idempotency_key,
                )
            });
            match Answer::from_gateway(result) {
                Ok(Some(answer)) => answered.push((attempt, answer, replayed)),
                Ok(None) => {
                    pass.report.transient_failures += 1;
                    tracing::warn!(
                        instalment = %attempt.claimed.instalment_id,
                        "the charge's outcome is unknown (gateway unavailable or timed out); \
                         it is looked up under its key at the next run"
                    );
                    pass.held.push(attempt.claimed.instalment_id);
                }
                Err(error) => pass.fail(&attempt.claimed.instalment_id, &error),
            }
        }
        // One lock order for every run: by order, then instalment.
        answered.sort_by(|a, b| {
            (&a.0.charge.order_id, &a.0.claimed.instalment_id)
                .cmp(&(&b.0.charge.order_id, &b.0.claimed.instalment_id))
        });
        let mut answered = answered.into_iter().peekable();
        while answered.peek().is_some() {
            let chunk: Vec<_> = answered.by_ref().take(SETTLE_CHUNK).collect();
            settled += self.settle_chunk(chunk, pass);
        }
        settled
    }

    /// Reads the claimed instalments with their orders and the charge of
    /// each one's next attempt (an existing one under the same key, or a
    /// new one to record). Those no longer due are released and counted as
    /// settled (the second value); those that cannot be read are failed.
    fn prepare(
        &self,
        claimed: Vec<ClaimedInstalment>,
        pass: &mut Pass<'_>,
    ) -> (Vec<Attempt>, usize) {
        let ids: Vec<String> = claimed.iter().map(|c| c.instalment_id.clone()).collect();
        match self
            .conn()
            .and_then(|mut conn| self.read_attempts(&mut conn, claimed, pass))
        {
            Ok(prepared) => prepared,
            Err(error) => {
                for id in ids {
                    pass.fail(&id, &error);
                }
                (Vec::new(), 0)
            }
        }
    }

    fn read_attempts(
        &self,
        conn: &mut DbConnection,
        claimed: Vec<ClaimedInstalment>,
        pass: &mut Pass<'_>,
    ) -> Result<(Vec<Attempt>, usize), Failure> {
        let keys: Vec<(&str, &str)> = claimed
            .iter()
            .map(|c| (c.org_id.as_str(), c.order_id.as_str()))
            .collect();
        let orders: HashMap<String, Order> = schedules::get_many(conn, &keys)?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect();
        // Paid, cancelled or moved since it was claimed: released.
        let mut gone = Vec::new();
        let mut waiting = Vec::with_capacity(claimed.len());
        for c in claimed {
            let Some(order) = orders.get(&c.order_id) else {
                pass.fail(&c.instalment_id, &Failure::from(StoreError::NotFound));
                continue;
            };
            match instalment(order, &c.instalment_id).filter(|i| i.is_due(pass.as_of)) {
                None => gone.push(c),
                Some(i) => {
                    let key = idempotency_key(&c.instalment_id, i.attempts + 1);
                    waiting.push((c, key, i.amount, order.card.token.clone()));
                }
            }
        }
        let gone_ids: Vec<&str> = gone.iter().map(|c| c.instalment_id.as_str()).collect();
        schedules::release_claims(conn, &gone_ids)?;
        let keys: Vec<String> = waiting.iter().map(|(_, key, _, _)| key.clone()).collect();
        let mut existing: HashMap<String, Charge> = charges::find_by_keys(conn, &keys)?
            .into_iter()
            .map(|c| (c.idempotency_key.clone(), c))
            .collect();
        let now = self.now();
        let attempts = waiting
            .into_iter()
            .map(|(claimed, key, amount, card_token)| {
                let (charge, new) = match existing.remove(&key) {
                    // A run died after recording this attempt: same key,
                    // same charge.
                    Some(existing) => {
                        if existing.amount != amount {
                            tracing::warn!(
                                charge = %existing.id,
                                instalment = %claimed.instalment_id,
                                "the instalment's amount changed since this attempt was \
                                 recorded; the recorded amount is charged"
                            );
                        }
                        (existing, false)
                    }
                    None => (
                        Charge {
                            id: ids::new_id("chg"),
                            org_id: claimed.org_id.clone(),
                            order_id: claimed.order_id.clone(),
                            instalment_id: Some(claimed.instalment_id.clone()),
                            idempotency_key: key,
                            amount,
                            status: "pending".to_owned(),
                            gateway_charge_id: None,
                            failure_code: None,
                            created_at: now,
                            purpose: charges::INSTALMENT.to_owned(),
                            request: None,
                            details: None,
                        },
                        true,
                    ),
                };
                Attempt {
                    claimed,
                    card_token,
                    charge,
                    new,
                }
            })
            .collect();
        Ok((attempts, gone.len()))
    }

    /// Records the new attempts as `pending`, committed before any is sent:
    /// all in one transaction (multi-row inserts), or one by one when that
    /// fails (a concurrent record of the same key wins and is reused).
    /// Returns the attempts that may be sent.
    fn record_pending(&self, attempts: Vec<Attempt>, pass: &mut Pass<'_>) -> Vec<Attempt> {
        if attempts.iter().all(|a| !a.new) {
            return attempts;
        }
        let mut conn = match self.conn() {
            Ok(conn) => conn,
            Err(error) => {
                for attempt in attempts {
                    pass.fail(&attempt.claimed.instalment_id, &error);
                }
                return Vec::new();
            }
        };
        let new: Vec<&Charge> = attempts
            .iter()
            .filter(|a| a.new)
            .map(|a| &a.charge)
            .collect();
        let all =
            guichet_store::transaction(&mut conn, |conn| charges::insert_pending_many(conn, &new));
        if all.is_ok() {
            return attempts;
        }
        let mut recorded = Vec::with_capacity(attempts.len());
        for mut attempt in attempts {
            if !attempt.new {
                recorded.push(attempt);
                continue;
            }
            let key = attempt.charge.idempotency_key.clone();
            let result = match charges::insert_pending(&mut conn, &attempt.charge) {
                Ok(()) => Ok(attempt.charge),
                Err(StoreError::Conflict(_)) => charges::find_by_key(&mut conn, &key)
                    .map_err(Failure::from)
                    .and_then(|found| {
                        found
                            .ok_or_else(|| failure("the charge's key conflicts but is gone".into()))
                    }),
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(charge) => {
                    attempt.charge = charge;
                    recorded.push(attempt);
                }
                Err(error) => pass.fail(&attempt.claimed.instalment_id, &error),
            }
        }
        recorded
    }

    /// Settles answered attempts in one transaction (a few statements for
    /// them all), or one by one when that fails; returns how many were
    /// settled.
    fn settle_chunk(&self, chunk: Vec<(Attempt, Answer, bool)>, pass: &mut Pass<'_>) -> usize {
        let settled = self.conn().and_then(|mut conn| {
            for (attempt, _, _) in &chunk {
                pass.policy(&mut conn, &attempt.charge.org_id)?;
            }
            let policies = &pass.policies;
            let at = self.now();
            let items: Vec<Settling<'_>> = chunk
                .iter()
                .map(|(attempt, answer, _)| Settling {
                    charge: &attempt.charge,
                    instalment_id: &attempt.claimed.instalment_id,
                    answer,
                })
                .collect();
            guichet_store::transaction(&mut conn, |conn| settle(conn, &items, at, policies, true))
        });
        match settled {
            Ok(outcomes) => {
                for ((attempt, _, replayed), outcome) in chunk.iter().zip(outcomes) {
                    pass.settled(attempt, outcome, *replayed);
                }
                chunk.len()
            }
            Err(error) if chunk.len() > 1 => {
                tracing::warn!(%error, "cannot settle a chunk of charges; settling them one by one");
                chunk
                    .into_iter()
                    .map(|one| self.settle_chunk(vec![one], pass))
                    .sum()
            }
            Err(error) => {
                for (attempt, _, _) in chunk {
                    pass.fail(&attempt.claimed.instalment_id, &error);
                }
                0
            }
        }
    }

    /// Lets go of the claims kept until the end of the run.
    fn release_held(&self, held: &[String]) -> Result<(), Failure> {
        if held.is_empty() {
            return Ok(());
        }
        let released = self.conn().and_then(|mut conn| {
            for id in held {
                schedules::release_claim(&mut conn, id)?;
            }
            Ok(())
        });
        if let Err(error) = &released {
            tracing::warn!(%error, "cannot release claims; they expire with their lease");
        }
        released
    }

    /// Runs every `interval` on a thread (the first run at once), with
    /// `as_of` = the clock's today, until [`Periodic::stop`] (a run in
    /// progress stops as [`DebitRun::run_until`] does).
    pub fn spawn(self, interval: Duration, batch: i64) -> Periodic {
        Periodic::spawn("debit-run", interval, move |stop| {
            let as_of = self.clock.today();
            match self.run_until(as_of, batch, stop.flag()) {
                Ok(report) if report != DebitReport::default() => tracing::info!(
                    %as_of,
                    claimed = report.claimed,
                    stale = report.stale,
                    presented = report.presented,
                    paid = report.paid,
                    retry_scheduled = report.retry_scheduled,
                    unpaid = report.unpaid,
                    regularizations = report.regularizations,
                    skipped = report.skipped,
                    transient_failures = report.transient_failures,
                    reconciled = report.reconciled,
                    errors = report.errors,
                    interrupted = report.interrupted,
                    left_due = report.left_due,
                    held_elsewhere = report.held_elsewhere,
                    "debit run"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "debit run failed; trying again at the next one");
                }
            }
        })
    }
}

/// How looking a stale charge up went.
enum Lookup {
    /// Settled (counted).
    Settled,
    /// Its outcome is still unknown: left pending.
    Unknown,
    /// The gateway is unavailable: left pending, and so are the others.
    GatewayDown,
}

/// [`Charge::failure_code`] of a charge the gateway never received and that
/// is no longer to be sent.
pub const ABANDONED: &str = "abandoned";

/// Settles a stale regularization charge with its outcome at the gateway
/// (`Err(UnknownCharge)` when the gateway never received it: then it is
/// marked failed, not sent), exactly once; `true` when this call settled it.
///
/// One answered charge to settle.
struct Settling<'a> {
    charge: &'a Charge,
    instalment_id: &'a str,
    answer: &'a Answer,
}

/// Within the caller's transaction: completes the charges, locks their
/// orders (in the order of their ids) and reads them again, applies each
/// result to its instalment when it still waits for this attempt (in the
/// order given: several instalments of one order see each other's
/// results), saves what changed and (`release`) lets go of the claims. A
/// few statements for the whole list. Returns what was applied, in the
/// order of `items`.
fn settle(
    conn: &mut DbConnection,
    items: &[Settling<'_>],
    at: DateTime<Utc>,
    policies: &HashMap<String, RetryPolicy>,
    release: bool,
) -> Result<Vec<Option<DebitOutcome>>, Failure> {
    let completions: Vec<charges::Completion<'_>> = items
        .iter()
        .map(|item| charges::Completion {
            id: &item.charge.id,
            succeeded: item.answer.succeeded,
            gateway_charge_id: item.answer.gateway_charge_id.as_deref(),
            failure_code: item.answer.failure_code.as_deref(),
        })
        .collect();
    charges::complete_many(conn, &completions, at)?;
    // Read again inside the transaction: the schedules may have changed
    // since the charges were sent.
    let order_ids: Vec<&str> = items.iter().map(|i| i.charge.order_id.as_str()).collect();
    schedules::lock_many(conn, &order_ids)?;
    let keys: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.charge.org_id.as_str(), i.charge.order_id.as_str()))
        .collect();
    let mut orders: HashMap<String, Order> = schedules::get_many(conn, &keys)?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut changed: Vec<(&str, u32)> = Vec::new();
    let mut unchanged: Vec<&str> = Vec::new();
    let mut unpaid = Vec::new();
    for item in items {
        let order = orders
            .get_mut(&item.charge.order_id)
            .ok_or(StoreError::NotFound)?;
        let policy = policies
            .get(&item.charge.org_id)
            .copied()
            .unwrap_or_default();
        let outcome = apply(
            order,
            item.charge,
            item.instalment_id,
            item.answer,
            at,
            &policy,
        )?;
        match outcome.and_then(|_| instalment(order, item.instalment_id)) {
            Some(i) => changed.push((&item.charge.order_id, i.number)),
            None => unchanged.push(item.instalment_id),
        }
        if outcome == Some(DebitOutcome::Unpaid) {
            unpaid.push(item);
        }
        outcomes.push(outcome);
    }
    let changed: Vec<(&Order, u32)> = changed
        .into_iter()
        .filter_map(|(order_id, number)| orders.get(order_id).map(|o| (o, number)))
        .collect();
    schedules::save_debits(conn, &changed, release, at)?;
    if release {
        schedules::release_claims(conn, &unchanged)?;
    }
    for item in unpaid {
        if let Some(order) = orders.get(&item.charge.order_id) {
            tell_unpaid(conn, order, item.charge, at)?;
        }
    }
    for (item, outcome) in items.iter().zip(&outcomes) {
        if let (Some(outcome), Some(order)) = (outcome, orders.get(&item.charge.order_id)) {
            record_events(conn, order, item.instalment_id, *outcome, at)?;
        }
    }
    Ok(outcomes)
}

/// Records what a debit result changed, in the same transaction: the
/// instalment paid or failed, and the schedule unpaid when no retry is
/// left. The snapshots show the order after every result of the chunk.
fn record_events(
    conn: &mut DbConnection,
    order: &Order,
    instalment_id: &str,
    outcome: DebitOutcome,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(number) = instalment(order, instalment_id).map(|i| i.number) else {
        return Ok(());
    };
    let Some((id, data)) = snapshots::instalment(order, number) else {
        return Ok(());
    };
    let kind = match outcome {
        DebitOutcome::Paid => EventType::InstalmentPaid,
        DebitOutcome::RetryOn(_) | DebitOutcome::Unpaid => EventType::InstalmentFailed,
    };
    events::emit(
        conn,
        kind,
        &order.org_id,
        &id,
        None,
        Actor::System,
        &data,
        at,
    )?;
    if outcome == DebitOutcome::Unpaid {
        events::emit(
            conn,
            EventType::ScheduleUnpaid,
            &order.org_id,
            &order.id,
            None,
            Actor::System,
            &snapshots::order(order),
            at,
        )?;
    }
    Ok(())
}

/// E-mails the customer that an instalment is now unpaid, with the way to
/// regularize, in the same transaction as the change.
fn tell_unpaid(
    conn: &mut DbConnection,
    order: &Order,
    charge: &Charge,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let customer = guichet_store::repo::customers::get(conn, &order.org_id, &order.customer_id)?;
    let org = guichet_store::repo::organizations::get(conn, &order.org_id)?;
    let settings = guichet_store::repo::payment::get(conn, &order.org_id)?;
    crate::notify::queue(
        conn,
        Some(&order.org_id),
        crate::notify::Channel::Email,
        &customer.email,
        &crate::notify::Template::DebitUnpaid {
            org_name: org.name,
            order_number: order.order_number.clone(),
            amount: charge.amount.to_string(),
            phone: settings.collections_phone.or(org.support_phone),
        },
        customer.locale,
        at,
    )
}

/// The instalment `id` of `order`.
fn instalment<'a>(order: &'a Order, id: &str) -> Option<&'a Instalment> {
    let number = order
        .instalment_ids
        .iter()
        .find_map(|(number, i)| (i == id).then_some(*number))?;
    order
        .schedule
        .instalments
        .iter()
        .find(|i| i.number == number)
}

/// Applies `answer` to the instalment when it is still pending and waiting
/// for the attempt the charge's key names; `None` when the result was
/// already applied or no longer applies.
fn apply(
    order: &mut Order,
    charge: &Charge,
    instalment_id: &str,
    answer: &Answer,
    at: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Result<Option<DebitOutcome>, Failure> {
    let Some(number) = instalment(order, instalment_id).map(|i| i.number) else {
        return Ok(None);
    };
    let Some(instalment) = order
        .schedule
        .instalments
        .iter_mut()
        .find(|i| i.number == number)
    else {
        return Ok(None);
    };
    let waiting = instalment.status == InstalmentStatus::Pending
        && idempotency_key(instalment_id, instalment.attempts + 1) == charge.idempotency_key;
    if !waiting {
        if answer.succeeded && instalment.status == InstalmentStatus::Cancelled {
            tracing::error!(
                charge = %charge.id,
                instalment = %instalment_id,
                "an instalment cancelled while it was being charged was paid: refund it"
            );
        }
        return Ok(None);
    }
    record_debit_result(instalment, answer.succeeded, at, policy)
        .map(Some)
        .map_err(|e| failure(format!("cannot record the debit: {e}")))
}
