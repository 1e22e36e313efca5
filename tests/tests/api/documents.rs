//! Shared documents: staff upload (raw body and multipart), the type by
//! magic bytes, the size limit, withdrawal, the customer's list and
//! download (Range, ETag, `new`), the hash check, and isolation.

use guichet_tests::identity::{Org, Tokens};
use guichet_tests::{Options, Response, TestApp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

pub(crate) fn share(
    app: &TestApp,
    token: &str,
    customer: &str,
    title: &str,
    content_type: &str,
    bytes: &[u8],
) -> Response {
    app.request(
        "POST",
        &format!(
            "/v1/admin/customers/{customer}/documents?title={}",
            urlencode(title)
        ),
    )
    .bearer(token)
    .header("Content-Type", content_type)
    .body(bytes.to_vec())
    .send()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn multipart(
    app: &TestApp,
    token: &str,
    customer: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Response {
    let boundary = "----guichet-test-boundary";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    app.request("POST", &format!("/v1/admin/customers/{customer}/documents"))
        .bearer(token)
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
}

fn setup(app: &TestApp) -> (Org, String, Tokens) {
    let org = app.org("docs");
    let (id, tokens) = app.registered_customer(&org, "ines@example.com", None);
    (org, id, tokens)
}

fn count_documents(app: &TestApp) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.store.conn().unwrap();
    diesel::sql_query("SELECT COUNT(*) AS n FROM documents")
        .get_result::<N>(&mut conn)
        .unwrap()
        .n
}

fn blob_files(app: &TestApp) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { walk(&p) } else { 1 }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&app.data_dir.join("blobs"))
}

#[test]
fn staff_share_and_the_customer_downloads() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = setup(&app);

    let res = share(
        &app,
        &org.admin,
        &customer,
        "Compte rendu été",
        "application/octet-stream",
        PDF,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let doc = res.json();
    let sha = hex::encode(Sha256::digest(PDF));
    assert_eq!(doc["content_type"], "application/pdf");
    assert_eq!(doc["size"], PDF.len());
    assert_eq!(doc["sha256"], sha);
    assert_eq!(doc["filename"], "Compte rendu ete.pdf");
    assert_eq!(doc["kind"], "shared");
    let id = doc["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("doc_"));

    // The event, in the same transaction.
    {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            event_type: String,
        }
        let mut conn = app.store.conn().unwrap();
        let types: Vec<T> = diesel::sql_query("SELECT event_type FROM events ORDER BY created_at")
            .load(&mut conn)
            .unwrap();
        assert!(types.iter().any(|t| t.event_type == "document.shared"));
    }

    // The customer's list: new until opened.
    let list = app
        .request("GET", "/v1/me/documents")
        .bearer(&tokens.access)
        .send();
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["new"], true);
    assert_eq!(list["data"][0]["source"], "shared");
    assert_eq!(list["data"][0]["title"], "Compte rendu été");

    // A range first: does not need the whole file.
    let part = app
        .request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .header("Range", "bytes=5-9")
        .send();
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, &PDF[5..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 5-9/{}", PDF.len()).as_str())
    );
    assert_eq!(part.header("content-length"), Some("5"));
    let suffix = app
        .request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .header("Range", "bytes=-6")
        .send();
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &PDF[PDF.len() - 6..]);
    let outside = app
        .request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .header("Range", &format!("bytes={}-", PDF.len()))
        .send();
    outside.assert_problem(416, "range_not_satisfiable");
    assert_eq!(
        outside.header("content-range"),
        Some(format!("bytes */{}", PDF.len()).as_str())
    );

    let full = app
        .request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .send();
    assert_eq!(full.status, 200);
    assert_eq!(full.body, PDF);
    assert_eq!(full.header("content-type"), Some("application/pdf"));
    assert_eq!(
        full.header("content-length"),
        Some(PDF.len().to_string().as_str())
    );
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    let disposition = full.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"Compte rendu ete.pdf\""),
        "{disposition}"
    );
    let again = app
        .request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .header("If-None-Match", &format!("\"{sha}\""))
        .send();
    assert_eq!(again.status, 304);

    let list = app
        .request("GET", "/v1/me/documents")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(list["data"][0]["new"], false);
    let staff_view = app
        .request("GET", &format!("/v1/admin/documents/{id}"))
        .bearer(&org.admin)
        .send()
        .json();
    assert!(staff_view["opened_at"].is_string());

    // Withdrawn: gone for the customer, kept for staff.
    let res = app
        .request("DELETE", &format!("/v1/admin/documents/{id}"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["withdrawn_at"].is_string());
    let res = app
        .request("DELETE", &format!("/v1/admin/documents/{id}"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200);
    let list = app
        .request("GET", "/v1/me/documents")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    app.request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(404, "not_found");
    let staff_list = app
        .request("GET", &format!("/v1/admin/customers/{customer}/documents"))
        .bearer(&org.admin)
        .send()
        .json();
    assert_eq!(staff_list["data"].as_array().unwrap().len(), 1);
    let staff_copy = app
        .request("GET", &format!("/v1/admin/documents/{id}/content"))
        .bearer(&org.admin)
        .send();
    assert_eq!(staff_copy.body, PDF);
}

#[test]
fn multipart_upload_and_its_rules() {
    let app = TestApp::spawn();
    let (org, customer, _) = setup(&app);
    let res = multipart(
        &app,
        &org.admin,
        &customer,
        &[
            ("title", None, "Radio".as_bytes()),
            ("file", Some("x.png"), PNG),
        ],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["content_type"], "image/png");
    assert_eq!(res.json()["filename"], "Radio.png");
    // File first, title after.
    let res = multipart(
        &app,
        &org.admin,
        &customer,
        &[
            ("file", Some("n.txt"), "Bonjour\n".as_bytes()),
            ("title", None, b"Note"),
        ],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["content_type"], "text/plain");
    let stored = count_documents(&app);
    let files = blob_files(&app);

    // Refusals store nothing.
    multipart(&app, &org.admin, &customer, &[("file", Some("x.png"), PNG)])
        .assert_problem(400, "invalid_field");
    multipart(&app, &org.admin, &customer, &[("title", None, b"T")])
        .assert_problem(400, "invalid_field");
    multipart(
        &app,
        &org.admin,
        &customer,
        &[
            ("title", None, b"T"),
            ("file", Some("x.png"), PNG),
            ("extra", None, b"x"),
        ],
    )
    .assert_problem(400, "invalid_field");
    multipart(
        &app,
        &org.admin,
        &customer,
        &[("title", None, b"   "), ("file", Some("x.png"), PNG)],
    )
    .assert_problem(400, "invalid_field");
    multipart(
        &app,
        &org.admin,
        &customer,
        &[("title", None, b"a\0b"), ("file", Some("x.png"), PNG)],
    )
    .assert_problem(400, "invalid_field");
    multipart(
        &app,
        &org.admin,
        &customer,
        &[
            ("title", None, b"T"),
            ("file", Some("x.exe"), b"MZ\x90\x00\x03\x00"),
        ],
    )
    .assert_problem(415, "unsupported_media_type");
    assert_eq!(count_documents(&app), stored);
    assert_eq!(blob_files(&app), files);
}

#[test]
fn type_by_magic_bytes_size_limit_and_bad_input() {
    let app = TestApp::spawn_with(Options {
        args: vec!["--document-max-bytes".into(), "4096".into()],
        ..Options::default()
    });
    let (org, customer, _) = setup(&app);
    // Declared PDF, really a ZIP: refused.
    share(
        &app,
        &org.admin,
        &customer,
        "Archive",
        "application/pdf",
        b"PK\x03\x04rest",
    )
    .assert_problem(415, "unsupported_media_type");
    share(&app, &org.admin, &customer, "Empty", "text/plain", b"")
        .assert_problem(415, "unsupported_media_type");
    share(
        &app,
        &org.admin,
        &customer,
        "Binary",
        "text/plain",
        b"abc\x00def",
    )
    .assert_problem(415, "unsupported_media_type");
    // Declared text, really a JPEG: taken as a JPEG.
    let res = share(
        &app,
        &org.admin,
        &customer,
        "Photo",
        "text/plain",
        &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["content_type"], "image/jpeg");
    let stored = count_documents(&app);
    let files = blob_files(&app);

    // Over the limit: by Content-Length, before reading.
    let mut big = PDF.to_vec();
    big.resize(4097, b' ');
    share(&app, &org.admin, &customer, "Big", "application/pdf", &big)
        .assert_problem(413, "payload_too_large");
    // Exactly the limit is fine.
    big.truncate(4096);
    assert_eq!(
        share(&app, &org.admin, &customer, "Max", "application/pdf", &big).status,
        201
    );
    // A chunked body over the limit is cut while streaming (no Content-Length).
    let mut head = format!(
        "POST /v1/admin/customers/{customer}/documents?title=Chunked HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n",
        org.admin
    )
    .replace("title=Chunked", "title=Chunked")
    .into_bytes();
    for _ in 0..10 {
        let chunk = {
            let mut c = PDF.to_vec();
            c.resize(1000, b' ');
            c
        };
        head.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        head.extend_from_slice(&chunk);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"0\r\n\r\n");
    let res = app.raw(&head);
    res.assert_problem(413, "payload_too_large");
    assert_eq!(count_documents(&app), stored + 1);
    assert_eq!(blob_files(&app), files + 1);

    // Title rules and unknown parameters.
    share(&app, &org.admin, &customer, "", "application/pdf", PDF)
        .assert_problem(400, "invalid_parameter");
    let long = "x".repeat(201);
    share(&app, &org.admin, &customer, &long, "application/pdf", PDF)
        .assert_problem(400, "invalid_parameter");
    app.request("POST", &format!("/v1/admin/customers/{customer}/documents"))
        .bearer(&org.admin)
        .header("Content-Type", "application/pdf")
        .body(PDF.to_vec())
        .send()
        .assert_problem(400, "invalid_parameter");
    app.request(
        "POST",
        &format!("/v1/admin/customers/{customer}/documents?title=T&colour=red"),
    )
    .bearer(&org.admin)
    .header("Content-Type", "application/pdf")
    .body(PDF.to_vec())
    .send()
    .assert_problem(400, "invalid_parameter");
    app.request(
        "POST",
        &format!("/v1/admin/customers/{customer}/documents?title=a%00b"),
    )
    .bearer(&org.admin)
    .header("Content-Type", "application/pdf")
    .body(PDF.to_vec())
    .send()
    .assert_problem(400, "invalid_parameter");
    assert_eq!(count_documents(&app), stored + 1);
}

#[test]
fn isolation_and_authorization() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = setup(&app);
    let other = app.org("other");
    let (other_customer, other_tokens) = app.registered_customer(&other, "zoe@example.com", None);
    let (_, neighbour) = app.registered_customer(&org, "neighbour@example.com", None);
    let doc = share(&app, &org.admin, &customer, "Mine", "application/pdf", PDF).json();
    let id = doc["id"].as_str().unwrap();

    // Another organization's staff: 404 everywhere.
    share(&app, &other.admin, &customer, "X", "application/pdf", PDF)
        .assert_problem(404, "not_found");
    app.request("GET", &format!("/v1/admin/documents/{id}"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    app.request("DELETE", &format!("/v1/admin/documents/{id}"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    app.request("GET", &format!("/v1/admin/documents/{id}/content"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    app.request("GET", &format!("/v1/admin/customers/{customer}/documents"))
        .bearer(&other.admin)
        .send()
        .assert_problem(404, "not_found");
    // Another customer (same organization or not): 404.
    for token in [&neighbour.access, &other_tokens.access] {
        app.request("GET", &format!("/v1/me/documents/{id}/content"))
            .bearer(token)
            .send()
            .assert_problem(404, "not_found");
        let list = app
            .request("GET", "/v1/me/documents")
            .bearer(token)
            .send()
            .json();
        assert_eq!(list["data"].as_array().unwrap().len(), 0);
    }
    // A customer on admin routes: 403; no token: 401.
    share(&app, &tokens.access, &customer, "X", "application/pdf", PDF)
        .assert_problem(403, "forbidden");
    app.request("GET", &format!("/v1/admin/documents/{id}"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(403, "forbidden");
    app.request("DELETE", &format!("/v1/admin/documents/{id}"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(403, "forbidden");
    app.request(
        "GET",
        &format!("/v1/admin/customers/{other_customer}/documents"),
    )
    .bearer(&tokens.access)
    .send()
    .assert_problem(403, "forbidden");
    assert_eq!(app.request("GET", "/v1/me/documents").send().status, 401);
    assert_eq!(
        app.request("GET", &format!("/v1/me/documents/{id}/content"))
            .send()
            .status,
        401
    );
    assert_eq!(
        app.request(
            "POST",
            &format!("/v1/admin/customers/{customer}/documents?title=T")
        )
        .body(PDF.to_vec())
        .send()
        .status,
        401
    );
    // Staff on the customer's routes: 403.
    app.request("GET", "/v1/me/documents")
        .bearer(&org.admin)
        .send()
        .assert_problem(403, "forbidden");
}

#[test]
fn a_download_whose_bytes_do_not_match_answers_500() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = setup(&app);
    let doc = share(
        &app,
        &org.admin,
        &customer,
        "Report",
        "application/pdf",
        PDF,
    )
    .json();
    let id = doc["id"].as_str().unwrap();
    // Somebody changed the stored bytes.
    let path = app.data_dir.join("blobs").join(&org.id).join(id);
    let mut tampered = PDF.to_vec();
    tampered[20] ^= 1;
    std::fs::write(&path, &tampered).unwrap();
    app.request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(500, "internal_error");
    app.request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .header("Range", "bytes=0-3")
        .send()
        .assert_problem(500, "internal_error");
    // Gone altogether.
    std::fs::remove_file(&path).unwrap();
    app.request("GET", &format!("/v1/me/documents/{id}/content"))
        .bearer(&tokens.access)
        .send()
        .assert_problem(500, "internal_error");
}

#[test]
fn concurrent_uploads_are_each_stored_once() {
    let app = TestApp::spawn();
    let (org, customer, tokens) = setup(&app);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let app = &app;
                let (admin, customer) = (&org.admin, &customer);
                s.spawn(move || {
                    let mut body = PDF.to_vec();
                    body.extend_from_slice(format!("% {i}\n").as_bytes());
                    let res = share(
                        app,
                        admin,
                        customer,
                        &format!("Doc {i}"),
                        "application/pdf",
                        &body,
                    );
                    assert_eq!(res.status, 201, "{}", res.text());
                    (res.json()["id"].as_str().unwrap().to_owned(), body)
                })
            })
            .collect();
        for h in handles {
            let (id, body) = h.join().unwrap();
            let got = app
                .request("GET", &format!("/v1/me/documents/{id}/content"))
                .bearer(&tokens.access)
                .send();
            assert_eq!(got.body, body);
        }
    });
    let list: Value = app
        .request("GET", "/v1/me/documents")
        .bearer(&tokens.access)
        .send()
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 8);
    let _ = json!(null);
}

fn portal_settings(documents: bool, messages: bool) -> Value {
    json!({
        "slug": "docs",
        "actions": [
            {"action": "documents", "enabled": documents},
            {"action": "messages", "enabled": messages},
            {"action": "payments", "enabled": true},
            {"action": "bookings", "enabled": true}
        ],
        "sign_in_methods": "both",
        "branding": {"display_name": "Cabinet Martin", "contact_email": "accueil@kine.example"}
    })
}

#[test]
fn documents_follow_the_portal_settings_at_once_and_notify_the_customer() {
    let app = TestApp::spawn();
    let (org, ines, tokens) = setup(&app);
    let (_, bob) = app.registered_customer(&org, "bob@example.com", None);
    let res = share(
        &app,
        &org.admin,
        &ines,
        "Compte rendu",
        "application/pdf",
        PDF,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let doc = res.json()["id"].as_str().unwrap().to_owned();

    // The customer is told, in a notification pointing at the document.
    let notes = app
        .request("GET", "/v1/me/notifications")
        .bearer(&tokens.access)
        .send();
    assert_eq!(notes.status, 200, "{}", notes.text());
    let notes = notes.json();
    let note = &notes["data"][0];
    assert_eq!(note["kind"], "document.shared");
    assert_eq!(note["object_type"], "document");
    assert_eq!(note["object_id"], doc.as_str());
    assert_eq!(note["read"], false);
    assert!(note["body"].as_str().unwrap().contains("Compte rendu"));

    let list = |t: &str| app.request("GET", "/v1/me/documents").bearer(t).send();
    let content = |t: &str| {
        app.request("GET", &format!("/v1/me/documents/{doc}/content"))
            .bearer(t)
            .send()
    };
    assert_eq!(list(&tokens.access).status, 200);

    // Off for the organization: the open sessions are refused at once.
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings(false, true))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    list(&tokens.access).assert_problem(403, "portal_action_disabled");
    content(&tokens.access).assert_problem(403, "portal_action_disabled");
    list(&bob.access).assert_problem(403, "portal_action_disabled");
    // Staff still share and list.
    assert_eq!(
        share(&app, &org.admin, &ines, "Facture", "text/plain", b"merci").status,
        201
    );

    // A per-customer override turns it back on for Ines alone.
    let res = app
        .request(
            "PUT",
            &format!("/v1/admin/customers/{ines}/portal-settings"),
        )
        .bearer(&org.admin)
        .json(&json!({"documents": true}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(list(&tokens.access).status, 200);
    let file = content(&tokens.access);
    assert_eq!(file.status, 200, "{}", file.text());
    assert_eq!(file.body, PDF);
    list(&bob.access).assert_problem(403, "portal_action_disabled");

    // On for the organization, off for Ines by her override.
    let res = app
        .request("PUT", "/v1/admin/portal/settings")
        .bearer(&org.admin)
        .json(&portal_settings(true, true))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app
        .request(
            "PUT",
            &format!("/v1/admin/customers/{ines}/portal-settings"),
        )
        .bearer(&org.admin)
        .json(&json!({"documents": false}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    list(&tokens.access).assert_problem(403, "portal_action_disabled");
    content(&tokens.access).assert_problem(403, "portal_action_disabled");
    assert_eq!(list(&bob.access).status, 200);
}

#[test]
fn a_customers_documents_page_by_time_cursors() {
    let app = TestApp::spawn();
    let org = app.org("docs");
    let customer = app.customer(&org, "lea@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..3 {
        let res = share(
            &app,
            &org.admin,
            &customer,
            &format!("D{n}"),
            "application/pdf",
            PDF,
        );
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let path = format!("/v1/admin/customers/{customer}/documents");
    let first = app
        .request("GET", &format!("{path}?limit=2"))
        .bearer(&org.admin)
        .send()
        .json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (micros, id) = cursor.split_once('.').unwrap();
    assert!(micros.bytes().all(|b| b.is_ascii_digit()) && id.starts_with("doc_"));
    let second = app
        .request("GET", &format!("{path}?limit=2&cursor={cursor}"))
        .bearer(&org.admin)
        .send()
        .json();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let titles: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 3);
    assert!(["D0", "D1", "D2"].iter().all(|t| titles.contains(t)));
    // A position of the documented shape, even of no document, is a page.
    let res = app
        .request("GET", &format!("{path}?cursor=0.doc_gone"))
        .bearer(&org.admin)
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["data"].as_array().unwrap().len(), 0);
    for bad in ["0", "doc_x", ".doc_x"] {
        app.request("GET", &format!("{path}?cursor={bad}"))
            .bearer(&org.admin)
            .send()
            .assert_problem(400, "invalid_parameter");
    }
}
