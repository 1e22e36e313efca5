//! RFC 9457 problem details: the one error type of the HTTP layer.
//!
//! Handlers return [`ApiError`]; the edge middleware renders it in the
//! request's language with the request id. Internal causes are logged, never
//! sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use guichet_domain::Locale;
use guichet_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The content type of every error answer.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Stable, machine-readable problem codes: what clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The body is not valid JSON (syntax, encoding, nesting depth).
    MalformedJson,
    /// The body has a field the operation does not know.
    UnknownField,
    /// A field is missing, of the wrong type or out of range.
    InvalidField,
    /// A query-string or path parameter is missing, malformed or out of range.
    InvalidParameter,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The request head (headers) is too large.
    RequestHeaderTooLarge,
    /// No such route, or the resource does not exist or is not yours.
    NotFound,
    /// The route exists but not with this method (see `Allow`).
    MethodNotAllowed,
    /// The request's `Origin` is not an allowed origin.
    OriginNotAllowed,
    /// Any other malformed request.
    BadRequest,
    /// The database cannot be reached right now; retry later.
    DatabaseUnavailable,
    /// An unexpected error; quote the request id to support.
    InternalError,
}

impl ProblemCode {
    /// The code as it appears in `code` and at the end of `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::MalformedJson => "malformed_json",
            ProblemCode::UnknownField => "unknown_field",
            ProblemCode::InvalidField => "invalid_field",
            ProblemCode::InvalidParameter => "invalid_parameter",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::RequestHeaderTooLarge => "request_header_too_large",
            ProblemCode::NotFound => "not_found",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::OriginNotAllowed => "origin_not_allowed",
            ProblemCode::BadRequest => "bad_request",
            ProblemCode::DatabaseUnavailable => "database_unavailable",
            ProblemCode::InternalError => "internal_error",
        }
    }

    /// The status this code is always answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ProblemCode::MalformedJson
            | ProblemCode::UnknownField
            | ProblemCode::InvalidField
            | ProblemCode::InvalidParameter
            | ProblemCode::BadRequest => StatusCode::BAD_REQUEST,
            ProblemCode::OriginNotAllowed => StatusCode::FORBIDDEN,
            ProblemCode::NotFound => StatusCode::NOT_FOUND,
            ProblemCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemCode::RequestHeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProblemCode::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short human title, in French and English.
    pub fn title(self, locale: Locale) -> &'static str {
        let (fr, en) = match self {
            ProblemCode::MalformedJson => ("Corps JSON illisible", "Malformed JSON body"),
            ProblemCode::UnknownField => ("Champ inconnu", "Unknown field"),
            ProblemCode::InvalidField => ("Champ invalide", "Invalid field"),
            ProblemCode::InvalidParameter => ("Paramètre invalide", "Invalid parameter"),
            ProblemCode::UnsupportedMediaType => (
                "Type de contenu non pris en charge",
                "Unsupported media type",
            ),
            ProblemCode::PayloadTooLarge => ("Requête trop volumineuse", "Payload too large"),
            ProblemCode::RequestHeaderTooLarge => (
                "En-têtes de requête trop volumineux",
                "Request header too large",
            ),
            ProblemCode::NotFound => ("Ressource introuvable", "Not found"),
            ProblemCode::MethodNotAllowed => ("Méthode non autorisée", "Method not allowed"),
            ProblemCode::OriginNotAllowed => ("Origine non autorisée", "Origin not allowed"),
            ProblemCode::BadRequest => ("Requête invalide", "Bad request"),
            ProblemCode::DatabaseUnavailable => {
                ("Base de données indisponible", "Database unavailable")
            }
            ProblemCode::InternalError => ("Erreur interne", "Internal error"),
        };
        match locale {
            Locale::Fr => fr,
            Locale::En => en,
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ProblemCode; 13] = [
        ProblemCode::MalformedJson,
        ProblemCode::UnknownField,
        ProblemCode::InvalidField,
        ProblemCode::InvalidParameter,
        ProblemCode::UnsupportedMediaType,
        ProblemCode::PayloadTooLarge,
        ProblemCode::RequestHeaderTooLarge,
        ProblemCode::NotFound,
        ProblemCode::MethodNotAllowed,
        ProblemCode::OriginNotAllowed,
        ProblemCode::BadRequest,
        ProblemCode::DatabaseUnavailable,
        ProblemCode::InternalError,
    ];
}

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    pub fr: String,
    pub en: String,
}

impl Localized {
    pub fn new(fr: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            fr: fr.into(),
            en: en.into(),
        }
    }

    pub fn get(&self, locale: Locale) -> &str {
        match locale {
            Locale::Fr => &self.fr,
            Locale::En => &self.en,
        }
    }
}

/// One field-level reason inside a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (dotted path for nested fields); empty for the body.
    pub field: String,
    /// A stable code for this field's refusal.
    pub code: String,
}

/// The RFC 9457 body every error answers with.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://guichet.dev/problems/unknown-field",
    "title": "Champ inconnu",
    "status": 400,
    "code": "unknown_field",
    "detail": "Le champ « colour » n'est pas attendu.",
    "request_id": "req_0123456789abcdefghjk",
    "errors": [{"field": "colour", "code": "unknown"}]
}))]
pub struct Problem {
    /// A URI naming the problem type; its last segment is `code` in kebab-case.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary in the negotiated language (`Accept-Language`: fr or en).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable code clients branch on.
    pub code: ProblemCode,
    /// What happened in this case, in the negotiated language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, also in the `X-Request-Id` header; quote it to support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level reasons, when the problem is about the request's fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: Option<Box<Localized>>,
    pub errors: Vec<FieldError>,
    /// A status other than the code's own, for framework errors that have
    /// no code of their own (e.g. 408): the status is kept, the code is the
    /// generic one.
    pub status_override: Option<StatusCode>,
    /// Extra headers such as `Allow` or `Retry-After`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The internal cause: logged with the request id, never sent.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(code: ProblemCode) -> Self {
        Self {
            code,
            detail: None,
            errors: Vec::new(),
            status_override: None,
            headers: Vec::new(),
            cause: None,
        }
    }

    pub fn detail(mut self, fr: impl Into<String>, en: impl Into<String>) -> Self {
        self.detail = Some(Box::new(Localized::new(fr, en)));
        self
    }

    pub fn field(mut self, field: impl Into<String>, code: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            code: code.into(),
        });
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// An unexpected failure: the client sees a generic problem only.
    pub fn internal(cause: impl Into<String>) -> Self {
        ApiError::new(ProblemCode::InternalError).cause(cause)
    }

    pub fn not_found() -> Self {
        ApiError::new(ProblemCode::NotFound)
    }

    pub fn status(&self) -> StatusCode {
        self.status_override.unwrap_or_else(|| self.code.status())
    }

    /// The body in `locale`, carrying `request_id`.
    pub fn to_problem(&self, locale: Locale, request_id: Option<&str>) -> Problem {
        Problem {
            type_uri: format!(
                "https://guichet.dev/problems/{}",
                self.code.as_str().replace('_', "-")
            ),
            title: self.code.title(locale).to_owned(),
            status: self.status().as_u16(),
            code: self.code,
            detail: self.detail.as_ref().map(|d| d.get(locale).to_owned()),
            request_id: request_id.map(str::to_owned),
            errors: self.errors.clone(),
        }
    }

    /// The full HTTP answer in `locale`.
    pub fn render(&self, locale: Locale, request_id: Option<&str>) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        response.content_type(PROBLEM_CONTENT_TYPE);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.to_problem(locale, request_id))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    /// The default rendering (French, no request id); the edge middleware
    /// renders it again in the request's language with its id.
    fn error_response(&self) -> HttpResponse {
        self.render(Locale::Fr, None)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Unavailable(cause) => {
                ApiError::new(ProblemCode::DatabaseUnavailable).cause(cause)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::internal(format!("blocking task failed: {error}"))
    }
}
