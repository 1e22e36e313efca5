//! `/v1/admin/settings/creditor`: who collects SEPA direct debits for the
//! organization (name, address, creditor identifier, its own account) and
//! how many days before a collection the debtor is told of it.

use actix_web::{get, put, web};
use chrono::{DateTime, Utc};
use guichet_domain::sepa::{Bic, CreditorId, Iban, check_bic_matches_iban};
use guichet_store::repo::creditor::{self, CreditorSettings, DEFAULT_PRENOTIFICATION_DAYS};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{AdminPrincipal, StaffPrincipal};
use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::admin::{AUTH_FAILURES, ROLE_FAILURE};
use crate::routes::sepa::bank_details::{bic_problem, iban_problem};
use crate::state::AppState;

/// The organization's SEPA creditor settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditorSettingsView {
    /// The creditor's name, as on mandates and collection files.
    #[schema(example = "Régie Immobilière du Parc")]
    pub name: String,
    /// The postal address, one entry per line.
    #[schema(example = json!(["12 rue des Lilas", "75011 Paris", "France"]))]
    pub address: Vec<String>,
    /// The SEPA creditor identifier (ICS).
    #[schema(example = "FR72ZZZ123456")]
    pub creditor_id: String,
    /// The creditor's own account, credited by the collections (electronic
    /// form: upper case, no spaces).
    #[schema(example = "FR7630006000011234567890189")]
    pub iban: String,
    #[schema(example = "AGRIFRPP")]
    pub bic: String,
    /// Days between the pre-notification e-mail and the collection, 2 to 14.
    #[schema(example = 14)]
    pub prenotification_days: u32,
    pub updated_at: DateTime<Utc>,
}

impl From<CreditorSettings> for CreditorSettingsView {
    fn from(s: CreditorSettings) -> Self {
        CreditorSettingsView {
            name: s.name,
            address: s.address,
            creditor_id: s.creditor_id,
            iban: s.iban,
            bic: s.bic,
            prenotification_days: s.prenotification_days,
            updated_at: s.updated_at,
        }
    }
}

/// The creditor settings, replaced as a whole.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCreditorSettings {
    /// 1 to 70 characters (the SEPA limit).
    #[validate(
        length(min = 1, max = 70),
        custom(function = "crate::routes::admin::not_blank")
    )]
    #[schema(
        example = "Régie Immobilière du Parc",
        min_length = 1,
        max_length = 70,
        pattern = r"\S"
    )]
    pub name: String,
    /// 1 to 4 lines of 1 to 70 characters.
    #[validate(length(min = 1, max = 4), custom(function = "address_lines"))]
    #[schema(schema_with = crate::openapi::creditor_address)]
    pub address: Vec<String>,
    /// The SEPA creditor identifier; spaces and case do not matter.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "FR72ZZZ123456", min_length = 1, max_length = 64)]
    pub creditor_id: String,
    /// The account collections are credited to; spaces and case do not
    /// matter.
    #[validate(length(min = 1, max = 64))]
    #[schema(
        example = "FR76 3000 6000 0112 3456 7890 189",
        min_length = 1,
        max_length = 64
    )]
    pub iban: String,
    /// Its bank's BIC (8 or 11 characters, of the IBAN's country).
    #[validate(length(min = 1, max = 64))]
    #[schema(
        example = "AGRIFRPP",
        min_length = 1,
        max_length = 64,
        pattern = r"^ *([A-Za-z] *){6}[A-Za-z2-9] *[A-NP-Za-np-z0-9] *(([A-Za-z0-9] *){3})?$"
    )]
    pub bic: String,
    /// 2 to 14 (default 14).
    #[validate(range(min = 2, max = 14))]
    #[schema(example = 14, minimum = 2, maximum = 14)]
    pub prenotification_days: Option<u32>,
}

fn address_lines(lines: &[String]) -> Result<(), validator::ValidationError> {
    if lines
        .iter()
        .any(|l| l.trim().is_empty() || l.chars().count() > 70 || l.contains(['\n', '\r']))
    {
        return Err(validator::ValidationError::new("invalid_line"));
    }
    Ok(())
}

/// The creditor settings; 404 until an admin sets them.
#[utoipa::path(
    operation_id = "getCreditorSettings",
    tag = "admin",
    security(("bearer" = [])),
    extensions(("x-api-key" = json!(true))),
    responses(
        (status = 200, description = "The settings.", body = CreditorSettingsView),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never set: an admin must `PUT` them before any mandate can be signed. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/settings/creditor")]
pub async fn get_creditor(
    principal: StaffPrincipal,
    state: web::Data<AppState>,
) -> Result<web::Json<CreditorSettingsView>, ApiError> {
    let store = state.store.clone();
    let settings = web::block(move || {
        let mut conn = store.conn()?;
        creditor::get(&mut conn, &principal.org_id)
    })
    .await??;
    let settings = settings.ok_or_else(|| {
        ApiError::not_found().detail(
            "Les paramètres du créancier SEPA ne sont pas encore définis.",
            "The SEPA creditor settings have not been set yet.",
        )
    })?;
    Ok(web::Json(settings.into()))
}

/// Set or replace the creditor settings (admins only).
///
/// The identifier, IBAN and BIC are checked and stored in their normalized form.
#[utoipa::path(
    operation_id = "replaceCreditorSettings",
    tag = "admin",
    security(("bearer" = [])),
    request_body = PutCreditorSettings,
    responses(
        (status = 200, description = "The settings as stored.", body = CreditorSettingsView),
        (status = 400, description = "Malformed body, unknown field, wrong type, blank name, 0 or more than 4 address lines, `prenotification_days` outside 2–14. Codes: `malformed_json`, `unknown_field`, `invalid_field`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (agents and API keys may not). Codes: `forbidden`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The creditor identifier's format or check digits are wrong, the IBAN is wrong, the BIC is malformed or of another country than the IBAN (`errors[].field` names the field). Codes: `creditor_id_invalid`, `iban_invalid`, `bic_invalid`, `bic_country_mismatch`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[put("/v1/admin/settings/creditor")]
pub async fn put_creditor(
    principal: AdminPrincipal,
    state: web::Data<AppState>,
    body: Json<PutCreditorSettings>,
) -> Result<web::Json<CreditorSettingsView>, ApiError> {
    let body = body.0;
    let creditor_id = CreditorId::parse(&body.creditor_id).map_err(|e| {
        ApiError::new(ProblemCode::CreditorIdInvalid)
            .detail(
                "L'identifiant créancier SEPA est incorrect (format ou clé de contrôle).",
                "The SEPA creditor identifier is incorrect (format or check digits).",
            )
            .field("creditor_id", e.code())
    })?;
    let iban = Iban::parse(&body.iban).map_err(|e| iban_problem("iban", &e))?;
    let bic = Bic::parse(&body.bic).map_err(|e| bic_problem("bic", &e))?;
    check_bic_matches_iban(&bic, &iban).map_err(|e| bic_problem("bic", &e))?;
    let settings = CreditorSettings {
        org_id: principal.org_id.clone(),
        name: body.name.trim().to_owned(),
        address: body.address.iter().map(|l| l.trim().to_owned()).collect(),
        creditor_id: creditor_id.as_str().to_owned(),
        iban: iban.as_str().to_owned(),
        bic: bic.as_str().to_owned(),
        prenotification_days: body
            .prenotification_days
            .unwrap_or(DEFAULT_PRENOTIFICATION_DAYS),
        updated_at: state.clock.now(),
    };
    let now = settings.updated_at;
    let store = state.store.clone();
    let stored = web::block(move || {
        let mut conn = store.conn()?;
        creditor::put(&mut conn, &settings, now)?;
        creditor::get(&mut conn, &settings.org_id)
    })
    .await??;
    let stored = stored.ok_or_else(|| ApiError::internal("creditor settings vanished"))?;
    Ok(web::Json(stored.into()))
}
