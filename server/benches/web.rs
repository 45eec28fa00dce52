//! Web app benchmark: `cargo bench -p server --bench web` (needs the npm packages in
//! `end2end/` for the local PDS). A real server indexes a creator with a dozen videos from
//! the local PDS; then 32 concurrent clients fetch one watch page for three rounds of each
//! of: anonymous visitors (what crawlers and viewers get: the page micro-cache answers
//! after the first render), visitors with a cookie (every view rendered: database reads,
//! the Leptos render, meta tags), and an axum handler serving the very same HTML bytes
//! from memory, the upper bound of any static page. Reported: throughput, its ratio to
//! the static handler's, and latency percentiles under that load.

mod support;

#[path = "../tests/common/network.rs"]
#[allow(dead_code)]
mod network;

#[path = "../tests/common/instance.rs"]
#[allow(dead_code)]
mod instance;

use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use instance::Server;
use network::network;
use serde_json::json;
use support::{block_on, load, percentile, serve};

const CLIENTS: usize = 32;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
const VIDEOS: usize = 12;

fn main() {
    block_on(async {
        let data = tempfile::tempdir().expect("tempdir");
        let server = Server::start(&data.path().join("data"), &[]).await;
        let account = network().create_account("webbench").await;
        let agent = network().login(&account).await;
        for i in 0..VIDEOS {
            agent
                .put_record(
                    "place.stream.video",
                    &format!("v{i}"),
                    &json!({
                        "$type": "place.stream.video",
                        "title": format!("Talk number {i}: a title of a usual length"),
                        "description": "What the talk is about.\nSlides: https://example.com/slides and more.",
                        "durationMs": 1_800_000 + i * 1000,
                        "createdAt": format!("2026-01-{:02}T10:00:00Z", i + 1),
                    }),
                )
                .await
                .expect("record");
        }
        let (_, body) = server
            .admin_post("registerCreator", json!({ "actor": account.did }))
            .await;
        server
            .wait_task(body["taskId"].as_str().expect("task"))
            .await;
        assert_eq!(server.all_videos(&account.did).await.len(), VIDEOS);

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .expect("client");
        let watch = format!("{}/watch/{}/v0", server.url, account.did);
        let page = client
            .get(&watch)
            .send()
            .await
            .expect("watch page")
            .text()
            .await
            .expect("body");
        assert!(page.contains("og:title"), "not a watch page: {page}");
        let bytes = page.len();
        let static_url = serve(axum::Router::new().route(
            "/",
            get(move || {
                let page = page.clone();
                async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }
            }),
        ))
        .await;

        // Each kind of request: its rates per round and all its latencies.
        let mut measured: [(&str, Vec<f64>, Vec<Duration>); 3] = [
            ("watch page, anonymous", Vec::new(), Vec::new()),
            ("watch page, rendered every time", Vec::new(), Vec::new()),
            ("the same HTML from memory", Vec::new(), Vec::new()),
        ];
        for round in 1..=ROUNDS {
            eprintln!("round {round} of {ROUNDS}");
            for (i, (_, rates, latencies)) in measured.iter_mut().enumerate() {
                let (url, cookie) = match i {
                    0 => (watch.clone(), false),
                    1 => (watch.clone(), true),
                    _ => (static_url.clone(), false),
                };
                let round = load(&client, CLIENTS, ROUND, move |c| {
                    let request = c.get(&url);
                    // An admin session would look like this; any cookie skips the cache.
                    if cookie {
                        request.header("cookie", "streamhut_session=none")
                    } else {
                        request
                    }
                })
                .await;
                rates.push(round.rate);
                latencies.extend(round.latencies);
            }
        }
        let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
        let fixed = mean(&measured[2].1);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\nWeb, {CLIENTS} concurrent clients, {ROUNDS} alternating rounds of {} s, one run, this machine:",
            ROUND.as_secs()
        );
        println!(
            "{:<34} {:>9} {:>9} {:>8} {:>8} {:>8}",
            "handler", "req/s", "vs static", "p50 ms", "p99 ms", "max ms"
        );
        for (label, rates, samples) in &mut measured {
            let rate = mean(rates);
            let max = samples.iter().max().copied().unwrap_or_default();
            println!(
                "{label:<34} {rate:>9.0} {:>8.0} % {:>8.2} {:>8.2} {:>8.2}",
                100.0 * rate / fixed,
                ms(percentile(samples, 0.5)),
                ms(percentile(samples, 0.99)),
                ms(max)
            );
        }
        println!("watch page: {bytes} bytes (goals: >= 25 % of the static handler, p99 <= 20 ms)");
        server.stop().await;
    });
}
