//! SEPA direct debit (SDD Core): the identifiers a mandate carries (IBAN,
//! BIC, creditor identifier), the bank directory that proposes a BIC from an
//! IBAN, the mandate document as a PDF, and the pain.008 collection file
//! sent to the creditor's bank.
//!
//! Every type here validates on construction and refuses with a stable
//! snake_case `code()` for API error bodies: `iban_invalid`, `bic_invalid`,
//! `bic_country_mismatch`, `creditor_id_invalid`.

pub mod bank_directory;
pub mod bic;
pub mod creditor_id;
pub mod iban;
pub mod mandate_pdf;
pub mod pain008;
pub mod text;

use serde::{Deserialize, Serialize};

pub use bank_directory::{BankDirectory, BankDirectoryError, BankEntry};
pub use bic::{Bic, BicError, check_bic_matches_iban};
pub use creditor_id::{CreditorId, CreditorIdError};
pub use iban::{Iban, IbanError};

/// How often a mandate lets the creditor debit the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentType {
    /// Automatic debits ("prélèvement automatique", "récurrent").
    Recurrent,
    /// A single debit ("ponctuel"); the mandate lapses after it.
    OneOff,
}

impl PaymentType {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::Recurrent => "recurrent",
            PaymentType::OneOff => "one_off",
        }
    }

    /// Reads a name written by [`PaymentType::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "recurrent" => Some(PaymentType::Recurrent),
            "one_off" => Some(PaymentType::OneOff),
            _ => None,
        }
    }
}

/// Removes every whitespace character and upper-cases ASCII letters: how
/// people type identifiers ("fr76 3000 6000 ...") versus how they are kept.
pub(crate) fn compact_upper(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The ISO 7064 MOD 97-10 remainder of `text` (ASCII digits and upper-case
/// letters), letters counting as two digits `A` = 10 ... `Z` = 35, as IBANs
/// and creditor identifiers use it. `None` on any other character.
pub(crate) fn mod97(text: &str) -> Option<u32> {
    let mut remainder = 0_u32;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => remainder = (remainder * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => remainder = (remainder * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return None,
        }
    }
    Some(remainder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_types_round_trip() {
        for t in [PaymentType::Recurrent, PaymentType::OneOff] {
            assert_eq!(PaymentType::parse(t.as_str()), Some(t));
        }
        assert_eq!(PaymentType::parse("ponctuel"), None);
    }

    #[test]
    fn mod97_treats_letters_as_two_digits() {
        // An IBAN rearranged (BBAN + country + check digits) leaves 1.
        assert_eq!(mod97("30006000011234567890189FR76"), Some(1));
        assert_eq!(mod97("A"), Some(10));
        assert_eq!(mod97("Z"), Some(35));
        assert_eq!(mod97("1A"), Some(110 % 97));
        assert_eq!(mod97("a"), None);
        assert_eq!(mod97("1-2"), None);
        assert_eq!(compact_upper(" fr76 3000\t6000 "), "FR7630006000");
    }
}
