//! Deno for tests: the executable, a sandbox policy with short timeouts, and fixtures
//! bundled from `tests/fixtures/runner/` with the shipped SDK.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use server::runner::bundler;
use server::runner::sandbox::{SandboxPolicy, install_harness};

/// `DENO_PATH`, else the project's npm-installed Deno, else `deno` on PATH.
pub fn deno() -> PathBuf {
    if let Some(path) = std::env::var_os("DENO_PATH") {
        return path.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/deno");
    if local.exists() { local } else { "deno".into() }
}

/// A policy with tight limits, its harness, and the directory holding both. The call
/// and start timeouts are generous: tests that want a timeout set a short one
/// themselves, and on a loaded machine a cold `node:` import or a Deno start can take
/// seconds that must not pass for a hang.
pub fn policy() -> (Arc<SandboxPolicy>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = install_harness(dir.path()).expect("harness");
    let policy = SandboxPolicy {
        deno: deno(),
        heap_mb: 128,
        data_limit_mb: 2048,
        call_timeout: Duration::from_secs(20),
        start_timeout: Duration::from_secs(30),
        max_response_bytes: 1024 * 1024,
    };
    (Arc::new(policy), harness, dir)
}

/// The fixture `name`, bundled.
pub async fn bundle_fixture(name: &str) -> String {
    let entry =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/runner/{name}.ts"));
    bundler::bundle(&deno(), &entry)
        .await
        .unwrap_or_else(|err| panic!("bundling {name}: {err}"))
}

/// Publishes the fixture `file` (in `fixtures/runner/`) as `version` with the library.
pub async fn publish(account: &super::network::Account, file: &str, version: &str) {
    let agent = super::network::network().login(account).await;
    let code = bundle_fixture(file.trim_end_matches(".ts")).await;
    let (policy, harness, _dir) = policy();
    let manifest = server::runner::Runner::extract_manifest(policy, &harness, &code)
        .await
        .expect("manifest");
    let version = semver::Version::parse(version).expect("version");
    server::runner::deploy::publish(&agent, &code, &manifest, &version, file)
        .await
        .expect("publish");
}
