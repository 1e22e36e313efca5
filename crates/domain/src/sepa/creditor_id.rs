//! The SEPA creditor identifier ("identifiant créancier SEPA", ICS in
//! France): who collects, on every mandate and every debit.
//!
//! Layout (EPC262-08):
//!
//! | part | length | example `FR72ZZZ123456` |
//! |---|---|---|
//! | ISO 3166 country code | 2 letters | `FR` |
//! | check digits | 2 digits | `72` |
//! | creditor business code | 3 alphanumerics | `ZZZ` (`ZZZ` when unused) |
//! | national identifier | 1–28 alphanumerics | `123456` |
//!
//! The check digits are ISO 7064 MOD 97-10 over the national identifier
//! followed by the country code and `00`, letters counting `A` = 10 ...
//! `Z` = 35: `98 − (n mod 97)`. The business code is left out of the
//! computation, so a creditor can change it freely (one per business line)
//! without changing its check digits.
//!
//! The national identifier's length differs per country (6 in France, 11 in
//! Germany, 9 in Spain...); only the overall limit of 35 characters is
//! enforced here.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{compact_upper, mod97};

/// A SEPA creditor identifier with valid check digits, kept upper-case and
/// without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditorId(String);

/// Why a creditor identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditorIdError {
    /// Not country + 2 digits + 3 alphanumerics + 1–28 alphanumerics.
    #[error(
        "a creditor identifier is a country code, 2 check digits, a 3-character business code and a national identifier"
    )]
    Format,
    /// The check digits do not match the national identifier.
    #[error("the creditor identifier's check digits are wrong")]
    CheckDigits,
}

impl CreditorIdError {
    /// A stable snake_case code for API error bodies (the same for both
    /// reasons: the customer only needs to know the identifier is wrong).
    pub fn code(&self) -> &'static str {
        "creditor_id_invalid"
    }
}

/// The check digits of a creditor identifier of `country` (two upper-case
/// letters) whose national identifier is `national_id` (upper-case
/// alphanumerics). `None` if either is malformed.
pub fn creditor_id_check_digits(country: &str, national_id: &str) -> Option<u8> {
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    if national_id.is_empty() {
        return None;
    }
    let remainder = mod97(&format!("{national_id}{country}00"))?;
    u8::try_from(98 - remainder).ok()
}

impl CreditorId {
    /// Parses an identifier as typed: spaces are ignored and letters
    /// upper-cased (`fr72 zzz 123456` is `FR72ZZZ123456`).
    pub fn parse(input: &str) -> Result<Self, CreditorIdError> {
        let value = compact_upper(input);
        let bytes = value.as_bytes();
        let well_formed = (8..=35).contains(&bytes.len())
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..4].iter().all(u8::is_ascii_digit)
            && bytes[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(CreditorIdError::Format);
        }
        let expected =
            creditor_id_check_digits(&value[..2], &value[7..]).ok_or(CreditorIdError::Format)?;
        if value[2..4] != format!("{expected:02}") {
            return Err(CreditorIdError::CheckDigits);
        }
        Ok(CreditorId(value))
    }

    /// The whole identifier, e.g. `FR72ZZZ123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166 country code, e.g. `FR`.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// The two check digits, e.g. `72`.
    pub fn check_digits(&self) -> &str {
        &self.0[2..4]
    }

    /// The creditor business code, e.g. `ZZZ`.
    pub fn business_code(&self) -> &str {
        &self.0[4..7]
    }

    /// The national identifier, e.g. `123456`.
    pub fn national_id(&self) -> &str {
        &self.0[7..]
    }
}

impl fmt::Display for CreditorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CreditorId {
    type Error = CreditorIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CreditorId::parse(&value)
    }
}

impl From<CreditorId> for String {
    fn from(value: CreditorId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_identifiers_are_accepted() {
        for (input, country, business, national) in [
            ("FR72ZZZ123456", "FR", "ZZZ", "123456"),
            ("DE98ZZZ09999999999", "DE", "ZZZ", "09999999999"),
            ("ES59ZZZX1234567L", "ES", "ZZZ", "X1234567L"),
        ] {
            let id = CreditorId::parse(input).unwrap();
            assert_eq!(id.as_str(), input);
            assert_eq!(id.country(), country);
            assert_eq!(id.check_digits(), &input[2..4]);
            assert_eq!(id.business_code(), business);
            assert_eq!(id.national_id(), national);
        }
    }

    #[test]
    fn the_business_code_is_outside_the_check() {
        let id = CreditorId::parse("FR72ABC123456").unwrap();
        assert_eq!(id.business_code(), "ABC");
        assert!(CreditorId::parse("DE98001 09999999999").is_ok());
    }

    #[test]
    fn spaces_and_case_are_normalized() {
        let id = CreditorId::parse(" fr72 zzz 123 456 ").unwrap();
        assert_eq!(id.to_string(), "FR72ZZZ123456");
    }

    #[test]
    fn wrong_check_digits_are_refused() {
        for bad in [
            "FR73ZZZ123456",
            "FR27ZZZ123456",
            "DE97ZZZ09999999999",
            "ES59ZZZX1234567M",
            "FR72ZZZ123465",
            "BE72ZZZ123456",
        ] {
            let err = CreditorId::parse(bad).unwrap_err();
            assert_eq!(err, CreditorIdError::CheckDigits, "{bad}");
            assert_eq!(err.code(), "creditor_id_invalid");
        }
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        for bad in [
            "",
            "FR72ZZZ",
            "F172ZZZ123456",
            "FRA2ZZZ123456",
            "FR72ZZZ12-456",
            "FR72ZZZ12É456",
            &format!("FR72ZZZ{}", "1".repeat(29)),
        ] {
            assert_eq!(
                CreditorId::parse(bad),
                Err(CreditorIdError::Format),
                "{bad}"
            );
        }
    }

    #[test]
    fn check_digits_are_computed_from_national_id_and_country() {
        assert_eq!(creditor_id_check_digits("FR", "123456"), Some(72));
        assert_eq!(creditor_id_check_digits("DE", "09999999999"), Some(98));
        assert_eq!(creditor_id_check_digits("ES", "X1234567L"), Some(59));
        assert_eq!(creditor_id_check_digits("fr", "123456"), None);
        assert_eq!(creditor_id_check_digits("FR", ""), None);
        // Every computed pair of digits is accepted back.
        for national in ["1", "000000", "ABCDEF", "Z9Z9Z9Z9Z9", "99999999999"] {
            let digits = creditor_id_check_digits("IT", national).unwrap();
            assert!((2..=98).contains(&digits));
            let id = format!("IT{digits:02}ZZZ{national}");
            assert!(CreditorId::parse(&id).is_ok(), "{id}");
        }
    }

    #[test]
    fn serde_validates() {
        let id: CreditorId = serde_json::from_str("\"FR72ZZZ123456\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"FR72ZZZ123456\"");
        assert!(serde_json::from_str::<CreditorId>("\"FR00ZZZ123456\"").is_err());
    }
}
