//! at-run, embedded: bundles of JavaScript stored on their authors' PDSes, run in Deno
//! sandboxes whose permissions are exactly what each bundle's manifest declares.
//!
//! # Layout
//!
//! - `js/sdk.ts`: what authors import as `"at-run"` (`manifest`, `endpoint`, `task`, `job`).
//! - `js/harness.js`: the main module of every bundle process; it imports the bundle and
//!   answers calls over a nonce-framed stdio protocol.
//! - [`permissions`]: the Deno command line per kind of run, and what a manifest may ask.
//! - [`egress`]: the loopback forwarder that is a bundle's only way to the network.
//! - [`sandbox`]: one Deno process: start, call with timeout and size limit, kill (its
//!   process start-up, stdio protocol and idle-CPU watchdog in submodules).
//! - [`manifest`]: the manifest a bundle declares, validated.
//! - [`bundler`]: `deno bundle` with `"at-run"` mapped to the shipped SDK.
//! - [`metrics`]: what the runner counts for `/metrics`.
//! - [`logs`]: each bundle's recent invocations, for its author.
//! - [`kv`]: `ctx.kv`, each bundle's lasting key-value store in the runner's database.
//! - [`jobs`]: scheduling the `job()` exports of bundles listed in `ATRUN_JOBS`.
//! - [`deploy`]: publishing bundle versions and secrets to one's own PDS (CLI, tests).
//! - [`pool`]: the warm pool actor: processes keyed by (author, bundle, CID, permissions,
//!   secrets).
//! - [`secrets`]: the runner's X25519 key; sealing and opening secret values.
//! - [`request`]: the HTTP request an endpoint's handler sees as `ctx.request`.
//! - `store`: resolving author + name + version to a record and its verified code.
//! - `error`: [`RunnerError`], one variant per answer the HTTP edge gives.
//! - `task`: the one task kind every bundle `task()` export runs as.
//! - [`Runner`]: the facade the HTTP routes, the task system and the scheduler call.

pub mod bundler;
pub mod deploy;
pub mod egress;
pub mod jobs;
pub mod kv;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod permissions;
pub mod pool;
pub mod request;
pub mod sandbox;
pub mod secrets;
mod task;

/// The at-run SDK's source, as `at-run deploy` bundles it.
pub const SDK_SOURCE: &str = include_str!("js/sdk.ts");

/// Adds what to do to Deno's permission errors, which name a flag the author cannot pass.
fn explain_denial(message: String) -> String {
    let Some(rest) = message.split("Requires ").nth(1) else {
        return message;
    };
    let what = rest.split(", run again").next().unwrap_or(rest);
    if what.starts_with("env access") {
        format!(
            "{message} (the bundle read a variable it neither declares in permissions.env nor has a secret for on this runner)"
        )
    } else if what.starts_with("net access") {
        format!(
            "{message} (the bundle contacted a host it does not declare in permissions.net, or a private address)"
        )
    } else {
        format!("{message} (bundles get no file, subprocess, FFI or system access)")
    }
}

/// The first 16 hex digits of the SHA-256 of `bytes`: a name for content.
pub fn short_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex = format!("{:x}", Sha256::digest(bytes));
    hex[..16].to_string()
}

mod error;
mod store;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::atproto::records::{SECRET_NSID, SecretRecord};
use crate::atproto::syntax::{Cid, Did};
use crate::db::Db;
use crate::secret::Secret;
use crate::tasks::{Lane, Task, TaskSystem};
use egress::Egress;
use manifest::{ExportKind, Manifest};
use metrics::{CallKind, RunnerMetrics};
use pool::{PoolHandle, PoolPolicy, WorkerKey, WorkerSpec};
use sandbox::{Launch, Reply, Sandbox, SandboxError, SandboxPolicy, ServeGrants};
use secrets::RunnerKey;

pub use error::RunnerError;
pub use request::{CallRequest, caller_method};
pub use store::{BundleStore, PINNED_TTL, ResolvedBundle, VersionSpec, choose};
pub use task::BUNDLE_TASK;
use task::BundleTaskInput;

/// The SDK version this runner ships.
pub const SDK_VERSION: &str = "0.2.0";

/// How long a bundle whose manifest could not be read is refused without trying again.
const MANIFEST_FAILURE_TTL: Duration = Duration::from_secs(30);
/// Bytes each in-memory cache of the runner (manifests, opened secrets) may hold.
const MEMORY_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How the runner runs.
#[derive(Debug, Clone)]
pub struct RunnerPolicy {
    /// Where the runner's key is (`ATRUN_HOME`; may be read-only once the key exists).
    pub home: PathBuf,
    /// Where the runner keeps its harness and cached code (under the data directory).
    pub work_dir: PathBuf,
    /// Sandbox limits.
    pub sandbox: SandboxPolicy,
    /// Pool bounds.
    pub pool: PoolPolicy,
    /// Authors whose bundles may run; `None` for everyone.
    pub allowed_authors: Option<HashSet<Did>>,
    /// Whether bundles may reach private, loopback and link-local addresses.
    pub allow_private_network: bool,
    /// How long opened secrets are reused before the author's PDS is asked again (so
    /// how long a removed or replaced secret may still be used); zero: not reused.
    pub secrets_ttl: Duration,
    /// This runner's service DID: the audience of authors' service auth tokens.
    pub service_did: Did,
    /// Most bundle tasks of one author running at once.
    pub tasks_per_author: u32,
    /// Invocation log lines kept per bundle (ten times as many per author).
    pub log_lines_per_bundle: u32,
    /// Bytes of `ctx.kv` entries each bundle may keep.
    pub kv_max_bytes: u64,
    /// Bytes of bundle code kept on disk.
    pub code_cache_bytes: u64,
    /// Of those, most per author.
    pub code_cache_per_author_bytes: u64,
}

/// A bundle's secrets for this runner, opened: `(variable, value)` sorted by variable,
/// and a digest of them that keys the worker (new values, new process).
struct Opened {
    values: Vec<(String, Secret)>,
    digest: String,
}

impl Opened {
    fn weight(&self) -> u32 {
        let bytes: usize = self
            .values
            .iter()
            .map(|(name, value)| name.len() + value.expose().len() + 64)
            .sum();
        u32::try_from(bytes + 128).unwrap_or(u32::MAX)
    }
}

type OpenedSecrets = Arc<Opened>;

/// What calling an export produced.
#[derive(Debug)]
pub enum Invocation {
    /// An endpoint's reply.
    Reply(Reply),
    /// A task's state.
    Task(Task),
}

/// An endpoint's `ctx` (the harness adds `ctx.kv`): the bundle, the export, the request
/// and the verified caller.
pub fn endpoint_context(
    did: &str,
    name: &str,
    version: &str,
    export: &str,
    request: Option<request::CallRequest>,
    caller: Option<&Did>,
) -> Value {
    json!({
        "bundle": { "did": did, "name": name, "version": version },
        "export": export,
        "request": request,
        "caller": caller,
    })
}

/// What a caller gives an export.
#[derive(Debug, Default)]
pub struct CallInput {
    /// Its arguments: the query string's parameters, or a JSON object body.
    pub args: Value,
    /// The HTTP request, for an endpoint's `ctx.request` (tasks and jobs get none).
    pub request: Option<request::CallRequest>,
    /// Who called, verified (`ctx.caller`).
    pub caller: Option<Did>,
}

/// One call of an export.
#[derive(Clone, Copy)]
struct Call<'a> {
    kind: CallKind,
    bundle: &'a ResolvedBundle,
    manifest: &'a Manifest,
    export: &'a str,
    args: &'a Value,
    ctx: &'a Value,
    /// Overrides the policy's call timeout.
    timeout: Option<Duration>,
}

/// The embedded at-run runner.
pub struct Runner {
    store: BundleStore,
    pool: PoolHandle,
    key: RunnerKey,
    sandbox: Arc<SandboxPolicy>,
    egress: Arc<Egress>,
    manifests: Cache<Cid, Arc<Manifest>>,
    /// Manifests that could not be read, by CID, remembered for a short time.
    failed_manifests: Cache<Cid, RunnerError>,
    secrets: Cache<(Did, String), OpenedSecrets>,
    tasks: TaskSystem,
    metrics: RunnerMetrics,
    logs: logs::InvocationLog,
    kv: kv::KvStore,
    service_did: Did,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Loads (or creates) the runner key, installs the harness, starts the egress
    /// forwarder and the pool.
    pub async fn start(
        policy: RunnerPolicy,
        db: Db,
        identity: Arc<IdentityResolver>,
        http: HttpClient,
        tasks: TaskSystem,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, RunnerError> {
        let kv = kv::KvStore::open(db.clone(), policy.kv_max_bytes)
            .await
            .map_err(|err| RunnerError::Unavailable(format!("opening ctx.kv: {err}")))?;
        let logs =
            logs::InvocationLog::start(db, policy.log_lines_per_bundle, shutdown.child_token())
                .await
                .map_err(|err| {
                    RunnerError::Unavailable(format!("opening the invocation log: {err}"))
                })?;
        let (key, created) = RunnerKey::load_or_create(&policy.home)
            .map_err(|err| RunnerError::Unavailable(err.to_string()))?;
        if created {
            tracing::info!(public_key = key.public_base64(), "created a runner key");
        }
        let runtime = policy.work_dir.join("runtime");
        let harness = sandbox::install_harness(&runtime)
            .map_err(|err| RunnerError::Unavailable(format!("installing the harness: {err}")))?;
        if !sandbox::executable_exists(&policy.sandbox.deno) {
            tracing::warn!(
                deno = %policy.sandbox.deno.display(),
                "Deno was not found: bundles cannot run until DENO_PATH points at a deno executable"
            );
        }
        let sandbox = Arc::new(policy.sandbox);
        let longest_call = sandbox.call_timeout.max(Duration::from_secs(3600));
        let egress = Egress::start(
            policy.allow_private_network,
            longest_call,
            shutdown.child_token(),
        )
        .await
        .map_err(|err| RunnerError::Unavailable(format!("starting the egress forwarder: {err}")))?;
        let code_cache = crate::filecache::FileCache::with_owner_quota(
            policy.work_dir.join("bundles"),
            policy.code_cache_bytes,
            policy.code_cache_per_author_bytes,
        )
        .map_err(|err| RunnerError::Unavailable(format!("opening the code cache: {err}")))?;
        let task_concurrency = u32::try_from(policy.pool.max_workers).unwrap_or(u32::MAX);
        let pool = PoolHandle::start(policy.pool, sandbox.clone(), harness, shutdown);
        let runner = Arc::new(Self {
            store: BundleStore::new(identity, http, code_cache, policy.allowed_authors),
            pool,
            key,
            sandbox,
            egress,
            manifests: Cache::builder()
                .weigher(|_, manifest: &Arc<Manifest>| manifest.weight())
                .max_capacity(MEMORY_CACHE_BYTES)
                .build(),
            failed_manifests: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(MANIFEST_FAILURE_TTL)
                .build(),
            secrets: Cache::builder()
                .weigher(|_, opened: &OpenedSecrets| opened.weight())
                // A zero TTL turns the cache off: every call reads the secrets afresh.
                .max_capacity(if policy.secrets_ttl.is_zero() {
                    0
                } else {
                    MEMORY_CACHE_BYTES
                })
                .time_to_live(policy.secrets_ttl)
                .build(),
            tasks,
            metrics: RunnerMetrics::default(),
            logs,
            kv,
            service_did: policy.service_did,
        });
        runner.tasks.register(task::bundle_task(
            Arc::downgrade(&runner),
            task_concurrency,
            policy.tasks_per_author,
        ));
        Ok(runner)
    }

    /// This runner's public key, base64.
    pub fn public_key(&self) -> &str {
        self.key.public_base64()
    }

    /// The pool, for its statistics.
    pub fn pool(&self) -> &PoolHandle {
        &self.pool
    }

    /// Its service DID (`did:web:` of the public URL).
    pub fn service_did(&self) -> &Did {
        &self.service_did
    }

    /// The invocation log.
    pub fn logs(&self) -> &logs::InvocationLog {
        &self.logs
    }

    /// Registers the runner's metrics for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
        self.logs.register_metrics(registry);
    }

    /// Brings the gauges up to date (live processes); called before each scrape.
    pub fn refresh_gauges(&self) {
        self.metrics.processes(self.pool.live());
    }

    /// Reads the manifest `code` declares, in a sandbox with no permissions (as `at-run
    /// deploy` checks a bundle before publishing it).
    pub async fn extract_manifest(
        policy: Arc<SandboxPolicy>,
        harness: &std::path::Path,
        code: &str,
    ) -> Result<Manifest, RunnerError> {
        let (_, raw) = Sandbox::start(policy, harness, Launch::Extract, code).await?;
        Manifest::validate(raw, None).map_err(|err| RunnerError::InvalidBundle(err.to_string()))
    }

    /// Locates a bundle and reads its manifest.
    pub async fn describe(
        &self,
        actor: &str,
        name: &str,
        version: &VersionSpec,
    ) -> Result<(ResolvedBundle, Arc<Manifest>), RunnerError> {
        let bundle = self.store.resolve(actor, name, version).await?;
        let manifest = self.manifest(&bundle).await?;
        Ok((bundle, manifest))
    }

    /// The manifest of `bundle`'s code: read once per CID (concurrent callers share one
    /// run), and a failure is remembered for [`MANIFEST_FAILURE_TTL`].
    async fn manifest(&self, bundle: &ResolvedBundle) -> Result<Arc<Manifest>, RunnerError> {
        let cid = &bundle.code_cid;
        if let Some(failure) = self.failed_manifests.get(cid).await {
            return Err(failure);
        }
        let read = self
            .manifests
            .try_get_with(*cid, async {
                let code = self.store.code(bundle).await?;
                let raw = self.pool.extract(code).await?;
                let manifest = Manifest::validate(raw, Some(&bundle.name))
                    .map_err(|err| RunnerError::InvalidBundle(err.to_string()))?;
                if !self.egress.allows_private_network() {
                    manifest
                        .permissions
                        .refuse_private_hosts()
                        .map_err(|err| RunnerError::InvalidBundle(err.to_string()))?;
                }
                Ok::<_, RunnerError>(Arc::new(manifest))
            })
            .await;
        read.map_err(|err| {
            let err = (*err).clone();
            if matches!(err, RunnerError::InvalidBundle(_)) {
                let (failures, cid, remembered) =
                    (self.failed_manifests.clone(), *cid, err.clone());
                tokio::spawn(async move { failures.insert(cid, remembered).await });
            }
            err
        })
    }

    /// The bundle's secrets for this runner, opened.
    async fn secrets(&self, bundle: &ResolvedBundle) -> Result<OpenedSecrets, RunnerError> {
        let key = (bundle.did.clone(), bundle.name.clone());
        if let Some(secrets) = self.secrets.get(&key).await {
            return Ok(secrets);
        }
        let records = self
            .store
            .pds(&bundle.pds)
            .list_all_records(
                bundle.did.as_str(),
                SECRET_NSID,
                store::MAX_LISTED_RECORDS,
                store::MAX_LISTED_BYTES,
            )
            .await
            .map_err(store::upstream)?;
        let mut opened = Vec::new();
        for entry in records {
            let Ok(record) = serde_json::from_value::<SecretRecord>(entry.value) else {
                continue;
            };
            if record.bundle != bundle.name || record.runner_key != self.key.public_base64() {
                continue;
            }
            if let Err(err) = permissions::check_env_name(&record.name) {
                return Err(RunnerError::InvalidBundle(format!(
                    "the bundle's secrets cannot be used: {err}"
                )));
            }
            let found = secrets::Binding {
                owner: &bundle.did,
                bundle: &bundle.name,
                name: &record.name,
            };
            let value = self
                .key
                .open(found, &record.ciphertext)
                .map_err(|err| RunnerError::Secret(err.to_string()))?;
            opened.push((record.name, value));
        }
        opened.sort_by(|a, b| a.0.cmp(&b.0));
        let digest_input: String = opened
            .iter()
            .map(|(name, value)| format!("{name}={}\n", value.expose()))
            .collect();
        let opened = Arc::new(Opened {
            digest: short_digest(digest_input.as_bytes()),
            values: opened,
        });
        self.secrets.insert(key, opened.clone()).await;
        Ok(opened)
    }

    /// Runs one export in a warm sandbox, and counts the call.
    async fn run(&self, call: Call<'_>) -> Result<Reply, RunnerError> {
        let started = std::time::Instant::now();
        let (result, console) = match self.prepare(&call).await {
            Ok((sandbox, timeout)) => {
                let called = sandbox
                    .call_logged(timeout, call.export, call.args, call.ctx)
                    .await;
                let result = called.result.map_err(|err| match err {
                    SandboxError::Handler(message) => RunnerError::Handler(explain_denial(message)),
                    other => other.into(),
                });
                (result, called.console)
            }
            Err(err) => (Err(err), Vec::new()),
        };
        let took = started.elapsed();
        self.metrics.call(call.kind, took, &result);
        self.logs.record(logs::Invocation {
            did: call.bundle.did.clone(),
            name: call.bundle.name.clone(),
            version: call.bundle.version.to_string(),
            export: call.export.to_string(),
            kind: call.kind.label(),
            status: result.as_ref().map_or_else(RunnerError::label, |_| "ok"),
            duration: took,
            error: result.as_ref().err().map(ToString::to_string),
            console,
        });
        result
    }

    /// A warm sandbox for `call`, and the call's timeout.
    async fn prepare(&self, call: &Call<'_>) -> Result<(Arc<Sandbox>, Duration), RunnerError> {
        let Call {
            bundle,
            manifest,
            timeout,
            ..
        } = *call;
        let secrets = self.secrets(bundle).await?;
        let permissions = manifest
            .permissions
            .with_env(secrets.values.iter().map(|(name, _)| name.as_str()));
        let key = WorkerKey {
            did: bundle.did.clone(),
            bundle: bundle.name.clone(),
            cid: bundle.code_cid,
            permissions,
            secrets_digest: secrets.digest.clone(),
        };
        let sandbox = match self.pool.warm(&key) {
            Some(sandbox) => sandbox,
            None => {
                self.metrics.cold_start();
                let spec = WorkerSpec {
                    code: self.store.code(bundle).await?,
                    grants: ServeGrants {
                        permissions: key.permissions.clone(),
                        env: secrets.values.clone(),
                        egress: Some(self.egress.clone()),
                        kv: key
                            .permissions
                            .kv
                            .then(|| self.kv.scope(bundle.did.clone(), bundle.name.clone())),
                    },
                    key,
                };
                self.pool.acquire(spec).await?
            }
        };
        Ok((sandbox, timeout.unwrap_or(self.sandbox.call_timeout)))
    }

    /// Calls `export` of a bundle with `input`: endpoints run now, tasks go through the
    /// task system (waiting up to `wait` for them to finish).
    pub async fn invoke(
        &self,
        actor: &str,
        name: &str,
        version: &VersionSpec,
        export: &str,
        input: CallInput,
        wait: Duration,
    ) -> Result<Invocation, RunnerError> {
        let CallInput {
            args,
            request,
            caller,
        } = input;
        let (bundle, manifest) = self
            .describe(actor, name, version)
            .await
            .inspect_err(|err| self.metrics.refused(err))?;
        let ctx = endpoint_context(
            bundle.did.as_str(),
            &bundle.name,
            &bundle.version.to_string(),
            export,
            request,
            caller.as_ref(),
        );
        match manifest.exports.get(export) {
            Some(ExportKind::Endpoint) => Ok(Invocation::Reply(
                self.run(Call {
                    kind: CallKind::Endpoint,
                    bundle: &bundle,
                    manifest: &manifest,
                    export,
                    args: &args,
                    ctx: &ctx,
                    timeout: None,
                })
                .await?,
            )),
            Some(ExportKind::Task {
                concurrency,
                cache_ttl,
                ..
            }) => {
                let input = BundleTaskInput {
                    did: bundle.did.clone(),
                    name: bundle.name.clone(),
                    version: bundle.version.clone(),
                    export: export.to_string(),
                    args,
                };
                let lane = Lane {
                    key: input.lane(),
                    owner: bundle.did.to_string(),
                    concurrency: *concurrency,
                    cache_ttl: *cache_ttl,
                };
                let input = serde_json::to_value(&input)
                    .map_err(|err| RunnerError::InvalidRequest(err.to_string()))?;
                let task = self
                    .tasks
                    .submit_and_wait(BUNDLE_TASK, input, Some(lane), wait)
                    .await?;
                Ok(Invocation::Task(task))
            }
            Some(ExportKind::Job { .. }) => Err(RunnerError::InvalidRequest(format!(
                "{export} is a job: it runs on its schedule, not on request"
            ))),
            None => Err(RunnerError::NotFound(format!(
                "{} has no export named {export}",
                bundle.name
            ))),
        }
    }

    /// Runs job `export` of the latest version of `actor`'s bundle `name` (the scheduler
    /// calls this for bundles the operator installed).
    pub async fn run_job(
        &self,
        actor: &str,
        name: &str,
        export: &str,
        last_run_at: Option<String>,
    ) -> Result<(), RunnerError> {
        let (bundle, manifest) = self
            .describe(actor, name, &VersionSpec::Latest)
            .await
            .inspect_err(|err| self.metrics.refused(err))?;
        if !matches!(manifest.exports.get(export), Some(ExportKind::Job { .. })) {
            return Err(RunnerError::NotFound(format!(
                "{name} no longer has a job named {export}"
            )));
        }
        let ctx = json!({
            "bundle": { "did": bundle.did, "name": bundle.name, "version": bundle.version.to_string() },
            "export": export,
            "lastRunAt": last_run_at,
        });
        self.run(Call {
            kind: CallKind::Job,
            bundle: &bundle,
            manifest: &manifest,
            export,
            args: &Value::Null,
            ctx: &ctx,
            timeout: None,
        })
        .await
        .map(drop)
    }
}
