//! `/v1/admin/orders` and `/v1/admin/settings/...`: orders with their
//! schedule, cancellations, payment settings and contact channels.

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers this module's operations.
pub fn configure(_cfg: &mut ServiceConfig) {}
