//! One Deno process running one bundle: started with its permissions, called with a
//! timeout and a size limit, killed. The roles live apart:
//!
//! - [`process`]: starting Deno with a fixed environment, the harness file, and why a
//!   process went away.
//! - [`protocol`]: the stdio protocol of `js/harness.js`: nonce-framed lines, calls,
//!   what a reply decodes to.
//! - [`watchdog`]: stopping a process that keeps using CPU when it has no call.
//!
//! The bundle runs in the harness's own realm rather than in a Web Worker: a worker
//! costs a second thread hop each way (measured: 98 µs vs 192 µs per round trip), and
//! the isolation it adds protects only the bundle's own process, which the harness
//! already shields by capturing what it uses before bundle code runs.
//!
//! A call that times out, a reply over the size limit, or the process exiting marks the
//! sandbox dead; the pool then replaces it. The process's environment holds nothing of
//! the author's: secrets and declared variables travel in the start line over stdin
//! (see `js/harness.js`).

mod console;
mod process;
mod protocol;
mod watchdog;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

use super::egress::{Egress, EgressGrant};
use super::kv::KvScope;
use super::manifest::RawManifest;
use super::permissions::{self, Permissions};
use crate::secret::Secret;
use console::Console;
pub use console::ConsoleLine;
pub(crate) use process::executable_exists;
pub use process::install_harness;
use process::{exit_reason, load_error};
use protocol::{CallLine, Pending, Wire, read_line, read_replies};
pub use watchdog::cpu_ticks;
use watchdog::watch_idle_cpu;

/// Most `ctx.kv` operations of one process in flight at once; more are refused.
const KV_OPS_IN_FLIGHT: usize = 32;
/// Most answers to `ctx.kv` lines of one process pending at once; more lines are dropped.
const KV_ANSWERS_PENDING: usize = 4 * KV_OPS_IN_FLIGHT;

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
    /// The bundle's own `ctx.kv` store, when it declares `kv`.
    pub kv: Option<KvScope>,
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

/// How a call ended, and what it printed.
#[derive(Debug)]
pub struct Called {
    /// The reply, or why there is none.
    pub result: Result<Reply, SandboxError>,
    /// Its `console` output, within the bounds of [`console`].
    pub console: Vec<ConsoleLine>,
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

/// A running bundle process.
pub struct Sandbox {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last call.
    last_used_ms: AtomicU64,
    state: Arc<State>,
    policy: Arc<SandboxPolicy>,
    pid: Option<u32>,
    /// Revoked when the sandbox goes.
    _egress: Option<EgressGrant>,
}

/// What the reply reader and the idle watcher share with the sandbox.
pub(super) struct State {
    child: Mutex<Option<Child>>,
    /// Where calls (and answers to the bundle's `ctx.kv` operations) are written.
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// The bundle's `ctx.kv`, if it declared it, and how many of its operations may be
    /// in flight.
    kv: Option<(KvScope, Arc<tokio::sync::Semaphore>)>,
    /// How many answers to `ctx.kv` lines (refusals included) may be pending; lines past
    /// it are dropped: only a bundle flooding the protocol gets there.
    kv_answers: Arc<tokio::sync::Semaphore>,
    pending: Pending,
    /// What the calls in flight printed.
    console: Mutex<Console>,
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

impl Sandbox {
    /// Starts Deno for `launch` with `harness` as its main module, sends the bundle, and
    /// waits until it has loaded; returns the sandbox and the manifest the bundle declares.
    pub async fn start(
        policy: Arc<SandboxPolicy>,
        harness: &Path,
        launch: Launch,
        code: &str,
    ) -> Result<(Self, RawManifest), SandboxError> {
        let (mode, args, env, egress, kv) = match launch {
            Launch::Extract => (
                "extract",
                permissions::extract_args(policy.heap_mb, harness),
                json!({"names": [], "values": {}, "reserved": permissions::reserved_env_rules()}),
                None,
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
                    grants.kv.filter(|_| grants.permissions.kv),
                )
            }
        };
        let process::Started {
            mut child,
            mut stdin,
            stdout,
            stderr_tail,
        } = process::spawn(&policy, &args)?;
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
            "kv": kv.is_some(),
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
        // What the bundle prints while it loads belongs to no call: the first call takes it.
        let mut console = Console::default();
        let ready = tokio::time::timeout(policy.start_timeout, async {
            loop {
                match read_line(&mut reader, limit).await {
                    Ok(Some(line)) => {
                        let Some(json) = line.strip_prefix(&prefix) else {
                            continue;
                        };
                        match serde_json::from_str::<Wire>(json) {
                            Ok(wire) if wire.log.is_some() => wire.print_to(&mut console),
                            Ok(wire) => break Ok(wire),
                            Err(err) => {
                                break Err(SandboxError::Load(format!(
                                    "the harness answered nonsense: {err}"
                                )));
                            }
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
            stdin: tokio::sync::Mutex::new(stdin),
            kv: kv.map(|scope| {
                (
                    scope,
                    Arc::new(tokio::sync::Semaphore::new(KV_OPS_IN_FLIGHT)),
                )
            }),
            kv_answers: Arc::new(tokio::sync::Semaphore::new(KV_ANSWERS_PENDING)),
            pending: Arc::new(Mutex::new(HashMap::new())),
            console: Mutex::new(console),
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
        self.call_logged(timeout, export, args, ctx).await.result
    }

    /// [`Sandbox::call_within`], with what the call printed (also when it failed, timed
    /// out or crashed the process: what it printed until then).
    pub async fn call_logged(
        &self,
        timeout: Duration,
        export: &str,
        args: &Value,
        ctx: &Value,
    ) -> Called {
        let id = self.state.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.state.console).open(id);
        let result = self.call_with_id(id, timeout, export, args, ctx).await;
        Called {
            result,
            console: lock(&self.state.console).take(id),
        }
    }

    async fn call_with_id(
        &self,
        id: u64,
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
        let written = self.state.stdin.lock().await.write_all(&line).await;
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

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
