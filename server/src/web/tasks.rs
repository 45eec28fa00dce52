//! The task endpoints, the contract every task-backed endpoint follows:
//!
//! - `POST /api/tasks` with `{"task": name, "input": {...}}` submits a public task;
//! - `GET /api/tasks/{id}` reads one;
//! - both take `?wait=N` (N ≤ 30 seconds) to answer as soon as the task finishes.
//!
//! The answer is the task's `TaskView`: HTTP 202 while pending or running, 200 once
//! complete, and for a failed task an XRPC error (`error: "TaskFailed"`, `message`: why)
//! carrying the view's other fields. `GET /metrics` exposes the task counters for
//! Prometheus.

use std::time::Duration;

use app::tasks::{MAX_WAIT_SECS, TaskStatus, TaskView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::XrpcError;
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
    let Some(query) = query else {
        return Ok(Duration::ZERO);
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "wait" {
            let seconds: u32 = value.parse().map_err(|_| {
                XrpcError::invalid_request(format!(
                    "wait must be a whole number of seconds, got {value:?}"
                ))
            })?;
            if seconds > MAX_WAIT_SECS {
                return Err(XrpcError::invalid_request(format!(
                    "wait is limited to {MAX_WAIT_SECS} seconds"
                )));
            }
            return Ok(Duration::from_secs(u64::from(seconds)));
        }
    }
    Ok(Duration::ZERO)
}

pub(super) fn task_error(err: TaskError) -> XrpcError {
    match err {
        TaskError::UnknownTask(name) => XrpcError::new(
            StatusCode::NOT_FOUND,
            "UnknownTask",
            format!("no public task named {name:?}"),
        ),
        TaskError::InvalidInput(message) => XrpcError::invalid_request(message),
        TaskError::Db(err) => {
            tracing::error!(error = %err, "task store failed");
            XrpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "tasks are unavailable right now",
            )
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
    match tasks.wait(&id, wait).await.map_err(task_error)? {
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
        return Err(task_error(TaskError::UnknownTask(body.task)));
    }
    let submitted = tasks
        .submit(&body.task, body.input)
        .await
        .map_err(task_error)?;
    let view = if wait.is_zero() || submitted.view.status.is_terminal() {
        submitted.view
    } else {
        tasks
            .wait(&submitted.view.id, wait)
            .await
            .map_err(task_error)?
            .unwrap_or(submitted.view)
    };
    Ok(task_response(view))
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
