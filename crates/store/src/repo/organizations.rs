//! The `organizations` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use guichet_domain::identity::LoginMethods;
use guichet_domain::{Locale, Organization, Slug};

use super::{from_db_time, to_db_time};
use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::organizations;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
struct OrganizationRow {
    id: String,
    slug: String,
    name: String,
    locale: String,
    created_at: NaiveDateTime,
    login_methods: String,
    support_email: Option<String>,
    support_phone: Option<String>,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = StoreError;
    fn try_from(row: OrganizationRow) -> Result<Self, Self::Error> {
        Ok(Organization {
            slug: Slug::parse(&row.slug).map_err(|_| {
                StoreError::Database(format!("stored slug {:?} is invalid", row.slug))
            })?,
            locale: Locale::parse(&row.locale).unwrap_or_default(),
            login_methods: LoginMethods::parse(&row.login_methods).unwrap_or_default(),
            support_email: row.support_email,
            support_phone: row.support_phone,
            id: row.id,
            name: row.name,
            created_at: from_db_time(row.created_at),
        })
    }
}

/// Stores a new organization; a taken slug is a `Conflict`.
pub fn insert(conn: &mut DbConnection, org: &Organization) -> Result<(), StoreError> {
    let row = OrganizationRow {
        id: org.id.clone(),
        slug: org.slug.as_str().to_owned(),
        name: org.name.clone(),
        locale: org.locale.as_str().to_owned(),
        created_at: to_db_time(org.created_at),
        login_methods: org.login_methods.as_str().to_owned(),
        support_email: org.support_email.clone(),
        support_phone: org.support_phone.clone(),
    };
    diesel::insert_into(organizations::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The organization with this slug.
pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Organization, StoreError> {
    organizations::table
        .filter(organizations::slug.eq(slug))
        .select(OrganizationRow::as_select())
        .first(conn)?
        .try_into()
}

/// The organization with this id.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Organization, StoreError> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)?
        .try_into()
}

/// How many organizations exist.
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(organizations::table.count().get_result(conn)?)
}

/// Writes the settings an admin may change (not the slug).
pub fn update_settings(conn: &mut DbConnection, org: &Organization) -> Result<(), StoreError> {
    diesel::update(organizations::table.find(&org.id))
        .set((
            organizations::name.eq(&org.name),
            organizations::locale.eq(org.locale.as_str()),
            organizations::login_methods.eq(org.login_methods.as_str()),
            organizations::support_email.eq(&org.support_email),
            organizations::support_phone.eq(&org.support_phone),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the organization with this id and every row that belongs to
/// it, directly (`org_id`) or through its customers, staff, API keys,
/// sessions, orders, refunds, outbox messages and mandates, in one
/// transaction and children first, so that no foreign key is broken on
/// either backend. Its sandbox gateway ledger (`merchant` = the
/// organization's id) and the idempotency keys scoped to its customers and
/// its staff or API keys' account charges go too.
///
/// `throttle_keys` are the sign-in throttle rows of its accounts: their
/// keys are keyed hashes (see the API's `throttle_key`) that the store
/// cannot compute. The per-address and per-destination limits
/// (`rate_limit_keys`, `rate_limit_hits`) and spent proof-of-work
/// challenges (`used_challenges`) belong to no organization and expire on
/// their own.
///
/// Documents go as rows only: their bytes are in the blob store, which the
/// store crate does not reach. A caller collects
/// [`super::documents::blob_keys_of_org`] before this call and deletes
/// those objects once it has committed (`guichet serve --demo` does on its
/// reset, `Blobs::delete_all_blocking`; a blob left behind by a crash in
/// between is named by no row and never served).
///
/// Returns whether the organization existed. Other organizations' rows are
/// untouched.
pub fn delete_with_data(
    conn: &mut DbConnection,
    org_id: &str,
    throttle_keys: &[String],
) -> Result<bool, StoreError> {
    use crate::schema::events;
    use crate::schema::{
        account_entries, accounts, adjustments, api_keys, cards, charges, contact_changes,
        contact_channels, creditor_settings, customers, idempotency_keys, instalments,
        login_throttles, mandate_documents, mandate_signatures, mandates, notifications,
        one_time_codes, orders, outbox, outbox_attachments, payment_settings,
        portal_customer_overrides, portal_logos, portal_settings, refresh_tokens, refund_parts,
        refunds, sandbox_ledger, security_events, sepa_collections, sessions, staff_users,
        webhook_attempts, webhook_deliveries, webhook_endpoints,
    };
    use crate::schema::{
        booking_exceptions, booking_providers, booking_service_providers, booking_services,
        booking_settings, booking_windows, bookings,
    };
    use crate::schema::{
        consent_accounts, consent_invitations, consent_settings, consent_steps, consents,
        sandbox_sca_sessions,
    };
    use crate::schema::{conversation_messages, conversations, documents, message_attachments};
    crate::tx::transaction(conn, |conn| {
        let exists: i64 = organizations::table
            .filter(organizations::id.eq(org_id))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            return Ok(false);
        }
        let org_orders = orders::table
            .filter(orders::org_id.eq(org_id))
            .select(orders::id);
        let org_mandates = mandates::table
            .filter(mandates::org_id.eq(org_id))
            .select(mandates::id);

        // Invoices (their payments, lines and counters) before the
        // documents their PDFs are.
        super::invoices::delete_org(conn, org_id)?;

        // Messages: attachments, messages, conversations, then the
        // documents (shared and attached).
        diesel::delete(message_attachments::table.filter(message_attachments::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            conversation_messages::table.filter(conversation_messages::org_id.eq(org_id)),
        )
        .execute(conn)?;
        diesel::delete(conversations::table.filter(conversations::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(documents::table.filter(documents::org_id.eq(org_id))).execute(conn)?;

        // Bookings, then what they name: the availability, the services'
        // providers, the services, the providers (which may name staff)
        // and the settings.
        diesel::delete(bookings::table.filter(bookings::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(booking_exceptions::table.filter(booking_exceptions::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(booking_windows::table.filter(booking_windows::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            booking_service_providers::table.filter(booking_service_providers::org_id.eq(org_id)),
        )
        .execute(conn)?;
        diesel::delete(booking_services::table.filter(booking_services::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(booking_providers::table.filter(booking_providers::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(booking_settings::table.filter(booking_settings::org_id.eq(org_id)))
            .execute(conn)?;

        // Webhooks and events: the delivery log, then the deliveries, the
        // endpoints and the events they refer to.
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(webhook_endpoints::table.filter(webhook_endpoints::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(events::table.filter(events::org_id.eq(org_id))).execute(conn)?;

        // Consents: the timeline and links, then the consents, the client
        // accounts and the settings; the sandbox issuer's sessions.
        diesel::delete(consent_steps::table.filter(consent_steps::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(consent_invitations::table.filter(consent_invitations::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(consents::table.filter(consents::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(consent_accounts::table.filter(consent_accounts::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(consent_settings::table.filter(consent_settings::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            sandbox_sca_sessions::table.filter(sandbox_sca_sessions::merchant.eq(org_id)),
        )
        .execute(conn)?;

        // Sign-in: tokens of its sessions, then the sessions, codes and
        // the security history that may name them.
        diesel::delete(
            refresh_tokens::table.filter(
                refresh_tokens::session_id.eq_any(
                    sessions::table
                        .filter(sessions::org_id.eq(org_id))
                        .select(sessions::id),
                ),
            ),
        )
        .execute(conn)?;
        diesel::delete(security_events::table.filter(security_events::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(contact_changes::table.filter(contact_changes::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(sessions::table.filter(sessions::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(one_time_codes::table.filter(one_time_codes::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            outbox_attachments::table.filter(
                outbox_attachments::outbox_id.eq_any(
                    outbox::table
                        .filter(outbox::org_id.eq(org_id))
                        .select(outbox::id),
                ),
            ),
        )
        .execute(conn)?;
        diesel::delete(outbox::table.filter(outbox::org_id.eq(org_id))).execute(conn)?;

        // Autopay, then the saved methods it names (which name mandates).
        {
            use crate::schema::{customer_autopay, payment_methods};
            diesel::delete(customer_autopay::table.filter(customer_autopay::org_id.eq(org_id)))
                .execute(conn)?;
            diesel::delete(payment_methods::table.filter(payment_methods::org_id.eq(org_id)))
                .execute(conn)?;
        }

        // Schedules: refund parts (they name charges), refunds, charges,
        // adjustments, instalments, orders, then the cards they used.
        diesel::delete(
            refund_parts::table.filter(
                refund_parts::refund_id.eq_any(
                    refunds::table
                        .filter(refunds::order_id.eq_any(org_orders))
                        .select(refunds::id),
                ),
            ),
        )
        .execute(conn)?;
        diesel::delete(
            refund_parts::table.filter(
                refund_parts::charge_id.eq_any(
                    charges::table
                        .filter(charges::org_id.eq(org_id))
                        .select(charges::id),
                ),
            ),
        )
        .execute(conn)?;
        diesel::delete(refunds::table.filter(refunds::order_id.eq_any(org_orders)))
            .execute(conn)?;
        diesel::delete(charges::table.filter(charges::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(charges::table.filter(charges::order_id.eq_any(org_orders)))
            .execute(conn)?;
        diesel::delete(adjustments::table.filter(adjustments::order_id.eq_any(org_orders)))
            .execute(conn)?;
        diesel::delete(instalments::table.filter(instalments::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(instalments::table.filter(instalments::order_id.eq_any(org_orders)))
            .execute(conn)?;
        diesel::delete(orders::table.filter(orders::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(cards::table.filter(cards::org_id.eq(org_id))).execute(conn)?;

        // SEPA: collections, the accounts' history, signatures and signed
        // documents, mandates, then the accounts.
        diesel::delete(sepa_collections::table.filter(sepa_collections::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(account_entries::table.filter(account_entries::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            mandate_signatures::table.filter(mandate_signatures::mandate_id.eq_any(org_mandates)),
        )
        .execute(conn)?;
        diesel::delete(
            mandate_documents::table.filter(mandate_documents::mandate_id.eq_any(org_mandates)),
        )
        .execute(conn)?;
        diesel::delete(mandates::table.filter(mandates::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(accounts::table.filter(accounts::org_id.eq(org_id))).execute(conn)?;

        // The portal: notifications, per-customer overrides, the logo and
        // the settings (which name the test customer).
        diesel::delete(notifications::table.filter(notifications::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(
            portal_customer_overrides::table.filter(portal_customer_overrides::org_id.eq(org_id)),
        )
        .execute(conn)?;
        diesel::delete(portal_logos::table.filter(portal_logos::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(portal_settings::table.filter(portal_settings::org_id.eq(org_id)))
            .execute(conn)?;

        // Settings.
        diesel::delete(creditor_settings::table.filter(creditor_settings::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(payment_settings::table.filter(payment_settings::org_id.eq(org_id)))
            .execute(conn)?;
        diesel::delete(contact_channels::table.filter(contact_channels::org_id.eq(org_id)))
            .execute(conn)?;

        // Idempotency keys: a customer's requests are scoped to the
        // customer; account charges to the staff member or API key.
        diesel::delete(
            idempotency_keys::table.filter(
                idempotency_keys::scope.eq_any(
                    customers::table
                        .filter(customers::org_id.eq(org_id))
                        .select(customers::id),
                ),
            ),
        )
        .execute(conn)?;
        let mut actors: Vec<String> = staff_users::table
            .filter(staff_users::org_id.eq(org_id))
            .select(staff_users::id)
            .load(conn)?;
        actors.extend(
            api_keys::table
                .filter(api_keys::org_id.eq(org_id))
                .select(api_keys::id)
                .load::<String>(conn)?,
        );
        for chunk in actors.chunks(500) {
            let scopes: Vec<String> = chunk
                .iter()
                .map(|id| format!("account-charge:{id}"))
                .collect();
            diesel::delete(idempotency_keys::table.filter(idempotency_keys::scope.eq_any(scopes)))
                .execute(conn)?;
        }
        for chunk in throttle_keys.chunks(500) {
            diesel::delete(login_throttles::table.filter(login_throttles::key.eq_any(chunk)))
                .execute(conn)?;
        }

        // The sandbox gateway's ledger for this merchant.
        diesel::delete(sandbox_ledger::table.filter(sandbox_ledger::merchant.eq(org_id)))
            .execute(conn)?;

        // The people, then the organization.
        diesel::delete(api_keys::table.filter(api_keys::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(staff_users::table.filter(staff_users::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(customers::table.filter(customers::org_id.eq(org_id))).execute(conn)?;
        diesel::delete(organizations::table.filter(organizations::id.eq(org_id))).execute(conn)?;
        Ok(true)
    })
}

/// The e-mails its staff and its customers sign in with, in that order:
/// what the sign-in throttle keys of its accounts are made of.
pub fn sign_in_emails(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    use crate::schema::{customers, staff_users};
    let staff = staff_users::table
        .filter(staff_users::org_id.eq(org_id))
        .select(staff_users::email)
        .load(conn)?;
    let customers = customers::table
        .filter(customers::org_id.eq(org_id))
        .select(customers::email)
        .load(conn)?;
    Ok((staff, customers))
}
