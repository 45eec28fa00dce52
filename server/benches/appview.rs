//! AppView benchmark: `cargo bench -p server --bench appview` (needs the npm packages in
//! `end2end/` for the local PDS).
//!
//! Measured in one run, against the real local PDS and a real libSQL file:
//! - a full sync of 100 creators × 100 videos (registration included), next to the bare
//!   cost of listing the same records page by page with no indexing (the baseline);
//! - `listVideos` (first page, and a page deep into the cursor) and full-text search,
//!   p50 and p99 over HTTP at 100 000 synthetic rows, next to a trivial axum JSON handler
//!   served the same way;
//! - firehose latency: a record created upstream → visible in `listVideos`.

mod support;

#[path = "../tests/common/network.rs"]
#[allow(dead_code)]
mod network;

#[path = "../tests/common/instance.rs"]
#[allow(dead_code)]
mod instance;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use instance::{Server, publish, video};
use network::network;
use support::{latencies, percentile, trivial_handler};

const CREATORS: usize = 100;
const VIDEOS_PER_CREATOR: u64 = 100;
const SYNTHETIC_ROWS: usize = 100_000;
const LATENCY_SAMPLES: usize = 1000;
const FIREHOSE_SAMPLES: usize = 15;

fn summary(name: &str, mut samples: Vec<Duration>, baseline: Duration) -> Duration {
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    println!(
        "{name:<38} p50 {p50:>10.2?}  p99 {p99:>10.2?}  ({:.1}× the trivial handler)",
        p50.as_secs_f64() / baseline.as_secs_f64()
    );
    p50
}

fn main() {
    support::block_on(run());
}

async fn run() {
    let net = network();
    println!("local PDS ready in {:?}", net.ready_in);

    // ----- full sync of 100 creators × 100 videos -----
    let setup = Instant::now();
    let accounts = futures::stream::iter(0..CREATORS)
        .map(|i| async move {
            let account = net.create_account(&format!("b{i}")).await;
            let agent = net.login(&account).await;
            let records: Vec<Value> = (0..VIDEOS_PER_CREATOR)
                .map(|n| video(&format!("Creator {i} talk {n}"), n))
                .collect();
            publish(&agent, &records).await;
            account
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    println!(
        "set-up: {CREATORS} accounts × {VIDEOS_PER_CREATOR} records on the local PDS in {:?}",
        setup.elapsed()
    );

    let pds = net.pds();
    let listed = Instant::now();
    for account in &accounts {
        let count = pds
            .list_records(&account.did, "place.stream.video")
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await
            .expect("listRecords");
        assert_eq!(count, VIDEOS_PER_CREATOR);
    }
    let listing = listed.elapsed();

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for account in &accounts {
        let (status, body) = server
            .admin_post("registerCreator", json!({"actor": account.did}))
            .await;
        assert_eq!(status, 200, "{body}");
        tasks.push(body["taskId"].as_str().expect("taskId").to_string());
    }
    for task in &tasks {
        let view = server.wait_task(task).await;
        assert_eq!(view["status"], "complete", "{view}");
    }
    let sync = started.elapsed();
    let (_, stats) = server.get("getStats").await;
    assert_eq!(
        stats["videos"].as_u64(),
        Some(CREATORS as u64 * VIDEOS_PER_CREATOR)
    );
    server.stop().await;
    println!(
        "full sync, {CREATORS} creators × {VIDEOS_PER_CREATOR} videos: {sync:.2?} (goal ≤ 20 s); \
         listing the same records without indexing: {listing:.2?} ({:.2}×)",
        sync.as_secs_f64() / listing.as_secs_f64()
    );

    // ----- queries at 100 000 rows -----
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let filled = Instant::now();
    synthesise(&server, SYNTHETIC_ROWS).await;
    println!(
        "synthesised {SYNTHETIC_ROWS} rows in {:?}",
        filled.elapsed()
    );

    let trivial = trivial_handler().await;
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/appview/{path}", server.url);
    let (_, deep) = server.get("listVideos?limit=100").await;
    let mut cursor = deep["cursor"].as_str().expect("cursor").to_string();
    for _ in 0..200 {
        let (_, page) = server
            .get(&format!("listVideos?limit=100&cursor={cursor}"))
            .await;
        cursor = page["cursor"].as_str().expect("cursor").to_string();
    }
    let (_, search) = server.get("listVideos?q=lighthouse").await;
    let hits = search["videos"].as_array().map_or(0, Vec::len);
    assert!(hits > 0, "the search word must match: {search}");

    let urls = [
        ("trivial axum JSON handler", trivial.clone()),
        ("listVideos, first page of 50", api("listVideos")),
        (
            "listVideos, a page 20 100 rows deep",
            api(&format!("listVideos?cursor={cursor}")),
        ),
        (
            "listVideos by creator",
            api("listVideos?creator=did:plc:synthetic42"),
        ),
        (
            "search, one word (~1 % of rows)",
            api("listVideos?q=lighthouse"),
        ),
        ("search, two words", api("listVideos?q=lighthouse%20keeper")),
    ];
    for (_, url) in &urls {
        latencies(&client, url, 50).await; // warm-up
    }
    let mut baseline = latencies(&client, &trivial, LATENCY_SAMPLES).await;
    let baseline = percentile(&mut baseline, 0.5);
    println!("\nat {SYNTHETIC_ROWS} rows, {LATENCY_SAMPLES} sequential requests each:");
    let mut results = Vec::new();
    for (name, url) in &urls {
        let samples = latencies(&client, url, LATENCY_SAMPLES).await;
        results.push((name, summary(name, samples, baseline)));
    }
    server.stop().await;

    // ----- firehose latency -----
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).await;
    let account = net.create_account("live").await;
    let live = net.login(&account).await;
    let (_, registered) = server
        .admin_post("registerCreator", json!({"actor": account.did}))
        .await;
    server
        .wait_task(registered["taskId"].as_str().expect("taskId"))
        .await;
    loop {
        let (_, stats) = server.get("getStats").await;
        if stats["firehoses"][0]["connected"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut firehose = Vec::new();
    for n in 0..FIREHOSE_SAMPLES as u64 {
        let title = format!("Live sample {n}");
        let created = Instant::now();
        publish(&live, &[video(&title, n)]).await;
        loop {
            let (_, page) = server
                .get(&format!("listVideos?limit=1&creator={}", account.did))
                .await;
            if page["videos"][0]["title"] == title.as_str() {
                break;
            }
            assert!(
                created.elapsed() < Duration::from_secs(10),
                "{title} never appeared"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        firehose.push(created.elapsed());
    }
    let firehose_p50 = percentile(&mut firehose, 0.5);
    let firehose_max = percentile(&mut firehose, 1.0);
    server.stop().await;

    println!("\nsummary:");
    println!("  full sync 100 × 100: {sync:.2?} (goal ≤ 20 s)");
    for (name, p50) in results.iter().skip(1) {
        println!("  {name}: p50 {p50:.2?}");
    }
    println!(
        "  firehose, record created → visible in listVideos ({FIREHOSE_SAMPLES} samples, the \
         PDS write included): p50 {firehose_p50:.0?}, max {firehose_max:.0?} (goal ≤ 5 s)"
    );
}

/// Fills the index with `rows` synthetic videos from 100 creators, through the same
/// table (and so the same full-text triggers) the sync writes.
async fn synthesise(server: &Server, rows: usize) {
    const WORDS: [&str; 12] = [
        "keynote",
        "panel",
        "workshop",
        "demo",
        "interview",
        "lightning",
        "talk",
        "session",
        "review",
        "launch",
        "retrospective",
        "tutorial",
    ];
    let conn = server.services.db.connect().await.expect("connect");
    let tx = conn.transaction().await.expect("transaction");
    for c in 0..100 {
        tx.execute(
            "INSERT INTO creators (did, handle, registered_at) VALUES (?1, ?2, '2026-01-01T00:00:00.000Z')",
            libsql::params![format!("did:plc:synthetic{c}"), format!("synthetic{c}.test")],
        )
        .await
        .expect("creator");
    }
    let insert = tx
        .prepare(
            "INSERT INTO videos (uri, cid, did, rkey, title, description, duration_ms, created_at, indexed_at)
             VALUES (?1, ?8, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )
        .await
        .expect("prepare");
    for n in 0..rows {
        let did = format!("did:plc:synthetic{}", n % 100);
        let rkey = format!("3k{n:08}");
        // One row in a hundred mentions the lighthouse, one in a thousand its keeper.
        let special = match (n % 100, n % 1000) {
            (7, 7) => " at the lighthouse, with its keeper",
            (7, _) => " at the lighthouse",
            _ => "",
        };
        let title = format!("{} {} #{n}{special}", WORDS[n % 12], WORDS[(n / 12) % 12]);
        let created = format!(
            "2025-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            1 + n % 12,
            1 + n % 28,
            n % 24,
            (n / 24) % 60,
            (n / 1440) % 60
        );
        let uri = format!("at://{did}/place.stream.video/{rkey}");
        let cid = server::atproto::blob::blob_cid(uri.as_bytes()).to_string();
        insert
            .execute(libsql::params![
                uri,
                did.as_str(),
                rkey.as_str(),
                title,
                "A synthetic recording for the benchmark",
                60_000 + n as i64,
                created,
                cid
            ])
            .await
            .expect("insert");
        insert.reset();
    }
    tx.commit().await.expect("commit");
}
