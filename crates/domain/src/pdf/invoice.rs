//! Invoices, payment requests and receipts as PDF documents, A4, laid out
//! from plain data (already formatted amounts and dates).

use super::{A4_HEIGHT, A4_WIDTH, Document, Font, Page, text_width, wrap_text};
use crate::organization::Locale;

/// The issuer or the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub address_lines: Vec<String>,
    pub extra_lines: Vec<String>,
}

/// One line, its values already formatted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: String,
    pub unit_amount: String,
    pub tax_rate: String,
    pub total: String,
}

/// What the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoicePdfKind {
    Invoice,
    PaymentRequest,
    Receipt,
}

/// A document to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePdf {
    pub locale: Locale,
    pub kind: InvoicePdfKind,
    pub number: String,
    pub issuer: Party,
    pub customer: Party,
    /// PNG or JPEG bytes.
    pub logo: Option<Vec<u8>>,
    pub accent_color: Option<[u8; 3]>,
    pub issue_date: String,
    pub due_date: Option<String>,
    pub reason: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub totals: Vec<(String, String)>,
    pub note: Option<String>,
    pub footer_lines: Vec<String>,
}

const LEFT: f32 = 56.0;
const RIGHT: f32 = A4_WIDTH - 56.0;
const BOTTOM: f32 = 72.0;

struct Writer {
    pages: Vec<Page>,
    page: Page,
    y: f32,
}

impl Writer {
    fn need(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            let done = std::mem::take(&mut self.page);
            self.pages.push(done);
            self.y = A4_HEIGHT - 64.0;
        }
    }

    fn text(&mut self, x: f32, font: Font, size: f32, text: &str) {
        self.page.text(x, self.y, font, size, text);
    }

    fn right(&mut self, x_right: f32, font: Font, size: f32, text: &str) {
        let w = text_width(text, font, size);
        self.page.text(x_right - w, self.y, font, size, text);
    }
}

/// The labels in the document's language.
fn label(locale: Locale, fr: &'static str, en: &'static str) -> &'static str {
    if locale == Locale::Fr { fr } else { en }
}

/// Renders `doc`: deterministic (the same data give the same bytes).
pub fn render(doc: &InvoicePdf) -> Vec<u8> {
    let l = doc.locale;
    let title = match doc.kind {
        InvoicePdfKind::Invoice => label(l, "Facture", "Invoice"),
        InvoicePdfKind::PaymentRequest => label(l, "Demande de paiement", "Payment request"),
        InvoicePdfKind::Receipt => label(l, "Reçu", "Receipt"),
    };
    let mut w = Writer {
        pages: Vec::new(),
        page: Page::new(),
        y: A4_HEIGHT - 64.0,
    };
    w.text(LEFT, Font::HelveticaBold, 14.0, &doc.issuer.name);
    w.right(RIGHT, Font::HelveticaBold, 18.0, title);
    w.y -= 16.0;
    for line in doc
        .issuer
        .address_lines
        .iter()
        .chain(&doc.issuer.extra_lines)
    {
        w.text(LEFT, Font::Helvetica, 9.0, line);
        w.y -= 12.0;
    }
    w.y -= 12.0;
    w.text(
        LEFT,
        Font::HelveticaBold,
        10.0,
        &format!("N° {}", doc.number),
    );
    w.y -= 14.0;
    let issued = match doc.kind {
        InvoicePdfKind::Receipt => label(l, "Date du paiement", "Payment date"),
        _ => label(l, "Date d'émission", "Issue date"),
    };
    w.text(
        LEFT,
        Font::Helvetica,
        10.0,
        &format!("{issued} : {}", doc.issue_date),
    );
    w.y -= 14.0;
    if let Some(due) = &doc.due_date {
        let lab = label(l, "Échéance", "Due date");
        w.text(LEFT, Font::Helvetica, 10.0, &format!("{lab} : {due}"));
        w.y -= 14.0;
    }
    w.y -= 8.0;
    w.text(
        LEFT,
        Font::HelveticaBold,
        10.0,
        label(l, "Client", "Customer"),
    );
    w.y -= 13.0;
    w.text(LEFT, Font::Helvetica, 10.0, &doc.customer.name);
    w.y -= 13.0;
    for line in doc
        .customer
        .address_lines
        .iter()
        .chain(&doc.customer.extra_lines)
    {
        w.text(LEFT, Font::Helvetica, 10.0, line);
        w.y -= 13.0;
    }
    w.y -= 10.0;
    if let Some(reason) = &doc.reason {
        for line in wrap_text(reason, Font::Helvetica, 10.0, RIGHT - LEFT) {
            w.need(14.0);
            w.text(LEFT, Font::Helvetica, 10.0, &line);
            w.y -= 14.0;
        }
        w.y -= 6.0;
    }
    if !doc.lines.is_empty() {
        let cols = [RIGHT - 200.0, RIGHT - 140.0, RIGHT - 70.0, RIGHT];
        let head = |w: &mut Writer| {
            w.text(
                LEFT,
                Font::HelveticaBold,
                9.0,
                label(l, "Désignation", "Description"),
            );
            w.right(cols[0], Font::HelveticaBold, 9.0, label(l, "Qté", "Qty"));
            w.right(
                cols[1],
                Font::HelveticaBold,
                9.0,
                label(l, "Prix unitaire", "Unit price"),
            );
            w.right(cols[2], Font::HelveticaBold, 9.0, label(l, "TVA", "Tax"));
            w.right(
                cols[3],
                Font::HelveticaBold,
                9.0,
                label(l, "Montant HT", "Amount"),
            );
            w.y -= 4.0;
            w.page.line((LEFT, w.y), (RIGHT, w.y), 0.5);
            w.y -= 12.0;
        };
        head(&mut w);
        for line in &doc.lines {
            let wrapped = wrap_text(
                &line.description,
                Font::Helvetica,
                9.0,
                cols[0] - LEFT - 40.0,
            );
            let height = 12.0 * wrapped.len().max(1) as f32 + 2.0;
            if w.y - height < BOTTOM {
                w.need(f32::MAX);
                head(&mut w);
            }
            w.right(cols[0], Font::Helvetica, 9.0, &line.quantity);
            w.right(cols[1], Font::Helvetica, 9.0, &line.unit_amount);
            w.right(cols[2], Font::Helvetica, 9.0, &line.tax_rate);
            w.right(cols[3], Font::Helvetica, 9.0, &line.total);
            for part in &wrapped {
                w.text(LEFT, Font::Helvetica, 9.0, part);
                w.y -= 12.0;
            }
            w.y -= 2.0;
        }
        w.page.line((LEFT, w.y + 8.0), (RIGHT, w.y + 8.0), 0.5);
        w.y -= 6.0;
    }
    for (name, value) in &doc.totals {
        w.need(14.0);
        w.right(RIGHT - 110.0, Font::HelveticaBold, 10.0, name);
        w.right(RIGHT, Font::Helvetica, 10.0, value);
        w.y -= 14.0;
    }
    if let Some(note) = &doc.note {
        w.y -= 10.0;
        for line in wrap_text(note, Font::Helvetica, 9.0, RIGHT - LEFT) {
            w.need(12.0);
            w.text(LEFT, Font::Helvetica, 9.0, &line);
            w.y -= 12.0;
        }
    }
    for line in &doc.footer_lines {
        w.y -= 4.0;
        w.need(12.0);
        w.text(LEFT, Font::Helvetica, 9.0, line);
        w.y -= 12.0;
    }
    w.pages.push(w.page);
    Document {
        title: format!("{title} {}", doc.number),
        created_at: None,
        pages: w.pages,
    }
    .to_bytes()
}
