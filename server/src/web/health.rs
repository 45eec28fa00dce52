//! `GET /healthz`: 200 when the database answers, 503 when it does not, so a load
//! balancer or orchestrator stops sending traffic to an instance that cannot serve it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::XrpcError;
use crate::db::Db;

/// How long the database gets to answer a health check.
const DB_PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz(State(db): State<Db>) -> Result<Json<Value>, XrpcError> {
    match db.ping(DB_PING_TIMEOUT).await {
        Ok(()) => Ok(Json(json!({ "status": "ok" }))),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unavailable");
            Err(XrpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DatabaseUnavailable",
                "the database did not answer",
            ))
        }
    }
}
