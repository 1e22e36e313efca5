//! Who the client is, network-wise: the TCP peer, or — when that peer is a
//! reverse proxy or load balancer the operator trusts (`--trusted-proxies`)
//! — the address that proxy reports in `X-Forwarded-For`.
//!
//! The header is read from the right (the hop nearest to this server)
//! leftwards, skipping trusted proxies: the first address that is not one
//! is the client. Everything left of it was written by the client or by
//! proxies it chose, and is ignored, so a client cannot pick the address
//! its requests are limited and recorded under. Without trusted proxies
//! (the default) the header is never read.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use actix_web::HttpRequest;

/// An address or a CIDR range, e.g. `10.0.0.0/8` or `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = IpAddr::from_str(address)
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length is 0 to {max}"))?,
        };
        Ok(IpRange { network, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpRange>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpRange>) -> Self {
        TrustedProxies(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client's address, given the TCP peer and the request's
    /// `X-Forwarded-For` header values in order.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match IpAddr::from_str(hop.trim()) {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
                // Not an address: nothing to its left can be believed; the
                // nearest hop read so far stands.
                Err(_) => break,
            }
        }
        client
    }

    /// The client's address for this request.
    pub fn client_of(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let values = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        self.client(peer, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn ranges_parse_and_contain() {
        let lan: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(lan.contains(ip("10.200.3.4")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(lan.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let v6: IpRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(
            !all.contains(ip("::1")),
            "an IPv4 range holds no IPv6 address"
        );
        assert_eq!(one.to_string(), "127.0.0.1/32");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "proxy",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("198.51.100.7"), ["203.0.113.1"].into_iter()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            proxies.client(ip("198.51.100.7"), ["203.0.113.1"].into_iter()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        // The client wrote a fake first entry; the edge proxy appended the
        // real address; an inner proxy appended the edge proxy's.
        let header = "1.2.3.4, 203.0.113.1, 10.0.0.5";
        assert_eq!(
            proxies.client(ip("127.0.0.1"), [header].into_iter()),
            ip("203.0.113.1")
        );
        // Several header lines are one list.
        assert_eq!(
            proxies.client(ip("10.0.0.9"), ["1.2.3.4", "203.0.113.2"].into_iter()),
            ip("203.0.113.2")
        );
        // Only proxies in the chain: the farthest one is all we know.
        assert_eq!(
            proxies.client(ip("10.0.0.9"), ["10.0.0.1, 10.0.0.2"].into_iter()),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.0.0.9"), std::iter::empty()),
            ip("10.0.0.9")
        );
        // Garbage stops the walk at the nearest hop read.
        assert_eq!(
            proxies.client(
                ip("10.0.0.9"),
                ["203.0.113.3, unknown, 10.0.0.4"].into_iter()
            ),
            ip("10.0.0.4")
        );
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), ["2001:db8::1"].into_iter()),
            ip("2001:db8::1")
        );
    }
}
