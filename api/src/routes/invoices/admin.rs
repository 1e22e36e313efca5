//! The business's invoices (`/v1/admin/invoices...`, staff token or API
//! key): write a draft, issue it (numbered, rendered, shared with the
//! customer, e-mailed), void it, record a payment received another way,
//! list, read and download.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use actix_web::{HttpResponse, get, post, web};
use chrono::{NaiveDate, Utc};
use guichet_domain::events::{Actor, EventType};
use guichet_domain::invoice::{self as rules, Content, Kind, Line, ShownStatus, Status};
use guichet_domain::{Currency, Money, ids};
use guichet_store::repo::documents::{self, Document};
use guichet_store::repo::invoices::{self, Invoice, Payment};
use guichet_store::repo::{customers, events};
use guichet_store::{DbConnection, StoreError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{InvoiceList, InvoicePaymentView, InvoiceView, not_found, path_id, status_problem};
use crate::auth::{StaffActor, StaffPrincipal};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, TimePosition, page_end, resolve_time_page, time_cursor};
use crate::state::AppState;
use guichet_jobs::invoices as render;

const NOT_FOUND: &str = "No such invoice in your organization. Codes: `not_found`.";
const CUSTOMER_ROLE: &str = "A customer token. Codes: `forbidden`.";

/// One line of an invoice.
#[derive(Debug, serde::Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    #[validate(
        length(min = 1, max = 300),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"\S",
        example = "Séance de kinésithérapie"
    )]
    pub description: String,
    /// A whole number of units.
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000, example = 2)]
    pub quantity: i64,
    /// Minor units (4500 is 45.00).
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000, example = 4500)]
    pub unit_amount: i64,
    /// Basis points: 2000 is 20 %, 550 is 5.5 % (default 0).
    #[validate(range(min = 0, max = 10_000))]
    #[schema(minimum = 0, maximum = 10_000, default = 0, example = 0)]
    #[serde(default)]
    pub tax_rate_bp: i32,
}

/// A new invoice (with `lines`) or payment request (with `amount` and
/// `reason`), written as a draft.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvoice {
    #[validate(length(min = 1, max = 64))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "cus_3k9x0d2m7q8r4t6v1w5y"
    )]
    pub customer_id: String,
    /// Unique in the organization; generated when the invoice is issued
    /// when absent (`F-2026-00042`, `D-2026-00007` for a payment request).
    #[validate(custom(function = "check_number"))]
    #[schema(
        min_length = 1,
        max_length = 40,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
        nullable = false,
        example = "2026-0042"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub number: Option<String>,
    /// ISO 4217 (default `EUR`); amounts are its minor units.
    #[validate(custom(function = "check_currency"))]
    #[schema(
        pattern = "^[A-Z]{3}$",
        default = "EUR",
        nullable = false,
        example = "EUR"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub currency: Option<String>,
    /// An invoice's lines (1 to 100). Not with `amount`.
    #[validate(length(min = 1, max = 100), nested)]
    #[schema(min_items = 1, max_items = 100, nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub lines: Option<Vec<LineInput>>,
    /// A payment request's amount, in minor units. Not with `lines`; needs
    /// `reason`.
    #[validate(range(min = 1, max = 1_000_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000_000, nullable = false, example = 6000)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub amount: Option<i64>,
    /// Why the money is asked (a payment request).
    #[validate(
        length(min = 1, max = 500),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"\S",
        nullable = false,
        example = "Bilan initial"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub reason: Option<String>,
    /// Default: today.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub issue_date: Option<NaiveDate>,
    /// On or after the issue date; the day after it, the invoice is
    /// overdue.
    pub due_date: NaiveDate,
    /// Printed on the invoice.
    #[validate(
        length(min = 1, max = 1000),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S", nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub note: Option<String>,
}

fn check_number(value: &str) -> Result<(), validator::ValidationError> {
    if rules::is_valid_number(value) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid"))
    }
}

fn check_currency(value: &str) -> Result<(), validator::ValidationError> {
    Currency::parse(value)
        .map(|_| ())
        .map_err(|_| validator::ValidationError::new("invalid"))
}

fn invalid(field: &str, code: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(fr.to_owned(), en.to_owned())
        .field(field.to_owned(), code.to_owned())
}

/// A rule the schema cannot state (fields together, dates, totals): 422
/// `validation_failed`.
fn rule(field: &str, code: &str, fr: &str, en: &str) -> ApiError {
    ApiError::new(ProblemCode::ValidationFailed)
        .detail(fr.to_owned(), en.to_owned())
        .field(field.to_owned(), code.to_owned())
}

fn actor_of(principal: &StaffPrincipal) -> (Actor, &'static str, String) {
    match &principal.actor {
        StaffActor::Staff { id, .. } => (Actor::Staff, "staff", id.clone()),
        StaffActor::ApiKey { id } => (Actor::ApiKey, "api_key", id.clone()),
    }
}

/// The content a body asks for, checked.
fn content_of(body: &CreateInvoice) -> Result<Content, ApiError> {
    match (&body.lines, body.amount) {
        (Some(_), Some(_)) => Err(rule(
            "amount",
            "with_lines",
            "Une facture a des lignes ou un montant, pas les deux.",
            "An invoice has lines or an amount, not both.",
        )),
        (None, None) => Err(rule(
            "lines",
            "required",
            "Donnez des lignes (facture) ou un montant et un motif (demande de paiement).",
            "Give lines (an invoice) or an amount and a reason (a payment request).",
        )),
        (Some(lines), None) => {
            if body.reason.is_some() {
                return Err(rule(
                    "reason",
                    "with_lines",
                    "Le motif est celui d'une demande de paiement, sans lignes.",
                    "A reason goes with a payment request, which has no lines.",
                ));
            }
            Ok(Content::Lines(
                lines
                    .iter()
                    .map(|l| Line {
                        description: l.description.trim().to_owned(),
                        quantity: l.quantity,
                        unit_amount: l.unit_amount,
                        tax_rate_bp: l.tax_rate_bp,
                    })
                    .collect(),
            ))
        }
        (None, Some(amount)) => match &body.reason {
            Some(reason) => Ok(Content::Request {
                amount,
                reason: reason.trim().to_owned(),
            }),
            None => Err(rule(
                "reason",
                "required",
                "Une demande de paiement a un motif.",
                "A payment request needs a reason.",
            )),
        },
    }
}

/// Write an invoice or a payment request.
///
/// A draft: nothing is sent and the customer sees nothing until it is
/// issued. Totals are computed exactly in minor units: each line's tax is
/// rounded once, half away from zero; the tax per rate and the total are
/// sums of the lines.
#[utoipa::path(
    operation_id = "createInvoice",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    request_body = CreateInvoice,
    responses(
        (status = 201, description = "The draft.", body = InvoiceView,
            headers(("Location" = String, description = "`/v1/admin/invoices/{id}`."))),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `invoice_number_taken`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rule of the fields together. Codes: `validation_failed` (lines with an amount, neither, a payment request without a reason or lines with one, a due date before the issue date, a total of zero or out of range).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn create(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    body: Json<CreateInvoice>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let content = content_of(&body)?;
    let totals = content.totals().map_err(|e| match e {
        rules::InvoiceError::NotPositive => rule(
            "lines",
            "total_not_positive",
            "Le total doit être supérieur à zéro.",
            "The total must be more than zero.",
        ),
        _ => rule(
            "lines",
            "out_of_range",
            "Les montants sont hors limites.",
            "The amounts are out of range.",
        ),
    })?;
    let now = state.clock.now();
    let issue_date = body.issue_date.unwrap_or_else(|| state.clock.today());
    if body.due_date < issue_date {
        return Err(rule(
            "due_date",
            "before_issue_date",
            "L'échéance précède la date d'émission.",
            "The due date is before the issue date.",
        ));
    }
    let currency = match &body.currency {
        Some(c) => Currency::parse(c).map_err(|_| {
            invalid(
                "currency",
                "invalid",
                "Devise invalide.",
                "Invalid currency.",
            )
        })?,
        None => Currency::EUR,
    };
    let (reason, lines) = match content {
        Content::Lines(lines) => (None, lines),
        Content::Request { reason, .. } => (Some(reason), Vec::new()),
    };
    let inv = Invoice {
        id: ids::new_id("inv"),
        org_id: principal.org_id.clone(),
        customer_id: body.customer_id.clone(),
        kind: if lines.is_empty() {
            Kind::PaymentRequest
        } else {
            Kind::Invoice
        },
        number: body.number.clone(),
        status: Status::Draft,
        currency,
        subtotal: totals.subtotal,
        tax: totals.tax,
        total: totals.total,
        amount_paid: 0,
        reason,
        note: body.note.as_deref().map(|n| n.trim().to_owned()),
        issue_date,
        due_date: body.due_date,
        document_id: None,
        created_at: now,
        updated_at: now,
        issued_at: None,
        paid_at: None,
        voided_at: None,
        void_reason: None,
        lines,
    };
    let store = state.store.clone();
    let saved = inv.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        customers::get(&mut conn, &saved.org_id, &saved.customer_id)?;
        if let Some(n) = &saved.number
            && invoices::number_taken(&mut conn, &saved.org_id, n)?
        {
            return Err(number_taken());
        }
        match invoices::insert(&mut conn, &saved) {
            Err(StoreError::Conflict(_)) => Err(number_taken()),
            other => other.map_err(ApiError::from),
        }
    })
    .await??;
    let today = state.clock.today();
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/admin/invoices/{}", inv.id)))
        .json(InvoiceView::new(&inv, today)))
}

fn number_taken() -> ApiError {
    ApiError::new(ProblemCode::InvoiceNumberTaken)
        .detail(
            "Une facture de votre organisation porte déjà ce numéro.",
            "An invoice of your organization already has this number.",
        )
        .field("number", "taken")
}

/// `?customer_id=&status=&kind=&limit=&cursor=` of the organization's
/// invoices.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub customer_id: Option<String>,
    /// `overdue`: open and past due; `open`: open and not yet due.
    #[param(value_type = Option<crate::routes::enums::InvoiceStatus>, nullable = false)]
    pub status: Option<String>,
    #[param(value_type = Option<crate::routes::enums::InvoiceKind>, nullable = false)]
    pub kind: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

fn shown_status(s: &str) -> Option<ShownStatus> {
    Some(match s {
        "draft" => ShownStatus::Draft,
        "open" => ShownStatus::Open,
        "overdue" => ShownStatus::Overdue,
        "paid" => ShownStatus::Paid,
        "void" => ShownStatus::Void,
        _ => return None,
    })
}

/// The invoices.
///
/// Newest first, by customer, status (`overdue` is computed from the due
/// date) and kind.
#[utoipa::path(
    operation_id = "listInvoices",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(ListQuery),
    responses(
        (status = 200, description = "A page.", body = InvoiceList),
        (status = 400, description = "An unknown status or kind, a malformed id or cursor. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<InvoiceList>, ApiError> {
    let query = query.into_inner();
    let (limit, after): (i64, Option<TimePosition>) =
        resolve_time_page(query.limit, query.cursor.as_deref())?;
    let bad = |field: &str| {
        ApiError::new(ProblemCode::InvalidParameter)
            .detail("Valeur inconnue.", "Unknown value.")
            .field(field.to_owned(), "invalid")
    };
    if let Some(c) = &query.customer_id
        && !crate::routes::admin::is_id_cursor(c)
    {
        return Err(bad("customer_id"));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(shown_status(s).ok_or_else(|| bad("status"))?),
    };
    let kind = match query.kind.as_deref() {
        None => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| bad("kind"))?),
    };
    let filter = invoices::Filter {
        customer_id: query.customer_id,
        status,
        kind,
    };
    let today = state.clock.today();
    let store = state.store.clone();
    let mut rows = web::block(move || {
        let mut conn = store.conn()?;
        invoices::list(
            &mut conn,
            &principal.org_id,
            &filter,
            today,
            after.as_ref(),
            limit,
        )
    })
    .await??;
    let next_cursor = page_end(&mut rows, limit, |i| time_cursor(i.created_at, &i.id));
    Ok(web::Json(InvoiceList {
        data: rows.iter().map(|i| InvoiceView::new(i, today)).collect(),
        next_cursor,
    }))
}

/// One invoice.
#[utoipa::path(
    operation_id = "getInvoice",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "The invoice.", body = InvoiceView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<InvoiceView>, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    Ok(web::Json(InvoiceView::new(&inv, state.clock.today())))
}

async fn load(state: &web::Data<AppState>, org_id: &str, id: String) -> Result<Invoice, ApiError> {
    path_id(&id)?;
    let store = state.store.clone();
    let org_id = org_id.to_owned();
    web::block(move || {
        let mut conn = store.conn()?;
        invoices::get(&mut conn, &org_id, &id).map_err(|e| match e {
            StoreError::NotFound => not_found(),
            e => e.into(),
        })
    })
    .await?
}

/// The document id of an invoice's PDF: derived from the invoice, so that
/// an issue retried after a crash writes the same blob and the same row.
fn document_id_of(invoice_id: &str) -> String {
    let suffix = invoice_id.strip_prefix("inv_").unwrap_or(invoice_id);
    format!("doc_{suffix}")
}

/// Gives a draft its number now (in a transaction of its own), so that the
/// PDF can carry it; a number generated here is kept by the draft, and a
/// retry after a crash reuses it (no gap, no double).
fn number_draft(
    conn: &mut DbConnection,
    inv: &Invoice,
    now: chrono::DateTime<Utc>,
) -> Result<Invoice, ApiError> {
    use chrono::Datelike;
    if inv.number.is_some() {
        return Ok(inv.clone());
    }
    guichet_store::transaction(conn, |conn| {
        invoices::lock(conn, &inv.org_id, &inv.id)?;
        let current = invoices::get(conn, &inv.org_id, &inv.id)?;
        if current.status != Status::Draft {
            return Err(status_problem(current.status));
        }
        if current.number.is_some() {
            return Ok(current);
        }
        // A number the business chose by hand may already be the next
        // generated one: take the one after.
        for _ in 0..20 {
            let n = invoices::next_number(conn, &inv.org_id, inv.kind, inv.issue_date.year())?;
            if invoices::number_taken(conn, &inv.org_id, &n)? {
                continue;
            }
            invoices::set_draft_number(conn, &inv.org_id, &inv.id, &n, now)?;
            return Ok(invoices::get(conn, &inv.org_id, &inv.id)?);
        }
        Err(ApiError::internal("no free invoice number after 20 tries"))
    })
}

/// Issue a draft.
///
/// It gets its number (the one chosen, else the next of the year:
/// `F-2026-00042`, `D-...` for a payment request), its PDF is rendered with
/// the organization's branding and logo and shared with the customer as a
/// document, the customer is e-mailed the PDF and notified, and
/// `invoice.issued` is recorded. From now on the customer sees it and can
/// pay it.
#[utoipa::path(
    operation_id = "issueInvoice",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "The issued invoice.", body = InvoiceView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft. Codes: `invoice_not_draft`, `invoice_void`, `invoice_already_paid`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/issue")]
pub async fn issue(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<InvoiceView>, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    if inv.status != Status::Draft {
        return Err(status_problem(inv.status));
    }
    let now = state.clock.now();
    let store = state.store.clone();
    let (inv, pdf) = web::block(move || {
        let mut conn = store.conn()?;
        let inv = number_draft(&mut conn, &inv, now)?;
        let pdf = render::invoice_pdf(&mut conn, &inv)?;
        Ok::<_, ApiError>((inv, pdf))
    })
    .await??;
    let document_id = document_id_of(&inv.id);
    let key = crate::routes::documents::blob_key(&inv.org_id, &document_id);
    state
        .blobs
        .put(&key, pdf.clone())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (_, actor_kind, actor_id) = actor_of(&principal);
    let (actor, ..) = actor_of(&principal);
    let store = state.store.clone();
    let issued = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            invoices::lock(conn, &inv.org_id, &inv.id)?;
            let customer = customers::get(conn, &inv.org_id, &inv.customer_id)?;
            let doc = Document {
                id: document_id.clone(),
                org_id: inv.org_id.clone(),
                customer_id: inv.customer_id.clone(),
                kind: documents::KIND_SHARED.to_owned(),
                title: title_of(&inv, customer.locale),
                filename: render::file_name(&inv, customer.locale),
                content_type: "application/pdf".to_owned(),
                size_bytes: i64::try_from(pdf.len()).unwrap_or(i64::MAX),
                sha256: hex::encode(Sha256::digest(&pdf)),
                blob_key: key.clone(),
                created_by_kind: actor_kind.to_owned(),
                created_by: actor_id.clone(),
                created_at: now,
                first_opened_at: None,
                withdrawn_at: None,
                withdrawn_by: None,
            };
            let current = invoices::get(conn, &inv.org_id, &inv.id)?;
            if current.status != Status::Draft {
                return Err(status_problem(current.status));
            }
            documents::insert(conn, &doc)?;
            let Some(issued) = invoices::issue(conn, &inv, &doc.id, now)? else {
                return Err(status_problem(current.status));
            };
            crate::routes::portal_hooks::document_shared(conn, &doc, now)?;
            events::emit(
                conn,
                EventType::InvoiceIssued,
                &issued.org_id,
                &issued.id,
                None,
                actor,
                &guichet_store::snapshots::invoice_event(&issued, None, now.date_naive()),
                now,
            )?;
            render::tell_issued(conn, &issued, &pdf, now)?;
            Ok::<_, ApiError>(issued)
        })
    })
    .await??;
    Ok(web::Json(InvoiceView::new(&issued, state.clock.today())))
}

/// The document's title, in the customer's language.
fn title_of(inv: &Invoice, locale: guichet_domain::Locale) -> String {
    let number = inv.number.clone().unwrap_or_default();
    match (inv.kind, locale) {
        (Kind::Invoice, guichet_domain::Locale::Fr) => format!("Facture {number}"),
        (Kind::Invoice, guichet_domain::Locale::En) => format!("Invoice {number}"),
        (Kind::PaymentRequest, guichet_domain::Locale::Fr) => {
            format!("Demande de paiement {number}")
        }
        (Kind::PaymentRequest, guichet_domain::Locale::En) => format!("Payment request {number}"),
    }
}

/// Why an invoice is voided.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInvoice {
    #[validate(
        length(min = 1, max = 500),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"\S",
        nullable = false,
        example = "Émise en double"
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub reason: Option<String>,
}

/// Void an invoice.
///
/// A draft, or an issued invoice nothing was paid on (and no payment under
/// way): nothing is due on it any more, the customer can no longer pay it;
/// records `invoice.voided` when it was issued.
#[utoipa::path(
    operation_id = "voidInvoice",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    request_body = VoidInvoice,
    responses(
        (status = 200, description = "The void invoice.", body = InvoiceView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `invoice_void`, `invoice_already_paid`, `invoice_has_payments` (part is paid, or a payment is under way).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/void")]
pub async fn void(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<VoidInvoice>,
) -> Result<web::Json<InvoiceView>, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    let reason = body.0.reason.map(|r| r.trim().to_owned());
    let now = state.clock.now();
    let (actor, ..) = actor_of(&principal);
    let store = state.store.clone();
    let voided = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            invoices::lock(conn, &inv.org_id, &inv.id)?;
            let Some(voided) = invoices::void(conn, &inv.org_id, &inv.id, reason.as_deref(), now)? else {
                let current = invoices::get(conn, &inv.org_id, &inv.id)?;
                return Err(match current.status {
                    Status::Void | Status::Paid => status_problem(current.status),
                    _ => ApiError::new(ProblemCode::InvoiceHasPayments).detail(
                        "Une partie de cette facture est payée, ou un paiement est en cours : elle ne peut pas être annulée.",
                        "Part of this invoice is paid, or a payment is under way: it cannot be voided.",
                    ),
                });
            };
            if inv.status != Status::Draft {
                events::emit(
                    conn,
                    EventType::InvoiceVoided,
                    &voided.org_id,
                    &voided.id,
                    None,
                    actor,
                    &guichet_store::snapshots::invoice_event(&voided, None, now.date_naive()),
                    now,
                )?;
            }
            Ok::<_, ApiError>(voided)
        })
    })
    .await??;
    Ok(web::Json(InvoiceView::new(&voided, state.clock.today())))
}

/// A payment the business received another way.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflinePayment {
    /// Minor units, at most what is due (default: all that is due).
    #[validate(range(min = 1_i64, max = 1_000_000_000_000_000_i64))]
    #[schema(
        minimum = 1,
        maximum = 1_000_000_000_000_000_i64,
        nullable = false,
        example = 4500
    )]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub amount: Option<i64>,
    #[schema(value_type = crate::routes::enums::OfflineMethod)]
    pub method: OfflineMethod,
    /// Default: today.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub paid_on: Option<NaiveDate>,
    /// The cheque's number, the transfer's reference...
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S", nullable = false)]
    #[serde(default, deserialize_with = "crate::routes::admin::present")]
    pub reference: Option<String>,
}

/// How an offline payment was made.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineMethod {
    Cash,
    Cheque,
    BankTransfer,
    Other,
}

impl OfflineMethod {
    fn as_str(self) -> &'static str {
        match self {
            OfflineMethod::Cash => "cash",
            OfflineMethod::Cheque => "cheque",
            OfflineMethod::BankTransfer => "bank_transfer",
            OfflineMethod::Other => "other",
        }
    }
}

/// The problem for a refused payment amount or state.
pub fn payment_refusal(r: &rules::PaymentRefusal) -> ApiError {
    use rules::PaymentRefusal as R;
    match r {
        R::NotIssued => ApiError::new(ProblemCode::InvoiceNotDraft).detail(
            "Cette facture n'est pas encore émise.",
            "This invoice is not issued yet.",
        ),
        R::Void => status_problem(Status::Void),
        R::AlreadyPaid => status_problem(Status::Paid),
        R::AboveDue { due } => ApiError::new(ProblemCode::AmountAboveDue)
            .detail(
                "Le montant dépasse ce qui reste dû.",
                "The amount is more than what is due.",
            )
            .field("amount", "above_due")
            .extension("amount_due", serde_json::json!(due)),
        R::PartialNotAllowed { due } => ApiError::new(ProblemCode::PartialPaymentNotAllowed)
            .detail(
                "Cette facture se règle en une fois, pour tout ce qui reste dû.",
                "This invoice is paid in one go, for all that is due.",
            )
            .field("amount", "partial_not_allowed")
            .extension("amount_due", serde_json::json!(due)),
        R::NotPositive => invalid(
            "amount",
            "range",
            "Le montant doit être positif.",
            "The amount must be positive.",
        ),
        R::CurrencyMismatch => invalid(
            "amount",
            "currency",
            "Devise différente.",
            "Another currency.",
        ),
    }
}

/// Record a payment received another way.
///
/// Cash, cheque, bank transfer: at most what is due (a business always
/// may record part of it). The invoice is paid once nothing is left;
/// records `invoice.paid` or `invoice.partially_paid`.
#[utoipa::path(
    operation_id = "recordInvoicePayment",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    request_body = OfflinePayment,
    responses(
        (status = 201, description = "The payment recorded, and the invoice after it.", body = RecordedPayment),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `invoice_not_draft` (not issued yet), `invoice_void`, `invoice_already_paid`, `invoice_payment_in_progress`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Codes: `amount_above_due` (with `amount_due`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/payments")]
pub async fn record_payment(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<OfflinePayment>,
) -> Result<HttpResponse, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    let body = body.0;
    let amount = rules::payable(
        inv.status,
        inv.total_money(),
        inv.amount_paid,
        body.amount.map(|a| Money::new(a, inv.currency)),
        true,
    )
    .map_err(|r| payment_refusal(&r))?;
    let now = state.clock.now();
    let (actor, ..) = actor_of(&principal);
    let p = Payment {
        id: ids::new_id("ipy"),
        org_id: inv.org_id.clone(),
        invoice_id: inv.id.clone(),
        customer_id: inv.customer_id.clone(),
        amount,
        source: "staff".to_owned(),
        method: body.method.as_str().to_owned(),
        status: invoices::SUCCEEDED.to_owned(),
        gateway_key: None,
        gateway_charge_id: None,
        failure_code: None,
        request: None,
        details: None,
        reference: body.reference.map(|r| r.trim().to_owned()),
        paid_on: Some(body.paid_on.unwrap_or_else(|| state.clock.today())),
        created_at: now,
        completed_at: Some(now),
    };
    let store = state.store.clone();
    let saved = p.clone();
    let after = web::block(move || {
        let mut conn = store.conn()?;
        match invoices::record_offline(&mut conn, &saved, actor, now)? {
            Some(inv) => Ok(inv),
            None => {
                let current = invoices::get(&mut conn, &saved.org_id, &saved.invoice_id)?;
                if invoices::pending_of(&mut conn, &current.id)?.is_some() {
                    return Err(ApiError::new(ProblemCode::InvoicePaymentInProgress).detail(
                        "Un paiement de cette facture est en cours ; réessayez dans un instant.",
                        "A payment of this invoice is under way; retry shortly.",
                    ));
                }
                Err(rules::payable(
                    current.status,
                    current.total_money(),
                    current.amount_paid,
                    Some(saved.amount),
                    true,
                )
                .err()
                .map(|r| payment_refusal(&r))
                .unwrap_or_else(|| {
                    ApiError::internal("an offline payment was refused for no reason")
                }))
            }
        }
    })
    .await??;
    let today = state.clock.today();
    Ok(HttpResponse::Created().json(RecordedPayment {
        payment: InvoicePaymentView::from(&p),
        invoice: InvoiceView::new(&after, today),
    }))
}

/// A payment and the invoice after it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RecordedPayment {
    pub payment: InvoicePaymentView,
    pub invoice: InvoiceView,
}

/// The payments of an invoice.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct InvoicePaymentList {
    /// Oldest first: online (succeeded, failed or pending) and offline.
    pub data: Vec<InvoicePaymentView>,
}

/// An invoice's payments.
#[utoipa::path(
    operation_id = "listInvoicePayments",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "Every payment, oldest first.", body = InvoicePaymentList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/payments")]
pub async fn payments(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<InvoicePaymentList>, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    let store = state.store.clone();
    let rows = web::block(move || {
        let mut conn = store.conn()?;
        invoices::payments_of(&mut conn, &inv.id)
    })
    .await??;
    Ok(web::Json(InvoicePaymentList {
        data: rows.iter().map(InvoicePaymentView::from).collect(),
    }))
}

/// The PDF of an issued invoice.
#[utoipa::path(
    operation_id = "getInvoiceDocument",
    tag = "invoices",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Invoice id (`inv_...`).")),
    responses(
        (status = 200, description = "The PDF as issued.", content_type = "application/pdf", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"facture-F-2026-00042.pdf\"` (in the customer's language)."))),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = CUSTOMER_ROLE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice, or a draft (no PDF yet). Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `database_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/document")]
pub async fn document(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let inv = load(&state, &principal.org_id, path.into_inner()).await?;
    pdf_response(&state, &inv).await
}

/// The stored PDF of an issued invoice, its hash checked.
pub async fn pdf_response(
    state: &web::Data<AppState>,
    inv: &Invoice,
) -> Result<HttpResponse, ApiError> {
    let Some(doc_id) = inv.document_id.clone() else {
        return Err(not_found());
    };
    let store = state.store.clone();
    let org_id = inv.org_id.clone();
    let doc = web::block(move || {
        let mut conn = store.conn()?;
        documents::get(&mut conn, &org_id, &doc_id)
    })
    .await??;
    let mut stream = state
        .blobs
        .read(&doc.blob_key, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut bytes = Vec::with_capacity(usize::try_from(doc.size_bytes).unwrap_or(0));
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        bytes.extend_from_slice(&chunk.map_err(|e| ApiError::internal(e.to_string()))?);
    }
    if hex::encode(Sha256::digest(&bytes)) != doc.sha256 {
        tracing::error!(document = %doc.id, "an invoice's PDF does not match its hash");
        return Err(ApiError::internal(
            "an invoice's PDF does not match its SHA-256",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/pdf"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", doc.filename),
        ))
        .body(bytes))
}
