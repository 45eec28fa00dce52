//! [`RunnerError`]: why a bundle call failed, one variant per answer the HTTP edge
//! gives, with the conversions from the sandbox's, the pool's and the task system's errors.

use std::time::Duration;

use super::pool::PoolError;
use super::sandbox::SandboxError;
use crate::tasks::{FailureKind, TaskError};

/// Why a bundle call failed; each variant maps to one HTTP status at the edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunnerError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The author, bundle, version or export does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The author yanked the version (or every version).
    #[error("{0}")]
    Yanked(String),
    /// The operator does not run this author's bundles.
    #[error("{0}")]
    NotAllowed(String),
    /// The author's PDS or identity could not be reached.
    #[error("{0}")]
    Upstream(String),
    /// The bundle is unusable (manifest, load error, code).
    #[error("{0}")]
    InvalidBundle(String),
    /// A secret could not be opened.
    #[error("{0}")]
    Secret(String),
    /// No sandbox could be had.
    #[error("{0}")]
    Busy(String),
    /// Too many of this bundle's (or author's) tasks are waiting already.
    #[error("{0}")]
    QueueFull(String),
    /// The call took too long.
    #[error("the call took longer than {0:?} and was stopped")]
    Timeout(Duration),
    /// The handler threw.
    #[error("{0}")]
    Handler(String),
    /// The response was too large.
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    /// The bundle's process died.
    #[error("{0}")]
    Crashed(String),
    /// The task system failed.
    #[error("{0}")]
    Unavailable(String),
}

impl RunnerError {
    /// What a caller may be told: the error itself for what the request or the bundle
    /// did (its errors, its crash, its timeout), a fixed text for our own failures and
    /// those of the author's PDS, whose details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Upstream(_) => {
                "the bundle's author's PDS or identity could not be reached; try again later".into()
            }
            Self::Busy(_) => "the runner is busy; try again shortly".into(),
            Self::Unavailable(_) => "the runner cannot run bundles right now".into(),
            other => other.to_string(),
        }
    }

    /// Whose fault it is, for a bundle task that ended with this error.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            Self::InvalidRequest(_)
            | Self::NotAllowed(_)
            | Self::InvalidBundle(_)
            | Self::Secret(_) => FailureKind::Input,
            Self::NotFound(_) | Self::Yanked(_) => FailureKind::NotFound,
            Self::Upstream(_) | Self::Timeout(_) | Self::TooLarge(_) | Self::Crashed(_) => {
                FailureKind::Upstream
            }
            Self::Busy(_) | Self::QueueFull(_) | Self::Unavailable(_) | Self::Handler(_) => {
                FailureKind::Internal
            }
        }
    }

    /// A short name of the kind of failure, for metrics and invocation logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::NotFound(_) => "not_found",
            Self::Yanked(_) => "yanked",
            Self::NotAllowed(_) => "not_allowed",
            Self::Upstream(_) => "upstream",
            Self::InvalidBundle(_) => "invalid_bundle",
            Self::Secret(_) => "secret",
            Self::Busy(_) => "busy",
            Self::QueueFull(_) => "queue_full",
            Self::Timeout(_) => "timeout",
            Self::Handler(_) => "handler_error",
            Self::TooLarge(_) => "too_large",
            Self::Crashed(_) => "crashed",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl From<SandboxError> for RunnerError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Spawn(_) => Self::Unavailable(err.to_string()),
            SandboxError::Load(message) => Self::InvalidBundle(message),
            SandboxError::Timeout(after) => Self::Timeout(after),
            SandboxError::TooLarge(limit) => Self::TooLarge(limit),
            SandboxError::Crashed(_) => Self::Crashed(err.to_string()),
            SandboxError::Handler(message) => Self::Handler(message),
        }
    }
}

impl From<PoolError> for RunnerError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Start(err) => err.into(),
            PoolError::QueueTimeout(_) | PoolError::Closed => Self::Busy(err.to_string()),
        }
    }
}

impl From<TaskError> for RunnerError {
    fn from(err: TaskError) -> Self {
        match err {
            TaskError::InvalidInput(message) => Self::InvalidRequest(message),
            TaskError::NotFound(message) => Self::NotFound(message),
            TaskError::QueueFull(message) => Self::QueueFull(message),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
