//! Health, readiness, metrics, problem+json at the edge, request ids,
//! limits, CORS.

use std::time::{Duration, Instant};

use guichet_store::Backend;
use guichet_tests::{Options, TestApp};

#[test]
fn healthz_answers_ok_with_request_id_and_no_store() {
    let app = TestApp::spawn();

    let res = app.get("/healthz");

    assert_eq!(res.status, 200);
    assert_eq!(res.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.header("x-request-id").unwrap().starts_with("req_"));
}

#[test]
fn readyz_names_the_backend_in_use() {
    let app = TestApp::spawn();

    let res = app.get("/readyz");

    assert_eq!(res.status, 200, "{}", res.text());
    let expected = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(
        res.json(),
        serde_json::json!({"status": "ready", "database": expected})
    );
}

#[test]
fn readyz_is_503_while_the_database_is_down_and_200_when_it_returns() {
    if guichet_tests::backend() != Backend::Postgres {
        eprintln!("skipped: an outage can only be played on PostgreSQL (SQLite is a file)");
        return;
    }
    let app = TestApp::spawn_with(Options {
        db_proxy: true,
        ..Options::default()
    });
    assert_eq!(app.get("/readyz").status, 200);
    let proxy = app.proxy.as_ref().unwrap();

    proxy.cut();
    let down = app
        .request("GET", "/readyz")
        .header("accept-language", "en")
        .send();
    let problem = down.assert_problem(503, "database_unavailable");
    assert_eq!(problem["title"], "Database unavailable");
    assert_eq!(
        app.get("/healthz").status,
        200,
        "liveness does not depend on the database"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = app.get("/readyz");
        if res.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {}", res.text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn unknown_routes_are_404_problems_in_french_by_default_and_english_on_request() {
    let app = TestApp::spawn();

    let fr = app.get("/v1/nothing-here");
    let en = app
        .request("GET", "/v1/nothing-here")
        .header("accept-language", "en-GB,en;q=0.9")
        .send();

    let fr = fr.assert_problem(404, "not_found");
    assert_eq!(fr["title"], "Ressource introuvable");
    assert_eq!(fr["detail"], "Aucune ressource à cette adresse.");
    let en = en.assert_problem(404, "not_found");
    assert_eq!(en["title"], "Not found");
    assert_eq!(en["detail"], "No resource at this address.");
}

#[test]
fn a_known_route_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn();

    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let res = app.request(method, "/healthz").send();

        res.assert_problem(405, "method_not_allowed");
        assert_eq!(res.header("allow"), Some("GET"), "{method}");
    }
}

#[test]
fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn();

    let kept = app
        .request("GET", "/healthz")
        .header("x-request-id", "frontend-7f3a.42")
        .send();
    let replaced = app
        .request("GET", "/nowhere")
        .header("x-request-id", "bad id with spaces")
        .send();

    assert_eq!(kept.header("x-request-id"), Some("frontend-7f3a.42"));
    let id = replaced.header("x-request-id").unwrap();
    assert!(id.starts_with("req_"), "{id}");
    assert_eq!(replaced.json()["request_id"], id);
}

#[test]
fn a_50_mb_body_is_refused_with_413_and_the_server_keeps_serving() {
    let app = TestApp::spawn();
    let mut request = format!(
        "POST /v1/anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        50 * 1024 * 1024
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b'[', 1024 * 1024));

    let res = app.raw(&request);

    res.assert_problem(413, "payload_too_large");
    assert_eq!(app.get("/healthz").status, 200);
}

#[test]
fn a_100_kb_header_is_refused_with_431_and_the_server_keeps_serving() {
    let app = TestApp::spawn();
    let big = "a".repeat(100 * 1024);

    let res = app
        .request("GET", "/healthz")
        .header("x-filler", &big)
        .send();

    res.assert_problem(431, "request_header_too_large");
    assert_eq!(app.get("/healthz").status, 200);
}

#[test]
fn garbage_requests_get_clean_4xx_answers_and_the_server_keeps_serving() {
    let app = TestApp::spawn();
    let nested = "[".repeat(10_000);
    let deep = format!(
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{nested}",
        nested.len()
    );
    let mut invalid_utf8 =
        b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
            .to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);

    let answers = [
        app.raw(deep.as_bytes()),
        app.raw(&invalid_utf8),
        app.raw(b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ];

    for res in &answers {
        assert!(
            (400..500).contains(&res.status),
            "{} {}",
            res.status,
            res.text()
        );
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
    }
    assert_eq!(app.get("/healthz").status, 200);
}

#[test]
fn metrics_count_requests_by_route_template_and_status() {
    let app = TestApp::spawn();
    app.get("/healthz");
    app.get("/healthz");
    app.get("/no/such/thing");

    let res = app.get("/metrics");

    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text();
    assert!(
        text.contains(
            r#"guichet_http_requests_total{route="/healthz",method="GET",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"guichet_http_requests_total{route="unmatched",method="GET",status="404"} 1"#
        )
    );
    assert!(text.contains(
        r#"guichet_http_request_duration_seconds_count{route="/healthz",method="GET",status="200"} 2"#
    ));
    assert!(
        !text.contains("/no/such/thing"),
        "raw paths never become labels"
    );
    assert!(text.contains("guichet_db_pool_max_connections 4"));
    assert!(text.contains("guichet_db_pool_connections "));
}

#[test]
fn cors_answers_preflights_for_allowed_origins_only() {
    let app = TestApp::spawn_with(Options {
        args: vec!["--cors-origins".into(), "https://app.example.com".into()],
        ..Options::default()
    });

    let allowed = app
        .request("OPTIONS", "/readyz")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send();
    let refused = app
        .request("OPTIONS", "/readyz")
        .header("origin", "https://evil.example.net")
        .header("access-control-request-method", "GET")
        .send();
    let simple = app
        .request("GET", "/healthz")
        .header("origin", "https://app.example.com")
        .send();
    let foreign = app
        .request("GET", "/healthz")
        .header("origin", "https://evil.example.net")
        .send();

    assert_eq!(allowed.status, 204);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    refused.assert_problem(403, "origin_not_allowed");
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        simple
            .header("access-control-expose-headers")
            .unwrap()
            .contains("x-request-id")
    );
    assert_eq!(foreign.status, 200);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

#[test]
fn swagger_ui_is_served_and_its_bare_path_redirects() {
    let app = TestApp::spawn();

    let bare = app.get("/swagger-ui");
    let page = app.get("/swagger-ui/");
    let config = app.get("/swagger-ui/swagger-initializer.js");

    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/swagger-ui/"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("swagger-ui"), "{}", page.text());
    assert_eq!(config.status, 200);
    assert!(
        config.text().contains("/api-docs/openapi.json"),
        "{}",
        config.text()
    );
}

#[test]
fn a_card_number_in_any_body_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("acme");

    let res = app
        .request("POST", "/v1/admin/customers")
        .bearer(&org.admin)
        .json(&serde_json::json!({
            "name": "4242 4242 4242 4242",
            "email": "pan@example.com",
        }))
        .send();

    let problem = res.assert_problem(400, "card_number_refused");
    assert!(!problem.to_string().contains("4242"));
    let mut conn = app.store.conn().unwrap();
    let stored = guichet_store::repo::customers::list(&mut conn, &org.id, None, 10).unwrap();
    assert!(stored.is_empty());
}
