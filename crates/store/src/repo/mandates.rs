//! SEPA direct-debit mandates: the `mandates`, `mandate_signatures` and
//! `mandate_documents` tables. A mandate is written as a `draft`, becomes
//! `signed` once (with its unique mandate reference, the evidence of the
//! signature and the signed PDF, written together by [`sign`] and never
//! changed afterwards), and may then be `revoked` by the business or
//! `expired`. Every query is scoped to an organization, and the customer's
//! reads to the customer too.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::sepa::PaymentType;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{mandate_documents, mandate_signatures, mandates, sepa_collections};

/// Where a mandate is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MandateStatus {
    /// Written by the customer, not signed yet.
    Draft,
    /// Signed by one-time code: collections may be presented under it.
    Signed,
    /// Revoked by the business: no more collections.
    Revoked,
    /// Unused for 36 months (recurrent) or spent (one-off).
    Expired,
}

impl MandateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MandateStatus::Draft => "draft",
            MandateStatus::Signed => "signed",
            MandateStatus::Revoked => "revoked",
            MandateStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(MandateStatus::Draft),
            "signed" => Some(MandateStatus::Signed),
            "revoked" => Some(MandateStatus::Revoked),
            "expired" => Some(MandateStatus::Expired),
            _ => None,
        }
    }
}

/// What a signature leaves: the evidence printed on the signed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub signed_at: DateTime<Utc>,
    /// `sms` or `email`: how the one-time code was sent.
    pub channel: String,
    /// Where it was sent, masked.
    pub destination: String,
    pub ip: String,
    pub user_agent: String,
    /// The SHA-256 (hex) of the unsigned document the customer reviewed.
    pub document_sha256: String,
    pub last_collected_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

/// A mandate, as stored, with its signature once signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mandate {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub account_id: String,
    pub status: MandateStatus,
    pub payment_type: PaymentType,
    /// Electronic form, validated by the caller.
    pub iban: String,
    pub bic: String,
    pub email: String,
    /// One-off: the amount to collect (EUR minor units); recurrent: `None`.
    pub amount: Option<i64>,
    /// Recurrent only: the balance spread over this many monthly collections.
    pub spread_months: Option<i32>,
    pub debtor_name: String,
    /// Lines separated by `\n`.
    pub debtor_address: Option<String>,
    /// The unique mandate reference, from the signature on.
    pub umr: Option<String>,
    pub signature: Option<Signature>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("stored {what} {value:?} is invalid"))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = mandates)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    account_id: String,
    status: String,
    payment_type: String,
    iban: String,
    bic: String,
    email: String,
    amount: Option<i64>,
    spread_months: Option<i32>,
    debtor_name: String,
    debtor_address: Option<String>,
    umr: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = mandate_signatures)]
struct SignatureRow {
    mandate_id: String,
    signed_at: NaiveDateTime,
    channel: String,
    destination: String,
    ip: String,
    user_agent: String,
    document_sha256: String,
    last_collected_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    expired_at: Option<NaiveDateTime>,
}

impl From<SignatureRow> for Signature {
    fn from(r: SignatureRow) -> Self {
        Signature {
            signed_at: from_db_time(r.signed_at),
            channel: r.channel,
            destination: r.destination,
            ip: r.ip,
            user_agent: r.user_agent,
            document_sha256: r.document_sha256,
            last_collected_at: opt_from_db_time(r.last_collected_at),
            revoked_at: opt_from_db_time(r.revoked_at),
            expired_at: opt_from_db_time(r.expired_at),
        }
    }
}

impl Row {
    fn into_mandate(self, signature: Option<Signature>) -> Result<Mandate, StoreError> {
        Ok(Mandate {
            status: MandateStatus::parse(&self.status)
                .ok_or_else(|| corrupt("mandate status", &self.status))?,
            payment_type: PaymentType::parse(&self.payment_type)
                .ok_or_else(|| corrupt("payment type", &self.payment_type))?,
            id: self.id,
            org_id: self.org_id,
            customer_id: self.customer_id,
            account_id: self.account_id,
            iban: self.iban,
            bic: self.bic,
            email: self.email,
            amount: self.amount,
            spread_months: self.spread_months,
            debtor_name: self.debtor_name,
            debtor_address: self.debtor_address,
            umr: self.umr,
            signature,
            created_at: from_db_time(self.created_at),
            updated_at: from_db_time(self.updated_at),
        })
    }
}

/// Attaches their signatures to mandate rows.
fn with_signatures(conn: &mut DbConnection, rows: Vec<Row>) -> Result<Vec<Mandate>, StoreError> {
    let signed: Vec<&str> = rows
        .iter()
        .filter(|r| r.status != MandateStatus::Draft.as_str())
        .map(|r| r.id.as_str())
        .collect();
    let mut signatures: HashMap<String, Signature> = if signed.is_empty() {
        HashMap::new()
    } else {
        mandate_signatures::table
            .filter(mandate_signatures::mandate_id.eq_any(&signed))
            .select(SignatureRow::as_select())
            .load(conn)?
            .into_iter()
            .map(|r| (r.mandate_id.clone(), Signature::from(r)))
            .collect()
    };
    rows.into_iter()
        .map(|r| {
            let signature = signatures.remove(&r.id);
            r.into_mandate(signature)
        })
        .collect()
}

/// Stores a new mandate (a draft: no reference, no signature).
pub fn insert(conn: &mut DbConnection, m: &Mandate) -> Result<(), StoreError> {
    diesel::insert_into(mandates::table)
        .values((
            mandates::id.eq(&m.id),
            mandates::org_id.eq(&m.org_id),
            mandates::customer_id.eq(&m.customer_id),
            mandates::account_id.eq(&m.account_id),
            mandates::status.eq(m.status.as_str()),
            mandates::payment_type.eq(m.payment_type.as_str()),
            mandates::iban.eq(&m.iban),
            mandates::bic.eq(&m.bic),
            mandates::email.eq(&m.email),
            mandates::amount.eq(m.amount),
            mandates::spread_months.eq(m.spread_months),
            mandates::debtor_name.eq(&m.debtor_name),
            mandates::debtor_address.eq(&m.debtor_address),
            mandates::umr.eq(&m.umr),
            mandates::created_at.eq(to_db_time(m.created_at)),
            mandates::updated_at.eq(to_db_time(m.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The mandate `id` of organization `org_id`.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Mandate, StoreError> {
    let row = mandates::table
        .filter(mandates::org_id.eq(org_id))
        .filter(mandates::id.eq(id))
        .select(Row::as_select())
        .first(conn)?;
    with_signatures(conn, vec![row])?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The mandate `id` if it is this customer's ([`StoreError::NotFound`]
/// otherwise, as if it did not exist).
pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Mandate, StoreError> {
    let row = mandates::table
        .filter(mandates::org_id.eq(org_id))
        .filter(mandates::customer_id.eq(customer_id))
        .filter(mandates::id.eq(id))
        .select(Row::as_select())
        .first(conn)?;
    with_signatures(conn, vec![row])?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Which mandates a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub customer_id: Option<String>,
    pub status: Option<MandateStatus>,
}

/// A page of the organization's mandates matching `filter`, newest first
/// (same instant: by id, descending), after the mandate `after` (the last
/// one of the previous page). A cursor naming no mandate of the
/// organization gives an empty page.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Mandate>, StoreError> {
    let mut query = mandates::table
        .filter(mandates::org_id.eq(org_id))
        .select(Row::as_select())
        .order((mandates::created_at.desc(), mandates::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(customer_id) = &filter.customer_id {
        query = query.filter(mandates::customer_id.eq(customer_id.clone()));
    }
    if let Some(status) = filter.status {
        query = query.filter(mandates::status.eq(status.as_str()));
    }
    if let Some(after) = after {
        let Some(at) = mandates::table
            .filter(mandates::org_id.eq(org_id))
            .filter(mandates::id.eq(after))
            .select(mandates::created_at)
            .first::<NaiveDateTime>(conn)
            .optional()?
        else {
            return Ok(Vec::new());
        };
        query = query.filter(
            mandates::created_at.lt(at).or(mandates::created_at
                .eq(at)
                .and(mandates::id.lt(after.to_owned()))),
        );
    }
    let rows = query.load(conn)?;
    with_signatures(conn, rows)
}

/// The customer's mandates, newest first (see [`list`]).
pub fn list_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Mandate>, StoreError> {
    let filter = Filter {
        customer_id: Some(customer_id.to_owned()),
        status: None,
    };
    list(conn, org_id, &filter, after, limit)
}

/// The IBAN of the customer's newest mandate (whatever its status): what
/// the next draft proposes.
pub fn last_iban(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(mandates::table
        .filter(mandates::org_id.eq(org_id))
        .filter(mandates::customer_id.eq(customer_id))
        .order((mandates::created_at.desc(), mandates::id.desc()))
        .select(mandates::iban)
        .first(conn)
        .optional()?)
}

/// Whether the account has a signed recurrent mandate: one-off mandates are
/// then refused on it.
pub fn has_signed_recurrent(conn: &mut DbConnection, account_id: &str) -> Result<bool, StoreError> {
    let n: i64 = mandates::table
        .filter(mandates::account_id.eq(account_id))
        .filter(mandates::status.eq(MandateStatus::Signed.as_str()))
        .filter(mandates::payment_type.eq(PaymentType::Recurrent.as_str()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Signs the draft `id`: status `signed` with its reference `umr`, the
/// signature row, and the signed PDF with its SHA-256 (`document_sha256`
/// of the file itself), all in the caller's transaction. Returns false and
/// writes nothing when the mandate is no longer a draft (a concurrent
/// signature won).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    umr: &str,
    signature: &Signature,
    pdf: &[u8],
    pdf_sha256: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        mandates::table
            .filter(mandates::org_id.eq(org_id))
            .filter(mandates::id.eq(id))
            .filter(mandates::status.eq(MandateStatus::Draft.as_str())),
    )
    .set((
        mandates::status.eq(MandateStatus::Signed.as_str()),
        mandates::umr.eq(umr),
        mandates::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    diesel::insert_into(mandate_signatures::table)
        .values((
            mandate_signatures::mandate_id.eq(id),
            mandate_signatures::signed_at.eq(to_db_time(signature.signed_at)),
            mandate_signatures::channel.eq(&signature.channel),
            mandate_signatures::destination.eq(&signature.destination),
            mandate_signatures::ip.eq(&signature.ip),
            mandate_signatures::user_agent.eq(&signature.user_agent),
            mandate_signatures::document_sha256.eq(&signature.document_sha256),
        ))
        .execute(conn)?;
    diesel::insert_into(mandate_documents::table)
        .values((
            mandate_documents::mandate_id.eq(id),
            mandate_documents::pdf.eq(pdf),
            mandate_documents::sha256.eq(pdf_sha256),
            mandate_documents::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// The signed PDF of a mandate and its SHA-256, as written at signature.
pub fn document(
    conn: &mut DbConnection,
    mandate_id: &str,
) -> Result<Option<(Vec<u8>, String)>, StoreError> {
    Ok(mandate_documents::table
        .filter(mandate_documents::mandate_id.eq(mandate_id))
        .select((mandate_documents::pdf, mandate_documents::sha256))
        .first(conn)
        .optional()?)
}

/// Revokes the signed mandate `id`: status `revoked`, `revoked_at` on its
/// signature, and its collections not presented yet (`scheduled`)
/// `cancelled`, the invoice payments they were to pay failed
/// (`invoices::fail_cancelled_debits`). Returns the number of collections
/// cancelled, or `None` (and writes nothing) when the mandate is not
/// signed. Run it in a transaction.
pub fn revoke(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<usize>, StoreError> {
    let updated = diesel::update(
        mandates::table
            .filter(mandates::org_id.eq(org_id))
            .filter(mandates::id.eq(id))
            .filter(mandates::status.eq(MandateStatus::Signed.as_str())),
    )
    .set((
        mandates::status.eq(MandateStatus::Revoked.as_str()),
        mandates::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    diesel::update(mandate_signatures::table.filter(mandate_signatures::mandate_id.eq(id)))
        .set(mandate_signatures::revoked_at.eq(to_db_time(now)))
        .execute(conn)?;
    let cancelled = diesel::update(
        sepa_collections::table
            .filter(sepa_collections::org_id.eq(org_id))
            .filter(sepa_collections::mandate_id.eq(id))
            .filter(sepa_collections::status.eq("scheduled")),
    )
    .set((
        sepa_collections::status.eq("cancelled"),
        sepa_collections::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    super::invoices::fail_cancelled_debits(conn, id, guichet_domain::events::Actor::Staff, now)?;
    Ok(Some(cancelled))
}

/// Locks the mandate until the end of the transaction (PostgreSQL row
/// lock; SQLite writers are already serialized by `BEGIN IMMEDIATE`).
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            mandates::table
                .filter(mandates::org_id.eq(org_id))
                .filter(mandates::id.eq(id))
                .select(mandates::id)
                .for_update()
                .first::<String>(pg)?;
            Ok(())
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}
