//! The SEPA mandate as a one-page A4 PDF, in French or English: the
//! document the debtor reads before entering the one-time code, then
//! downloads once signed.
//!
//! It carries what the SEPA Core rulebook requires of a mandate: the title,
//! the creditor's name, address and identifier, the unique mandate reference
//! (not yet attributed before signature), the debtor's name, address, IBAN
//! and BIC, the type of payment (recurrent or one-off), the standard
//! authorisation and refund-right wording (8 weeks after the debit, 13
//! months for an unauthorised one), the place and date of signature; and,
//! once signed electronically, the evidence of the signature (time, one-time
//! code channel and masked destination, IP address, user agent, hash of the
//! document that was read).
//!
//! It is written as PDF/A-2u (see [`crate::pdf`]) in DejaVu Sans, so every
//! name comes out as typed (Polish, Czech, Greek, Cyrillic…), with the
//! creditor's logo at the top when there is one. The signature time is
//! printed in the time zone it is given in (the organization's), the place
//! is the signer's town ([`signer_town`]).
//!
//! Rendering is deterministic: the same [`MandateDocument`] gives the same
//! bytes, so the hash of the unsigned document can be recomputed later.
//! A signed mandate is rendered once, at signature, and served from its
//! stored bytes afterwards: changing this renderer never changes a stored
//! mandate or its SHA-256.

use chrono::{DateTime, FixedOffset};
use sha2::{Digest, Sha256};

use super::PaymentType;
use super::bic::Bic;
use super::creditor_id::CreditorId;
use super::iban::Iban;
use crate::organization::Locale;
use crate::pdf::{
    A4_HEIGHT, A4_WIDTH, Conformance, Document, Font, Image, Page, text_width, wrap_text,
};

/// How the one-time signing code reached the debtor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureChannel {
    /// By text message.
    Sms,
    /// By e-mail.
    Email,
}

/// The evidence of an electronic signature by one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEvidence {
    /// Where the debtor declares signing (usually their town), printed as
    /// the place of signature.
    pub place: String,
    /// When the correct code was entered, in the time zone to print (its
    /// date is the date of signature).
    pub signed_at: DateTime<FixedOffset>,
    /// How the code was sent.
    pub channel: SignatureChannel,
    /// Where it was sent, already masked (`+33 6** ** ** 78`,
    /// `j***@example.fr`).
    pub masked_destination: String,
    /// The debtor's IP address as seen by Guichet.
    pub ip: String,
    /// The debtor's browser `User-Agent`.
    pub user_agent: String,
    /// The SHA-256 (hexadecimal) of the unsigned mandate PDF the debtor
    /// read, see [`document_hash`].
    pub document_hash: String,
}

/// Everything printed on a mandate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateDocument {
    /// The language of the document.
    pub locale: Locale,
    /// The creditor's name.
    pub creditor_name: String,
    /// The creditor's postal address, one entry per line.
    pub creditor_address: Vec<String>,
    /// The creditor's SEPA identifier.
    pub creditor_id: CreditorId,
    /// The unique mandate reference (UMR, RUM in French); `None` until it
    /// is attributed at signature.
    pub reference: Option<String>,
    /// The debtor's name (the account holder).
    pub debtor_name: String,
    /// The debtor's postal address, one entry per line.
    pub debtor_address: Vec<String>,
    /// The account to debit.
    pub iban: Iban,
    /// Its bank's BIC, when known.
    pub bic: Option<Bic>,
    /// Recurrent or one-off.
    pub payment_type: PaymentType,
    /// The signature, once signed.
    pub signature: Option<SignatureEvidence>,
    /// The creditor's logo (PNG or JPEG bytes), printed at the top; an
    /// unreadable one is left out.
    pub logo: Option<Vec<u8>>,
}

/// The signer's town, for the place of signature: the last non-empty line
/// of the address they gave, after its 5-digit postcode when it has one
/// (`75011 Paris` → `Paris`, `F-34980 Saint-Clément` → `Saint-Clément`),
/// else the whole line (`London SW1A 1AA` stays as it is); a trailing
/// country line (`France`) is skipped when a line with a postcode precedes it.
pub fn signer_town(address: &[String]) -> Option<String> {
    let lines: Vec<&str> = address
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let postcode_at = |line: &str| -> Option<usize> {
        let bytes = line.as_bytes();
        (0..bytes.len().saturating_sub(4)).find(|&i| {
            bytes[i..i + 5].iter().all(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_digit())
                && bytes.get(i + 5).is_none_or(|b| !b.is_ascii_digit())
        })
    };
    // The last line with a postcode, when it is one of the last two (the
    // last may be the country); else the last line.
    let with_postcode = lines
        .iter()
        .rev()
        .take(2)
        .find_map(|line| postcode_at(line).map(|at| (*line, at)));
    let town = match with_postcode {
        Some((line, at)) => line[at + 5..]
            .trim_start_matches([' ', ',', '-', '\u{a0}'])
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        None => (*lines.last()?).to_owned(),
    };
    (!town.is_empty()).then_some(town)
}

/// The name of the downloaded or attached file, in the reader's language:
/// `mandat-<RUM>.pdf` / `mandate-<UMR>.pdf` once signed,
/// `mandat-brouillon-<id>.pdf` / `mandate-draft-<id>.pdf` before.
pub fn file_name(locale: Locale, reference: Option<&str>, id: &str) -> String {
    match (locale, reference) {
        (Locale::Fr, Some(rum)) => format!("mandat-{rum}.pdf"),
        (Locale::En, Some(umr)) => format!("mandate-{umr}.pdf"),
        (Locale::Fr, None) => format!("mandat-brouillon-{id}.pdf"),
        (Locale::En, None) => format!("mandate-draft-{id}.pdf"),
    }
}

/// The SHA-256 of a rendered document, lower-case hexadecimal: what
/// [`SignatureEvidence::document_hash`] records for the unsigned mandate.
pub fn document_hash(pdf: &[u8]) -> String {
    crate::secret::to_hex(&Sha256::digest(pdf))
}

/// The fixed wording, per language.
struct Words {
    title: &'static str,
    reference: &'static str,
    reference_pending: &'static str,
    payment_type: &'static str,
    recurrent: &'static str,
    one_off: &'static str,
    /// The authorisation and refund-right text; `{creditor}` is replaced by
    /// the creditor's name.
    legal: &'static str,
    creditor: &'static str,
    debtor: &'static str,
    name: &'static str,
    address: &'static str,
    creditor_id: &'static str,
    bic_unknown: &'static str,
    signature: &'static str,
    place: &'static str,
    date: &'static str,
    electronic_signature: &'static str,
    signed_at: &'static str,
    channel: &'static str,
    by_sms: &'static str,
    by_email: &'static str,
    destination: &'static str,
    ip: &'static str,
    user_agent: &'static str,
    hash: &'static str,
    not_signed: &'static str,
    not_signed_note: &'static str,
    none: &'static str,
}

const FRENCH: Words = Words {
    title: "Mandat de prélèvement SEPA",
    reference: "Référence unique du mandat (RUM)",
    reference_pending: "à attribuer à la signature",
    payment_type: "Type de paiement",
    recurrent: "Récurrent",
    one_off: "Ponctuel",
    legal: "En signant ce formulaire de mandat, vous autorisez (A) {creditor} à envoyer des \
            instructions à votre banque pour débiter votre compte, et (B) votre banque à débiter \
            votre compte conformément aux instructions de {creditor}. Vous bénéficiez du droit \
            d'être remboursé par votre banque selon les conditions décrites dans la convention que \
            vous avez passée avec elle. Une demande de remboursement doit être présentée dans les \
            8 semaines suivant la date de débit de votre compte pour un prélèvement autorisé, et au \
            plus tard dans les 13 mois en cas de prélèvement non autorisé. Vos droits concernant le \
            présent mandat sont expliqués dans un document que vous pouvez obtenir auprès de votre \
            banque.",
    creditor: "Créancier",
    debtor: "Débiteur",
    name: "Nom",
    address: "Adresse",
    creditor_id: "Identifiant créancier SEPA (ICS)",
    bic_unknown: "non communiqué",
    signature: "Signature",
    place: "Lieu",
    date: "Date",
    electronic_signature: "Preuve de signature électronique",
    signed_at: "Signé le",
    channel: "Moyen",
    by_sms: "code à usage unique envoyé par SMS",
    by_email: "code à usage unique envoyé par e-mail",
    destination: "Envoyé à",
    ip: "Adresse IP",
    user_agent: "Navigateur",
    hash: "Empreinte SHA-256 du mandat lu",
    not_signed: "Non signé",
    not_signed_note: "Ce mandat prendra effet après sa signature électronique par code à usage unique.",
    none: "—",
};

const ENGLISH: Words = Words {
    title: "SEPA Direct Debit Mandate",
    reference: "Unique mandate reference (UMR)",
    reference_pending: "assigned at signature",
    payment_type: "Type of payment",
    recurrent: "Recurrent",
    one_off: "One-off",
    legal: "By signing this mandate form, you authorise (A) {creditor} to send instructions to \
            your bank to debit your account and (B) your bank to debit your account in accordance \
            with the instructions from {creditor}. As part of your rights, you are entitled to a \
            refund from your bank under the terms and conditions of your agreement with your bank. \
            A refund must be claimed within 8 weeks starting from the date on which your account \
            was debited for an authorised debit, and no later than 13 months for an unauthorised \
            debit. Your rights are explained in a statement that you can obtain from your bank.",
    creditor: "Creditor",
    debtor: "Debtor",
    name: "Name",
    address: "Address",
    creditor_id: "Creditor identifier",
    bic_unknown: "not provided",
    signature: "Signature",
    place: "Place",
    date: "Date",
    electronic_signature: "Electronic signature evidence",
    signed_at: "Signed at",
    channel: "Channel",
    by_sms: "one-time code sent by SMS",
    by_email: "one-time code sent by e-mail",
    destination: "Sent to",
    ip: "IP address",
    user_agent: "User agent",
    hash: "SHA-256 of the mandate read",
    not_signed: "Not signed",
    not_signed_note: "This mandate takes effect once signed electronically with a one-time code.",
    none: "—",
};

const LEFT: f32 = 50.0;
const RIGHT: f32 = A4_WIDTH - 50.0;
const TOP: f32 = A4_HEIGHT - 56.0;
const BOTTOM: f32 = 50.0;
const VALUE_X: f32 = 225.0;
const LABEL_WIDTH: f32 = VALUE_X - LEFT - 10.0;
const BODY: f32 = 9.5;
const LEADING: f32 = 12.5;

/// Places text top-down, starting a new page when one is full (which the
/// mandate only needs for unusually long inputs).
struct Layout {
    done: Vec<Page>,
    page: Page,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            page: Page::new(),
            y: TOP,
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.done.push(std::mem::take(&mut self.page));
            self.y = TOP;
        }
    }

    fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    fn paragraph(&mut self, text: &str, font: Font, size: f32, leading: f32) {
        for line in wrap_text(text, font, size, RIGHT - LEFT) {
            self.ensure(leading);
            self.y -= leading;
            self.page.text(LEFT, self.y, font, size, &line);
        }
    }

    fn heading(&mut self, text: &str) {
        self.ensure(LEADING * 4.0);
        self.gap(10.0);
        self.y -= 13.0;
        self.page.text(LEFT, self.y, Font::Bold, 11.5, text);
        self.y -= 4.0;
        self.page.line((LEFT, self.y), (RIGHT, self.y), 0.6);
        self.y -= 2.0;
    }

    /// A label in bold on the left, its value (one entry per line)
    /// wrapped on the right.
    fn field(&mut self, label: &str, values: &[&str], value_font: Font) {
        self.field_sized(label, values, value_font, BODY);
    }

    /// Like [`Layout::field`] with the value in another size (a smaller one
    /// keeps a 64-character hash on one line).
    fn field_sized(&mut self, label: &str, values: &[&str], value_font: Font, size: f32) {
        let labels = wrap_text(label, Font::Bold, BODY, LABEL_WIDTH);
        let mut lines = Vec::new();
        for value in values {
            lines.extend(wrap_text(value, value_font, size, RIGHT - VALUE_X));
        }
        let rows = labels.len().max(lines.len());
        for row in 0..rows {
            self.ensure(LEADING);
            self.y -= LEADING;
            if let Some(label) = labels.get(row) {
                self.page.text(LEFT, self.y, Font::Bold, BODY, label);
            }
            if let Some(line) = lines.get(row) {
                self.page.text(VALUE_X, self.y, value_font, size, line);
            }
        }
    }

    /// A label and short choices side by side, 120 points apart.
    fn choices(&mut self, label: &str, choices: &[&str]) {
        self.ensure(LEADING);
        self.y -= LEADING;
        self.page.text(LEFT, self.y, Font::Bold, BODY, label);
        let mut x = VALUE_X;
        for choice in choices {
            self.page.text(x, self.y, Font::Regular, BODY, choice);
            x += 120.0;
        }
    }

    fn finish(mut self) -> Vec<Page> {
        self.done.push(self.page);
        self.done
    }
}

fn format_date(locale: Locale, at: &DateTime<FixedOffset>) -> String {
    match locale {
        Locale::Fr => at.format("%d/%m/%Y").to_string(),
        Locale::En => at.format("%-d %B %Y").to_string(),
    }
}

fn format_time(locale: Locale, at: &DateTime<FixedOffset>) -> String {
    let (date, word) = (
        format_date(locale, at),
        match locale {
            Locale::Fr => "à",
            Locale::En => "at",
        },
    );
    format!(
        "{date} {word} {} (UTC{})",
        at.format("%H:%M:%S"),
        at.format("%:z")
    )
}

/// Renders the mandate: one A4 page for any realistic input (very long
/// addresses or user agents continue on a second page rather than being
/// cut).
pub fn render_mandate(mandate: &MandateDocument) -> Vec<u8> {
    let words = match mandate.locale {
        Locale::Fr => &FRENCH,
        Locale::En => &ENGLISH,
    };
    let mut layout = Layout::new();

    if let Some(logo) = mandate.logo.as_deref().and_then(|b| Image::new(b).ok()) {
        let height = 40.0;
        layout
            .page
            .image(&logo, LEFT, layout.y - height, 160.0, height);
        layout.gap(height + 10.0);
    }

    // Title, centred.
    let title_size = 18.0;
    let title_x = (A4_WIDTH - text_width(words.title, Font::Bold, title_size)) / 2.0;
    layout.y -= title_size;
    layout
        .page
        .text(title_x, layout.y, Font::Bold, title_size, words.title);
    layout.gap(12.0);

    let reference = mandate
        .reference
        .as_deref()
        .unwrap_or(words.reference_pending);
    let reference_font = if mandate.reference.is_some() {
        Font::Bold
    } else {
        Font::Regular
    };
    layout.field(words.reference, &[reference], reference_font);
    let (recurrent, one_off) = match mandate.payment_type {
        PaymentType::Recurrent => ("[X]", "[  ]"),
        PaymentType::OneOff => ("[  ]", "[X]"),
    };
    layout.choices(
        words.payment_type,
        &[
            &format!("{recurrent} {}", words.recurrent),
            &format!("{one_off} {}", words.one_off),
        ],
    );
    layout.gap(8.0);

    let legal = words.legal.replace("{creditor}", &mandate.creditor_name);
    layout.paragraph(&legal, Font::Regular, BODY, LEADING);

    layout.heading(words.creditor);
    layout.field(words.name, &[&mandate.creditor_name], Font::Regular);
    let address: Vec<&str> = mandate
        .creditor_address
        .iter()
        .map(String::as_str)
        .collect();
    layout.field(words.address, &address, Font::Regular);
    layout.field(
        words.creditor_id,
        &[mandate.creditor_id.as_str()],
        Font::Regular,
    );

    layout.heading(words.debtor);
    layout.field(words.name, &[&mandate.debtor_name], Font::Regular);
    let address: Vec<&str> = mandate.debtor_address.iter().map(String::as_str).collect();
    layout.field(words.address, &address, Font::Regular);
    layout.field("IBAN", &[&mandate.iban.formatted()], Font::Regular);
    let bic = mandate.bic.as_ref().map_or(words.bic_unknown, Bic::as_str);
    layout.field("BIC", &[bic], Font::Regular);

    layout.heading(words.signature);
    match &mandate.signature {
        Some(signature) => {
            let place = if signature.place.trim().is_empty() {
                words.none
            } else {
                signature.place.as_str()
            };
            layout.field(words.place, &[place], Font::Regular);
            let date = format_date(mandate.locale, &signature.signed_at);
            layout.field(words.date, &[&date], Font::Regular);
            layout.gap(6.0);
            layout.paragraph(words.electronic_signature, Font::Bold, BODY, LEADING);
            let time = format_time(mandate.locale, &signature.signed_at);
            layout.field(words.signed_at, &[&time], Font::Regular);
            let channel = match signature.channel {
                SignatureChannel::Sms => words.by_sms,
                SignatureChannel::Email => words.by_email,
            };
            layout.field(words.channel, &[channel], Font::Regular);
            layout.field(
                words.destination,
                &[&signature.masked_destination],
                Font::Regular,
            );
            layout.field(words.ip, &[&signature.ip], Font::Regular);
            layout.field(words.user_agent, &[&signature.user_agent], Font::Regular);
            layout.field_sized(words.hash, &[&signature.document_hash], Font::Regular, 8.0);
        }
        None => {
            layout.field(words.place, &[words.none], Font::Regular);
            layout.field(words.date, &[words.none], Font::Regular);
            layout.gap(10.0);
            layout.ensure(40.0);
            let top = layout.y;
            layout.y -= 22.0;
            layout
                .page
                .text(LEFT + 12.0, layout.y, Font::Bold, 14.0, words.not_signed);
            layout.y -= 6.0;
            let note = wrap_text(
                words.not_signed_note,
                Font::Regular,
                BODY,
                RIGHT - LEFT - 24.0,
            );
            for line in note {
                layout.y -= LEADING;
                layout
                    .page
                    .text(LEFT + 12.0, layout.y, Font::Regular, BODY, &line);
            }
            layout.y -= 8.0;
            layout
                .page
                .rect(LEFT, layout.y, RIGHT - LEFT, top - layout.y, 0.8);
        }
    }

    Document {
        title: match &mandate.reference {
            Some(reference) => format!("{} {reference}", words.title),
            None => words.title.to_owned(),
        },
        language: Some(mandate.locale),
        // A signed mandate is archived: PDF/A-2u, dated by its signature.
        // The unsigned one is a reading copy, plain PDF without a date.
        created_at: mandate
            .signature
            .as_ref()
            .map(|s| s.signed_at.with_timezone(&chrono::Utc)),
        conformance: if mandate.signature.is_some() {
            Conformance::PdfA2u
        } else {
            Conformance::Plain
        },
        pages: layout.finish(),
    }
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::tests::{find, has_image, page_count, text_of, tiny_png};
    use chrono::TimeZone;

    fn unsigned(locale: Locale) -> MandateDocument {
        MandateDocument {
            locale,
            creditor_name: "Cabinet Dupré & Fils (Gestion)".into(),
            creditor_address: vec![
                "10, av. de Rouargues".into(),
                "34980 Saint-Clément-de-Rivière".into(),
            ],
            creditor_id: CreditorId::parse("FR72ZZZ123456").unwrap(),
            reference: None,
            debtor_name: "Hélène Lefèvre-Œuvray".into(),
            debtor_address: vec!["3 rue de l'Église".into(), "75011 Paris".into()],
            iban: Iban::parse("FR7630006000011234567890189").unwrap(),
            bic: Some(Bic::parse("AGRIFRPP").unwrap()),
            payment_type: PaymentType::OneOff,
            signature: None,
            logo: None,
        }
    }

    fn signed(locale: Locale) -> MandateDocument {
        let mut mandate = unsigned(locale);
        let hash = document_hash(&render_mandate(&mandate));
        mandate.reference = Some("RUM-2026-000042".into());
        mandate.payment_type = PaymentType::Recurrent;
        mandate.signature = Some(SignatureEvidence {
            place: "Paris".into(),
            signed_at: FixedOffset::east_opt(3600)
                .unwrap()
                .with_ymd_and_hms(2026, 3, 14, 10, 32, 5)
                .unwrap(),
            channel: SignatureChannel::Sms,
            masked_destination: "+33 6** ** ** 78".into(),
            ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
                .into(),
            document_hash: hash,
        });
        mandate
    }

    /// The extracted text with runs of spaces made one.
    fn text(pdf: &[u8]) -> String {
        text_of(pdf)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn an_unsigned_french_mandate_has_every_field() {
        let pdf = render_mandate(&unsigned(Locale::Fr));
        assert_eq!(page_count(&pdf), 1);
        let all = text(&pdf);
        for expected in [
            "Mandat de prélèvement SEPA",
            "Référence unique du mandat",
            "(RUM)",
            "à attribuer à la signature",
            "[ ] Récurrent",
            "[X] Ponctuel",
            "Cabinet Dupré & Fils (Gestion)",
            "34980 Saint-Clément-de-Rivière",
            "FR72ZZZ123456",
            "Hélène Lefèvre-Œuvray",
            "3 rue de l'Église",
            "FR76 3000 6000 0112 3456 7890 189",
            "AGRIFRPP",
            "Lieu",
            "Date",
            "Non signé",
            "8 semaines",
            "13 mois",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        assert!(!all.contains("203.0.113.7"));
        // A reading copy: plain PDF, undated, in French.
        assert!(find(&pdf, b"pdfaid:part").is_none());
        assert!(find(&pdf, b"CreationDate").is_none());
    }

    #[test]
    fn a_signed_english_mandate_has_the_signature_evidence() {
        let mandate = signed(Locale::En);
        let pdf = render_mandate(&mandate);
        assert_eq!(page_count(&pdf), 1);
        let all = text(&pdf);
        let hash = &mandate.signature.as_ref().unwrap().document_hash;
        assert_eq!(hash.len(), 64);
        for expected in [
            "SEPA Direct Debit Mandate",
            "Unique mandate reference",
            "(UMR)",
            "RUM-2026-000042",
            "[X] Recurrent",
            "[ ] One-off",
            "Creditor identifier",
            "Paris",
            "14 March 2026 at 10:32:05 (UTC+01:00)",
            "one-time code sent by SMS",
            "+33 6** ** ** 78",
            "203.0.113.7",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0)",
            hash,
            "8 weeks",
            "13 months",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        assert!(!all.contains("Not signed"));
        assert!(!all.contains("assigned at signature"));
        // Archived: PDF/A-2u, dated by the signature.
        assert!(find(&pdf, b"pdfaid:part").is_some());
        assert!(find(&pdf, b"CreationDate").is_some());
    }

    #[test]
    fn french_signature_dates_are_day_month_year() {
        let mut mandate = signed(Locale::Fr);
        if let Some(s) = mandate.signature.as_mut() {
            s.channel = SignatureChannel::Email;
            s.masked_destination = "h***@exemple.fr".into();
        }
        let all = text(&render_mandate(&mandate));
        for expected in [
            "14/03/2026 à 10:32:05 (UTC+01:00)",
            "code à usage unique envoyé par e-mail",
            "h***@exemple.fr",
            "[X] Récurrent",
            "[ ] Ponctuel",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }

    #[test]
    fn names_in_any_european_script_come_out_as_typed() {
        let mut mandate = signed(Locale::Fr);
        mandate.debtor_name = "Łukasz Wąsik".into();
        mandate.debtor_address = vec![
            "ул. Ленина 5, Юлия Ξένια".into(),
            "Nguyễn Trãi, Žižkov".into(),
            "00-001 Warszawa".into(),
        ];
        let all = text(&render_mandate(&mandate));
        for expected in [
            "Łukasz Wąsik",
            "ул. Ленина 5, Юлия Ξένια",
            "Nguyễn Trãi, Žižkov",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let a = render_mandate(&signed(Locale::Fr));
        let b = render_mandate(&signed(Locale::Fr));
        assert_eq!(a, b);
        assert_eq!(document_hash(&a), document_hash(&b));
        assert_ne!(a, render_mandate(&signed(Locale::En)));
        let mut with_logo = signed(Locale::Fr);
        with_logo.logo = Some(tiny_png());
        let c = render_mandate(&with_logo);
        assert_eq!(c, render_mandate(&with_logo));
        assert_ne!(a, c);
    }

    #[test]
    fn the_logo_is_an_image_and_a_broken_one_is_left_out() {
        let mut mandate = signed(Locale::Fr);
        mandate.logo = Some(tiny_png());
        let pdf = render_mandate(&mandate);
        assert!(has_image(&pdf));
        assert_eq!(page_count(&pdf), 1);
        mandate.logo = Some(b"not an image".to_vec());
        let pdf = render_mandate(&mandate);
        assert!(!has_image(&pdf));
        assert!(text(&pdf).contains("Mandat de prélèvement SEPA"));
    }

    #[test]
    fn long_inputs_wrap_and_stay_on_one_page_when_realistic() {
        let mut mandate = signed(Locale::Fr);
        mandate.creditor_name =
            "Société Civile Immobilière des Résidences du Grand Parc de la Rivière et Associés"
                .into();
        mandate.creditor_address =
            vec!["Bâtiment C, escalier 4, 128 boulevard de la République Française".into(); 3];
        mandate.debtor_address = vec![
                "Appartement 12, résidence Les Jardins de Saint-Clément, chemin des Oliviers"
                    .into();
                3
            ];
        mandate.logo = Some(tiny_png());
        if let Some(s) = mandate.signature.as_mut() {
            s.user_agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15 Edge/124.0.2478.80 ExtraTokenWithoutSpaces0123456789abcdefghij".into();
        }
        let pdf = render_mandate(&mandate);
        assert_eq!(page_count(&pdf), 1);
        // Nothing is cut: the words are all there, across lines.
        let all = text(&pdf);
        assert!(all.contains("Edge/124.0.2478.80"), "{all}");
        assert_eq!(all.matches("escalier 4").count(), 3);
    }

    #[test]
    fn absurd_inputs_overflow_onto_more_pages_instead_of_being_cut() {
        let mut mandate = unsigned(Locale::En);
        mandate.debtor_address = vec!["A very long address line".into(); 80];
        let pdf = render_mandate(&mandate);
        assert!(page_count(&pdf) >= 2);
        assert_eq!(text(&pdf).matches("A very long address line").count(), 80);
    }

    #[test]
    fn the_place_is_the_signers_town() {
        let town = |lines: &[&str]| {
            signer_town(&lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            town(&["3 rue de l'Église", "75011 Paris"]).as_deref(),
            Some("Paris")
        );
        assert_eq!(
            town(&[
                "Chemin des Oliviers",
                "F-34980 Saint-Clément-de-Rivière",
                "France"
            ])
            .as_deref(),
            Some("Saint-Clément-de-Rivière")
        );
        assert_eq!(
            town(&["12 Main Street", "London SW1A 1AA"]).as_deref(),
            Some("London SW1A 1AA")
        );
        assert_eq!(
            town(&["13008 Marseille Cedex 08"]).as_deref(),
            Some("Marseille Cedex 08")
        );
        assert_eq!(town(&["  ", ""]), None);
        assert_eq!(town(&[]), None);
        assert_eq!(town(&["75011"]), None);
    }

    #[test]
    fn files_are_named_in_the_readers_language() {
        assert_eq!(
            file_name(Locale::Fr, Some("GCH1"), "mdt_1"),
            "mandat-GCH1.pdf"
        );
        assert_eq!(
            file_name(Locale::En, Some("GCH1"), "mdt_1"),
            "mandate-GCH1.pdf"
        );
        assert_eq!(
            file_name(Locale::Fr, None, "mdt_1"),
            "mandat-brouillon-mdt_1.pdf"
        );
        assert_eq!(
            file_name(Locale::En, None, "mdt_1"),
            "mandate-draft-mdt_1.pdf"
        );
    }

    #[test]
    fn generation_is_fast() {
        let mandate = signed(Locale::Fr);
        let _ = render_mandate(&mandate);
        let start = std::time::Instant::now();
        let runs = 10_u32;
        for _ in 0..runs {
            std::hint::black_box(render_mandate(std::hint::black_box(&mandate)));
        }
        let each = start.elapsed() / runs;
        // Font subsetting and compression, unoptimized: well under 250 ms.
        assert!(each < std::time::Duration::from_millis(250), "{each:?}");
    }
}
