//! Invoices and payment requests: lines, exact totals in minor units,
//! statuses, what may be paid, and invoice numbers.
//!
//! **Rounding.** A line's net amount is `quantity × unit_amount`, exact. Its
//! tax is `net × tax_rate_bp / 10 000`, rounded to the nearest minor unit,
//! halves away from zero, once per line. The invoice's subtotal is the sum
//! of the nets, its tax the sum of the lines' taxes (so the tax shown per
//! rate is the sum of that rate's lines), its total the subtotal plus the
//! tax. Every sum is exact and checked against overflow: what is shown
//! always adds up.
//!
//! A **payment request** has no lines: an amount and a reason, no tax.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::money::Currency;
use crate::money::Money;

/// The largest quantity on a line.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// The largest unit amount or request amount, in minor units (10 million
/// in major units).
pub const MAX_UNIT_AMOUNT: i64 = 1_000_000_000;
/// The largest tax rate, in basis points (100 %).
pub const MAX_TAX_RATE_BP: i32 = 10_000;
/// The most lines an invoice may have.
pub const MAX_LINES: usize = 100;

/// One line of an invoice as the business writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    /// A whole number of units, 1 to [`MAX_QUANTITY`].
    pub quantity: i64,
    /// Minor units, 0 to [`MAX_UNIT_AMOUNT`].
    pub unit_amount: i64,
    /// Basis points: 2 000 is 20 %.
    pub tax_rate_bp: i32,
}

/// A line with its amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAmounts {
    /// `quantity × unit_amount`.
    pub net: i64,
    /// The line's tax, rounded half away from zero.
    pub tax: i64,
}

/// `numerator / 10 000`, rounded to the nearest integer, halves away from
/// zero.
fn per_ten_thousand(numerator: i128) -> i128 {
    let q = numerator / 10_000;
    let r = numerator % 10_000;
    if r.abs() * 2 >= 10_000 {
        q + numerator.signum()
    } else {
        q
    }
}

impl Line {
    /// The line's net and tax, `None` on overflow (out-of-range inputs are
    /// refused before this is reached).
    pub fn amounts(&self) -> Option<LineAmounts> {
        let net = i128::from(self.quantity) * i128::from(self.unit_amount);
        let tax = per_ten_thousand(net * i128::from(self.tax_rate_bp));
        Some(LineAmounts {
            net: i64::try_from(net).ok()?,
            tax: i64::try_from(tax).ok()?,
        })
    }
}

/// The tax of one rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxAmount {
    pub rate_bp: i32,
    /// The net amounts taxed at this rate.
    pub base: i64,
    pub tax: i64,
}

/// The totals of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    /// By rate, in increasing rate order.
    pub taxes: Vec<TaxAmount>,
    pub tax: i64,
    pub total: i64,
}

/// Why an invoice's content is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("an invoice needs at least one line, or an amount for a payment request")]
    Empty,
    #[error("an invoice has lines or an amount, not both")]
    LinesAndAmount,
    #[error("the total must be more than zero")]
    NotPositive,
    #[error("the amounts are out of range")]
    Overflow,
    #[error("the due date is before the issue date")]
    DueBeforeIssue,
}

/// The totals of `lines`, exact.
pub fn totals(lines: &[Line]) -> Result<Totals, InvoiceError> {
    let mut subtotal: i64 = 0;
    let mut tax: i64 = 0;
    let mut by_rate: std::collections::BTreeMap<i32, (i64, i64)> = Default::default();
    for line in lines {
        let a = line.amounts().ok_or(InvoiceError::Overflow)?;
        subtotal = subtotal.checked_add(a.net).ok_or(InvoiceError::Overflow)?;
        tax = tax.checked_add(a.tax).ok_or(InvoiceError::Overflow)?;
        let entry = by_rate.entry(line.tax_rate_bp).or_default();
        entry.0 = entry.0.checked_add(a.net).ok_or(InvoiceError::Overflow)?;
        entry.1 = entry.1.checked_add(a.tax).ok_or(InvoiceError::Overflow)?;
    }
    let total = subtotal.checked_add(tax).ok_or(InvoiceError::Overflow)?;
    Ok(Totals {
        subtotal,
        taxes: by_rate
            .into_iter()
            .map(|(rate_bp, (base, tax))| TaxAmount { rate_bp, base, tax })
            .collect(),
        tax,
        total,
    })
}

/// What an invoice asks for: lines, or an amount with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Lines(Vec<Line>),
    Request { amount: i64, reason: String },
}

impl Content {
    /// The content's totals; a payment request has no tax. Refuses an
    /// empty invoice and a total of zero or less.
    pub fn totals(&self) -> Result<Totals, InvoiceError> {
        let t = match self {
            Content::Lines(lines) if lines.is_empty() => return Err(InvoiceError::Empty),
            Content::Lines(lines) => totals(lines)?,
            Content::Request { amount, .. } => Totals {
                subtotal: *amount,
                taxes: Vec::new(),
                tax: 0,
                total: *amount,
            },
        };
        if t.total <= 0 {
            return Err(InvoiceError::NotPositive);
        }
        Ok(t)
    }

    /// `invoice` or `payment_request`.
    pub fn kind(&self) -> Kind {
        match self {
            Content::Lines(_) => Kind::Invoice,
            Content::Request { .. } => Kind::PaymentRequest,
        }
    }
}

/// An invoice with lines, or a payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Invoice,
    PaymentRequest,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::PaymentRequest => "payment_request",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invoice" => Some(Kind::Invoice),
            "payment_request" => Some(Kind::PaymentRequest),
            _ => None,
        }
    }
}

/// The stored status. `overdue` is not stored: it is an open invoice past
/// its due date ([`Status::shown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Open,
    Paid,
    Void,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Open => "open",
            Status::Paid => "paid",
            Status::Void => "void",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Status::Draft),
            "open" => Some(Status::Open),
            "paid" => Some(Status::Paid),
            "void" => Some(Status::Void),
            _ => None,
        }
    }
}

/// The status as shown: the stored one, with `overdue` for an open invoice
/// whose due date has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownStatus {
    Draft,
    Open,
    Overdue,
    Paid,
    Void,
}

impl ShownStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShownStatus::Draft => "draft",
            ShownStatus::Open => "open",
            ShownStatus::Overdue => "overdue",
            ShownStatus::Paid => "paid",
            ShownStatus::Void => "void",
        }
    }
}

/// Whether an invoice due on `due_date` is overdue on `today`: the day
/// after its due date.
pub fn is_overdue(status: Status, due_date: NaiveDate, today: NaiveDate) -> bool {
    status == Status::Open && due_date < today
}

/// The shown status of an invoice on `today`.
pub fn shown(status: Status, due_date: NaiveDate, today: NaiveDate) -> ShownStatus {
    match status {
        Status::Draft => ShownStatus::Draft,
        Status::Open if is_overdue(status, due_date, today) => ShownStatus::Overdue,
        Status::Open => ShownStatus::Open,
        Status::Paid => ShownStatus::Paid,
        Status::Void => ShownStatus::Void,
    }
}

/// Why a payment of an invoice is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    #[error("the invoice is not issued yet")]
    NotIssued,
    #[error("the invoice is void")]
    Void,
    #[error("the invoice is already paid")]
    AlreadyPaid,
    #[error("the amount is more than what is due")]
    AboveDue { due: i64 },
    #[error("the invoice must be paid in full")]
    PartialNotAllowed { due: i64 },
    #[error("the amount must be more than zero")]
    NotPositive,
    #[error("the payment's currency is not the invoice's")]
    CurrencyMismatch,
}

/// What a payment of `amount` (all that is due when `None`) may be on an
/// invoice in `status` with `due` left to pay: the amount to take.
pub fn payable(
    status: Status,
    total: Money,
    paid: i64,
    amount: Option<Money>,
    partial_allowed: bool,
) -> Result<Money, PaymentRefusal> {
    match status {
        Status::Draft => return Err(PaymentRefusal::NotIssued),
        Status::Void => return Err(PaymentRefusal::Void),
        Status::Paid => return Err(PaymentRefusal::AlreadyPaid),
        Status::Open => {}
    }
    let due = total.amount - paid;
    if due <= 0 {
        return Err(PaymentRefusal::AlreadyPaid);
    }
    let Some(amount) = amount else {
        return Ok(Money::new(due, total.currency));
    };
    if amount.currency != total.currency {
        return Err(PaymentRefusal::CurrencyMismatch);
    }
    if amount.amount <= 0 {
        return Err(PaymentRefusal::NotPositive);
    }
    if amount.amount > due {
        return Err(PaymentRefusal::AboveDue { due });
    }
    if amount.amount < due && !partial_allowed {
        return Err(PaymentRefusal::PartialNotAllowed { due });
    }
    Ok(amount)
}

/// The status after `amount` more is paid on an invoice of `total` with
/// `paid` already paid: `paid` once nothing is due.
pub fn after_payment(total: i64, paid: i64, amount: i64) -> (i64, Status) {
    let paid = paid + amount;
    let status = if paid >= total {
        Status::Paid
    } else {
        Status::Open
    };
    (paid, status)
}

/// The number generated for the `seq`-th invoice an organization issues
/// in `year`: `F-2026-00042` (`D-` for a payment request).
pub fn generated_number(kind: Kind, year: i32, seq: i64) -> String {
    let prefix = match kind {
        Kind::Invoice => "F",
        Kind::PaymentRequest => "D",
    };
    format!("{prefix}-{year}-{seq:05}")
}

/// Whether `s` may be an invoice number chosen by the business: 1 to 40
/// letters, digits, `-`, `_`, `/` and `.`, starting with a letter or digit.
pub fn is_valid_number(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'/' | b'.'))
}

/// Formats a tax rate in basis points as a percentage: `20 %`, `5,5 %`
/// (French) or `5.5%` (English).
pub fn format_rate(rate_bp: i32, french: bool) -> String {
    let whole = rate_bp / 100;
    let frac = rate_bp % 100;
    let mut s = whole.to_string();
    if frac != 0 {
        let f = format!("{frac:02}");
        let f = f.trim_end_matches('0');
        s.push(if french { ',' } else { '.' });
        s.push_str(f);
    }
    if french {
        s.push_str("\u{a0}%");
    } else {
        s.push('%');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(q: i64, unit: i64, rate: i32) -> Line {
        Line {
            description: "x".into(),
            quantity: q,
            unit_amount: unit,
            tax_rate_bp: rate,
        }
    }

    #[test]
    fn tax_rounds_per_line_half_away_from_zero() {
        // 1 × 0.25 at 10 % = 0.025 → 0.03
        assert_eq!(line(1, 25, 1000).amounts().unwrap().tax, 3);
        // 1 × 0.24 at 10 % = 0.024 → 0.02
        assert_eq!(line(1, 24, 1000).amounts().unwrap().tax, 2);
        // 3 × 33.33 at 5.5 % = 99.99 × 0.055 = 5.49945 → 5.50
        assert_eq!(line(3, 3333, 550).amounts().unwrap().tax, 550);
    }

    #[test]
    fn totals_add_up_per_rate() {
        let lines = vec![line(2, 1999, 2000), line(1, 25, 1000), line(1, 5000, 2000)];
        let t = totals(&lines).unwrap();
        assert_eq!(t.subtotal, 3998 + 25 + 5000);
        assert_eq!(t.taxes.len(), 2);
        assert_eq!(
            t.taxes[0],
            TaxAmount {
                rate_bp: 1000,
                base: 25,
                tax: 3
            }
        );
        // 39.98 × 20 % = 7.996 → 8.00; 50 × 20 % = 10.00
        assert_eq!(
            t.taxes[1],
            TaxAmount {
                rate_bp: 2000,
                base: 8998,
                tax: 800 + 1000
            }
        );
        assert_eq!(t.tax, t.taxes.iter().map(|x| x.tax).sum::<i64>());
        assert_eq!(t.total, t.subtotal + t.tax);
    }

    #[test]
    fn empty_and_zero_are_refused() {
        assert_eq!(Content::Lines(vec![]).totals(), Err(InvoiceError::Empty));
        assert_eq!(
            Content::Lines(vec![line(1, 0, 0)]).totals(),
            Err(InvoiceError::NotPositive)
        );
        let r = Content::Request {
            amount: 4500,
            reason: "x".into(),
        }
        .totals()
        .unwrap();
        assert_eq!((r.subtotal, r.tax, r.total), (4500, 0, 4500));
    }

    #[test]
    fn largest_inputs_do_not_overflow_a_line() {
        let a = line(MAX_QUANTITY, MAX_UNIT_AMOUNT, MAX_TAX_RATE_BP)
            .amounts()
            .unwrap();
        assert_eq!(a.net, 1_000_000_000_000_000);
        assert_eq!(a.tax, a.net);
    }

    #[test]
    fn payable_rules() {
        let eur = |a| Money::new(a, Currency::EUR);
        let total = eur(10_000);
        assert_eq!(
            payable(Status::Open, total, 0, None, false),
            Ok(eur(10_000))
        );
        assert_eq!(
            payable(Status::Open, total, 4_000, None, false),
            Ok(eur(6_000))
        );
        assert_eq!(
            payable(Status::Open, total, 0, Some(eur(4_000)), false),
            Err(PaymentRefusal::PartialNotAllowed { due: 10_000 })
        );
        assert_eq!(
            payable(Status::Open, total, 0, Some(eur(4_000)), true),
            Ok(eur(4_000))
        );
        assert_eq!(
            payable(Status::Open, total, 0, Some(eur(10_001)), true),
            Err(PaymentRefusal::AboveDue { due: 10_000 })
        );
        assert_eq!(
            payable(Status::Open, total, 0, Some(eur(0)), true),
            Err(PaymentRefusal::NotPositive)
        );
        assert_eq!(
            payable(
                Status::Open,
                total,
                0,
                Some(Money::new(1, Currency::parse("USD").unwrap())),
                true
            ),
            Err(PaymentRefusal::CurrencyMismatch)
        );
        assert_eq!(
            payable(Status::Void, total, 0, None, true),
            Err(PaymentRefusal::Void)
        );
        assert_eq!(
            payable(Status::Paid, total, 10_000, None, true),
            Err(PaymentRefusal::AlreadyPaid)
        );
        assert_eq!(
            payable(Status::Draft, total, 0, None, true),
            Err(PaymentRefusal::NotIssued)
        );
        assert_eq!(after_payment(10_000, 4_000, 6_000), (10_000, Status::Paid));
        assert_eq!(after_payment(10_000, 0, 4_000), (4_000, Status::Open));
    }

    #[test]
    fn overdue_is_the_day_after_the_due_date() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(shown(Status::Open, d, d), ShownStatus::Open);
        assert_eq!(
            shown(Status::Open, d, d.succ_opt().unwrap()),
            ShownStatus::Overdue
        );
        assert_eq!(
            shown(Status::Paid, d, d.succ_opt().unwrap()),
            ShownStatus::Paid
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(generated_number(Kind::Invoice, 2026, 42), "F-2026-00042");
        assert_eq!(
            generated_number(Kind::PaymentRequest, 2026, 1),
            "D-2026-00001"
        );
        assert!(is_valid_number("2026/INV.001"));
        assert!(!is_valid_number("-x"));
        assert!(!is_valid_number(""));
        assert!(!is_valid_number("a b"));
        assert!(!is_valid_number(&"a".repeat(41)));
    }

    #[test]
    fn rates() {
        assert_eq!(format_rate(2000, false), "20%");
        assert_eq!(format_rate(550, true), "5,5\u{a0}%");
        assert_eq!(format_rate(0, false), "0%");
        assert_eq!(format_rate(1234, false), "12.34%");
    }
}
