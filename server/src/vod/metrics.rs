//! What VOD counts for `/metrics`: ffmpeg runs by outcome and their durations, image
//! cache hits and misses, and the bytes the image cache holds.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// VOD's metrics; clones share the same counters.
#[derive(Debug, Clone)]
pub struct VodMetrics {
    ffmpeg_runs: Family<OutcomeLabels, Counter>,
    ffmpeg_seconds: Histogram,
    cache_lookups: Family<OutcomeLabels, Counter>,
    cache_bytes: Gauge,
}

impl Default for VodMetrics {
    fn default() -> Self {
        Self {
            ffmpeg_runs: Family::default(),
            // 10 ms to about 80 s.
            ffmpeg_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            cache_lookups: Family::default(),
            cache_bytes: Gauge::default(),
        }
    }
}

impl VodMetrics {
    /// Registers every metric under `streamhut_vod_`.
    pub fn register(&self, registry: &mut Registry) {
        let vod = registry.sub_registry_with_prefix("streamhut_vod");
        vod.register(
            "ffmpeg_runs",
            "ffmpeg runs, by outcome (ok, no_frame, failed, timeout).",
            self.ffmpeg_runs.clone(),
        );
        vod.register(
            "ffmpeg_duration_seconds",
            "How long ffmpeg runs took.",
            self.ffmpeg_seconds.clone(),
        );
        vod.register(
            "image_cache_lookups",
            "Thumbnail, sprite and storyboard lookups in the image cache, by outcome (hit, miss).",
            self.cache_lookups.clone(),
        );
        vod.register(
            "image_cache_bytes",
            "Bytes of images in the cache.",
            self.cache_bytes.clone(),
        );
    }

    /// Records an ffmpeg run that took `took` and ended as `outcome`.
    pub(super) fn ffmpeg(&self, outcome: &'static str, took: Duration) {
        self.ffmpeg_runs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.ffmpeg_seconds.observe(took.as_secs_f64());
    }

    /// Records an image cache lookup.
    pub(super) fn cache_lookup(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records the image cache's size.
    pub(super) fn cache_size(&self, bytes: u64) {
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
