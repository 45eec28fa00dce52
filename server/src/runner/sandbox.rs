//! One Deno process running one bundle: spawning it with its permissions, the stdio
//! protocol of `js/harness.js`, per-call timeouts and size limits.
//!
//! The bundle runs in the harness's own realm rather than in a Web Worker: a worker
//! costs a second thread hop each way (measured: 98 µs vs 192 µs per round trip), and
//! the isolation it adds protects only the bundle's own process, which the harness
//! already shields by capturing what it uses before bundle code runs.
//!
//! Replies are lines `<nonce> <json>`; the nonce is random per process and never visible
//! to bundle code, so anything else the bundle prints is ignored (and never logged: it
//! could contain secrets). A call that times out, a reply over the size limit, or the
//! process exiting marks the sandbox dead; the pool then replaces it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use super::manifest::RawManifest;

/// How sandboxes are started and bounded.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// The `deno` executable.
    pub deno: PathBuf,
    /// Private `DENO_DIR` (nothing is downloaded into it; Deno wants one).
    pub deno_dir: PathBuf,
    /// V8 heap limit.
    pub heap_mb: u64,
    /// OS limit on the process's data segment (counts ArrayBuffers, which the V8 heap
    /// limit does not). A Deno process with its bundle worker needs about 1.5 GB of it
    /// (mostly address space V8 reserves) just to start.
    pub data_limit_mb: u64,
    /// Longest a call may take.
    pub call_timeout: Duration,
    /// Longest the bundle may take to load.
    pub start_timeout: Duration,
    /// Largest response a call may return.
    pub max_response_bytes: usize,
    /// Whether bundles are refused private network addresses.
    pub deny_private_network: bool,
}

/// Why a sandboxed run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// Deno could not be started.
    #[error("cannot start Deno ({0}); set DENO_PATH")]
    Spawn(String),
    /// The bundle failed while being imported.
    #[error("{0}")]
    Load(String),
    /// The call took longer than the timeout; the process was stopped.
    #[error("the call took longer than {0:?} and was stopped")]
    Timeout(Duration),
    /// The reply was larger than allowed.
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    /// The process died (crash, out of memory, exit).
    #[error("the bundle's process stopped: {0}")]
    Crashed(String),
    /// The handler threw or returned something unusable.
    #[error("{0}")]
    Handler(String),
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// JSON data, sent as a 200 JSON response.
    Json(Value),
    /// A web `Response`.
    Http {
        /// Status code.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct Wire {
    id: Option<u64>,
    ok: Option<bool>,
    kind: Option<String>,
    value: Option<Value>,
    status: Option<u16>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    body: Option<String>,
    error: Option<String>,
    ready: Option<bool>,
    manifest: Option<RawManifest>,
    fatal: Option<String>,
}

/// One call, as the harness reads it (borrowed: the arguments are not copied).
#[derive(Serialize)]
struct CallLine<'a> {
    id: u64,
    export: &'a str,
    args: &'a Value,
    ctx: &'a Value,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Reply, SandboxError>>>>>;

/// A running bundle process.
pub struct Sandbox {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last call.
    last_used_ms: AtomicU64,
    child: Mutex<Option<Child>>,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    dead: Arc<AtomicBool>,
    policy: Arc<SandboxPolicy>,
}

/// The harness script, written once to disk (Deno runs a main module from a file).
pub fn install_harness(dir: &Path) -> std::io::Result<PathBuf> {
    let harness = include_str!("js/harness.js");
    let digest = crate::runner::short_digest(harness.as_bytes());
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("harness-{digest}.js"));
    if !path.exists() {
        let partial = dir.join(format!(".harness-{digest}.{}", std::process::id()));
        std::fs::write(&partial, harness)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

impl Sandbox {
    /// Starts Deno with `args`, sends the bundle, and waits until it has loaded; returns
    /// the sandbox and the manifest the bundle declares. `env` is the whole environment
    /// the process sees.
    pub async fn start(
        policy: Arc<SandboxPolicy>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        code: &str,
        extract_only: bool,
    ) -> Result<(Self, RawManifest), SandboxError> {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--data={}", policy.data_limit_mb * 1024 * 1024))
            .arg("--")
            .arg(&policy.deno)
            .args(&args)
            .env_clear()
            .env("DENO_DIR", &policy.deno_dir)
            .env("NO_COLOR", "1")
            .env("DENO_NO_UPDATE_CHECK", "1")
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|err| SandboxError::Spawn(err.to_string()))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Spawn("no stdio pipes".into()));
        };
        tokio::spawn(discard(stderr));

        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let init = json!({
            "nonce": nonce,
            "mode": if extract_only { "extract" } else { "serve" },
            "code": code,
            "maxBytes": policy.max_response_bytes,
        });
        let mut line = init.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|err| SandboxError::Crashed(format!("could not send the bundle: {err}")))?;

        let mut reader = BufReader::new(stdout);
        let limit = policy.max_response_bytes * 4 / 3 + 4096;
        let prefix = format!("{nonce} ");
        let ready = tokio::time::timeout(policy.start_timeout, async {
            loop {
                match read_line(&mut reader, limit).await {
                    Ok(Some(line)) => {
                        if let Some(json) = line.strip_prefix(&prefix) {
                            break serde_json::from_str::<Wire>(json)
                                .map_err(|err| SandboxError::Crashed(err.to_string()));
                        }
                    }
                    Ok(None) => break Err(SandboxError::Crashed(exit_reason(&mut child).await)),
                    Err(err) => break Err(err),
                }
            }
        })
        .await
        .map_err(|_| {
            SandboxError::Load(format!(
                "the bundle did not load within {:?}",
                policy.start_timeout
            ))
        })??;
        let manifest = match (ready.ready, ready.manifest, ready.error) {
            (Some(true), Some(manifest), _) => manifest,
            (_, _, Some(error)) => return Err(SandboxError::Load(load_error(&error))),
            _ => return Err(SandboxError::Load("the bundle did not load".into())),
        };

        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_replies(
            reader,
            prefix,
            limit,
            pending.clone(),
            dead.clone(),
            policy.max_response_bytes,
        ));
        Ok((
            Self {
                started: std::time::Instant::now(),
                last_used_ms: AtomicU64::new(0),
                child: Mutex::new(Some(child)),
                stdin: tokio::sync::Mutex::new(stdin),
                pending,
                next_id: AtomicU64::new(1),
                dead,
                policy,
            },
            manifest,
        ))
    }

    /// Whether the process can take calls.
    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    /// How long since the last call started.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Runs `export` with `args` within the policy's call timeout; `ctx` is passed to the
    /// handler as its context.
    pub async fn call(
        &self,
        export: &str,
        args: &Value,
        ctx: &Value,
    ) -> Result<Reply, SandboxError> {
        self.call_within(self.policy.call_timeout, export, args, ctx)
            .await
    }

    /// [`Sandbox::call`] with an explicit timeout (a task may declare its own).
    pub async fn call_within(
        &self,
        timeout: Duration,
        export: &str,
        args: &Value,
        ctx: &Value,
    ) -> Result<Reply, SandboxError> {
        if !self.is_alive() {
            return Err(SandboxError::Crashed("it had already stopped".into()));
        }
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(now_ms, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = CallLine {
            id,
            export,
            args,
            ctx,
        };
        let mut line = serde_json::to_vec(&call)
            .map_err(|err| SandboxError::Handler(format!("the arguments are not JSON: {err}")))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let written = self.stdin.lock().await.write_all(&line).await;
        if let Err(err) = written {
            lock(&self.pending).remove(&id);
            self.kill();
            return Err(SandboxError::Crashed(err.to_string()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => {
                if matches!(
                    reply,
                    Err(SandboxError::TooLarge(_) | SandboxError::Crashed(_))
                ) {
                    self.kill();
                }
                reply
            }
            Ok(Err(_)) => Err(SandboxError::Crashed("the process exited".into())),
            Err(_) => {
                lock(&self.pending).remove(&id);
                // The handler may be spinning; only stopping the process stops it.
                self.kill();
                Err(SandboxError::Timeout(timeout))
            }
        }
    }

    /// Stops the process; calls in flight fail.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.start_kill();
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        for (_, waiter) in lock(&self.pending).drain() {
            let _ = waiter.send(Err(SandboxError::Crashed("the process was stopped".into())));
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads a line of at most `limit` bytes; `Ok(None)` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(
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

async fn read_replies<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    prefix: String,
    limit: usize,
    pending: Pending,
    dead: Arc<AtomicBool>,
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
                if let Some(fatal) = wire.fatal {
                    break SandboxError::Crashed(fatal);
                }
                let Some(id) = wire.id else { continue };
                let reply = decode(wire);
                if let Some(waiter) = lock(&pending).remove(&id) {
                    let _ = waiter.send(reply);
                }
            }
            Ok(None) => break SandboxError::Crashed("the process exited".into()),
            Err(SandboxError::TooLarge(_)) => break SandboxError::TooLarge(max_bytes),
            Err(err) => break err,
        }
    };
    dead.store(true, Ordering::SeqCst);
    for (_, waiter) in lock(&pending).drain() {
        let _ = waiter.send(Err(reason.clone()));
    }
}

fn decode(wire: Wire) -> Result<Reply, SandboxError> {
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

/// Turns Deno's permission errors at import time into advice.
fn load_error(error: &str) -> String {
    if error.contains("NotCapable")
        || error.contains("PermissionDenied")
        || error.contains("Requires ")
    {
        format!(
            "the bundle needs a permission while it is being imported ({error}); \
             move code that reads env, the network or files into a handler: \
             permissions apply only when handlers run"
        )
    } else {
        format!("the bundle failed to load: {error}")
    }
}

async fn exit_reason(child: &mut Child) -> String {
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => format!("the process exited ({status})"),
        _ => "the process closed its output".into(),
    }
}

/// Reads and drops the process's stderr: bundle output is not ours to log.
async fn discard<R: AsyncRead + Unpin>(mut stream: R) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
    }
}
