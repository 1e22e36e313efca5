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

/// What a string somewhere in a body may not carry, with the path of the
/// field that carries it (`address[1]`, `meta.note`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A control character other than tab, CR and LF (NUL included).
    ControlCharacter(String),
    /// A card number, alone or inside longer text.
    CardNumber(String),
}

/// The first string of `value` (object keys included) that carries a
/// control character, or a card number when `refuse_cards`. Numbers are
/// checked for card numbers too.
pub fn scan(value: &serde_json::Value, refuse_cards: bool) -> Option<Refusal> {
    use guichet_domain::free_text::{contains_card_number, is_refused_control};
    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }
    fn text(s: &str, path: &str, cards: bool) -> Option<Refusal> {
        if s.chars().any(is_refused_control) {
            return Some(Refusal::ControlCharacter(path.to_owned()));
        }
        if cards && contains_card_number(s) {
            return Some(Refusal::CardNumber(path.to_owned()));
        }
        None
    }
    fn walk(value: &serde_json::Value, path: &str, cards: bool) -> Option<Refusal> {
        match value {
            serde_json::Value::String(s) => text(s, path, cards),
            serde_json::Value::Number(n) => (cards && contains_card_number(&n.to_string()))
                .then(|| Refusal::CardNumber(path.to_owned())),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"), cards)),
            serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
                let here = join(path, key);
                if key.chars().any(is_refused_control) {
                    return Some(Refusal::ControlCharacter(here));
                }
                walk(item, &here, cards)
            }),
            _ => None,
        }
    }
    walk(value, "", refuse_cards)
}

/// Whether a JSON body holds, anywhere, a string or number that carries a
/// card number (13–19 digits passing the Luhn check, alone or inside
/// text). Such a body is refused before it is parsed into a request, and
/// never logged.
pub fn carries_card_number(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| matches!(scan(&v, true), Some(Refusal::CardNumber(_))))
}

/// The problem for a refused string.
pub fn refusal_problem(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::CardNumber(field) => {
            let problem = ApiError::new(ProblemCode::CardNumberRefused).detail(
                "Guichet ne reçoit jamais de numéro de carte : envoyez le jeton de la passerelle de paiement.",
                "Guichet never takes card numbers: send the payment gateway's token.",
            );
            if field.is_empty() {
                problem
            } else {
                problem.field(field, "card_number")
            }
        }
        Refusal::ControlCharacter(field) => {
            let shown = if field.is_empty() { "(body)" } else { &field };
            ApiError::new(ProblemCode::InvalidField)
                .detail(
                    format!(
                        "Le champ « {shown} » contient un caractère de contrôle (seuls la tabulation et les retours à la ligne sont admis)."
                    ),
                    format!(
                        "The field `{shown}` holds a control character (only tab, carriage return and line feed are allowed)."
                    ),
                )
                .field(field, "control_character")
        }
    }
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
            let value = parse::<T>(&body, !accepts_card_numbers)?;
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

/// Parses `bytes` as `T`, mapping each failure to its problem: first the
/// JSON syntax, then what no string may carry (control characters, and card
/// numbers when `refuse_cards`), then the shape and types of `T` (a struct
/// must be a JSON object, at every depth).
pub fn parse<T: DeserializeOwned>(bytes: &[u8], refuse_cards: bool) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_problem(".", &e))?;
    if let Some(refusal) = scan(&value, refuse_cards) {
        return Err(refusal_problem(refusal));
    }
    serde_path_to_error::deserialize(super::strict::Strict(&value)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_problem(&path, &inner)
    })
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
            } else if let Some(expected) = expected_type(&message) {
                if field.is_empty() {
                    return ApiError::new(ProblemCode::InvalidField)
                        .detail(
                            format!("Le corps doit être {}.", expected.0),
                            format!("The body must be {}.", expected.1),
                        )
                        .cause(message);
                }
                ApiError::new(ProblemCode::InvalidField)
                    .detail(
                        format!("Le champ « {field} » doit être {}.", expected.0),
                        format!("The field `{field}` must be {}.", expected.1),
                    )
                    .field(field, "invalid_type")
                    .cause(message)
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

/// For serde's "invalid type: X, expected Y", what was expected, in French
/// and English words a client understands (never a Rust type name).
fn expected_type(message: &str) -> Option<(&'static str, &'static str)> {
    let rest = message.strip_prefix("invalid type: ")?;
    let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
    let expected = expected.split(" at line ").next().unwrap_or(expected);
    Some(
        if expected == "a JSON object" || expected.starts_with("struct ") || expected == "a map" {
            ("un objet JSON", "a JSON object")
        } else if expected == "a JSON array" || expected.starts_with("a sequence") {
            ("un tableau JSON", "a JSON array")
        } else if expected == "a boolean" {
            ("un booléen (true ou false)", "a boolean (true or false)")
        } else if [
            "u8",
            "u16",
            "u32",
            "u64",
            "u128",
            "usize",
            "i8",
            "i16",
            "i32",
            "i64",
            "i128",
            "isize",
            "an integer",
        ]
        .contains(&expected)
        {
            ("un nombre entier", "an integer")
        } else if ["f32", "f64", "a number"].contains(&expected) {
            ("un nombre", "a number")
        } else if expected.contains("string")
            || expected.starts_with("enum ")
            || expected.contains("variant")
        {
            ("une chaîne de caractères", "a string")
        } else {
            ("du type documenté", "of the documented type")
        },
    )
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
