//! `/v1/admin/orders` and `/v1/admin/settings/...`: orders with their
//! schedule, cancellations, payment settings and contact channels.

pub mod order;
pub mod settings;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers this module's operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/v1/admin/orders")
            .service(order::create)
            .service(order::list)
            .service(order::get_one)
            .service(order::cancel),
    )
    .service(
        scope("/v1/admin/settings")
            .service(settings::get_payments)
            .service(settings::put_payments)
            .service(settings::get_contact_channels)
            .service(settings::put_contact_channels),
    );
}
