//! Demo data for `guichet serve --demo`: at every start each demo
//! organization is deleted with all its data ([`reset`]) and created again,
//! so that the README's sessions work on every start; organizations with
//! other slugs are untouched. Each is described in the start-up banner.
//!
//! - `demo`: accounts and every way to sign in (staff, customers with and
//!   without a mobile, first connection, activation code);
//! - `fractio` ([`lender`]): a buy-now-pay-later lender whose customers hold
//!   schedules in every state;
//! - `gerance` ([`property`]): a property manager collecting rent by SEPA
//!   direct debit, with a tenant holding two accounts;
//! - `fiduciaire` ([`office`]): an accounting office ordering the sharing
//!   of its clients' credit-card statements, with one consent in each
//!   status.

pub mod lender;
pub mod office;
pub mod practice;
pub mod property;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use guichet_domain::identity::{Customer, SubjectKind, lifetimes};
use guichet_domain::password::hash_password;
use guichet_domain::{Clock, Locale, ids, secret};
use guichet_store::repo::codes;
use guichet_store::repo::{customers, documents, organizations, staff};
use guichet_store::{DbConnection, OptionalExt, Store};

use crate::blobs::Blobs;
use crate::provision::{self, ProvisionError};
use crate::routes::auth::purpose;

/// The demo organization's slug.
pub const DEMO_SLUG: &str = "demo";

/// A demo account and how to sign in with it.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub what: &'static str,
    pub email: &'static str,
    pub password: Option<&'static str>,
}

/// One demo organization, to print for the person trying it.
#[derive(Debug, Clone)]
pub struct DemoOrganization {
    pub slug: String,
    pub name: String,
    /// What it shows.
    pub what: &'static str,
    pub accounts: Vec<DemoAccount>,
}

/// The slugs `--demo` owns: their organizations are deleted and created
/// again at each start.
pub const DEMO_SLUGS: [&str; 5] = [
    DEMO_SLUG,
    lender::SLUG,
    property::SLUG,
    office::SLUG,
    practice::SLUG,
];

/// What the demo contains, to print for the person trying it.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Whether this start created any of it.
    pub created: bool,
    /// The demo organizations that existed and were deleted with their
    /// data before being created again.
    pub reset: Vec<String>,
    /// The blob keys of the deleted organizations' documents: the caller
    /// deletes them from the blob store (the rows are gone).
    pub stale_blobs: Vec<String>,
    pub organizations: Vec<DemoOrganization>,
    /// A fresh activation code for the customer waiting for one.
    pub activation: Option<(String, String)>,
}

const ADMIN: (&str, &str) = ("admin@demo.guichet.localhost", "Admin-Demo-2026!");
const AGENT: (&str, &str) = ("agent@demo.guichet.localhost", "Agent-Demo-2026!");
const CLAIRE: (&str, &str) = ("claire.martin@example.com", "Claire-Demo-2026!");
const PAUL: (&str, &str) = ("paul.durand@example.com", "Paul-Demo-2026!");
const LEA: &str = "lea.bernard@example.com";
const MARC: &str = "marc.petit@example.com";

fn accounts() -> Vec<DemoAccount> {
    vec![
        DemoAccount {
            what: "admin (POST /v1/auth/staff/login)",
            email: ADMIN.0,
            password: Some(ADMIN.1),
        },
        DemoAccount {
            what: "agent (POST /v1/auth/staff/login)",
            email: AGENT.0,
            password: Some(AGENT.1),
        },
        DemoAccount {
            what: "customer with a mobile: passwordless codes by SMS",
            email: CLAIRE.0,
            password: Some(CLAIRE.1),
        },
        DemoAccount {
            what: "customer without mobile: passwordless codes by e-mail",
            email: PAUL.0,
            password: Some(PAUL.1),
        },
        DemoAccount {
            what: "customer without access yet: try first connection (POST /v1/auth/register)",
            email: LEA,
            password: None,
        },
        DemoAccount {
            what: "customer without access, with the activation code below (POST /v1/auth/activate)",
            email: MARC,
            password: None,
        },
    ]
}

/// A French-speaking customer without access yet.
pub(super) fn customer(
    org_id: &str,
    email: &str,
    name: &str,
    mobile: Option<&str>,
    now: DateTime<Utc>,
) -> Customer {
    Customer {
        id: ids::new_id("cus"),
        org_id: org_id.to_owned(),
        email: email.to_owned(),
        name: name.to_owned(),
        mobile: mobile.map(str::to_owned),
        locale: Locale::Fr,
        external_ref: None,
        registered_at: None,
        blocked_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn hash(password: &str) -> Result<String, ProvisionError> {
    hash_password(password).map_err(|e| ProvisionError::Invalid(e.to_string()))
}

/// Deletes each demo organization ([`DEMO_SLUGS`]) that exists, with all
/// its data and the sign-in throttles of its accounts, each in one
/// transaction; returns the slugs deleted and the blob keys of their
/// documents, collected before each deletion, for the caller to delete from
/// the blob store once the rows are gone. Other organizations are
/// untouched.
pub fn reset(
    conn: &mut DbConnection,
    secret_key: &[u8],
) -> Result<(Vec<String>, Vec<String>), ProvisionError> {
    let mut deleted = Vec::new();
    let mut stale_blobs = Vec::new();
    for slug in DEMO_SLUGS {
        let Some(org) = organizations::find_by_slug(conn, slug).optional()? else {
            continue;
        };
        let (staff, customers) = organizations::sign_in_emails(conn, &org.id)?;
        let throttles: Vec<String> = staff
            .iter()
            .map(|email| (SubjectKind::Staff, email))
            .chain(customers.iter().map(|email| (SubjectKind::Customer, email)))
            .map(|(kind, email)| {
                crate::auth::flows::throttle_key_with(secret_key, &org.id, kind, email)
            })
            .collect();
        let blobs = documents::blob_keys_of_org(conn, &org.id)?;
        if organizations::delete_with_data(conn, &org.id, &throttles)? {
            deleted.push(slug.to_owned());
            stale_blobs.extend(blobs);
        }
    }
    Ok((deleted, stale_blobs))
}

/// Resets the demo organizations ([`reset`]), then creates each of them
/// (the practice's documents go to `blobs`); issues a fresh activation
/// code for the customer who waits for one.
pub fn seed(
    store: &Store,
    blobs: &Blobs,
    clock: Arc<dyn Clock>,
    secret_key: &[u8],
) -> Result<DemoSummary, ProvisionError> {
    let mut conn = store.conn()?;
    let conn = &mut *conn;
    let now = clock.now();
    let (reset, stale_blobs) = reset(conn, secret_key)?;
    let existing = organizations::find_by_slug(conn, DEMO_SLUG).optional()?;
    let created = existing.is_none();
    let org = match existing {
        Some(org) => org,
        None => create(conn, secret_key, now)?,
    };
    let activation = match customers::find_by_email(conn, &org.id, MARC).optional()? {
        Some(marc) if marc.registered_at.is_none() => {
            let code = secret::activation_code();
            let record = crate::auth::flows::link_record(
                secret_key,
                &org.id,
                SubjectKind::Customer,
                &marc.id,
                purpose::ACTIVATION,
                &secret::normalize_activation_code(&code),
                None,
                lifetimes::activation_code(),
                now,
            );
            guichet_store::transaction(conn, |conn| {
                codes::void_all(conn, &marc.id, purpose::ACTIVATION, now)?;
                codes::insert(conn, &record)
            })?;
            Some((MARC.to_owned(), code))
        }
        _ => None,
    };
    let (lender, lender_created) = lender::seed(conn, clock, secret_key)?;
    let (property, property_created) = property::seed(conn, secret_key, now)?;
    let (office, office_created) = office::seed(conn, secret_key, now)?;
    let (practice, practice_created) = practice::seed(conn, blobs, secret_key, now)?;
    Ok(DemoSummary {
        created: created
            || lender_created
            || property_created
            || office_created
            || practice_created,
        reset,
        stale_blobs,
        organizations: vec![
            DemoOrganization {
                slug: org.slug.as_str().to_owned(),
                name: org.name,
                what: "accounts and every way to sign in",
                accounts: accounts(),
            },
            DemoOrganization {
                slug: lender.slug.as_str().to_owned(),
                name: lender.name,
                what: "a buy-now-pay-later lender: instalment schedules in every state",
                accounts: lender::accounts(),
            },
            DemoOrganization {
                slug: property.slug.as_str().to_owned(),
                name: property.name,
                what: "a property manager: SEPA direct-debit mandates signed by one-time code",
                accounts: property::accounts(),
            },
            DemoOrganization {
                slug: office.slug.as_str().to_owned(),
                name: office.name,
                what: "an accounting office: consent invitations in every status (seed 001)",
                accounts: office::accounts(),
            },
            DemoOrganization {
                slug: practice.slug.as_str().to_owned(),
                name: practice.name,
                what: "a physiotherapy practice: its client portal, sign-in by code, dashboard, shared documents, messages and notifications",
                accounts: practice::accounts(),
            },
        ],
        activation,
    })
}

fn create(
    conn: &mut DbConnection,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<guichet_domain::Organization, ProvisionError> {
    let new =
        provision::create_organization(conn, secret_key, DEMO_SLUG, "Guichet Démo", ADMIN.0, now)?;
    let org = new.organization;
    let admin_hash = hash(ADMIN.1)?;
    let agent_hash = hash(AGENT.1)?;
    let claire_hash = hash(CLAIRE.1)?;
    let paul_hash = hash(PAUL.1)?;
    guichet_store::transaction(conn, |conn| {
        let mut o = org.clone();
        o.support_email = Some("support@demo.guichet.localhost".into());
        o.support_phone = Some("+33100000000".into());
        organizations::update_settings(conn, &o)?;
        staff::set_password(conn, &new.admin.id, &admin_hash)?;
        codes::void_all(conn, &new.admin.id, purpose::STAFF_SETUP, now)?;
        let agent = guichet_domain::identity::StaffUser {
            id: ids::new_id("stf"),
            org_id: org.id.clone(),
            email: AGENT.0.to_owned(),
            name: "Agent Démo".to_owned(),
            role: guichet_domain::identity::StaffRole::Agent,
            has_password: false,
            disabled_at: None,
            created_at: now,
        };
        staff::insert(conn, &agent)?;
        staff::set_password(conn, &agent.id, &agent_hash)?;
        let claire = customer(
            &org.id,
            CLAIRE.0,
            "Claire Martin",
            Some("+33612345678"),
            now,
        );
        customers::insert(conn, &claire)?;
        customers::set_password(conn, &claire.id, &claire_hash, now)?;
        let paul = customer(&org.id, PAUL.0, "Paul Durand", None, now);
        customers::insert(conn, &paul)?;
        customers::set_password(conn, &paul.id, &paul_hash, now)?;
        customers::insert(
            conn,
            &customer(&org.id, LEA, "Léa Bernard", Some("+33698765432"), now),
        )?;
        customers::insert(conn, &customer(&org.id, MARC, "Marc Petit", None, now))?;
        Ok::<_, ProvisionError>(())
    })?;
    Ok(org)
}
