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
fn the_problem_schema_lists_every_code_and_both_security_schemes_exist() {
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
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_jwt"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
}
