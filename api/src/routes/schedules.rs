//! `/v1/me/schedules/...`, `/v1/me/contact-channels` and
//! `/v1/sandbox/card-tokens`: the customer's instalment schedules.

pub mod cards;
pub mod contact;
pub mod list;
pub mod regularization;
pub mod sandbox;

use actix_web::web;
use guichet_store::repo::schedules::{self, Order};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::CustomerPrincipal;
use crate::problem::ApiError;
use crate::state::AppState;

/// The documented authentication failures of customer routes.
pub const AUTH_FAILURES: &str = "Codes: `unauthenticated`, `invalid_token`.";
/// The documented role failure of customer routes.
pub const ROLE_FAILURE: &str = "Not a customer token. Codes: `forbidden`.";
/// The documented answer for an id that is not the customer's.
pub const NOT_FOUND: &str = "No such schedule of yours. Codes: `not_found`.";

/// Registers this module's operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/v1/me/schedules")
            .service(list::list)
            .service(list::get_one)
            .service(cards::change_card)
            .service(regularization::offers)
            .service(regularization::regularize),
    )
    .service(scope("/v1/me/contact-channels").service(contact::list))
    .service(scope("/v1/sandbox/card-tokens").service(sandbox::tokenize));
}

/// The customer's order `id` (404 when it is not theirs).
async fn load_order(
    state: &web::Data<AppState>,
    principal: &CustomerPrincipal,
    id: String,
) -> Result<Order, ApiError> {
    let store = state.store.clone();
    let org_id = principal.org_id.clone();
    let customer_id = principal.customer_id.clone();
    let order = web::block(move || {
        let mut conn = store.conn()?;
        schedules::get_for_customer(&mut conn, &org_id, &customer_id, &id)
    })
    .await??;
    Ok(order)
}
