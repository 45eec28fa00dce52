//! The AppView: indexes the `place.stream.video` records of registered creators into
//! libSQL and answers the queries pages and clients make.
//!
//! Records reach the index two ways. A **sync** lists a creator's records from their
//! PDS and makes the index match (on registration, on demand, and every 15 minutes for
//! everyone: [`sync`]). The **firehose** of every PDS hosting a registered creator
//! applies creates, updates and deletes within seconds, resuming from a stored cursor
//! after a restart ([`firehose`]). Both go through the same tolerant record parser
//! ([`record`]) and the same idempotent writes ([`store`]), so they never disagree and
//! replaying either is harmless.
//!
//! - [`record`]: parsing records of either shape; [`metadata`]: the current record's
//!   facets, tags, content warnings, rights, connections and activity; `video_uri`:
//!   [`VideoUri`], a video's identity.
//! - [`store`]: creators, videos, sync reports, cursors.
//! - [`query`]: `listVideos`, `getStats`, and the pages' catalog.
//! - [`sync`]: the sync task and the 15-minute job.
//! - [`firehose`]: live updates from `com.atproto.sync.subscribeRepos`.
//! - [`profile`]: creator profiles and their avatars.
//! - [`moderation`]: takedowns, account status from the network, the audit log.
//! - [`hosts`]: PDS hosts registered whole.
//! - [`transcript`]: the text of a video's captions, kept for its watch page and search.

pub mod api;
pub mod firehose;
pub mod hosts;
pub mod metadata;
pub mod metrics;
pub mod moderation;
pub mod profile;
pub mod query;
pub mod record;
pub mod store;
pub mod sync;
pub mod transcript;
mod video_uri;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use moka::future::Cache;
use serde::Serialize;
use tokio::sync::Notify;

use crate::atproto::AtprotoError;
use crate::atproto::identity::{Identity, IdentityResolver};
use crate::atproto::net::HttpClient;
use crate::atproto::syntax::{AtIdentifier, Did};
use crate::db::{Db, DbError};
use crate::filecache::FileCache;
use crate::tasks::{TaskError, TaskSystem};

pub use query::VideoIndex;
use store::{Creator, IndexStore};
pub use video_uri::VideoUri;

/// How the AppView runs.
#[derive(Debug, Clone)]
pub struct AppViewOptions {
    /// Creators synced at once.
    pub sync_concurrency: u32,
    /// Whether to follow firehoses.
    pub firehose: bool,
    /// Public Bluesky API for profiles the PDS lacks.
    pub bsky_public_api: Option<String>,
    /// Where avatars are cached.
    pub avatar_dir: PathBuf,
    /// The avatar cache's cap in bytes (each creator may hold a sixteenth of it).
    pub avatar_cache_bytes: u64,
    /// Our public base URL, for avatar links.
    pub public_url: String,
    /// Creators to register when none are (`STREAMHUT_DEFAULT_CREATORS`).
    pub default_creators: Vec<String>,
}

/// Why an AppView operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppViewError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The actor is not a valid handle or DID.
    #[error("{0}")]
    InvalidActor(String),
    /// The handle or DID does not resolve.
    #[error("{0}")]
    UnknownActor(String),
    /// The creator is not registered.
    #[error("{0} is not a registered creator")]
    NotRegistered(String),
    /// The video is not in the index.
    #[error("{0} is not an indexed video")]
    NotIndexed(String),
    /// A PDS, PLC or other upstream failed.
    #[error(transparent)]
    Upstream(#[from] AtprotoError),
    /// The task system failed.
    #[error(transparent)]
    Tasks(#[from] TaskError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AppViewError {
    /// Whether trying again soon could succeed: network trouble and server errors, not
    /// answers like "this repository is deactivated" (the next scheduled sync retries
    /// those).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Upstream(AtprotoError::Net(_) | AtprotoError::InvalidResponse { .. }) => true,
            Self::Upstream(AtprotoError::Xrpc { status, .. }) => *status >= 500 || *status == 429,
            Self::Db(_) | Self::Tasks(_) => true,
            _ => false,
        }
    }
}

/// A registration's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    /// The creator's DID.
    pub did: Did,
    /// Their handle, when verified.
    pub handle: Option<String>,
    /// Their PDS.
    pub pds: String,
    /// The sync task started for them.
    pub task_id: String,
}

/// The AppView service.
pub struct AppView {
    db: Db,
    store: IndexStore,
    index: VideoIndex,
    identity: Arc<IdentityResolver>,
    http: HttpClient,
    tasks: TaskSystem,
    options: AppViewOptions,
    profiles: Cache<Did, profile::Profile>,
    /// Registered creators' avatars on disk.
    avatars: FileCache,
    /// Woken when the set of creators or their PDSes may have changed.
    hosts_changed: Arc<Notify>,
    /// The firehoses followed, by host.
    firehoses: std::sync::RwLock<std::collections::BTreeMap<String, firehose::FirehoseStatus>>,
    /// Whether a failed default registration was logged already.
    defaults_warned: AtomicBool,
    /// Bumped by every moderation change (see [`moderation`]).
    visibility: moderation::Visibility,
    metrics: metrics::AppViewMetrics,
}

impl AppView {
    /// Builds the AppView. Its sync task and job ([`sync::sync_task`],
    /// [`sync::sync_all_job`]) and the firehose are declared by its native bundle
    /// ([`api::bundle`]), which the server installs and starts.
    pub async fn start(
        db: Db,
        identity: Arc<IdentityResolver>,
        http: HttpClient,
        tasks: TaskSystem,
        options: AppViewOptions,
    ) -> Result<Arc<Self>, DbError> {
        let avatars = FileCache::with_owner_quota(
            options.avatar_dir.clone(),
            options.avatar_cache_bytes,
            options.avatar_cache_bytes / 16,
        )
        .map_err(|source| DbError::DataDir {
            path: options.avatar_dir.display().to_string(),
            source,
        })?;
        let appview = Arc::new(Self {
            avatars,
            store: IndexStore::open(db.clone()).await?,
            index: VideoIndex::new(db.clone()),
            db,
            identity,
            http,
            tasks,
            profiles: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(profile::PROFILE_TTL)
                .build(),
            hosts_changed: Arc::new(Notify::new()),
            firehoses: Default::default(),
            defaults_warned: AtomicBool::new(false),
            visibility: moderation::Visibility::default(),
            metrics: metrics::AppViewMetrics::default(),
            options,
        });
        let starting = Arc::downgrade(&appview);
        tokio::spawn(async move {
            if let Some(appview) = starting.upgrade()
                && let Err(err) = appview.register_defaults().await
            {
                tracing::warn!(error = %err, "registering the default creators failed");
            }
        });
        Ok(appview)
    }

    /// Registers the AppView's metrics for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// How many creators are synced at once.
    pub fn sync_concurrency(&self) -> u32 {
        self.options.sync_concurrency
    }

    /// Read access to the index.
    pub fn index(&self) -> &VideoIndex {
        &self.index
    }

    /// `getStats`: the public index's figures and the firehoses followed.
    pub async fn stats(&self) -> Result<query::Stats, AppViewError> {
        let mut stats = self.index.stats(false).await?;
        stats.firehoses = self.firehoses();
        Ok(stats)
    }

    /// Makes sure the schema exists: applies any migration not yet applied (all of them
    /// run at start, so this normally finds nothing to do); returns the schema version.
    pub async fn init(&self) -> Result<i64, AppViewError> {
        Ok(self.db.migrate().await?.current)
    }

    /// Registers `actor` (a handle or DID) and starts syncing them; `by` (an admin) goes
    /// to the audit log.
    pub async fn register(&self, actor: &str, by: &str) -> Result<Registered, AppViewError> {
        let identity = self.resolve(actor).await?;
        let creator = Creator {
            did: identity.did,
            handle: identity.handle.as_ref().map(ToString::to_string),
            pds_url: Some(identity.pds.to_string()),
        };
        self.store.register(&creator).await?;
        self.profiles.invalidate(&creator.did).await;
        self.hosts_changed.notify_one();
        let task_id = self.submit_sync(&creator.did).await?;
        self.audit(by, "registerCreator", creator.did.as_str(), None)
            .await;
        tracing::info!(did = %creator.did, handle = ?creator.handle, "creator registered");
        Ok(Registered {
            did: creator.did,
            handle: creator.handle,
            pds: identity.pds.to_string(),
            task_id,
        })
    }

    /// Registers the default creators (`STREAMHUT_DEFAULT_CREATORS`) once per
    /// installation, and only when no creator is registered: a fresh install shows videos
    /// with no admin step. A failure (no network) is logged once per process at warning
    /// level; the 15-minute job calls this again until one registration succeeds.
    pub async fn register_defaults(&self) -> Result<usize, AppViewError> {
        const FLAG: &str = "default_creators_registered";
        if self.options.default_creators.is_empty() || self.store.flag(FLAG).await? {
            return Ok(0);
        }
        if !self.store.creators().await?.is_empty() {
            self.store.set_flag(FLAG).await?;
            return Ok(0);
        }
        let mut registered = 0;
        for actor in &self.options.default_creators {
            match self.register(actor, "STREAMHUT_DEFAULT_CREATORS").await {
                Ok(_) => registered += 1,
                Err(err) if self.defaults_warned.swap(true, Ordering::Relaxed) => {
                    tracing::debug!(%actor, error = %err, "registering a default creator failed again");
                }
                Err(err) => tracing::warn!(
                    %actor,
                    error = %err,
                    "registering a default creator failed; the 15-minute job will try again"
                ),
            }
        }
        if registered > 0 {
            self.store.set_flag(FLAG).await?;
        }
        Ok(registered)
    }

    /// Removes a creator (by DID or handle) and their videos; `by` goes to the audit log.
    pub async fn unregister(&self, actor: &str, by: &str) -> Result<Did, AppViewError> {
        let creator = self.registered(actor).await?;
        self.store.unregister(&creator.did).await?;
        self.visibility.bump();
        self.audit(by, "unregisterCreator", creator.did.as_str(), None)
            .await;
        self.profiles.invalidate(&creator.did).await;
        self.hosts_changed.notify_one();
        tracing::info!(did = %creator.did, "creator unregistered");
        Ok(creator.did)
    }

    /// The registered creator named by `actor` (DID or handle, as stored).
    pub async fn registered(&self, actor: &str) -> Result<Creator, AppViewError> {
        let key = parse_actor(actor)?.to_string();
        self.store
            .creator(&key)
            .await?
            .ok_or(AppViewError::NotRegistered(key))
    }

    /// Resolves a handle or DID as a user typed it.
    async fn resolve(&self, actor: &str) -> Result<Identity, AppViewError> {
        let parsed = parse_actor(actor)?;
        self.identity.resolve(&parsed).await.map_err(|err| {
            if err.is_input_error() {
                AppViewError::InvalidActor(err.to_string())
            } else if err.is_unresolvable() {
                AppViewError::UnknownActor(format!("cannot resolve {parsed}: {err}"))
            } else {
                AppViewError::Upstream(err)
            }
        })
    }
}

/// A handle (any case, `@` allowed) or a DID, as users type them.
fn parse_actor(actor: &str) -> Result<AtIdentifier, AppViewError> {
    crate::atproto::syntax::actor(actor).map_err(|err| AppViewError::InvalidActor(err.to_string()))
}
