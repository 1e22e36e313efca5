//! The client portal: what the business configures (`/v1/admin/portal/...`,
//! `/v1/admin/customers/{id}/portal-settings`), the public sign-in page's
//! data (`/v1/portal/{slug}`), and what the signed-in customer sees
//! (`/v1/me/portal`, `/v1/me/dashboard`, `/v1/me/notifications`).
//!
//! Registered before any scope of `routes::configure`, as full paths.

pub mod dashboard;
pub mod notifications;
pub mod public;
pub mod settings;
pub mod views;

use guichet_domain::portal::PortalAction;
use guichet_store::DbConnection;
use guichet_store::repo::portal;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, ProblemCode};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(settings::get_settings)
        .service(settings::put_settings)
        .service(settings::put_logo)
        .service(settings::delete_logo)
        .service(settings::put_customer_settings)
        .service(settings::create_preview_session)
        .service(public::get_portal)
        .service(public::get_logo)
        .service(dashboard::my_portal)
        .service(dashboard::my_dashboard)
        .service(notifications::list)
        .service(notifications::read_all)
        .service(notifications::read_one);
}

/// The documented refusal of a customer route behind a portal action.
pub const ACTION_DISABLED: &str = "Not a customer token (`forbidden`), or the business has turned this action off for the customer (`portal_action_disabled`).";

/// Answers 403 `portal_action_disabled` when `action` is off for the
/// customer: the organization's setting with the customer's override on
/// top, read on `conn` at each request, so that a change applies at once
/// to every open session. Every customer route of an action calls it
/// first.
pub fn require_action(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    action: PortalAction,
) -> Result<(), ApiError> {
    if portal::action_enabled(conn, &principal.org_id, &principal.customer_id, action)? {
        Ok(())
    } else {
        Err(action_disabled(action))
    }
}

/// The 403 `portal_action_disabled` problem for `action`.
pub fn action_disabled(action: PortalAction) -> ApiError {
    ApiError::new(ProblemCode::PortalActionDisabled).detail(
        format!(
            "L'action « {} » n'est pas proposée dans votre espace.",
            action.default_label(guichet_domain::Locale::Fr)
        ),
        format!(
            "The action \"{}\" is not offered in your portal.",
            action.default_label(guichet_domain::Locale::En)
        ),
    )
}
