//! Invocation logs: one line per call of a bundle's export (when, which version and
//! export, how it ended, how long it took, the error), kept seven days for the bundle's
//! author to read (`at-run logs`, `GET /bundle/{actor}/{name}/logs`).
//!
//! Calls never wait for the log: lines go through a bounded channel to a writer that
//! stores them in batches (one transaction a second at most), and are dropped, and
//! counted, when the writer falls behind.
//!
//! Anyone can call a bundle, so the log is bounded per bundle and per author, not only
//! in time: each bundle keeps its newest `ATRUN_LOG_LINES_PER_BUNDLE` lines and each
//! author ten times that over all their bundles; a line is at most about 700 bytes.

use std::time::Duration;

use libsql::params;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::atproto::syntax::Did;
use crate::db::{Db, DbError, Writer};
use crate::tasks::{now_ms, rfc3339};

/// Lines waiting to be stored, at most.
const QUEUE: usize = 10_000;
/// How long lines are kept.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest error text kept per line.
const MAX_ERROR_CHARS: usize = 500;
/// Most lines returned by one read.
pub const MAX_LINES: u32 = 500;
/// How many more lines an author keeps over all their bundles than one bundle keeps.
const AUTHOR_LINES_FACTOR: u32 = 10;

/// One invocation, as stored.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The author's DID.
    pub did: Did,
    /// The bundle.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The export called.
    pub export: String,
    /// `endpoint`, `task` or `job`.
    pub kind: &'static str,
    /// `ok`, or the kind of failure (`handler_error`, `timeout`, …).
    pub status: &'static str,
    /// How long it took.
    pub duration: Duration,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// One line as the author reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// When it ended (RFC 3339).
    pub at: String,
    /// The version called.
    pub version: String,
    /// The export called.
    pub export: String,
    /// `endpoint`, `task` or `job`.
    pub kind: String,
    /// `ok`, or the kind of failure.
    pub status: String,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The log; cheap to clone.
#[derive(Clone)]
pub struct InvocationLog {
    db: Db,
    lines: mpsc::Sender<(Invocation, i64)>,
    /// Lines dropped because the writer was behind (a metric).
    dropped: Counter,
}

impl InvocationLog {
    /// Starts the writer over `db`, keeping `lines_per_bundle` lines per bundle; it
    /// stops (storing what it holds) with `shutdown`.
    pub async fn start(
        db: Db,
        lines_per_bundle: u32,
        shutdown: CancellationToken,
    ) -> Result<Self, DbError> {
        let writer = db.writer().await?;
        let (lines, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write(writer, queue, lines_per_bundle.max(1), shutdown));
        Ok(Self {
            db,
            lines,
            dropped: Counter::default(),
        })
    }

    /// Registers `streamhut_runner_log_lines_dropped_total` for `/metrics`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "streamhut_runner_log_lines_dropped",
            "Invocation log lines dropped because the database was behind.",
            self.dropped.clone(),
        );
    }

    /// Records `invocation` without waiting.
    pub fn record(&self, mut invocation: Invocation) {
        if let Some(error) = &mut invocation.error
            && let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_CHARS)
        {
            error.truncate(cut);
            error.push('…');
        }
        if self.lines.try_send((invocation, now_ms())).is_err()
            && self.dropped.inc().is_multiple_of(1000)
        {
            tracing::warn!("invocation log lines are being dropped: the database is behind");
        }
    }

    /// The latest `limit` lines of `did`'s bundle `name`, newest first.
    pub async fn recent(&self, did: &Did, name: &str, limit: u32) -> Result<Vec<LogLine>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT at, version, export, kind, status, duration_ms, error FROM bundle_invocations
                 WHERE did = ?1 AND name = ?2 ORDER BY at DESC, id DESC LIMIT ?3",
                params![did.as_str(), name, i64::from(limit.min(MAX_LINES))],
            )
            .await?;
        let mut lines = Vec::new();
        while let Some(row) = rows.next().await? {
            lines.push(LogLine {
                at: rfc3339(row.get(0)?),
                version: row.get(1)?,
                export: row.get(2)?,
                kind: row.get(3)?,
                status: row.get(4)?,
                duration_ms: row.get(5)?,
                error: row.get(6)?,
            });
        }
        Ok(lines)
    }
}

/// Stores queued lines in batches until `shutdown`, and forgets lines older than
/// [`KEEP`] once a minute.
async fn write(
    writer: Writer,
    mut queue: mpsc::Receiver<(Invocation, i64)>,
    lines_per_bundle: u32,
    shutdown: CancellationToken,
) {
    let mut pruned_at = 0;
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            received = queue.recv_many(&mut batch, 500) => {
                if received == 0 {
                    return;
                }
            }
            () = shutdown.cancelled() => {
                queue.close();
                while queue.recv_many(&mut batch, 500).await > 0 {}
                let _ = store(&writer, &batch, lines_per_bundle, None).await;
                return;
            }
        }
        let now = now_ms();
        let prune = (now - pruned_at > 60_000).then(|| now - KEEP.as_millis() as i64);
        if let Err(err) = store(&writer, &batch, lines_per_bundle, prune).await {
            tracing::warn!(error = %err, lines = batch.len(), "storing invocation log lines failed");
        } else if prune.is_some() {
            pruned_at = now;
        }
        // At most one transaction a second; lines wait in the queue meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn store(
    writer: &Writer,
    batch: &[(Invocation, i64)],
    lines_per_bundle: u32,
    prune_before: Option<i64>,
) -> Result<(), DbError> {
    let bundles: std::collections::BTreeSet<(&str, &str)> = batch
        .iter()
        .map(|(line, _)| (line.did.as_str(), line.name.as_str()))
        .collect();
    let authors: std::collections::BTreeSet<&str> = bundles.iter().map(|(did, _)| *did).collect();
    writer
        .transaction(async |tx| {
            for (line, at) in batch {
                tx.execute(
                    "INSERT INTO bundle_invocations (did, name, version, export, kind, status, duration_ms, error, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        line.did.as_str(),
                        line.name.as_str(),
                        line.version.as_str(),
                        line.export.as_str(),
                        line.kind,
                        line.status,
                        i64::try_from(line.duration.as_millis()).unwrap_or(i64::MAX),
                        line.error.clone(),
                        *at
                    ],
                )
                .await?;
            }
            for (did, name) in &bundles {
                tx.execute(
                    "DELETE FROM bundle_invocations WHERE did = ?1 AND name = ?2 AND id <= (
                       SELECT id FROM bundle_invocations WHERE did = ?1 AND name = ?2
                       ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                    params![*did, *name, i64::from(lines_per_bundle)],
                )
                .await?;
            }
            for did in &authors {
                tx.execute(
                    "DELETE FROM bundle_invocations WHERE did = ?1 AND id <= (
                       SELECT id FROM bundle_invocations WHERE did = ?1
                       ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![*did, i64::from(lines_per_bundle.saturating_mul(AUTHOR_LINES_FACTOR))],
                )
                .await?;
            }
            if let Some(before) = prune_before {
                tx.execute("DELETE FROM bundle_invocations WHERE at < ?1", [before])
                    .await?;
            }
            Ok(())
        })
        .await
}
