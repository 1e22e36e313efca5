//! The demo's small service business (seed 002): a physiotherapy practice
//! with its client portal configured, its test customer, two customers
//! who sign in by a code (one by SMS, one by e-mail) and notifications
//! waiting for them.

use chrono::{DateTime, Duration, Utc};
use guichet_domain::identity::LoginMethods;
use guichet_domain::password::hash_password;
use guichet_domain::portal::{ActionSetting, NewNotification, PortalAction, PortalActions};
use guichet_domain::{Locale, Organization};
use guichet_store::repo::{codes, customers, notifications, organizations, portal, staff};
use guichet_store::{DbConnection, OptionalExt};

use super::{DemoAccount, customer};
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;

/// The practice's slug (and its portal's).
pub const SLUG: &str = "kine";
const NAME: &str = "Cabinet de kinésithérapie des Lilas";
const ADMIN: (&str, &str) = ("admin@kine.guichet.localhost", "Admin-Kine-2026!");
/// The patient with a mobile: her code goes by SMS.
pub const JULIE: &str = "julie.moreau@example.com";
/// The patient without one: his code goes by e-mail.
pub const HUGO: &str = "hugo.lefevre@example.com";

/// The practice's accounts, for the banner.
pub fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            what: "admin (POST /v1/auth/staff/login; POST /v1/admin/portal/preview-session)",
            email: ADMIN.0,
            password: Some(ADMIN.1),
        },
        DemoAccount {
            what: "patient with a mobile: sign-in code by SMS (POST /v1/auth/otp/start)",
            email: JULIE,
            password: None,
        },
        DemoAccount {
            what: "patient without a mobile: sign-in code by e-mail",
            email: HUGO,
            password: None,
        },
    ]
}

fn action(action: PortalAction, enabled: bool) -> ActionSetting {
    ActionSetting {
        action,
        enabled,
        labels: Default::default(),
    }
}

fn note(kind: &str, title: &str, body: &str) -> impl FnOnce(Locale) -> NewNotification {
    let (kind, title, body) = (kind.to_owned(), title.to_owned(), body.to_owned());
    move |_| NewNotification {
        kind,
        title,
        body,
        link: None,
        object_type: None,
        object_id: None,
    }
}

/// The practice, created unless it exists; whether it was created.
pub fn seed(
    conn: &mut DbConnection,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(Organization, bool), ProvisionError> {
    if let Some(org) = organizations::find_by_slug(conn, SLUG).optional()? {
        return Ok((org, false));
    }
    let admin_hash = hash_password(ADMIN.1).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
    let org = guichet_store::transaction(conn, |conn| {
        let new = provision::insert_organization(conn, secret_key, SLUG, NAME, ADMIN.0, now)?;
        let mut org = new.organization;
        org.login_methods = LoginMethods::Passwordless;
        org.support_email = Some("accueil@kine.guichet.localhost".into());
        org.support_phone = Some("+33143000000".into());
        organizations::update_settings(conn, &org)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;

        let actions = PortalActions::new(vec![
            action(PortalAction::Documents, true),
            action(PortalAction::Messages, true),
            action(PortalAction::Payments, true),
            action(PortalAction::Bookings, false),
        ])
        .map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        let mut settings = portal::PortalSettings::defaults(&org.id, SLUG, now);
        settings.actions = actions;
        settings.display_name = Some("Kiné des Lilas".into());
        settings.accent_color = Some("#0a7d6b".into());
        settings.contact_email = Some("accueil@kine.guichet.localhost".into());
        settings.phone = Some("+33143000000".into());
        settings.address = Some("8 rue des Lilas, 75011 Paris".into());
        settings.website = Some("https://kine.guichet.localhost".into());
        portal::save(conn, &settings)?;
        crate::routes::portal::settings::test_customer(conn, &org.id, now)?;

        let julie = customer(&org.id, JULIE, "Julie Moreau", Some("+33611223344"), now);
        customers::insert(conn, &julie)?;
        let hugo = customer(&org.id, HUGO, "Hugo Lefèvre", None, now);
        customers::insert(conn, &hugo)?;
        notifications::notify(
            conn,
            &org.id,
            &julie.id,
            now - Duration::days(2),
            note(
                "practice.welcome",
                "Bienvenue dans votre espace",
                "Retrouvez ici vos documents et écrivez au cabinet.",
            ),
        )?;
        notifications::notify(
            conn,
            &org.id,
            &julie.id,
            now - Duration::hours(3),
            note(
                "practice.reminder",
                "Séance de jeudi",
                "Pensez à apporter votre ordonnance et une serviette.",
            ),
        )?;
        notifications::notify(
            conn,
            &org.id,
            &hugo.id,
            now - Duration::days(1),
            note(
                "practice.welcome",
                "Bienvenue dans votre espace",
                "Retrouvez ici vos documents et écrivez au cabinet.",
            ),
        )?;
        Ok::<_, ProvisionError>(org)
    })?;
    Ok((org, true))
}
