//! Autopay (seed 004): the debit run charges each open invoice on its due
//! date for customers with autopay on, with their autopay method, under the
//! same guarantees as the instalment debits.
//!
//! - **Exactly once across runners.** A charge is first written as the
//!   invoice's pending payment, under the invoice's lock, the invoice
//!   checked again there (still open, the whole amount still due, the
//!   retry policy's date reached); a unique index allows one pending
//!   payment per invoice, so two runners on several nodes never both charge
//!   it. The gateway key is derived from the invoice and the attempt's
//!   number: a charge sent again after a crash is the same charge.
//! - **A crash between charge and commit.** The payment stays pending; the
//!   next run's reconciliation looks its key up at the gateway and settles
//!   it (`debit.rs`), and nothing else is charged on that invoice meanwhile.
//!   A transient answer (timeout, gateway down) leaves it pending the same
//!   way: never retried before it is reconciled.
//! - **A refusal** records `invoice.payment_failed` (the customer's portal
//!   notification) and follows the organization's retry policy: at most
//!   `retries` more attempts, `delay_days` apart.
//!
//! A card method is charged through the gateway. A SEPA mandate method
//! schedules a collection of the pain.008 flow instead (`sepa.rs`), in the
//! same transaction as the invoice's pending payment (method `sepa_debit`):
//! due at the run's day + the creditor's notice, pre-notified by e-mail at
//! once, presented by the SEPA step of the same command when due, without
//! touching the mandate's account balance. The bank's answer recorded on
//! the collection (`POST /v1/admin/sepa/collections/{id}/result`) settles
//! the payment: paid, or failed and retried per the retry policy; a
//! mandate revoked or expired before presentation cancels the collection
//! and fails the payment (not a refusal). The pending payment holds the
//! invoice meanwhile: nothing else charges it, and the stale-payment
//! reconciliation leaves it to the bank's answer. SEPA debits are in euros:
//! an invoice in another currency is skipped (logged).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use guichet_domain::events::Actor;
use guichet_domain::gateway::PaymentGateway;
use guichet_domain::ids;
use guichet_domain::schedule::RetryPolicy;
use guichet_store::repo::invoices::{self, Details, Payment, Recorded, Settled};
use guichet_store::repo::payment_methods::MethodDetails;
use guichet_store::repo::{autopay, payment};
use guichet_store::{DbConnection, Store, StoreError};
use serde::Serialize;

/// Invoices read per query.
const PAGE: i64 = 500;

/// What an autopay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AutopayReport {
    /// Open invoices due with autopay on, looked at.
    pub examined: u64,
    /// Charges sent to the gateway.
    pub presented: u64,
    /// Invoices paid by their autopay charge.
    pub paid: u64,
    /// Charges the gateway refused (the customer is notified; retried per
    /// the organization's retry policy).
    pub refused: u64,
    /// Charges whose outcome is not known yet: left pending, looked up at
    /// the next run before anything else is charged on the invoice.
    pub unknown: u64,
    /// Invoices left for now: a retry not due yet or no retry left, a
    /// payment in flight, paid or voided meanwhile, or autopay's method
    /// gone.
    pub skipped: u64,
    /// Collections scheduled for invoices whose autopay method is a SEPA
    /// mandate (pre-notified now, presented when due; the invoice is paid
    /// when the bank's answer is recorded).
    pub collections: u64,
    /// Invoices that could not be handled (logged); tried again next run.
    pub errors: u64,
}

/// Whether a refused invoice may be charged again on `as_of`: fewer
/// refusals than `1 + retries`, and `delay_days` since the last one.
pub fn retry_due(
    policy: RetryPolicy,
    refusals: i64,
    last: Option<DateTime<Utc>>,
    as_of: NaiveDate,
) -> bool {
    if refusals == 0 {
        return true;
    }
    if refusals > i64::from(policy.retries) {
        return false;
    }
    match last {
        None => true,
        Some(last) => last.date_naive() + Duration::days(i64::from(policy.delay_days)) <= as_of,
    }
}

/// Invoices charged at once on PostgreSQL: each worker charges one
/// invoice at a time with its own connection. A run that charges one
/// invoice at a time waits for two commits (and the gateway) per invoice;
/// several at once share the waits (PostgreSQL flushes concurrent commits
/// together), as several runners on several nodes would. SQLite, which has
/// one writer, charges one at a time.
pub const POSTGRES_WORKERS: usize = 4;

/// One autopay pass over every organization: each open invoice due on or
/// before `as_of` of a customer with autopay on. Each page of candidates is
/// shared between the workers ([`POSTGRES_WORKERS`] on PostgreSQL, one on
/// SQLite); an invoice is charged by one worker, and exactly once however
/// many workers and runners there are (its pending payment, under its
/// lock).
pub fn run(
    store: &Store,
    gateway: &dyn PaymentGateway,
    now: impl Fn() -> DateTime<Utc> + Sync,
    as_of: NaiveDate,
    stop: &AtomicBool,
) -> Result<AutopayReport, StoreError> {
    let workers = match store.backend() {
        guichet_store::Backend::Postgres => POSTGRES_WORKERS,
        guichet_store::Backend::Sqlite => 1,
    };
    let mut report = AutopayReport::default();
    let mut after: Option<String> = None;
    loop {
        let page =
            invoices::autopay_candidates(&mut *store.conn()?, as_of, after.as_deref(), PAGE)?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = Some(last.invoice_id.clone());
        let share = page.len().div_ceil(workers);
        let parts: Vec<Result<AutopayReport, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = page
                .chunks(share)
                .map(|part| scope.spawn(|| charge_each(store, gateway, &now, as_of, part, stop)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StoreError::Database("an autopay worker panicked".into()))
                    })
                })
                .collect()
        });
        for part in parts {
            report.add(&part?);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(report);
        }
    }
}

impl AutopayReport {
    fn add(&mut self, other: &AutopayReport) {
        self.examined += other.examined;
        self.presented += other.presented;
        self.paid += other.paid;
        self.refused += other.refused;
        self.unknown += other.unknown;
        self.skipped += other.skipped;
        self.collections += other.collections;
        self.errors += other.errors;
    }
}

/// Charges `candidates` one after the other. Fails only when the database
/// is unavailable.
fn charge_each(
    store: &Store,
    gateway: &dyn PaymentGateway,
    now: &(impl Fn() -> DateTime<Utc> + Sync),
    as_of: NaiveDate,
    candidates: &[invoices::AutopayCandidate],
    stop: &AtomicBool,
) -> Result<AutopayReport, StoreError> {
    let mut report = AutopayReport::default();
    let mut policies: HashMap<String, RetryPolicy> = HashMap::new();
    for candidate in candidates {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        report.examined += 1;
        match one(
            store,
            gateway,
            now,
            as_of,
            candidate,
            &mut policies,
            &mut report,
        ) {
            Ok(()) => {}
            Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
            Err(error) => {
                report.errors += 1;
                tracing::error!(
                    invoice = %candidate.invoice_id,
                    %error,
                    "cannot charge an invoice by autopay; it is tried again at the next run"
                );
            }
        }
    }
    Ok(report)
}

fn one(
    store: &Store,
    gateway: &dyn PaymentGateway,
    now: &impl Fn() -> DateTime<Utc>,
    as_of: NaiveDate,
    candidate: &invoices::AutopayCandidate,
    policies: &mut HashMap<String, RetryPolicy>,
    report: &mut AutopayReport,
) -> Result<(), StoreError> {
    let (org, customer) = (&candidate.org_id, &candidate.customer_id);
    // Read and recorded with one connection, given back before the
    // gateway is called (the sandbox takes its own from the same pool).
    let pending = {
        let mut conn = store.conn()?;
        let conn: &mut DbConnection = &mut conn;
        let Some(method) = autopay::effective_for_charge(conn, org, customer)? else {
            report.skipped += 1;
            return Ok(());
        };
        let (token, view) = match &method.details {
            MethodDetails::Card { token, view } => (token.clone(), view.clone()),
            MethodDetails::SepaDebit { mandate_id, .. } => {
                let mandate_id = mandate_id.clone();
                return by_direct_debit(conn, now, as_of, candidate, &mandate_id, policies, report);
            }
        };
        let policy = policy_of(conn, org, policies)?;
        let inv = invoices::get(conn, org, &candidate.invoice_id)?;
        let at = now();
        let p = Payment {
            id: ids::new_id("ipy"),
            org_id: org.clone(),
            invoice_id: inv.id.clone(),
            customer_id: customer.clone(),
            amount: guichet_domain::Money::new(inv.amount_due(), inv.currency),
            source: "autopay".to_owned(),
            method: "card".to_owned(),
            status: invoices::PENDING.to_owned(),
            gateway_key: None,
            gateway_charge_id: None,
            failure_code: None,
            request: None,
            details: Some(
                Details {
                    card_token: token,
                    card: view,
                    payment_method_id: Some(method.id.clone()),
                }
                .to_json()?,
            ),
            reference: None,
            paid_on: None,
            created_at: at,
            completed_at: None,
        };
        let recorded = invoices::record_pending_if(conn, p, false, |conn, inv| {
            let (refusals, last) = invoices::autopay_refusals(conn, &inv.id)?;
            Ok(retry_due(policy, refusals, last, as_of))
        })?;
        match recorded {
            Recorded::Written(p) => p,
            Recorded::Pending(_) | Recorded::Refused(_) | Recorded::NotDue => {
                report.skipped += 1;
                return Ok(());
            }
        }
    };
    let key = pending
        .gateway_key
        .clone()
        .ok_or_else(|| StoreError::Database("a pending payment without a key".into()))?;
    let details = Details::of(&pending)?
        .ok_or_else(|| StoreError::Database("an autopay payment without details".into()))?;
    report.presented += 1;
    let outcome = gateway.charge(org, &details.card_token, pending.amount, &key);
    if let Err(error) = &outcome
        && error.is_transient()
    {
        report.unknown += 1;
        tracing::warn!(
            invoice = %pending.invoice_id,
            payment = %pending.id,
            code = error.code(),
            "autopay charge outcome unknown; it is looked up at the next run"
        );
        return Ok(());
    }
    let at = now();
    let settled = invoices::settle(
        &mut *store.conn()?,
        &pending,
        &outcome,
        at,
        Actor::System,
        |conn, inv, paid| crate::invoices::tell_paid(conn, inv, paid, at),
        || {},
    )?;
    match settled {
        Settled::Paid(_) => report.paid += 1,
        Settled::Failed => report.refused += 1,
        Settled::AlreadyDone | Settled::NotApplied => report.skipped += 1,
    }
    Ok(())
}

/// The organization's retry policy, read once per run.
fn policy_of(
    conn: &mut DbConnection,
    org: &str,
    policies: &mut HashMap<String, RetryPolicy>,
) -> Result<RetryPolicy, StoreError> {
    if let Some(p) = policies.get(org) {
        return Ok(*p);
    }
    let p = payment::get(conn, org)?.retry;
    policies.insert(org.to_owned(), p);
    Ok(p)
}

/// Pays the candidate invoice by a direct debit under the signed mandate
/// `mandate_id`: its pending payment and the collection that pays it
/// (`sepa::schedule_for_invoice`) written in one transaction, under the
/// invoice's lock, the retry policy checked there.
fn by_direct_debit(
    conn: &mut DbConnection,
    now: &impl Fn() -> DateTime<Utc>,
    as_of: NaiveDate,
    candidate: &invoices::AutopayCandidate,
    mandate_id: &str,
    policies: &mut HashMap<String, RetryPolicy>,
    report: &mut AutopayReport,
) -> Result<(), StoreError> {
    let org = &candidate.org_id;
    let policy = policy_of(conn, org, policies)?;
    let inv = invoices::get(conn, org, &candidate.invoice_id)?;
    if inv.currency != guichet_domain::Currency::EUR {
        report.skipped += 1;
        tracing::warn!(
            invoice = %inv.id,
            currency = inv.currency.as_str(),
            "autopay through a SEPA mandate collects euros only; the invoice is left open"
        );
        return Ok(());
    }
    let info = crate::sepa::org_info(conn, org)?;
    let at = now();
    let collection_id = guichet_store::repo::collections::new_id();
    let p = Payment {
        id: ids::new_id("ipy"),
        org_id: org.clone(),
        invoice_id: inv.id.clone(),
        customer_id: candidate.customer_id.clone(),
        amount: guichet_domain::Money::new(inv.amount_due(), inv.currency),
        source: "autopay".to_owned(),
        method: invoices::SEPA_DEBIT.to_owned(),
        status: invoices::PENDING.to_owned(),
        gateway_key: None,
        gateway_charge_id: Some(collection_id.clone()),
        failure_code: None,
        request: None,
        details: None,
        reference: None,
        paid_on: None,
        created_at: at,
        completed_at: None,
    };
    let recorded = invoices::record_pending_with(
        conn,
        p,
        false,
        |conn, inv| {
            let (refusals, last) = invoices::autopay_refusals(conn, &inv.id)?;
            Ok(retry_due(policy, refusals, last, as_of))
        },
        |conn, p| {
            crate::sepa::schedule_for_invoice(conn, p, &collection_id, mandate_id, &info, as_of, at)
                .map(|_| ())
        },
    )?;
    match recorded {
        Recorded::Written(_) => report.collections += 1,
        Recorded::Pending(_) | Recorded::Refused(_) | Recorded::NotDue => report.skipped += 1,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn refused_invoices_are_retried_per_the_policy() {
        let policy = RetryPolicy {
            retries: 1,
            delay_days: 3,
        };
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let at = |d: u32| Some(Utc.with_ymd_and_hms(2026, 12, d, 9, 0, 0).unwrap());
        assert!(retry_due(policy, 0, None, day(1)));
        assert!(!retry_due(policy, 1, at(1), day(3)));
        assert!(retry_due(policy, 1, at(1), day(4)));
        assert!(!retry_due(policy, 2, at(4), day(30)));
        let none = RetryPolicy {
            retries: 0,
            delay_days: 3,
        };
        assert!(!retry_due(none, 1, at(1), day(30)));
    }
}
