//! Soak: `cargo bench -p server --bench soak` (needs ffmpeg, Deno and the npm packages in
//! `end2end/`). Loopback only, bounded in time and count: the release `streamhut` binary
//! runs as its own process over a local PDS, PLC and HLS origin, and receives a steady,
//! open-loop mix of traffic for `SOAK_SECS` (default 600) at `SOAK_RATE` requests a
//! second (default 40): pages (home, watch, search), the AppView API, playlists,
//! thumbnails and sprites, and a bundle endpoint. Reported: errors, p50 and p99 per
//! route, and the RSS of the server and of its bundle processes every 30 s. It fails if any request fails or if RSS grew
//! by 10 % or more between the end of the warm-up (the first sixth) and the end.

mod support;

#[path = "../tests/common/network.rs"]
#[allow(dead_code)]
mod network;

#[path = "../tests/common/origin.rs"]
#[allow(dead_code)]
mod origin;

#[path = "../tests/common/runner.rs"]
#[allow(dead_code)]
mod runner;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use network::network;
use serde_json::json;
use support::{block_on, percentile};

/// Videos the creator publishes (the origin's well-formed shapes).
const SHAPES: &[&str] = &["cmaf", "segments", "ts", "session"];
/// Longest a request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The resident sets of `pid`'s descendants (the bundle processes), in KiB.
fn descendants_rss_kib(pid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let parents: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`: the command may hold spaces, so split after it.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut family = vec![pid];
    let mut total = 0;
    while let Some(parent) = family.pop() {
        for &(child, _) in parents.iter().filter(|(_, ppid)| *ppid == parent) {
            total += rss_kib(child);
            family.push(child);
        }
    }
    total
}

type Samples = Arc<Mutex<BTreeMap<&'static str, (Vec<Duration>, usize)>>>;

fn main() {
    let seconds = setting("SOAK_SECS", 600);
    let rate = setting("SOAK_RATE", 40).max(1);
    block_on(async move {
        let net = network();
        let origin = origin::start().await;
        let author = net.create_account("soak").await;
        runner::publish(&author, "hello.ts", "1.0.0").await;
        let agent = net.login(&author).await;
        for shape in SHAPES {
            agent
                .put_record(
                    "place.stream.video",
                    shape,
                    &json!({
                        "$type": "place.stream.video",
                        "title": format!("Soak {shape}"),
                        "durationMs": 60_000,
                        "createdAt": "2026-02-01T10:00:00.000Z",
                    }),
                )
                .await
                .expect("record");
        }

        let data = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let token = "soak-admin-token-0123456789";
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamhut"))
            .args(net.server_args())
            .env("STREAMHUT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("STREAMHUT_DATA_DIR", data.path())
            .env("ATRUN_HOME", data.path().join("keys"))
            .env("DENO_PATH", runner::deno())
            .env("ADMIN_TOKEN", token)
            .env("VOD_ORIGIN_URL", &origin.url)
            .env("STREAMHUT_DEFAULT_CREATORS", "")
            .env("BSKY_PUBLIC_API_URL", "")
            .env("ATRUN_RATE_LIMIT", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the release streamhut");
        let pid = child.id();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("client");
        let ready = Instant::now();
        while client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(
                ready.elapsed() < Duration::from_secs(60),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let registered: serde_json::Value = client
            .post(format!("{base}/api/appview/registerCreator"))
            .bearer_auth(token)
            .json(&json!({ "actor": author.did }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("JSON");
        let task = registered["taskId"].as_str().expect("task id");
        client
            .get(format!("{base}/api/tasks/{task}?wait=30"))
            .send()
            .await
            .expect("sync");

        let did = author.did.clone();
        let uri = |shape: &str| format!("at://{did}/place.stream.video/{shape}");
        let encoded = |shape: &str| percent_encode(&uri(shape));
        let mut routes: Vec<(&'static str, String)> = vec![
            ("page /", format!("{base}/")),
            ("page /search", format!("{base}/search?q=soak")),
            (
                "api listVideos",
                format!("{base}/api/appview/listVideos?limit=20"),
            ),
            (
                "bundle endpoint",
                format!("{base}/bundle/{did}/hello/latest/hello?name=soak"),
            ),
            ("healthz", format!("{base}/healthz")),
        ];
        for shape in SHAPES {
            routes.push(("page /watch", format!("{base}/watch/{did}/{shape}")));
            routes.push((
                "vod getPlaylist",
                format!("{base}/api/vod/getPlaylist?uri={}", encoded(shape)),
            ));
            routes.push((
                "vod getThumbnail",
                format!("{base}/api/vod/getThumbnail?uri={}", encoded(shape)),
            ));
            routes.push((
                "vod getSprite",
                format!("{base}/api/vod/getSprite?uri={}", encoded(shape)),
            ));
        }
        // Images are made once (the first request waits for ffmpeg); the soak measures
        // what viewers get afterwards, as the warm-up below does for every route.
        for (_, url) in &routes {
            let _ = client.get(url).send().await;
        }

        eprintln!(
            "soak: {seconds} s at {rate} req/s over {} URLs, server pid {pid}",
            routes.len()
        );
        let samples: Samples = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut rss = vec![(0u64, rss_kib(pid))];
        let mut bundles = vec![(0u64, descendants_rss_kib(pid))];
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0usize;
        let mut next_rss = Duration::from_secs(30);
        let mut inflight = tokio::task::JoinSet::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            ticker.tick().await;
            let (route, url) = routes[sent % routes.len()].clone();
            sent += 1;
            let (client, samples, errors) = (client.clone(), samples.clone(), errors.clone());
            inflight.spawn(async move {
                let begun = Instant::now();
                let outcome = match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => {
                        response.bytes().await.map(drop).map_err(|e| e.to_string())
                    }
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(err) => Err(err.to_string()),
                };
                let took = begun.elapsed();
                let mut samples = samples.lock().expect("samples");
                let entry = samples.entry(route).or_default();
                match outcome {
                    Ok(()) => entry.0.push(took),
                    Err(why) => {
                        entry.1 += 1;
                        errors
                            .lock()
                            .expect("errors")
                            .push(format!("{route} {url}: {why}"));
                    }
                }
            });
            while inflight.try_join_next().is_some() {}
            if started.elapsed() >= next_rss {
                rss.push((next_rss.as_secs(), rss_kib(pid)));
                bundles.push((next_rss.as_secs(), descendants_rss_kib(pid)));
                next_rss += Duration::from_secs(30);
            }
        }
        while inflight.join_next().await.is_some() {}
        rss.push((started.elapsed().as_secs(), rss_kib(pid)));
        bundles.push((started.elapsed().as_secs(), descendants_rss_kib(pid)));
        let _ = child.kill();
        let _ = child.wait();

        let mut samples = samples.lock().expect("samples");
        let total: usize = samples.values().map(|(ok, failed)| ok.len() + failed).sum();
        let failed: usize = samples.values().map(|(_, failed)| failed).sum();
        println!(
            "\nsoak: {} s, {total} requests ({:.1} req/s), {failed} errors",
            seconds,
            total as f64 / seconds as f64
        );
        println!(
            "{:<18} {:>7} {:>7} {:>9} {:>9}",
            "route", "count", "errors", "p50 ms", "p99 ms"
        );
        for (route, (ok, failed)) in samples.iter_mut() {
            let (p50, p99) = if ok.is_empty() {
                (0.0, 0.0)
            } else {
                (
                    percentile(ok, 0.5).as_secs_f64() * 1e3,
                    percentile(ok, 0.99).as_secs_f64() * 1e3,
                )
            };
            println!(
                "{route:<18} {:>7} {failed:>7} {p50:>9.1} {p99:>9.1}",
                ok.len() + *failed
            );
        }
        let series = |samples: &[(u64, u64)]| {
            samples
                .iter()
                .map(|(at, kib)| format!("{at}:{:.1}", *kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("server RSS (MiB) by second: {}", series(&rss));
        println!(
            "bundle processes' RSS (MiB) by second (they start and retire with use): {}",
            series(&bundles)
        );
        let warm = rss
            .iter()
            .find(|(at, _)| *at >= seconds / 6)
            .map_or(rss[0].1, |(_, kib)| *kib);
        let last = rss.last().map_or(warm, |(_, kib)| *kib);
        let growth = 100.0 * (last as f64 - warm as f64) / warm.max(1) as f64;
        println!(
            "RSS after warm-up {:.1} MiB, at the end {:.1} MiB: {growth:+.1} %",
            warm as f64 / 1024.0,
            last as f64 / 1024.0
        );
        for error in errors.lock().expect("errors").iter().take(10) {
            println!("error: {error}");
        }
        assert_eq!(failed, 0, "requests failed");
        assert!(growth < 10.0, "RSS grew by {growth:.1} % after warm-up");
    });
}

/// `value` as a query component.
fn percent_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
