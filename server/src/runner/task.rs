//! Bundle tasks: every export a manifest declares a `task` runs as one task kind,
//! [`BUNDLE_TASK`], whose input names the bundle, version and export. The export's
//! concurrency and cache TTL travel with each task as its lane, so any server can claim a
//! pending bundle task, also after a restart, without a definition per export.

use std::sync::Weak;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::manifest::{self, ExportKind};
use super::metrics::CallKind;
use super::sandbox::Reply;
use super::{Call, Runner, RunnerError, VersionSpec};
use crate::atproto::syntax::Did;
use crate::tasks::{TaskDef, TaskFailure};
use semver::Version;

/// The task kind every bundle task runs as.
pub const BUNDLE_TASK: &str = "atrun";

/// What a bundle task runs: an export of one version of a bundle, with its arguments.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct BundleTaskInput {
    pub(super) did: Did,
    pub(super) name: String,
    pub(super) version: Version,
    pub(super) export: String,
    pub(super) args: Value,
}

impl BundleTaskInput {
    /// The lane of this export: its tasks share the export's concurrency.
    pub(super) fn lane(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.did, self.name, self.version, self.export
        )
    }
}

/// The one task kind for every bundle export declared a `task`: its input names
/// the bundle, version and export, and its lane carries the export's concurrency
/// and cache TTL, so pending bundle tasks are claimed after a restart by any server.
pub(super) fn bundle_task(runner: Weak<Runner>, concurrency: u32, per_author: u32) -> TaskDef {
    TaskDef::typed(BUNDLE_TASK, move |input: BundleTaskInput, ctx| {
        let runner = runner.clone();
        async move {
            let runner = runner
                .upgrade()
                .ok_or_else(|| TaskFailure::retry("the runner is shutting down"))?;
            let version = VersionSpec::Exact(input.version.clone());
            let (bundle, manifest) = runner
                .describe(&input.did, &input.name, &version)
                .await
                .map_err(|err| {
                    let retryable =
                        matches!(err, RunnerError::Upstream(_) | RunnerError::Unavailable(_));
                    failure(err, retryable)
                })?;
            let Some(ExportKind::Task { timeout, .. }) = manifest.exports.get(&input.export)
            else {
                return Err(TaskFailure::fatal(format!(
                    "{} {} has no task named {}",
                    bundle.name, bundle.version, input.export
                )));
            };
            let call_ctx = json!({
                "bundle": { "did": bundle.did, "name": bundle.name, "version": bundle.version.to_string() },
                "export": input.export,
                "taskId": ctx.id,
            });
            let call = Call {
                kind: CallKind::Task,
                bundle: &bundle,
                manifest: &manifest,
                export: &input.export,
                args: &input.args,
                ctx: &call_ctx,
                timeout: *timeout,
            };
            match runner.run(call).await {
                Ok(Reply::Json(value)) => Ok(value),
                Ok(Reply::Http { status, headers, body }) => Ok(json!({
                    "status": status,
                    "headers": headers,
                    "body": base64::engine::general_purpose::STANDARD.encode(body),
                })),
                Err(
                    err @ (RunnerError::InvalidBundle(_)
                    | RunnerError::Secret(_)
                    | RunnerError::NotAllowed(_)),
                ) => Err(failure(err, false)),
                Err(err) => Err(failure(err, true)),
            }
        }
    })
    .concurrency(concurrency)
    .per_owner(per_author)
    .timeout(manifest::MAX_TASK_TIMEOUT + Duration::from_secs(5))
    .max_attempts(2)
}

/// A bundle task's failure: the public message the edge would give for `err`, its kind,
/// and `err` itself as the internal cause when that says more.
fn failure(err: RunnerError, retryable: bool) -> TaskFailure {
    let public = err.public_message();
    let base = if retryable {
        TaskFailure::retry(public.clone())
    } else {
        TaskFailure::fatal(public.clone())
    }
    .kind(err.failure_kind());
    if public == err.to_string() {
        base
    } else {
        base.because(err)
    }
}
