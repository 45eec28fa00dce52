//! Starting Deno: the harness file it runs, its command line and environment, and the
//! reasons it gives when it stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{SandboxError, SandboxPolicy, lock};

/// `DENO_DIR` of sandboxed processes: a path that cannot exist.
const NO_DENO_DIR: &str = "/dev/null/deno";

/// A Deno process just started, and its pipes.
pub(super) struct Started {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    /// The last of what it wrote to stderr.
    pub stderr_tail: Arc<Mutex<Vec<u8>>>,
}

/// Starts `deno` with `args` under the policy's data limit, in an environment of ours
/// alone: `DENO_DIR` below `/dev/null`, where nothing can be created even by root, so no
/// Deno state (web storage, caches) reaches the disk or another bundle.
pub(super) fn spawn(policy: &SandboxPolicy, args: &[String]) -> Result<Started, SandboxError> {
    if !executable_exists(&policy.deno) {
        return Err(SandboxError::Spawn(format!(
            "cannot start Deno: {} was not found; install Deno (the README's commands \
             install it into node_modules/.bin) and set DENO_PATH to its path",
            policy.deno.display()
        )));
    }
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--data={}", policy.data_limit_mb * 1024 * 1024))
        .arg("--")
        .arg(&policy.deno)
        .args(args)
        .env_clear()
        .env("DENO_DIR", NO_DENO_DIR)
        .env("NO_COLOR", "1")
        .env("DENO_NO_UPDATE_CHECK", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|err| spawn_error(policy, &err))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(SandboxError::Spawn(
            "Deno was started without stdio pipes".into(),
        ));
    };
    let stderr_tail = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(keep_tail(stderr, stderr_tail.clone()));
    Ok(Started {
        child,
        stdin,
        stdout,
        stderr_tail,
    })
}

/// The harness script, written once to disk (Deno runs a main module from a file).
pub fn install_harness(dir: &Path) -> std::io::Result<PathBuf> {
    let harness = include_str!("../js/harness.js");
    let digest = crate::runner::short_digest(harness.as_bytes());
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("harness-{digest}.js"));
    if !path.exists() {
        let partial = dir.join(format!(".harness-{digest}.{}", std::process::id()));
        std::fs::write(&partial, harness)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

/// Turns Deno's permission errors at import time into advice.
pub(super) fn load_error(error: &str) -> String {
    if error.contains("NotCapable")
        || error.contains("PermissionDenied")
        || error.contains("Requires ")
    {
        format!(
            "the bundle needs a permission while it is being imported ({error}); \
             move code that reads env, the network or files into a handler: \
             permissions apply only when handlers run"
        )
    } else {
        format!("the bundle failed to load: {error}")
    }
}

/// Why a process went away: its exit status and, for a process that held no secrets
/// (manifest extraction), the last of what it wrote to stderr. Never logged.
pub(super) async fn exit_reason(child: &mut Child, stderr_tail: Option<&Mutex<Vec<u8>>>) -> String {
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => format!("it exited ({status})"),
        _ => "it closed its output".into(),
    };
    let Some(stderr_tail) = stderr_tail else {
        return status;
    };
    // Let the stderr reader catch up with the exit.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let tail = String::from_utf8_lossy(&lock(stderr_tail))
        .trim()
        .to_string();
    if tail.is_empty() {
        status
    } else {
        format!("{status}: {tail}")
    }
}

/// How much of a process's stderr is kept, to explain an early exit.
const STDERR_TAIL_BYTES: usize = 2048;

/// Reads the process's stderr, keeping only its last bytes: bundle output is not ours to
/// log, but Deno's own message about why it stopped is worth passing on.
pub(super) async fn keep_tail<R: AsyncRead + Unpin>(mut stream: R, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let mut kept = lock(&tail);
        kept.extend_from_slice(&buffer[..n]);
        let excess = kept.len().saturating_sub(STDERR_TAIL_BYTES);
        kept.drain(..excess);
    }
}

/// Whether `program` names an executable file: a path as given, or a name on `PATH`.
pub(crate) fn executable_exists(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &Path| {
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return runnable(program);
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(program))))
}

/// Says what to do when Deno cannot be started.
fn spawn_error(policy: &SandboxPolicy, err: &std::io::Error) -> SandboxError {
    let deno = policy.deno.display();
    SandboxError::Spawn(if err.kind() == std::io::ErrorKind::NotFound {
        format!(
            "cannot start Deno: `prlimit` or `{deno}` was not found; install Deno (the README's \
             commands install it into node_modules/.bin) and set DENO_PATH to its path"
        )
    } else {
        format!("cannot start Deno at {deno}: {err}; set DENO_PATH to a working deno executable")
    })
}
