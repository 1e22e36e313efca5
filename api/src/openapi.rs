//! The OpenAPI document, assembled from the same route registrations the
//! server uses.

use actix_web::App;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Spec, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::problem::{FieldError, Problem, ProblemCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guichet API",
        description = "Customer self-service payment portal: instalment schedules, cards, \
regularization, SEPA mandates, autopay. Errors are RFC 9457 problem details \
(`application/problem+json`) with a stable `code`; `title` and `detail` follow \
`Accept-Language` (fr, en; default fr). Money is integer minor units with an ISO 4217 currency.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(Problem, ProblemCode, FieldError)),
    modifiers(&SecuritySchemes, &CommonResponses),
    tags(
        (name = "operations", description = "Health, readiness and metrics."),
        (name = "auth", description = "Sign-in for customers and staff: password, first connection, one-time codes, activation codes, password recovery, sessions. Rate limited per IP."),
        (name = "me", description = "The signed-in customer's own data (customer token)."),
        (name = "admin", description = "The business side: customers, staff, API keys, settings (staff token or API key)."),
        (name = "schedules", description = "The customer's instalment schedules: card change, regularization, contact channels (customer token)."),
        (name = "sandbox", description = "The built-in sandbox payment gateway: tokenization of test cards, and its ledger of the charges and refunds it received (served only when the sandbox is the gateway)."),
    ),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Spec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from /v1/auth/... (15 minutes). Customers use /v1/me, staff /v1/admin.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gk_...")
                    .description(Some(
                        "An organization's server-to-server API key (`Authorization: Bearer gk_...`), for /v1/admin.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the answers any operation can give, so that no status goes
/// undocumented: 431 and 500 everywhere; 400, 413 and 415 wherever a body
/// is read; 503 wherever the database is used.
struct CommonResponses;

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                )))),
            )
            .build(),
    )
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Spec) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let uses_database = path.starts_with("/v1/") && path != "/v1/auth/challenge";
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                let has_body = op.request_body.is_some();
                let has_parameters = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, text: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(text));
                };
                if has_body {
                    add(
                        "400",
                        "Malformed body, a body or field of the wrong JSON type, a control character in a string, or a card number anywhere in the body. Codes: `malformed_json`, `unknown_field`, `invalid_field`, `card_number_refused`.",
                    );
                    add(
                        "413",
                        "Body over the size limit. Codes: `payload_too_large`.",
                    );
                    add(
                        "415",
                        "Body not sent as application/json. Codes: `unsupported_media_type`.",
                    );
                }
                if has_parameters {
                    add(
                        "400",
                        "A path or query-string parameter is malformed or holds a control character. Codes: `invalid_parameter`.",
                    );
                }
                if uses_database {
                    add(
                        "503",
                        "The database cannot be reached; retry later. Codes: `database_unavailable`.",
                    );
                }
                add(
                    "431",
                    "Request headers over the size limit. Codes: `request_header_too_large`.",
                );
                add(
                    "500",
                    "Unexpected error; the body carries only the request id. Codes: `internal_error`.",
                );
            }
        }
    }
}

/// The complete OpenAPI document of this build.
pub fn spec() -> Spec {
    let (_, spec) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    let mut spec = spec;
    // Modifiers of ApiDoc ran before the routes were added; run the ones
    // that read the paths again now.
    CommonResponses.modify(&mut spec);
    spec.info.version = env!("CARGO_PKG_VERSION").to_owned();
    spec
}

/// The document as pretty JSON, exactly what `guichet openapi` prints and
/// what `openapi/openapi.json` holds.
pub fn spec_json() -> String {
    let mut json = spec().to_pretty_json().unwrap_or_else(|e| {
        // Serializing our own document cannot fail short of a bug.
        panic!("the OpenAPI document does not serialize: {e}")
    });
    json.push('\n');
    json
}
