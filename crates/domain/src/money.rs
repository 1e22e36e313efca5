//! Money as integer minor units with an ISO 4217 currency. Never a float.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a three-letter upper-case code.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(MoneyError::InvalidCurrency)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters get in through `parse`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be three upper-case letters (ISO 4217)")]
    InvalidCurrency,
    #[error("amounts in different currencies cannot be combined")]
    CurrencyMismatch,
    #[error("amount out of range")]
    Overflow,
    #[error("cannot split into zero parts")]
    ZeroParts,
}

/// An amount in minor units (cents for EUR) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units; `12999` EUR is 129.99 EUR.
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// The sum, refusing mixed currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// The difference, refusing mixed currencies and overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Splits into `parts` amounts that sum exactly to `self`; the remainder
    /// cents go to the first parts, one each.
    pub fn split(self, parts: u32) -> Result<Vec<Money>, MoneyError> {
        if parts == 0 {
            return Err(MoneyError::ZeroParts);
        }
        let n = i64::from(parts);
        let base = self.amount.div_euclid(n);
        let remainder = self.amount.rem_euclid(n);
        Ok((0..n)
            .map(|i| Money::new(base + i64::from(i < remainder), self.currency))
            .collect())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    #[test]
    fn split_puts_remainder_on_first_parts_and_sums_to_total() {
        let parts = eur(10_000).split(3).unwrap();
        assert_eq!(
            parts.iter().map(|m| m.amount).collect::<Vec<_>>(),
            [3334, 3333, 3333]
        );
        for total in [0_i64, 1, 2, 99, 100, 12_999, 1_000_001] {
            for n in 1..=12 {
                let parts = eur(total).split(n).unwrap();
                assert_eq!(parts.len(), n as usize);
                assert_eq!(parts.iter().map(|m| m.amount).sum::<i64>(), total);
                let max = parts.iter().map(|m| m.amount).max().unwrap();
                let min = parts.iter().map(|m| m.amount).min().unwrap();
                assert!(max - min <= 1);
                assert!(parts.windows(2).all(|w| w[0].amount >= w[1].amount));
            }
        }
        assert_eq!(eur(5).split(0), Err(MoneyError::ZeroParts));
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let usd = Money::new(1, Currency::parse("USD").unwrap());
        assert_eq!(eur(1).checked_add(usd), Err(MoneyError::CurrencyMismatch));
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(5).checked_sub(eur(7)).unwrap().amount, -2);
    }

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("E1R").is_err());
        assert_eq!(Currency::parse("CHF").unwrap().to_string(), "CHF");
        assert_eq!(eur(-12_999).to_string(), "-129.99 EUR");
    }
}
