//! Messages that carry a secret (a one-time code, a reset or setup link) are
//! stored in the outbox sealed: encrypted and authenticated with
//! ChaCha20-Poly1305 under a key derived from the server's secret key, and
//! opened only by the dispatcher at delivery, which then erases the body
//! ([`guichet_store::repo::outbox::DELIVERED_BODY`]). A copy of the database
//! (its file, its WAL, a backup) therefore holds no usable code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::Mac;

/// How a sealed body starts: the format and its version.
const PREFIX: &str = "sealed:v1:";

/// The key that seals and opens outbox bodies. Its `Debug` prints nothing
/// of it.
#[derive(Clone)]
pub struct OutboxKey([u8; 32]);

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey(****)")
    }
}

/// Why a sealed body could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not in the sealed format.
    #[error("not a sealed body")]
    Malformed,
    /// Sealed under another key, or altered.
    #[error("the sealed body does not open with this server's secret key")]
    WrongKey,
}

impl OutboxKey {
    /// The outbox key of a server secret key: HMAC-SHA256 of a fixed label,
    /// so that it is never the secret key itself (which also signs tokens).
    pub fn derive(secret_key: &[u8]) -> OutboxKey {
        // HMAC takes a key of any length.
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"guichet-outbox-seal-v1");
        OutboxKey(mac.finalize().into_bytes().into())
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// `sealed:v1:` and the base64url of a random 96-bit nonce followed by
    /// the ciphertext and its tag.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail.
        let sealed = self
            .cipher()
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The plaintext of a body made by [`OutboxKey::seal`].
    pub fn open(&self, body: &str) -> Result<String, OpenError> {
        let encoded = body.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < 12 {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| OpenError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| OpenError::Malformed)
    }
}

/// Whether a stored body is sealed.
pub fn is_sealed(body: &str) -> bool {
    body.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_only_with_its_key_and_hides_its_text() {
        let key = OutboxKey::derive(b"a server secret key of some length");
        let sealed = key.seal("Votre code : 482913");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("482913"));
        assert_eq!(key.open(&sealed).unwrap(), "Votre code : 482913");
        // Each seal has its own nonce.
        assert_ne!(key.seal("Votre code : 482913"), sealed);
        let other = OutboxKey::derive(b"another secret key");
        assert_eq!(other.open(&sealed), Err(OpenError::WrongKey));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key.open(&altered).is_err());
        assert_eq!(key.open("Votre code : 482913"), Err(OpenError::Malformed));
        assert_eq!(key.open("sealed:v1:AAAA"), Err(OpenError::Malformed));
        assert_eq!(format!("{key:?}"), "OutboxKey(****)");
    }
}
