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

    let saved = ok(
        send(&app, "PUT", path, &org.admin, Some(settings_body())),
        200,
    );
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
        (
            json!({"time_zone": "Europe/Par\u{0}is"}),
            400,
            "invalid_field",
        ),
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
    let array = send(
        &app,
        "PUT",
        path,
        &org.admin,
        Some(json!([settings_body()])),
    );
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
    let ids: Vec<String> = (0..3)
        .map(|i| provider(&app, &org, &format!("Praticien {i}")))
        .collect();
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
    let first = ok(
        send(&app, "GET", &format!("{base}?limit=2"), &org.admin, None),
        200,
    );
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok(
        send(
            &app,
            "GET",
            &format!("{base}?limit=2&cursor={cursor}"),
            &org.admin,
            None,
        ),
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
    send(
        &app,
        "GET",
        &format!("{base}?cursor=nope"),
        &org.admin,
        None,
    )
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
        ok(
            send(&app, "GET", &format!("{base}/{}", ids[0]), &org.admin, None),
            200
        ),
        changed
    );

    // Bad input: nothing stored.
    for (body, code) in [
        (json!({"name": " ", "kind": "staff"}), "invalid_field"),
        (json!({"name": "X", "kind": "robot"}), "invalid_field"),
        (
            json!({"name": "X", "kind": "staff", "extra": 1}),
            "unknown_field",
        ),
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
    // A field that may be left out may not be null.
    for body in [json!({"name": null}), json!({"active": null})] {
        let res = send(
            &app,
            "PATCH",
            &format!("{base}/{}", ids[1]),
            &org.admin,
            Some(body.clone()),
        );
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    let res = send(
        &app,
        "POST",
        base,
        &org.admin,
        Some(json!({"name": "X", "kind": "staff", "staff_id": null})),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    let listed = ok(
        send(&app, "GET", &format!("{base}?limit=100"), &org.admin, None),
        200,
    );
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        4,
        "nothing stored"
    );

    // Another organization sees none of them.
    let other = app.org("bk-providers-other");
    send(
        &app,
        "GET",
        &format!("{base}/{}", ids[1]),
        &other.admin,
        None,
    )
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
    assert_eq!(
        ok(send(&app, "GET", &path, &org.admin, None), 200),
        expected
    );

    let many: Vec<Value> = (0..57)
        .map(|i| json!({"weekday": 1 + i % 7, "start": format!("{:02}:00", i / 7), "end": format!("{:02}:30", i / 7)}))
        .collect();
    for (windows, status, code) in [
        (
            json!([{"weekday": 1, "start": "10:00", "end": "09:00"}]),
            422,
            "validation_failed",
        ),
        (
            json!([{"weekday": 1, "start": "10:00", "end": "10:00"}]),
            422,
            "validation_failed",
        ),
        (
            json!([{"weekday": 3, "start": "09:00", "end": "12:00"}, {"weekday": 3, "start": "11:00", "end": "13:00"}]),
            422,
            "validation_failed",
        ),
        (
            json!([{"weekday": 1, "start": "9:00", "end": "12:00"}]),
            400,
            "invalid_field",
        ),
        (
            json!([{"weekday": 1, "start": "24:00", "end": "24:00"}]),
            400,
            "invalid_field",
        ),
        (
            json!([{"weekday": 8, "start": "09:00", "end": "12:00"}]),
            400,
            "invalid_field",
        ),
        (
            json!([{"weekday": 0, "start": "09:00", "end": "12:00"}]),
            400,
            "invalid_field",
        ),
        (
            json!([{"weekday": 1, "start": "09:00"}]),
            400,
            "invalid_field",
        ),
        (
            json!([{"weekday": 1, "start": "09:00", "end": "10:00", "x": 0}]),
            400,
            "unknown_field",
        ),
        (Value::Array(many), 400, "invalid_field"),
    ] {
        let res = send(
            &app,
            "PUT",
            &path,
            &org.admin,
            Some(json!({"windows": windows.clone()})),
        );
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
    send(
        &app,
        "PUT",
        &path,
        &other.admin,
        Some(json!({"windows": []})),
    )
    .assert_problem(404, "not_found");
    assert_eq!(
        ok(send(&app, "GET", &path, &org.admin, None), 200),
        expected
    );
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
        send(
            &app,
            "GET",
            &format!("{base}?from=2027-01-01&to=2027-01-31"),
            &org.admin,
            None,
        ),
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
        send(
            &app,
            "GET",
            &format!("{base}?from=2027-01-05&to=2027-01-08"),
            &org.admin,
            None,
        ),
        200,
    );
    assert!(january_5th["data"].as_array().unwrap().is_empty());
    let reversed = ok(
        send(
            &app,
            "GET",
            &format!("{base}?from=2027-01-05&to=2027-01-01"),
            &org.admin,
            None,
        ),
        200,
    );
    assert!(reversed["data"].as_array().unwrap().is_empty());
    send(
        &app,
        "GET",
        &format!("{base}?from=2027-01-32"),
        &org.admin,
        None,
    )
    .assert_problem(400, "invalid_parameter");

    for (body, status, code) in [
        (
            json!({"date": "2027-01-10", "kind": "open"}),
            422,
            "validation_failed",
        ),
        (
            json!({"date": "2027-01-10", "kind": "closed", "start": "10:00"}),
            422,
            "validation_failed",
        ),
        (
            json!({"date": "2027-01-10", "kind": "open", "start": "16:00", "end": "14:00"}),
            422,
            "validation_failed",
        ),
        (
            json!({"date": "2027-02-30", "kind": "closed"}),
            400,
            "invalid_field",
        ),
        (
            json!({"date": "2027-01-10", "kind": "holiday"}),
            400,
            "invalid_field",
        ),
        (
            json!({"date": "2027-01-10", "kind": "closed", "note": "a\u{0}b"}),
            400,
            "invalid_field",
        ),
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
        send(
            &app,
            "GET",
            &format!("{base}?from=2027-01-01&to=2027-12-31"),
            &org.admin,
            None,
        ),
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
    send(
        &app,
        "DELETE",
        &format!("{base}/{closed_id}"),
        &stranger.admin,
        None,
    )
    .assert_problem(404, "not_found");
    send(&app, "GET", &base, &stranger.admin, None).assert_problem(404, "not_found");
    ok(
        send(
            &app,
            "DELETE",
            &format!("{base}/{closed_id}"),
            &org.admin,
            None,
        ),
        204,
    );
    send(
        &app,
        "DELETE",
        &format!("{base}/{closed_id}"),
        &org.admin,
        None,
    )
    .assert_problem(404, "not_found");
    let left = ok(
        send(
            &app,
            "GET",
            &format!("{base}?from=2027-01-01&to=2027-12-31"),
            &org.admin,
            None,
        ),
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
        ok(
            send(&app, "GET", &format!("{base}/{id}"), &org.admin, None),
            200
        ),
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
        (
            json!({"names": {}, "duration_minutes": 30, "provider_ids": [claire]}),
            400,
            "invalid_field",
        ),
        (
            json!({"names": {"fr": " "}, "duration_minutes": 30, "provider_ids": [claire]}),
            400,
            "invalid_field",
        ),
        (
            json!({"names": {"de": "X"}, "duration_minutes": 30, "provider_ids": [claire]}),
            400,
            "unknown_field",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 32, "provider_ids": [claire]}),
            422,
            "validation_failed",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 485, "provider_ids": [claire]}),
            400,
            "invalid_field",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 30, "buffer_after_minutes": 7, "provider_ids": [claire]}),
            422,
            "validation_failed",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": []}),
            400,
            "invalid_field",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": [theirs]}),
            422,
            "validation_failed",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": 30, "provider_ids": [claire], "price": {"amount": -1, "currency": "EUR"}}),
            400,
            "invalid_field",
        ),
        (
            json!({"names": {"fr": "X"}, "duration_minutes": "30", "provider_ids": [claire]}),
            400,
            "invalid_field",
        ),
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
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );

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

// ------------------------------------------------------------ bookings

/// An organization taking bookings online: `providers` practitioners open
/// Monday to Friday 09:00–12:00 (Paris), a 30-minute service delivered by
/// all of them, automatic confirmation unless `settings` says otherwise.
/// The server's clock is Sunday 2026-11-22 10:00 in Paris.
pub(crate) struct Cabinet {
    pub(crate) org: Org,
    pub(crate) service: String,
    pub(crate) providers: Vec<String>,
}

fn cabinet(app: &TestApp, slug: &str, providers: usize, settings: Value) -> Cabinet {
    cabinet_of(app, app.org(slug), providers, settings)
}

/// [`cabinet`] for an organization that exists.
pub(crate) fn cabinet_of(app: &TestApp, org: Org, providers: usize, settings: Value) -> Cabinet {
    let mut body = json!({
        "online_booking": true,
        "confirmation": "automatic",
        "horizon_days": 60,
        "min_notice_minutes": 720,
        "cancellation": {"allowed": true, "until_hours_before": 24},
        "reschedule": {"allowed": true, "until_hours_before": 24},
        "max_pending": 2,
        "reminder_hours_before": 24,
        "time_zone": "Europe/Paris",
    });
    for (k, v) in settings.as_object().unwrap() {
        body[k] = v.clone();
    }
    ok(
        send(
            app,
            "PUT",
            "/v1/admin/booking-settings",
            &org.admin,
            Some(body),
        ),
        200,
    );
    let week: Vec<Value> = (1..=5)
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "12:00"}))
        .collect();
    let providers: Vec<String> = (0..providers)
        .map(|i| {
            let id = provider(app, &org, &format!("Praticien {i}"));
            ok(
                send(
                    app,
                    "PUT",
                    &format!("/v1/admin/booking-providers/{id}/availability"),
                    &org.admin,
                    Some(json!({"windows": week})),
                ),
                200,
            );
            id
        })
        .collect();
    let service = ok(
        send(
            app,
            "POST",
            "/v1/admin/booking-services",
            &org.admin,
            Some(
                json!({"names": {"fr": "Consultation", "en": "Consultation"},
                        "duration_minutes": 30, "provider_ids": providers}),
            ),
        ),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Cabinet {
        org,
        service,
        providers,
    }
}

/// A registered customer of the cabinet: id and access token.
fn client(app: &TestApp, cab: &Cabinet, name: &str) -> (String, String) {
    let email = format!("{name}@{}.example", cab.org.slug);
    let (id, tokens) = app.registered_customer(&cab.org, &email, None);
    (id, tokens.access)
}

fn slots(app: &TestApp, token: &str, service: &str, from: &str, to: &str) -> Response {
    send(
        app,
        "GET",
        &format!("/v1/me/booking-slots?service={service}&from={from}&to={to}"),
        token,
        None,
    )
}

fn starts(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn book(app: &TestApp, token: &str, service: &str, start: &str) -> Response {
    send(
        app,
        "POST",
        "/v1/me/bookings",
        token,
        Some(json!({"service_id": service, "start": start})),
    )
}

/// Moves the server's clock `hours` on; the access tokens of the admin and
/// of `clients` outlive it, so they sign in again: the fresh admin, and
/// the clients' tokens in order.
fn later(app: &TestApp, cab: &mut Cabinet, hours: i64, clients: &[&str]) -> Vec<String> {
    app.clock.advance(chrono::Duration::hours(hours));
    let res = app
        .request("POST", "/v1/auth/staff/login")
        .json(&json!({"organization": cab.org.slug, "email": cab.org.admin_email, "password": PASSWORD}))
        .send();
    cab.org.admin = ok(res, 200)["access_token"].as_str().unwrap().to_owned();
    clients
        .iter()
        .map(|name| {
            let email = format!("{name}@{}.example", cab.org.slug);
            ok(app.login(&cab.org, &email, PASSWORD), 200)["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The organization's booking events, as (type, booking id), oldest first.
fn booking_events(app: &TestApp, org: &Org) -> Vec<(String, String)> {
    let res = ok(
        send(app, "GET", "/v1/admin/events?limit=100", &org.admin, None),
        200,
    );
    let mut events: Vec<(String, String)> = res["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"]["type"] == "booking")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["object"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    events.reverse();
    events
}

#[test]
fn free_slots_follow_the_windows_the_bookings_and_the_notice() {
    let app = TestApp::spawn();
    let mut cab = cabinet(&app, "bk-slots", 2, json!({}));
    let (_, anne) = client(&app, &cab, "anne");
    let monday = ok(
        slots(&app, &anne, &cab.service, "2026-11-23", "2026-11-23"),
        200,
    );
    assert_eq!(monday["time_zone"], "Europe/Paris");
    assert_eq!(
        starts(&monday),
        [
            "2026-11-23T08:00:00Z",
            "2026-11-23T08:30:00Z",
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:30:00Z",
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:30:00Z",
        ],
        "09:00 to 11:30 in Paris"
    );
    let mut both = cab.providers.clone();
    both.sort();
    for slot in monday["data"].as_array().unwrap() {
        let mut ids: Vec<String> = serde_json::from_value(slot["provider_ids"].clone()).unwrap();
        ids.sort();
        assert_eq!(ids, both);
    }
    // A week: five working days of six slots, none on the weekend.
    let week = ok(
        slots(&app, &anne, &cab.service, "2026-11-23", "2026-11-29"),
        200,
    );
    assert_eq!(starts(&week).len(), 30);

    // One practitioner taken at 09:00: the other is still free; both
    // taken: the slot is gone.
    let first = ok(book(&app, &anne, &cab.service, "2026-11-23T08:00:00Z"), 201);
    assert_eq!(first["status"], "confirmed");
    let after = ok(
        slots(&app, &anne, &cab.service, "2026-11-23", "2026-11-23"),
        200,
    );
    assert_eq!(
        after["data"][0]["provider_ids"].as_array().unwrap().len(),
        1
    );
    ok(book(&app, &anne, &cab.service, "2026-11-23T08:00:00Z"), 201);
    let full = ok(
        slots(&app, &anne, &cab.service, "2026-11-23", "2026-11-23"),
        200,
    );
    assert_eq!(starts(&full)[0], "2026-11-23T08:30:00Z");
    book(&app, &anne, &cab.service, "2026-11-23T08:00:00Z").assert_problem(409, "slot_taken");

    // A buffer after the service moves the grid and keeps the time after
    // a booking free.
    ok(
        send(
            &app,
            "PATCH",
            &format!("/v1/admin/booking-services/{}", cab.service),
            &cab.org.admin,
            Some(json!({"buffer_after_minutes": 15})),
        ),
        200,
    );
    let tuesday = ok(
        slots(&app, &anne, &cab.service, "2026-11-24", "2026-11-24"),
        200,
    );
    assert_eq!(
        starts(&tuesday),
        [
            "2026-11-24T08:00:00Z",
            "2026-11-24T08:45:00Z",
            "2026-11-24T09:30:00Z",
            "2026-11-24T10:15:00Z",
        ]
    );
    // The notice: on Monday at 08:00 in Paris, with 12 hours' notice,
    // Monday is gone and Tuesday is there.
    let anne = later(&app, &mut cab, 22, &["anne"]).remove(0);
    let (bob_id, bob) = client(&app, &cab, "bob");
    let soon = ok(
        slots(&app, &bob, &cab.service, "2026-11-23", "2026-11-24"),
        200,
    );
    assert!(
        starts(&soon).iter().all(|s| s.starts_with("2026-11-24")),
        "{soon}"
    );
    // A closed day.
    for p in &cab.providers {
        ok(
            send(
                &app,
                "POST",
                &format!("/v1/admin/booking-providers/{p}/exceptions"),
                &cab.org.admin,
                Some(json!({"date": "2026-11-25", "kind": "closed"})),
            ),
            201,
        );
    }
    let closed = ok(
        slots(&app, &bob, &cab.service, "2026-11-25", "2026-11-25"),
        200,
    );
    assert!(closed["data"].as_array().unwrap().is_empty());

    // The range and its parameters.
    let svc = &cab.service;
    for query in [
        format!("service={svc}&from=2026-11-24&to=2026-11-23"),
        format!("service={svc}&from=2026-11-24&to=2026-12-25"),
    ] {
        send(
            &app,
            "GET",
            &format!("/v1/me/booking-slots?{query}"),
            &bob,
            None,
        )
        .assert_problem(422, "validation_failed");
    }
    ok(
        send(
            &app,
            "GET",
            &format!("/v1/me/booking-slots?service={svc}&from=2026-11-24&to=2026-12-24"),
            &bob,
            None,
        ),
        200,
    );
    for query in [
        format!("service={svc}&from=2026-11-24"),
        format!("service={svc}&from=2026-13-01&to=2026-12-01"),
        format!("service={svc}&from=2026-11-24&to=2026-11-25&extra=1"),
        "from=2026-11-24&to=2026-11-25".to_owned(),
        "service=svc.1&from=2026-11-24&to=2026-11-25".to_owned(),
    ] {
        send(
            &app,
            "GET",
            &format!("/v1/me/booking-slots?{query}"),
            &bob,
            None,
        )
        .assert_problem(400, "invalid_parameter");
    }
    slots(&app, &bob, "svc_unknown", "2026-11-24", "2026-11-24").assert_problem(404, "not_found");
    // Another organization's service is unknown here.
    let other = cabinet(&app, "bk-slots-other", 1, json!({}));
    slots(&app, &bob, &other.service, "2026-11-24", "2026-11-24").assert_problem(404, "not_found");
    // An inactive service is unknown to customers.
    ok(
        send(
            &app,
            "PATCH",
            &format!("/v1/admin/booking-services/{svc}"),
            &cab.org.admin,
            Some(json!({"active": false})),
        ),
        200,
    );
    slots(&app, &bob, svc, "2026-11-24", "2026-11-24").assert_problem(404, "not_found");
    ok(
        send(
            &app,
            "PATCH",
            &format!("/v1/admin/booking-services/{svc}"),
            &cab.org.admin,
            Some(json!({"active": true})),
        ),
        200,
    );
    // Online booking closed; the bookings action off; staff and anonymous.
    let mut closed_settings = ok(
        send(
            &app,
            "GET",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            None,
        ),
        200,
    );
    closed_settings["online_booking"] = json!(false);
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            Some(closed_settings.clone()),
        ),
        200,
    );
    slots(&app, &bob, svc, "2026-11-24", "2026-11-24")
        .assert_problem(403, "online_booking_disabled");
    closed_settings["online_booking"] = json!(true);
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            Some(closed_settings),
        ),
        200,
    );
    ok(
        send(
            &app,
            "PUT",
            &format!("/v1/admin/customers/{bob_id}/portal-settings"),
            &cab.org.admin,
            Some(json!({"bookings": false})),
        ),
        200,
    );
    slots(&app, &bob, svc, "2026-11-24", "2026-11-24")
        .assert_problem(403, "portal_action_disabled");
    ok(slots(&app, &anne, svc, "2026-11-24", "2026-11-24"), 200);
    slots(&app, &cab.org.admin, svc, "2026-11-24", "2026-11-24").assert_problem(403, "forbidden");
    assert_eq!(
        app.request(
            "GET",
            &format!("/v1/me/booking-slots?service={svc}&from=2026-11-24&to=2026-11-24")
        )
        .send()
        .status,
        401
    );
}

#[test]
fn slots_are_local_times_on_both_sides_of_a_daylight_saving_change() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-dst", 1, json!({"horizon_days": 365}));
    let (_, anne) = client(&app, &cab, "anne");
    // Paris goes to summer time on Sunday 2027-03-28.
    let friday = ok(
        slots(&app, &anne, &cab.service, "2027-03-26", "2027-03-26"),
        200,
    );
    assert_eq!(
        starts(&friday)[0],
        "2027-03-26T08:00:00Z",
        "09:00 at +01:00"
    );
    let monday = ok(
        slots(&app, &anne, &cab.service, "2027-03-29", "2027-03-29"),
        200,
    );
    assert_eq!(
        starts(&monday)[0],
        "2027-03-29T07:00:00Z",
        "09:00 at +02:00"
    );
    assert_eq!(starts(&monday).len(), 6);
    // A window over the night of the change: 01:00–04:00 on Sunday lasts
    // two hours (02:00–03:00 does not exist).
    ok(
        send(
            &app,
            "PUT",
            &format!(
                "/v1/admin/booking-providers/{}/availability",
                cab.providers[0]
            ),
            &cab.org.admin,
            Some(json!({"windows": [{"weekday": 7, "start": "01:00", "end": "04:00"}]})),
        ),
        200,
    );
    let sunday = ok(
        slots(&app, &anne, &cab.service, "2027-03-28", "2027-03-28"),
        200,
    );
    assert_eq!(
        starts(&sunday),
        [
            "2027-03-28T00:00:00Z",
            "2027-03-28T00:30:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-28T01:30:00Z",
        ]
    );
    // Back to winter time on 2026-10-25... and on 2027-10-31: the same
    // window lasts four hours (02:00–03:00 happens twice).
    let autumn = ok(
        slots(&app, &anne, &cab.service, "2027-10-31", "2027-10-31"),
        200,
    );
    assert_eq!(starts(&autumn).len(), 8, "{autumn}");
    assert_eq!(starts(&autumn)[0], "2027-10-30T23:00:00Z");
    // A booking on the slot after the gap.
    let booked = ok(book(&app, &anne, &cab.service, "2027-03-28T01:00:00Z"), 201);
    assert_eq!(booked["end"], "2027-03-28T01:30:00Z");
}

#[test]
fn requests_are_confirmed_or_held_per_the_settings_and_checked() {
    let app = TestApp::spawn();
    let cab = cabinet(
        &app,
        "bk-requests",
        1,
        json!({"confirmation": "manual", "max_pending": 2}),
    );
    let (anne_id, anne) = client(&app, &cab, "anne");
    let svc = cab.service.clone();
    let first = ok(book(&app, &anne, &svc, "2026-11-23T08:00:00Z"), 201);
    assert_eq!(first["status"], "pending");
    assert_eq!(first["service"]["fr"], "Consultation");
    assert_eq!(first["provider_name"], "Praticien 0");
    assert_eq!(first["end"], "2026-11-23T08:30:00Z");
    // A pending request holds its slot.
    book(&app, &anne, &svc, "2026-11-23T08:00:00Z").assert_problem(409, "slot_taken");
    let second = ok(
        send(
            &app,
            "POST",
            "/v1/me/bookings",
            &anne,
            Some(
                json!({"service_id": svc, "start": "2026-11-23T09:00:00Z", "note": " Première visite "}),
            ),
        ),
        201,
    );
    assert_eq!(second["note"], "Première visite");
    // The third pending request is one too many.
    let third = book(&app, &anne, &svc, "2026-11-24T08:00:00Z");
    let problem = third.assert_problem(409, "too_many_pending");
    assert_eq!(problem["max_pending"], 2);
    let pending = ok(
        send(&app, "GET", "/v1/me/bookings?view=pending", &anne, None),
        200,
    );
    assert_eq!(pending["data"].as_array().unwrap().len(), 2);
    let upcoming = ok(send(&app, "GET", "/v1/me/bookings", &anne, None), 200);
    assert!(upcoming["data"].as_array().unwrap().is_empty());

    // Staff approve one and decline the other, with a reason.
    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    let approved = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{first_id}/approval"),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(approved["status"], "confirmed");
    assert_eq!(approved["customer_id"], anne_id.as_str());
    let declined = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{second_id}/decline"),
            &cab.org.admin,
            Some(json!({"reason": "Cabinet fermé ce jour-là."})),
        ),
        200,
    );
    assert_eq!(declined["status"], "declined");
    send(
        &app,
        "POST",
        &format!("/v1/admin/bookings/{second_id}/approval"),
        &cab.org.admin,
        None,
    )
    .assert_problem(409, "booking_status_conflict");
    let upcoming = ok(
        send(&app, "GET", "/v1/me/bookings?view=upcoming", &anne, None),
        200,
    );
    assert_eq!(upcoming["data"][0]["id"], first_id);
    let history = ok(
        send(&app, "GET", "/v1/me/bookings?view=history", &anne, None),
        200,
    );
    assert_eq!(history["data"][0]["id"], second_id);
    assert_eq!(history["data"][0]["reason"], "Cabinet fermé ce jour-là.");
    // The declined slot is free again.
    assert!(
        starts(&ok(
            slots(&app, &anne, &svc, "2026-11-23", "2026-11-23"),
            200
        ))
        .contains(&"2026-11-23T09:00:00Z".to_owned())
    );
    let mut events = booking_events(&app, &cab.org);
    events.sort();
    let mut expected = vec![
        ("booking.requested".to_owned(), first_id.to_owned()),
        ("booking.requested".to_owned(), second_id.to_owned()),
        ("booking.confirmed".to_owned(), first_id.to_owned()),
        ("booking.declined".to_owned(), second_id.to_owned()),
    ];
    expected.sort();
    assert_eq!(events, expected);

    // The window and the grid.
    let refused = book(&app, &anne, &svc, "2026-11-22T12:00:00Z");
    let problem = refused.assert_problem(422, "outside_booking_window");
    assert_eq!(problem["earliest"], "2026-11-22T21:00:00Z");
    book(&app, &anne, &svc, "2027-02-01T08:00:00Z").assert_problem(422, "outside_booking_window");
    book(&app, &anne, &svc, "2026-11-23T08:10:00Z").assert_problem(422, "slot_unavailable");
    book(&app, &anne, &svc, "2026-11-28T08:00:00Z").assert_problem(422, "slot_unavailable");
    book(&app, &anne, "svc_nothing", "2026-11-24T08:00:00Z").assert_problem(404, "not_found");
    send(
        &app,
        "POST",
        "/v1/me/bookings",
        &anne,
        Some(
            json!({"service_id": svc, "start": "2026-11-24T08:00:00Z", "provider_id": "prv_other"}),
        ),
    )
    .assert_problem(422, "slot_unavailable");

    // Bad input stores nothing.
    let bodies = [
        json!({"service_id": svc}),
        json!({"service_id": svc, "start": "tomorrow"}),
        json!({"service_id": svc, "start": "2026-11-24T08:00:00Z", "x": 1}),
        json!({"service_id": 42, "start": "2026-11-24T08:00:00Z"}),
        json!({"service_id": svc, "start": "2026-11-24T08:00:00Z", "note": "a\u{0}b"}),
        json!({"service_id": svc, "start": "2026-11-24T08:00:00Z", "note": "  "}),
        json!([{"service_id": svc, "start": "2026-11-24T08:00:00Z"}]),
    ];
    for body in bodies {
        let res = send(&app, "POST", "/v1/me/bookings", &anne, Some(body.clone()));
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
    }
    let malformed = app
        .request("POST", "/v1/me/bookings")
        .bearer(&anne)
        .header("content-type", "application/json")
        .body(b"{\"service_id\": ".to_vec())
        .send();
    malformed.assert_problem(400, "malformed_json");
    assert_eq!(booking_events(&app, &cab.org).len(), 4, "nothing stored");

    // Staff tokens may not book as a customer; nobody books anonymously.
    book(&app, &cab.org.admin, &svc, "2026-11-24T08:00:00Z").assert_problem(403, "forbidden");
    assert_eq!(
        app.request("POST", "/v1/me/bookings")
            .json(&json!({"service_id": svc, "start": "2026-11-24T08:00:00Z"}))
            .send()
            .status,
        401
    );
}

#[test]
fn a_request_with_an_idempotency_key_is_made_once() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-idem", 1, json!({}));
    let (_, anne) = client(&app, &cab, "anne");
    let request = |key: &str, start: &str| {
        app.request("POST", "/v1/me/bookings")
            .bearer(&anne)
            .header("Idempotency-Key", key)
            .json(&json!({"service_id": cab.service, "start": start}))
            .send()
    };
    let first = request("book-1", "2026-11-23T08:00:00Z");
    assert_eq!(first.status, 201, "{}", first.text());
    let again = request("book-1", "2026-11-23T08:00:00Z");
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    request("book-1", "2026-11-23T08:30:00Z").assert_problem(422, "idempotency_key_reused");
    // A refusal frees the key.
    request("book-2", "2026-11-23T08:00:00Z").assert_problem(409, "slot_taken");
    assert_eq!(request("book-2", "2026-11-23T08:30:00Z").status, 201);
    assert_eq!(booking_events(&app, &cab.org).len(), 2);
}

#[test]
fn customers_cancel_and_reschedule_within_the_settings() {
    let app = TestApp::spawn();
    let mut cab = cabinet(&app, "bk-change", 1, json!({}));
    let (_, anne) = client(&app, &cab, "anne");
    let (_, bob) = client(&app, &cab, "bob");
    let svc = cab.service.clone();
    let booked = ok(book(&app, &anne, &svc, "2026-11-24T09:00:00Z"), 201);
    let id = booked["id"].as_str().unwrap().to_owned();
    assert_eq!(booked["actions"]["cancel_until"], "2026-11-23T09:00:00Z");
    assert_eq!(
        booked["actions"]["reschedule_until"],
        "2026-11-23T09:00:00Z"
    );
    ok(book(&app, &bob, &svc, "2026-11-24T10:00:00Z"), 201);

    // Another customer's booking is not found.
    let path = format!("/v1/me/bookings/{id}");
    send(&app, "GET", &path, &bob, None).assert_problem(404, "not_found");
    send(&app, "POST", &format!("{path}/cancellation"), &bob, None)
        .assert_problem(404, "not_found");
    send(
        &app,
        "POST",
        &format!("{path}/reschedule"),
        &bob,
        Some(json!({"start": "2026-11-24T09:30:00Z"})),
    )
    .assert_problem(404, "not_found");

    // Moved to a free start; not onto Bob's; not off the grid.
    let moved = ok(
        send(
            &app,
            "POST",
            &format!("{path}/reschedule"),
            &anne,
            Some(json!({"start": "2026-11-24T09:30:00Z"})),
        ),
        200,
    );
    assert_eq!(moved["start"], "2026-11-24T09:30:00Z");
    assert_eq!(moved["status"], "confirmed");
    send(
        &app,
        "POST",
        &format!("{path}/reschedule"),
        &anne,
        Some(json!({"start": "2026-11-24T10:00:00Z"})),
    )
    .assert_problem(409, "slot_taken");
    send(
        &app,
        "POST",
        &format!("{path}/reschedule"),
        &anne,
        Some(json!({"start": "2026-11-24T09:40:00Z"})),
    )
    .assert_problem(422, "slot_unavailable");
    // Moving by half its length onto its own time is fine.
    ok(
        send(
            &app,
            "POST",
            &format!("{path}/reschedule"),
            &anne,
            Some(json!({"start": "2026-11-24T09:00:00Z"})),
        ),
        200,
    );
    for body in [
        json!({}),
        json!({"start": "2026-11-24T09:00:00Z", "x": 1}),
        json!({"start": 5}),
    ] {
        let res = send(
            &app,
            "POST",
            &format!("{path}/reschedule"),
            &anne,
            Some(body.clone()),
        );
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }

    // Past the deadline (24 hours before), neither.
    let anne = later(&app, &mut cab, 24, &["anne"]).remove(0);
    let late = ok(send(&app, "GET", &path, &anne, None), 200);
    assert_eq!(late["actions"]["cancel_until"], Value::Null);
    send(&app, "POST", &format!("{path}/cancellation"), &anne, None)
        .assert_problem(409, "too_late_to_cancel");
    send(
        &app,
        "POST",
        &format!("{path}/reschedule"),
        &anne,
        Some(json!({"start": "2026-11-24T10:30:00Z"})),
    )
    .assert_problem(409, "too_late_to_reschedule");

    // A business that does not let customers cancel online.
    let mut settings = ok(
        send(
            &app,
            "GET",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            None,
        ),
        200,
    );
    settings["cancellation"] = json!({"allowed": false, "until_hours_before": 0});
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            Some(settings),
        ),
        200,
    );
    let later = ok(book(&app, &anne, &svc, "2026-11-27T08:00:00Z"), 201);
    assert_eq!(later["actions"]["cancel_until"], Value::Null);
    let later_path = format!("/v1/me/bookings/{}", later["id"].as_str().unwrap());
    send(
        &app,
        "POST",
        &format!("{later_path}/cancellation"),
        &anne,
        None,
    )
    .assert_problem(409, "cancellation_not_allowed");
    let mut settings = ok(
        send(
            &app,
            "GET",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            None,
        ),
        200,
    );
    settings["cancellation"] = json!({"allowed": true, "until_hours_before": 2});
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            Some(settings),
        ),
        200,
    );
    let cancelled = ok(
        send(
            &app,
            "POST",
            &format!("{later_path}/cancellation"),
            &anne,
            None,
        ),
        200,
    );
    assert_eq!(cancelled["status"], "cancelled");
    send(
        &app,
        "POST",
        &format!("{later_path}/cancellation"),
        &anne,
        None,
    )
    .assert_problem(409, "booking_status_conflict");
    let staff_view = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/bookings/{}", later["id"].as_str().unwrap()),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(staff_view["cancelled_by"], "customer");
    let mut types: Vec<String> = booking_events(&app, &cab.org)
        .into_iter()
        .map(|e| e.0)
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "booking.cancelled",
            "booking.confirmed",
            "booking.confirmed",
            "booking.confirmed",
            "booking.rescheduled",
            "booking.rescheduled",
        ]
    );
}

#[test]
fn staff_run_the_day_and_never_double_book() {
    let app = TestApp::spawn();
    let mut cab = cabinet(&app, "bk-staff", 2, json!({}));
    let (anne_id, anne) = client(&app, &cab, "anne");
    let svc = cab.service.clone();
    // Staff book outside the customer-side limits: in an hour, outside the
    // windows, on a Sunday.
    let made = ok(
        send(
            &app,
            "POST",
            "/v1/admin/bookings",
            &cab.org.admin,
            Some(
                json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-22T10:00:00Z",
                        "provider_id": cab.providers[0], "note": "Urgence"}),
            ),
        ),
        201,
    );
    assert_eq!(made["status"], "confirmed");
    assert_eq!(made["created_by"], "staff");
    assert_eq!(made["provider_id"], cab.providers[0].as_str());
    // The same practitioner at an overlapping time: refused; without a
    // practitioner, the other one takes it; then nobody is left.
    send(
        &app,
        "POST",
        "/v1/admin/bookings",
        &cab.org.admin,
        Some(
            json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-22T10:15:00Z",
                    "provider_id": cab.providers[0]}),
        ),
    )
    .assert_problem(409, "slot_taken");
    let other = ok(
        send(
            &app,
            "POST",
            "/v1/admin/bookings",
            &cab.org.admin,
            Some(
                json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-22T10:15:00Z"}),
            ),
        ),
        201,
    );
    assert_eq!(other["provider_id"], cab.providers[1].as_str());
    send(
        &app,
        "POST",
        "/v1/admin/bookings",
        &cab.org.admin,
        Some(json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-22T10:20:00Z"})),
    )
    .assert_problem(409, "slot_taken");
    // The customer sees it in their upcoming list.
    let mine = ok(send(&app, "GET", "/v1/me/bookings", &anne, None), 200);
    assert_eq!(mine["data"].as_array().unwrap().len(), 2);

    // The day's list, by provider and status.
    let day = ok(
        send(
            &app,
            "GET",
            "/v1/admin/bookings?from=2026-11-22&to=2026-11-22",
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(day["data"].as_array().unwrap().len(), 2);
    let by_provider = ok(
        send(
            &app,
            "GET",
            &format!(
                "/v1/admin/bookings?from=2026-11-22&provider_id={}",
                cab.providers[1]
            ),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(by_provider["data"][0]["id"], other["id"]);
    let page = ok(
        send(
            &app,
            "GET",
            "/v1/admin/bookings?limit=1",
            &cab.org.admin,
            None,
        ),
        200,
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/bookings?limit=1&cursor={cursor}"),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(next["data"][0]["id"], other["id"]);
    let reversed = ok(
        send(
            &app,
            "GET",
            "/v1/admin/bookings?from=2026-11-22&to=2026-11-21",
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert!(reversed["data"].as_array().unwrap().is_empty());
    for query in [
        "status=done",
        "from=2026-11-31",
        "limit=0",
        "cursor=x",
        "provider_id=0.5",
    ] {
        send(
            &app,
            "GET",
            &format!("/v1/admin/bookings?{query}"),
            &cab.org.admin,
            None,
        )
        .assert_problem(400, "invalid_parameter");
    }

    // Completed and no-show only once started; and only once.
    let made_id = made["id"].as_str().unwrap();
    let other_id = other["id"].as_str().unwrap();
    send(
        &app,
        "POST",
        &format!("/v1/admin/bookings/{made_id}/completion"),
        &cab.org.admin,
        None,
    )
    .assert_problem(409, "booking_not_started");
    let anne = later(&app, &mut cab, 2, &["anne"]).remove(0);
    let done = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{made_id}/completion"),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(done["status"], "completed");
    let absent = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{other_id}/no-show"),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(absent["status"], "no_show");
    send(
        &app,
        "POST",
        &format!("/v1/admin/bookings/{made_id}/no-show"),
        &cab.org.admin,
        None,
    )
    .assert_problem(409, "booking_status_conflict");
    send(
        &app,
        "POST",
        &format!("/v1/admin/bookings/{made_id}/cancellation"),
        &cab.org.admin,
        Some(json!({"reason": "Trop tard"})),
    )
    .assert_problem(409, "booking_status_conflict");
    let history = ok(
        send(&app, "GET", "/v1/me/bookings?view=history", &anne, None),
        200,
    );
    assert_eq!(history["data"].as_array().unwrap().len(), 2);

    // Staff cancel a customer's booking, with a reason.
    let booked = ok(book(&app, &anne, &svc, "2026-11-24T08:00:00Z"), 201);
    let booked_id = booked["id"].as_str().unwrap();
    for body in [
        json!({}),
        json!({"reason": " "}),
        json!({"reason": "x", "y": 1}),
    ] {
        let res = send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{booked_id}/cancellation"),
            &cab.org.admin,
            Some(body.clone()),
        );
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    let cancelled = ok(
        send(
            &app,
            "POST",
            &format!("/v1/admin/bookings/{booked_id}/cancellation"),
            &cab.org.admin,
            Some(json!({"reason": "Praticien absent"})),
        ),
        200,
    );
    assert_eq!(cancelled["cancelled_by"], "staff");
    let mine = ok(
        send(
            &app,
            "GET",
            &format!("/v1/me/bookings/{booked_id}"),
            &anne,
            None,
        ),
        200,
    );
    assert_eq!(mine["status"], "cancelled");
    assert_eq!(mine["reason"], "Praticien absent");

    // Bad input, other organizations, customers.
    for body in [
        json!({"customer_id": anne_id, "service_id": svc}),
        json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-24T08:00:00Z", "x": 1}),
        json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-24T08:00:00Z", "note": "\u{0}"}),
    ] {
        let res = send(
            &app,
            "POST",
            "/v1/admin/bookings",
            &cab.org.admin,
            Some(body.clone()),
        );
        assert_eq!(res.status, 400, "{body}: {}", res.text());
    }
    let stranger = app.org("bk-staff-other");
    send(
        &app,
        "GET",
        &format!("/v1/admin/bookings/{booked_id}"),
        &stranger.admin,
        None,
    )
    .assert_problem(404, "not_found");
    send(
        &app,
        "POST",
        &format!("/v1/admin/bookings/{booked_id}/approval"),
        &stranger.admin,
        None,
    )
    .assert_problem(404, "not_found");
    send(
        &app,
        "POST",
        "/v1/admin/bookings",
        &stranger.admin,
        Some(json!({"customer_id": anne_id, "service_id": svc, "start": "2026-11-25T08:00:00Z"})),
    )
    .assert_problem(404, "not_found");
    send(&app, "GET", "/v1/admin/bookings", &anne, None).assert_problem(403, "forbidden");
    assert_eq!(app.request("GET", "/v1/admin/bookings").send().status, 401);
    // An agent runs the day too.
    let agent = agent(&app, &cab.org);
    ok(send(&app, "GET", "/v1/admin/bookings", &agent, None), 200);
}

#[test]
fn customers_and_staff_racing_for_few_slots_book_each_once() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-race", 1, json!({}));
    let customers: Vec<(String, String)> = (0..8)
        .map(|i| client(&app, &cab, &format!("c{i}")))
        .collect();
    // Five slots on Monday morning, 32 requests at once, and staff booking
    // the same starts meanwhile.
    let wanted = [
        "2026-11-23T08:00:00Z",
        "2026-11-23T08:30:00Z",
        "2026-11-23T09:00:00Z",
        "2026-11-23T09:30:00Z",
        "2026-11-23T10:00:00Z",
    ];
    let barrier = std::sync::Barrier::new(40);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let (barrier, customers, app, cab) = (&barrier, &customers, &app, &cab);
                scope.spawn(move || {
                    let start = wanted[i % wanted.len()];
                    barrier.wait();
                    if i < 32 {
                        book(app, &customers[i % customers.len()].1, &cab.service, start)
                    } else {
                        send(
                            app,
                            "POST",
                            "/v1/admin/bookings",
                            &cab.org.admin,
                            Some(json!({"customer_id": customers[0].0, "service_id": cab.service, "start": start})),
                        )
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(won, 5, "one booking per slot");
    for r in answers.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "slot_taken");
    }
    let day = ok(
        send(
            &app,
            "GET",
            "/v1/admin/bookings?from=2026-11-23",
            &cab.org.admin,
            None,
        ),
        200,
    );
    let mut booked: Vec<String> = day["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap().to_owned())
        .collect();
    booked.sort();
    assert_eq!(booked, wanted);
    assert_eq!(booking_events(&app, &cab.org).len(), 5);
}

#[test]
fn pending_requests_are_capped_even_at_once() {
    let app = TestApp::spawn();
    let cab = cabinet(
        &app,
        "bk-cap",
        2,
        json!({"confirmation": "manual", "max_pending": 2}),
    );
    let (_, anne) = client(&app, &cab, "anne");
    let starts: Vec<String> = (0..20)
        .map(|i| {
            let day = 23 + (i / 6) as u32;
            let minute = (i % 6) * 30;
            format!(
                "2026-11-{day}T{:02}:{:02}:00Z",
                8 + minute / 60,
                minute % 60
            )
        })
        .collect();
    let barrier = std::sync::Barrier::new(starts.len());
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = starts
            .iter()
            .map(|start| {
                let (barrier, app, cab, anne) = (&barrier, &app, &cab, &anne);
                scope.spawn(move || {
                    barrier.wait();
                    book(app, anne, &cab.service, start)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 2);
    for r in answers.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "too_many_pending");
    }
    let pending = ok(
        send(&app, "GET", "/v1/me/bookings?view=pending", &anne, None),
        200,
    );
    assert_eq!(pending["data"].as_array().unwrap().len(), 2);
}

// ------------------------------------------------ e-mails, calendar, reminders

/// The calendar file attached to `n`-th message to `to`, as text.
fn attached_ics(app: &TestApp, to: &str, n: usize) -> String {
    let message = app.nth_message(to, n);
    let file = message
        .attachments
        .iter()
        .find(|a| a.filename == "invitation.ics")
        .unwrap_or_else(|| panic!("no calendar file in {message:?}"));
    assert!(
        file.content_type.starts_with("text/calendar"),
        "{}",
        file.content_type
    );
    String::from_utf8(file.content.clone()).unwrap()
}

#[test]
fn each_change_is_e_mailed_with_its_calendar_file() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-mail", 1, json!({}));
    let email = format!("anne@{}.example", cab.org.slug);
    let (_, anne) = client(&app, &cab, "anne");
    let before = app.wait_for_messages(&email, 1).len();
    let booked = ok(book(&app, &anne, &cab.service, "2026-11-24T09:00:00Z"), 201);
    let id = booked["id"].as_str().unwrap().to_owned();
    let confirmation = app.nth_message(&email, before + 1);
    assert!(
        confirmation.body.contains("est confirmé"),
        "{}",
        confirmation.body
    );
    assert!(
        confirmation
            .body
            .contains("2026-11-24 10:00 (Europe/Paris)"),
        "{}",
        confirmation.body
    );
    let ics = attached_ics(&app, &email, before + 1);
    assert!(ics.contains("METHOD:REQUEST\r\n"), "{ics}");
    assert!(ics.contains("SEQUENCE:0\r\n"), "{ics}");
    assert!(
        ics.contains("DTSTART;TZID=Europe/Paris:20261124T100000"),
        "{ics}"
    );
    assert!(ics.contains("BEGIN:VTIMEZONE"), "{ics}");
    let uid = ics
        .lines()
        .find(|l| l.starts_with("UID:"))
        .unwrap()
        .to_owned();
    assert!(uid.contains(&id), "{uid}");

    // The same file from the API.
    let path = format!("/v1/me/bookings/{id}/calendar.ics");
    let file = send(&app, "GET", &path, &anne, None);
    assert_eq!(file.status, 200);
    assert!(
        file.header("content-type")
            .unwrap()
            .starts_with("text/calendar")
    );
    assert!(file.text().contains(&uid));

    // Moved: the same UID, the next SEQUENCE.
    ok(
        send(
            &app,
            "POST",
            &format!("/v1/me/bookings/{id}/reschedule"),
            &anne,
            Some(json!({"start": "2026-11-24T10:00:00Z"})),
        ),
        200,
    );
    let moved = attached_ics(&app, &email, before + 2);
    assert!(
        moved.contains(&uid) && moved.contains("SEQUENCE:1\r\n"),
        "{moved}"
    );
    assert!(
        moved.contains("DTSTART;TZID=Europe/Paris:20261124T110000"),
        "{moved}"
    );
    // Cancelled: METHOD:CANCEL.
    ok(
        send(
            &app,
            "POST",
            &format!("/v1/me/bookings/{id}/cancellation"),
            &anne,
            None,
        ),
        200,
    );
    let cancelled = attached_ics(&app, &email, before + 3);
    assert!(cancelled.contains("METHOD:CANCEL\r\n"), "{cancelled}");
    assert!(cancelled.contains(&uid) && cancelled.contains("SEQUENCE:2\r\n"));
    assert!(cancelled.contains("STATUS:CANCELLED"), "{cancelled}");
    let served = send(&app, "GET", &path, &anne, None).text();
    assert!(served.contains("METHOD:CANCEL"), "{served}");

    // A request held for approval: a message without a file; declined:
    // the reason, and a portal notification.
    let mut settings = ok(
        send(
            &app,
            "GET",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            None,
        ),
        200,
    );
    settings["confirmation"] = json!("manual");
    ok(
        send(
            &app,
            "PUT",
            "/v1/admin/booking-settings",
            &cab.org.admin,
            Some(settings),
        ),
        200,
    );
    let pending = ok(book(&app, &anne, &cab.service, "2026-11-25T09:00:00Z"), 201);
    let requested = app.nth_message(&email, before + 4);
    assert!(
        requested.subject.contains("demande"),
        "{}",
        requested.subject
    );
    assert!(requested.attachments.is_empty());
    ok(
        send(
            &app,
            "POST",
            &format!(
                "/v1/admin/bookings/{}/decline",
                pending["id"].as_str().unwrap()
            ),
            &cab.org.admin,
            Some(json!({"reason": "Cabinet fermé"})),
        ),
        200,
    );
    let declined = app.nth_message(&email, before + 5);
    assert!(declined.body.contains("Cabinet fermé"), "{}", declined.body);
    let notes = ok(send(&app, "GET", "/v1/me/notifications", &anne, None), 200);
    let kinds: Vec<&str> = notes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"booking.declined"), "{notes}");
    assert!(
        !kinds.contains(&"booking.cancelled"),
        "her own cancellation is no news to her: {notes}"
    );
    // Other customers' files are not found.
    let (_, bob) = client(&app, &cab, "bob");
    send(&app, "GET", &path, &bob, None).assert_problem(404, "not_found");
    send(&app, "GET", &path, &cab.org.admin, None).assert_problem(403, "forbidden");
}

#[test]
fn a_preview_books_as_the_test_customer_and_e_mails_only_the_staff_member() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-preview", 1, json!({}));
    let p = ok(
        app.request("POST", "/v1/admin/portal/preview-session")
            .bearer(&cab.org.admin)
            .send(),
        201,
    );
    let token = p["access_token"].as_str().unwrap().to_owned();
    let sms_before = app.sms().len();
    let before = app.messages_now(&cab.org.admin_email).len();
    let booked = ok(
        book(&app, &token, &cab.service, "2026-11-24T09:00:00Z"),
        201,
    );
    let staff_view = ok(
        send(
            &app,
            "GET",
            &format!("/v1/admin/bookings/{}", booked["id"].as_str().unwrap()),
            &cab.org.admin,
            None,
        ),
        200,
    );
    assert_eq!(staff_view["test"], true);
    let mail = app.nth_message(&cab.org.admin_email, before + 1);
    assert!(mail.body.contains("est confirmé"), "{}", mail.body);
    assert_eq!(app.sms().len(), sms_before, "no SMS");
}

fn reminders(app: &TestApp) -> guichet_jobs::bookings::ReminderReport {
    guichet_jobs::bookings::BookingReminders::new(
        app.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
    )
    .run()
    .unwrap()
}

#[test]
fn a_reminder_goes_once_the_day_before_by_e_mail_and_sms() {
    let app = TestApp::spawn();
    let mut cab = cabinet(&app, "bk-remind", 2, json!({"reminder_hours_before": 24}));
    let email = format!("anne@{}.example", cab.org.slug);
    let mobile = "+33612345678";
    let (_, anne_tokens) = app.registered_customer(&cab.org, &email, Some(mobile));
    let anne = anne_tokens.access;
    // Tuesday 10:00 and Wednesday 10:00 in Paris; Bob has no mobile.
    let tuesday = ok(book(&app, &anne, &cab.service, "2026-11-24T09:00:00Z"), 201);
    ok(book(&app, &anne, &cab.service, "2026-11-25T09:00:00Z"), 201);
    let (_, bob) = client(&app, &cab, "bob");
    let bob_email = format!("bob@{}.example", cab.org.slug);
    ok(book(&app, &bob, &cab.service, "2026-11-24T09:00:00Z"), 201);
    // A cancelled booking is not reminded.
    let gone = ok(book(&app, &bob, &cab.service, "2026-11-24T09:30:00Z"), 201);
    ok(
        send(
            &app,
            "POST",
            &format!(
                "/v1/me/bookings/{}/cancellation",
                gone["id"].as_str().unwrap()
            ),
            &bob,
            None,
        ),
        200,
    );
    assert_eq!(reminders(&app).reminded, 0, "not due yet");
    let sms_before = app.messages_now(mobile).len();
    // Sign-up code and two confirmations; Bob's cancellation too.
    let mails_before = app.wait_for_messages(&email, 3).len();
    let bob_before = app.wait_for_messages(&bob_email, 4).len();

    // Monday 10:00 in Paris: Tuesday's are due, Wednesday's is not.
    later(&app, &mut cab, 24, &[]);
    let report = reminders(&app);
    assert_eq!(report.reminded, 2, "{report:?}");
    assert_eq!(report.messages, 3, "two e-mails and Anne's SMS: {report:?}");
    assert_eq!(reminders(&app).reminded, 0, "once");
    let sms = app.wait_for_messages(mobile, sms_before + 1);
    assert!(
        sms.last().unwrap().body.contains("2026-11-24 10:00"),
        "{sms:?}"
    );
    let mail = app.nth_message(&email, mails_before + 1);
    assert!(mail.subject.contains("rappel"), "{}", mail.subject);
    let bob_mail = app.nth_message(&bob_email, bob_before + 1);
    assert!(bob_mail.subject.contains("rappel"), "{}", bob_mail.subject);
    let events = booking_events(&app, &cab.org);
    let sent: Vec<&(String, String)> = events
        .iter()
        .filter(|e| e.0 == "booking.reminder_sent")
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().any(|e| e.1 == tuesday["id"].as_str().unwrap()));

    // Moved to Thursday: due again the day before.
    let anne = ok(app.login(&cab.org, &email, PASSWORD), 200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wednesday_id = ok(send(&app, "GET", "/v1/me/bookings", &anne, None), 200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["start"] == "2026-11-25T09:00:00Z")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        send(
            &app,
            "POST",
            &format!("/v1/me/bookings/{wednesday_id}/reschedule"),
            &anne,
            Some(json!({"start": "2026-11-26T09:00:00Z"})),
        ),
        200,
    );
    later(&app, &mut cab, 24, &[]);
    assert_eq!(
        reminders(&app).reminded,
        0,
        "Thursday's is not due on Tuesday"
    );
    later(&app, &mut cab, 24, &[]);
    assert_eq!(reminders(&app).reminded, 1);
}

#[test]
fn concurrent_reminder_runs_send_each_reminder_once() {
    let app = TestApp::spawn();
    let mut cab = cabinet(&app, "bk-remind-race", 2, json!({}));
    let customers: Vec<String> = (0..6)
        .map(|i| client(&app, &cab, &format!("c{i}")).1)
        .collect();
    let mut booked = 0;
    for (i, token) in customers.iter().enumerate() {
        for start in [
            "2026-11-24T08:00:00Z",
            "2026-11-24T08:30:00Z",
            "2026-11-24T09:00:00Z",
        ] {
            if i % 2 == 0 || start != "2026-11-24T09:00:00Z" {
                let res = book(&app, token, &cab.service, start);
                if res.status == 201 {
                    booked += 1;
                }
            }
        }
    }
    assert_eq!(booked, 6, "two practitioners, three slots");
    later(&app, &mut cab, 24, &[]);
    let reports: Vec<guichet_jobs::bookings::ReminderReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    guichet_jobs::bookings::BookingReminders::new(
                        app.store.clone(),
                        std::sync::Arc::new(app.clock.clone()),
                    )
                    .with_batch(1)
                    .run()
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: u64 = reports.iter().map(|r| r.reminded).sum();
    assert_eq!(total, 6, "{reports:?}");
    let sent = booking_events(&app, &cab.org)
        .into_iter()
        .filter(|e| e.0 == "booking.reminder_sent")
        .count();
    assert_eq!(sent, 6);
}

#[test]
fn the_dashboard_shows_the_next_three_bookings_while_bookings_are_on() {
    let app = TestApp::spawn();
    let cab = cabinet(
        &app,
        "bk-dash",
        1,
        json!({"confirmation": "manual", "max_pending": 5}),
    );
    let (anne_id, anne) = client(&app, &cab, "anne");
    for start in [
        "2026-11-26T09:00:00Z",
        "2026-11-24T09:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-27T09:00:00Z",
    ] {
        ok(book(&app, &anne, &cab.service, start), 201);
    }
    let dashboard = ok(send(&app, "GET", "/v1/me/dashboard", &anne, None), 200);
    let next = dashboard["upcoming_bookings"]["next"].as_array().unwrap();
    let starts: Vec<&str> = next.iter().map(|b| b["start"].as_str().unwrap()).collect();
    assert_eq!(
        starts,
        [
            "2026-11-24T09:00:00Z",
            "2026-11-25T09:00:00Z",
            "2026-11-26T09:00:00Z"
        ]
    );
    assert_eq!(next[0]["status"], "pending");
    assert_eq!(next[0]["service"], "Consultation");
    assert_eq!(next[0]["provider_name"], "Praticien 0");
    assert!(
        next[0]["link"]
            .as_str()
            .unwrap()
            .starts_with("/v1/me/bookings/bkg_")
    );
    ok(
        send(
            &app,
            "PUT",
            &format!("/v1/admin/customers/{anne_id}/portal-settings"),
            &cab.org.admin,
            Some(json!({"bookings": false})),
        ),
        200,
    );
    let dashboard = ok(send(&app, "GET", "/v1/me/dashboard", &anne, None), 200);
    assert!(dashboard.get("upcoming_bookings").is_none(), "{dashboard}");
    send(&app, "GET", "/v1/me/bookings", &anne, None).assert_problem(403, "portal_action_disabled");
    send(&app, "GET", "/v1/me/booking-services", &anne, None)
        .assert_problem(403, "portal_action_disabled");
}

#[test]
fn customers_list_the_active_services_with_their_active_providers() {
    let app = TestApp::spawn();
    let cab = cabinet(&app, "bk-catalogue", 2, json!({}));
    let (_, anne) = client(&app, &cab, "anne");
    ok(
        send(
            &app,
            "PATCH",
            &format!("/v1/admin/booking-providers/{}", cab.providers[1]),
            &cab.org.admin,
            Some(json!({"active": false})),
        ),
        200,
    );
    let hidden = ok(
        send(
            &app,
            "POST",
            "/v1/admin/booking-services",
            &cab.org.admin,
            Some(json!({"names": {"fr": "Ancien"}, "duration_minutes": 30,
                        "provider_ids": [cab.providers[0]], "active": false})),
        ),
        201,
    );
    let list = ok(
        send(&app, "GET", "/v1/me/booking-services", &anne, None),
        200,
    );
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_ne!(data[0]["id"], hidden["id"]);
    assert_eq!(
        data[0]["providers"],
        json!([{"id": cab.providers[0], "name": "Praticien 0"}])
    );
    // The inactive practitioner offers no slot.
    let monday = ok(
        slots(&app, &anne, &cab.service, "2026-11-23", "2026-11-23"),
        200,
    );
    for slot in monday["data"].as_array().unwrap() {
        assert_eq!(slot["provider_ids"], json!([cab.providers[0]]));
    }
    send(&app, "GET", "/v1/me/booking-services", &cab.org.admin, None)
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.request("GET", "/v1/me/booking-services").send().status,
        401
    );
}
