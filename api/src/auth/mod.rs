//! Who is calling: access tokens, sessions, API keys, and the extractors
//! that put the caller in a handler's signature.

pub mod flows;
pub mod principal;
pub mod ratelimit;
pub mod slots;
pub mod tokens;

pub use principal::{AdminPrincipal, CustomerPrincipal, CustomerToken, StaffActor, StaffPrincipal};
