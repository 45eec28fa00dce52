//! A thin XRPC client: queries (GET) and procedures (POST) against one service, with
//! XRPC error bodies turned into [`AtprotoError`] variants.
//!
//! PDSes answer "not found" as HTTP 400 with an error name (`RecordNotFound`,
//! `RepoNotFound`, `BlobNotFound`), so errors are mapped by name, not by status.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::AtprotoError;
use super::net::HttpClient;

/// A client for one XRPC service (a PDS, a PLC-adjacent service, an AppView).
#[derive(Debug, Clone)]
pub struct XrpcClient {
    http: HttpClient,
    base: Url,
}

/// How a call authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
}

/// A request body.
pub enum Body<'a, B: Serialize> {
    /// JSON.
    Json(&'a B),
    /// No body (refreshSession).
    Empty,
    /// Raw bytes with their content type (uploadBlob).
    Bytes {
        /// The content.
        bytes: Bytes,
        /// Its MIME type, sent as `Content-Type`.
        content_type: &'a str,
    },
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
}

impl XrpcClient {
    /// A client for the service at `base` (e.g. `https://pds.example`).
    pub fn new(http: HttpClient, base: Url) -> Self {
        Self { http, base }
    }

    /// The service's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn url(&self, method: &str, params: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/xrpc/{method}"));
        url.set_query(None);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        url
    }

    /// A query (GET) answered with JSON.
    pub async fn query<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> Result<T, AtprotoError> {
        let bytes = self.query_bytes(method, params, auth, None).await?;
        decode(method, &bytes)
    }

    /// A query (GET) whose raw body is returned, up to `limit` bytes (or the policy's).
    pub async fn query_bytes(
        &self,
        method: &str,
        params: &[(&str, &str)],
        auth: Auth<'_>,
        limit: Option<usize>,
    ) -> Result<Bytes, AtprotoError> {
        let request = self.http.request(Method::GET, self.url(method, params));
        self.execute(method, request, auth, limit).await
    }

    /// A procedure (POST) answered with JSON.
    pub async fn procedure<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        body: Body<'_, B>,
        auth: Auth<'_>,
    ) -> Result<T, AtprotoError> {
        let request = self.http.request(Method::POST, self.url(method, &[]));
        let request = match body {
            Body::Json(value) => request.json(value),
            Body::Bytes {
                bytes,
                content_type,
            } => request.header(CONTENT_TYPE, content_type).body(bytes),
            Body::Empty => request,
        };
        let bytes = self.execute(method, request, auth, None).await?;
        if bytes.is_empty() {
            // Procedures without output (deleteRecord on some PDS versions) answer nothing.
            return decode(method, b"{}");
        }
        decode(method, &bytes)
    }

    async fn execute(
        &self,
        method: &str,
        mut request: reqwest::RequestBuilder,
        auth: Auth<'_>,
        limit: Option<usize>,
    ) -> Result<Bytes, AtprotoError> {
        if let Auth::Bearer(token) = auth {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self.http.send(request).await?;
        let status = response.status();
        let bytes = self.http.read_body(response, limit).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(error_from(method, status.as_u16(), &bytes))
    }
}

fn decode<T: DeserializeOwned>(method: &str, bytes: &[u8]) -> Result<T, AtprotoError> {
    serde_json::from_slice(bytes).map_err(|err| AtprotoError::InvalidResponse {
        method: method.to_string(),
        reason: err.to_string(),
    })
}

/// Maps an XRPC error response to a typed error.
fn error_from(method: &str, status: u16, body: &[u8]) -> AtprotoError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let error = parsed
        .as_ref()
        .and_then(|b| b.error.clone())
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| "no message".to_string());
    match error.as_str() {
        "RecordNotFound" => AtprotoError::RecordNotFound(message),
        "RepoNotFound" | "RepoDeactivated" | "RepoTakendown" => AtprotoError::RepoNotFound(message),
        "BlobNotFound" => AtprotoError::BlobNotFound(message),
        "AuthenticationRequired"
        | "AuthFactorTokenRequired"
        | "AccountTakedown"
        | "ExpiredToken"
        | "InvalidToken" => AtprotoError::AuthFailed {
            method: method.to_string(),
            message: format!("{error}: {message}"),
        },
        _ if status == 401 => AtprotoError::AuthFailed {
            method: method.to_string(),
            message: format!("{error}: {message}"),
        },
        _ => AtprotoError::Xrpc {
            method: method.to_string(),
            status,
            error,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_errors_are_typed_whatever_the_status() {
        let body = br#"{"error":"RecordNotFound","message":"Could not locate record"}"#;
        assert!(matches!(
            error_from("com.atproto.repo.getRecord", 400, body),
            AtprotoError::RecordNotFound(_)
        ));
        let body = br#"{"error":"InvalidRequest","message":"bad"}"#;
        assert!(matches!(
            error_from("m", 400, body),
            AtprotoError::Xrpc { status: 400, .. }
        ));
        assert!(matches!(
            error_from("m", 401, b"not json"),
            AtprotoError::AuthFailed { .. }
        ));
    }
}
