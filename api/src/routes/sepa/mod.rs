//! SEPA direct debits (seed 003): the creditor's settings, customer
//! accounts, bank details, mandates and their collections.
//!
//! Every path here is registered with its full path, and this module is
//! configured before any scope of `routes::configure`: a path under a
//! registered scope (`/v1/me`, `/v1/admin/customers`, `/v1/admin/settings`)
//! never falls through to a later registration.

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the SEPA operations (each sub-module adds its own line).
pub fn configure(cfg: &mut ServiceConfig) {
    let _ = cfg;
}
