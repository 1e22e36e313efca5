//! Instalment schedules ("échéanciers"): how an order's total is split into
//! monthly debits, how a partial or total cancellation readjusts them, how an
//! unpaid debt is regularized, and what a failed debit leads to.
//!
//! Everything is pure: dates and instants are passed in, nothing reads the
//! clock, so each rule can be tested with fixed dates.
//!
//! # Invariant
//!
//! For a schedule built with [`Schedule::new`] and changed only through its
//! methods and [`record_debit_result`]:
//!
//! ```text
//! paid + pending + unpaid − refunded == remaining_total
//! ```
//!
//! where `paid`, `pending` and `unpaid` sum the instalments of that status,
//! `refunded` sums the refunds of the adjustments and `remaining_total` is the
//! order total minus every cancelled amount. Cancelled instalments count for
//! nothing (they keep their amount only for display).

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::money::{Currency, Money};
use crate::secret::to_hex;

/// Fewest instalments in a schedule (a single payment is not a schedule).
pub const MIN_INSTALMENTS: u32 = 2;
/// Most instalments in a schedule (the lender's longest offer is 12 months).
pub const MAX_INSTALMENTS: u32 = 12;

/// Where one instalment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentStatus {
    /// Not debited yet (possibly waiting for a retry, see
    /// [`Instalment::next_attempt_on`]). Shown as "en cours".
    Pending,
    /// Debited successfully, or settled by a regularization. "Réglé".
    Paid,
    /// Every debit attempt failed: the customer owes it and must regularize.
    /// "Impayé".
    Unpaid,
    /// No longer owed: removed by a cancellation or replaced by a
    /// regularization plan. "Supprimé".
    Cancelled,
}

impl InstalmentStatus {
    /// The stable snake_case name (API and storage).
    pub fn as_str(self) -> &'static str {
        match self {
            InstalmentStatus::Pending => "pending",
            InstalmentStatus::Paid => "paid",
            InstalmentStatus::Unpaid => "unpaid",
            InstalmentStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a name written by [`InstalmentStatus::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(InstalmentStatus::Pending),
            "paid" => Some(InstalmentStatus::Paid),
            "unpaid" => Some(InstalmentStatus::Unpaid),
            "cancelled" => Some(InstalmentStatus::Cancelled),
            _ => None,
        }
    }
}

/// Where a whole schedule stands; derived from its instalments and
/// adjustments by [`Schedule::status`], never stored on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    /// Debits remain to be made and none is unpaid.
    InProgress,
    /// Nothing is left to pay ("soldé").
    Completed,
    /// At least one instalment is unpaid: the customer must regularize.
    Unpaid,
    /// The order was cancelled in full.
    Cancelled,
}

impl ScheduleStatus {
    /// The stable snake_case name, as used by the `status` filter.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::InProgress => "in_progress",
            ScheduleStatus::Completed => "completed",
            ScheduleStatus::Unpaid => "unpaid",
            ScheduleStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a name written by [`ScheduleStatus::as_str`] (e.g. a query
    /// string filter).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "in_progress" => Some(ScheduleStatus::InProgress),
            "completed" => Some(ScheduleStatus::Completed),
            "unpaid" => Some(ScheduleStatus::Unpaid),
            "cancelled" => Some(ScheduleStatus::Cancelled),
            _ => None,
        }
    }
}

/// One scheduled debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    /// 1-based position; numbers only grow (a regularization appends new
    /// numbers after the existing ones), so they identify an instalment
    /// within its schedule.
    pub number: u32,
    /// The date the debit is presented.
    pub due_date: NaiveDate,
    /// What is debited. A cancellation may lower it (to zero at most).
    pub amount: Money,
    /// Where it stands.
    pub status: InstalmentStatus,
    /// When it was paid, for [`InstalmentStatus::Paid`].
    pub paid_at: Option<DateTime<Utc>>,
    /// Debit attempts made so far (successful or not).
    pub attempts: u32,
    /// After a failed attempt, the date of the retry; `None` otherwise.
    pub next_attempt_on: Option<NaiveDate>,
}

impl Instalment {
    /// A fresh pending instalment that has not been presented yet.
    pub fn pending(number: u32, due_date: NaiveDate, amount: Money) -> Self {
        Self {
            number,
            due_date,
            amount,
            status: InstalmentStatus::Pending,
            paid_at: None,
            attempts: 0,
            next_attempt_on: None,
        }
    }

    /// The date the next debit attempt will be presented: the retry date if
    /// one is set, else the due date. `None` unless pending.
    pub fn next_debit_on(&self) -> Option<NaiveDate> {
        (self.status == InstalmentStatus::Pending)
            .then(|| self.next_attempt_on.unwrap_or(self.due_date))
    }

    /// Whether a debit run on `today` must present this instalment.
    pub fn is_due(&self, today: NaiveDate) -> bool {
        self.next_debit_on().is_some_and(|date| date <= today)
    }
}

/// What an [`Adjustment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// Part of the order was cancelled; the remaining total went down.
    PartialCancellation,
    /// The rest of the order was cancelled; nothing is owed any more.
    TotalCancellation,
    /// The unpaid amount was settled, at once or by a new 2- or 3-payment
    /// plan.
    Regularization,
}

impl AdjustmentKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentKind::PartialCancellation => "partial_cancellation",
            AdjustmentKind::TotalCancellation => "total_cancellation",
            AdjustmentKind::Regularization => "regularization",
        }
    }

    /// Reads a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "partial_cancellation" => Some(AdjustmentKind::PartialCancellation),
            "total_cancellation" => Some(AdjustmentKind::TotalCancellation),
            "regularization" => Some(AdjustmentKind::Regularization),
            _ => None,
        }
    }
}

/// A change made to a schedule after it was created. Every adjustment is
/// kept, in order, and shown to the customer ("réajustement").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// What happened.
    pub kind: AdjustmentKind,
    /// The cancelled amount, or for a regularization the unpaid amount that
    /// was settled.
    pub amount: Money,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The amount to pay back to the customer because they had already paid
    /// more than the new total; `None` when nothing is to be refunded.
    pub refund: Option<Money>,
}

/// Why a schedule operation was refused. [`ScheduleError::code`] gives a
/// stable machine-readable code for API error bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A schedule has 2 to 12 instalments.
    #[error("a schedule has {MIN_INSTALMENTS} to {MAX_INSTALMENTS} instalments, not {count}")]
    InvalidInstalmentCount {
        /// The count asked for.
        count: usize,
    },
    /// The order total must be positive.
    #[error("the total must be positive")]
    TotalNotPositive,
    /// Every instalment must be positive (an equal split of a total smaller
    /// than the number of instalments would give zero cents).
    #[error("every instalment must be positive")]
    InstalmentNotPositive,
    /// Due dates must be strictly increasing.
    #[error("due dates must be strictly increasing")]
    DatesNotIncreasing,
    /// The instalments must add up to the total exactly.
    #[error("instalments sum to {actual} minor units instead of {expected}")]
    SumMismatch {
        /// The total, in minor units.
        expected: i64,
        /// The instalments' sum, in minor units.
        actual: i64,
    },
    /// Amounts in another currency than the schedule's.
    #[error("amounts must be in the schedule's currency")]
    CurrencyMismatch,
    /// A computed date or sum is out of range.
    #[error("date or amount out of range")]
    OutOfRange,
    /// A cancellation amount must be positive.
    #[error("the cancelled amount must be positive")]
    CancellationNotPositive,
    /// More than what is left of the order cannot be cancelled.
    #[error("cannot cancel more than the remaining {remaining}")]
    CancellationExceedsRemaining {
        /// What is left to cancel.
        remaining: Money,
    },
    /// The order is already cancelled in full.
    #[error("the schedule is already cancelled")]
    AlreadyCancelled,
    /// Regularization needs an unpaid amount.
    #[error("nothing is unpaid")]
    NothingUnpaid,
    /// The offer is not one of today's offers for the current unpaid amount
    /// (stale, or tampered with).
    #[error("this regularization offer is no longer valid")]
    OfferMismatch,
    /// A debit result was recorded for an instalment that is not pending.
    #[error("the instalment is not pending")]
    InstalmentNotPending,
}

impl ScheduleError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::InvalidInstalmentCount { .. } => "invalid_instalment_count",
            ScheduleError::TotalNotPositive => "total_not_positive",
            ScheduleError::InstalmentNotPositive => "instalment_not_positive",
            ScheduleError::DatesNotIncreasing => "due_dates_not_increasing",
            ScheduleError::SumMismatch { .. } => "instalments_sum_mismatch",
            ScheduleError::CurrencyMismatch => "currency_mismatch",
            ScheduleError::OutOfRange => "out_of_range",
            ScheduleError::CancellationNotPositive => "cancellation_amount_not_positive",
            ScheduleError::CancellationExceedsRemaining { .. } => "cancellation_exceeds_remaining",
            ScheduleError::AlreadyCancelled => "schedule_already_cancelled",
            ScheduleError::NothingUnpaid => "nothing_unpaid",
            ScheduleError::OfferMismatch => "regularization_offer_mismatch",
            ScheduleError::InstalmentNotPending => "instalment_not_pending",
        }
    }
}

/// The date `months` months after `first`, on the same day of the month,
/// clamped to the last day of shorter months: from January 31 this gives
/// February 28 (29 in leap years), then March 31. Always computed from
/// `first`, never from the previous date, so a clamp does not stick.
pub fn monthly_date(first: NaiveDate, months: u32) -> Option<NaiveDate> {
    first.checked_add_months(Months::new(months))
}

/// An equal monthly split of `total` into `count` instalments (2 to 12), the
/// first due on `first_due` and the others on the same day of the following
/// months (see [`monthly_date`]). The amounts sum exactly to `total`; the
/// remainder cents go to the first instalments, one each.
pub fn plan_equal(
    total: Money,
    count: u32,
    first_due: NaiveDate,
) -> Result<Vec<(NaiveDate, Money)>, ScheduleError> {
    if !(MIN_INSTALMENTS..=MAX_INSTALMENTS).contains(&count) {
        return Err(ScheduleError::InvalidInstalmentCount {
            count: count as usize,
        });
    }
    if total.amount <= 0 {
        return Err(ScheduleError::TotalNotPositive);
    }
    let amounts = total
        .split(count)
        .map_err(|_| ScheduleError::InvalidInstalmentCount {
            count: count as usize,
        })?;
    if amounts.iter().any(|m| m.amount <= 0) {
        return Err(ScheduleError::InstalmentNotPositive);
    }
    amounts
        .into_iter()
        .zip(0..)
        .map(|(amount, k)| {
            monthly_date(first_due, k)
                .map(|date| (date, amount))
                .ok_or(ScheduleError::OutOfRange)
        })
        .collect()
}

/// Checks an explicit plan of `(due date, amount)` pairs against `total`:
/// 2 to 12 instalments, strictly increasing dates, positive amounts in the
/// total's currency, summing exactly to `total`. Returns the plan unchanged.
pub fn plan_explicit(
    total: Money,
    plan: Vec<(NaiveDate, Money)>,
) -> Result<Vec<(NaiveDate, Money)>, ScheduleError> {
    let count_ok =
        u32::try_from(plan.len()).is_ok_and(|n| (MIN_INSTALMENTS..=MAX_INSTALMENTS).contains(&n));
    if !count_ok {
        return Err(ScheduleError::InvalidInstalmentCount { count: plan.len() });
    }
    if total.amount <= 0 {
        return Err(ScheduleError::TotalNotPositive);
    }
    if plan.iter().any(|(_, m)| m.currency != total.currency) {
        return Err(ScheduleError::CurrencyMismatch);
    }
    if plan.iter().any(|(_, m)| m.amount <= 0) {
        return Err(ScheduleError::InstalmentNotPositive);
    }
    if plan.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ScheduleError::DatesNotIncreasing);
    }
    let sum = plan
        .iter()
        .try_fold(0_i64, |acc, (_, m)| acc.checked_add(m.amount))
        .ok_or(ScheduleError::OutOfRange)?;
    if sum != total.amount {
        return Err(ScheduleError::SumMismatch {
            expected: total.amount,
            actual: sum,
        });
    }
    Ok(plan)
}

/// An order's payment schedule: its total, its instalments (in creation
/// order) and the history of adjustments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The order total at purchase; cancellations do not change it (see
    /// [`Schedule::remaining_total`]).
    pub total: Money,
    /// Every instalment, including cancelled ones, numbered from 1.
    pub instalments: Vec<Instalment>,
    /// Every adjustment, oldest first.
    pub adjustments: Vec<Adjustment>,
}

impl Schedule {
    /// A new schedule from a plan made by [`plan_equal`] or
    /// [`plan_explicit`] (checked again here), every instalment pending.
    pub fn new(total: Money, plan: Vec<(NaiveDate, Money)>) -> Result<Self, ScheduleError> {
        let plan = plan_explicit(total, plan)?;
        let instalments = plan
            .into_iter()
            .zip(1..)
            .map(|((date, amount), number)| Instalment::pending(number, date, amount))
            .collect();
        Ok(Self {
            total,
            instalments,
            adjustments: Vec::new(),
        })
    }

    /// The status, derived in this order: any unpaid instalment → `Unpaid`;
    /// a total cancellation recorded, or every instalment cancelled →
    /// `Cancelled`; nothing pending → `Completed`; otherwise `InProgress`.
    ///
    /// Unpaid comes first because it is what the customer must act on. A
    /// totally cancelled order stays `Cancelled` even though some of its
    /// instalments keep the `Paid` status (they were paid, then refunded).
    pub fn status(&self) -> ScheduleStatus {
        let has = |status| self.instalments.iter().any(|i| i.status == status);
        if has(InstalmentStatus::Unpaid) {
            ScheduleStatus::Unpaid
        } else if self
            .adjustments
            .iter()
            .any(|a| a.kind == AdjustmentKind::TotalCancellation)
            || self
                .instalments
                .iter()
                .all(|i| i.status == InstalmentStatus::Cancelled)
        {
            ScheduleStatus::Cancelled
        } else if has(InstalmentStatus::Pending) {
            ScheduleStatus::InProgress
        } else {
            ScheduleStatus::Completed
        }
    }

    fn currency(&self) -> Currency {
        self.total.currency
    }

    fn sum_of(&self, status: InstalmentStatus) -> Money {
        let amount = self
            .instalments
            .iter()
            .filter(|i| i.status == status)
            .fold(0_i64, |acc, i| acc.saturating_add(i.amount.amount));
        Money::new(amount, self.currency())
    }

    /// The sum of the paid instalments (including those later refunded).
    pub fn paid_amount(&self) -> Money {
        self.sum_of(InstalmentStatus::Paid)
    }

    /// The sum of the unpaid instalments: the debt to regularize.
    pub fn unpaid_amount(&self) -> Money {
        self.sum_of(InstalmentStatus::Unpaid)
    }

    /// The sum of the pending instalments: what is still to be debited.
    pub fn pending_amount(&self) -> Money {
        self.sum_of(InstalmentStatus::Pending)
    }

    /// The sum of every refund recorded in the adjustments.
    pub fn refunded_amount(&self) -> Money {
        let amount = self
            .adjustments
            .iter()
            .filter_map(|a| a.refund)
            .fold(0_i64, |acc, m| acc.saturating_add(m.amount));
        Money::new(amount, self.currency())
    }

    /// The order total minus everything cancelled so far: what the customer
    /// owes in all (paid or not) for the order as it now stands.
    pub fn remaining_total(&self) -> Money {
        let cancelled = self
            .adjustments
            .iter()
            .filter(|a| {
                matches!(
                    a.kind,
                    AdjustmentKind::PartialCancellation | AdjustmentKind::TotalCancellation
                )
            })
            .fold(0_i64, |acc, a| acc.saturating_add(a.amount.amount));
        Money::new(self.total.amount.saturating_sub(cancelled), self.currency())
    }

    /// The latest date a pending instalment will be debited (its retry date
    /// if one is set): the card must still be valid then.
    pub fn last_pending_due(&self) -> Option<NaiveDate> {
        self.instalments
            .iter()
            .filter_map(Instalment::next_debit_on)
            .max()
    }

    /// The date of the next debit (a retry date if one is set): the notice
    /// period of a card change is counted up to it. May be in the past when
    /// the debit run has not presented an instalment yet.
    pub fn next_pending_due(&self) -> Option<NaiveDate> {
        self.instalments
            .iter()
            .filter_map(Instalment::next_debit_on)
            .min()
    }

    /// The numbers of the instalments a debit run on `today` must present:
    /// pending ones whose due (or retry) date has come, earliest first. An
    /// unpaid schedule's later instalments are still presented.
    pub fn due_for_debit(&self, today: NaiveDate) -> Vec<u32> {
        let mut due: Vec<&Instalment> = self
            .instalments
            .iter()
            .filter(|i| i.is_due(today))
            .collect();
        due.sort_by_key(|i| (i.next_debit_on(), i.number));
        due.into_iter().map(|i| i.number).collect()
    }

    /// The instalment with this number.
    pub fn instalment(&self, number: u32) -> Option<&Instalment> {
        self.instalments.iter().find(|i| i.number == number)
    }

    /// The instalment with this number, to record a debit result on it.
    pub fn instalment_mut(&mut self, number: u32) -> Option<&mut Instalment> {
        self.instalments.iter_mut().find(|i| i.number == number)
    }

    /// Cancels `amount` of the order ("réajustement en cas d'annulation
    /// partielle ou totale"), records and returns the adjustment.
    ///
    /// - `amount` must be positive, in the schedule's currency, and at most
    ///   [`Schedule::remaining_total`]; cancelling exactly what remains is a
    ///   total cancellation.
    /// - What is still owed is reduced starting from the last instalment:
    ///   pending instalments first (latest due date first), then, if the
    ///   cancellation exceeds them, unpaid ones (latest first) — a cancelled
    ///   purchase is no longer a debt. An instalment reduced to zero becomes
    ///   `Cancelled`.
    /// - If what was paid exceeds the new total, the difference (less what
    ///   was already refunded) is refunded: `refund = max(0, paid −
    ///   refunded − new_total)`. A total cancellation thus cancels every
    ///   pending and unpaid instalment and refunds everything paid.
    pub fn cancel(
        &mut self,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Adjustment, ScheduleError> {
        if amount.currency != self.currency() {
            return Err(ScheduleError::CurrencyMismatch);
        }
        if amount.amount <= 0 {
            return Err(ScheduleError::CancellationNotPositive);
        }
        let remaining = self.remaining_total();
        if remaining.amount <= 0 || self.status() == ScheduleStatus::Cancelled {
            return Err(ScheduleError::AlreadyCancelled);
        }
        if amount.amount > remaining.amount {
            return Err(ScheduleError::CancellationExceedsRemaining { remaining });
        }
        let new_total = remaining.amount - amount.amount;

        // Pending first, then unpaid; within each, the last due date first.
        let mut order: Vec<usize> = (0..self.instalments.len())
            .filter(|&k| {
                matches!(
                    self.instalments[k].status,
                    InstalmentStatus::Pending | InstalmentStatus::Unpaid
                )
            })
            .collect();
        order.sort_by_key(|&k| {
            let i = &self.instalments[k];
            (i.status == InstalmentStatus::Pending, i.due_date, i.number)
        });
        let mut left = amount.amount;
        for k in order.into_iter().rev() {
            if left == 0 {
                break;
            }
            let instalment = &mut self.instalments[k];
            let cut = left.min(instalment.amount.amount);
            instalment.amount.amount -= cut;
            left -= cut;
            if instalment.amount.amount == 0 {
                instalment.status = InstalmentStatus::Cancelled;
                instalment.next_attempt_on = None;
            }
        }

        let refund = self
            .paid_amount()
            .amount
            .saturating_sub(self.refunded_amount().amount)
            .saturating_sub(new_total);
        let adjustment = Adjustment {
            kind: if new_total == 0 {
                AdjustmentKind::TotalCancellation
            } else {
                AdjustmentKind::PartialCancellation
            },
            amount,
            at: now,
            refund: (refund > 0).then(|| Money::new(refund, self.currency())),
        };
        self.adjustments.push(adjustment.clone());
        Ok(adjustment)
    }

    /// Settles the unpaid instalments with `offer`, whose first payment has
    /// just been charged successfully at `paid_at`; records and returns the
    /// adjustment (kind `Regularization`, amount = the unpaid amount).
    ///
    /// `offer` must be one of [`offers`]`(self.unpaid_amount(), offered_on)`,
    /// `offered_on` being the day the customer chose it (the charge may be
    /// settled later, by a retry or the reconciliation job): a stale or
    /// altered offer, or a debt that changed since, is refused with
    /// [`ScheduleError::OfferMismatch`], so the amounts and dates applied are
    /// always the ones computed by the rules.
    ///
    /// - One payment ("au comptant"): every unpaid instalment becomes `Paid`
    ///   at `paid_at` — the debt is settled as it stood.
    /// - Two or three payments: the unpaid instalments become `Cancelled`
    ///   ("supprimé", replaced) and the offer's parts are appended as new
    ///   instalments, numbered after the last existing one: the first `Paid`
    ///   at `paid_at` (one attempt), the others `Pending` on their dates. The
    ///   old instalments keep their amounts for display; the adjustment tells
    ///   the customer they were rescheduled.
    ///
    /// Afterwards nothing is unpaid, so the schedule is `InProgress` or
    /// `Completed`.
    pub fn apply_regularization(
        &mut self,
        offer: &Offer,
        offered_on: NaiveDate,
        paid_at: DateTime<Utc>,
    ) -> Result<Adjustment, ScheduleError> {
        let unpaid = self.unpaid_amount();
        if unpaid.amount <= 0 {
            return Err(ScheduleError::NothingUnpaid);
        }
        if !offers(unpaid, offered_on).contains(offer) {
            return Err(ScheduleError::OfferMismatch);
        }
        if offer.payments == 1 {
            for instalment in &mut self.instalments {
                if instalment.status == InstalmentStatus::Unpaid {
                    instalment.status = InstalmentStatus::Paid;
                    instalment.paid_at = Some(paid_at);
                    instalment.next_attempt_on = None;
                }
            }
        } else {
            for instalment in &mut self.instalments {
                if instalment.status == InstalmentStatus::Unpaid {
                    instalment.status = InstalmentStatus::Cancelled;
                    instalment.next_attempt_on = None;
                }
            }
            let mut number = self.instalments.iter().map(|i| i.number).max().unwrap_or(0);
            for (k, (date, amount)) in offer.parts.iter().enumerate() {
                number += 1;
                let mut instalment = Instalment::pending(number, *date, *amount);
                if k == 0 {
                    instalment.status = InstalmentStatus::Paid;
                    instalment.paid_at = Some(paid_at);
                    instalment.attempts = 1;
                }
                self.instalments.push(instalment);
            }
        }
        let adjustment = Adjustment {
            kind: AdjustmentKind::Regularization,
            amount: unpaid,
            at: paid_at,
            refund: None,
        };
        self.adjustments.push(adjustment.clone());
        Ok(adjustment)
    }
}

/// One way to pay an unpaid debt: at once, or in 2 or 3 monthly payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// How many payments: 1, 2 or 3.
    pub payments: u8,
    /// Each payment's date and amount; the first is charged at once.
    pub parts: Vec<(NaiveDate, Money)>,
}

impl Offer {
    /// The amount charged immediately when the offer is chosen.
    pub fn first_payment(&self) -> Option<Money> {
        self.parts.first().map(|(_, m)| *m)
    }
}

/// The regularization offers for an `unpaid` debt on `today`, in the order
/// shown: pay it all today ("au comptant"), then in 2 and in 3 payments.
/// Split offers put the remainder cents on the first payments; the first is
/// today, the others on the same day of the following months (clamped to
/// month end like [`plan_equal`]). An offer that would contain a zero
/// payment (a debt of 1 or 2 cents) is left out; no debt, no offers.
pub fn offers(unpaid: Money, today: NaiveDate) -> Vec<Offer> {
    if unpaid.amount <= 0 {
        return Vec::new();
    }
    (1_u8..=3)
        .filter_map(|payments| {
            let amounts = unpaid.split(u32::from(payments)).ok()?;
            if amounts.iter().any(|m| m.amount <= 0) {
                return None;
            }
            let parts = amounts
                .into_iter()
                .zip(0..)
                .map(|(amount, k)| monthly_date(today, k).map(|date| (date, amount)))
                .collect::<Option<Vec<_>>>()?;
            Some(Offer { payments, parts })
        })
        .collect()
}

/// How failed debits are retried (an organization setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// How many retries after the first failed attempt.
    pub retries: u32,
    /// Days between a failed attempt and its retry.
    pub delay_days: u32,
}

impl Default for RetryPolicy {
    /// One retry, three days later.
    fn default() -> Self {
        Self {
            retries: 1,
            delay_days: 3,
        }
    }
}

/// What a debit attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebitOutcome {
    /// The instalment is paid.
    Paid,
    /// The attempt failed; it will be presented again on this date.
    RetryOn(NaiveDate),
    /// The attempt failed and no retry is left: the instalment is unpaid
    /// (and so is the schedule).
    Unpaid,
}

/// Records the result of a debit attempt on a pending `instalment` made at
/// `at` (its UTC date is "today" for the retry date).
///
/// The attempt counter goes up. Success → `Paid` at `at`. Failure → if fewer
/// than `policy.retries` retries were made so far, the instalment stays
/// pending with a retry `policy.delay_days` later; otherwise it becomes
/// `Unpaid`. With the default policy: fail on day D → retry on D+3 → fail →
/// unpaid.
pub fn record_debit_result(
    instalment: &mut Instalment,
    success: bool,
    at: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Result<DebitOutcome, ScheduleError> {
    if instalment.status != InstalmentStatus::Pending {
        return Err(ScheduleError::InstalmentNotPending);
    }
    instalment.attempts = instalment.attempts.saturating_add(1);
    if success {
        instalment.status = InstalmentStatus::Paid;
        instalment.paid_at = Some(at);
        instalment.next_attempt_on = None;
        return Ok(DebitOutcome::Paid);
    }
    let retries_made = instalment.attempts - 1;
    if retries_made < policy.retries {
        let retry_on = at
            .date_naive()
            .checked_add_days(Days::new(u64::from(policy.delay_days)))
            .ok_or(ScheduleError::OutOfRange)?;
        instalment.next_attempt_on = Some(retry_on);
        Ok(DebitOutcome::RetryOn(retry_on))
    } else {
        instalment.status = InstalmentStatus::Unpaid;
        instalment.next_attempt_on = None;
        Ok(DebitOutcome::Unpaid)
    }
}

/// The idempotency key of a charge: lower-case hex SHA-256 (64 characters)
/// of the instalment's id and the attempt number (1-based: pass
/// `instalment.attempts + 1` before charging).
///
/// The same attempt always gets the same key, so a charge call retried after
/// a timeout or a crash is recognized by the gateway and never charges twice;
/// the next attempt (a policy retry) gets a new key. The id is
/// length-prefixed so no two (id, attempt) pairs share an input.
pub fn idempotency_key(instalment_id: &str, attempt: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"guichet-debit-v1\0");
    hasher.update((instalment_id.len() as u64).to_be_bytes());
    hasher.update(instalment_id.as_bytes());
    hasher.update(attempt.to_be_bytes());
    to_hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap()
    }

    fn amounts(schedule: &Schedule) -> Vec<i64> {
        schedule
            .instalments
            .iter()
            .map(|i| i.amount.amount)
            .collect()
    }

    fn statuses(schedule: &Schedule) -> Vec<InstalmentStatus> {
        schedule.instalments.iter().map(|i| i.status).collect()
    }

    /// paid + pending + unpaid − refunded == remaining_total
    fn assert_invariant(s: &Schedule) {
        assert_eq!(
            s.paid_amount().amount + s.pending_amount().amount + s.unpaid_amount().amount
                - s.refunded_amount().amount,
            s.remaining_total().amount,
            "{s:#?}"
        );
    }

    fn pay(s: &mut Schedule, number: u32, when: DateTime<Utc>) {
        let i = s.instalment_mut(number).unwrap();
        record_debit_result(i, true, when, &RetryPolicy::default()).unwrap();
    }

    fn make_unpaid(s: &mut Schedule, number: u32) {
        let policy = RetryPolicy {
            retries: 0,
            delay_days: 3,
        };
        let i = s.instalment_mut(number).unwrap();
        let outcome = record_debit_result(i, false, at(2026, 1, 1, 6), &policy).unwrap();
        assert_eq!(outcome, DebitOutcome::Unpaid);
    }

    /// 300.00 EUR in 3, due Jan 15, Feb 15, Mar 15 2026.
    fn three_by_100() -> Schedule {
        Schedule::new(
            eur(30_000),
            plan_equal(eur(30_000), 3, date(2026, 1, 15)).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn plan_equal_puts_remainder_cents_on_the_first_instalments() {
        let plan = plan_equal(eur(10_000), 3, date(2026, 3, 10)).unwrap();
        assert_eq!(
            plan,
            vec![
                (date(2026, 3, 10), eur(3334)),
                (date(2026, 4, 10), eur(3333)),
                (date(2026, 5, 10), eur(3333)),
            ]
        );
        let plan = plan_equal(eur(1_003), 4, date(2026, 3, 10)).unwrap();
        let cents: Vec<i64> = plan.iter().map(|(_, m)| m.amount).collect();
        assert_eq!(cents, [251, 251, 251, 250]);
        for total in [2_i64, 12, 13, 999, 12_345, 1_000_003] {
            for count in 2..=12 {
                let Ok(plan) = plan_equal(eur(total), count, date(2026, 1, 31)) else {
                    assert!(total < i64::from(count));
                    continue;
                };
                assert_eq!(plan.len(), count as usize);
                assert_eq!(plan.iter().map(|(_, m)| m.amount).sum::<i64>(), total);
                assert!(plan.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }

    #[test]
    fn plan_equal_clamps_to_month_end_from_the_first_date() {
        let dates: Vec<NaiveDate> = plan_equal(eur(60_000), 6, date(2026, 1, 31))
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            dates,
            [
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31), // not the 28th: computed from Jan 31
                date(2026, 4, 30),
                date(2026, 5, 31),
                date(2026, 6, 30),
            ]
        );
        // Leap year, and a year boundary.
        let dates: Vec<NaiveDate> = plan_equal(eur(40_000), 4, date(2027, 11, 30))
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            dates,
            [
                date(2027, 11, 30),
                date(2027, 12, 30),
                date(2028, 1, 30),
                date(2028, 2, 29),
            ]
        );
        assert_eq!(monthly_date(date(2028, 1, 31), 1), Some(date(2028, 2, 29)));
        assert_eq!(monthly_date(date(2026, 8, 31), 12), Some(date(2027, 8, 31)));
    }

    #[test]
    fn plan_equal_refuses_bad_counts_and_totals() {
        let first = date(2026, 1, 1);
        for count in [0, 1, 13, 100] {
            let err = plan_equal(eur(10_000), count, first).unwrap_err();
            assert_eq!(err.code(), "invalid_instalment_count");
        }
        assert_eq!(
            plan_equal(eur(0), 3, first),
            Err(ScheduleError::TotalNotPositive)
        );
        assert_eq!(
            plan_equal(eur(-300), 3, first),
            Err(ScheduleError::TotalNotPositive)
        );
        // Two cents cannot make three positive instalments.
        assert_eq!(
            plan_equal(eur(2), 3, first),
            Err(ScheduleError::InstalmentNotPositive)
        );
        assert!(plan_equal(eur(3), 3, first).is_ok());
        assert!(plan_equal(eur(1_200), 12, first).is_ok());
    }

    #[test]
    fn plan_explicit_checks_dates_amounts_count_and_sum() {
        let total = eur(10_000);
        let ok = vec![
            (date(2026, 1, 5), eur(2_000)),
            (date(2026, 1, 20), eur(8_000)),
        ];
        assert_eq!(plan_explicit(total, ok.clone()), Ok(ok));

        let err = |plan| plan_explicit(total, plan).unwrap_err().code();
        assert_eq!(
            err(vec![(date(2026, 1, 5), eur(10_000))]),
            "invalid_instalment_count"
        );
        let thirteen = (1..=13).map(|d| (date(2026, 1, d), eur(1))).collect();
        assert_eq!(err(thirteen), "invalid_instalment_count");
        assert_eq!(
            err(vec![
                (date(2026, 1, 5), eur(5_000)),
                (date(2026, 1, 5), eur(5_000))
            ]),
            "due_dates_not_increasing"
        );
        assert_eq!(
            err(vec![
                (date(2026, 2, 5), eur(5_000)),
                (date(2026, 1, 5), eur(5_000))
            ]),
            "due_dates_not_increasing"
        );
        assert_eq!(
            err(vec![
                (date(2026, 1, 5), eur(0)),
                (date(2026, 2, 5), eur(10_000))
            ]),
            "instalment_not_positive"
        );
        assert_eq!(
            err(vec![
                (date(2026, 1, 5), eur(-1)),
                (date(2026, 2, 5), eur(10_001))
            ]),
            "instalment_not_positive"
        );
        assert_eq!(
            plan_explicit(
                total,
                vec![
                    (date(2026, 1, 5), eur(5_000)),
                    (date(2026, 2, 5), eur(4_999))
                ]
            ),
            Err(ScheduleError::SumMismatch {
                expected: 10_000,
                actual: 9_999
            })
        );
        let chf = Money::new(5_000, Currency::parse("CHF").unwrap());
        assert_eq!(
            err(vec![
                (date(2026, 1, 5), eur(5_000)),
                (date(2026, 2, 5), chf)
            ]),
            "currency_mismatch"
        );
        assert_eq!(
            plan_explicit(
                eur(0),
                vec![(date(2026, 1, 5), eur(0)), (date(2026, 2, 5), eur(0))]
            ),
            Err(ScheduleError::TotalNotPositive)
        );
    }

    #[test]
    fn new_schedule_is_numbered_pending_and_in_progress() {
        let s = three_by_100();
        assert_eq!(
            s.instalments.iter().map(|i| i.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            s.instalments
                .iter()
                .all(|i| i.status == InstalmentStatus::Pending
                    && i.attempts == 0
                    && i.paid_at.is_none())
        );
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_eq!(s.next_pending_due(), Some(date(2026, 1, 15)));
        assert_eq!(s.last_pending_due(), Some(date(2026, 3, 15)));
        assert_eq!(s.unpaid_amount(), eur(0));
        assert_eq!(s.remaining_total(), eur(30_000));
        assert_invariant(&s);
    }

    #[test]
    fn status_is_derived_in_the_documented_order() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_eq!(s.next_pending_due(), Some(date(2026, 2, 15)));
        make_unpaid(&mut s, 2);
        assert_eq!(s.status(), ScheduleStatus::Unpaid);
        assert_eq!(s.unpaid_amount(), eur(10_000));
        pay(&mut s, 3, at(2026, 3, 15, 6));
        // Unpaid wins although nothing is pending.
        assert_eq!(s.status(), ScheduleStatus::Unpaid);
        assert_eq!(s.next_pending_due(), None);
        assert_eq!(s.last_pending_due(), None);

        let mut s = three_by_100();
        for n in 1..=3 {
            pay(&mut s, n, at(2026, 1, 15, 6));
        }
        assert_eq!(s.status(), ScheduleStatus::Completed);

        for (status, name) in [
            (ScheduleStatus::InProgress, "in_progress"),
            (ScheduleStatus::Completed, "completed"),
            (ScheduleStatus::Unpaid, "unpaid"),
            (ScheduleStatus::Cancelled, "cancelled"),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(ScheduleStatus::parse(name), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), name);
        }
        assert_eq!(ScheduleStatus::parse("paid"), None);
        for status in [
            InstalmentStatus::Pending,
            InstalmentStatus::Paid,
            InstalmentStatus::Unpaid,
            InstalmentStatus::Cancelled,
        ] {
            assert_eq!(InstalmentStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn partial_cancellation_reduces_pending_from_the_last_instalment() {
        let mut s = three_by_100();
        let adj = s.cancel(eur(15_000), at(2026, 1, 5, 10)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::PartialCancellation);
        assert_eq!(adj.amount, eur(15_000));
        assert_eq!(adj.refund, None);
        // The last instalment goes to zero and is cancelled, the second loses 50.
        assert_eq!(amounts(&s), [10_000, 5_000, 0]);
        assert_eq!(
            statuses(&s),
            [
                InstalmentStatus::Pending,
                InstalmentStatus::Pending,
                InstalmentStatus::Cancelled
            ]
        );
        assert_eq!(s.remaining_total(), eur(15_000));
        assert_eq!(s.last_pending_due(), Some(date(2026, 2, 15)));
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_eq!(s.adjustments, vec![adj]);
        assert_invariant(&s);
    }

    #[test]
    fn partial_cancellation_beyond_what_is_pending_refunds_the_difference() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        pay(&mut s, 2, at(2026, 2, 15, 6));
        // Paid 200, pending 100; cancel 150 → new total 150 → refund 50.
        let adj = s.cancel(eur(15_000), at(2026, 2, 20, 10)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::PartialCancellation);
        assert_eq!(adj.refund, Some(eur(5_000)));
        assert_eq!(amounts(&s), [10_000, 10_000, 0]);
        assert_eq!(
            statuses(&s),
            [
                InstalmentStatus::Paid,
                InstalmentStatus::Paid,
                InstalmentStatus::Cancelled
            ]
        );
        assert_eq!(s.status(), ScheduleStatus::Completed);
        assert_invariant(&s);

        // Cancelling the rest refunds the other 150, not 200 again.
        let adj = s.cancel(eur(15_000), at(2026, 2, 21, 10)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::TotalCancellation);
        assert_eq!(adj.refund, Some(eur(15_000)));
        assert_eq!(s.refunded_amount(), eur(20_000));
        assert_eq!(s.status(), ScheduleStatus::Cancelled);
        assert_eq!(s.adjustments.len(), 2);
        assert_invariant(&s);
    }

    #[test]
    fn total_cancellation_cancels_every_pending_instalment_and_refunds_the_paid() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        let adj = s.cancel(eur(30_000), at(2026, 1, 20, 10)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::TotalCancellation);
        assert_eq!(adj.refund, Some(eur(10_000)));
        assert_eq!(
            statuses(&s),
            [
                InstalmentStatus::Paid,
                InstalmentStatus::Cancelled,
                InstalmentStatus::Cancelled
            ]
        );
        assert_eq!(s.status(), ScheduleStatus::Cancelled);
        assert_eq!(s.remaining_total(), eur(0));
        assert_eq!(s.next_pending_due(), None);
        assert_invariant(&s);
        assert_eq!(
            s.cancel(eur(1), at(2026, 1, 21, 10)),
            Err(ScheduleError::AlreadyCancelled)
        );

        // Before anything was paid: nothing to refund, all cancelled.
        let mut s = three_by_100();
        let adj = s.cancel(eur(30_000), at(2026, 1, 2, 10)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::TotalCancellation);
        assert_eq!(adj.refund, None);
        assert!(
            s.instalments
                .iter()
                .all(|i| i.status == InstalmentStatus::Cancelled && i.amount.amount == 0)
        );
        assert_eq!(s.status(), ScheduleStatus::Cancelled);
    }

    #[test]
    fn successive_partial_cancellations_equal_to_the_rest_become_total() {
        let mut s = three_by_100();
        s.cancel(eur(10_000), at(2026, 1, 2, 10)).unwrap();
        assert_eq!(
            s.cancel(eur(20_001), at(2026, 1, 2, 11)),
            Err(ScheduleError::CancellationExceedsRemaining {
                remaining: eur(20_000)
            })
        );
        let adj = s.cancel(eur(20_000), at(2026, 1, 2, 12)).unwrap();
        assert_eq!(adj.kind, AdjustmentKind::TotalCancellation);
        assert_eq!(s.status(), ScheduleStatus::Cancelled);
    }

    #[test]
    fn cancellation_amount_is_checked() {
        let mut s = three_by_100();
        let now = at(2026, 1, 2, 10);
        assert_eq!(
            s.cancel(eur(0), now),
            Err(ScheduleError::CancellationNotPositive)
        );
        assert_eq!(
            s.cancel(eur(-5), now),
            Err(ScheduleError::CancellationNotPositive)
        );
        let err = s.cancel(eur(30_001), now).unwrap_err();
        assert_eq!(err.code(), "cancellation_exceeds_remaining");
        let chf = Money::new(100, Currency::parse("CHF").unwrap());
        assert_eq!(s.cancel(chf, now), Err(ScheduleError::CurrencyMismatch));
        assert!(s.adjustments.is_empty());
        assert_eq!(amounts(&s), [10_000, 10_000, 10_000]);
    }

    #[test]
    fn cancellation_reaches_unpaid_instalments_after_pending_ones() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        make_unpaid(&mut s, 2);
        // Pending 100 (n°3) goes first, then 20 off the unpaid n°2.
        let adj = s.cancel(eur(12_000), at(2026, 2, 20, 10)).unwrap();
        assert_eq!(adj.refund, None);
        assert_eq!(amounts(&s), [10_000, 8_000, 0]);
        assert_eq!(s.unpaid_amount(), eur(8_000));
        assert_eq!(s.status(), ScheduleStatus::Unpaid);
        assert_invariant(&s);
    }

    #[test]
    fn offers_have_exact_amounts_and_monthly_dates() {
        let today = date(2026, 1, 31);
        let list = offers(eur(10_000), today);
        assert_eq!(
            list,
            vec![
                Offer {
                    payments: 1,
                    parts: vec![(today, eur(10_000))]
                },
                Offer {
                    payments: 2,
                    parts: vec![(today, eur(5_000)), (date(2026, 2, 28), eur(5_000))]
                },
                Offer {
                    payments: 3,
                    parts: vec![
                        (today, eur(3_334)),
                        (date(2026, 2, 28), eur(3_333)),
                        (date(2026, 3, 31), eur(3_333))
                    ]
                },
            ]
        );
        assert_eq!(list[2].first_payment(), Some(eur(3_334)));
        let odd = offers(eur(10_001), date(2026, 5, 10));
        assert_eq!(odd[1].parts[0].1, eur(5_001));
        assert_eq!(odd[1].parts[1], (date(2026, 6, 10), eur(5_000)));
        assert_eq!(
            odd[2]
                .parts
                .iter()
                .map(|(_, m)| m.amount)
                .collect::<Vec<_>>(),
            [3_334, 3_334, 3_333]
        );
        // Tiny debts: only the offers without a zero payment.
        assert_eq!(offers(eur(2), today).len(), 2);
        assert_eq!(offers(eur(1), today).len(), 1);
        assert!(offers(eur(0), today).is_empty());
    }

    #[test]
    fn regularization_in_one_payment_marks_the_unpaid_instalments_paid() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        make_unpaid(&mut s, 2);
        let paid_at = at(2026, 2, 25, 14);
        let offer = offers(s.unpaid_amount(), paid_at.date_naive())
            .into_iter()
            .find(|o| o.payments == 1)
            .unwrap();
        let adj = s
            .apply_regularization(&offer, paid_at.date_naive(), paid_at)
            .unwrap();
        assert_eq!(adj.kind, AdjustmentKind::Regularization);
        assert_eq!(adj.amount, eur(10_000));
        assert_eq!(adj.refund, None);
        let second = s.instalment(2).unwrap();
        assert_eq!(second.status, InstalmentStatus::Paid);
        assert_eq!(second.paid_at, Some(paid_at));
        assert_eq!(s.instalments.len(), 3);
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_invariant(&s);
        assert_eq!(
            s.apply_regularization(&offer, paid_at.date_naive(), paid_at),
            Err(ScheduleError::NothingUnpaid)
        );
    }

    #[test]
    fn regularization_in_three_payments_replaces_the_unpaid_instalments() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        make_unpaid(&mut s, 2);
        make_unpaid(&mut s, 3);
        assert_eq!(s.unpaid_amount(), eur(20_000));
        let paid_at = at(2026, 3, 31, 9);
        let offer = offers(s.unpaid_amount(), paid_at.date_naive())
            .into_iter()
            .find(|o| o.payments == 3)
            .unwrap();
        s.apply_regularization(&offer, paid_at.date_naive(), paid_at)
            .unwrap();
        assert_eq!(
            statuses(&s),
            [
                InstalmentStatus::Paid,
                InstalmentStatus::Cancelled,
                InstalmentStatus::Cancelled,
                InstalmentStatus::Paid,
                InstalmentStatus::Pending,
                InstalmentStatus::Pending,
            ]
        );
        let new: Vec<(u32, NaiveDate, i64)> = s.instalments[3..]
            .iter()
            .map(|i| (i.number, i.due_date, i.amount.amount))
            .collect();
        assert_eq!(
            new,
            [
                (4, date(2026, 3, 31), 6_667),
                (5, date(2026, 4, 30), 6_667),
                (6, date(2026, 5, 31), 6_666),
            ]
        );
        assert_eq!(s.instalments[3].paid_at, Some(paid_at));
        assert_eq!(s.instalments[3].attempts, 1);
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_eq!(s.unpaid_amount(), eur(0));
        assert_eq!(s.next_pending_due(), Some(date(2026, 4, 30)));
        assert_eq!(s.adjustments.len(), 1);
        assert_invariant(&s);

        // The plan then runs like any other.
        pay(&mut s, 5, at(2026, 4, 30, 6));
        pay(&mut s, 6, at(2026, 5, 31, 6));
        assert_eq!(s.status(), ScheduleStatus::Completed);
        assert_invariant(&s);
    }

    #[test]
    fn regularization_refuses_stale_or_altered_offers() {
        let mut s = three_by_100();
        make_unpaid(&mut s, 1);
        let paid_at = at(2026, 1, 20, 9);
        let yesterday = offers(s.unpaid_amount(), date(2026, 1, 19));
        assert_eq!(
            s.apply_regularization(&yesterday[1], paid_at.date_naive(), paid_at),
            Err(ScheduleError::OfferMismatch)
        );
        let mut altered = offers(s.unpaid_amount(), paid_at.date_naive()).remove(1);
        altered.parts[0].1 = eur(1);
        assert_eq!(
            s.apply_regularization(&altered, paid_at.date_naive(), paid_at)
                .unwrap_err()
                .code(),
            "regularization_offer_mismatch"
        );
        assert_eq!(s.status(), ScheduleStatus::Unpaid);
        assert!(s.adjustments.is_empty());
        // With two payments, completing the plan completes the schedule.
        let two = offers(s.unpaid_amount(), paid_at.date_naive()).remove(1);
        s.apply_regularization(&two, paid_at.date_naive(), paid_at)
            .unwrap();
        assert_eq!(s.instalments.len(), 5);
        assert_eq!(s.instalment(5).unwrap().due_date, date(2026, 2, 20));
        assert_invariant(&s);
    }

    #[test]
    fn default_retry_policy_retries_once_three_days_later_then_unpaid() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy,
            RetryPolicy {
                retries: 1,
                delay_days: 3
            }
        );
        let mut s = three_by_100();
        assert_eq!(s.due_for_debit(date(2026, 1, 14)), Vec::<u32>::new());
        assert_eq!(s.due_for_debit(date(2026, 1, 15)), [1]);
        let i = s.instalment_mut(1).unwrap();
        let outcome = record_debit_result(i, false, at(2026, 1, 15, 6), &policy).unwrap();
        assert_eq!(outcome, DebitOutcome::RetryOn(date(2026, 1, 18)));
        assert_eq!(i.status, InstalmentStatus::Pending);
        assert_eq!(i.attempts, 1);
        assert!(!i.is_due(date(2026, 1, 17)));
        assert!(i.is_due(date(2026, 1, 18)));
        assert_eq!(s.status(), ScheduleStatus::InProgress);
        assert_eq!(s.next_pending_due(), Some(date(2026, 1, 18)));
        assert_eq!(s.due_for_debit(date(2026, 1, 17)), Vec::<u32>::new());

        let i = s.instalment_mut(1).unwrap();
        let outcome = record_debit_result(i, false, at(2026, 1, 18, 6), &policy).unwrap();
        assert_eq!(outcome, DebitOutcome::Unpaid);
        assert_eq!(i.status, InstalmentStatus::Unpaid);
        assert_eq!(i.attempts, 2);
        assert_eq!(i.next_attempt_on, None);
        assert_eq!(s.status(), ScheduleStatus::Unpaid);
        let i = s.instalment_mut(1).unwrap();
        assert_eq!(
            record_debit_result(i, true, at(2026, 1, 19, 6), &policy),
            Err(ScheduleError::InstalmentNotPending)
        );
    }

    #[test]
    fn retry_then_success_pays_and_other_policies_apply() {
        let policy = RetryPolicy::default();
        let mut s = three_by_100();
        let i = s.instalment_mut(1).unwrap();
        record_debit_result(i, false, at(2026, 1, 15, 6), &policy).unwrap();
        let outcome = record_debit_result(i, true, at(2026, 1, 18, 6), &policy).unwrap();
        assert_eq!(outcome, DebitOutcome::Paid);
        assert_eq!(i.paid_at, Some(at(2026, 1, 18, 6)));
        assert_eq!(i.next_attempt_on, None);
        assert_eq!(i.attempts, 2);

        let two_retries = RetryPolicy {
            retries: 2,
            delay_days: 5,
        };
        let mut i = Instalment::pending(1, date(2026, 1, 29), eur(100));
        let r =
            |i: &mut Instalment, d| record_debit_result(i, false, at(2026, 1, d, 6), &two_retries);
        assert_eq!(
            r(&mut i, 29).unwrap(),
            DebitOutcome::RetryOn(date(2026, 2, 3))
        );
        assert_eq!(
            r(&mut i, 31).unwrap(),
            DebitOutcome::RetryOn(date(2026, 2, 5))
        );
        assert_eq!(r(&mut i, 31).unwrap(), DebitOutcome::Unpaid);

        let no_retry = RetryPolicy {
            retries: 0,
            delay_days: 3,
        };
        let mut i = Instalment::pending(1, date(2026, 1, 29), eur(100));
        assert_eq!(
            record_debit_result(&mut i, false, at(2026, 1, 29, 6), &no_retry).unwrap(),
            DebitOutcome::Unpaid
        );
    }

    #[test]
    fn due_for_debit_lists_overdue_and_retry_instalments_earliest_first() {
        let mut s = three_by_100();
        let policy = RetryPolicy::default();
        let i = s.instalment_mut(1).unwrap();
        record_debit_result(i, false, at(2026, 2, 14, 6), &policy).unwrap(); // retry Feb 17
        assert_eq!(s.due_for_debit(date(2026, 2, 15)), [2]);
        assert_eq!(s.due_for_debit(date(2026, 3, 20)), [2, 1, 3]);
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let k = idempotency_key("ins_abc", 1);
        assert_eq!(k.len(), 64);
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(k, idempotency_key("ins_abc", 1));
        assert_ne!(k, idempotency_key("ins_abc", 2));
        assert_ne!(k, idempotency_key("ins_abd", 1));
        assert_ne!(idempotency_key("a1", 2), idempotency_key("a", 12));
    }

    #[test]
    fn schedule_round_trips_through_json() {
        let mut s = three_by_100();
        pay(&mut s, 1, at(2026, 1, 15, 6));
        s.cancel(eur(500), at(2026, 1, 16, 6)).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["instalments"][0]["status"], "paid");
        assert_eq!(json["adjustments"][0]["kind"], "partial_cancellation");
        let back: Schedule = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
