//! A request id on every request: the `x-request-id` the client or proxy sent, when it
//! is a plain token, or a new time-ordered UUID; echoed on the response and recorded in
//! the request's log span, so one line in a proxy's log leads to ours.
//!
//! tower-http sets and propagates the header; what we add is the choice of id and the
//! rule for foreign ones: anything longer than [`MAX_ID_CHARS`] or outside
//! `[A-Za-z0-9._:-]` is replaced, so a client cannot write arbitrary text into our logs.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header, as proxies and tracing systems name it.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest foreign id kept.
const MAX_ID_CHARS: usize = 128;

/// Makes ids for requests that come without a usable one: UUIDv7, so they sort by time.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewId;

impl MakeRequestId for NewId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Drops an incoming id that is not a plain token, so [`NewId`] replaces it.
pub async fn screen(mut request: Request, next: Next) -> Response {
    if request
        .headers()
        .get(&HEADER)
        .is_some_and(|value| !acceptable(value.as_bytes()))
    {
        request.headers_mut().remove(&HEADER);
    }
    next.run(request).await
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tokens_are_kept() {
        assert!(acceptable(b"0193b1c2-7c5e-7abc-9def-0123456789ab"));
        assert!(acceptable(b"proxy:abc.123_x"));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"two words"));
        assert!(!acceptable(b"x\"y"));
        assert!(!acceptable(&[b'a'; MAX_ID_CHARS + 1]));
    }
}
