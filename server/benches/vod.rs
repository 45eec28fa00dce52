//! VOD benchmark: `cargo bench -p server --bench vod` (needs ffmpeg, and the npm packages
//! in `end2end/` for the local PDS). Makes (once, cached in ~/.cache/streamhut/fixtures)
//! a 5-minute and a 60-minute 720p fixture, serves them from the local test origin, and
//! measures in one run:
//!
//! - our card sprite (8 frames) and thumbnail: wall time of each task, through the task
//!   API of a real server; the storyboard as a player meets it: its WebVTT, then its first
//!   sheet (served as soon as it is made) and its last (the whole storyboard);
//! - (a) the seed's method for the sprite: ffmpeg given the HLS playlist, output seeking
//!   (`-ss` after `-i`), 8 frames two at a time; for the 60-minute video one frame at the
//!   middle is measured and the 8-frame time estimated from it (output seeking costs time
//!   proportional to the position, so the mean position stands for the 8);
//! - (b) the floor: ffmpeg decoding only the keyframes of the local file;
//! - the playlist proxy's throughput next to a handler serving the same bytes from memory
//!   (the upper bound of any static-file handler).

mod support;

#[path = "../tests/common/network.rs"]
#[allow(dead_code)]
mod network;

#[path = "../tests/common/instance.rs"]
#[allow(dead_code)]
mod instance;

#[path = "../tests/common/origin.rs"]
#[allow(dead_code)]
mod origin;

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use instance::Server;
use network::network;
use origin::{FixtureSpec, ffmpeg, fixture_dir};
use serde_json::{Value, json};
use server::vod::previews::sprite_layout;
use support::{block_on, throughput};

const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(3);

fn main() {
    block_on(async {
        let mut rows = Vec::new();
        for (label, spec) in [
            (
                "5-minute",
                FixtureSpec {
                    seconds: 300,
                    width: 1280,
                    height: 720,
                },
            ),
            (
                "60-minute",
                FixtureSpec {
                    seconds: 3600,
                    width: 1280,
                    height: 720,
                },
            ),
        ] {
            eprintln!("preparing the {label} 720p fixture (made once, then cached)");
            let made = Instant::now();
            let dir = fixture_dir(spec);
            eprintln!("  ready in {:.1} s", made.elapsed().as_secs_f64());
            rows.push((label, spec, measure(label, spec, dir).await));
        }
        println!("\nVOD, 720p fixtures, this machine, one run (wall time, seconds):");
        println!(
            "{:<10} {:>8} {:>11} {:>11} {:>10} {:>12} {:>10} {:>11} {:>10}",
            "video",
            "sprite",
            "1st sheet",
            "storyboard",
            "thumbnail",
            "seed sprite",
            "floor",
            "vs seed",
            "vs floor"
        );
        for (label, _, m) in &rows {
            println!(
                "{:<10} {:>8.2} {:>11.2} {:>11.2} {:>10.2} {:>11.1}{} {:>10.2} {:>10.0}× {:>9.2}×",
                label,
                m.sprite,
                m.first_sheet,
                m.storyboard,
                m.thumbnail,
                m.seed_sprite,
                if m.seed_estimated { "*" } else { " " },
                m.floor,
                m.seed_sprite / m.sprite,
                m.sprite / m.floor,
            );
        }
        println!("* estimated from one frame at the middle (see the bench's docs)");
        if let Some((_, _, m)) = rows.first() {
            println!(
                "playlist proxy: {:.0} req/s; the same bytes from memory: {:.0} req/s ({:.0} %)",
                m.proxy_rate,
                m.static_rate,
                100.0 * m.proxy_rate / m.static_rate
            );
        }
    });
}

struct Measured {
    sprite: f64,
    first_sheet: f64,
    storyboard: f64,
    thumbnail: f64,
    seed_sprite: f64,
    seed_estimated: bool,
    floor: f64,
    proxy_rate: f64,
    static_rate: f64,
}

/// The storyboard as a player meets it, on a video no one has watched: its WebVTT, then
/// its first sheet, then its last; returns the seconds until the first and the last.
async fn storyboard_seconds(server: &Server, uri: &str) -> (f64, f64) {
    let started = Instant::now();
    let client = server.client();
    let query = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>();
    let vtt = client
        .get(format!(
            "{}/api/vod/getVtt?uri={query}&kind=storyboard",
            server.url
        ))
        .send()
        .await
        .expect("vtt")
        .text()
        .await
        .expect("vtt text");
    let last = vtt
        .split("sheet=")
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(vtt.contains("sheet=0"), "{vtt}");
    let sheet = |n: usize| {
        let url = format!("{}/api/vod/getStoryboard?uri={query}&sheet={n}", server.url);
        let client = client.clone();
        async move {
            loop {
                let response = client.get(&url).send().await.expect("sheet");
                match response.status().as_u16() {
                    200 => return,
                    503 => continue,
                    status => panic!("sheet {n}: {status}"),
                }
            }
        }
    };
    sheet(0).await;
    let first = started.elapsed().as_secs_f64();
    sheet(last).await;
    (first, started.elapsed().as_secs_f64())
}

/// Submits task export `kind` for `uri`/`cid` and waits for it; returns seconds.
async fn task_seconds(server: &Server, kind: &str, uri: &str, cid: &str) -> f64 {
    let started = Instant::now();
    let client = server.client();
    let view: Value = client
        .post(format!("{}/api/vod/{kind}?wait=30", server.url))
        .json(&json!({ "uri": uri, "cid": cid }))
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("view");
    let id = view["id"].as_str().expect("id").to_string();
    let done = server.wait_task(&id).await;
    assert_eq!(done["status"], "complete", "{kind}: {done}");
    started.elapsed().as_secs_f64()
}

async fn measure(label: &str, spec: FixtureSpec, dir: std::path::PathBuf) -> Measured {
    let origin = origin::start_with(dir.clone()).await;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &data.path().join("data"),
        &[
            "--vod-origin-url",
            &origin.url,
            "--vod-ffmpeg-concurrency",
            "2",
        ],
    )
    .await;
    let account = network().create_account("bench").await;
    let agent = network().login(&account).await;
    agent
        .put_record(
            "place.stream.video",
            "cmaf",
            &json!({"$type": "place.stream.video", "title": label, "durationMs": spec.seconds * 1000,
                    "createdAt": "2026-01-01T00:00:00Z"}),
        )
        .await
        .expect("record");
    let (_, body) = server
        .admin_post("registerCreator", json!({ "actor": account.did }))
        .await;
    server
        .wait_task(body["taskId"].as_str().expect("task"))
        .await;
    let uri = format!("at://{}/place.stream.video/cmaf", account.did);
    let video = server.all_videos(&account.did).await;
    let cid = video[0]["cid"].as_str().expect("cid").to_string();

    eprintln!("{label}: our sprite, thumbnail, storyboard");
    let sprite = task_seconds(&server, "sprite", &uri, &cid).await;
    let thumbnail = task_seconds(&server, "thumbnail", &uri, &cid).await;
    let (first_sheet, storyboard) = storyboard_seconds(&server, &uri).await;

    eprintln!("{label}: the seed's method");
    let playlist = format!("{}/xrpc/ts.m3u8", origin.url);
    let layout = sprite_layout(f64::from(spec.seconds));
    let seed_frame = |at: f64| {
        let playlist = playlist.clone();
        async move {
            let started = Instant::now();
            let output = tokio::process::Command::new(ffmpeg())
                .args([
                    "-nostdin",
                    "-v",
                    "error",
                    "-i",
                    &playlist,
                    "-ss",
                    &format!("{at:.3}"),
                ])
                .args([
                    "-frames:v",
                    "1",
                    "-vf",
                    "scale=320:180",
                    "-f",
                    "rawvideo",
                    "-y",
                    "/dev/null",
                ])
                .output()
                .await
                .expect("ffmpeg");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            started.elapsed().as_secs_f64()
        }
    };
    let (seed_sprite, seed_estimated) = if spec.seconds <= 600 {
        let started = Instant::now();
        futures::stream::iter(layout.tiles.iter().map(|tile| seed_frame(tile.at)))
            .buffer_unordered(2)
            .collect::<Vec<_>>()
            .await;
        (started.elapsed().as_secs_f64(), false)
    } else {
        let one = seed_frame(f64::from(spec.seconds) / 2.0).await;
        (one * layout.tiles.len() as f64 / 2.0, true)
    };

    eprintln!("{label}: the floor");
    let started = Instant::now();
    let floor = Command::new(ffmpeg())
        .args(["-nostdin", "-v", "error", "-skip_frame", "nokey", "-i"])
        .arg(dir.join("source.mp4"))
        .args(["-an", "-vf", "scale=320:180", "-f", "null", "-"])
        .status()
        .expect("ffmpeg");
    assert!(floor.success());
    let floor = started.elapsed().as_secs_f64();

    let (proxy_rate, static_rate) = if spec.seconds <= 600 {
        let url = format!(
            "{}/api/vod/getPlaylist?uri={}",
            server.url,
            url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        );
        let client = reqwest::Client::new();
        let body = client
            .get(&url)
            .send()
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body");
        // The strictest static baseline: the same bytes from memory, with the playlist's
        // content type, on the same kind of axum server.
        let bytes = body.clone();
        let static_url = support::serve(axum::Router::new().route(
            "/master.m3u8",
            axum::routing::get(move || {
                let bytes = bytes.clone();
                async move { ([("content-type", "application/vnd.apple.mpegurl")], bytes) }
            }),
        ))
        .await
            + "/master.m3u8";
        let mut proxy = Vec::new();
        let mut file_rates = Vec::new();
        for _ in 0..3 {
            let u = static_url.clone();
            file_rates.push(throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&u)).await);
            let u = url.clone();
            proxy.push(throughput(&client, CONCURRENCY, ROUND, move |c| c.get(&u)).await);
        }
        (
            proxy.iter().sum::<f64>() / 3.0,
            file_rates.iter().sum::<f64>() / 3.0,
        )
    } else {
        (0.0, 1.0)
    };
    server.stop().await;
    Measured {
        sprite,
        first_sheet,
        storyboard,
        thumbnail,
        seed_sprite,
        seed_estimated,
        floor,
        proxy_rate,
        static_rate,
    }
}
