//! Jobs: work that runs on a schedule (an interval or a cron expression, in UTC).
//!
//! - A job's handler gets the time of its previous run (`last_run_at`).
//! - Runs never overlap: a run holds a lease on the job's row, in every process sharing
//!   the database.
//! - Missed runs are coalesced: the next run is computed from the previous one, so after
//!   downtime a job runs once, not once per missed occurrence.
//! - The last [`HISTORY_LEN`] runs of each job are kept with start time, duration and
//!   error, for the admin dashboard.
//!
//! [`Scheduler::tick`] runs every job due at a given instant, which is what the loop
//! calls and what tests call with chosen instants.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use libsql::params;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::store::{now_ms, rfc3339};
use crate::db::{Db, DbError};

/// Runs kept per job.
pub const HISTORY_LEN: usize = 50;

/// When a job runs.
#[derive(Clone)]
pub enum Schedule {
    /// Every so often; the first run is at start.
    Every(Duration),
    /// On a cron expression (5 fields, or 6 with seconds), in UTC.
    Cron(Box<croner::Cron>),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(every) => write!(f, "every {every:?}"),
            Self::Cron(cron) => write!(f, "cron {}", cron.pattern),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    /// `every 15m`, `every 30s`, `every 2h`, or a cron expression such as `*/10 * * * *`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if let Some(every) = value.strip_prefix("every ") {
            let every = every.trim();
            let (digits, unit) = every.split_at(
                every
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(every.len()),
            );
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("bad interval {every:?}"))?;
            let unit_seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return Err(format!("bad interval unit in {every:?} (use s, m or h)")),
            };
            let seconds = n
                .checked_mul(unit_seconds)
                .filter(|seconds| *seconds <= MAX_INTERVAL_SECS)
                .ok_or_else(|| format!("the interval {every:?} is longer than a year"))?;
            if seconds == 0 {
                return Err("the interval must be positive".into());
            }
            return Ok(Self::Every(Duration::from_secs(seconds)));
        }
        croner::Cron::from_str(value)
            .map(|cron| Self::Cron(Box::new(cron)))
            .map_err(|err| format!("bad cron expression {value:?}: {err}"))
    }
}

/// Longest `every` interval: a year.
const MAX_INTERVAL_SECS: u64 = 366 * 24 * 3600;

impl fmt::Display for Schedule {
    /// The form [`Schedule::from_str`] reads: `every 15m`, or the cron expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(every) => {
                let seconds = every.as_secs();
                if seconds % 3600 == 0 {
                    write!(f, "every {}h", seconds / 3600)
                } else if seconds % 60 == 0 {
                    write!(f, "every {}m", seconds / 60)
                } else {
                    write!(f, "every {seconds}s")
                }
            }
            Self::Cron(cron) => write!(f, "{}", cron.pattern),
        }
    }
}

impl Schedule {
    /// When the job is next due, given its previous run (or when it was first seen).
    fn next_after(&self, last_run_at: Option<i64>, first_seen_at: i64) -> i64 {
        match self {
            Self::Every(every) => match last_run_at {
                Some(last) => {
                    last.saturating_add(i64::try_from(every.as_millis()).unwrap_or(i64::MAX))
                }
                None => first_seen_at,
            },
            Self::Cron(cron) => {
                let from = Utc
                    .timestamp_millis_opt(last_run_at.unwrap_or(first_seen_at))
                    .single()
                    .unwrap_or_else(Utc::now);
                cron.find_next_occurrence(&from, false)
                    .map(|at| at.timestamp_millis())
                    .unwrap_or(i64::MAX)
            }
        }
    }
}

/// What a job's handler gets.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// When the previous run started, if there was one.
    pub last_run_at: Option<DateTime<Utc>>,
}

type JobFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type JobHandler = dyn Fn(JobContext) -> JobFuture + Send + Sync;

/// A scheduled job.
#[derive(Clone)]
pub struct JobDef {
    name: String,
    group: Option<&'static str>,
    schedule: Schedule,
    timeout: Duration,
    handler: Arc<JobHandler>,
}

impl fmt::Debug for JobDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobDef")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl JobDef {
    /// A job; runs time out after 10 minutes unless [`JobDef::timeout`] says otherwise.
    pub fn new<F, Fut>(name: impl Into<String>, schedule: Schedule, handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.into(),
            group: None,
            schedule,
            timeout: Duration::from_secs(600),
            handler: Arc::new(move |ctx| Box::pin(handler(ctx))),
        }
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The longest a run may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the job one of a set that [`Scheduler::replace_group`] installs as a whole.
    pub fn in_group(mut self, group: &'static str) -> Self {
        self.group = Some(group);
        self
    }
}

/// One run of a job, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    /// The job.
    pub job: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs jobs on their schedules.
pub struct Scheduler {
    db: Db,
    jobs: std::sync::RwLock<Vec<JobDef>>,
    worker_id: String,
    poll_interval: Duration,
    /// Woken when jobs are added, so a new job's first run is not held up by a sleep
    /// computed before it existed.
    added: tokio::sync::Notify,
}

impl Scheduler {
    /// A scheduler over `db` with no jobs yet.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            jobs: std::sync::RwLock::new(Vec::new()),
            worker_id: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            poll_interval: Duration::from_secs(30),
            added: tokio::sync::Notify::new(),
        }
    }

    /// Adds a job, replacing one of the same name.
    pub fn add(&self, job: JobDef) {
        let mut jobs = self
            .jobs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        jobs.retain(|existing| existing.name != job.name);
        jobs.push(job);
        drop(jobs);
        self.added.notify_one();
    }

    /// Makes `jobs` the whole of `group`: its other jobs are removed, the rest added or
    /// replaced.
    pub fn replace_group(&self, group: &'static str, jobs: Vec<JobDef>) {
        let mut current = self
            .jobs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .retain(|job| job.group != Some(group) && jobs.iter().all(|new| new.name != job.name));
        current.extend(jobs.into_iter().map(|job| job.in_group(group)));
        drop(current);
        self.added.notify_one();
    }

    fn snapshot(&self) -> Vec<JobDef> {
        self.jobs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs every job due at `now` (each at most once) and returns their runs.
    pub async fn tick(&self, now: i64) -> Result<Vec<JobRun>, DbError> {
        let jobs = self.snapshot();
        let mut runs = Vec::new();
        let mut started = Vec::new();
        for job in &jobs {
            if let Some(last_run_at) = self.claim(job, now).await? {
                started.push(self.run(job, last_run_at, now));
            }
        }
        for run in futures::future::join_all(started).await {
            runs.push(run?);
        }
        Ok(runs)
    }

    /// Leases `job` if it is due at `now` and not running; returns its previous run time.
    async fn claim(&self, job: &JobDef, now: i64) -> Result<Option<Option<i64>>, DbError> {
        let conn = self.db.connect().await?;
        let tx = conn
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let outcome = async {
            tx.execute(
                "INSERT INTO jobs (name, first_seen_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![job.name.as_str(), now],
            )
            .await?;
            let mut rows = tx
                .query(
                    "SELECT last_run_at, first_seen_at, lease_expires_at FROM jobs WHERE name = ?1",
                    [job.name.as_str()],
                )
                .await?;
            let Some(row) = rows.next().await? else {
                return Ok(None);
            };
            let last_run_at: Option<i64> = row.get(0)?;
            let first_seen_at: i64 = row.get(1)?;
            let lease: Option<i64> = row.get(2)?;
            drop(rows);
            if lease.is_some_and(|until| until > now) || job.schedule.next_after(last_run_at, first_seen_at) > now {
                return Ok(None);
            }
            let until = now + i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX / 2) + 60_000;
            tx.execute(
                "UPDATE jobs SET lease_owner = ?2, lease_expires_at = ?3 WHERE name = ?1",
                params![job.name.as_str(), self.worker_id.as_str(), until],
            )
            .await?;
            Ok::<_, DbError>(Some(last_run_at))
        }
        .await;
        match outcome {
            Ok(claimed) => {
                tx.commit().await?;
                Ok(claimed)
            }
            Err(err) => {
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }

    async fn run(
        &self,
        job: &JobDef,
        last_run_at: Option<i64>,
        started_at: i64,
    ) -> Result<JobRun, DbError> {
        let context = JobContext {
            last_run_at: last_run_at.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        };
        let clock = std::time::Instant::now();
        let handle = tokio::spawn((job.handler)(context));
        let error = match tokio::time::timeout(job.timeout, handle).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(message))) => Some(message),
            Ok(Err(_)) => Some("the job panicked".to_string()),
            Err(_) => Some(format!("timed out after {:?}", job.timeout)),
        };
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &error {
            Some(error) => tracing::warn!(job = %job.name, %error, duration_ms, "job failed"),
            None => tracing::info!(job = %job.name, duration_ms, "job ran"),
        }
        let conn = self.db.connect().await?;
        conn.execute(
            "UPDATE jobs SET last_run_at = ?3, lease_owner = NULL, lease_expires_at = NULL
             WHERE name = ?1 AND lease_owner = ?2",
            params![job.name.as_str(), self.worker_id.as_str(), started_at],
        )
        .await?;
        conn.execute(
            "INSERT INTO job_runs (job, started_at, duration_ms, error) VALUES (?1, ?2, ?3, ?4)",
            params![
                job.name.as_str(),
                started_at,
                i64::try_from(duration_ms).unwrap_or(i64::MAX),
                error.clone()
            ],
        )
        .await?;
        conn.execute(
            "DELETE FROM job_runs WHERE job = ?1 AND id NOT IN
               (SELECT id FROM job_runs WHERE job = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2)",
            params![job.name.as_str(), HISTORY_LEN as i64],
        )
        .await?;
        Ok(JobRun {
            job: job.name.clone(),
            started_at: rfc3339(started_at),
            duration_ms,
            error,
        })
    }

    /// The most recent runs of every job, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<JobRun>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT job, started_at, duration_ms, error FROM job_runs ORDER BY started_at DESC, id DESC LIMIT ?1",
                [limit as i64],
            )
            .await?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next().await? {
            runs.push(JobRun {
                job: row.get(0)?,
                started_at: rfc3339(row.get(1)?),
                duration_ms: u64::try_from(row.get::<i64>(2)?).unwrap_or(0),
                error: row.get(3)?,
            });
        }
        Ok(runs)
    }

    /// When the next job is due (ms since the epoch), if any job exists.
    ///
    /// A job running now (leased, here or elsewhere) is looked at again within a second:
    /// its lease is only an upper bound on how long the run may take.
    async fn next_due(&self) -> Result<Option<i64>, DbError> {
        let now = now_ms();
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT name, last_run_at, first_seen_at, lease_expires_at FROM jobs",
                (),
            )
            .await?;
        let mut seen = std::collections::HashMap::new();
        while let Some(row) = rows.next().await? {
            let times: (Option<i64>, i64, Option<i64>) = (row.get(1)?, row.get(2)?, row.get(3)?);
            seen.insert(row.get::<String>(0)?, times);
        }
        Ok(self
            .snapshot()
            .iter()
            .map(|job| match seen.get(&job.name) {
                Some(&(last_run_at, first_seen_at, lease)) => {
                    let due = job.schedule.next_after(last_run_at, first_seen_at);
                    lease
                        .filter(|lease| *lease > now)
                        .map_or(due, |_| due.max(now + 1_000))
                }
                None => now,
            })
            .min())
    }

    /// Runs jobs as they fall due until `shutdown`; a run in progress is allowed to finish.
    pub fn start(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let scheduler = self.clone();
                // Each tick in its own task, so one slow job does not delay the others'
                // schedule; the lease keeps a job from overlapping itself.
                let tick = tokio::spawn(async move {
                    if let Err(err) = scheduler.tick(now_ms()).await {
                        tracing::error!(error = %err, "scheduler tick failed");
                    }
                });
                let wait = match self.next_due().await {
                    Ok(Some(due)) => {
                        Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0).max(10))
                    }
                    _ => self.poll_interval,
                }
                .min(self.poll_interval);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.added.notified() => {}
                    () = shutdown.cancelled() => {
                        let _ = tick.await;
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_intervals_and_cron() {
        assert!(
            matches!("every 15m".parse::<Schedule>(), Ok(Schedule::Every(d)) if d == Duration::from_secs(900))
        );
        assert!(
            matches!("every 30s".parse::<Schedule>(), Ok(Schedule::Every(d)) if d == Duration::from_secs(30))
        );
        for huge in [
            "every 18446744073709551615h",
            "every 5124095576030432h",
            "every 99999999999m",
            "every 367d",
            "every 9000h",
        ] {
            assert!(huge.parse::<Schedule>().is_err(), "{huge}");
        }
        assert!(
            Schedule::Every(Duration::from_secs(3600)).next_after(Some(i64::MAX - 5), 0)
                == i64::MAX
        );
        assert!(matches!(
            "*/10 * * * *".parse::<Schedule>(),
            Ok(Schedule::Cron(_))
        ));
        assert!("every 0m".parse::<Schedule>().is_err());
        assert!("every 5 parsecs".parse::<Schedule>().is_err());
        assert!("61 * * * *".parse::<Schedule>().is_err());
    }

    #[test]
    fn the_next_run_follows_the_previous_one() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp_millis()
        };
        let every = Schedule::Every(Duration::from_secs(600));
        assert_eq!(
            every.next_after(None, t("2026-11-21T10:00:00Z")),
            t("2026-11-21T10:00:00Z")
        );
        assert_eq!(
            every.next_after(Some(t("2026-11-21T10:00:00Z")), 0),
            t("2026-11-21T10:10:00Z")
        );
        let cron: Schedule = "*/10 * * * *".parse().expect("cron");
        assert_eq!(
            cron.next_after(Some(t("2026-11-21T10:03:00Z")), 0),
            t("2026-11-21T10:10:00Z")
        );
        assert_eq!(
            cron.next_after(None, t("2026-11-21T10:10:00Z")),
            t("2026-11-21T10:20:00Z")
        );
    }
}
