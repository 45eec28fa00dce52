//! Syncing a creator: resolve their PDS afresh (creators migrate), page through their
//! `place.stream.video` records, and make the index match. Each creator is one task, so
//! syncs are deduplicated, retried, bounded in concurrency across creators (the task's
//! concurrency limit) and isolated: one creator's failure is recorded on that creator
//! and stops nobody else. `appview.syncAllCreators` submits one per creator every
//! 15 minutes, the safety net under the firehose.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::record::{VIDEO_COLLECTION, parse_video};
use super::store::{Creator, SyncCounts};
use super::{AppView, AppViewError};
use crate::atproto::AtprotoError;
use crate::atproto::syntax::{self, AtIdentifier, Did, now};
use crate::atproto::xrpc::XrpcClient;
use crate::tasks::scheduler::{JobDef, Schedule};
use crate::tasks::{TaskDef, TaskFailure};

/// The task that syncs one creator.
pub const SYNC_TASK: &str = "appview.syncCreator";
/// The job that syncs everyone.
pub const SYNC_ALL_JOB: &str = "appview.syncAllCreators";
/// How often everyone is synced.
pub const SYNC_ALL_EVERY: Duration = Duration::from_secs(15 * 60);
/// Longest one creator's sync may take.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// What a sync found upstream.
enum Fetched {
    /// The account is active: who they are now, their valid videos, and why others
    /// were skipped.
    Active(Creator, Vec<super::record::VideoRow>, Vec<String>),
    /// The account is not active, with this status.
    Inactive(String),
}

/// The sync task's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncInput {
    /// The creator.
    pub did: Did,
}

impl AppView {
    /// Syncs one registered creator now (the body of the sync task).
    pub async fn sync_creator(&self, did: &Did) -> Result<SyncCounts, AppViewError> {
        let started = Instant::now();
        let result = self.sync_creator_since(did, started).await;
        self.metrics.sync(result.is_ok(), started.elapsed());
        result
    }

    async fn sync_creator_since(
        &self,
        did: &Did,
        started: Instant,
    ) -> Result<SyncCounts, AppViewError> {
        let elapsed_ms = || i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let Some(known) = self.store.creator(did).await? else {
            return Err(AppViewError::NotRegistered(did.to_string()));
        };
        match self.fetch_videos(&known).await {
            Ok(Fetched::Inactive(status)) => {
                // Their videos stay indexed, withheld, until the account is back.
                self.set_account_status(did, Some(&status)).await?;
                self.store
                    .sync_failed(did, &format!("the account is {status}"), elapsed_ms())
                    .await?;
                Ok(SyncCounts::default())
            }
            Ok(Fetched::Active(creator, videos, warnings)) => {
                self.set_account_status(did, None).await?;
                for warning in &warnings {
                    tracing::warn!(%did, %warning, "skipped an invalid video record");
                }
                let counts = self
                    .store
                    .replace_videos(&creator, &videos, &warnings, elapsed_ms())
                    .await?
                    .ok_or_else(|| AppViewError::NotRegistered(did.to_string()))?;
                if creator.pds_url != known.pds_url {
                    self.hosts_changed.notify_one();
                }
                if let Some(pds) = creator
                    .pds_url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                {
                    self.store_profile(did, pds).await;
                }
                tracing::info!(
                    %did,
                    seen = counts.seen,
                    changed = counts.changed,
                    deleted = counts.deleted,
                    skipped = counts.skipped,
                    "creator synced"
                );
                Ok(counts)
            }
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(%did, error = %message, "creator sync failed");
                self.store.sync_failed(did, &message, elapsed_ms()).await?;
                Err(err)
            }
        }
    }

    /// The creator's identity as of now, their valid videos, and why others were
    /// skipped; or the status of their account when it is not active.
    async fn fetch_videos(&self, known: &Creator) -> Result<Fetched, AppViewError> {
        self.identity.forget(&known.did).await;
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(known.did.clone()))
            .await?;
        let creator = Creator {
            did: known.did.clone(),
            handle: identity.handle.as_ref().map(ToString::to_string),
            pds_url: Some(identity.pds.to_string()),
        };
        let xrpc = XrpcClient::new(self.http.clone(), identity.pds);
        match xrpc.repo_status(&known.did).await {
            Ok(status) => {
                if let Some(status) = status.inactive_status() {
                    return Ok(Fetched::Inactive(status));
                }
            }
            Err(AtprotoError::RepoNotFound(_)) => {
                return Ok(Fetched::Inactive("deleted".to_string()));
            }
            // A PDS without `getRepoStatus`: its listing will tell.
            Err(AtprotoError::Xrpc { status, .. }) if status == 404 || status == 501 => {}
            Err(AtprotoError::Xrpc { error, .. }) if error == "MethodNotImplemented" => {}
            Err(err) => return Err(err.into()),
        }
        let indexed_at = now();
        let mut videos = Vec::new();
        let mut warnings = Vec::new();
        let mut records = std::pin::pin!(xrpc.list_records(&known.did, VIDEO_COLLECTION));
        while let Some(entry) = records.try_next().await? {
            let rkey = entry.uri.rsplit('/').next().unwrap_or_default();
            let Some(cid) = entry.cid.as_deref().and_then(|cid| syntax::cid(cid).ok()) else {
                warnings.push(format!("{rkey}: the listing gave no valid CID"));
                continue;
            };
            match parse_video(&known.did, rkey, &cid, &entry.value, &indexed_at) {
                Ok(video) => videos.push(video),
                Err(invalid) => warnings.push(invalid.to_string()),
            }
        }
        Ok(Fetched::Active(creator, videos, warnings))
    }

    /// Submits a sync of `did`; returns the task id.
    pub async fn submit_sync(&self, did: &Did) -> Result<String, AppViewError> {
        let submitted = self.tasks.submit(SYNC_TASK, json!({ "did": did })).await?;
        Ok(submitted.task.id)
    }

    /// Submits a sync of every creator; returns the task ids.
    pub async fn submit_sync_all(&self) -> Result<Vec<String>, AppViewError> {
        let mut ids = Vec::new();
        for creator in self.store.creators().await? {
            ids.push(self.submit_sync(&creator.did).await?);
        }
        Ok(ids)
    }
}

/// The sync task, holding the AppView weakly (the task system outlives nothing here,
/// but the AppView owns the task system).
pub fn sync_task(appview: Weak<AppView>, concurrency: u32) -> TaskDef {
    TaskDef::typed(SYNC_TASK, move |input: SyncInput, _ctx| {
        let appview = appview.clone();
        async move {
            let appview = appview
                .upgrade()
                .ok_or_else(|| TaskFailure::fatal("the server is shutting down"))?;
            match appview.sync_creator(&input.did).await {
                Ok(counts) => Ok(json!({
                    "did": input.did,
                    "seen": counts.seen,
                    "changed": counts.changed,
                    "deleted": counts.deleted,
                    "skipped": counts.skipped,
                })),
                Err(err) if err.is_transient() => Err(TaskFailure::retry(err.to_string())),
                Err(err) => Err(TaskFailure::fatal(err.to_string())),
            }
        }
    })
    .concurrency(concurrency)
    .cache_ttl(Duration::ZERO)
    .failure_ttl(Duration::ZERO)
    .timeout(SYNC_TIMEOUT)
    .max_attempts(3)
    .backoff(Duration::from_secs(5))
}

/// The 15-minute job: a sync task per creator, waiting for all of them; the run fails
/// (and says who) if any creator's sync failed.
pub fn sync_all_job(appview: Weak<AppView>) -> JobDef {
    JobDef::new(SYNC_ALL_JOB, Schedule::Every(SYNC_ALL_EVERY), move |_| {
        let appview = appview.clone();
        async move {
            let Some(appview) = appview.upgrade() else {
                return Ok(());
            };
            if let Err(err) = appview.register_defaults().await {
                tracing::warn!(error = %err, "registering the default creators failed");
            }
            if let Err(err) = appview.submit_host_syncs().await {
                tracing::warn!(error = %err, "listing the registered hosts failed");
            }
            let ids = appview
                .submit_sync_all()
                .await
                .map_err(|err| err.to_string())?;
            let failed = wait_all(&appview, &ids).await;
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} of {} creators failed to sync: {}",
                    failed.len(),
                    ids.len(),
                    failed.join("; ")
                ))
            }
        }
    })
    .timeout(SYNC_TIMEOUT * 2)
}

/// Waits for tasks to finish; returns the errors of those that failed.
async fn wait_all(appview: &Arc<AppView>, ids: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    for id in ids {
        loop {
            match appview.tasks.wait(id, Duration::from_secs(30)).await {
                Ok(Some(view)) if view.status.is_terminal() => {
                    if let Some(error) = view.error {
                        failed.push(error);
                    }
                    break;
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(err) => {
                    failed.push(err.to_string());
                    break;
                }
            }
        }
    }
    failed
}
