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
    /// As in OpenAPI, a concrete path wins over a template it also
    /// matches: `/v1/admin/consents/settings` is that path's, not
    /// `/v1/admin/consents/{id}`'s (the first literal segment where two
    /// matches differ decides).
    pub fn methods_for(&self, path: &str) -> Option<Vec<&'static str>> {
        let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut best: Option<(Vec<bool>, Vec<&'static str>)> = None;
        for (segments, methods) in &self.routes {
            if segments.len() == wanted.len()
                && segments.iter().zip(&wanted).all(|(s, w)| match s {
                    Segment::Literal(l) => l == w,
                    Segment::Param => !w.is_empty(),
                })
            {
                let key: Vec<bool> = segments
                    .iter()
                    .map(|s| matches!(s, Segment::Literal(_)))
                    .collect();
                match &mut best {
                    Some((k, m)) if *k == key => m.extend(methods),
                    Some((k, _)) if *k > key => {}
                    _ => best = Some((key, methods.clone())),
                }
            }
        }
        best.map(|(_, methods)| methods)
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

    #[test]
    fn a_concrete_path_wins_over_a_template_it_matches() {
        let table = RouteTable {
            routes: vec![
                (parse("/v1/admin/consents/{id}"), vec!["GET", "PATCH"]),
                (parse("/v1/admin/consents/settings"), vec!["GET", "PUT"]),
            ],
        };
        assert_eq!(
            table.methods_for("/v1/admin/consents/settings"),
            Some(vec!["GET", "PUT"])
        );
        assert_eq!(
            table.methods_for("/v1/admin/consents/cns_1"),
            Some(vec!["GET", "PATCH"])
        );
    }
}
