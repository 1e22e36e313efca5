//! Every route, registered through utoipa-actix-web so that the router and
//! the OpenAPI spec come from the same code.

pub mod health;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every operation.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics);
}
