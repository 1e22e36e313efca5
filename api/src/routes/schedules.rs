//! `/v1/me/schedules/...`, `/v1/me/contact-channels` and
//! `/v1/sandbox/card-tokens`: the customer's instalment schedules.

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers this module's operations.
pub fn configure(_cfg: &mut ServiceConfig) {}
