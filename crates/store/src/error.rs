//! The storage layer's one error type.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong in the storage layer, in terms the HTTP layer can map.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The booking would overlap another pending or confirmed booking of
    /// the same provider (the `bookings_no_overlap` constraint).
    #[error("the slot is taken")]
    SlotTaken,
    /// No connection could be had: the database is down or unreachable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database URL or options are wrong.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error (a bug or a broken database).
    #[error("database error: {0}")]
    Database(String),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(_, info) if is_slot_taken(&*info) => StoreError::SlotTaken,
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
                info,
            ) => StoreError::Conflict(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

/// The name of the constraint that keeps a provider's bookings apart: the
/// exclusion constraint on PostgreSQL (SQLSTATE 23P01), and the message of
/// the triggers that stand for it on SQLite.
const BOOKINGS_NO_OVERLAP: &str = "bookings_no_overlap";

fn is_slot_taken(info: &dyn diesel::result::DatabaseErrorInformation) -> bool {
    info.constraint_name() == Some(BOOKINGS_NO_OVERLAP) || info.message() == BOOKINGS_NO_OVERLAP
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// `NotFound` as `None`, for lookups where absence is an answer.
pub trait OptionalExt<T> {
    fn optional(self) -> Result<Option<T>, StoreError>;
}

impl<T> OptionalExt<T> for Result<T, StoreError> {
    fn optional(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
