//! Guichet's business rules, free of any web framework or database.
//!
//! Everything here is plain data and pure functions so that the rules can be
//! tested with fixed dates and without I/O. The HTTP crate (`guichet-api`) and
//! the storage crate (`guichet-store`) depend on this crate, never the reverse.

pub mod challenge;
pub mod clock;
pub mod contact;
pub mod identity;
pub mod ids;
pub mod money;
pub mod organization;
pub mod password;
pub mod secret;

pub use clock::{Clock, FixedClock, SystemClock};
pub use contact::{ContactError, Email, Msisdn};
pub use money::{Currency, Money, MoneyError};
pub use organization::{Locale, Organization, Slug};
pub mod autopay;
pub mod bookings;
pub mod card;
pub mod consent;
pub mod contact_channels;
pub mod documents;
pub mod events;
pub mod free_text;
pub mod gateway;
pub mod invoice;
pub mod pdf;
pub mod portal;
pub mod schedule;
pub mod sepa;
pub mod webhooks;
