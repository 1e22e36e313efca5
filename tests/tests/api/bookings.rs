//! The business's booking setup: online-booking settings, providers with
//! their weekly windows and exceptions, services.

use guichet_tests::identity::{Org, PASSWORD};
use guichet_tests::{Response, TestApp};
use serde_json::{Value, json};

fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
    let req = app.request(method, path).bearer(token);
    match body {
        Some(body) => req.json(&body).send(),
        None => req.send(),
    }
}

fn ok(res: Response, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.text());
    if status == 204 {
        Value::Null
    } else {
        res.json()
    }
}

fn settings_body() -> Value {
    json!({
        "online_booking": true,
        "confirmation": "manual",
        "horizon_days": 30,
        "min_notice_minutes": 120,
        "cancellation": {"allowed": true, "until_hours_before": 48},
        "reschedule": {"allowed": false, "until_hours_before": 0},
        "max_pending": 3,
        "reminder_hours_before": 12,
        "time_zone": "America/New_York",
    })
}

/// An agent of `org`: its access token.
fn agent(app: &TestApp, org: &Org) -> String {
    let email = format!("agent@{}.example", org.slug);
    ok(
        send(
            app,
            "POST",
            "/v1/admin/staff",
            &org.admin,
            Some(json!({"email": email, "name": "Agent", "role": "agent"})),
        ),
        201,
    );
    let token = app.nth_message(&email, 1).token().unwrap();
    let res = app
        .request("POST", "/v1/auth/staff/setup")
        .json(&json!({"token": token, "password": PASSWORD}))
        .send();
    ok(res, 200)["access_token"].as_str().unwrap().to_owned()
}

/// A signed-in customer of `org`: its access token.
fn customer(app: &TestApp, org: &Org) -> String {
    let email = format!("client@{}.example", org.slug);
    app.registered_customer(org, &email, None).1.access
}

fn provider(app: &TestApp, org: &Org, name: &str) -> String {
    ok(
        send(
            app,
            "POST",
            "/v1/admin/booking-providers",
            &org.admin,
            Some(json!({"name": name, "kind": "staff"})),
        ),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn settings_start_from_the_defaults_and_apply_as_put() {
    let app = TestApp::spawn();
    let org = app.org("bk-settings");
    let path = "/v1/admin/booking-settings";
    let defaults = ok(send(&app, "GET", path, &org.admin, None), 200);
    assert_eq!(defaults["online_booking"], false);
    assert_eq!(defaults["confirmation"], "automatic");
    assert_eq!(defaults["horizon_days"], 60);
    assert_eq!(defaults["min_notice_minutes"], 720);
    assert_eq!(
        defaults["cancellation"],
        json!({"allowed": true, "until_hours_before": 24})
    );
    assert_eq!(defaults["max_pending"], 2);
    assert_eq!(defaults["time_zone"], "Europe/Paris");

    let saved = ok(send(&app, "PUT", path, &org.admin, Some(settings_body())), 200);
    let read = ok(send(&app, "GET", path, &org.admin, None), 200);
    assert_eq!(saved, read);
    for (key, value) in settings_body().as_object().unwrap() {
        assert_eq!(&read[key], value, "{key}");
    }

    // Each refusal leaves the saved settings as they were.
    let refusals: Vec<(Value, u16, &str)> = vec![
        (json!({"time_zone": "Mars/Olympus"}), 400, "invalid_field"),
        (json!({"confirmation": "sometimes"}), 400, "invalid_field"),
        (json!({"horizon_days": 0}), 400, "invalid_field"),
        (json!({"horizon_days": 366}), 400, "invalid_field"),
        (json!({"min_notice_minutes": 43_201}), 400, "invalid_field"),
        (json!({"max_pending": 21}), 400, "invalid_field"),
        (json!({"reminder_hours_before": 0}), 400, "invalid_field"),
        (
            json!({"cancellation": {"allowed": true, "until_hours_before": 721}}),
            400,
            "invalid_field",
        ),
        (
            json!({"cancellation": {"allowed": true, "until_hours_before": 1, "x": 1}}),
            400,
            "unknown_field",
        ),
        (json!({"horizon_days": "30"}), 400, "invalid_field"),
        (json!({"surprise": true}), 400, "unknown_field"),
        (json!({"time_zone": "Europe/Par\u{0}is"}), 400, "invalid_field"),
    ];
    for (change, status, code) in refusals {
        let mut body = settings_body();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = send(&app, "PUT", path, &org.admin, Some(body.clone()));
        assert_eq!(res.status, status, "{change}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code
                || (code == "invalid_field" && problem["code"] == "invalid_type"),
            "{change}: {problem}"
        );
        assert_eq!(
            res.header("content-type"),
            Some("application/problem+json"),
            "{change}"
        );
    }
    let mut partial = settings_body();
    partial.as_object_mut().unwrap().remove("max_pending");
    assert_eq!(
        send(&app, "PUT", path, &org.admin, Some(partial)).status,
        400
    );
    let array = send(&app, "PUT", path, &org.admin, Some(json!([settings_body()])));
    assert_eq!(array.status, 400, "{}", array.text());
    let malformed = app
        .request("PUT", path)
        .bearer(&org.admin)
        .header("content-type", "application/json")
        .body(b"{\"online_booking\": tru".to_vec())
        .send();
    malformed.assert_problem(400, "malformed_json");
    assert_eq!(ok(send(&app, "GET", path, &org.admin, None), 200), read);

    // Agents read; only admins (and API keys) write. Customers and the
    // anonymous do neither.
    let agent = agent(&app, &org);
    ok(send(&app, "GET", path, &agent, None), 200);
    send(&app, "PUT", path, &agent, Some(settings_body())).assert_problem(403, "forbidden");
    let customer = customer(&app, &org);
    send(&app, "GET", path, &customer, None).assert_problem(403, "forbidden");
    assert_eq!(app.request("GET", path).send().status, 401);
    // Another organization has its own.
    let other = app.org("bk-settings-other");
    assert_eq!(
        ok(send(&app, "GET", path, &other.admin, None), 200)["online_booking"],
        false
    );
}

#[test]
fn providers_are_added_listed_changed_and_kept_to_their_organization() {
    let app = TestApp::spawn();
    let org = app.org("bk-providers");
    let base = "/v1/admin/booking-providers";
    let ids: Vec<String> = (0..3).map(|i| provider(&app, &org, &format!("Praticien {i}"))).collect();
    let room = ok(
        send(
            &app,
            "POST",
            base,
            &org.admin,
            Some(json!({"name": "  Salle 2 ", "kind": "resource", "active": false})),
        ),
        201,
    );
    assert_eq!(room["name"], "Salle 2");
    assert_eq!(room["kind"], "resource");
    assert_eq!(room["active"], false);
    assert!(room["id"].as_str().unwrap().starts_with("prv_"));

    // Pages, oldest first, each item once.
    let first = ok(send(&app, "GET", &format!("{base}?limit=2"), &org.admin, None), 200);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok(
        send(&app, "GET", &format!("{base}?limit=2&cursor={cursor}"), &org.admin, None),
        200,
    );
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(second["next_cursor"].is_null());
    seen.sort();
    let mut all = ids.clone();
    all.push(room["id"].as_str().unwrap().to_owned());
    all.sort();
    assert_eq!(seen, all);
    send(&app, "GET", &format!("{base}?limit=0"), &org.admin, None)
        .assert_problem(400, "invalid_parameter");
    send(&app, "GET", &format!("{base}?cursor=nope"), &org.admin, None)
        .assert_problem(400, "invalid_parameter");

    let changed = ok(
        send(
            &app,
            "PATCH",
            &format!("{base}/{}", ids[0]),
            &org.admin,
            Some(json!({"name": "Dr Claire Petit", "active": false})),
        ),
        200,
    );
    assert_eq!(changed["name"], "Dr Claire Petit");
    assert_eq!(changed["active"], false);
    assert_eq!(
        ok(send(&app, "GET", &format!("{base}/{}", ids[0]), &org.admin, None), 200),
        changed
    );

    // Bad input: nothing stored.
    for (body, code) in [
        (json!({"name": " ", "kind": "staff"}), "invalid_field"),
        (json!({"name": "X", "kind": "robot"}), "invalid_field"),
        (json!({"name": "X", "kind": "staff", "extra": 1}), "unknown_field"),
        (json!({"name": "X\u{0}Y", "kind": "staff"}), "invalid_field"),
        (json!({"name": 12, "kind": "staff"}), "invalid_field"),
    ] {
        let res = send(&app, "POST", base, &org.admin, Some(body.clone()));
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || problem["code"] == "invalid_type",
            "{body}: {problem}"
        );
    }
    send(
        &app,
        "POST",
        base,
        &org.admin,
        Some(json!({"name": "X", "kind": "staff", "staff_id": "stf_nobody"})),
    )
    .assert_problem(422, "validation_failed");
    let listed = ok(send(&app, "GET", &format!("{base}?limit=100"), &org.admin, None), 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 4, "nothing stored");

    // Another organization sees none of them.
    let other = app.org("bk-providers-other");
    send(&app, "GET", &format!("{base}/{}", ids[1]), &other.admin, None)
        .assert_problem(404, "not_found");
    send(
        &app,
        "PATCH",
        &format!("{base}/{}", ids[1]),
        &other.admin,
        Some(json!({"name": "Mine"})),
    )
    .assert_problem(404, "not_found");
    assert!(
        ok(send(&app, "GET", base, &other.admin, None), 200)["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Roles.
    let agent = agent(&app, &org);
    ok(send(&app, "GET", base, &agent, None), 200);
    send(
        &app,
        "POST",
        base,
        &agent,
        Some(json!({"name": "X", "kind": "staff"})),
    )
    .assert_problem(403, "forbidden");
    let customer = customer(&app, &org);
    send(&app, "GET", base, &customer, None).assert_problem(403, "forbidden");
    assert_eq!(app.request("GET", base).send().status, 401);
}

#[test]
fn a_week_of_windows_is_replaced_whole_and_checked() {
    let app = TestApp::spawn();
    let org = app.org("bk-week");
    let id = provider(&app, &org, "Claire");
    let path = format!("/v1/admin/booking-providers/{id}/availability");
    assert_eq!(
        ok(send(&app, "GET", &path, &org.admin, None), 200),
        json!({"windows": []})
    );
    let week = json!({"windows": [
        {"weekday": 2, "start": "14:00", "end": "18:00"},
        {"weekday": 1, "start": "09:00", "end": "12:30"},
        {"weekday": 1, "start": "12:30", "end": "13:00"},
        {"weekday": 6, "start": "20:00", "end": "24:00"},
    ]});
    let saved = ok(send(&app, "PUT", &path, &org.admin, Some(week)), 200);
    let expected = json!({"windows": [
        {"weekday": 1, "start": "09:00", "end": "12:30"},
        {"weekday": 1, "start": "12:30", "end": "13:00"},
        {"weekday": 2, "start": "14:00", "end": "18:00"},
        {"weekday": 6, "start": "20:00", "end": "24:00"},
    ]});
    assert_eq!(saved, expected);
    assert_eq!(ok(send(&app, "GET", &path, &org.admin, None), 200), expected);

    let many: Vec<Value> = (0..57)
        .map(|i| json!({"weekday": 1 + i % 7, "start": format!("{:02}:00", i / 7), "end": format!("{:02}:30", i / 7)}))
        .collect();
    for (windows, status, code) in [
        (json!([{"weekday": 1, "start": "10:00", "end": "09:00"}]), 422, "validation_failed"),
        (json!([{"weekday": 1, "start": "10:00", "end": "10:00"}]), 422, "validation_failed"),
        (
            json!([{"weekday": 3, "start": "09:00", "end": "12:00"}, {"weekday": 3, "start": "11:00", "end": "13:00"}]),
            422,
            "validation_failed",
        ),
        (json!([{"weekday": 1, "start": "9:00", "end": "12:00"}]), 400, "invalid_field"),
        (json!([{"weekday": 1, "start": "24:00", "end": "24:00"}]), 400, "invalid_field"),
        (json!([{"weekday": 8, "start": "09:00", "end": "12:00"}]), 400, "invalid_field"),
        (json!([{"weekday": 0, "start": "09:00", "end": "12:00"}]), 400, "invalid_field"),
        (json!([{"weekday": 1, "start": "09:00"}]), 400, "invalid_field"),
        (json!([{"weekday": 1, "start": "09:00", "end": "10:00", "x": 0}]), 400, "unknown_field"),
        (Value::Array(many), 400, "invalid_field"),
    ] {
        let res = send(&app, "PUT", &path, &org.admin, Some(json!({"windows": windows.clone()})));
        assert_eq!(res.status, status, "{windows}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || (status == 400 && problem["code"] == "invalid_type"),
            "{windows}: {problem}"
        );
    }
    assert_eq!(
        ok(send(&app, "GET", &path, &org.admin, None), 200),
        expected,
        "refusals store nothing"
    );
    let other = app.org("bk-week-other");
    send(&app, "GET", &path, &other.admin, None).assert_problem(404, "not_found");
    send(&app, "PUT", &path, &other.admin, Some(json!({"windows": []})))
        .assert_problem(404, "not_found");
    assert_eq!(ok(send(&app, "GET", &path, &org.admin, None), 200), expected);
    let agent = agent(&app, &org);
    send(&app, "PUT", &path, &agent, Some(json!({"windows": []}))).assert_problem(403, "forbidden");
}

#[test]
fn exceptions_close_or_open_a_day_and_belong_to_their_provider() {
    let app = TestApp::spawn();
    let org = app.org("bk-days");
    let id = provider(&app, &org, "Claire");
    let other_provider = provider(&app, &org, "Marc");
    let base = format!("/v1/admin/booking-providers/{id}/exceptions");
    let closed = ok(
        send(
            &app,
            "POST",
            &base,
            &org.admin,
            Some(json!({"date": "2027-01-04", "kind": "closed", "note": "Formation"})),
        ),
        201,
    );
    assert_eq!(closed["start"], Value::Null);
    assert_eq!(closed["note"], "Formation");
    let open = ok(
        send(
            &app,
            "POST",
            &base,
            &org.admin,
            Some(json!({"date": "2027-01-09", "kind": "open", "start": "14:00", "end": "16:00"})),
        ),
        201,
    );
    assert_eq!(open["start"], "14:00");
    assert_eq!(open["end"], "16:00");
    let listed = ok(
        send(&app, "GET", &format!("{base}?from=2027-01-01&to=2027-01-31"), &org.admin, None),
        200,
    );
    let dates: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2027-01-04", "2027-01-09"]);
    let january_5th = ok(
        send(&app, "GET", &format!("{base}?from=2027-01-05&to=2027-01-08"), &org.admin, None),
        200,
    );
    assert!(january_5th["data"].as_array().unwrap().is_empty());
    send(&app, "GET", &format!("{base}?from=2027-01-05&to=2027-01-01"), &org.admin, None)
        .assert_problem(400, "invalid_parameter");

    for (body, status, code) in [
        (json!({"date": "2027-01-10", "kind": "open"}), 422, "validation_failed"),
        (json!({"date": "2027-01-10", "kind": "closed", "start": "10:00"}), 422, "validation_failed"),
        (
            json!({"date": "2027-01-10", "kind": "open", "start": "16:00", "end": "14:00"}),
            422,
            "validation_failed",
        ),
        (json!({"date": "2027-02-30", "kind": "closed"}), 400, "invalid_field"),
        (json!({"date": "2027-01-10", "kind": "holiday"}), 400, "invalid_field"),
        (json!({"date": "2027-01-10", "kind": "closed", "note": "a\u{0}b"}), 400, "invalid_field"),
    ] {
        let res = send(&app, "POST", &base, &org.admin, Some(body.clone()));
        assert_eq!(res.status, status, "{body}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || (status == 400 && problem["code"] == "invalid_type"),
            "{body}: {problem}"
        );
    }
    let all = ok(
        send(&app, "GET", &format!("{base}?from=2027-01-01&to=2027-12-31"), &org.admin, None),
        200,
    );
    assert_eq!(all["data"].as_array().unwrap().len(), 2, "nothing stored");

    // Deleted through its own provider only.
    let closed_id = closed["id"].as_str().unwrap();
    send(
        &app,
        "DELETE",
        &format!("/v1/admin/booking-providers/{other_provider}/exceptions/{closed_id}"),
        &org.admin,
        None,
    )
    .assert_problem(404, "not_found");
    let stranger = app.org("bk-days-other");
    send(&app, "DELETE", &format!("{base}/{closed_id}"), &stranger.admin, None)
        .assert_problem(404, "not_found");
    send(&app, "GET", &base, &stranger.admin, None).assert_problem(404, "not_found");
    ok(send(&app, "DELETE", &format!("{base}/{closed_id}"), &org.admin, None), 204);
    send(&app, "DELETE", &format!("{base}/{closed_id}"), &org.admin, None)
        .assert_problem(404, "not_found");
    let left = ok(
        send(&app, "GET", &format!("{base}?from=2027-01-01&to=2027-12-31"), &org.admin, None),
        200,
    );
    assert_eq!(left["data"].as_array().unwrap().len(), 1);
}

#[test]
fn services_name_their_providers_and_their_timing() {
    let app = TestApp::spawn();
    let org = app.org("bk-services");
    let claire = provider(&app, &org, "Claire");
    let marc = provider(&app, &org, "Marc");
    let base = "/v1/admin/booking-services";
    let created = ok(
        send(
            &app,
            "POST",
            base,
            &org.admin,
            Some(json!({
                "names": {"fr": "Séance", "en": "Session"},
                "duration_minutes": 60,
                "buffer_after_minutes": 15,
                "price": {"amount": 6000, "currency": "EUR"},
                "provider_ids": [marc, claire, claire],
            })),
        ),
        201,
    );
    assert!(created["id"].as_str().unwrap().starts_with("svc_"));
    assert_eq!(created["names"], json!({"fr": "Séance", "en": "Session"}));
    assert_eq!(created["duration_minutes"], 60);
    assert_eq!(created["buffer_after_minutes"], 15);
    assert_eq!(created["price"], json!({"amount": 6000, "currency": "EUR"}));
    assert_eq!(created["active"], true);
    let mut both = vec![claire.clone(), marc.clone()];
    both.sort();
    assert_eq!(created["provider_ids"], json!(both));
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        ok(send(&app, "GET", &format!("{base}/{id}"), &org.admin, None), 200),
        created
    );

    let changed = ok(
        send(
            &app,
            "PATCH",
            &format!("{base}/{id}"),
            &org.admin,
            Some(json!({"price": null, "provider_ids": [claire], "duration_minutes": 30})),
        ),
        200,
    );
    assert_eq!(changed["price"], Value::Null);
    assert_eq!(changed["provider_ids"], json!([claire]));
    assert_eq!(changed["duration_minutes"], 30);
    assert_eq!(changed["buffer_after_minutes"], 15);

    let stranger = app.org("bk-services-other");
    let theirs = provider(&app, &stranger, "Not yours");
    for (body, status, code) in [
        (json!({"names": {}, "duration_minutes": 30, "provider_ids": [claire]}), 400, "invalid_field"),
        (json!({"names": {"fr": " "}, "duration_minutes": 30, "provider_ids": [claire]}), 400, "invalid_field"),
        (json!({"names": {"de": "X"}, "duration_minutes": 30, "provider_ids": [claire]}), 400, "unknown_field"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 32, "provider_ids": [claire]}), 422, "validation_failed"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 485, "provider_ids": [claire]}), 400, "invalid_field"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 30, "buffer_after_minutes": 7, "provider_ids": [claire]}), 422, "validation_failed"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": []}), 400, "invalid_field"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": [theirs]}), 422, "validation_failed"),
        (json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": [claire], "price": {"amount": -1, "currency": "EUR"}}), 400, "invalid_field"),
        (json!({"names": {"fr": "X"}, "duration_minutes": "30", "provider_ids": [claire]}), 400, "invalid_field"),
    ] {
        let res = send(&app, "POST", base, &org.admin, Some(body.clone()));
        assert_eq!(res.status, status, "{body}: {}", res.text());
        let problem = res.json();
        assert!(
            problem["code"] == code || (status == 400 && problem["code"] == "invalid_type"),
            "{body}: {problem}"
        );
    }
    let listed = ok(send(&app, "GET", base, &org.admin, None), 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "nothing stored");

    send(&app, "GET", &format!("{base}/{id}"), &stranger.admin, None)
        .assert_problem(404, "not_found");
    send(
        &app,
        "PATCH",
        &format!("{base}/{id}"),
        &stranger.admin,
        Some(json!({"active": false})),
    )
    .assert_problem(404, "not_found");
    let customer = customer(&app, &org);
    send(&app, "GET", base, &customer, None).assert_problem(403, "forbidden");
    let agent = agent(&app, &org);
    send(
        &app,
        "PATCH",
        &format!("{base}/{id}"),
        &agent,
        Some(json!({"active": false})),
    )
    .assert_problem(403, "forbidden");
    assert_eq!(app.request("GET", base).send().status, 401);
}
