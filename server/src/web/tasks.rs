//! The task endpoints, the contract every task-backed endpoint follows:
//!
//! - `POST /api/tasks` with `{"task": name, "input": {...}}` submits a public task;
//! - `GET /api/tasks/{id}` reads one;
//! - both take `?wait=N` (N ≤ 30 seconds) to answer as soon as the task finishes.
//!
//! The answer is the task's `TaskView`: HTTP 202 while pending or running, 200 once
//! complete, and for a failed task an XRPC error (`error: "TaskFailed"`, `message`: why)
//! carrying the view's other fields. The pages wait for tasks through `app`'s `Tasks`
//! trait, implemented here for the task system.

use std::time::Duration;

use app::error::AppError;
use app::tasks::{MAX_WAIT_SECS, TaskStatus, TaskView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::XrpcError;
use super::params::number_param;
use crate::tasks::{TaskError, TaskSystem};

/// A task's view with the status code the contract gives it.
pub fn task_response(view: TaskView) -> Response {
    match view.status {
        TaskStatus::Pending | TaskStatus::Running => {
            (StatusCode::ACCEPTED, Json(view)).into_response()
        }
        TaskStatus::Complete => (StatusCode::OK, Json(view)).into_response(),
        TaskStatus::Failed => {
            let mut body = serde_json::to_value(&view).unwrap_or_default();
            if let Some(fields) = body.as_object_mut() {
                let reason = view
                    .error
                    .clone()
                    .unwrap_or_else(|| "the task failed".to_string());
                fields.insert("error".into(), "TaskFailed".into());
                fields.insert("message".into(), reason.into());
            }
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

/// `?wait=N` as a duration (zero when absent).
pub fn wait_param(query: Option<&str>) -> Result<Duration, XrpcError> {
    let seconds = number_param(query, "wait", 0..=MAX_WAIT_SECS, 0)?;
    Ok(Duration::from_secs(u64::from(seconds)))
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
        Some(view) => Ok(task_response(view)),
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
    let submitted = tasks.submit(&body.task, body.input).await?;
    let view = if wait.is_zero() || submitted.view.status.is_terminal() {
        submitted.view
    } else {
        tasks
            .wait(&submitted.view.id, wait)
            .await?
            .unwrap_or(submitted.view)
    };
    Ok(task_response(view))
}

/// What the pages' server functions call to wait for a task: the task system, seen
/// through `app`'s trait.
#[async_trait::async_trait]
impl app::tasks::ssr::Tasks for TaskSystem {
    async fn wait(&self, id: &str, wait_secs: u32) -> Result<TaskView, AppError> {
        match TaskSystem::wait(self, id, Duration::from_secs(u64::from(wait_secs))).await {
            Ok(Some(view)) => Ok(view),
            Ok(None) => Err(AppError::NotFound),
            Err(err) => {
                tracing::error!(error = %err, "reading a task failed");
                Err(AppError::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_bounded() {
        assert_eq!(wait_param(None).expect("none"), Duration::ZERO);
        assert_eq!(
            wait_param(Some("wait=5")).expect("5"),
            Duration::from_secs(5)
        );
        assert_eq!(
            wait_param(Some("x=1&wait=30")).expect("30"),
            Duration::from_secs(30)
        );
        assert!(wait_param(Some("wait=31")).is_err());
        assert!(wait_param(Some("wait=-1")).is_err());
        assert!(wait_param(Some("wait=soon")).is_err());
    }
}
