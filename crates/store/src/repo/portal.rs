//! The portal's tables: `portal_settings` (actions, branding, public
//! slug, test customer), `portal_logos` and `portal_customer_overrides`.
//! Every query is scoped to one organization.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guichet_domain::autopay::AutopaySettings;
use guichet_domain::portal::{ActionSetting, PortalAction, PortalActions};

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::{organizations, portal_customer_overrides, portal_logos, portal_settings};

/// An organization's portal settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    pub org_id: String,
    pub slug: String,
    pub actions: PortalActions,
    pub display_name: Option<String>,
    pub accent_color: Option<String>,
    pub contact_email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub website: Option<String>,
    pub test_customer_id: Option<String>,
    /// The autopay rules customers work under.
    pub autopay: AutopaySettings,
    /// Who receives the autopay e-mails (else `contact_email`, else the
    /// organization's admins).
    pub billing_contact_email: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl PortalSettings {
    /// The settings of an organization that has configured nothing: every
    /// action on, its own slug.
    pub fn defaults(org_id: &str, org_slug: &str, now: DateTime<Utc>) -> Self {
        PortalSettings {
            org_id: org_id.to_owned(),
            slug: org_slug.to_owned(),
            actions: PortalActions::default(),
            display_name: None,
            accent_color: None,
            contact_email: None,
            phone: None,
            address: None,
            website: None,
            test_customer_id: None,
            autopay: AutopaySettings::default(),
            billing_contact_email: None,
            updated_at: now,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = portal_settings)]
struct Row {
    org_id: String,
    slug: String,
    actions: String,
    display_name: Option<String>,
    accent_color: Option<String>,
    contact_email: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    website: Option<String>,
    test_customer_id: Option<String>,
    updated_at: NaiveDateTime,
    autopay_customers_can_change: bool,
    autopay_auto_enable_on_new_method: bool,
    autopay_checkbox_default: bool,
    billing_contact_email: Option<String>,
}

/// Reads stored actions; what does not parse gives the defaults.
fn actions_from_json(json: &str) -> PortalActions {
    serde_json::from_str::<Vec<ActionSetting>>(json)
        .ok()
        .and_then(|l| PortalActions::new(l).ok())
        .unwrap_or_default()
}

fn actions_to_json(actions: &PortalActions) -> Result<String, StoreError> {
    serde_json::to_string(actions.list()).map_err(|e| StoreError::Database(e.to_string()))
}

impl From<Row> for PortalSettings {
    fn from(r: Row) -> Self {
        PortalSettings {
            org_id: r.org_id,
            slug: r.slug,
            actions: actions_from_json(&r.actions),
            display_name: r.display_name,
            accent_color: r.accent_color,
            contact_email: r.contact_email,
            phone: r.phone,
            address: r.address,
            website: r.website,
            test_customer_id: r.test_customer_id,
            autopay: AutopaySettings {
                customers_can_change: r.autopay_customers_can_change,
                auto_enable_on_new_method: r.autopay_auto_enable_on_new_method,
                checkbox_default: r.autopay_checkbox_default,
            },
            billing_contact_email: r.billing_contact_email,
            updated_at: from_db_time(r.updated_at),
        }
    }
}

/// The organization's stored settings, if it has configured its portal.
pub fn find(conn: &mut DbConnection, org_id: &str) -> Result<Option<PortalSettings>, StoreError> {
    Ok(portal_settings::table
        .find(org_id)
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(PortalSettings::from))
}

/// The organization's settings: stored, or the defaults.
pub fn get(
    conn: &mut DbConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<PortalSettings, StoreError> {
    if let Some(s) = find(conn, org_id)? {
        return Ok(s);
    }
    let slug: String = organizations::table
        .find(org_id)
        .select(organizations::slug)
        .first(conn)?;
    Ok(PortalSettings::defaults(org_id, &slug, now))
}

/// Writes the organization's settings (insert or replace). A slug already
/// taken by another portal is a `Conflict`.
pub fn save(conn: &mut DbConnection, s: &PortalSettings) -> Result<(), StoreError> {
    let actions = actions_to_json(&s.actions)?;
    let values = (
        portal_settings::slug.eq(&s.slug),
        portal_settings::actions.eq(&actions),
        portal_settings::display_name.eq(&s.display_name),
        portal_settings::accent_color.eq(&s.accent_color),
        portal_settings::contact_email.eq(&s.contact_email),
        portal_settings::phone.eq(&s.phone),
        portal_settings::address.eq(&s.address),
        portal_settings::website.eq(&s.website),
        portal_settings::test_customer_id.eq(&s.test_customer_id),
        portal_settings::updated_at.eq(to_db_time(s.updated_at)),
        portal_settings::autopay_customers_can_change.eq(s.autopay.customers_can_change),
        portal_settings::autopay_auto_enable_on_new_method.eq(s.autopay.auto_enable_on_new_method),
        portal_settings::autopay_checkbox_default.eq(s.autopay.checkbox_default),
        portal_settings::billing_contact_email.eq(&s.billing_contact_email),
    );
    let n = diesel::update(portal_settings::table.find(&s.org_id))
        .set(values)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(portal_settings::table)
            .values((portal_settings::org_id.eq(&s.org_id), values))
            .execute(conn)?;
    }
    Ok(())
}

/// Whether `slug` names the portal of an organization other than
/// `org_id`: another portal's slug, or the slug of an organization whose
/// portal still goes by it.
pub fn slug_taken(conn: &mut DbConnection, org_id: &str, slug: &str) -> Result<bool, StoreError> {
    Ok(find_org_by_slug(conn, slug)?.is_some_and(|other| other != org_id))
}

/// The organization whose portal answers at `slug`: a configured portal's
/// slug, else the slug of an organization that has not configured one.
pub fn find_org_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Option<String>, StoreError> {
    if let Some(org) = portal_settings::table
        .filter(portal_settings::slug.eq(slug))
        .select(portal_settings::org_id)
        .first::<String>(conn)
        .optional()?
    {
        return Ok(Some(org));
    }
    Ok(organizations::table
        .filter(organizations::slug.eq(slug))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            portal_settings::table.filter(portal_settings::org_id.eq(organizations::id)),
        )))
        .select(organizations::id)
        .first::<String>(conn)
        .optional()?)
}

/// The organization's autopay settings now (the defaults when its portal
/// is not configured), read at each request so that a change applies to
/// every open session at once.
pub fn autopay_settings(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<AutopaySettings, StoreError> {
    let row: Option<(bool, bool, bool)> = portal_settings::table
        .find(org_id)
        .select((
            portal_settings::autopay_customers_can_change,
            portal_settings::autopay_auto_enable_on_new_method,
            portal_settings::autopay_checkbox_default,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(AutopaySettings::default, |(c, a, b)| AutopaySettings {
            customers_can_change: c,
            auto_enable_on_new_method: a,
            checkbox_default: b,
        }),
    )
}

/// The customer's overrides, in no particular order. Scoped to the
/// organization.
pub fn overrides(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<(PortalAction, bool)>, StoreError> {
    let rows: Vec<(String, bool)> = portal_customer_overrides::table
        .filter(portal_customer_overrides::org_id.eq(org_id))
        .filter(portal_customer_overrides::customer_id.eq(customer_id))
        .select((
            portal_customer_overrides::action,
            portal_customer_overrides::enabled,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, on)| PortalAction::parse(&a).map(|a| (a, on)))
        .collect())
}

/// Sets (`Some`) or removes (`None`) the customer's override of each
/// listed action; actions not listed keep theirs.
pub fn set_overrides(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    changes: &[(PortalAction, Option<bool>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (action, on) in changes {
        let target = portal_customer_overrides::table
            .filter(portal_customer_overrides::org_id.eq(org_id))
            .filter(portal_customer_overrides::customer_id.eq(customer_id))
            .filter(portal_customer_overrides::action.eq(action.as_str()));
        match on {
            None => {
                diesel::delete(target).execute(conn)?;
            }
            Some(on) => {
                let n = diesel::update(target)
                    .set((
                        portal_customer_overrides::enabled.eq(on),
                        portal_customer_overrides::updated_at.eq(to_db_time(now)),
                    ))
                    .execute(conn)?;
                if n == 0 {
                    diesel::insert_into(portal_customer_overrides::table)
                        .values((
                            portal_customer_overrides::org_id.eq(org_id),
                            portal_customer_overrides::customer_id.eq(customer_id),
                            portal_customer_overrides::action.eq(action.as_str()),
                            portal_customer_overrides::enabled.eq(on),
                            portal_customer_overrides::updated_at.eq(to_db_time(now)),
                        ))
                        .execute(conn)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether `action` is on for this customer now: the organization's
/// setting with the customer's override on top, read from the database
/// (so a change applies to every open session at once).
pub fn action_enabled(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
    action: PortalAction,
) -> Result<bool, StoreError> {
    let over: Option<bool> = portal_customer_overrides::table
        .filter(portal_customer_overrides::org_id.eq(org_id))
        .filter(portal_customer_overrides::customer_id.eq(customer_id))
        .filter(portal_customer_overrides::action.eq(action.as_str()))
        .select(portal_customer_overrides::enabled)
        .first(conn)
        .optional()?;
    if let Some(on) = over {
        return Ok(on);
    }
    let stored: Option<String> = portal_settings::table
        .find(org_id)
        .select(portal_settings::actions)
        .first(conn)
        .optional()?;
    Ok(match stored {
        Some(json) => actions_from_json(&json).is_enabled(action, &[]),
        None => PortalActions::default().is_enabled(action, &[]),
    })
}

/// The customer's effective actions, in the business's order.
pub fn effective_actions(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<Vec<ActionSetting>, StoreError> {
    let actions: PortalActions = portal_settings::table
        .find(org_id)
        .select(portal_settings::actions)
        .first::<String>(conn)
        .optional()?
        .map(|j| actions_from_json(&j))
        .unwrap_or_default();
    let over = overrides(conn, org_id, customer_id)?;
    Ok(actions.effective(&over))
}

/// Whether `customer_id` is its organization's test customer.
pub fn is_test_customer(
    conn: &mut DbConnection,
    org_id: &str,
    customer_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 = portal_settings::table
        .filter(portal_settings::org_id.eq(org_id))
        .filter(portal_settings::test_customer_id.eq(customer_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A portal logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    pub content_type: String,
    pub content: Vec<u8>,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub updated_at: DateTime<Utc>,
}

/// Stores (or replaces) the organization's logo.
pub fn put_logo(conn: &mut DbConnection, org_id: &str, logo: &Logo) -> Result<(), StoreError> {
    diesel::delete(portal_logos::table.find(org_id)).execute(conn)?;
    diesel::insert_into(portal_logos::table)
        .values((
            portal_logos::org_id.eq(org_id),
            portal_logos::content_type.eq(&logo.content_type),
            portal_logos::content.eq(&logo.content),
            portal_logos::sha256.eq(&logo.sha256),
            portal_logos::updated_at.eq(to_db_time(logo.updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the organization's logo; whether there was one.
pub fn delete_logo(conn: &mut DbConnection, org_id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(portal_logos::table.find(org_id)).execute(conn)? > 0)
}

/// The organization's logo, if any.
pub fn logo(conn: &mut DbConnection, org_id: &str) -> Result<Option<Logo>, StoreError> {
    let row: Option<(String, Vec<u8>, String, NaiveDateTime)> = portal_logos::table
        .find(org_id)
        .select((
            portal_logos::content_type,
            portal_logos::content,
            portal_logos::sha256,
            portal_logos::updated_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(content_type, content, sha256, at)| Logo {
        content_type,
        content,
        sha256,
        updated_at: from_db_time(at),
    }))
}

/// The hash of the organization's logo, if it has one (without reading
/// the image).
pub fn logo_sha256(conn: &mut DbConnection, org_id: &str) -> Result<Option<String>, StoreError> {
    Ok(portal_logos::table
        .find(org_id)
        .select(portal_logos::sha256)
        .first(conn)
        .optional()?)
}
