//! The receiving end of webhooks, for tests: a small HTTP server on
//! 127.0.0.1 that records every request and answers by script, and an
//! implementation of the Standard Webhooks verification written here from
//! the specifications (SHA-256 from FIPS 180-4, HMAC from RFC 2104, base64
//! from RFC 4648), sharing no code with the server that signs, so that a
//! mistake in the server's signing cannot be mirrored by the check.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

// ------------------------------------------------------------------ receiver

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answer at once with this status.
    Status(u16),
    /// Wait this long, then answer 200 (a receiver that hangs).
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, by the wall clock.
    pub wall: SystemTime,
    /// What the receiver answered (a hung request: the status it would
    /// have answered, had the sender waited).
    pub reply: Reply,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "webhook body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `webhook-id`.
    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or("")
    }

    /// The `type` of the event in the body.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }

    /// Verifies the request as a Standard Webhooks receiver does, against
    /// `secret`, with the timestamp checked against `now` (unix seconds)
    /// with the spec's 5 minutes of tolerance.
    pub fn verify(&self, secret: &str, now: i64) -> Result<(), VerifyError> {
        verify(secret, &self.headers, &self.body, now, DEFAULT_TOLERANCE)
    }
}

struct Shared {
    script: VecDeque<Reply>,
    then: Reply,
    received: Vec<Received>,
}

/// A receiver running on its own thread, stopped when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub fn start() -> Receiver {
        Receiver::scripted(Vec::new(), Reply::Status(200))
    }

    /// A receiver that answers the first requests with `script`, in order,
    /// and every later one with `then`.
    pub fn scripted(script: Vec<Reply>, then: Reply) -> Receiver {
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            then,
            received: Vec::new(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(state.clone()))
                        .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                        .default_service(web::to(receive))
                })
                .workers(2)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            });
            if let Err(e) = result {
                eprintln!("test webhook receiver failed: {e}");
            }
        });
        let handle = rx.recv().expect("the webhook receiver did not start");
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// Replaces the script: the next requests get `script`, later ones `then`.
    pub fn set_script(&self, script: Vec<Reply>, then: Reply) {
        let mut shared = self.shared.lock().unwrap();
        shared.script = script.into();
        shared.then = then;
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits up to `timeout` for `done` to hold over the requests received;
    /// returns them (whether or not it held: the caller asserts).
    pub fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if done(&requests) || Instant::now() >= deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for at least `n` requests; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let requests = self.wait_until(timeout, |r| r.len() >= n);
        assert!(
            requests.len() >= n,
            "expected {n} webhook requests within {timeout:?}, got {}: {:?}",
            requests.len(),
            requests
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        );
        requests
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<Shared>>>,
) -> HttpResponse {
    let reply = {
        let mut shared = state.lock().unwrap();
        let reply = shared.script.pop_front().unwrap_or(shared.then);
        shared.received.push(Received {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
            reply,
        });
        reply
    };
    let status = match reply {
        Reply::Status(status) => status,
        Reply::Hang(duration) => {
            actix_web::rt::time::sleep(duration).await;
            200
        }
    };
    let status = actix_web::http::StatusCode::from_u16(status).unwrap();
    HttpResponse::build(status)
        .content_type("text/plain")
        .body(format!("answered {}", status.as_u16()))
}

// ------------------------------------------------------- Standard Webhooks

/// The tolerance the Standard Webhooks libraries apply to `webhook-timestamp`
/// (either way), in seconds.
pub const DEFAULT_TOLERANCE: i64 = 5 * 60;

/// Why a request does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The secret is not `whsec_` + base64 (or plain base64).
    BadSecret,
    /// A header is missing or empty.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    BadTimestamp,
    /// `webhook-timestamp` is older than the tolerance.
    TooOld,
    /// `webhook-timestamp` is further in the future than the tolerance.
    TooNew,
    /// No `v1,` signature in `webhook-signature` matches.
    NoMatchingSignature,
}

/// The signing key of a Standard Webhooks secret: the base64 after `whsec_`.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64_decode(encoded).ok_or(VerifyError::BadSecret)?;
    if key.is_empty() {
        return Err(VerifyError::BadSecret);
    }
    Ok(key)
}

/// The `v1,<base64>` signature of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("v1,{}", base64_encode(&hmac_sha256(key, &message)))
}

/// Verifies a webhook request as the Standard Webhooks specification says:
/// `webhook-id`, `webhook-timestamp` (within `tolerance` seconds of `now`)
/// and `webhook-signature` (space-separated `version,signature` entries; any
/// one `v1` entry matching the HMAC-SHA256 of `{id}.{timestamp}.{body}`).
pub fn verify(
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let key = secret_key(secret)?;
    let header = |name: &'static str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or(VerifyError::MissingHeader(name))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let timestamp: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if timestamp < now - tolerance {
        return Err(VerifyError::TooOld);
    }
    if timestamp > now + tolerance {
        return Err(VerifyError::TooNew);
    }
    let expected = sign(&key, id, timestamp, body);
    let expected = expected.as_bytes();
    let matched = signatures
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .any(|s| constant_time_eq(s.as_bytes(), expected));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- SHA-256

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4) of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0_u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut out = [0_u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let inner = sha256(&inner);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&inner);
    sha256(&outer)
}

// ----------------------------------------------------------------- base64

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64, padded or not; `None` on any other character
/// or a bad length.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_the_fips_examples() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(&sha256(&vec![b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base64_decode(encoded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Z"), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: &str, signature: &str) -> Vec<(String, String)> {
        vec![
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), timestamp.into()),
            ("webhook-signature".into(), signature.into()),
        ]
    }

    #[test]
    fn the_published_test_vector_signs_and_verifies() {
        let key = secret_key(SECRET).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(sign(&key, ID, TIMESTAMP, PAYLOAD), SIGNATURE);
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(
                SECRET,
                &headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
        // The secret without its prefix works too, as in the libraries.
        assert_eq!(
            verify(
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                &headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_signatures_verifies() {
        let ts = TIMESTAMP.to_string();
        let other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        for header in [
            format!("{other} {SIGNATURE}"),
            format!("{SIGNATURE} {other}"),
            format!("v2,abc {SIGNATURE}"),
        ] {
            assert_eq!(
                verify(
                    SECRET,
                    &headers(ID, &ts, &header),
                    PAYLOAD,
                    TIMESTAMP,
                    DEFAULT_TOLERANCE
                ),
                Ok(()),
                "{header}"
            );
        }
        // A signature of another version with the right bytes is not v1.
        let v2 = SIGNATURE.replacen("v1,", "v2,", 1);
        assert_eq!(
            verify(
                SECRET,
                &headers(ID, &ts, &v2),
                PAYLOAD,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn what_does_not_verify() {
        let ts = TIMESTAMP.to_string();
        let check = |secret: &str, h: Vec<(String, String)>, body: &[u8], now: i64| {
            verify(secret, &h, body, now, DEFAULT_TOLERANCE)
        };
        // Another body, id, timestamp or secret.
        assert_eq!(
            check(
                SECRET,
                headers(ID, &ts, SIGNATURE),
                br#"{"test": 2432232315}"#,
                TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(
                SECRET,
                headers("msg_other", &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        let later = (TIMESTAMP + 1).to_string();
        assert_eq!(
            check(SECRET, headers(ID, &later, SIGNATURE), PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(
                "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        // The timestamp outside the tolerance, either way.
        assert_eq!(
            check(
                SECRET,
                headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP + DEFAULT_TOLERANCE + 1
            ),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            check(
                SECRET,
                headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP - DEFAULT_TOLERANCE - 1
            ),
            Err(VerifyError::TooNew)
        );
        assert_eq!(
            check(
                SECRET,
                headers(ID, &ts, SIGNATURE),
                PAYLOAD,
                TIMESTAMP + DEFAULT_TOLERANCE
            ),
            Ok(())
        );
        // Headers missing or malformed, a bad secret.
        assert_eq!(
            check(SECRET, headers("", &ts, SIGNATURE), PAYLOAD, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            check(SECRET, headers(ID, "", SIGNATURE), PAYLOAD, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            check(SECRET, headers(ID, &ts, ""), PAYLOAD, TIMESTAMP),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        assert_eq!(
            check(
                SECRET,
                headers(ID, "16142653x", SIGNATURE),
                PAYLOAD,
                TIMESTAMP
            ),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            check("whsec_!!!", headers(ID, &ts, SIGNATURE), PAYLOAD, TIMESTAMP),
            Err(VerifyError::BadSecret)
        );
        // A truncated signature does not match.
        assert_eq!(
            check(
                SECRET,
                headers(ID, &ts, &SIGNATURE[..SIGNATURE.len() - 2]),
                PAYLOAD,
                TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn the_receiver_records_and_answers_by_script() {
        let receiver = Receiver::scripted(
            vec![Reply::Status(500), Reply::Hang(Duration::from_millis(300))],
            Reply::Status(204),
        );
        // A bare HTTP/1.1 client: this file is also built into the api
        // crate's tests, which have no other.
        let post = |body: &str| -> u16 {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", receiver.port)).unwrap();
            write!(
                stream,
                "POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nwebhook-id: msg_1\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer.split(' ').nth(1).unwrap().parse().unwrap()
        };
        assert_eq!(post("one"), 500);
        let started = Instant::now();
        assert_eq!(post("two"), 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(post("three"), 204);
        let got = receiver.wait_for(3, Duration::from_secs(5));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].body, b"one");
        assert_eq!(got[0].reply, Reply::Status(500));
        assert_eq!(got[1].reply, Reply::Hang(Duration::from_millis(300)));
        assert_eq!(got[2].webhook_id(), "msg_1");
        assert_eq!(got[2].path, "/hook");
        assert!(got[0].at <= got[1].at && got[1].at <= got[2].at);
    }
}
