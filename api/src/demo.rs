//! Demo data for `guichet serve --demo`: created only in an empty database.

use guichet_domain::{Clock, Locale, Organization, Slug, ids};
use guichet_store::{Store, StoreError, repo};

/// What the demo contains, to print for the person trying it.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub created: bool,
    pub organization_slug: String,
    pub organization_name: String,
}

/// The demo organization's slug.
pub const DEMO_SLUG: &str = "demo";

/// Creates the demo data unless the database already holds organizations.
pub fn seed(store: &Store, clock: &dyn Clock) -> Result<DemoSummary, StoreError> {
    let mut conn = store.conn()?;
    if repo::organizations::count(&mut conn)? > 0 {
        let org = repo::organizations::find_by_slug(&mut conn, DEMO_SLUG).ok();
        return Ok(DemoSummary {
            created: false,
            organization_slug: org.as_ref().map_or("", |o| o.slug.as_str()).to_owned(),
            organization_name: org.map(|o| o.name).unwrap_or_default(),
        });
    }
    let org = Organization {
        id: ids::new_id("org"),
        slug: Slug::parse(DEMO_SLUG).map_err(|e| StoreError::Database(e.to_string()))?,
        name: "Guichet Démo".to_owned(),
        locale: Locale::Fr,
        created_at: clock.now(),
    };
    repo::organizations::insert(&mut conn, &org)?;
    Ok(DemoSummary {
        created: true,
        organization_slug: org.slug.as_str().to_owned(),
        organization_name: org.name,
    })
}
