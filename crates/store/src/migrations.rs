//! Migrations, embedded in the binary, one set per backend with the same
//! numbering so both backends always have the same schema.

use diesel::migration::MigrationVersion;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::db::DbConnection;
use crate::error::StoreError;

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// A key for `pg_advisory_lock` so that several API nodes starting at once
/// apply the migrations one after the other.
const MIGRATION_LOCK_KEY: i64 = 0x6775_6963_6865_7401;

/// Applies every pending migration; returns the versions applied now.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    fn versions(applied: Vec<MigrationVersion<'_>>) -> Vec<String> {
        applied.into_iter().map(|v| v.to_string()).collect()
    }
    match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(versions)
            .map_err(|e| StoreError::Migration(e.to_string())),
        DbConnection::Postgresql(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            let result = c
                .transaction(|c| {
                    c.run_pending_migrations(POSTGRES)
                        .map(versions)
                        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
                })
                .map_err(|e| StoreError::Migration(e.to_string()));
            // The lock also ends with the connection; a failed unlock must
            // not hide the migrations' own outcome.
            if let Err(e) =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(c)
            {
                tracing::warn!(error = %e, "could not release the migration lock");
            }
            result
        }
    }
}

/// Every migration version this binary knows, and whether it is applied.
pub fn status(conn: &mut DbConnection) -> Result<Vec<(String, bool)>, StoreError> {
    let (known, applied) = match conn {
        DbConnection::Sqlite(c) => (
            known_versions(&SQLITE, c)?,
            c.applied_migrations()
                .map_err(|e| StoreError::Migration(e.to_string()))?
                .into_iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>(),
        ),
        DbConnection::Postgresql(c) => (
            known_versions(&POSTGRES, c)?,
            c.applied_migrations()
                .map_err(|e| StoreError::Migration(e.to_string()))?
                .into_iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>(),
        ),
    };
    Ok(known
        .into_iter()
        .map(|v| {
            let done = applied.contains(&v);
            (v, done)
        })
        .collect())
}

fn known_versions<DB: diesel::backend::Backend>(
    source: &EmbeddedMigrations,
    _conn: &mut impl Connection<Backend = DB>,
) -> Result<Vec<String>, StoreError>
where
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    use diesel::migration::MigrationSource;
    let migrations = MigrationSource::<DB>::migrations(source)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}
