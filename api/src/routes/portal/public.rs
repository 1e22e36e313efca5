//! `/v1/portal/{slug}`: what a frontend needs to draw a portal's sign-in
//! page, and its logo. Public: no token.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, web};
use guichet_domain::Locale;
use guichet_store::StoreError;
use guichet_store::repo::{organizations, portal};
use serde::Serialize;
use utoipa::ToSchema;

use super::views::{Branding, SignInMethods};
use crate::problem::{ApiError, Problem};
use crate::routes::enums::Language;
use crate::state::AppState;

/// A portal's public face.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPortal {
    #[schema(example = "cabinet-kine")]
    pub slug: String,
    pub branding: Branding,
    pub sign_in_methods: SignInMethods,
    /// The languages the portal speaks, the organization's first.
    #[schema(value_type = Vec<Language>)]
    pub languages: Vec<Locale>,
}

/// A portal's sign-in page data.
///
/// Display name, branding, logo URL, sign-in methods and languages of the
/// portal at `slug`. Public.
#[utoipa::path(
    operation_id = "getPublicPortal",
    tag = "portal",
    security(()),
    params(("slug" = String, Path, description = "The portal's slug.")),
    responses(
        (status = 200, description = "The portal.", body = PublicPortal),
        (status = 404, description = "No portal at this slug. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/portal/{slug}")]
pub async fn get_portal(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PublicPortal>, ApiError> {
    let slug = path.into_inner();
    let store = state.store.clone();
    let now = state.clock.now();
    let out = web::block(move || {
        let mut conn = store.conn()?;
        let org_id = portal::find_org_by_slug(&mut conn, &slug)?.ok_or(StoreError::NotFound)?;
        let s = portal::get(&mut conn, &org_id, now)?;
        let org = organizations::get(&mut conn, &org_id)?;
        let sha = portal::logo_sha256(&mut conn, &org_id)?;
        let other = match org.locale {
            Locale::Fr => Locale::En,
            Locale::En => Locale::Fr,
        };
        Ok::<_, StoreError>(PublicPortal {
            slug: s.slug.clone(),
            branding: Branding::new(&s, &org.name, sha.as_deref()),
            sign_in_methods: org.login_methods.into(),
            languages: vec![org.locale, other],
        })
    })
    .await??;
    Ok(web::Json(out))
}

/// A portal's logo.
///
/// The image (PNG or JPEG) with its `Content-Type` and an `ETag` (its
/// SHA-256). Public.
#[utoipa::path(
    operation_id = "getPortalLogo",
    tag = "portal",
    security(()),
    params(("slug" = String, Path, description = "The portal's slug.")),
    responses(
        (status = 200, description = "The logo, in the media type it was uploaded in.",
            content((inline(crate::openapi::Binary) = "image/png"), (inline(crate::openapi::Binary) = "image/jpeg"))),
        (status = 404, description = "No portal at this slug, or no logo. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/portal/{slug}/logo")]
pub async fn get_logo(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner();
    let store = state.store.clone();
    let logo = web::block(move || {
        let mut conn = store.conn()?;
        let org_id = portal::find_org_by_slug(&mut conn, &slug)?.ok_or(StoreError::NotFound)?;
        portal::logo(&mut conn, &org_id)?.ok_or(StoreError::NotFound)
    })
    .await??;
    let mut res = HttpResponse::Ok()
        .content_type(logo.content_type.as_str())
        .insert_header((header::ETAG, format!("\"{}\"", logo.sha256)))
        .body(logo.content);
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(res)
}
