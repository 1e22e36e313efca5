//! The `sessions` and `refresh_tokens` tables.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::identity::SubjectKind;

use super::{from_db_time, opt_from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{refresh_tokens, sessions};

/// A signed-in session: what an access token's `sid` points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub org_id: String,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    pub remember_me: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    /// Whether the session may still be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct Row {
    id: String,
    org_id: String,
    subject_kind: String,
    subject_id: String,
    remember_me: bool,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: NaiveDateTime,
    last_used_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
}

impl TryFrom<Row> for Session {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Session {
            subject_kind: SubjectKind::parse(&r.subject_kind).ok_or_else(|| {
                StoreError::Database(format!("unknown subject kind {:?}", r.subject_kind))
            })?,
            id: r.id,
            org_id: r.org_id,
            subject_id: r.subject_id,
            remember_me: r.remember_me,
            user_agent: r.user_agent,
            ip: r.ip,
            created_at: from_db_time(r.created_at),
            last_used_at: from_db_time(r.last_used_at),
            expires_at: from_db_time(r.expires_at),
            revoked_at: opt_from_db_time(r.revoked_at),
        })
    }
}

pub fn insert(conn: &mut DbConnection, s: &Session) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(&s.id),
            sessions::org_id.eq(&s.org_id),
            sessions::subject_kind.eq(s.subject_kind.as_str()),
            sessions::subject_id.eq(&s.subject_id),
            sessions::remember_me.eq(s.remember_me),
            sessions::user_agent.eq(&s.user_agent),
            sessions::ip.eq(&s.ip),
            sessions::created_at.eq(to_db_time(s.created_at)),
            sessions::last_used_at.eq(to_db_time(s.last_used_at)),
            sessions::expires_at.eq(to_db_time(s.expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session `id` (every authenticated request reads it; the primary key
/// gives one row at most, so no `LIMIT`).
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Session, StoreError> {
    sessions::table
        .find(id)
        .select(Row::as_select())
        .get_result(conn)?
        .try_into()
}

/// The subject's sessions still active at `now`, newest first.
pub fn list_active(
    conn: &mut DbConnection,
    kind: SubjectKind,
    subject_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    sessions::table
        .filter(sessions::subject_kind.eq(kind.as_str()))
        .filter(sessions::subject_id.eq(subject_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(to_db_time(now)))
        .order((sessions::created_at.desc(), sessions::id.asc()))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(Session::try_from)
        .collect()
}

/// Revokes one session; returns whether it was active.
pub fn revoke(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(n > 0)
}

/// Revokes every session of the subject, except `keep` if given.
pub fn revoke_all(
    conn: &mut DbConnection,
    kind: SubjectKind,
    subject_id: &str,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::subject_kind.eq(kind.as_str()))
        .filter(sessions::subject_id.eq(subject_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep.to_owned()));
    }
    Ok(query
        .set(sessions::revoked_at.eq(to_db_time(now)))
        .execute(conn)?)
}

/// Records use of the session.
pub fn touch(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(to_db_time(now)))
        .execute(conn)?;
    Ok(())
}

/// Stores a refresh token's hash for `session_id`.
pub fn insert_refresh(
    conn: &mut DbConnection,
    token_hash: &str,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// What presenting a refresh token finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Unknown token.
    Unknown,
    /// First use: the token is now spent.
    Fresh { session_id: String },
    /// Already used once: a replay, the session must be revoked.
    Replayed { session_id: String },
}

/// Spends a refresh token atomically: of two concurrent presentations, one
/// is `Fresh` and the other `Replayed`.
pub fn use_refresh(
    conn: &mut DbConnection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<RefreshUse, StoreError> {
    let session_id: Option<String> = refresh_tokens::table
        .find(token_hash)
        .select(refresh_tokens::session_id)
        .first(conn)
        .optional()?;
    let Some(session_id) = session_id else {
        return Ok(RefreshUse::Unknown);
    };
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(to_db_time(now)))
    .execute(conn)?;
    Ok(if n == 1 {
        RefreshUse::Fresh { session_id }
    } else {
        RefreshUse::Replayed { session_id }
    })
}

/// Whether the subject ever had a session (signed in at least once).
pub fn ever_opened(
    conn: &mut DbConnection,
    kind: SubjectKind,
    subject_id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::subject_kind.eq(kind.as_str()))
            .filter(sessions::subject_id.eq(subject_id)),
    ))
    .get_result(conn)?)
}
