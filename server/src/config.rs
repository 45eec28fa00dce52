//! Configuration: one struct, read once at start from flags and environment variables
//! (a `.env` file in the working directory is loaded first, if present).
//!
//! Every setting has a flag and an environment variable; `streamhut --help` lists them with
//! their defaults. Modules never read the environment themselves: they get what they need
//! from [`Config`], which makes them testable with any configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use url::Url;

use crate::atproto::identity::IdentityOptions;
use crate::atproto::net::HttpPolicy;
use crate::atproto::syntax::{self, Did};
use crate::db::DatabaseLocation;
use crate::runner::RunnerPolicy;
use crate::runner::pool::PoolPolicy;
use crate::runner::sandbox::SandboxPolicy;
use crate::secret::Secret;
use crate::tasks::TaskPolicy;

/// Streamhut: a video site and an at-run runner on the AT Protocol.
#[derive(Debug, Clone, Parser)]
#[command(name = "streamhut", version, about)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "STREAMHUT_LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: SocketAddr,

    /// Directory for the database file and caches; created if missing.
    #[arg(long, env = "STREAMHUT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The URL people reach this server at, used for absolute links (share pages,
    /// Open Graph tags). Defaults to `http://<listen address>`.
    #[arg(long, env = "STREAMHUT_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// The built site (`pkg/` with the wasm, JS and CSS, plus `public/` files).
    #[arg(long, env = "STREAMHUT_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed
    /// (comma-separated IPs or CIDRs, e.g. `127.0.0.1,10.0.0.0/8`). Empty: the client is
    /// the TCP peer, and those headers are ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// How long a client may take to send a request's head, in seconds; slower
    /// connections are closed.
    #[arg(long, env = "STREAMHUT_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// How long a public page rendered for an anonymous visitor is reused for others, in
    /// seconds (0: every view is rendered afresh).
    #[arg(long, env = "STREAMHUT_PAGE_CACHE_SECS", default_value_t = 2)]
    pub page_cache_secs: u64,

    /// Remote libSQL database (Turso), e.g. `libsql://name-org.turso.io`. When unset, the
    /// embedded database file `<data dir>/streamhut.db` is used.
    #[arg(long, env = "TURSO_URL")]
    pub turso_url: Option<String>,

    /// Auth token for `TURSO_URL`.
    #[arg(long, env = "TURSO_AUTH_TOKEN", hide_env_values = true)]
    pub turso_auth_token: Option<Secret>,

    /// A file holding `TURSO_AUTH_TOKEN` (kept out of `ps` and the environment).
    #[arg(long, env = "TURSO_AUTH_TOKEN_FILE", value_name = "PATH", value_parser = secret_file, conflicts_with = "turso_auth_token")]
    turso_auth_token_file: Option<Secret>,

    /// Identity resolution and the private-network guard.
    #[command(flatten)]
    pub network: NetworkArgs,

    /// How long a failed task's error is returned for the same input before it is tried
    /// afresh, in seconds.
    #[arg(long, env = "STREAMHUT_TASK_FAILURE_TTL_SECS", default_value_t = 30)]
    pub task_failure_ttl_secs: u64,

    /// Most tasks waiting in one queue: one bundle export's, or one task kind's (such
    /// as `vod.thumbnail`). Submissions beyond it are refused with 503 `QueueFull`.
    #[arg(long, env = "STREAMHUT_TASK_MAX_PENDING", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub task_max_pending: u32,

    /// Bytes of finished tasks kept in memory (results read without the database), in MB.
    #[arg(long, env = "STREAMHUT_TASK_CACHE_MB", default_value_t = 64)]
    pub task_cache_mb: u64,

    /// Task submissions per minute per client (an IPv4 address or an IPv6 /64) on
    /// `POST /api/tasks` and the public task routes of `/api/vod/` (0: no limit).
    #[arg(long, env = "STREAMHUT_TASK_RATE_LIMIT", default_value_t = 120)]
    pub task_rate_limit: u32,

    /// The `deno` executable bundles run in (default: `deno` on PATH; the README
    /// commands install it from npm into `node_modules/.bin`).
    #[arg(long, env = "DENO_PATH", default_value = "deno")]
    pub deno_path: PathBuf,

    /// Where the runner's X25519 key is (`runner-key.json`, created if missing; mount it
    /// read-only in production). Default: `~/.at-run`. Cached bundle code lives in the
    /// data directory.
    #[arg(long, env = "ATRUN_HOME")]
    pub atrun_home: Option<PathBuf>,

    /// Bundles whose `job()` exports this runner runs on schedule: comma-separated
    /// `did/name` (or `handle/name`), always the latest version.
    #[arg(long, env = "ATRUN_JOBS", value_delimiter = ',')]
    pub atrun_jobs: Vec<String>,

    /// Only run bundles by these authors (comma-separated DIDs); default: anyone.
    #[arg(long, env = "ATRUN_AUTHORS", value_delimiter = ',')]
    pub atrun_authors: Vec<String>,

    /// Requests per minute each client IP may make to `/bundle/...` (0: no limit).
    #[arg(long, env = "ATRUN_RATE_LIMIT", default_value_t = 600)]
    pub atrun_rate_limit: u32,

    /// Longest a bundle call may run, in seconds.
    #[arg(long, env = "ATRUN_CALL_TIMEOUT_SECS", default_value_t = 30)]
    pub atrun_call_timeout_secs: u64,

    /// Longest a bundle's top-level code may take to load, in seconds.
    #[arg(long, env = "ATRUN_LOAD_TIMEOUT_SECS", default_value_t = 15)]
    pub atrun_load_timeout_secs: u64,

    /// How long opened secrets are reused before the author's PDS is read again, in
    /// seconds: a removed or replaced secret may be used that long. 0: read every call.
    #[arg(long, env = "ATRUN_SECRETS_TTL_SECS", default_value_t = 5)]
    pub atrun_secrets_ttl_secs: u64,

    /// V8 heap limit of each bundle process, in MB.
    #[arg(long, env = "ATRUN_HEAP_MB", default_value_t = 256)]
    pub atrun_heap_mb: u64,

    /// OS memory limit (data segment) of each bundle process, in MB; it also bounds
    /// ArrayBuffers, which the heap limit does not. Deno needs about 1.5 GB to start.
    #[arg(long, env = "ATRUN_PROCESS_MEMORY_MB", default_value_t = 2048)]
    pub atrun_process_memory_mb: u64,

    /// Most bundle processes at once.
    #[arg(long, env = "ATRUN_MAX_WORKERS", default_value_t = 16)]
    pub atrun_max_workers: usize,

    /// Most bundle tasks of one author running at once (default: a quarter of
    /// `ATRUN_MAX_WORKERS`, at least 1), so one author cannot take every task slot.
    #[arg(long, env = "ATRUN_TASKS_PER_AUTHOR")]
    pub atrun_tasks_per_author: Option<u32>,

    /// Most bundle tasks of one author waiting at once, over all their bundles.
    #[arg(long, env = "ATRUN_PENDING_PER_AUTHOR", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..))]
    pub atrun_pending_per_author: u32,

    /// Finished bundle tasks (inputs, results, errors) kept per author, in MB; the
    /// oldest are deleted beyond it, whatever their cache TTL.
    #[arg(long, env = "ATRUN_TASK_RESULTS_MAX_MB", default_value_t = 64)]
    pub atrun_task_results_max_mb: u64,

    /// Invocation log lines kept per bundle (ten times as many per author over all their
    /// bundles); older lines are deleted first.
    #[arg(long, env = "ATRUN_LOG_LINES_PER_BUNDLE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub atrun_log_lines_per_bundle: u32,

    /// Bytes of `ctx.kv` entries (keys and JSON values) each bundle may keep, in MB.
    #[arg(long, env = "ATRUN_KV_MAX_MB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub atrun_kv_max_mb: u64,

    /// Bundle code kept on disk (`<data dir>/at-run/bundles`), in MB, least recently used
    /// first out.
    #[arg(long, env = "ATRUN_CODE_CACHE_MB", default_value_t = 512)]
    pub atrun_code_cache_mb: u64,

    /// Of that, most per author, in MB: one author's many versions evict their own code,
    /// not other authors'.
    #[arg(long, env = "ATRUN_CODE_CACHE_PER_AUTHOR_MB", default_value_t = 64)]
    pub atrun_code_cache_per_author_mb: u64,

    /// Largest response a bundle call may return, in bytes.
    #[arg(long, env = "ATRUN_MAX_RESPONSE_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub atrun_max_response_bytes: usize,

    /// Admins (comma-separated DIDs): they sign in to `/admin` with their handle and an
    /// app password, checked by their own PDS.
    #[arg(long, env = "ADMIN_DIDS", value_delimiter = ',')]
    pub admin_dids: Vec<String>,

    /// A bearer token for admin API clients (`Authorization: Bearer …`); unset: none.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// A file holding `ADMIN_TOKEN`.
    #[arg(long, env = "ADMIN_TOKEN_FILE", value_name = "PATH", value_parser = secret_file, conflicts_with = "admin_token")]
    admin_token_file: Option<Secret>,

    /// A bearer token Prometheus must send to read `/metrics` (`Authorization: Bearer
    /// …`); unset: `/metrics` is open.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// A file holding `METRICS_TOKEN`.
    #[arg(long, env = "METRICS_TOKEN_FILE", value_name = "PATH", value_parser = secret_file, conflicts_with = "metrics_token")]
    metrics_token_file: Option<Secret>,

    /// Key that signs admin session cookies (at least 32 characters). Unset: a random key
    /// is generated once and kept in `<data dir>/session.key`.
    #[arg(long, env = "STREAMHUT_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<Secret>,

    /// A file holding `STREAMHUT_SESSION_SECRET`.
    #[arg(long, env = "STREAMHUT_SESSION_SECRET_FILE", value_name = "PATH", value_parser = secret_file, conflicts_with = "session_secret")]
    session_secret_file: Option<Secret>,

    /// How the log is written: `text` for people, `json` for collectors (one object per
    /// line). Colours only on a terminal, and never when `NO_COLOR` is set.
    #[arg(long, env = "STREAMHUT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Creators synced at once.
    #[arg(long, env = "APPVIEW_SYNC_CONCURRENCY", default_value_t = 8)]
    pub appview_sync_concurrency: u32,

    /// Cap of the avatar cache (`<data dir>/cache/avatars`), in MB; each creator may
    /// hold a sixteenth of it.
    #[arg(long, env = "APPVIEW_AVATAR_CACHE_MB", default_value_t = 64)]
    pub appview_avatar_cache_mb: u64,

    /// Follow the firehose of every PDS hosting a registered creator, so changes show
    /// within seconds; off: only the 15-minute sync.
    #[arg(
        long,
        env = "APPVIEW_FIREHOSE",
        default_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
    )]
    pub appview_firehose: bool,

    /// Public Bluesky API asked for a profile when the creator's PDS has none; empty:
    /// never asked.
    #[arg(
        long,
        env = "BSKY_PUBLIC_API_URL",
        default_value = "https://public.api.bsky.app"
    )]
    pub bsky_public_api_url: String,

    /// Creators registered on first start, when none are (comma-separated handles or
    /// DIDs; empty: none). The default publishes the ATmosphereConf VODs.
    #[arg(
        long,
        env = "STREAMHUT_DEFAULT_CREATORS",
        value_delimiter = ',',
        default_value = "did:plc:rbvrr34edl5ddpuwcubjiost"
    )]
    pub default_creators: Vec<String>,

    /// The HLS origin videos play from: a stream.place node. (`https://vod-beta.stream.place`,
    /// the default until mid-2026, no longer answers.)
    #[arg(long, env = "VOD_ORIGIN_URL", default_value = "https://stream.place")]
    pub vod_origin_url: Url,

    /// Other stream.place nodes tried, in order, when the origin answers `BlobNotFound`
    /// for a video (comma-separated URLs); the nodes such an answer names are tried too.
    #[arg(long, env = "VOD_FALLBACK_ORIGINS", value_delimiter = ',')]
    pub vod_fallback_origins: Vec<Url>,

    /// The ffmpeg executable thumbnails and previews are made with.
    #[arg(long, env = "FFMPEG_PATH", default_value = "ffmpeg")]
    pub ffmpeg_path: PathBuf,

    /// Most ffmpeg runs at once (and the concurrency of each preview task).
    #[arg(long, env = "VOD_FFMPEG_CONCURRENCY", default_value_t = 2)]
    pub vod_ffmpeg_concurrency: usize,

    /// Cap of the image cache under the data directory, in MB.
    #[arg(long, env = "VOD_CACHE_MAX_MB", default_value_t = 1024)]
    pub vod_cache_max_mb: u64,

    /// A remote AppView (its `listVideos` base URL) that `/api/vod/listVideos` reads
    /// instead of ours.
    #[arg(long, env = "APPVIEW_URL")]
    pub appview_url: Option<Url>,
}

/// A proxy address: a CIDR, or one IP.
/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A secret read from the file at `path`, without its final line break; the file's
/// contents never appear in the error.
fn secret_file(path: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(Secret::new(value))
}

fn parse_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{value:?} is neither an IP address nor a CIDR like 10.0.0.0/8"))
}

/// How identities are resolved and whether private addresses may be reached: the same
/// settings for the server and the `at-run` command.
#[derive(Debug, Clone, clap::Args)]
pub struct NetworkArgs {
    /// PLC directory that resolves `did:plc` identities.
    #[arg(
        long,
        env = "PLC_URL",
        default_value = "https://plc.directory",
        global = true
    )]
    pub plc_url: Url,

    /// A service answering `com.atproto.identity.resolveHandle`, tried after DNS and
    /// `/.well-known/atproto-did` (e.g. a PDS, for handles without DNS).
    #[arg(long, env = "HANDLE_RESOLVER_URL", global = true)]
    pub handle_resolver_url: Option<Url>,

    /// Allow outbound requests to private, loopback and link-local addresses. Off by
    /// default so DID documents cannot point us at the internal network; local
    /// development and tests turn it on.
    #[arg(
        long,
        env = "ALLOW_PRIVATE_NETWORK",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        global = true
    )]
    pub allow_private_network: bool,
}

impl NetworkArgs {
    /// Identity resolution with these settings, results cached for `cache_ttl`.
    pub fn identity_options(&self, cache_ttl: Duration) -> IdentityOptions {
        IdentityOptions {
            plc_url: self.plc_url.clone(),
            handle_resolver_url: self.handle_resolver_url.clone(),
            cache_ttl,
            dns: true,
        }
    }
}

impl Config {
    /// File name of the embedded database inside the data directory.
    pub const DATABASE_FILE: &str = "streamhut.db";

    /// Configuration from the process's flags and environment.
    pub fn from_env() -> Self {
        Self::parse().with_secret_files()
    }

    /// Configuration from explicit arguments instead of the process's own (the environment
    /// still applies), as tests and embedders need.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args).map(Self::with_secret_files)
    }

    /// Secrets given as `*_FILE` settings, in the places the rest of the code reads.
    fn with_secret_files(mut self) -> Self {
        for (value, file) in [
            (
                &mut self.turso_auth_token,
                self.turso_auth_token_file.take(),
            ),
            (&mut self.admin_token, self.admin_token_file.take()),
            (&mut self.metrics_token, self.metrics_token_file.take()),
            (&mut self.session_secret, self.session_secret_file.take()),
        ] {
            if value.is_none() {
                *value = file;
            }
        }
        self
    }

    /// The database to open.
    pub fn database(&self) -> DatabaseLocation {
        match &self.turso_url {
            Some(url) => DatabaseLocation::Remote {
                url: url.clone(),
                auth_token: self.turso_auth_token.clone().unwrap_or_default(),
            },
            None => DatabaseLocation::File(self.data_dir.join(Self::DATABASE_FILE)),
        }
    }

    /// The outbound HTTP policy for AT Protocol traffic.
    pub fn http_policy(&self) -> HttpPolicy {
        HttpPolicy {
            allow_private_network: self.network.allow_private_network,
            ..HttpPolicy::default()
        }
    }

    /// How the task system runs.
    pub fn task_policy(&self) -> TaskPolicy {
        TaskPolicy {
            failure_ttl: Duration::from_secs(self.task_failure_ttl_secs),
            max_pending: self.task_max_pending,
            max_pending_per_owner: self.atrun_pending_per_author,
            results_per_owner_bytes: self.atrun_task_results_max_mb.saturating_mul(1024 * 1024),
            memory_cache_bytes: self.task_cache_mb.saturating_mul(1024 * 1024),
            ..TaskPolicy::default()
        }
    }

    /// `ATRUN_HOME`, defaulting to `~/.at-run` (or `<data dir>/at-run` without a home).
    pub fn atrun_home(&self) -> PathBuf {
        self.atrun_home
            .clone()
            .unwrap_or_else(|| match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".at-run"),
                None => self.data_dir.join("at-run"),
            })
    }

    /// How the embedded runner runs.
    pub fn runner_policy(&self) -> RunnerPolicy {
        let home = self.atrun_home();
        let work_dir = self.data_dir.join("at-run");
        let named: Vec<&str> = self
            .atrun_authors
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect();
        // An entry that is not a DID allows nobody; the list still restricts.
        let authors: HashSet<Did> = named
            .iter()
            .filter_map(|a| match syntax::did(a) {
                Ok(did) => Some(did),
                Err(err) => {
                    tracing::warn!(error = %err, "ignoring an ATRUN_AUTHORS entry");
                    None
                }
            })
            .collect();
        RunnerPolicy {
            sandbox: SandboxPolicy {
                deno: self.deno_path.clone(),
                heap_mb: self.atrun_heap_mb,
                data_limit_mb: self.atrun_process_memory_mb,
                call_timeout: Duration::from_secs(self.atrun_call_timeout_secs),
                start_timeout: Duration::from_secs(self.atrun_load_timeout_secs.max(1)),
                max_response_bytes: self.atrun_max_response_bytes,
            },
            pool: PoolPolicy {
                max_workers: self.atrun_max_workers.max(1),
                ..PoolPolicy::default()
            },
            allowed_authors: (!named.is_empty()).then_some(authors),
            allow_private_network: self.network.allow_private_network,
            secrets_ttl: Duration::from_secs(self.atrun_secrets_ttl_secs),
            home,
            work_dir,
            service_did: self.service_did(),
            log_lines_per_bundle: self.atrun_log_lines_per_bundle,
            kv_max_bytes: self.atrun_kv_max_mb.saturating_mul(1024 * 1024),
            code_cache_bytes: self.atrun_code_cache_mb.saturating_mul(1024 * 1024),
            code_cache_per_author_bytes: self
                .atrun_code_cache_per_author_mb
                .saturating_mul(1024 * 1024),
            tasks_per_author: self.atrun_tasks_per_author.unwrap_or_else(|| {
                u32::try_from(self.atrun_max_workers / 4)
                    .unwrap_or(u32::MAX)
                    .max(1)
            }),
        }
    }

    /// This server's service DID, `did:web:` of the public URL's host (and port): the
    /// audience of the service auth tokens bundle authors present.
    /// An address that makes no `did:web` (an IPv6 literal) gives `did:web:localhost`.
    pub fn service_did(&self) -> Did {
        let public = self.public_url();
        url::Url::parse(&public)
            .ok()
            .and_then(|url| {
                let host = url.host_str()?.to_string();
                let authority = match url.port() {
                    Some(port) => format!("{host}%3A{port}"),
                    None => host,
                };
                syntax::did(&format!("did:web:{authority}")).ok()
            })
            .unwrap_or_else(|| Did::new_static("did:web:localhost").expect("a valid DID"))
    }

    /// Where identities are resolved.
    pub fn identity_options(&self) -> IdentityOptions {
        self.network.identity_options(Duration::from_secs(600))
    }

    /// How the AppView indexes and serves.
    pub fn appview_options(&self) -> crate::appview::AppViewOptions {
        let bsky = self.bsky_public_api_url.trim();
        crate::appview::AppViewOptions {
            sync_concurrency: self.appview_sync_concurrency.max(1),
            firehose: self.appview_firehose,
            bsky_public_api: (!bsky.is_empty()).then(|| bsky.trim_end_matches('/').to_string()),
            avatar_dir: self.data_dir.join("cache").join("avatars"),
            avatar_cache_bytes: self.appview_avatar_cache_mb.saturating_mul(1024 * 1024),
            public_url: self.public_url(),
            default_creators: self
                .default_creators
                .iter()
                .map(|actor| actor.trim().to_string())
                .filter(|actor| !actor.is_empty())
                .collect(),
        }
    }

    /// How VOD runs.
    pub fn vod_options(&self) -> crate::vod::VodOptions {
        crate::vod::VodOptions {
            origin: self.vod_origin_url.clone(),
            fallback_origins: self.vod_fallback_origins.clone(),
            public_url: self.public_url(),
            ffmpeg: self.ffmpeg_path.clone(),
            ffmpeg_concurrency: self.vod_ffmpeg_concurrency.max(1),
            ffmpeg_timeout: Duration::from_secs(30),
            cache_dir: self.data_dir.join("cache").join("vod"),
            cache_max_bytes: self.vod_cache_max_mb.saturating_mul(1024 * 1024),
            appview_url: self.appview_url.clone(),
        }
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None if self.listen_addr.ip().is_unspecified() => {
                format!("http://localhost:{}", self.listen_addr.port())
            }
            None => format!("http://{}", self.listen_addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::from_args(std::iter::once("streamhut").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_need_no_account() {
        let config = parse(&[]);
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.public_url(), "http://127.0.0.1:3000");
        match config.database() {
            DatabaseLocation::File(path) => assert!(path.ends_with("streamhut.db")),
            other => panic!("expected the embedded file, got {other:?}"),
        }
    }

    #[test]
    fn turso_url_switches_to_remote_and_hides_the_token() {
        let config = parse(&[
            "--turso-url",
            "libsql://db.example.turso.io",
            "--turso-auth-token",
            "very-secret",
        ]);
        let location = config.database();
        assert!(
            matches!(&location, DatabaseLocation::Remote { url, .. } if url.starts_with("libsql://"))
        );
        let printed = format!("{config:?} {location:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
    }

    #[test]
    fn secrets_can_come_from_files_and_never_from_both_places() {
        let dir = tempfile::tempdir().expect("tempdir");
        let admin = dir.path().join("admin");
        std::fs::write(&admin, "token-from-a-file\n").expect("write");
        let path = admin.to_str().expect("utf-8");
        let config = parse(&["--admin-token-file", path]);
        assert_eq!(
            config.admin_token.as_ref().map(Secret::expose),
            Some("token-from-a-file")
        );
        assert!(!format!("{config:?}").contains("token-from-a-file"));

        let both = Config::from_args([
            "streamhut",
            "--admin-token",
            "x",
            "--admin-token-file",
            path,
        ]);
        assert!(both.is_err());
        let missing = dir.path().join("missing");
        let err = Config::from_args([
            "streamhut",
            "--metrics-token-file",
            missing.to_str().expect("utf-8"),
        ])
        .expect_err("unreadable");
        assert!(err.to_string().contains("cannot read"), "{err}");
        std::fs::write(&admin, "\n").expect("write");
        assert!(Config::from_args(["streamhut", "--session-secret-file", path]).is_err());
    }

    #[test]
    fn public_url_has_no_trailing_slash_and_names_a_reachable_host() {
        let config = parse(&["--public-url", "https://video.example/"]);
        assert_eq!(config.public_url(), "https://video.example");
        let config = parse(&["--listen-addr", "0.0.0.0:8080"]);
        assert_eq!(config.public_url(), "http://localhost:8080");
    }

    #[test]
    fn the_private_network_guard_is_on_unless_lifted() {
        assert!(!parse(&[]).http_policy().allow_private_network);
        for value in ["true", "1", "yes"] {
            let config = parse(&["--allow-private-network", value]);
            assert!(config.http_policy().allow_private_network, "{value}");
        }
        assert_eq!(
            parse(&[]).network.plc_url.as_str(),
            "https://plc.directory/"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let err = Config::from_args(["streamhut", "--listen-addr", "nowhere"])
            .expect_err("an address without a port is invalid");
        assert!(err.to_string().contains("--listen-addr"), "{err}");
    }
}
