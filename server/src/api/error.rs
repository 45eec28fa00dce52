//! The one error shape of our APIs: XRPC's `{"error": "Name", "message": "..."}` with a
//! fitting status. Handlers return [`XrpcError`], converted once from each service's
//! error (`From` impls next to the service's routes). An internal cause rides along with
//! [`XrpcError::because`]: never sent, logged once by the edge's `error_shapes`
//! middleware with the request's span, so mapping functions do not log and no 5xx
//! message carries internals.

use std::borrow::Cow;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response in the XRPC shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrpcError {
    status: StatusCode,
    error: Cow<'static, str>,
    message: String,
    cause: Option<String>,
    retry_after_secs: Option<u32>,
}

/// The internal cause of an error answer, for the edge to log.
#[derive(Debug, Clone)]
pub struct Cause(pub String);

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
