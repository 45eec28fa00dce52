//! Wiring: the services a configuration describes, built once and shared by the HTTP
//! edge, the task system and the scheduler. `main` and the integration tests both start
//! the server through [`Services::start`], so tests run what production runs.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::native::NativeBundle;
use crate::appview::AppView;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::{HttpClient, NetError};
use crate::auth::{AdminAuth, AuthSetupError};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::runner::{Runner, RunnerError};
use crate::tasks::scheduler::Scheduler;
use crate::tasks::{TaskError, TaskSystem};

/// Why the services could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client.
    #[error("HTTP client: {0}")]
    Http(#[from] NetError),
    /// The task system.
    #[error("task system: {0}")]
    Tasks(#[from] TaskError),
    /// The runner.
    #[error("at-run runner: {0}")]
    Runner(#[from] RunnerError),
    /// The AppView.
    #[error("AppView: {0}")]
    AppView(#[from] DbError),
    /// Admin sign-in.
    #[error("admin sign-in: {0}")]
    Auth(#[from] AuthSetupError),
    /// The node id file in the data directory.
    #[error("node id: {0}")]
    NodeId(std::io::Error),
    /// VOD (its cache directory).
    #[error("VOD cache: {0}")]
    Vod(std::io::Error),
}

/// Everything behind the HTTP edge.
pub struct Services {
    /// The database.
    pub db: Db,
    /// Outbound HTTP, SSRF-guarded.
    pub http: HttpClient,
    /// Handle and DID resolution.
    pub identity: Arc<IdentityResolver>,
    /// Tasks.
    pub tasks: TaskSystem,
    /// The at-run runner.
    pub runner: Arc<Runner>,
    /// Scheduled jobs (started by the caller).
    pub scheduler: Arc<Scheduler>,
    /// The video index.
    pub appview: Arc<AppView>,
    /// Who may administer it.
    pub auth: Arc<AdminAuth>,
    /// Playback: playlists, thumbnails, previews.
    pub vod: Arc<crate::vod::Vod>,
    /// The native bundles, their tasks and jobs registered, their background work started.
    pub native: Arc<Vec<NativeBundle>>,
    /// The native bundles' background work, to wait for at shutdown.
    workers: std::sync::Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

impl Services {
    /// Builds the services for `config` on a migrated `db`; background work stops when
    /// `shutdown` is cancelled.
    pub async fn start(
        config: &Config,
        db: Db,
        shutdown: &CancellationToken,
    ) -> Result<Self, StartError> {
        let http = HttpClient::new(config.http_policy())?;
        let identity = Arc::new(IdentityResolver::new(
            http.clone(),
            config.identity_options(),
        ));
        let mut task_policy = config.task_policy();
        task_policy.node_id =
            crate::tasks::node_id(&config.data_dir).map_err(StartError::NodeId)?;
        let tasks = TaskSystem::new(db.clone(), task_policy).await?;
        let runner = Runner::start(
            config.runner_policy(),
            db.clone(),
            identity.clone(),
            http.clone(),
            tasks.clone(),
            shutdown.child_token(),
        )
        .await?;
        let scheduler = Arc::new(Scheduler::new(db.clone()));
        scheduler.add(tasks.cleanup_job());
        if !config.atrun_jobs.is_empty() {
            scheduler.add(crate::runner::jobs::installer(
                runner.clone(),
                Arc::downgrade(&scheduler),
                config.atrun_jobs.clone(),
            ));
        }
        let appview = AppView::start(
            db.clone(),
            identity.clone(),
            http.clone(),
            tasks.clone(),
            config.appview_options(),
        )
        .await?;
        let auth = Arc::new(AdminAuth::from_config(config, db.clone())?);
        let vod = crate::vod::Vod::new(
            config.vod_options(),
            http.clone(),
            appview.index().clone(),
            identity.clone(),
            tasks.clone(),
        )
        .map_err(StartError::Vod)?;
        let native = vec![
            crate::appview::api::bundle(appview.clone(), auth.clone()),
            crate::vod::api::bundle(vod.clone(), appview.clone()),
        ];
        let mut workers = Vec::new();
        for bundle in &native {
            bundle.install(&tasks, &scheduler);
            workers.extend(bundle.start(shutdown));
        }
        Ok(Self {
            db,
            http,
            identity,
            tasks,
            runner,
            scheduler,
            appview,
            auth,
            vod,
            native: Arc::new(native),
            workers: std::sync::Mutex::new(workers),
        })
    }

    /// Waits for the native bundles' background work to end (after `shutdown` was
    /// cancelled), logging any that ended abnormally.
    pub async fn stopped(&self) {
        let workers = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for (what, worker) in workers {
            if let Err(err) = worker.await {
                tracing::warn!(error = %err, worker = what, "background work ended abnormally");
            }
        }
    }
}
