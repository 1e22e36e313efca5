//! Consent invitations: a business orders, for a client account, a service
//! the client's cardholder consents to alone through an expiring link (an
//! SMS code, the card, the client reference, the terms, the bank's strong
//! authentication). The rules here are pure: statuses, lifetimes, the date
//! the consent takes effect, and the texts the office may send.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::Locale;

/// How long an activation link lives: 14 days from when it is sent.
pub fn invitation_lifetime() -> Duration {
    Duration::days(14)
}

/// How long the step token of a verified SMS code lives.
pub fn step_token_lifetime() -> Duration {
    Duration::minutes(15)
}

/// Whether a link sent to expire at `expires_at` is dead at `now` (it lives
/// up to, not including, its expiry instant).
pub fn link_expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= expires_at
}

/// Where a consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentStatus {
    InvitationSent,
    Opened,
    CodeSent,
    CodeVerified,
    AwaitingBank,
    Active,
    Failed,
    Expired,
    Revoked,
}

impl ConsentStatus {
    pub const ALL: [ConsentStatus; 9] = [
        ConsentStatus::InvitationSent,
        ConsentStatus::Opened,
        ConsentStatus::CodeSent,
        ConsentStatus::CodeVerified,
        ConsentStatus::AwaitingBank,
        ConsentStatus::Active,
        ConsentStatus::Failed,
        ConsentStatus::Expired,
        ConsentStatus::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::InvitationSent => "invitation_sent",
            ConsentStatus::Opened => "opened",
            ConsentStatus::CodeSent => "code_sent",
            ConsentStatus::CodeVerified => "code_verified",
            ConsentStatus::AwaitingBank => "awaiting_bank",
            ConsentStatus::Active => "active",
            ConsentStatus::Failed => "failed",
            ConsentStatus::Expired => "expired",
            ConsentStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the cardholder's flow is under way (the link may still be
    /// used, and it expires with the link).
    pub fn in_progress(self) -> bool {
        !matches!(
            self,
            ConsentStatus::Active | ConsentStatus::Expired | ConsentStatus::Revoked
        )
    }

    /// Whether the office may edit the contacts and send a new link: not
    /// once active or revoked (an expired invitation may be sent again).
    pub fn reinvitable(self) -> bool {
        !matches!(self, ConsentStatus::Active | ConsentStatus::Revoked)
    }
}

/// The first day statements are shared from when the cardholder enrols on
/// `today`: the first day of the next month.
pub fn effective_from(today: NaiveDate) -> NaiveDate {
    let (year, month) = if today.month() == 12 {
        (today.year() + 1, 1)
    } else {
        (today.year(), today.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(today)
}

/// A client reference as compared: letters upper-cased, spaces, dots,
/// slashes and hyphens dropped (`be-12 345` matches `BE12345`).
pub fn normalize_reference(reference: &str) -> String {
    reference
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether the reference the cardholder confirmed is the one the office
/// ordered for.
pub fn same_reference(a: &str, b: &str) -> bool {
    let a = normalize_reference(a);
    !a.is_empty() && a == normalize_reference(b)
}

/// The two texts offered to the office: one to inform the client company,
/// one to warn the cardholder that an activation e-mail is coming (so that
/// they do not take it for phishing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficeTemplate {
    InformClient,
    InformCardholder,
}

/// What fills a template's placeholders. Absent values stay as their
/// placeholder (`{company}`) for the office to complete.
#[derive(Debug, Clone, Default)]
pub struct TemplateValues {
    pub office: Option<String>,
    pub company: Option<String>,
    pub cardholder: Option<String>,
    pub client_reference: Option<String>,
    pub email: Option<String>,
    pub video_url: Option<String>,
}

/// A template's subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateText {
    pub subject: String,
    pub body: String,
}

impl OfficeTemplate {
    pub const ALL: [OfficeTemplate; 2] = [
        OfficeTemplate::InformClient,
        OfficeTemplate::InformCardholder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OfficeTemplate::InformClient => "inform_client",
            OfficeTemplate::InformCardholder => "inform_cardholder",
        }
    }

    /// The placeholders the text uses.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            OfficeTemplate::InformClient => &["office", "company", "cardholder", "video_url"],
            OfficeTemplate::InformCardholder => &[
                "office",
                "company",
                "cardholder",
                "email",
                "client_reference",
                "video_url",
            ],
        }
    }

    fn raw(self, locale: Locale) -> (&'static str, &'static str) {
        match (self, locale) {
            (OfficeTemplate::InformClient, Locale::Fr) => (
                "Partage de vos relevés de carte de crédit avec {office}",
                "Bonjour,\n\n{office} a commandé pour {company} le partage automatique des relevés de carte de crédit. \
Le titulaire de la carte, {cardholder}, va recevoir un e-mail d'activation : le lien est valable 14 jours.\n\n\
Pour l'activation, il lui faudra : son téléphone mobile (un code lui sera envoyé par SMS), son relevé de carte de crédit \
(pour confirmer la référence client), sa carte de crédit et son lecteur de carte bancaire.\n\n\
Les étapes sont expliquées dans cette vidéo : {video_url}\n\n\
Les relevés nous parviendront à partir du mois suivant l'activation.\n\nCordialement,\n{office}",
            ),
            (OfficeTemplate::InformClient, Locale::En) => (
                "Sharing your credit card statements with {office}",
                "Hello,\n\n{office} has ordered, for {company}, the automatic sharing of credit card statements. \
The cardholder, {cardholder}, will receive an activation e-mail: the link is valid 14 days.\n\n\
To activate, they will need: their mobile phone (a code is sent by SMS), their credit card statement \
(to confirm the client reference), their credit card and their card reader.\n\n\
The steps are shown in this video: {video_url}\n\n\
Statements will reach us from the month after the activation.\n\nKind regards,\n{office}",
            ),
            (OfficeTemplate::InformCardholder, Locale::Fr) => (
                "Vous allez recevoir un e-mail d'activation de la part de {office}",
                "Bonjour {cardholder},\n\n{office} a commandé pour {company} le partage de vos relevés de carte de crédit. \
Vous allez recevoir à l'adresse {email} un e-mail d'activation : ce n'est pas une tentative d'hameçonnage (phishing), \
merci d'y donner suite. Le lien est valable 14 jours.\n\n\
Ayez sous la main : votre téléphone mobile (code par SMS), votre relevé de carte de crédit papier \
(référence client {client_reference}), votre carte de crédit et votre lecteur de carte bancaire.\n\n\
Les étapes sont expliquées dans cette vidéo : {video_url}\n\nCordialement,\n{office}",
            ),
            (OfficeTemplate::InformCardholder, Locale::En) => (
                "You will receive an activation e-mail from {office}",
                "Hello {cardholder},\n\n{office} has ordered, for {company}, the sharing of your credit card statements. \
You will receive an activation e-mail at {email}: it is not a phishing attempt, please act on it. \
The link is valid 14 days.\n\n\
Have at hand: your mobile phone (code by SMS), your paper credit card statement \
(client reference {client_reference}), your credit card and your card reader.\n\n\
The steps are shown in this video: {video_url}\n\nKind regards,\n{office}",
            ),
        }
    }

    /// The text in `locale`, with the known values filled in.
    pub fn render(self, locale: Locale, values: &TemplateValues) -> TemplateText {
        let (subject, body) = self.raw(locale);
        let fill = |text: &str| {
            let mut out = text.to_owned();
            for (name, value) in [
                ("office", &values.office),
                ("company", &values.company),
                ("cardholder", &values.cardholder),
                ("client_reference", &values.client_reference),
                ("email", &values.email),
                ("video_url", &values.video_url),
            ] {
                if let Some(value) = value {
                    out = out.replace(&format!("{{{name}}}"), value);
                }
            }
            out
        };
        TemplateText {
            subject: fill(subject),
            body: fill(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn effective_from_is_the_first_of_next_month() {
        assert_eq!(effective_from(d(2026, 11, 22)), d(2026, 12, 1));
        assert_eq!(effective_from(d(2026, 12, 31)), d(2027, 1, 1));
        assert_eq!(effective_from(d(2027, 1, 1)), d(2027, 2, 1));
    }

    #[test]
    fn links_live_fourteen_days() {
        let sent = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        let expires = sent + invitation_lifetime();
        assert!(!link_expired(
            expires,
            sent + Duration::days(13) + Duration::hours(23)
        ));
        assert!(link_expired(expires, expires));
        assert!(link_expired(
            expires,
            sent + Duration::days(14) + Duration::minutes(1)
        ));
    }

    #[test]
    fn statuses_round_trip_and_rules() {
        for s in ConsentStatus::ALL {
            assert_eq!(ConsentStatus::parse(s.as_str()), Some(s));
        }
        assert!(ConsentStatus::Expired.reinvitable());
        assert!(ConsentStatus::Failed.reinvitable());
        assert!(!ConsentStatus::Active.reinvitable());
        assert!(!ConsentStatus::Revoked.reinvitable());
        assert!(ConsentStatus::Failed.in_progress());
        assert!(!ConsentStatus::Expired.in_progress());
    }

    #[test]
    fn references_compare_without_separators_or_case() {
        assert!(same_reference("be-12 345", "BE12345"));
        assert!(!same_reference("BE12346", "BE12345"));
        assert!(!same_reference(" - ", ""));
    }

    #[test]
    fn templates_fill_what_is_known() {
        let t = OfficeTemplate::InformCardholder.render(
            Locale::Fr,
            &TemplateValues {
                office: Some("Fiduciaire".into()),
                cardholder: Some("Anne".into()),
                ..TemplateValues::default()
            },
        );
        assert!(t.subject.contains("Fiduciaire"));
        assert!(t.body.contains("Bonjour Anne"));
        assert!(t.body.contains("{company}"));
        assert!(t.body.contains("phishing"));
    }
}
