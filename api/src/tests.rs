//! In-process tests of the edge through the real application: what the
//! black-box suite cannot reach without a JSON operation or a failing
//! handler.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, test, web};
use guichet_domain::SystemClock;
use guichet_store::{PoolOptions, Store};
use serde::Deserialize;
use serde_json::Value;
use validator::Validate;

use crate::config::{Cli, Command, Settings};
use crate::edge::json::Json;
use crate::problem::ApiError;
use crate::server::{Parts, app};

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[validate(length(min = 1, max = 10))]
    name: String,
    #[validate(range(min = 1, max = 12))]
    count: u32,
    /// Free-form, so that nesting reaches the parser's depth limit.
    #[serde(default)]
    meta: Option<Value>,
}

async fn probe(body: Json<Probe>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "name": body.0.name, "count": body.0.count, "meta": body.0.meta,
    }))
}

async fn broken() -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal("secret internal cause: table missing"))
}

fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/probe", web::post().to(probe))
        .route("/broken", web::get().to(broken));
}

fn parts(dir: &tempfile::TempDir) -> Parts {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let cli = <Cli as clap::Parser>::parse_from([
        "guichet",
        "serve",
        "--database-url",
        &url,
        "--jwt-secret",
        "0123456789abcdef0123456789abcdef",
        "--body-limit",
        "2048",
    ]);
    let Command::Serve(args) = cli.command else {
        unreachable!()
    };
    let settings = Settings::from_args(&args).unwrap();
    let store = Store::connect(&settings.database_url, &PoolOptions::default()).unwrap();
    Parts::new(&settings, store, Arc::new(SystemClock))
}

async fn call(
    parts: &Parts,
    req: test::TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let service = test::init_service(app(parts.clone(), probes)).await;
    let res = test::call_service(&service, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, json)
}

fn post_probe(body: &'static [u8]) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
}

#[actix_web::test]
async fn a_valid_body_reaches_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, body) = call(&parts(&dir), post_probe(br#"{"name":"a","count":3}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 3);
}

#[actix_web::test]
async fn body_errors_are_problems_with_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(&dir);
    let cases: [(&'static [u8], u16, &str, Option<&str>); 7] = [
        (b"{\"name\":", 400, "malformed_json", None),
        (b"\xff\xfe{}", 400, "malformed_json", None),
        (
            br#"{"name":"a","count":3,"colour":"red"}"#,
            400,
            "unknown_field",
            Some("colour"),
        ),
        (
            br#"{"name":"a","count":"three"}"#,
            400,
            "invalid_field",
            Some("count"),
        ),
        (br#"{"name":"a"}"#, 400, "invalid_field", Some("count")),
        (
            br#"{"name":"a","count":99}"#,
            400,
            "invalid_field",
            Some("count"),
        ),
        (
            br#"{"name":"a","count":3} trailing"#,
            400,
            "malformed_json",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, headers, problem) = call(&parts, post_probe(body)).await;
        assert_eq!(got.as_u16(), status, "{}", String::from_utf8_lossy(body));
        assert_eq!(problem["code"], code, "{}", String::from_utf8_lossy(body));
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        assert!(problem["request_id"].as_str().unwrap().starts_with("req_"));
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        }
    }
}

#[actix_web::test]
async fn deeply_nested_json_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(&dir);
    let nested: &'static [u8] = Box::leak(
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))
            .into_bytes()
            .into_boxed_slice(),
    );
    // Over the 2 KiB limit of this app: 413 before any parsing.
    let (status, _, problem) = call(&parts, post_probe(nested)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["code"], "payload_too_large");
    // Within the limit, 1 000 levels: the parser's depth limit answers.
    let nested: &'static [u8] = Box::leak(
        format!(
            "{{\"name\":\"a\",\"count\":1,\"meta\":{}{}}}",
            "[".repeat(1_000),
            "]".repeat(1_000)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let (status, _, problem) = call(&parts, post_probe(nested)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "malformed_json");
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let dir = tempfile::tempdir().unwrap();
    let req = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "text/plain"))
        .set_payload("name=a");
    let (status, _, problem) = call(&parts(&dir), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem["code"], "unsupported_media_type");
}

#[actix_web::test]
async fn internal_errors_are_opaque_and_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let req = test::TestRequest::get()
        .uri("/broken")
        .insert_header(("x-request-id", "trace-me-42"))
        .insert_header(("accept-language", "en"));
    let (status, headers, problem) = call(&parts(&dir), req).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem["code"], "internal_error");
    assert_eq!(problem["title"], "Internal error");
    assert_eq!(problem["request_id"], "trace-me-42");
    assert_eq!(headers.get("x-request-id").unwrap(), "trace-me-42");
    assert!(!problem.to_string().contains("secret internal cause"));
    assert!(!problem.to_string().contains("table"));
}

#[actix_web::test]
async fn a_body_carrying_a_card_number_is_refused_wherever_it_hides() {
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(&dir);
    let cases: [&'static [u8]; 4] = [
        br#"{"name":"4242424242424242","count":1}"#,
        br#"{"name":"a","count":1,"meta":{"card":"4242 4242 4242 4242"}}"#,
        br#"{"name":"a","count":1,"meta":[5555555555554444]}"#,
        br#"{"name":"a","count":1,"meta":{"pan":"4000-0566-5566-5556"}}"#,
    ];
    for body in cases {
        let (status, _, problem) = call(&parts, post_probe(body)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(problem["code"], "card_number_refused");
        assert!(!problem.to_string().contains("4242"));
    }
    // Long digit strings that are not card numbers pass (Luhn fails).
    let (status, _, _) = call(
        &parts,
        post_probe(br#"{"name":"a","count":1,"meta":{"ref":"4242424242424241"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
