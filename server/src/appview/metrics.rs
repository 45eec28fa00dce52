//! What the AppView counts for `/metrics`: per followed host, the firehose events
//! applied and how far behind the newest applied event was when it arrived; per
//! creator sync, how long it took and whether it succeeded.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The AppView's metrics; clones share the same counters.
#[derive(Debug, Clone)]
pub struct AppViewMetrics {
    firehose_events: Family<HostLabels, Counter>,
    firehose_lag: Family<HostLabels, Gauge<f64, AtomicU64>>,
    sync_seconds: Family<OutcomeLabels, Histogram>,
}

impl Default for AppViewMetrics {
    fn default() -> Self {
        Self {
            firehose_events: Family::default(),
            firehose_lag: Family::default(),
            // 10 ms to about 160 s.
            sync_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 15))
            }),
        }
    }
}

impl AppViewMetrics {
    /// Registers every metric under `streamhut_appview_`.
    pub fn register(&self, registry: &mut Registry) {
        let appview = registry.sub_registry_with_prefix("streamhut_appview");
        appview.register(
            "firehose_events",
            "Firehose commits applied, by PDS host.",
            self.firehose_events.clone(),
        );
        appview.register(
            "firehose_lag_seconds",
            "How old the last applied firehose commit was when it was applied, by PDS host.",
            self.firehose_lag.clone(),
        );
        appview.register(
            "sync_duration_seconds",
            "How long creator syncs took, by outcome (ok, failed).",
            self.sync_seconds.clone(),
        );
    }

    /// Records a commit from `host` applied `lag` after it was made (if it said when).
    pub(super) fn firehose_event(&self, host: &str, lag: Option<Duration>) {
        let labels = HostLabels {
            host: host.to_string(),
        };
        self.firehose_events.get_or_create(&labels).inc();
        if let Some(lag) = lag {
            self.firehose_lag
                .get_or_create(&labels)
                .set(lag.as_secs_f64());
        }
    }

    /// Records a creator sync that took `took`.
    pub(super) fn sync(&self, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        self.sync_seconds
            .get_or_create(&OutcomeLabels { outcome })
            .observe(took.as_secs_f64());
    }
}
