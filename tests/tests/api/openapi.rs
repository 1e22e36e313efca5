//! The OpenAPI document: served, committed, and complete.

use guichet_tests::TestApp;
use serde_json::Value;

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    std::fs::read_to_string(path).expect("openapi/openapi.json is committed")
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let generated = guichet_api::openapi::spec_json();

    assert!(
        generated == committed(),
        "openapi/openapi.json is stale: run `cargo run --bin guichet -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn the_served_document_is_the_generated_one() {
    let app = TestApp::spawn();

    let res = app.get("/api-docs/openapi.json");

    assert_eq!(res.status, 200);
    let generated: Value = serde_json::from_str(&guichet_api::openapi::spec_json()).unwrap();
    assert_eq!(res.json(), generated);
}

#[test]
fn every_operation_documents_its_errors_as_problems_and_has_a_tag() {
    let spec: Value = serde_json::from_str(&guichet_api::openapi::spec_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/healthz") && paths.contains_key("/readyz"));
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{what}"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}"
            );
            let responses = op["responses"].as_object().unwrap();
            for status in ["431", "500"] {
                assert!(responses.contains_key(status), "{what} lacks {status}");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{what} lacks {status}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().unwrap();
                    assert!(
                        content.contains_key("application/problem+json"),
                        "{what} {status} is not a problem"
                    );
                    let description = response["description"].as_str().unwrap();
                    assert!(
                        description.contains("Codes: `"),
                        "{what} {status} names no code"
                    );
                }
            }
        }
    }
}

#[test]
fn the_problem_schema_lists_every_code() {
    let spec: Value = serde_json::from_str(&guichet_api::openapi::spec_json()).unwrap();
    let codes = spec["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for code in guichet_api::problem::ProblemCode::ALL {
        assert!(
            codes.contains(&code.as_str().to_owned()),
            "{}",
            code.as_str()
        );
    }
    assert_eq!(codes.len(), guichet_api::problem::ProblemCode::ALL.len());
}

fn spec() -> Value {
    serde_json::from_str(&guichet_api::openapi::spec_json()).unwrap()
}

/// Every operation as (`METHOD path`, operation).
fn operations(spec: &Value) -> Vec<(String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((format!("{} {path}", method.to_uppercase()), op));
        }
    }
    all
}

#[test]
fn there_is_one_bearer_scheme_so_any_pasted_credential_is_sent() {
    let spec = spec();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();

    assert_eq!(schemes.len(), 1, "{schemes:?}");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    for (what, op) in operations(&spec) {
        for requirement in op["security"].as_array().into_iter().flatten() {
            let names = requirement.as_object().unwrap().keys().collect::<Vec<_>>();
            assert_eq!(names, ["bearer"], "{what}");
        }
    }
}

#[test]
fn operation_ids_are_explicit_unique_and_camel_case() {
    let spec = spec();
    let mut seen = std::collections::BTreeMap::new();
    for (what, op) in operations(&spec) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what} has no operationId"));
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{what}: `{id}` is not camelCase"
        );
        // utoipa's fallback is the Rust function name, which is snake_case
        // or a single lowercase word such as `list` or `create`.
        assert!(
            id.chars().any(|c| c.is_ascii_uppercase())
                || ["login", "logout", "register", "activate"].contains(&id),
            "{what}: `{id}` looks like a function name, not a chosen operationId"
        );
        if let Some(other) = seen.insert(id.to_owned(), what.clone()) {
            panic!("operationId `{id}` is used by {other} and {what}");
        }
    }
}

#[test]
fn summaries_are_one_short_line() {
    let spec = spec();
    for (what, op) in operations(&spec) {
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{what} has no summary");
        assert!(!summary.contains('\n'), "{what}: the summary spans lines");
        assert!(
            summary.chars().count() <= 80,
            "{what}: the summary has {} characters",
            summary.chars().count()
        );
    }
}

#[test]
fn public_operations_say_security_none_and_the_others_name_the_scheme() {
    let spec = spec();
    let public = |what: &str| {
        what.contains(" /v1/auth/")
            || what.contains(" /v1/consents/{token}")
            || what.contains(" /v1/sandbox/sca/")
            || what.contains(" /v1/portal/")
            || [
                "GET /healthz",
                "GET /readyz",
                "GET /metrics",
                "POST /v1/sandbox/card-tokens",
            ]
            .contains(&what)
    };
    for (what, op) in operations(&spec) {
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{what} states no security"));
        if public(&what) {
            assert!(security.is_empty(), "{what} is public: `security: []`");
        } else {
            assert!(!security.is_empty(), "{what} needs a credential");
        }
    }
}

#[test]
fn the_document_has_a_server_and_every_operation_takes_accept_language() {
    let spec = spec();
    assert!(
        spec["servers"].as_array().is_some_and(|s| !s.is_empty()),
        "no servers entry"
    );
    for (what, op) in operations(&spec) {
        let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "Accept-Language" && p["in"] == "header"),
            "{what} does not declare Accept-Language"
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                response["headers"].get("X-Request-Id").is_some(),
                "{what} {status} does not document X-Request-Id"
            );
            if status == "401" {
                assert!(
                    response["headers"].get("WWW-Authenticate").is_some(),
                    "{what} 401 does not document WWW-Authenticate"
                );
            }
        }
    }
}

#[test]
fn the_members_problems_add_are_typed() {
    let spec = spec();
    let properties = &spec["components"]["schemas"]["Problem"]["properties"];
    for member in [
        "remaining_attempts",
        "next_debit_on",
        "notice_days",
        "accepted_brands",
        "last_due_date",
        "reason",
        "collections",
        "contact_channels",
        "mandate_status",
        "collectible",
    ] {
        let schema = &properties[member];
        assert!(
            schema.get("type").is_some() || schema.get("$ref").is_some(),
            "Problem.{member} is not typed"
        );
    }
}

#[test]
fn path_parameters_are_in_their_path_and_query_ones_are_not() {
    let spec = spec();
    let mut wrong = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let in_path = path.contains(&format!("{{{name}}}"));
                match p["in"].as_str().unwrap() {
                    "path" if !in_path => wrong.push(format!("{method} {path}: path {name}")),
                    "query" if in_path => wrong.push(format!("{method} {path}: query {name}")),
                    _ => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A query parameter is one value (a string, number, boolean or enum),
/// never an object a client would spread over several parameters; a
/// component schema named like another one (utoipa keeps the last) shows
/// up here.
#[test]
fn query_parameters_are_single_values() {
    let spec = spec();
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                spec["components"]["schemas"][name].clone()
            }
            None => schema.clone(),
        }
    };
    let mut wrong = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] != "query" {
                    continue;
                }
                let schema = resolve(&p["schema"]);
                let branches: Vec<Value> = match schema["oneOf"].as_array() {
                    Some(all) => all.iter().map(&resolve).collect(),
                    None => vec![schema],
                };
                for b in branches {
                    if b["type"] == "object" || b.get("properties").is_some() {
                        wrong.push(format!("{method} {path}: {}", p["name"]));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Every `$ref` names a component the document holds (utoipa does not
/// collect the schema of a parameter's `value_type`: it must be listed).
#[test]
fn every_reference_resolves() {
    let spec = spec();
    let mut missing = Vec::new();
    fn walk(value: &Value, spec: &Value, missing: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let name = r.trim_start_matches("#/components/schemas/");
                    if spec["components"]["schemas"].get(name).is_none() {
                        missing.push(r.clone());
                    }
                }
                for v in map.values() {
                    walk(v, spec, missing);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, spec, missing)),
            _ => {}
        }
    }
    walk(&spec, &spec, &mut missing);
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "{missing:#?}");
}
