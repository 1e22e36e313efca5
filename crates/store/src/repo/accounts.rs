//! Customer accounts and their history: the `accounts` and
//! `account_entries` tables. An account's `balance` is what the customer
//! owes now; every change of it is an entry, written together with the
//! balance by [`add_entry`]. Every query is scoped to an organization, and
//! the customer's reads to the customer too.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::ids;

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{account_entries, accounts, sepa_collections};

/// A customer account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub label: String,
    /// The business's own reference, unique within the organization.
    pub reference: String,
    /// What the customer owes now, in minor units of `currency`.
    pub balance: i64,
    /// ISO 4217 code; always `EUR` for SEPA accounts.
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What changed an account's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Added by the business: raises the balance.
    Charge,
    /// A collection presented to the debtor's bank: lowers the balance.
    Collection,
    /// A presented collection the bank rejected: put back on the balance.
    CollectionRejected,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Charge => "charge",
            EntryKind::Collection => "collection",
            EntryKind::CollectionRejected => "collection_rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "charge" => Some(EntryKind::Charge),
            "collection" => Some(EntryKind::Collection),
            "collection_rejected" => Some(EntryKind::CollectionRejected),
            _ => None,
        }
    }
}

/// One change of an account's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntry {
    pub id: String,
    pub account_id: String,
    pub org_id: String,
    pub kind: EntryKind,
    /// Signed minor units: positive raises the balance.
    pub amount: i64,
    pub label: String,
    /// The collection behind a `collection` or `collection_rejected` entry.
    pub collection_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = accounts)]
struct Row {
    id: String,
    org_id: String,
    customer_id: String,
    label: String,
    reference: String,
    balance: i64,
    currency: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<Row> for Account {
    fn from(r: Row) -> Self {
        Account {
            id: r.id,
            org_id: r.org_id,
            customer_id: r.customer_id,
            label: r.label,
            reference: r.reference,
            balance: r.balance,
            currency: r.currency,
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = account_entries)]
struct EntryRow {
    id: String,
    account_id: String,
    org_id: String,
    kind: String,
    amount: i64,
    label: String,
    collection_id: Option<String>,
    created_at: NaiveDateTime,
}

impl TryFrom<EntryRow> for AccountEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(AccountEntry {
            kind: EntryKind::parse(&r.kind).ok_or_else(|| {
                StoreError::Database(format!("stored entry kind {:?} is invalid", r.kind))
            })?,
            id: r.id,
            account_id: r.account_id,
            org_id: r.org_id,
            amount: r.amount,
            label: r.label,
            collection_id: r.collection_id,
            created_at: from_db_time(r.created_at),
        })
    }
}

/// Stores a new account. A reference already used in the organization is a
/// [`StoreError::Conflict`] (on PostgreSQL it aborts the transaction: check
/// with [`reference_taken`] first inside one).
pub fn insert(conn: &mut DbConnection, account: &Account) -> Result<(), StoreError> {
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&account.id),
            accounts::org_id.eq(&account.org_id),
            accounts::customer_id.eq(&account.customer_id),
            accounts::label.eq(&account.label),
            accounts::reference.eq(&account.reference),
            accounts::balance.eq(account.balance),
            accounts::currency.eq(&account.currency),
            accounts::created_at.eq(to_db_time(account.created_at)),
            accounts::updated_at.eq(to_db_time(account.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether the organization already has an account with this reference.
pub fn reference_taken(
    conn: &mut DbConnection,
    org_id: &str,
    reference: &str,
) -> Result<bool, StoreError> {
    let n: i64 = accounts::table
        .filter(accounts::org_id.eq(org_id))
        .filter(accounts::reference.eq(reference))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The account `id` of organization `org_id`.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Account, StoreError> {
    let row = accounts::table
        .filter(accounts::org_id.eq(org_id))
        .filter(accounts::id.eq(id))
        .select(Row::as_select())
        .first(conn)?;
    Ok(row.into())
}

/// The account `id` if it belongs to this customer ([`StoreError::NotFound`]
/// otherwise, as if it did not exist).
pub fn get_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    id: &str,
) -> Result<Account, StoreError> {
    let row = accounts::table
        .filter(accounts::org_id.eq(org_id))
        .filter(accounts::customer_id.eq(customer_id))
        .filter(accounts::id.eq(id))
        .select(Row::as_select())
        .first(conn)?;
    Ok(row.into())
}

/// Locks the account until the end of the transaction (PostgreSQL row lock;
/// SQLite writers are already serialized by `BEGIN IMMEDIATE`), so that two
/// writers deciding on its balance never both act on a stale one. Call it
/// inside the transaction, before reading the account.
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            accounts::table
                .filter(accounts::org_id.eq(org_id))
                .filter(accounts::id.eq(id))
                .select(accounts::id)
                .for_update()
                .first::<String>(pg)?;
            Ok(())
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// A page of the customer's accounts by id, after the account id `after`.
pub fn list_for_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, StoreError> {
    list_for_org(conn, org_id, Some(customer_id), after, limit)
}

/// A page of the organization's accounts (of one customer if given) by id,
/// after `after`.
pub fn list_for_org(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, StoreError> {
    let mut query = accounts::table
        .filter(accounts::org_id.eq(org_id))
        .select(Row::as_select())
        .order(accounts::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(customer_id) = customer_id {
        query = query.filter(accounts::customer_id.eq(customer_id.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(accounts::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?.into_iter().map(Account::from).collect())
}

/// Records a change of the account's balance: inserts the entry and adds
/// `amount` (signed) to `accounts.balance`. Run it inside the caller's
/// transaction so that both writes happen or neither. An account of another
/// organization is [`StoreError::NotFound`] and nothing is written.
#[allow(clippy::too_many_arguments)]
pub fn add_entry(
    conn: &mut DbConnection,
    account_id: &str,
    org_id: &str,
    kind: EntryKind,
    amount: i64,
    label: &str,
    collection_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AccountEntry, StoreError> {
    let updated = diesel::update(
        accounts::table
            .filter(accounts::org_id.eq(org_id))
            .filter(accounts::id.eq(account_id)),
    )
    .set((
        accounts::balance.eq(accounts::balance + amount),
        accounts::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    let entry = AccountEntry {
        id: ids::new_id("ent"),
        account_id: account_id.to_owned(),
        org_id: org_id.to_owned(),
        kind,
        amount,
        label: label.to_owned(),
        collection_id: collection_id.map(str::to_owned),
        created_at: now,
    };
    diesel::insert_into(account_entries::table)
        .values((
            account_entries::id.eq(&entry.id),
            account_entries::account_id.eq(&entry.account_id),
            account_entries::org_id.eq(&entry.org_id),
            account_entries::kind.eq(entry.kind.as_str()),
            account_entries::amount.eq(entry.amount),
            account_entries::label.eq(&entry.label),
            account_entries::collection_id.eq(&entry.collection_id),
            account_entries::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(entry)
}

/// The account's entries, newest first (entries of the same instant by
/// id, descending), at most `limit`.
pub fn entries(
    conn: &mut DbConnection,
    org_id: &str,
    account_id: &str,
    limit: i64,
) -> Result<Vec<AccountEntry>, StoreError> {
    account_entries::table
        .filter(account_entries::org_id.eq(org_id))
        .filter(account_entries::account_id.eq(account_id))
        .order((
            account_entries::created_at.desc(),
            account_entries::id.desc(),
        ))
        .limit(limit)
        .select(EntryRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AccountEntry::try_from)
        .collect()
}

/// What the account's `scheduled` collections will take: the sum of their
/// amounts (0 when none). What a new mandate may still collect is the
/// balance minus this.
pub fn covered(conn: &mut DbConnection, account_id: &str) -> Result<i64, StoreError> {
    let amounts: Vec<i64> = sepa_collections::table
        .filter(sepa_collections::account_id.eq(account_id))
        .filter(sepa_collections::status.eq("scheduled"))
        .select(sepa_collections::amount)
        .load(conn)?;
    Ok(amounts.iter().sum())
}

/// Whether the account has a signed recurrent mandate (which rules out
/// one-off mandates on it from then on).
pub fn has_recurring_mandate(
    conn: &mut DbConnection,
    account_id: &str,
) -> Result<bool, StoreError> {
    use crate::schema::mandates;
    let n: i64 = mandates::table
        .filter(mandates::account_id.eq(account_id))
        .filter(mandates::status.eq("signed"))
        .filter(mandates::payment_type.eq("recurrent"))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
