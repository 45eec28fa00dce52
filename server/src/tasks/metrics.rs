//! Counters of the task system, as numbers for the admin dashboard and as Prometheus
//! text for `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters since this process started (queue depth comes from the database).
#[derive(Debug, Default)]
pub struct Counters {
    pub submitted: AtomicU64,
    pub cache_hits: AtomicU64,
    pub running: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
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
    pub(super) fn read(counters: &Counters, queue_depth: u64) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Self {
            queue_depth,
            running: get(&counters.running),
            submitted: get(&counters.submitted),
            cache_hits: get(&counters.cache_hits),
            completed: get(&counters.completed),
            failed: get(&counters.failed),
            retried: get(&counters.retried),
        }
    }

    /// The Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP streamhut_tasks_{name} {help}");
            let _ = writeln!(out, "# TYPE streamhut_tasks_{name} {kind}");
            let _ = writeln!(out, "streamhut_tasks_{name} {value}");
        };
        metric(
            "queue_depth",
            "gauge",
            "Tasks waiting to run.",
            self.queue_depth,
        );
        metric(
            "running",
            "gauge",
            "Tasks running in this process.",
            self.running,
        );
        metric(
            "submitted_total",
            "counter",
            "Task submissions.",
            self.submitted,
        );
        metric(
            "cache_hits_total",
            "counter",
            "Submissions answered from a cached result.",
            self.cache_hits,
        );
        metric(
            "completed_total",
            "counter",
            "Tasks completed.",
            self.completed,
        );
        metric(
            "failed_total",
            "counter",
            "Tasks that gave up.",
            self.failed,
        );
        metric(
            "retried_total",
            "counter",
            "Attempts scheduled for a retry.",
            self.retried,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_counter() {
        let counters = Counters::default();
        Counters::add(&counters.completed);
        Counters::add(&counters.cache_hits);
        let text = TaskMetrics::read(&counters, 7).to_prometheus();
        assert!(text.contains("streamhut_tasks_queue_depth 7\n"));
        assert!(text.contains("streamhut_tasks_completed_total 1\n"));
        assert!(text.contains("streamhut_tasks_cache_hits_total 1\n"));
        assert!(text.contains("# TYPE streamhut_tasks_running gauge\n"));
    }
}
