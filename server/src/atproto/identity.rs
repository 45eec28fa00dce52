//! Identity: from a handle or DID to a verified DID, handle and PDS.
//!
//! # Resolution order
//!
//! A handle becomes a DID by the first of these that answers:
//! 1. DNS: the TXT record `_atproto.<handle>` holding `did=<did>`;
//! 2. HTTPS: `https://<handle>/.well-known/atproto-did`;
//! 3. `com.atproto.identity.resolveHandle` on `HANDLE_RESOLVER_URL`, if configured.
//!
//! Handles under `.test` (reserved by RFC 6761, never in public DNS) skip 1 and 2: that is
//! how the local test network's handles resolve, through its PDS.
//!
//! A DID becomes a document through `PLC_URL` (`did:plc`) or
//! `https://<host>/.well-known/did.json` (`did:web`). The document names the PDS and
//! claims a handle, which counts only if it resolves back to the same DID: a handle
//! whose DID does not claim it is refused, and a DID whose claimed handle does not point
//! back is shown without one. Results are cached for a TTL; failures are not.
//!
//! Every fetch goes through the SSRF-guarded [`HttpClient`].

use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use moka::future::Cache;
use serde::Deserialize;
use url::Url;

use super::error::AtprotoError;
use super::net::HttpClient;
use super::syntax::{self, AtIdentifier, Did, Handle};
use super::xrpc::{Auth, XrpcClient};

/// Where identities are looked up.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// The PLC directory (`PLC_URL`).
    pub plc_url: Url,
    /// A service answering `com.atproto.identity.resolveHandle` (`HANDLE_RESOLVER_URL`).
    pub handle_resolver_url: Option<Url>,
    /// How long successful lookups are reused.
    pub cache_ttl: Duration,
    /// Whether DNS TXT lookups are tried.
    pub dns: bool,
}

/// A DID document: the parts the AT Protocol uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// The DID this document describes.
    pub id: String,
    /// `at://<handle>` entries.
    #[serde(default)]
    pub also_known_as: Vec<String>,
    /// Service endpoints, among them the PDS.
    #[serde(default)]
    pub service: Vec<DidService>,
    /// Public keys, among them the repo signing key (`#atproto`).
    #[serde(default)]
    pub verification_method: Vec<VerificationMethod>,
}

/// A public key of a DID document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `did:…#atproto` (or `#atproto`) for the repo signing key.
    pub id: String,
    /// `Multikey`, or a legacy type such as `EcdsaSecp256k1VerificationKey2019`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The key as a Multikey (`z…`).
    #[serde(default)]
    pub public_key_multibase: Option<String>,
}

/// A service entry of a DID document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidService {
    /// `#atproto_pds` for the PDS.
    pub id: String,
    /// `AtprotoPersonalDataServer` for the PDS.
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL (a string for the PDS entry).
    pub service_endpoint: serde_json::Value,
}

impl DidDocument {
    /// The repo signing key (`#atproto`).
    pub fn signing_key(&self) -> Option<&VerificationMethod> {
        self.verification_method
            .iter()
            .find(|method| method.id.ends_with("#atproto"))
    }

    /// The PDS URL, if the document names a valid one.
    pub fn pds_endpoint(&self) -> Option<Url> {
        self.service
            .iter()
            .find(|s| s.id.ends_with("#atproto_pds") && s.kind == "AtprotoPersonalDataServer")
            .and_then(|s| s.service_endpoint.as_str())
            .and_then(|endpoint| Url::parse(endpoint).ok())
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
    }

    /// The handle the document claims (unverified).
    pub fn claimed_handle(&self) -> Option<Handle> {
        self.also_known_as
            .iter()
            .filter_map(|aka| aka.strip_prefix("at://"))
            .find_map(|handle| syntax::handle(handle).ok())
    }

    fn claims(&self, handle: &Handle) -> bool {
        self.also_known_as
            .iter()
            .filter_map(|aka| aka.strip_prefix("at://"))
            .any(|claimed| claimed.eq_ignore_ascii_case(handle.as_str()))
    }
}

/// A resolved account.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The DID.
    pub did: Did,
    /// The handle, when it is verified in both directions.
    pub handle: Option<Handle>,
    /// The PDS hosting the account.
    pub pds: Url,
}

/// Resolves handles and DIDs, with a cache.
pub struct IdentityResolver {
    http: HttpClient,
    options: IdentityOptions,
    dns: Option<TokioResolver>,
    handles: Cache<String, Did>,
    documents: Cache<String, Arc<DidDocument>>,
    /// DIDs whose documents were refetched on request recently ([`Self::refresh`]).
    refreshed: Cache<String, ()>,
}

/// Least time between two refetches of one DID's document asked for by
/// [`IdentityResolver::refresh`].
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Largest DID document or well-known answer accepted.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

impl IdentityResolver {
    /// A resolver fetching through `http`.
    pub fn new(http: HttpClient, options: IdentityOptions) -> Self {
        let dns = options.dns.then(system_dns).flatten();
        Self {
            http,
            dns,
            handles: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(options.cache_ttl)
                .build(),
            documents: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(options.cache_ttl)
                .build(),
            refreshed: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFRESH_INTERVAL)
                .build(),
            options,
        }
    }

    /// Resolves `actor` (a handle or a DID, as a user typed it).
    pub async fn resolve_actor(&self, actor: &str) -> Result<Identity, AtprotoError> {
        self.resolve(&syntax::actor(actor)?).await
    }

    /// Resolves a parsed handle or DID to a verified identity.
    pub async fn resolve(&self, actor: &AtIdentifier) -> Result<Identity, AtprotoError> {
        match actor {
            AtIdentifier::Handle(handle) => {
                let did = self.resolve_handle(handle).await?;
                let document = self.resolve_did(&did).await?;
                if !document.claims(handle) {
                    return Err(AtprotoError::HandleMismatch {
                        handle: handle.to_string(),
                        did: did.to_string(),
                    });
                }
                let pds = document
                    .pds_endpoint()
                    .ok_or_else(|| AtprotoError::NoPds(did.to_string()))?;
                Ok(Identity {
                    did,
                    handle: Some(handle.clone()),
                    pds,
                })
            }
            AtIdentifier::Did(did) => {
                let document = self.resolve_did(did).await?;
                let pds = document
                    .pds_endpoint()
                    .ok_or_else(|| AtprotoError::NoPds(did.to_string()))?;
                let handle = match document.claimed_handle() {
                    Some(claimed) => match self.resolve_handle(&claimed).await {
                        Ok(back) if &back == did => Some(claimed),
                        Ok(_) | Err(_) => {
                            tracing::debug!(%did, handle = %claimed, "claimed handle does not resolve back");
                            None
                        }
                    },
                    None => None,
                };
                Ok(Identity {
                    did: did.clone(),
                    handle,
                    pds,
                })
            }
        }
    }

    /// Drops cached lookups for `did` (e.g. after it moved to another PDS).
    pub async fn forget(&self, did: &Did) {
        self.documents.invalidate(did.as_str()).await;
    }

    /// Drops `did`'s cached document so the next lookup fetches it again, unless that
    /// was done in the last [`REFRESH_INTERVAL`]: returns whether it was dropped. For
    /// callers acting on what anyone sends (a token signed with a key the cached
    /// document lacks), so a stream of forgeries costs one fetch per DID and interval.
    pub async fn refresh(&self, did: &Did) -> bool {
        let entry = self.refreshed.entry(did.to_string()).or_insert(()).await;
        if entry.is_fresh() {
            self.forget(did).await;
        }
        entry.is_fresh()
    }

    /// A handle's DID, by the order in the module docs.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, AtprotoError> {
        if let Some(did) = self.handles.get(handle.as_str()).await {
            return Ok(did);
        }
        let did = self.lookup_handle(handle).await?;
        self.handles.insert(handle.to_string(), did.clone()).await;
        Ok(did)
    }

    async fn lookup_handle(&self, handle: &Handle) -> Result<Did, AtprotoError> {
        let reserved = handle.as_str().ends_with(".test");
        if !reserved {
            if let Some(did) = self.lookup_dns(handle).await {
                return Ok(did);
            }
            if let Some(did) = self.lookup_well_known(handle).await {
                return Ok(did);
            }
        }
        if let Some(service) = &self.options.handle_resolver_url {
            #[derive(Deserialize)]
            struct Output {
                did: String,
            }
            let xrpc = XrpcClient::new(self.http.clone(), service.clone());
            let result: Result<Output, _> = xrpc
                .query(
                    "com.atproto.identity.resolveHandle",
                    &[("handle", handle.as_str())],
                    Auth::None,
                )
                .await;
            match result {
                Ok(output) => return syntax::did(&output.did),
                Err(AtprotoError::Xrpc { status: 400, .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Err(AtprotoError::HandleNotFound(handle.to_string()))
    }

    async fn lookup_dns(&self, handle: &Handle) -> Option<Did> {
        let dns = self.dns.as_ref()?;
        let lookup = dns
            .txt_lookup(format!("_atproto.{}.", handle.as_str()))
            .await
            .ok()?;
        let mut dids: Vec<Did> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                hickory_resolver::proto::rr::RData::TXT(txt) => Some(txt),
                _ => None,
            })
            .filter_map(|txt| {
                let text: String = txt
                    .txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part))
                    .collect();
                text.strip_prefix("did=")
                    .and_then(|did| syntax::did(did.trim()).ok())
            })
            .collect();
        dids.dedup();
        // More than one different DID is ambiguous: the spec says to fail.
        (dids.len() == 1).then(|| dids.remove(0))
    }

    async fn lookup_well_known(&self, handle: &Handle) -> Option<Did> {
        let url = Url::parse(&format!(
            "https://{}/.well-known/atproto-did",
            handle.as_str()
        ))
        .ok()?;
        let response = self
            .http
            .send(self.http.request(reqwest::Method::GET, url))
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = self.http.read_body(response, Some(2048)).await.ok()?;
        syntax::did(std::str::from_utf8(&body).ok()?.trim()).ok()
    }

    /// A DID's document.
    pub async fn resolve_did(&self, did: &Did) -> Result<Arc<DidDocument>, AtprotoError> {
        if let Some(document) = self.documents.get(did.as_str()).await {
            return Ok(document);
        }
        let url = self.document_url(did)?;
        let response = self
            .http
            .send(self.http.request(reqwest::Method::GET, url))
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(AtprotoError::DidNotFound(did.to_string()));
        }
        let body = self
            .http
            .read_body(response, Some(MAX_DOCUMENT_BYTES))
            .await?;
        if !status.is_success() {
            return Err(AtprotoError::InvalidResponse {
                method: format!("DID document of {did}"),
                reason: format!("HTTP {status}"),
            });
        }
        let document: DidDocument =
            serde_json::from_slice(&body).map_err(|err| AtprotoError::InvalidResponse {
                method: format!("DID document of {did}"),
                reason: err.to_string(),
            })?;
        if document.id != did.as_str() {
            return Err(AtprotoError::InvalidResponse {
                method: format!("DID document of {did}"),
                reason: format!("it describes {}", document.id),
            });
        }
        let document = Arc::new(document);
        self.documents
            .insert(did.to_string(), document.clone())
            .await;
        Ok(document)
    }

    fn document_url(&self, did: &Did) -> Result<Url, AtprotoError> {
        let value = did.as_str();
        if value.starts_with("did:plc:") {
            let mut url = self.options.plc_url.clone();
            url.set_path(&format!("/{value}"));
            return Ok(url);
        }
        if let Some(host) = value.strip_prefix("did:web:") {
            // Only host-level did:web is valid in atproto; a port is percent-encoded.
            let host = host.replace("%3A", ":").replace("%3a", ":");
            if host.contains(':') && !host.starts_with("localhost:") || host.contains('/') {
                return Err(AtprotoError::UnsupportedDidMethod(value.to_string()));
            }
            let scheme = if host == "localhost" || host.starts_with("localhost:") {
                "http"
            } else {
                "https"
            };
            return Url::parse(&format!("{scheme}://{host}/.well-known/did.json"))
                .map_err(|_| AtprotoError::UnsupportedDidMethod(value.to_string()));
        }
        Err(AtprotoError::UnsupportedDidMethod(value.to_string()))
    }
}

fn system_dns() -> Option<TokioResolver> {
    match TokioResolver::builder_tokio() {
        Ok(mut builder) => {
            let options = builder.options_mut();
            options.timeout = Duration::from_secs(3);
            options.attempts = 1;
            match builder.build() {
                Ok(resolver) => Some(resolver),
                Err(err) => {
                    tracing::warn!(error = %err, "the system DNS resolver could not be built; handle lookups skip DNS");
                    None
                }
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "no system DNS configuration; handle lookups skip DNS");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(json: serde_json::Value) -> DidDocument {
        serde_json::from_value(json).expect("document")
    }

    #[tokio::test]
    async fn a_document_is_refetched_on_request_at_most_once_an_interval() {
        let http = HttpClient::new(crate::atproto::net::HttpPolicy::default()).expect("client");
        let resolver = IdentityResolver::new(
            http,
            IdentityOptions {
                plc_url: Url::parse("http://127.0.0.1:9").expect("url"),
                handle_resolver_url: None,
                cache_ttl: Duration::from_secs(60),
                dns: false,
            },
        );
        let did = syntax::did("did:plc:forger").expect("did");
        assert!(
            resolver.refresh(&did).await,
            "the first bad signature refetches"
        );
        for _ in 0..10 {
            assert!(
                !resolver.refresh(&did).await,
                "later ones within the interval do not"
            );
        }
        let other = syntax::did("did:plc:someoneelse").expect("did");
        assert!(resolver.refresh(&other).await);
    }

    #[test]
    fn the_pds_and_handle_come_from_the_document() {
        let doc = document(serde_json::json!({
            "id": "did:plc:abc",
            "alsoKnownAs": ["at://Alice.Example.com"],
            "service": [
                {"id": "#other", "type": "Other", "serviceEndpoint": "https://other.example"},
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example"}
            ]
        }));
        assert_eq!(
            doc.pds_endpoint().expect("pds").as_str(),
            "https://pds.example/"
        );
        assert_eq!(
            doc.claimed_handle().expect("handle").as_str(),
            "alice.example.com"
        );
        assert!(doc.claims(&syntax::handle("alice.example.com").expect("handle")));
    }

    #[test]
    fn a_document_without_a_usable_pds_names_none() {
        let doc = document(serde_json::json!({
            "id": "did:plc:abc",
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "ftp://x"}]
        }));
        assert!(doc.pds_endpoint().is_none());
    }

    #[test]
    fn did_web_urls_are_host_level() {
        let http = HttpClient::new(Default::default()).expect("client");
        let options = IdentityOptions {
            plc_url: Url::parse("https://plc.directory").expect("url"),
            handle_resolver_url: None,
            cache_ttl: Duration::from_secs(60),
            dns: false,
        };
        let resolver = IdentityResolver::new(http, options);
        let url = |did: &str| resolver.document_url(&syntax::did(did).expect("did"));
        assert_eq!(
            url("did:web:example.com").expect("url").as_str(),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:localhost%3A8080").expect("url").as_str(),
            "http://localhost:8080/.well-known/did.json"
        );
        assert_eq!(
            url("did:plc:abc123").expect("url").as_str(),
            "https://plc.directory/did:plc:abc123"
        );
        assert!(matches!(
            url("did:key:z6Mk"),
            Err(AtprotoError::UnsupportedDidMethod(_))
        ));
    }
}
