//! The task endpoints, the contract every task-backed endpoint follows:
//!
//! - `POST /api/tasks` with `{"task": name, "input": {...}}` submits a public task;
//! - `GET /api/tasks/{id}` reads one;
//! - both take `?wait=N` (N ≤ 30 seconds) to answer as soon as the task finishes.
//!
//! The answer is the task's `TaskView`: HTTP 202 while pending or running, 200 once
//! complete, and for a failed task an XRPC error (`error: "TaskFailed"`, `message`: the
//! task's public message) carrying the view's other fields, with a status saying whose
//! fault it was: 422 for input that cannot work, 404 for input naming nothing, 502 for an
//! upstream failure, 500 for ours. The pages wait for tasks through `app`'s `Tasks`
//! trait, implemented here for the task system. This is where the task system's own
//! [`Task`] becomes the pages' `TaskView`.

use std::time::Duration;

use app::error::AppError;
use app::tasks::{TaskStatus, TaskView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::XrpcError;
use crate::api::params::wait_param;
use crate::tasks::{FailureKind, Status, Task, TaskError, TaskSystem};

/// Seconds a client is told to wait when a queue is full.
const QUEUE_FULL_RETRY_AFTER_SECS: u32 = 10;

/// The task as the pages and clients see it.
pub fn view(task: Task) -> TaskView {
    TaskView {
        id: task.id,
        status: match task.status {
            Status::Pending => TaskStatus::Pending,
            Status::Running => TaskStatus::Running,
            Status::Complete => TaskStatus::Complete,
            Status::Failed => TaskStatus::Failed,
        },
        result: task.result,
        error: task.error,
        attempts: task.attempts,
        created_at: crate::tasks::rfc3339(task.created_at_ms),
        updated_at: crate::tasks::rfc3339(task.updated_at_ms),
    }
}

/// A task's view with the status code the contract gives it.
pub fn task_response(task: Task) -> Response {
    let failure = task.failure;
    let view = view(task);
    match view.status {
        TaskStatus::Pending | TaskStatus::Running => {
            (StatusCode::ACCEPTED, Json(view)).into_response()
        }
        TaskStatus::Complete => (StatusCode::OK, Json(view)).into_response(),
        TaskStatus::Failed => {
            let status = match failure {
                Some(FailureKind::Input) => StatusCode::UNPROCESSABLE_ENTITY,
                Some(FailureKind::NotFound) => StatusCode::NOT_FOUND,
                Some(FailureKind::Upstream) => StatusCode::BAD_GATEWAY,
                Some(FailureKind::Internal) | None => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut body = serde_json::to_value(&view).unwrap_or_default();
            if let Some(fields) = body.as_object_mut() {
                let reason = view
                    .error
                    .clone()
                    .unwrap_or_else(|| "the task failed".to_string());
                fields.insert("error".into(), "TaskFailed".into());
                fields.insert("message".into(), reason.into());
            }
            (status, Json(body)).into_response()
        }
    }
}

impl From<TaskError> for XrpcError {
    fn from(err: TaskError) -> Self {
        match err {
            TaskError::UnknownTask(name) => XrpcError::new(
                StatusCode::NOT_FOUND,
                "UnknownTask",
                format!("no public task named {name:?}"),
            ),
            TaskError::InvalidInput(message) => XrpcError::invalid_request(message),
            TaskError::NotFound(message) => XrpcError::not_found(message),
            TaskError::QueueFull(message) => {
                XrpcError::new(StatusCode::SERVICE_UNAVAILABLE, "QueueFull", message)
                    .retry_after(QUEUE_FULL_RETRY_AFTER_SECS)
            }
            TaskError::Unavailable(cause) => XrpcError::unavailable("the task system", cause),
            TaskError::Db(err) => XrpcError::unavailable("the task system", err),
        }
    }
}

pub(super) async fn get(
    State(tasks): State<TaskSystem>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    let wait = wait_param(query.as_deref())?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(XrpcError::invalid_request("malformed task id"));
    }
    match tasks.wait(&id, wait).await? {
        Some(task) => Ok(task_response(task)),
        None => Err(XrpcError::not_found(format!("no task {id}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    task: String,
    input: serde_json::Value,
}

pub(super) async fn submit(
    State(tasks): State<TaskSystem>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, XrpcError> {
    let wait = wait_param(query.as_deref())?;
    let body: SubmitBody = serde_json::from_slice(&body).map_err(|err| {
        XrpcError::invalid_request(format!(
            "expected a JSON body {{\"task\": name, \"input\": {{...}}}}: {err}"
        ))
    })?;
    if !tasks.is_public(&body.task) {
        return Err(TaskError::UnknownTask(body.task).into());
    }
    let task = tasks
        .submit_and_wait(&body.task, body.input, None, wait)
        .await?;
    Ok(task_response(task))
}

/// What the pages' server functions call to wait for a task: the task system, seen
/// through `app`'s trait.
#[async_trait::async_trait]
impl app::tasks::ssr::Tasks for TaskSystem {
    async fn wait(&self, id: &str, wait_secs: u32) -> Result<TaskView, AppError> {
        match TaskSystem::wait(self, id, Duration::from_secs(u64::from(wait_secs))).await {
            Ok(Some(task)) => Ok(view(task)),
            Ok(None) => Err(AppError::NotFound),
            Err(err) => {
                tracing::error!(error = %err, "reading a task failed");
                Err(AppError::Unavailable)
            }
        }
    }
}
