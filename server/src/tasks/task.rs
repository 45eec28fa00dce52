//! A task as the task system reports it: [`Task`], its [`Status`], and for a failed one
//! the [`FailureKind`] that tells the HTTP edge which status to answer with.
//!
//! These are the task system's own types. The pages' `app::tasks::TaskView` is what
//! browsers see; the web edge maps one to the other, so the task system never depends on
//! the UI crate.

use serde_json::Value;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for a worker (or for its next attempt).
    Pending,
    /// A worker holds it.
    Running,
    /// Done; the result is kept.
    Complete,
    /// Gave up; the error says why.
    Failed,
}

impl Status {
    /// Whether the task will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    pub(super) fn parse(value: &str) -> Self {
        match value {
            "running" => Self::Running,
            "complete" => Self::Complete,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// What kind of failure ended a task: whose fault, and so which HTTP status it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The input cannot work (a 4xx): nothing on our side or upstream is wrong.
    Input,
    /// What the input names does not exist (a 404).
    NotFound,
    /// An upstream (a PDS, the origin) failed or sent something unusable (a 502).
    Upstream,
    /// Our side failed (a 500): the public message says only that.
    Internal,
}

impl FailureKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::NotFound => "not_found",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }

    pub(super) fn parse(value: &str) -> Self {
        match value {
            "input" => Self::Input,
            "not_found" => Self::NotFound,
            "upstream" => Self::Upstream,
            _ => Self::Internal,
        }
    }
}

/// A task's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its id, for `GET /api/tasks/{id}`.
    pub id: String,
    /// Where it is.
    pub status: Status,
    /// The output, once complete.
    pub result: Option<Value>,
    /// The public message of its (last) failure: never an internal cause.
    pub error: Option<String>,
    /// What kind of failure ended it, once failed.
    pub failure: Option<FailureKind>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it was submitted, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it last changed, in milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}
