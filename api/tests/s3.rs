//! The blob store on an S3-compatible server: a real `guichet serve --demo`
//! with `--blob-store s3://BUCKET/PREFIX` takes a document, serves it whole
//! and by `Range` with its SHA-256 as `ETag`, and answers 500 once the
//! stored object is changed behind its back (through the S3 API).
//!
//! Skipped unless `GUICHET_TEST_S3_ENDPOINT` names the server
//! (`http://127.0.0.1:PORT`; `.ci/run` starts a local moto server) and
//! `GUICHET_TEST_S3_BUCKET` an existing bucket. Credentials and region come
//! from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` when
//! set (a local store accepts any). On PostgreSQL when
//! `GUICHET_TEST_DATABASE_URL` names a server, else on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_guichet");
/// The variable naming the S3-compatible endpoint the test runs against.
const ENDPOINT_ENV: &str = "GUICHET_TEST_S3_ENDPOINT";
const BUCKET_ENV: &str = "GUICHET_TEST_S3_BUCKET";

const ADMIN: (&str, &str) = ("admin@fractio.guichet.localhost", "Admin-Fractio-2026!");
const SOPHIE: (&str, &str) = ("sophie.laurent@example.com", "Sophie-Demo-2026!");

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

struct S3 {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl S3 {
    fn from_env() -> Option<S3> {
        let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty())?;
        let bucket = std::env::var(BUCKET_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("{ENDPOINT_ENV} is set: {BUCKET_ENV} must name a bucket"));
        Some(S3 {
            endpoint,
            bucket,
            access_key: env_or("AWS_ACCESS_KEY_ID", "guichet-test"),
            secret_key: env_or("AWS_SECRET_ACCESS_KEY", "guichet-test-secret"),
            region: env_or("AWS_REGION", "us-east-1"),
        })
    }

    /// The bucket, straight through the S3 API (as an operator would).
    fn store(&self) -> impl ObjectStore {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_region(&self.region)
            .build()
            .unwrap()
    }
}

/// A throwaway PostgreSQL database when `GUICHET_TEST_DATABASE_URL` names
/// a server, dropped with the value.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var("GUICHET_TEST_DATABASE_URL").ok()?;
        if !admin_url.starts_with("postgres") {
            return None;
        }
        let prefix =
            std::env::var("GUICHET_TEST_DB_PREFIX").unwrap_or_else(|_| "guichet_t".to_owned());
        let name = format!(
            "{prefix}_s3_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        guichet_store::admin::create_database(&admin_url, &name).unwrap();
        let url = guichet_store::admin::with_database(&admin_url, &name).unwrap();
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = guichet_store::admin::drop_database(&self.admin_url, &self.name);
    }
}

/// `serve --demo` on the S3 store; the child and its base URL.
fn start(dir: &Path, s3: &S3, prefix: &str, database_url: &str) -> (Child, String) {
    let out = dir.join("serve.out");
    let err = dir.join("serve.err");
    let child = Command::new(BIN)
        .current_dir(dir)
        .env_remove("GUICHET_DATABASE_URL")
        .env_remove("GUICHET_DATA_DIR")
        .env_remove("GUICHET_JWT_SECRET")
        .env_remove("GUICHET_SECRET_KEY")
        .env_remove("GUICHET_ENV")
        .env_remove("GUICHET_LISTEN")
        .env_remove("GUICHET_BLOB_STORE")
        .env("GUICHET_LOG", "info")
        .env("GUICHET_LOG_FORMAT", "text")
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .env("AWS_REGION", &s3.region)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .args(["--database-url", database_url])
        .args(["--blob-store", &format!("s3://{}/{prefix}", s3.bucket)])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let banner = std::fs::read_to_string(&out).unwrap_or_default();
        if banner.contains("  the README walks through") {
            let address = banner
                .lines()
                .next()
                .and_then(|l| l.rsplit("http://").next())
                .unwrap()
                .trim()
                .to_owned();
            return (child, format!("http://{address}"));
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no banner (exited, or after 120 s): {banner}\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn body(res: &mut ureq::http::Response<ureq::Body>) -> Vec<u8> {
    res.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

fn header(res: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn sign_in(agent: &ureq::Agent, base: &str, path: &str, who: (&str, &str)) -> String {
    let mut res = agent
        .post(format!("{base}{path}"))
        .send_json(json!({"organization": "fractio", "email": who.0, "password": who.1}))
        .unwrap();
    let b = body(&mut res);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn documents_live_in_an_s3_bucket_and_are_checked_on_the_way_out() {
    let Some(s3) = S3::from_env() else {
        eprintln!("skipped: {ENDPOINT_ENV} names no S3-compatible server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pg = PgDatabase::create();
    let database_url = pg.as_ref().map_or_else(
        || format!("sqlite://{}", dir.path().join("guichet.db").display()),
        |pg| pg.url.clone(),
    );
    let prefix = format!(
        "guichet-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let (mut child, base) = start(dir.path(), &s3, &prefix, &database_url);
    let result = std::panic::catch_unwind(|| run(&s3, &prefix, &base, dir.path()));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if let Err(e) = result {
        eprintln!(
            "server log:\n{}",
            std::fs::read_to_string(dir.path().join("serve.err")).unwrap_or_default()
        );
        std::panic::resume_unwind(e);
    }
}

fn run(s3: &S3, prefix: &str, base: &str, dir: &Path) {
    let agent = agent();
    let admin = sign_in(&agent, base, "/v1/auth/staff/login", ADMIN);
    let customer = sign_in(&agent, base, "/v1/auth/login", SOPHIE);
    let mut me = agent
        .get(format!("{base}/v1/me"))
        .header("Authorization", &format!("Bearer {customer}"))
        .call()
        .unwrap();
    let me: Value = serde_json::from_slice(&body(&mut me)).unwrap();
    let customer_id = me["id"].as_str().unwrap().to_owned();

    // Larger than one 5 MiB part: the upload goes out as a multipart upload.
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut x: u32 = 0x1234_5678;
    while pdf.len() < 6 * 1024 * 1024 + 12_345 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pdf.extend_from_slice(&x.to_le_bytes());
    }
    pdf.extend_from_slice(b"\n%%EOF\n");
    let sha = hex::encode(Sha256::digest(&pdf));

    let mut res = agent
        .post(format!(
            "{base}/v1/admin/customers/{customer_id}/documents?title=Bilan"
        ))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "application/pdf")
        .send(&pdf[..])
        .unwrap();
    let b = body(&mut res);
    assert_eq!(res.status(), 201, "{}", String::from_utf8_lossy(&b));
    let doc: Value = serde_json::from_slice(&b).unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["sha256"], sha.as_str());
    assert_eq!(doc["size"], pdf.len());

    // The object is in the bucket, under the prefix, and nothing else of
    // this document is on the server's disk.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = s3.store();
    let keys: Vec<ObjectPath> = rt.block_on(async {
        store
            .list(Some(&ObjectPath::from(prefix)))
            .map(|m| m.unwrap())
            .filter(|m| std::future::ready(m.location.as_ref().ends_with(&id)))
            .map(|m| m.location)
            .collect()
            .await
    });
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored = rt.block_on(async { store.get(&keys[0]).await.unwrap().bytes().await.unwrap() });
    assert_eq!(&stored[..], &pdf[..]);
    assert!(
        !dir.join("guichet-data/blobs").exists() || {
            std::fs::read_dir(dir.join("guichet-data/blobs"))
                .unwrap()
                .next()
                .is_none()
        }
    );

    let url = format!("{base}/v1/me/documents/{id}/content");
    let auth = format!("Bearer {customer}");
    let mut whole = agent
        .get(&url)
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(header(&whole, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&whole, "content-type"), "application/pdf");
    assert_eq!(header(&whole, "content-length"), pdf.len().to_string());
    assert!(header(&whole, "content-disposition").starts_with("attachment"));
    assert_eq!(body(&mut whole), pdf);

    let mut part = agent
        .get(&url)
        .header("Authorization", &auth)
        .header("Range", "bytes=5242870-5242889")
        .call()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 5242870-5242889/{}", pdf.len())
    );
    assert_eq!(body(&mut part), &pdf[5_242_870..5_242_890]);

    let not_modified = agent
        .get(&url)
        .header("Authorization", &auth)
        .header("If-None-Match", &format!("\"{sha}\""))
        .call()
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    // Somebody changes the object in the bucket: the download is refused.
    let mut tampered = pdf.clone();
    tampered[100] ^= 1;
    rt.block_on(async {
        store.put(&keys[0], tampered.into()).await.unwrap();
    });
    for range in [None, Some("bytes=0-9")] {
        let mut req = agent.get(&url).header("Authorization", &auth);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let mut res = req.call().unwrap();
        let b = body(&mut res);
        assert_eq!(res.status(), 500, "{}", String::from_utf8_lossy(&b));
        let problem: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(problem["code"], "internal_error");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("serve.out")).unwrap_or_default();
        if log.contains("document bytes do not match their recorded SHA-256") && log.contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "the mismatch is not logged");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Withdrawn by staff: the customer no longer sees it.
    let res = agent
        .delete(format!("{base}/v1/admin/documents/{id}"))
        .header("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = agent
        .get(&url)
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(res.status(), 404);
}
