//! The client portal: settings and branding, per-customer overrides, the
//! logo, the preview session, the public portal, the customer's portal
//! and dashboard, and notifications.

use std::sync::Barrier;

use chrono::{Duration, NaiveDate};
use guichet_domain::portal::{NewNotification, PortalAction};
use guichet_store::repo::{events, notifications, portal};
use guichet_tests::identity::{Org, Tokens};
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    res.json()
}

fn settings_body(slug: &str) -> Value {
    json!({
        "slug": slug,
        "actions": [
            {"action": "documents", "enabled": true, "labels": {"fr": "Mes documents", "en": "My documents"}},
            {"action": "messages", "enabled": true},
            {"action": "payments", "enabled": true},
            {"action": "bookings", "enabled": false}
        ],
        "sign_in_methods": "code",
        "branding": {
            "display_name": "Cabinet de kiné Martin",
            "accent_color": "#0A7D6B",
            "contact_email": "accueil@kine.example",
            "phone": "+33145678901",
            "address": "12 rue des Lilas, 75011 Paris",
            "website": "https://kine.example"
        }
    })
}

fn put_settings(app: &TestApp, token: &str, body: &Value) -> Response {
    app.request("PUT", "/v1/admin/portal/settings")
        .bearer(token)
        .json(body)
        .send()
}

fn customer(app: &TestApp, org: &Org, email: &str) -> (String, Tokens) {
    app.registered_customer(org, email, None)
}

fn my_portal(app: &TestApp, token: &str) -> Response {
    app.request("GET", "/v1/me/portal").bearer(token).send()
}

fn dashboard(app: &TestApp, token: &str) -> Response {
    app.request("GET", "/v1/me/dashboard").bearer(token).send()
}

fn notify(app: &TestApp, org: &Org, customer_id: &str, title: &str) -> String {
    let mut conn = app.store.conn().unwrap();
    let now = guichet_domain::Clock::now(&app.clock);
    notifications::notify(&mut conn, &org.id, customer_id, now, |locale| {
        NewNotification {
            kind: "document.shared".into(),
            title: format!("{title} ({})", locale.as_str()),
            body: "b".into(),
            link: Some("/v1/me/documents/doc_x".into()),
            object_type: Some("document".into()),
            object_id: Some("doc_x".into()),
        }
    })
    .unwrap()
}

// ----------------------------------------------------------------- settings

#[test]
fn an_unconfigured_portal_has_every_action_on_and_the_organization_slug() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let s = ok(
        app.request("GET", "/v1/admin/portal/settings")
            .bearer(&org.admin)
            .send(),
        200,
    );
    assert_eq!(s["slug"], "kine");
    let actions: Vec<(&str, bool)> = s["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("bookings", true),
            ("payments", true),
            ("documents", true),
            ("messages", true)
        ]
    );
    assert_eq!(s["sign_in_methods"], "both");
    assert_eq!(s["branding"]["display_name"], "Org kine");
    assert_eq!(s["branding"]["logo_url"], Value::Null);
    let p = ok(app.get("/v1/portal/kine"), 200);
    assert_eq!(p["slug"], "kine");
    assert_eq!(p["languages"], json!(["fr", "en"]));
}

#[test]
fn settings_are_replaced_and_shown_publicly_and_to_the_customer() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (_, tokens) = customer(&app, &org, "anne@example.com");

    let s = ok(
        put_settings(&app, &org.admin, &settings_body("cabinet-martin")),
        200,
    );
    assert_eq!(s["slug"], "cabinet-martin");
    assert_eq!(s["actions"][0]["action"], "documents");
    assert_eq!(s["actions"][0]["labels"]["en"], "My documents");
    assert_eq!(s["actions"][3]["enabled"], false);
    assert_eq!(s["sign_in_methods"], "code");
    assert_eq!(s["branding"]["accent_color"], "#0a7d6b");
    assert_eq!(s["branding"]["display_name"], "Cabinet de kiné Martin");

    // The sign-in methods are the organization's: a password sign-in is
    // now refused.
    let res = app.login(&org, "anne@example.com", guichet_tests::identity::PASSWORD);
    res.assert_problem(403, "login_method_disabled");

    let p = ok(app.get("/v1/portal/cabinet-martin"), 200);
    assert_eq!(p["branding"]["phone"], "+33145678901");
    assert_eq!(p["sign_in_methods"], "code");
    // The organization's own slug no longer names the portal.
    app.get("/v1/portal/kine").assert_problem(404, "not_found");
    app.get("/v1/portal/nobody")
        .assert_problem(404, "not_found");

    // The open session sees the change at once, labels in its language.
    let me = ok(my_portal(&app, &tokens.access), 200);
    assert_eq!(me["actions"][0]["label"], "Mes documents");
    assert_eq!(me["actions"][1]["label"], "Contacter l'entreprise");
    assert_eq!(me["actions"][3]["action"], "bookings");
    assert_eq!(me["actions"][3]["enabled"], false);
    assert_eq!(me["test"], false);
    assert_eq!(me["preview"], false);
    assert_eq!(me["branding"]["contact_email"], "accueil@kine.example");
}

#[test]
fn bad_settings_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut b = settings_body("x-y");
    b["colour"] = json!(1);
    cases.push((b, "unknown_field"));
    let mut b = settings_body("x-y");
    b["branding"]["accent_color"] = json!("red");
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["branding"]["website"] = json!("javascript:alert(1)");
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["branding"]["contact_email"] = json!("not-an-email");
    cases.push((b, "invalid_field"));
    cases.push((settings_body("Bad Slug"), "invalid_field"));
    cases.push((settings_body("-x"), "invalid_field"));
    let mut b = settings_body("x-y");
    b["actions"][1]["action"] = json!("documents");
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["actions"][0]["action"] = json!("invoices");
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["actions"][0]["labels"]["de"] = json!("Dokumente");
    cases.push((b, "unknown_field"));
    let mut b = settings_body("x-y");
    b["actions"][0]["labels"]["fr"] = json!("x".repeat(41));
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["branding"]["display_name"] = json!("Cabinet\u{0}");
    cases.push((b, "invalid_field"));
    let mut b = settings_body("x-y");
    b["actions"][0]["enabled"] = json!("yes");
    cases.push((b, "invalid_field"));
    for (body, code) in cases {
        let res = put_settings(&app, &org.admin, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(
            res.header("content-type"),
            Some("application/problem+json"),
            "{body}"
        );
        if code != "invalid_field" {
            assert_eq!(res.json()["code"], code, "{body}");
        }
    }
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"slug\": ".to_vec())
        .send();
    res.assert_problem(400, "malformed_json");
    let mut conn = app.store.conn().unwrap();
    assert!(portal::find(&mut conn, &org.id).unwrap().is_none());
}

#[test]
fn a_slug_is_one_portal_s_even_when_two_claim_it_at_once() {
    let app = TestApp::spawn();
    let a = app.org("alpha");
    let b = app.org("beta");
    // Another organization's own slug is taken.
    put_settings(&app, &a.admin, &settings_body("beta")).assert_problem(409, "slug_taken");
    let answers = at_once(2, |i| {
        let token = if i == 0 { &a.admin } else { &b.admin };
        put_settings(&app, token, &settings_body("shared-slug")).status
    });
    let mut sorted = answers.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 409], "{answers:?}");
    let p = ok(app.get("/v1/portal/shared-slug"), 200);
    let winner = if answers[0] == 200 {
        "Org alpha"
    } else {
        "Org beta"
    };
    assert_eq!(p["branding"]["display_name"], "Cabinet de kiné Martin");
    let _ = winner;
    // Its owner may save it again.
    let owner = if answers[0] == 200 {
        &a.admin
    } else {
        &b.admin
    };
    ok(
        put_settings(&app, owner, &settings_body("shared-slug")),
        200,
    );
}

#[test]
fn portal_admin_routes_refuse_customers_agents_and_anonymous_callers() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (cus, tokens) = customer(&app, &org, "anne@example.com");
    for (method, path, body) in [
        ("GET", "/v1/admin/portal/settings".to_owned(), None),
        (
            "PUT",
            "/v1/admin/portal/settings".to_owned(),
            Some(settings_body("x-y")),
        ),
        (
            "PUT",
            format!("/v1/admin/customers/{cus}/portal-settings"),
            Some(json!({"documents": false})),
        ),
        ("POST", "/v1/admin/portal/preview-session".to_owned(), None),
        ("DELETE", "/v1/admin/portal/logo".to_owned(), None),
    ] {
        let mut req = app.request(method, &path).bearer(&tokens.access);
        if let Some(b) = &body {
            req = req.json(b);
        }
        req.send().assert_problem(403, "forbidden");
        let mut req = app.request(method, &path);
        if let Some(b) = &body {
            req = req.json(b);
        }
        req.send().assert_problem(401, "unauthenticated");
    }
    for path in ["/v1/me/portal", "/v1/me/dashboard", "/v1/me/notifications"] {
        app.get(path).assert_problem(401, "unauthenticated");
        app.request("GET", path)
            .bearer(&org.admin)
            .send()
            .assert_problem(403, "forbidden");
    }
}

// ---------------------------------------------------------------- overrides

#[test]
fn a_customer_override_goes_over_the_organization_setting_at_once() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (anne, anne_t) = customer(&app, &org, "anne@example.com");
    let (_, bob_t) = customer(&app, &org, "bob@example.com");
    let mut body = settings_body("kine");
    body["actions"][2]["enabled"] = json!(false); // payments off
    ok(put_settings(&app, &org.admin, &body), 200);

    let d = ok(dashboard(&app, &anne_t.access), 200);
    assert!(d.get("amount_due").is_none(), "{d}");

    let o = ok(
        app.request(
            "PUT",
            &format!("/v1/admin/customers/{anne}/portal-settings"),
        )
        .bearer(&org.admin)
        .json(&json!({"payments": true, "messages": false}))
        .send(),
        200,
    );
    assert_eq!(
        o["overrides"],
        json!([{"action": "payments", "enabled": true}, {"action": "messages", "enabled": false}])
    );
    // Anne's open session sees it at once; Bob keeps the organization's.
    let d = ok(dashboard(&app, &anne_t.access), 200);
    assert!(d.get("amount_due").is_some(), "{d}");
    let me = ok(my_portal(&app, &anne_t.access), 200);
    let on = |me: &Value, a: &str| {
        me["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["action"] == a)
            .unwrap()["enabled"]
            .as_bool()
            .unwrap()
    };
    assert!(on(&me, "payments"));
    assert!(!on(&me, "messages"));
    let bob = ok(my_portal(&app, &bob_t.access), 200);
    assert!(!on(&bob, "payments"));
    assert!(on(&bob, "messages"));
    {
        let mut conn = app.store.conn().unwrap();
        assert!(
            !portal::action_enabled(&mut conn, &org.id, &anne, PortalAction::Messages).unwrap()
        );
        assert!(portal::action_enabled(&mut conn, &org.id, &anne, PortalAction::Payments).unwrap());
    }

    // null gives the action back to the organization's setting.
    let o = ok(
        app.request(
            "PUT",
            &format!("/v1/admin/customers/{anne}/portal-settings"),
        )
        .bearer(&org.admin)
        .json(&json!({"payments": null}))
        .send(),
        200,
    );
    assert_eq!(
        o["overrides"],
        json!([{"action": "messages", "enabled": false}])
    );
    let d = ok(dashboard(&app, &anne_t.access), 200);
    assert!(d.get("amount_due").is_none(), "{d}");

    // Bad input, another organization's customer.
    for body in [
        json!({"payments": "yes"}),
        json!({"invoices": true}),
        json!([]),
    ] {
        let res = app
            .request(
                "PUT",
                &format!("/v1/admin/customers/{anne}/portal-settings"),
            )
            .bearer(&org.admin)
            .json(&body)
            .send();
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    let other = app.org("other");
    app.request(
        "PUT",
        &format!("/v1/admin/customers/{anne}/portal-settings"),
    )
    .bearer(&other.admin)
    .json(&json!({"payments": true}))
    .send()
    .assert_problem(404, "not_found");
    app.request("PUT", "/v1/admin/customers/cus_nobody/portal-settings")
        .bearer(&org.admin)
        .json(&json!({"payments": true}))
        .send()
        .assert_problem(404, "not_found");
}

// --------------------------------------------------------------------- logo

#[test]
fn a_logo_is_checked_by_its_bytes_and_served_publicly() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let upload = |bytes: Vec<u8>, ct: &str| {
        app.request("PUT", "/v1/admin/portal/logo")
            .bearer(&org.admin)
            .header("content-type", ct)
            .body(bytes)
            .send()
    };
    // Declared as PNG, but a GIF; a PDF; an empty body.
    upload(b"GIF89a\x01\x00".to_vec(), "image/png").assert_problem(415, "unsupported_media_type");
    upload(b"%PDF-1.7\n".to_vec(), "image/png").assert_problem(415, "unsupported_media_type");
    upload(Vec::new(), "image/png").assert_problem(415, "unsupported_media_type");
    let mut big = PNG.to_vec();
    big.resize(512 * 1024 + 1, 0);
    upload(big, "image/png").assert_problem(413, "payload_too_large");
    app.get("/v1/portal/kine/logo")
        .assert_problem(404, "not_found");

    let mut max = PNG.to_vec();
    max.resize(512 * 1024, 0);
    ok(upload(max, "application/octet-stream"), 200);
    let s = ok(upload(PNG.to_vec(), "image/png"), 200);
    let url = s["branding"]["logo_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/v1/portal/kine/logo?v="), "{url}");
    let res = app.get(&url);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("image/png"));
    assert_eq!(res.body, PNG);
    assert!(res.header("etag").unwrap().len() > 60);
    assert_eq!(
        ok(app.get("/v1/portal/kine"), 200)["branding"]["logo_url"],
        url.as_str()
    );

    ok(
        upload(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], "image/jpeg"),
        200,
    );
    assert_eq!(
        app.get("/v1/portal/kine/logo").header("content-type"),
        Some("image/jpeg")
    );

    let res = app
        .request("DELETE", "/v1/admin/portal/logo")
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 204);
    app.get("/v1/portal/kine/logo")
        .assert_problem(404, "not_found");
    app.request("DELETE", "/v1/admin/portal/logo")
        .bearer(&org.admin)
        .send()
        .assert_problem(404, "not_found");
}

// ------------------------------------------------------------------ preview

#[test]
fn a_preview_session_is_the_test_customer_s_and_short_lived() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let p = ok(
        app.request("POST", "/v1/admin/portal/preview-session")
            .bearer(&org.admin)
            .send(),
        201,
    );
    assert_eq!(p["customer"]["test"], true);
    assert_eq!(p["expires_in"], 600);
    assert!(p.get("refresh_token").is_none());
    let token = p["access_token"].as_str().unwrap().to_owned();
    let me = ok(my_portal(&app, &token), 200);
    assert_eq!(me["test"], true);
    assert_eq!(me["preview"], true);
    let profile = ok(app.request("GET", "/v1/me").bearer(&token).send(), 200);
    assert_eq!(profile["id"], p["customer"]["id"]);
    assert_eq!(profile["mobile"], Value::Null);

    // The same test customer every time, even asked for at once.
    let again = at_once(5, |_| {
        ok(
            app.request("POST", "/v1/admin/portal/preview-session")
                .bearer(&org.admin)
                .send(),
            201,
        )["customer"]["id"]
            .clone()
    });
    assert!(
        again.iter().all(|id| *id == p["customer"]["id"]),
        "{again:?}"
    );

    // What happens to the test customer is flagged test.
    let id = notify(&app, &org, p["customer"]["id"].as_str().unwrap(), "Doc");
    let list = ok(
        app.request("GET", "/v1/me/notifications")
            .bearer(&token)
            .send(),
        200,
    );
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["test"], true);

    // An API key cannot preview.
    let key = ok(
        app.request("POST", "/v1/admin/api-keys")
            .bearer(&org.admin)
            .json(&json!({"name": "k"}))
            .send(),
        201,
    );
    app.request("POST", "/v1/admin/portal/preview-session")
        .bearer(key["secret"].as_str().unwrap())
        .send()
        .assert_problem(403, "forbidden");

    // Ten minutes later the token and its session are over.
    app.clock.advance(Duration::minutes(11));
    my_portal(&app, &token).assert_problem(401, "invalid_token");
}

// ------------------------------------------------------------ notifications

#[test]
fn notifications_are_paged_newest_first_and_read_once() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (anne, anne_t) = customer(&app, &org, "anne@example.com");
    let (bob, bob_t) = customer(&app, &org, "bob@example.com");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(notify(&app, &org, &anne, &format!("N{i}")));
        app.clock.advance(Duration::seconds(1));
    }
    let bobs = notify(&app, &org, &bob, "B");

    let page = |q: &str, t: &str| {
        ok(
            app.request("GET", &format!("/v1/me/notifications{q}"))
                .bearer(t)
                .send(),
            200,
        )
    };
    let p1 = page("?limit=2", &anne_t.access);
    assert_eq!(p1["data"][0]["id"], ids[4].as_str());
    assert_eq!(p1["data"][0]["title"], "N4 (fr)");
    assert_eq!(p1["data"][1]["id"], ids[3].as_str());
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = page(&format!("?limit=2&cursor={cursor}"), &anne_t.access);
    assert_eq!(p2["data"][0]["id"], ids[2].as_str());
    let p3 = page(
        &format!("?limit=2&cursor={}", p2["next_cursor"].as_str().unwrap()),
        &anne_t.access,
    );
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    assert_eq!(p3["next_cursor"], Value::Null);

    // Read one: idempotent, keeps its first instant.
    let r = ok(
        app.request("POST", &format!("/v1/me/notifications/{}/read", ids[1]))
            .bearer(&anne_t.access)
            .send(),
        200,
    );
    assert_eq!(r["read"], true);
    app.clock.advance(Duration::seconds(30));
    let r2 = ok(
        app.request("POST", &format!("/v1/me/notifications/{}/read", ids[1]))
            .bearer(&anne_t.access)
            .send(),
        200,
    );
    assert_eq!(r["read_at"], r2["read_at"]);
    let unread = page("?unread=true", &anne_t.access);
    assert_eq!(unread["data"].as_array().unwrap().len(), 4);
    assert_eq!(
        ok(dashboard(&app, &anne_t.access), 200)["notifications"]["unread_count"],
        4
    );

    // Another customer's notification is not found, and stays unread.
    app.request("POST", &format!("/v1/me/notifications/{bobs}/read"))
        .bearer(&anne_t.access)
        .send()
        .assert_problem(404, "not_found");
    app.request("POST", "/v1/me/notifications/ntf_nothing/read")
        .bearer(&anne_t.access)
        .send()
        .assert_problem(404, "not_found");
    assert_eq!(
        page("?unread=true", &bob_t.access)["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.request("POST", &format!("/v1/me/notifications/{bobs}/read"))
        .send()
        .assert_problem(401, "unauthenticated");

    // Read all, 10 requests at once: the four are marked once in all.
    let marked: usize = at_once(10, |_| {
        ok(
            app.request("POST", "/v1/me/notifications/read-all")
                .bearer(&anne_t.access)
                .send(),
            200,
        )["marked_read"]
            .as_u64()
            .unwrap() as usize
    })
    .into_iter()
    .sum();
    assert_eq!(marked, 4);
    assert_eq!(page("?unread=true", &anne_t.access)["data"], json!([]));
    assert_eq!(
        page("?unread=true", &bob_t.access)["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Bad parameters.
    for q in [
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?unread=maybe",
        "?cursor=%%%",
        "?cursor=bm9wZQ",
        "?colour=1",
    ] {
        let res = app
            .request("GET", &format!("/v1/me/notifications{q}"))
            .bearer(&anne_t.access)
            .send();
        assert_eq!(res.status, 400, "{q}: {}", res.text());
    }
}

#[test]
fn events_give_their_customer_a_notification_in_their_language() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (anne, anne_t) = customer(&app, &org, "anne@example.com");
    ok(
        app.request("PATCH", &format!("/v1/admin/customers/{anne}"))
            .bearer(&org.admin)
            .json(&json!({"locale": "en"}))
            .send(),
        200,
    );
    let now = guichet_domain::Clock::now(&app.clock);
    let event = |t: &str, ot: &str, oid: &str| events::Event {
        id: guichet_domain::ids::new_id("evt"),
        org_id: org.id.clone(),
        event_type: t.to_owned(),
        object_type: ot.to_owned(),
        object_id: oid.to_owned(),
        customer_id: Some(anne.clone()),
        actor: "customer".to_owned(),
        data: "{}".to_owned(),
        created_at: now,
    };
    {
        let mut conn = app.store.conn().unwrap();
        events::record(&mut conn, &event("mandate.signed", "mandate", "mdt_1")).unwrap();
        events::record(&mut conn, &event("customer.updated", "customer", &anne)).unwrap();
    }
    let list = ok(
        app.request("GET", "/v1/me/notifications")
            .bearer(&anne_t.access)
            .send(),
        200,
    );
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["kind"], "mandate.signed");
    assert_eq!(data[0]["title"], "Mandate signed");
    assert_eq!(data[0]["link"], "/v1/me/mandates/mdt_1");
    assert_eq!(data[0]["read"], false);
}

// ---------------------------------------------------------------- dashboard

#[test]
fn the_dashboard_sums_what_is_due_by_currency_with_each_source() {
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (anne, anne_t) = customer(&app, &org, "anne@example.com");
    let (_, bob_t) = customer(&app, &org, "bob@example.com");
    // Today is 2026-11-22: 3 × 3000 from 2026-11-10 (one late), then
    // 2026-12-10 (not due soon) and 2027-01-10.
    let first = NaiveDate::from_ymd_opt(2026, 11, 10).unwrap();
    let order = app.seed_order(&org.id, &anne, 9000, 3, first, "4242424242424242");
    // A second order, its first instalment due in 5 days.
    let soon = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let order2 = app.seed_order(&org.id, &anne, 3000, 2, soon, "4242424242424242");
    for _ in 0..3 {
        notify(&app, &org, &anne, "N");
    }

    let d = ok(dashboard(&app, &anne_t.access), 200);
    let due = &d["amount_due"];
    assert_eq!(
        due["overdue"],
        json!([{"amount": 3000, "currency": "EUR"}]),
        "{d}"
    );
    assert_eq!(
        due["due_soon"],
        json!([{"amount": 1500, "currency": "EUR"}]),
        "{d}"
    );
    let sources = due["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{d}");
    assert_eq!(sources[0]["kind"], "instalment");
    assert_eq!(sources[0]["overdue"], true);
    assert_eq!(sources[0]["due_date"], "2026-11-10");
    assert_eq!(sources[0]["link"], format!("/v1/me/schedules/{order}"));
    assert_eq!(sources[1]["link"], format!("/v1/me/schedules/{order2}"));
    assert_eq!(d["notifications"]["unread_count"], 3);
    assert_eq!(d["notifications"]["latest"].as_array().unwrap().len(), 3);
    // Sections not built yet are absent, not empty.
    assert!(d.get("bookings").is_none());

    // Bob owes nothing and has no notification.
    let b = ok(dashboard(&app, &bob_t.access), 200);
    assert_eq!(b["amount_due"]["sources"], json!([]));
    assert_eq!(b["amount_due"]["overdue"], json!([]));
    assert_eq!(b["notifications"], json!({"unread_count": 0, "latest": []}));

    // Five at most in latest.
    for _ in 0..4 {
        notify(&app, &org, &anne, "M");
    }
    let d = ok(dashboard(&app, &anne_t.access), 200);
    assert_eq!(d["notifications"]["unread_count"], 7);
    assert_eq!(d["notifications"]["latest"].as_array().unwrap().len(), 5);
}

#[test]
fn a_failed_debit_tells_its_customer_with_a_link_to_the_schedule() {
    use guichet_domain::gateway::test_cards;
    use std::sync::Arc;
    let app = TestApp::spawn();
    let org = app.org("kine");
    let (anne, anne_t) = customer(&app, &org, "anne@example.com");
    let today = guichet_domain::Clock::today(&app.clock);
    let order = app.seed_order(
        &org.id,
        &anne,
        20_000,
        2,
        today,
        test_cards::INSUFFICIENT_FUNDS,
    );
    let gateway = Arc::new(guichet_gateway::SandboxGateway::with_token_key(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        guichet_tests::TEST_SECRET_KEY.as_bytes(),
    ));
    guichet_jobs::debit::DebitRun::new(app.store.clone(), gateway, Arc::new(app.clock.clone()))
        .run(today, 100)
        .unwrap();

    let list = ok(
        app.request("GET", "/v1/me/notifications")
            .bearer(&anne_t.access)
            .send(),
        200,
    );
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["kind"], "instalment.failed");
    assert_eq!(data[0]["title"], "Échéance impayée");
    assert_eq!(data[0]["link"], format!("/v1/me/schedules/{order}"));
    assert_eq!(data[0]["object_type"], "instalment");
}
