//! The table of known paths and their methods, read from the OpenAPI spec,
//! so that an unknown path answers 404 and a known path with another method
//! answers 405 with `Allow`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, web};
use utoipa::openapi::OpenApi;

use crate::problem::{ApiError, ProblemCode};

/// Path templates (`/v1/me/schedules/{id}`) with their methods.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<Segment>, Vec<&'static str>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

impl RouteTable {
    /// Reads every path and method of `spec`.
    pub fn from_spec(spec: &OpenApi) -> Self {
        let mut routes = Vec::new();
        for (path, item) in &spec.paths.paths {
            let mut methods = Vec::new();
            let ops = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
            ];
            for (name, op) in ops {
                if op.is_some() {
                    methods.push(name);
                }
            }
            routes.push((parse(path), methods));
        }
        Self { routes }
    }

    /// The methods allowed on `path`, or `None` when no route matches.
    pub fn methods_for(&self, path: &str) -> Option<Vec<&'static str>> {
        let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut found: Option<Vec<&'static str>> = None;
        for (segments, methods) in &self.routes {
            if segments.len() == wanted.len()
                && segments.iter().zip(&wanted).all(|(s, w)| match s {
                    Segment::Literal(l) => l == w,
                    Segment::Param => !w.is_empty(),
                })
            {
                found.get_or_insert_with(Vec::new).extend(methods);
            }
        }
        found
    }
}

fn parse(template: &str) -> Vec<Segment> {
    template
        .trim_end_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// The default service: 405 with `Allow` for a known path, 404 otherwise.
pub async fn fallback(
    req: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<actix_web::HttpResponse, ApiError> {
    Err(match table.methods_for(req.path()) {
        Some(methods) if !methods.is_empty() => {
            let allow = methods.join(", ");
            let error = ApiError::new(ProblemCode::MethodNotAllowed).detail(
                format!("Méthodes acceptées : {allow}."),
                format!("Allowed methods: {allow}."),
            );
            match HeaderValue::from_str(&allow) {
                Ok(value) => error.header(header::ALLOW, value),
                Err(_) => error,
            }
        }
        _ => ApiError::new(ProblemCode::NotFound).detail(
            "Aucune ressource à cette adresse.",
            "No resource at this address.",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segments_and_collect_methods() {
        let table = RouteTable {
            routes: vec![
                (parse("/healthz"), vec!["GET"]),
                (parse("/v1/me/items/{id}"), vec!["GET", "DELETE"]),
                (parse("/v1/me/items/{id}/card"), vec!["PUT"]),
            ],
        };
        assert_eq!(table.methods_for("/healthz"), Some(vec!["GET"]));
        assert_eq!(table.methods_for("/healthz/"), Some(vec!["GET"]));
        assert_eq!(
            table.methods_for("/v1/me/items/sch_1"),
            Some(vec!["GET", "DELETE"])
        );
        assert_eq!(
            table.methods_for("/v1/me/items/sch_1/card"),
            Some(vec!["PUT"])
        );
        assert_eq!(table.methods_for("/v1/me/items"), None);
        assert_eq!(table.methods_for("/nope"), None);
    }
}
