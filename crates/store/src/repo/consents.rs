//! The consent tables: `consent_settings`, `consent_accounts`, `consents`,
//! `consent_invitations` (links, stored as hashes) and `consent_steps` (the
//! timeline the office follows). Every query is scoped to an organization,
//! except the lookup of a link by its token's hash, which is how a public
//! request finds its organization.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::consent::ConsentStatus;
use guichet_domain::events::{Actor, EventType};

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{
    consent_accounts, consent_invitations, consent_settings, consent_steps, consents,
    idempotency_keys, outbox,
};

/// What an organization's invitations show and link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSettings {
    pub org_id: String,
    pub activation_url: String,
    pub video_url: String,
    pub terms_version: String,
    pub terms_url: String,
    pub updated_at: DateTime<Utc>,
}

pub fn settings(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<Option<ConsentSettings>, StoreError> {
    let row = consent_settings::table
        .find(org_id)
        .select((
            consent_settings::org_id,
            consent_settings::activation_url,
            consent_settings::video_url,
            consent_settings::terms_version,
            consent_settings::terms_url,
            consent_settings::updated_at,
        ))
        .first::<(String, String, String, String, String, NaiveDateTime)>(conn)
        .optional()?;
    Ok(row.map(|r| ConsentSettings {
        org_id: r.0,
        activation_url: r.1,
        video_url: r.2,
        terms_version: r.3,
        terms_url: r.4,
        updated_at: from_db_time(r.5),
    }))
}

/// Writes the settings (insert or replace); call it in a transaction.
pub fn put_settings(conn: &mut DbConnection, s: &ConsentSettings) -> Result<(), StoreError> {
    diesel::delete(consent_settings::table.find(&s.org_id)).execute(conn)?;
    diesel::insert_into(consent_settings::table)
        .values((
            consent_settings::org_id.eq(&s.org_id),
            consent_settings::activation_url.eq(&s.activation_url),
            consent_settings::video_url.eq(&s.video_url),
            consent_settings::terms_version.eq(&s.terms_version),
            consent_settings::terms_url.eq(&s.terms_url),
            consent_settings::updated_at.eq(to_db_time(s.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A client account the service can be ordered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentAccount {
    pub id: String,
    pub org_id: String,
    pub company_name: String,
    pub client_reference: String,
    pub created_at: DateTime<Utc>,
}

type AccountRow = (String, String, String, String, NaiveDateTime);

fn account_of(r: AccountRow) -> ConsentAccount {
    ConsentAccount {
        id: r.0,
        org_id: r.1,
        company_name: r.2,
        client_reference: r.3,
        created_at: from_db_time(r.4),
    }
}

const ACCOUNT_COLUMNS: (
    consent_accounts::id,
    consent_accounts::org_id,
    consent_accounts::company_name,
    consent_accounts::client_reference,
    consent_accounts::created_at,
) = (
    consent_accounts::id,
    consent_accounts::org_id,
    consent_accounts::company_name,
    consent_accounts::client_reference,
    consent_accounts::created_at,
);

/// Inserts an account; [`StoreError::Conflict`] when the organization
/// already has one with this client reference.
pub fn insert_account(conn: &mut DbConnection, a: &ConsentAccount) -> Result<(), StoreError> {
    diesel::insert_into(consent_accounts::table)
        .values((
            consent_accounts::id.eq(&a.id),
            consent_accounts::org_id.eq(&a.org_id),
            consent_accounts::company_name.eq(&a.company_name),
            consent_accounts::client_reference.eq(&a.client_reference),
            consent_accounts::created_at.eq(to_db_time(a.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get_account(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> Result<ConsentAccount, StoreError> {
    Ok(account_of(
        consent_accounts::table
            .filter(consent_accounts::org_id.eq(org_id))
            .filter(consent_accounts::id.eq(id))
            .select(ACCOUNT_COLUMNS)
            .first::<AccountRow>(conn)?,
    ))
}

/// A page of accounts by id, after `after`.
pub fn list_accounts(
    conn: &mut DbConnection,
    org_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ConsentAccount>, StoreError> {
    let mut query = consent_accounts::table
        .filter(consent_accounts::org_id.eq(org_id))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(consent_accounts::id.gt(after.to_owned()));
    }
    Ok(query
        .order(consent_accounts::id.asc())
        .limit(limit)
        .select(ACCOUNT_COLUMNS)
        .load::<AccountRow>(conn)?
        .into_iter()
        .map(account_of)
        .collect())
}

/// A consent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub org_id: String,
    pub account_id: String,
    pub cardholder_name: String,
    /// In clear until the contacts are erased.
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub email_masked: String,
    pub mobile_masked: String,
    pub language: String,
    pub status: ConsentStatus,
    pub failure_reason: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub effective_from: Option<NaiveDate>,
    pub sca_session_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = consents)]
struct Row {
    id: String,
    org_id: String,
    account_id: String,
    cardholder_name: String,
    email: Option<String>,
    mobile: Option<String>,
    email_masked: String,
    mobile_masked: String,
    language: String,
    status: String,
    failure_reason: Option<String>,
    expires_at: NaiveDateTime,
    effective_from: Option<NaiveDate>,
    sca_session_id: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<Row> for Consent {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Consent {
            status: ConsentStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Database(format!("unknown consent status {:?}", r.status))
            })?,
            id: r.id,
            org_id: r.org_id,
            account_id: r.account_id,
            cardholder_name: r.cardholder_name,
            email: r.email,
            mobile: r.mobile,
            email_masked: r.email_masked,
            mobile_masked: r.mobile_masked,
            language: r.language,
            failure_reason: r.failure_reason,
            expires_at: from_db_time(r.expires_at),
            effective_from: r.effective_from,
            sca_session_id: r.sca_session_id,
            created_at: from_db_time(r.created_at),
            updated_at: from_db_time(r.updated_at),
        })
    }
}

pub fn insert(conn: &mut DbConnection, c: &Consent) -> Result<(), StoreError> {
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(&c.id),
            consents::org_id.eq(&c.org_id),
            consents::account_id.eq(&c.account_id),
            consents::cardholder_name.eq(&c.cardholder_name),
            consents::email.eq(&c.email),
            consents::mobile.eq(&c.mobile),
            consents::email_masked.eq(&c.email_masked),
            consents::mobile_masked.eq(&c.mobile_masked),
            consents::language.eq(&c.language),
            consents::status.eq(c.status.as_str()),
            consents::failure_reason.eq(&c.failure_reason),
            consents::expires_at.eq(to_db_time(c.expires_at)),
            consents::effective_from.eq(c.effective_from),
            consents::sca_session_id.eq(&c.sca_session_id),
            consents::created_at.eq(to_db_time(c.created_at)),
            consents::updated_at.eq(to_db_time(c.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Consent `id` of organization `org_id`.
pub fn get(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<Consent, StoreError> {
    consents::table
        .filter(consents::org_id.eq(org_id))
        .filter(consents::id.eq(id))
        .select(Row::as_select())
        .first(conn)?
        .try_into()
}

/// Locks the consent's row until the end of the transaction (a no-op write
/// takes SQLite's writer lock and PostgreSQL's row lock alike).
pub fn lock(conn: &mut DbConnection, org_id: &str, id: &str) -> Result<(), StoreError> {
    let n = diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id)),
    )
    .set(consents::id.eq(id))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A page of consents by id (newest ids are not ordered by time: ids are
/// random, so pages go by id), optionally of one status.
pub fn list(
    conn: &mut DbConnection,
    org_id: &str,
    status: Option<ConsentStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Consent>, StoreError> {
    let mut query = consents::table
        .filter(consents::org_id.eq(org_id))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(consents::status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(consents::id.gt(after.to_owned()));
    }
    query
        .order(consents::id.asc())
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Consent::try_from)
        .collect()
}

/// The statuses a link's expiry ends: the cardholder's flow under way
/// (`failed` included: the card step may be retried while the link lives).
fn open_statuses() -> Vec<&'static str> {
    ConsentStatus::ALL
        .into_iter()
        .filter(|s| s.in_progress())
        .map(ConsentStatus::as_str)
        .collect()
}

/// Ids of the organization's consents whose link has expired while the
/// flow was under way.
pub fn due_to_expire(
    conn: &mut DbConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    Ok(consents::table
        .filter(consents::org_id.eq(org_id))
        .filter(consents::status.eq_any(open_statuses()))
        .filter(consents::expires_at.le(to_db_time(now)))
        .select(consents::id)
        .load(conn)?)
}

/// Expires the consent when its link died by `now` while the flow was
/// under way: one conditional update (still open, link still past its
/// expiry), then the `expired` step, dated when the link died, and the
/// `consent.expired` event, in the caller's transaction. Returns whether
/// this call expired it. Of calls racing on one consent (the sweep on
/// several nodes, a request reading it), exactly one does: the update
/// takes the row lock and the others find it no longer open; a new link
/// sent meanwhile moved the expiry and nothing happens.
pub fn expire(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id))
            .filter(consents::status.eq_any(open_statuses()))
            .filter(consents::expires_at.le(to_db_time(now))),
    )
    .set((
        consents::status.eq(ConsentStatus::Expired.as_str()),
        consents::failure_reason.eq(None::<String>),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    let consent = get(conn, org_id, id)?;
    add_step(
        conn,
        &Step::new(&consent, EXPIRED, None, consent.expires_at),
    )?;
    let account = get_account(conn, org_id, &consent.account_id)?;
    let timeline = steps(conn, org_id, id)?;
    super::events::emit(
        conn,
        EventType::ConsentExpired,
        org_id,
        id,
        None,
        Actor::System,
        &crate::snapshots::consent(&consent, &account, &timeline),
        now,
    )?;
    Ok(true)
}

/// What one batch of the expiry sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryBatch {
    /// Consents whose link had died that the batch took.
    pub taken: usize,
    /// Of them, those it expired (the others were expired or changed by
    /// someone else meanwhile).
    pub expired: usize,
}

/// Expires, in one transaction, up to `limit` consents of every
/// organization whose link died by `now` while the flow was under way
/// (see [`expire`]). On PostgreSQL they are taken `FOR UPDATE SKIP
/// LOCKED`, so that sweeps on several nodes share the work instead of
/// queuing behind each other, and a consent a request is changing is left
/// to it; SQLite's writers are one at a time (`BEGIN IMMEDIATE`). Call it
/// again while it takes `limit`.
pub fn expire_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<ExpiryBatch, StoreError> {
    crate::transaction(conn, |conn| {
        let due = consents::table
            .filter(consents::status.eq_any(open_statuses()))
            .filter(consents::expires_at.le(to_db_time(now)))
            .order((consents::expires_at.asc(), consents::id.asc()))
            .limit(limit)
            .select((consents::org_id, consents::id));
        let taken: Vec<(String, String)> = match conn {
            DbConnection::Postgresql(pg) => due.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(_) => due.load(conn)?,
        };
        let mut batch = ExpiryBatch {
            taken: taken.len(),
            expired: 0,
        };
        for (org_id, id) in &taken {
            if expire(conn, org_id, id, now)? {
                batch.expired += 1;
            }
        }
        Ok(batch)
    })
}

/// Moves the consent from `from` to `to` at `now`, setting the failure
/// reason (cleared unless given); false when it was no longer in `from`.
pub fn transition(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    from: &[ConsentStatus],
    to: ConsentStatus,
    failure_reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let n = diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id))
            .filter(consents::status.eq_any(from)),
    )
    .set((
        consents::status.eq(to.as_str()),
        consents::failure_reason.eq(failure_reason),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// New contacts (both in clear and masked).
pub fn set_contacts(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    email: (&str, &str),
    mobile: (&str, &str),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id)),
    )
    .set((
        consents::email.eq(email.0),
        consents::email_masked.eq(email.1),
        consents::mobile.eq(mobile.0),
        consents::mobile_masked.eq(mobile.1),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// A new link's expiry: the consent is back to `invitation_sent`.
pub fn reinvite(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id)),
    )
    .set((
        consents::status.eq(ConsentStatus::InvitationSent.as_str()),
        consents::failure_reason.eq(None::<String>),
        consents::expires_at.eq(to_db_time(expires_at)),
        consents::sca_session_id.eq(None::<String>),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// The accepted card step: the bank session. Only from `code_verified`,
/// `failed` or `awaiting_bank` (a new card replaces a session the
/// cardholder left).
pub fn start_bank_step(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id))
            .filter(consents::status.eq_any([
                ConsentStatus::CodeVerified.as_str(),
                ConsentStatus::Failed.as_str(),
                ConsentStatus::AwaitingBank.as_str(),
            ])),
    )
    .set((
        consents::status.eq(ConsentStatus::AwaitingBank.as_str()),
        consents::failure_reason.eq(None::<String>),
        consents::sca_session_id.eq(session_id),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Active from `effective_from`. Only from `awaiting_bank` with this bank
/// session.
pub fn activate(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    session_id: &str,
    effective_from: NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        consents::table
            .filter(consents::org_id.eq(org_id))
            .filter(consents::id.eq(id))
            .filter(consents::status.eq(ConsentStatus::AwaitingBank.as_str()))
            .filter(consents::sca_session_id.eq(session_id)),
    )
    .set((
        consents::status.eq(ConsentStatus::Active.as_str()),
        consents::effective_from.eq(effective_from),
        consents::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Once the confirmation `message_id` is sent: erases the e-mail address
/// and mobile number of its consent, of the consent's links and of every
/// outbox message of its timeline (a message not yet sent is given up).
/// Returns the consent's id when there was one to erase.
pub fn erase_contacts_after(
    conn: &mut DbConnection,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let found: Option<(String, String)> = consent_steps::table
        .filter(consent_steps::message_id.eq(message_id))
        .filter(consent_steps::kind.eq(CONFIRMATION_SENT))
        .select((consent_steps::consent_id, consent_steps::org_id))
        .first(conn)
        .optional()?;
    let Some((id, org_id)) = found else {
        return Ok(None);
    };
    let consent = get(conn, &org_id, &id)?;
    if consent.email.is_none() && consent.mobile.is_none() {
        return Ok(None);
    }
    erase_contacts(conn, &consent, now)?;
    Ok(Some(id))
}

/// Erases the consent's contacts everywhere they were copied (see
/// [`erase_contacts_after`]).
pub fn erase_contacts(
    conn: &mut DbConnection,
    consent: &Consent,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = consent.id.as_str();
    let at = to_db_time(now);
    diesel::update(consents::table.find(id))
        .set((
            consents::email.eq(None::<String>),
            consents::mobile.eq(None::<String>),
        ))
        .execute(conn)?;
    add_step(conn, &Step::new(consent, CONTACTS_ERASED, None, now))?;
    // The answer an order's idempotency key replays holds the contacts of
    // the order: it keeps its shape with them erased.
    let stored: Vec<(String, String, Option<String>)> = idempotency_keys::table
        .filter(idempotency_keys::scope.like(format!("{ORDER_SCOPE_PREFIX}%")))
        .filter(idempotency_keys::response.like(format!("%\"id\":\"{id}\"%")))
        .select((
            idempotency_keys::scope,
            idempotency_keys::key,
            idempotency_keys::response,
        ))
        .load(conn)?;
    for (scope, key, response) in stored {
        let Some(Ok(mut answer)) = response.map(|r| serde_json::from_str::<serde_json::Value>(&r))
        else {
            continue;
        };
        if answer["id"] != id {
            continue;
        }
        answer["email"] = serde_json::Value::Null;
        answer["mobile"] = serde_json::Value::Null;
        diesel::update(
            idempotency_keys::table
                .filter(idempotency_keys::scope.eq(&scope))
                .filter(idempotency_keys::key.eq(&key)),
        )
        .set(idempotency_keys::response.eq(answer.to_string()))
        .execute(conn)?;
    }
    diesel::update(consent_invitations::table.filter(consent_invitations::consent_id.eq(id)))
        .set(consent_invitations::email.eq(None::<String>))
        .execute(conn)?;
    let messages = consent_steps::table
        .filter(consent_steps::consent_id.eq(id))
        .filter(consent_steps::message_id.is_not_null())
        .select(consent_steps::message_id.assume_not_null());
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(messages))
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null()),
    )
    .set(outbox::failed_at.eq(at))
    .execute(conn)?;
    let messages = consent_steps::table
        .filter(consent_steps::consent_id.eq(id))
        .filter(consent_steps::message_id.is_not_null())
        .select(consent_steps::message_id.assume_not_null());
    diesel::update(outbox::table.filter(outbox::id.eq_any(messages)))
        .set((
            outbox::recipient.eq(ERASED),
            outbox::body.eq(super::outbox::DELIVERED_BODY),
        ))
        .execute(conn)?;
    Ok(())
}

/// The idempotency scope of consent orders (`consent-order:<staff or API
/// key id>`): their stored answers hold the contacts, erased with them.
pub const ORDER_SCOPE_PREFIX: &str = "consent-order:";

/// The step of the confirmation message (its `message_id`).
pub const CONFIRMATION_SENT: &str = "confirmation_sent";
/// The step recording the erasure of the contacts.
pub const CONTACTS_ERASED: &str = "contacts_erased";
/// The step of a link that died while the flow was under way.
pub const EXPIRED: &str = "expired";
/// The step of an accepted card (detail: `brand last4`).
pub const BANK_STARTED: &str = "bank_started";

/// How many card steps were accepted for the consent (the bank attempts).
pub fn bank_attempts(conn: &mut DbConnection, consent_id: &str) -> Result<i64, StoreError> {
    Ok(consent_steps::table
        .filter(consent_steps::consent_id.eq(consent_id))
        .filter(consent_steps::kind.eq(BANK_STARTED))
        .count()
        .get_result(conn)?)
}

/// What an erased recipient reads.
pub const ERASED: &str = "[erased]";

/// A link sent for a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub consent_id: String,
    pub org_id: String,
    pub token_hash: String,
    pub email: Option<String>,
    pub email_masked: String,
    pub expires_at: DateTime<Utc>,
    pub dead_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = consent_invitations)]
struct InvitationRow {
    id: String,
    consent_id: String,
    org_id: String,
    token_hash: String,
    email: Option<String>,
    email_masked: String,
    expires_at: NaiveDateTime,
    dead_at: Option<NaiveDateTime>,
    opened_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Self {
        Invitation {
            id: r.id,
            consent_id: r.consent_id,
            org_id: r.org_id,
            token_hash: r.token_hash,
            email: r.email,
            email_masked: r.email_masked,
            expires_at: from_db_time(r.expires_at),
            dead_at: opt_from_db_time(r.dead_at),
            opened_at: opt_from_db_time(r.opened_at),
            created_at: from_db_time(r.created_at),
        }
    }
}

/// Records a new link and kills the consent's previous ones at `now`.
pub fn insert_invitation(conn: &mut DbConnection, i: &Invitation) -> Result<(), StoreError> {
    diesel::update(
        consent_invitations::table
            .filter(consent_invitations::consent_id.eq(&i.consent_id))
            .filter(consent_invitations::dead_at.is_null()),
    )
    .set(consent_invitations::dead_at.eq(to_db_time(i.created_at)))
    .execute(conn)?;
    diesel::insert_into(consent_invitations::table)
        .values((
            consent_invitations::id.eq(&i.id),
            consent_invitations::consent_id.eq(&i.consent_id),
            consent_invitations::org_id.eq(&i.org_id),
            consent_invitations::token_hash.eq(&i.token_hash),
            consent_invitations::email.eq(&i.email),
            consent_invitations::email_masked.eq(&i.email_masked),
            consent_invitations::expires_at.eq(to_db_time(i.expires_at)),
            consent_invitations::created_at.eq(to_db_time(i.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Kills every live link of the consent (revocation).
pub fn kill_invitations(
    conn: &mut DbConnection,
    consent_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        consent_invitations::table
            .filter(consent_invitations::consent_id.eq(consent_id))
            .filter(consent_invitations::dead_at.is_null()),
    )
    .set(consent_invitations::dead_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(())
}

/// The link whose token hashes to `token_hash`, of any organization.
pub fn find_invitation(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<Invitation>, StoreError> {
    Ok(consent_invitations::table
        .filter(consent_invitations::token_hash.eq(token_hash))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?
        .map(Invitation::from))
}

/// Marks the link opened; true the first time.
pub fn open_invitation(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        consent_invitations::table
            .filter(consent_invitations::id.eq(id))
            .filter(consent_invitations::opened_at.is_null()),
    )
    .set(consent_invitations::opened_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// One step of a consent's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub consent_id: String,
    pub org_id: String,
    pub kind: String,
    pub detail: Option<String>,
    pub message_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl Step {
    pub fn new(consent: &Consent, kind: &str, detail: Option<String>, at: DateTime<Utc>) -> Step {
        Step {
            id: guichet_domain::ids::new_id("cst"),
            consent_id: consent.id.clone(),
            org_id: consent.org_id.clone(),
            kind: kind.to_owned(),
            detail,
            message_id: None,
            at,
        }
    }

    pub fn with_message(mut self, message_id: String) -> Step {
        self.message_id = Some(message_id);
        self
    }
}

/// Appends a step to the consent's timeline (call it with the consent
/// locked, so that ranks do not repeat).
pub fn add_step(conn: &mut DbConnection, s: &Step) -> Result<(), StoreError> {
    let before: i64 = consent_steps::table
        .filter(consent_steps::consent_id.eq(&s.consent_id))
        .count()
        .get_result(conn)?;
    let seq = i32::try_from(before).unwrap_or(i32::MAX - 1) + 1;
    diesel::insert_into(consent_steps::table)
        .values((
            consent_steps::seq.eq(seq),
            consent_steps::id.eq(&s.id),
            consent_steps::consent_id.eq(&s.consent_id),
            consent_steps::org_id.eq(&s.org_id),
            consent_steps::kind.eq(&s.kind),
            consent_steps::detail.eq(&s.detail),
            consent_steps::message_id.eq(&s.message_id),
            consent_steps::at.eq(to_db_time(s.at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The consent's timeline, oldest first.
pub fn steps(
    conn: &mut DbConnection,
    org_id: &str,
    consent_id: &str,
) -> Result<Vec<Step>, StoreError> {
    Ok(consent_steps::table
        .filter(consent_steps::org_id.eq(org_id))
        .filter(consent_steps::consent_id.eq(consent_id))
        .order((consent_steps::seq.asc(), consent_steps::id.asc()))
        .select((
            consent_steps::id,
            consent_steps::consent_id,
            consent_steps::org_id,
            consent_steps::kind,
            consent_steps::detail,
            consent_steps::message_id,
            consent_steps::at,
        ))
        .load::<(
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            NaiveDateTime,
        )>(conn)?
        .into_iter()
        .map(|r| Step {
            id: r.0,
            consent_id: r.1,
            org_id: r.2,
            kind: r.3,
            detail: r.4,
            message_id: r.5,
            at: from_db_time(r.6),
        })
        .collect())
}
