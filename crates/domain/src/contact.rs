//! Contact points of a customer: e-mail address and mobile number.
//!
//! Both are "parse, don't validate" newtypes: once you hold an [`Email`] or a
//! [`Msisdn`], it is known to be well formed and normalized, so two values can
//! be compared (and used as look-up keys) directly. They (de)serialize as
//! plain strings and refuse malformed input during deserialization.
//!
//! Each type also offers `masked()`, the form to show on screen or in logs
//! when telling someone where a code was sent without revealing the full
//! contact point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a contact point was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// The text is not an e-mail address Guichet accepts.
    #[error("invalid e-mail address")]
    InvalidEmail,
    /// The text is not a mobile number in strict E.164 form (`+` and 8 to 15
    /// digits, no spaces).
    #[error("invalid mobile number: expected E.164, e.g. +33612345678")]
    InvalidMsisdn,
}

/// Longest accepted address, in bytes (the SMTP path limit minus the angle
/// brackets).
const EMAIL_MAX_LEN: usize = 254;
/// Longest local part (before the `@`), in bytes.
const LOCAL_MAX_LEN: usize = 64;
/// Longest domain label, in bytes.
const LABEL_MAX_LEN: usize = 63;

/// A normalized e-mail address: trimmed, lower-cased, ASCII only.
///
/// The accepted syntax is deliberately narrower than RFC 5322 (no quoted
/// local parts, comments or IP-literal domains) so that every accepted
/// address is one a real mail provider hands out:
///
/// - at most 254 bytes and exactly one `@`;
/// - local part of 1–64 printable ASCII characters except space and
///   `"(),:;<>[]\`, not starting or ending with a dot, without `..`;
/// - domain of at least two dot-separated labels of letters, digits and
///   hyphens, each 1–63 characters and not starting or ending with a hyphen;
///   the last label is at least two letters.
///
/// The whole address is lower-cased: local parts are case-sensitive in
/// theory, but no mainstream provider treats them so, and customers type
/// their address with varying case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalizes `input` (surrounding whitespace is ignored).
    pub fn parse(input: &str) -> Result<Email, ContactError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > EMAIL_MAX_LEN || !trimmed.is_ascii() {
            return Err(ContactError::InvalidEmail);
        }
        let address = trimmed.to_ascii_lowercase();
        let mut parts = address.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ContactError::InvalidEmail);
        };
        if valid_local_part(local) && valid_domain(domain) {
            Ok(Email(address))
        } else {
            Err(ContactError::InvalidEmail)
        }
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with the local part hidden except its first character,
    /// e.g. `jean.dupont@example.com` → `j***@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((self.0.as_str(), ""));
        let first = local.chars().next().unwrap_or('*');
        format!("{first}***@{domain}")
    }
}

fn valid_local_part(local: &str) -> bool {
    const FORBIDDEN: &[u8] = b"\"(),:;<>[]\\";
    (1..=LOCAL_MAX_LEN).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !FORBIDDEN.contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(last) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| valid_label(label))
        && last.len() >= 2
        && last.bytes().all(|b| b.is_ascii_alphabetic())
}

fn valid_label(label: &str) -> bool {
    (1..=LABEL_MAX_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = ContactError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl TryFrom<String> for Email {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// Fewest digits after the `+` of an accepted mobile number.
const MSISDN_MIN_DIGITS: usize = 8;
/// Most digits after the `+` (the E.164 maximum).
const MSISDN_MAX_DIGITS: usize = 15;

/// A mobile number in strict E.164 form: `+`, then 8 to 15 digits, the first
/// of which (the start of the country code) is not 0.
///
/// No spaces, dots, dashes, brackets or national forms (`06…`) are accepted:
/// the API asks clients to send E.164, so that one number has exactly one
/// spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses `input`, which must already be E.164 (no surrounding spaces).
    pub fn parse(input: &str) -> Result<Msisdn, ContactError> {
        let Some(digits) = input.strip_prefix('+') else {
            return Err(ContactError::InvalidMsisdn);
        };
        let ok = (MSISDN_MIN_DIGITS..=MSISDN_MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Msisdn(input.to_owned()))
        } else {
            Err(ContactError::InvalidMsisdn)
        }
    }

    /// The number in E.164 form, e.g. `+33612345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with its middle digits hidden.
    ///
    /// French numbers (`+33` and 9 national digits) keep the familiar
    /// grouping: `+33612345678` → `+33 6** ** ** 78`. Other numbers keep the
    /// first two and last two digits and show one `*` per hidden digit:
    /// `+4915123456789` → `+49*********89`.
    pub fn masked(&self) -> String {
        let digits = self.0.get(1..).unwrap_or_default();
        if let Some(national) = digits.strip_prefix("33").filter(|n| n.len() == 9) {
            let first = national.get(..1).unwrap_or_default();
            let last = national.get(7..).unwrap_or_default();
            return format!("+33 {first}** ** ** {last}");
        }
        let head = digits.get(..2).unwrap_or_default();
        let tail = digits
            .get(digits.len().saturating_sub(2)..)
            .unwrap_or_default();
        let hidden = digits.len().saturating_sub(4);
        format!("+{head}{}{tail}", "*".repeat(hidden))
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Msisdn {
    type Err = ContactError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

impl TryFrom<String> for Msisdn {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Msisdn::parse(&value)
    }
}

impl From<Msisdn> for String {
    fn from(value: Msisdn) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Result<String, ContactError> {
        Email::parse(s).map(String::from)
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            email("  Jean.Dupont@Example.COM \n").unwrap(),
            "jean.dupont@example.com"
        );
        assert_eq!(
            Email::parse("A@B.fr").unwrap(),
            Email::parse("a@b.FR").unwrap()
        );
    }

    #[test]
    fn email_accepts_common_shapes() {
        for ok in [
            "a@b.fr",
            "jean.dupont@example.com",
            "jean+factures@mail.example.co.uk",
            "o'brien@example.ie",
            "x_y-z!#$%&*/=?^`{|}~@sub-domain.example.org",
            "1234@123.example.com",
            "user@xn--bcher-kva.example",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn email_needs_exactly_one_at() {
        for bad in [
            "jean.example.com",
            "jean@@example.com",
            "a@b@example.com",
            "@",
            "",
        ] {
            assert_eq!(email(bad), Err(ContactError::InvalidEmail), "{bad:?}");
        }
    }

    #[test]
    fn email_local_part_rules() {
        for bad in [
            "@example.com",
            ".jean@example.com",
            "jean.@example.com",
            "jean..dupont@example.com",
            "jean dupont@example.com",
            "\"jean\"@example.com",
            "jean(x)@example.com",
            "jean,x@example.com",
            "jean:x@example.com",
            "jean;x@example.com",
            "jean<x>@example.com",
            "jean[x]@example.com",
            "jean\\x@example.com",
            "jéan@example.com",
            "jean\u{7f}@example.com",
        ] {
            assert_eq!(email(bad), Err(ContactError::InvalidEmail), "{bad:?}");
        }
        let local_64 = "a".repeat(64);
        assert!(email(&format!("{local_64}@example.com")).is_ok());
        assert!(email(&format!("{local_64}a@example.com")).is_err());
    }

    #[test]
    fn email_domain_rules() {
        for bad in [
            "jean@localhost",
            "jean@example",
            "jean@example.c",
            "jean@example.c0m",
            "jean@example.123",
            "jean@.example.com",
            "jean@example.com.",
            "jean@example..com",
            "jean@-example.com",
            "jean@example-.com",
            "jean@exa_mple.com",
            "jean@[192.168.0.1]",
            "jean@exämple.com",
        ] {
            assert_eq!(email(bad), Err(ContactError::InvalidEmail), "{bad:?}");
        }
        assert!(email("jean@ex-ample.com").is_ok());
        let label_63 = "d".repeat(63);
        assert!(email(&format!("jean@{label_63}.com")).is_ok());
        assert!(email(&format!("jean@{label_63}d.com")).is_err());
    }

    #[test]
    fn email_total_length_is_at_most_254_bytes() {
        // 64 + 1 + 189 = 254 bytes.
        let local = "l".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(61),
            "b".repeat(61),
            "c".repeat(61)
        );
        let address = format!("{local}@{domain}");
        assert_eq!(address.len(), 254);
        assert!(email(&address).is_ok());
        let longer = format!("{local}@d{domain}");
        assert_eq!(longer.len(), 255);
        assert_eq!(email(&longer), Err(ContactError::InvalidEmail));
        // Surrounding whitespace does not count.
        assert!(email(&format!("  {address}  ")).is_ok());
    }

    #[test]
    fn email_masking() {
        let e = Email::parse("jean.dupont@example.com").unwrap();
        assert_eq!(e.masked(), "j***@example.com");
        assert_eq!(Email::parse("A@b.fr").unwrap().masked(), "a***@b.fr");
        assert_eq!(e.as_str(), "jean.dupont@example.com");
        assert_eq!(e.to_string(), "jean.dupont@example.com");
    }

    #[test]
    fn email_serde_round_trip_and_refusal() {
        let e: Email = serde_json::from_str("\" Jean@Example.com\"").unwrap();
        assert_eq!(e.as_str(), "jean@example.com");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"jean@example.com\"");
        assert!(serde_json::from_str::<Email>("\"not-an-email\"").is_err());
        assert_eq!("jean@example.com".parse::<Email>().unwrap(), e);
    }

    #[test]
    fn msisdn_accepts_strict_e164() {
        for ok in [
            "+33612345678",
            "+4915123456789",
            "+12025550123",
            "+12345678",
            "+123456789012345",
        ] {
            let m = Msisdn::parse(ok).unwrap();
            assert_eq!(m.as_str(), ok);
        }
    }

    #[test]
    fn msisdn_refusals() {
        for bad in [
            "33612345678",
            "0612345678",
            "+0612345678",
            "+1234567",
            "+1234567890123456",
            "+33 6 12 34 56 78",
            " +33612345678",
            "+33612345678 ",
            "+33-612-345-678",
            "+33(0)612345678",
            "+3361234567a",
            "++33612345678",
            "+",
            "",
            "+٣٣٦١٢٣٤٥٦٧٨",
        ] {
            assert_eq!(
                Msisdn::parse(bad),
                Err(ContactError::InvalidMsisdn),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn msisdn_masking_french_numbers() {
        assert_eq!(
            Msisdn::parse("+33612345678").unwrap().masked(),
            "+33 6** ** ** 78"
        );
        assert_eq!(
            Msisdn::parse("+33798765432").unwrap().masked(),
            "+33 7** ** ** 32"
        );
    }

    #[test]
    fn msisdn_masking_other_numbers() {
        assert_eq!(
            Msisdn::parse("+4915123456789").unwrap().masked(),
            "+49*********89"
        );
        assert_eq!(Msisdn::parse("+12345678").unwrap().masked(), "+12****78");
        // +33 with a non-French length falls back to the generic form.
        assert_eq!(
            Msisdn::parse("+3361234567").unwrap().masked(),
            "+33******67"
        );
    }

    #[test]
    fn msisdn_serde_round_trip_and_refusal() {
        let m: Msisdn = serde_json::from_str("\"+33612345678\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"+33612345678\"");
        assert!(serde_json::from_str::<Msisdn>("\"06 12 34 56 78\"").is_err());
        assert_eq!("+33612345678".parse::<Msisdn>().unwrap(), m);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            ContactError::InvalidEmail.to_string(),
            "invalid e-mail address"
        );
        assert!(ContactError::InvalidMsisdn.to_string().contains("E.164"));
    }
}
