//! The warm pool: Deno processes reused across calls, keyed by (author, bundle, CID,
//! permission set, secrets), bounded overall, retired when idle, replaced when they die.
//! A process never serves two (author, bundle) pairs: the same code deployed by two
//! authors runs in two processes, so no global state crosses authors.
//!
//! Manifest extraction runs through the pool too: it takes a capacity permit for as long
//! as its process lives, so a flood of bundles that never finish loading cannot start
//! more processes than the bound.
//!
//! The pool is an actor (as in supabase's edge-runtime): one task owns the table of
//! workers and answers [`PoolMsg`]s, each with a oneshot reply. The loop never waits on
//! a process: starting one happens in a spawned task that reports back. Capacity is a
//! semaphore permit held by each worker for its whole life, so the bound counts
//! processes starting as well as running; when it is reached, the least recently used
//! idle worker is retired to make room, and otherwise the request waits, up to
//! [`PoolPolicy::queue_wait`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::manifest::RawManifest;
use super::permissions::Permissions;
use super::sandbox::{Launch, Sandbox, SandboxError, SandboxPolicy, ServeGrants};
use crate::atproto::syntax::{Cid, Did};

/// Bounds of the pool.
#[derive(Debug, Clone)]
pub struct PoolPolicy {
    /// Most Deno processes at once.
    pub max_workers: usize,
    /// A worker unused this long is retired.
    pub idle_timeout: Duration,
    /// How long a call waits for room in a full pool.
    pub queue_wait: Duration,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            max_workers: 16,
            idle_timeout: Duration::from_secs(120),
            queue_wait: Duration::from_secs(10),
        }
    }
}

/// What identifies a worker: calls with the same key share a process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerKey {
    /// The author's DID.
    pub did: Did,
    /// The bundle's name.
    pub bundle: String,
    /// The bundle's code CID.
    pub cid: Cid,
    /// Its permissions (declared plus secret names).
    pub permissions: Permissions,
    /// A digest of its secrets' values: new values mean a new process.
    pub secrets_digest: String,
}

/// How to start a worker for a key.
pub struct WorkerSpec {
    /// The key.
    pub key: WorkerKey,
    /// The bundle's code.
    pub code: Arc<str>,
    /// What the process may use.
    pub grants: ServeGrants,
}

/// Why no worker could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// The pool stayed full for the whole wait.
    #[error("the runner is busy: no sandbox became free within {0:?}")]
    QueueTimeout(Duration),
    /// Starting the process failed.
    #[error(transparent)]
    Start(#[from] SandboxError),
    /// The pool is shutting down.
    #[error("the runner is shutting down")]
    Closed,
}

enum PoolMsg {
    Acquire {
        spec: WorkerSpec,
        reply: oneshot::Sender<Result<Arc<Sandbox>, PoolError>>,
    },
    Started {
        key: WorkerKey,
        result: Result<(Arc<Sandbox>, OwnedSemaphorePermit), PoolError>,
    },
    Extract {
        code: Arc<str>,
        reply: oneshot::Sender<Result<RawManifest, PoolError>>,
    },
    Sweep,
    Stats {
        reply: oneshot::Sender<PoolStats>,
    },
}

/// A reading of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Live workers.
    pub workers: usize,
    /// Workers being started.
    pub starting: usize,
}

/// Live workers by key, readable without a message to the actor: the hot path of a
/// warm call. Only the actor writes it.
type Warm = Arc<std::sync::RwLock<HashMap<WorkerKey, Arc<Sandbox>>>>;

/// A handle to the pool actor; cheap to clone.
#[derive(Clone)]
pub struct PoolHandle {
    tx: mpsc::Sender<PoolMsg>,
    warm: Warm,
}

struct Entry {
    sandbox: Arc<Sandbox>,
    _permit: OwnedSemaphorePermit,
}

type Waiters = Vec<oneshot::Sender<Result<Arc<Sandbox>, PoolError>>>;

struct Pool {
    warm: Warm,
    policy: PoolPolicy,
    sandbox: Arc<SandboxPolicy>,
    harness: PathBuf,
    capacity: Arc<Semaphore>,
    workers: HashMap<WorkerKey, Entry>,
    starting: HashMap<WorkerKey, Waiters>,
    tx: mpsc::Sender<PoolMsg>,
}

impl PoolHandle {
    /// Starts the pool actor, whose processes run `harness`; it stops (killing its
    /// processes) when `shutdown` fires.
    pub fn start(
        policy: PoolPolicy,
        sandbox: Arc<SandboxPolicy>,
        harness: PathBuf,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel(1024);
        let warm: Warm = Arc::default();
        let mut pool = Pool {
            warm: warm.clone(),
            capacity: Arc::new(Semaphore::new(policy.max_workers)),
            policy,
            sandbox,
            harness,
            workers: HashMap::new(),
            starting: HashMap::new(),
            tx: tx.clone(),
        };
        let sweeper = tx.clone();
        let every =
            (pool.policy.idle_timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = sweep.tick() => {
                        if sweeper.send(PoolMsg::Sweep).await.is_err() {
                            return;
                        }
                    }
                    () = shutdown.cancelled() => return,
                }
            }
        });
        tokio::spawn(async move {
            // Keep this loop non-blocking: everything slow happens in spawned tasks.
            while let Some(message) = rx.recv().await {
                pool.handle(message);
                pool.publish();
                if pool.tx.is_closed() {
                    break;
                }
            }
        });
        Self { tx, warm }
    }

    /// How many workers are alive; no message to the actor.
    pub fn live(&self) -> usize {
        self.warm
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// The live worker for `key`, if one is running; no message to the actor.
    pub fn warm(&self, key: &WorkerKey) -> Option<Arc<Sandbox>> {
        self.warm
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .filter(|sandbox| sandbox.is_alive())
            .cloned()
    }

    /// A live worker for `spec.key`, started if needed.
    pub async fn acquire(&self, spec: WorkerSpec) -> Result<Arc<Sandbox>, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PoolMsg::Acquire { spec, reply })
            .await
            .map_err(|_| PoolError::Closed)?;
        rx.await.map_err(|_| PoolError::Closed)?
    }

    /// Reads the manifest `code` declares in a process with no permissions, counted
    /// against the pool's bound like any other process.
    pub async fn extract(&self, code: Arc<str>) -> Result<RawManifest, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PoolMsg::Extract { code, reply })
            .await
            .map_err(|_| PoolError::Closed)?;
        rx.await.map_err(|_| PoolError::Closed)?
    }

    /// How many workers there are.
    pub async fn stats(&self) -> Result<PoolStats, PoolError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(PoolMsg::Stats { reply })
            .await
            .map_err(|_| PoolError::Closed)?;
        rx.await.map_err(|_| PoolError::Closed)
    }
}

impl Pool {
    /// Mirrors the live workers into the table the hot path reads.
    fn publish(&self) {
        let live = self
            .workers
            .iter()
            .filter(|(_, entry)| entry.sandbox.is_alive())
            .map(|(key, entry)| (key.clone(), entry.sandbox.clone()))
            .collect();
        *self
            .warm
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = live;
    }

    fn handle(&mut self, message: PoolMsg) {
        match message {
            PoolMsg::Acquire { spec, reply } => self.acquire(spec, reply),
            PoolMsg::Extract { code, reply } => self.extract(code, reply),
            PoolMsg::Started { key, result } => {
                let waiters = self.starting.remove(&key).unwrap_or_default();
                match result {
                    Ok((sandbox, permit)) => {
                        for waiter in waiters {
                            let _ = waiter.send(Ok(sandbox.clone()));
                        }
                        self.workers.insert(
                            key,
                            Entry {
                                sandbox,
                                _permit: permit,
                            },
                        );
                    }
                    Err(err) => {
                        for waiter in waiters {
                            let _ = waiter.send(Err(err.clone()));
                        }
                    }
                }
            }
            PoolMsg::Sweep => {
                let idle = self.policy.idle_timeout;
                // Busy means held by a caller: more references than ours and the table's.
                self.workers.retain(|_, entry| {
                    let busy = Arc::strong_count(&entry.sandbox) > 2;
                    entry.sandbox.is_alive() && (busy || entry.sandbox.idle_for() < idle)
                });
            }
            PoolMsg::Stats { reply } => {
                self.workers.retain(|_, entry| entry.sandbox.is_alive());
                let _ = reply.send(PoolStats {
                    workers: self.workers.len(),
                    starting: self.starting.len(),
                });
            }
        }
    }

    fn acquire(
        &mut self,
        spec: WorkerSpec,
        reply: oneshot::Sender<Result<Arc<Sandbox>, PoolError>>,
    ) {
        if let Some(entry) = self.workers.get(&spec.key) {
            if entry.sandbox.is_alive() {
                let _ = reply.send(Ok(entry.sandbox.clone()));
                return;
            }
            self.workers.remove(&spec.key);
        }
        if let Some(waiters) = self.starting.get_mut(&spec.key) {
            waiters.push(reply);
            return;
        }
        if self.capacity.available_permits() == 0 {
            self.retire_least_recently_used();
        }
        self.starting.insert(spec.key.clone(), vec![reply]);
        let (capacity, wait, policy, tx) = (
            self.capacity.clone(),
            self.policy.queue_wait,
            self.sandbox.clone(),
            self.tx.clone(),
        );
        let harness = self.harness.clone();
        tokio::spawn(async move {
            let key = spec.key.clone();
            let result = async {
                let permit = permit_within(capacity, wait).await?;
                let (sandbox, _) =
                    Sandbox::start(policy, &harness, Launch::Serve(spec.grants), &spec.code)
                        .await?;
                Ok((Arc::new(sandbox), permit))
            }
            .await;
            let _ = tx.send(PoolMsg::Started { key, result }).await;
        });
    }

    fn extract(&mut self, code: Arc<str>, reply: oneshot::Sender<Result<RawManifest, PoolError>>) {
        if self.capacity.available_permits() == 0 {
            self.retire_least_recently_used();
        }
        let (capacity, wait, policy, harness) = (
            self.capacity.clone(),
            self.policy.queue_wait,
            self.sandbox.clone(),
            self.harness.clone(),
        );
        tokio::spawn(async move {
            let result = async {
                let _permit = permit_within(capacity, wait).await?;
                let (_, manifest) =
                    Sandbox::start(policy, &harness, Launch::Extract, &code).await?;
                Ok(manifest)
            }
            .await;
            let _ = reply.send(result);
        });
    }

    /// Retires the idle worker unused the longest, if there is one.
    fn retire_least_recently_used(&mut self) {
        let victim = self
            .workers
            .iter()
            .filter(|(_, entry)| {
                Arc::strong_count(&entry.sandbox) <= 2 || !entry.sandbox.is_alive()
            })
            .max_by_key(|(_, entry)| entry.sandbox.idle_for())
            .map(|(key, _)| key.clone());
        if let Some(key) = victim {
            self.workers.remove(&key);
            self.publish();
        }
    }
}

/// A capacity permit, waiting at most `wait` for one.
async fn permit_within(
    capacity: Arc<Semaphore>,
    wait: Duration,
) -> Result<OwnedSemaphorePermit, PoolError> {
    tokio::time::timeout(wait, capacity.acquire_owned())
        .await
        .map_err(|_| PoolError::QueueTimeout(wait))?
        .map_err(|_| PoolError::Closed)
}
