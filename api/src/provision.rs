//! Creating organizations and API keys from the command line (`guichet
//! admin ...`) and for `--demo`.

use chrono::{DateTime, Utc};
use guichet_domain::contact::Email;
use guichet_domain::identity::{LoginMethods, StaffRole, StaffUser};
use guichet_domain::{Locale, Organization, Slug, ids};
use guichet_store::repo::{api_keys, organizations, staff};
use guichet_store::{DbConnection, StoreError};

use crate::routes::admin::api_keys::new_key;
use crate::routes::auth::new_staff_setup_token;

/// Why provisioning refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Invalid(String),
    #[error("an organization with slug `{0}` already exists")]
    SlugTaken(String),
    #[error("no organization with slug `{0}`")]
    UnknownOrganization(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new organization and its first admin.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub organization: Organization,
    pub admin: StaffUser,
    /// For `POST /v1/auth/staff/setup` (7 days, once).
    pub setup_token: String,
}

/// Creates an organization with its first admin, who sets a password with
/// the returned setup token.
pub fn create_organization(
    conn: &mut DbConnection,
    secret_key: &[u8],
    slug: &str,
    name: &str,
    admin_email: &str,
    now: DateTime<Utc>,
) -> Result<NewOrganization, ProvisionError> {
    guichet_store::transaction(conn, |conn| {
        insert_organization(conn, secret_key, slug, name, admin_email, now)
    })
}

/// [`create_organization`] inside the caller's transaction.
pub fn insert_organization(
    conn: &mut DbConnection,
    secret_key: &[u8],
    slug: &str,
    name: &str,
    admin_email: &str,
    now: DateTime<Utc>,
) -> Result<NewOrganization, ProvisionError> {
    let slug = Slug::parse(slug).map_err(|e| ProvisionError::Invalid(format!("--slug: {e}")))?;
    let email = Email::parse(admin_email)
        .map_err(|_| ProvisionError::Invalid("--admin-email: not a valid e-mail address".into()))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ProvisionError::Invalid(
            "--name: 1 to 200 characters".into(),
        ));
    }
    let organization = Organization {
        id: ids::new_id("org"),
        slug: slug.clone(),
        name: name.to_owned(),
        locale: Locale::Fr,
        login_methods: LoginMethods::Both,
        support_email: None,
        support_phone: None,
        created_at: now,
    };
    let admin = StaffUser {
        id: ids::new_id("stf"),
        org_id: organization.id.clone(),
        email: email.as_str().to_owned(),
        name: email.as_str().to_owned(),
        role: StaffRole::Admin,
        has_password: false,
        disabled_at: None,
        created_at: now,
    };
    organizations::insert(conn, &organization).map_err(|e| match e {
        StoreError::Conflict(_) => ProvisionError::SlugTaken(slug.as_str().to_owned()),
        other => other.into(),
    })?;
    staff::insert(conn, &admin)?;
    let setup_token = new_staff_setup_token(conn, secret_key, &admin, now)?;
    Ok(NewOrganization {
        organization,
        admin,
        setup_token,
    })
}

/// A new API key: its id and its secret (shown once).
pub fn create_api_key(
    conn: &mut DbConnection,
    slug: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(api_keys::ApiKey, String), ProvisionError> {
    let org = organizations::find_by_slug(conn, slug).map_err(|e| match e {
        StoreError::NotFound => ProvisionError::UnknownOrganization(slug.to_owned()),
        other => other.into(),
    })?;
    let (key, secret, hash) = new_key(&org.id, name, now);
    api_keys::insert(conn, &key, &hash)?;
    Ok((key, secret))
}
