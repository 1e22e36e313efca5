//! The sandbox gateway's rules, as pure functions: which test card a number
//! is and what it does, its tokens (derived and decoded without any stored
//! state), and the outcome of a charge or a refund. The gateway that applies
//! them and keeps the ledger is `guichet_gateway::SandboxGateway`.

use chrono::NaiveDate;
use hmac::Mac;
use sha2::{Digest, Sha256};

use super::{CardDetails, CardToken, DeclineReason, GatewayError, TEST_CARDS, test_cards};
use crate::card::{CardBrand, CardView, Funding, card_expiry};
use crate::money::Money;
use crate::secret::{constant_time_eq, hmac_sha256, to_hex};

/// What a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Tokenizes; charges and refunds succeed.
    Succeeds,
    /// Declined when tokenized.
    DeclinedAtTokenize,
    /// Tokenizes; charges fail with insufficient funds.
    InsufficientFunds,
    /// Tokenizes; charges fail as an expired card.
    ExpiredAtCharge,
    /// Charged, then the answer is lost (the call times out).
    Timeout,
    /// Charges fail with a processing error, charging nothing.
    ProcessingError,
    /// Charged at once, answered late.
    Slow,
    /// Charges succeed; refunds fail.
    RefundFails,
}

/// How the answer to a charge that was made reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At once.
    Immediate,
    /// Never: the call fails with [`GatewayError::Timeout`].
    Lost,
    /// After the sandbox's slow delay.
    Late,
}

impl Behaviour {
    /// How the first answer to a charge of this card is delivered (a replay
    /// of its key is always answered at once).
    pub fn delivery(self) -> Delivery {
        match self {
            Behaviour::Timeout => Delivery::Lost,
            Behaviour::Slow => Delivery::Late,
            _ => Delivery::Immediate,
        }
    }

    /// Whether refunds of this card's charges fail.
    pub fn refunds_fail(self) -> bool {
        self == Behaviour::RefundFails
    }
}

/// The brand, funding and behaviour of a test card number; `None` for any
/// other number.
pub fn test_card(number: &str) -> Option<(CardBrand, Funding, Behaviour)> {
    use test_cards as t;
    let visa = |behaviour| (CardBrand::Visa, Funding::Credit, behaviour);
    let found = match number {
        t::VISA => visa(Behaviour::Succeeds),
        t::MASTERCARD => (CardBrand::Mastercard, Funding::Credit, Behaviour::Succeeds),
        t::VISA_DEBIT => (CardBrand::Visa, Funding::Debit, Behaviour::Succeeds),
        t::AMEX => (CardBrand::Amex, Funding::Credit, Behaviour::Succeeds),
        t::DISCOVER => (CardBrand::Other, Funding::Credit, Behaviour::Succeeds),
        t::DECLINED => visa(Behaviour::DeclinedAtTokenize),
        t::INSUFFICIENT_FUNDS => visa(Behaviour::InsufficientFunds),
        t::EXPIRED => visa(Behaviour::ExpiredAtCharge),
        t::TIMEOUT => visa(Behaviour::Timeout),
        t::PROCESSING_ERROR => visa(Behaviour::ProcessingError),
        t::SLOW => visa(Behaviour::Slow),
        t::REFUND_FAILS => visa(Behaviour::RefundFails),
        _ => return None,
    };
    Some(found)
}

/// The key tokens are derived under when none is given: sandbox tokens are
/// then the same across runs and instances.
pub const DEFAULT_TOKEN_KEY: &[u8] = b"guichet-sandbox-token-key-v1";

/// The test card behind a sandbox token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCard {
    /// What may be shown of it.
    pub view: CardView,
    /// What it does.
    pub behaviour: Behaviour,
}

/// The sandbox's tokens: `tok_sandbox_` + the test card's index in
/// [`TEST_CARDS`] (2 digits), the expiry month (2) and year (4), and 16 hex
/// digits of an HMAC of those under the token key. A token names which test
/// card it is (never its number) and needs no stored state, so it works on
/// every node and after a restart.
#[derive(Clone)]
pub struct SandboxTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for SandboxTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxTokens").finish_non_exhaustive()
    }
}

impl Default for SandboxTokens {
    fn default() -> Self {
        Self::new(DEFAULT_TOKEN_KEY)
    }
}

impl SandboxTokens {
    /// Tokens derived under `key` (the server secret key, so that every
    /// node and job reads the same tokens).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// Exchanges test card details for a token, as of `today`: any other
    /// number is declined ([`DeclineReason::NotATestCard`]); the expiry must
    /// not be past and the security code must have the brand's length.
    pub fn tokenize(&self, card: CardDetails, today: NaiveDate) -> Result<CardToken, GatewayError> {
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
        if expires_on < today {
            return Err(GatewayError::ExpiredCard);
        }
        if behaviour == Behaviour::DeclinedAtTokenize {
            return Err(GatewayError::Declined {
                reason: DeclineReason::Generic,
            });
        }
        let index = TEST_CARDS
            .iter()
            .position(|(n, _)| *n == card.number.expose())
            .ok_or(GatewayError::InvalidCard)?;
        let body = format!("{index:02}{:02}{:04}", card.exp_month, card.exp_year);
        let token = format!("tok_sandbox_{body}{}", self.mac(&body));
        let view = CardView {
            brand,
            last4: card.number.last4(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            funding,
        };
        Ok(CardToken { token, card: view })
    }

    fn mac(&self, body: &str) -> String {
        let mut mac = hmac_sha256(&self.key);
        mac.update(body.as_bytes());
        to_hex(&mac.finalize().into_bytes())[..16].to_owned()
    }

    /// The card a token stands for, if the token is one of ours.
    pub fn decode(&self, token: &str) -> Option<SandboxCard> {
        let rest = token.strip_prefix("tok_sandbox_")?;
        if rest.len() != 24 || !rest.is_ascii() {
            return None;
        }
        let (body, mac) = rest.split_at(8);
        if !constant_time_eq(&self.mac(body), mac) {
            return None;
        }
        let index: usize = body[..2].parse().ok()?;
        let exp_month: u8 = body[2..4].parse().ok()?;
        let exp_year: u16 = body[4..8].parse().ok()?;
        let (number, _) = TEST_CARDS.get(index)?;
        let (brand, funding, behaviour) = test_card(number)?;
        Some(SandboxCard {
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

/// Whether the sandbox issuer knows a card ending in `last4` as the card of
/// the account with `client_reference`: it does when the reference, without
/// separators, ends with the card's last four digits (`BE-CARO-0042-4242`
/// is the account of the test card ending in 4242).
pub fn reference_matches(client_reference: &str, last4: &str) -> bool {
    let reference = crate::consent::normalize_reference(client_reference);
    last4.len() == 4 && reference.len() > 4 && reference.ends_with(last4)
}

/// The answers the sandbox issuer's page offers, by name: `succeeded` or
/// an [`AuthenticationFailure`](super::AuthenticationFailure).
pub fn sca_outcome(name: &str) -> Option<super::AuthenticationOutcome> {
    if name == "succeeded" {
        return Some(super::AuthenticationOutcome::Succeeded);
    }
    super::AuthenticationFailure::parse(name).map(super::AuthenticationOutcome::Failed)
}

/// The sandbox's session reference for `merchant` and `idempotency_key`.
pub fn sca_session_id(merchant: &str, idempotency_key: &str) -> String {
    let digest = Sha256::digest(format!("sca\0{merchant}\0{idempotency_key}").as_bytes());
    format!("sca_sandbox_{}", &to_hex(&digest)[..24])
}

/// What the sandbox does with a well-formed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move the money.
    Proceed,
    /// Record the operation as failed with this error, and answer it.
    Fail(GatewayError),
}

/// What becomes of a charge of `amount` to `card` (the decoded token, `None`
/// when the token is not one of ours) on `today`. `Err` is a request the
/// gateway refuses outright and does not record (like a PSP's validation
/// error): a non-positive amount or an unknown token. Otherwise the charge
/// is recorded, made or failed as the card says.
pub fn charge_decision(
    card: Option<&SandboxCard>,
    amount: Money,
    today: NaiveDate,
) -> Result<Decision, GatewayError> {
    if amount.amount <= 0 {
        return Err(GatewayError::InvalidAmount);
    }
    let card = card.ok_or(GatewayError::UnknownToken)?;
    if card.view.is_expired(today) {
        return Ok(Decision::Fail(GatewayError::ExpiredCard));
    }
    Ok(match card.behaviour {
        Behaviour::InsufficientFunds => Decision::Fail(GatewayError::InsufficientFunds),
        Behaviour::ExpiredAtCharge => Decision::Fail(GatewayError::ExpiredCard),
        Behaviour::DeclinedAtTokenize => Decision::Fail(GatewayError::Declined {
            reason: DeclineReason::Generic,
        }),
        Behaviour::ProcessingError => Decision::Fail(GatewayError::ProcessingError),
        Behaviour::Succeeds | Behaviour::Timeout | Behaviour::Slow | Behaviour::RefundFails => {
            Decision::Proceed
        }
    })
}

/// A successful charge as a refund sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeBalance {
    /// What was charged.
    pub charged: Money,
    /// What was refunded of it so far, in minor units.
    pub refunded: i64,
    /// Whether its card's refunds fail.
    pub refunds_fail: bool,
}

/// What becomes of a refund of `amount` of `charge` (`None` when no
/// successful charge of the merchant has that id). `Err` is refused outright
/// and not recorded: a non-positive amount, an unknown charge, another
/// currency or more than is left. A charge whose refunds fail records the
/// refund as failed.
pub fn refund_decision(
    charge: Option<&ChargeBalance>,
    amount: Money,
) -> Result<Decision, GatewayError> {
    if amount.amount <= 0 {
        return Err(GatewayError::InvalidAmount);
    }
    let charge = charge.ok_or(GatewayError::UnknownCharge)?;
    if charge.charged.currency != amount.currency
        || amount.amount > charge.charged.amount - charge.refunded
    {
        return Err(GatewayError::RefundExceedsCharge);
    }
    if charge.refunds_fail {
        return Ok(Decision::Fail(GatewayError::RefundFailed));
    }
    Ok(Decision::Proceed)
}

/// The id of the charge `merchant` sent under `idempotency_key`: derived
/// from both, so a replay names the same charge and two merchants' keys
/// never collide.
pub fn charge_id(merchant: &str, idempotency_key: &str) -> String {
    derived_id("ch", merchant, idempotency_key)
}

/// The id of the refund `merchant` sent under `idempotency_key`.
pub fn refund_id(merchant: &str, idempotency_key: &str) -> String {
    derived_id("re", merchant, idempotency_key)
}

fn derived_id(prefix: &str, merchant: &str, key: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(merchant.as_bytes());
    digest.update([0]);
    digest.update(key.as_bytes());
    let digest = to_hex(&digest.finalize());
    format!("{prefix}_sandbox_{}", &digest[..24])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{Cvc, Pan};
    use crate::money::Currency;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
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

    fn tokenize(tokens: &SandboxTokens, number: &str) -> Result<CardToken, GatewayError> {
        tokens.tokenize(details(number, 12, 2030), today())
    }

    #[test]
    fn every_documented_test_card_is_known_and_luhn_valid() {
        assert_eq!(TEST_CARDS.len(), 12);
        for (number, what) in TEST_CARDS {
            assert!(crate::gateway::looks_like_pan(number), "{number}");
            let (brand, _, _) = test_card(number).unwrap();
            assert_eq!(CardBrand::from_number(number), brand, "{what}");
        }
        // Tokens encode the index: the first eight cards keep theirs.
        assert_eq!(TEST_CARDS[7].0, test_cards::EXPIRED);
    }

    #[test]
    fn tokenize_gives_a_deterministic_token_and_the_card_view() {
        let tokens = SandboxTokens::default();
        let visa = tokenize(&tokens, test_cards::VISA).unwrap();
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
        // Same card, same token, even with another instance.
        assert_eq!(
            tokenize(&tokens, test_cards::VISA).unwrap().token,
            visa.token
        );
        assert_eq!(
            tokenize(&SandboxTokens::default(), test_cards::VISA)
                .unwrap()
                .token,
            visa.token
        );
        // Another expiry or key, another token.
        let other = tokens
            .tokenize(details(test_cards::VISA, 11, 2030), today())
            .unwrap();
        assert_ne!(other.token, visa.token);
        let keyed = SandboxTokens::new(b"other key");
        assert_ne!(
            tokenize(&keyed, test_cards::VISA).unwrap().token,
            visa.token
        );
        assert_eq!(keyed.decode(&visa.token), None);

        let decoded = tokens.decode(&visa.token).unwrap();
        assert_eq!(decoded.view, visa.card);
        assert_eq!(decoded.behaviour, Behaviour::Succeeds);
        assert_eq!(tokens.decode("tok_sandbox_nope"), None);
        let mut tampered = visa.token.clone();
        tampered.replace_range(12..14, "01");
        assert_eq!(tokens.decode(&tampered), None);

        let mc = tokenize(&tokens, test_cards::MASTERCARD).unwrap();
        assert_eq!(
            (mc.card.brand, mc.card.last4.as_str()),
            (CardBrand::Mastercard, "4444")
        );
        let debit = tokenize(&tokens, test_cards::VISA_DEBIT).unwrap();
        assert_eq!(debit.card.funding, Funding::Debit);
        let amex = tokenize(&tokens, test_cards::AMEX).unwrap();
        assert_eq!(amex.card.brand, CardBrand::Amex);
        let discover = tokenize(&tokens, test_cards::DISCOVER).unwrap();
        assert_eq!(discover.card.brand, CardBrand::Other);
        for (number, behaviour, last4) in [
            (test_cards::TIMEOUT, Behaviour::Timeout, "0259"),
            (
                test_cards::PROCESSING_ERROR,
                Behaviour::ProcessingError,
                "0119",
            ),
            (test_cards::SLOW, Behaviour::Slow, "0077"),
            (test_cards::REFUND_FAILS, Behaviour::RefundFails, "5126"),
        ] {
            let token = tokenize(&tokens, number).unwrap();
            assert_eq!(token.card.last4, last4);
            assert_eq!(token.card.brand, CardBrand::Visa);
            assert_eq!(tokens.decode(&token.token).unwrap().behaviour, behaviour);
        }
    }

    #[test]
    fn tokenize_refuses_declined_expired_invalid_and_unknown_cards() {
        let tokens = SandboxTokens::default();
        let err = tokenize(&tokens, test_cards::DECLINED).unwrap_err();
        assert_eq!(
            err,
            GatewayError::Declined {
                reason: DeclineReason::Generic
            }
        );
        assert_eq!(err.code(), "card_declined");
        // Expired last month (today is in March 2026); this month is fine.
        let err = tokens
            .tokenize(details(test_cards::VISA, 2, 2026), today())
            .unwrap_err();
        assert_eq!(err, GatewayError::ExpiredCard);
        assert!(
            tokens
                .tokenize(details(test_cards::VISA, 3, 2026), today())
                .is_ok()
        );
        assert_eq!(
            tokens.tokenize(details(test_cards::VISA, 13, 2030), today()),
            Err(GatewayError::InvalidCard)
        );
        assert_eq!(
            tokens.tokenize(details(test_cards::VISA, 0, 2030), today()),
            Err(GatewayError::InvalidCard)
        );
        let mut amex_with_3 = details(test_cards::AMEX, 12, 2030);
        amex_with_3.cvc = Cvc::parse("123").unwrap();
        assert_eq!(
            tokens.tokenize(amex_with_3, today()),
            Err(GatewayError::InvalidCard)
        );
        let err = tokenize(&tokens, "4111111111111111").unwrap_err();
        assert_eq!(
            err,
            GatewayError::Declined {
                reason: DeclineReason::NotATestCard
            }
        );
    }

    #[test]
    fn charge_decisions_follow_the_card() {
        let tokens = SandboxTokens::default();
        let card = |number| {
            tokens
                .decode(&tokenize(&tokens, number).unwrap().token)
                .unwrap()
        };
        let decide = |number| charge_decision(Some(&card(number)), eur(100), today());
        for number in [
            test_cards::VISA,
            test_cards::TIMEOUT,
            test_cards::SLOW,
            test_cards::REFUND_FAILS,
        ] {
            assert_eq!(decide(number), Ok(Decision::Proceed), "{number}");
        }
        assert_eq!(
            decide(test_cards::INSUFFICIENT_FUNDS),
            Ok(Decision::Fail(GatewayError::InsufficientFunds))
        );
        assert_eq!(
            decide(test_cards::EXPIRED),
            Ok(Decision::Fail(GatewayError::ExpiredCard))
        );
        assert_eq!(
            decide(test_cards::PROCESSING_ERROR),
            Ok(Decision::Fail(GatewayError::ProcessingError))
        );
        assert_eq!(
            charge_decision(Some(&card(test_cards::VISA)), eur(0), today()),
            Err(GatewayError::InvalidAmount)
        );
        assert_eq!(
            charge_decision(None, eur(1), today()),
            Err(GatewayError::UnknownToken)
        );
        // A card that expired after it was tokenized.
        let later = NaiveDate::from_ymd_opt(2031, 1, 1).unwrap();
        assert_eq!(
            charge_decision(Some(&card(test_cards::VISA)), eur(1), later),
            Ok(Decision::Fail(GatewayError::ExpiredCard))
        );
        assert_eq!(Behaviour::Timeout.delivery(), Delivery::Lost);
        assert_eq!(Behaviour::Slow.delivery(), Delivery::Late);
        assert_eq!(Behaviour::Succeeds.delivery(), Delivery::Immediate);
    }

    #[test]
    fn refund_decisions_are_bounded_by_what_is_left() {
        let charge = ChargeBalance {
            charged: eur(10_000),
            refunded: 6_000,
            refunds_fail: false,
        };
        assert_eq!(
            refund_decision(Some(&charge), eur(4_000)),
            Ok(Decision::Proceed)
        );
        assert_eq!(
            refund_decision(Some(&charge), eur(4_001)),
            Err(GatewayError::RefundExceedsCharge)
        );
        let usd = Money::new(1, Currency::parse("USD").unwrap());
        assert_eq!(
            refund_decision(Some(&charge), usd),
            Err(GatewayError::RefundExceedsCharge)
        );
        assert_eq!(
            refund_decision(Some(&charge), eur(-1)),
            Err(GatewayError::InvalidAmount)
        );
        assert_eq!(
            refund_decision(None, eur(1)),
            Err(GatewayError::UnknownCharge)
        );
        let failing = ChargeBalance {
            refunds_fail: true,
            ..charge
        };
        assert_eq!(
            refund_decision(Some(&failing), eur(1)),
            Ok(Decision::Fail(GatewayError::RefundFailed))
        );
    }

    #[test]
    fn ids_are_derived_from_the_merchant_and_the_key() {
        let id = charge_id("org_a", "k1");
        assert!(id.starts_with("ch_sandbox_"));
        assert_eq!(id.len(), "ch_sandbox_".len() + 24);
        assert_eq!(charge_id("org_a", "k1"), id);
        assert_ne!(charge_id("org_b", "k1"), id);
        assert_ne!(charge_id("org_a", "k2"), id);
        assert!(refund_id("org_a", "k1").starts_with("re_sandbox_"));
        for code in [
            "card_declined",
            "insufficient_funds",
            "expired_card",
            "processing_error",
            "refund_failed",
        ] {
            assert_eq!(GatewayError::from_code(code).unwrap().code(), code);
        }
        assert_eq!(GatewayError::from_code("nope"), None);
    }
}
