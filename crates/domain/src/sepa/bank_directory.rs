//! Which bank an IBAN belongs to: national bank code → BIC and bank name,
//! so that the IBAN form can propose the BIC ("le programme vous affichera
//! un BIC") which the customer may correct.
//!
//! The built-in directory is `data/banks.csv` (main banks of France,
//! Germany, Belgium, Spain, Italy, the Netherlands and Luxembourg), embedded
//! in the binary. An operator can add or correct entries with a file in the
//! same format ([`BankDirectory::extended_with`]): its entries replace the
//! built-in ones with the same country and bank code.
//!
//! # File format
//!
//! UTF-8 text, one entry per line, fields separated by commas:
//!
//! ```text
//! # comments and blank lines are ignored
//! country,bank_code,bic,name
//! FR,30004,BNPAFRPP,BNP Paribas
//! LU,002,BILLLULL,Banque Internationale à Luxembourg
//! ```
//!
//! - the first line that is neither blank nor a comment is the header,
//!   exactly `country,bank_code,bic,name`;
//! - `country`: ISO 3166 code, two letters;
//! - `bank_code`: the bank code as it appears in the IBAN (see
//!   [`Iban::bank_code`]): 5 digits in FR and MC, 8 in DE, 3 in BE and LU, 4
//!   in ES, 5 in IT, 4 letters in NL; 1 to 12 letters or digits elsewhere;
//! - `bic`: a valid BIC whose country is `country` (so that a proposed BIC
//!   always passes [`check_bic_matches_iban`](super::check_bic_matches_iban));
//! - `name`: everything after the third comma (it may contain commas), 1 to
//!   140 characters;
//! - country, bank code and BIC are upper-cased; surrounding spaces are
//!   trimmed; a country and bank code may appear only once per file.
//!
//! Errors name the line (1-based, counting every line of the file).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::bic::Bic;
use super::iban::Iban;

/// The built-in directory's source.
const BUILTIN_CSV: &str = include_str!("../../data/banks.csv");

/// The header every directory file starts with.
pub const HEADER: &str = "country,bank_code,bic,name";

static BUILTIN: LazyLock<BankDirectory> = LazyLock::new(|| {
    // The file is checked by the tests; an empty directory (no BIC
    // proposed) is the harmless fallback.
    BankDirectory::parse(BUILTIN_CSV).unwrap_or_default()
});

/// One bank of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankEntry {
    /// Its BIC, proposed for IBANs with its bank code.
    pub bic: Bic,
    /// Its usual name, e.g. `Société Générale`.
    pub name: String,
}

/// Bank codes → banks, per country.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankDirectory {
    entries: BTreeMap<(String, String), BankEntry>,
}

/// Why a directory file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bank directory, line {line}: {reason}")]
pub struct BankDirectoryError {
    /// The 1-based line number (0 when the file is empty or has no header).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl BankDirectoryError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        "bank_directory_invalid"
    }

    fn at(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// The bank-code shape of the countries Guichet knows: `(length, letters)`
/// where `letters` is false for digits only.
fn bank_code_shape(country: &str) -> Option<(usize, bool)> {
    match country {
        "FR" | "MC" | "IT" => Some((5, false)),
        "DE" => Some((8, false)),
        "BE" | "LU" => Some((3, false)),
        "ES" => Some((4, false)),
        "NL" => Some((4, true)),
        _ => None,
    }
}

fn check_bank_code(country: &str, code: &str) -> Result<(), String> {
    let ok = match bank_code_shape(country) {
        Some((len, false)) => code.len() == len && code.bytes().all(|b| b.is_ascii_digit()),
        Some((len, true)) => code.len() == len && code.bytes().all(|b| b.is_ascii_uppercase()),
        None => {
            (1..=12).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(match bank_code_shape(country) {
            Some((len, false)) => format!("a {country} bank code is {len} digits, not {code:?}"),
            Some((len, true)) => format!("a {country} bank code is {len} letters, not {code:?}"),
            None => format!("a bank code is 1 to 12 letters or digits, not {code:?}"),
        })
    }
}

/// Reads one entry line (already known not to be blank or a comment).
fn parse_line(line: &str) -> Result<((String, String), BankEntry), String> {
    let mut fields = line.splitn(4, ',');
    let (Some(country), Some(code), Some(bic), Some(name)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!("expected 4 fields ({HEADER})"));
    };
    let country = country.trim().to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("the country must be two letters, not {country:?}"));
    }
    let code = code.trim().to_ascii_uppercase();
    check_bank_code(&country, &code)?;
    let bic = Bic::parse(bic.trim()).map_err(|_| format!("invalid BIC {:?}", bic.trim()))?;
    if bic.country() != country {
        return Err(format!(
            "the BIC {bic} is not of country {country} (its country is {})",
            bic.country()
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 140 {
        return Err("the name must be 1 to 140 characters".to_owned());
    }
    Ok((
        (country, code),
        BankEntry {
            bic,
            name: name.to_owned(),
        },
    ))
}

impl BankDirectory {
    /// The directory shipped with Guichet (`data/banks.csv`).
    pub fn builtin() -> &'static BankDirectory {
        &BUILTIN
    }

    /// Reads a directory file (format in the [module documentation](self)).
    pub fn parse(text: &str) -> Result<Self, BankDirectoryError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries = BTreeMap::new();
        let mut first_line_of = BTreeMap::new();
        let mut header_seen = false;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !header_seen {
                if line != HEADER {
                    return Err(BankDirectoryError::at(
                        number,
                        format!("the first line must be the header {HEADER:?}"),
                    ));
                }
                header_seen = true;
                continue;
            }
            let (key, entry) = parse_line(line).map_err(|r| BankDirectoryError::at(number, r))?;
            if let Some(first) = first_line_of.insert(key.clone(), number) {
                return Err(BankDirectoryError::at(
                    number,
                    format!(
                        "{} bank code {} already appears on line {first}",
                        key.0, key.1
                    ),
                ));
            }
            entries.insert(key, entry);
        }
        if !header_seen {
            return Err(BankDirectoryError::at(
                0,
                format!("the file is empty: it must start with the header {HEADER:?}"),
            ));
        }
        Ok(Self { entries })
    }

    /// This directory with the entries of an operator's file (same format)
    /// added; an entry for a country and bank code already known replaces
    /// the existing one.
    pub fn extended_with(&self, text: &str) -> Result<Self, BankDirectoryError> {
        let extra = Self::parse(text)?;
        let mut merged = self.clone();
        merged.entries.extend(extra.entries);
        Ok(merged)
    }

    /// The bank with this bank code in `country` (both compared
    /// upper-case).
    pub fn lookup(&self, country: &str, bank_code: &str) -> Option<&BankEntry> {
        self.entries
            .get(&(country.to_ascii_uppercase(), bank_code.to_ascii_uppercase()))
    }

    /// The bank of an IBAN, through its country and
    /// [bank code](Iban::bank_code): what the IBAN form proposes as BIC.
    pub fn lookup_iban(&self, iban: &Iban) -> Option<&BankEntry> {
        self.lookup(iban.country(), iban.bank_code()?)
    }

    /// How many banks are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no bank is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, as `(country, bank_code, bank)`, sorted by country then
    /// bank code.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &BankEntry)> {
        self.entries
            .iter()
            .map(|((country, code), entry)| (country.as_str(), code.as_str(), entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_is_valid_and_covers_the_main_countries() {
        let parsed = BankDirectory::parse(BUILTIN_CSV).unwrap();
        let builtin = BankDirectory::builtin();
        assert_eq!(&parsed, builtin);
        for country in ["FR", "DE", "BE", "ES", "IT", "NL", "LU"] {
            let count = builtin.iter().filter(|(c, _, _)| *c == country).count();
            assert!(count >= 8, "{country}: {count}");
        }
    }

    #[test]
    fn ibans_find_their_bank() {
        let dir = BankDirectory::builtin();
        for (iban, bic, name) in [
            (
                "FR7630006000011234567890189",
                "AGRIFRPP",
                "Crédit Agricole SA",
            ),
            (
                "FR1420041010050500013M02606",
                "PSSTFRPP",
                "La Banque Postale",
            ),
            ("DE44500105175407324931", "INGDDEFF", "ING-DiBa"),
            ("ES9121000418450200051332", "CAIXESBB", "CaixaBank"),
            ("NL91ABNA0417164300", "ABNANL2A", "ABN AMRO"),
            ("LU280019400644750000", "BCEELULL", "Spuerkeess (BCEE)"),
        ] {
            let iban = Iban::parse(iban).unwrap();
            let entry = dir.lookup_iban(&iban).unwrap();
            assert_eq!(entry.bic.as_str(), bic);
            assert_eq!(entry.name, name);
            assert!(super::super::check_bic_matches_iban(&entry.bic, &iban).is_ok());
        }
        // Valid IBAN, bank not in the directory: nothing to propose.
        let unknown = Iban::parse("BE68539007547034").unwrap();
        assert_eq!(dir.lookup_iban(&unknown), None);
        assert_eq!(dir.lookup("fr", "30004").unwrap().bic.as_str(), "BNPAFRPP");
        assert_eq!(dir.lookup("FR", "99999"), None);
    }

    #[test]
    fn an_operator_file_adds_and_overrides() {
        let text = "\u{feff}# our additions\r\n\r\ncountry,bank_code,bic,name\r\nbe, 539 ,hbkabe22, Example, with comma \r\nFR,30004,BNPAFRPPPAC,BNP Paribas Agence Centrale\r\n";
        let dir = BankDirectory::builtin().extended_with(text).unwrap();
        assert_eq!(dir.len(), BankDirectory::builtin().len() + 1);
        let added = dir.lookup("BE", "539").unwrap();
        assert_eq!(added.bic.as_str(), "HBKABE22");
        assert_eq!(added.name, "Example, with comma");
        assert_eq!(
            dir.lookup("FR", "30004").unwrap().bic.as_str(),
            "BNPAFRPPPAC"
        );
        // The built-in directory itself is unchanged.
        assert_eq!(
            BankDirectory::builtin()
                .lookup("FR", "30004")
                .unwrap()
                .bic
                .as_str(),
            "BNPAFRPP"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases: [(&str, usize, &str); 10] = [
            ("", 0, "empty"),
            ("# only a comment\n", 0, "empty"),
            ("country;bank_code;bic;name\n", 1, "header"),
            (
                "country,bank_code,bic,name\nFR,30004,BNPAFRPP\n",
                2,
                "4 fields",
            ),
            (
                "country,bank_code,bic,name\n\nFRA,30004,BNPAFRPP,X\n",
                3,
                "two letters",
            ),
            (
                "country,bank_code,bic,name\nFR,3004,BNPAFRPP,X\n",
                2,
                "5 digits",
            ),
            (
                "country,bank_code,bic,name\nNL,AB12,ABNANL2A,X\n",
                2,
                "4 letters",
            ),
            (
                "country,bank_code,bic,name\nFR,30004,BNPA,X\n",
                2,
                "invalid BIC",
            ),
            (
                "country,bank_code,bic,name\nFR,30004,DEUTDEFF,X\n",
                2,
                "not of country FR",
            ),
            (
                "country,bank_code,bic,name\nFR,30004,BNPAFRPP,X\n# c\nFR,30004,BNPAFRPP,Y\n",
                4,
                "already appears on line 2",
            ),
        ];
        for (text, line, needle) in cases {
            let err = BankDirectory::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
            assert_eq!(err.code(), "bank_directory_invalid");
        }
        let err =
            BankDirectory::parse("country,bank_code,bic,name\nFR,30004,BNPAFRPP, \n").unwrap_err();
        assert_eq!(err.line, 2);
        let long = format!(
            "country,bank_code,bic,name\nFR,30004,BNPAFRPP,{}\n",
            "é".repeat(141)
        );
        assert_eq!(BankDirectory::parse(&long).unwrap_err().line, 2);
        let other = "country,bank_code,bic,name\nAT,12000,BKAUATWW,UniCredit Bank Austria\n";
        assert_eq!(BankDirectory::parse(other).unwrap().len(), 1);
    }
}
