//! Who is asking: the client's IP address, for rate limits and logs.
//!
//! Behind a reverse proxy every request comes from the proxy, so the client's address
//! is in `Forwarded` (RFC 7239) or `X-Forwarded-For`. Those headers are written by
//! whoever sends the request, so they are believed only when the TCP peer is one of
//! the `TRUSTED_PROXIES`, and only as far back as the chain stays within them: the
//! chain is read from the right (the hop nearest to us) and the first address that is
//! not a trusted proxy is the client. Anything a client could forge lies left of that.
//!
//! A proxy writes one of the two headers and passes the other through as the client
//! sent it, and which one is not known here. So both are read: when both name a client
//! and the two differ, one of them is forged, and the request counts as the proxy's
//! own. A forger then shares one bucket with every other forger, never gets a fresh one,
//! and clients who send neither header are unaffected.
//!
//! Hand-written rather than a crate: the crates that read these headers trust them
//! from any peer or take the leftmost entry, which is the one a client chooses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address as [`resolve`] found it, in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts `nets`; none: forwarding headers are ignored.
    pub fn new(nets: &[IpNet]) -> Self {
        Self(nets.into())
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let forwarded = self.walk(peer, chain(headers, "forwarded", forwarded_for));
        let x_forwarded_for = self.walk(
            peer,
            chain(headers, "x-forwarded-for", |entry| {
                vec![parse_node(entry.trim())]
            }),
        );
        match (forwarded, x_forwarded_for) {
            (Some(a), Some(b)) if a != b => peer,
            (Some(client), _) | (None, Some(client)) => client,
            (None, None) => peer,
        }
    }

    /// The client a forwarding chain (client first) names behind `peer`; `None` without
    /// a chain.
    fn walk(&self, peer: IpAddr, chain: Vec<Option<IpAddr>>) -> Option<IpAddr> {
        if chain.is_empty() {
            return None;
        }
        let mut client = peer;
        for hop in chain.into_iter().rev() {
            // An entry that is not an address ("unknown", an obfuscated name) ends what
            // can be known: the last trusted hop stands for the client.
            let Some(hop) = hop else { break };
            client = hop.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        Some(client)
    }
}

/// The entries of every `name` header line, in order, each read by `entry`. `None`
/// marks an entry that is not an IP address.
fn chain(
    headers: &HeaderMap,
    name: &str,
    entry: impl Fn(&str) -> Vec<Option<IpAddr>>,
) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .flat_map(entry)
        .collect()
}

/// The `for=` node of one `Forwarded` element (RFC 7239), if it has one.
fn forwarded_for(element: &str) -> Vec<Option<IpAddr>> {
    element
        .split(';')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(value.trim().trim_matches('"')))
        })
        .take(1)
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// Middleware: puts the [`ClientIp`] in the request's extensions. Requests without a
/// TCP peer (tests driving the router directly) count as coming from 127.0.0.1.
pub async fn identify(
    State(trusted): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
    let client = trusted.resolve(peer, request.headers());
    request.extensions_mut().insert(ClientIp(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn trusting(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            &nets
                .iter()
                .map(|n| n.parse().expect("net"))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(
            TrustedProxies::default().resolve(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            trusting(&["10.0.0.0/8"]).resolve(ip("198.51.100.7"), &h),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_chain_is_read_from_the_right_up_to_the_first_untrusted_hop() {
        let trusted = trusting(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged the first entry; the proxy appended the real one.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(trusted.resolve(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(trusted.resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_is_parsed_in_every_spelling() {
        let trusted = trusting(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.2"#,
        )]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", r#"for="192.0.2.60:8080""#)]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("192.0.2.60"));
    }

    #[test]
    fn a_header_the_proxy_passed_through_cannot_pick_the_client() {
        let trusted = trusting(&["10.0.0.0/8"]);
        // The proxy appended the client to X-Forwarded-For and passed the client's own
        // Forwarded through: the two disagree, so the proxy itself is the client.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.77"),
        ]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // Agreeing headers (a proxy that writes both) name the client.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_one() {
        let trusted = trusting(&["10.0.0.0/8"]);
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.5")]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("10.0.0.5"));
        let h = headers(&[("x-forwarded-for", "")]);
        assert_eq!(trusted.resolve(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let trusted = trusting(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            trusted.resolve(ip("::ffff:127.0.0.1"), &h),
            ip("203.0.113.9")
        );
    }
}
