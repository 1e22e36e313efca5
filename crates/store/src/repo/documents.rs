//! The `documents` table: what describes a file staff shared with a
//! customer, or a customer attached to a message. The bytes are in the blob
//! store under `blob_key`; the row keeps their size and SHA-256. A withdrawn
//! document stays (the audit keeps that it existed) but its customer no
//! longer sees it. Every query is scoped to an organization, and the
//! customer's reads to the customer too.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::documents;

/// Shared by staff (listed to the customer).
pub const KIND_SHARED: &str = "shared";
/// Attached by the customer to a message.
pub const KIND_ATTACHMENT: &str = "attachment";

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub kind: String,
    pub title: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    /// `staff`, `api_key` or `customer`.
    pub created_by_kind: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub first_opened_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub withdrawn_by: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = documents)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    kind: String,
    title: String,
    filename: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    blob_key: String,
    created_by_kind: String,
    created_by: String,
    created_at: NaiveDateTime,
    first_opened_at: Option<NaiveDateTime>,
    withdrawn_at: Option<NaiveDateTime>,
    withdrawn_by: Option<String>,
}

impl From<Row> for Document {
    fn from(r: Row) -> Self {
        Document {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            kind: r.kind,
            title: r.title,
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            blob_key: r.blob_key,
            created_by_kind: r.created_by_kind,
            created_by: r.created_by,
            created_at: from_db_time(r.created_at),
            first_opened_at: opt_from_db_time(r.first_opened_at),
            withdrawn_at: opt_from_db_time(r.withdrawn_at),
            withdrawn_by: r.withdrawn_by,
        }
    }
}

pub fn insert(conn: &mut DbConnection, d: &Document) -> Result<(), StoreError> {
    diesel::insert_into(documents::table)
        .values((
            documents::id.eq(&d.id),
            documents::org_id.eq(&d.org_id),
            documents::customer_id.eq(&d.customer_id),
            documents::kind.eq(&d.kind),
            documents::title.eq(&d.title),
            documents::filename.eq(&d.filename),
            documents::content_type.eq(&d.content_type),
            documents::size_bytes.eq(d.size_bytes),
            documents::sha256.eq(&d.sha256),
            documents::blob_key.eq(&d.blob_key),
            documents::created_by_kind.eq(&d.created_by_kind),
            documents::created_by.eq(&d.created_by),
            documents::created_at.eq(to_db_time(d.created_at)),
            documents::first_opened_at.eq(d.first_opened_at.map(to_db_time)),
            documents::withdrawn_at.eq(d.withdrawn_at.map(to_db_time)),
            documents::withdrawn_by.eq(&d.withdrawn_by),
        ))
        .execute(conn)?;
    Ok(())
}

/// Any document of the organization, withdrawn or not (staff's view).
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Document, StoreError> {
    Ok(documents::table
        .filter(documents::org_id.eq(org_id))
        .filter(documents::id.eq(id))
        .select(Row::as_select())
        .first(conn)?
        .into())
}

/// A document the customer may read: shared with them and not withdrawn,
/// or one they attached themselves.
pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Document, StoreError> {
    Ok(documents::table
        .filter(documents::org_id.eq(org_id))
        .filter(documents::customer_id.eq(customer_id))
        .filter(documents::id.eq(id))
        .filter(documents::withdrawn_at.is_null())
        .select(Row::as_select())
        .first(conn)?
        .into())
}

/// The documents shared with one customer, newest first, from after
/// `(created_at, id)` of the cursor; withdrawn ones only when asked (staff).
pub fn list_shared(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    include_withdrawn: bool,
    after: Option<(DateTime<Utc>, &str)>,
    limit: i64,
) -> Result<Vec<Document>, StoreError> {
    let mut q = documents::table
        .filter(documents::org_id.eq(org_id))
        .filter(documents::customer_id.eq(customer_id))
        .filter(documents::kind.eq(KIND_SHARED))
        .into_boxed();
    if !include_withdrawn {
        q = q.filter(documents::withdrawn_at.is_null());
    }
    if let Some((at, id)) = after {
        let at = to_db_time(at);
        q = q.filter(
            documents::created_at.lt(at).or(documents::created_at
                .eq(at)
                .and(documents::id.gt(id.to_owned()))),
        );
    }
    Ok(q.order((documents::created_at.desc(), documents::id.asc()))
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Document::from)
        .collect())
}

/// Shared, not withdrawn and never opened: the customer's new documents.
pub fn count_new(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<i64, StoreError> {
    Ok(documents::table
        .filter(documents::org_id.eq(org_id))
        .filter(documents::customer_id.eq(customer_id))
        .filter(documents::kind.eq(KIND_SHARED))
        .filter(documents::withdrawn_at.is_null())
        .filter(documents::first_opened_at.is_null())
        .count()
        .get_result(conn)?)
}

/// The customer's new documents (shared, not withdrawn, never opened),
/// newest first, at most `limit`.
pub fn list_new(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<Document>, StoreError> {
    Ok(documents::table
        .filter(documents::org_id.eq(org_id))
        .filter(documents::customer_id.eq(customer_id))
        .filter(documents::kind.eq(KIND_SHARED))
        .filter(documents::withdrawn_at.is_null())
        .filter(documents::first_opened_at.is_null())
        .order((documents::created_at.desc(), documents::id.asc()))
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Document::from)
        .collect())
}

/// Marks the document withdrawn (the first withdrawal is kept); whether
/// this call withdrew it.
pub fn withdraw(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        documents::table
            .filter(documents::org_id.eq(org_id))
            .filter(documents::id.eq(id))
            .filter(documents::withdrawn_at.is_null()),
    )
    .set((
        documents::withdrawn_at.eq(to_db_time(now)),
        documents::withdrawn_by.eq(by),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records the customer's first opening (later ones change nothing).
pub fn mark_opened(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        documents::table
            .filter(documents::org_id.eq(org_id))
            .filter(documents::id.eq(id))
            .filter(documents::first_opened_at.is_null()),
    )
    .set(documents::first_opened_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(())
}

/// The blob keys of every document of the organization: what to delete
/// from the blob store once its rows are gone.
pub fn blob_keys_of_org(conn: &mut DbConnection, org_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(documents::table
        .filter(documents::org_id.eq(org_id))
        .select(documents::blob_key)
        .load(conn)?)
}

/// A signed mandate's PDF, listed to its customer as a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateDocument {
    pub mandate_id: String,
    pub umr: Option<String>,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// The signed mandate PDFs of one customer, newest first.
pub fn mandate_documents(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<MandateDocument>, StoreError> {
    use crate::schema::{mandate_documents, mandates};
    let rows: Vec<(String, Option<String>, i64, String, NaiveDateTime)> = mandate_documents::table
        .inner_join(mandates::table.on(mandates::id.eq(mandate_documents::mandate_id)))
        .filter(mandates::org_id.eq(org_id))
        .filter(mandates::customer_id.eq(customer_id))
        .order((mandate_documents::created_at.desc(), mandates::id.asc()))
        .select((
            mandates::id,
            mandates::umr,
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(length(mandate_documents.pdf) AS BIGINT)",
            ),
            mandate_documents::sha256,
            mandate_documents::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(mandate_id, umr, size_bytes, sha256, at)| MandateDocument {
                mandate_id,
                umr,
                size_bytes,
                sha256,
                created_at: from_db_time(at),
            },
        )
        .collect())
}
