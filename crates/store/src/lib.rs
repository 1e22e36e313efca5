//! Guichet's storage: one facade over SQLite (embedded default) and
//! PostgreSQL (production), chosen from the database URL.
//!
//! Repositories are plain functions taking `&mut DbConnection`, so one
//! transaction can span several of them.

pub mod admin;
pub mod db;
pub mod error;
pub mod migrations;
pub mod repo;
pub mod schema;
pub mod snapshots;
pub mod tx;

pub use db::{Backend, DatabaseUrl, DbConnection, PoolOptions, PoolState, Store};
pub use error::{OptionalExt, StoreError};
pub use tx::{snapshot, transaction};
