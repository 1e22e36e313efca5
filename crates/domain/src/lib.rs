//! Guichet's business rules, free of any web framework or database.
//!
//! Everything here is plain data and pure functions so that the rules can be
//! tested with fixed dates and without I/O. The HTTP crate (`guichet-api`) and
//! the storage crate (`guichet-store`) depend on this crate, never the reverse.

pub mod clock;
pub mod ids;
pub mod money;
pub mod organization;

pub use clock::{Clock, FixedClock, SystemClock};
pub use money::{Currency, Money, MoneyError};
pub use organization::{Locale, Organization, Slug};
