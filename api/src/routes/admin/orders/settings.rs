//! `/v1/admin/settings/payments` and `/v1/admin/settings/contact-channels`:
//! what the organization decides about debits and card changes, and how
//! its customers reach it.

use actix_web::{get, put, web};
use chrono::{DateTime, NaiveTime, Utc};
use guichet_domain::card::CardBrand;
use guichet_domain::contact::Msisdn;
use guichet_domain::contact_channels::{
    self, Channel, ChannelKind, ContactChannels, DayRanges, HoursError, OpeningHours, OrgTimeZone,
    WeeklyHours,
};
use guichet_domain::schedule::RetryPolicy;
use guichet_store::StoreError;
use guichet_store::db::DbConnection;
use guichet_store::repo::payment::{self, PaymentSettings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{AdminPrincipal, StaffPrincipal};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, ROLE_FAILURE};
use crate::state::AppState;

// ---------------------------------------------------------------- payments

/// How failed debits are retried.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryView {
    /// Retries after the first failed attempt, 0 to 5.
    #[validate(range(max = 5))]
    #[schema(example = 1, maximum = 5)]
    pub retries: u32,
    /// Days between a failed attempt and its retry, 1 to 30.
    #[validate(range(min = 1, max = 30))]
    #[schema(example = 3, minimum = 1, maximum = 30)]
    pub delay_days: u32,
}

/// The organization's payment settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentSettingsView {
    /// E.164; shown as a `tel:` link when a payment fails.
    #[schema(example = "+33140000000")]
    pub collections_phone: Option<String>,
    /// Days before the next debit within which the card cannot change.
    #[schema(example = 7)]
    pub card_change_notice_days: u32,
    /// Brands customers may pay with: `visa`, `mastercard`, `amex`, `other`.
    #[schema(value_type = Vec<crate::routes::enums::CardBrand>, example = json!(["visa", "mastercard"]))]
    pub accepted_brands: Vec<CardBrand>,
    pub retry: RetryView,
    /// Whether customers may pay part of an invoice (at least one minor
    /// unit, never more than what is due).
    pub invoice_partial_payments: bool,
    /// When they were last set; null while the defaults apply.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<PaymentSettings> for PaymentSettingsView {
    fn from(s: PaymentSettings) -> Self {
        PaymentSettingsView {
            collections_phone: s.collections_phone,
            card_change_notice_days: s.card_change_notice_days,
            accepted_brands: s.accepted_brands,
            retry: RetryView {
                retries: s.retry.retries,
                delay_days: s.retry.delay_days,
            },
            invoice_partial_payments: s.invoice_partial_payments,
            updated_at: s.updated_at,
        }
    }
}

/// The payment settings, replaced as a whole.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPaymentSettings {
    /// E.164, or null for none.
    #[schema(value_type = Option<String>, example = "+33140000000", pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub collections_phone: Option<Msisdn>,
    /// 0 to 60.
    #[validate(range(max = 60))]
    #[schema(example = 7, maximum = 60)]
    pub card_change_notice_days: u32,
    /// At least one of `visa`, `mastercard`, `amex`, `other`.
    #[validate(length(min = 1, max = 4))]
    #[schema(value_type = Vec<crate::routes::enums::CardBrand>, example = json!(["visa", "mastercard"]), min_items = 1, max_items = 4)]
    pub accepted_brands: Vec<CardBrand>,
    #[validate(nested)]
    pub retry: RetryView,
    /// Whether customers may pay part of an invoice (default false).
    #[serde(default)]
    #[schema(default = false)]
    pub invoice_partial_payments: bool,
}

/// The payment settings (the defaults until an admin sets them).
#[utoipa::path(
    operation_id = "getPaymentSettings",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = PaymentSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/payments")]
pub async fn get_payments(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<PaymentSettingsView>, ApiError> {
    let store = state.store.clone();
    let settings = web::block(move || {
        let mut conn = store.conn()?;
        payment::get(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(settings.into()))
}

/// Replace the payment settings (admins only).
#[utoipa::path(
    operation_id = "replacePaymentSettings",
    tag = "admin",
    security(("bearer" = [])),
    request_body = PutPaymentSettings,
    responses(
        (status = 200, description = "The settings as stored.", body = PaymentSettingsView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (agents and API keys may not). Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/payments")]
pub async fn put_payments(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<PutPaymentSettings>,
) -> Result<web::Json<PaymentSettingsView>, ApiError> {
    let body = body.0;
    let mut brands: Vec<CardBrand> = Vec::new();
    for brand in body.accepted_brands {
        if !brands.contains(&brand) {
            brands.push(brand);
        }
    }
    let settings = PaymentSettings {
        org_id: principal.org_id.clone(),
        collections_phone: body.collections_phone.map(|m| m.as_str().to_owned()),
        card_change_notice_days: body.card_change_notice_days,
        accepted_brands: brands,
        retry: RetryPolicy {
            retries: body.retry.retries,
            delay_days: body.retry.delay_days,
        },
        invoice_partial_payments: body.invoice_partial_payments,
        updated_at: None,
    };
    let now = state.clock.now();
    let store = state.store.clone();
    let stored = web::block(move || {
        let mut conn = store.conn()?;
        payment::put(&mut conn, &settings, now)?;
        payment::get(&mut conn, &settings.org_id)
    })
    .await??;
    Ok(web::Json(stored.into()))
}

// -------------------------------------------------------- contact channels

/// `"always"`: around the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Always {
    Always,
}

/// Opening ranges per weekday, `[["09:00", "20:00"]]` (local `HH:MM`,
/// start before end, not overlapping); a day absent or `[]` is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekView {
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub monday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub tuesday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub wednesday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub thursday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub friday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub saturday: Vec<[String; 2]>,
    #[serde(default)]
    #[schema(schema_with = opening_ranges)]
    pub sunday: Vec<[String; 2]>,
}

/// A day's opening ranges: pairs of local times `HH:MM` (00:00 to 23:59).
fn opening_ranges() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let time = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"));
    let range = ArrayBuilder::new()
        .items(time)
        .min_items(Some(2))
        .max_items(Some(2));
    ArrayBuilder::new()
        .items(range)
        .examples([serde_json::json!([["09:00", "20:00"]])])
        .build()
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl WeekView {
    fn days(&self) -> [&Vec<[String; 2]>; 7] {
        [
            &self.monday,
            &self.tuesday,
            &self.wednesday,
            &self.thursday,
            &self.friday,
            &self.saturday,
            &self.sunday,
        ]
    }

    fn from_days(days: &[DayRanges; 7]) -> Self {
        let day = |k: usize| -> Vec<[String; 2]> {
            days[k]
                .iter()
                .map(|(s, e)| [s.format("%H:%M").to_string(), e.format("%H:%M").to_string()])
                .collect()
        };
        WeekView {
            monday: day(0),
            tuesday: day(1),
            wednesday: day(2),
            thursday: day(3),
            friday: day(4),
            saturday: day(5),
            sunday: day(6),
        }
    }
}

/// When a channel is available: `"always"`, or weekly hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum HoursView {
    Always(Always),
    Weekly(WeekView),
}

impl From<&OpeningHours> for HoursView {
    fn from(hours: &OpeningHours) -> Self {
        match hours {
            OpeningHours::Always => HoursView::Always(Always::Always),
            OpeningHours::Weekly(w) => HoursView::Weekly(WeekView::from_days(w.days())),
        }
    }
}

/// One way to reach the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelView {
    /// `chat`, `whatsapp`, `contact_form`, `chatbot`, `faq`, `phone` or
    /// `email`.
    #[schema(value_type = crate::routes::enums::ChannelKind, example = "chat")]
    pub kind: ChannelKind,
    /// The name shown to customers.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "Chat avec un conseiller",
        min_length = 1,
        max_length = 100,
        pattern = r"\S"
    )]
    pub label: String,
    pub hours: HoursView,
}

/// The organization's contact channels, in display order, with the time
/// zone of their hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChannelsView {
    /// An IANA time-zone name.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "Europe/Paris", min_length = 1, max_length = 64)]
    pub time_zone: String,
    /// At most 20.
    #[validate(length(max = 20), nested)]
    #[schema(max_items = 20)]
    pub channels: Vec<ChannelView>,
}

impl From<&ContactChannels> for ContactChannelsView {
    fn from(c: &ContactChannels) -> Self {
        ContactChannelsView {
            time_zone: c.time_zone.name().to_owned(),
            channels: c
                .channels
                .iter()
                .map(|ch| ChannelView {
                    kind: ch.kind,
                    label: ch.label.clone(),
                    hours: HoursView::from(&ch.hours),
                })
                .collect(),
        }
    }
}

fn hours_problem(field: String, error: &HoursError) -> ApiError {
    ApiError::new(ProblemCode::InvalidOpeningHours)
        .detail(
            format!("Horaires d'ouverture invalides : {error}."),
            format!("Invalid opening hours: {error}."),
        )
        .field(field, error.code())
}

fn time(value: &str, field: &str) -> Result<NaiveTime, ApiError> {
    let ok = value.len() == 5 && value.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(value, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::new(ProblemCode::InvalidField)
                .detail(
                    format!("« {value} » n'est pas une heure HH:MM."),
                    format!("`{value}` is not an HH:MM time."),
                )
                .field(field, "invalid_time")
        })
}

impl ContactChannelsView {
    /// The channels as the domain reads them, checked.
    pub fn to_domain(&self) -> Result<ContactChannels, ApiError> {
        let time_zone = OrgTimeZone::parse(&self.time_zone)
            .map_err(|e| hours_problem("time_zone".to_owned(), &e))?;
        let mut channels = Vec::with_capacity(self.channels.len());
        for (index, channel) in self.channels.iter().enumerate() {
            let hours = match &channel.hours {
                HoursView::Always(_) => OpeningHours::Always,
                HoursView::Weekly(week) => {
                    let mut days: [DayRanges; 7] = Default::default();
                    for (k, ranges) in week.days().into_iter().enumerate() {
                        for (r, [start, end]) in ranges.iter().enumerate() {
                            let field = format!("channels[{index}].hours.{}[{r}]", DAY_NAMES[k]);
                            days[k].push((time(start, &field)?, time(end, &field)?));
                        }
                    }
                    OpeningHours::Weekly(
                        WeeklyHours::new(days)
                            .map_err(|e| hours_problem(format!("channels[{index}].hours"), &e))?,
                    )
                }
            };
            channels.push(Channel {
                kind: channel.kind,
                label: channel.label.trim().to_owned(),
                hours,
            });
        }
        Ok(ContactChannels {
            time_zone,
            channels,
        })
    }
}

/// The organization's contact channels as stored, or the seed defaults
/// when none were set. The channels are stored in the domain's own JSON
/// form (`Vec<Channel>`), which `/v1/me/contact-channels` reads too; the
/// API form (`ChannelView`) is read as well.
pub fn stored_contact_channels(
    conn: &mut DbConnection,
    org_id: &str,
) -> Result<ContactChannels, ApiError> {
    let Some((time_zone, json)) = payment::contact_channels(conn, org_id)? else {
        return Ok(contact_channels::seed_defaults());
    };
    let invalid = |e: String| {
        ApiError::from(StoreError::Database(format!(
            "stored contact channels are invalid: {e}"
        )))
    };
    let zone = OrgTimeZone::parse(&time_zone).map_err(|e| invalid(e.to_string()))?;
    if let Ok(channels) = serde_json::from_str::<Vec<Channel>>(&json) {
        return Ok(ContactChannels {
            time_zone: zone,
            channels,
        });
    }
    let channels: Vec<ChannelView> =
        serde_json::from_str(&json).map_err(|e| invalid(e.to_string()))?;
    ContactChannelsView {
        time_zone,
        channels,
    }
    .to_domain()
    .map_err(|e| invalid(e.to_string()))
}

/// The contact channels customers see.
///
/// The contact channels customers see (the defaults until an admin sets
/// them).
#[utoipa::path(
    operation_id = "getContactChannelSettings",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The channels.", body = ContactChannelsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/contact-channels")]
pub async fn get_contact_channels(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<ContactChannelsView>, ApiError> {
    let store = state.store.clone();
    let channels = web::block(move || {
        let mut conn = store.conn()?;
        stored_contact_channels(&mut conn, &principal.org_id)
    })
    .await??;
    Ok(web::Json(ContactChannelsView::from(&channels)))
}

/// Replace the contact channels (admins only).
#[utoipa::path(
    operation_id = "replaceContactChannelSettings",
    tag = "admin",
    security(("bearer" = [])),
    request_body = ContactChannelsView,
    responses(
        (status = 200, description = "The channels as stored (ranges sorted).", body = ContactChannelsView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (agents and API keys may not). Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown time zone, a range that does not start before it ends, overlapping ranges (`errors[].code`: `unknown_time_zone`, `opening_range_start_not_before_end`, `opening_ranges_overlap`). Codes: `invalid_opening_hours`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/contact-channels")]
pub async fn put_contact_channels(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<ContactChannelsView>,
) -> Result<web::Json<ContactChannelsView>, ApiError> {
    let channels = body.0.to_domain()?;
    let view = ContactChannelsView::from(&channels);
    let json = serde_json::to_string(&channels.channels)
        .map_err(|e| ApiError::internal(format!("serializing contact channels: {e}")))?;
    let now = state.clock.now();
    let store = state.store.clone();
    let time_zone = view.time_zone.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        payment::put_contact_channels(&mut conn, &principal.org_id, &time_zone, &json, now)
    })
    .await??;
    Ok(web::Json(view))
}
