//! Access tokens: HS256 JWTs, 15 minutes, with `typ: at+jwt` and a `kid`.
//!
//! The algorithm is pinned (nothing else, never `none`); `iss`, `aud`,
//! `sub`, `org`, `role`, `sid`, `exp`, `nbf`, `iat` and `jti` are all
//! required. Times are checked against the server's clock with 30 s of
//! leeway. Several verification keys may be configured for rotation.

use chrono::{DateTime, Utc};
use guichet_domain::identity::lifetimes;
use guichet_domain::ids;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::secrets::JwtKeys;

/// The `iss` of every token.
pub const ISSUER: &str = "guichet";
/// The `aud` of every access token.
pub const AUDIENCE: &str = "guichet-api";
/// The `typ` header of access tokens (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    Agent,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The customer or staff member's id.
    pub sub: String,
    /// The organization's id.
    pub org: String,
    pub role: Role,
    /// The session the token belongs to: revoking it stops the token.
    pub sid: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// On a preview session (a staff member seeing the portal as the
    /// organization's test customer): the staff member's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvw: Option<String>,
}

/// Why a token was refused (all answer 401 `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unexpected token type")]
    WrongType,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
}

/// Signs and verifies access tokens.
#[derive(Debug, Clone)]
pub struct TokenService {
    keys: JwtKeys,
}

impl TokenService {
    pub fn new(keys: JwtKeys) -> Self {
        Self { keys }
    }

    /// A new access token for `sub` in `org` within session `sid`; returns
    /// the token and its expiry.
    pub fn issue(
        &self,
        sub: &str,
        org: &str,
        role: Role,
        sid: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_with(
            sub,
            org,
            role,
            sid,
            None,
            now + lifetimes::access_token(),
            now,
        )
    }

    /// A preview token: `sub` is the organization's test customer, `pvw`
    /// the staff member who asked for it; it expires at `expires_at`.
    pub fn issue_preview(
        &self,
        sub: &str,
        org: &str,
        sid: &str,
        staff_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_with(
            sub,
            org,
            Role::Customer,
            sid,
            Some(staff_id.to_owned()),
            expires_at,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_with(
        &self,
        sub: &str,
        org: &str,
        role: Role,
        sid: &str,
        pvw: Option<String>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            org: org.to_owned(),
            role,
            sid: sid.to_owned(),
            exp: expires_at.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: ids::new_id("jti"),
            pvw,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(self.keys.signing.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&self.keys.signing.secret),
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, expires_at))
    }

    /// Checks `token` at `now`: header, signature, claims and times.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid("algorithm not accepted".into()));
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .verifying
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against the server's (injectable) clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &DecodingKey::from_secret(&key.secret),
            &validation,
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let now = now.timestamp();
        if claims.exp <= now - LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + LEEWAY_SECONDS || claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn service(secret: &str, previous: &[&str]) -> TokenService {
        let previous: Vec<String> = previous.iter().map(|s| s.to_string()).collect();
        TokenService::new(JwtKeys::new(secret, &previous).unwrap())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_token_verifies_within_its_lifetime_and_not_after() {
        let s = service(&"k".repeat(32), &[]);
        let (token, exp) = s
            .issue("cus_1", "org_1", Role::Customer, "ses_1", now())
            .unwrap();
        assert_eq!(exp, now() + Duration::minutes(15));
        let claims = s.verify(&token, now() + Duration::minutes(14)).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role),
            ("cus_1", Role::Customer)
        );
        assert!(
            s.verify(&token, now() + Duration::seconds(15 * 60 + 20))
                .is_ok(),
            "leeway"
        );
        assert_eq!(
            s.verify(&token, now() + Duration::minutes(16)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.verify(&token, now() - Duration::minutes(5)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_foreign_keys_fail() {
        let old = service(&"o".repeat(32), &[]);
        let (token, _) = old
            .issue("cus_1", "org_1", Role::Customer, "ses_1", now())
            .unwrap();
        let rotated = service(&"n".repeat(32), &[&"o".repeat(32)]);
        assert!(rotated.verify(&token, now()).is_ok());
        let other = service(&"x".repeat(32), &[]);
        assert_eq!(other.verify(&token, now()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn alg_none_and_other_types_are_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let s = service(&"k".repeat(32), &[]);
        let (token, _) = s
            .issue("cus_1", "org_1", Role::Customer, "ses_1", now())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let kid = &s.keys.signing.kid;
        let none = format!(
            "{}.{payload}.",
            b64.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#))
        );
        assert!(s.verify(&none, now()).is_err());
        let hs512 = format!(
            "{}.{payload}.{}",
            b64.encode(format!(r#"{{"alg":"HS512","typ":"at+jwt","kid":"{kid}"}}"#)),
            token.split('.').nth(2).unwrap()
        );
        assert!(s.verify(&hs512, now()).is_err());
        let jwt_typ = format!(
            "{}.{payload}.{}",
            b64.encode(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#)),
            token.split('.').nth(2).unwrap()
        );
        assert_eq!(s.verify(&jwt_typ, now()), Err(TokenError::WrongType));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(s.verify(&tampered, now()).is_err());
    }
}
