//! The client address of a request (docs/design.md §12).
//!
//! Without `ATLASGATE_TRUSTED_PROXIES` it is the TCP peer, and forwarding
//! headers are ignored. When the peer is a trusted proxy, `X-Forwarded-For`
//! is read from the right: each proxy appends the address it received the
//! request from, so the right-most address that is *not* a trusted proxy is
//! the first one no trusted party vouches for beyond, i.e. the client. Entries
//! to its left were written by the client itself and may be forged.
//!
//! [`request_context`](crate::server) resolves it once per request and puts
//! a [`ClientAddr`] into the request's extensions; rate limits, the request
//! log and handlers (the audit trail) read it from there.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName};

use crate::config::TrustedProxies;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address atlasgate believes the request came from. As an extractor it
/// never fails: a request served without connect info (an in-process
/// `oneshot` in a test) is `0.0.0.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The resolved address of a request, else its TCP peer, else `0.0.0.0`.
    pub fn of(extensions: &Extensions) -> ClientAddr {
        extensions
            .get::<ClientAddr>()
            .copied()
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ci| ClientAddr(ci.0.ip().to_canonical()))
            })
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}

/// The client address of a request that arrived from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    // The nearest hop known to be one of our proxies. When the chain holds
    // something that is not an address, the client is unknowable beyond it,
    // and that proxy is the best answer that nobody could have forged.
    let mut hop = peer;
    let lines: Vec<_> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
    for line in lines.into_iter().rev() {
        let Ok(line) = line.to_str() else {
            return hop;
        };
        for entry in line.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
            match parse_entry(entry) {
                None => return hop,
                Some(ip) if trusted.contains(ip) => hop = ip,
                Some(ip) => return ip,
            }
        }
    }
    hop
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443` (some proxies append the client's port).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(&X_FORWARDED_FOR, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &none), ip("10.0.0.2"));
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(resolve(ip("198.51.100.1"), &h, &t), ip("198.51.100.1"));
    }

    #[test]
    fn the_right_most_untrusted_address_wins() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client forged the left-most entry; proxy 10.0.0.3 received from
        // 203.0.113.9, proxy 10.0.0.2 from 10.0.0.3.
        let h = headers(&["1.1.1.1, 203.0.113.9, 10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
        // The same chain spread over several header lines.
        let h = headers(&["1.1.1.1", "203.0.113.9", "10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        for (entry, want) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            assert_eq!(resolve(ip("10.0.0.2"), &headers(&[entry]), &t), ip(want));
        }
        // A mapped peer address is matched as the IPv4 address it is.
        let h = headers(&["203.0.113.9"]);
        assert_eq!(resolve(ip("::ffff:10.0.0.2"), &h, &t), ip("203.0.113.9"));
    }

    #[test]
    fn garbage_stops_at_the_nearest_trusted_hop() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["203.0.113.9, unknown, 10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &t), ip("10.0.0.3"));
        // Only trusted hops: the farthest one is the client.
        let h = headers(&["10.0.0.4, 10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &t), ip("10.0.0.4"));
        // No header at all: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.0.2"), &HeaderMap::new(), &t),
            ip("10.0.0.2")
        );
    }
}
