//! The one error shape of the HTTP edge: XRPC's `{"error": "Name", "message": "..."}`
//! with a fitting status. Handlers return [`XrpcError`], converted once from each
//! service's error (`From` impls next to the routes). An internal cause rides along with
//! [`XrpcError::because`]: never sent, logged once by [`error_shapes`] with the request's
//! span, so mapping functions do not log and no 5xx message carries internals.
//!
//! [`error_shapes`] holds the line for what handlers never see: a 405, a body over the
//! limit, a path that is not UTF-8 are answered by axum and its extractors in plain text
//! (or not at all). Under `/api/`, `/bundle/` and `/.well-known/` such answers are
//! rewritten into the XRPC shape (a bundle's own responses, marked [`BundleReply`], are
//! left alone); under the server functions' prefix, into the [`AppError`] the browser
//! decodes, with a 4xx for a request the framework could not read.

use std::borrow::Cow;

use app::error::{AppError, SERVER_FN_PREFIX};
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Marks a response as a bundle's own, which [`error_shapes`] passes through untouched.
#[derive(Debug, Clone, Copy)]
pub struct BundleReply;

/// Longest plain-text error body kept as a message.
const MAX_MESSAGE_BYTES: usize = 1024;

/// An error response in the XRPC shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrpcError {
    status: StatusCode,
    error: Cow<'static, str>,
    message: String,
    cause: Option<String>,
    retry_after_secs: Option<u32>,
}

/// The internal cause of an error answer, for [`error_shapes`] to log.
#[derive(Debug, Clone)]
struct Cause(String);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl XrpcError {
    /// An error with an explicit status, name and message.
    pub fn new(
        status: StatusCode,
        error: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error: error.into(),
            message: message.into(),
            cause: None,
            retry_after_secs: None,
        }
    }

    /// The same error, telling the client to try again after `secs` (`Retry-After`).
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The same error, with `cause` logged (never sent) when it is answered.
    pub fn because(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// 503 `Unavailable`: `what` cannot be used right now, because of `cause`.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            format!("{what} is unavailable right now"),
        )
        .because(cause)
    }

    /// 400 `InvalidRequest`: the input was wrong; `message` says how.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error name.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for XrpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

impl std::error::Error for XrpcError {}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.error,
            message: &self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Cause(cause));
        }
        response
    }
}

/// Rewrites error answers that did not come from our handlers into the shape their
/// clients expect (see the module docs).
pub async fn error_shapes(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/bundle/")
        || path.starts_with("/.well-known/");
    let server_fn =
        path.starts_with(SERVER_FN_PREFIX) && path[SERVER_FN_PREFIX.len()..].starts_with('/');
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    if let Some(Cause(cause)) = response.extensions_mut().remove::<Cause>() {
        // Upstream failures are someone else's outage; the rest are ours.
        if matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
        ) {
            tracing::warn!(status = status.as_u16(), error = %cause, "upstream failure");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %cause, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %cause, "request refused");
        }
    }
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<BundleReply>().is_some()
    {
        return response;
    }
    if server_fn {
        return server_fn_error(response).await;
    }
    if !api || is_json(&response) {
        return response;
    }
    let text = body_text(response).await;
    xrpc_for(status, &method, text).into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// The body of a small error response, as text.
async fn body_text(response: Response) -> String {
    match axum::body::to_bytes(response.into_body(), MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    }
}

/// The XRPC error for a plain-text error answer of `status`.
fn xrpc_for(status: StatusCode, method: &Method, text: String) -> XrpcError {
    let message = |fallback: &str| {
        if text.is_empty() {
            fallback.to_string()
        } else {
            text.clone()
        }
    };
    match status {
        StatusCode::METHOD_NOT_ALLOWED => XrpcError::new(
            status,
            "MethodNotAllowed",
            format!("{method} is not allowed here"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => XrpcError::new(
            status,
            "PayloadTooLarge",
            "the request body is larger than this endpoint accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            XrpcError::new(status, "UnsupportedMediaType", message("send JSON"))
        }
        StatusCode::NOT_FOUND => XrpcError::not_found(message("not found")),
        StatusCode::REQUEST_TIMEOUT => {
            XrpcError::new(status, "RequestTimeout", "the request took too long")
        }
        status if status.is_server_error() => XrpcError::new(
            status,
            "InternalServerError",
            "the request failed; please try again",
        ),
        status => XrpcError::new(status, "InvalidRequest", message("the request is invalid")),
    }
}

/// A server function's error answer: the framework's own failures (arguments it could
/// not read, a body over the limit) become `AppError::BadRequest` with a 4xx; errors our
/// functions return keep the status they set.
async fn server_fn_error(response: Response) -> Response {
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let error = match serde_json::from_slice::<AppError>(&bytes) {
        Ok(AppError::Transport(reason)) => {
            AppError::BadRequest(format!("the request could not be read: {reason}"))
        }
        Ok(error) => error,
        Err(_) if status.is_client_error() => {
            AppError::BadRequest(String::from_utf8_lossy(&bytes).trim().to_string())
        }
        Err(_) => AppError::Unavailable,
    };
    let status = match (&error, status) {
        (AppError::BadRequest(_), status) if status.is_server_error() => StatusCode::BAD_REQUEST,
        (error, StatusCode::INTERNAL_SERVER_ERROR) => {
            StatusCode::from_u16(error.status_code()).unwrap_or(status)
        }
        (_, status) => status,
    };
    let body = serde_json::to_vec(&error).unwrap_or_default();
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_errors_become_xrpc_errors_without_internals() {
        let get = Method::GET;
        assert_eq!(
            xrpc_for(
                StatusCode::METHOD_NOT_ALLOWED,
                &Method::DELETE,
                String::new()
            )
            .error(),
            "MethodNotAllowed"
        );
        let bad = xrpc_for(
            StatusCode::BAD_REQUEST,
            &get,
            "Invalid URL: Invalid UTF-8 in `did`".into(),
        );
        assert_eq!(
            (bad.error(), bad.message()),
            ("InvalidRequest", "Invalid URL: Invalid UTF-8 in `did`")
        );
        let internal = xrpc_for(
            StatusCode::INTERNAL_SERVER_ERROR,
            &get,
            "SQLITE_CORRUPT at row 7".into(),
        );
        assert!(!internal.message().contains("SQLITE"));
    }

    #[tokio::test]
    async fn a_cause_is_logged_by_the_middleware_and_never_sent() {
        let app = axum::Router::new()
            .route(
                "/api/x",
                axum::routing::get(|| async {
                    XrpcError::unavailable("the index", "SQLITE_BUSY at /var/lib/streamhut.db")
                }),
            )
            .layer(axum::middleware::from_fn(error_shapes));
        let response = tower::ServiceExt::oneshot(
            app,
            axum::http::Request::get("/api/x")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.extensions().get::<Cause>().is_none(), "consumed");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("the index is unavailable right now"),
            "{body}"
        );
        assert!(!body.contains("SQLITE"), "{body}");
    }
}
