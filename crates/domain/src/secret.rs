//! One-time secrets: numeric codes (sent by SMS or e-mail), opaque tokens
//! (links, sessions), activation codes (printed on letters), and the keyed
//! hash used to store them.
//!
//! All randomness comes from `rand::rng()`, a CSPRNG seeded from the
//! operating system. Secrets are never stored in clear: store
//! [`keyed_hash`]`(pepper, purpose, secret)` and compare the hash of what the
//! customer typed with [`constant_time_eq`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Fewest random bytes [`token`] will use (128 bits).
pub const MIN_TOKEN_BYTES: usize = 16;

/// Characters of activation codes: upper-case letters and digits without the
/// easily confused `I`, `O`, `0` and `1` (32 symbols, 5 bits each).
pub const ACTIVATION_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A string of `digits` decimal digits, each drawn uniformly from a CSPRNG.
///
/// Leading zeros are kept (`"004217"`), so every one of the `10^digits`
/// codes is equally likely. `numeric_code(0)` is the empty string.
pub fn numeric_code(digits: usize) -> String {
    let mut rng = rand::rng();
    (0..digits)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// An opaque token: `bytes` CSPRNG bytes encoded as URL-safe base64 without
/// padding (safe in URLs, headers and file names). 32 bytes is the usual
/// size; fewer than [`MIN_TOKEN_BYTES`] are raised to that minimum so a
/// token can never be short enough to guess.
pub fn token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes.max(MIN_TOKEN_BYTES)];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(&buffer)
}

/// A 12-character activation code from [`ACTIVATION_ALPHABET`] (60 bits),
/// shown in three groups: `XXXX-XXXX-XXXX`.
pub fn activation_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        let index = rng.random_range(0..ACTIVATION_ALPHABET.len());
        code.push(char::from(ACTIVATION_ALPHABET[index]));
    }
    code
}

/// The canonical form of a typed activation code: upper-cased, with
/// whitespace and hyphens removed, so `abcd efgh-jkmn` and `ABCD-EFGH-JKMN`
/// both become `ABCDEFGHJKMN`. Normalize both sides before comparing or
/// hashing.
pub fn normalize_activation_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// HMAC-SHA256 under `key`, as a ready-to-use MAC instance.
pub(crate) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC hashes over-long keys and pads short ones: any length works.
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The value to store for a one-time secret: lower-case hex of
/// HMAC-SHA256(`key`, `purpose` ‖ `0x00` ‖ `secret`).
///
/// `key` is a server-side pepper kept out of the database, so a leaked table
/// of code hashes cannot be brute-forced (a 6-digit code has only a million
/// values). `purpose` (e.g. `"login-sms"`, `"email-verify"`) binds the hash
/// to one use, so a code issued for one flow cannot be replayed in another;
/// the NUL separator keeps `("ab", "c")` and `("a", "bc")` apart.
pub fn keyed_hash(key: &[u8], purpose: &str, secret: &str) -> String {
    let mut mac = hmac_sha256(key);
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(secret.as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// Compares two strings in time that depends only on their lengths, not on
/// where they differ, so comparing a secret's hash leaks nothing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numeric_code_has_the_requested_digits() {
        for digits in [0, 1, 6, 8, 20] {
            let code = numeric_code(digits);
            assert_eq!(code.len(), digits);
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn numeric_code_uses_every_digit_in_every_position() {
        // Leading zeros are kept and no digit is excluded: over 2000 six-digit
        // codes each digit appears at each position (P(miss) < 1e-80).
        let mut seen = [[false; 10]; 6];
        let mut distinct = HashSet::new();
        for _ in 0..2000 {
            let code = numeric_code(6);
            for (position, b) in code.bytes().enumerate() {
                seen[position][usize::from(b - b'0')] = true;
            }
            distinct.insert(code);
        }
        assert!(seen.iter().all(|digits| digits.iter().all(|s| *s)));
        assert!(distinct.len() > 1900);
    }

    #[test]
    fn numeric_code_is_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            for b in numeric_code(10).bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 20 000 digits: 2000 expected per digit, sd ≈ 42.
        for (digit, count) in counts.iter().enumerate() {
            assert!((1750..=2250).contains(count), "{digit}: {count}");
        }
    }

    #[test]
    fn token_is_url_safe_base64_of_the_requested_length() {
        let t = token(32);
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(token(16)).unwrap().len(), 16);
        assert_ne!(token(32), token(32));
    }

    #[test]
    fn token_never_uses_fewer_than_16_bytes() {
        for short in [0, 1, 8, 15] {
            assert_eq!(URL_SAFE_NO_PAD.decode(token(short)).unwrap().len(), 16);
        }
    }

    #[test]
    fn activation_code_shape_and_alphabet() {
        let mut used = HashSet::new();
        for _ in 0..500 {
            let code = activation_code();
            assert_eq!(code.len(), 14);
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{code}");
            assert!(groups.iter().all(|g| g.len() == 4));
            for b in code.bytes().filter(|b| *b != b'-') {
                assert!(ACTIVATION_ALPHABET.contains(&b), "{code}");
                used.insert(b);
            }
        }
        // 6000 symbols: every one of the 32 shows up, none of 0/1/I/O.
        assert_eq!(used.len(), 32);
        for ambiguous in [b'0', b'1', b'I', b'O'] {
            assert!(!used.contains(&ambiguous));
        }
    }

    #[test]
    fn activation_code_normalization() {
        assert_eq!(normalize_activation_code("abcd efgh-jkmn"), "ABCDEFGHJKMN");
        assert_eq!(
            normalize_activation_code("abcd efgh-jkmn"),
            normalize_activation_code("ABCD-EFGH-JKMN")
        );
        assert_eq!(normalize_activation_code(" ab-cd\tef\n"), "ABCDEF");
        let code = activation_code();
        assert_eq!(
            normalize_activation_code(&code.to_lowercase().replace('-', " ")),
            code.replace('-', "")
        );
    }

    #[test]
    fn keyed_hash_matches_a_known_hmac_vector() {
        // The primitive: RFC 4231 test case 2.
        let mut mac = hmac_sha256(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The framing: purpose, one NUL byte, secret.
        let mut manual = hmac_sha256(b"pepper");
        manual.update(b"login-sms\x00123456");
        assert_eq!(
            keyed_hash(b"pepper", "login-sms", "123456"),
            to_hex(&manual.finalize().into_bytes())
        );
    }

    #[test]
    fn keyed_hash_depends_on_key_purpose_and_secret() {
        let base = keyed_hash(b"pepper", "login-sms", "123456");
        assert_eq!(base.len(), 64);
        assert!(
            base.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(base, keyed_hash(b"pepper", "login-sms", "123456"));
        assert_ne!(base, keyed_hash(b"other pepper", "login-sms", "123456"));
        assert_ne!(base, keyed_hash(b"pepper", "email-verify", "123456"));
        assert_ne!(base, keyed_hash(b"pepper", "login-sms", "123457"));
        // The separator keeps purpose and secret apart.
        assert_ne!(
            keyed_hash(b"pepper", "ab", "c"),
            keyed_hash(b"pepper", "a", "bc")
        );
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq("", ""));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(!constant_time_eq("abc", "ABC"));
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(to_hex(&[]), "");
    }
}
