//! Whole hosts: an admin registers a PDS host instead of its creators one by one.
//!
//! The `appview.syncHost` task lists the host's repositories (`com.atproto.sync.listRepos`)
//! and asks each active one what it holds (`com.atproto.repo.describeRepo`); every
//! repository with `place.stream.video` records whose DID document names this host is
//! registered as a creator and synced. Repositories that start publishing later are
//! picked up from the host's firehose ([`super::firehose`] follows registered hosts and
//! calls [`AppView::adopt`] on the first video commit of an unknown repository), and the
//! 15-minute job lists every host again.

use std::sync::Weak;
use std::time::Duration;

use libsql::params;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use super::record::VIDEO_COLLECTION;
use super::store::{Creator, IndexStore};
use super::{AppView, AppViewError};
use crate::atproto::AtprotoError;
use crate::atproto::syntax::{self, AtIdentifier, Did, now};
use crate::atproto::xrpc::XrpcClient;
use crate::db::DbError;
use crate::tasks::{TaskDef, TaskFailure};

/// The task that lists one host.
pub const HOST_TASK: &str = "appview.syncHost";
/// Most repositories read from one host.
const MAX_REPOS: usize = 10_000;
/// Longest one host's listing may take.
const HOST_TIMEOUT: Duration = Duration::from_secs(600);
/// Most hosts registered.
const MAX_HOSTS: i64 = 1000;

/// A registered host, as the dashboard and `getStats` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// `scheme://host[:port]`.
    pub host: String,
    /// When it was registered.
    pub registered_at: String,
    /// When its repositories were last listed.
    pub last_listed_at: Option<String>,
    /// Repositories with videos at the last listing.
    pub repos: i64,
    /// Why the last listing failed.
    pub last_error: Option<String>,
}

/// What one listing of a host found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCounts {
    /// Repositories listed.
    pub listed: usize,
    /// Of those, with videos and registered (newly or already).
    pub creators: usize,
}

/// The task's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInput {
    /// The host.
    pub host: String,
}

/// `scheme://host[:port]` of what an admin typed: a host name (HTTPS assumed) or a URL.
pub fn host_origin(text: &str) -> Result<String, AppViewError> {
    let text = text.trim().trim_end_matches('/');
    let invalid = || {
        AppViewError::InvalidRequest(format!(
            "{:?} is not a PDS host (e.g. pds.example.com or https://pds.example.com)",
            text.chars().take(100).collect::<String>()
        ))
    };
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| invalid())?;
    let name_fits = url.host_str().is_some_and(|host| {
        !host.is_empty() && host.len() <= 253 && host.split('.').all(|label| label.len() <= 63)
    });
    if !matches!(url.scheme(), "https" | "http")
        || !name_fits
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || !url.username().is_empty()
    {
        return Err(invalid());
    }
    Ok(url.origin().ascii_serialization())
}

impl AppView {
    /// `registerHost`: registers a PDS host and starts listing it; returns the host as
    /// stored and the task id.
    pub async fn register_host(
        &self,
        text: &str,
        by: &str,
    ) -> Result<(String, String), AppViewError> {
        let host = host_origin(text)?;
        // A PDS answers describeServer; anything else (or a private address, unless
        // ALLOW_PRIVATE_NETWORK) is refused before anything is stored.
        let base =
            Url::parse(&host).map_err(|err| AppViewError::InvalidRequest(err.to_string()))?;
        XrpcClient::new(self.http.clone(), base)
            .query::<serde_json::Value>(
                "com.atproto.server.describeServer",
                &[],
                crate::atproto::xrpc::Auth::None,
            )
            .await
            .map_err(|err| {
                AppViewError::InvalidRequest(format!("{host} does not answer as a PDS: {err}"))
            })?;
        if !self.store.add_host(&host).await? {
            return Err(AppViewError::InvalidRequest(format!(
                "at most {MAX_HOSTS} hosts can be registered"
            )));
        }
        self.hosts_changed.notify_one();
        let task = self
            .tasks
            .submit(HOST_TASK, json!({ "host": host }))
            .await?;
        self.audit(by, "registerHost", &host, None).await;
        tracing::info!(%host, by, "host registered");
        Ok((host, task.task.id))
    }

    /// The registered hosts.
    pub async fn hosts(&self) -> Result<Vec<Host>, AppViewError> {
        Ok(self.store.hosts().await?)
    }

    /// Lists `host` and registers every repository on it that has videos.
    pub async fn sync_host(&self, host: &str) -> Result<HostCounts, AppViewError> {
        let result = self.list_host(host).await;
        let (repos, error) = match &result {
            Ok(counts) => (i64::try_from(counts.creators).unwrap_or(i64::MAX), None),
            Err(err) => (0, Some(err.to_string())),
        };
        self.store
            .host_listed(host, repos, error.as_deref())
            .await?;
        result
    }

    async fn list_host(&self, host: &str) -> Result<HostCounts, AppViewError> {
        let base = Url::parse(host).map_err(|err| AppViewError::InvalidRequest(err.to_string()))?;
        let xrpc = XrpcClient::new(self.http.clone(), base);
        let repos = xrpc.list_repos(MAX_REPOS).await?;
        let mut counts = HostCounts {
            listed: repos.len(),
            ..HostCounts::default()
        };
        for repo in repos {
            let Ok(did) = syntax::did(&repo.did) else {
                continue;
            };
            if repo.inactive_status().is_some() {
                continue;
            }
            let has_videos = match xrpc.describe_repo(did.as_str()).await {
                Ok(description) => description
                    .collections
                    .iter()
                    .any(|collection| collection == VIDEO_COLLECTION),
                Err(err) if !matches!(err, AtprotoError::Net(_)) => false,
                Err(err) => return Err(err.into()),
            };
            if has_videos && self.adopt(&did, host).await? {
                counts.creators += 1;
            }
        }
        Ok(counts)
    }

    /// Registers `did`, found publishing on the registered `host`, when its DID document
    /// names that host as its PDS; whether it is (now) a registered creator.
    pub async fn adopt(&self, did: &Did, host: &str) -> Result<bool, AppViewError> {
        if self.store.creator(did.as_str()).await?.is_some() {
            return Ok(true);
        }
        let identity = match self.identity.resolve(&AtIdentifier::Did(did.clone())).await {
            Ok(identity) => identity,
            Err(err) => {
                tracing::warn!(%did, %host, error = %err, "cannot resolve a repository found on a host");
                return Ok(false);
            }
        };
        if identity.pds.origin().ascii_serialization() != host {
            tracing::debug!(%did, %host, pds = %identity.pds, "its DID document names another PDS");
            return Ok(false);
        }
        let creator = Creator {
            did: did.clone(),
            handle: identity.handle.as_ref().map(ToString::to_string),
            pds_url: Some(identity.pds.to_string()),
        };
        self.store.register(&creator).await?;
        self.hosts_changed.notify_one();
        self.submit_sync(did).await?;
        tracing::info!(%did, %host, "creator found on a registered host");
        Ok(true)
    }

    /// Submits a listing of every registered host; returns the task ids.
    pub async fn submit_host_syncs(&self) -> Result<Vec<String>, AppViewError> {
        let mut ids = Vec::new();
        for host in self.store.hosts().await? {
            let task = self
                .tasks
                .submit(HOST_TASK, json!({ "host": host.host }))
                .await?;
            ids.push(task.task.id);
        }
        Ok(ids)
    }
}

/// The host-listing task.
pub fn host_task(appview: Weak<AppView>) -> TaskDef {
    TaskDef::typed(HOST_TASK, move |input: HostInput, _ctx| {
        let appview = appview.clone();
        async move {
            let appview = appview
                .upgrade()
                .ok_or_else(|| TaskFailure::fatal("the server is shutting down"))?;
            let host =
                host_origin(&input.host).map_err(|err| TaskFailure::fatal(err.to_string()))?;
            match appview.sync_host(&host).await {
                Ok(counts) => Ok(
                    json!({ "host": host, "listed": counts.listed, "creators": counts.creators }),
                ),
                Err(err) if err.is_transient() => Err(TaskFailure::retry(err.to_string())),
                Err(err) => Err(TaskFailure::fatal(err.to_string())),
            }
        }
    })
    .concurrency(2)
    .cache_ttl(Duration::ZERO)
    .failure_ttl(Duration::ZERO)
    .timeout(HOST_TIMEOUT)
    .max_attempts(3)
    .backoff(Duration::from_secs(5))
}

impl IndexStore {
    /// Adds `host`; false when the cap is reached.
    async fn add_host(&self, host: &str) -> Result<bool, DbError> {
        let conn = self.write.lock().await;
        let added = conn
            .execute(
                "INSERT INTO hosts (host, registered_at)
                 SELECT ?1, ?2 WHERE (SELECT COUNT(*) FROM hosts) < ?3
                 ON CONFLICT (host) DO NOTHING",
                params![host, now(), MAX_HOSTS],
            )
            .await?;
        if added > 0 {
            return Ok(true);
        }
        let mut rows = conn
            .query("SELECT 1 FROM hosts WHERE host = ?1", params![host])
            .await?;
        Ok(rows.next().await?.is_some())
    }

    async fn host_listed(
        &self,
        host: &str,
        repos: i64,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        self.write
            .lock()
            .await
            .execute(
                "UPDATE hosts SET last_listed_at = ?2, repos = CASE WHEN ?4 IS NULL THEN ?3 ELSE repos END,
                        last_error = ?4
                 WHERE host = ?1",
                params![host, now(), repos, error],
            )
            .await?;
        Ok(())
    }

    /// The registered hosts.
    pub async fn hosts(&self) -> Result<Vec<Host>, DbError> {
        self.db
            .read(
                "SELECT host, registered_at, last_listed_at, repos, last_error FROM hosts
                 ORDER BY host",
                (),
                |row| {
                    Ok(Host {
                        host: row.get(0)?,
                        registered_at: row.get(1)?,
                        last_listed_at: row.get(2)?,
                        repos: row.get(3)?,
                        last_error: row.get(4)?,
                    })
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_origins_and_junk_is_refused() {
        assert_eq!(
            host_origin("pds.example.com").expect("host"),
            "https://pds.example.com"
        );
        assert_eq!(
            host_origin(" https://PDS.example.com/ ").expect("url"),
            "https://pds.example.com"
        );
        assert_eq!(
            host_origin("http://127.0.0.1:2583").expect("local"),
            "http://127.0.0.1:2583"
        );
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(26));
        for junk in [
            long_label.as_str(),
            long_name.as_str(),
            "",
            "ftp://x.example",
            "https://x.example/xrpc",
            "https://u:p@x.example",
            "https://x.example?q",
            "not a host",
        ] {
            assert!(host_origin(junk).is_err(), "{junk:?}");
        }
    }
}
