//! What a task is: a name, a handler and its policies.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The future a handler returns.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, TaskFailure>> + Send>>;
type Handler = dyn Fn(TaskContext) -> TaskFuture + Send + Sync;
type Validator = dyn Fn(&Value) -> Result<(), String> + Send + Sync;

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

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Shown to clients as the task's error.
    pub message: String,
    /// Whether another attempt could succeed.
    pub retryable: bool,
}

impl TaskFailure {
    /// A failure worth retrying (an upstream timeout, say).
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry will fix (the input names nothing, say).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
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
    pub(super) handler: Arc<Handler>,
    pub(super) validate: Option<Arc<Validator>>,
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
            handler: Arc::new(move |ctx| Box::pin(handler(ctx))),
            validate: None,
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
                serde_json::to_value(output)
                    .map_err(|err| TaskFailure::fatal(format!("unserialisable output: {err}")))
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
