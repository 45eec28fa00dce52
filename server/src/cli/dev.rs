//! `at-run dev FILE`: a bundle served from a local file at
//! `http://127.0.0.1:PORT/{name}/{export}`, in the same sandbox, with the same permissions
//! and the same request handling as on a runner, with no PDS: secrets come from a
//! `.env`-style file, `ctx.kv` from a libSQL file under `ATRUN_HOME/dev/`. The entry's
//! directory and the env file are watched; a save rebuilds and swaps the sandbox, and a
//! build that fails leaves the last good one serving. Each call is printed with what the
//! bundle printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::CliContext;
use crate::api::XrpcError;
use crate::db::{DatabaseLocation, Db};
use crate::runner::egress::Egress;
use crate::runner::kv::KvStore;
use crate::runner::permissions::check_env_name;
use crate::runner::sandbox::{Launch, Sandbox, SandboxPolicy, ServeGrants};
use crate::runner::{CallRequest, Runner, bundler, endpoint_context};
use crate::secret::Secret;
use crate::web::runner::{arguments, reply_response};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(200);
/// The DID bundles see as their author's when served locally.
const DEV_DID: &str = "did:web:localhost";
/// The version they see.
const DEV_VERSION: &str = "0.0.0-dev";
/// Bytes of `ctx.kv` a local bundle may keep.
const DEV_KV_BYTES: u64 = 64 * 1024 * 1024;

/// The running bundle and what it needs to reload.
struct Dev {
    policy: Arc<SandboxPolicy>,
    harness: PathBuf,
    deno: PathBuf,
    entry: PathBuf,
    env_file: Option<PathBuf>,
    egress: Arc<Egress>,
    kv: KvStore,
    /// The bundle's name and its sandbox, swapped on reload.
    current: Mutex<Option<(String, Arc<Sandbox>)>>,
}

/// Serves `entry` on `port` until interrupted.
pub(super) async fn serve(
    ctx: &CliContext,
    deno: &Path,
    entry: &Path,
    port: u16,
    env_file: Option<PathBuf>,
    allow_private_network: bool,
) -> anyhow::Result<()> {
    let entry = entry
        .canonicalize()
        .with_context(|| format!("{} cannot be read", entry.display()))?;
    let env_file = env_file.or_else(|| {
        let beside = entry.parent()?.join(".env");
        beside.exists().then_some(beside)
    });
    let policy = Arc::new(super::local_policy(deno));
    let harness = crate::runner::sandbox::install_harness(&ctx.home.join("runtime"))
        .context("installing the sandbox harness")?;
    let shutdown = CancellationToken::new();
    let egress = Egress::start(allow_private_network, policy.call_timeout, shutdown.clone())
        .await
        .context("starting the network forwarder")?;
    let kv_dir = ctx.home.join("dev");
    std::fs::create_dir_all(&kv_dir).with_context(|| format!("creating {}", kv_dir.display()))?;
    let db = Db::open(&DatabaseLocation::File(kv_dir.join("kv.db"))).await?;
    db.migrate().await?;
    let dev = Arc::new(Dev {
        policy,
        harness,
        deno: deno.to_path_buf(),
        entry,
        env_file,
        egress,
        kv: KvStore::open(db, DEV_KV_BYTES).await?,
        current: Mutex::new(None),
    });
    if let Err(err) = dev.load().await {
        eprintln!("{err:#}\n(waiting for a save to try again)");
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    eprintln!(
        "serving {} at http://127.0.0.1:{port}/{{name}}/{{export}} (Ctrl-C stops)",
        dev.entry.display()
    );
    tokio::spawn(watch(dev.clone(), shutdown.clone()));
    let app = axum::Router::new()
        .route("/{name}/{export}", axum::routing::any(call))
        .with_state(dev);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving")?;
    Ok(())
}

impl Dev {
    /// Bundles the entry, reads its manifest and starts a sandbox for it.
    async fn load(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let code = bundler::bundle(&self.deno, &self.entry).await?;
        let manifest = Runner::extract_manifest(self.policy.clone(), &self.harness, &code).await?;
        let secrets = match &self.env_file {
            Some(path) => read_env_file(path)?,
            None => Vec::new(),
        };
        let permissions = manifest
            .permissions
            .with_env(secrets.iter().map(|(name, _)| name.as_str()));
        let kv = match (permissions.kv, DEV_DID.parse()) {
            (true, Ok(did)) => Some(self.kv.scope(did, manifest.name.clone())),
            _ => None,
        };
        let grants = ServeGrants {
            permissions,
            env: secrets,
            egress: Some(self.egress.clone()),
            kv,
        };
        let (sandbox, _) = Sandbox::start(
            self.policy.clone(),
            &self.harness,
            Launch::Serve(grants),
            &code,
        )
        .await?;
        let exports: Vec<&str> = manifest.exports.keys().map(String::as_str).collect();
        eprintln!(
            "loaded {} in {} ms: {}",
            manifest.name,
            started.elapsed().as_millis(),
            exports.join(", ")
        );
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *current = Some((manifest.name.clone(), Arc::new(sandbox)));
        Ok(())
    }
}

/// Reloads whenever a file in the entry's directory (or the env file) changes.
async fn watch(dev: Arc<Dev>, shutdown: CancellationToken) {
    let root = dev
        .entry
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut seen = stamps(&root, dev.env_file.as_deref());
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let now = stamps(&root, dev.env_file.as_deref());
        if now != seen {
            seen = now;
            eprintln!("change seen: reloading");
            if let Err(err) = dev.load().await {
                eprintln!("{err:#}\n(still serving the last version that loaded)");
            }
        }
    }
}

/// When each source file under `root` (a few levels down, without dependencies' and
/// version control's directories) and the env file last changed.
fn stamps(root: &Path, env_file: Option<&Path>) -> BTreeMap<PathBuf, SystemTime> {
    fn walk(dir: &Path, depth: u32, out: &mut BTreeMap<PathBuf, SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') || name == "node_modules" {
                continue;
            }
            match entry.metadata() {
                Ok(meta) if meta.is_dir() && depth > 0 => walk(&path, depth - 1, out),
                Ok(meta) if meta.is_file() => {
                    let source = path.extension().is_some_and(|ext| {
                        ["ts", "tsx", "js", "mjs", "jsx", "json"].contains(&&*ext.to_string_lossy())
                    });
                    if let (true, Ok(modified)) = (source, meta.modified()) {
                        out.insert(path, modified);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, 3, &mut out);
    if let Some(file) = env_file
        && let Ok(modified) = std::fs::metadata(file).and_then(|meta| meta.modified())
    {
        out.insert(file.to_path_buf(), modified);
    }
    out
}

/// `NAME=value` lines (blank lines and `#` comments skipped; values may be quoted).
fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, Secret)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut values = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            bail!("{}:{}: expected NAME=value", path.display(), number + 1);
        };
        let name = name.trim();
        check_env_name(name).with_context(|| format!("{}:{}", path.display(), number + 1))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        values.push((name.to_string(), Secret::new(value.to_string())));
    }
    Ok(values)
}

/// `{any method} /{name}/{export}`: the export called as a runner calls it.
async fn call(
    State(dev): State<Arc<Dev>>,
    UrlPath((name, export)): UrlPath<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let loaded = dev
        .current
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some((loaded_name, sandbox)) = loaded else {
        return XrpcError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "the bundle has not loaded: its error is in the terminal",
        )
        .into_response();
    };
    if name != loaded_name {
        return XrpcError::not_found(format!("this serves {loaded_name}, not {name}"))
            .into_response();
    }
    let args = match arguments(&headers, uri.query(), &body) {
        Ok(args) => args,
        Err(err) => return err.into_response(),
    };
    let url = format!(
        "http://{}{}",
        headers
            .get(axum::http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("127.0.0.1"),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let request = CallRequest::new(&method, url, &headers, body);
    let ctx = endpoint_context(DEV_DID, &name, DEV_VERSION, &export, Some(request), None);
    let called = sandbox
        .call_logged(dev.policy.call_timeout, &export, &args, &ctx)
        .await;
    let response = match called.result {
        Ok(reply) => reply_response(reply),
        Err(err) => XrpcError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "BundleError",
            err.to_string(),
        )
        .into_response(),
    };
    eprintln!(
        "{method} {} -> {} ({} ms)",
        uri.path(),
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    for line in called.console {
        eprintln!(
            "  {:<5} {}",
            line.level,
            line.text.replace('\n', "\n        ")
        );
    }
    response
}
