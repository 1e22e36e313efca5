//! The portal's request and response shapes shared by its routes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use guichet_domain::Locale;
use guichet_domain::identity::LoginMethods;
use guichet_domain::portal::{ActionSetting, PortalAction};
use guichet_store::repo::portal::PortalSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// A portal action (one of the portal's call-to-action buttons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Bookings,
    Payments,
    Documents,
    Messages,
}

impl From<ActionName> for PortalAction {
    fn from(a: ActionName) -> Self {
        match a {
            ActionName::Bookings => PortalAction::Bookings,
            ActionName::Payments => PortalAction::Payments,
            ActionName::Documents => PortalAction::Documents,
            ActionName::Messages => PortalAction::Messages,
        }
    }
}

impl From<PortalAction> for ActionName {
    fn from(a: PortalAction) -> Self {
        match a {
            PortalAction::Bookings => ActionName::Bookings,
            PortalAction::Payments => ActionName::Payments,
            PortalAction::Documents => ActionName::Documents,
            PortalAction::Messages => ActionName::Messages,
        }
    }
}

/// A button label per language (absent: the default label).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    #[validate(
        length(min = 1, max = 40),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 40, pattern = r"\S")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
    #[validate(
        length(min = 1, max = 40),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(min_length = 1, max_length = 40, pattern = r"\S")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Labels {
    pub fn to_map(&self) -> BTreeMap<Locale, String> {
        let mut m = BTreeMap::new();
        if let Some(fr) = &self.fr {
            m.insert(Locale::Fr, fr.trim().to_owned());
        }
        if let Some(en) = &self.en {
            m.insert(Locale::En, en.trim().to_owned());
        }
        m
    }

    pub fn from_map(m: &BTreeMap<Locale, String>) -> Self {
        Labels {
            fr: m.get(&Locale::Fr).cloned(),
            en: m.get(&Locale::En).cloned(),
        }
    }
}

/// One action as the business configured it.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub action: ActionName,
    pub enabled: bool,
    /// Label overrides per language.
    #[serde(default)]
    #[validate(nested)]
    pub labels: Labels,
}

impl From<&ActionSetting> for ActionConfig {
    fn from(s: &ActionSetting) -> Self {
        ActionConfig {
            action: s.action.into(),
            enabled: s.enabled,
            labels: Labels::from_map(&s.labels),
        }
    }
}

/// An action as a customer sees it: on or off, with its label in the
/// customer's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EffectiveAction {
    pub action: ActionName,
    pub enabled: bool,
    pub label: String,
}

impl EffectiveAction {
    pub fn new(s: &ActionSetting, locale: Locale) -> Self {
        EffectiveAction {
            action: s.action.into(),
            enabled: s.enabled,
            label: s.label(locale),
        }
    }
}

/// The portal's look and the business's contact details.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Branding {
    /// The name shown (the organization's name when none is set).
    pub display_name: String,
    /// `#rrggbb`.
    #[schema(example = "#0a7d6b")]
    pub accent_color: Option<String>,
    pub contact_email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub address: Option<String>,
    pub website: Option<String>,
    /// Where the logo is served (public), absent without a logo. Changes
    /// with the logo.
    #[schema(example = "/v1/portal/cabinet-kine/logo?v=3f2a9c1e")]
    pub logo_url: Option<String>,
}

impl Branding {
    pub fn new(s: &PortalSettings, org_name: &str, logo_sha256: Option<&str>) -> Self {
        Branding {
            display_name: s
                .display_name
                .clone()
                .unwrap_or_else(|| org_name.to_owned()),
            accent_color: s.accent_color.clone(),
            contact_email: s.contact_email.clone(),
            phone: s.phone.clone(),
            address: s.address.clone(),
            website: s.website.clone(),
            logo_url: logo_sha256.map(|sha| logo_url(&s.slug, sha)),
        }
    }
}

/// The public URL of a portal's logo (the hash in the query makes a new
/// logo a new URL).
pub fn logo_url(slug: &str, sha256: &str) -> String {
    format!(
        "/v1/portal/{slug}/logo?v={}",
        &sha256[..sha256.len().min(16)]
    )
}

/// How customers may sign in: by a code (SMS when a mobile is on file,
/// else e-mail), by password, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethods {
    Code,
    Password,
    Both,
}

impl From<LoginMethods> for SignInMethods {
    fn from(m: LoginMethods) -> Self {
        match m {
            LoginMethods::Password => SignInMethods::Password,
            LoginMethods::Passwordless => SignInMethods::Code,
            LoginMethods::Both => SignInMethods::Both,
        }
    }
}

impl From<SignInMethods> for LoginMethods {
    fn from(m: SignInMethods) -> Self {
        match m {
            SignInMethods::Password => LoginMethods::Password,
            SignInMethods::Code => LoginMethods::Passwordless,
            SignInMethods::Both => LoginMethods::Both,
        }
    }
}

/// The portal settings as the business sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalSettingsView {
    /// The public slug: `GET /v1/portal/{slug}`.
    #[schema(example = "cabinet-kine")]
    pub slug: String,
    /// Every action, in display order.
    pub actions: Vec<ActionConfig>,
    pub sign_in_methods: SignInMethods,
    pub branding: Branding,
    pub autopay: AutopaySettingsView,
    pub updated_at: DateTime<Utc>,
}

/// The business's autopay rules (seed 004) and who is told of autopay
/// changes. They apply at once to every open session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AutopaySettingsView {
    /// Customers may turn autopay on or off and change its method in the
    /// portal. Off: they can do neither (403 `autopay_change_not_allowed`).
    pub customers_can_change_autopay: bool,
    /// Saving a new payment method turns autopay on with it (whether or
    /// not customers may change autopay).
    pub auto_enable_on_new_method: bool,
    /// The "use this method for autopay" box starts checked when a
    /// customer adds a method (only its default state).
    pub checkbox_default: bool,
    /// Who receives the autopay e-mails; when unset, the branding's
    /// `contact_email`, else the organization's admins.
    #[schema(format = "email")]
    pub billing_contact_email: Option<String>,
}

impl AutopaySettingsView {
    pub fn new(s: &PortalSettings) -> Self {
        AutopaySettingsView {
            customers_can_change_autopay: s.autopay.customers_can_change,
            auto_enable_on_new_method: s.autopay.auto_enable_on_new_method,
            checkbox_default: s.autopay.checkbox_default,
            billing_contact_email: s.billing_contact_email.clone(),
        }
    }
}
