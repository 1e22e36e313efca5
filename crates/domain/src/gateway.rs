//! The payment service provider (PSP) boundary: a [`PaymentGateway`] trait
//! that a real PSP adapter can implement later, the card types, and the
//! sandbox's documented test cards with its pure rules ([`sandbox`]: tokens,
//! outcomes). The sandbox gateway itself, with its ledger, lives in the
//! `guichet-gateway` crate.
//!
//! Guichet never stores or logs a card number (PAN) or security code (CVC):
//! they only exist in [`Pan`] and [`Cvc`], whose `Debug` and `Display` print
//! `****`, which cannot be serialized, and which are consumed by
//! [`PaymentGateway::tokenize`]. Everything kept afterwards is a token and a
//! [`CardView`] (brand, last four digits, expiry, funding).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::card::{CardBrand, CardView};
use crate::money::Money;

pub mod sandbox;

/// Whether `digits` (ASCII digits only) passes the Luhn checksum that every
/// card number carries in its last digit.
fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0_u32;
    for (position, digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(digit - b'0');
        if position % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum = (sum + value) % 10;
    }
    sum == 0
}

/// The digits of `value` when it is made only of digits, spaces and
/// hyphens; `None` otherwise.
fn digits_of(value: &str) -> Option<Vec<u8>> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut digits = Vec::with_capacity(trimmed.len());
    for b in trimmed.bytes() {
        match b {
            b'0'..=b'9' => digits.push(b),
            b' ' | b'-' => {}
            _ => return None,
        }
    }
    Some(digits)
}

/// Whether `value` looks like a card number: 13 to 19 digits, possibly
/// grouped with spaces or hyphens, passing the Luhn check. The API uses it
/// to refuse free-text fields (names, references, messages) that carry a
/// card number, so that no PAN ever gets stored outside the gateway.
pub fn looks_like_pan(value: &str) -> bool {
    digits_of(value).is_some_and(|d| (13..=19).contains(&d.len()) && luhn_valid(&d))
}

/// Why card details were refused before reaching the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardInputError {
    /// Not 12–19 digits with a valid Luhn checksum.
    #[error("invalid card number")]
    InvalidNumber,
    /// Not 3 or 4 digits.
    #[error("invalid security code")]
    InvalidCvc,
}

impl CardInputError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            CardInputError::InvalidNumber => "invalid_card_number",
            CardInputError::InvalidCvc => "invalid_card_cvc",
        }
    }
}

/// Overwrites a buffer that held card data before it is freed (best effort:
/// copies made by the caller before parsing are out of reach).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// A card number (PAN): 12 to 19 digits with a valid Luhn checksum, stored
/// without separators. Prints as `****`; cannot be serialized; its digits
/// are only reachable through [`Pan::expose`], for a gateway adapter.
#[derive(PartialEq, Eq)]
pub struct Pan(Vec<u8>);

impl Pan {
    /// Parses a typed card number; spaces and hyphens between digit groups
    /// are ignored.
    pub fn parse(value: &str) -> Result<Self, CardInputError> {
        match digits_of(value) {
            Some(digits) if (12..=19).contains(&digits.len()) && luhn_valid(&digits) => {
                Ok(Pan(digits))
            }
            Some(mut digits) => {
                wipe(&mut digits);
                Err(CardInputError::InvalidNumber)
            }
            None => Err(CardInputError::InvalidNumber),
        }
    }

    /// The last four digits, safe to show and keep.
    pub fn last4(&self) -> String {
        let start = self.0.len().saturating_sub(4);
        self.0[start..].iter().map(|&b| char::from(b)).collect()
    }

    /// The brand, from the leading digits.
    pub fn brand(&self) -> CardBrand {
        CardBrand::from_number(self.expose())
    }

    /// The digits, for sending to the PSP. Never log, store or return them.
    pub fn expose(&self) -> &str {
        // Only ASCII digits get in through `parse`.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Drop for Pan {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl<'de> Deserialize<'de> for Pan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = Pan::parse(&text);
        let mut bytes = text.into_bytes();
        wipe(&mut bytes);
        parsed.map_err(serde::de::Error::custom)
    }
}

/// A card security code (CVC/CVV): 3 or 4 digits. Prints as `****`; cannot
/// be serialized; never stored, not even by the sandbox.
#[derive(PartialEq, Eq)]
pub struct Cvc(Vec<u8>);

impl Cvc {
    /// Parses 3 or 4 digits (surrounding spaces ignored).
    pub fn parse(value: &str) -> Result<Self, CardInputError> {
        let trimmed = value.trim();
        if (3..=4).contains(&trimmed.len()) && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Cvc(trimmed.as_bytes().to_vec()))
        } else {
            Err(CardInputError::InvalidCvc)
        }
    }

    /// How many digits (Amex uses 4, the others 3).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a parsed code has 3 or 4 digits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The digits, for sending to the PSP. Never log, store or return them.
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Drop for Cvc {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl<'de> Deserialize<'de> for Cvc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = Cvc::parse(&text);
        let mut bytes = text.into_bytes();
        wipe(&mut bytes);
        parsed.map_err(serde::de::Error::custom)
    }
}

/// What the customer types to register a card. Handed to
/// [`PaymentGateway::tokenize`] and dropped; its `Debug` masks the number
/// and the code.
#[derive(Debug, Deserialize)]
pub struct CardDetails {
    /// The card number.
    pub number: Pan,
    /// Expiry month, 1–12.
    pub exp_month: u8,
    /// Expiry year, four digits.
    pub exp_year: u16,
    /// The security code.
    pub cvc: Cvc,
}

/// A reusable reference to a card at the gateway, with what may be shown of
/// the card. This is what Guichet stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardToken {
    /// The gateway's reference (`tok_sandbox_...` in the sandbox).
    pub token: String,
    /// Brand, last four digits, expiry and funding.
    pub card: CardView,
}

/// Proof of a successful charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeReceipt {
    /// The gateway's charge reference, needed to refund it.
    pub charge_id: String,
    /// What was charged.
    pub amount: Money,
    /// The key the charge was made under.
    pub idempotency_key: String,
}

/// Proof of a successful refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    /// The gateway's refund reference.
    pub refund_id: String,
    /// The refunded charge.
    pub charge_id: String,
    /// What was refunded.
    pub amount: Money,
    /// The key the refund was made under.
    pub idempotency_key: String,
}

/// Why the issuer declined a card, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// No reason given ("do not honor").
    Generic,
    /// The sandbox only knows its test cards: any other number (possibly a
    /// real card) is declined and forgotten.
    NotATestCard,
}

impl DeclineReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::Generic => "generic",
            DeclineReason::NotATestCard => "not_a_test_card",
        }
    }
}

/// Why the gateway refused an operation. [`GatewayError::code`] gives a
/// stable code; none of them carries card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The issuer declined the card.
    #[error("card declined ({})", reason.as_str())]
    Declined {
        /// What the issuer said.
        reason: DeclineReason,
    },
    /// Not enough funds for the charge.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// The card has expired.
    #[error("expired card")]
    ExpiredCard,
    /// The details do not describe a usable card (bad month, bad security
    /// code length...).
    #[error("invalid card details")]
    InvalidCard,
    /// No card is known under this token.
    #[error("unknown card token")]
    UnknownToken,
    /// No successful charge is known under this id.
    #[error("unknown charge")]
    UnknownCharge,
    /// Amounts must be positive.
    #[error("the amount must be positive")]
    InvalidAmount,
    /// A refund cannot exceed what is left of the charge, nor be in another
    /// currency.
    #[error("the refund exceeds what remains of the charge")]
    RefundExceedsCharge,
    /// The idempotency key was already used for a different request.
    #[error("idempotency key reused with different parameters")]
    IdempotencyKeyReused,
    /// The gateway could not be reached or failed; safe to retry with the
    /// same idempotency key.
    #[error("payment gateway unavailable")]
    Unavailable,
    /// The call was sent but no answer came back in time: the operation
    /// may or may not have happened. Its outcome is known only by looking it
    /// up under its idempotency key ([`PaymentGateway::find_charge`],
    /// [`PaymentGateway::find_refund`]), never by sending it blindly again.
    #[error("payment gateway timeout: outcome unknown")]
    Timeout,
    /// The gateway answered that it could not process the card this time;
    /// nothing was charged. A later attempt (under a new key) may succeed.
    #[error("processing error")]
    ProcessingError,
    /// The gateway refused to refund this charge.
    #[error("refund failed")]
    RefundFailed,
}

impl GatewayError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Declined { .. } => "card_declined",
            GatewayError::InsufficientFunds => "insufficient_funds",
            GatewayError::ExpiredCard => "expired_card",
            GatewayError::InvalidCard => "invalid_card",
            GatewayError::UnknownToken => "unknown_card_token",
            GatewayError::UnknownCharge => "unknown_charge",
            GatewayError::InvalidAmount => "invalid_amount",
            GatewayError::RefundExceedsCharge => "refund_exceeds_charge",
            GatewayError::IdempotencyKeyReused => "idempotency_key_reused",
            GatewayError::Unavailable => "gateway_unavailable",
            GatewayError::Timeout => "gateway_timeout",
            GatewayError::ProcessingError => "processing_error",
            GatewayError::RefundFailed => "refund_failed",
        }
    }

    /// Whether the failure is the gateway's, not the card's: the same call
    /// may be retried soon with the same idempotency key, and a debit run
    /// should not count it as a failed attempt.
    pub fn is_transient(&self) -> bool {
        matches!(self, GatewayError::Unavailable | GatewayError::Timeout)
    }

    /// The error a stable [`GatewayError::code`] stands for, as a gateway
    /// that recorded the code answers it again (a decline's reason is not
    /// kept in its code: it comes back as [`DeclineReason::Generic`]).
    pub fn from_code(code: &str) -> Option<GatewayError> {
        Some(match code {
            "card_declined" => GatewayError::Declined {
                reason: DeclineReason::Generic,
            },
            "insufficient_funds" => GatewayError::InsufficientFunds,
            "expired_card" => GatewayError::ExpiredCard,
            "invalid_card" => GatewayError::InvalidCard,
            "unknown_card_token" => GatewayError::UnknownToken,
            "unknown_charge" => GatewayError::UnknownCharge,
            "invalid_amount" => GatewayError::InvalidAmount,
            "refund_exceeds_charge" => GatewayError::RefundExceedsCharge,
            "idempotency_key_reused" => GatewayError::IdempotencyKeyReused,
            "gateway_unavailable" => GatewayError::Unavailable,
            "gateway_timeout" => GatewayError::Timeout,
            "processing_error" => GatewayError::ProcessingError,
            "refund_failed" => GatewayError::RefundFailed,
            _ => return None,
        })
    }

    /// Whether the operation may have happened although the call failed:
    /// it must be looked up under its key before anything else is decided.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, GatewayError::Timeout)
    }
}

/// What a gateway knows of an operation sent under an idempotency key:
/// `None` when it never received it, else the outcome it recorded.
pub type Lookup<T> = Option<Result<T, GatewayError>>;

/// A strong-authentication session opened at the card's issuer (3-D Secure
/// style): the cardholder is sent to `redirect_url`, and the outcome is
/// then asked of the gateway ([`PaymentGateway::authentication_outcome`]),
/// never read from the redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationSession {
    /// The gateway's session reference.
    pub id: String,
    /// The issuer's page the cardholder authenticates on.
    pub redirect_url: String,
}

/// Why the issuer did not authenticate the cardholder, as far as it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationFailure {
    /// The card does not allow online payments.
    OnlinePaymentsDisabled,
    /// The cardholder blocked the card temporarily in their banking app.
    CardBlocked,
    /// A new card not yet used once (at a cash machine or a shop).
    CardNotActivated,
    /// Wrong data or PIN.
    WrongData,
    /// A technical error at the issuer.
    TechnicalError,
}

impl AuthenticationFailure {
    pub const ALL: [AuthenticationFailure; 5] = [
        AuthenticationFailure::OnlinePaymentsDisabled,
        AuthenticationFailure::CardBlocked,
        AuthenticationFailure::CardNotActivated,
        AuthenticationFailure::WrongData,
        AuthenticationFailure::TechnicalError,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationFailure::OnlinePaymentsDisabled => "online_payments_disabled",
            AuthenticationFailure::CardBlocked => "card_blocked",
            AuthenticationFailure::CardNotActivated => "card_not_activated",
            AuthenticationFailure::WrongData => "wrong_data",
            AuthenticationFailure::TechnicalError => "technical_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// What the issuer decided in a strong-authentication session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationOutcome {
    /// The cardholder has not finished on the issuer's page.
    Pending,
    Succeeded,
    Failed(AuthenticationFailure),
}

/// A payment service provider, as Guichet uses it. Implementations must be
/// idempotent on `idempotency_key`: the same key returns the same outcome
/// and never moves money twice.
pub trait PaymentGateway: Send + Sync {
    /// Exchanges card details for a reusable token and the card's view. The
    /// details are consumed so they do not outlive the call.
    fn tokenize(&self, card: CardDetails) -> Result<CardToken, GatewayError>;

    /// Charges `amount` to the card behind `token` for `merchant` (the
    /// organization's id: its account at the gateway). The key is
    /// deterministic: derived from the business operation, never random
    /// per HTTP request.
    fn charge(
        &self,
        merchant: &str,
        token: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ChargeReceipt, GatewayError>;

    /// What became of the charge sent under `idempotency_key` for
    /// `merchant`: how a charge whose outcome is unknown
    /// ([`GatewayError::Timeout`], a crash) is reconciled before anything
    /// is retried. `Err` when the gateway cannot be asked now.
    fn find_charge(
        &self,
        merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<ChargeReceipt>, GatewayError>;

    /// Refunds `amount` of the charge `charge_id` (partial refunds allowed,
    /// up to what was charged).
    fn refund(
        &self,
        merchant: &str,
        charge_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, GatewayError>;

    /// What became of the refund sent under `idempotency_key`.
    fn find_refund(
        &self,
        merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<RefundReceipt>, GatewayError>;

    /// The view of the card behind `token`.
    fn card(&self, token: &str) -> Result<CardView, GatewayError>;

    /// Whether the issuer knows the card behind `token` as the card of the
    /// card account with `client_reference` (the reference printed on its
    /// statements).
    fn card_matches_reference(
        &self,
        merchant: &str,
        token: &str,
        client_reference: &str,
    ) -> Result<bool, GatewayError>;

    /// Opens a strong-authentication session for the card behind `token`,
    /// idempotent on `idempotency_key` (the same key answers the same
    /// session).
    fn start_authentication(
        &self,
        merchant: &str,
        token: &str,
        idempotency_key: &str,
    ) -> Result<AuthenticationSession, GatewayError>;

    /// What the issuer decided in session `session_id` of `merchant`.
    /// [`GatewayError::UnknownToken`] when no such session exists.
    fn authentication_outcome(
        &self,
        merchant: &str,
        session_id: &str,
    ) -> Result<AuthenticationOutcome, GatewayError>;
}

/// The sandbox's test card numbers, in the style PSPs document them. Any
/// expiry in the future and any CVC of the right length (4 digits for Amex,
/// 3 otherwise) work. Every other number is declined with
/// [`DeclineReason::NotATestCard`].
pub const TEST_CARDS: &[(&str, &str)] = &[
    (
        test_cards::VISA,
        "Visa credit: tokenizes and every charge succeeds",
    ),
    (
        test_cards::MASTERCARD,
        "Mastercard credit: tokenizes and every charge succeeds",
    ),
    (
        test_cards::VISA_DEBIT,
        "Visa debit (funding = debit): tokenizes and every charge succeeds",
    ),
    (
        test_cards::AMEX,
        "American Express: tokenizes and charges succeed (to test the accepted-brands rule)",
    ),
    (
        test_cards::DISCOVER,
        "Discover (brand `other`): tokenizes and charges succeed (brand rule)",
    ),
    (
        test_cards::DECLINED,
        "Visa declined by the issuer (card_declined, generic) when tokenized",
    ),
    (
        test_cards::INSUFFICIENT_FUNDS,
        "Visa that tokenizes, but every charge fails with insufficient_funds",
    ),
    (
        test_cards::EXPIRED,
        "Visa that tokenizes, but every charge fails with expired_card",
    ),
    (
        test_cards::TIMEOUT,
        "Visa whose charges are made, then the answer is lost: the call fails with gateway_timeout and the outcome is known only by looking the charge up",
    ),
    (
        test_cards::PROCESSING_ERROR,
        "Visa whose charges fail with processing_error and charge nothing",
    ),
    (
        test_cards::SLOW,
        "Visa whose charges are made at once, but answered only after 15 seconds",
    ),
    (
        test_cards::REFUND_FAILS,
        "Visa whose charges succeed but whose refunds fail with refund_failed",
    ),
];

/// The test card numbers of [`TEST_CARDS`], by name, for tests.
pub mod test_cards {
    /// Visa credit, always succeeds.
    pub const VISA: &str = "4242424242424242";
    /// Mastercard credit, always succeeds.
    pub const MASTERCARD: &str = "5555555555554444";
    /// Visa debit, always succeeds.
    pub const VISA_DEBIT: &str = "4000056655665556";
    /// American Express, succeeds.
    pub const AMEX: &str = "378282246310005";
    /// Discover (brand `other`), succeeds.
    pub const DISCOVER: &str = "6011111111111117";
    /// Declined when tokenized.
    pub const DECLINED: &str = "4000000000000002";
    /// Tokenizes; charges fail with insufficient funds.
    pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
    /// Tokenizes; charges fail with an expired card.
    pub const EXPIRED: &str = "4000000000000069";
    /// Tokenizes; a charge is made, then its answer is lost (timeout).
    pub const TIMEOUT: &str = "4000000000000259";
    /// Tokenizes; charges fail with a processing error, charging nothing.
    pub const PROCESSING_ERROR: &str = "4000000000000119";
    /// Tokenizes; a charge is made, and answered after 15 seconds.
    pub const SLOW: &str = "4000000000000077";
    /// Tokenizes; charges succeed, refunds fail.
    pub const REFUND_FAILS: &str = "4000000000005126";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(number: &str, exp_month: u8, exp_year: u16) -> CardDetails {
        let cvc = if number.starts_with("37") {
            "1234"
        } else {
            "123"
        };
        CardDetails {
            number: Pan::parse(number).unwrap(),
            exp_month,
            exp_year,
            cvc: Cvc::parse(cvc).unwrap(),
        }
    }

    #[test]
    fn luhn_and_pan_parsing() {
        assert!(Pan::parse("4242 4242 4242 4242").is_ok());
        assert!(Pan::parse("4242-4242-4242-4242").is_ok());
        assert_eq!(
            Pan::parse("4242424242424241").unwrap_err(),
            CardInputError::InvalidNumber
        );
        assert!(Pan::parse("42424242424242424242").is_err()); // 20 digits
        assert!(Pan::parse("42424242426").is_err()); // 11 digits
        assert!(Pan::parse("4242x424242424242").is_err());
        assert!(Pan::parse("").is_err());
        assert_eq!(CardInputError::InvalidNumber.code(), "invalid_card_number");
        // 12 digits are enough for Pan (some maestro), not for looks_like_pan.
        assert!(Pan::parse("123456789015").is_ok());
        assert!(!looks_like_pan("123456789015"));
        let pan = Pan::parse(test_cards::AMEX).unwrap();
        assert_eq!(pan.last4(), "0005");
        assert_eq!(pan.brand(), CardBrand::Amex);
        assert_eq!(pan.expose(), "378282246310005");
    }

    #[test]
    fn pan_and_cvc_never_print_their_digits() {
        let card = details(test_cards::VISA, 12, 2030);
        let debug = format!("{card:?}");
        assert!(!debug.contains("4242"), "{debug}");
        assert!(!debug.contains("123"), "{debug}");
        assert_eq!(card.number.to_string(), "****");
        assert_eq!(format!("{:?}", card.cvc), "****");
        assert_eq!(card.cvc.to_string(), "****");
        let json = serde_json::json!({
            "number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"
        });
        let parsed: CardDetails = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.number.last4(), "4242");
        let bad = serde_json::json!({
            "number": "4242 4242 4242 4241", "exp_month": 12, "exp_year": 2030, "cvc": "123"
        });
        let err = serde_json::from_value::<CardDetails>(bad)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("4241"), "{err}");
    }

    #[test]
    fn cvc_is_three_or_four_digits() {
        assert!(Cvc::parse("123").is_ok());
        assert_eq!(Cvc::parse("1234").unwrap().len(), 4);
        assert_eq!(Cvc::parse("12").unwrap_err().code(), "invalid_card_cvc");
        assert!(Cvc::parse("12345").is_err());
        assert!(Cvc::parse("12a").is_err());
    }

    #[test]
    fn looks_like_pan_spots_card_numbers_in_free_text_fields() {
        assert!(looks_like_pan("4242424242424242"));
        assert!(looks_like_pan(" 4242 4242 4242 4242 "));
        assert!(looks_like_pan("5555-5555-5555-4444"));
        assert!(looks_like_pan("378282246310005"));
        assert!(!looks_like_pan("4242424242424241")); // Luhn fails
        assert!(!looks_like_pan("424242424242")); // 12 digits
        assert!(!looks_like_pan("Commande 4242424242424242"));
        assert!(!looks_like_pan("FR76 3000 6000 0112 3456 7890 189"));
        assert!(!looks_like_pan("+33612345678"));
        assert!(!looks_like_pan(""));
        assert!(!looks_like_pan(" - "));
    }
}
