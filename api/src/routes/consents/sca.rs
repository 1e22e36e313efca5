//! The sandbox issuer's strong-authentication page (3-D Secure style),
//! served only with the sandbox gateway: `GET /v1/sandbox/sca/{id}`, a
//! minimal HTML page with one button per outcome, and
//! `POST /v1/sandbox/sca/{id}`, the same answer as JSON (for tests and
//! scripts). The outcomes are those of the troubleshooting list: success,
//! card not enabled for online payments, card temporarily blocked in the
//! banking app, new card not yet activated, wrong data or PIN, technical
//! error.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, get, post, web};
use guichet_domain::gateway::sandbox::sca_outcome;
use guichet_store::repo::sca;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::edge::json::Json;
use crate::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;

const NOT_SERVED: &str =
    "No such session, or not served (the payment gateway is not the sandbox). Codes: `not_found`.";

/// The outcomes, with the page's labels.
const OUTCOMES: [(&str, &str); 6] = [
    ("succeeded", "Authentifier (succès)"),
    ("online_payments_disabled", "Carte sans paiements en ligne"),
    (
        "card_blocked",
        "Carte bloquée temporairement dans l'app bancaire",
    ),
    ("card_not_activated", "Carte neuve pas encore activée"),
    ("wrong_data", "Données ou code PIN incorrects"),
    ("technical_error", "Erreur technique"),
];

/// The sandbox issuer's page.
///
/// A minimal HTML page: one button per outcome, each posting it as JSON to
/// the same address. The cardholder then returns to the activation page,
/// which calls `POST /v1/consents/{token}/completion`.
#[utoipa::path(
    operation_id = "getSandboxScaPage",
    tag = "sandbox",
    security(()),
    params(("id" = String, Path, description = "The session (`sca_sandbox_...`).")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 404, description = NOT_SERVED, body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/{id}")]
pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.sandbox {
        return Err(ApiError::not_found());
    }
    let id = path.into_inner();
    let store = state.store.clone();
    let lookup = id.clone();
    let session = web::block(move || {
        let mut conn = store.conn()?;
        sca::get(&mut conn, &lookup)
    })
    .await??
    .ok_or_else(ApiError::not_found)?;
    let buttons: String = OUTCOMES
        .iter()
        .map(|(name, label)| {
            format!(
                "<p><button type=\"button\" onclick=\"answer('{name}')\">{label}</button></p>\n"
            )
        })
        .collect();
    let state_line = match &session.outcome {
        Some(outcome) => format!("<p>Réponse déjà donnée : <b>{outcome}</b>.</p>"),
        None => buttons,
    };
    // The id is ours (hex), so it is safe in the page as it is.
    let html = format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Banque (bac à sable) : authentification</title></head>\n<body>\n<h1>Banque (bac à sable)</h1>\n<p>Confirmez avec votre carte et votre lecteur de carte. Choisissez la réponse de la banque :</p>\n{state_line}<p id=\"done\"></p>\n<script>\nfunction answer(outcome) {{\n  fetch('/v1/sandbox/sca/{}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{outcome: outcome}})}})\n    .then(function (r) {{ document.getElementById('done').textContent = r.ok ? 'Réponse envoyée : retournez sur la page d\\'activation.' : 'Erreur ' + r.status; }});\n}}\n</script>\n</body></html>\n",
        session.id
    );
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(html))
}

/// The issuer's answer.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaAnswer {
    #[schema(value_type = crate::routes::enums::ScaOutcome, example = "succeeded")]
    pub outcome: String,
}

/// The session as answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScaSessionView {
    pub id: String,
    #[schema(value_type = crate::routes::enums::ScaOutcome, example = "succeeded")]
    pub outcome: String,
}

/// Answer the sandbox issuer's page.
///
/// What a button of the page does, as JSON: records the issuer's outcome
/// once. The server learns it by asking the gateway at completion.
#[utoipa::path(
    operation_id = "answerSandboxSca",
    tag = "sandbox",
    security(()),
    params(("id" = String, Path, description = "The session (`sca_sandbox_...`).")),
    request_body = ScaAnswer,
    responses(
        (status = 200, description = "Recorded.", body = ScaSessionView),
        (status = 400, description = "Codes: `malformed_json`, `unknown_field`, `invalid_field` (an unknown outcome).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_SERVED, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Codes: `sca_already_decided`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Codes: `unsupported_media_type`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/{id}")]
pub async fn decide(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<ScaAnswer>,
) -> Result<web::Json<ScaSessionView>, ApiError> {
    if !state.sandbox {
        return Err(ApiError::not_found());
    }
    let id = path.into_inner();
    let outcome = body.0.outcome;
    if sca_outcome(&outcome).is_none() {
        return Err(ApiError::new(ProblemCode::InvalidField)
            .detail(
                "outcome vaut succeeded, online_payments_disabled, card_blocked, card_not_activated, wrong_data ou technical_error.",
                "outcome must be succeeded, online_payments_disabled, card_blocked, card_not_activated, wrong_data or technical_error.",
            )
            .field("outcome", "invalid"));
    }
    let now = state.clock.now();
    let store = state.store.clone();
    let answer = outcome.clone();
    let lookup = id.clone();
    web::block(move || {
        let mut conn = store.conn()?;
        if sca::get(&mut conn, &lookup)?.is_none() {
            return Err(ApiError::not_found());
        }
        if !sca::decide(&mut conn, &lookup, &answer, now)? {
            return Err(ApiError::new(ProblemCode::ScaAlreadyDecided).detail(
                "La banque a déjà répondu pour cette authentification.",
                "The bank already answered for this authentication.",
            ));
        }
        Ok(())
    })
    .await??;
    Ok(web::Json(ScaSessionView { id, outcome }))
}
