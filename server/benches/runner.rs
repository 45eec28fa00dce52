//! Runner benchmark: `cargo bench -p server --bench runner` (needs the npm packages in
//! `end2end/` for the local PDS, and Deno from the root `package.json`).
//!
//! Measured in one run, with the real local PDS and real Deno:
//! - a warm call through `GET /bundle/.../{endpoint}`: throughput, p50, p99;
//! - the original design's cost: one Deno process per call;
//! - a trivial axum JSON handler, over the same HTTP client;
//! - the cold first call of a newly deployed version;
//! - a warm call that reads `ctx.kv` against the same call without the read.

mod support;

#[path = "../tests/common/network.rs"]
#[allow(dead_code)]
mod network;

#[path = "../tests/common/instance.rs"]
#[allow(dead_code)]
mod instance;

#[path = "../tests/common/runner.rs"]
#[allow(dead_code)]
mod runner;

use std::time::{Duration, Instant};

use instance::Server;
use runner::{bundle_fixture, deno, policy};
use serde_json::json;
use server::runner::sandbox::{Launch, Sandbox, ServeGrants};
use server::runner::{Runner, deploy};
use support::{latencies, percentile, throughput, trivial_handler};

const LATENCY_SAMPLES: usize = 3000;
/// Latencies are sampled in this many interleaved rounds.
const ROUNDS: usize = 10;
const SPAWN_SAMPLES: usize = 30;
const COLD_SAMPLES: usize = 10;
const CONCURRENCY: usize = 16;
const ROUND: Duration = Duration::from_secs(3);

fn main() {
    support::block_on(run());
}

async fn run() {
    let net = network::network();
    let account = net.create_account("bench").await;
    let agent = net.login(&account).await;
    let (policy, harness, dir) = policy();
    let code = bundle_fixture("hello").await;
    let manifest = Runner::extract_manifest(policy.clone(), &harness, &code)
        .await
        .expect("manifest");
    deploy::publish(
        &agent,
        &code,
        &manifest,
        &semver::Version::new(1, 0, 0),
        "hello.ts",
    )
    .await
    .expect("publish");

    let (runner_home, deno_path) = (
        dir.path().join("runner").display().to_string(),
        deno().display().to_string(),
    );
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--atrun-home",
            &runner_home,
            "--deno-path",
            &deno_path,
            "--atrun-rate-limit",
            "0",
        ],
    )
    .await;
    let base = server.url.clone();
    let trivial = trivial_handler().await;
    let kv_code = bundle_fixture("kvbench").await;
    let kv_manifest = Runner::extract_manifest(policy.clone(), &harness, &kv_code)
        .await
        .expect("kv manifest");
    deploy::publish(
        &agent,
        &kv_code,
        &kv_manifest,
        &semver::Version::new(1, 0, 0),
        "kvbench.ts",
    )
    .await
    .expect("publish kvbench");

    let client = reqwest::Client::new();
    let warm_url = format!("{base}/bundle/{}/hello/1.0.0/hello?name=bench", account.did);
    latencies(&client, &warm_url, 50).await; // warm up: resolve, fetch, extract, spawn
    latencies(&client, &trivial, 50).await;

    // Interleaved rounds, so that drift in the machine's load hits both sides alike.
    let well_known = format!("{base}/.well-known/at-run");
    let (mut axum_lat, mut ours_lat, mut warm_lat) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let n = LATENCY_SAMPLES / ROUNDS;
        axum_lat.extend(latencies(&client, &trivial, n).await);
        ours_lat.extend(latencies(&client, &well_known, n).await);
        warm_lat.extend(latencies(&client, &warm_url, n).await);
    }
    let url = trivial.clone();
    let axum_rate = throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await;
    let url = warm_url.clone();
    let warm_rate = throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await;

    // The same warm call with and without one `ctx.kv.get`, interleaved.
    let kv_base = format!("{base}/bundle/{}/kvbench/1.0.0", account.did);
    let (plain_url, read_url) = (format!("{kv_base}/plain"), format!("{kv_base}/read"));
    latencies(&client, &format!("{kv_base}/write"), 1).await;
    latencies(&client, &plain_url, 50).await;
    latencies(&client, &read_url, 50).await;
    let (mut plain_lat, mut read_lat) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let n = LATENCY_SAMPLES / ROUNDS;
        plain_lat.extend(latencies(&client, &plain_url, n).await);
        read_lat.extend(latencies(&client, &read_url, n).await);
    }
    let url = plain_url.clone();
    let plain_rate = throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await;
    let url = read_url.clone();
    let read_rate = throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await;

    // One process per call, as the original runner did.
    let grants = || ServeGrants {
        permissions: manifest.permissions.clone(),
        env: Vec::new(),
        egress: None,
        kv: None,
    };
    let (direct, _) = Sandbox::start(policy.clone(), &harness, Launch::Serve(grants()), &code)
        .await
        .expect("spawn");
    let mut direct_lat = Vec::new();
    for _ in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        direct
            .call("hello", &json!({"name": "bench"}), &json!({}))
            .await
            .expect("call");
        direct_lat.push(started.elapsed());
    }
    drop(direct);
    let spec: server::runner::VersionSpec = "1.0.0".parse().expect("version");
    let mut invoke_lat = Vec::new();
    for _ in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        server
            .services
            .runner
            .invoke(
                &account.did,
                "hello",
                &spec,
                "hello",
                server::runner::CallInput {
                    args: json!({"name": "bench"}),
                    ..Default::default()
                },
                std::time::Duration::ZERO,
            )
            .await
            .expect("invoke");
        invoke_lat.push(started.elapsed());
    }
    let mut spawn_lat = Vec::new();
    for _ in 0..SPAWN_SAMPLES {
        let started = Instant::now();
        let (sandbox, _) = Sandbox::start(policy.clone(), &harness, Launch::Serve(grants()), &code)
            .await
            .expect("spawn");
        sandbox
            .call("hello", &json!({"name": "bench"}), &json!({}))
            .await
            .expect("call");
        drop(sandbox);
        spawn_lat.push(started.elapsed());
    }
    let spawn_rate =
        1.0 / (spawn_lat.iter().sum::<Duration>().as_secs_f64() / spawn_lat.len() as f64);

    // The first call of a newly deployed version: resolve, fetch, verify, extract, spawn.
    let mut cold_lat = Vec::new();
    for i in 0..COLD_SAMPLES {
        let version = semver::Version::new(1, 1, i as u64);
        let variant = format!("{code}\n// build {i}\n");
        deploy::publish(&agent, &variant, &manifest, &version, "hello.ts")
            .await
            .expect("publish");
        let url = format!("{base}/bundle/{}/hello/latest/hello?name=cold", account.did);
        cold_lat.extend(latencies(&client, &url, 1).await);
    }
    server.stop().await;

    let (axum_p50, axum_p99) = (
        percentile(&mut axum_lat, 0.5),
        percentile(&mut axum_lat, 0.99),
    );
    let (warm_p50, warm_p99) = (
        percentile(&mut warm_lat, 0.5),
        percentile(&mut warm_lat, 0.99),
    );
    let spawn_p50 = percentile(&mut spawn_lat, 0.5);
    let cold_p50 = percentile(&mut cold_lat, 0.5);
    let direct_p50 = percentile(&mut direct_lat, 0.5);
    let invoke_p50 = percentile(&mut invoke_lat, 0.5);
    let ours_p50 = percentile(&mut ours_lat, 0.5);
    println!(
        "runner benchmark (one run; {LATENCY_SAMPLES} sequential samples in {ROUNDS} interleaved rounds, {CONCURRENCY} clients × {ROUND:?} for throughput)"
    );
    println!("trivial axum JSON handler: p50 {axum_p50:?}, p99 {axum_p99:?}, {axum_rate:.0} req/s");
    println!("warm bundle call (HTTP):   p50 {warm_p50:?}, p99 {warm_p99:?}, {warm_rate:.0} req/s");
    println!("  our router's fixed cost: GET /.well-known/at-run p50 {ours_p50:?}");
    println!(
        "  runner.invoke without HTTP: p50 {invoke_p50:?}; the sandbox round trip alone: p50 {direct_p50:?}"
    );
    println!("spawn per call (original): p50 {spawn_p50:?}, {spawn_rate:.1} calls/s");
    println!("cold first call of a new version: p50 {cold_p50:?} (goal ≤ 150 ms)");
    println!(
        "ratios: warm throughput = {:.0}× spawn-per-call (goal ≥ 100×); warm p50 = {:.2}× axum (goal ≤ 2×)",
        warm_rate / spawn_rate,
        warm_p50.as_secs_f64() / axum_p50.as_secs_f64()
    );
    let (plain_p50, plain_p99) = (
        percentile(&mut plain_lat, 0.5),
        percentile(&mut plain_lat, 0.99),
    );
    let (read_p50, read_p99) = (
        percentile(&mut read_lat, 0.5),
        percentile(&mut read_lat, 0.99),
    );
    println!(
        "warm call without ctx.kv:  p50 {plain_p50:?}, p99 {plain_p99:?}, {plain_rate:.0} req/s"
    );
    println!("warm call with ctx.kv.get: p50 {read_p50:?}, p99 {read_p99:?}, {read_rate:.0} req/s");
    println!(
        "ratios: ctx.kv.get adds {:?} at p50 ({:.2}× the plain call); throughput {:.0} % of the plain call",
        read_p50.saturating_sub(plain_p50),
        read_p50.as_secs_f64() / plain_p50.as_secs_f64(),
        100.0 * read_rate / plain_rate
    );
}
