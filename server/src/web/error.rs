//! The edge's side of the one error shape ([`XrpcError`], in `crate::api`): an answer's
//! internal cause is logged here once, with the request's span.
//!
//! [`error_shapes`] holds the line for what handlers never see: a 405, a body over the
//! limit, a path that is not UTF-8 are answered by axum and its extractors in plain text
//! (or not at all). Under `/api/`, `/bundle/` and `/.well-known/` such answers are
//! rewritten into the XRPC shape (a bundle's own responses, marked [`BundleReply`], are
//! left alone); under the server functions' prefix, into the [`AppError`] the browser
//! decodes, with a 4xx for a request the framework could not read.

use app::error::{AppError, SERVER_FN_PREFIX};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::api::XrpcError;
use crate::api::error::Cause;

/// Marks a response as a bundle's own, which [`error_shapes`] passes through untouched.
#[derive(Debug, Clone, Copy)]
pub struct BundleReply;

/// Longest plain-text error body kept as a message.
const MAX_MESSAGE_BYTES: usize = 1024;

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
