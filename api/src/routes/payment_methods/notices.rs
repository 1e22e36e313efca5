//! What the business is told when a customer saves a method or changes
//! their autopay: an e-mail to the billing contact, in the organization's
//! language, and the events — all in the caller's transaction.
//!
//! The billing contact is the `billing_contact_email` of the portal's
//! autopay settings; without one, the branding's `contact_email`; without
//! either, every enabled admin of the organization (who can act on it).
//! In a preview session only the staff member previewing is e-mailed.

use chrono::{DateTime, NaiveDate, Utc};
use guichet_domain::events::EventType;
use guichet_domain::identity::StaffRole;
use guichet_store::DbConnection;
use guichet_store::StoreError;
use guichet_store::repo::payment_methods::{MethodDetails, PaymentMethod};
use guichet_store::repo::{customers, organizations, portal, staff};

use super::{AutopayEventData, AutopaySource, PaymentMethodEventData, PaymentMethodView};
use crate::auth::CustomerPrincipal;
use crate::notify::templates::{AutopayChange, NamedMethod};
use crate::notify::{self, Channel, Template};
use crate::problem::ApiError;

/// Who receives the autopay e-mails of the principal's organization.
pub fn billing_recipients(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
) -> Result<Vec<String>, StoreError> {
    if let Some(staff) = crate::routes::portal_hooks::previewer_email(conn, principal)? {
        return Ok(vec![staff]);
    }
    let settings = portal::find(conn, &principal.org_id)?;
    let nonblank = |e: &Option<String>| e.clone().filter(|e| !e.trim().is_empty());
    if let Some(s) = &settings {
        if let Some(to) = nonblank(&s.billing_contact_email) {
            return Ok(vec![to]);
        }
        if let Some(to) = nonblank(&s.contact_email) {
            return Ok(vec![to]);
        }
    }
    Ok(staff::list(conn, &principal.org_id)?
        .into_iter()
        .filter(|s| s.role == StaffRole::Admin && s.disabled_at.is_none())
        .map(|s| s.email)
        .collect())
}

fn named(m: &PaymentMethod) -> NamedMethod {
    match &m.details {
        MethodDetails::Card { view, .. } => NamedMethod {
            card: true,
            label: guichet_domain::autopay::card_label(view),
        },
        MethodDetails::SepaDebit { iban_masked, .. } => NamedMethod {
            card: false,
            label: iban_masked.clone(),
        },
    }
}

/// What changed, for [`autopay_changed`].
pub struct Change<'a> {
    pub kind: AutopayChange,
    pub source: AutopaySource,
    /// The method the change is about.
    pub method: &'a PaymentMethod,
    /// The method autopay uses after the change, if it is on.
    pub autopay_now: Option<&'a PaymentMethod>,
}

/// Tells the business of an autopay change (or of a method saved): the
/// e-mail to the billing contact and `customer.autopay_updated`.
pub fn autopay_changed(
    conn: &mut DbConnection,
    principal: &CustomerPrincipal,
    change: &Change<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let org = organizations::get(conn, &principal.org_id)?;
    let customer = customers::get(conn, &principal.org_id, &principal.customer_id)?;
    let template = Template::AutopayNotice {
        org_name: org.name.clone(),
        customer_name: customer.name.clone(),
        customer_email: customer.email.clone(),
        change: change.kind,
        method: named(change.method),
        autopay_now: change.autopay_now.map(named),
    };
    for to in billing_recipients(conn, principal)? {
        notify::queue(
            conn,
            Some(&org.id),
            Channel::Email,
            &to,
            &template,
            org.locale,
            now,
        )?;
    }
    let shown = change.autopay_now.unwrap_or(change.method);
    crate::routes::events::by_customer(
        conn,
        EventType::CustomerAutopayUpdated,
        &principal.org_id,
        &principal.customer_id,
        &principal.customer_id,
        &AutopayEventData {
            customer_id: principal.customer_id.clone(),
            enabled: change.autopay_now.is_some(),
            payment_method: Some(PaymentMethodView::new(
                shown,
                change.autopay_now.is_some(),
                today,
            )),
            source: change.source.as_str(),
        },
        now,
    )?;
    Ok(())
}

/// Records `payment_method.saved` or `payment_method.removed`.
pub fn method_event(
    conn: &mut DbConnection,
    kind: EventType,
    m: &PaymentMethod,
    autopay: bool,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    crate::routes::events::by_customer(
        conn,
        kind,
        &m.org_id,
        &m.customer_id,
        &m.id,
        &PaymentMethodEventData {
            customer_id: m.customer_id.clone(),
            method: PaymentMethodView::new(m, autopay, today),
        },
        now,
    )
}
