//! The BIC (ISO 9362 business identifier code) of the debtor's bank.
//!
//! `BNPAFRPP` or `BNPAFRPPXXX`: 4 letters for the institution, 2 letters for
//! its country, 2 alphanumerics for the location, optionally 3
//! alphanumerics for the branch (`XXX` being the head office). Guichet also
//! applies the pattern of the pain.008 schema (`BICIdentifier`): the first
//! location character is not `0` or `1` (test and passive participants) and
//! the second is not the letter `O`, so that every BIC it accepts can be
//! sent in a collection file.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::compact_upper;
use super::iban::Iban;

/// A well-formed BIC, upper-case, 8 or 11 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bic(String);

/// Why a BIC was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BicError {
    /// Not an ISO 9362 BIC.
    #[error(
        "a BIC is 8 or 11 characters: bank (4 letters), country (2 letters), location (2), optional branch (3)"
    )]
    Invalid,
    /// The BIC's country is not the IBAN's.
    #[error("the BIC's country ({bic_country}) is not the IBAN's ({iban_country})")]
    CountryMismatch {
        /// The country in the BIC (characters 5 and 6).
        bic_country: String,
        /// The country of the IBAN.
        iban_country: String,
    },
}

impl BicError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            BicError::Invalid => "bic_invalid",
            BicError::CountryMismatch { .. } => "bic_country_mismatch",
        }
    }
}

impl Bic {
    /// Parses a BIC as typed: spaces are ignored and letters upper-cased.
    pub fn parse(input: &str) -> Result<Self, BicError> {
        let value = compact_upper(input);
        let b = value.as_bytes();
        let alnum = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
        let ok = (b.len() == 8 || b.len() == 11)
            && b[..6].iter().all(u8::is_ascii_uppercase)
            && (b[6].is_ascii_uppercase() || (b'2'..=b'9').contains(&b[6]))
            && alnum(&b[7])
            && b[7] != b'O'
            && b[8..].iter().all(alnum);
        if ok {
            Ok(Bic(value))
        } else {
            Err(BicError::Invalid)
        }
    }

    /// The BIC as kept, 8 or 11 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The institution code, e.g. `BNPA`.
    pub fn institution(&self) -> &str {
        &self.0[..4]
    }

    /// The ISO 3166 country code, e.g. `FR`.
    pub fn country(&self) -> &str {
        &self.0[4..6]
    }

    /// The location code, e.g. `PP`.
    pub fn location(&self) -> &str {
        &self.0[6..8]
    }

    /// The branch code of an 11-character BIC, e.g. `XXX`.
    pub fn branch(&self) -> Option<&str> {
        self.0.get(8..11)
    }

    /// The 8-character form when the BIC designates the head office
    /// (`BNPAFRPPXXX` → `BNPAFRPP`); a real branch is kept.
    pub fn normalized(&self) -> Bic {
        match self.branch() {
            Some("XXX") => Bic(self.0[..8].to_owned()),
            _ => self.clone(),
        }
    }
}

/// Whether `bic` may serve `iban`: Guichet requires the BIC's country to be
/// the IBAN's.
///
/// This is deliberately the plain rule. A few territories use another
/// country's IBAN with their own BIC country (Jersey, Guernsey and the Isle
/// of Man have `GB` IBANs and `JE`, `GG`, `IM` BICs, for instance); their
/// debtors are refused with `bic_country_mismatch` until an exception list
/// is needed.
pub fn check_bic_matches_iban(bic: &Bic, iban: &Iban) -> Result<(), BicError> {
    if bic.country() == iban.country() {
        Ok(())
    } else {
        Err(BicError::CountryMismatch {
            bic_country: bic.country().to_owned(),
            iban_country: iban.country().to_owned(),
        })
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Bic {
    type Error = BicError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Bic::parse(&value)
    }
}

impl From<Bic> for String {
    fn from(value: Bic) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_and_eleven_character_bics_are_accepted() {
        let bic = Bic::parse("BNPAFRPP").unwrap();
        assert_eq!(
            (
                bic.institution(),
                bic.country(),
                bic.location(),
                bic.branch()
            ),
            ("BNPA", "FR", "PP", None)
        );
        let bic = Bic::parse("cepa frpp 751").unwrap();
        assert_eq!(bic.as_str(), "CEPAFRPP751");
        assert_eq!(bic.branch(), Some("751"));
        for ok in [
            "DEUTDEFF",
            "BYLADEM1001",
            "RABONL2U",
            "QNTOFRP1XXX",
            "NTSBDEB1",
        ] {
            assert!(Bic::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_bics_are_refused() {
        for bad in [
            "",
            "BNPAFRP",
            "BNPAFRPPX",
            "BNPAFRPPXX",
            "BNPAFRPPXXXX",
            "BNP1FRPP",
            "BNPAF1PP",
            "BNPAFRP-",
            "BNPAFRPPXX-",
            "BNPAFR0P",
            "BNPAFR1P",
            "BNPAFRPO",
            "BNPAFRPPÉ",
        ] {
            let err = Bic::parse(bad).unwrap_err();
            assert_eq!(err, BicError::Invalid, "{bad}");
            assert_eq!(err.code(), "bic_invalid");
        }
    }

    #[test]
    fn head_office_bics_normalize_to_eight_characters() {
        assert_eq!(
            Bic::parse("BNPAFRPPXXX").unwrap().normalized().as_str(),
            "BNPAFRPP"
        );
        assert_eq!(
            Bic::parse("BNPAFRPP").unwrap().normalized().as_str(),
            "BNPAFRPP"
        );
        assert_eq!(
            Bic::parse("CEPAFRPP751").unwrap().normalized().as_str(),
            "CEPAFRPP751"
        );
    }

    #[test]
    fn the_bic_country_must_be_the_iban_country() {
        let iban = Iban::parse("FR7630006000011234567890189").unwrap();
        assert_eq!(
            check_bic_matches_iban(&Bic::parse("AGRIFRPP").unwrap(), &iban),
            Ok(())
        );
        let err = check_bic_matches_iban(&Bic::parse("DEUTDEFF").unwrap(), &iban).unwrap_err();
        assert_eq!(err.code(), "bic_country_mismatch");
        assert_eq!(
            err,
            BicError::CountryMismatch {
                bic_country: "DE".into(),
                iban_country: "FR".into()
            }
        );
    }

    #[test]
    fn serde_validates() {
        let bic: Bic = serde_json::from_str("\"SOGEFRPP\"").unwrap();
        assert_eq!(serde_json::to_string(&bic).unwrap(), "\"SOGEFRPP\"");
        assert!(serde_json::from_str::<Bic>("\"SOGE\"").is_err());
    }
}
