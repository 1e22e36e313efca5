//! A stateless proof-of-work challenge, used instead of a third-party
//! captcha once an account or address has had 3 failed logins.
//!
//! The server hands out a signed, expiring token; the client must find a
//! *nonce* that makes a SHA-256 hash start with a number of zero bits. That
//! costs a browser a fraction of a second once, but makes password guessing
//! at scale expensive. The server keeps no state to issue or check a
//! challenge; it only has to remember the ids of challenges already used
//! (until they expire) to refuse replays.
//!
//! # Token format
//!
//! Below, `B64(x)` is the base64 encoding of the bytes `x` with the URL-safe
//! alphabet (`A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_`; RFC 4648 §5) and **no**
//! `=` padding, and `‖` is concatenation.
//!
//! ```text
//! payload = id ‖ expiry ‖ difficulty                (25 bytes)
//!   id         16 random bytes
//!   expiry     8 bytes, unsigned big-endian, Unix time in seconds after
//!              which the challenge is refused
//!   difficulty 1 byte, the number of leading zero bits required
//! token   = B64(payload) ‖ "." ‖ B64(HMAC-SHA256(server key, payload))
//! ```
//!
//! A token is therefore 34 characters, a dot, and 43 characters. Clients
//! receive the difficulty and expiry alongside the token and need not decode
//! it, but they may (the payload is signed, not encrypted).
//!
//! # Solving (what a client implements)
//!
//! Given the `token` string and the `difficulty` `d`:
//!
//! 1. Pick a candidate nonce: any string of 1 to 64 bytes. The reference
//!    [`solve`] uses the decimal numbers `"0"`, `"1"`, `"2"`, … in order.
//! 2. Compute `digest = SHA-256(token ‖ ":" ‖ nonce)` over the UTF-8 bytes
//!    of the token exactly as received, one colon byte (`0x3A`), and the
//!    UTF-8 bytes of the nonce.
//! 3. Count the leading zero bits of the 32-byte digest, starting at the
//!    most significant bit of byte 0, then byte 1, and so on. For `d = 16`
//!    this means `digest[0] == 0 && digest[1] == 0`; for `d = 12` it means
//!    `digest[0] == 0 && digest[1] < 0x10`.
//! 4. If the count is at least `d`, send `token` and `nonce` back; otherwise
//!    try the next candidate.
//!
//! On average `2^d` candidates are tried: about 65 000 SHA-256 computations
//! for the default [`DEFAULT_DIFFICULTY`] of 16.
//!
//! Test vectors, for the illustrative token string `example` (not a real,
//! signed token):
//!
//! | `d` | first decimal nonce | SHA-256 of `example:<nonce>` begins with |
//! |-----|---------------------|------------------------------------------|
//! | 8   | `20`                | `00 8b 3d 01`                            |
//! | 16  | `26837`             | `00 00 92 93`                            |
//!
//! # Verification (what the server does)
//!
//! [`verify`] refuses, in this order: a token that is not two valid base64
//! parts of 25 and 32 bytes separated by one dot, or a nonce longer than 64
//! bytes ([`ChallengeError::Malformed`]); a MAC that does not match
//! (compared in constant time, [`ChallengeError::BadSignature`]); a current
//! time at or after the expiry ([`ChallengeError::Expired`]); a digest with
//! fewer leading zero bits than the signed difficulty
//! ([`ChallengeError::NotSolved`]). On success it returns the challenge id
//! (lower-case hex of the 16 id bytes) so that the caller can record it as
//! used and refuse a second use.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::Mac;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::{hmac_sha256, to_hex};

/// Leading zero bits asked of clients by default (about 65 000 hashes).
pub const DEFAULT_DIFFICULTY: u8 = 16;
/// Longest nonce accepted, in bytes.
pub const MAX_NONCE_LEN: usize = 64;

const ID_LEN: usize = 16;
const PAYLOAD_LEN: usize = ID_LEN + 8 + 1;
const MAC_LEN: usize = 32;

/// A challenge to send to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The signed token; the client hashes it with its nonce and sends both
    /// back.
    pub token: String,
    /// Leading zero bits required (also signed inside the token).
    pub difficulty: u8,
    /// When the challenge stops being accepted (whole seconds, as signed in
    /// the token).
    pub expires_at: DateTime<Utc>,
}

/// Why a challenge answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The token is not in the expected format, or the nonce is too long.
    #[error("malformed challenge or nonce")]
    Malformed,
    /// The token was not issued with this key, or was altered.
    #[error("challenge signature does not match")]
    BadSignature,
    /// The challenge expired.
    #[error("challenge expired")]
    Expired,
    /// The nonce does not give enough leading zero bits.
    #[error("challenge not solved")]
    NotSolved,
}

/// Issues a challenge signed with `key`, valid from `now` for `ttl`
/// (truncated to whole seconds) and requiring `difficulty` leading zero
/// bits. A `ttl` that overflows the calendar yields an already expired
/// challenge.
pub fn issue(key: &[u8], now: DateTime<Utc>, difficulty: u8, ttl: chrono::Duration) -> Challenge {
    let expires = now.checked_add_signed(ttl).unwrap_or(now);
    let expiry_secs = u64::try_from(expires.timestamp()).unwrap_or(0);
    let expires_at = i64::try_from(expiry_secs)
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or(expires);

    let mut payload = [0u8; PAYLOAD_LEN];
    rand::rng().fill_bytes(&mut payload[..ID_LEN]);
    payload[ID_LEN..ID_LEN + 8].copy_from_slice(&expiry_secs.to_be_bytes());
    payload[PAYLOAD_LEN - 1] = difficulty;

    let mut mac = hmac_sha256(key);
    mac.update(&payload);
    let tag = mac.finalize().into_bytes();

    Challenge {
        token: format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        ),
        difficulty,
        expires_at,
    }
}

/// Checks a client's answer (`token` as issued, `nonce` as found) at time
/// `now`, and returns the challenge id (32 lower-case hex characters) to
/// record as used. See the module documentation for the exact checks.
pub fn verify(
    key: &[u8],
    token: &str,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<String, ChallengeError> {
    if nonce.len() > MAX_NONCE_LEN {
        return Err(ChallengeError::Malformed);
    }
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(ChallengeError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| ChallengeError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| ChallengeError::Malformed)?;
    if payload.len() != PAYLOAD_LEN || tag.len() != MAC_LEN {
        return Err(ChallengeError::Malformed);
    }

    let mut mac = hmac_sha256(key);
    mac.update(&payload);
    mac.verify_slice(&tag)
        .map_err(|_| ChallengeError::BadSignature)?;

    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&payload[ID_LEN..ID_LEN + 8]);
    let expiry_secs = u64::from_be_bytes(expiry);
    let expired = u64::try_from(now.timestamp()).is_ok_and(|now_secs| now_secs >= expiry_secs);
    if expired {
        return Err(ChallengeError::Expired);
    }

    let difficulty = payload[PAYLOAD_LEN - 1];
    if !is_solution(token, nonce, difficulty) {
        return Err(ChallengeError::NotSolved);
    }
    Ok(to_hex(&payload[..ID_LEN]))
}

/// The reference solver: tries the nonces `"0"`, `"1"`, `"2"`, … and returns
/// the first that gives `difficulty` leading zero bits for `token`.
///
/// Expect about `2^difficulty` attempts; meant for tests, tools and as the
/// specification of a client, not for server use.
pub fn solve(token: &str, difficulty: u8) -> String {
    let mut counter: u64 = 0;
    loop {
        let nonce = counter.to_string();
        if is_solution(token, &nonce, difficulty) {
            return nonce;
        }
        counter = counter.wrapping_add(1);
    }
}

/// Whether SHA-256(`token` ‖ `:` ‖ `nonce`) has at least `difficulty`
/// leading zero bits.
fn is_solution(token: &str, nonce: &str, difficulty: u8) -> bool {
    let digest = Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.as_bytes())
        .finalize();
    leading_zero_bits(&digest) >= u32::from(difficulty)
}

/// Number of zero bits before the first one bit, most significant first.
fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut count = 0;
    for b in bytes {
        count += b.leading_zeros();
        if *b != 0 {
            break;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const KEY: &[u8] = b"challenge test key";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
    }

    fn fresh(difficulty: u8) -> Challenge {
        issue(KEY, t0(), difficulty, Duration::minutes(5))
    }

    #[test]
    fn leading_zero_bit_counting() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0x00, 0x0f]), 12);
        assert_eq!(leading_zero_bits(&[0x00, 0x00, 0xff]), 16);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
        assert_eq!(leading_zero_bits(&[0x10, 0x00]), 3);
    }

    #[test]
    fn documented_test_vector() {
        assert_eq!(solve("example", 8), "20");
        assert_eq!(
            &Sha256::digest(b"example:20")[..4],
            &[0x00, 0x8b, 0x3d, 0x01]
        );
        assert_eq!(solve("example", 16), "26837");
        assert_eq!(
            &Sha256::digest(b"example:26837")[..4],
            &[0x00, 0x00, 0x92, 0x93]
        );
    }

    #[test]
    fn token_layout() {
        let c = fresh(DEFAULT_DIFFICULTY);
        let (payload, tag) = c.token.split_once('.').unwrap();
        assert_eq!(payload.len(), 34);
        assert_eq!(tag.len(), 43);
        let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        assert_eq!(bytes.len(), 25);
        let expiry = u64::from_be_bytes(bytes[16..24].try_into().unwrap());
        assert_eq!(expiry, (t0() + Duration::minutes(5)).timestamp() as u64);
        assert_eq!(bytes[24], DEFAULT_DIFFICULTY);
        assert_eq!(c.difficulty, DEFAULT_DIFFICULTY);
        assert_eq!(c.expires_at, t0() + Duration::minutes(5));
        assert_ne!(c.token, fresh(DEFAULT_DIFFICULTY).token);
    }

    #[test]
    fn expiry_is_truncated_to_whole_seconds() {
        let now = t0() + Duration::milliseconds(700);
        let c = issue(KEY, now, 4, Duration::milliseconds(1500));
        // 09:26:53.700 + 1.5 s = 09:26:55.200 → 09:26:55.
        assert_eq!(c.expires_at, t0() + Duration::seconds(2));
    }

    #[test]
    fn solves_default_difficulty_and_returns_the_id() {
        let c = fresh(DEFAULT_DIFFICULTY);
        let nonce = solve(&c.token, c.difficulty);
        let id = verify(KEY, &c.token, &nonce, t0() + Duration::seconds(30)).unwrap();
        let payload = URL_SAFE_NO_PAD
            .decode(c.token.split_once('.').unwrap().0)
            .unwrap();
        assert_eq!(id, to_hex(&payload[..16]));
        assert_eq!(id.len(), 32);
        let digest = Sha256::digest(format!("{}:{nonce}", c.token));
        assert_eq!(&digest[..2], &[0, 0]);
    }

    #[test]
    fn wrong_nonce_is_not_solved() {
        let c = fresh(DEFAULT_DIFFICULTY);
        let nonce = solve(&c.token, c.difficulty);
        // Find the first decimal nonce after the solution that does not work.
        let start: u64 = nonce.parse().unwrap();
        let wrong = (start + 1..)
            .map(|n| n.to_string())
            .find(|n| !is_solution(&c.token, n, c.difficulty))
            .unwrap();
        assert_eq!(
            verify(KEY, &c.token, &wrong, t0()),
            Err(ChallengeError::NotSolved)
        );
        assert_eq!(
            verify(KEY, &c.token, "", t0()),
            Err(ChallengeError::NotSolved)
        );
    }

    #[test]
    fn difficulty_comes_from_the_signed_token() {
        // A solution good enough for 4 bits is not enough for 20.
        let c = fresh(20);
        let weak = (0u64..)
            .map(|n| n.to_string())
            .find(|n| is_solution(&c.token, n, 4) && !is_solution(&c.token, n, 20))
            .unwrap();
        assert_eq!(
            verify(KEY, &c.token, &weak, t0()),
            Err(ChallengeError::NotSolved)
        );
    }

    #[test]
    fn zero_difficulty_accepts_any_nonce() {
        let c = fresh(0);
        assert!(verify(KEY, &c.token, "anything", t0()).is_ok());
    }

    #[test]
    fn tampered_token_is_refused() {
        let c = fresh(8);
        let (payload, tag) = c.token.split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        // Lower the difficulty to 0 so any nonce would "solve" it.
        bytes[24] = 0;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            verify(KEY, &forged, "0", t0()),
            Err(ChallengeError::BadSignature)
        );
        // Push the expiry forward.
        let mut later = URL_SAFE_NO_PAD.decode(payload).unwrap();
        later[23] = later[23].wrapping_add(1);
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&later));
        let nonce = solve(&forged, 8);
        assert_eq!(
            verify(KEY, &forged, &nonce, t0()),
            Err(ChallengeError::BadSignature)
        );
        // Alter the MAC.
        let mut tag_bytes = URL_SAFE_NO_PAD.decode(tag).unwrap();
        tag_bytes[0] ^= 1;
        let forged = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag_bytes));
        let nonce = solve(&forged, 8);
        assert_eq!(
            verify(KEY, &forged, &nonce, t0()),
            Err(ChallengeError::BadSignature)
        );
    }

    #[test]
    fn another_key_is_refused() {
        let c = fresh(8);
        let nonce = solve(&c.token, 8);
        assert!(verify(KEY, &c.token, &nonce, t0()).is_ok());
        assert_eq!(
            verify(b"another key", &c.token, &nonce, t0()),
            Err(ChallengeError::BadSignature)
        );
    }

    #[test]
    fn expired_token_is_refused() {
        let c = fresh(8);
        let nonce = solve(&c.token, 8);
        let just_before = c.expires_at - Duration::milliseconds(1);
        assert!(verify(KEY, &c.token, &nonce, just_before).is_ok());
        assert_eq!(
            verify(KEY, &c.token, &nonce, c.expires_at),
            Err(ChallengeError::Expired)
        );
        assert_eq!(
            verify(KEY, &c.token, &nonce, c.expires_at + Duration::hours(1)),
            Err(ChallengeError::Expired)
        );
        let stillborn = issue(KEY, t0(), 0, Duration::zero());
        assert_eq!(
            verify(KEY, &stillborn.token, "0", t0()),
            Err(ChallengeError::Expired)
        );
    }

    #[test]
    fn nonce_length_is_limited() {
        let c = fresh(0);
        let longest = "n".repeat(MAX_NONCE_LEN);
        assert!(verify(KEY, &c.token, &longest, t0()).is_ok());
        let too_long = "n".repeat(MAX_NONCE_LEN + 1);
        assert_eq!(
            verify(KEY, &c.token, &too_long, t0()),
            Err(ChallengeError::Malformed)
        );
    }

    #[test]
    fn malformed_tokens() {
        let c = fresh(0);
        let (payload, tag) = c.token.split_once('.').unwrap();
        for bad in [
            String::new(),
            "no-dot".to_owned(),
            format!("{payload}.{tag}.extra"),
            format!("{payload}={tag}"),
            format!("{payload}.{tag}="),
            format!("{payload}.{}", &tag[..42]),
            format!("{}.{tag}", &payload[..32]),
            format!("{payload}.{tag}AAAA"),
            format!("{payload}.+{}", &tag[1..]),
            format!("{payload}!.{tag}"),
        ] {
            assert_eq!(
                verify(KEY, &bad, "0", t0()),
                Err(ChallengeError::Malformed),
                "{bad:?}"
            );
        }
    }
}
