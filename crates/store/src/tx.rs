//! Transactions across repositories, with the caller's own error type.

use diesel::Connection;
use diesel::connection::SimpleConnection;

use crate::db::DbConnection;
use crate::error::StoreError;

enum TxError<E> {
    Db(diesel::result::Error),
    Inner(E),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// Runs `f` in one transaction: committed when it returns `Ok`, rolled back
/// otherwise. On SQLite the transaction is `BEGIN IMMEDIATE`, so a writer
/// waits for the lock (`busy_timeout`) up front instead of failing when a
/// read turns into a write. Do not nest.
pub fn transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    if matches!(conn, DbConnection::Sqlite(_)) {
        conn.batch_execute("BEGIN IMMEDIATE")
            .map_err(|e| E::from(StoreError::from(e)))?;
        match f(conn) {
            Ok(value) => match conn.batch_execute("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(E::from(StoreError::from(e)))
                }
            },
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    } else {
        conn.transaction::<T, TxError<E>, _>(|conn| f(conn).map_err(TxError::Inner))
            .map_err(|e| match e {
                TxError::Db(d) => E::from(StoreError::from(d)),
                TxError::Inner(e) => e,
            })
    }
}

/// Runs the reads of `f` on one snapshot of the database, so that an
/// object and its related rows (a consent and its timeline) come from the
/// same moment: a deferred read transaction on SQLite (its first read
/// fixes the snapshot), `REPEATABLE READ READ ONLY` on PostgreSQL. `f`
/// must not write. Do not nest.
pub fn snapshot<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    let begin = match conn {
        DbConnection::Sqlite(_) => "BEGIN DEFERRED",
        _ => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    conn.batch_execute(begin)
        .map_err(|e| E::from(StoreError::from(e)))?;
    let result = f(conn);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match conn.batch_execute(end) {
        Ok(()) => result,
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK");
            result.and(Err(E::from(StoreError::from(e))))
        }
    }
}
