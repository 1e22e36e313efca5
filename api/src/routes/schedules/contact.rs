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
    #[schema(value_type = crate::routes::enums::ChannelKind, example = "chat")]
    pub kind: &'static str,
    #[schema(example = "Chat avec un conseiller")]
    pub label: String,
    /// As set by the organization: `"always"`, or an object with one list
    /// per weekday (`monday` to `sunday`) of `["HH:MM", "HH:MM"]` ranges,
    /// local times in `time_zone`; an empty list is a closed day.
    #[schema(value_type = crate::routes::admin::orders::settings::HoursView)]
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

/// The collections department's phone, to call about an unpaid debit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionsView {
    /// The number as the organization typed it.
    #[schema(example = "01 23 45 67 89")]
    pub phone: String,
    /// The same as a `tel:` link, for click-to-call.
    #[schema(example = "tel:0123456789")]
    pub tel: String,
}

/// The contact channels, and the collections phone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyContactChannels {
    /// The IANA zone the hours are in.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    pub data: Vec<ContactChannelView>,
    /// The collections phone (the organization's collections number, else
    /// its support number); null when it has neither.
    pub collections: Option<CollectionsView>,
}

/// The organization's contact channels and whether each is open now.
///
/// The organization's contact channels with their opening hours and whether
/// each is open now (hours in the organization's time zone, instants in
/// UTC), and the collections phone with its `tel:` link.
#[utoipa::path(
    operation_id = "listMyContactChannels",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The channels, in display order, and the collections phone.", body = MyContactChannels),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("")]
pub async fn list(
    principal: CustomerPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<MyContactChannels>, ApiError> {
    let now = state.clock.now();
    let store = state.store.clone();
    let (channels, phone) = web::block(move || {
        let mut conn = store.conn()?;
        let channels = load_channels(&mut conn, &principal.org_id)?;
        let phone = super::regularization::collections_phone(&mut conn, &principal.org_id)?;
        Ok::<_, ApiError>((channels, phone))
    })
    .await??;
    let list = channel_list(&channels, now);
    Ok(web::Json(MyContactChannels {
        time_zone: list.time_zone,
        data: list.data,
        collections: phone.map(|phone| CollectionsView {
            tel: super::regularization::tel_link(&phone),
            phone,
        }),
    }))
}
