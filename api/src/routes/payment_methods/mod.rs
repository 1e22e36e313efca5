//! Saved payment methods and autopay (docs/PAYMENTS.md), while the
//! portal's `payments` action is on for the customer:
//!
//! - `customer.rs`: `/v1/me/payment-methods...`;
//! - `autopay.rs`: `/v1/me/autopay`;
//! - `notices.rs`: what the business is told (e-mail and events);
//! - `staff.rs`: `/v1/admin/customers/{id}/payment-methods` and `.../autopay`.
//!
//! The business's autopay settings are the `autopay` section of the portal
//! settings (`routes::portal::settings`).

pub mod autopay;
pub mod customer;
pub mod notices;
pub mod staff;

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::portal::PortalAction;
use guichet_store::DbConnection;
use guichet_store::repo::autopay::{self as autopay_repo, CustomerAutopay};
use guichet_store::repo::payment_methods::{MethodDetails, PaymentMethod};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, ProblemCode};

/// Registers the routes (fixed paths before `{id}`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(staff::list)
        .service(staff::autopay)
        .service(
            scope("/v1/me/payment-methods")
                .service(customer::list)
                .service(customer::create)
                .service(customer::get_one)
                .service(customer::remove)
                .service(customer::make_default),
        )
        .service(
            scope("/v1/me/autopay")
                .service(autopay::get_mine)
                .service(autopay::put_mine),
        );
}

/// 403 `portal_action_disabled` while payments are off for the customer.
pub fn require_payments(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
) -> Result<(), ApiError> {
    crate::routes::portal_hooks::require_action(conn, principal, PortalAction::Payments)
}

/// 403 `autopay_change_not_allowed`.
pub fn change_not_allowed() -> ApiError {
    ApiError::new(ProblemCode::AutopayChangeNotAllowed).detail(
        "L'entreprise ne permet pas de modifier le paiement automatique depuis l'espace client.",
        "The business does not let you change autopay in the portal.",
    )
}

/// 422 `card_expired`.
pub fn card_expired() -> ApiError {
    ApiError::new(ProblemCode::CardExpired).detail("La carte est expirée.", "The card has expired.")
}

/// A saved card as shown: never the number.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SavedCard {
    /// `visa`, `mastercard`, `amex` or `other`.
    #[schema(value_type = crate::routes::enums::CardBrand, example = "visa")]
    pub brand: &'static str,
    #[schema(example = "4242")]
    pub last4: String,
    #[schema(example = 12, minimum = 1, maximum = 12)]
    pub exp_month: u8,
    #[schema(example = 2030)]
    pub exp_year: u16,
    /// Past its expiry month today: it cannot be used for autopay.
    pub expired: bool,
}

/// A saved SEPA direct-debit method: a signed recurring mandate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SavedSepaDebit {
    /// The country, check digits and last four characters only.
    #[schema(example = "FR76 **** **** **** **** ***0 189")]
    pub iban_masked: String,
    /// The unique mandate reference (RUM).
    #[schema(example = "GCH20261122ABCDEFGHJKMNPQRS")]
    pub umr: String,
    #[schema(example = "mdt_3k9x0d2m7q8r4t6v1w5y")]
    pub mandate_id: String,
}

/// A saved payment method.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentMethodView {
    #[schema(example = "pm_3k9x0d2m7q8r4t6v1w5y")]
    pub id: String,
    /// `card` or `sepa_debit`: says which of `card` and `sepa_debit` is set.
    #[serde(rename = "type")]
    #[schema(value_type = crate::routes::enums::PaymentMethodType, example = "card")]
    pub kind: &'static str,
    pub card: Option<SavedCard>,
    pub sepa_debit: Option<SavedSepaDebit>,
    /// The customer's default method (exactly one while they have any).
    pub default: bool,
    /// The method autopay charges (only while autopay is on).
    pub autopay: bool,
    pub created_at: DateTime<Utc>,
}

impl PaymentMethodView {
    /// `m` as shown on `today`; `autopay` when autopay is on with it.
    pub fn new(m: &PaymentMethod, autopay: bool, today: NaiveDate) -> Self {
        let (card, sepa_debit) = match &m.details {
            MethodDetails::Card { view, .. } => (
                Some(SavedCard {
                    brand: view.brand.as_str(),
                    last4: view.last4.clone(),
                    exp_month: view.exp_month,
                    exp_year: view.exp_year,
                    expired: view.is_expired(today),
                }),
                None,
            ),
            MethodDetails::SepaDebit {
                mandate_id,
                iban_masked,
                umr,
            } => (
                None,
                Some(SavedSepaDebit {
                    iban_masked: iban_masked.clone(),
                    umr: umr.clone(),
                    mandate_id: mandate_id.clone(),
                }),
            ),
        };
        PaymentMethodView {
            id: m.id.clone(),
            kind: m.details.kind().as_str(),
            card,
            sepa_debit,
            default: m.is_default,
            autopay,
            created_at: m.created_at,
        }
    }
}

/// The method autopay uses now, if autopay is on.
pub fn autopay_method_id(a: Option<&CustomerAutopay>) -> Option<&str> {
    a.filter(|a| a.enabled)
        .and_then(|a| a.payment_method_id.as_deref())
}

/// The customer's autopay as stored (off when never set).
pub fn autopay_of(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
) -> Result<Option<CustomerAutopay>, ApiError> {
    Ok(autopay_repo::get(
        conn,
        &principal.org_id,
        &principal.customer_id,
    )?)
}

/// The snapshot of `payment_method.*` events: the method and its customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodEventData {
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    #[serde(flatten)]
    pub method: PaymentMethodView,
}

/// What caused a `customer.autopay_updated` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutopaySource {
    /// A method saved (with the box checked or not).
    MethodSaved,
    /// `PUT /v1/me/autopay`.
    AutopayChanged,
    /// The autopay method removed for a replacement.
    MethodRemoved,
}

impl AutopaySource {
    pub fn as_str(self) -> &'static str {
        match self {
            AutopaySource::MethodSaved => "method_saved",
            AutopaySource::AutopayChanged => "autopay_changed",
            AutopaySource::MethodRemoved => "method_removed",
        }
    }
}

/// The snapshot of `customer.autopay_updated` events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutopayEventData {
    #[schema(example = "cus_3k9x0d2m7q8r4t6v1w5y")]
    pub customer_id: String,
    /// Autopay is on after the change.
    pub enabled: bool,
    /// The method autopay uses (masked), or when it is off the method the
    /// change was about.
    pub payment_method: Option<PaymentMethodView>,
    /// `method_saved`, `autopay_changed` or `method_removed`.
    #[schema(value_type = crate::routes::enums::AutopaySourceName, example = "method_saved")]
    pub source: &'static str,
}
