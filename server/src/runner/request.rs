//! The HTTP request that called an endpoint, as its handler gets it: `ctx.request`, a
//! web `Request` the harness builds from this (method, public URL with path and query,
//! headers, raw body). What is ours stays out: the site's cookies, the caller's
//! `Authorization` (a verified caller reaches the handler as `ctx.caller` instead) and
//! hop-by-hop headers.
//!
//! `ctx.caller` is the DID of whoever sent an AT Protocol service auth token for this
//! runner (audience: its service DID) bound to the endpoint ([`caller_method`]); null
//! without one, or with one that does not verify.

use axum::http::{HeaderMap, Method};
use base64::Engine;
use bytes::Bytes;
use serde::{Serialize, Serializer};

/// The `lxm` a service auth token must name for its issuer to be an endpoint's
/// `ctx.caller`: `dev.atrun.call.{bundle}.{export}`.
pub fn caller_method(bundle: &str, export: &str) -> String {
    format!("dev.atrun.call.{bundle}.{export}")
}

/// Headers a handler never sees.
const WITHHELD: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// An endpoint's request, as sent to the harness.
#[derive(Debug, Clone, Serialize)]
pub struct CallRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The public URL it was sent to, with its query.
    pub url: String,
    /// Its headers, minus ours.
    pub headers: Vec<(String, String)>,
    /// Its body, base64 in the call line (none when empty, and for `GET` and `HEAD`).
    #[serde(serialize_with = "base64_body")]
    pub body: Option<Bytes>,
}

impl CallRequest {
    /// The request `method url` with `headers` and `body`, as a handler may see it.
    pub fn new(method: &Method, url: String, headers: &HeaderMap, body: Bytes) -> Self {
        let headers = headers
            .iter()
            .filter(|(name, _)| !WITHHELD.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let body =
            (!body.is_empty() && !matches!(*method, Method::GET | Method::HEAD)).then_some(body);
        Self {
            method: method.to_string(),
            url,
            headers,
            body,
        }
    }
}

fn base64_body<S: Serializer>(body: &Option<Bytes>, serializer: S) -> Result<S::Ok, S::Error> {
    match body {
        Some(bytes) => {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_headers_stay_out_and_get_has_no_body() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "streamhut_session=secret".parse().expect("value"));
        headers.insert("authorization", "Bearer token".parse().expect("value"));
        headers.insert("x-custom", "kept".parse().expect("value"));
        let request = CallRequest::new(
            &Method::GET,
            "https://s.example/bundle/a/b/latest/c?x=1".into(),
            &headers,
            Bytes::from_static(b"ignored"),
        );
        assert_eq!(
            request.headers,
            [("x-custom".to_string(), "kept".to_string())]
        );
        let json = serde_json::to_value(&request).expect("json");
        assert_eq!(json["body"], serde_json::Value::Null);
        let post = CallRequest::new(
            &Method::POST,
            String::new(),
            &headers,
            Bytes::from_static(b"\0\xff"),
        );
        assert_eq!(serde_json::to_value(&post).expect("json")["body"], "AP8=");
    }
}
