//! The one error shape of the HTTP edge: XRPC's `{"error": "Name", "message": "..."}`
//! with a fitting status. Handlers return [`XrpcError`]; internal causes are logged where
//! they happen and never put into a message.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response in the XRPC shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrpcError {
    status: StatusCode,
    error: Cow<'static, str>,
    message: String,
}

#[derive(Serialize)]
struct Body<'a> {
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
        }
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
        let body = Body {
            error: &self.error,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
