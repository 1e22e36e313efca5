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
    /// The invoice this collection pays by autopay, and its pending payment
    /// (both set or both `None`). Such a collection does not move the
    /// account's balance; its bank answer settles the payment.
    pub invoice: Option<InvoiceLink>,
}

/// The invoice payment a collection pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLink {
    pub invoice_id: String,
    pub payment_id: String,
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
            invoice: None,
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
    invoice_id: Option<String>,
    invoice_payment_id: Option<String>,
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
            invoice: r
                .invoice_id
                .zip(r.invoice_payment_id)
                .map(|(invoice_id, payment_id)| InvoiceLink {
                    invoice_id,
                    payment_id,
                }),
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
            sepa_collections::invoice_id.eq(c.invoice.as_ref().map(|l| l.invoice_id.as_str())),
            sepa_collections::invoice_payment_id
                .eq(c.invoice.as_ref().map(|l| l.payment_id.as_str())),
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

// ------------------------------------------------------------------ lists

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub due_date: Option<NaiveDate>,
    pub status: Option<CollectionStatus>,
    pub mandate_id: Option<String>,
}

/// The organization's collections matching `filter`, by id, after the id
/// `after`, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &Filter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Collection>, StoreError> {
    let mut query = sepa_collections::table
        .filter(sepa_collections::org_id.eq(org_id))
        .into_boxed();
    if let Some(date) = filter.due_date {
        query = query.filter(sepa_collections::due_date.eq(date));
    }
    if let Some(status) = filter.status {
        query = query.filter(sepa_collections::status.eq(status.as_str()));
    }
    if let Some(mandate_id) = &filter.mandate_id {
        query = query.filter(sepa_collections::mandate_id.eq(mandate_id.clone()));
    }
    if let Some(after) = after {
        query = query.filter(sepa_collections::id.gt(after.to_owned()));
    }
    query
        .order(sepa_collections::id.asc())
        .limit(limit)
        .select(CollectionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Collection::try_from)
        .collect()
}

// ------------------------------------------------------------------ export

/// The statuses a day's pain.008 file lists: collections waiting for their
/// date and those the debit run has already presented. Paid, rejected and
/// cancelled ones are left out.
pub const EXPORTED: [&str; 2] = ["scheduled", "presented"];

/// The number and total of one sequence type's collections in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportGroup {
    pub sequence_type: SequenceType,
    pub count: u64,
    pub sum: u64,
}

/// Replaces PostgreSQL's `$n` placeholders with SQLite's `?` (each one is
/// used once, in order).
fn placeholders(conn: &DbConnection, sql: &str) -> String {
    match conn {
        DbConnection::Postgresql(_) => sql.to_owned(),
        DbConnection::Sqlite(_) => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' {
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// One aggregate query: the count and sum of the organization's collections
/// due on `date` that a file lists ([`EXPORTED`]), per sequence type, in
/// the order FRST, RCUR, OOFF, FNAL. Empty when there are none.
pub fn export_totals(
    conn: &mut DbConnection,
    org_id: &str,
    date: NaiveDate,
) -> Result<Vec<ExportGroup>, StoreError> {
    use diesel::sql_types::{BigInt, Date, Text};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        sequence_type: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let sql = placeholders(
        conn,
        "SELECT sequence_type, COUNT(*) AS n, CAST(SUM(amount) AS BIGINT) AS total \
         FROM sepa_collections \
         WHERE org_id = $1 AND due_date = $2 AND status IN ('scheduled', 'presented') \
         GROUP BY sequence_type",
    );
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<Text, _>(org_id)
        .bind::<Date, _>(date)
        .load(conn)?;
    let mut groups = rows
        .into_iter()
        .map(|r| {
            Ok(ExportGroup {
                sequence_type: parse_sequence_type(&r.sequence_type)
                    .ok_or_else(|| corrupt("sequence type", &r.sequence_type))?,
                count: u64::try_from(r.n).map_err(|_| corrupt("count", "negative"))?,
                sum: u64::try_from(r.total).map_err(|_| corrupt("amount", "negative"))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    groups.sort_by_key(|g| g.sequence_type);
    Ok(groups)
}

/// One debit of a file: the collection with its mandate's reference,
/// signature date and debtor.
#[derive(Debug, Clone, Queryable)]
pub struct ExportRow {
    pub id: String,
    pub end_to_end_id: String,
    pub amount: i64,
    /// The unique mandate reference.
    pub umr: Option<String>,
    pub signed_at: NaiveDateTime,
    pub debtor_name: String,
    pub iban: String,
    pub bic: String,
}

/// A page of the debits of one sequence type due on `date` ([`EXPORTED`]
/// statuses), by id after `after` (keyset), at most `limit`.
pub fn export_page(
    conn: &mut DbConnection,
    org_id: &str,
    date: NaiveDate,
    sequence_type: SequenceType,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ExportRow>, StoreError> {
    use crate::schema::{mandate_signatures, mandates};
    let mut query = sepa_collections::table
        .inner_join(mandates::table.on(mandates::id.eq(sepa_collections::mandate_id)))
        .inner_join(
            mandate_signatures::table
                .on(mandate_signatures::mandate_id.eq(sepa_collections::mandate_id)),
        )
        .filter(sepa_collections::org_id.eq(org_id))
        .filter(sepa_collections::due_date.eq(date))
        .filter(sepa_collections::sequence_type.eq(sequence_type.code()))
        .filter(sepa_collections::status.eq_any(EXPORTED))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(sepa_collections::id.gt(after.to_owned()));
    }
    Ok(query
        .order(sepa_collections::id.asc())
        .limit(limit)
        .select((
            sepa_collections::id,
            sepa_collections::end_to_end_id,
            sepa_collections::amount,
            mandates::umr,
            mandate_signatures::signed_at,
            mandates::debtor_name,
            mandates::iban,
            mandates::bic,
        ))
        .load(conn)?)
}

// ------------------------------------------------------------------ results

/// Records the bank's answer on a `presented` collection: `paid`, or
/// `rejected` with its reason. `false` (nothing written) when the collection
/// is not presented (or not the organization's).
pub fn settle(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    outcome: CollectionStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let now = to_db_time(now);
    let updated = diesel::update(
        sepa_collections::table
            .filter(sepa_collections::org_id.eq(org_id))
            .filter(sepa_collections::id.eq(id))
            .filter(sepa_collections::status.eq(CollectionStatus::Presented.as_str())),
    )
    .set((
        sepa_collections::status.eq(outcome.as_str()),
        sepa_collections::settled_at.eq(Some(now)),
        sepa_collections::reject_reason.eq(reason),
        sepa_collections::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

// ------------------------------------------------------------------ debit run

/// A collection the debit run works on, with what it needs of its mandate.
#[derive(Debug, Clone)]
pub struct DueCollection {
    pub collection: Collection,
    pub customer_id: String,
    pub email: String,
    pub umr: Option<String>,
    pub iban: String,
}

fn with_mandates(
    conn: &mut DbConnection,
    rows: Vec<Collection>,
) -> Result<Vec<DueCollection>, StoreError> {
    use crate::schema::mandates;
    let ids: Vec<&str> = rows.iter().map(|c| c.mandate_id.as_str()).collect();
    let found: Vec<(String, String, String, Option<String>, String)> = mandates::table
        .filter(mandates::id.eq_any(&ids))
        .select((
            mandates::id,
            mandates::customer_id,
            mandates::email,
            mandates::umr,
            mandates::iban,
        ))
        .load(conn)?;
    let by_id: std::collections::HashMap<String, (String, String, Option<String>, String)> = found
        .into_iter()
        .map(|(id, customer, email, umr, iban)| (id, (customer, email, umr, iban)))
        .collect();
    rows.into_iter()
        .map(|collection| {
            let (customer_id, email, umr, iban) = by_id
                .get(&collection.mandate_id)
                .cloned()
                .ok_or(StoreError::NotFound)?;
            Ok(DueCollection {
                collection,
                customer_id,
                email,
                umr,
                iban,
            })
        })
        .collect()
}

/// Scheduled collections not yet pre-notified, due on or before `until`,
/// by id after `after`, at most `limit`.
pub fn to_prenotify(
    conn: &mut DbConnection,
    until: NaiveDate,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<DueCollection>, StoreError> {
    let mut query = sepa_collections::table
        .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str()))
        .filter(sepa_collections::prenotified_at.is_null())
        .filter(sepa_collections::due_date.le(until))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(sepa_collections::id.gt(after.to_owned()));
    }
    let rows = query
        .order(sepa_collections::id.asc())
        .limit(limit)
        .select(CollectionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Collection::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    with_mandates(conn, rows)
}

/// Marks a collection pre-notified now, due on `due_date` (moved when the
/// notice came late). `false` when another run did it first or it is no
/// longer scheduled.
pub fn mark_prenotified(
    conn: &mut DbConnection,
    id: &str,
    due_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let now = to_db_time(now);
    let updated = diesel::update(
        sepa_collections::table
            .filter(sepa_collections::id.eq(id))
            .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str()))
            .filter(sepa_collections::prenotified_at.is_null()),
    )
    .set((
        sepa_collections::prenotified_at.eq(Some(now)),
        sepa_collections::due_date.eq(due_date),
        sepa_collections::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Scheduled, pre-notified collections due on or before `as_of` whose
/// mandate is still signed, by id after `after`, at most `limit`.
pub fn to_present(
    conn: &mut DbConnection,
    as_of: NaiveDate,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Collection>, StoreError> {
    use crate::schema::mandates;
    let mut query = sepa_collections::table
        .inner_join(mandates::table.on(mandates::id.eq(sepa_collections::mandate_id)))
        .filter(mandates::status.eq("signed"))
        .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str()))
        .filter(sepa_collections::prenotified_at.is_not_null())
        .filter(sepa_collections::due_date.le(as_of))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(sepa_collections::id.gt(after.to_owned()));
    }
    query
        .order(sepa_collections::id.asc())
        .limit(limit)
        .select(CollectionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Collection::try_from)
        .collect()
}

/// Claims a scheduled collection for presentation: `scheduled` →
/// `presented` with a conditional update. `true` means this caller owns it
/// (exactly one caller gets `true`, however many try at once). On
/// PostgreSQL a row locked by another transaction is skipped (`false`): its
/// holder presents it, or the next run does if it rolls back.
pub fn claim_presented(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let now = to_db_time(now);
    if let DbConnection::Postgresql(pg) = conn {
        // A row another runner holds is skipped rather than waited for:
        // runners going through the same list do not queue behind each
        // other.
        use diesel::sql_types::{Text, Timestamp};
        let updated = diesel::sql_query(
            "UPDATE sepa_collections SET status = 'presented', presented_at = $1, updated_at = $1 \
             WHERE id = (SELECT id FROM sepa_collections \
               WHERE id = $2 AND status = 'scheduled' AND prenotified_at IS NOT NULL \
               FOR UPDATE SKIP LOCKED)",
        )
        .bind::<Timestamp, _>(now)
        .bind::<Text, _>(id)
        .execute(pg)?;
        return Ok(updated == 1);
    }
    let updated = diesel::update(
        sepa_collections::table
            .filter(sepa_collections::id.eq(id))
            .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str()))
            .filter(sepa_collections::prenotified_at.is_not_null()),
    )
    .set((
        sepa_collections::status.eq(CollectionStatus::Presented.as_str()),
        sepa_collections::presented_at.eq(Some(now)),
        sepa_collections::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Sets the mandate's `last_collected_at`.
pub fn mark_mandate_collected(
    conn: &mut DbConnection,
    mandate_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use crate::schema::mandate_signatures;
    diesel::update(mandate_signatures::table.filter(mandate_signatures::mandate_id.eq(mandate_id)))
        .set(mandate_signatures::last_collected_at.eq(Some(to_db_time(now))))
        .execute(conn)?;
    Ok(())
}

/// A signed recurrent mandate that may collect what its account owes.
#[derive(Debug, Clone)]
pub struct CoverCandidate {
    pub mandate_id: String,
    pub org_id: String,
    pub account_id: String,
    pub customer_id: String,
    pub email: String,
    pub umr: Option<String>,
    pub iban: String,
}

/// Mandate id, organization, account, customer, e-mail, reference, IBAN,
/// balance.
type CoverRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
);

/// Signed, not revoked nor expired, recurrent mandates whose account owes
/// more than its scheduled collections cover, by mandate id after `after`,
/// at most `limit`. (The check is repeated under the account's lock before
/// anything is scheduled.)
pub fn to_cover(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CoverCandidate>, StoreError> {
    use crate::schema::{accounts, mandate_signatures, mandates};
    let mut query = mandates::table
        .inner_join(accounts::table.on(accounts::id.eq(mandates::account_id)))
        .inner_join(mandate_signatures::table.on(mandate_signatures::mandate_id.eq(mandates::id)))
        .filter(mandates::status.eq("signed"))
        .filter(mandates::payment_type.eq("recurrent"))
        .filter(mandate_signatures::revoked_at.is_null())
        .filter(mandate_signatures::expired_at.is_null())
        .filter(accounts::balance.gt(0))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(mandates::id.gt(after.to_owned()));
    }
    let rows: Vec<CoverRow> = query
        .order(mandates::id.asc())
        .limit(limit)
        .select((
            mandates::id,
            mandates::org_id,
            mandates::account_id,
            mandates::customer_id,
            mandates::email,
            mandates::umr,
            mandates::iban,
            accounts::balance,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (mandate_id, org_id, account_id, customer_id, email, umr, iban, balance) in rows {
        if balance - scheduled_sum(conn, &account_id)? > 0 {
            out.push(CoverCandidate {
                mandate_id,
                org_id,
                account_id,
                customer_id,
                email,
                umr,
                iban,
            });
        }
    }
    Ok(out)
}

/// The sum of the account's `scheduled` collections (those paying an
/// invoice are not the account's).
pub fn scheduled_sum(conn: &mut DbConnection, account_id: &str) -> Result<i64, StoreError> {
    let amounts: Vec<i64> = sepa_collections::table
        .filter(sepa_collections::account_id.eq(account_id))
        .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str()))
        .filter(sepa_collections::invoice_payment_id.is_null())
        .select(sepa_collections::amount)
        .load(conn)?;
    Ok(amounts.iter().sum())
}

/// The account's balance.
pub fn balance(conn: &mut DbConnection, account_id: &str) -> Result<i64, StoreError> {
    use crate::schema::accounts;
    Ok(accounts::table
        .find(account_id)
        .select(accounts::balance)
        .first(conn)?)
}

/// Whether the mandate has any collection yet (the next one is then RCUR,
/// not FRST).
pub fn mandate_has_collections(
    conn: &mut DbConnection,
    mandate_id: &str,
) -> Result<bool, StoreError> {
    let found: Option<String> = sepa_collections::table
        .filter(sepa_collections::mandate_id.eq(mandate_id))
        .filter(sepa_collections::status.ne(CollectionStatus::Cancelled.as_str()))
        .select(sepa_collections::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Signed recurrent mandates, neither revoked nor expired, whose last
/// collection (or signature, when never collected) is before `before`: at
/// most `limit` of their ids with their organization.
pub fn to_expire(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    use crate::schema::{mandate_signatures, mandates};
    Ok(mandates::table
        .inner_join(mandate_signatures::table.on(mandate_signatures::mandate_id.eq(mandates::id)))
        .filter(mandates::status.eq("signed"))
        .filter(mandates::payment_type.eq("recurrent"))
        .filter(mandate_signatures::revoked_at.is_null())
        .filter(mandate_signatures::expired_at.is_null())
        .filter(
            mandate_signatures::last_collected_at.lt(before).or(
                mandate_signatures::last_collected_at
                    .is_null()
                    .and(mandate_signatures::signed_at.lt(before)),
            ),
        )
        .order(mandates::id.asc())
        .limit(limit)
        .select((mandates::id, mandates::org_id))
        .load(conn)?)
}

/// Expires a signed mandate (status `expired`, `expired_at` now) and
/// cancels its scheduled collections (failing the invoice payments they
/// were to pay); returns how many were cancelled, or
/// `None` when the mandate was no longer signed (another run expired it).
pub fn expire_mandate(
    conn: &mut DbConnection,
    mandate_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<usize>, StoreError> {
    use crate::schema::{mandate_signatures, mandates};
    let now = to_db_time(now);
    let updated = diesel::update(
        mandates::table
            .filter(mandates::id.eq(mandate_id))
            .filter(mandates::status.eq("signed")),
    )
    .set((mandates::status.eq("expired"), mandates::updated_at.eq(now)))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    let cancelled = diesel::update(
        sepa_collections::table
            .filter(sepa_collections::mandate_id.eq(mandate_id))
            .filter(sepa_collections::status.eq(CollectionStatus::Scheduled.as_str())),
    )
    .set((
        sepa_collections::status.eq(CollectionStatus::Cancelled.as_str()),
        sepa_collections::updated_at.eq(now),
    ))
    .execute(conn)?;
    // After the collections: a presentation locks its collection, then the
    // account, then the signature; taking them in the same order never
    // deadlocks with it.
    diesel::update(mandate_signatures::table.filter(mandate_signatures::mandate_id.eq(mandate_id)))
        .set(mandate_signatures::expired_at.eq(Some(now)))
        .execute(conn)?;
    super::invoices::fail_cancelled_debits(
        conn,
        mandate_id,
        guichet_domain::events::Actor::System,
        from_db_time(now),
    )?;
    Ok(Some(cancelled))
}

/// Opens a read-only snapshot on `conn` (`REPEATABLE READ READ ONLY` on
/// PostgreSQL, a deferred transaction on SQLite): an export's totals and
/// pages then see the same rows. End it with [`end_snapshot`].
pub fn begin_snapshot(conn: &mut DbConnection) -> Result<(), StoreError> {
    use diesel::connection::SimpleConnection;
    let sql = match conn {
        DbConnection::Postgresql(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        DbConnection::Sqlite(_) => "BEGIN",
    };
    conn.batch_execute(sql).map_err(StoreError::from)
}

/// Ends what [`begin_snapshot`] opened (it wrote nothing).
pub fn end_snapshot(conn: &mut DbConnection) -> Result<(), StoreError> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("ROLLBACK").map_err(StoreError::from)
}

/// Who a mandate's messages go to: its customer, e-mail and reference.
pub fn mandate_contact(
    conn: &mut DbConnection,
    org_id: &str,
    mandate_id: &str,
) -> Result<(String, String, Option<String>), StoreError> {
    use crate::schema::mandates;
    Ok(mandates::table
        .filter(mandates::org_id.eq(org_id))
        .filter(mandates::id.eq(mandate_id))
        .select((mandates::customer_id, mandates::email, mandates::umr))
        .first(conn)?)
}
