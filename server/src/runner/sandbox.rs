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
//!
//! The process's environment is fixed here and holds nothing of the author's: secrets
//! and declared variables travel in the start line over stdin (see `js/harness.js`).
//! `DENO_DIR` points below `/dev/null`, where nothing can be created even by root, so no
//! Deno state (web storage, caches) reaches the disk or another bundle. A serving
//! process is watched while it has no call: one that keeps using CPU after its calls
//! returned (a worker thread left spinning) is stopped.

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

use super::egress::{Egress, EgressGrant};
use super::manifest::RawManifest;
use super::permissions::{self, Permissions};
use crate::secret::Secret;

/// `DENO_DIR` of sandboxed processes: a path that cannot exist.
const NO_DENO_DIR: &str = "/dev/null/deno";
/// How often an idle process's CPU time is read.
const IDLE_CPU_POLL: Duration = Duration::from_millis(100);
/// CPU a process may use after its last call returned (V8 finishing a garbage collection,
/// say), in clock ticks of 10 ms...
const IDLE_CPU_ALLOWANCE_TICKS: u64 = 30;
/// ...plus this many ticks per second of idleness (2 % of a core). A thread left
/// spinning uses 100 per second.
const IDLE_CPU_TICKS_PER_SEC: u64 = 2;

/// How sandboxes are started and bounded.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// The `deno` executable.
    pub deno: PathBuf,
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
}

/// What a process is started for.
pub enum Launch {
    /// Reading the manifest, with no permissions at all.
    Extract,
    /// Serving calls with a bundle's permissions.
    Serve(ServeGrants),
}

/// What a serving process may use.
pub struct ServeGrants {
    /// Declared hosts, and variable names (declared and secrets).
    pub permissions: Permissions,
    /// Values of those variables (secrets), never put in the process environment.
    pub env: Vec<(String, Secret)>,
    /// The forwarder that gives access to the declared hosts.
    pub egress: Option<Arc<Egress>>,
}

/// Why a sandboxed run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// Deno could not be started.
    #[error("{0}")]
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
    stdin: tokio::sync::Mutex<ChildStdin>,
    state: Arc<State>,
    policy: Arc<SandboxPolicy>,
    pid: Option<u32>,
    /// Revoked when the sandbox goes.
    _egress: Option<EgressGrant>,
}

/// What the reply reader and the idle watcher share with the sandbox.
struct State {
    child: Mutex<Option<Child>>,
    pending: Pending,
    dead: AtomicBool,
    /// The next call's id: also how many calls have started.
    next_id: AtomicU64,
}

impl State {
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Marks the process dead, stops it, and fails the calls in flight with `reason`.
    fn kill(&self, reason: &SandboxError) {
        self.dead.store(true, Ordering::SeqCst);
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.start_kill();
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        for (_, waiter) in lock(&self.pending).drain() {
            let _ = waiter.send(Err(reason.clone()));
        }
    }
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
    /// Starts Deno for `launch` with `harness` as its main module, sends the bundle, and
    /// waits until it has loaded; returns the sandbox and the manifest the bundle declares.
    pub async fn start(
        policy: Arc<SandboxPolicy>,
        harness: &Path,
        launch: Launch,
        code: &str,
    ) -> Result<(Self, RawManifest), SandboxError> {
        let (mode, args, env, egress) = match launch {
            Launch::Extract => (
                "extract",
                permissions::extract_args(policy.heap_mb, harness),
                json!({"names": [], "values": {}, "reserved": permissions::reserved_env_rules()}),
                None,
            ),
            Launch::Serve(grants) => {
                let egress = grants
                    .egress
                    .filter(|_| !grants.permissions.net.is_empty())
                    .map(|egress| (egress.addr(), egress.grant(&grants.permissions.net)));
                let values: serde_json::Map<String, Value> = grants
                    .env
                    .iter()
                    .filter(|(name, _)| grants.permissions.env.contains(name))
                    .map(|(name, value)| (name.clone(), Value::from(value.expose())))
                    .collect();
                (
                    "serve",
                    permissions::serve_args(egress.as_ref().map(|e| e.0), policy.heap_mb, harness),
                    json!({
                        "names": grants.permissions.env,
                        "values": values,
                        "reserved": permissions::reserved_env_rules(),
                    }),
                    egress.map(|e| e.1),
                )
            }
        };
        if !executable_exists(&policy.deno) {
            return Err(SandboxError::Spawn(format!(
                "cannot start Deno: {} was not found; install Deno (the README's commands \
                 install it into node_modules/.bin) and set DENO_PATH to its path",
                policy.deno.display()
            )));
        }
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--data={}", policy.data_limit_mb * 1024 * 1024))
            .arg("--")
            .arg(&policy.deno)
            .args(&args)
            .env_clear()
            .env("DENO_DIR", NO_DENO_DIR)
            .env("NO_COLOR", "1")
            .env("DENO_NO_UPDATE_CHECK", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| spawn_error(&policy, &err))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Spawn(
                "Deno was started without stdio pipes".into(),
            ));
        };
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(keep_tail(stderr, stderr_tail.clone()));
        let tail = (mode == "extract").then_some(&*stderr_tail);

        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let load_timeout = policy
            .start_timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_millis(500));
        let init = json!({
            "nonce": nonce,
            "mode": mode,
            "code": code,
            "maxBytes": policy.max_response_bytes,
            "loadTimeoutMs": u64::try_from(load_timeout.as_millis()).unwrap_or(u64::MAX),
            "env": env,
            "egress": egress.as_ref().map(|grant| json!({"url": grant.url(), "token": grant.token()})),
        });
        let mut line = init.to_string();
        line.push('\n');
        drop(init);
        if let Err(err) = stdin.write_all(line.as_bytes()).await {
            let reason = exit_reason(&mut child, tail).await;
            return Err(SandboxError::Load(format!(
                "the bundle's process stopped before it could be given the bundle ({err}): {reason}"
            )));
        }
        drop(line);

        let mut reader = BufReader::new(stdout);
        let limit = policy.max_response_bytes * 4 / 3 + 4096;
        let prefix = format!("{nonce} ");
        let ready = tokio::time::timeout(policy.start_timeout, async {
            loop {
                match read_line(&mut reader, limit).await {
                    Ok(Some(line)) => {
                        if let Some(json) = line.strip_prefix(&prefix) {
                            break serde_json::from_str::<Wire>(json).map_err(|err| {
                                SandboxError::Load(format!("the harness answered nonsense: {err}"))
                            });
                        }
                    }
                    Ok(None) => {
                        let reason = exit_reason(&mut child, tail).await;
                        break Err(SandboxError::Load(format!(
                            "the bundle's process stopped while loading it: {reason}"
                        )));
                    }
                    Err(SandboxError::TooLarge(_)) => {
                        break Err(SandboxError::Load(
                            "the bundle printed an over-long line while loading".into(),
                        ));
                    }
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

        let pid = child.id();
        let state = Arc::new(State {
            child: Mutex::new(Some(child)),
            pending: Arc::new(Mutex::new(HashMap::new())),
            dead: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(read_replies(
            reader,
            prefix,
            limit,
            Arc::downgrade(&state),
            policy.max_response_bytes,
        ));
        if let (Some(pid), "serve") = (pid, mode) {
            tokio::spawn(watch_idle_cpu(Arc::downgrade(&state), pid));
        }
        Ok((
            Self {
                started: std::time::Instant::now(),
                last_used_ms: AtomicU64::new(0),
                stdin: tokio::sync::Mutex::new(stdin),
                state,
                policy,
                pid,
                _egress: egress,
            },
            manifest,
        ))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.is_alive().then_some(self.pid).flatten()
    }

    /// Whether the process can take calls.
    pub fn is_alive(&self) -> bool {
        !self.state.is_dead()
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
        let id = self.state.next_id.fetch_add(1, Ordering::SeqCst);
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
        lock(&self.state.pending).insert(id, tx);
        let written = self.stdin.lock().await.write_all(&line).await;
        if let Err(err) = written {
            lock(&self.state.pending).remove(&id);
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
                lock(&self.state.pending).remove(&id);
                // The handler may be spinning; only stopping the process stops it.
                self.kill();
                Err(SandboxError::Timeout(timeout))
            }
        }
    }

    /// Stops the process; calls in flight fail.
    pub fn kill(&self) {
        self.state
            .kill(&SandboxError::Crashed("the process was stopped".into()));
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

/// Stops a serving process that keeps using CPU while it has no call: whatever a call
/// started (a worker, a thread of a Node API) must not outlive it. The harness terminates
/// the workers it knows of, but Deno's `Worker.terminate()` does not interrupt one that
/// spins in its top-level code (measured with Deno 2.9), so this is what bounds them.
async fn watch_idle_cpu(state: std::sync::Weak<State>, pid: u32) {
    // Since when the process has had no call: (calls started then, CPU ticks then, when).
    let mut idle_since: Option<(u64, u64, std::time::Instant)> = None;
    loop {
        tokio::time::sleep(IDLE_CPU_POLL).await;
        let Some(state) = state.upgrade() else { return };
        if state.is_dead() {
            return;
        }
        let Some(cpu) = cpu_ticks(pid) else { return };
        let calls = state.next_id.load(Ordering::SeqCst);
        if !lock(&state.pending).is_empty() {
            idle_since = None;
            continue;
        }
        let (cpu_then, since) = match idle_since {
            Some((calls_then, cpu_then, since)) if calls_then == calls => (cpu_then, since),
            _ => {
                idle_since = Some((calls, cpu, std::time::Instant::now()));
                continue;
            }
        };
        let used = cpu.saturating_sub(cpu_then);
        let allowed = IDLE_CPU_ALLOWANCE_TICKS + since.elapsed().as_secs() * IDLE_CPU_TICKS_PER_SEC;
        if used > allowed {
            tracing::info!(
                target: "atrun",
                pid,
                cpu_ms = used * 10,
                idle_ms = since.elapsed().as_millis() as u64,
                "stopping a bundle process that kept using CPU after its calls returned"
            );
            state.kill(&SandboxError::Crashed(
                "it kept using CPU after its calls returned".into(),
            ));
            return;
        }
    }
}

/// User plus system CPU time of a process, all threads, in clock ticks (Linux's
/// `USER_HZ`, 100 per second).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
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

/// Why a process went away: its exit status and, for a process that held no secrets
/// (manifest extraction), the last of what it wrote to stderr. Never logged.
async fn exit_reason(child: &mut Child, stderr_tail: Option<&Mutex<Vec<u8>>>) -> String {
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => format!("it exited ({status})"),
        _ => "it closed its output".into(),
    };
    let Some(stderr_tail) = stderr_tail else {
        return status;
    };
    // Let the stderr reader catch up with the exit.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let tail = String::from_utf8_lossy(&lock(stderr_tail))
        .trim()
        .to_string();
    if tail.is_empty() {
        status
    } else {
        format!("{status}: {tail}")
    }
}

/// How much of a process's stderr is kept, to explain an early exit.
const STDERR_TAIL_BYTES: usize = 2048;

/// Reads the process's stderr, keeping only its last bytes: bundle output is not ours to
/// log, but Deno's own message about why it stopped is worth passing on.
async fn keep_tail<R: AsyncRead + Unpin>(mut stream: R, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let mut kept = lock(&tail);
        kept.extend_from_slice(&buffer[..n]);
        let excess = kept.len().saturating_sub(STDERR_TAIL_BYTES);
        kept.drain(..excess);
    }
}

/// Whether `program` names an executable file: a path as given, or a name on `PATH`.
pub(crate) fn executable_exists(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &Path| {
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return runnable(program);
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(program))))
}

/// Says what to do when Deno cannot be started.
fn spawn_error(policy: &SandboxPolicy, err: &std::io::Error) -> SandboxError {
    let deno = policy.deno.display();
    SandboxError::Spawn(if err.kind() == std::io::ErrorKind::NotFound {
        format!(
            "cannot start Deno: `prlimit` or `{deno}` was not found; install Deno (the README's \
             commands install it into node_modules/.bin) and set DENO_PATH to its path"
        )
    } else {
        format!("cannot start Deno at {deno}: {err}; set DENO_PATH to a working deno executable")
    })
}
