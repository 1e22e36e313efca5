//! `GET /v1/me/contact-channels`: how to reach the organization, and which
//! channels are open now.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use guichet_domain::contact_channels::{Channel, ContactChannels, OrgTimeZone, seed_defaults};
use guichet_store::DbConnection;
use guichet_store::repo::payment;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AUTH_FAILURES, ROLE_FAILURE};
use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A contact channel and whether it is open now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactChannelView {
    /// `chat`, `whatsapp`, `contact_form`, `chatbot`, `faq`, `phone` or
    /// `email`.
    #[schema(example = "chat")]
    pub kind: &'static str,
    #[schema(example = "Chat avec un conseiller")]
    pub label: String,
    /// As set by the organization: `"always"`, or `{"weekly": [...]}` with
    /// seven lists (Monday first) of `[start, end]` local times in
    /// `time_zone`.
    #[schema(value_type = Object)]
    pub hours: serde_json::Value,
    pub open_now: bool,
    /// When a closed channel opens next (null when open, or never opens).
    pub next_opening: Option<DateTime<Utc>>,
    /// When an open channel closes (null when closed, or always open).
    pub closes_at: Option<DateTime<Utc>>,
}

/// The organization's contact channels, in display order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactChannelList {
    /// The IANA zone the hours are in.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    pub data: Vec<ContactChannelView>,
}

/// The organization's channels as stored, or the defaults when none are.
pub fn load_channels(conn: &mut DbConnection, org_id: &str) -> Result<ContactChannels, ApiError> {
    let Some((zone, json)) = payment::contact_channels(conn, org_id)? else {
        return Ok(seed_defaults());
    };
    let time_zone = OrgTimeZone::parse(&zone)
        .map_err(|_| ApiError::internal(format!("stored time zone {zone:?} is invalid")))?;
    // The channels list; a whole document with its zone is read as well.
    let channels = match serde_json::from_str::<Vec<Channel>>(&json) {
        Ok(channels) => channels,
        Err(_) => serde_json::from_str::<ContactChannels>(&json)
            .map(|doc| doc.channels)
            .map_err(|e| ApiError::internal(format!("stored contact channels are invalid: {e}")))?,
    };
    Ok(ContactChannels {
        time_zone,
        channels,
    })
}

/// Each channel with its status at `now`.
pub fn channel_list(channels: &ContactChannels, now: DateTime<Utc>) -> ContactChannelList {
    ContactChannelList {
        time_zone: channels.time_zone.name().to_owned(),
        data: channels
            .statuses(now)
            .into_iter()
            .map(|(channel, status)| ContactChannelView {
                kind: channel.kind.as_str(),
                label: channel.label.clone(),
                hours: serde_json::to_value(
                    crate::routes::admin::orders::settings::HoursView::from(&channel.hours),
                )
                .unwrap_or(serde_json::Value::Null),
                open_now: status.open_now,
                next_opening: status.next_opening,
                closes_at: status.closes_at,
            })
            .collect(),
    }
}

/// The organization's contact channels with their opening hours and whether
/// each is open now (hours in the organization's time zone, instants in
/// UTC).
#[utoipa::path(
    tag = "me",
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The channels, in display order.", body = ContactChannelList),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<ContactChannelList>, ApiError> {
    let now = state.clock.now();
    let store = state.store.clone();
    let channels = web::block(move || {
        let mut conn = store.conn()?;
        load_channels(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(channel_list(&channels, now)))
}
