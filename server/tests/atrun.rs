//! at-run end to end, with the real local PDS, real Deno and the real `at-run` binary:
//! sign in, deploy a TypeScript bundle, set a secret, call it through the server, run a
//! task, deploy a new version (served on the very next call), remove the secret.

mod common;

use std::path::Path;
use std::time::Duration;

use common::atrun::{at_run, at_run_failing, fixture, get, server, server_with};
use common::network::network;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_call_task_upgrade_and_revoke_a_secret() {
    // Secrets read on every call: a set or removed secret counts at once.
    let server = server_with(&["--atrun-secrets-ttl-secs", "0"]).await;
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
            "API_KEY=sk-test-12345",
            "e2e-demo",
        ],
    );
    assert!(out.contains("API_KEY set"), "{out}");
    let listed = at_run(home, pw, &["secrets", "ls"]);
    assert!(
        listed.contains("e2e-demo\tAPI_KEY") && !listed.contains("sk-test"),
        "{listed}"
    );

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
    let (status, body) = get(&format!("{base}/latest/greet")).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_KEY is not set")),
        "{body}"
    );

    // 8. The runner's metrics count what happened.
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    for needle in [
        r#"streamhut_runner_calls_total{kind="endpoint",outcome="ok"}"#,
        r#"streamhut_runner_calls_total{kind="endpoint",outcome="handler_error"}"#,
        r#"streamhut_runner_calls_total{kind="task",outcome="ok"}"#,
        "streamhut_runner_cold_starts_total",
        r#"streamhut_runner_call_duration_seconds_count{kind="endpoint"}"#,
        r#"route="/bundle/{actor}/{name}/{version}/{endpoint}",method="GET",status="200""#,
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }

    // 9. The author reads the invocation log with the CLI (a service auth token from
    //    their PDS); nobody else can.
    // The log is written in batches, a second apart at most: ask until it shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = at_run(
            home,
            pw,
            &[
                "logs",
                "--runner",
                &server.url,
                "e2e-demo",
                "--limit",
                "100",
            ],
        );
        let complete = out.contains("\tgreet\tendpoint\tok\t")
            && out.contains("\tslow\ttask\tok\t")
            && out.contains("\tgreet\tendpoint\thandler_error\t")
            && out.contains("API_KEY is not set");
        if complete {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "incomplete log:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs_url = format!("{}/bundle/{}/e2e-demo/logs", server.url, account.did);
    let status = |response: reqwest::Response| response.status().as_u16();
    let client = reqwest::Client::new();
    assert_eq!(
        status(client.get(&logs_url).send().await.expect("GET")),
        401
    );
    let audience = server.services.runner.service_did().to_string();
    let stranger = network().create_account("stranger").await;
    let stranger = network().login(&stranger).await;
    let theirs = stranger
        .service_auth(&audience, server::web::LOGS_METHOD)
        .await
        .expect("token");
    let refused = client
        .get(&logs_url)
        .bearer_auth(theirs.expose())
        .send()
        .await;
    assert_eq!(
        status(refused.expect("GET")),
        403,
        "another account's token"
    );
    let author = network().login(&account).await;
    let wrong_method = author
        .service_auth(&audience, "com.example.other")
        .await
        .expect("token");
    let refused = client
        .get(&logs_url)
        .bearer_auth(wrong_method.expose())
        .send()
        .await;
    assert_eq!(
        status(refused.expect("GET")),
        401,
        "a token for another method"
    );
    let wrong_audience = author
        .service_auth("did:web:elsewhere.example", server::web::LOGS_METHOD)
        .await
        .expect("token");
    let refused = client
        .get(&logs_url)
        .bearer_auth(wrong_audience.expose())
        .send()
        .await;
    assert_eq!(
        status(refused.expect("GET")),
        401,
        "a token for another runner"
    );
    let mine = author
        .service_auth(&audience, server::web::LOGS_METHOD)
        .await
        .expect("token");
    // One character in the middle of the signature, changed.
    let mut tampered: Vec<char> = mine.expose().chars().collect();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let refused = client.get(&logs_url).bearer_auth(&tampered).send().await;
    assert_eq!(status(refused.expect("GET")), 401, "a tampered signature");
    let read: Value = client
        .get(format!("{logs_url}?limit=2"))
        .bearer_auth(mine.expose())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        read["invocations"].as_array().map(Vec::len),
        Some(2),
        "{read}"
    );
}

/// Installed bundles' jobs run on schedule (with their errors in the history); bundles by
/// authors outside the allowlist are refused; callers are rate-limited per IP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_allowlist_and_rate_limit() {
    let allowed = network().create_account("allowed").await;
    let other = network().create_account("other").await;
    common::runner::publish(&allowed, "jobs.ts", "1.0.0").await;
    common::runner::publish(&other, "jobs.ts", "1.0.0").await;
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

/// Secret records written straight to a PDS skip the CLI, so the runner itself refuses
/// reserved names (and never starts a process with them); the CLI refuses them before
/// sealing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_secret_names_are_refused_by_the_runner_and_the_cli() {
    let account = network().create_account("reserved").await;
    common::runner::publish(&account, "hello.ts", "1.0.0").await;
    let server = server().await;
    let agent = network().login(&account).await;
    server::runner::deploy::put_secret(
        &agent,
        server.services.runner.public_key(),
        "hello",
        "LD_PRELOAD",
        "/tmp/evil-preload.so",
    )
    .await
    .expect("a record written straight to the PDS");
    let (status, body) = get(&format!(
        "{}/bundle/{}/hello/1.0.0/hello",
        server.url, account.did
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("InvalidBundle")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("LD_PRELOAD") && message.contains("reserved"),
        "{body}"
    );
    assert!(
        !message.contains("evil-preload"),
        "the value never shows: {body}"
    );

    let cli_home = tempfile::tempdir().expect("tempdir");
    let (home, pw) = (cli_home.path(), account.password.as_str());
    at_run(home, pw, &["login", &account.handle]);
    for assignment in ["DENO_DIR=/tmp", "https_proxy=http://127.0.0.1:1", "PATH=/x"] {
        let stderr = at_run_failing(
            home,
            pw,
            &[
                "secrets",
                "set",
                "--runner",
                &server.url,
                "hello",
                assignment,
            ],
        );
        assert!(
            stderr.contains("reserved") || stderr.contains("not a valid variable name"),
            "{assignment}: {stderr}"
        );
    }
}

/// Deno processes of this server's runner (their command line names its data directory).
fn runner_processes(data_dir: &Path) -> usize {
    let needle = data_dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| {
                    std::fs::read(entry.path().join("cmdline"))
                        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// A bundle whose top-level await never settles: 24 concurrent calls share one manifest
/// extraction (within the pool's bound), all get `422 InvalidBundle` with the reason,
/// and the failure is remembered, so the next calls start no process at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bundle_that_never_loads_is_refused_without_a_flood_of_processes() {
    let account = network().create_account("stuck").await;
    let agent = network().login(&account).await;
    let code = common::runner::bundle_fixture("hello").await;
    let (policy, harness, _dir) = common::runner::policy();
    let manifest = server::runner::Runner::extract_manifest(policy, &harness, &code)
        .await
        .expect("manifest");
    let stuck = format!("await new Promise(() => {{}});\n{code}");
    let version = semver::Version::parse("1.0.0").expect("version");
    server::runner::deploy::publish(&agent, &stuck, &manifest, &version, "stuck.js")
        .await
        .expect("publish");
    let server = server_with(&["--atrun-max-workers", "4", "--atrun-load-timeout-secs", "2"]).await;
    let data_dir = server.dir.path().join("data");
    let url = format!("{}/bundle/{}/hello/1.0.0/hello", server.url, account.did);

    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (sampling, data_dir) = (sampling.clone(), data_dir.clone());
        tokio::spawn(async move {
            let mut most = 0;
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(runner_processes(&data_dir));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    let calls = (0..24).map(|_| get(&url));
    let replies = futures::future::join_all(calls).await;
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let most = sampler.await.expect("sampler");
    println!("most Deno processes during 24 concurrent calls to a bundle that never loads: {most}");
    assert!(most <= 1, "{most} processes for one CID");
    for (status, body) in &replies {
        assert_eq!(
            (*status, body["error"].as_str()),
            (422, Some("InvalidBundle")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("top-level") || m.contains("did not load")),
            "{body}"
        );
    }
    let started = std::time::Instant::now();
    let (status, _) = get(&url).await;
    assert_eq!(status, 422);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the failure is remembered"
    );
    assert_eq!(runner_processes(&data_dir), 0);
}

/// Code that is not UTF-8 text is refused before anything of it is written to disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_bundle_code_is_refused_and_never_stored() {
    let account = network().create_account("binary").await;
    let agent = network().login(&account).await;
    let elf: Vec<u8> = [b"\x7fELF\x02\x01\x01\0".as_slice(), &[0xff; 64]].concat();
    let blob = agent
        .upload_blob(bytes::Bytes::from(elf), "application/javascript")
        .await
        .expect("upload");
    let record = server::atproto::records::BundleRecord {
        name: "native".into(),
        version: "1.0.0".into(),
        code: blob,
        entry: "native.so".into(),
        created_at: server::atproto::syntax::now(),
        manifest: None,
    };
    agent
        .create_record(server::atproto::records::BUNDLE_NSID, None, &record)
        .await
        .expect("record");
    let server = server().await;
    let (status, body) = get(&format!(
        "{}/bundle/{}/native/1.0.0/run",
        server.url, account.did
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("InvalidBundle")),
        "{body}"
    );
    let stored = server.dir.path().join("data/at-run/bundles");
    let files = std::fs::read_dir(&stored).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "nothing was written under {}", stored.display());
}

/// The copy attack: `dev.atrun.secret` records are public, so Mallory copies Alice's
/// record, ciphertext and all, into her own repository for her own bundle of the same
/// name and variable. The runner must refuse it (the value is bound to Alice's DID), and
/// never show the value; an unbound value of the old format is refused with advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_copied_into_another_authors_repository_never_opens() {
    use server::atproto::records::SECRET_NSID;

    let server = server_with(&["--atrun-secrets-ttl-secs", "0"]).await;
    let (alice, mallory) = (
        network().create_account("alice").await,
        network().create_account("mallory").await,
    );
    common::runner::publish(&alice, "hello.ts", "1.0.0").await;
    common::runner::publish(&mallory, "hello.ts", "1.0.0").await;
    let greeting = |account: &common::network::Account| {
        format!("{}/bundle/{}/hello/1.0.0/hello", server.url, account.did)
    };

    let cli_home = tempfile::tempdir().expect("tempdir");
    let home = cli_home.path();
    at_run(home, &alice.password, &["login", &alice.handle]);
    at_run(
        home,
        &alice.password,
        &[
            "secrets",
            "set",
            "--runner",
            &server.url,
            "hello",
            "GREETING=alice-private-value",
        ],
    );
    let (status, body) = get(&greeting(&alice)).await;
    assert_eq!(
        (status, body["greeting"].as_str()),
        (200, Some("alice-private-value")),
        "{body}"
    );

    // Mallory copies Alice's public record, unchanged, into her own repository.
    let alice_did = alice.did.as_str();
    let records: Vec<_> =
        futures::TryStreamExt::try_collect(network().pds().list_records(alice_did, SECRET_NSID))
            .await
            .expect("Alice's secret records are public");
    let copied = &records[0];
    let rkey = copied.uri.rsplit('/').next().expect("rkey");
    let agent = network().login(&mallory).await;
    agent
        .put_record(SECRET_NSID, rkey, &copied.value)
        .await
        .expect("a copy written straight to Mallory's PDS");
    let response = reqwest::get(greeting(&mallory)).await.expect("GET");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert!(
        !text.contains("alice-private-value"),
        "Alice's value must never reach Mallory: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("XRPC error");
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("SecretUnavailable")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("GREETING") && message.contains("another account"),
        "{body}"
    );

    // A value sealed bare (the format before binding) is refused with what to do.
    let mut old = copied.value.clone();
    let public = crypto_box::PublicKey::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            server.services.runner.public_key(),
        )
        .expect("base64"),
    )
    .expect("public key");
    let bare = public
        .seal(&mut crypto_box::aead::OsRng, b"unbound-value")
        .expect("seal");
    old["ciphertext"] = json!({
        "$bytes": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bare)
    });
    agent
        .put_record(SECRET_NSID, rkey, &old)
        .await
        .expect("an old-format record");
    let (status, body) = get(&greeting(&mallory)).await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at-run secrets set") && !message.contains("unbound-value"),
        "{body}"
    );

    // Mallory's own value, set with the CLI, works as ever; Alice's still does.
    let mallory_home = tempfile::tempdir().expect("tempdir");
    let home = mallory_home.path();
    at_run(home, &mallory.password, &["login", &mallory.handle]);
    at_run(
        home,
        &mallory.password,
        &[
            "secrets",
            "set",
            "--runner",
            &server.url,
            "hello",
            "GREETING=mallory-own-value",
        ],
    );
    assert_eq!(
        get(&greeting(&mallory)).await.1["greeting"],
        "mallory-own-value"
    );
    assert_eq!(
        get(&greeting(&alice)).await.1["greeting"],
        "alice-private-value"
    );
}

/// Anyone can call a bundle, so its invocation log is bounded per bundle (and per
/// author), not only by age: a flood of calls keeps only the newest lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_invocation_log_keeps_a_bounded_number_of_lines_per_bundle() {
    let account = network().create_account("chatty").await;
    common::runner::publish(&account, "hello.ts", "1.0.0").await;
    let server = server_with(&["--atrun-log-lines-per-bundle", "5"]).await;
    let url = format!(
        "{}/bundle/{}/hello/1.0.0/hello?name=flood",
        server.url, account.did
    );
    for _ in 0..12 {
        assert_eq!(get(&url).await.0, 200);
    }
    let lines = || async {
        let mut rows = server
            .services
            .db
            .conn()
            .query(
                "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM bundle_invocations WHERE did = ?1 AND name = 'hello'",
                [account.did.as_str()],
            )
            .await
            .expect("count");
        let row = rows.next().await.expect("row").expect("row");
        (
            row.get::<i64>(0).expect("n"),
            row.get::<i64>(1).expect("max"),
        )
    };
    // Lines are written in batches, a second apart at most, and each batch trims.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut newest = 0;
    while newest == 0 {
        assert!(std::time::Instant::now() < deadline, "no line was written");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (kept, max) = lines().await;
        assert!(kept <= 12, "{kept}");
        newest = max;
    }
    // Twelve lines in, at most five kept; then one more call: still five.
    while lines().await.0 < 5 {
        assert!(std::time::Instant::now() < deadline, "{newest}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, before) = lines().await;
    assert_eq!(get(&url).await.0, 200);
    loop {
        let (kept, max) = lines().await;
        if max > before {
            assert_eq!(kept, 5, "the newest five lines are kept");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last line was never written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
