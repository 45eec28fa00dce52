//! What the runner counts for `/metrics`: calls by kind and outcome with their
//! durations, calls that had to wait for a process to start, live processes, and
//! invocations refused before any code ran.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::RunnerError;

/// How an export was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// An endpoint, called over HTTP.
    Endpoint,
    /// A task attempt, run by the task system.
    Task,
    /// A scheduled job.
    Job,
}

impl CallKind {
    /// Its name in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Task => "task",
            Self::Job => "job",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The runner's metrics; clones share the same counters.
#[derive(Debug, Clone)]
pub struct RunnerMetrics {
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<KindLabels, Histogram>,
    cold_starts: Counter,
    refusals: Family<ReasonLabels, Counter>,
    live: Gauge,
}

impl Default for RunnerMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            // 1 ms to about 65 s.
            call_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
            cold_starts: Counter::default(),
            refusals: Family::default(),
            live: Gauge::default(),
        }
    }
}

impl RunnerMetrics {
    /// Registers every metric under `streamhut_runner_`.
    pub fn register(&self, registry: &mut Registry) {
        let runner = registry.sub_registry_with_prefix("streamhut_runner");
        runner.register(
            "calls",
            "Bundle calls run, by kind and outcome.",
            self.calls.clone(),
        );
        runner.register(
            "call_duration_seconds",
            "How long bundle calls took, by kind.",
            self.call_seconds.clone(),
        );
        runner.register(
            "cold_starts",
            "Calls that waited for a bundle process to start.",
            self.cold_starts.clone(),
        );
        runner.register(
            "refusals",
            "Invocations refused before any code ran, by reason.",
            self.refusals.clone(),
        );
        runner.register("processes", "Live bundle processes.", self.live.clone());
    }

    /// Records a call of `kind` that took `took` and ended in `result`.
    pub(super) fn call<T>(&self, kind: CallKind, took: Duration, result: &Result<T, RunnerError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(err) => err.label(),
        };
        self.calls
            .get_or_create(&CallLabels {
                kind: kind.label(),
                outcome,
            })
            .inc();
        self.call_seconds
            .get_or_create(&KindLabels { kind: kind.label() })
            .observe(took.as_secs_f64());
    }

    /// Records that a call had to wait for a process to start.
    pub(super) fn cold_start(&self) {
        self.cold_starts.inc();
    }

    /// Records an invocation refused with `err` before any code ran.
    pub(super) fn refused(&self, err: &RunnerError) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: err.label(),
            })
            .inc();
    }

    /// Records how many bundle processes are alive.
    pub(super) fn processes(&self, live: usize) {
        self.live.set(i64::try_from(live).unwrap_or(i64::MAX));
    }
}
