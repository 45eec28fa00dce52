//! The only way out of a bundle's sandbox: an HTTP forwarder on loopback.
//!
//! Deno's own `--deny-net` cannot express what "no private networks" means: it takes no
//! IPv6 ranges, and a declared name that resolves to `::ffff:127.0.0.1` or `fd00::1` passes
//! it. So a bundle process is allowed to reach exactly one address, this forwarder, and
//! the harness's `fetch` sends every request through it with a per-process token. The
//! forwarder then decides with the server's own rules:
//!
//! - the target's host and port must be among the bundle's declared `permissions.net`;
//! - the connection goes through [`HttpClient`], whose guard (unless the operator allows
//!   private networks) resolves names itself and connects only to public addresses, so
//!   no spelling of an address and no DNS answer reaches the private network;
//! - redirects are not followed here: the harness follows them through the forwarder, so
//!   every hop is checked again.
//!
//! Bodies stream through in both directions, never held whole in the server (a request
//! body is cut off past [`MAX_REQUEST_BYTES`]), and each process may have at most
//! [`MAX_REQUESTS_PER_PROCESS`] requests in flight, so a bundle cannot make the server
//! hold more than a few chunks per process.
//!
//! Refusals carry an `x-atrun-egress-error` header and a message naming the host, which the
//! harness turns into the error the bundle sees. Raw sockets, WebSockets and `node:http`
//! therefore do not reach the network at all: a bundle speaks HTTP through `fetch`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::atproto::net::{HttpClient, HttpPolicy, NetError};

/// Header carrying a process's token.
const TOKEN_HEADER: &str = "x-atrun-egress";
/// Header carrying the target URL.
const URL_HEADER: &str = "x-atrun-url";
/// Header marking a refusal or failure of the forwarder itself (not of the target).
const ERROR_HEADER: &str = "x-atrun-egress-error";
/// Largest request body a bundle may send.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// Most requests one bundle process may have going through the forwarder at once.
pub const MAX_REQUESTS_PER_PROCESS: usize = 16;

/// Headers that belong to one hop, or that the forwarder sets itself.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// A declared destination: a host, and a port unless any port is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: String,
    port: Option<u16>,
}

impl Rule {
    /// Parses a `permissions.net` entry the way URLs are parsed, so `127.1` and
    /// `127.0.0.1` are the same host.
    fn parse(entry: &str) -> Option<Self> {
        let url = Url::parse(&format!("http://{entry}/")).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let explicit_port = entry
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.chars().all(|c| c.is_ascii_digit()));
        Some(Self {
            host,
            port: if explicit_port {
                url.port_or_known_default()
            } else {
                None
            },
        })
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }
}

/// What one process may reach, and how many of its requests may be in flight.
#[derive(Debug)]
struct Grant {
    rules: Vec<Rule>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

type Grants = Mutex<HashMap<String, Arc<Grant>>>;

/// The forwarder; start one per runner.
#[derive(Debug)]
pub struct Egress {
    addr: SocketAddr,
    grants: Arc<Grants>,
    allow_private_network: bool,
}

/// A process's right to use the forwarder; dropping it revokes the token.
#[derive(Debug)]
pub struct EgressGrant {
    token: String,
    url: String,
    grants: Weak<Grants>,
}

impl EgressGrant {
    /// The forwarder's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token the process sends.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for EgressGrant {
    fn drop(&mut self) {
        if let Some(grants) = self.grants.upgrade() {
            lock(&grants).remove(&self.token);
        }
    }
}

#[derive(Clone)]
struct Forwarder {
    grants: Arc<Grants>,
    http: HttpClient,
}

/// Why a request was not forwarded.
struct Refusal {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        response
            .headers_mut()
            .insert(ERROR_HEADER, HeaderValue::from_static(self.kind));
        response
    }
}

impl Egress {
    /// Binds the forwarder on a free loopback port; it stops when `shutdown` fires.
    /// Requests it forwards may take up to `request_timeout`.
    pub async fn start(
        allow_private_network: bool,
        request_timeout: Duration,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let http = HttpClient::new(HttpPolicy {
            allow_private_network,
            request_timeout,
            connect_timeout: Duration::from_secs(10),
            max_redirects: 0,
            ..HttpPolicy::default()
        })
        .map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let grants: Arc<Grants> = Arc::default();
        let app = axum::Router::new().fallback(forward).with_state(Forwarder {
            grants: grants.clone(),
            http,
        });
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "the bundle egress forwarder stopped");
            }
        });
        Ok(Arc::new(Self {
            addr,
            grants,
            allow_private_network,
        }))
    }

    /// The address bundle processes are allowed to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether forwarded requests may reach private networks.
    pub fn allows_private_network(&self) -> bool {
        self.allow_private_network
    }

    /// A token for a process that may reach `hosts` (its `permissions.net`).
    pub fn grant(&self, hosts: &BTreeSet<String>) -> EgressGrant {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let rules = hosts
            .iter()
            .filter_map(|entry| Rule::parse(entry))
            .collect();
        let grant = Grant {
            rules,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_PER_PROCESS)),
        };
        lock(&self.grants).insert(token.clone(), Arc::new(grant));
        EgressGrant {
            token,
            url: format!("http://{}/", self.addr),
            grants: Arc::downgrade(&self.grants),
        }
    }
}

fn lock(grants: &Grants) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Grant>>> {
    grants
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn forward(State(forwarder): State<Forwarder>, request: Request) -> Response {
    match try_forward(&forwarder, request).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn try_forward(forwarder: &Forwarder, request: Request) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    let grant = header(&parts.headers, TOKEN_HEADER)
        .and_then(|token| lock(&forwarder.grants).get(token).cloned())
        .ok_or(Refusal {
            status: StatusCode::FORBIDDEN,
            kind: "token",
            message: "this process has no network access".into(),
        })?;
    let target = header(&parts.headers, URL_HEADER)
        .and_then(|url| Url::parse(url).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or(Refusal {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid",
            message: "only http: and https: URLs can be fetched".into(),
        })?;
    let host = target.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = target.port_or_known_default().unwrap_or(0);
    if !grant.rules.iter().any(|rule| rule.allows(&host, port)) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            kind: "denied",
            message: format!(
                "Requires net access to \"{host}:{port}\": add \"{host}\" to the bundle's permissions.net"
            ),
        });
    }

    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        kind: "invalid",
        message: format!("request bodies are limited to {MAX_REQUEST_BYTES} bytes"),
    };
    let declared = header(&parts.headers, "content-length").and_then(|n| n.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    // Held until the response body has been passed on (it moves into the stream).
    let permit = grant
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "busy",
            message: format!(
                "a bundle process may have at most {MAX_REQUESTS_PER_PROCESS} requests in flight"
            ),
        })?;
    let mut outbound = forwarder.http.request(parts.method, target.clone());
    for (name, value) in &parts.headers {
        if passes(name) {
            outbound = outbound.header(name, value);
        }
    }
    if let Some(length) = declared {
        outbound = outbound.header(axum::http::header::CONTENT_LENGTH, length);
    }
    let upstream = forwarder
        .http
        .send(outbound.body(limited_body(body)))
        .await
        .map_err(|err| refusal(&host, err))?;

    let mut response = Response::builder().status(upstream.status());
    if let Some(headers) = response.headers_mut() {
        for (name, value) in upstream.headers() {
            if passes(name) {
                headers.append(name, value.clone());
            }
        }
    }
    let body = upstream.bytes_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    response
        .body(Body::from_stream(body))
        .map_err(|err| Refusal {
            status: StatusCode::BAD_GATEWAY,
            kind: "unreachable",
            message: format!("{host} sent a response that cannot be passed on: {err}"),
        })
}

/// A request body streamed on as it arrives, failing past [`MAX_REQUEST_BYTES`].
fn limited_body(body: Body) -> reqwest::Body {
    let mut seen = 0usize;
    reqwest::Body::wrap_stream(body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(axum::BoxError::from)?;
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_REQUEST_BYTES {
            return Err(axum::BoxError::from(format!(
                "request bodies are limited to {MAX_REQUEST_BYTES} bytes"
            )));
        }
        Ok(chunk)
    }))
}

fn passes(name: &HeaderName) -> bool {
    let name = name.as_str();
    !HOP_HEADERS.contains(&name) && !name.starts_with("x-atrun-")
}

fn refusal(host: &str, err: NetError) -> Refusal {
    let (status, kind) = match &err {
        NetError::PrivateAddress { .. } => (StatusCode::FORBIDDEN, "private"),
        NetError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        NetError::InvalidUrl(_) => (StatusCode::BAD_REQUEST, "invalid"),
        NetError::Unreachable { .. } | NetError::TooLarge { .. } => {
            (StatusCode::BAD_GATEWAY, "unreachable")
        }
    };
    let message = match err {
        NetError::PrivateAddress { .. } => format!(
            "refusing to connect to {host}: it is, or resolves only to, a private, loopback or \
             link-local address, which this runner does not let bundles reach"
        ),
        other => other.to_string(),
    };
    Refusal {
        status,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compare_hosts_as_urls_do() {
        let rule = Rule::parse("API.example.com").expect("rule");
        assert!(rule.allows("api.example.com", 443) && rule.allows("api.example.com", 8080));
        let pinned = Rule::parse("example.org:8443").expect("rule");
        assert!(pinned.allows("example.org", 8443) && !pinned.allows("example.org", 443));
        let numeric = Rule::parse("2130706433").expect("rule");
        assert_eq!(numeric.host, "127.0.0.1");
    }
}
