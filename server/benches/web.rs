//! Web app benchmark: `cargo bench -p server --bench web` (needs the npm packages in
//! `end2end/` for the local PDS). A real server indexes a creator with a dozen videos from
//! the local PDS; then 32 concurrent clients on kept-alive connections fetch, for three
//! alternating rounds each: `/healthz`; the static files a browser or proxy fetches
//! (`/robots.txt`, a content-addressed `site.js`, `/favicon.svg`), against `/healthz`;
//! one watch page as anonymous visitors get it (the page micro-cache answers after the
//! first render), as visitors with a cookie get it (every view rendered: database reads,
//! the Leptos render, meta tags), against the cached copy; `/about` rendered per request
//! (no data: what any page costs Leptos); and an axum handler serving
//! the very same HTML from memory, the upper bound of any page. Reported: throughput,
//! its ratio to the baseline, and latency percentiles under that load. Then 100 000
//! videos are added and the whole sitemap (index and pages) is generated and timed.

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
const SITEMAP_VIDEOS: usize = 100_000;

fn main() {
    block_on(async {
        let data = tempfile::tempdir().expect("tempdir");
        // The site's files as a built site has them, before the server starts and reads
        // them (its site root is its data directory here).
        let public = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../public");
        let hashed = data.path().join("data/pkg/0123456789abcdef");
        std::fs::create_dir_all(&hashed).expect("pkg dir");
        std::fs::copy(public.join("site.js"), hashed.join("site.js")).expect("site.js");
        std::fs::copy(
            public.join("favicon.svg"),
            data.path().join("data/favicon.svg"),
        )
        .expect("favicon");
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

        // Each target: its label, URL, whether it sends a cookie (which skips the page
        // cache), and the label of the baseline its ratio is against.
        let targets: Vec<(&str, String, bool, &str)> = vec![
            (
                "/healthz",
                format!("{}/healthz", server.url),
                false,
                "/healthz",
            ),
            (
                "/robots.txt",
                format!("{}/robots.txt", server.url),
                false,
                "/healthz",
            ),
            (
                "/pkg/<hash>/site.js",
                format!("{}/pkg/0123456789abcdef/site.js", server.url),
                false,
                "/healthz",
            ),
            (
                "/favicon.svg",
                format!("{}/favicon.svg", server.url),
                false,
                "/healthz",
            ),
            (
                "watch page, cached (anonymous)",
                watch.clone(),
                false,
                "watch page, cached (anonymous)",
            ),
            (
                "watch page, rendered every time",
                watch.clone(),
                true,
                "watch page, cached (anonymous)",
            ),
            (
                "about page, rendered every time",
                format!("{}/about", server.url),
                true,
                "watch page, cached (anonymous)",
            ),
            (
                "the same HTML from memory",
                static_url,
                false,
                "watch page, cached (anonymous)",
            ),
        ];
        // `WEB_BENCH_ONLY=<text>`: only the targets whose label holds it (for profiling one).
        let only = std::env::var("WEB_BENCH_ONLY").unwrap_or_default();
        let targets: Vec<_> = targets
            .into_iter()
            .filter(|(label, ..)| label.contains(only.as_str()))
            .collect();
        let mut measured: Vec<(Vec<f64>, Vec<Duration>)> = vec![Default::default(); targets.len()];
        for round in 1..=ROUNDS {
            eprintln!("round {round} of {ROUNDS}");
            for ((_, url, cookie, _), (rates, latencies)) in targets.iter().zip(&mut measured) {
                let (url, cookie) = (url.clone(), *cookie);
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
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\nWeb, {CLIENTS} concurrent clients on kept-alive connections, {ROUNDS} alternating rounds of {} s, one run, this machine:",
            ROUND.as_secs()
        );
        println!(
            "{:<34} {:>9} {:>12} {:>8} {:>8} {:>8}",
            "target", "req/s", "vs baseline", "p50 ms", "p99 ms", "max ms"
        );
        let rates: Vec<f64> = measured.iter().map(|(rates, _)| mean(rates)).collect();
        for ((label, _, _, baseline), (_, samples)) in targets.iter().zip(&mut measured) {
            let i = targets.iter().position(|t| t.0 == *label).unwrap_or(0);
            let base = targets.iter().position(|t| t.0 == *baseline).unwrap_or(0);
            let max = samples.iter().max().copied().unwrap_or_default();
            println!(
                "{label:<34} {:>9.0} {:>10.0} % {:>8.2} {:>8.2} {:>8.2}",
                rates[i],
                100.0 * rates[i] / rates[base],
                ms(percentile(samples, 0.5)),
                ms(percentile(samples, 0.99)),
                ms(max)
            );
        }
        println!(
            "baselines: static files vs /healthz (goal >= 50 %, p99 <= 5 ms); the rendered watch \
             page vs its cached copy (goal >= 25 %, p99 <= 10 ms); watch page {bytes} bytes"
        );

        // The sitemap of 100 000 videos, generated afresh (each page once).
        server
            .services
            .db
            .conn()
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO videos (uri, cid, did, rkey, title, description, duration_ms,
                                     created_at, indexed_at)
                 SELECT 'at://' || ?2 || '/place.stream.video/s' || i, ?3, ?2, 's' || i,
                        'Talk number ' || i || ': a title of a usual length',
                        'What the talk is about, in a sentence or two.', 1800000,
                        '2025-06-01T10:00:00Z', '2025-06-01T10:00:00Z'
                 FROM n",
                libsql::params![
                    (SITEMAP_VIDEOS - VIDEOS) as i64,
                    account.did.as_str(),
                    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                ],
            )
            .await
            .expect("sitemap videos");
        let started = std::time::Instant::now();
        let index = client
            .get(format!("{}/sitemap.xml", server.url))
            .send()
            .await
            .expect("sitemap")
            .text()
            .await
            .expect("body");
        let mut urls = 0;
        let mut bytes = 0;
        for page in 1..=index.matches("<sitemap>").count() {
            let body = client
                .get(format!("{}/sitemap/{page}.xml", server.url))
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("body");
            urls += body.matches("<url>").count();
            bytes += body.len();
        }
        println!(
            "sitemap of {SITEMAP_VIDEOS} videos: {urls} URLs, {:.1} MB, generated in {:.2} s (goal <= 1 s)",
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        server.stop().await;
    });
}
