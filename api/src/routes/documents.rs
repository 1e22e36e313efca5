//! Shared documents: staff share files with one customer
//! (`/v1/admin/customers/{id}/documents`, `/v1/admin/documents/{id}`), the
//! customer lists and downloads them (`/v1/me/documents`), with the signed
//! mandate PDFs among them. Bytes go to the blob store, streamed both ways;
//! the database keeps the metadata and the SHA-256, checked on every
//! download.

use std::ops::Range;

use actix_web::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    HeaderValue, IF_NONE_MATCH, RANGE,
};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use guichet_domain::documents::{self as rules, DocumentType};
use guichet_domain::ids;
use guichet_store::StoreError;
use guichet_store::repo::documents::{self, Document, KIND_SHARED};
use guichet_store::repo::{customers, events, mandates};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::{AUTH_FAILURES, ROLE_FAILURE, TimePage, page_end, time_cursor};
use crate::auth::principal::StaffActor;
use crate::auth::{CustomerPrincipal, StaffPrincipal};
use crate::blobs::BlobWriter;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

/// Longest title.
pub const TITLE_MAX: usize = 200;

/// A document as staff see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    #[schema(example = "doc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    /// `shared` (by staff) or `attachment` (of a customer's message).
    #[schema(example = "shared")]
    pub kind: String,
    #[schema(example = "Compte rendu de séance")]
    pub title: String,
    /// The sanitized name offered in `Content-Disposition`.
    #[schema(example = "Compte rendu de seance.pdf")]
    pub filename: String,
    /// From the file's first bytes.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the bytes, lower-case hex (also the download's `ETag`).
    pub sha256: String,
    pub shared_at: DateTime<Utc>,
    /// When the customer first downloaded it.
    pub opened_at: Option<DateTime<Utc>>,
    /// When staff withdrew it (the customer no longer sees it).
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        DocumentView {
            id: d.id,
            customer_id: d.customer_id,
            kind: d.kind,
            title: d.title,
            filename: d.filename,
            content_type: d.content_type,
            size: d.size_bytes,
            sha256: d.sha256,
            shared_at: d.created_at,
            opened_at: d.first_opened_at,
            withdrawn_at: d.withdrawn_at,
        }
    }
}

/// A page of one customer's shared documents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub data: Vec<DocumentView>,
    pub next_cursor: Option<String>,
}

/// A document as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyDocument {
    /// `doc_...` for a shared document, `mdt_...` for a signed mandate.
    #[schema(example = "doc_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `shared` (by the business) or `mandate` (a signed SEPA mandate).
    #[schema(example = "shared")]
    pub source: String,
    #[schema(example = "Compte rendu de séance")]
    pub title: String,
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    pub sha256: String,
    pub shared_at: DateTime<Utc>,
    /// Not opened yet.
    pub new: bool,
}

/// Every document the customer has, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyDocumentList {
    pub data: Vec<MyDocument>,
    /// Always null: every document is listed.
    pub next_cursor: Option<String>,
}

/// `?title=` of a raw-body upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The document's title (1 to 200 characters), required with a raw
    /// body; with `multipart/form-data`, give the `title` field instead.
    #[param(max_length = 200, min_length = 1, nullable = false, pattern = r"\S")]
    pub title: Option<String>,
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: PDF, PNG, JPEG or plain text (recognised by its first
    /// bytes), at most `--document-max-bytes` (20 MiB by default).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
}

fn invalid_title(code: &str) -> ApiError {
    ApiError::new(ProblemCode::InvalidField)
        .detail(
            "Le titre doit compter de 1 à 200 caractères, sans caractère de contrôle.",
            "The title must be 1 to 200 characters, without control characters.",
        )
        .field("title", code)
}

/// The title, trimmed and checked.
pub fn check_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(invalid_title("blank"));
    }
    if title.chars().count() > TITLE_MAX {
        return Err(invalid_title("length"));
    }
    if title
        .chars()
        .any(guichet_domain::free_text::is_refused_control)
    {
        return Err(invalid_title("control_character"));
    }
    Ok(title.to_owned())
}

/// 413 for a file over `limit` bytes.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(ProblemCode::PayloadTooLarge).detail(
        format!("Le fichier dépasse {limit} octets."),
        format!("The file exceeds {limit} bytes."),
    )
}

fn unsupported() -> ApiError {
    ApiError::new(ProblemCode::UnsupportedMediaType).detail(
        "Seuls les fichiers PDF, PNG, JPEG et texte sont acceptés.",
        "Only PDF, PNG, JPEG and plain-text files are accepted.",
    )
}

/// A file received into the blob store.
pub struct Received {
    pub blob_key: String,
    pub kind: DocumentType,
    pub size: i64,
    pub sha256: String,
}

/// Streams `body` into the blob `key`: its first bytes decide its type
/// (415 before anything is written when it is not accepted), more than
/// `limit` bytes stop the upload (413, the rest unread, the partial upload
/// aborted).
pub async fn receive<S, E>(
    state: &AppState,
    key: String,
    mut body: S,
    limit: u64,
) -> Result<Received, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let read_error = |e: E| {
        ApiError::new(ProblemCode::BadRequest)
            .detail(
                "Le corps de la requête n'a pas pu être lu.",
                "The request body could not be read.",
            )
            .cause(e.to_string())
    };
    // The first bytes, to recognise the type.
    let mut head: Vec<u8> = Vec::with_capacity(rules::SNIFF_LEN);
    let mut complete = true;
    let mut ended = true;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(read_error)?;
        if (head.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit));
        }
        head.extend_from_slice(&chunk);
        if head.len() >= rules::SNIFF_LEN {
            complete = false;
            ended = false;
            break;
        }
    }
    let sniff = &head[..head.len().min(rules::SNIFF_LEN)];
    let kind =
        rules::detect(sniff, complete && head.len() <= rules::SNIFF_LEN).ok_or_else(unsupported)?;
    let mut writer = state
        .blobs
        .writer(&key)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let outcome: Result<(), ApiError> = async {
        write(&mut writer, &head).await?;
        // A finished stream is not polled again.
        while !ended && let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(read_error)?;
            if writer.size() + chunk.len() as u64 > limit {
                return Err(too_large(limit));
            }
            write(&mut writer, &chunk).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        writer.abort().await;
        return Err(e);
    }
    let (size, sha256) = writer
        .finish()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Received {
        blob_key: key,
        kind,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        sha256,
    })
}

async fn write(writer: &mut BlobWriter, chunk: &[u8]) -> Result<(), ApiError> {
    writer
        .write(chunk)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The blob key of a new document.
pub fn blob_key(org_id: &str, document_id: &str) -> String {
    format!("{org_id}/{document_id}")
}

/// Deletes a blob whose row was not written (logged when it fails).
pub async fn discard(state: &AppState, key: &str) {
    if let Err(e) = state.blobs.delete(key).await {
        tracing::warn!(error = %e, key, "a blob whose row was not written could not be deleted");
    }
}

fn actor_of(principal: &StaffPrincipal) -> (&'static str, String) {
    match &principal.actor {
        StaffActor::Staff { id, .. } => ("staff", id.clone()),
        StaffActor::ApiKey { id } => ("api_key", id.clone()),
    }
}

/// An event about a document, for `events::record`.
pub fn event(doc: &Document, event_type: &str, actor: &str, now: DateTime<Utc>) -> events::Event {
    events::Event {
        id: ids::new_id("evt"),
        org_id: doc.org_id.clone(),
        event_type: event_type.to_owned(),
        object_type: "document".to_owned(),
        object_id: doc.id.clone(),
        customer_id: Some(doc.customer_id.clone()),
        actor: actor.to_owned(),
        data: serde_json::to_string(&DocumentView::from(doc.clone())).unwrap_or_default(),
        created_at: now,
    }
}

/// Share a document with a customer.
///
/// The file goes as `multipart/form-data` (fields `file` and `title`) or as
/// the raw body (any `Content-Type`) with `?title=`. Its type comes from
/// its first bytes: PDF, PNG, JPEG or plain text, anything else is 415. At
/// most `--document-max-bytes` (20 MiB by default): a larger
/// `Content-Length` is refused before the body is read, a longer body is
/// cut at the limit. Records `document.shared`; the customer sees it at
/// once, marked new until first opened.
#[utoipa::path(
    operation_id = "shareDocument",
    tag = "documents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`)."), UploadQuery),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (inline(crate::openapi::Binary) = "application/octet-stream"),
    )),
    responses(
        (status = 201, description = "Shared.", body = DocumentView),
        (status = 400, description = "A missing or invalid title, an unknown form field or query parameter, no file. Codes: `invalid_field`, `invalid_parameter`, `bad_request`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than `--document-max-bytes`. Codes: `payload_too_large`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a PDF, PNG, JPEG or plain-text file (by its first bytes). Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}/documents")]
pub async fn share(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let customer_id = path.into_inner();
    let org_id = principal.org_id.clone();
    {
        let store = state.store.clone();
        let (org, customer) = (org_id.clone(), customer_id.clone());
        web::block(move || {
            let mut conn = store.conn()?;
            customers::get(&mut conn, &org, &customer)
        })
        .await??;
    }
    let document_id = ids::new_id("doc");
    let key = blob_key(&org_id, &document_id);
    let limit = state.document_max_bytes;
    let multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let (title, received) = if multipart {
        if query.title.is_some() {
            return Err(ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "Avec multipart/form-data, le titre est le champ « title ».",
                    "With multipart/form-data, the title is the `title` field.",
                )
                .field("title", "unexpected"));
        }
        receive_form(&state, key.clone(), &req, payload, limit).await?
    } else {
        let title = check_title(query.title.as_deref().ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "Le paramètre title est requis.",
                    "The title parameter is required.",
                )
                .field("title", "required")
        })?)
        .map_err(|_| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail(
                    "Le titre doit compter de 1 à 200 caractères, sans caractère de contrôle.",
                    "The title must be 1 to 200 characters, without control characters.",
                )
                .field("title", "invalid")
        })?;
        let received = receive(&state, key.clone(), payload, limit).await?;
        (title, received)
    };
    let now = state.clock.now();
    let (actor_kind, actor_id) = actor_of(&principal);
    let doc = Document {
        id: document_id,
        org_id: org_id.clone(),
        customer_id,
        kind: KIND_SHARED.to_owned(),
        filename: rules::file_name(&title, received.kind),
        title,
        content_type: received.kind.mime().to_owned(),
        size_bytes: received.size,
        sha256: received.sha256,
        blob_key: received.blob_key,
        created_by_kind: actor_kind.to_owned(),
        created_by: actor_id,
        created_at: now,
        first_opened_at: None,
        withdrawn_at: None,
        withdrawn_by: None,
    };
    let store = state.store.clone();
    let saved = doc.clone();
    let written = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            documents::insert(conn, &saved)?;
            events::record(conn, &event(&saved, "document.shared", actor_kind, now))?;
            crate::routes::portal_hooks::document_shared(conn, &saved, now)?;
            Ok::<_, StoreError>(())
        })
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(HttpResponse::Created().json(DocumentView::from(doc))),
        Ok(Err(e)) => {
            discard(&state, &key).await;
            Err(e.into())
        }
        Err(e) => {
            discard(&state, &key).await;
            Err(e.into())
        }
    }
}

/// Reads a `multipart/form-data` upload: the `file` field streamed into
/// the blob store, the `title` field (at most 800 bytes). Anything else,
/// or a second file, is 400 and nothing is kept.
async fn receive_form(
    state: &AppState,
    key: String,
    req: &HttpRequest,
    payload: web::Payload,
    limit: u64,
) -> Result<(String, Received), ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), payload.into_inner());
    let mut title: Option<String> = None;
    let mut received: Option<Received> = None;
    let bad = |fr: &str, en: &str, field: &str, code: &str| {
        ApiError::new(ProblemCode::InvalidField)
            .detail(fr.to_owned(), en.to_owned())
            .field(field.to_owned(), code.to_owned())
    };
    let outcome: Result<(), ApiError> = async {
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| {
                ApiError::new(ProblemCode::BadRequest)
                    .detail("Formulaire multipart invalide.", "Invalid multipart form.")
                    .cause(e.to_string())
            })?;
            let name = field.name().unwrap_or_default().to_owned();
            match name.as_str() {
                "file" if received.is_none() => {
                    received = Some(receive(state, key.clone(), &mut field, limit).await?);
                }
                "title" if title.is_none() => {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.next().await {
                        let chunk = chunk.map_err(|e| {
                            ApiError::new(ProblemCode::BadRequest)
                                .detail("Formulaire multipart invalide.", "Invalid multipart form.")
                                .cause(e.to_string())
                        })?;
                        if bytes.len() + chunk.len() > TITLE_MAX * 4 {
                            return Err(invalid_title("length"));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    let text = String::from_utf8(bytes).map_err(|_| invalid_title("encoding"))?;
                    title = Some(check_title(&text)?);
                }
                "file" | "title" => {
                    return Err(bad(
                        "Champ en double.",
                        "Duplicate field.",
                        &name,
                        "duplicate",
                    ));
                }
                _ => {
                    return Err(bad(
                        "Champ inconnu : seuls « file » et « title » sont acceptés.",
                        "Unknown field: only `file` and `title` are accepted.",
                        &name,
                        "unknown_field",
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    let result = outcome.and_then(|()| match (&title, &received) {
        (None, _) => Err(invalid_title("required")),
        (_, None) => Err(bad(
            "Le champ « file » est requis.",
            "The `file` field is required.",
            "file",
            "required",
        )),
        _ => Ok(()),
    });
    match result {
        Ok(()) => match (title, received) {
            (Some(title), Some(received)) => Ok((title, received)),
            _ => Err(ApiError::internal("form fields vanished")),
        },
        Err(e) => {
            if received.is_some() {
                discard(state, &key).await;
            }
            Err(e)
        }
    }
}

/// A customer's shared documents (withdrawn ones included), newest first.
#[utoipa::path(
    operation_id = "listCustomerDocuments",
    tag = "documents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Customer id (`cus_...`)."), TimePage),
    responses(
        (status = 200, description = "A page of documents.", body = DocumentList),
        (status = 400, description = "Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer in your organization. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/documents")]
pub async fn list_for_customer(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    page: web::Query<TimePage>,
) -> Result<web::Json<DocumentList>, ApiError> {
    let (limit, after) = page.resolve()?;
    let customer_id = path.into_inner();
    let store = state.store.clone();
    let (data, next_cursor) = web::block(move || {
        let mut conn = store.conn()?;
        customers::get(&mut conn, &principal.org_id, &customer_id)?;
        let mut items = documents::list_shared(
            &mut conn,
            &principal.org_id,
            &customer_id,
            true,
            after.as_ref().map(|(at, id)| (*at, id.as_str())),
            limit + 1,
        )?;
        let next = page_end(&mut items, limit, |d| time_cursor(d.created_at, &d.id));
        Ok::<_, ApiError>((items.into_iter().map(DocumentView::from).collect(), next))
    })
    .await??;
    Ok(web::Json(DocumentList { data, next_cursor }))
}

const DOC_NOT_FOUND: &str = "No such document in your organization. Codes: `not_found`.";

/// One document (withdrawn ones included).
#[utoipa::path(
    operation_id = "getDocument",
    tag = "documents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Document id (`doc_...`).")),
    responses(
        (status = 200, description = "The document.", body = DocumentView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = DOC_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn get_one(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<DocumentView>, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let doc = web::block(move || {
        let mut conn = store.conn()?;
        documents::get(&mut conn, &principal.org_id, &id)
    })
    .await??;
    Ok(web::Json(doc.into()))
}

/// Withdraw a shared document.
///
/// The customer no longer sees it; the document stays in the organization's
/// records (`withdrawn_at`), and `document.withdrawn` is recorded.
/// Withdrawing twice is harmless.
#[utoipa::path(
    operation_id = "withdrawDocument",
    tag = "documents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(("id" = String, Path, description = "Document id (`doc_...`).")),
    responses(
        (status = 200, description = "Withdrawn.", body = DocumentView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = DOC_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/{id}")]
pub async fn withdraw(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<DocumentView>, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let (actor_kind, actor_id) = actor_of(&principal);
    let store = state.store.clone();
    let doc = web::block(move || {
        let mut conn = store.conn()?;
        guichet_store::transaction(&mut conn, |conn| {
            let doc = documents::get(conn, &principal.org_id, &id)?;
            if doc.kind != KIND_SHARED {
                return Err(StoreError::NotFound);
            }
            if documents::withdraw(conn, &principal.org_id, &id, &actor_id, now)? {
                let doc = documents::get(conn, &principal.org_id, &id)?;
                events::record(conn, &event(&doc, "document.withdrawn", actor_kind, now))?;
                return Ok(doc);
            }
            Ok(doc)
        })
    })
    .await??;
    Ok(web::Json(doc.into()))
}

/// A document's bytes (staff; withdrawn documents and attachments too).
#[utoipa::path(
    operation_id = "downloadDocument",
    tag = "documents",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    params(
        ("id" = String, Path, description = "Document id (`doc_...`)."),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=START-END`, `bytes=START-` or `bytes=-LENGTH`."),
    ),
    responses(
        (status = 200, description = "The bytes, in the document's media type (`content_type`).", content((inline(crate::openapi::Binary) = "application/pdf"), (inline(crate::openapi::Binary) = "image/png"), (inline(crate::openapi::Binary) = "image/jpeg"), (inline(crate::openapi::Binary) = "text/plain")), headers(
            ("Content-Disposition" = String, description = "`attachment; filename=\"...\"`."),
            ("ETag" = String, description = "The SHA-256, quoted."),
        )),
        (status = 206, description = "The range asked for.", content((inline(crate::openapi::Binary) = "application/pdf"), (inline(crate::openapi::Binary) = "image/png"), (inline(crate::openapi::Binary) = "image/jpeg"), (inline(crate::openapi::Binary) = "text/plain")), headers(
            ("Content-Range" = String, description = "`bytes START-END/SIZE`."),
        )),
        (status = 304, description = "`If-None-Match` names the current ETag."),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = DOC_NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range lies outside the document. Codes: `range_not_satisfiable`.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored bytes do not match the recorded SHA-256 (logged). Codes: `internal_error`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/content")]
pub async fn download_staff(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let store = state.store.clone();
    let doc = web::block(move || {
        let mut conn = store.conn()?;
        documents::get(&mut conn, &principal.org_id, &id)
    })
    .await??;
    serve_blob(&state, &req, &doc).await
}

/// The documents the business shared with you and your signed mandates.
///
/// Newest first; `new` until you first download it.
#[utoipa::path(
    operation_id = "listMyDocuments",
    tag = "documents",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your documents.", body = MyDocumentList),
        (status = 401, description = "Codes: `unauthenticated`, `invalid_token`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Documents are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<MyDocumentList>, ApiError> {
    let store = state.store.clone();
    let data = web::block(move || {
        let mut conn = store.conn()?;
        crate::routes::portal_hooks::require_action(
            &mut conn,
            &principal,
            guichet_domain::portal::PortalAction::Documents,
        )?;
        let mut out: Vec<MyDocument> = documents::list_shared(
            &mut conn,
            &principal.org_id,
            &principal.customer_id,
            false,
            None,
            i64::MAX,
        )?
        .into_iter()
        .map(|d| MyDocument {
            new: d.first_opened_at.is_none(),
            id: d.id,
            source: "shared".to_owned(),
            title: d.title,
            content_type: d.content_type,
            size: d.size_bytes,
            sha256: d.sha256,
            shared_at: d.created_at,
        })
        .collect();
        for m in documents::mandate_documents(&mut conn, &principal.org_id, &principal.customer_id)?
        {
            out.push(MyDocument {
                title: mandate_title(m.umr.as_deref(), &m.mandate_id),
                id: m.mandate_id,
                source: "mandate".to_owned(),
                content_type: "application/pdf".to_owned(),
                size: m.size_bytes,
                sha256: m.sha256,
                shared_at: m.created_at,
                new: false,
            });
        }
        out.sort_by(|a, b| b.shared_at.cmp(&a.shared_at).then(a.id.cmp(&b.id)));
        Ok::<_, ApiError>(out)
    })
    .await??;
    Ok(web::Json(MyDocumentList {
        data,
        next_cursor: None,
    }))
}

fn mandate_title(umr: Option<&str>, id: &str) -> String {
    format!("Mandat SEPA {}", umr.unwrap_or(id))
}

/// Download one of your documents.
///
/// Streamed with `Content-Length`, `Content-Disposition: attachment` and
/// the SHA-256 as `ETag`; one `Range` is honoured (206). The first download
/// clears `new`.
#[utoipa::path(
    operation_id = "downloadMyDocument",
    tag = "documents",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Document id (`doc_...`) or signed mandate id (`mdt_...`)."),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=START-END`, `bytes=START-` or `bytes=-LENGTH`."),
    ),
    responses(
        (status = 200, description = "The bytes, in the document's media type (`content_type`).", content((inline(crate::openapi::Binary) = "application/pdf"), (inline(crate::openapi::Binary) = "image/png"), (inline(crate::openapi::Binary) = "image/jpeg"), (inline(crate::openapi::Binary) = "text/plain")), headers(
            ("Content-Disposition" = String, description = "`attachment; filename=\"...\"`."),
            ("ETag" = String, description = "The SHA-256, quoted."),
        )),
        (status = 206, description = "The range asked for.", content((inline(crate::openapi::Binary) = "application/pdf"), (inline(crate::openapi::Binary) = "image/png"), (inline(crate::openapi::Binary) = "image/jpeg"), (inline(crate::openapi::Binary) = "text/plain")), headers(
            ("Content-Range" = String, description = "`bytes START-END/SIZE`."),
        )),
        (status = 304, description = "`If-None-Match` names the current ETag."),
        (status = 401, description = "Codes: `unauthenticated`, `invalid_token`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Documents are off for you, or a staff token. Codes: `portal_action_disabled`, `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document of yours (or withdrawn). Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range lies outside the document. Codes: `range_not_satisfiable`.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored bytes do not match the recorded SHA-256 (logged). Codes: `internal_error`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}/content")]
pub async fn download_mine(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let now = state.clock.now();
    let store = state.store.clone();
    enum Found {
        Blob(Box<Document>),
        Mandate(Vec<u8>, String, String),
    }
    let found = web::block(move || {
        let mut conn = store.conn()?;
        crate::routes::portal_hooks::require_action(
            &mut conn,
            &principal,
            guichet_domain::portal::PortalAction::Documents,
        )?;
        if ids::has_shape(&id, "mdt") {
            let m = mandates::get_for_customer(
                &mut conn,
                &principal.org_id,
                &principal.customer_id,
                &id,
            )?;
            let (pdf, sha) =
                mandates::document(&mut conn, &m.id)?.ok_or_else(ApiError::not_found)?;
            let name = format!("mandat-{}.pdf", m.umr.as_deref().unwrap_or(&m.id));
            return Ok::<_, ApiError>(Found::Mandate(pdf, sha, name));
        }
        let doc =
            documents::get_for_customer(&mut conn, &principal.org_id, &principal.customer_id, &id)?;
        documents::mark_opened(&mut conn, &principal.org_id, &doc.id, now)?;
        Ok(Found::Blob(Box::new(doc)))
    })
    .await??;
    match found {
        Found::Blob(doc) => serve_blob(&state, &req, &doc).await,
        Found::Mandate(pdf, sha, name) => serve_bytes(&req, pdf, &sha, &name),
    }
}

/// `Content-Disposition: attachment` with an ASCII name (already
/// sanitized) and its UTF-8 form.
fn disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// What `Range` asks for, against a document of `size` bytes: `Ok(None)`
/// for the whole document (no header, or one this server does not honour,
/// such as several ranges), the range, or 416.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(value) = header else {
        return Ok(None);
    };
    let unsatisfiable = || {
        let error = ApiError::new(ProblemCode::RangeNotSatisfiable).detail(
            format!("La plage demandée est hors du document ({size} octets)."),
            format!("The range asked for lies outside the document ({size} bytes)."),
        );
        match HeaderValue::from_str(&format!("bytes */{size}")) {
            Ok(v) => error.header(CONTENT_RANGE, v),
            Err(_) => error,
        }
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        size.saturating_sub(suffix)..size
    } else {
        let Ok(start) = start.parse::<u64>() else {
            return Ok(None);
        };
        let end = if end.is_empty() {
            size
        } else {
            match end.parse::<u64>() {
                Ok(e) if e >= start => e.saturating_add(1).min(size),
                _ => return Ok(None),
            }
        };
        if start >= size {
            return Err(unsatisfiable());
        }
        start..end
    };
    Ok(Some(range))
}

fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

fn not_modified(req: &HttpRequest, sha256: &str) -> Option<HttpResponse> {
    let tag = etag(sha256);
    let header = req.headers().get(IF_NONE_MATCH)?.to_str().ok()?;
    header
        .split(',')
        .any(|t| t.trim() == tag || t.trim() == "*")
        .then(|| {
            HttpResponse::NotModified()
                .insert_header((ETAG, tag.clone()))
                .finish()
        })
}

/// Streams a stored blob, after checking its bytes against the recorded
/// size and SHA-256 (a mismatch answers 500 and is logged; the bytes are
/// hashed again on the way out and the connection is cut should they
/// change meanwhile).
pub async fn serve_blob(
    state: &AppState,
    req: &HttpRequest,
    doc: &Document,
) -> Result<HttpResponse, ApiError> {
    if let Some(response) = not_modified(req, &doc.sha256) {
        return Ok(response);
    }
    let size = u64::try_from(doc.size_bytes).unwrap_or(0);
    let range = parse_range(req.headers().get(RANGE).and_then(|v| v.to_str().ok()), size)?;
    let checked = state.blobs.digest(&doc.blob_key).await;
    match checked {
        Ok((actual_size, sha)) if actual_size == size && sha == doc.sha256 => {}
        Ok((actual_size, sha)) => {
            tracing::error!(
                document = %doc.id,
                key = %doc.blob_key,
                expected_sha256 = %doc.sha256,
                actual_sha256 = %sha,
                expected_size = size,
                actual_size,
                "document bytes do not match their recorded SHA-256"
            );
            return Err(ApiError::internal(format!(
                "document {} bytes do not match their SHA-256",
                doc.id
            )));
        }
        Err(e) => {
            tracing::error!(document = %doc.id, key = %doc.blob_key, error = %e, "document bytes unreadable");
            return Err(ApiError::internal(format!("document {}: {e}", doc.id)));
        }
    }
    let stream = state
        .blobs
        .read(&doc.blob_key, range.clone())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = match &range {
        Some(r) => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((
                CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            b
        }
        None => HttpResponse::Ok(),
    };
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    let body = match range {
        Some(_) => stream
            .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())))
            .boxed_local(),
        None => verified(stream, doc.sha256.clone(), doc.id.clone()).boxed_local(),
    };
    Ok(response
        .insert_header((CONTENT_TYPE, doc.content_type.clone()))
        .insert_header((CONTENT_DISPOSITION, disposition(&doc.filename)))
        .insert_header((ETAG, etag(&doc.sha256)))
        .insert_header((ACCEPT_RANGES, "bytes"))
        .insert_header((CACHE_CONTROL, "private, no-cache"))
        .no_chunking(length)
        .streaming(body))
}

/// The stream, hashed on the way: at its end, a hash other than `sha256`
/// ends the body with an error (the client sees a cut transfer) and logs.
fn verified(
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, crate::blobs::BlobError>>,
    sha256: String,
    id: String,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    use sha2::{Digest, Sha256};
    let state = (stream, Sha256::new(), sha256, id, false);
    futures_util::stream::unfold(
        state,
        |(mut stream, mut hasher, sha, id, done)| async move {
            if done {
                return None;
            }
            match stream.next().await {
                Some(Ok(chunk)) => {
                    hasher.update(&chunk);
                    Some((Ok(chunk), (stream, hasher, sha, id, false)))
                }
                Some(Err(e)) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (stream, hasher, sha, id, true),
                )),
                None => {
                    let actual = hex::encode(std::mem::take(&mut hasher).finalize());
                    if actual == sha {
                        None
                    } else {
                        tracing::error!(document = %id, expected_sha256 = %sha, actual_sha256 = %actual,
                        "document bytes changed while being sent");
                        Some((
                            Err(std::io::Error::other(
                                "document bytes do not match their SHA-256",
                            )),
                            (stream, hasher, sha, id, true),
                        ))
                    }
                }
            }
        },
    )
}

/// Serves bytes held in memory (a signed mandate PDF), checked against
/// their SHA-256 and with `Range`.
fn serve_bytes(
    req: &HttpRequest,
    bytes: Vec<u8>,
    sha256: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    use sha2::{Digest, Sha256};
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != sha256 {
        tracing::error!(expected_sha256 = %sha256, actual_sha256 = %actual, "mandate PDF does not match its SHA-256");
        return Err(ApiError::internal("mandate PDF does not match its SHA-256"));
    }
    if let Some(response) = not_modified(req, sha256) {
        return Ok(response);
    }
    let size = bytes.len() as u64;
    let range = parse_range(req.headers().get(RANGE).and_then(|v| v.to_str().ok()), size)?;
    let mut response = match &range {
        Some(r) => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((
                CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            b
        }
        None => HttpResponse::Ok(),
    };
    let body = match range {
        Some(r) => bytes
            [usize::try_from(r.start).unwrap_or(0)..usize::try_from(r.end).unwrap_or(0)]
            .to_vec(),
        None => bytes,
    };
    Ok(response
        .insert_header((CONTENT_TYPE, "application/pdf"))
        .insert_header((CONTENT_DISPOSITION, disposition(name)))
        .insert_header((ETAG, etag(sha256)))
        .insert_header((ACCEPT_RANGES, "bytes"))
        .insert_header((CACHE_CONTROL, "private, no-cache"))
        .body(body))
}
