//! SEPA collections (`sepa_collections`): the debits a signed mandate
//! allows, from their scheduling at signature to their presentation in a
//! pain.008 file and the bank's answer.
//!
//! Life of a collection: `scheduled` → `presented` → `paid` | `rejected`;
//! or `cancelled` (mandate revoked or expired before presentation).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::ids;
use guichet_domain::sepa::pain008::SequenceType;

use super::{from_db_time, opt_from_db_time, opt_to_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::sepa_collections;

/// Where a collection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionStatus {
    /// Waiting for its due date (pre-notified or not yet).
    Scheduled,
    /// Sent to the bank in a pain.008 file; the balance was lowered.
    Presented,
    /// The bank confirmed the debit.
    Paid,
    /// The bank returned the debit; the balance was raised again.
    Rejected,
    /// Dropped before presentation (mandate revoked or expired).
    Cancelled,
}

impl CollectionStatus {
    pub const ALL: [CollectionStatus; 5] = [
        CollectionStatus::Scheduled,
        CollectionStatus::Presented,
        CollectionStatus::Paid,
        CollectionStatus::Rejected,
        CollectionStatus::Cancelled,
    ];

    /// The stored (and API) word.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionStatus::Scheduled => "scheduled",
            CollectionStatus::Presented => "presented",
            CollectionStatus::Paid => "paid",
            CollectionStatus::Rejected => "rejected",
            CollectionStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// The sequence type from its ISO code (`FRST`, `RCUR`, `OOFF`, `FNAL`).
pub fn parse_sequence_type(code: &str) -> Option<SequenceType> {
    [
        SequenceType::First,
        SequenceType::Recurrent,
        SequenceType::OneOff,
        SequenceType::Final,
    ]
    .into_iter()
    .find(|sequence| sequence.code() == code)
}

/// A collection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub id: String,
    pub org_id: String,
    pub mandate_id: String,
    pub account_id: String,
    /// `EndToEndId` of the debit: unique, at most 35 SEPA characters.
    pub end_to_end_id: String,
    pub sequence_type: SequenceType,
    /// Minor units, positive.
    pub amount: i64,
    /// Always `EUR`.
    pub currency: String,
    pub due_date: NaiveDate,
    pub status: CollectionStatus,
    pub prenotified_at: Option<DateTime<Utc>>,
    pub presented_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Collection {
    /// A new `scheduled` collection with a fresh id and end-to-end id.
    #[allow(clippy::too_many_arguments)]
    pub fn scheduled(
        org_id: &str,
        mandate_id: &str,
        account_id: &str,
        sequence_type: SequenceType,
        amount: i64,
        due_date: NaiveDate,
        prenotified_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let id = new_id();
        Collection {
            end_to_end_id: end_to_end_id(&id),
            id,
            org_id: org_id.to_owned(),
            mandate_id: mandate_id.to_owned(),
            account_id: account_id.to_owned(),
            sequence_type,
            amount,
            currency: "EUR".to_owned(),
            due_date,
            status: CollectionStatus::Scheduled,
            prenotified_at,
            presented_at: None,
            settled_at: None,
            reject_reason: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A new collection id (`col_` and 20 random base-32 characters).
pub fn new_id() -> String {
    ids::new_id("col")
}

/// The end-to-end id of a collection: `GUICHET-` and the random part of its
/// id in capitals — 28 characters of the SEPA identifier set, unique as the
/// id is (and the column is UNIQUE).
pub fn end_to_end_id(collection_id: &str) -> String {
    let random = collection_id
        .split_once('_')
        .map_or(collection_id, |(_, random)| random);
    format!("GUICHET-{}", random.to_ascii_uppercase())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sepa_collections)]
pub(crate) struct CollectionRow {
    id: String,
    org_id: String,
    mandate_id: String,
    account_id: String,
    end_to_end_id: String,
    sequence_type: String,
    amount: i64,
    currency: String,
    due_date: NaiveDate,
    status: String,
    prenotified_at: Option<NaiveDateTime>,
    presented_at: Option<NaiveDateTime>,
    settled_at: Option<NaiveDateTime>,
    reject_reason: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("stored collection {what} {value:?} is invalid"))
}

impl TryFrom<CollectionRow> for Collection {
    type Error = StoreError;
    fn try_from(r: CollectionRow) -> Result<Self, StoreError> {
        Ok(Collection {
            sequence_type: parse_sequence_type(&r.sequence_type)
                .ok_or_else(|| corrupt("sequence type", &r.sequence_type))?,
            status: CollectionStatus::parse(&r.status)
                .ok_or_else(|| corrupt("status", &r.status))?,
            id: r.id,
            org_id: r.org_id,
            mandate_id: r.mandate_id,
            account_id: r.account_id,
            end_to_end_id: r.end_to_end_id,
            amount: r.amount,
            currency: r.currency,
            due_date: r.due_date,
            prenotified_at: opt_from_db_time(r.prenotified_at),
            presented_at: opt_from_db_time(r.presented_at),
            settled_at: opt_from_db_time(r.settled_at),
            reject_reason: r.reject_reason,
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        })
    }
}

/// Stores a collection.
pub fn insert(conn: &mut DbConnection, c: &Collection) -> Result<(), StoreError> {
    diesel::insert_into(sepa_collections::table)
        .values((
            sepa_collections::id.eq(&c.id),
            sepa_collections::org_id.eq(&c.org_id),
            sepa_collections::mandate_id.eq(&c.mandate_id),
            sepa_collections::account_id.eq(&c.account_id),
            sepa_collections::end_to_end_id.eq(&c.end_to_end_id),
            sepa_collections::sequence_type.eq(c.sequence_type.code()),
            sepa_collections::amount.eq(c.amount),
            sepa_collections::currency.eq(&c.currency),
            sepa_collections::due_date.eq(c.due_date),
            sepa_collections::status.eq(c.status.as_str()),
            sepa_collections::prenotified_at.eq(opt_to_db_time(c.prenotified_at)),
            sepa_collections::presented_at.eq(opt_to_db_time(c.presented_at)),
            sepa_collections::settled_at.eq(opt_to_db_time(c.settled_at)),
            sepa_collections::reject_reason.eq(c.reject_reason.as_deref()),
            sepa_collections::created_at.eq(to_db_time(c.created_at)),
            sepa_collections::updated_at.eq(to_db_time(c.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// One collection of the organization.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Collection, StoreError> {
    sepa_collections::table
        .filter(sepa_collections::org_id.eq(org_id))
        .filter(sepa_collections::id.eq(id))
        .select(CollectionRow::as_select())
        .first(conn)?
        .try_into()
}

/// The collections of a mandate, by due date.
pub fn list_for_mandate(
    conn: &mut DbConnection,
    mandate_id: &str,
) -> Result<Vec<Collection>, StoreError> {
    sepa_collections::table
        .filter(sepa_collections::mandate_id.eq(mandate_id))
        .order((sepa_collections::due_date.asc(), sepa_collections::id.asc()))
        .select(CollectionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Collection::try_from)
        .collect()
}
