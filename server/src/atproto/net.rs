//! Outbound HTTP for everything that talks to the AT Protocol network: one `reqwest`
//! client with timeouts, a `User-Agent`, a response-size limit and the SSRF guard.
//!
//! The guard exists because handles, DIDs and PDS endpoints come from strangers: a DID
//! document can name `http://169.254.169.254/` or a host that resolves to `10.0.0.1`, and
//! fetching it would let anyone probe our private network. So, unless
//! `ALLOW_PRIVATE_NETWORK` is set:
//! - host names resolve through [`GuardedResolver`], which drops private, loopback and
//!   link-local addresses, so the connection can only go to a public address;
//! - IP-literal hosts (which skip name resolution) are checked before each request and
//!   on every redirect;
//! - the address actually connected to is checked again on the response, so nothing that
//!   bypasses the resolver (a proxy, a future reqwest change) slips through silently.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// `User-Agent` of every outbound request.
pub const USER_AGENT: &str = concat!(
    "streamhut/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/streamhut/streamhut)"
);

/// How outbound requests behave.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Whether private, loopback and link-local addresses may be reached.
    pub allow_private_network: bool,
    /// Redirects followed per request (0: redirects are returned to the caller).
    pub max_redirects: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_response_bytes: 16 * 1024 * 1024,
            allow_private_network: false,
            max_redirects: 5,
        }
    }
}

/// Why a request to an address was refused or failed below HTTP.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// The target is a private, loopback or link-local address and the guard is on.
    #[error(
        "refusing to connect to {target}: private, loopback and link-local addresses are not allowed"
    )]
    PrivateAddress {
        /// Host or address that was refused.
        target: String,
    },
    /// The URL cannot be fetched (no host, unsupported scheme).
    #[error("invalid URL {0}")]
    InvalidUrl(String),
    /// No answer in time.
    #[error("{0} did not answer in time")]
    Timeout(String),
    /// Could not connect, or the connection broke.
    #[error("could not reach {host}: {reason}")]
    Unreachable {
        /// Host that could not be reached.
        host: String,
        /// What went wrong, without URLs or credentials.
        reason: String,
    },
    /// The response body is larger than the limit.
    #[error("response from {host} is larger than {limit} bytes")]
    TooLarge {
        /// Host that sent it.
        host: String,
        /// The limit.
        limit: usize,
    },
}

/// An HTTP client that enforces an [`HttpPolicy`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: Arc<HttpPolicy>,
}

impl HttpClient {
    /// A client with `policy`. Fails only when the TLS backend cannot initialise.
    pub fn new(policy: HttpPolicy) -> Result<Self, NetError> {
        let allow_private = policy.allow_private_network;
        let max_redirects = policy.max_redirects;
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if max_redirects == 0 {
                    attempt.stop()
                } else if attempt.previous().len() >= max_redirects {
                    attempt.error("too many redirects")
                } else if !allow_private && !url_host_allowed(attempt.url()) {
                    let target = attempt.url().host_str().unwrap_or_default().to_string();
                    attempt.error(NetError::PrivateAddress { target })
                } else {
                    attempt.follow()
                }
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let inner = builder.build().map_err(|err| NetError::Unreachable {
            host: "(local)".to_string(),
            reason: format!("cannot initialise the HTTP client: {err}"),
        })?;
        Ok(Self {
            inner,
            policy: Arc::new(policy),
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Starts a request; send it with [`HttpClient::send`].
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends `request` after checking its target, and checks the address it connected to.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, NetError> {
        let request = request
            .build()
            .map_err(|err| NetError::InvalidUrl(err.to_string()))?;
        let url = request.url().clone();
        let host = url.host_str().unwrap_or_default().to_string();
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(NetError::InvalidUrl(redact(&url)));
        }
        if !self.policy.allow_private_network && !url_host_allowed(&url) {
            return Err(NetError::PrivateAddress { target: host });
        }
        let response = self
            .inner
            .execute(request)
            .await
            .map_err(|err| classify(&host, err))?;
        if !self.policy.allow_private_network
            && let Some(addr) = response.remote_addr()
            && !is_public(addr.ip())
        {
            return Err(NetError::PrivateAddress {
                target: addr.ip().to_string(),
            });
        }
        Ok(response)
    }

    /// Opens a TCP connection to `url`'s host and port (for protocols reqwest does not
    /// speak, like WebSockets) under the same guard: the name is resolved here and only
    /// allowed addresses are tried, within the connect timeout.
    pub async fn connect_tcp(&self, url: &Url) -> Result<tokio::net::TcpStream, NetError> {
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| NetError::InvalidUrl(redact(url)))?;
        if url.host().is_none() {
            return Err(NetError::InvalidUrl(redact(url)));
        }
        let allow_private = self.policy.allow_private_network;
        if !allow_private && !url_host_allowed(url) {
            return Err(NetError::PrivateAddress { target: host });
        }
        let timeout = self.policy.connect_timeout;
        let connect = async {
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|err| NetError::Unreachable {
                    host: host.clone(),
                    reason: err.to_string(),
                })?
                .collect();
            let addrs = if allow_private {
                resolved
            } else {
                public_only(&host, resolved)?
            };
            let mut last = None;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(err) => last = Some(err),
                }
            }
            Err(NetError::Unreachable {
                host: host.clone(),
                reason: last.map_or_else(|| "no address".to_string(), |err| err.to_string()),
            })
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| NetError::Timeout(host.clone()))?
    }

    /// Reads a response body, refusing more than `limit` bytes (or the policy's limit).
    pub async fn read_body(
        &self,
        response: reqwest::Response,
        limit: Option<usize>,
    ) -> Result<Bytes, NetError> {
        let limit = limit.unwrap_or(self.policy.max_response_bytes);
        let host = response.url().host_str().unwrap_or_default().to_string();
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(NetError::TooLarge { host, limit });
        }
        let mut body = BytesMut::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| classify(&host, err))?;
            if body.len() + chunk.len() > limit {
                return Err(NetError::TooLarge { host, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// Turns a reqwest error into a [`NetError`] that names the host but not the URL, whose
/// query could carry something private.
fn classify(host: &str, err: reqwest::Error) -> NetError {
    use std::error::Error as _;
    if err.is_timeout() {
        return NetError::Timeout(host.to_string());
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(net) = cause.downcast_ref::<NetError>() {
            return net.clone();
        }
        source = cause.source();
    }
    let reason = if err.is_connect() {
        "connection failed"
    } else if err.is_redirect() {
        "too many redirects"
    } else if err.is_body() || err.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    NetError::Unreachable {
        host: host.to_string(),
        reason: reason.to_string(),
    }
}

fn redact(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    )
}

/// Whether `url`'s host may be contacted: names are checked at resolution time, IP
/// literals here.
fn url_host_allowed(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => !is_local_name(name),
        None => false,
    }
}

/// Whether `host` (a name or an IP literal in any spelling the URL standard accepts:
/// `127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`…) names a private, loopback or link-local
/// destination without asking DNS. Names that resolve to such addresses are caught when
/// they are resolved.
pub fn host_is_private(host: &str) -> bool {
    match Host::parse(host) {
        Ok(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Ok(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Ok(Host::Domain(name)) => is_local_name(&name),
        Err(_) => true,
    }
}

/// Names that always mean this machine or its network, whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
}

/// Resolves names with the system resolver and keeps only public addresses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> = if is_local_name(&host) {
                Vec::new()
            } else {
                tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)?
                    .collect()
            };
            let public = public_only(&host, resolved)?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The public addresses among what `host` resolved to, or an error if there are none
/// because they were all private (or the name itself is local).
fn public_only(host: &str, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, NetError> {
    let public: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| is_public(addr.ip()))
        .collect();
    if public.is_empty() {
        return Err(NetError::PrivateAddress {
            target: host.to_string(),
        });
    }
    Ok(public)
}

/// Whether `ip` is a globally routable unicast address (not private, loopback,
/// link-local, shared, documentation, multicast or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, where it embeds one that a host with
/// the right tunnel or gateway would reach: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated but still routed by some stacks), NAT64
/// (`64:ff9b::/96`), 6to4 (`2002:AABB:CCDD::/48`) and Teredo (`2001::/32`, the client
/// address inverted in the last 32 bits). Such an address is only as public as that
/// IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(low(!s[6], !s[7]));
    }
    None
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 local use (RFC 8215)
        || first == 0x0100) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for addr in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(!is_public(ip(addr)), "{addr} must not count as public");
        }
    }

    #[test]
    fn global_addresses_are_public() {
        for addr in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(addr)), "{addr} is public");
        }
    }

    #[test]
    fn names_resolving_only_to_private_addresses_are_refused() {
        let addr = |s: &str| SocketAddr::new(ip(s), 443);
        let err = public_only("intranet.example", vec![addr("10.0.0.7"), addr("fd00::7")])
            .expect_err("only private addresses");
        assert!(matches!(err, NetError::PrivateAddress { .. }));
        let kept = public_only("mixed.example", vec![addr("10.0.0.7"), addr("1.1.1.1")])
            .expect("one public address");
        assert_eq!(
            kept,
            vec![addr("1.1.1.1")],
            "private answers are dropped, never tried"
        );
        assert!(public_only("localhost", Vec::new()).is_err());
    }

    #[test]
    fn ip_literal_urls_are_checked_before_resolution() {
        let allowed = |u: &str| url_host_allowed(&Url::parse(u).expect("url"));
        assert!(!allowed("http://10.1.2.3/xrpc/x"));
        assert!(!allowed("http://[::1]:8080/"));
        assert!(!allowed("http://localhost:2583/"));
        assert!(!allowed("http://metadata.internal/"));
        assert!(allowed("https://bsky.social/"));
        assert!(allowed("https://1.1.1.1/"));
    }

    #[test]
    fn private_hosts_are_recognised_in_every_spelling() {
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "[::ffff:127.0.0.1]",
            "[::ffff:169.254.169.254]",
            "[fd00::1]",
            "[::1]",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "240.0.0.1",
            "localhost",
            "api.localhost",
            "metadata.google.internal",
            "printer.local",
        ] {
            assert!(host_is_private(host), "{host} is private");
        }
        for host in [
            "example.com",
            "1.1.1.1",
            "[2606:4700::1111]",
            "[::ffff:8.8.8.8]",
        ] {
            assert!(!host_is_private(host), "{host} is public");
        }
    }
}
