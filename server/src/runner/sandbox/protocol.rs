//! The stdio protocol of `js/harness.js`: one JSON line per call in, `<nonce> <json>`
//! lines out. Lines without this process's nonce are the bundle's own output and are
//! ignored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;

use super::console::Console;
use super::{Reply, SandboxError, State, lock};
use crate::runner::kv::{KvError, KvOp};
use crate::runner::manifest::RawManifest;

#[derive(Deserialize)]
pub(super) struct Wire {
    pub id: Option<u64>,
    pub ok: Option<bool>,
    pub kind: Option<String>,
    pub value: Option<Value>,
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub error: Option<String>,
    pub ready: Option<bool>,
    pub manifest: Option<RawManifest>,
    pub fatal: Option<String>,
    /// A `console` line of this call (0: of none).
    pub log: Option<u64>,
    pub level: Option<String>,
    pub text: Option<String>,
    pub at: Option<i64>,
    /// How many lines of the call the harness did not send.
    pub dropped: Option<usize>,
    /// A `ctx.kv` operation: its number, to answer with, and the operation.
    pub kv: Option<u64>,
    pub op: Option<Value>,
}

impl Wire {
    /// Keeps this `console` line.
    pub fn print_to(self, console: &mut Console) {
        if let (Some(id), Some(dropped)) = (self.log, self.dropped) {
            console.dropped(id, dropped);
        }
        if let (Some(id), Some(text)) = (self.log, self.text) {
            let level = self.level.as_deref().unwrap_or("log");
            console.push(
                id,
                level,
                text,
                self.at.unwrap_or_else(crate::tasks::now_ms),
            );
        }
    }
}

/// One call, as the harness reads it (borrowed: the arguments are not copied).
#[derive(Serialize)]
pub(super) struct CallLine<'a> {
    pub id: u64,
    pub export: &'a str,
    pub args: &'a Value,
    pub ctx: &'a Value,
}

pub(super) type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Reply, SandboxError>>>>>;

/// Reads a line of at most `limit` bytes; `Ok(None)` at end of stream.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<String>, SandboxError> {
    let mut line = Vec::new();
    loop {
        let buffer = reader
            .fill_buf()
            .await
            .map_err(|err| SandboxError::Crashed(err.to_string()))?;
        if buffer.is_empty() {
            return Ok(if line.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&line).into_owned())
            });
        }
        let (chunk, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..end], Some(end + 1)),
            None => (buffer, None),
        };
        if line.len() + chunk.len() > limit {
            return Err(SandboxError::TooLarge(limit));
        }
        line.extend_from_slice(chunk);
        let consumed = done.unwrap_or(buffer.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

pub(super) async fn read_replies<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    prefix: String,
    limit: usize,
    state: std::sync::Weak<State>,
    max_bytes: usize,
) {
    let reason = loop {
        match read_line(&mut reader, limit).await {
            Ok(Some(line)) => {
                let Some(json) = line.strip_prefix(&prefix) else {
                    continue; // bundle output, not a reply
                };
                let Ok(wire) = serde_json::from_str::<Wire>(json) else {
                    continue;
                };
                if wire.log.is_some() {
                    let Some(state) = state.upgrade() else { return };
                    wire.print_to(&mut lock(&state.console));
                    continue;
                }
                if let Some(request) = wire.kv {
                    let Some(state) = state.upgrade() else { return };
                    serve_kv(state, request, wire.op);
                    continue;
                }
                if let Some(fatal) = wire.fatal {
                    break SandboxError::Crashed(fatal);
                }
                let Some(id) = wire.id else { continue };
                let reply = decode(wire);
                let Some(state) = state.upgrade() else { return };
                if let Some(waiter) = lock(&state.pending).remove(&id) {
                    let _ = waiter.send(reply);
                }
            }
            Ok(None) => break SandboxError::Crashed("the process exited".into()),
            Err(SandboxError::TooLarge(_)) => break SandboxError::TooLarge(max_bytes),
            Err(err) => break err,
        }
    };
    if let Some(state) = state.upgrade() {
        state.kill(&reason);
    }
}

pub(super) fn decode(wire: Wire) -> Result<Reply, SandboxError> {
    if wire.ok != Some(true) {
        return Err(SandboxError::Handler(
            wire.error.unwrap_or_else(|| "the handler failed".into()),
        ));
    }
    match wire.kind.as_deref() {
        Some("json") => Ok(Reply::Json(wire.value.unwrap_or(Value::Null))),
        Some("response") => {
            let body = base64::engine::general_purpose::STANDARD
                .decode(wire.body.unwrap_or_default())
                .map_err(|err| SandboxError::Handler(format!("invalid response body: {err}")))?;
            Ok(Reply::Http {
                status: wire.status.unwrap_or(200),
                headers: wire.headers,
                body,
            })
        }
        _ => Err(SandboxError::Handler("unknown reply".into())),
    }
}

/// Answers the bundle's `ctx.kv` operation number `request` on its stdin, from its own
/// store (the one its sandbox was started with), a bounded number at a time.
fn serve_kv(state: Arc<State>, request: u64, op: Option<Value>) {
    let Ok(answering) = state.kv_answers.clone().try_acquire_owned() else {
        return;
    };
    let granted = match &state.kv {
        None => Err(
            "ctx.kv is not available: declare permissions: { kv: true } in the manifest"
                .to_string(),
        ),
        Some((scope, permits)) => permits
            .clone()
            .try_acquire_owned()
            .map(|permit| (scope.clone(), permit))
            .map_err(|_| {
                "too many ctx.kv operations at once: await them before starting more".to_string()
            }),
    };
    tokio::spawn(async move {
        let result = match granted {
            Ok((scope, _permit)) => match op.map(serde_json::from_value::<KvOp>) {
                Some(Ok(op)) => scope.apply(op).await.map_err(|err| {
                    if let KvError::Database(cause) = &err {
                        tracing::warn!(target: "atrun", ?scope, error = %cause, "a ctx.kv operation failed");
                    }
                    err.to_string()
                }),
                Some(Err(err)) => Err(format!("invalid ctx.kv operation: {err}")),
                None => Err("invalid ctx.kv operation".into()),
            },
            Err(message) => Err(message),
        };
        let answer = match result {
            Ok(value) => json!({ "kvReply": request, "ok": true, "value": value }),
            Err(error) => json!({ "kvReply": request, "ok": false, "error": error }),
        };
        let mut line = answer.to_string();
        line.push('\n');
        let _ = state.stdin.lock().await.write_all(line.as_bytes()).await;
        drop(answering);
    });
}
