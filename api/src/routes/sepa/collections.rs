//! `/v1/admin/sepa/collections...`: the organization's SEPA collections,
//! the day's pain.008.001.02 file for the bank, and the bank's results.
//!
//! The file lists the collections due that day that are `scheduled` or
//! `presented` (paid, rejected and cancelled ones are left out), one
//! payment information block per sequence type (FRST, RCUR, OOFF). It is
//! streamed: one aggregate query gives each block's count and sum (the
//! headers announce them), then the debits are read by pages of
//! [`EXPORT_PAGE`] (keyset on the id) on a blocking thread and sent to the
//! response as they are written — all in one read-only snapshot, so the
//! totals match the rows. A day without collections answers 404
//! `no_collections` (a pain.008 file needs at least one debit).

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::events::Actor;
use guichet_domain::ids;
use guichet_domain::sepa::pain008::{
    DirectDebit, GroupHeader, Pain008Error, Pain008Writer, PaymentInfo,
};
use guichet_domain::sepa::{Bic, CreditorId, Iban};
use guichet_domain::{Currency, Money};
use guichet_store::repo::accounts::{self, EntryKind};
use guichet_store::repo::collections::{self, Collection, CollectionStatus, ExportGroup, Filter};
use guichet_store::repo::creditor::{self, CreditorSettings};
use guichet_store::repo::{customers, invoices, organizations};
use guichet_store::{DbConnection, Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::StaffPrincipal;
use crate::edge::json::Json;
use crate::notify::{self, Channel, Template};
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, Page, ROLE_FAILURE, next_cursor, status_filter};
use crate::state::AppState;

/// Debits read from the database at once while a file is written.
pub const EXPORT_PAGE: i64 = 500;

/// Bytes buffered while the file is written, and sent to the client at once.
const CHUNK: usize = 32 * 1024;

/// A SEPA collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    #[schema(example = "col_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    pub mandate_id: String,
    pub account_id: String,
    /// The debit's end-to-end reference, returned by the bank with any
    /// reject.
    #[schema(example = "GUICHET-3K9X0D2M7Q8R4T6V1W5Y")]
    pub end_to_end_id: String,
    /// `FRST`, `RCUR` or `OOFF`.
    #[schema(value_type = crate::routes::enums::SequenceType, example = "FRST")]
    pub sequence_type: String,
    /// Minor units.
    #[schema(example = 12999)]
    pub amount: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    pub due_date: NaiveDate,
    /// `scheduled`, `presented`, `paid`, `rejected` or `cancelled`.
    #[schema(value_type = crate::routes::enums::CollectionStatus, example = "scheduled")]
    pub status: String,
    pub prenotified_at: Option<DateTime<Utc>>,
    pub presented_at: Option<DateTime<Utc>>,
    /// When the bank's result was recorded.
    pub settled_at: Option<DateTime<Utc>>,
    /// The bank's reason for a rejected collection.
    pub reject_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The invoice this collection pays by autopay (`inv_...`), else null.
    /// Such a collection does not move the account's balance; its result
    /// settles the invoice's payment.
    #[schema(example = json!(null))]
    pub invoice_id: Option<String>,
    /// The invoice's payment it settles (`ipy_...`), else null.
    #[schema(example = json!(null))]
    pub invoice_payment_id: Option<String>,
}

impl From<&Collection> for CollectionView {
    fn from(c: &Collection) -> Self {
        CollectionView {
            id: c.id.clone(),
            mandate_id: c.mandate_id.clone(),
            account_id: c.account_id.clone(),
            end_to_end_id: c.end_to_end_id.clone(),
            sequence_type: c.sequence_type.code().to_owned(),
            amount: c.amount,
            currency: c.currency.clone(),
            due_date: c.due_date,
            status: c.status.as_str().to_owned(),
            prenotified_at: c.prenotified_at,
            presented_at: c.presented_at,
            settled_at: c.settled_at,
            reject_reason: c.reject_reason.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            invoice_id: c.invoice.as_ref().map(|l| l.invoice_id.clone()),
            invoice_payment_id: c.invoice.as_ref().map(|l| l.payment_id.clone()),
        }
    }
}

/// A page of collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    pub data: Vec<CollectionView>,
    pub next_cursor: Option<String>,
}

/// `?date=` of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The collection date (`YYYY-MM-DD`), required.
    pub date: NaiveDate,
}

/// `?date=&status=&mandate_id=&limit=&cursor=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only collections due that day (`YYYY-MM-DD`).
    #[param(nullable = false)]
    pub date: Option<NaiveDate>,
    /// Only collections in this status: `scheduled`, `presented`, `paid`,
    /// `rejected`, `cancelled`.
    #[param(value_type = Option<crate::routes::enums::CollectionStatus>, nullable = false)]
    pub status: Option<String>,
    /// Only this mandate's collections (`mdt_...`).
    #[param(nullable = false)]
    pub mandate_id: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// The bank's answer about a presented collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Outcome {
    Paid,
    Rejected,
}

/// The result of a presented collection (its schema, written by hand,
/// says which outcome takes a reason).
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct CollectionResult {
    /// `paid` or `rejected`.
    pub outcome: String,
    /// Required for `rejected`, refused for `paid`: the ISO reason code
    /// (`AM04`, `MD01`, ...) or a text, 1 to 140 characters.
    #[validate(
        length(min = 1, max = 140),
        custom(function = "crate::routes::admin::not_blank")
    )]
    pub reason: Option<String>,
}

impl utoipa::PartialSchema for CollectionResult {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let outcome = |value: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value.to_owned()]))
        };
        let paid = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("outcome", outcome("paid"))
            .required("outcome")
            .property(
                "reason",
                ObjectBuilder::new()
                    .schema_type(Type::Null)
                    .description(Some("A paid collection has no reason.")),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let rejected = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("outcome", outcome("rejected"))
            .required("outcome")
            .property(
                "reason",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "The ISO reason code (`AM04`, `MD01`, ...) or a text, 1 to 140 characters.",
                    ))
                    .min_length(Some(1))
                    .max_length(Some(140))
                    .pattern(Some(r"\S"))
                    .examples(["AM04"]),
            )
            .required("reason")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(paid)
            .item(rejected)
            .description(Some(
                "The result of a presented collection: `paid` (no reason) or `rejected` (with its reason).",
            ))
            .into()
    }
}

impl ToSchema for CollectionResult {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("CollectionResult")
    }
}

fn creditor_not_configured() -> ApiError {
    ApiError::new(ProblemCode::CreditorNotConfigured).detail(
        "Renseignez d'abord les paramètres de créancier SEPA (PUT /v1/admin/settings/creditor).",
        "Set the SEPA creditor settings first (PUT /v1/admin/settings/creditor).",
    )
}

fn no_collections(date: NaiveDate) -> ApiError {
    ApiError::new(ProblemCode::NoCollections).detail(
        format!("Aucun prélèvement n'est à présenter le {date}."),
        format!("No collection is to be presented on {date}."),
    )
}

/// The creditor's side of every block, parsed once.
struct Creditor {
    settings: CreditorSettings,
    iban: Iban,
    bic: Option<Bic>,
    id: CreditorId,
}

/// What the file needs before its first byte: the creditor and the totals.
fn prepare(
    conn: &mut DbConnection,
    org_id: &str,
    date: NaiveDate,
) -> Result<(Creditor, Vec<ExportGroup>), ApiError> {
    let settings = creditor::get(conn, org_id)?.ok_or_else(creditor_not_configured)?;
    let corrupt = |what: &str| ApiError::internal(format!("stored creditor {what} is invalid"));
    let creditor = Creditor {
        iban: Iban::parse(&settings.iban).map_err(|_| corrupt("IBAN"))?,
        bic: Bic::parse(&settings.bic).ok(),
        id: CreditorId::parse(&settings.creditor_id).map_err(|_| corrupt("identifier"))?,
        settings,
    };
    let groups = collections::export_totals(conn, org_id, date)?;
    if groups.is_empty() {
        return Err(no_collections(date));
    }
    Ok((creditor, groups))
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pain008(#[from] Pain008Error),
    #[error("{0}")]
    Data(String),
}

/// Writes the file: the header, then each block's debits page by page.
fn write_file<W: std::io::Write>(
    conn: &mut DbConnection,
    out: W,
    org_id: &str,
    date: NaiveDate,
    creditor: &Creditor,
    groups: &[ExportGroup],
    now: DateTime<Utc>,
) -> Result<W, ExportError> {
    let random = ids::new_id("m");
    let message_id = format!(
        "GUICHET-{}-{}",
        date.format("%Y%m%d"),
        random[2..14].to_ascii_uppercase()
    );
    let header = GroupHeader {
        message_id: &message_id,
        created_at: now.naive_utc(),
        transaction_count: groups.iter().map(|g| g.count).sum(),
        control_sum_cents: groups.iter().map(|g| g.sum).sum(),
        initiating_party: &creditor.settings.name,
    };
    let mut writer = Pain008Writer::new(out, &header)?;
    for group in groups {
        let payment_info_id = format!("{message_id}-{}", group.sequence_type.code());
        writer.begin_payment(&PaymentInfo {
            payment_info_id: &payment_info_id,
            sequence: group.sequence_type,
            collection_date: date,
            batch_booking: true,
            transaction_count: group.count,
            control_sum_cents: group.sum,
            creditor_name: &creditor.settings.name,
            creditor_iban: &creditor.iban,
            creditor_bic: creditor.bic.as_ref(),
            creditor_id: &creditor.id,
        })?;
        let mut after: Option<String> = None;
        loop {
            let page = collections::export_page(
                conn,
                org_id,
                date,
                group.sequence_type,
                after.as_deref(),
                EXPORT_PAGE,
            )?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for row in &page {
                let bad = |what: &str| ExportError::Data(format!("collection {}: {what}", row.id));
                let iban = Iban::parse(&row.iban).map_err(|_| bad("invalid debtor IBAN"))?;
                let bic = Bic::parse(&row.bic).ok();
                let umr = row
                    .umr
                    .as_deref()
                    .ok_or_else(|| bad("mandate without reference"))?;
                let remittance = format!("{} {umr}", creditor.settings.name);
                writer.push(&DirectDebit {
                    end_to_end_id: &row.end_to_end_id,
                    amount_cents: u64::try_from(row.amount).map_err(|_| bad("negative amount"))?,
                    mandate_id: umr,
                    mandate_signed_on: row.signed_at.date(),
                    debtor_bic: bic.as_ref(),
                    debtor_name: &row.debtor_name,
                    debtor_iban: &iban,
                    remittance_info: &remittance,
                })?;
            }
        }
    }
    let mut out = writer.finish()?;
    std::io::Write::flush(&mut out).map_err(Pain008Error::from)?;
    Ok(out)
}

/// Writes the day's file into an unnamed temporary file, from one snapshot,
/// and gives it back rewound. The connection returns to the pool as soon
/// as the file is written, whatever the speed of the client that then
/// downloads it; an export that fails half-way is an error, never a cut
/// file.
fn spool(
    store: &Store,
    org_id: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<std::fs::File, ApiError> {
    let mut conn = store.conn()?;
    collections::begin_snapshot(&mut conn)?;
    let written = prepare(&mut conn, org_id, date).and_then(|(creditor, groups)| {
        let file = tempfile::tempfile()
            .map_err(|e| ApiError::internal(format!("no temporary file for the export: {e}")))?;
        let out = std::io::BufWriter::with_capacity(CHUNK, file);
        write_file(&mut conn, out, org_id, date, &creditor, &groups, now).map_err(|error| {
            tracing::error!(org = %org_id, %date, %error, "pain.008 export failed");
            ApiError::internal(format!("pain.008 export failed: {error}"))
        })
    });
    let ended = collections::end_snapshot(&mut conn);
    let mut file = written?
        .into_inner()
        .map_err(|e| ApiError::internal(format!("export not written: {e}")))?;
    ended?;
    std::io::Seek::rewind(&mut file)
        .map_err(|e| ApiError::internal(format!("export not readable: {e}")))?;
    Ok(file)
}

/// Sends `file` by chunks, read on a blocking thread.
fn file_stream(
    mut file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    actix_web::rt::task::spawn_blocking(move || {
        loop {
            let mut chunk = vec![0; CHUNK];
            let read = std::io::Read::read(&mut file, &mut chunk);
            let item = match read {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    Ok(Bytes::from(chunk))
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // A closed channel means the client has gone.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// The pain.008.001.02 file of the collections due on a date.
///
/// The pain.008.001.02 file of the collections due on a date, for the
/// creditor's bank.
#[utoipa::path(
    operation_id = "exportCollections",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(ExportQuery),
    responses(
        (status = 200, description = "The pain.008.001.02 file (an attachment), streamed: collections due that day that are `scheduled` or `presented`, one payment information block per sequence type (FRST, RCUR, OOFF).", content_type = "application/xml", body = inline(crate::openapi::Binary),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"pain008-<date>.xml\"`."))),
        (status = 400, description = "`date` is missing or not a `YYYY-MM-DD` date. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No collection is due that day. Codes: `no_collections`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SEPA creditor settings are not set. Codes: `creditor_not_configured`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/sepa/collections.xml")]
pub async fn export(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let date = query.date;
    let now = state.clock.now();
    let store = state.store.clone();
    let org_id = principal.org_id;
    let file = web::block(move || spool(&store, &org_id, date, now)).await??;
    let length = file
        .metadata()
        .map_err(|e| ApiError::internal(format!("export not readable: {e}")))?
        .len();
    Ok(HttpResponse::Ok()
        .content_type("application/xml")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"pain008-{date}.xml\""),
        ))
        .body(SizedStream::new(length, file_stream(file))))
}

/// The organization's collections, by id.
///
/// The organization's collections, by id, optionally of one day, status or
/// mandate.
#[utoipa::path(
    operation_id = "listCollections",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of collections.", body = CollectionList),
        (status = 400, description = "Bad `date`, `status`, `limit` or `cursor`. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/sepa/collections")]
pub async fn list(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<CollectionList>, ApiError> {
    let query = query.into_inner();
    let (limit, after) = Page {
        limit: query.limit,
        cursor: query.cursor,
    }
    .resolve()?;
    let status = status_filter(
        query.status.as_deref(),
        CollectionStatus::parse,
        &["scheduled", "presented", "paid", "rejected", "cancelled"],
    )?;
    let filter = Filter {
        due_date: query.date,
        status,
        mandate_id: query.mandate_id,
    };
    let store = state.store.clone();
    let mut items = web::block(move || {
        let mut conn = store.conn()?;
        collections::list(
            &mut conn,
            &principal.org_id,
            &filter,
            after.as_deref(),
            limit + 1,
        )
    })
    .await??;
    let next_cursor = next_cursor(&mut items, limit, |c| &c.id);
    Ok(web::Json(CollectionList {
        data: items.iter().map(CollectionView::from).collect(),
        next_cursor,
    }))
}

const RESULT_409: &str = "The collection is not presented (still scheduled, cancelled, or already settled with the other outcome). Codes: `collection_not_presented`.";

/// Record the bank's result of a presented collection.
///
/// Record the bank's result of a presented collection: `paid`, or
/// `rejected` — the amount is then due again on the account (entry
/// `collection_rejected`) and the customer is told by e-mail. A collection
/// paying an invoice by autopay (`invoice_id` set) leaves the account
/// alone and settles the invoice's payment instead: `paid` pays the invoice
/// (`invoice.paid`, receipt e-mailed), `rejected` fails the payment
/// (`debit_rejected`, `invoice.payment_failed`; autopay retries per the
/// retry policy). Sending the result a collection already has answers it
/// again (idempotent).
#[utoipa::path(
    operation_id = "recordCollectionResult",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Collection id (`col_...`).")),
    request_body = CollectionResult,
    responses(
        (status = 200, description = "The collection with its result.", body = CollectionView),
        (status = 400, description = "Malformed body, unknown field, wrong type, `reason` missing for `rejected`, given for `paid`, blank or longer than 140. Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such collection in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = RESULT_409, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/sepa/collections/{id}/result")]
pub async fn record_result(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<CollectionResult>,
) -> Result<web::Json<CollectionView>, ApiError> {
    let body = body.0;
    let reason = body.reason.map(|r| r.trim().to_owned());
    let outcome = match body.outcome.as_str() {
        "paid" => Outcome::Paid,
        "rejected" => Outcome::Rejected,
        _ => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "outcome vaut paid ou rejected.",
                    "outcome is paid or rejected.",
                )
                .field("outcome", "invalid"));
        }
    };
    let (outcome, reason) = match (outcome, reason) {
        (Outcome::Rejected, Some(reason)) => (CollectionStatus::Rejected, Some(reason)),
        (Outcome::Paid, None) => (CollectionStatus::Paid, None),
        (Outcome::Rejected, None) => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "Un rejet a un motif (code ISO comme AM04 ou texte).",
                    "A rejection has a reason (ISO code such as AM04, or text).",
                )
                .field("reason", "required"));
        }
        (Outcome::Paid, Some(_)) => {
            return Err(ApiError::new(ProblemCode::InvalidField)
                .detail(
                    "Un prélèvement payé n'a pas de motif.",
                    "A paid collection has no reason.",
                )
                .field("reason", "unexpected"));
        }
    };
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    let org_id = principal.org_id;
    let collection = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let current = collections::get(conn, &org_id, &id)?;
            if current.status == outcome && current.reject_reason == reason {
                return Ok(current); // the same result again
            }
            if !collections::settle(conn, &org_id, &id, outcome, reason.as_deref(), now)? {
                return Err(ApiError::new(ProblemCode::CollectionNotPresented).detail(
                    format!("Le prélèvement est « {} » : seul un prélèvement présenté reçoit un résultat.", current.status.as_str()),
                    format!("The collection is {}: only a presented collection takes a result.", current.status.as_str()),
                ));
            }
            if outcome == CollectionStatus::Rejected {
                reject(conn, &current, reason.as_deref().unwrap_or_default(), now)?;
            }
            if let Some(link) = &current.invoice {
                settle_invoice_payment(
                    conn,
                    &current,
                    link,
                    outcome,
                    crate::routes::events::staff_actor(&principal.actor),
                    now,
                )?;
            }
            let settled = collections::get(conn, &org_id, &id)?;
            crate::routes::events::by_staff(
                conn,
                if outcome == CollectionStatus::Rejected {
                    guichet_domain::events::EventType::CollectionRejected
                } else {
                    guichet_domain::events::EventType::CollectionPaid
                },
                &org_id,
                &id,
                &principal.actor,
                &CollectionView::from(&settled),
                now,
            )?;
            Ok::<_, ApiError>(settled)
        })
    })
    .await??;
    Ok(web::Json(CollectionView::from(&collection)))
}

/// Settles the invoice payment a collection pays with the bank's answer:
/// paid (the invoice's amount paid grows, `invoice.paid`, the receipt
/// e-mailed) or failed `debit_rejected` (`invoice.payment_failed`, the
/// customer notified; autopay retries per the retry policy). A payment
/// already settled is left alone.
fn settle_invoice_payment(
    conn: &mut DbConnection,
    c: &Collection,
    link: &collections::InvoiceLink,
    outcome: CollectionStatus,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payment = invoices::payment(conn, &link.payment_id)?;
    let result = if outcome == CollectionStatus::Paid {
        invoices::Outcome::Succeeded {
            charge_id: Some(&c.id),
        }
    } else {
        invoices::Outcome::Failed {
            code: invoices::DEBIT_REJECTED,
        }
    };
    invoices::settle_in(
        conn,
        &payment,
        result,
        now,
        actor,
        |conn, inv, paid| guichet_jobs::invoices::tell_paid(conn, inv, paid, now),
        || {},
    )?;
    Ok(())
}

/// Puts a rejected collection's amount back on the account (unless it
/// pays an invoice) and tells the customer.
fn reject(
    conn: &mut DbConnection,
    c: &Collection,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if c.invoice.is_none() {
        accounts::add_entry(
            conn,
            &c.account_id,
            &c.org_id,
            EntryKind::CollectionRejected,
            c.amount,
            &format!("Prélèvement SEPA rejeté {} ({reason})", c.end_to_end_id),
            Some(&c.id),
            now,
        )?;
    }
    let (customer_id, email, umr) = collections::mandate_contact(conn, &c.org_id, &c.mandate_id)?;
    let customer = customers::get(conn, &c.org_id, &customer_id)?;
    let org = organizations::get(conn, &c.org_id)?;
    notify::queue(
        conn,
        Some(&c.org_id),
        Channel::Email,
        &email,
        &Template::CollectionRejected {
            org_name: org.name,
            umr: umr.unwrap_or_default(),
            amount: Money::new(c.amount, Currency::EUR).to_string(),
            due_date: c.due_date.to_string(),
            reason: reason.to_owned(),
        },
        customer.locale,
        now,
    )
}
