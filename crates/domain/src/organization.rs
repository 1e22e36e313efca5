//! Organizations: the businesses that put a Guichet portal in front of their
//! customers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A URL-safe organization handle: 2–40 lower-case letters, digits and
/// inner hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

/// Why a slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a slug is 2 to 40 lower-case letters, digits and inner hyphens")]
pub struct InvalidSlug;

impl Slug {
    pub fn parse(value: &str) -> Result<Self, InvalidSlug> {
        let ok_len = (2..=40).contains(&value.len());
        let ok_chars = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = !value.starts_with('-') && !value.ends_with('-') && !value.contains("--");
        if ok_len && ok_chars && ok_ends {
            Ok(Slug(value.to_owned()))
        } else {
            Err(InvalidSlug)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = InvalidSlug;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Slug::parse(&value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

/// The languages Guichet speaks to people.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    Fr,
    En,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    /// Reads a stored or configured code; anything else is `None`.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "fr" => Some(Locale::Fr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// Picks the best supported language from an `Accept-Language` header
    /// value (quality values respected); French when nothing matches.
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let Some(header) = accept_language else {
            return Locale::Fr;
        };
        let mut best: Option<(f32, Locale)> = None;
        for item in header.split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(locale) = Locale::parse(primary) else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, locale));
            }
        }
        best.map_or(Locale::Fr, |(_, locale)| locale)
    }
}

/// A business running a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub slug: Slug,
    pub name: String,
    pub locale: Locale,
    /// How its customers may sign in.
    pub login_methods: crate::identity::LoginMethods,
    /// Where customers can reach the business, shown in the portal.
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words_with_inner_hyphens() {
        assert!(Slug::parse("floa-demo").is_ok());
        assert!(Slug::parse("a1").is_ok());
        for bad in ["", "a", "Demo", "-demo", "demo-", "de--mo", "dé", "de mo"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert!(Slug::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Locale::negotiate(None), Locale::Fr);
        assert_eq!(Locale::negotiate(Some("en")), Locale::En);
        assert_eq!(Locale::negotiate(Some("en-GB,en;q=0.9")), Locale::En);
        assert_eq!(
            Locale::negotiate(Some("de-DE, en;q=0.5, fr;q=0.8")),
            Locale::Fr
        );
        assert_eq!(Locale::negotiate(Some("de, es")), Locale::Fr);
        assert_eq!(Locale::negotiate(Some("en;q=0, fr;q=0.1")), Locale::Fr);
        assert_eq!(Locale::negotiate(Some("*")), Locale::Fr);
        assert_eq!(Locale::negotiate(Some(";;;,,q=")), Locale::Fr);
    }
}
