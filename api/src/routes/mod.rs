//! Every route, registered through utoipa-actix-web so that the router and
//! the OpenAPI spec come from the same code.

pub mod admin;
pub mod auth;
pub mod bookings;
pub mod consents;
pub mod documents;
pub mod enums;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod invoices;
pub mod me;
pub mod messages;
pub mod payment_methods;
pub mod portal;
pub mod portal_hooks;
pub mod sandbox;
pub mod schedules;
pub mod security;
pub mod sepa;
pub mod views;

use actix_web::middleware::from_fn;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every operation.
pub fn configure(cfg: &mut ServiceConfig) {
    // A path under a registered scope never falls through to a later one:
    // the deeper /v1/me/... routes go before scope("/v1/me").
    cfg.service(admin::webhooks::deliveries::redeliver)
        .configure(portal::configure)
        .configure(sepa::configure)
        .configure(consents::configure)
        .configure(bookings::configure)
        .configure(invoices::configure)
        .configure(payment_methods::configure)
        .configure(schedules::configure)
        .configure(sandbox::configure)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            scope("/v1/auth")
                .wrap(from_fn(crate::auth::ratelimit::limit_auth_requests))
                .service(auth::get_challenge)
                .service(auth::login)
                .service(auth::register)
                .service(auth::register_verify)
                .service(auth::otp_start)
                .service(auth::otp_verify)
                .service(auth::activate)
                .service(auth::password_forgot)
                .service(auth::password_reset)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::staff_login)
                .service(auth::staff_setup),
        )
        .service(
            scope("/v1/me/documents")
                .service(documents::list_mine)
                .service(documents::download_mine),
        )
        .service(scope("/v1/me/attachments").service(messages::upload_attachment))
        .service(
            scope("/v1/me/conversations")
                .service(messages::create)
                .service(messages::list_mine)
                .service(messages::get_mine)
                .service(messages::post_mine)
                .service(messages::read_mine),
        )
        .service(
            scope("/v1/admin/conversations")
                .service(messages::list)
                .service(messages::get_one)
                .service(messages::answer)
                .service(messages::close)
                .service(messages::reopen)
                .service(messages::assign)
                .service(messages::read),
        )
        .service(
            scope("/v1/admin/documents")
                .service(documents::get_one)
                .service(documents::withdraw)
                .service(documents::download_staff),
        )
        .service(
            scope("/v1/me")
                .service(me::me)
                .service(me::change_password)
                .service(me::list_sessions)
                .service(me::end_session)
                .service(security::list_contact_changes)
                .service(security::confirm_contact_change)
                .service(security::list_security_events),
        )
        .service(
            scope("/v1/admin/customers")
                .service(documents::share)
                .service(documents::list_for_customer)
                .service(admin::customers::create)
                .service(admin::customers::list)
                .service(admin::customers::get_one)
                .service(admin::customers::update)
                .service(admin::customers::block)
                .service(admin::customers::unblock)
                .service(admin::customers::create_activation_code),
        )
        .service(
            scope("/v1/admin/staff")
                .service(admin::staff::list)
                .service(admin::staff::create)
                .service(admin::staff::update),
        )
        .service(
            scope("/v1/admin/api-keys")
                .service(admin::api_keys::create)
                .service(admin::api_keys::list)
                .service(admin::api_keys::revoke),
        )
        .service(
            scope("/v1/admin/webhook-endpoints")
                .service(admin::webhooks::create)
                .service(admin::webhooks::list)
                .service(admin::webhooks::get_one)
                .service(admin::webhooks::update)
                .service(admin::webhooks::remove)
                .service(admin::webhooks::rotate_secret)
                .service(admin::webhooks::deliveries::list)
                .service(admin::webhooks::deliveries::get_one)
                .service(admin::webhooks::deliveries::test),
        )
        .service(
            scope("/v1/admin/organization")
                .service(admin::organization::get_settings)
                .service(admin::organization::update_settings),
        )
        .service(
            scope("/v1/admin/events")
                .service(events::admin::list)
                .service(events::admin::get_one),
        )
        .configure(admin::orders::configure);
}
