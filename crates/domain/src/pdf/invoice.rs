//! Invoices, payment requests and receipts as PDF/A-2u: plain data in
//! (every amount, quantity and date already formatted by the caller),
//! bytes out. French or English labels; names and lines in any script
//! DejaVu Sans covers; the organization's logo and accent colour; as many
//! A4 pages as the lines need, the table header repeated and each page
//! numbered.
//!
//! Deterministic: the same [`InvoicePdf`] renders the same bytes (the
//! document date in the metadata is [`InvoicePdf::document_date`], never
//! the time of rendering), so a document can be rendered again and
//! compared, or stored once with its hash.

use chrono::NaiveDate;

use super::{
    A4_HEIGHT, A4_WIDTH, Conformance, Document, Font, Image, Page, Rgb, text_width, wrap_text,
};
use crate::organization::Locale;

/// The issuer or the customer: a name and lines under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// Printed in bold (the organization's branding display name, the
    /// customer's name).
    pub name: String,
    /// The postal address, one entry per line.
    pub address_lines: Vec<String>,
    /// More lines under the address: VAT number, SIRET, e-mail, customer
    /// reference…
    pub extra_lines: Vec<String>,
}

/// One line of an invoice, every value already formatted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceLine {
    /// What was sold (wrapped on several lines when long).
    pub description: String,
    /// The quantity (`2`, `1,5`).
    pub quantity: String,
    /// The unit amount (`12,50 €`).
    pub unit_amount: String,
    /// The tax rate (`20 %`).
    pub tax_rate: String,
    /// The line's total (`25,00 €`).
    pub total: String,
}

/// Which document it is: its title and its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoicePdfKind {
    /// An invoice with lines.
    Invoice,
    /// A payment request: an amount and a reason, no lines.
    PaymentRequest,
    /// A receipt for a payment.
    Receipt,
}

/// Everything printed on an invoice, a payment request or a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePdf {
    /// The language of the labels (`Fr` or `En`).
    pub locale: Locale,
    /// Invoice, payment request or receipt.
    pub kind: InvoicePdfKind,
    /// The invoice number, or the receipt number.
    pub number: String,
    /// The organization, under its branding display name.
    pub issuer: Party,
    /// The customer.
    pub customer: Party,
    /// The organization's logo, PNG or JPEG bytes (an unreadable one is
    /// left out).
    pub logo: Option<Vec<u8>>,
    /// The colour of the title and the rules (default: dark blue-grey).
    pub accent_color: Option<[u8; 3]>,
    /// The issue date, already formatted.
    pub issue_date: String,
    /// The due date, already formatted.
    pub due_date: Option<String>,
    /// The date of the document in the PDF metadata (PDF/A requires one):
    /// the issue date, or the payment date of a receipt.
    pub document_date: NaiveDate,
    /// A payment request's reason.
    pub reason: Option<String>,
    /// The lines; empty for a payment request.
    pub lines: Vec<InvoiceLine>,
    /// Label and formatted amount, in order: subtotal, tax per rate,
    /// total, paid, due. The last one is printed in bold.
    pub totals: Vec<(String, String)>,
    /// A note under the totals.
    pub note: Option<String>,
    /// Lines at the end (e.g. `Paid on 2026-12-07 by Visa •••• 4242`, legal
    /// mentions, payment instructions).
    pub footer_lines: Vec<String>,
}

/// The fixed wording, per language.
struct Words {
    invoice: &'static str,
    payment_request: &'static str,
    receipt: &'static str,
    number: &'static str,
    issue_date: &'static str,
    due_date: &'static str,
    bill_to: &'static str,
    received_from: &'static str,
    reason: &'static str,
    description: &'static str,
    quantity: &'static str,
    unit_amount: &'static str,
    tax_rate: &'static str,
    total: &'static str,
    note: &'static str,
    page: &'static str,
}

const FRENCH: Words = Words {
    invoice: "Facture",
    payment_request: "Demande de paiement",
    receipt: "Reçu",
    number: "N°",
    issue_date: "Date d'émission",
    due_date: "Échéance",
    bill_to: "Facturé à",
    received_from: "Reçu de",
    reason: "Objet",
    description: "Description",
    quantity: "Qté",
    unit_amount: "Prix unitaire",
    tax_rate: "TVA",
    total: "Total",
    note: "Note",
    page: "Page",
};

const ENGLISH: Words = Words {
    invoice: "Invoice",
    payment_request: "Payment request",
    receipt: "Receipt",
    number: "No.",
    issue_date: "Issue date",
    due_date: "Due date",
    bill_to: "Bill to",
    received_from: "Received from",
    reason: "Reason",
    description: "Description",
    quantity: "Qty",
    unit_amount: "Unit price",
    tax_rate: "Tax",
    total: "Amount",
    note: "Note",
    page: "Page",
};

fn words(locale: Locale) -> &'static Words {
    match locale {
        Locale::Fr => &FRENCH,
        Locale::En => &ENGLISH,
    }
}

/// The title of a document of `kind` in `locale` (`Facture`, `Receipt`…).
pub fn title(locale: Locale, kind: InvoicePdfKind) -> &'static str {
    let w = words(locale);
    match kind {
        InvoicePdfKind::Invoice => w.invoice,
        InvoicePdfKind::PaymentRequest => w.payment_request,
        InvoicePdfKind::Receipt => w.receipt,
    }
}

/// The name of the downloaded or attached file, in the reader's language:
/// `facture-<n>.pdf` / `invoice-<n>.pdf`, `demande-de-paiement-<n>.pdf` /
/// `payment-request-<n>.pdf`, `recu-<n>.pdf` / `receipt-<n>.pdf`; the
/// number keeps only ASCII letters, digits, `-` and `_`.
pub fn file_name(locale: Locale, kind: InvoicePdfKind, number: &str) -> String {
    let stem = match (locale, kind) {
        (Locale::Fr, InvoicePdfKind::Invoice) => "facture",
        (Locale::En, InvoicePdfKind::Invoice) => "invoice",
        (Locale::Fr, InvoicePdfKind::PaymentRequest) => "demande-de-paiement",
        (Locale::En, InvoicePdfKind::PaymentRequest) => "payment-request",
        (Locale::Fr, InvoicePdfKind::Receipt) => "recu",
        (Locale::En, InvoicePdfKind::Receipt) => "receipt",
    };
    let number: String = number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{stem}-{number}.pdf")
}

const LEFT: f32 = 50.0;
const RIGHT: f32 = A4_WIDTH - 50.0;
const TOP: f32 = A4_HEIGHT - 50.0;
/// Text stops above the page number.
const BOTTOM: f32 = 64.0;
const BODY: f32 = 9.5;
const LEADING: f32 = 12.5;
const DEFAULT_ACCENT: Rgb = [38, 50, 72];
const RULE_GREY: Rgb = [200, 200, 200];
const MUTED: Rgb = [90, 90, 90];

/// Column right edges of the table (the description is left-aligned, the
/// rest right-aligned).
const QUANTITY_RIGHT: f32 = 340.0;
const UNIT_RIGHT: f32 = 420.0;
const TAX_RIGHT: f32 = 470.0;
const TOTAL_RIGHT: f32 = RIGHT;
const DESCRIPTION_WIDTH: f32 = 250.0;

/// Places content top-down over as many pages as needed.
struct Layout {
    done: Vec<Page>,
    page: Page,
    y: f32,
    accent: Rgb,
    /// The header to repeat at the top of a new page while the table runs.
    table_header: bool,
    words: &'static Words,
}

impl Layout {
    fn new_page(&mut self) {
        self.done.push(std::mem::take(&mut self.page));
        self.y = TOP;
        if self.table_header {
            self.header_row();
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    /// Wrapped text over the width `[x, x + width]`.
    fn paragraph(&mut self, x: f32, width: f32, text: &str, font: Font, color: Rgb) {
        for line in wrap_text(text, font, BODY, width) {
            self.ensure(LEADING);
            self.y -= LEADING;
            self.page.text_colored(x, self.y, font, BODY, color, &line);
        }
    }

    fn header_row(&mut self) {
        let w = self.words;
        self.y -= 18.0;
        self.page
            .fill_rect(LEFT, self.y - 5.0, RIGHT - LEFT, 18.0, self.accent);
        let white = [255, 255, 255];
        let y = self.y;
        self.page
            .text_colored(LEFT + 4.0, y, Font::Bold, BODY, white, w.description);
        for (right, label) in [
            (QUANTITY_RIGHT, w.quantity),
            (UNIT_RIGHT, w.unit_amount),
            (TAX_RIGHT, w.tax_rate),
            (TOTAL_RIGHT - 4.0, w.total),
        ] {
            let x = right - text_width(label, Font::Bold, BODY);
            self.page.text_colored(x, y, Font::Bold, BODY, white, label);
        }
        self.y -= 8.0;
    }

    fn row(&mut self, line: &InvoiceLine) {
        let description = wrap_text(
            &line.description,
            Font::Regular,
            BODY,
            DESCRIPTION_WIDTH - 4.0,
        );
        let height = description.len() as f32 * LEADING + 6.0;
        // A row stays on one page unless it is taller than a page.
        if height < TOP - BOTTOM - 40.0 {
            self.ensure(height);
        }
        for (i, text) in description.iter().enumerate() {
            self.ensure(LEADING);
            self.y -= LEADING;
            self.page
                .text(LEFT + 4.0, self.y, Font::Regular, BODY, text);
            if i == 0 {
                for (right, value) in [
                    (QUANTITY_RIGHT, &line.quantity),
                    (UNIT_RIGHT, &line.unit_amount),
                    (TAX_RIGHT, &line.tax_rate),
                    (TOTAL_RIGHT - 4.0, &line.total),
                ] {
                    self.page
                        .text_right(right, self.y, Font::Regular, BODY, value);
                }
            }
        }
        self.y -= 6.0;
        self.page
            .line_colored((LEFT, self.y), (RIGHT, self.y), 0.4, RULE_GREY);
    }

    fn finish(mut self) -> Vec<Page> {
        self.done.push(self.page);
        self.done
    }
}

/// The lines of a party block: name in bold, then the rest.
fn party(layout: &mut Layout, x: f32, width: f32, heading: Option<&str>, party: &Party) -> f32 {
    let start = layout.y;
    if let Some(heading) = heading {
        layout.paragraph(x, width, heading, Font::Regular, MUTED);
    }
    layout.paragraph(x, width, &party.name, Font::Bold, super::BLACK);
    for line in party.address_lines.iter().chain(&party.extra_lines) {
        layout.paragraph(x, width, line, Font::Regular, super::BLACK);
    }
    let end = layout.y;
    layout.y = start;
    end
}

/// Renders the document: PDF/A-2u, deterministic, as many pages as needed.
pub fn render(doc: &InvoicePdf) -> Vec<u8> {
    let w = words(doc.locale);
    let accent = doc.accent_color.unwrap_or(DEFAULT_ACCENT);
    let title = title(doc.locale, doc.kind);
    let mut layout = Layout {
        done: Vec::new(),
        page: Page::new(),
        y: TOP,
        accent,
        table_header: false,
        words: w,
    };

    // Top left: the logo, then the issuer. Top right: the title, number
    // and dates.
    let column = 320.0;
    let top = layout.y;
    if let Some(logo) = doc.logo.as_deref().and_then(|b| Image::new(b).ok()) {
        let height = 50.0;
        layout
            .page
            .image(&logo, LEFT, layout.y - height, 180.0, height);
        layout.y -= height + 8.0;
    }
    let issuer_end = party(&mut layout, LEFT, column - LEFT - 20.0, None, &doc.issuer);

    layout.y = top;
    let title_size = 20.0;
    layout.y -= title_size;
    for line in wrap_text(title, Font::Bold, title_size, RIGHT - column) {
        layout.page.text_colored(
            RIGHT - text_width(&line, Font::Bold, title_size),
            layout.y,
            Font::Bold,
            title_size,
            accent,
            &line,
        );
        layout.y -= title_size + 2.0;
    }
    layout.y -= 4.0;
    let mut facts = vec![
        (w.number, doc.number.as_str()),
        (w.issue_date, doc.issue_date.as_str()),
    ];
    if let Some(due) = &doc.due_date {
        facts.push((w.due_date, due.as_str()));
    }
    for (label, value) in facts {
        let value_width = text_width(value, Font::Regular, BODY);
        let label_text = format!("{label} ");
        let values = if value_width > RIGHT - column - 60.0 {
            wrap_text(value, Font::Regular, BODY, RIGHT - column - 60.0)
        } else {
            vec![value.to_owned()]
        };
        for (i, value) in values.iter().enumerate() {
            layout.y -= LEADING;
            layout
                .page
                .text_right(RIGHT, layout.y, Font::Regular, BODY, value);
            if i == 0 {
                let x = RIGHT
                    - text_width(value, Font::Regular, BODY)
                    - text_width(&label_text, Font::Bold, BODY);
                layout
                    .page
                    .text_colored(x, layout.y, Font::Bold, BODY, MUTED, &label_text);
            }
        }
    }
    let facts_end = layout.y;

    // The customer, on the right under the facts.
    layout.y = issuer_end.min(facts_end) - 24.0;
    let heading = match doc.kind {
        InvoicePdfKind::Receipt => w.received_from,
        InvoicePdfKind::Invoice | InvoicePdfKind::PaymentRequest => w.bill_to,
    };
    let customer_end = party(
        &mut layout,
        column,
        RIGHT - column,
        Some(heading),
        &doc.customer,
    );
    layout.y = customer_end - 20.0;
    layout
        .page
        .line_colored((LEFT, layout.y), (RIGHT, layout.y), 1.2, accent);
    layout.y -= 6.0;

    if let Some(reason) = doc.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        layout.ensure(LEADING * 2.0);
        layout.paragraph(LEFT, RIGHT - LEFT, w.reason, Font::Bold, accent);
        layout.paragraph(LEFT, RIGHT - LEFT, reason, Font::Regular, super::BLACK);
        layout.y -= 8.0;
    }

    if !doc.lines.is_empty() {
        layout.ensure(18.0 + LEADING * 2.0);
        layout.header_row();
        layout.table_header = true;
        for line in &doc.lines {
            layout.row(line);
        }
        layout.table_header = false;
        layout.y -= 8.0;
    }

    // Totals, right column; the last one in bold above an accent rule.
    let count = doc.totals.len();
    for (i, (label, amount)) in doc.totals.iter().enumerate() {
        let last = i + 1 == count;
        let font = if last { Font::Bold } else { Font::Regular };
        let labels = wrap_text(label, font, BODY, TAX_RIGHT - column - 10.0);
        layout.ensure(LEADING * labels.len() as f32 + if last { 8.0 } else { 0.0 });
        if last && count > 1 {
            layout.y -= 4.0;
            layout
                .page
                .line_colored((column, layout.y), (RIGHT, layout.y), 0.8, accent);
        }
        for (j, label) in labels.iter().enumerate() {
            layout.y -= LEADING + if last && j == 0 { 2.0 } else { 0.0 };
            layout.page.text(column, layout.y, font, BODY, label);
            if j == 0 {
                layout
                    .page
                    .text_right(TOTAL_RIGHT - 4.0, layout.y, font, BODY, amount);
            }
        }
    }

    if let Some(note) = doc.note.as_deref().filter(|n| !n.trim().is_empty()) {
        layout.y -= 16.0;
        layout.ensure(LEADING * 2.0);
        layout.paragraph(LEFT, RIGHT - LEFT, w.note, Font::Bold, accent);
        layout.paragraph(LEFT, RIGHT - LEFT, note, Font::Regular, super::BLACK);
    }

    if !doc.footer_lines.is_empty() {
        layout.y -= 16.0;
        layout.ensure(LEADING + 6.0);
        layout
            .page
            .line_colored((LEFT, layout.y), (RIGHT, layout.y), 0.4, RULE_GREY);
        layout.y -= 2.0;
        for line in &doc.footer_lines {
            layout.paragraph(LEFT, RIGHT - LEFT, line, Font::Regular, MUTED);
        }
    }

    // Number every page: "Facture F-2026-001 · Page 1 / 3".
    let mut pages = layout.finish();
    let total = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        let text = format!("{title} {} · {} {} / {total}", doc.number, w.page, i + 1);
        let text = wrap_text(&text, Font::Regular, 8.0, RIGHT - LEFT)
            .into_iter()
            .next()
            .unwrap_or_default();
        page.line_colored((LEFT, 48.0), (RIGHT, 48.0), 0.4, RULE_GREY);
        page.text_right(RIGHT, 36.0, Font::Regular, 8.0, &text);
        page.text_colored(LEFT, 36.0, Font::Regular, 8.0, MUTED, &doc.issuer.name);
    }

    Document {
        title: format!("{title} {}", doc.number),
        language: Some(doc.locale),
        created_at: doc
            .document_date
            .and_hms_opt(0, 0, 0)
            .map(|at| at.and_utc()),
        conformance: Conformance::PdfA2u,
        pages,
    }
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::tests::{find, has_image, page_count, text_of, tiny_png};

    fn invoice(locale: Locale) -> InvoicePdf {
        InvoicePdf {
            locale,
            kind: InvoicePdfKind::Invoice,
            number: "F-2026-0042".into(),
            issuer: Party {
                name: "Cabinet Kiné Ξένια".into(),
                address_lines: vec!["8 rue des Lilas".into(), "75011 Paris".into()],
                extra_lines: vec!["SIRET 123 456 789 00012".into(), "TVA FR12345678901".into()],
            },
            customer: Party {
                name: "Łukasz Wąsik".into(),
                address_lines: vec!["ul. Żółkiewskiego 12".into(), "00-001 Warszawa".into()],
                extra_lines: vec!["Юлия Иванова (c/o)".into()],
            },
            logo: None,
            accent_color: Some([0, 110, 90]),
            issue_date: "07/12/2026".into(),
            due_date: Some("21/12/2026".into()),
            document_date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            reason: None,
            lines: vec![
                InvoiceLine {
                    description: "Séance de kinésithérapie".into(),
                    quantity: "2".into(),
                    unit_amount: "50,00 €".into(),
                    tax_rate: "0 %".into(),
                    total: "100,00 €".into(),
                },
                InvoiceLine {
                    description: "Bilan postural — Nguyễn Thị Minh Khai, avec une description \
                                  assez longue pour tenir sur plusieurs lignes du tableau"
                        .into(),
                    quantity: "1".into(),
                    unit_amount: "40,00 €".into(),
                    tax_rate: "20 %".into(),
                    total: "40,00 €".into(),
                },
            ],
            totals: vec![
                ("Total HT".into(), "140,00 €".into()),
                ("TVA 20 %".into(), "8,00 €".into()),
                ("Total TTC".into(), "148,00 €".into()),
                ("Déjà payé".into(), "48,00 €".into()),
                ("Montant dû".into(), "100,00 €".into()),
            ],
            note: Some("Merci de votre confiance.".into()),
            footer_lines: vec!["Payé le 07/12/2026 par Visa •••• 4242".into()],
        }
    }

    fn text(pdf: &[u8]) -> String {
        text_of(pdf)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_french_invoice_shows_every_line_total_and_name() {
        let pdf = render(&invoice(Locale::Fr));
        assert_eq!(page_count(&pdf), 1);
        let all = text(&pdf);
        for expected in [
            "Facture",
            "N° F-2026-0042",
            "Date d'émission 07/12/2026",
            "Échéance 21/12/2026",
            "Facturé à",
            "Cabinet Kiné Ξένια",
            "Łukasz Wąsik",
            "ul. Żółkiewskiego 12",
            "Юлия Иванова",
            "Description",
            "Qté",
            "Prix unitaire",
            "TVA",
            "Séance de kinésithérapie",
            "Nguyễn Thị Minh Khai",
            "50,00 €",
            "100,00 €",
            "Total HT",
            "140,00 €",
            "Total TTC",
            "148,00 €",
            "Montant dû",
            "Merci de votre confiance.",
            "Payé le 07/12/2026 par Visa •••• 4242",
            "Page 1 / 1",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        assert!(find(&pdf, b"pdfaid:part").is_some());
        assert!(!has_image(&pdf));
    }

    #[test]
    fn english_labels_for_each_kind() {
        let mut doc = invoice(Locale::En);
        let all = text(&render(&doc));
        for expected in [
            "Invoice",
            "No. F-2026-0042",
            "Issue date",
            "Due date",
            "Bill to",
            "Qty",
            "Unit price",
            "Amount",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        doc.kind = InvoicePdfKind::Receipt;
        doc.number = "R-0007".into();
        let all = text(&render(&doc));
        assert!(
            all.contains("Receipt") && all.contains("Received from"),
            "{all}"
        );
        assert!(all.contains("No. R-0007"), "{all}");
        doc.locale = Locale::Fr;
        let all = text(&render(&doc));
        assert!(all.contains("Reçu") && all.contains("Reçu de"), "{all}");
    }

    #[test]
    fn a_payment_request_has_a_reason_and_no_table() {
        for (locale, title, reason) in [
            (Locale::Fr, "Demande de paiement", "Objet"),
            (Locale::En, "Payment request", "Reason"),
        ] {
            let mut doc = invoice(locale);
            doc.kind = InvoicePdfKind::PaymentRequest;
            doc.lines.clear();
            doc.reason = Some("Acompte pour les travaux de la résidence Ξένια".into());
            doc.totals = vec![("Montant dû".into(), "300,00 €".into())];
            let all = text(&render(&doc));
            for expected in [
                title,
                reason,
                "Acompte pour les travaux de la résidence Ξένια",
                "300,00 €",
            ] {
                assert!(all.contains(expected), "{expected}: {all}");
            }
            assert!(!all.contains("Prix unitaire") && !all.contains("Unit price"));
        }
    }

    #[test]
    fn long_invoices_paginate_and_keep_every_line() {
        let mut doc = invoice(Locale::Fr);
        doc.lines = (1..=80)
            .map(|i| InvoiceLine {
                description: format!("Article numéro {i:03} — Юлия"),
                quantity: i.to_string(),
                unit_amount: "1,00 €".into(),
                tax_rate: "20 %".into(),
                total: format!("{i},00 €"),
            })
            .collect();
        let pdf = render(&doc);
        let pages = page_count(&pdf);
        assert!(pages >= 3, "{pages}");
        let all = text(&pdf);
        for i in 1..=80 {
            assert!(
                all.contains(&format!("Article numéro {i:03} — Юлия")),
                "{i}"
            );
        }
        // The header is repeated, and each page numbered.
        assert_eq!(all.matches("Prix unitaire").count(), pages);
        assert!(all.contains(&format!("Page {pages} / {pages}")));
        assert!(all.contains("Montant dû"));
    }

    #[test]
    fn the_logo_makes_an_image_xobject_and_a_broken_one_is_left_out() {
        let mut doc = invoice(Locale::Fr);
        doc.logo = Some(tiny_png());
        let pdf = render(&doc);
        assert!(has_image(&pdf));
        assert!(find(&pdf, b"pdfaid:part").is_some());
        doc.logo = Some(b"<svg/>".to_vec());
        let pdf = render(&doc);
        assert!(!has_image(&pdf));
        assert!(text(&pdf).contains("F-2026-0042"));
    }

    #[test]
    fn output_is_deterministic() {
        let mut doc = invoice(Locale::Fr);
        doc.logo = Some(tiny_png());
        let a = render(&doc);
        assert_eq!(a, render(&doc));
        doc.lines[0].total = "100,01 €".into();
        assert_ne!(a, render(&doc));
    }

    #[test]
    fn files_are_named_in_the_readers_language() {
        assert_eq!(
            file_name(Locale::Fr, InvoicePdfKind::Invoice, "F-2026/0042"),
            "facture-F-2026-0042.pdf"
        );
        assert_eq!(
            file_name(Locale::En, InvoicePdfKind::Receipt, "R 7"),
            "receipt-R-7.pdf"
        );
        assert_eq!(
            file_name(Locale::Fr, InvoicePdfKind::PaymentRequest, "D1"),
            "demande-de-paiement-D1.pdf"
        );
    }
}
