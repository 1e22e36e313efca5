//! The `downloads` scenario: 16 concurrent downloads of one 20 MiB document
//! by the demo customer, from the local blob store (issue 16).
//!
//! The demo admin shares the document through the API; then rounds of
//! [`CONCURRENT`] downloads start at once, each on a connection of its own,
//! each body read as it arrives and hashed (SHA-256, nothing kept) and
//! checked against the hash of the bytes uploaded. A thread samples the
//! server's resident set (`VmRSS`) every few milliseconds during the rounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::http::{RequestSpec, find_head_end, parse_head};
use crate::procfs;
use crate::scenarios::{Setup, login, string_field};

/// Downloads at once.
pub const CONCURRENT: usize = 16;
/// The document's size: 20 MiB, the server's default upload limit.
pub const SIZE: usize = 20 * 1024 * 1024;
/// Rounds of [`CONCURRENT`] downloads measured (after one not measured).
pub const ROUNDS: usize = 5;
/// How often the server's RSS is read during the rounds.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub concurrent: usize,
    pub size_bytes: usize,
    pub rounds: usize,
    /// Bytes received in the measured rounds, every one checked.
    pub bytes: u64,
    pub secs: f64,
    pub mib_per_s: f64,
    /// Downloads whose status, length or SHA-256 was wrong (all rounds).
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The server's RSS before the document was uploaded: the upload
    /// itself (not measured) leaves the allocator holding memory that the
    /// downloads may reuse.
    pub rss_before_upload_mib: f64,
    /// The server's RSS before the first round (the unmeasured one
    /// included), the highest sampled during the rounds, and the growth.
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_growth_mib: f64,
    /// The server's CPU time (user + system) during the measured rounds
    /// ÷ the bytes sent, in ms per MiB.
    pub server_cpu_ms_per_mib: Option<f64>,
}

/// A deterministic 20 MiB PDF-looking body (the server sniffs `%PDF-`).
fn document() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIZE);
    bytes.extend_from_slice(b"%PDF-1.4\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while bytes.len() < SIZE - 6 {
        // xorshift64: bytes that do not compress, so that nothing on the
        // way can shortcut them.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(SIZE - 6);
    bytes.extend_from_slice(b"%%EOF\n");
    bytes
}

/// The request to repeat (`GET /v1/me/documents/{id}/content` with the
/// customer's token) and the SHA-256 of the bytes uploaded (hex).
/// Also the server's RSS before the upload, in MiB.
pub fn prepare(setup: &mut Setup<'_>, pid: u32) -> Result<(RequestSpec, String, f64), String> {
    let sign_in = login(setup)?;
    let customer = string_field(
        &setup.send(&sign_in)?.expect(200)?.json()?,
        "access_token",
        "customer login",
    )?;
    let me = RequestSpec::get("/v1/me").bearer(&customer);
    let customer_id = string_field(&setup.send(&me)?.expect(200)?.json()?, "id", "GET /v1/me")?;
    let staff_login = crate::scenarios::staff_login();
    let admin = string_field(
        &setup.send(&staff_login)?.expect(200)?.json()?,
        "access_token",
        "staff login",
    )?;
    let bytes = document();
    let sha256 = hex(&Sha256::digest(&bytes));
    let rss_before_upload = procfs::read_mib(pid, "VmRSS")?;
    let mut share = RequestSpec::new(
        "POST",
        &format!("/v1/admin/customers/{customer_id}/documents?title=Archive%2020%20Mo"),
    )
    .bearer(&admin)
    .header("Content-Type", "application/pdf");
    share.body = Some(bytes);
    let shared = setup
        .send(&share)?
        .expect(201)
        .map_err(|e| format!("sharing a 20 MiB document: {e}"))?
        .json()?;
    let id = string_field(&shared, "id", "sharing a document")?;
    if let Some(stored) = shared["sha256"].as_str()
        && stored != sha256
    {
        return Err(format!(
            "the server recorded SHA-256 {stored}, the bytes sent have {sha256}"
        ));
    }
    let download = RequestSpec::get(&format!("/v1/me/documents/{id}/content")).bearer(&customer);
    Ok((download, sha256, rss_before_upload))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One download on a fresh connection: the body hashed as it arrives.
async fn download(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    sha256: Arc<String>,
) -> Result<u64, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    let head_end = loop {
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the head".to_owned());
        }
        filled += n;
        if let Some(end) = find_head_end(&buf[..filled]) {
            break end;
        }
        if filled == buf.len() {
            return Err("head too long".to_owned());
        }
    };
    let head = parse_head(&buf[..head_end])?;
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    let length = head
        .content_length
        .ok_or("no Content-Length on the download")?;
    let mut hasher = Sha256::new();
    let mut received = filled - head_end;
    hasher.update(&buf[head_end..filled]);
    while received < length {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read after {received} bytes: {e}"))?;
        if n == 0 {
            return Err(format!("cut after {received} of {length} bytes"));
        }
        hasher.update(&buf[..n]);
        received += n;
    }
    if received != length || length != SIZE {
        return Err(format!(
            "{received} bytes, {length} announced, {SIZE} uploaded"
        ));
    }
    let got = hex(&hasher.finalize());
    if got != *sha256 {
        return Err(format!("SHA-256 {got}, expected {sha256}"));
    }
    Ok(received as u64)
}

/// Runs one unmeasured round, then [`ROUNDS`] measured ones, sampling the
/// server's RSS throughout.
pub fn run(
    runtime: &Runtime,
    addr: SocketAddr,
    host: &str,
    spec: &RequestSpec,
    sha256: String,
    pid: u32,
    rss_before_upload: f64,
) -> Result<Outcome, String> {
    // `Connection: close`: each download on a connection of its own.
    let request = Arc::new(
        spec.clone()
            .header("Connection", "close")
            .encode(host)?
            .bytes,
    );
    let sha256 = Arc::new(sha256);
    let rss_before = procfs::read_mib(pid, "VmRSS")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mib) = procfs::read_mib(pid, "VmRSS") {
                    peak = peak.max(mib);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            peak
        })
    };
    let mut errors = 0;
    let mut first_error = None;
    let mut bytes = 0;
    let mut measured = Duration::ZERO;
    let mut ticks = Some(0u64);
    for round in 0..=ROUNDS {
        let cpu_start = crate::schedules::cpu_ticks(pid);
        let started = Instant::now();
        let results = runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..CONCURRENT {
                set.spawn(download(addr, Arc::clone(&request), Arc::clone(&sha256)));
            }
            let mut results = Vec::with_capacity(CONCURRENT);
            while let Some(joined) = set.join_next().await {
                results.push(joined.map_err(|e| format!("task: {e}")).and_then(|r| r));
            }
            results
        });
        let elapsed = started.elapsed();
        let cpu = crate::schedules::cpu_ticks(pid)
            .zip(cpu_start)
            .map(|(b, a)| b.saturating_sub(a));
        for result in results {
            match result {
                Ok(n) if round > 0 => bytes += n,
                Ok(_) => {}
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        if round > 0 {
            measured += elapsed;
            ticks = ticks.zip(cpu).map(|(a, b)| a + b);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let peak = sampler
        .join()
        .map_err(|_| "the RSS sampler panicked".to_owned())?
        .max(rss_before);
    let secs = measured.as_secs_f64();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    Ok(Outcome {
        concurrent: CONCURRENT,
        size_bytes: SIZE,
        rounds: ROUNDS,
        bytes,
        secs: round2(secs),
        mib_per_s: if secs > 0.0 { round2(mib / secs) } else { 0.0 },
        errors,
        first_error,
        rss_before_upload_mib: round2(rss_before_upload),
        rss_before_mib: round2(rss_before),
        rss_peak_mib: round2(peak),
        rss_growth_mib: round2(peak - rss_before),
        server_cpu_ms_per_mib: ticks
            .filter(|_| mib > 0.0)
            .map(|t| round2(t as f64 * 10.0 / mib)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_a_20_mib_pdf() {
        let bytes = document();
        assert_eq!(bytes.len(), SIZE);
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(bytes.ends_with(b"%%EOF\n"));
        assert_eq!(document(), bytes);
    }
}
