//! The error type server functions return, and that crosses the network to the browser.
//!
//! Variants are what a page needs to decide what to show; internal causes (SQL errors,
//! upstream failures) are logged on the server and never sent to the client.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a page can show to a viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The request itself was wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// What was asked for does not exist.
    #[error("not found")]
    NotFound,
    /// What was asked for was here and was removed (a takedown, an inactive account).
    #[error("this is no longer available")]
    Gone,
    /// A service behind the page (database, upstream) failed; details are in the server log.
    #[error("this part of Streamhut is unavailable right now; please try again shortly")]
    Unavailable,
    /// A background task gave up; the message says why.
    #[error("{0}")]
    TaskFailed(String),
    /// The call to the server itself failed (network, encoding).
    #[error("could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status this error maps to when a page is rendered on the server.
    pub fn status_code(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::NotFound => 404,
            AppError::Gone => 410,
            AppError::TaskFailed(_) => 500,
            AppError::Unavailable | AppError::Transport(_) => 503,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

/// Where server functions live (`#[server(prefix = "/_app")]` on each): `/api/` is the
/// XRPC API, whose errors have another shape.
pub const SERVER_FN_PREFIX: &str = "/_app";

/// `result`, with the server function's HTTP response carrying the error's status (a
/// client mistake is a 4xx, not the framework's default 500).
pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(err) = &result {
        set_response_status(err.status_code());
    }
    result
}

/// During server rendering, make the HTTP response carry `status`; in the browser, nothing.
pub fn set_response_status(status: u16) {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        if let (Some(response), Ok(code)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(status),
        ) {
            response.set_status(code);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}
