//! The tasks table: every state change is one SQL transaction.
//!
//! Writes go through one connection per process behind an async mutex (SQLite has one
//! writer anyway; queueing in-process avoids busy-waiting on the file lock), and take
//! the write lock up front (`BEGIN IMMEDIATE`) so that read-then-write decisions (is
//! there a current row for this input? is this task claimable?) are atomic across
//! processes sharing the file.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use libsql::params;

use super::{FailureKind, Lane, Status, Task};
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

/// Bytes a finished row is counted as beyond its input, result and error: its other
/// columns and index entries.
const ROW_OVERHEAD_BYTES: i64 = 256;

/// A stored task.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: String,
    pub status: Status,
    pub result: Option<String>,
    pub error: Option<String>,
    pub failure: Option<FailureKind>,
    pub attempts: u32,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TaskRow {
    pub fn task(&self) -> Task {
        Task {
            id: self.id.clone(),
            status: self.status,
            result: self
                .result
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
            error: self.error.clone(),
            failure: self.failure,
            attempts: self.attempts,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        }
    }

    /// Whether a submission of the same input may reuse this row at `now`.
    pub fn reusable(&self, now: i64) -> bool {
        match self.status {
            Status::Pending | Status::Running => true,
            Status::Complete | Status::Failed => self.expires_at.is_some_and(|at| at > now),
        }
    }

    /// Roughly what the row costs to keep in memory.
    pub fn weight(&self) -> u32 {
        let bytes = self.result.as_ref().map_or(0, String::len)
            + self.error.as_ref().map_or(0, String::len)
            + self.id.len()
            + 128;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

const COLUMNS: &str =
    "id, status, result, error, failure, attempts, expires_at, created_at, updated_at";

fn row(row: &libsql::Row) -> Result<TaskRow, DbError> {
    Ok(TaskRow {
        id: row.get(0)?,
        status: Status::parse(&row.get::<String>(1)?),
        result: row.get(2)?,
        error: row.get(3)?,
        failure: row
            .get::<Option<String>>(4)?
            .as_deref()
            .map(FailureKind::parse),
        attempts: u32::try_from(row.get::<i64>(5)?).unwrap_or(0),
        expires_at: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
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
    /// Whose work it is, if anyone's in particular.
    pub owner: Option<String>,
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
    owner: Option<String>,
}

/// What the claim step needs to know about a registered task kind.
#[derive(Debug, Clone, Copy)]
pub struct ClaimPolicy {
    pub concurrency: u32,
    /// Most running tasks of one owner, if the kind caps them.
    pub per_owner: Option<u32>,
    pub max_attempts: u32,
    pub failure_ttl_ms: i64,
}

/// How many tasks may wait: per lane (or per kind, for tasks without one) and per owner.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub per_lane: u32,
    pub per_owner: u32,
}

/// What a submission came to.
pub enum Admission {
    /// The row: an existing one to reuse (`true`), or a new pending one.
    Row(TaskRow, bool),
    /// The queue it would join is full; the text says which.
    Full(String),
}

/// How an attempt ended, as the store records it.
pub enum Outcome {
    Complete {
        result: String,
        expires_at: i64,
    },
    Retry {
        error: String,
        run_at: i64,
    },
    Failed {
        error: String,
        failure: FailureKind,
        expires_at: i64,
    },
}

/// Running tasks, counted by kind, lane and owner.
#[derive(Default)]
struct Running {
    by_name: HashMap<String, u32>,
    by_lane: HashMap<String, u32>,
    by_owner: HashMap<String, u32>,
    lane_limits: HashMap<String, u32>,
}

/// The task tables.
pub struct Store {
    db: Db,
    write: Writer,
    limits: QueueLimits,
}

impl Store {
    /// The store over `db`, refusing submissions to queues past `limits`.
    pub async fn open(db: Db, limits: QueueLimits) -> Result<Self, DbError> {
        let write = db.writer().await?;
        Ok(Self { db, write, limits })
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
    /// (checked again under the write lock), unless the queue it would join is full.
    pub async fn submit(
        &self,
        name: &str,
        key: &str,
        input: &str,
        max_attempts: u32,
        lane: Option<&Lane>,
        now: i64,
    ) -> Result<Admission, DbError> {
        let limits = self.limits;
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
            if let Some(existing) = &existing
                && existing.reusable(now)
            {
                return Ok(Admission::Row(existing.clone(), true));
            }
            if let Some(full) = queue_full(tx, name, lane, limits).await? {
                return Ok(Admission::Full(full));
            }
            if let Some(existing) = existing {
                tx.execute("UPDATE tasks SET current = NULL WHERE id = ?1", [existing.id.as_str()])
                    .await?;
            }
            let created = TaskRow {
                id: uuid::Uuid::now_v7().simple().to_string(),
                status: Status::Pending,
                result: None,
                error: None,
                failure: None,
                attempts: 0,
                expires_at: None,
                created_at: now,
                updated_at: now,
            };
            tx.execute(
                "INSERT INTO tasks (id, name, dedupe_key, current, input, status, attempts, max_attempts, run_at,
                                    created_at, updated_at, lane, lane_limit, cache_ttl_ms, owner)
                 VALUES (?1, ?2, ?3, 1, ?4, 'pending', 0, ?5, ?6, ?6, ?6, ?7, ?8, ?9, ?10)",
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
                    lane.map(|lane| lane.owner.clone()),
                ],
            )
            .await?;
            Ok(Admission::Row(created, false))
        })
        .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<TaskRow>, DbError> {
        // Through a read connection of its own: on the shared one, a statement another
        // caller is stepping through keeps an older snapshot, in which a task submitted
        // a moment ago does not exist yet.
        let mut rows = self
            .db
            .read(
                &format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"),
                [id],
                row,
            )
            .await?;
        Ok(rows.pop())
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

    /// Leases up to `limit` claimable tasks, respecting each kind's, lane's and owner's
    /// concurrency across all processes. Tasks whose lease expired too often are failed
    /// instead.
    ///
    /// Fair by construction: kinds, lanes and owners already at their limit are left out
    /// of the candidates in SQL, and the candidates are taken round-robin (each lane's
    /// oldest, then each owner's next), so however many tasks wait in a saturated lane
    /// or for one owner, the oldest task of every other lane is among the candidates.
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
        self.write.transaction(async |tx| {
            let mut running = Running::default();
            let mut rows = tx
                .query(
                    "SELECT name, lane, owner, MAX(lane_limit), COUNT(*) FROM tasks
                     WHERE status = 'running' AND lease_expires_at > ?1 GROUP BY name, lane, owner",
                    [now],
                )
                .await?;
            while let Some(r) = rows.next().await? {
                let (name, lane, owner) = (
                    r.get::<String>(0)?,
                    r.get::<Option<String>>(1)?,
                    r.get::<Option<String>>(2)?,
                );
                let count = u32::try_from(r.get::<i64>(4)?).unwrap_or(u32::MAX);
                *running.by_name.entry(name).or_default() += count;
                if let Some(lane) = lane {
                    let lane_limit = r.get::<Option<i64>>(3)?.map_or(1, |n| u32::try_from(n).unwrap_or(1));
                    running.lane_limits.insert(lane.clone(), lane_limit);
                    *running.by_lane.entry(lane).or_default() += count;
                }
                if let Some(owner) = owner {
                    *running.by_owner.entry(owner).or_default() += count;
                }
            }
            drop(rows);

            let names: Vec<&String> = policies
                .iter()
                .filter(|(name, policy)| running.by_name.get(*name).copied().unwrap_or(0) < policy.concurrency)
                .map(|(name, _)| name)
                .collect();
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let full_lanes: Vec<&String> = running
                .by_lane
                .iter()
                .filter(|(lane, count)| **count >= running.lane_limits.get(*lane).copied().unwrap_or(1))
                .map(|(lane, _)| lane)
                .collect();
            let owner_cap = policies.values().filter_map(|p| p.per_owner).min();
            let full_owners: Vec<&String> = running
                .by_owner
                .iter()
                .filter(|(_, count)| owner_cap.is_some_and(|cap| **count >= cap))
                .map(|(owner, _)| owner)
                .collect();

            let mut params: Vec<libsql::Value> = vec![now.into(), (limit as i64).into(), (limit as i64 * 4).into()];
            let names_at = params.len() + 1;
            params.extend(names.iter().map(|n| libsql::Value::from((*n).clone())));
            let lanes_at = params.len() + 1;
            params.extend(full_lanes.iter().map(|l| libsql::Value::from((*l).clone())));
            let owners_at = params.len() + 1;
            params.extend(full_owners.iter().map(|o| libsql::Value::from((*o).clone())));
            let sql = format!(
                "SELECT id, name, input, attempts, lane, lane_limit, cache_ttl_ms, owner FROM (
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY COALESCE(owner, name) ORDER BY lane_rank, run_at, id) AS owner_rank
                   FROM (
                     SELECT id, name, input, attempts, lane, lane_limit, cache_ttl_ms, owner, run_at,
                            ROW_NUMBER() OVER (PARTITION BY name, lane ORDER BY run_at, id) AS lane_rank
                     FROM tasks
                     WHERE ((status = 'pending' AND run_at <= ?1) OR (status = 'running' AND lease_expires_at <= ?1))
                       AND name IN ({names}) AND {lanes} AND {owners}
                   ) WHERE lane_rank <= ?2
                 ) ORDER BY owner_rank, lane_rank, run_at LIMIT ?3",
                names = placeholders(names_at, names.len()),
                lanes = none_of("lane", lanes_at, full_lanes.len()),
                owners = none_of("owner", owners_at, full_owners.len()),
            );
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
                    owner: r.get(7)?,
                });
            }
            drop(rows);

            let mut claimed = Vec::new();
            for Candidate { id, name, input, attempts, lane, cache_ttl_ms, owner } in candidates {
                if claimed.len() >= limit {
                    break;
                }
                let Some(policy) = policies.get(&name) else { continue };
                if attempts >= policy.max_attempts {
                    tx.execute(
                        "UPDATE tasks SET status = 'failed', error = ?2, failure = 'internal', lease_owner = NULL,
                                lease_expires_at = NULL, expires_at = ?3, updated_at = ?4 WHERE id = ?1",
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
                if running.by_name.get(&name).copied().unwrap_or(0) >= policy.concurrency {
                    continue;
                }
                if let Some((lane, lane_limit)) = &lane
                    && running.by_lane.get(lane).copied().unwrap_or(0) >= *lane_limit
                {
                    continue;
                }
                if let (Some(owner), Some(cap)) = (&owner, policy.per_owner)
                    && running.by_owner.get(owner).copied().unwrap_or(0) >= cap
                {
                    continue;
                }
                *running.by_name.entry(name.clone()).or_default() += 1;
                if let Some((lane, _)) = &lane {
                    *running.by_lane.entry(lane.clone()).or_default() += 1;
                }
                if let Some(owner) = &owner {
                    *running.by_owner.entry(owner.clone()).or_default() += 1;
                }
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
                    owner,
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
            Outcome::Failed {
                error,
                failure,
                expires_at,
            } => {
                conn.execute(
                    "UPDATE tasks SET status = 'failed', error = ?3, failure = ?4, lease_owner = NULL,
                            lease_expires_at = NULL, expires_at = ?5, updated_at = ?6
                     WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
                    params![id, worker, error, failure.as_str(), expires_at, now],
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

    /// Deletes `owner`'s oldest finished tasks while all of them together (inputs, results,
    /// errors and a fixed cost per row) take more than `budget_bytes`. Returns how many
    /// were deleted.
    pub async fn trim_owner(&self, owner: &str, budget_bytes: u64) -> Result<u64, DbError> {
        let budget = i64::try_from(budget_bytes).unwrap_or(i64::MAX);
        let deleted = self
            .write
            .lock()
            .await
            .execute(
                &format!(
                    "DELETE FROM tasks WHERE id IN (
                       SELECT id FROM (
                         SELECT id, SUM(length(input) + COALESCE(length(result), 0) + COALESCE(length(error), 0)
                                        + {ROW_OVERHEAD_BYTES})
                                    OVER (ORDER BY updated_at DESC, id DESC) AS kept
                         FROM tasks WHERE owner = ?1 AND status IN ('complete', 'failed')
                       ) WHERE kept > ?2
                     )"
                ),
                params![owner, budget],
            )
            .await?;
        Ok(deleted)
    }
}

/// Whether the queue a new task would join is full: its lane's (or, without a lane, its
/// kind's), or its owner's. The text names which.
async fn queue_full(
    tx: &libsql::Transaction,
    name: &str,
    lane: Option<&Lane>,
    limits: QueueLimits,
) -> Result<Option<String>, DbError> {
    let count = async |sql: &str, params: Vec<libsql::Value>| -> Result<u32, DbError> {
        let mut rows = tx.query(sql, params).await?;
        let n = match rows.next().await? {
            Some(r) => r.get::<i64>(0)?,
            None => 0,
        };
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    let waiting = match lane {
        Some(lane) => {
            count(
                "SELECT COUNT(*) FROM tasks WHERE status = 'pending' AND name = ?1 AND lane = ?2",
                vec![name.into(), lane.key.clone().into()],
            )
            .await?
        }
        None => count(
            "SELECT COUNT(*) FROM tasks WHERE status = 'pending' AND name = ?1 AND lane IS NULL",
            vec![name.into()],
        )
        .await?,
    };
    if waiting >= limits.per_lane {
        return Ok(Some(format!(
            "{waiting} tasks are already waiting in this queue; try again later"
        )));
    }
    if let Some(lane) = lane {
        let owned = count(
            "SELECT COUNT(*) FROM tasks WHERE status = 'pending' AND owner = ?1",
            vec![lane.owner.clone().into()],
        )
        .await?;
        if owned >= limits.per_owner {
            return Ok(Some(format!(
                "{owned} tasks of this bundle's author are already waiting; try again later"
            )));
        }
    }
    Ok(None)
}

/// `?from, ?from+1, …` for `count` parameters.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQL true when `column` is NULL or none of the `count` parameters from `?from`.
fn none_of(column: &str, from: usize, count: usize) -> String {
    if count == 0 {
        "1".to_string()
    } else {
        format!(
            "({column} IS NULL OR {column} NOT IN ({}))",
            placeholders(from, count)
        )
    }
}
