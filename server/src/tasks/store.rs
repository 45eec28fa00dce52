//! The tasks table: every state change is one SQL transaction.
//!
//! Writes go through one connection per process behind an async mutex (SQLite has one
//! writer anyway; queueing in-process avoids busy-waiting on the file lock), and take
//! the write lock up front (`BEGIN IMMEDIATE`) so that read-then-write decisions (is
//! there a current row for this input? is this task claimable?) are atomic across
//! processes sharing the file.

use std::collections::HashMap;

use app::tasks::{TaskStatus, TaskView};
use chrono::{TimeZone, Utc};
use libsql::params;

use crate::db::{Db, DbError, Writer};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(crate::atproto::syntax::datetime)
        .unwrap_or_default()
}

/// A stored task.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: String,
    pub status: TaskStatus,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TaskRow {
    pub fn view(&self) -> TaskView {
        TaskView {
            id: self.id.clone(),
            status: self.status,
            result: self
                .result
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
            error: self.error.clone(),
            attempts: self.attempts,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }

    /// Whether a submission of the same input may reuse this row at `now`.
    pub fn reusable(&self, now: i64) -> bool {
        match self.status {
            TaskStatus::Pending | TaskStatus::Running => true,
            TaskStatus::Complete | TaskStatus::Failed => self.expires_at.is_some_and(|at| at > now),
        }
    }
}

const COLUMNS: &str = "id, status, result, error, attempts, expires_at, created_at, updated_at";

fn parse_status(value: &str) -> TaskStatus {
    match value {
        "running" => TaskStatus::Running,
        "complete" => TaskStatus::Complete,
        "failed" => TaskStatus::Failed,
        _ => TaskStatus::Pending,
    }
}

fn row(row: &libsql::Row) -> Result<TaskRow, DbError> {
    Ok(TaskRow {
        id: row.get(0)?,
        status: parse_status(&row.get::<String>(1)?),
        result: row.get(2)?,
        error: row.get(3)?,
        attempts: u32::try_from(row.get::<i64>(4)?).unwrap_or(0),
        expires_at: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

/// A task this process has just leased.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub name: String,
    pub input: String,
    pub attempt: u32,
    /// Its own cache TTL (its lane's), overriding its kind's.
    pub cache_ttl_ms: Option<i64>,
}

/// A claimable row, as the claim step reads it.
struct Candidate {
    id: String,
    name: String,
    input: String,
    attempts: u32,
    /// The lane and its concurrency limit, if the task has one.
    lane: Option<(String, u32)>,
    cache_ttl_ms: Option<i64>,
}

/// What the claim step needs to know about a registered task kind.
#[derive(Debug, Clone, Copy)]
pub struct ClaimPolicy {
    pub concurrency: u32,
    pub max_attempts: u32,
    pub failure_ttl_ms: i64,
}

/// How an attempt ended, as the store records it.
pub enum Outcome {
    Complete { result: String, expires_at: i64 },
    Retry { error: String, run_at: i64 },
    Failed { error: String, expires_at: i64 },
}

/// The task tables.
pub struct Store {
    db: Db,
    write: Writer,
}

impl Store {
    pub async fn open(db: Db) -> Result<Self, DbError> {
        let write = db.writer().await?;
        Ok(Self { db, write })
    }

    /// The current task for this input, if it may be reused at `now`; a plain read, so
    /// cache hits never wait for the write lock.
    pub async fn reusable(
        &self,
        name: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<TaskRow>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                &format!("SELECT {COLUMNS} FROM tasks WHERE name = ?1 AND dedupe_key = ?2 AND current = 1"),
                params![name, key],
            )
            .await?;
        match rows.next().await? {
            Some(r) => Ok(Some(row(&r)?).filter(|task| task.reusable(now))),
            None => Ok(None),
        }
    }

    /// The current task for this input if it may be reused, else a new pending one
    /// (checked again under the write lock). Returns the row and whether it was reused.
    pub async fn submit(
        &self,
        name: &str,
        key: &str,
        input: &str,
        max_attempts: u32,
        lane: Option<&super::Lane>,
        now: i64,
    ) -> Result<(TaskRow, bool), DbError> {
        self.write.transaction(async |tx| {
            let mut rows = tx
                .query(
                    &format!("SELECT {COLUMNS} FROM tasks WHERE name = ?1 AND dedupe_key = ?2 AND current = 1"),
                    params![name, key],
                )
                .await?;
            let existing = match rows.next().await? {
                Some(r) => Some(row(&r)?),
                None => None,
            };
            drop(rows);
            if let Some(existing) = existing {
                if existing.reusable(now) {
                    return Ok((existing, true));
                }
                tx.execute("UPDATE tasks SET current = NULL WHERE id = ?1", [existing.id.as_str()])
                    .await?;
            }
            let created = TaskRow {
                id: uuid::Uuid::now_v7().simple().to_string(),
                status: TaskStatus::Pending,
                result: None,
                error: None,
                attempts: 0,
                expires_at: None,
                created_at: now,
                updated_at: now,
            };
            tx.execute(
                "INSERT INTO tasks (id, name, dedupe_key, current, input, status, attempts, max_attempts, run_at,
                                    created_at, updated_at, lane, lane_limit, cache_ttl_ms)
                 VALUES (?1, ?2, ?3, 1, ?4, 'pending', 0, ?5, ?6, ?6, ?6, ?7, ?8, ?9)",
                params![
                    created.id.as_str(),
                    name,
                    key,
                    input,
                    i64::from(max_attempts),
                    now,
                    lane.map(|lane| lane.key.clone()),
                    lane.map(|lane| i64::from(lane.concurrency)),
                    lane.map(|lane| i64::try_from(lane.cache_ttl.as_millis()).unwrap_or(i64::MAX)),
                ],
            )
            .await?;
            Ok((created, false))
        })
        .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<TaskRow>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"), [id])
            .await?;
        match rows.next().await? {
            Some(r) => Ok(Some(row(&r)?)),
            None => Ok(None),
        }
    }

    /// Whether anything of `names` is claimable at `now`, without taking the write lock.
    pub async fn anything_claimable(&self, names: &[String], now: i64) -> Result<bool, DbError> {
        if names.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "SELECT 1 FROM tasks WHERE ((status = 'pending' AND run_at <= ?1)
               OR (status = 'running' AND lease_expires_at <= ?1)) AND name IN ({}) LIMIT 1",
            placeholders(2, names.len())
        );
        let mut params: Vec<libsql::Value> = vec![now.into()];
        params.extend(names.iter().map(|n| libsql::Value::from(n.clone())));
        let mut rows = self.db.conn().query(&sql, params).await?;
        Ok(rows.next().await?.is_some())
    }

    /// Leases up to `limit` claimable tasks, respecting each kind's concurrency across
    /// all processes. Tasks whose lease expired too often are failed instead.
    pub async fn claim(
        &self,
        policies: &HashMap<String, ClaimPolicy>,
        worker: &str,
        lease_ms: i64,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Claimed>, DbError> {
        if policies.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = policies.keys().cloned().collect();
        self.write.transaction(async |tx| {
            let mut running: HashMap<String, u32> = HashMap::new();
            let mut rows = tx
                .query(
                    "SELECT name, COUNT(*) FROM tasks WHERE status = 'running' AND lease_expires_at > ?1 GROUP BY name",
                    [now],
                )
                .await?;
            while let Some(r) = rows.next().await? {
                running.insert(r.get(0)?, u32::try_from(r.get::<i64>(1)?).unwrap_or(u32::MAX));
            }
            drop(rows);
            let mut lanes: HashMap<String, u32> = HashMap::new();
            let mut rows = tx
                .query(
                    "SELECT lane, COUNT(*) FROM tasks
                     WHERE status = 'running' AND lane IS NOT NULL AND lease_expires_at > ?1 GROUP BY lane",
                    [now],
                )
                .await?;
            while let Some(r) = rows.next().await? {
                lanes.insert(r.get(0)?, u32::try_from(r.get::<i64>(1)?).unwrap_or(u32::MAX));
            }
            drop(rows);

            let sql = format!(
                "SELECT id, name, input, attempts, lane, lane_limit, cache_ttl_ms FROM tasks
                 WHERE ((status = 'pending' AND run_at <= ?1) OR (status = 'running' AND lease_expires_at <= ?1))
                   AND name IN ({}) ORDER BY run_at, id LIMIT ?2",
                placeholders(3, names.len())
            );
            let mut params: Vec<libsql::Value> = vec![now.into(), (limit as i64 * 4).into()];
            params.extend(names.iter().map(|n| libsql::Value::from(n.clone())));
            let mut rows = tx.query(&sql, params).await?;
            let mut candidates = Vec::new();
            while let Some(r) = rows.next().await? {
                candidates.push(Candidate {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    input: r.get(2)?,
                    attempts: u32::try_from(r.get::<i64>(3)?).unwrap_or(0),
                    lane: r.get::<Option<String>>(4)?.zip(
                        r.get::<Option<i64>>(5)?.map(|n| u32::try_from(n).unwrap_or(1)),
                    ),
                    cache_ttl_ms: r.get(6)?,
                });
            }
            drop(rows);

            let mut claimed = Vec::new();
            for Candidate { id, name, input, attempts, lane, cache_ttl_ms } in candidates {
                if claimed.len() >= limit {
                    break;
                }
                let Some(policy) = policies.get(&name) else { continue };
                if attempts >= policy.max_attempts {
                    tx.execute(
                        "UPDATE tasks SET status = 'failed', error = ?2, lease_owner = NULL, lease_expires_at = NULL,
                                expires_at = ?3, updated_at = ?4 WHERE id = ?1",
                        params![
                            id.as_str(),
                            format!("gave up after {attempts} attempts: the worker running it stopped"),
                            now + policy.failure_ttl_ms,
                            now
                        ],
                    )
                    .await?;
                    continue;
                }
                let busy = running.entry(name.clone()).or_insert(0);
                if *busy >= policy.concurrency {
                    continue;
                }
                if let Some((lane, limit)) = &lane {
                    let in_lane = lanes.entry(lane.clone()).or_insert(0);
                    if *in_lane >= *limit {
                        continue;
                    }
                    *in_lane += 1;
                }
                *busy += 1;
                tx.execute(
                    "UPDATE tasks SET status = 'running', attempts = attempts + 1, lease_owner = ?2,
                            lease_expires_at = ?3, updated_at = ?4 WHERE id = ?1",
                    params![id.as_str(), worker, now + lease_ms, now],
                )
                .await?;
                claimed.push(Claimed {
                    id,
                    name,
                    input,
                    attempt: attempts + 1,
                    cache_ttl_ms,
                });
            }
            Ok(claimed)
        })
        .await
    }

    /// Ends the leases that earlier processes of node `node` (not `worker`) still hold:
    /// they stopped without finishing, so their tasks are claimable now. Returns how many.
    pub async fn reclaim(&self, node: &str, worker: &str, now: i64) -> Result<u64, DbError> {
        let prefix = format!("{node}/");
        self.write
            .transaction(async |tx| {
                Ok(tx
                    .execute(
                        "UPDATE tasks SET lease_expires_at = ?3
                         WHERE status = 'running' AND lease_expires_at > ?3
                           AND substr(lease_owner, 1, length(?1)) = ?1 AND lease_owner != ?2",
                        params![prefix.as_str(), worker, now],
                    )
                    .await?)
            })
            .await
    }

    /// Extends this worker's lease; `false` if the lease is no longer ours.
    pub async fn renew(&self, id: &str, worker: &str, until: i64) -> Result<bool, DbError> {
        let changed = self
            .write
            .lock()
            .await
            .execute(
                "UPDATE tasks SET lease_expires_at = ?3 WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                params![id, worker, until],
            )
            .await?;
        Ok(changed > 0)
    }

    /// Records how an attempt ended, if this worker still holds the lease.
    pub async fn finish(
        &self,
        id: &str,
        worker: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<bool, DbError> {
        let conn = self.write.lock().await;
        let changed = match outcome {
            Outcome::Complete { result, expires_at } => {
                conn.execute(
                    "UPDATE tasks SET status = 'complete', result = ?3, error = NULL, lease_owner = NULL,
                            lease_expires_at = NULL, expires_at = ?4, updated_at = ?5
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                    params![id, worker, result, expires_at, now],
                )
                .await?
            }
            Outcome::Retry { error, run_at } => {
                conn.execute(
                    "UPDATE tasks SET status = 'pending', error = ?3, run_at = ?4, lease_owner = NULL,
                            lease_expires_at = NULL, updated_at = ?5
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                    params![id, worker, error, run_at, now],
                )
                .await?
            }
            Outcome::Failed { error, expires_at } => {
                conn.execute(
                    "UPDATE tasks SET status = 'failed', error = ?3, lease_owner = NULL,
                            lease_expires_at = NULL, expires_at = ?4, updated_at = ?5
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                    params![id, worker, error, expires_at, now],
                )
                .await?
            }
        };
        Ok(changed > 0)
    }

    /// Puts a task this worker could not finish (shutdown) back in the queue, without
    /// counting the interrupted attempt.
    pub async fn release(&self, id: &str, worker: &str, now: i64) -> Result<(), DbError> {
        self.write
            .lock()
            .await
            .execute(
                "UPDATE tasks SET status = 'pending', attempts = MAX(attempts - 1, 0), run_at = ?3,
                        lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                params![id, worker, now],
            )
            .await?;
        Ok(())
    }

    /// When something of `names` next becomes claimable (a delayed retry, a lease
    /// running out), if anything is waiting.
    pub async fn next_due(&self, names: &[String]) -> Result<Option<i64>, DbError> {
        if names.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT MIN(CASE status WHEN 'pending' THEN run_at ELSE lease_expires_at END)
             FROM tasks WHERE status IN ('pending', 'running') AND name IN ({})",
            placeholders(1, names.len())
        );
        let params: Vec<libsql::Value> = names
            .iter()
            .map(|n| libsql::Value::from(n.clone()))
            .collect();
        let mut rows = self.db.conn().query(&sql, params).await?;
        match rows.next().await? {
            Some(r) => Ok(r.get::<Option<i64>>(0)?),
            None => Ok(None),
        }
    }

    /// Tasks waiting to run.
    pub async fn queue_depth(&self) -> Result<u64, DbError> {
        let mut rows = self
            .db
            .conn()
            .query("SELECT COUNT(*) FROM tasks WHERE status = 'pending'", ())
            .await?;
        match rows.next().await? {
            Some(r) => Ok(u64::try_from(r.get::<i64>(0)?).unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Deletes finished tasks whose results expired before `before`.
    pub async fn delete_expired(&self, before: i64) -> Result<u64, DbError> {
        let deleted = self
            .write
            .lock()
            .await
            .execute(
                "DELETE FROM tasks WHERE status IN ('complete', 'failed') AND expires_at < ?1",
                [before],
            )
            .await?;
        Ok(deleted)
    }
}

/// `?from, ?from+1, …` for `count` parameters.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
