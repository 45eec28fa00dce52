//! Task system benchmark: `cargo bench -p server --bench tasks`.
//!
//! Prints, from one run:
//! - enqueue→start latency (submit until the handler starts), p50 and p99;
//! - the same for a task of another kind while one author's concurrency-1 lane holds 500
//!   waiting tasks (the head-of-line case), as a ratio of the unloaded latency;
//! - throughput of cached-result requests (`GET /api/tasks/{id}` of a completed task,
//!   and `POST /api/tasks` answered from the cache) as a ratio of a trivial axum JSON
//!   handler's throughput, measured in the same process, with the same client, in
//!   alternating rounds, because absolute numbers move on a shared machine.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use server::config::Config;
use server::db::DatabaseLocation;
use server::db::Db;
use server::services::Services;
use server::tasks::{Lane, TaskDef, TaskPolicy, TaskSystem};
use server::web::{AppState, router};
use support::{percentile, serve, throughput, trivial_handler};
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;

const LATENCY_SAMPLES: usize = 500;
const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(3);

fn main() {
    support::block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&DatabaseLocation::File(dir.path().join("bench.db")))
        .await
        .expect("db");
    db.migrate().await.expect("migrate");
    let tasks = TaskSystem::new(db.clone(), TaskPolicy::default())
        .await
        .expect("tasks");
    let starts: Arc<Mutex<Option<oneshot::Sender<Instant>>>> = Arc::new(Mutex::new(None));
    let signal = starts.clone();
    tasks.register(TaskDef::new("bench.start", move |_| {
        let signal = signal.clone();
        async move {
            let now = Instant::now();
            if let Some(tx) = signal.lock().await.take() {
                let _ = tx.send(now);
            }
            Ok(json!({"ok": true}))
        }
    }));
    tasks.register(
        TaskDef::new("bench.cached", |_| async {
            Ok(json!({"thumbnail": "/media/abc.jpg"}))
        })
        .public(true),
    );
    let shutdown = CancellationToken::new();
    tasks.start(shutdown.clone());

    // Enqueue → start.
    for i in 0..20 {
        tasks
            .submit("bench.start", json!({"warmup": i}))
            .await
            .expect("submit");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let (tx, rx) = oneshot::channel();
        *starts.lock().await = Some(tx);
        let submitted = Instant::now();
        tasks
            .submit("bench.start", json!({"n": i}))
            .await
            .expect("submit");
        let started = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("started within 5 s")
            .expect("signal");
        latencies.push(started - submitted);
    }
    let (p50, p99) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );

    // The same, behind a saturated lane: 500 tasks wait in one author's lane of
    // concurrency 1, whose running task never finishes during the measurement.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    tasks.register(
        TaskDef::new("bench.lane", move |_| {
            let held = held.clone();
            async move {
                let _ = held.acquire().await.map(|permit| permit.forget());
                Ok(json!({}))
            }
        })
        .concurrency(16)
        .per_owner(4),
    );
    for n in 0..500 {
        let lane = Lane {
            key: "did:plc:flood/bundle/1.0.0/slow".into(),
            owner: "did:plc:flood".into(),
            concurrency: 1,
            cache_ttl: Duration::from_secs(60),
        };
        tasks
            .submit_in("bench.lane", json!({"n": n}), Some(lane))
            .await
            .expect("flood");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut behind = Vec::with_capacity(LATENCY_SAMPLES / 5);
    for i in 0..LATENCY_SAMPLES / 5 {
        let (tx, rx) = oneshot::channel();
        *starts.lock().await = Some(tx);
        let submitted = Instant::now();
        tasks
            .submit("bench.start", json!({"behind": i}))
            .await
            .expect("submit");
        let started = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("started within 60 s")
            .expect("signal");
        behind.push(started - submitted);
    }
    gate.add_permits(10_000);
    let (behind_p50, behind_p99) = (percentile(&mut behind, 0.5), percentile(&mut behind, 0.99));

    // Cached-result requests against a trivial handler.
    let data_dir = dir.path().display().to_string();
    let config = Config::from_args([
        "streamhut",
        "--data-dir",
        &data_dir,
        "--atrun-home",
        &data_dir,
        "--default-creators",
        "",
        "--bsky-public-api-url",
        "",
        // The handler's throughput is measured, not the per-client limit in front of it.
        "--task-rate-limit",
        "0",
    ])
    .expect("config");
    let mut services = Services::start(&config, db.clone(), &shutdown)
        .await
        .expect("services");
    services.tasks = tasks.clone();
    let app = serve(router(AppState::new(&config, &services))).await;
    let trivial = trivial_handler().await;
    let cached = tasks
        .submit("bench.cached", json!({"uri": "at://x"}))
        .await
        .expect("submit")
        .task
        .id;
    tasks
        .wait(&cached, Duration::from_secs(5))
        .await
        .expect("wait");
    let client = reqwest::Client::new();

    let (mut base, mut get_rate, mut post_rate) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let url = trivial.clone();
        base.push(throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await);
        let url = format!("{app}/api/tasks/{cached}");
        get_rate.push(throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&url)).await);
        let url = format!("{app}/api/tasks");
        post_rate.push(
            throughput(&client, CONCURRENCY, ROUND, move |c| {
                c.post(&url)
                    .json(&json!({"task": "bench.cached", "input": {"uri": "at://x"}}))
            })
            .await,
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (base, get_rate, post_rate) = (mean(&base), mean(&get_rate), mean(&post_rate));
    shutdown.cancel();

    println!(
        "task system benchmark ({LATENCY_SAMPLES} samples; {CONCURRENCY} clients, 3 × {ROUND:?} rounds each)"
    );
    println!("enqueue→start latency: p50 {p50:?}, p99 {p99:?} (goal: p50 ≤ 5 ms)");
    println!("trivial axum JSON handler:       {base:>9.0} req/s (baseline)");
    println!(
        "GET /api/tasks/{{id}} (complete):  {get_rate:>9.0} req/s = {:.0} % of baseline (goal ≥ 50 %)",
        get_rate / base * 100.0
    );
    println!(
        "POST /api/tasks (cache hit):     {post_rate:>9.0} req/s = {:.0} % of baseline",
        post_rate / base * 100.0
    );
    println!(
        "behind a saturated lane (500 waiting): enqueue→start p50 {behind_p50:?} ({:.1}× unloaded), p99 {behind_p99:?} ({:.1}× unloaded)",
        behind_p50.as_secs_f64() / p50.as_secs_f64(),
        behind_p99.as_secs_f64() / p99.as_secs_f64()
    );
}
