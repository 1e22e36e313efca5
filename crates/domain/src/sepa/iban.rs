//! The debtor's (or creditor's) account number, as an IBAN.
//!
//! A thin wrapper over the `iban_validate` crate, which checks the ISO 13616
//! structure, the MOD 97 check digits and the country's BBAN format (length
//! and character classes) from the SWIFT IBAN registry. Guichet adds one
//! error code (`iban_invalid`, shown as "Format de l'IBAN incorrect"), the
//! national bank code used to propose a BIC, and a masked form for display.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::compact_upper;

/// A valid IBAN in electronic form: upper-case, no spaces.
///
/// `Debug` prints the masked form, so that logs and panics do not spread
/// account numbers; [`Iban::as_str`] gives the full value on purpose.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(::iban::Iban);

/// Why an IBAN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    /// Not two letters, two digits and up to 30 alphanumerics, or the check
    /// digits are wrong.
    #[error("the IBAN's format or check digits are wrong")]
    Format,
    /// The country is not in the IBAN registry.
    #[error("the IBAN's country does not use IBANs")]
    UnknownCountry,
    /// The account part does not follow its country's format (length,
    /// digits and letters).
    #[error("the IBAN's account part does not follow its country's format")]
    CountryFormat,
}

impl IbanError {
    /// A stable snake_case code for API error bodies (the same for every
    /// reason: "Format de l'IBAN incorrect").
    pub fn code(&self) -> &'static str {
        "iban_invalid"
    }
}

impl Iban {
    /// Parses an IBAN as typed, in electronic or paper form: whitespace is
    /// ignored and letters upper-cased.
    pub fn parse(input: &str) -> Result<Self, IbanError> {
        let compact = compact_upper(input);
        compact
            .parse::<::iban::Iban>()
            .map(Iban)
            .map_err(|err| match err {
                ::iban::ParseIbanError::InvalidBaseIban { .. } => IbanError::Format,
                ::iban::ParseIbanError::UnknownCountry(_) => IbanError::UnknownCountry,
                ::iban::ParseIbanError::InvalidBban(_) => IbanError::CountryFormat,
            })
    }

    /// The electronic form, e.g. `FR7630006000011234567890189`.
    pub fn as_str(&self) -> &str {
        use ::iban::IbanLike;
        self.0.electronic_str()
    }

    /// The ISO 3166 country code, e.g. `FR`.
    pub fn country(&self) -> &str {
        &self.as_str()[..2]
    }

    /// The two check digits, e.g. `76`.
    pub fn check_digits(&self) -> &str {
        &self.as_str()[2..4]
    }

    /// The national account number (BBAN), everything after the check
    /// digits.
    pub fn bban(&self) -> &str {
        self.0.bban()
    }

    /// The national bank code where the IBAN registry defines one, as
    /// `iban_validate` locates it: France and Monaco the 5 digits after the
    /// check digits (code banque), Germany the 8-digit Bankleitzahl, Belgium
    /// and Luxembourg 3 digits, Spain 4 (entidad), Italy the 5-digit ABI
    /// after the CIN letter, the Netherlands 4 letters.
    pub fn bank_code(&self) -> Option<&str> {
        self.0.bank_identifier()
    }

    /// The branch code where the registry defines one (e.g. the Spanish
    /// oficina, the Italian CAB); `None` for France, Germany, Belgium.
    pub fn branch_code(&self) -> Option<&str> {
        self.0.branch_identifier()
    }

    /// The paper form: groups of four separated by spaces,
    /// `FR76 3000 6000 0112 3456 7890 189`.
    pub fn formatted(&self) -> String {
        group_by_four(self.as_str().chars())
    }

    /// The form shown in lists and e-mails: the country and check digits
    /// and the last four characters stay, everything else becomes `*`,
    /// grouped like the paper form:
    /// `FR76 **** **** **** **** ***0 189`. It tells the customer which
    /// account is meant without disclosing it.
    pub fn masked(&self) -> String {
        let value = self.as_str();
        let len = value.len();
        group_by_four(
            value
                .chars()
                .enumerate()
                .map(|(i, c)| if i < 4 || i + 4 >= len { c } else { '*' }),
        )
    }
}

fn group_by_four(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::with_capacity(44);
    for (i, c) in chars.enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Iban").field(&self.masked()).finish()
    }
}

/// The electronic form.
impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Iban {
    type Error = IbanError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Iban::parse(&value)
    }
}

impl From<Iban> for String {
    fn from(value: Iban) -> Self {
        value.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iban(s: &str) -> Iban {
        Iban::parse(s).unwrap()
    }

    #[test]
    fn paper_and_electronic_forms_are_accepted() {
        let a = iban("FR76 3000 6000 0112 3456 7890 189");
        let b = iban("fr7630006000011234567890189");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "FR7630006000011234567890189");
        assert_eq!(a.to_string(), "FR7630006000011234567890189");
        assert_eq!(a.formatted(), "FR76 3000 6000 0112 3456 7890 189");
        assert_eq!(a.country(), "FR");
        assert_eq!(a.check_digits(), "76");
        assert_eq!(a.bban(), "30006000011234567890189");
    }

    #[test]
    fn bank_codes_follow_each_country_layout() {
        for (input, bank, branch) in [
            ("FR7630006000011234567890189", Some("30006"), None),
            ("DE89370400440532013000", Some("37040044"), None),
            ("BE68539007547034", Some("539"), None),
            ("ES9121000418450200051332", Some("2100"), Some("0418")),
            ("IT60X0542811101000000123456", Some("05428"), Some("11101")),
            ("NL91ABNA0417164300", Some("ABNA"), None),
            ("LU280019400644750000", Some("001"), None),
        ] {
            let iban = iban(input);
            assert_eq!(iban.bank_code(), bank, "{input}");
            assert_eq!(iban.branch_code(), branch, "{input}");
        }
    }

    #[test]
    fn masking_keeps_country_check_digits_and_last_four() {
        assert_eq!(
            iban("FR7630006000011234567890189").masked(),
            "FR76 **** **** **** **** ***0 189"
        );
        assert_eq!(
            iban("DE89370400440532013000").masked(),
            "DE89 **** **** **** **30 00"
        );
        assert_eq!(iban("BE68539007547034").masked(), "BE68 **** **** 7034");
        let debug = format!("{:?}", iban("FR7630006000011234567890189"));
        assert!(!debug.contains("3000600001"), "{debug}");
        assert!(debug.contains("FR76 ****"), "{debug}");
    }

    #[test]
    fn wrong_ibans_are_refused_with_one_code() {
        for (bad, reason) in [
            ("", IbanError::Format),
            ("FR7730006000011234567890189", IbanError::Format),
            ("FR7630006000011234567890188", IbanError::Format),
            ("FR76-3000-6000-0112-3456-7890-189", IbanError::Format),
            // These two happen to pass MOD 97 but have no valid French BBAN.
            ("FR76", IbanError::CountryFormat),
            (
                "FR76 3000 6000 0112 3456 7890 1890",
                IbanError::CountryFormat,
            ),
            ("DE8937040044053201300", IbanError::Format),
            // Right check digits, unknown country / too short for Germany.
            ("XX9030006000011234567890189", IbanError::UnknownCountry),
            ("DE863704004405320130", IbanError::CountryFormat),
            // Right check digits, a letter where France wants digits.
            ("FR053000600001123456789018A", IbanError::CountryFormat),
        ] {
            let err = Iban::parse(bad).unwrap_err();
            assert_eq!(err, reason, "{bad}");
            assert_eq!(err.code(), "iban_invalid");
        }
    }

    #[test]
    fn serde_keeps_the_electronic_form() {
        let iban: Iban = serde_json::from_str("\"FR76 3000 6000 0112 3456 7890 189\"").unwrap();
        assert_eq!(
            serde_json::to_string(&iban).unwrap(),
            "\"FR7630006000011234567890189\""
        );
        assert!(serde_json::from_str::<Iban>("\"FR00\"").is_err());
    }
}
