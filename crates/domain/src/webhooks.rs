//! Signed webhooks, the pure part: signing secrets, the Standard Webhooks
//! signature (<https://www.standardwebhooks.com>), the retry schedule, the
//! endpoint URL rule and the address rule that keeps deliveries away from
//! the server's own network (SSRF).
//!
//! Signature: `webhook-signature: v1,<base64(HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}"))>`, where the key is the base64-decoded part
//! of the secret after `whsec_`; during a secret rotation the header holds
//! one space-separated `v1,...` entry per valid secret.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How a signing secret starts.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new secret.
pub const SECRET_BYTES: usize = 32;
/// Fewest and most key bytes a secret may decode to.
pub const SECRET_MIN_BYTES: usize = 24;
pub const SECRET_MAX_BYTES: usize = 64;
/// The longest endpoint URL.
pub const URL_MAX_LEN: usize = 2048;

/// A signing secret (`whsec_` + base64 of its key). Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_****)")
    }
}

/// Why a text is not a signing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    #[error("the part after whsec_ is not base64")]
    Encoding,
    #[error("a webhook secret holds 24 to 64 key bytes")]
    Length,
}

impl Secret {
    /// A new secret of [`SECRET_BYTES`] CSPRNG bytes.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        Secret {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(&key)),
            key,
        }
    }

    /// Reads `whsec_<base64>` (standard alphabet, padded or not).
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| SecretError::Encoding)?;
        if !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Secret {
            text: text.to_owned(),
            key,
        })
    }

    /// The secret as shown once to the admin (`whsec_...`).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One signature: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` header: one signature per secret, space-separated
/// (the current secret first, then the previous one during a rotation).
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s.key(), id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether one of the `v1,` entries of a `webhook-signature` header is the
/// signature of `(id, timestamp, body)` under `secret` (compared in
/// constant time). The timestamp's freshness is the receiver's own rule.
pub fn verify(secret: &Secret, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = sign(secret.key(), id, timestamp, body);
    header.split_whitespace().any(|entry| {
        entry.len() == expected.len() && bool::from(entry.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// Delays before the 2nd, 3rd, ... 8th attempt; every later one waits
/// [`STEADY_DELAY`].
pub const BACKOFF: [Duration; 7] = [
    Duration::seconds(5),
    Duration::seconds(30),
    Duration::minutes(2),
    Duration::minutes(10),
    Duration::hours(1),
    Duration::hours(3),
    Duration::hours(6),
];
/// The delay after the 7th failed attempt and every later one.
pub const STEADY_DELAY: Duration = Duration::hours(6);
/// How long a delivery is retried after its first attempt, and how long an
/// endpoint may fail before it is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::days(3);
/// The jitter, as a fraction of the delay (±10 %).
pub const JITTER: f64 = 0.10;

/// The delay after failed attempt `attempt` (1 for the first), before
/// jitter.
pub fn base_delay(attempt: u32) -> Duration {
    let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    BACKOFF.get(index).copied().unwrap_or(STEADY_DELAY)
}

/// When to try again after failed attempt `attempt`, made at `now`, of a
/// delivery first tried at `first_attempt_at`: the delay of
/// [`base_delay`], scaled by `scale` (1.0 in production; tests shorten it),
/// moved by `jitter` (in -1.0..=1.0, times [`JITTER`]), at least 1 ms
/// later than `now`. `None` once that
/// instant is more than [`GIVE_UP_AFTER`] (also scaled) after the first
/// attempt: the delivery is given up.
pub fn next_retry(
    attempt: u32,
    first_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
    scale: f64,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let base = base_delay(attempt).num_milliseconds() as f64 * scale;
    let jittered = base * (1.0 + JITTER * jitter.clamp(-1.0, 1.0));
    let at = now + Duration::milliseconds(jittered.round().max(1.0) as i64);
    let limit =
        Duration::milliseconds((GIVE_UP_AFTER.num_milliseconds() as f64 * scale).round() as i64);
    (at <= first_attempt_at + limit).then_some(at)
}

/// A uniform jitter in -1.0..=1.0 from the CSPRNG, for [`next_retry`].
pub fn random_jitter() -> f64 {
    rand::rng().random_range(-1.0..=1.0)
}

/// The scheme of an endpoint URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// An endpoint URL: `https://host[:port][/path][?query]` (or `http://`
/// when the server allows it), printable ASCII, no user information, no
/// fragment, at most [`URL_MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    url: String,
    scheme: Scheme,
    host: Host,
    port: u16,
}

/// The host of an endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A name to resolve (lower-cased).
    Name(String),
    /// An address literal (`203.0.113.7`, `[2001:db8::1]`).
    Ip(IpAddr),
}

/// Why a text is not an acceptable endpoint URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is longer than 2048 bytes")]
    TooLong,
    #[error("the URL must start with https://")]
    HttpsRequired,
    #[error("the URL must start with https:// or http://")]
    Scheme,
    #[error("the URL may not hold user information (user:password@)")]
    UserInfo,
    #[error("the URL may not hold a fragment (#...)")]
    Fragment,
    #[error("the URL holds a character that must be percent-encoded")]
    Character,
    #[error("the URL has no valid host")]
    Host,
    #[error("the URL's port is not 1 to 65535")]
    Port,
}

impl EndpointUrl {
    /// Reads an endpoint URL; `http://` only when `allow_http`.
    pub fn parse(text: &str, allow_http: bool) -> Result<EndpointUrl, UrlError> {
        if text.len() > URL_MAX_LEN {
            return Err(UrlError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::Character);
        }
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("https://") {
            (Scheme::Https, &text["https://".len()..])
        } else if lower.starts_with("http://") {
            if !allow_http {
                return Err(UrlError::HttpsRequired);
            }
            (Scheme::Http, &text["http://".len()..])
        } else {
            return Err(UrlError::Scheme);
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        if tail.contains('\\') {
            return Err(UrlError::Character);
        }
        let (host, port) = split_authority(authority)?;
        let port = match port {
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(UrlError::Port),
            },
        };
        Ok(EndpointUrl {
            url: text.to_owned(),
            scheme,
            host,
            port,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

fn split_authority(authority: &str) -> Result<(Host, Option<&str>), UrlError> {
    if let Some(inner) = authority.strip_prefix('[') {
        let (literal, after) = inner.split_once(']').ok_or(UrlError::Host)?;
        let ip = Ipv6Addr::from_str(literal).map_err(|_| UrlError::Host)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::Host)?),
        };
        return Ok((
            Host::Ip(IpAddr::V6(ip)),
            port.map(non_empty_port).transpose()?,
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(non_empty_port(port)?)),
        None => (authority, None),
    };
    if let Ok(ip) = Ipv4Addr::from_str(host) {
        return Ok((Host::Ip(IpAddr::V4(ip)), port));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(UrlError::Host);
    }
    Ok((Host::Name(name), port))
}

fn non_empty_port(port: &str) -> Result<&str, UrlError> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Port);
    }
    Ok(port)
}

/// Why an address may not receive webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Unspecified,
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
    UniqueLocal,
    Translation,
}

impl Forbidden {
    /// A short English name, for logs and the delivery log.
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Unspecified => "unspecified address",
            Forbidden::Loopback => "loopback address",
            Forbidden::Private => "private address",
            Forbidden::SharedAddressSpace => "shared (CGNAT) address",
            Forbidden::LinkLocal => "link-local address",
            Forbidden::Multicast => "multicast address",
            Forbidden::Broadcast => "broadcast address",
            Forbidden::Documentation => "documentation address",
            Forbidden::Benchmarking => "benchmarking address",
            Forbidden::Reserved => "reserved address",
            Forbidden::UniqueLocal => "unique local address",
            Forbidden::Translation => "local translation address",
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

/// Why IPv4 address `ip` may not receive webhooks, if it may not.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    use Forbidden::*;
    let table: &[([u8; 4], u32, Forbidden)] = &[
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why IPv6 address `ip` may not receive webhooks, if it may not. IPv6
/// forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are
/// judged by that address.
pub fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    use Forbidden::*;
    let bits = u128::from(ip);
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
    if in_v6(ip, 0xffff_0000_0000, 96) || in_v6(ip, 0, 96) {
        return classify_v4(low_v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96 carries an IPv4 address.
    if in_v6(ip, 0x0064_ff9b_u128 << 96, 96) {
        return classify_v4(low_v4);
    }
    // 6to4 2002:a.b.c.d::/48.
    if in_v6(ip, 0x2002_u128 << 112, 16) {
        return classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    let table: &[(u128, u32, Forbidden)] = &[
        // Local-use NAT64 (RFC 8215).
        (0x0064_ff9b_0001_u128 << 80, 48, Translation),
        // Discard-only (RFC 6666).
        (0x0100_u128 << 112, 64, Reserved),
        // Benchmarking (RFC 5180), inside the IETF protocol block.
        (0x2001_0002_u128 << 96, 48, Benchmarking),
        // Teredo and the IETF protocol assignments.
        (0x2001_u128 << 112, 23, Reserved),
        (0x2001_0db8_u128 << 96, 32, Documentation),
        (0x3fff_u128 << 112, 20, Documentation),
        (0xfc00_u128 << 112, 7, UniqueLocal),
        (0xfe80_u128 << 112, 10, LinkLocal),
        // Site-local (deprecated).
        (0xfec0_u128 << 112, 10, Private),
        (0xff00_u128 << 112, 8, Multicast),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why `ip` may not receive webhooks, if it may not.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// An address or a CIDR range (`127.0.0.1`, `10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range; IPv4-mapped IPv6 addresses count as
    /// their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_v4(ip, net.octets(), u32::from(self.prefix)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => in_v6(ip, u128::from(net), u32::from(self.prefix)),
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = IpAddr::from_str(address.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Which addresses webhooks may be sent to: every public address, plus
/// the operator's allowed ones (`--webhook-allow-address`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<Cidr>,
}

impl AddressPolicy {
    pub fn new(allowed: Vec<Cidr>) -> AddressPolicy {
        AddressPolicy { allowed }
    }

    /// `Ok` when webhooks may go to `ip`; otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Forbidden> {
        if self.allowed.iter().any(|range| range.contains(ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        IpAddr::from_str(text).unwrap()
    }

    #[test]
    fn a_new_secret_is_32_random_bytes_and_parses_back() {
        let secret = Secret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().len(), 32);
        assert_eq!(Secret::parse(secret.expose()).unwrap(), secret);
        assert_ne!(Secret::generate(), secret);
        assert_eq!(format!("{secret:?}"), "Secret(whsec_****)");
        assert_eq!(Secret::parse("sk_abc"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_%%%"), Err(SecretError::Encoding));
        assert_eq!(
            Secret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 16]))),
            Err(SecretError::Length)
        );
        assert_eq!(
            Secret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 65]))),
            Err(SecretError::Length)
        );
    }

    /// The example of the Standard Webhooks specification's reference
    /// libraries.
    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret.key(), id, timestamp, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&secret, id, timestamp, body, &signature));
        assert!(!verify(&secret, id, timestamp + 1, body, &signature));
        assert!(!verify(&secret, id, timestamp, b"{}", &signature));
    }

    #[test]
    fn during_a_rotation_the_header_carries_both_signatures() {
        let new = Secret::generate();
        let old = Secret::generate();
        let header = signature_header(&[&new, &old], "evt_1", 1_700_000_000, b"{}");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.starts_with("v1,")));
        assert!(verify(&new, "evt_1", 1_700_000_000, b"{}", &header));
        assert!(verify(&old, "evt_1", 1_700_000_000, b"{}", &header));
        assert!(!verify(
            &Secret::generate(),
            "evt_1",
            1_700_000_000,
            b"{}",
            &header
        ));
    }

    #[test]
    fn retries_back_off_with_jitter_and_stop_after_three_days() {
        let first = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        assert_eq!(
            next_retry(1, first, first, 1.0, 0.0),
            Some(first + Duration::seconds(5))
        );
        assert_eq!(
            next_retry(2, first, first, 1.0, 0.0),
            Some(first + Duration::seconds(30))
        );
        assert_eq!(
            next_retry(3, first, first, 1.0, 0.0),
            Some(first + Duration::minutes(2))
        );
        assert_eq!(
            next_retry(7, first, first, 1.0, 0.0),
            Some(first + Duration::hours(6))
        );
        assert_eq!(
            next_retry(12, first, first, 1.0, 0.0),
            Some(first + Duration::hours(6))
        );
        assert_eq!(
            next_retry(1, first, first, 1.0, 1.0),
            Some(first + Duration::milliseconds(5500))
        );
        assert_eq!(
            next_retry(1, first, first, 1.0, -1.0),
            Some(first + Duration::milliseconds(4500))
        );
        let late = first + Duration::days(3) - Duration::hours(1);
        assert_eq!(next_retry(15, first, late, 1.0, 0.0), None);
        // The whole schedule: attempts until three days, then given up.
        let mut now = first;
        let mut attempts = 1;
        while let Some(at) = next_retry(attempts, first, now, 1.0, 0.0) {
            now = at;
            attempts += 1;
        }
        assert!(now <= first + Duration::days(3));
        assert!(now > first + Duration::days(3) - Duration::hours(6));
        assert_eq!(attempts, 18);
        // A scale shortens everything alike (tests), never to nothing.
        assert_eq!(
            next_retry(1, first, first, 0.000_001, 0.0),
            Some(first + Duration::milliseconds(1))
        );
        assert_eq!(
            next_retry(1, first, first, 0.001, 0.0),
            Some(first + Duration::milliseconds(5))
        );
    }

    #[test]
    fn endpoint_urls_are_https_unless_allowed() {
        let url = EndpointUrl::parse("https://Hooks.Example.com/in?x=1", false).unwrap();
        assert_eq!(url.host(), &Host::Name("hooks.example.com".into()));
        assert_eq!(url.port(), 443);
        assert_eq!(url.scheme(), Scheme::Https);
        assert_eq!(
            EndpointUrl::parse("http://example.com/", false),
            Err(UrlError::HttpsRequired)
        );
        let url = EndpointUrl::parse("http://127.0.0.1:8080/x", true).unwrap();
        assert_eq!(url.host(), &Host::Ip(ip("127.0.0.1")));
        assert_eq!(url.port(), 8080);
        let url = EndpointUrl::parse("http://[::1]:9/", true).unwrap();
        assert_eq!(url.host(), &Host::Ip(ip("::1")));
        assert_eq!(
            EndpointUrl::parse("ftp://x.com", true),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            EndpointUrl::parse("https://u:p@x.com/", true),
            Err(UrlError::UserInfo)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com/#a", true),
            Err(UrlError::Fragment)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com/a b", true),
            Err(UrlError::Character)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com/é", true),
            Err(UrlError::Character)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com:0/", true),
            Err(UrlError::Port)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com:70000/", true),
            Err(UrlError::Port)
        );
        assert_eq!(
            EndpointUrl::parse("https://x.com:/", true),
            Err(UrlError::Port)
        );
        assert_eq!(EndpointUrl::parse("https:///x", true), Err(UrlError::Host));
        assert_eq!(
            EndpointUrl::parse("https://[::1/", true),
            Err(UrlError::Host)
        );
        assert_eq!(
            EndpointUrl::parse("https://-a.com/", true),
            Err(UrlError::Host)
        );
        let long = format!("https://x.com/{}", "a".repeat(2048));
        assert_eq!(EndpointUrl::parse(&long, true), Err(UrlError::TooLong));
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        let forbidden = [
            ("127.0.0.1", Forbidden::Loopback),
            ("127.255.0.9", Forbidden::Loopback),
            ("0.0.0.0", Forbidden::Unspecified),
            ("10.0.0.1", Forbidden::Private),
            ("172.16.5.4", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("100.64.0.1", Forbidden::SharedAddressSpace),
            ("100.127.255.254", Forbidden::SharedAddressSpace),
            ("169.254.169.254", Forbidden::LinkLocal),
            ("224.0.0.1", Forbidden::Multicast),
            ("239.255.255.250", Forbidden::Multicast),
            ("255.255.255.255", Forbidden::Broadcast),
            ("240.0.0.1", Forbidden::Reserved),
            ("192.0.2.10", Forbidden::Documentation),
            ("198.51.100.7", Forbidden::Documentation),
            ("203.0.113.200", Forbidden::Documentation),
            ("198.18.0.1", Forbidden::Benchmarking),
            ("198.19.255.1", Forbidden::Benchmarking),
            ("::", Forbidden::Unspecified),
            ("::1", Forbidden::Loopback),
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:169.254.169.254", Forbidden::LinkLocal),
            ("::ffff:10.1.2.3", Forbidden::Private),
            ("::10.1.2.3", Forbidden::Private),
            ("::127.0.0.1", Forbidden::Loopback),
            ("64:ff9b::7f00:1", Forbidden::Loopback),
            ("64:ff9b::a9fe:a9fe", Forbidden::LinkLocal),
            ("64:ff9b:1::1", Forbidden::Translation),
            ("2002:7f00:1::", Forbidden::Loopback),
            ("2002:c0a8:101::1", Forbidden::Private),
            ("fc00::1", Forbidden::UniqueLocal),
            ("fd12:3456::1", Forbidden::UniqueLocal),
            ("fe80::1", Forbidden::LinkLocal),
            ("febf::1", Forbidden::LinkLocal),
            ("ff02::1", Forbidden::Multicast),
            ("2001:db8::1", Forbidden::Documentation),
            ("2001::1", Forbidden::Reserved),
            ("2001:2::1", Forbidden::Benchmarking),
            ("100::1", Forbidden::Reserved),
        ];
        for (text, why) in forbidden {
            assert_eq!(classify(ip(text)), Some(why), "{text}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "169.253.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2a00:1450::1",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_operator_may_allow_addresses_and_ranges() {
        let policy = AddressPolicy::new(vec![
            "127.0.0.1".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
            "::1".parse().unwrap(),
        ]);
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::1")), Ok(()));
        assert_eq!(policy.check(ip("10.1.200.3")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.2")), Err(Forbidden::Loopback));
        assert_eq!(policy.check(ip("10.2.0.1")), Err(Forbidden::Private));
        assert_eq!(policy.check(ip("8.8.8.8")), Ok(()));
        assert_eq!(
            AddressPolicy::default().check(ip("127.0.0.1")),
            Err(Forbidden::Loopback)
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
        assert_eq!("[::1]".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }
}
