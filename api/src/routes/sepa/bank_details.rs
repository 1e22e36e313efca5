//! `/v1/me/bank-details`: what the IBAN form shows as the customer types:
//! whether the IBAN is valid, its masked form, and the BIC and bank name
//! proposed from the bank directory (which the customer may correct).

use actix_web::{get, web};
use guichet_domain::sepa::{BicError, Iban, IbanError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CustomerPrincipal;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::schedules::{AUTH_FAILURES, ROLE_FAILURE};
use crate::state::AppState;

/// The `iban_invalid` problem ("Format de l'IBAN incorrect") for `field`.
pub fn iban_problem(field: &str, error: &IbanError) -> ApiError {
    ApiError::new(ProblemCode::IbanInvalid)
        .detail("Format de l'IBAN incorrect", "IBAN format is incorrect")
        .field(field, error.code())
}

/// The `bic_invalid` or `bic_country_mismatch` problem for `field`.
pub fn bic_problem(field: &str, error: &BicError) -> ApiError {
    match error {
        BicError::Invalid => ApiError::new(ProblemCode::BicInvalid)
            .detail(
                "Le BIC comporte 8 ou 11 caractères : banque (4 lettres), pays (2 lettres), localité (2), agence (3, facultative).",
                "A BIC is 8 or 11 characters: bank (4 letters), country (2 letters), location (2), optional branch (3).",
            )
            .field(field, error.code()),
        BicError::CountryMismatch {
            bic_country,
            iban_country,
        } => ApiError::new(ProblemCode::BicCountryMismatch)
            .detail(
                format!(
                    "Le pays du BIC ({bic_country}) n'est pas celui de l'IBAN ({iban_country})."
                ),
                format!("The BIC's country ({bic_country}) is not the IBAN's ({iban_country})."),
            )
            .field(field, error.code()),
    }
}

/// `?iban=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BankDetailsQuery {
    /// The IBAN as typed: spaces and case do not matter.
    #[param(example = "FR76 3000 6000 0112 3456 7890 189")]
    pub iban: String,
}

/// A valid IBAN and what the directory knows of its bank.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankDetailsView {
    /// The electronic form (upper case, no spaces), to send back with the
    /// mandate.
    #[schema(example = "FR7630006000011234567890189")]
    pub iban: String,
    /// The form to display.
    #[schema(example = "FR76 **** **** **** **** ***0 189")]
    pub iban_masked: String,
    /// ISO 3166 country of the account.
    #[schema(example = "FR")]
    pub country: String,
    /// The national bank code inside the IBAN (null where Guichet does not
    /// know the country's layout).
    #[schema(example = "30006")]
    pub bank_code: Option<String>,
    /// The proposed BIC, which the customer may correct; null when the bank
    /// is not in the directory (see `bic_required`).
    #[schema(example = "AGRIFRPP")]
    pub bic: Option<String>,
    /// The bank's name when known.
    #[schema(example = "Crédit Agricole")]
    pub bank_name: Option<String>,
    /// True when no BIC can be proposed: the customer must type it.
    #[schema(example = false)]
    pub bic_required: bool,
}

/// Check an IBAN and propose its bank's BIC.
#[utoipa::path(
    operation_id = "checkMyBankDetails",
    tag = "me",
    security(("bearer" = [])),
    params(BankDetailsQuery),
    responses(
        (status = 200, description = "The IBAN is valid; the BIC is proposed when the bank is known (`bic_required` otherwise).", body = BankDetailsView),
        (status = 400, description = "`iban` missing, or another parameter. Codes: `invalid_parameter`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_FAILURES, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = ROLE_FAILURE, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The IBAN's format, country format or check digits are wrong (\"Format de l'IBAN incorrect\"). Codes: `iban_invalid`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/me/bank-details")]
pub async fn bank_details(
    _principal: CustomerPrincipal,
    state: web::Data<AppState>,
    query: web::Query<BankDetailsQuery>,
) -> Result<web::Json<BankDetailsView>, ApiError> {
    let iban = Iban::parse(&query.iban).map_err(|e| iban_problem("iban", &e))?;
    let bank = state.bank_directory.lookup_iban(&iban);
    Ok(web::Json(BankDetailsView {
        iban: iban.as_str().to_owned(),
        iban_masked: iban.masked(),
        country: iban.country().to_owned(),
        bank_code: iban.bank_code().map(str::to_owned),
        bic: bank.map(|b| b.bic.as_str().to_owned()),
        bank_name: bank.map(|b| b.name.clone()),
        bic_required: bank.is_none(),
    }))
}
