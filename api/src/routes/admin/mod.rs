//! `/v1/admin/...`: the business side, for staff (JWT) and API keys. Every
//! id is looked up inside the caller's organization.

pub mod api_keys;
pub mod customers;
pub mod orders;
pub mod organization;
pub mod staff;
pub mod webhooks;

use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use crate::problem::{ApiError, ProblemCode};

/// The documented authentication failures of admin routes.
pub const AUTH_FAILURES: &str = "Codes: `unauthenticated`, `invalid_token`.";
/// The documented role failure of admin routes.
pub const ROLE_FAILURE: &str =
    "A customer token, or a role that may not do this. Codes: `forbidden`.";

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Items per page, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    pub cursor: Option<String>,
}

impl Page {
    /// The limit, and the last id of the previous page.
    pub fn resolve(&self) -> Result<(i64, Option<String>), ApiError> {
        self.validate().map_err(|_| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail("limit va de 1 à 100.", "limit must be 1 to 100.")
                .field("limit", "range")
        })?;
        let after = match &self.cursor {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                ApiError::new(ProblemCode::InvalidParameter)
                    .detail("Curseur invalide.", "Invalid cursor.")
                    .field("cursor", "invalid")
            })?),
        };
        Ok((self.limit.unwrap_or(20), after))
    }
}

/// The optional `?status=` filter of a list: `parse` reads one value;
/// anything else answers 400 `invalid_parameter` listing the values `allowed`
/// (the same in both languages: they are API values).
pub fn status_filter<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<Option<T>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    parse(value).map(Some).ok_or_else(|| {
        let (last, first) = allowed.split_last().unwrap_or((&"", &[]));
        let first = first.join(", ");
        ApiError::new(ProblemCode::InvalidParameter)
            .detail(
                format!("status vaut {first} ou {last}."),
                format!("status must be {first} or {last}."),
            )
            .field("status", "invalid")
    })
}

/// Ends a page read with `limit + 1` rows: drops the extra row, and gives
/// the cursor of the next page when there was one (the last kept item's
/// id).
pub fn next_cursor<T>(items: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(|item| encode_cursor(id(item)))
}

/// An opaque cursor for the item with this id.
pub fn encode_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok().filter(|s| s.len() <= 64)
}

/// Distinguishes "absent" from "null" in PATCH bodies.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A `validator` rule: text that is not only white space.
pub fn not_blank(value: &str) -> Result<(), validator::ValidationError> {
    if value.trim().is_empty() {
        return Err(validator::ValidationError::new("blank"));
    }
    Ok(())
}
