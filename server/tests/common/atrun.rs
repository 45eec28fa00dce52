//! Driving at-run end to end: a server with the runner on the local network and Deno,
//! and the real `at-run` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::instance::Server;
use super::network::network;
use super::runner::deno;

/// The server, in this process, configured for the local network and Deno (plus `extra`
/// flags), with the temporary directory it lives in.
pub struct Running {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

pub async fn server_with(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = dir.path().join("runner").display().to_string();
    let deno = deno().display().to_string();
    let mut args = vec!["--atrun-home", &runner, "--deno-path", &deno];
    args.extend_from_slice(extra);
    let server = Server::start(&dir.path().join("data"), &args).await;
    Running { server, dir }
}

pub async fn server() -> Running {
    server_with(&[]).await
}

/// Runs `at-run` with the network's settings; returns stdout, or panics with stderr.
pub fn at_run(home: &Path, password: &str, args: &[&str]) -> String {
    let output = at_run_output(home, password, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "at-run {args:?} failed:\n{stderr}\n{stdout}"
    );
    stdout
}

/// Runs `at-run` expecting it to fail; returns its stderr.
pub fn at_run_failing(home: &Path, password: &str, args: &[&str]) -> String {
    let output = at_run_output(home, password, args);
    assert!(!output.status.success(), "at-run {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn at_run_output(home: &Path, password: &str, args: &[&str]) -> std::process::Output {
    at_run_command(home, password)
        .args(args)
        .output()
        .expect("run at-run")
}

/// `at-run` with the network's settings, signed in as `home`'s session.
pub fn at_run_command(home: &Path, password: &str) -> Command {
    let net = network();
    let mut command = Command::new(env!("CARGO_BIN_EXE_at-run"));
    command
        .env("ATRUN_HOME", home)
        .env("ATRUN_PASSWORD", password)
        .env("PLC_URL", net.plc_url.as_str())
        .env("HANDLE_RESOLVER_URL", net.pds_url.as_str())
        .env("ALLOW_PRIVATE_NETWORK", "true")
        .env("DENO_PATH", deno());
    command
}

pub fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runner/e2e")
        .join(name)
        .display()
        .to_string()
}

pub async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A service auth token of `author` for reading logs on `server`.
pub async fn logs_token(
    server: &Server,
    author: &server::atproto::session::Agent,
) -> server::secret::Secret {
    author
        .service_auth(
            server.services.runner.service_did().as_str(),
            server::web::LOGS_METHOD,
        )
        .await
        .expect("token")
}
