//! The payment card behind a schedule, as Guichet may know it (brand, last
//! four digits, expiry, funding — never the number or the security code),
//! and the rules for changing it ("Modifier") or for regularizing instead.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::schedule::{Schedule, ScheduleStatus};

/// A card network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Any other network (Discover, JCB, ...).
    Other,
}

impl CardBrand {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Other => "other",
        }
    }

    /// Reads a name written by [`CardBrand::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "visa" => Some(CardBrand::Visa),
            "mastercard" => Some(CardBrand::Mastercard),
            "amex" => Some(CardBrand::Amex),
            "other" => Some(CardBrand::Other),
            _ => None,
        }
    }

    /// The brand of a card number from its leading digits (IIN ranges):
    /// Visa `4`; Mastercard `51`–`55` and `2221`–`2720`; Amex `34`, `37`;
    /// anything else is `Other`. Expects digits only.
    pub fn from_number(digits: &str) -> Self {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        if digits.starts_with('4') {
            CardBrand::Visa
        } else if prefix(2).is_some_and(|p| (51..=55).contains(&p))
            || prefix(4).is_some_and(|p| (2221..=2720).contains(&p))
        {
            CardBrand::Mastercard
        } else if prefix(2).is_some_and(|p| p == 34 || p == 37) {
            CardBrand::Amex
        } else {
            CardBrand::Other
        }
    }
}

/// Where a card's money comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// A credit (or deferred debit) card.
    Credit,
    /// A debit card.
    Debit,
    /// A prepaid card.
    Prepaid,
}

impl Funding {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Funding::Credit => "credit",
            Funding::Debit => "debit",
            Funding::Prepaid => "prepaid",
        }
    }

    /// Reads a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "credit" => Some(Funding::Credit),
            "debit" => Some(Funding::Debit),
            "prepaid" => Some(Funding::Prepaid),
            _ => None,
        }
    }
}

/// The last day a card with this printed expiry can be used: cards are
/// valid through the end of their expiry month. `None` for an impossible
/// month (not 1–12).
pub fn card_expiry(exp_month: u8, exp_year: u16) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(i32::from(exp_year), u32::from(exp_month), 1)?;
    let next_month = first.checked_add_months(chrono::Months::new(1))?;
    next_month.pred_opt()
}

/// What Guichet shows and keeps of a card: enough to recognize it, never
/// enough to use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardView {
    /// The network.
    pub brand: CardBrand,
    /// The last four digits of the number.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u8,
    /// Expiry year, four digits.
    pub exp_year: u16,
    /// Credit, debit or prepaid.
    pub funding: Funding,
}

impl CardView {
    /// The last day the card is valid (the last day of its expiry month);
    /// `None` if the month is impossible.
    pub fn expires_on(&self) -> Option<NaiveDate> {
        card_expiry(self.exp_month, self.exp_year)
    }

    /// Whether the card can no longer be used on `today` (an impossible
    /// expiry counts as expired).
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        self.expires_on().is_none_or(|last| last < today)
    }
}

/// The notice period of a card change when the organization sets none: the
/// change must be made at least 7 days before the next debit.
pub const DEFAULT_NOTICE_DAYS: u32 = 7;

/// The brands accepted when the organization sets none: Visa and Mastercard.
pub const DEFAULT_ACCEPTED_BRANDS: [CardBrand; 2] = [CardBrand::Visa, CardBrand::Mastercard];

/// The organization's card-change settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardChangePolicy {
    /// Brands a new card may have.
    pub accepted_brands: Vec<CardBrand>,
    /// Days of notice before the next debit (see [`check_card_change`]).
    pub notice_days: u32,
}

impl Default for CardChangePolicy {
    /// Visa and Mastercard, 7 days' notice.
    fn default() -> Self {
        Self {
            accepted_brands: DEFAULT_ACCEPTED_BRANDS.to_vec(),
            notice_days: DEFAULT_NOTICE_DAYS,
        }
    }
}

/// Why a card change was refused; each has its own [`code`](Self::code) so
/// the customer is told exactly what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardChangeRefusal {
    /// The schedule is completed or cancelled: no debit is left to pay with
    /// a card.
    #[error("this schedule has nothing left to pay")]
    NothingToPay,
    /// The schedule is unpaid: the customer must regularize first.
    #[error("the schedule is unpaid: regularize it instead")]
    ScheduleUnpaid,
    /// The next debit is too close: it has already been sent for
    /// collection ("prélèvement déjà programmé").
    #[error(
        "a debit is already scheduled on {next_due}: changes must be made {notice_days} days before"
    )]
    NextDebitTooClose {
        /// The date of the next debit.
        next_due: NaiveDate,
        /// The organization's notice period, in days.
        notice_days: u32,
    },
    /// The card's network is not accepted by the organization.
    #[error("this card brand is not accepted")]
    BrandNotAccepted,
    /// The card is already expired.
    #[error("the card has expired")]
    CardExpired,
    /// The card expires before the last scheduled debit.
    #[error("the card expires before the last debit on {last_due}")]
    ExpiresBeforeLastInstalment {
        /// The date of the last pending debit.
        last_due: NaiveDate,
    },
}

impl CardChangeRefusal {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            CardChangeRefusal::NothingToPay => "schedule_closed",
            CardChangeRefusal::ScheduleUnpaid => "schedule_unpaid",
            CardChangeRefusal::NextDebitTooClose { .. } => "debit_already_scheduled",
            CardChangeRefusal::BrandNotAccepted => "card_brand_not_accepted",
            CardChangeRefusal::CardExpired => "card_expired",
            CardChangeRefusal::ExpiresBeforeLastInstalment { .. } => {
                "card_expires_before_last_instalment"
            }
        }
    }
}

/// Whether `new_card` may replace the card of `schedule` on `today`.
///
/// Checks, in this order (the first failure is returned):
///
/// 1. the schedule is still running — completed or cancelled →
///    [`NothingToPay`](CardChangeRefusal::NothingToPay);
/// 2. it is not unpaid → [`ScheduleUnpaid`](CardChangeRefusal::ScheduleUnpaid)
///    ("Régulariser" replaces "Modifier");
/// 3. the change is made at least `notice_days` days before the next debit:
///    refused when `next_debit − today < notice_days`, so with 7 days a
///    change exactly 7 days before is accepted and 6 days before is refused
///    → [`NextDebitTooClose`](CardChangeRefusal::NextDebitTooClose);
/// 4. the brand is in `accepted` →
///    [`BrandNotAccepted`](CardChangeRefusal::BrandNotAccepted);
/// 5. the card is not already expired →
///    [`CardExpired`](CardChangeRefusal::CardExpired);
/// 6. the card is valid (through the end of its expiry month) on the last
///    pending debit's date →
///    [`ExpiresBeforeLastInstalment`](CardChangeRefusal::ExpiresBeforeLastInstalment).
///
/// The schedule's state comes first because no card could pass then; the
/// expired check comes before the last-debit check because an expired card
/// always also expires before the last debit, and "expired" is the more
/// useful message.
pub fn check_card_change(
    schedule: &Schedule,
    new_card: &CardView,
    accepted: &[CardBrand],
    notice_days: u32,
    today: NaiveDate,
) -> Result<(), CardChangeRefusal> {
    match schedule.status() {
        ScheduleStatus::Completed | ScheduleStatus::Cancelled => {
            return Err(CardChangeRefusal::NothingToPay);
        }
        ScheduleStatus::Unpaid => return Err(CardChangeRefusal::ScheduleUnpaid),
        ScheduleStatus::InProgress => {}
    }
    let (Some(next_due), Some(last_due)) =
        (schedule.next_pending_due(), schedule.last_pending_due())
    else {
        return Err(CardChangeRefusal::NothingToPay);
    };
    let days_before = next_due.num_days_from_ce() - today.num_days_from_ce();
    if i64::from(days_before) < i64::from(notice_days) {
        return Err(CardChangeRefusal::NextDebitTooClose {
            next_due,
            notice_days,
        });
    }
    if !accepted.contains(&new_card.brand) {
        return Err(CardChangeRefusal::BrandNotAccepted);
    }
    if new_card.is_expired(today) {
        return Err(CardChangeRefusal::CardExpired);
    }
    if new_card
        .expires_on()
        .is_none_or(|last_valid| last_valid < last_due)
    {
        return Err(CardChangeRefusal::ExpiresBeforeLastInstalment { last_due });
    }
    Ok(())
}

/// The action the customer can take on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// "Modifier": replace the card.
    ChangeCard,
    /// "Régulariser": pay the unpaid amount.
    Regularize,
}

impl Action {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ChangeCard => "change_card",
            Action::Regularize => "regularize",
        }
    }
}

/// The action offered on `schedule`: `Regularize` when it is unpaid (it
/// replaces the card change), `ChangeCard` while it is in progress, nothing
/// once completed or cancelled.
///
/// Like the lender's space, "Modifier" stays offered during the notice
/// period: the attempt is then refused with `debit_already_scheduled`,
/// which tells the customer why and when to come back, where a hidden button
/// would not.
pub fn available_action(schedule: &Schedule) -> Option<Action> {
    match schedule.status() {
        ScheduleStatus::Unpaid => Some(Action::Regularize),
        ScheduleStatus::InProgress => Some(Action::ChangeCard),
        ScheduleStatus::Completed | ScheduleStatus::Cancelled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::schedule::{RetryPolicy, plan_equal, record_debit_result};
    use chrono::{TimeZone, Utc};

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// 3 × 100 EUR due Mar 15, Apr 15, May 15 2026.
    fn schedule() -> Schedule {
        Schedule::new(
            eur(30_000),
            plan_equal(eur(30_000), 3, date(2026, 3, 15)).unwrap(),
        )
        .unwrap()
    }

    fn card(brand: CardBrand, exp_month: u8, exp_year: u16) -> CardView {
        CardView {
            brand,
            last4: "4242".into(),
            exp_month,
            exp_year,
            funding: Funding::Credit,
        }
    }

    fn visa() -> CardView {
        card(CardBrand::Visa, 12, 2030)
    }

    fn check(s: &Schedule, c: &CardView, today: NaiveDate) -> Result<(), CardChangeRefusal> {
        check_card_change(s, c, &DEFAULT_ACCEPTED_BRANDS, DEFAULT_NOTICE_DAYS, today)
    }

    fn fail_for_good(s: &mut Schedule, number: u32) {
        let none = RetryPolicy {
            retries: 0,
            delay_days: 3,
        };
        let at = Utc.with_ymd_and_hms(2026, 3, 15, 6, 0, 0).single().unwrap();
        record_debit_result(s.instalment_mut(number).unwrap(), false, at, &none).unwrap();
    }

    #[test]
    fn brands_are_detected_from_the_number() {
        assert_eq!(CardBrand::from_number("4242424242424242"), CardBrand::Visa);
        assert_eq!(
            CardBrand::from_number("5555555555554444"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_number("2223003122003222"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_number("2720990000000007"),
            CardBrand::Mastercard
        );
        assert_eq!(CardBrand::from_number("378282246310005"), CardBrand::Amex);
        assert_eq!(CardBrand::from_number("341111111111111"), CardBrand::Amex);
        assert_eq!(CardBrand::from_number("6011111111111117"), CardBrand::Other);
        assert_eq!(CardBrand::from_number("2721000000000000"), CardBrand::Other);
        assert_eq!(CardBrand::from_number(""), CardBrand::Other);
        for brand in [
            CardBrand::Visa,
            CardBrand::Mastercard,
            CardBrand::Amex,
            CardBrand::Other,
        ] {
            assert_eq!(CardBrand::parse(brand.as_str()), Some(brand));
            assert_eq!(serde_json::to_value(brand).unwrap(), brand.as_str());
        }
        assert_eq!(serde_json::to_value(Funding::Debit).unwrap(), "debit");
    }

    #[test]
    fn a_card_is_valid_through_the_end_of_its_expiry_month() {
        assert_eq!(card_expiry(2, 2028), Some(date(2028, 2, 29)));
        assert_eq!(card_expiry(12, 2026), Some(date(2026, 12, 31)));
        assert_eq!(card_expiry(0, 2026), None);
        assert_eq!(card_expiry(13, 2026), None);
        let c = card(CardBrand::Visa, 4, 2026);
        assert!(!c.is_expired(date(2026, 4, 30)));
        assert!(c.is_expired(date(2026, 5, 1)));
        assert!(card(CardBrand::Visa, 13, 2026).is_expired(date(2000, 1, 1)));
    }

    #[test]
    fn a_valid_change_is_accepted() {
        assert_eq!(check(&schedule(), &visa(), date(2026, 3, 1)), Ok(()));
        let mc = card(CardBrand::Mastercard, 5, 2026); // valid through May 31
        assert_eq!(check(&schedule(), &mc, date(2026, 3, 1)), Ok(()));
    }

    #[test]
    fn notice_period_boundary_seven_days_allowed_six_refused() {
        let s = schedule();
        // Next debit on March 15.
        assert_eq!(check(&s, &visa(), date(2026, 3, 8)), Ok(()));
        let refusal = check(&s, &visa(), date(2026, 3, 9)).unwrap_err();
        assert_eq!(
            refusal,
            CardChangeRefusal::NextDebitTooClose {
                next_due: date(2026, 3, 15),
                notice_days: 7
            }
        );
        assert_eq!(refusal.code(), "debit_already_scheduled");
        assert!(check(&s, &visa(), date(2026, 3, 15)).is_err());
        // An overdue instalment not presented yet is "too close" as well.
        assert!(check(&s, &visa(), date(2026, 3, 20)).is_err());
        // With no notice, the day of the debit itself is allowed.
        assert_eq!(
            check_card_change(&s, &visa(), &DEFAULT_ACCEPTED_BRANDS, 0, date(2026, 3, 15)),
            Ok(())
        );
    }

    #[test]
    fn each_refusal_has_its_code() {
        let s = schedule();
        let today = date(2026, 3, 1);
        let amex = card(CardBrand::Amex, 12, 2030);
        let refusal = check(&s, &amex, today).unwrap_err();
        assert_eq!(refusal, CardChangeRefusal::BrandNotAccepted);
        assert_eq!(refusal.code(), "card_brand_not_accepted");
        let other = card(CardBrand::Other, 12, 2030);
        assert_eq!(
            check(&s, &other, today),
            Err(CardChangeRefusal::BrandNotAccepted)
        );
        // An organization may accept Amex.
        let all = [CardBrand::Visa, CardBrand::Mastercard, CardBrand::Amex];
        assert_eq!(check_card_change(&s, &amex, &all, 7, today), Ok(()));

        let short = card(CardBrand::Visa, 4, 2026); // valid through April 30, last debit May 15
        let refusal = check(&s, &short, today).unwrap_err();
        assert_eq!(
            refusal,
            CardChangeRefusal::ExpiresBeforeLastInstalment {
                last_due: date(2026, 5, 15)
            }
        );
        assert_eq!(refusal.code(), "card_expires_before_last_instalment");

        let expired = card(CardBrand::Visa, 2, 2026);
        let refusal = check(&s, &expired, today).unwrap_err();
        assert_eq!(refusal, CardChangeRefusal::CardExpired);
        assert_eq!(refusal.code(), "card_expired");

        let mut unpaid = schedule();
        fail_for_good(&mut unpaid, 1);
        let refusal = check(&unpaid, &visa(), today).unwrap_err();
        assert_eq!(refusal, CardChangeRefusal::ScheduleUnpaid);
        assert_eq!(refusal.code(), "schedule_unpaid");

        let mut cancelled = schedule();
        cancelled
            .cancel(
                eur(30_000),
                Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().unwrap(),
            )
            .unwrap();
        let refusal = check(&cancelled, &visa(), today).unwrap_err();
        assert_eq!(refusal, CardChangeRefusal::NothingToPay);
        assert_eq!(refusal.code(), "schedule_closed");
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let today = date(2026, 3, 10); // 5 days before the next debit
        let worst = card(CardBrand::Amex, 1, 2026); // wrong brand and expired
        let mut unpaid = schedule();
        fail_for_good(&mut unpaid, 1);
        // Unpaid beats everything else.
        assert_eq!(
            check(&unpaid, &worst, today),
            Err(CardChangeRefusal::ScheduleUnpaid)
        );
        // Then the notice period.
        assert_eq!(
            check(&schedule(), &worst, today).unwrap_err().code(),
            "debit_already_scheduled"
        );
        // Then the brand.
        let early = date(2026, 3, 1);
        assert_eq!(
            check(&schedule(), &worst, early),
            Err(CardChangeRefusal::BrandNotAccepted)
        );
        // Then expired before expiring-before-the-last-debit.
        let expired_visa = card(CardBrand::Visa, 1, 2026);
        assert_eq!(
            check(&schedule(), &expired_visa, early),
            Err(CardChangeRefusal::CardExpired)
        );
    }

    #[test]
    fn the_available_action_follows_the_schedule_status() {
        let mut s = schedule();
        assert_eq!(available_action(&s), Some(Action::ChangeCard));
        fail_for_good(&mut s, 1);
        assert_eq!(available_action(&s), Some(Action::Regularize));
        let mut done = schedule();
        done.cancel(
            eur(30_000),
            Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().unwrap(),
        )
        .unwrap();
        assert_eq!(available_action(&done), None);
        assert_eq!(Action::ChangeCard.as_str(), "change_card");
        assert_eq!(
            serde_json::to_value(Action::Regularize).unwrap(),
            "regularize"
        );
    }

    #[test]
    fn default_policy_is_visa_and_mastercard_with_seven_days() {
        let policy = CardChangePolicy::default();
        assert_eq!(
            policy.accepted_brands,
            [CardBrand::Visa, CardBrand::Mastercard]
        );
        assert_eq!(policy.notice_days, 7);
    }
}
