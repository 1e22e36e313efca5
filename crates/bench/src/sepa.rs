//! `guichet-bench sepa`: the targets of issue #5.
//!
//! 1. Signed mandate PDF: `render_mandate` of a signed mandate, `--renders`
//!    times in this process; p50/p99/max (target p99 ≤ 20 ms).
//! 2. pain.008 export: a fresh database is migrated and seeded in SQL with
//!    `--collections` collections due on one day (FRST/RCUR/OOFF, one signed
//!    mandate each), the release server is started, and
//!    `GET /v1/admin/sepa/collections.xml` is timed from request to last
//!    byte, with the server's peak RSS (`VmHWM`) after it (targets ≤ 2 s,
//!    ≤ 100 MiB). The file is checked (debit count, unique end-to-end ids)
//!    and validated with `xmllint --schema` when xmllint and the sepaxml
//!    XSD are installed.
//!
//! Prints one JSON object.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, TimeZone, Utc};
use clap::Parser;
use diesel::prelude::*;
use guichet_domain::sepa::mandate_pdf::{
    MandateDocument, SignatureChannel, SignatureEvidence, render_mandate,
};
use guichet_domain::sepa::{Bic, CreditorId, Iban, PaymentType};
use guichet_domain::{Locale, ids};
use guichet_store::schema::{
    accounts, creditor_settings, customers, mandate_signatures, mandates, sepa_collections,
};
use guichet_store::{DatabaseUrl, PoolOptions, Store};
use serde_json::json;

use crate::procfs;
use crate::server::{self, Database, DatabaseArgs};

const SECRET_KEY: &str = "guichet-bench-sepa-throwaway-secret-key-0123456789";
const JWT_SECRET: &str = "guichet-bench-sepa-throwaway-jwt-secret-0123456789";
const PASSWORD: &str = "Correct-Horse-42!";
const DAY: &str = "2026-12-07";

#[derive(Debug, Parser)]
#[command(
    name = "guichet-bench sepa",
    about = "Times signed-mandate PDF rendering and the streamed pain.008 export against a \
             release server; prints JSON."
)]
pub struct SepaArgs {
    #[command(flatten)]
    db: DatabaseArgs,

    /// Collections in the exported file.
    #[arg(long, default_value_t = 10_000)]
    collections: u32,

    /// Mandate PDFs rendered for the latency figures.
    #[arg(long, default_value_t = 2_000)]
    renders: u32,

    /// The `guichet` binary [default: target/release/guichet].
    #[arg(long)]
    binary: Option<PathBuf>,
}

pub fn main(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = SepaArgs::parse_from(args);
    match run(&args) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guichet-bench sepa: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &SepaArgs) -> Result<serde_json::Value, String> {
    let pdf = pdf_latency(args.renders)?;
    let export = export(args)?;
    Ok(json!({"mandate_pdf": pdf, "pain008_export": export}))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn pdf_latency(renders: u32) -> Result<serde_json::Value, String> {
    let tz = FixedOffset::east_opt(3600).ok_or("offset")?;
    let document = MandateDocument {
        locale: Locale::Fr,
        creditor_name: "Régie Immobilière du Parc".into(),
        creditor_address: vec!["12 rue des Lilas".into(), "75011 Paris".into()],
        creditor_id: CreditorId::parse("FR72ZZZ123456").map_err(|e| e.to_string())?,
        reference: Some("RUM-BENCH-000001".into()),
        debtor_name: "Hélène Dupont-Œuvray".into(),
        debtor_address: vec!["3 place de la Mairie".into(), "69001 Lyon".into()],
        iban: Iban::parse("FR1420041010050500013M02606").map_err(|e| e.to_string())?,
        bic: Some(Bic::parse("PSSTFRPPPAR").map_err(|e| e.to_string())?),
        payment_type: PaymentType::Recurrent,
        signature: Some(SignatureEvidence {
            place: "Lyon".into(),
            signed_at: tz
                .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
                .single()
                .ok_or("date")?,
            channel: SignatureChannel::Sms,
            masked_destination: "+33 6** ** ** 78".into(),
            ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 (bench)".into(),
            document_hash: "0".repeat(64),
        }),
        logo: None,
    };
    // Warm-up (fonts, allocations).
    for _ in 0..20 {
        std::hint::black_box(render_mandate(&document));
    }
    let mut times = Vec::with_capacity(renders as usize);
    let mut bytes = 0;
    for _ in 0..renders.max(1) {
        let started = Instant::now();
        let pdf = render_mandate(std::hint::black_box(&document));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = pdf.len();
    }
    times.sort_by(f64::total_cmp);
    let p99 = percentile(&times, 99.0);
    Ok(json!({
        "renders": times.len(),
        "pdf_bytes": bytes,
        "p50_ms": percentile(&times, 50.0),
        "p99_ms": p99,
        "max_ms": times.last().copied().unwrap_or_default(),
        "target_p99_ms": 20.0,
        "meets_target": p99 <= 20.0,
    }))
}

/// Seeds the organization, its creditor settings and `n` collections due on
/// [`DAY`]; returns the admin's setup token.
fn seed(url: &str, n: u32) -> Result<String, String> {
    let url = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    let store = Store::connect(&url, &PoolOptions::default()).map_err(|e| e.to_string())?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    guichet_store::migrations::run_pending(&mut conn).map_err(|e| e.to_string())?;
    let now = Utc::now();
    let org = guichet_api::provision::create_organization(
        &mut conn,
        SECRET_KEY.as_bytes(),
        "bench-sepa",
        "Régie du Parc",
        "admin@bench-sepa.example.com",
        now,
    )
    .map_err(|e| e.to_string())?;
    let org_id = org.organization.id.clone();
    let at = now.naive_utc();
    let day = chrono::NaiveDate::parse_from_str(DAY, "%Y-%m-%d").map_err(|e| e.to_string())?;
    guichet_store::transaction(&mut conn, |conn| {
        diesel::insert_into(creditor_settings::table)
            .values((
                creditor_settings::org_id.eq(&org_id),
                creditor_settings::name.eq("Régie du Parc"),
                creditor_settings::address.eq("12 rue des Lilas\n75011 Paris"),
                creditor_settings::creditor_id.eq("FR72ZZZ123456"),
                creditor_settings::iban.eq("FR7630006000011234567890189"),
                creditor_settings::bic.eq("AGRIFRPP"),
                creditor_settings::prenotification_days.eq(14),
                creditor_settings::updated_at.eq(at),
            ))
            .execute(conn)?;
        // One customer and account per 10 collections, one mandate each.
        for i in 0..n {
            if i % 10 == 0 {
                let k = i / 10;
                let customer = format!("cus_bench{k:015}");
                let account = format!("acc_bench{k:015}");
                diesel::insert_into(customers::table)
                    .values((
                        customers::id.eq(&customer),
                        customers::org_id.eq(&org_id),
                        customers::email.eq(format!("debtor{k}@bench-sepa.example.com")),
                        customers::name.eq(format!("Débiteur {k}")),
                        customers::locale.eq("fr"),
                        customers::created_at.eq(at),
                        customers::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                diesel::insert_into(accounts::table)
                    .values((
                        accounts::id.eq(&account),
                        accounts::org_id.eq(&org_id),
                        accounts::customer_id.eq(&customer),
                        accounts::label.eq("Loyer"),
                        accounts::reference.eq(format!("REF-{k}")),
                        accounts::balance.eq(0),
                        accounts::currency.eq("EUR"),
                        accounts::created_at.eq(at),
                        accounts::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            let k = i / 10;
            let mandate = format!("mdt_bench{i:015}");
            let (payment_type, sequence) = match i % 3 {
                0 => ("recurrent", "FRST"),
                1 => ("recurrent", "RCUR"),
                _ => ("one_off", "OOFF"),
            };
            diesel::insert_into(mandates::table)
                .values((
                    mandates::id.eq(&mandate),
                    mandates::org_id.eq(&org_id),
                    mandates::customer_id.eq(format!("cus_bench{k:015}")),
                    mandates::account_id.eq(format!("acc_bench{k:015}")),
                    mandates::status.eq("signed"),
                    mandates::payment_type.eq(payment_type),
                    mandates::iban.eq("FR1420041010050500013M02606"),
                    mandates::bic.eq("PSSTFRPPPAR"),
                    mandates::email.eq(format!("debtor{k}@bench-sepa.example.com")),
                    mandates::debtor_name.eq(format!("Hélène Débitrice n°{i}")),
                    mandates::umr.eq(Some(format!("RUM-BENCH-{i:010}"))),
                    mandates::created_at.eq(at),
                    mandates::updated_at.eq(at),
                ))
                .execute(conn)?;
            diesel::insert_into(mandate_signatures::table)
                .values((
                    mandate_signatures::mandate_id.eq(&mandate),
                    mandate_signatures::signed_at.eq(at),
                    mandate_signatures::channel.eq("sms"),
                    mandate_signatures::destination.eq("+33 6** ** ** 78"),
                    mandate_signatures::ip.eq("203.0.113.7"),
                    mandate_signatures::user_agent.eq("bench"),
                    mandate_signatures::document_sha256.eq("0".repeat(64)),
                ))
                .execute(conn)?;
            let id = ids::new_id("col");
            diesel::insert_into(sepa_collections::table)
                .values((
                    sepa_collections::end_to_end_id
                        .eq(guichet_store::repo::collections::end_to_end_id(&id)),
                    sepa_collections::id.eq(&id),
                    sepa_collections::org_id.eq(&org_id),
                    sepa_collections::mandate_id.eq(&mandate),
                    sepa_collections::account_id.eq(format!("acc_bench{k:015}")),
                    sepa_collections::sequence_type.eq(sequence),
                    sepa_collections::amount.eq(1_000 + i64::from(i % 9_000)),
                    sepa_collections::currency.eq("EUR"),
                    sepa_collections::due_date.eq(day),
                    sepa_collections::status.eq("scheduled"),
                    sepa_collections::prenotified_at.eq(Some(at)),
                    sepa_collections::created_at.eq(at),
                    sepa_collections::updated_at.eq(at),
                ))
                .execute(conn)?;
        }
        Ok::<_, guichet_store::StoreError>(())
    })
    .map_err(|e| e.to_string())?;
    Ok(org.setup_token)
}

/// One HTTP/1.1 request on a fresh connection; the status and body.
fn request(addr: &str, head: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len());
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .map_err(|e| e.to_string())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn export(args: &SepaArgs) -> Result<serde_json::Value, String> {
    let binary = server::resolve_binary(args.binary.as_deref())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut database = Database::create(args.db.backend, &args.db.pg_admin_url, dir.path())?;
    let seeding = Instant::now();
    let setup_token = seed(database.url(), args.collections)?;
    let seed_s = seeding.elapsed().as_secs_f64();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&binary)
        .arg("serve")
        .args(["--database-url", database.url()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &addr])
        .args(["--jwt-secret", JWT_SECRET, "--secret-key", SECRET_KEY])
        .args(["--debit-interval-secs", "0", "--auth-rate-limit", "100000"])
        .args(["--auth-sign-in-limit", "100000"])
        .env("GUICHET_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let serving = Serving(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return Err("the server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = json!({"token": setup_token, "password": PASSWORD}).to_string();
    let (status, answer) = request(
        &addr,
        "POST /v1/auth/staff/setup HTTP/1.1\r\nContent-Type: application/json",
        &body,
    )?;
    if status != 200 {
        return Err(format!(
            "staff setup answered {status}: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let token = serde_json::from_slice::<serde_json::Value>(&answer)
        .map_err(|e| e.to_string())?["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    let pid = serving.0.id();
    let rss_before = procfs::read_mib(pid, "VmHWM")?;
    let started = Instant::now();
    let (status, xml) = request(
        &addr,
        &format!(
            "GET /v1/admin/sepa/collections.xml?date={DAY} HTTP/1.1\r\nAuthorization: Bearer {token}"
        ),
        "",
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let rss_peak = procfs::read_mib(pid, "VmHWM")?;
    drop(serving);
    if status != 200 {
        return Err(format!(
            "the export answered {status}: {}",
            String::from_utf8_lossy(&xml)
        ));
    }
    let text = String::from_utf8(xml).map_err(|e| e.to_string())?;
    let debits = text.matches("<DrctDbtTxInf>").count();
    let mut e2e: Vec<&str> = text
        .split("<EndToEndId>")
        .skip(1)
        .filter_map(|s| s.split("</EndToEndId>").next())
        .collect();
    e2e.sort_unstable();
    e2e.dedup();
    let file = dir.path().join("pain008.xml");
    std::fs::write(&file, &text).map_err(|e| e.to_string())?;
    let xsd = validate(&file);
    database.drop_now()?;
    Ok(json!({
        "backend": args.db.backend.name(),
        "collections": args.collections,
        "seed_s": seed_s,
        "debits_in_file": debits,
        "unique_end_to_end_ids": e2e.len(),
        "file_bytes": text.len(),
        "seconds": seconds,
        "server_rss_mib_before": rss_before,
        "server_peak_rss_mib": rss_peak,
        "xsd_validation": xsd,
        "target_seconds": 2.0,
        "target_rss_mib": 100.0,
        "meets_target": seconds <= 2.0 && rss_peak <= 100.0
            && debits == args.collections as usize && e2e.len() == debits,
    }))
}

/// `valid`, `invalid: ...`, or `skipped: ...` without xmllint or the XSD.
fn validate(file: &std::path::Path) -> String {
    let Some(dir) = Command::new("python3")
        .args([
            "-c",
            "import sepaxml,os;print(os.path.dirname(sepaxml.__file__))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    else {
        return "skipped: the sepaxml package (its XSD) is not installed".into();
    };
    let xsd = PathBuf::from(dir).join("schemas/pain.008.001.02.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(file)
        .output()
    {
        Ok(out) if out.status.success() => "valid".into(),
        Ok(out) => format!("invalid: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => format!("skipped: xmllint: {e}"),
    }
}
