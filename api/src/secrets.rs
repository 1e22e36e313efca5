//! Signing keys and development secrets.

use std::io::Write as _;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The shortest secret accepted for HS256.
pub const MIN_SECRET_BYTES: usize = 32;

/// One HS256 key with its key id (the first 16 hex digits of its SHA-256).
#[derive(Clone)]
pub struct JwtKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("secret", &"***")
            .finish()
    }
}

impl JwtKey {
    fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a JWT secret must be at least {MIN_SECRET_BYTES} bytes long"
            ));
        }
        let digest = Sha256::digest(secret.as_bytes());
        Ok(JwtKey {
            kid: hex::encode(&digest[..8]),
            secret: secret.as_bytes().to_vec(),
        })
    }
}

/// The key that signs new tokens and every key that still verifies them.
#[derive(Debug, Clone)]
pub struct JwtKeys {
    pub signing: JwtKey,
    pub verifying: Vec<JwtKey>,
}

impl JwtKeys {
    /// `current` signs; `current` and `previous` verify.
    pub fn new(current: &str, previous: &[String]) -> Result<Self, String> {
        let signing = JwtKey::new(current)?;
        let mut verifying = vec![signing.clone()];
        for secret in previous.iter().filter(|s| !s.is_empty()) {
            verifying.push(JwtKey::new(secret)?);
        }
        Ok(JwtKeys { signing, verifying })
    }
}

/// Reads `<data dir>/secrets/<name>`, creating it (mode 0600, 32 random
/// bytes as hex) on first use, with a warning: fine for development only.
pub fn development_secret(data_dir: &Path, name: &str) -> Result<String, String> {
    let dir = data_dir.join("secrets");
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok(existing);
        }
        return Err(format!(
            "{} holds a secret shorter than {MIN_SECRET_BYTES} bytes; delete it to generate a new one",
            path.display()
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a development secret ({name}); set it explicitly in production"
    );
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_and_kids_are_stable() {
        assert!(JwtKeys::new("short", &[]).is_err());
        let a = JwtKeys::new(&"a".repeat(32), &["b".repeat(40)]).unwrap();
        let b = JwtKeys::new(&"a".repeat(32), &[]).unwrap();
        assert_eq!(a.signing.kid, b.signing.kid);
        assert_eq!(a.signing.kid.len(), 16);
        assert_eq!(a.verifying.len(), 2);
        assert_ne!(a.verifying[0].kid, a.verifying[1].kid);
        assert!(!format!("{a:?}").contains("aaaa"));
    }
}
