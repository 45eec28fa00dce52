//! Counters of the task system: numbers for the admin dashboard, and the same counters
//! registered for `GET /metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Counters since this process started (queue depth comes from the database and is
/// set on each reading).
#[derive(Debug, Default)]
pub struct Counters {
    pub submitted: Counter,
    pub cache_hits: Counter,
    pub running: Gauge,
    pub completed: Counter,
    pub failed: Counter,
    pub retried: Counter,
    pub queue_depth: Gauge,
}

impl Counters {
    /// Registers every counter under `streamhut_tasks_`.
    pub fn register(&self, registry: &mut Registry) {
        let tasks = registry.sub_registry_with_prefix("streamhut_tasks");
        tasks.register(
            "queue_depth",
            "Tasks waiting to run (all processes).",
            self.queue_depth.clone(),
        );
        tasks.register(
            "running",
            "Tasks running in this process.",
            self.running.clone(),
        );
        tasks.register("submitted", "Task submissions.", self.submitted.clone());
        tasks.register(
            "cache_hits",
            "Submissions answered from a cached result.",
            self.cache_hits.clone(),
        );
        tasks.register("completed", "Tasks completed.", self.completed.clone());
        tasks.register("failed", "Tasks that gave up.", self.failed.clone());
        tasks.register(
            "retried",
            "Attempts scheduled for a retry.",
            self.retried.clone(),
        );
    }
}

/// A reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetrics {
    /// Tasks waiting to run (all processes).
    pub queue_depth: u64,
    /// Tasks running in this process now.
    pub running: u64,
    /// Submissions received by this process.
    pub submitted: u64,
    /// Submissions answered from a cached result.
    pub cache_hits: u64,
    /// Tasks this process completed.
    pub completed: u64,
    /// Tasks this process gave up on.
    pub failed: u64,
    /// Attempts this process scheduled for a retry.
    pub retried: u64,
}

impl TaskMetrics {
    /// Reads the counters, after recording `queue_depth` as the current depth.
    pub(super) fn read(counters: &Counters, queue_depth: u64) -> Self {
        counters
            .queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        Self {
            queue_depth,
            running: u64::try_from(counters.running.get()).unwrap_or(0),
            submitted: counters.submitted.get(),
            cache_hits: counters.cache_hits.get(),
            completed: counters.completed.get(),
            failed: counters.failed.get(),
            retried: counters.retried.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_exposed_in_the_openmetrics_text() {
        let counters = Counters::default();
        counters.completed.inc();
        counters.cache_hits.inc();
        TaskMetrics::read(&counters, 7);
        let mut registry = Registry::default();
        counters.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("streamhut_tasks_queue_depth 7\n"), "{text}");
        assert!(
            text.contains("streamhut_tasks_completed_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("streamhut_tasks_cache_hits_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE streamhut_tasks_running gauge\n"),
            "{text}"
        );
    }
}
