//! Tasks as clients see them: the `TaskView` every task endpoint answers with, and a
//! helper for pages that wait on a task.
//!
//! A task is pending, then running, then complete (with a result) or failed (with an
//! error). Endpoints that start work answer at once with the view; clients wait with
//! `GET /api/tasks/{id}?wait=N`, or from Leptos code with [`await_task`].

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for a worker (or for its next attempt).
    Pending,
    /// A worker holds it.
    Running,
    /// Done; `result` holds the output.
    Complete,
    /// Gave up; `error` says why.
    Failed,
}

impl TaskStatus {
    /// Whether the task will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }
}

/// A task's state, as every task endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// The task's id, for `GET /api/tasks/{id}`.
    pub id: String,
    /// Where it is.
    pub status: TaskStatus,
    /// The output, once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed (or why the last attempt failed, while retrying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// Server side: what the server provides so pages can wait on tasks.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use super::TaskView;
    use crate::error::AppError;

    /// Access to tasks by id.
    #[async_trait::async_trait]
    pub trait Tasks: Send + Sync + 'static {
        /// The task's view, waiting up to `wait_secs` for it to finish.
        async fn wait(&self, id: &str, wait_secs: u32) -> Result<TaskView, AppError>;
    }

    /// The task access the server provided for this request.
    pub fn tasks() -> Result<Arc<dyn Tasks>, AppError> {
        leptos::prelude::use_context::<Arc<dyn Tasks>>().ok_or(AppError::Unavailable)
    }
}

pub use server_fns::get_task;

// A private module, so the server function's generated argument struct stays internal.
mod server_fns {
    use super::TaskView;
    use crate::error::AppError;

    /// The task `id`, waiting up to `wait_secs` (at most [`super::MAX_WAIT_SECS`]) for it to finish.
    #[leptos::server(prefix = "/_app")]
    pub async fn get_task(id: String, wait_secs: u32) -> Result<TaskView, AppError> {
        if wait_secs > super::MAX_WAIT_SECS {
            return crate::error::with_status(Err(AppError::BadRequest(format!(
                "wait is limited to {} seconds",
                super::MAX_WAIT_SECS
            ))));
        }
        crate::error::with_status(async { super::ssr::tasks()?.wait(&id, wait_secs).await }.await)
    }
}

/// The longest a single wait may last, in seconds.
pub const MAX_WAIT_SECS: u32 = 30;

/// Waits until task `id` finishes: its result when complete, its error when failed.
/// Long-polls the server, so it costs one request per 25 seconds of waiting.
pub async fn await_task(id: String) -> Result<serde_json::Value, AppError> {
    loop {
        let view = get_task(id.clone(), 25).await?;
        match view.status {
            TaskStatus::Complete => return Ok(view.result.unwrap_or_default()),
            TaskStatus::Failed => {
                return Err(AppError::TaskFailed(
                    view.error.unwrap_or_else(|| "the task failed".to_string()),
                ));
            }
            TaskStatus::Pending | TaskStatus::Running => {}
        }
    }
}
