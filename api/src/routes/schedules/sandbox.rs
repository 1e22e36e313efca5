//! `POST /v1/sandbox/card-tokens`: the sandbox gateway's tokenization, for
//! tests and demos. The only route that takes a card number; the number and
//! the security code are never logged, stored or echoed.

use std::fmt;

use actix_web::{HttpResponse, post, web};
use guichet_domain::gateway::{CardDetails, Cvc, GatewayError, Pan};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::routes::views::CardSummary;
use crate::state::AppState;

/// Text that may be card data: it deserializes only from a JSON string, and
/// a refusal never quotes the value (serde's usual "invalid type: integer
/// `4242...`" would put the number in the logs).
pub struct Sensitive(String);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        // Best effort: overwrite the text before it is freed.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

struct SensitiveVisitor;

impl Visitor<'_> for SensitiveVisitor {
    type Value = Sensitive;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Sensitive, E> {
        Ok(Sensitive(v.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Sensitive, E> {
        Err(E::custom("expected a string"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Sensitive, E> {
        Err(E::custom("expected a string"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Sensitive, E> {
        Err(E::custom("expected a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Sensitive, E> {
        Err(E::custom("expected a string"))
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SensitiveVisitor)
    }
}

/// Card details to exchange for a sandbox token. Test cards only (see the
/// sandbox gateway's documented numbers); any future expiry; a 3-digit code
/// (4 for Amex).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCardToken {
    /// The card number (digits, spaces or hyphens allowed).
    #[schema(value_type = String, example = "4242424242424242")]
    pub number: Sensitive,
    #[validate(range(min = 1, max = 12))]
    #[schema(example = 12, minimum = 1, maximum = 12)]
    pub exp_month: u8,
    /// 2000 to 2099.
    #[validate(range(min = 2000, max = 2099))]
    #[schema(example = 2030, minimum = 2000, maximum = 2099)]
    pub exp_year: u16,
    /// The security code.
    #[schema(value_type = String, example = "123")]
    pub cvc: Sensitive,
}

/// A card token and what may be shown of its card.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardTokenView {
    /// Pass it as `card_token` to the card change or the regularization.
    #[schema(example = "tok_sandbox_001220308f3a9c1d2e4b5a6c7")]
    pub token: String,
    pub card: CardSummary,
}

/// The problem for a gateway refusal.
pub fn gateway_problem(error: &GatewayError) -> ApiError {
    match error {
        GatewayError::Declined { .. } => ApiError::new(ProblemCode::CardDeclined).detail(
            "La banque a refusé la carte.",
            "The card was declined by the issuer.",
        ),
        GatewayError::ExpiredCard => ApiError::new(ProblemCode::CardExpired)
            .detail("La carte est expirée.", "The card has expired."),
        GatewayError::InvalidCard => ApiError::new(ProblemCode::InvalidCard).detail(
            "Les données de la carte ne sont pas valides (date d'expiration, code de sécurité).",
            "The card details are not valid (expiry date, security code).",
        ),
        GatewayError::UnknownToken => ApiError::new(ProblemCode::CardTokenInvalid)
            .detail(
                "Ce jeton de carte est inconnu de la passerelle de paiement.",
                "This card token is unknown to the payment gateway.",
            )
            .field("card_token", "unknown"),
        GatewayError::Unavailable => ApiError::new(ProblemCode::GatewayUnavailable).detail(
            "La passerelle de paiement ne répond pas ; réessayez dans un instant.",
            "The payment gateway is not answering; retry shortly.",
        ),
        GatewayError::Timeout => ApiError::new(ProblemCode::GatewayTimeout).detail(
            "La passerelle de paiement n'a pas répondu à temps : le résultat du paiement n'est pas encore connu. Réessayez avec la même clé d'idempotence.",
            "The payment gateway did not answer in time: the payment's outcome is not known yet. Retry with the same idempotency key.",
        ),
        other => ApiError::internal(format!("gateway: {}", other.code())),
    }
}

/// Exchange test card details for a token (sandbox gateway only).
///
/// Exchange test card details for a token (sandbox gateway only; this route
/// answers 404 with a real gateway). The number and the code are neither
/// stored nor logged nor echoed.
#[utoipa::path(
    operation_id = "createSandboxCardToken",
    security(()),
    tag = "sandbox",
    request_body = NewCardToken,
    responses(
        (status = 201, description = "The token and the card as shown.", body = CardTokenView),
        (status = 400, description = "A field is missing or malformed, or the number fails its check. Codes: `invalid_field`, `unknown_field`, `malformed_json`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not served: the payment gateway is not the sandbox. Codes: `not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The gateway refused the card. Codes: `card_declined` (also for any number that is not a test card), `card_expired`, `invalid_card`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Codes: `gateway_unavailable`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("")]
pub async fn tokenize(
    state: web::Data<AppState>,
    body: Json<NewCardToken>,
) -> Result<HttpResponse, ApiError> {
    if !state.sandbox {
        return Err(ApiError::not_found());
    }
    let body = body.0;
    let number = Pan::parse(&body.number.0).map_err(|e| {
        ApiError::new(ProblemCode::InvalidField)
            .detail(
                "Le numéro de carte n'est pas valide.",
                "The card number is not valid.",
            )
            .field("number", e.code())
    })?;
    let cvc = Cvc::parse(&body.cvc.0).map_err(|e| {
        ApiError::new(ProblemCode::InvalidField)
            .detail(
                "Le code de sécurité compte 3 ou 4 chiffres.",
                "The security code has 3 or 4 digits.",
            )
            .field("cvc", e.code())
    })?;
    let details = CardDetails {
        number,
        exp_month: body.exp_month,
        exp_year: body.exp_year,
        cvc,
    };
    let gateway = state.gateway.clone();
    let token = web::block(move || gateway.tokenize(details))
        .await?
        .map_err(|e| gateway_problem(&e))?;
    Ok(HttpResponse::Created().json(CardTokenView {
        card: CardSummary::from(&token.card),
        token: token.token,
    }))
}
