//! Tasks and scheduled jobs: durable, deduplicated, concurrency-limited work shared by
//! native services and bundles.
//!
//! # Model
//!
//! A task kind ([`TaskDef`]) has a name, a handler and policies: `concurrency`,
//! `cache_ttl`, `timeout`, `max_attempts` with exponential backoff. Submitting an input
//! ([`TaskSystem::submit`]) is idempotent: the canonical JSON of the input (keys sorted)
//! is the dedupe key, and while a task for that key is pending or running, or its result
//! is younger than `cache_ttl` (a failure: younger than the short failure TTL), the same
//! task is returned. Clients follow a [`Task`] (the web edge shows it as the pages'
//! `TaskView`). A failure carries a public message, kept with the task, and an internal
//! cause, which only the log sees.
//!
//! # Many owners, one queue
//!
//! Bundle tasks of every author share one kind, so one author, or anonymous callers of
//! one bundle, must not be able to hold up everyone else. A task may carry a [`Lane`]
//! with an owner (the author). Claiming leaves out kinds, lanes and owners at their
//! limit and takes the rest round-robin, so a saturated lane never delays another; a
//! kind may cap the running tasks of one owner ([`TaskDef::per_owner`]); at most
//! [`TaskPolicy::max_pending`] tasks wait per lane (or per kind without lanes) and
//! [`TaskPolicy::max_pending_per_owner`] per owner, beyond which submissions are refused
//! ([`TaskError::QueueFull`]); a kind may check inputs before they become rows
//! ([`TaskDef::admit`]); each owner's finished results are kept within
//! [`TaskPolicy::results_per_owner_bytes`] (the oldest go first); and the in-memory
//! caches of finished tasks are bounded in bytes.
//!
//! # Durability
//!
//! Tasks live in libSQL (`tasks` table), so they survive restarts. A worker leases a
//! task before running it and renews the lease while it runs; if the process dies, the
//! lease runs out and any process claims the task again (at-least-once). Claiming
//! happens in one write transaction per batch and checks how many of each kind are
//! running across all processes, so concurrency limits are global and a dedupe key never
//! runs twice at once. Dispatch is woken by submissions and completions in-process, and
//! polls the database for work submitted by other processes.
//!
//! # Layout
//!
//! - `task`: [`Task`], [`Status`], [`FailureKind`]: what the task system reports.
//! - `def`: [`TaskDef`], [`TaskContext`], [`TaskFailure`].
//! - `clock`: the time rules are measured in ([`ManualClock`] in tests).
//! - `canonical`: canonical JSON and dedupe keys.
//! - `store`: the SQL, one transaction per state change.
//! - `worker`: the dispatcher loop, attempts, leases, retries.
//! - [`scheduler`]: jobs on intervals or cron expressions, never overlapping, missed runs
//!   coalesced, with run history.
//! - `metrics`: counters and their Prometheus rendering.

mod canonical;
mod clock;
mod def;
mod metrics;
pub mod scheduler;
mod store;
mod task;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::db::{Db, DbError};

pub use clock::{Clock, ManualClock};
pub use def::{TaskContext, TaskDef, TaskFailure, TaskFuture};
pub use metrics::TaskMetrics;
pub use store::{now_ms, rfc3339};
pub use task::{FailureKind, Status, Task};

use metrics::Counters;
use store::{Admission, QueueLimits, Store};

/// Largest accepted task input, as JSON bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Longest public error message kept with a failed task.
const MAX_ERROR_BYTES: usize = 2048;

/// How the task system runs in this process.
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    /// How long a lease lasts before another process may take the task over; renewed at a
    /// third of it while the task runs.
    pub lease: Duration,
    /// How often to look for work submitted by other processes.
    pub poll_interval: Duration,
    /// How long failures are reused for tasks that do not set their own.
    pub failure_ttl: Duration,
    /// After a shutdown signal, how long running tasks get to finish before they are
    /// handed back to the queue.
    pub drain_timeout: Duration,
    /// Most tasks claimed per database round trip.
    pub claim_batch: usize,
    /// Most tasks waiting per lane, or per kind for tasks without a lane.
    pub max_pending: u32,
    /// Most tasks waiting for one owner, over all its lanes.
    pub max_pending_per_owner: u32,
    /// Bytes of finished tasks (input, result, error) kept per owner; the oldest are
    /// deleted beyond it.
    pub results_per_owner_bytes: u64,
    /// Bytes of finished tasks kept in memory, for reads that skip the database.
    pub memory_cache_bytes: u64,
    /// Names this server across restarts ([`node_id`]): on start it takes back the
    /// tasks it was running when it stopped, instead of waiting for their leases.
    pub node_id: String,
    /// The time TTLs, backoff and leases are measured in: the system's, except in tests.
    pub clock: Clock,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            failure_ttl: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            claim_batch: 32,
            max_pending: 1000,
            max_pending_per_owner: 4000,
            results_per_owner_bytes: 64 * 1024 * 1024,
            memory_cache_bytes: 64 * 1024 * 1024,
            node_id: uuid::Uuid::now_v7().simple().to_string(),
            clock: Clock::system(),
        }
    }
}

/// Errors from submitting or reading tasks.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task kind of that name is registered.
    #[error("no task named {0}")]
    UnknownTask(String),
    /// The input is not acceptable; nothing was stored.
    #[error("invalid task input: {0}")]
    InvalidInput(String),
    /// What the input names does not exist; nothing was stored.
    #[error("{0}")]
    NotFound(String),
    /// Too many tasks are waiting in the queue this one would join; nothing was stored.
    #[error("{0}")]
    QueueFull(String),
    /// The input could not be checked right now (see [`TaskDef::admit`]); nothing was
    /// stored.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Limits a task carries itself: tasks of one kind may fall in many lanes, each with
/// its own concurrency and result TTL (one bundle export each, for the `atrun` kind),
/// and each lane belongs to an owner (the bundle's author).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// Names the lane; tasks with the same key share its concurrency.
    pub key: String,
    /// Whose work the lane's tasks are: their running tasks, waiting tasks and kept
    /// results are bounded together.
    pub owner: String,
    /// Most of its tasks running at once, across all processes.
    pub concurrency: u32,
    /// How long a completed result is reused.
    pub cache_ttl: Duration,
}

/// A submission's outcome.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The task.
    pub task: Task,
    /// Whether an existing task was returned (in flight, or a cached result).
    pub reused: bool,
}

/// The task system of this process; cheap to clone.
#[derive(Clone)]
pub struct TaskSystem {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Finished tasks by id: they no longer change, so reads skip the database.
    finished_tasks: moka::sync::Cache<String, Arc<Finished>>,
    /// Finished tasks by name and dedupe key, for cache hits without the database
    /// (still checked against their expiry on every use).
    finished_rows: moka::sync::Cache<(String, String), Arc<Finished>>,
    defs: RwLock<HashMap<String, Arc<TaskDef>>>,
    policy: TaskPolicy,
    worker_id: String,
    wake: Notify,
    finished: broadcast::Sender<String>,
    counters: Counters,
    /// Bytes of results each owner finished in this process since their results were
    /// last trimmed to budget.
    owner_growth: moka::sync::Cache<String, u64>,
}

impl TaskSystem {
    /// A task system over `db` (migrated). Nothing runs until [`TaskSystem::start`].
    pub async fn new(db: Db, policy: TaskPolicy) -> Result<Self, TaskError> {
        let (finished, _) = broadcast::channel(1024);
        let worker_id = format!(
            "{}/{}-{}",
            policy.node_id,
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store: Store::open(
                    db,
                    QueueLimits {
                        per_lane: policy.max_pending,
                        per_owner: policy.max_pending_per_owner,
                    },
                )
                .await?,
                finished_tasks: finished_cache(policy.memory_cache_bytes / 2),
                finished_rows: finished_cache(policy.memory_cache_bytes / 2),
                owner_growth: moka::sync::Cache::new(10_000),
                defs: RwLock::new(HashMap::new()),
                policy,
                worker_id,
                wake: Notify::new(),
                finished,
                counters: Counters::default(),
            }),
        })
    }

    /// Adds (or replaces) a task kind.
    pub fn register(&self, def: TaskDef) {
        self.inner
            .defs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(def.name.clone(), Arc::new(def));
        self.inner.wake.notify_one();
    }

    fn def(&self, name: &str) -> Option<Arc<TaskDef>> {
        self.inner
            .defs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether `name` is a registered kind that `POST /api/tasks/{name}` may submit.
    pub fn is_public(&self, name: &str) -> bool {
        self.def(name).is_some_and(|def| def.public)
    }

    /// Submits `input` to task kind `name`: the existing task for the same input if it
    /// is in flight or its result still fresh, else a new one.
    pub async fn submit(&self, name: &str, input: Value) -> Result<Submitted, TaskError> {
        self.submit_in(name, input, None).await
    }

    /// [`Self::submit`], in `lane` when given: the task then runs at most
    /// `lane.concurrency` at once with the others of its lane (across all processes),
    /// and its result is reused for `lane.cache_ttl` instead of its kind's.
    pub async fn submit_in(
        &self,
        name: &str,
        input: Value,
        lane: Option<Lane>,
    ) -> Result<Submitted, TaskError> {
        let def = self
            .def(name)
            .ok_or_else(|| TaskError::UnknownTask(name.to_string()))?;
        if !input.is_object() {
            return Err(TaskError::InvalidInput(
                "the input must be a JSON object".into(),
            ));
        }
        if let Some(validate) = &def.validate {
            validate(&input).map_err(TaskError::InvalidInput)?;
        }
        let canonical = canonical::canonical_json(&input);
        if canonical.len() > MAX_INPUT_BYTES {
            return Err(TaskError::InvalidInput(format!(
                "the input is larger than {MAX_INPUT_BYTES} bytes"
            )));
        }
        let key = canonical::dedupe_key(&canonical);
        let now = self.inner.policy.clock.now_ms();
        let cache_key = (name.to_string(), key.clone());
        let cached = self
            .inner
            .finished_rows
            .get(&cache_key)
            .filter(|finished| finished.expires_at.is_some_and(|at| at > now));
        if let Some(finished) = cached {
            self.inner.counters.submitted.inc();
            self.inner.counters.cache_hits.inc();
            return Ok(Submitted {
                task: finished.task.clone(),
                reused: true,
            });
        }
        let (row, reused) = match self.inner.store.reusable(name, &key, now).await? {
            Some(row) => (row, true),
            None => {
                if let Some(admit) = &def.admit {
                    admit(input).await?;
                }
                match self
                    .inner
                    .store
                    .submit(name, &key, &canonical, def.max_attempts, lane.as_ref(), now)
                    .await?
                {
                    Admission::Row(row, reused) => (row, reused),
                    Admission::Full(why) => return Err(TaskError::QueueFull(why)),
                }
            }
        };
        if row.status.is_terminal() {
            self.inner
                .finished_rows
                .insert(cache_key, Arc::new(Finished::of(&row)));
        }
        self.inner.counters.submitted.inc();
        if reused {
            if row.status.is_terminal() {
                self.inner.counters.cache_hits.inc();
            }
        } else {
            self.inner.wake.notify_one();
        }
        Ok(Submitted {
            task: row.task(),
            reused,
        })
    }

    /// Submits `input` (see [`Self::submit_in`]) and waits up to `wait` for the task to
    /// finish: the one way every endpoint that starts a task answers.
    pub async fn submit_and_wait(
        &self,
        name: &str,
        input: Value,
        lane: Option<Lane>,
        wait: Duration,
    ) -> Result<Task, TaskError> {
        let submitted = self.submit_in(name, input, lane).await?;
        if wait.is_zero() || submitted.task.status.is_terminal() {
            return Ok(submitted.task);
        }
        Ok(self
            .wait(&submitted.task.id, wait)
            .await?
            .unwrap_or(submitted.task))
    }

    /// The task `id`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Task>, TaskError> {
        if let Some(finished) = self.inner.finished_tasks.get(id) {
            return Ok(Some(finished.task.clone()));
        }
        let row = self.inner.store.get(id).await?;
        if let Some(row) = row.as_ref().filter(|row| row.status.is_terminal()) {
            self.inner
                .finished_tasks
                .insert(id.to_string(), Arc::new(Finished::of(row)));
        }
        Ok(row.map(|row| row.task()))
    }

    /// The task `id`, waiting up to `wait` for it to complete or fail.
    pub async fn wait(&self, id: &str, wait: Duration) -> Result<Option<Task>, TaskError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut finished = self.inner.finished.subscribe();
        loop {
            let Some(task) = self.get(id).await? else {
                return Ok(None);
            };
            let now = tokio::time::Instant::now();
            if task.status.is_terminal() || now >= deadline {
                return Ok(Some(task));
            }
            // Woken by this process finishing the task; the poll covers other processes.
            let poll = (deadline - now).min(Duration::from_millis(250));
            let _ = tokio::time::timeout(poll, async {
                loop {
                    match finished.recv().await {
                        Ok(done) if done == id => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            })
            .await;
        }
    }

    /// The counters, with the queue depth read from the database.
    pub async fn metrics(&self) -> Result<TaskMetrics, TaskError> {
        let depth = self.inner.store.queue_depth().await?;
        Ok(TaskMetrics::read(&self.inner.counters, depth))
    }

    /// Registers the task counters for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.counters.register(registry);
    }

    /// Brings the gauges up to date (the queue depth, from the database); called before
    /// each scrape.
    pub async fn refresh_gauges(&self) -> Result<(), TaskError> {
        self.metrics().await.map(drop)
    }

    /// Counts `bytes` of results finished for `owner`; once they add up to an eighth of
    /// the owner's budget, trims the owner's kept results to the budget.
    async fn owner_finished(&self, owner: &str, bytes: u64) {
        let budget = self.inner.policy.results_per_owner_bytes;
        let grown = self.inner.owner_growth.get(owner).unwrap_or(budget) + bytes;
        if grown < budget / 8 {
            self.inner.owner_growth.insert(owner.to_string(), grown);
            return;
        }
        self.inner.owner_growth.insert(owner.to_string(), 0);
        match self.inner.store.trim_owner(owner, budget).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                owner,
                deleted,
                "an owner's kept task results reached their budget; the oldest were deleted"
            ),
            Err(err) => {
                tracing::warn!(owner, error = %err, "trimming an owner's task results failed")
            }
        }
    }

    /// Deletes finished tasks whose results expired more than `grace` ago.
    pub async fn delete_expired(&self, grace: Duration) -> Result<u64, TaskError> {
        let before =
            self.inner.policy.clock.now_ms() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        Ok(self.inner.store.delete_expired(before).await?)
    }

    /// The job that deletes finished tasks a day after their results expired.
    pub fn cleanup_job(&self) -> scheduler::JobDef {
        let tasks = self.clone();
        scheduler::JobDef::new(
            "tasks.cleanup",
            scheduler::Schedule::Every(Duration::from_secs(3600)),
            move |_| {
                let tasks = tasks.clone();
                async move {
                    let deleted = tasks
                        .delete_expired(Duration::from_secs(86_400))
                        .await
                        .map_err(|err| err.to_string())?;
                    tracing::info!(deleted, "expired tasks deleted");
                    Ok(())
                }
            },
        )
    }

    /// Starts the dispatcher. It stops claiming when `shutdown` is cancelled, gives
    /// running tasks [`TaskPolicy::drain_timeout`] to finish, hands the rest back to the
    /// queue, and then the returned handle completes.
    pub fn start(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(worker::dispatch(self.clone(), shutdown))
    }
}

/// This server's node id, kept in `<data_dir>/node-id` (created on first use). Each
/// server of a deployment has its own data directory, so its own id.
pub fn node_id(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(id.to_string());
        }
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(&path, &id)?;
    Ok(id)
}

/// A finished task as the in-memory caches keep it: ready to answer with, and weighed.
struct Finished {
    task: Task,
    expires_at: Option<i64>,
    weight: u32,
}

impl Finished {
    fn of(row: &store::TaskRow) -> Self {
        Self {
            task: row.task(),
            expires_at: row.expires_at,
            weight: row.weight(),
        }
    }
}

/// A cache of finished tasks holding at most `max_bytes` of them.
fn finished_cache<K>(max_bytes: u64) -> moka::sync::Cache<K, Arc<Finished>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .weigher(|_, finished: &Arc<Finished>| finished.weight)
        .max_capacity(max_bytes)
        .time_to_live(Duration::from_secs(600))
        .build()
}

/// `message`, cut to at most [`MAX_ERROR_BYTES`] at a character boundary.
fn bounded_message(mut message: String) -> String {
    if message.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
