//! Invocation logs: one line per call of a bundle's export (when, which version and
//! export, how it ended, how long it took, the error, what it printed with `console`),
//! kept seven days for the bundle's author to read (`at-run logs [--follow]`,
//! `GET /bundle/{actor}/{name}/logs`).
//!
//! Calls never wait for the log: lines go through a bounded channel to a writer that
//! stores them in batches (one transaction a second at most), and are dropped, and
//! counted, when the writer falls behind.
//!
//! Anyone can call a bundle, so the log is bounded per bundle and per author, not only
//! in time: each bundle keeps its newest `ATRUN_LOG_LINES_PER_BUNDLE` invocations and at
//! most [`BYTES_PER_BUNDLE`] bytes, each author ten times that over all their bundles;
//! what one call printed is bounded by the sandbox (lines, bytes, line length).

use std::time::Duration;

use libsql::params;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sandbox::ConsoleLine;
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
/// Bytes of log (console output mostly) kept per bundle; ten times that per author.
pub const BYTES_PER_BUNDLE: i64 = 4 * 1024 * 1024;

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
    /// What it printed.
    pub console: Vec<ConsoleLine>,
}

/// One line as the author reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Its place in the log: `after=` this returns the lines stored since.
    pub id: i64,
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
    /// What it printed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console: Vec<ConsoleLine>,
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

    /// Lines of `did`'s bundle `name`: the latest `limit`, newest first; or, `after` a
    /// line's id, the first `limit` stored since, oldest first (what following reads).
    pub async fn recent(
        &self,
        did: &Did,
        name: &str,
        limit: u32,
        after: Option<i64>,
    ) -> Result<Vec<LogLine>, DbError> {
        let limit = i64::from(limit.min(MAX_LINES));
        let columns = "id, at, version, export, kind, status, duration_ms, error, console";
        let mut params = vec![
            libsql::Value::from(did.as_str().to_string()),
            libsql::Value::from(name.to_string()),
        ];
        let sql = match after {
            None => format!(
                "SELECT {columns} FROM bundle_invocations
                 WHERE did = ?1 AND name = ?2 ORDER BY id DESC LIMIT ?3"
            ),
            Some(after) => {
                params.push(libsql::Value::from(after));
                format!(
                    "SELECT {columns} FROM bundle_invocations
                     WHERE did = ?1 AND name = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
                )
            }
        };
        params.push(libsql::Value::from(limit));
        self.db.read(&sql, params, log_line).await
    }
}

fn log_line(row: &libsql::Row) -> Result<LogLine, DbError> {
    let console: Option<String> = row.get(8)?;
    Ok(LogLine {
        id: row.get(0)?,
        at: rfc3339(row.get(1)?),
        version: row.get(2)?,
        export: row.get(3)?,
        kind: row.get(4)?,
        status: row.get(5)?,
        duration_ms: row.get(6)?,
        error: row.get(7)?,
        console: console
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
    })
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
                let console = (!line.console.is_empty())
                    .then(|| serde_json::to_string(&line.console).ok())
                    .flatten();
                let bytes = [line.did.as_str(), &line.name, &line.version, &line.export]
                    .iter()
                    .map(|text| text.len())
                    .sum::<usize>()
                    + line.error.as_ref().map_or(0, String::len)
                    + console.as_ref().map_or(0, String::len)
                    + 64;
                tx.execute(
                    "INSERT INTO bundle_invocations
                       (did, name, version, export, kind, status, duration_ms, error, at, console, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        line.did.as_str(),
                        line.name.as_str(),
                        line.version.as_str(),
                        line.export.as_str(),
                        line.kind,
                        line.status,
                        i64::try_from(line.duration.as_millis()).unwrap_or(i64::MAX),
                        line.error.clone(),
                        *at,
                        console,
                        i64::try_from(bytes).unwrap_or(i64::MAX)
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
            // Then by bytes: the newest rows within the budget stay.
            for (did, name) in &bundles {
                tx.execute(
                    "DELETE FROM bundle_invocations WHERE did = ?1 AND name = ?2 AND id <= (
                       SELECT id FROM (
                         SELECT id, SUM(bytes) OVER (ORDER BY id DESC) AS total
                         FROM bundle_invocations WHERE did = ?1 AND name = ?2)
                       WHERE total > ?3 ORDER BY id DESC LIMIT 1)",
                    params![*did, *name, BYTES_PER_BUNDLE],
                )
                .await?;
            }
            for did in &authors {
                tx.execute(
                    "DELETE FROM bundle_invocations WHERE did = ?1 AND id <= (
                       SELECT id FROM (
                         SELECT id, SUM(bytes) OVER (ORDER BY id DESC) AS total
                         FROM bundle_invocations WHERE did = ?1)
                       WHERE total > ?2 ORDER BY id DESC LIMIT 1)",
                    params![*did, BYTES_PER_BUNDLE * i64::from(AUTHOR_LINES_FACTOR)],
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
