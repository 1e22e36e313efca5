//! The JSON body extractor every operation uses: content type, size limit,
//! strict parsing with the failing field's path, then `validator` rules.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::problem::{ApiError, ProblemCode};

/// The one route that takes card numbers: the sandbox gateway's
/// tokenization, for tests and demos.
pub const CARD_TOKENIZATION_PATH: &str = "/v1/sandbox/card-tokens";

/// Whether a JSON body holds, anywhere, a string or number that looks like
/// a card number (13–19 digits passing the Luhn check). Such a body is
/// refused before it is parsed into a request, and never logged.
pub fn carries_card_number(body: &[u8]) -> bool {
    fn walk(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => guichet_domain::gateway::looks_like_pan(s),
            serde_json::Value::Number(n) => guichet_domain::gateway::looks_like_pan(&n.to_string()),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.values().any(walk),
            _ => false,
        }
    }
    // Cheap pre-check: a card number needs 13 digits in the body.
    if body.iter().filter(|b| b.is_ascii_digit()).count() < 13 {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| walk(&v))
}

/// The largest body accepted, in bytes (set from configuration).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON body, parsed and validated. Unknown fields are refused when `T`
/// says `#[serde(deny_unknown_fields)]`, which every request DTO does.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> FromRequest for Json<T>
where
    T: DeserializeOwned + Validate + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map_or(64 * 1024, |l| l.0);
        let content_type_ok = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        let accepts_card_numbers = req.path() == CARD_TOKENIZATION_PATH;
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(ProblemCode::UnsupportedMediaType).detail(
                    "Le corps doit être envoyé en application/json.",
                    "The body must be sent as application/json.",
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(ProblemCode::BadRequest).cause(format!("reading body: {e}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(payload_too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            if !accepts_card_numbers && carries_card_number(&body) {
                return Err(ApiError::new(ProblemCode::CardNumberRefused).detail(
                    "Guichet ne reçoit jamais de numéro de carte : envoyez le jeton de la passerelle de paiement.",
                    "Guichet never takes card numbers: send the payment gateway's token.",
                ));
            }
            let value = parse::<T>(&body)?;
            value.validate().map_err(validation_problem)?;
            Ok(Json(value))
        })
    }
}

/// The problem for a body over `limit` bytes.
pub fn payload_too_large(limit: usize) -> ApiError {
    ApiError::new(ProblemCode::PayloadTooLarge).detail(
        format!("Le corps de la requête dépasse {limit} octets."),
        format!("The request body exceeds {limit} bytes."),
    )
}

/// Parses `bytes` as `T`, mapping each failure to its problem.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_problem(&path, &inner)
    })?;
    deserializer.end().map_err(|e| json_problem(".", &e))?;
    Ok(value)
}

fn json_problem(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let field = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(ProblemCode::MalformedJson).detail(
                format!(
                    "Le corps n'est pas un JSON valide (ligne {}, colonne {}).",
                    error.line(),
                    error.column()
                ),
                format!(
                    "The body is not valid JSON (line {}, column {}).",
                    error.line(),
                    error.column()
                ),
            )
        }
        Category::Data => {
            let message = error.to_string();
            if let Some(name) = quoted_after(&message, "unknown field `") {
                // The path already ends with the unknown field's name.
                let full = if field.is_empty() { name } else { field };
                ApiError::new(ProblemCode::UnknownField)
                    .detail(
                        format!("Le champ « {full} » n'est pas attendu."),
                        format!("The field `{full}` is not expected."),
                    )
                    .field(full, "unknown")
            } else if let Some(name) = quoted_after(&message, "missing field `") {
                let full = if field.is_empty() {
                    name.clone()
                } else {
                    format!("{field}.{name}")
                };
                ApiError::new(ProblemCode::InvalidField)
                    .detail(
                        format!("Le champ « {full} » est obligatoire."),
                        format!("The field `{full}` is required."),
                    )
                    .field(full, "required")
            } else {
                let shown = if field.is_empty() { "(body)" } else { &field };
                ApiError::new(ProblemCode::InvalidField)
                    .detail(
                        format!("Le champ « {shown} » a une valeur invalide."),
                        format!("The field `{shown}` has an invalid value."),
                    )
                    .field(field, "invalid")
                    .cause(message)
            }
        }
    }
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

/// Maps `validator` failures to one `invalid_field` problem listing each
/// field with its rule code.
pub fn validation_problem(errors: ValidationErrors) -> ApiError {
    let mut problem = ApiError::new(ProblemCode::InvalidField);
    let mut fields = Vec::new();
    collect(&errors, "", &mut fields);
    fields.sort();
    for (field, code) in &fields {
        problem = problem.field(field.clone(), code.clone());
    }
    let names = fields
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    problem.detail(
        format!("Champs invalides : {names}."),
        format!("Invalid fields: {names}."),
    )
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    out.push((path.clone(), e.code.to_string()));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}
