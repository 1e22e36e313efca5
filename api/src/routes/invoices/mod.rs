//! Invoices and payment requests (docs/INVOICES.md).
//!
//! - `admin.rs`: `/v1/admin/invoices...` — write, issue, void, record an
//!   offline payment, list, read, download;
//! - `customer.rs`: `/v1/me/invoices...` — the customer's list, one
//!   invoice, its PDF (while the portal's `payments` action is on);
//! - `pay.rs`: `POST /v1/me/invoices/{id}/payments` — pay online, exactly
//!   once through crashes and retries;
//!
//! The PDFs (invoice, receipt) and their e-mails are `guichet_jobs::invoices`,
//! shared with the jobs (autopay, reconciliation).

pub mod admin;
pub mod customer;
pub mod pay;

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::invoice::{self as rules, Status};
use guichet_store::repo::invoices::{self, Invoice, Payment};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::problem::{ApiError, ProblemCode};

/// Registers the invoice routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/v1/admin/invoices")
            .service(admin::create)
            .service(admin::list)
            .service(admin::get_one)
            .service(admin::issue)
            .service(admin::void)
            .service(admin::record_payment)
            .service(admin::payments)
            .service(admin::document),
    )
    .service(
        scope("/v1/me/invoices")
            .service(customer::list)
            .service(customer::get_one)
            .service(customer::document)
            .service(pay::pay),
    );
}

/// One line with its amounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceLineView {
    #[schema(example = "Séance de kinésithérapie")]
    pub description: String,
    #[schema(example = 2, minimum = 1)]
    pub quantity: i64,
    /// Minor units.
    #[schema(example = 4500)]
    pub unit_amount: i64,
    /// Basis points (2 000 is 20 %).
    #[schema(example = 0, minimum = 0, maximum = 10000)]
    pub tax_rate_bp: i32,
    /// `quantity × unit_amount`.
    pub net: i64,
    /// The line's tax, rounded half away from zero to the minor unit.
    pub tax: i64,
}

/// The tax of one rate: the sum of its lines' taxes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaxView {
    pub rate_bp: i32,
    /// The net amounts taxed at this rate.
    pub base: i64,
    pub tax: i64,
}

/// An invoice or a payment request. Amounts are minor units of `currency`;
/// `subtotal + tax = total` and `amount_paid + amount_due = total` always
/// (`amount_due` is 0 for a draft or a void invoice).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceView {
    #[schema(example = "inv_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(value_type = crate::routes::enums::InvoiceKind)]
    pub kind: &'static str,
    /// Chosen by the business, or generated when it is issued
    /// (`F-2026-00042`, `D-...` for a payment request); null for a draft
    /// without one.
    #[schema(example = "F-2026-00042")]
    pub number: Option<String>,
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    /// `overdue`: open and past its due date.
    #[schema(value_type = crate::routes::enums::InvoiceStatus)]
    pub status: &'static str,
    #[schema(value_type = String, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Empty for a payment request.
    pub lines: Vec<InvoiceLineView>,
    pub subtotal: i64,
    /// By rate, in increasing rate order.
    pub taxes: Vec<TaxView>,
    pub tax: i64,
    pub total: i64,
    pub amount_paid: i64,
    pub amount_due: i64,
    /// A payment request's reason.
    pub reason: Option<String>,
    pub note: Option<String>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// The PDF shared with the customer when it was issued.
    pub document_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
}

impl InvoiceView {
    /// The view of `inv` on `today`.
    pub fn new(inv: &Invoice, today: NaiveDate) -> Self {
        let totals = rules::totals(&inv.lines).ok();
        InvoiceView {
            id: inv.id.clone(),
            kind: inv.kind.as_str(),
            number: inv.number.clone(),
            customer_id: inv.customer_id.clone(),
            status: rules::shown(inv.status, inv.due_date, today).as_str(),
            currency: inv.currency.as_str().to_owned(),
            lines: inv
                .lines
                .iter()
                .map(|l| {
                    let a = l.amounts().unwrap_or(rules::LineAmounts { net: 0, tax: 0 });
                    InvoiceLineView {
                        description: l.description.clone(),
                        quantity: l.quantity,
                        unit_amount: l.unit_amount,
                        tax_rate_bp: l.tax_rate_bp,
                        net: a.net,
                        tax: a.tax,
                    }
                })
                .collect(),
            subtotal: inv.subtotal,
            taxes: totals
                .map(|t| {
                    t.taxes
                        .iter()
                        .map(|x| TaxView {
                            rate_bp: x.rate_bp,
                            base: x.base,
                            tax: x.tax,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            tax: inv.tax,
            total: inv.total,
            amount_paid: inv.amount_paid,
            amount_due: inv.amount_due(),
            reason: inv.reason.clone(),
            note: inv.note.clone(),
            issue_date: inv.issue_date,
            due_date: inv.due_date,
            document_id: inv.document_id.clone(),
            created_at: inv.created_at,
            issued_at: inv.issued_at,
            paid_at: inv.paid_at,
            voided_at: inv.voided_at,
            void_reason: inv.void_reason.clone(),
        }
    }
}

/// What may be shown of the card that paid.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaidCard {
    #[schema(value_type = crate::routes::enums::CardBrand)]
    pub brand: guichet_domain::card::CardBrand,
    #[schema(example = "4242")]
    pub last4: String,
}

/// A payment of an invoice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoicePaymentView {
    #[schema(example = "ipy_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub invoice_id: String,
    pub amount: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: String,
    /// `customer` (online), `autopay` or `staff` (recorded offline).
    #[schema(value_type = crate::routes::enums::InvoicePaymentSource)]
    pub source: String,
    #[schema(value_type = crate::routes::enums::InvoicePaymentMethod)]
    pub method: String,
    /// `pending` (sent to the gateway, answer not known yet; for a direct
    /// debit, until the bank answers), `succeeded` or `failed`.
    #[schema(value_type = crate::routes::enums::InvoicePaymentStatus)]
    pub status: String,
    /// Why it failed: the gateway's refusal code; for a direct debit
    /// `debit_rejected` (the collection has the bank's reason) or
    /// `collection_cancelled` (mandate revoked or expired first).
    pub failure_code: Option<String>,
    /// The card, for a card payment.
    pub card: Option<PaidCard>,
    /// The SEPA collection (`col_...`) that pays it, for a direct debit
    /// (`sepa_debit`, autopay through a mandate): pending until the bank's
    /// answer is recorded on it.
    #[schema(example = json!(null))]
    pub collection_id: Option<String>,
    /// What the business noted of an offline payment.
    pub reference: Option<String>,
    pub paid_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for InvoicePaymentView {
    fn from(p: &Payment) -> Self {
        let card = invoices::Details::of(p).ok().flatten().map(|d| PaidCard {
            brand: d.card.brand,
            last4: d.card.last4,
        });
        InvoicePaymentView {
            id: p.id.clone(),
            invoice_id: p.invoice_id.clone(),
            amount: p.amount.amount,
            currency: p.amount.currency.as_str().to_owned(),
            source: p.source.clone(),
            method: p.method.clone(),
            status: p.status.clone(),
            failure_code: p.failure_code.clone(),
            card,
            collection_id: invoices::collection_id(p).map(str::to_owned),
            reference: p.reference.clone(),
            paid_on: p.paid_on,
            created_at: p.created_at,
            completed_at: p.completed_at,
        }
    }
}

/// The data of the `invoice.*` events: the invoice as it is after the
/// change, and the payment the event is about (`invoice.paid`,
/// `invoice.partially_paid`, `invoice.payment_failed`), else null.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceEventData {
    pub invoice: InvoiceView,
    pub payment: Option<InvoicePaymentView>,
}

/// A page of invoices, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceList {
    pub data: Vec<InvoiceView>,
    pub next_cursor: Option<String>,
}

/// The problem for an invoice that cannot take a payment or a change in
/// its status.
pub fn status_problem(status: Status) -> ApiError {
    match status {
        Status::Void => ApiError::new(ProblemCode::InvoiceVoid)
            .detail("Cette facture est annulée.", "This invoice is void."),
        Status::Paid => ApiError::new(ProblemCode::InvoiceAlreadyPaid).detail(
            "Cette facture est déjà payée.",
            "This invoice is already paid.",
        ),
        Status::Open | Status::Draft => ApiError::new(ProblemCode::InvoiceNotDraft).detail(
            "Seul un brouillon peut être émis.",
            "Only a draft can be issued.",
        ),
    }
}

/// 404 for an invoice that is not the caller's to see.
pub fn not_found() -> ApiError {
    ApiError::new(ProblemCode::NotFound).detail("Facture introuvable.", "No such invoice.")
}

/// Reads an invoice id from a path: an id of the documented shape, else
/// 404 (a malformed id names nothing).
pub fn path_id(id: &str) -> Result<(), ApiError> {
    if crate::routes::admin::is_id_cursor(id) {
        Ok(())
    } else {
        Err(not_found())
    }
}
