//! Web app benchmark: `cargo bench -p server --bench web` (needs the npm packages in
//! `end2end/` for the local PDS). A real server indexes a creator with a dozen videos from
//! the local PDS; then 32 concurrent clients fetch one watch page (server-side rendered:
//! database reads, Leptos rendering, meta tags) for three rounds, alternating with rounds
//! against an axum handler serving the very same HTML bytes from memory, the upper bound of
//! any static page. Reported: throughput of both, their ratio, and the watch page's
//! latency percentiles under that load.

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

        let (mut ssr_rates, mut static_rates, mut ssr_latencies, mut static_latencies) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            eprintln!("round {round} of {ROUNDS}");
            let url = static_url.clone();
            let measured = load(&client, CLIENTS, ROUND, move |c| c.get(&url)).await;
            static_rates.push(measured.rate);
            static_latencies.extend(measured.latencies);
            let url = watch.clone();
            let measured = load(&client, CLIENTS, ROUND, move |c| c.get(&url)).await;
            ssr_rates.push(measured.rate);
            ssr_latencies.extend(measured.latencies);
        }
        let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
        let (ssr, fixed) = (mean(&ssr_rates), mean(&static_rates));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\nWeb, {CLIENTS} concurrent clients, {ROUNDS} alternating rounds of {} s, one run, this machine:",
            ROUND.as_secs()
        );
        println!(
            "{:<34} {:>9} {:>8} {:>8} {:>8}",
            "handler", "req/s", "p50 ms", "p99 ms", "max ms"
        );
        for (label, rate, samples) in [
            ("watch page, server-rendered", ssr, &mut ssr_latencies),
            ("the same HTML from memory", fixed, &mut static_latencies),
        ] {
            let max = samples.iter().max().copied().unwrap_or_default();
            println!(
                "{label:<34} {rate:>9.0} {:>8.2} {:>8.2} {:>8.2}",
                ms(percentile(samples, 0.5)),
                ms(percentile(samples, 0.99)),
                ms(max)
            );
        }
        println!(
            "watch page: {bytes} bytes; throughput {:.0} % of the static handler's (goal >= 25 %); \
             p99 {:.1} ms (goal <= 20 ms)",
            100.0 * ssr / fixed,
            ms(percentile(&mut ssr_latencies, 0.99)),
        );
        server.stop().await;
    });
}
