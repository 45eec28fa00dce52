//! `at-run`, the bundle author's command line: sign in to one's PDS, deploy bundles,
//! list them, seal secrets to a runner, and read a bundle's invocation logs on a runner
//! (with a service auth token from one's PDS: no password or session leaves the machine).
//!
//! Everything it keeps lives in `ATRUN_HOME` (default `~/.at-run`), in files only the
//! user can read (0600): the session (`session.json`, refreshed transparently) and, for
//! `at-run keys`, the runner key pair. Every command works without a terminal: the
//! password comes from `ATRUN_PASSWORD` when set, so scripts and tests can drive it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use semver::Version;
use serde::{Deserialize, Serialize};
use url::Url;

mod dev;
mod init;
mod logs;

use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::{HttpClient, HttpPolicy};
use crate::atproto::session::{Agent, Session};
use crate::atproto::xrpc::XrpcClient;
use crate::config::NetworkArgs;
use crate::runner::permissions::{PermissionError, check_env_name};
use crate::runner::sandbox::{SandboxPolicy, install_harness};
use crate::runner::secrets::RunnerKey;
use crate::runner::{Runner, VersionSpec, bundler, deploy};
use crate::secret::Secret;

/// at-run: deploy JavaScript bundles to your own PDS and run them on any runner.
#[derive(Debug, Parser)]
#[command(
    name = "at-run",
    version,
    about = "at-run: write JavaScript/TypeScript bundles, keep them in your own PDS, run them on any at-run runner",
    long_about = "at-run: write JavaScript/TypeScript bundles, keep them in your own PDS \
                  (as dev.atrun.bundle records), and run them on any at-run runner, in a \
                  sandbox with exactly the permissions their manifest declares.\n\n\
                  Start with `at-run init my-api`, try it with `at-run dev my-api/main.ts`, \
                  sign in with `at-run login`, publish with `at-run deploy`. The guide for \
                  authors is docs/at-run.md.",
    after_help = "Examples:\n  \
        at-run init my-api && cd my-api\n  \
        at-run dev main.ts\n  \
        at-run login alice.example.com\n  \
        at-run deploy main.ts --version 1.0.0\n  \
        at-run logs --runner https://runner.example my-api --follow"
)]
struct Cli {
    /// Where the session and keys are kept.
    #[arg(long, env = "ATRUN_HOME", global = true)]
    home: Option<PathBuf>,
    /// The `deno` executable used to bundle and check code.
    #[arg(long, env = "DENO_PATH", default_value = "deno", global = true)]
    deno: PathBuf,
    #[command(flatten)]
    network: NetworkArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a starter bundle: NAME/main.ts with a typed SDK import, deno.json, .env.
    #[command(after_help = "Example:\n  at-run init my-api && cd my-api && at-run dev main.ts")]
    Init {
        /// The bundle's name (lowercase letters, digits and dashes), also its directory.
        name: String,
    },
    /// Serve a bundle from a local file, as a runner would, reloading on every save.
    #[command(after_help = "Example:\n  \
        at-run dev main.ts --port 8787 --env-file .env\n  \
        curl 'http://127.0.0.1:8787/my-api/hello?name=ada'\n\n\
        Every export answers at http://127.0.0.1:PORT/{name}/{export}, in the same sandbox and \
        with the same permissions as on a runner; secrets come from the env file (NAME=value \
        lines); ctx.kv is kept in ATRUN_HOME/dev/. No PDS or sign-in is needed.")]
    Dev {
        /// The entry file (TypeScript or JavaScript).
        entry: PathBuf,
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Local secrets, as NAME=value lines (default: .env beside the entry, if any).
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Sign in to your PDS (use an app password).
    #[command(after_help = "Examples:\n  \
        at-run login alice.example.com                 # asks for the password\n  \
        echo \"$APP_PASSWORD\" | at-run login alice.example.com --password-stdin\n  \
        ATRUN_PASSWORD=… at-run login did:plc:abc123 --pds https://pds.example")]
    Login {
        /// Your handle or DID.
        identifier: String,
        /// Your PDS, if it cannot be found from your identity.
        #[arg(long)]
        pds: Option<Url>,
        /// Read the password from standard input (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Bundle, check and publish a bundle version.
    #[command(after_help = "Examples:\n  \
        at-run deploy main.ts                   # the next patch version\n  \
        at-run deploy main.ts --version 2.0.0-beta.1")]
    Deploy {
        /// The entry file (TypeScript or JavaScript), or an already bundled `.js`.
        entry: PathBuf,
        /// The bundle's name (must match its manifest; defaults to it).
        #[arg(long)]
        name: Option<String>,
        /// The version to publish, as semver (default: the next patch version).
        #[arg(long)]
        version: Option<String>,
    },
    /// Your bundles and their versions: which one `latest` serves, which are yanked.
    #[command(after_help = "Example:\n  at-run ls\n  my-api\t1.1.0 (yanked), 1.0.0\tlatest: 1.0.0")]
    Ls,
    /// Make `latest` serve an earlier version, on every runner at once (until the next
    /// deploy).
    #[command(after_help = "Example:\n  at-run rollback my-api 1.0.0")]
    Rollback {
        /// The bundle.
        bundle: String,
        /// The version `latest` is to serve.
        version: String,
    },
    /// Stop a version being served at all (callers get 410), or serve it again (--undo).
    #[command(after_help = "Examples:\n  \
        at-run yank my-api 1.1.0 --reason \"drops requests\"\n  \
        at-run yank --undo my-api 1.1.0")]
    Yank {
        /// The bundle.
        bundle: String,
        /// The version.
        version: String,
        /// Why, shown to the version's callers (at most 300 characters).
        #[arg(long)]
        reason: Option<String>,
        /// Serve the version again.
        #[arg(long)]
        undo: bool,
    },
    /// Create this machine's runner key pair if missing, and print the public key
    /// (for runner operators).
    #[command(after_help = "Example:\n  ATRUN_HOME=/var/lib/streamhut/at-run at-run keys")]
    Keys,
    /// A bundle's latest invocations on a runner (status, duration, error) and what each
    /// printed, newest first; with --follow, oldest first and then new ones as they come.
    #[command(after_help = "Examples:\n  \
        at-run logs --runner https://runner.example my-api --limit 20\n  \
        at-run logs --runner https://runner.example my-api --follow")]
    Logs {
        /// The runner's base URL.
        #[arg(long)]
        runner: Url,
        /// The bundle.
        bundle: String,
        /// How many invocations (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Keep printing new invocations as they happen (until interrupted).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Secrets sealed to runners.
    #[command(after_help = "Examples:\n  \
        at-run secrets set --runner https://runner.example my-api API_KEY=sk-123\n  \
        at-run secrets ls\n  \
        at-run secrets rm my-api API_KEY")]
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Seal KEY=VALUE to a runner's key and store it on your PDS.
    /// `BUNDLE NAME=value`, in either order.
    #[command(
        after_help = "Example:\n  at-run secrets set --runner https://runner.example my-api API_KEY=sk-123"
    )]
    Set {
        /// The runner's base URL (its public key is read from /.well-known/at-run).
        #[arg(long)]
        runner: Url,
        /// The bundle the secret is for (or NAME=value, if given first).
        bundle: String,
        /// NAME=value (or the bundle, if NAME=value came first).
        assignment: String,
    },
    /// List your secrets (names only; values are sealed).
    #[command(after_help = "Example:\n  at-run secrets ls")]
    Ls,
    /// Remove a secret (for every runner, or only --runner's).
    #[command(after_help = "Examples:\n  \
        at-run secrets rm my-api API_KEY\n  \
        at-run secrets rm --runner https://runner.example my-api API_KEY")]
    Rm {
        /// Only the secret sealed to this runner.
        #[arg(long)]
        runner: Option<Url>,
        /// The bundle.
        bundle: String,
        /// The variable's name.
        name: String,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    pds: Url,
    session: Session,
}

const SESSION_FILE: &str = "session.json";

/// Runs the command line; prints errors and returns the exit status.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

struct CliContext {
    home: PathBuf,
    http: HttpClient,
    identity: IdentityResolver,
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = match &cli.home {
        Some(home) => home.clone(),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set; set ATRUN_HOME")?)
            .join(".at-run"),
    };
    let http = HttpClient::new(HttpPolicy {
        allow_private_network: cli.network.allow_private_network,
        request_timeout: Duration::from_secs(60),
        ..HttpPolicy::default()
    })?;
    let identity = IdentityResolver::new(
        http.clone(),
        cli.network.identity_options(Duration::from_secs(60)),
    );
    let ctx = CliContext {
        home,
        http,
        identity,
    };
    match cli.command {
        Command::Init { name } => init::write(&name),
        Command::Dev {
            entry,
            port,
            env_file,
        } => {
            let private = cli.network.allow_private_network;
            dev::serve(&ctx, &cli.deno, &entry, port, env_file, private).await
        }
        Command::Login {
            identifier,
            pds,
            password_stdin,
        } => login(&ctx, &identifier, pds, password_stdin).await,
        Command::Deploy {
            entry,
            name,
            version,
        } => deploy_bundle(&ctx, &cli.deno, &entry, name, version).await,
        Command::Ls => list(&ctx).await,
        Command::Rollback { bundle, version } => {
            let version = parse_version(&version)?;
            change_release(&ctx, &bundle, deploy::ReleaseChange::Rollback(version)).await
        }
        Command::Yank {
            bundle,
            version,
            reason,
            undo,
        } => {
            let version = parse_version(&version)?;
            if reason.as_ref().is_some_and(|r| r.chars().count() > 300) {
                bail!("--reason is longer than 300 characters");
            }
            let change = if undo {
                deploy::ReleaseChange::Unyank(version)
            } else {
                deploy::ReleaseChange::Yank { version, reason }
            };
            change_release(&ctx, &bundle, change).await
        }
        Command::Keys => {
            let (key, created) = RunnerKey::load_or_create(&ctx.home)?;
            if created {
                eprintln!("created a runner key in {}", ctx.home.display());
            }
            println!("{}", key.public_base64());
            Ok(())
        }
        Command::Logs {
            runner,
            bundle,
            limit,
            follow,
        } => logs::show(&ctx, &runner, &bundle, limit, follow).await,
        Command::Secrets { command } => secrets(&ctx, command).await,
    }
}

async fn login(
    ctx: &CliContext,
    identifier: &str,
    pds: Option<Url>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let pds = match pds {
        Some(pds) => pds,
        None => {
            ctx.identity
                .resolve_actor(identifier)
                .await
                .with_context(|| format!("finding the PDS of {identifier}"))?
                .pds
        }
    };
    let password = match std::env::var("ATRUN_PASSWORD") {
        _ if password_stdin => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                bail!("--password-stdin: standard input had no password");
            }
            Secret::new(password.to_string())
        }
        Ok(password) => Secret::new(password),
        Err(_) => Secret::new(
            rpassword::prompt_password(format!("Password for {identifier}: "))
                .context("reading the password")?,
        ),
    };
    let agent = Agent::login(
        XrpcClient::new(ctx.http.clone(), pds.clone()),
        identifier,
        &password,
    )
    .await
    .context("signing in")?;
    let session = agent.session().await;
    save_session(
        &ctx.home,
        &StoredSession {
            pds,
            session: session.clone(),
        },
    )?;
    println!("signed in as {} ({})", session.handle, session.did);
    Ok(())
}

fn save_session(home: &Path, stored: &StoredSession) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(stored)?;
    crate::fsutil::write_private(&home.join(SESSION_FILE), &json).context("saving the session")
}

/// The signed-in agent; run `work`, then store the session (tokens may have rotated).
async fn with_agent<T>(
    ctx: &CliContext,
    work: impl AsyncFnOnce(&Agent) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let path = ctx.home.join(SESSION_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|_| anyhow::anyhow!("not signed in: run `at-run login <handle>` first"))?;
    let stored: StoredSession = serde_json::from_str(&text).context("reading the session file")?;
    let agent = Agent::resume(
        XrpcClient::new(ctx.http.clone(), stored.pds.clone()),
        stored.session.clone(),
    );
    let result = work(&agent).await;
    let session = agent.session().await;
    if session != stored.session {
        save_session(
            &ctx.home,
            &StoredSession {
                pds: stored.pds,
                session,
            },
        )?;
    }
    result
}

async fn deploy_bundle(
    ctx: &CliContext,
    deno: &Path,
    entry: &Path,
    name: Option<String>,
    version: Option<String>,
) -> anyhow::Result<()> {
    let explicit = version.map(|v| parse_version(&v)).transpose()?;
    eprintln!("bundling {}", entry.display());
    let code = bundler::bundle(deno, entry).await?;
    eprintln!("checking the manifest in a sandbox with no permissions");
    let runtime = ctx.home.join("runtime");
    let harness = install_harness(&runtime).context("installing the sandbox harness")?;
    let policy = Arc::new(local_policy(deno));
    let manifest = Runner::extract_manifest(policy, &harness, &code).await?;
    if let Some(name) = name.filter(|name| name != &manifest.name) {
        bail!(
            "--name {name} differs from the name in the bundle's manifest ({})",
            manifest.name
        );
    }
    with_agent(ctx, async |agent| {
        let published = deploy::list_bundles(agent).await?;
        let version = match explicit {
            Some(version) => version,
            None => next_version(&published, &manifest.name),
        };
        eprintln!(
            "uploading {} ({} KB) as {} {version}",
            manifest.name,
            code.len().div_ceil(1024),
            manifest.name
        );
        let entry_name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let record = deploy::publish(agent, &code, &manifest, &version, &entry_name).await?;
        let did = agent.did().await;
        eprintln!("published {}", record.uri);
        deploy::change_release(agent, &manifest.name, deploy::ReleaseChange::Published)
            .await
            .context("making the new version latest (an earlier rollback chose another)")?;
        println!("/bundle/{did}/{}/{version}", manifest.name);
        Ok(())
    })
    .await
}

/// One patch above the highest published version of `name`, or 0.1.0.
fn next_version(published: &[(String, String, String)], name: &str) -> Version {
    published
        .iter()
        .filter(|(n, _, _)| n == name)
        .filter_map(|(_, v, _)| Version::parse(v).ok())
        .max()
        .map(|mut v| {
            v.patch += 1;
            v.pre = semver::Prerelease::EMPTY;
            v.build = semver::BuildMetadata::EMPTY;
            v
        })
        .unwrap_or_else(|| Version::new(0, 1, 0))
}

/// The sandbox limits of local runs (checking a manifest, `at-run dev`): a runner's
/// defaults.
fn local_policy(deno: &Path) -> SandboxPolicy {
    SandboxPolicy {
        deno: deno.to_path_buf(),
        heap_mb: 256,
        data_limit_mb: 2048,
        call_timeout: Duration::from_secs(30),
        start_timeout: Duration::from_secs(30),
        max_response_bytes: 1024 * 1024,
    }
}

fn parse_version(version: &str) -> anyhow::Result<Version> {
    Version::parse(version)
        .with_context(|| format!("{version:?} is not a semantic version (like 1.2.3)"))
}

/// Applies `change` to `bundle`'s release record and says what runners now serve.
async fn change_release(
    ctx: &CliContext,
    bundle: &str,
    change: deploy::ReleaseChange,
) -> anyhow::Result<()> {
    with_agent(ctx, async |agent| {
        let release = deploy::change_release(agent, bundle, change).await?;
        let published = deploy::list_bundles(agent).await?;
        println!("{}", describe_bundle(bundle, &published, release.as_ref()));
        Ok(())
    })
    .await
}

/// One line of `at-run ls`: the bundle, its versions newest first (yanked ones marked),
/// and what `latest` serves.
fn describe_bundle(
    name: &str,
    published: &[(String, String, String)],
    release: Option<&crate::atproto::records::ReleaseRecord>,
) -> String {
    let mut versions: Vec<Version> = published
        .iter()
        .filter(|(n, _, _)| n == name)
        .filter_map(|(_, v, _)| Version::parse(v).ok())
        .collect();
    versions.sort();
    let list: Vec<String> = versions
        .iter()
        .rev()
        .map(|v| match release.and_then(|r| r.yank_of(&v.to_string())) {
            Some(_) => format!("{v} (yanked)"),
            None => v.to_string(),
        })
        .collect();
    let candidates = versions.into_iter().map(|v| (v, ())).collect();
    let latest = match crate::runner::choose(name, candidates, release, &VersionSpec::Latest) {
        Ok((version, ()))
            if release.and_then(|r| r.latest.clone()) == Some(version.to_string()) =>
        {
            format!("latest: {version} (rolled back)")
        }
        Ok((version, ())) => format!("latest: {version}"),
        Err(_) => "latest: none (every version is yanked)".into(),
    };
    format!("{name}\t{}\t{latest}", list.join(", "))
}

async fn list(ctx: &CliContext) -> anyhow::Result<()> {
    with_agent(ctx, async |agent| {
        let published = deploy::list_bundles(agent).await?;
        let names: std::collections::BTreeSet<&str> =
            published.iter().map(|(name, _, _)| name.as_str()).collect();
        if names.is_empty() {
            println!("no bundles yet: `at-run deploy main.ts` publishes one");
        }
        for name in names {
            let release = deploy::release(agent, name).await?;
            println!("{}", describe_bundle(name, &published, release.as_ref()));
        }
        Ok(())
    })
    .await
}

/// What a runner says about itself at `/.well-known/at-run`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WellKnown {
    public_key: String,
    #[serde(default)]
    did: Option<String>,
}

async fn runner_key(ctx: &CliContext, runner: &Url) -> anyhow::Result<String> {
    Ok(well_known(ctx, runner).await?.public_key)
}

async fn well_known(ctx: &CliContext, runner: &Url) -> anyhow::Result<WellKnown> {
    let url = runner.join("/.well-known/at-run")?;
    let response = ctx
        .http
        .send(ctx.http.request(reqwest::Method::GET, url))
        .await
        .with_context(|| format!("reaching the runner at {runner}"))?;
    if !response.status().is_success() {
        bail!(
            "{runner} answered {} for /.well-known/at-run: is it an at-run runner?",
            response.status()
        );
    }
    let body = ctx.http.read_body(response, Some(4096)).await?;
    serde_json::from_slice(&body).context("reading the runner's /.well-known/at-run")
}

async fn secrets(ctx: &CliContext, command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Set {
            runner,
            bundle,
            assignment,
        } => {
            // Bundle names never contain '=', so the order does not matter.
            let (bundle, assignment) = if bundle.contains('=') && !assignment.contains('=') {
                (assignment, bundle)
            } else {
                (bundle, assignment)
            };
            let (name, value) = assignment
                .split_once('=')
                .context("expected a bundle name and NAME=value")?;
            check_env_name(name).map_err(|err| match err {
                PermissionError::Env(_) => anyhow::anyhow!(
                    "{name:?} is not a valid variable name (uppercase letters, digits and _)"
                ),
                other => other.into(),
            })?;
            let key = runner_key(ctx, &runner).await?;
            with_agent(ctx, async |agent| {
                deploy::put_secret(agent, &key, &bundle, name, value).await?;
                println!("{name} set for {bundle} on {runner}");
                Ok(())
            })
            .await
        }
        SecretsCommand::Ls => {
            with_agent(ctx, async |agent| {
                let secrets = deploy::list_secrets(agent).await?;
                if secrets.is_empty() {
                    println!("no secrets");
                }
                for (bundle, name, runner, _) in secrets {
                    println!(
                        "{bundle}\t{name}\trunner key {}…",
                        runner.get(..12).unwrap_or(&runner)
                    );
                }
                Ok(())
            })
            .await
        }
        SecretsCommand::Rm {
            runner,
            bundle,
            name,
        } => {
            let key = match &runner {
                Some(runner) => Some(runner_key(ctx, runner).await?),
                None => None,
            };
            with_agent(ctx, async |agent| {
                let removed = deploy::remove_secret(agent, &bundle, &name, key.as_deref()).await?;
                if removed == 0 {
                    bail!("{bundle} has no secret named {name}");
                }
                println!(
                    "removed {name} from {bundle} ({removed} runner{})",
                    if removed == 1 { "" } else { "s" }
                );
                Ok(())
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_version_bumps_the_highest_patch() {
        let published = vec![
            ("a".to_string(), "1.2.3".to_string(), String::new()),
            ("a".to_string(), "1.10.0-beta".to_string(), String::new()),
            ("b".to_string(), "9.0.0".to_string(), String::new()),
        ];
        assert_eq!(
            next_version(&published, "a"),
            Version::parse("1.10.1").expect("v")
        );
        assert_eq!(next_version(&published, "c"), Version::new(0, 1, 0));
    }
}
