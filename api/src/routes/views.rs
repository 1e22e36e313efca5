//! Response shapes shared by several resources: money, cards, orders with
//! their schedule.

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::Money;
use guichet_domain::card::{Action, CardView, available_action};
use guichet_domain::schedule::{Adjustment, Instalment};
use guichet_store::repo::refunds::Refund;
use guichet_store::repo::schedules::Order;
use serde::Serialize;
use utoipa::ToSchema;

/// An amount in minor units with its ISO 4217 currency: `{"amount": 12999,
/// "currency": "EUR"}` is 129.99 EUR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct MoneyView {
    /// Minor units (cents): never a float.
    #[schema(example = 12999)]
    pub amount: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: guichet_domain::Currency,
}

impl From<Money> for MoneyView {
    fn from(m: Money) -> Self {
        MoneyView {
            amount: m.amount,
            currency: m.currency,
        }
    }
}

/// A payment card as shown: brand, last four digits and expiry only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex` or `other`.
    #[schema(value_type = crate::routes::enums::CardBrand, example = "visa")]
    pub brand: &'static str,
    #[schema(example = "4242")]
    pub last4: String,
    #[schema(example = 12)]
    pub exp_month: u8,
    #[schema(example = 2028)]
    pub exp_year: u16,
    /// `credit`, `debit` or `prepaid`.
    #[schema(value_type = crate::routes::enums::CardFunding, example = "credit")]
    pub funding: &'static str,
}

impl From<&CardView> for CardSummary {
    fn from(c: &CardView) -> Self {
        CardSummary {
            brand: c.brand.as_str(),
            last4: c.last4.clone(),
            exp_month: c.exp_month,
            exp_year: c.exp_year,
            funding: c.funding.as_str(),
        }
    }
}

/// One debit of a schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalmentView {
    #[schema(example = 1)]
    pub number: u32,
    pub due_date: NaiveDate,
    pub amount: MoneyView,
    /// `pending` (en cours), `paid` (réglé), `unpaid` (impayé) or
    /// `cancelled` (supprimé).
    #[schema(example = "pending")]
    pub status: &'static str,
    pub paid_at: Option<DateTime<Utc>>,
    /// When a failed debit is presented again.
    pub next_attempt_on: Option<NaiveDate>,
}

impl From<&Instalment> for InstalmentView {
    fn from(i: &Instalment) -> Self {
        InstalmentView {
            number: i.number,
            due_date: i.due_date,
            amount: i.amount.into(),
            status: i.status.as_str(),
            paid_at: i.paid_at,
            next_attempt_on: i.next_attempt_on,
        }
    }
}

/// A change made to the schedule after the order ("réajustement").
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentView {
    /// `partial_cancellation`, `total_cancellation` or `regularization`.
    #[schema(value_type = crate::routes::enums::AdjustmentKind, example = "partial_cancellation")]
    pub kind: &'static str,
    pub amount: MoneyView,
    /// What is paid back to the customer, if anything.
    pub refund: Option<MoneyView>,
    pub at: DateTime<Utc>,
}

impl From<&Adjustment> for AdjustmentView {
    fn from(a: &Adjustment) -> Self {
        AdjustmentView {
            kind: a.kind.as_str(),
            amount: a.amount.into(),
            refund: a.refund.map(MoneyView::from),
            at: a.at,
        }
    }
}

/// Where a refund stands: `pending` (recorded, not paid yet), `paid` (paid
/// back to the card), `failed` (the gateway refused it; the business is
/// told to pay it back another way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Paid,
    Failed,
}

/// Money paid back to the customer after a cancellation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    #[schema(example = "rfd_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub amount: MoneyView,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    /// When it was paid or failed; null while pending.
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            id: r.id.clone(),
            amount: r.amount.into(),
            status: match r.status.as_str() {
                "paid" => RefundStatus::Paid,
                "failed" => RefundStatus::Failed,
                _ => RefundStatus::Pending,
            },
            created_at: r.created_at,
            settled_at: r.settled_at,
        }
    }
}

/// An order and its instalment schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    #[schema(example = "ord_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// The customer it belongs to (`cus_...`).
    pub customer_id: String,
    #[schema(example = "CMD-2026-000123")]
    pub order_number: String,
    /// The merchant's brand ("enseigne").
    #[schema(example = "Maison & Jardin")]
    pub merchant_brand: String,
    pub purchase_date: NaiveDate,
    /// The order total after cancellations.
    pub amount: MoneyView,
    /// `in_progress`, `completed` (soldé), `unpaid` or `cancelled`.
    #[schema(value_type = crate::routes::enums::ScheduleStatus, example = "in_progress")]
    pub status: &'static str,
    pub paid: MoneyView,
    /// Still to debit (pending instalments).
    pub pending: MoneyView,
    /// Debits that failed and were not regularized.
    pub unpaid: MoneyView,
    pub card: CardSummary,
    pub instalments: Vec<InstalmentView>,
    pub adjustments: Vec<AdjustmentView>,
    /// The refunds of its cancellations, oldest first, with their status.
    pub refunds: Vec<RefundView>,
    /// What the customer can do now: `change_card` or `regularize`.
    #[schema(example = json!(["change_card"]))]
    pub actions: Vec<&'static str>,
}

impl From<&Order> for ScheduleView {
    fn from(o: &Order) -> Self {
        let s = &o.schedule;
        ScheduleView {
            id: o.id.clone(),
            customer_id: o.customer_id.clone(),
            order_number: o.order_number.clone(),
            merchant_brand: o.merchant_brand.clone(),
            purchase_date: o.purchase_date,
            amount: s.remaining_total().into(),
            status: s.status().as_str(),
            paid: s.paid_amount().into(),
            pending: s.pending_amount().into(),
            unpaid: s.unpaid_amount().into(),
            card: (&o.card.view).into(),
            instalments: s.instalments.iter().map(InstalmentView::from).collect(),
            adjustments: s.adjustments.iter().map(AdjustmentView::from).collect(),
            refunds: o.refunds.iter().map(RefundView::from).collect(),
            actions: match available_action(s) {
                Some(Action::ChangeCard) => vec!["change_card"],
                Some(Action::Regularize) => vec!["regularize"],
                None => vec![],
            },
        }
    }
}

/// A page of schedules.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub data: Vec<ScheduleView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
