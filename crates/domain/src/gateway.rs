//! The payment service provider (PSP) boundary: a [`PaymentGateway`] trait
//! that a real PSP adapter can implement later, and [`SandboxGateway`], a
//! deterministic in-memory gateway driven by documented test cards.
//!
//! Guichet never stores or logs a card number (PAN) or security code (CVC):
//! they only exist in [`Pan`] and [`Cvc`], whose `Debug` and `Display` print
//! `****`, which cannot be serialized, and which are consumed by
//! [`PaymentGateway::tokenize`]. Everything kept afterwards is a token and a
//! [`CardView`] (brand, last four digits, expiry, funding).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::card::{CardBrand, CardView, Funding, card_expiry};
use crate::clock::Clock;
use crate::money::Money;
use crate::secret::{constant_time_eq, hmac_sha256, to_hex};

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

    /// Whether the operation may have happened although the call failed:
    /// it must be looked up under its key before anything else is decided.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, GatewayError::Timeout)
    }
}

/// What a gateway knows of an operation sent under an idempotency key:
/// `None` when it never received it, else the outcome it recorded.
pub type Lookup<T> = Option<Result<T, GatewayError>>;

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

/// What a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Succeeds,
    DeclinedAtTokenize,
    InsufficientFunds,
    ExpiredAtCharge,
    /// Charged, then the answer is lost.
    Timeout,
    ProcessingError,
    /// Charged, answered late.
    Slow,
    RefundFails,
}

fn test_card(number: &str) -> Option<(CardBrand, Funding, Behaviour)> {
    use test_cards as t;
    let found = match number {
        t::VISA => (CardBrand::Visa, Funding::Credit, Behaviour::Succeeds),
        t::MASTERCARD => (CardBrand::Mastercard, Funding::Credit, Behaviour::Succeeds),
        t::VISA_DEBIT => (CardBrand::Visa, Funding::Debit, Behaviour::Succeeds),
        t::AMEX => (CardBrand::Amex, Funding::Credit, Behaviour::Succeeds),
        t::DISCOVER => (CardBrand::Other, Funding::Credit, Behaviour::Succeeds),
        t::DECLINED => (
            CardBrand::Visa,
            Funding::Credit,
            Behaviour::DeclinedAtTokenize,
        ),
        t::INSUFFICIENT_FUNDS => (
            CardBrand::Visa,
            Funding::Credit,
            Behaviour::InsufficientFunds,
        ),
        t::EXPIRED => (CardBrand::Visa, Funding::Credit, Behaviour::ExpiredAtCharge),
        t::TIMEOUT => (CardBrand::Visa, Funding::Credit, Behaviour::Timeout),
        t::PROCESSING_ERROR => (CardBrand::Visa, Funding::Credit, Behaviour::ProcessingError),
        t::SLOW => (CardBrand::Visa, Funding::Credit, Behaviour::Slow),
        t::REFUND_FAILS => (CardBrand::Visa, Funding::Credit, Behaviour::RefundFails),
        _ => return None,
    };
    Some(found)
}

/// The key tokens are derived under when none is given: sandbox tokens are
/// then the same across runs and instances.
const DEFAULT_TOKEN_KEY: &[u8] = b"guichet-sandbox-token-key-v1";

#[derive(Debug, Clone)]
struct StoredCard {
    view: CardView,
    behaviour: Behaviour,
}

#[derive(Debug, Clone)]
struct ChargeRecord {
    token: String,
    amount: Money,
    outcome: Result<ChargeReceipt, GatewayError>,
}

#[derive(Debug, Clone)]
struct RefundRecord {
    charge_id: String,
    amount: Money,
    outcome: Result<RefundReceipt, GatewayError>,
}

#[derive(Debug, Default)]
struct SandboxState {
    /// Every charge request by idempotency key, with its outcome.
    charges: HashMap<String, ChargeRecord>,
    /// Successful charges by charge id: (amount, refunded so far).
    charged: HashMap<String, (Money, i64)>,
    /// Money actually moved per idempotency key (0 or 1).
    charge_counts: HashMap<String, u32>,
    refunds: HashMap<String, RefundRecord>,
    /// Charges whose refunds fail (made with the refund-failing card).
    refund_fails: std::collections::HashSet<String>,
    unavailable: bool,
}

/// A deterministic in-memory gateway for development, demos and tests.
///
/// - Only the numbers of [`TEST_CARDS`] are accepted; the same card and
///   expiry always give the same token `tok_sandbox_<index><MMYYYY><mac>`:
///   which test card it is and its expiry, signed with the token key. It
///   reveals nothing of the number and needs no stored state, so tokens
///   work on every node and after a restart.
/// - Charges and refunds are idempotent: the same key returns the same
///   outcome (success or failure) and moves money at most once; the same key
///   with other parameters is refused.
/// - Expiry is checked against the clock at tokenization and at each charge.
/// - [`SandboxGateway::set_unavailable`] simulates an outage.
pub struct SandboxGateway {
    clock: Arc<dyn Clock>,
    token_key: Vec<u8>,
    state: Mutex<SandboxState>,
}

impl fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxGateway").finish_non_exhaustive()
    }
}

impl SandboxGateway {
    /// A sandbox reading today's date from `clock`, with the default token
    /// key.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_token_key(clock, DEFAULT_TOKEN_KEY)
    }

    /// A sandbox whose tokens are derived under `key`.
    pub fn with_token_key(clock: Arc<dyn Clock>, key: &[u8]) -> Self {
        Self {
            clock,
            token_key: key.to_vec(),
            state: Mutex::new(SandboxState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulates an outage: while set, every call fails with
    /// [`GatewayError::Unavailable`] and nothing is recorded.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// How many times money was actually taken under `idempotency_key`
    /// (0 or 1, however often the charge was retried).
    pub fn charge_count(&self, idempotency_key: &str) -> u32 {
        self.state()
            .charge_counts
            .get(idempotency_key)
            .copied()
            .unwrap_or(0)
    }

    /// The number of successful charges made, all keys together.
    pub fn successful_charges(&self) -> u32 {
        self.state().charge_counts.values().sum()
    }

    /// The sum of successful charges in minor units (all currencies
    /// together; the sandbox is for tests).
    pub fn total_charged(&self) -> i64 {
        self.state().charged.values().map(|(m, _)| m.amount).sum()
    }

    /// The sum of successful refunds in minor units.
    pub fn total_refunded(&self) -> i64 {
        self.state().charged.values().map(|(_, r)| r).sum()
    }

    /// `tok_sandbox_` + the test card's index (2 digits), the expiry month
    /// (2) and year (4), and 16 hex digits of an HMAC of those under the
    /// token key: the token names which test card it is (never its number)
    /// and needs no stored state, so it works on every node and after a
    /// restart.
    fn token_for(&self, number: &str, exp_month: u8, exp_year: u16) -> Option<String> {
        let index = TEST_CARDS.iter().position(|(n, _)| *n == number)?;
        let body = format!("{index:02}{exp_month:02}{exp_year:04}");
        Some(format!("tok_sandbox_{body}{}", self.token_mac(&body)))
    }

    fn token_mac(&self, body: &str) -> String {
        let mut mac = hmac_sha256(&self.token_key);
        mac.update(body.as_bytes());
        to_hex(&mac.finalize().into_bytes())[..16].to_owned()
    }

    /// The card a token stands for, if the token is one of ours.
    fn decode(&self, token: &str) -> Option<StoredCard> {
        let rest = token.strip_prefix("tok_sandbox_")?;
        if rest.len() != 24 || !rest.is_ascii() {
            return None;
        }
        let (body, mac) = rest.split_at(8);
        if !constant_time_eq(&self.token_mac(body), mac) {
            return None;
        }
        let index: usize = body[..2].parse().ok()?;
        let exp_month: u8 = body[2..4].parse().ok()?;
        let exp_year: u16 = body[4..8].parse().ok()?;
        let (number, _) = TEST_CARDS.get(index)?;
        let (brand, funding, behaviour) = test_card(number)?;
        Some(StoredCard {
            view: CardView {
                brand,
                last4: number[number.len() - 4..].to_owned(),
                exp_month,
                exp_year,
                funding,
            },
            behaviour,
        })
    }
}

/// A reference derived from an idempotency key, so a replay gets the same id.
fn derived_id(prefix: &str, key: &str) -> String {
    let digest = to_hex(&Sha256::digest(key.as_bytes()));
    format!("{prefix}_sandbox_{}", &digest[..24])
}

impl PaymentGateway for SandboxGateway {
    fn tokenize(&self, card: CardDetails) -> Result<CardToken, GatewayError> {
        let state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        drop(state);
        let Some((brand, funding, behaviour)) = test_card(card.number.expose()) else {
            return Err(GatewayError::Declined {
                reason: DeclineReason::NotATestCard,
            });
        };
        let expected_cvc = if brand == CardBrand::Amex { 4 } else { 3 };
        if card.cvc.len() != expected_cvc || !(2000..=2099).contains(&card.exp_year) {
            return Err(GatewayError::InvalidCard);
        }
        let Some(expires_on) = card_expiry(card.exp_month, card.exp_year) else {
            return Err(GatewayError::InvalidCard);
        };
        if expires_on < self.clock.today() {
            return Err(GatewayError::ExpiredCard);
        }
        if behaviour == Behaviour::DeclinedAtTokenize {
            return Err(GatewayError::Declined {
                reason: DeclineReason::Generic,
            });
        }
        let token = self
            .token_for(card.number.expose(), card.exp_month, card.exp_year)
            .ok_or(GatewayError::InvalidCard)?;
        let view = CardView {
            brand,
            last4: card.number.last4(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            funding,
        };
        Ok(CardToken { token, card: view })
    }

    fn charge(
        &self,
        _merchant: &str,
        token: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ChargeReceipt, GatewayError> {
        let mut state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        if let Some(previous) = state.charges.get(idempotency_key) {
            if previous.token != token || previous.amount != amount {
                return Err(GatewayError::IdempotencyKeyReused);
            }
            return previous.outcome.clone();
        }
        let outcome = if amount.amount <= 0 {
            Err(GatewayError::InvalidAmount)
        } else {
            match self.decode(token) {
                None => Err(GatewayError::UnknownToken),
                Some(card) if card.view.is_expired(self.clock.today()) => {
                    Err(GatewayError::ExpiredCard)
                }
                Some(card) => match card.behaviour {
                    Behaviour::InsufficientFunds => Err(GatewayError::InsufficientFunds),
                    Behaviour::ExpiredAtCharge => Err(GatewayError::ExpiredCard),
                    Behaviour::DeclinedAtTokenize => Err(GatewayError::Declined {
                        reason: DeclineReason::Generic,
                    }),
                    Behaviour::ProcessingError => Err(GatewayError::ProcessingError),
                    Behaviour::Succeeds
                    | Behaviour::Timeout
                    | Behaviour::Slow
                    | Behaviour::RefundFails => Ok(ChargeReceipt {
                        charge_id: derived_id("ch", idempotency_key),
                        amount,
                        idempotency_key: idempotency_key.to_owned(),
                    }),
                },
            }
        };
        let behaviour = self.decode(token).map(|card| card.behaviour);
        let lost = behaviour == Some(Behaviour::Timeout);
        if let Ok(receipt) = &outcome {
            state
                .charged
                .insert(receipt.charge_id.clone(), (receipt.amount, 0));
            *state
                .charge_counts
                .entry(idempotency_key.to_owned())
                .or_default() += 1;
        }
        if let Ok(receipt) = &outcome
            && behaviour == Some(Behaviour::RefundFails)
        {
            state.refund_fails.insert(receipt.charge_id.clone());
        }
        state.charges.insert(
            idempotency_key.to_owned(),
            ChargeRecord {
                token: token.to_owned(),
                amount,
                outcome: outcome.clone(),
            },
        );
        if lost && outcome.is_ok() {
            return Err(GatewayError::Timeout);
        }
        outcome
    }

    fn find_charge(
        &self,
        _merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<ChargeReceipt>, GatewayError> {
        let state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        Ok(state
            .charges
            .get(idempotency_key)
            .map(|record| record.outcome.clone()))
    }

    fn find_refund(
        &self,
        _merchant: &str,
        idempotency_key: &str,
    ) -> Result<Lookup<RefundReceipt>, GatewayError> {
        let state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        Ok(state
            .refunds
            .get(idempotency_key)
            .map(|record| record.outcome.clone()))
    }

    fn refund(
        &self,
        _merchant: &str,
        charge_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, GatewayError> {
        let mut state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        if let Some(previous) = state.refunds.get(idempotency_key) {
            if previous.charge_id != charge_id || previous.amount != amount {
                return Err(GatewayError::IdempotencyKeyReused);
            }
            return previous.outcome.clone();
        }
        let refusing = state.refund_fails.contains(charge_id);
        let outcome = match state.charged.get_mut(charge_id) {
            _ if amount.amount <= 0 => Err(GatewayError::InvalidAmount),
            Some(_) if refusing => Err(GatewayError::RefundFailed),
            None => Err(GatewayError::UnknownCharge),
            Some((charged, refunded)) => {
                let left = charged.amount - *refunded;
                if charged.currency != amount.currency || amount.amount > left {
                    Err(GatewayError::RefundExceedsCharge)
                } else {
                    *refunded += amount.amount;
                    Ok(RefundReceipt {
                        refund_id: derived_id("re", idempotency_key),
                        charge_id: charge_id.to_owned(),
                        amount,
                        idempotency_key: idempotency_key.to_owned(),
                    })
                }
            }
        };
        state.refunds.insert(
            idempotency_key.to_owned(),
            RefundRecord {
                charge_id: charge_id.to_owned(),
                amount,
                outcome: outcome.clone(),
            },
        );
        outcome
    }

    fn card(&self, token: &str) -> Result<CardView, GatewayError> {
        let state = self.state();
        if state.unavailable {
            return Err(GatewayError::Unavailable);
        }
        drop(state);
        self.decode(token)
            .map(|c| c.view)
            .ok_or(GatewayError::UnknownToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::money::Currency;
    use crate::schedule::idempotency_key;
    use chrono::{TimeZone, Utc};

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn clock() -> FixedClock {
        FixedClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).single().unwrap())
    }

    fn sandbox() -> SandboxGateway {
        SandboxGateway::new(Arc::new(clock()))
    }

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

    fn tokenize(gw: &SandboxGateway, number: &str) -> Result<CardToken, GatewayError> {
        gw.tokenize(details(number, 12, 2030))
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

    #[test]
    fn every_documented_test_card_is_known_and_luhn_valid() {
        assert_eq!(TEST_CARDS.len(), 8);
        for (number, what) in TEST_CARDS {
            assert!(looks_like_pan(number), "{number}");
            assert!(test_card(number).is_some(), "{number}");
            let (brand, _, _) = test_card(number).unwrap();
            assert_eq!(CardBrand::from_number(number), brand, "{what}");
        }
    }

    #[test]
    fn tokenize_gives_a_deterministic_token_and_the_card_view() {
        let gw = sandbox();
        let visa = tokenize(&gw, test_cards::VISA).unwrap();
        assert!(visa.token.starts_with("tok_sandbox_"));
        assert_eq!(visa.token.len(), "tok_sandbox_".len() + 24);
        assert!(!visa.token.contains("4242"));
        assert_eq!(
            visa.card,
            CardView {
                brand: CardBrand::Visa,
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030,
                funding: Funding::Credit
            }
        );
        // Same card, same token, even in another sandbox instance.
        assert_eq!(tokenize(&gw, test_cards::VISA).unwrap().token, visa.token);
        assert_eq!(
            tokenize(&sandbox(), test_cards::VISA).unwrap().token,
            visa.token
        );
        // Another expiry or key, another token.
        let other = gw.tokenize(details(test_cards::VISA, 11, 2030)).unwrap();
        assert_ne!(other.token, visa.token);
        let keyed = SandboxGateway::with_token_key(Arc::new(clock()), b"other key");
        assert_ne!(
            tokenize(&keyed, test_cards::VISA).unwrap().token,
            visa.token
        );

        assert_eq!(gw.card(&visa.token), Ok(visa.card.clone()));
        assert_eq!(gw.card("tok_sandbox_nope"), Err(GatewayError::UnknownToken));
        // Tokens carry no state: another instance (another node, or after a
        // restart) reads them; a tampered one is refused.
        assert_eq!(sandbox().card(&visa.token), Ok(visa.card.clone()));
        let mut tampered = visa.token.clone();
        tampered.replace_range(12..14, "01");
        assert_eq!(gw.card(&tampered), Err(GatewayError::UnknownToken));

        let mc = tokenize(&gw, test_cards::MASTERCARD).unwrap();
        assert_eq!(
            (mc.card.brand, mc.card.last4.as_str()),
            (CardBrand::Mastercard, "4444")
        );
        let debit = tokenize(&gw, test_cards::VISA_DEBIT).unwrap();
        assert_eq!(debit.card.funding, Funding::Debit);
        let amex = tokenize(&gw, test_cards::AMEX).unwrap();
        assert_eq!(amex.card.brand, CardBrand::Amex);
        let discover = tokenize(&gw, test_cards::DISCOVER).unwrap();
        assert_eq!(discover.card.brand, CardBrand::Other);
    }

    #[test]
    fn tokenize_refuses_declined_expired_invalid_and_unknown_cards() {
        let gw = sandbox();
        let err = tokenize(&gw, test_cards::DECLINED).unwrap_err();
        assert_eq!(
            err,
            GatewayError::Declined {
                reason: DeclineReason::Generic
            }
        );
        assert_eq!(err.code(), "card_declined");
        // Expired last month (the clock says March 2026); this month is fine.
        let err = gw.tokenize(details(test_cards::VISA, 2, 2026)).unwrap_err();
        assert_eq!(err, GatewayError::ExpiredCard);
        assert_eq!(err.code(), "expired_card");
        assert!(gw.tokenize(details(test_cards::VISA, 3, 2026)).is_ok());
        assert_eq!(
            gw.tokenize(details(test_cards::VISA, 13, 2030)),
            Err(GatewayError::InvalidCard)
        );
        assert_eq!(
            gw.tokenize(details(test_cards::VISA, 0, 2030)),
            Err(GatewayError::InvalidCard)
        );
        let mut amex_with_3 = details(test_cards::AMEX, 12, 2030);
        amex_with_3.cvc = Cvc::parse("123").unwrap();
        assert_eq!(gw.tokenize(amex_with_3), Err(GatewayError::InvalidCard));
        // A valid number that is not a test card (possibly a real card).
        let err = tokenize(&gw, "4111111111111111").unwrap_err();
        assert_eq!(
            err,
            GatewayError::Declined {
                reason: DeclineReason::NotATestCard
            }
        );
    }

    #[test]
    fn charges_are_idempotent_per_key() {
        let gw = sandbox();
        let token = tokenize(&gw, test_cards::VISA).unwrap().token;
        let key = idempotency_key("ins_1", 1);
        let first = gw.charge("org_t", &token, eur(10_000), &key).unwrap();
        assert!(first.charge_id.starts_with("ch_sandbox_"));
        assert_eq!(first.amount, eur(10_000));
        let again = gw.charge("org_t", &token, eur(10_000), &key).unwrap();
        assert_eq!(again, first);
        assert_eq!(gw.charge_count(&key), 1);
        assert_eq!(gw.successful_charges(), 1);
        assert_eq!(gw.total_charged(), 10_000);
        // Same key, different request: refused, nothing charged.
        assert_eq!(
            gw.charge("org_t", &token, eur(9_999), &key),
            Err(GatewayError::IdempotencyKeyReused)
        );
        // Another attempt, another key, another charge.
        let key2 = idempotency_key("ins_1", 2);
        let second = gw.charge("org_t", &token, eur(10_000), &key2).unwrap();
        assert_ne!(second.charge_id, first.charge_id);
        assert_eq!(gw.total_charged(), 20_000);
        assert_eq!(gw.charge_count("never used"), 0);
    }

    #[test]
    fn failing_charges_fail_the_same_way_on_replay_and_charge_nothing() {
        let gw = sandbox();
        let poor = tokenize(&gw, test_cards::INSUFFICIENT_FUNDS).unwrap().token;
        let key = idempotency_key("ins_2", 1);
        let err = gw.charge("org_t", &poor, eur(5_000), &key).unwrap_err();
        assert_eq!(err, GatewayError::InsufficientFunds);
        assert_eq!(err.code(), "insufficient_funds");
        assert_eq!(gw.charge("org_t", &poor, eur(5_000), &key), Err(err));
        assert_eq!(gw.charge_count(&key), 0);

        let expired = tokenize(&gw, test_cards::EXPIRED).unwrap();
        assert_eq!(expired.card.exp_year, 2030);
        assert_eq!(
            gw.charge("org_t", &expired.token, eur(5_000), "k-exp"),
            Err(GatewayError::ExpiredCard)
        );
        assert_eq!(
            gw.charge("org_t", "tok_sandbox_unknown", eur(5_000), "k-unknown"),
            Err(GatewayError::UnknownToken)
        );
        let visa = tokenize(&gw, test_cards::VISA).unwrap().token;
        assert_eq!(
            gw.charge("org_t", &visa, eur(0), "k-zero"),
            Err(GatewayError::InvalidAmount)
        );
        assert_eq!(gw.total_charged(), 0);
    }

    #[test]
    fn a_card_that_expires_after_tokenization_fails_at_charge() {
        let clock = clock();
        let gw = SandboxGateway::new(Arc::new(clock.clone()));
        let card = gw.tokenize(details(test_cards::VISA, 4, 2026)).unwrap();
        assert!(gw.charge("org_t", &card.token, eur(100), "k1").is_ok());
        clock.advance(chrono::Duration::days(60)); // May 9, 2026
        assert_eq!(
            gw.charge("org_t", &card.token, eur(100), "k2"),
            Err(GatewayError::ExpiredCard)
        );
    }

    #[test]
    fn refunds_are_idempotent_and_bounded_by_the_charge() {
        let gw = sandbox();
        let token = tokenize(&gw, test_cards::MASTERCARD).unwrap().token;
        let charge = gw.charge("org_t", &token, eur(10_000), "ch-key").unwrap();
        let refund = gw
            .refund("org_t", &charge.charge_id, eur(6_000), "re-1")
            .unwrap();
        assert!(refund.refund_id.starts_with("re_sandbox_"));
        assert_eq!(refund.charge_id, charge.charge_id);
        assert_eq!(
            gw.refund("org_t", &charge.charge_id, eur(6_000), "re-1"),
            Ok(refund)
        );
        assert_eq!(gw.total_refunded(), 6_000);
        let err = gw
            .refund("org_t", &charge.charge_id, eur(4_001), "re-2")
            .unwrap_err();
        assert_eq!(err.code(), "refund_exceeds_charge");
        assert!(
            gw.refund("org_t", &charge.charge_id, eur(4_000), "re-3")
                .is_ok()
        );
        assert_eq!(gw.total_refunded(), 10_000);
        assert_eq!(
            gw.refund("org_t", &charge.charge_id, eur(1), "re-1"),
            Err(GatewayError::IdempotencyKeyReused)
        );
        assert_eq!(
            gw.refund("org_t", "ch_sandbox_nope", eur(1), "re-4"),
            Err(GatewayError::UnknownCharge)
        );
        assert_eq!(
            gw.refund("org_t", &charge.charge_id, eur(-1), "re-5"),
            Err(GatewayError::InvalidAmount)
        );
    }

    #[test]
    fn an_outage_fails_every_call_without_recording_it() {
        let gw = sandbox();
        let token = tokenize(&gw, test_cards::VISA).unwrap().token;
        gw.set_unavailable(true);
        let err = gw.charge("org_t", &token, eur(100), "k").unwrap_err();
        assert_eq!(err, GatewayError::Unavailable);
        assert!(err.is_transient());
        assert!(!GatewayError::InsufficientFunds.is_transient());
        assert_eq!(gw.card(&token), Err(GatewayError::Unavailable));
        assert_eq!(
            tokenize(&gw, test_cards::VISA),
            Err(GatewayError::Unavailable)
        );
        gw.set_unavailable(false);
        // The retry with the same key goes through once.
        assert!(gw.charge("org_t", &token, eur(100), "k").is_ok());
        assert_eq!(gw.charge_count("k"), 1);
    }

    #[test]
    fn the_gateway_is_usable_as_a_shared_trait_object() {
        let gw: Arc<dyn PaymentGateway> = Arc::new(sandbox());
        let token = gw
            .tokenize(details(test_cards::VISA, 12, 2030))
            .unwrap()
            .token;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let gw = Arc::clone(&gw);
                let token = token.clone();
                std::thread::spawn(move || {
                    gw.charge("org_t", &token, eur(100), "same-key").unwrap()
                })
            })
            .collect();
        let receipts: Vec<ChargeReceipt> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(receipts.windows(2).all(|w| w[0] == w[1]));
    }
}
