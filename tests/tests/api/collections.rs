//! SEPA collections: the day's pain.008 file, the bank's results, the list,
//! and the SEPA step of the debit run (pre-notification, presentation,
//! cover, expiry).
//!
//! Signed mandates are seeded through the store (creditor settings, an
//! account, a mandate and its signature), as an import would; everything
//! else goes over HTTP or through the job's entry point.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use guichet_domain::sepa::pain008::SequenceType;
use guichet_domain::{Clock, ids};
use guichet_jobs::sepa::{SepaReport, SepaRun};
use guichet_store::repo::accounts::{self, EntryKind};
use guichet_store::repo::collections::{self, Collection, CollectionStatus};
use guichet_store::schema::{accounts as accounts_table, mandate_signatures, mandates};
use guichet_store::{Backend, DatabaseUrl, PoolOptions, Store};
use guichet_tests::TestApp;
use guichet_tests::identity::Org;
use serde_json::{Value, json};

// ------------------------------------------------------------------ seeding

use guichet_tests::sepa::{self, CREDITOR_IBAN, DEBTOR_IBAN};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(9, 0, 0).unwrap())
}

/// The organization's creditor settings, with `days` of notice.
fn creditor(app: &TestApp, org_id: &str, days: i32) {
    sepa::creditor(app, org_id, "Régie Immobilière du Parc & Fils", days);
}

/// A customer of `org` (created over HTTP) with an account owing `balance`.
fn account(app: &TestApp, org: &Org, email: &str, balance: i64) -> (String, String) {
    let customer_id = app.customer(org, email, None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = ids::new_id("acc");
    let now = Utc::now().naive_utc();
    diesel::insert_into(accounts_table::table)
        .values((
            accounts_table::id.eq(&id),
            accounts_table::org_id.eq(&org.id),
            accounts_table::customer_id.eq(&customer_id),
            accounts_table::label.eq("Loyer"),
            accounts_table::reference.eq(ids::new_id("REF")),
            accounts_table::balance.eq(balance),
            accounts_table::currency.eq("EUR"),
            accounts_table::created_at.eq(now),
            accounts_table::updated_at.eq(now),
        ))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
    (customer_id, id)
}

/// A signed mandate on the account, signed at `signed_at`.
fn mandate(
    app: &TestApp,
    org_id: &str,
    customer_id: &str,
    account_id: &str,
    email: &str,
    recurrent: bool,
    signed_at: DateTime<Utc>,
) -> String {
    sepa::signed_mandate(
        app,
        &sepa::Mandate {
            org_id,
            customer_id,
            account_id,
            email,
            debtor_name: "Hélène Dupont-Œuvray",
            recurrent,
            spread_months: Some(3),
            signed_at,
        },
    )
}

struct Seeded {
    org: Org,
    account_id: String,
    mandate_id: String,
    email: String,
}

/// An organization with creditor settings (`days` of notice) and one
/// customer whose account owes `balance`, under a signed recurrent mandate.
fn seeded(app: &TestApp, slug: &str, days: i32, balance: i64) -> Seeded {
    let org = app.org(slug);
    creditor(app, &org.id, days);
    let email = format!("debtor@{slug}.example.com");
    let (customer_id, account_id) = account(app, &org, &email, balance);
    let mandate_id = mandate(
        app,
        &org.id,
        &customer_id,
        &account_id,
        &email,
        true,
        app.clock.now(),
    );
    Seeded {
        org,
        account_id,
        mandate_id,
        email,
    }
}

/// Stores a collection of the seeded mandate.
#[allow(clippy::too_many_arguments)]
fn collection(
    app: &TestApp,
    s: &Seeded,
    sequence: SequenceType,
    amount: i64,
    due: NaiveDate,
    status: CollectionStatus,
    prenotified: bool,
) -> Collection {
    let now = app.clock.now();
    let mut c = Collection::scheduled(
        &s.org.id,
        &s.mandate_id,
        &s.account_id,
        sequence,
        amount,
        due,
        prenotified.then_some(now),
        now,
    );
    c.status = status;
    if status != CollectionStatus::Scheduled {
        c.presented_at = Some(now);
    }
    collections::insert(&mut app.store.conn().unwrap(), &c).unwrap();
    c
}

fn stored(app: &TestApp, s: &Seeded, id: &str) -> Collection {
    collections::get(&mut app.store.conn().unwrap(), &s.org.id, id).unwrap()
}

fn balance(app: &TestApp, s: &Seeded) -> i64 {
    accounts::get(&mut app.store.conn().unwrap(), &s.org.id, &s.account_id)
        .unwrap()
        .balance
}

fn sepa_run(app: &TestApp, as_of: NaiveDate) -> SepaReport {
    SepaRun::new(app.store.clone(), Arc::new(app.clock.clone()))
        .run(as_of)
        .unwrap()
}

fn export(app: &TestApp, token: &str, query: &str) -> guichet_tests::Response {
    app.request("GET", &format!("/v1/admin/sepa/collections.xml{query}"))
        .bearer(token)
        .send()
}

// ------------------------------------------------------------------ XML checks

/// Every `<tag>...</tag>` text of `xml`, in order.
fn texts<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .map(|rest| rest.split(&close).next().unwrap())
        .collect()
}

fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .map(|rest| rest.split(&close).next().unwrap())
        .collect()
}

fn cents(text: &str) -> i64 {
    let (euros, cents) = text.split_once('.').unwrap();
    euros.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// The official pain.008.001.02 XSD (shipped with the `sepaxml` Python
/// package) and `xmllint`, when both are installed.
fn xsd_tools() -> Option<std::path::PathBuf> {
    std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sepaxml,os;print(os.path.dirname(sepaxml.__file__))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let xsd = std::path::Path::new(dir.trim()).join("schemas/pain.008.001.02.xsd");
    xsd.exists().then_some(xsd)
}

/// Validates `xml` against the official XSD; in CI (`CI=true`) the tools
/// must be there.
pub fn validate_pain008(xml: &[u8]) {
    let Some(xsd) = xsd_tools() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but xmllint or the sepaxml XSD is missing (.ci/run installs them)"
        );
        eprintln!("skipped: xmllint or the pain.008.001.02 XSD (pip install sepaxml) is missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pain008.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the file does not follow pain.008.001.02: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------------ export

#[test]
fn the_days_file_lists_its_collections_by_sequence_type_and_follows_the_schema() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-export", 14, 100_000);
    let day = date(2026, 12, 6);
    let first = collection(
        &app,
        &s,
        SequenceType::First,
        10_001,
        day,
        CollectionStatus::Scheduled,
        true,
    );
    let rcur_a = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        2_500,
        day,
        CollectionStatus::Presented,
        true,
    );
    let rcur_b = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        99,
        day,
        CollectionStatus::Scheduled,
        false,
    );
    let ooff = collection(
        &app,
        &s,
        SequenceType::OneOff,
        123_456,
        day,
        CollectionStatus::Scheduled,
        true,
    );
    // Left out: settled, cancelled, another day, another organization.
    for status in [
        CollectionStatus::Paid,
        CollectionStatus::Rejected,
        CollectionStatus::Cancelled,
    ] {
        collection(&app, &s, SequenceType::Recurrent, 7_777, day, status, true);
    }
    collection(
        &app,
        &s,
        SequenceType::Recurrent,
        5_555,
        date(2026, 12, 7),
        CollectionStatus::Scheduled,
        true,
    );
    let other = seeded(&app, "sepa-export-other", 14, 100_000);
    collection(
        &app,
        &other,
        SequenceType::First,
        4_444,
        day,
        CollectionStatus::Scheduled,
        true,
    );

    let res = export(&app, &s.org.admin, "?date=2026-12-06");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/xml"));
    let disposition = res.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let xml = res.text();
    validate_pain008(xml.as_bytes());

    let e2e: Vec<&str> = texts(&xml, "EndToEndId");
    assert_eq!(e2e.len(), 4, "{xml}");
    assert_eq!(
        e2e.iter().collect::<HashSet<_>>().len(),
        4,
        "unique end-to-end ids"
    );
    let expected: HashSet<&str> = [&first, &rcur_a, &rcur_b, &ooff]
        .iter()
        .map(|c| c.end_to_end_id.as_str())
        .collect();
    assert_eq!(e2e.into_iter().collect::<HashSet<_>>(), expected);
    assert!(expected.iter().all(|id| id.len() <= 35));

    // Group header: everything; one block per sequence type, in order.
    let header = blocks(&xml, "GrpHdr")[0];
    assert_eq!(texts(header, "NbOfTxs"), ["4"]);
    assert_eq!(
        cents(texts(header, "CtrlSum")[0]),
        10_001 + 2_500 + 99 + 123_456
    );
    let payments = blocks(&xml, "PmtInf");
    let summary: Vec<(String, String, i64, i64)> = payments
        .iter()
        .map(|p| {
            (
                texts(p, "SeqTp")[0].to_owned(),
                texts(p, "NbOfTxs")[0].to_owned(),
                cents(texts(p, "CtrlSum")[0]),
                p.matches("<DrctDbtTxInf>").count() as i64,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("FRST".to_owned(), "1".to_owned(), 10_001, 1),
            ("RCUR".to_owned(), "2".to_owned(), 2_599, 2),
            ("OOFF".to_owned(), "1".to_owned(), 123_456, 1),
        ]
    );
    for p in &payments {
        // Each block's control sum is the sum of its debits.
        let sum: i64 = p
            .split("<InstdAmt Ccy=\"EUR\">")
            .skip(1)
            .map(|rest| cents(rest.split("</InstdAmt>").next().unwrap()))
            .sum();
        assert_eq!(sum, cents(texts(p, "CtrlSum")[0]));
        assert_eq!(texts(p, "ReqdColltnDt"), ["2026-12-06"]);
        assert!(p.contains("FR72ZZZ123456"));
        assert!(p.contains(CREDITOR_IBAN) && p.contains(DEBTOR_IBAN));
    }
    // Mandate reference and date of signature from the signature.
    assert!(xml.contains("<MndtId>RUM-"), "{xml}");
    assert_eq!(texts(&xml, "DtOfSgntr")[0], "2026-11-22");
    // Names in the SEPA character set.
    assert!(xml.contains("Helene Dupont-OEuvray"), "{xml}");

    // An API key may fetch it too.
    let key = app
        .request("POST", "/v1/admin/api-keys")
        .bearer(&s.org.admin)
        .json(&json!({"name": "bank export"}))
        .send();
    assert_eq!(key.status, 201, "{}", key.text());
    let secret = key.json()["secret"].as_str().unwrap().to_owned();
    let res = export(&app, &secret, "?date=2026-12-06");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text().matches("<DrctDbtTxInf>").count(), 4);
}

#[test]
fn the_export_refuses_bad_dates_empty_days_a_missing_creditor_and_strangers() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-refusals", 14, 10_000);
    collection(
        &app,
        &s,
        SequenceType::First,
        10_000,
        date(2026, 12, 6),
        CollectionStatus::Scheduled,
        true,
    );
    for query in [
        "",
        "?date=",
        "?date=2026-13-01",
        "?date=06/12/2026",
        "?date=2026-12-06&x=1",
    ] {
        export(&app, &s.org.admin, query).assert_problem(400, "invalid_parameter");
    }
    export(&app, &s.org.admin, "?date=2026-12-07").assert_problem(404, "no_collections");
    // Without creditor settings.
    let bare = app.org("sepa-no-creditor");
    export(&app, &bare.admin, "?date=2026-12-06").assert_problem(409, "creditor_not_configured");
    // Another organization sees none of these collections.
    creditor(&app, &bare.id, 14);
    export(&app, &bare.admin, "?date=2026-12-06").assert_problem(404, "no_collections");
    // Authentication and role.
    app.get("/v1/admin/sepa/collections.xml?date=2026-12-06")
        .assert_problem(401, "unauthenticated");
    let (_, customer) = app.registered_customer(&s.org, "someone@sepa-refusals.example.com", None);
    export(&app, &customer.access, "?date=2026-12-06").assert_problem(403, "forbidden");
}

#[test]
fn two_thousand_collections_stream_in_one_valid_file() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-many", 14, 0);
    let day = date(2026, 12, 6);
    let now = app.clock.now();
    let mut conn = app.store.conn().unwrap();
    let mut total = 0;
    guichet_store::transaction(&mut conn, |conn| {
        for i in 0..2_000i64 {
            let sequence = match i % 3 {
                0 => SequenceType::First,
                1 => SequenceType::Recurrent,
                _ => SequenceType::OneOff,
            };
            let c = Collection::scheduled(
                &s.org.id,
                &s.mandate_id,
                &s.account_id,
                sequence,
                100 + i,
                day,
                Some(now),
                now,
            );
            total += c.amount;
            collections::insert(conn, &c)?;
        }
        Ok::<_, guichet_store::StoreError>(())
    })
    .unwrap();
    drop(conn);
    let started = Instant::now();
    let res = export(&app, &s.org.admin, "?date=2026-12-06");
    assert_eq!(res.status, 200, "{}", res.text());
    eprintln!("2000 debits exported in {:?}", started.elapsed());
    let xml = res.text();
    assert_eq!(xml.matches("<DrctDbtTxInf>").count(), 2_000);
    assert_eq!(
        texts(&xml, "EndToEndId")
            .into_iter()
            .collect::<HashSet<_>>()
            .len(),
        2_000
    );
    assert_eq!(cents(texts(blocks(&xml, "GrpHdr")[0], "CtrlSum")[0]), total);
    validate_pain008(xml.as_bytes());
}

/// Stores `count` one-off collections of the seeded mandate due on `day`.
fn many_collections(app: &TestApp, s: &Seeded, day: NaiveDate, count: i64) {
    let now = app.clock.now();
    let mut conn = app.store.conn().unwrap();
    guichet_store::transaction(&mut conn, |conn| {
        for i in 0..count {
            let c = Collection::scheduled(
                &s.org.id,
                &s.mandate_id,
                &s.account_id,
                SequenceType::OneOff,
                100 + i,
                day,
                Some(now),
                now,
            );
            collections::insert(conn, &c)?;
        }
        Ok::<_, guichet_store::StoreError>(())
    })
    .unwrap();
}

/// A connection whose receive buffer is small and fixed (no autotuning), so
/// that a client that stops reading soon stops the server's writes.
fn slow_reader(address: &str) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(32 * 1024).unwrap();
        let stream = socket.connect(address.parse().unwrap()).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

#[test]
fn a_client_that_downloads_slowly_holds_no_database_connection() {
    use std::io::{Read, Write};

    // One pooled connection: while the export held it, nothing else could
    // reach the database.
    let app = TestApp::spawn_with(guichet_tests::Options {
        args: vec!["--db-pool-size".into(), "1".into()],
        ..Default::default()
    });
    let s = seeded(&app, "sepa-slow", 14, 0);
    // Some 15 MB, far more than the socket buffers hold.
    many_collections(&app, &s, date(2026, 12, 6), 20_000);

    let address = app.base.trim_start_matches("http://");
    let mut stream = slow_reader(address);
    write!(
        stream,
        "GET /v1/admin/sepa/collections.xml?date=2026-12-06 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        s.org.admin
    )
    .unwrap();
    // Read the head and a first piece of the body, then stop reading.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("the file's length is announced")
        .trim()
        .parse()
        .unwrap();
    assert!(
        length > 10_000_000,
        "{length} bytes: too small to fill the buffers"
    );

    // The client is not reading; the database is still there for others.
    let started = Instant::now();
    assert_eq!(app.get("/readyz").status, 200);
    let listed = app
        .request("GET", "/v1/admin/sepa/collections?date=2026-12-06&limit=1")
        .bearer(&s.org.admin)
        .send();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());

    // The file then arrives whole.
    let mut body = Vec::new();
    stream.read_to_end(&mut body).unwrap();
    assert_eq!(body.len(), length);
    let xml = String::from_utf8(body).unwrap();
    assert_eq!(xml.matches("<DrctDbtTxInf>").count(), 20_000);
    assert!(xml.trim_end().ends_with("</Document>"));
}

// ------------------------------------------------------------------ results

fn post_result(app: &TestApp, token: &str, id: &str, body: &Value) -> guichet_tests::Response {
    app.request("POST", &format!("/v1/admin/sepa/collections/{id}/result"))
        .bearer(token)
        .json(body)
        .send()
}

#[test]
fn a_rejected_collection_is_due_again_and_the_customer_is_told() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-reject", 14, 10_000);
    let c = collection(
        &app,
        &s,
        SequenceType::First,
        4_000,
        date(2026, 12, 6),
        CollectionStatus::Presented,
        true,
    );
    let before = balance(&app, &s);

    let res = post_result(
        &app,
        &s.org.admin,
        &c.id,
        &json!({"outcome": "rejected", "reason": "AM04"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reject_reason"], "AM04");
    assert_eq!(body["id"], c.id.as_str());
    assert!(body["settled_at"].is_string());
    assert_eq!(balance(&app, &s), before + 4_000);
    let entries =
        accounts::entries(&mut app.store.conn().unwrap(), &s.org.id, &s.account_id, 10).unwrap();
    assert_eq!(entries[0].kind, EntryKind::CollectionRejected);
    assert_eq!(entries[0].amount, 4_000);
    assert_eq!(entries[0].collection_id.as_deref(), Some(c.id.as_str()));
    let mail = app.nth_message(&s.email, 1);
    assert!(mail.subject.contains("SEPA"), "{}", mail.subject);
    assert!(
        mail.body.contains("AM04") && mail.body.contains("40.00"),
        "{}",
        mail.body
    );

    // The same result again: the same answer, nothing more.
    let again = post_result(
        &app,
        &s.org.admin,
        &c.id,
        &json!({"outcome": "rejected", "reason": "AM04"}),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["settled_at"], body["settled_at"]);
    assert_eq!(balance(&app, &s), before + 4_000);
    // Another result: refused.
    post_result(&app, &s.org.admin, &c.id, &json!({"outcome": "paid"}))
        .assert_problem(409, "collection_not_presented");
    post_result(
        &app,
        &s.org.admin,
        &c.id,
        &json!({"outcome": "rejected", "reason": "MD01"}),
    )
    .assert_problem(409, "collection_not_presented");
    assert_eq!(app.messages_now(&s.email).len(), 1);
}

#[test]
fn a_paid_collection_is_settled_and_only_presented_ones_take_a_result() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-paid", 14, 10_000);
    let presented = collection(
        &app,
        &s,
        SequenceType::First,
        4_000,
        date(2026, 12, 6),
        CollectionStatus::Presented,
        true,
    );
    let scheduled = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        4_000,
        date(2027, 1, 6),
        CollectionStatus::Scheduled,
        true,
    );
    let res = post_result(
        &app,
        &s.org.admin,
        &presented.id,
        &json!({"outcome": "paid"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "paid");
    assert_eq!(balance(&app, &s), 10_000);
    let again = post_result(
        &app,
        &s.org.admin,
        &presented.id,
        &json!({"outcome": "paid"}),
    );
    assert_eq!(again.status, 200);
    post_result(
        &app,
        &s.org.admin,
        &scheduled.id,
        &json!({"outcome": "paid"}),
    )
    .assert_problem(409, "collection_not_presented");
    assert_eq!(
        stored(&app, &s, &scheduled.id).status,
        CollectionStatus::Scheduled
    );
}

#[test]
fn results_refuse_bad_bodies_and_other_organizations() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-result-bad", 14, 10_000);
    let c = collection(
        &app,
        &s,
        SequenceType::First,
        4_000,
        date(2026, 12, 6),
        CollectionStatus::Presented,
        true,
    );
    let path = format!("/v1/admin/sepa/collections/{}/result", c.id);
    let raw = |body: &str| {
        app.request("POST", &path)
            .bearer(&s.org.admin)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .send()
    };
    raw("{\"outcome\": ").assert_problem(400, "malformed_json");
    raw("{\"outcome\": \"paid\", \"extra\": 1}").assert_problem(400, "unknown_field");
    for body in [
        json!({}),
        json!({"outcome": "lost"}),
        json!({"outcome": 1}),
        json!({"outcome": "rejected"}),
        json!({"outcome": "rejected", "reason": ""}),
        json!({"outcome": "rejected", "reason": "   "}),
        json!({"outcome": "rejected", "reason": "x".repeat(141)}),
        json!({"outcome": "rejected", "reason": 4}),
        json!({"outcome": "paid", "reason": "AM04"}),
    ] {
        post_result(&app, &s.org.admin, &c.id, &body).assert_problem(400, "invalid_field");
    }
    let stored_now = stored(&app, &s, &c.id);
    assert_eq!(stored_now.status, CollectionStatus::Presented);
    assert_eq!(balance(&app, &s), 10_000);
    // Unknown id, another organization's id, no token, a customer token.
    post_result(
        &app,
        &s.org.admin,
        "col_00000000000000000000",
        &json!({"outcome": "paid"}),
    )
    .assert_problem(404, "not_found");
    let other = app.org("sepa-result-other");
    post_result(&app, &other.admin, &c.id, &json!({"outcome": "paid"}))
        .assert_problem(404, "not_found");
    app.request("POST", &path)
        .json(&json!({"outcome": "paid"}))
        .send()
        .assert_problem(401, "unauthenticated");
    let (_, customer) =
        app.registered_customer(&s.org, "someone@sepa-result-bad.example.com", None);
    post_result(&app, &customer.access, &c.id, &json!({"outcome": "paid"}))
        .assert_problem(403, "forbidden");
    assert_eq!(stored(&app, &s, &c.id).status, CollectionStatus::Presented);
}

// ------------------------------------------------------------------ list

#[test]
fn the_list_filters_by_day_and_status_and_pages() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-list", 14, 10_000);
    let day = date(2026, 12, 6);
    let mut ids: Vec<String> = (0..5)
        .map(|_| {
            collection(
                &app,
                &s,
                SequenceType::Recurrent,
                100,
                day,
                CollectionStatus::Scheduled,
                true,
            )
            .id
        })
        .collect();
    collection(
        &app,
        &s,
        SequenceType::Recurrent,
        100,
        day,
        CollectionStatus::Paid,
        true,
    );
    collection(
        &app,
        &s,
        SequenceType::Recurrent,
        100,
        date(2026, 12, 7),
        CollectionStatus::Scheduled,
        true,
    );
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path =
            "/v1/admin/sepa/collections?date=2026-12-06&status=scheduled&limit=2".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let res = app.request("GET", &path).bearer(&s.org.admin).send();
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.json();
        for item in body["data"].as_array().unwrap() {
            assert_eq!(item["status"], "scheduled");
            assert_eq!(item["due_date"], "2026-12-06");
            assert_eq!(item["currency"], "EUR");
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let all = app
        .request("GET", "/v1/admin/sepa/collections?limit=100")
        .bearer(&s.org.admin)
        .send();
    assert_eq!(all.json()["data"].as_array().unwrap().len(), 7);
    for query in [
        "?status=lost",
        "?date=tomorrow",
        "?limit=0",
        "?limit=101",
        "?cursor=***",
        "?x=1",
    ] {
        app.request("GET", &format!("/v1/admin/sepa/collections{query}"))
            .bearer(&s.org.admin)
            .send()
            .assert_problem(400, "invalid_parameter");
    }
    let other = app.org("sepa-list-other");
    let res = app
        .request("GET", "/v1/admin/sepa/collections")
        .bearer(&other.admin)
        .send();
    assert_eq!(res.json()["data"].as_array().unwrap().len(), 0);
    app.get("/v1/admin/sepa/collections")
        .assert_problem(401, "unauthenticated");
}

// ------------------------------------------------------------------ debit run

#[test]
fn the_debit_run_prenotifies_presents_and_covers_new_charges() {
    let app = TestApp::spawn();
    // Signed on 2026-11-22 for 300.00 over three months, 5 days of notice.
    let s = seeded(&app, "sepa-run", 5, 30_000);
    let signed = app.clock.now();
    let c1 = collection(
        &app,
        &s,
        SequenceType::First,
        10_000,
        date(2026, 11, 27),
        CollectionStatus::Scheduled,
        true,
    );
    let c2 = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        10_000,
        date(2026, 12, 27),
        CollectionStatus::Scheduled,
        false,
    );
    let c3 = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        10_000,
        date(2027, 1, 27),
        CollectionStatus::Scheduled,
        false,
    );

    // Nothing due, nothing to announce, everything covered.
    assert_eq!(sepa_run(&app, date(2026, 11, 22)), SepaReport::default());

    // A charge added later is covered by a new RCUR collection, announced now.
    accounts::add_entry(
        &mut app.store.conn().unwrap(),
        &s.account_id,
        &s.org.id,
        EntryKind::Charge,
        5_000,
        "Charges",
        None,
        signed,
    )
    .unwrap();
    assert_eq!(
        sepa_run(&app, date(2026, 11, 23)),
        SepaReport {
            covered: 1,
            prenotified: 1,
            ..SepaReport::default()
        }
    );
    let list =
        collections::list_for_mandate(&mut app.store.conn().unwrap(), &s.mandate_id).unwrap();
    let cover = list.iter().find(|c| c.amount == 5_000).unwrap().clone();
    assert_eq!(cover.sequence_type, SequenceType::Recurrent);
    assert_eq!(cover.due_date, date(2026, 11, 28));
    assert!(cover.prenotified_at.is_some());
    let mail = app.nth_message(&s.email, 1);
    assert!(mail.subject.contains("2026-11-28"), "{}", mail.subject);
    assert!(
        mail.body.contains("50.00") && mail.body.contains("FR14"),
        "{}",
        mail.body
    );
    assert!(
        !mail.body.contains(DEBTOR_IBAN),
        "the IBAN is masked: {}",
        mail.body
    );

    // Due on the 27th: c1 is presented, exactly once.
    assert_eq!(
        sepa_run(&app, date(2026, 11, 27)),
        SepaReport {
            presented: 1,
            ..SepaReport::default()
        }
    );
    assert_eq!(sepa_run(&app, date(2026, 11, 27)), SepaReport::default());
    let presented = stored(&app, &s, &c1.id);
    assert_eq!(presented.status, CollectionStatus::Presented);
    assert!(presented.presented_at.is_some());
    assert_eq!(balance(&app, &s), 35_000 - 10_000);
    let entries =
        accounts::entries(&mut app.store.conn().unwrap(), &s.org.id, &s.account_id, 10).unwrap();
    let taken: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Collection)
        .collect();
    assert_eq!(taken.len(), 1, "{entries:?}");
    assert_eq!(taken[0].amount, -10_000);
    assert_eq!(taken[0].collection_id.as_deref(), Some(c1.id.as_str()));
    let last: Option<chrono::NaiveDateTime> = mandate_signatures::table
        .find(&s.mandate_id)
        .select(mandate_signatures::last_collected_at)
        .first(&mut app.store.conn().unwrap())
        .unwrap();
    assert!(last.is_some());

    // c2's notice is due on 12-22; sent on 12-25 it is late: c2 moves to
    // 12-30 instead of being presented on the 27th without it.
    assert_eq!(sepa_run(&app, date(2026, 11, 28)).presented, 1);
    let late = sepa_run(&app, date(2026, 12, 25));
    assert_eq!(
        late,
        SepaReport {
            prenotified: 1,
            postponed: 1,
            ..SepaReport::default()
        }
    );
    let moved = stored(&app, &s, &c2.id);
    assert_eq!(moved.due_date, date(2026, 12, 30));
    assert!(moved.prenotified_at.is_some());
    assert_eq!(sepa_run(&app, date(2026, 12, 27)), SepaReport::default());
    assert_eq!(stored(&app, &s, &c2.id).status, CollectionStatus::Scheduled);
    assert_eq!(sepa_run(&app, date(2026, 12, 30)).presented, 1);
    // c3's notice goes on time (01-22), due date unchanged.
    assert_eq!(
        sepa_run(&app, date(2027, 1, 22)),
        SepaReport {
            prenotified: 1,
            ..SepaReport::default()
        }
    );
    assert_eq!(stored(&app, &s, &c3.id).due_date, date(2027, 1, 27));
    assert_eq!(sepa_run(&app, date(2027, 1, 27)).presented, 1);
    assert_eq!(balance(&app, &s), 0);
    assert_eq!(app.wait_for_messages(&s.email, 3).len(), 3);
}

#[test]
fn a_collection_due_without_notice_is_postponed_not_presented() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-no-notice", 14, 10_000);
    let c = collection(
        &app,
        &s,
        SequenceType::First,
        10_000,
        date(2026, 11, 22),
        CollectionStatus::Scheduled,
        false,
    );
    let report = sepa_run(&app, date(2026, 11, 22));
    assert_eq!(
        report,
        SepaReport {
            prenotified: 1,
            postponed: 1,
            ..SepaReport::default()
        }
    );
    let after = stored(&app, &s, &c.id);
    assert_eq!(after.status, CollectionStatus::Scheduled);
    assert_eq!(after.due_date, date(2026, 12, 6));
    assert_eq!(balance(&app, &s), 10_000);
    // The customer is told of the new date.
    let mail = app.nth_message(&s.email, 1);
    assert!(mail.subject.contains("2026-12-06"), "{}", mail.subject);
}

#[test]
fn recurrent_mandates_unused_for_36_months_expire() {
    let app = TestApp::spawn();
    let org = app.org("sepa-expiry");
    creditor(&app, &org.id, 14);
    let (old_customer, old_account) = account(&app, &org, "old@sepa-expiry.example.com", 0);
    let old = mandate(
        &app,
        &org.id,
        &old_customer,
        &old_account,
        "old@sepa-expiry.example.com",
        true,
        at(date(2023, 11, 21)),
    );
    let (used_customer, used_account) = account(&app, &org, "used@sepa-expiry.example.com", 0);
    let used = mandate(
        &app,
        &org.id,
        &used_customer,
        &used_account,
        "used@sepa-expiry.example.com",
        true,
        at(date(2022, 1, 1)),
    );
    diesel::update(mandate_signatures::table.find(&used))
        .set(mandate_signatures::last_collected_at.eq(Some(at(date(2024, 1, 1)).naive_utc())))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
    let (young_customer, young_account) = account(&app, &org, "young@sepa-expiry.example.com", 0);
    let young = mandate(
        &app,
        &org.id,
        &young_customer,
        &young_account,
        "young@sepa-expiry.example.com",
        true,
        at(date(2023, 11, 23)),
    );
    let s = Seeded {
        org: org.clone(),
        account_id: old_account,
        mandate_id: old.clone(),
        email: String::new(),
    };
    let pending = collection(
        &app,
        &s,
        SequenceType::First,
        1_000,
        date(2026, 12, 20),
        CollectionStatus::Scheduled,
        true,
    );

    let report = sepa_run(&app, date(2026, 11, 22));
    assert_eq!(
        report,
        SepaReport {
            expired_mandates: 1,
            cancelled: 1,
            ..SepaReport::default()
        }
    );
    let status = |id: &str| -> (String, Option<chrono::NaiveDateTime>) {
        let mut conn = app.store.conn().unwrap();
        let status = mandates::table
            .find(id)
            .select(mandates::status)
            .first(&mut conn)
            .unwrap();
        let expired = mandate_signatures::table
            .find(id)
            .select(mandate_signatures::expired_at)
            .first(&mut conn)
            .unwrap();
        (status, expired)
    };
    let (st, expired_at) = status(&old);
    assert_eq!(st, "expired");
    assert!(expired_at.is_some());
    assert_eq!(status(&used).0, "signed");
    assert_eq!(status(&young).0, "signed");
    assert_eq!(
        stored(&app, &s, &pending.id).status,
        CollectionStatus::Cancelled
    );
    assert_eq!(sepa_run(&app, date(2026, 11, 22)), SepaReport::default());
}

#[test]
fn concurrent_runs_present_each_of_2000_collections_exactly_once() {
    let app = TestApp::spawn();
    if app.backend != Backend::Postgres {
        eprintln!("skipped: concurrent SEPA runs are tested on PostgreSQL only");
        return;
    }
    let org = app.org("sepa-many-runs");
    creditor(&app, &org.id, 14);
    let now = app.clock.now();
    let mut seeded_accounts = Vec::new();
    for a in 0..40 {
        let email = format!("debtor{a}@sepa-many-runs.example.com");
        let (customer_id, account_id) = account(&app, &org, &email, 0);
        let mandate_id = mandate(&app, &org.id, &customer_id, &account_id, &email, true, now);
        seeded_accounts.push((account_id, mandate_id));
    }
    let mut conn = app.store.conn().unwrap();
    let mut expected = std::collections::HashMap::new();
    guichet_store::transaction(&mut conn, |conn| {
        for i in 0..2_000i64 {
            let (account_id, mandate_id) = &seeded_accounts[(i % 40) as usize];
            let c = Collection::scheduled(
                &org.id,
                mandate_id,
                account_id,
                SequenceType::Recurrent,
                100 + i,
                date(2026, 11, 20),
                Some(now),
                now,
            );
            *expected.entry(account_id.clone()).or_insert(0i64) += c.amount;
            accounts::add_entry(
                conn,
                account_id,
                &org.id,
                EntryKind::Charge,
                c.amount,
                "Charge",
                None,
                now,
            )?;
            collections::insert(conn, &c)?;
        }
        Ok::<_, guichet_store::StoreError>(())
    })
    .unwrap();
    drop(conn);
    let url = DatabaseUrl::parse(&app.store.redacted_url()).unwrap();
    let started = Instant::now();
    let reports: Vec<SepaReport> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let store = Store::connect(
                    &url,
                    &PoolOptions {
                        max_size: 2,
                        ..PoolOptions::default()
                    },
                )
                .unwrap();
                let run = SepaRun::new(store, Arc::new(app.clock.clone()));
                scope.spawn(move || run.run(date(2026, 11, 22)).unwrap())
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    eprintln!(
        "4 runs over 2000 collections in {:?}: {reports:?}",
        started.elapsed()
    );
    assert_eq!(reports.iter().map(|r| r.presented).sum::<u64>(), 2_000);
    assert_eq!(reports.iter().map(|r| r.errors).sum::<u64>(), 0);
    assert_eq!(reports.iter().map(|r| r.covered).sum::<u64>(), 0);
    let mut conn = app.store.conn().unwrap();
    for (account_id, _) in &seeded_accounts {
        let account = accounts::get(&mut conn, &org.id, account_id).unwrap();
        assert_eq!(
            account.balance, 0,
            "each collection lowered the balance once"
        );
        let entries = accounts::entries(&mut conn, &org.id, account_id, 1_000).unwrap();
        let collected: i64 = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Collection)
            .map(|e| -e.amount)
            .sum();
        assert_eq!(collected, expected[account_id]);
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::Collection)
                .count(),
            50
        );
    }
    let presented = collections::list(
        &mut conn,
        &org.id,
        &collections::Filter {
            status: Some(CollectionStatus::Presented),
            ..Default::default()
        },
        None,
        10_000,
    )
    .unwrap();
    assert_eq!(presented.len(), 2_000);
}

#[test]
fn customers_are_written_to_in_their_language() {
    let app = TestApp::spawn();
    let s = seeded(&app, "sepa-english", 5, 6_000);
    let customer_id: String = mandates::table
        .find(&s.mandate_id)
        .select(mandates::customer_id)
        .first(&mut app.store.conn().unwrap())
        .unwrap();
    diesel::update(guichet_store::schema::customers::table.find(&customer_id))
        .set(guichet_store::schema::customers::locale.eq("en"))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
    let later = collection(
        &app,
        &s,
        SequenceType::First,
        6_000,
        date(2026, 12, 20),
        CollectionStatus::Scheduled,
        false,
    );
    let presented = collection(
        &app,
        &s,
        SequenceType::Recurrent,
        4_000,
        date(2026, 11, 20),
        CollectionStatus::Presented,
        true,
    );
    assert_eq!(
        sepa_run(&app, date(2026, 12, 15)),
        SepaReport {
            prenotified: 1,
            ..SepaReport::default()
        }
    );
    let notice = app.nth_message(&s.email, 1);
    assert!(
        notice
            .subject
            .contains("next SEPA direct debit on 2026-12-20"),
        "{}",
        notice.subject
    );
    assert!(
        notice.body.contains("60.00 EUR") && notice.body.contains("Pre-notification"),
        "{}",
        notice.body
    );
    assert_eq!(stored(&app, &s, &later.id).due_date, date(2026, 12, 20));
    let res = post_result(
        &app,
        &s.org.admin,
        &presented.id,
        &json!({"outcome": "rejected", "reason": "MD01"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let rejected = app.nth_message(&s.email, 2);
    assert!(
        rejected.subject.contains("SEPA direct debit rejected"),
        "{}",
        rejected.subject
    );
    assert!(
        rejected.body.contains("MD01") && rejected.body.contains("40.00 EUR"),
        "{}",
        rejected.body
    );
}

#[test]
fn a_mandate_signed_over_http_is_presented_exported_rejected_and_covered_again() {
    let app = TestApp::spawn();
    let org = app.org("sepa-e2e");
    creditor(&app, &org.id, 14);
    let email = "claire@sepa-e2e.example.com";
    let (customer_id, tokens) = app.registered_customer(&org, email, None);
    let account_id = ids::new_id("acc");
    let now = Utc::now().naive_utc();
    diesel::insert_into(accounts_table::table)
        .values((
            accounts_table::id.eq(&account_id),
            accounts_table::org_id.eq(&org.id),
            accounts_table::customer_id.eq(&customer_id),
            accounts_table::label.eq("Loyer"),
            accounts_table::reference.eq("REF-E2E"),
            accounts_table::balance.eq(10_000i64),
            accounts_table::currency.eq("EUR"),
            accounts_table::created_at.eq(now),
            accounts_table::updated_at.eq(now),
        ))
        .execute(&mut app.store.conn().unwrap())
        .unwrap();
    let res = app
        .request("POST", &format!("/v1/me/accounts/{account_id}/mandates"))
        .bearer(&tokens.access)
        .json(&json!({"iban": DEBTOR_IBAN, "mode": "recurring", "spread_months": 3}))
        .send();
    assert_eq!(res.status, 201, "{}", res.text());
    let mandate_id = res.json()["id"].as_str().unwrap().to_owned();
    let before = app.wait_for_messages(email, 0).len();
    let res = app
        .request("POST", &format!("/v1/me/mandates/{mandate_id}/otp"))
        .bearer(&tokens.access)
        .json(&json!({"channel": "email"}))
        .send();
    assert_eq!(res.status, 202, "{}", res.text());
    let code = app.nth_message(email, before + 1).code(6).unwrap();
    let res = app
        .request("POST", &format!("/v1/me/mandates/{mandate_id}/signature"))
        .bearer(&tokens.access)
        .json(&json!({"code": code}))
        .send();
    assert_eq!(res.status, 200, "{}", res.text());
    let due: Vec<String> = res.json()["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["due_date"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(due[0], "2026-12-06");

    // Announced at signature: the run neither re-announces nor covers.
    assert_eq!(sepa_run(&app, date(2026, 11, 22)), SepaReport::default());
    // The day's file lists the FRST debit before and after presentation.
    let res = export(&app, &org.admin, "?date=2026-12-06");
    assert_eq!(res.status, 200, "{}", res.text());
    validate_pain008(&res.body);
    assert_eq!(texts(&res.text(), "SeqTp"), ["FRST"]);
    assert_eq!(
        sepa_run(&app, date(2026, 12, 6)),
        SepaReport {
            presented: 1,
            ..SepaReport::default()
        }
    );
    let res = export(&app, &org.admin, "?date=2026-12-06");
    assert_eq!(res.status, 200, "{}", res.text());
    let xml = res.text();
    assert_eq!(cents(texts(&xml, "CtrlSum")[0]), 3_334);
    let e2e = texts(&xml, "EndToEndId")[0].to_owned();

    // The bank rejects it: due again, and the next run covers it anew.
    let list = app
        .request("GET", "/v1/admin/sepa/collections?status=presented")
        .bearer(&org.admin)
        .send()
        .json();
    let presented = &list["data"][0];
    assert_eq!(presented["end_to_end_id"], e2e.as_str());
    let id = presented["id"].as_str().unwrap();
    let res = post_result(
        &app,
        &org.admin,
        id,
        &json!({"outcome": "rejected", "reason": "AM04"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let balance = accounts::get(&mut app.store.conn().unwrap(), &org.id, &account_id)
        .unwrap()
        .balance;
    assert_eq!(balance, 10_000);
    assert_eq!(
        sepa_run(&app, date(2026, 12, 7)),
        SepaReport {
            covered: 1,
            prenotified: 1,
            ..SepaReport::default()
        }
    );
    let again = collections::list(
        &mut app.store.conn().unwrap(),
        &org.id,
        &collections::Filter {
            due_date: Some(date(2026, 12, 21)),
            ..Default::default()
        },
        None,
        10,
    )
    .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].amount, 3_334);
    assert_eq!(again[0].sequence_type, SequenceType::Recurrent);
}
