//! at-run end to end, with the real local PDS, real Deno and the real `at-run` binary:
//! sign in, deploy a TypeScript bundle, set a secret, call it through the server, run a
//! task, deploy a new version (served on the very next call), remove the secret.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::instance::Server;
use common::network::network;
use common::runner::deno;
use serde_json::{Value, json};

/// The server, in this process, configured for the local network and Deno (plus `extra`
/// flags), with the temporary directory it lives in.
struct Running {
    server: Server,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

async fn server_with(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = dir.path().join("runner").display().to_string();
    let deno = deno().display().to_string();
    let mut args = vec!["--atrun-home", &runner, "--deno-path", &deno];
    args.extend_from_slice(extra);
    let server = Server::start(&dir.path().join("data"), &args).await;
    Running { server, _dir: dir }
}

async fn server() -> Running {
    server_with(&[]).await
}

/// Publishes the fixture `file` (in `fixtures/runner/`) as `version` with the library.
async fn publish(account: &common::network::Account, file: &str, version: &str) {
    let agent = network().login(account).await;
    let code = common::runner::bundle_fixture(file.trim_end_matches(".ts")).await;
    let (policy, harness, _dir) = common::runner::policy();
    let manifest = server::runner::Runner::extract_manifest(policy, &harness, &code)
        .await
        .expect("manifest");
    let version = semver::Version::parse(version).expect("version");
    server::runner::deploy::publish(&agent, &code, &manifest, &version, file)
        .await
        .expect("publish");
}

/// Runs `at-run` with the network's settings; returns stdout, or panics with stderr.
fn at_run(home: &Path, password: &str, args: &[&str]) -> String {
    let net = network();
    let output = Command::new(env!("CARGO_BIN_EXE_at-run"))
        .args(args)
        .env("ATRUN_HOME", home)
        .env("ATRUN_PASSWORD", password)
        .env("PLC_URL", net.plc_url.as_str())
        .env("HANDLE_RESOLVER_URL", net.pds_url.as_str())
        .env("ALLOW_PRIVATE_NETWORK", "true")
        .env("DENO_PATH", deno())
        .output()
        .expect("run at-run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "at-run {args:?} failed:\n{stderr}\n{stdout}"
    );
    stdout
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runner/e2e")
        .join(name)
        .display()
        .to_string()
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_call_task_upgrade_and_revoke_a_secret() {
    let server = server().await;
    let account = network().create_account("author").await;
    let cli_home = tempfile::tempdir().expect("tempdir");
    let home = cli_home.path();
    let pw = account.password.as_str();

    // 1. Sign in.
    let out = at_run(home, pw, &["login", &account.handle]);
    assert!(out.contains(&account.did), "{out}");
    let session = std::fs::metadata(home.join("session.json")).expect("session file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&session.permissions()) & 0o777,
        0o600
    );

    // 2. Deploy a TypeScript bundle.
    let out = at_run(
        home,
        pw,
        &["deploy", &fixture("v1.ts"), "--version", "1.0.0"],
    );
    assert_eq!(
        out.trim(),
        format!("/bundle/{}/e2e-demo/1.0.0", account.did)
    );
    let base = format!("{}/bundle/{}/e2e-demo", server.url, account.handle);
    let (status, manifest) = get(&format!("{base}/latest")).await;
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(manifest["endpoints"], json!(["greet", "version"]));
    assert_eq!(manifest["tasks"][0]["name"], "slow");
    assert_eq!(manifest["version"], "1.0.0");

    // Without its secret the endpoint says so, clearly.
    let (status, body) = get(&format!("{base}/1.0.0/greet?name=ada")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("BundleError")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_KEY is not set")),
        "{body}"
    );

    // 3. Set the secret with the CLI (sealed to this runner's key).
    let out = at_run(
        home,
        pw,
        &[
            "secrets",
            "set",
            "--runner",
            &server.url,
            "e2e-demo",
            "API_KEY=sk-test-12345",
        ],
    );
    assert!(out.contains("API_KEY set"), "{out}");
    let listed = at_run(home, pw, &["secrets", "ls"]);
    assert!(
        listed.contains("e2e-demo\tAPI_KEY") && !listed.contains("sk-test"),
        "{listed}"
    );
    tokio::time::sleep(Duration::from_millis(5500)).await; // the runner reuses opened secrets for 5 s

    // 4. Call the endpoint through the server.
    let (status, body) = get(&format!("{base}/1.0.0/greet?name=ada")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"greeting": "hello ada", "keyLength": 13}));

    // 5. A task: 202, then poll until complete.
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/latest/slow"))
        .json(&json!({"n": 3}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 202);
    let view: Value = response.json().await.expect("view");
    let id = view["id"].as_str().expect("id").to_string();
    let (status, done) = get(&format!("{}/api/tasks/{id}?wait=20", server.url)).await;
    assert_eq!(
        (status, &done["result"]),
        (200, &json!({"cube": 27})),
        "{done}"
    );
    let (status, again) = get(&format!("{base}/latest/slow?n=3&wait=5")).await;
    assert_eq!(
        (status, &again["result"]),
        (200, &json!({"cube": 27})),
        "query args are strings; same input, same task: {again}"
    );

    // 6. A new version: `latest` serves it on the very next call.
    assert_eq!(
        get(&format!("{base}/latest/version")).await.1,
        json!({"version": "1"})
    );
    at_run(
        home,
        pw,
        &["deploy", &fixture("v2.ts"), "--version", "1.1.0"],
    );
    assert_eq!(
        get(&format!("{base}/latest/version")).await.1,
        json!({"version": "2"})
    );
    assert_eq!(
        get(&format!("{base}/1.0.0/version")).await.1,
        json!({"version": "1"})
    );
    let listed = at_run(home, pw, &["ls"]);
    assert!(listed.contains("e2e-demo\t1.1.0, 1.0.0"), "{listed}");

    // 7. Remove the secret: the endpoint then fails with a clear error.
    at_run(home, pw, &["secrets", "rm", "e2e-demo", "API_KEY"]);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let (status, body) = get(&format!("{base}/latest/greet")).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_KEY is not set")),
        "{body}"
    );
}

/// Installed bundles' jobs run on schedule (with their errors in the history); bundles by
/// authors outside the allowlist are refused; callers are rate-limited per IP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_allowlist_and_rate_limit() {
    let allowed = network().create_account("allowed").await;
    let other = network().create_account("other").await;
    publish(&allowed, "jobs.ts", "1.0.0").await;
    publish(&other, "jobs.ts", "1.0.0").await;
    let jobs = format!("{}/jobs-demo", allowed.did);
    let server = server_with(&[
        "--atrun-jobs",
        &jobs,
        "--atrun-authors",
        &allowed.did,
        "--atrun-rate-limit",
        "60",
    ])
    .await;

    // The installer runs first, then the bundle's jobs.
    let now = chrono::Utc::now().timestamp_millis();
    let runs = server.services.scheduler.tick(now).await.expect("tick");
    assert!(
        runs.iter()
            .any(|r| r.job == "atrun.jobs" && r.error.is_none()),
        "{runs:?}"
    );
    let runs = server
        .services
        .scheduler
        .tick(now + 1000)
        .await
        .expect("tick");
    let tick = runs
        .iter()
        .find(|r| r.job.ends_with("/jobs-demo:tick"))
        .expect("tick ran");
    assert_eq!(tick.error, None, "{runs:?}");
    let broken = runs
        .iter()
        .find(|r| r.job.ends_with("/jobs-demo:broken"))
        .expect("broken ran");
    assert!(
        broken
            .error
            .as_deref()
            .is_some_and(|e| e.contains("this job always fails")),
        "{runs:?}"
    );
    assert!(
        !runs.iter().any(|r| r.job.contains(&other.did)),
        "only installed bundles run jobs"
    );
    let history = server
        .services
        .scheduler
        .history(10)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|r| r.job.ends_with(":broken") && r.error.is_some())
    );

    // Jobs are not callable on request.
    let (status, body) = get(&format!(
        "{}/bundle/{}/jobs-demo/latest/tick",
        server.url, allowed.did
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );

    // The allowlist.
    let (status, body) = get(&format!(
        "{}/bundle/{}/jobs-demo/latest",
        server.url, other.handle
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("AuthorNotAllowed")),
        "{body}"
    );

    // 60 a minute with bursts of 6: a quick burst of 20 is cut short, in the XRPC shape.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, body) = get(&format!(
            "{}/bundle/{}/jobs-demo/latest",
            server.url, allowed.did
        ))
        .await;
        if status == 429 {
            assert_eq!(body["error"], "RateLimitExceeded");
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
}
