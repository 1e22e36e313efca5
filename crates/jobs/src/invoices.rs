//! Invoices outside HTTP: their PDF and the receipt's, with the
//! organization's branding, the e-mails that carry them, and the
//! reconciliation of online payments whose request is gone.

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::invoice::{self as rules, Kind};
use guichet_domain::organization::Locale;
use guichet_domain::pdf::invoice::{InvoiceLine, InvoicePdf, InvoicePdfKind, Party, render};
use guichet_domain::{Currency, Money};
use guichet_store::repo::invoices::{self, Invoice, Payment};
use guichet_store::repo::outbox::Attachment;
use guichet_store::repo::{customers, organizations, portal};
use guichet_store::{DbConnection, StoreError};

use crate::notify::{self, Channel, Template};

/// An amount as a customer reads it: `1 234,50 €` in French, `€1,234.50`
/// in English (other currencies by their code).
pub fn money(amount: i64, currency: Currency, locale: Locale) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    let digits = units.to_string();
    let sep = if locale == Locale::Fr {
        '\u{202f}'
    } else {
        ','
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    let euro = currency == Currency::EUR;
    match (locale, euro) {
        (Locale::Fr, true) => format!("{sign}{grouped},{cents:02}\u{a0}€"),
        (Locale::Fr, false) => format!("{sign}{grouped},{cents:02}\u{a0}{currency}"),
        (Locale::En, true) => format!("{sign}€{grouped}.{cents:02}"),
        (Locale::En, false) => format!("{sign}{currency} {grouped}.{cents:02}"),
    }
}

/// A date as a customer reads it: `07/12/2026` in French, `2026-12-07` in
/// English.
pub fn date(d: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::Fr => d.format("%d/%m/%Y").to_string(),
        Locale::En => d.format("%Y-%m-%d").to_string(),
    }
}

fn accent(hex: Option<&str>) -> Option<[u8; 3]> {
    let h = hex?.strip_prefix('#')?;
    let byte = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// What the issuer and the customer are on a document, and the logo.
struct Parties {
    org_name: String,
    issuer: Party,
    customer: Party,
    locale: Locale,
    logo: Option<Vec<u8>>,
    accent: Option<[u8; 3]>,
}

/// The name the organization shows its customers: its branding's display
/// name, else its name.
fn display_name(conn: &mut DbConnection, org_id: &str) -> Result<String, StoreError> {
    let branding = portal::find(conn, org_id)?.and_then(|b| b.display_name);
    match branding {
        Some(name) => Ok(name),
        None => Ok(organizations::get(conn, org_id)?.name),
    }
}

fn parties(conn: &mut DbConnection, inv: &Invoice) -> Result<Parties, StoreError> {
    let org = organizations::get(conn, &inv.org_id)?;
    let customer = customers::get(conn, &inv.org_id, &inv.customer_id)?;
    let branding = portal::find(conn, &inv.org_id)?;
    let logo = portal::logo(conn, &inv.org_id)?.map(|l| l.content);
    let display = branding
        .as_ref()
        .and_then(|b| b.display_name.clone())
        .unwrap_or_else(|| org.name.clone());
    let mut extra = Vec::new();
    if let Some(b) = &branding {
        extra.extend(b.contact_email.clone());
        extra.extend(b.phone.clone());
        extra.extend(b.website.clone());
    }
    if extra.is_empty() {
        extra.extend(org.support_email.clone());
        extra.extend(org.support_phone.clone());
    }
    Ok(Parties {
        org_name: display.clone(),
        issuer: Party {
            name: display,
            address_lines: branding
                .as_ref()
                .and_then(|b| b.address.clone())
                .map(|a| a.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            extra_lines: extra,
        },
        customer: Party {
            name: customer.name.clone(),
            address_lines: Vec::new(),
            extra_lines: vec![customer.email.clone()],
        },
        locale: customer.locale,
        logo,
        accent: accent(branding.as_ref().and_then(|b| b.accent_color.as_deref())),
    })
}

fn totals_rows(inv: &Invoice, locale: Locale) -> Vec<(String, String)> {
    let fr = locale == Locale::Fr;
    let m = |a: i64| money(a, inv.currency, locale);
    let mut rows = Vec::new();
    if inv.kind == Kind::Invoice {
        rows.push((
            if fr { "Total HT" } else { "Subtotal" }.to_owned(),
            m(inv.subtotal),
        ));
        if let Ok(t) = rules::totals(&inv.lines) {
            for x in &t.taxes {
                let rate = rules::format_rate(x.rate_bp, fr);
                rows.push((
                    if fr {
                        format!("TVA {rate}")
                    } else {
                        format!("Tax {rate}")
                    },
                    m(x.tax),
                ));
            }
        }
    }
    rows.push((
        if fr { "Total TTC" } else { "Total" }.to_owned(),
        m(inv.total),
    ));
    if inv.amount_paid > 0 {
        rows.push((
            if fr { "Déjà réglé" } else { "Paid" }.to_owned(),
            m(inv.amount_paid),
        ));
    }
    rows.push((
        if fr { "Montant dû" } else { "Amount due" }.to_owned(),
        m(inv.amount_due()),
    ));
    rows
}

/// The invoice's PDF (number required: it is rendered when issued).
pub fn invoice_pdf(conn: &mut DbConnection, inv: &Invoice) -> Result<Vec<u8>, StoreError> {
    let p = parties(conn, inv)?;
    let locale = p.locale;
    let fr = locale == Locale::Fr;
    let doc = InvoicePdf {
        locale,
        kind: match inv.kind {
            Kind::Invoice => InvoicePdfKind::Invoice,
            Kind::PaymentRequest => InvoicePdfKind::PaymentRequest,
        },
        number: inv.number.clone().unwrap_or_default(),
        issuer: p.issuer,
        customer: p.customer,
        logo: p.logo,
        accent_color: p.accent,
        issue_date: date(inv.issue_date, locale),
        due_date: Some(date(inv.due_date, locale)),
        document_date: inv.issue_date,
        reason: inv.reason.clone(),
        lines: inv
            .lines
            .iter()
            .map(|l| {
                let a = l.amounts().unwrap_or(rules::LineAmounts { net: 0, tax: 0 });
                InvoiceLine {
                    description: l.description.clone(),
                    quantity: l.quantity.to_string(),
                    unit_amount: money(l.unit_amount, inv.currency, locale),
                    tax_rate: rules::format_rate(l.tax_rate_bp, fr),
                    total: money(a.net, inv.currency, locale),
                }
            })
            .collect(),
        totals: totals_rows(inv, locale),
        note: inv.note.clone(),
        footer_lines: Vec::new(),
    };
    Ok(render(&doc))
}

/// The receipt of `payment` (succeeded) on `inv` (as it is after it).
pub fn receipt_pdf(
    conn: &mut DbConnection,
    inv: &Invoice,
    payment: &Payment,
) -> Result<Vec<u8>, StoreError> {
    let p = parties(conn, inv)?;
    let locale = p.locale;
    let fr = locale == Locale::Fr;
    let m = |a: i64| money(a, inv.currency, locale);
    let number = inv.number.clone().unwrap_or_default();
    let how = match invoices::Details::of(payment)? {
        Some(d) => format!("{} •••• {}", d.card.brand.as_str(), d.card.last4),
        None => payment.method.clone(),
    };
    let paid_on = payment
        .paid_on
        .unwrap_or_else(|| payment.created_at.date_naive());
    let doc = InvoicePdf {
        locale,
        kind: InvoicePdfKind::Receipt,
        number: format!("{number}-{}", payment.id),
        issuer: p.issuer,
        customer: p.customer,
        logo: p.logo,
        accent_color: p.accent,
        issue_date: date(paid_on, locale),
        due_date: None,
        document_date: paid_on,
        reason: Some(if fr {
            format!("Paiement de la facture {number}")
        } else {
            format!("Payment of invoice {number}")
        }),
        lines: Vec::new(),
        totals: vec![
            (
                if fr { "Montant réglé" } else { "Amount paid" }.to_owned(),
                m(payment.amount.amount),
            ),
            (
                if fr {
                    "Total de la facture"
                } else {
                    "Invoice total"
                }
                .to_owned(),
                m(inv.total),
            ),
            (
                if fr { "Reste dû" } else { "Left to pay" }.to_owned(),
                m(inv.amount_due()),
            ),
        ],
        note: None,
        footer_lines: vec![if fr {
            format!("Réglé le {} par {how}.", date(paid_on, locale))
        } else {
            format!("Paid on {} by {how}.", date(paid_on, locale))
        }],
    };
    Ok(render(&doc))
}

/// The file name of an invoice's PDF, in the customer's language.
pub fn file_name(inv: &Invoice, locale: Locale) -> String {
    let word = match (inv.kind, locale) {
        (Kind::Invoice, Locale::Fr) => "facture",
        (Kind::Invoice, Locale::En) => "invoice",
        (Kind::PaymentRequest, Locale::Fr) => "demande-de-paiement",
        (Kind::PaymentRequest, Locale::En) => "payment-request",
    };
    let number: String = inv
        .number
        .as_deref()
        .unwrap_or(&inv.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{word}-{number}.pdf")
}

/// Queues the e-mail of an issued invoice, with its PDF, to its customer
/// (in the caller's transaction).
pub fn tell_issued(
    conn: &mut DbConnection,
    inv: &Invoice,
    pdf: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let customer = customers::get(conn, &inv.org_id, &inv.customer_id)?;
    let p = parties(conn, inv)?;
    let locale = customer.locale;
    let template = Template::InvoiceIssued {
        org_name: p.org_name,
        request: inv.kind == Kind::PaymentRequest,
        number: inv.number.clone().unwrap_or_default(),
        total: money(inv.total, inv.currency, locale),
        due_date: date(inv.due_date, locale),
        reason: inv.reason.clone(),
    };
    notify::queue_with_attachments(
        conn,
        Some(&inv.org_id),
        Channel::Email,
        &customer.email,
        &template,
        locale,
        now,
        &[Attachment {
            filename: file_name(inv, locale),
            content_type: "application/pdf".to_owned(),
            content: pdf.to_vec(),
            render: None,
        }],
    )
}

/// Queues the receipt of a payment that went through to the invoice's
/// customer (in the settling transaction). Its PDF is made when the e-mail
/// is sent ([`render_attachment`]), not here: rendering costs far more
/// than the payment's writes, and a settling transaction (which holds the
/// invoice's lock, and SQLite's write lock) must stay short. What the PDF
/// shows of the invoice at that payment (what was left to pay) is kept
/// with it.
pub fn tell_paid(
    conn: &mut DbConnection,
    inv: &Invoice,
    payment: &Payment,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let customer = customers::get(conn, &inv.org_id, &inv.customer_id)?;
    let locale = customer.locale;
    let org_name = display_name(conn, &inv.org_id)?;
    let number = inv.number.clone().unwrap_or_default();
    let template = Template::InvoiceReceipt {
        org_name,
        number: number.clone(),
        amount: money(payment.amount.amount, payment.amount.currency, locale),
        left: (inv.amount_due() > 0).then(|| money(inv.amount_due(), inv.currency, locale)),
    };
    let word = if locale == Locale::Fr {
        "recu"
    } else {
        "receipt"
    };
    let spec = ReceiptSpec {
        kind: RECEIPT.to_owned(),
        org_id: inv.org_id.clone(),
        invoice_id: inv.id.clone(),
        payment_id: payment.id.clone(),
        left: inv.amount_due(),
    };
    notify::queue_with_attachments(
        conn,
        Some(&inv.org_id),
        Channel::Email,
        &customer.email,
        &template,
        locale,
        now,
        &[Attachment {
            filename: format!("{word}-{}.pdf", payment.id),
            content_type: "application/pdf".to_owned(),
            content: Vec::new(),
            render: Some(
                serde_json::to_string(&spec).map_err(|e| StoreError::Database(e.to_string()))?,
            ),
        }],
    )
}

/// The `kind` of a receipt's [`ReceiptSpec`].
const RECEIPT: &str = "invoice_receipt";

/// What makes a receipt's PDF when its e-mail is sent: the payment, and
/// what was left to pay on the invoice once it was made.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptSpec {
    kind: String,
    org_id: String,
    invoice_id: String,
    payment_id: String,
    left: i64,
}

/// Makes the file of an attachment queued with [`Attachment::render`] (the
/// dispatcher calls it as it sends the e-mail): an invoice receipt's PDF,
/// from the payment, the invoice and the organization's branding, with
/// the amount left to pay as it was after that payment.
pub fn render_attachment(conn: &mut DbConnection, render: &str) -> Result<Vec<u8>, StoreError> {
    let spec: ReceiptSpec = serde_json::from_str(render)
        .map_err(|e| StoreError::Database(format!("an attachment to render is invalid: {e}")))?;
    if spec.kind != RECEIPT {
        return Err(StoreError::Database(format!(
            "no renderer for attachments of kind {:?}",
            spec.kind
        )));
    }
    let mut inv = invoices::get(conn, &spec.org_id, &spec.invoice_id)?;
    let payment = invoices::payment(conn, &spec.payment_id)?;
    if payment.org_id != inv.org_id || payment.invoice_id != inv.id {
        return Err(StoreError::NotFound);
    }
    inv.amount_paid = inv.total - spec.left;
    receipt_pdf(conn, &inv, &payment)
}

/// The amount of `inv` as [`Money`].
pub fn due_money(inv: &Invoice) -> Money {
    Money::new(inv.amount_due(), inv.currency)
}

/// Settles the stale pending payment `p` (its request is gone) with what
/// the gateway said of its key (`found`, asked with no connection held):
/// settled with the gateway's outcome, or given up when the gateway never
/// received it. `false` when someone else settled it first.
pub fn settle_stale(
    conn: &mut DbConnection,
    p: &Payment,
    found: Option<
        Result<guichet_domain::gateway::ChargeReceipt, guichet_domain::gateway::GatewayError>,
    >,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match found {
        Some(outcome) => Ok(invoices::settle(
            conn,
            p,
            &outcome,
            now,
            guichet_domain::events::Actor::System,
            |conn, inv, paid| tell_paid(conn, inv, paid, now),
            || {},
        )? != invoices::Settled::AlreadyDone),
        None => invoices::abandon(conn, p, now),
    }
}
