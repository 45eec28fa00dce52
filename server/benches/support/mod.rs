//! What the benchmarks share: latency sampling, percentiles, and the trivial axum JSON
//! handler every HTTP figure is compared with (served the same way, in the same run).

#![allow(dead_code)] // each bench uses its own subset

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use serde_json::json;

/// Runs a benchmark's async body on a multi-threaded runtime.
pub fn block_on<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body);
}

/// The `p`-th quantile (0 to 1) of `samples`.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` sequential GETs of `url`, each timed until its body is read.
pub async fn latencies(client: &reqwest::Client, url: &str, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("GET");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await.expect("body");
        samples.push(started.elapsed());
    }
    samples
}

/// What `clients` concurrent clients achieved in one round.
pub struct Load {
    /// Requests per second.
    pub rate: f64,
    /// Every request's latency, until its body was read.
    pub latencies: Vec<Duration>,
}

/// Requests per second of `request`, sent by `clients` concurrent clients for `round`.
pub async fn throughput(
    client: &reqwest::Client,
    clients: usize,
    round: Duration,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> f64 {
    load(client, clients, round, request).await.rate
}

/// Sends `request` from `clients` concurrent clients for `round`, timing each request.
pub async fn load(
    client: &reqwest::Client,
    clients: usize,
    round: Duration,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Load {
    let request = Arc::new(request);
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, request) = (client.clone(), request.clone());
        running.spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < round {
                let sent = Instant::now();
                let response = request(&client).send().await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("body");
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = running.join_next().await {
        latencies.extend(done.expect("client"));
    }
    Load {
        rate: latencies.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    }
}

/// Serves `router` on a free loopback port; returns its base URL (no trailing slash).
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Serves `{"ok": true}` from a trivial axum handler on loopback; returns its URL.
pub async fn trivial_handler() -> String {
    let base =
        serve(axum::Router::new().route("/", get(|| async { Json(json!({"ok": true})) }))).await;
    format!("{base}/")
}
