//! The SEPA step of the debit run: what happens to direct-debit collections
//! on a given date (`as_of`), in this order:
//!
//! 1. **expiry** — signed recurrent mandates not collected for 36 months
//!    (last collection, or signature when never collected, before `as_of`
//!    minus 36 months) become `expired` (`mandate_signatures.expired_at`)
//!    and their scheduled collections are cancelled;
//! 2. **pre-notification** — scheduled collections not yet pre-notified
//!    whose due date minus the creditor's notice (`prenotification_days`) is
//!    on or before `as_of` are announced to the debtor by e-mail and get
//!    `prenotified_at`. A collection whose notice comes too late (due date
//!    closer than the notice period) is postponed to `as_of` + notice
//!    rather than presented without it;
//! 3. **presentation** — scheduled, pre-notified collections due on or
//!    before `as_of` become `presented`; the account's balance is lowered
//!    (entry `collection`; not for a collection paying an invoice by
//!    autopay, see `autopay.rs`) and the mandate's `last_collected_at` set,
//!    in the same transaction;
//! 4. **cover** — every account with a signed recurrent mandate that owes
//!    more than its scheduled collections cover gets a new collection for
//!    the difference (RCUR; FRST when the mandate never collected), due at
//!    `as_of` + notice and pre-notified by e-mail at once, so charges added
//!    after the signature are collected automatically.
//!
//! # Exactly once
//!
//! Every change is a conditional update whose row count says who owns it
//! (`UPDATE ... WHERE id = ? AND status = 'scheduled'` for a presentation,
//! `... AND prenotified_at IS NULL` for a notice, `... AND status =
//! 'signed'` for an expiry), made in one transaction with the balance entry
//! and the e-mail: several runners at once on one PostgreSQL split the work
//! and none is done twice; on SQLite the transactions are serialized
//! (`BEGIN IMMEDIATE`). The cover step locks the account (`FOR UPDATE` on
//! PostgreSQL) and checks balance − covered again before scheduling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Months, NaiveDate, Utc};
use guichet_domain::events::{Actor, EventType};
use guichet_domain::sepa::Iban;
use guichet_domain::sepa::pain008::SequenceType;
use guichet_domain::{Clock, Currency, Money};
use guichet_store::repo::accounts::{self, EntryKind};
use guichet_store::repo::collections::{self, Collection, CoverCandidate, DueCollection};
use guichet_store::repo::events;
use guichet_store::repo::{creditor, customers, organizations};
use guichet_store::snapshots;
use guichet_store::{DbConnection, Store, StoreError};
use serde::Serialize;

use crate::notify::{self, Channel, Template};
use crate::runner::{Ending, Periodic};

/// Months without a collection after which a recurrent mandate expires.
pub const EXPIRY_MONTHS: u32 = 36;

/// The notice when the organization has no creditor settings.
pub const DEFAULT_PRENOTIFICATION_DAYS: u32 = 14;

/// Rows read at once.
const PAGE: i64 = 500;

/// Collections presented in one transaction.
const PRESENT_CHUNK: usize = 50;

/// What a SEPA run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SepaReport {
    /// Collections announced to the debtor by e-mail (including the new
    /// ones of the cover step).
    pub prenotified: u64,
    /// Of those, collections whose notice came late: their due date moved.
    pub postponed: u64,
    /// Collections presented (balance lowered).
    pub presented: u64,
    /// New collections scheduled for what accounts owe beyond what is
    /// already scheduled.
    pub covered: u64,
    /// Mandates expired after 36 months without a collection.
    pub expired_mandates: u64,
    /// Scheduled collections cancelled with their expired mandate.
    pub cancelled: u64,
    /// Items that could not be handled (logged; tried again next run).
    pub errors: u64,
}

impl SepaReport {
    /// Unfinished when an item failed (tried again at the next run).
    pub fn ending(&self) -> Ending {
        if self.errors > 0 {
            Ending::Unfinished
        } else {
            Ending::Done
        }
    }
}

/// One SEPA run's dependencies.
#[derive(Clone)]
pub struct SepaRun {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SepaRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SepaRun")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why one item failed.
#[derive(Debug)]
struct Failure(String);

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(e.to_string())
    }
}

/// The organization's name and notice, read once per run.
#[derive(Debug, Clone)]
pub(crate) struct OrgInfo {
    org_name: String,
    creditor_name: String,
    days: u32,
}

struct Pass {
    as_of: NaiveDate,
    orgs: HashMap<String, OrgInfo>,
    report: SepaReport,
}

impl Pass {
    fn org(&mut self, conn: &mut DbConnection, org_id: &str) -> Result<OrgInfo, Failure> {
        if let Some(info) = self.orgs.get(org_id) {
            return Ok(info.clone());
        }
        let info = org_info(conn, org_id)?;
        self.orgs.insert(org_id.to_owned(), info.clone());
        Ok(info)
    }

    fn fail(&mut self, what: &str, id: &str, error: &Failure) {
        self.report.errors += 1;
        tracing::error!(%id, error = %error.0, "SEPA run: cannot {what}; tried again at the next run");
    }
}

/// The organization's names and notice (its creditor settings, or the
/// defaults).
pub(crate) fn org_info(conn: &mut DbConnection, org_id: &str) -> Result<OrgInfo, StoreError> {
    let org = organizations::get(conn, org_id)?;
    let settings = creditor::get(conn, org_id)?;
    Ok(OrgInfo {
        creditor_name: settings
            .as_ref()
            .map_or_else(|| org.name.clone(), |s| s.name.clone()),
        days: settings
            .as_ref()
            .map_or(DEFAULT_PRENOTIFICATION_DAYS, |s| s.prenotification_days),
        org_name: org.name,
    })
}

/// Schedules the collection `collection_id` that pays the pending direct
/// debit `p` of an invoice under the signed mandate `mandate_id`: due at
/// `as_of` + the creditor's notice, pre-notified by e-mail at once, inside
/// the caller's transaction (the one that wrote `p`). It is then presented
/// in a pain.008 file by the run like any collection, without touching the
/// mandate's account balance, and the bank's answer settles `p`.
pub(crate) fn schedule_for_invoice(
    conn: &mut DbConnection,
    p: &guichet_store::repo::invoices::Payment,
    collection_id: &str,
    mandate_id: &str,
    info: &OrgInfo,
    as_of: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Collection, StoreError> {
    let mandate = guichet_store::repo::mandates::get(conn, &p.org_id, mandate_id)?;
    let sequence = if collections::mandate_has_collections(conn, mandate_id)? {
        SequenceType::Recurrent
    } else {
        SequenceType::First
    };
    let due_date = as_of + chrono::Days::new(u64::from(info.days));
    let mut collection = Collection::scheduled(
        &p.org_id,
        mandate_id,
        &mandate.account_id,
        sequence,
        p.amount.amount,
        due_date,
        Some(now),
        now,
    );
    collection.id = collection_id.to_owned();
    collection.end_to_end_id = collections::end_to_end_id(collection_id);
    collection.invoice = Some(collections::InvoiceLink {
        invoice_id: p.invoice_id.clone(),
        payment_id: p.id.clone(),
    });
    collections::insert(conn, &collection)?;
    queue_prenotice(
        conn,
        &p.org_id,
        info,
        &mandate.customer_id,
        &mandate.email,
        mandate.umr.as_deref(),
        &mandate.iban,
        p.amount.amount,
        due_date,
        now,
    )?;
    Ok(collection)
}

fn masked(iban: &str) -> String {
    Iban::parse(iban).map_or_else(|_| "****".to_owned(), |i| i.masked())
}

fn euros(cents: i64) -> String {
    Money::new(cents, Currency::EUR).to_string()
}

/// E-mails the pre-notification of `collection` (due `due_date`).
#[allow(clippy::too_many_arguments)]
fn queue_prenotice(
    conn: &mut DbConnection,
    org_id: &str,
    info: &OrgInfo,
    customer_id: &str,
    email: &str,
    umr: Option<&str>,
    iban: &str,
    amount: i64,
    due_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let customer = customers::get(conn, org_id, customer_id)?;
    notify::queue(
        conn,
        Some(org_id),
        Channel::Email,
        email,
        &Template::CollectionPrenotice {
            org_name: info.org_name.clone(),
            creditor_name: info.creditor_name.clone(),
            umr: umr.unwrap_or_default().to_owned(),
            masked_iban: masked(iban),
            due_date: due_date.to_string(),
            amount: euros(amount),
        },
        customer.locale,
        now,
    )
}

impl SepaRun {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        SepaRun { store, clock }
    }

    /// One run as of `as_of`. Fails only when the database cannot be
    /// reached; one item's failure is logged, counted in
    /// [`SepaReport::errors`] and tried again at the next run.
    pub fn run(&self, as_of: NaiveDate) -> Result<SepaReport, String> {
        let mut pass = Pass {
            as_of,
            orgs: HashMap::new(),
            report: SepaReport::default(),
        };
        let mut conn = self
            .store
            .conn()
            .map_err(|e| format!("SEPA run: no database connection: {e}"))?;
        self.expire(&mut conn, &mut pass).map_err(|e| e.0)?;
        self.prenotify(&mut conn, &mut pass).map_err(|e| e.0)?;
        self.present(&mut conn, &mut pass).map_err(|e| e.0)?;
        self.cover(&mut conn, &mut pass).map_err(|e| e.0)?;
        Ok(pass.report)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn expire(&self, conn: &mut DbConnection, pass: &mut Pass) -> Result<(), Failure> {
        let Some(limit_date) = pass.as_of.checked_sub_months(Months::new(EXPIRY_MONTHS)) else {
            return Ok(());
        };
        let before = limit_date.and_time(chrono::NaiveTime::MIN);
        loop {
            let found = collections::to_expire(conn, before, PAGE)?;
            if found.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            for (mandate_id, _org_id) in found {
                let now = self.now();
                match guichet_store::transaction(conn, |conn| {
                    collections::expire_mandate(conn, &mandate_id, now)
                }) {
                    Ok(Some(cancelled)) => {
                        progressed = true;
                        pass.report.expired_mandates += 1;
                        pass.report.cancelled += cancelled as u64;
                        tracing::info!(mandate = %mandate_id, cancelled, "mandate expired");
                    }
                    Ok(None) => progressed = true,
                    Err(e) => pass.fail("expire a mandate", &mandate_id, &e.into()),
                }
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    fn prenotify(&self, conn: &mut DbConnection, pass: &mut Pass) -> Result<(), Failure> {
        let until = pass.as_of + chrono::Days::new(u64::from(creditor_days_max()));
        let mut after: Option<String> = None;
        loop {
            let page = collections::to_prenotify(conn, until, after.as_deref(), PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.collection.id.clone());
            for due in page {
                if let Err(e) = self.prenotify_one(conn, pass, &due) {
                    pass.fail("pre-notify a collection", &due.collection.id, &e);
                }
            }
        }
    }

    fn prenotify_one(
        &self,
        conn: &mut DbConnection,
        pass: &mut Pass,
        due: &DueCollection,
    ) -> Result<(), Failure> {
        let c = &due.collection;
        let info = pass.org(conn, &c.org_id)?;
        let notice = chrono::Days::new(u64::from(info.days));
        let earliest = pass.as_of + notice;
        if c.due_date - notice > pass.as_of {
            return Ok(()); // not yet
        }
        // Sent now, the notice covers a due date from as_of + days on: a
        // due date closer than that is moved.
        let due_date = c.due_date.max(earliest);
        let now = self.now();
        let done = guichet_store::transaction(conn, |conn| {
            if !collections::mark_prenotified(conn, &c.id, due_date, now)? {
                return Ok::<_, StoreError>(false);
            }
            queue_prenotice(
                conn,
                &c.org_id,
                &info,
                &due.customer_id,
                &due.email,
                due.umr.as_deref(),
                &due.iban,
                c.amount,
                due_date,
                now,
            )?;
            Ok(true)
        })?;
        if done {
            pass.report.prenotified += 1;
            if due_date != c.due_date {
                pass.report.postponed += 1;
                tracing::info!(collection = %c.id, from = %c.due_date, to = %due_date,
                    "collection postponed: its pre-notification came late");
            }
        }
        Ok(())
    }

    fn present(&self, conn: &mut DbConnection, pass: &mut Pass) -> Result<(), Failure> {
        let mut after: Option<String> = None;
        loop {
            let page = collections::to_present(conn, pass.as_of, after.as_deref(), PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id.clone());
            let mut page = page;
            // One lock order for every runner (account, then mandate), so
            // that transactions of several collections never deadlock.
            page.sort_by(|a, b| {
                (&a.account_id, &a.mandate_id, &a.id).cmp(&(&b.account_id, &b.mandate_id, &b.id))
            });
            for chunk in page.chunks(PRESENT_CHUNK) {
                let now = self.now();
                match guichet_store::transaction(conn, |conn| {
                    let mut presented = 0;
                    for c in chunk {
                        if present_one(conn, c, now)? {
                            presented += 1;
                        }
                    }
                    Ok::<_, StoreError>(presented)
                }) {
                    Ok(presented) => pass.report.presented += presented,
                    Err(_) => {
                        // One by one, to present all but the faulty one.
                        for c in chunk {
                            match guichet_store::transaction(conn, |conn| {
                                present_one(conn, c, self.now())
                            }) {
                                Ok(true) => pass.report.presented += 1,
                                Ok(false) => {}
                                Err(e) => pass.fail("present a collection", &c.id, &e.into()),
                            }
                        }
                    }
                }
            }
        }
    }

    fn cover(&self, conn: &mut DbConnection, pass: &mut Pass) -> Result<(), Failure> {
        let mut after: Option<String> = None;
        loop {
            let page = collections::to_cover(conn, after.as_deref(), PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.mandate_id.clone());
            for candidate in page {
                match self.cover_one(conn, pass, &candidate) {
                    Ok(true) => {
                        pass.report.covered += 1;
                        pass.report.prenotified += 1;
                    }
                    Ok(false) => {}
                    Err(e) => pass.fail("cover an account", &candidate.account_id, &e),
                }
            }
        }
    }

    /// Schedules a collection for what the account owes beyond what is
    /// scheduled; `false` when nothing is left (another runner did it).
    fn cover_one(
        &self,
        conn: &mut DbConnection,
        pass: &mut Pass,
        m: &CoverCandidate,
    ) -> Result<bool, Failure> {
        let info = pass.org(conn, &m.org_id)?;
        let due_date = pass.as_of + chrono::Days::new(u64::from(info.days));
        let now = self.now();
        Ok(guichet_store::transaction(conn, |conn| {
            accounts::lock(conn, &m.org_id, &m.account_id)?;
            let owed = collections::balance(conn, &m.account_id)?
                - collections::scheduled_sum(conn, &m.account_id)?;
            if owed <= 0 {
                return Ok::<_, StoreError>(false);
            }
            let sequence = if collections::mandate_has_collections(conn, &m.mandate_id)? {
                SequenceType::Recurrent
            } else {
                SequenceType::First
            };
            let collection = Collection::scheduled(
                &m.org_id,
                &m.mandate_id,
                &m.account_id,
                sequence,
                owed,
                due_date,
                Some(now),
                now,
            );
            collections::insert(conn, &collection)?;
            queue_prenotice(
                conn,
                &m.org_id,
                &info,
                &m.customer_id,
                &m.email,
                m.umr.as_deref(),
                &m.iban,
                owed,
                due_date,
                now,
            )?;
            Ok(true)
        })?)
    }

    /// Runs every `interval` on a thread (the first run at once), with
    /// `as_of` = the clock's today, until [`Periodic::stop`] (after the run
    /// in progress).
    pub fn spawn(self, interval: Duration) -> Periodic {
        Periodic::spawn("sepa-run", interval, move |_stop| {
            let as_of = self.clock.today();
            match self.run(as_of) {
                Ok(report) if report != SepaReport::default() => {
                    tracing::info!(%as_of, ?report, "SEPA run");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "SEPA run failed"),
            }
        })
    }
}

/// Presents one collection inside the caller's transaction: claims it,
/// lowers the balance (unless it pays an invoice), notes the mandate's use. `false` when another runner
/// owns it.
fn present_one(
    conn: &mut DbConnection,
    c: &Collection,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !collections::claim_presented(conn, &c.id, now)? {
        return Ok(false);
    }
    // A collection paying an invoice is not the account's debt.
    if c.invoice.is_none() {
        accounts::add_entry(
            conn,
            &c.account_id,
            &c.org_id,
            EntryKind::Collection,
            -c.amount,
            &format!("Prélèvement SEPA {}", c.end_to_end_id),
            Some(&c.id),
            now,
        )?;
    }
    collections::mark_mandate_collected(conn, &c.mandate_id, now)?;
    let presented = collections::get(conn, &c.org_id, &c.id)?;
    events::emit(
        conn,
        EventType::CollectionPresented,
        &c.org_id,
        &c.id,
        None,
        Actor::System,
        &snapshots::collection(&presented),
        now,
    )?;
    Ok(true)
}

/// The longest notice a creditor may set: collections due within it may
/// need their notice now.
fn creditor_days_max() -> u32 {
    14
}
