//! What a task is: a name, a handler and its policies.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{FailureKind, TaskError};

/// The future a handler returns.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, TaskFailure>> + Send>>;
type Handler = dyn Fn(TaskContext) -> TaskFuture + Send + Sync;
type Validator = dyn Fn(&Value) -> Result<(), String> + Send + Sync;
type AdmitFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;
type Admit = dyn Fn(Value) -> AdmitFuture + Send + Sync;

/// What a handler gets.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task's id.
    pub id: String,
    /// Its input.
    pub input: Value,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

/// Why an attempt failed: a public message (what clients see as the task's error), the
/// internal cause (only the log sees it), what kind of failure it is, and whether
/// another attempt could succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Shown to clients as the task's error: never an internal detail.
    pub message: String,
    /// The internal cause, logged with the task's id, never stored or shown.
    pub cause: Option<String>,
    /// Whose fault it is, so which status the HTTP edge answers.
    pub kind: FailureKind,
    /// Whether another attempt could succeed.
    pub retryable: bool,
}

impl TaskFailure {
    /// A failure worth retrying (an upstream timeout, say); an internal one unless
    /// [`Self::kind`] says otherwise.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: None,
            kind: FailureKind::Internal,
            retryable: true,
        }
    }

    /// A failure no retry will fix, caused by the input unless [`Self::kind`] says
    /// otherwise (the input names nothing, say).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: None,
            kind: FailureKind::Input,
            retryable: false,
        }
    }

    /// The same failure, of kind `kind`.
    pub fn kind(mut self, kind: FailureKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same failure, with an internal `cause` for the log.
    pub fn because(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A kind of task. Build one with [`TaskDef::new`] or [`TaskDef::typed`] and register it
/// with [`super::TaskSystem::register`].
#[derive(Clone)]
pub struct TaskDef {
    pub(super) name: String,
    pub(super) concurrency: u32,
    pub(super) cache_ttl: Duration,
    pub(super) failure_ttl: Option<Duration>,
    pub(super) timeout: Duration,
    pub(super) max_attempts: u32,
    pub(super) backoff: Duration,
    pub(super) public: bool,
    pub(super) per_owner: Option<u32>,
    pub(super) handler: Arc<Handler>,
    pub(super) validate: Option<Arc<Validator>>,
    pub(super) admit: Option<Arc<Admit>>,
}

impl fmt::Debug for TaskDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskDef")
            .field("name", &self.name)
            .field("concurrency", &self.concurrency)
            .field("cache_ttl", &self.cache_ttl)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl TaskDef {
    /// A task whose handler takes and returns JSON. Defaults: concurrency 1, results
    /// reused for 1 hour, 60 s timeout, 3 attempts with backoff from 1 s, not public.
    pub fn new<F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskFailure>> + Send + 'static,
    {
        Self {
            name: name.into(),
            concurrency: 1,
            cache_ttl: Duration::from_secs(3600),
            failure_ttl: None,
            timeout: Duration::from_secs(60),
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            public: false,
            per_owner: None,
            handler: Arc::new(move |ctx| Box::pin(handler(ctx))),
            validate: None,
            admit: None,
        }
    }

    /// A task with typed input and output: input that does not deserialise into `I` is
    /// refused at submission, before anything is stored.
    pub fn typed<I, O, F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskFailure>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let mut def = Self::new(name, move |ctx: TaskContext| {
            let handler = handler.clone();
            async move {
                let input: I = serde_json::from_value(ctx.input.clone())
                    .map_err(|err| TaskFailure::fatal(format!("invalid input: {err}")))?;
                let output = handler(input, ctx).await?;
                serde_json::to_value(output).map_err(|err| {
                    TaskFailure::fatal("the task's output could not be stored")
                        .kind(FailureKind::Internal)
                        .because(err)
                })
            }
        });
        def.validate = Some(Arc::new(|value: &Value| {
            serde_json::from_value::<I>(value.clone())
                .map(drop)
                .map_err(|err| err.to_string())
        }));
        def
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether clients may submit it (`POST /api/tasks`, a native bundle's task route).
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// Its concurrency limit and how long its results are reused.
    pub fn limits(&self) -> (u32, Duration) {
        (self.concurrency, self.cache_ttl)
    }

    /// The most executions at once, across every process sharing the database.
    pub fn concurrency(mut self, limit: u32) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// How long a completed result is reused for the same input.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long a failure is reused for the same input (default: the system's).
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.failure_ttl = Some(ttl);
        self
    }

    /// The longest one attempt may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts before giving up (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Delay before the second attempt; it doubles for each further one.
    pub fn backoff(mut self, base: Duration) -> Self {
        self.backoff = base;
        self
    }

    /// Whether `POST /api/tasks/{name}` may submit it.
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// The most tasks of one owner (see [`super::Lane::owner`]) running at once, across
    /// all processes: so one owner cannot take every slot of a kind shared by many.
    pub fn per_owner(mut self, limit: u32) -> Self {
        self.per_owner = Some(limit.max(1));
        self
    }

    /// A check every new submission passes before it becomes a row (a cached or
    /// in-flight task for the same input skips it): whatever the input names must exist,
    /// say. It may read the database or the network; it refuses with
    /// [`TaskError::InvalidInput`] or [`TaskError::NotFound`].
    pub fn admit<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        self.admit = Some(Arc::new(move |input| Box::pin(check(input))));
        self
    }

    /// Delay before attempt `next_attempt` (2, 3, …): `backoff × 2^(next_attempt − 2)`,
    /// at most ten minutes.
    pub(super) fn backoff_before(&self, next_attempt: u32) -> Duration {
        let doublings = next_attempt.saturating_sub(2).min(20);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let def =
            TaskDef::new("t", |_| async { Ok(Value::Null) }).backoff(Duration::from_millis(100));
        assert_eq!(def.backoff_before(2), Duration::from_millis(100));
        assert_eq!(def.backoff_before(3), Duration::from_millis(200));
        assert_eq!(def.backoff_before(5), Duration::from_millis(800));
        assert_eq!(def.backoff_before(40), Duration::from_secs(600));
    }

    #[test]
    fn typed_tasks_validate_their_input() {
        #[derive(serde::Deserialize)]
        struct In {
            uri: String,
        }
        let def = TaskDef::typed("t", |input: In, _| async move { Ok(input.uri.len()) });
        let validate = def.validate.expect("validator");
        assert!(validate(&serde_json::json!({"uri": "at://x"})).is_ok());
        let err = validate(&serde_json::json!({"url": 1})).expect_err("missing field");
        assert!(err.contains("uri"), "{err}");
    }
}
