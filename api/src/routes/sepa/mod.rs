//! SEPA direct debits (seed 003): the creditor's settings, customer
//! accounts, bank details, mandates and their collections.
//!
//! Every path here is registered with its full path, and this module is
//! configured before any scope of `routes::configure`: a path under a
//! registered scope (`/v1/me`, `/v1/admin/customers`, `/v1/admin/settings`)
//! never falls through to a later registration.

pub mod accounts;
pub mod admin_mandates;
pub mod bank_details;
pub mod collections;
pub mod creditor;
pub mod mandates;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the SEPA operations (each sub-module adds its own line).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(creditor::get_creditor)
        .service(creditor::put_creditor)
        .service(accounts::create)
        .service(accounts::list_for_customer)
        .service(accounts::get_one)
        .service(accounts::charge)
        .service(accounts::list_mine)
        .service(bank_details::bank_details)
        .service(collections::export)
        .service(collections::list)
        .service(collections::record_result)
        .service(mandates::create)
        .service(mandates::history)
        .service(mandates::get_one)
        .service(mandates::document)
        .service(mandates::send_code)
        .service(mandates::create_signature)
        .service(admin_mandates::list)
        .service(admin_mandates::get_one)
        .service(admin_mandates::revoke);
}
