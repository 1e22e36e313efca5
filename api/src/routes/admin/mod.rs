//! `/v1/admin/...`: the business side, for staff (JWT) and API keys. Every
//! id is looked up inside the caller's organization.

pub mod api_keys;
pub mod customers;
pub mod orders;
pub mod organization;
pub mod staff;
pub mod webhooks;

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
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
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

/// A position in a list ordered by time: the last item's time and id.
pub type TimePosition = (chrono::DateTime<chrono::Utc>, String);

/// `?limit=&cursor=` of lists ordered by time, newest first: the cursor is
/// a [`TIME_CURSOR_PATTERN`] position.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimePage {
    /// Items per page, 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20, nullable = false)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

impl TimePage {
    /// The limit, and the (time, id) position after which the page starts.
    pub fn resolve(&self) -> Result<(i64, Option<TimePosition>), ApiError> {
        resolve_time_page(self.limit, self.cursor.as_deref())
    }
}

/// [`TimePage::resolve`] for query structs that carry filters too.
pub fn resolve_time_page(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(i64, Option<TimePosition>), ApiError> {
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(ProblemCode::InvalidParameter)
            .detail("limit va de 1 à 100.", "limit must be 1 to 100.")
            .field("limit", "range"));
    }
    let after = match cursor {
        None => None,
        Some(cursor) => Some(parse_time_cursor(cursor).ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidParameter)
                .detail("Curseur invalide.", "Invalid cursor.")
                .field("cursor", "invalid")
        })?),
    };
    Ok((limit, after))
}

/// Ends a page read with `limit + 1` rows: drops the extra row, and gives
/// the next page's cursor, made from the last kept item by `cursor`.
pub fn page_end<T>(
    items: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(cursor)
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

/// The cursor for the item with this id: the id itself. Clients treat it
/// as opaque; its documented shape (`^[A-Za-z0-9_-]{1,64}$`) is all the
/// server asks of it, any such string being a position in the id order.
pub fn encode_cursor(id: &str) -> String {
    id.to_owned()
}

/// Whether `text` has the shape of an id cursor (the documented pattern).
pub fn is_id_cursor(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The pattern of a cursor over a list ordered by time: the last item's
/// time in microseconds since 1970, `.` and its id.
pub const TIME_CURSOR_PATTERN: &str = "^[0-9]{1,16}\\.[A-Za-z0-9_-]{1,64}$";

/// A keyset cursor over (time, id).
pub fn time_cursor(at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

/// The (time, id) position a cursor of [`TIME_CURSOR_PATTERN`] names; any
/// string of that shape is a position.
pub fn parse_time_cursor(cursor: &str) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let (micros, id) = cursor.split_once('.')?;
    if !(1..=16).contains(&micros.len())
        || !micros.bytes().all(|b| b.is_ascii_digit())
        || !is_id_cursor(id)
    {
        return None;
    }
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.to_owned()))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    is_id_cursor(cursor).then(|| cursor.to_owned())
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
