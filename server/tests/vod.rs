//! VOD end to end: a real server, the local PDS (records indexed by the AppView), a
//! local origin serving ffmpeg-made HLS in each shape origins send (`common::origin`),
//! and real ffmpeg. Playlists are rewritten and every rewritten URL is fetched; frames
//! are checked by content against reference frames decoded from the source; faults give
//! clear errors in bounded time while the server stays up.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde_json::{Value, json};

use common::instance::Server;
use common::network::network;
use common::origin::{self, FIXTURE_SECONDS, Origin, ffmpeg, fixtures};
use server::vod::previews::{SPRITE_TILE, sprite_layout};

struct Bed {
    server: Server,
    origin: Origin,
    did: String,
    agent: server::atproto::session::Agent,
    _dir: tempfile::TempDir,
}

const SHAPES: &[&str] = &[
    "cmaf", "segments", "ts", "session", "corrupt", "broken", "hang", "short", "sneaky", "bigrange",
];

fn record(title: &str) -> Value {
    json!({
        "$type": "place.stream.video",
        "title": title,
        "durationMs": 60_000,
        "createdAt": "2026-02-01T10:00:00.000Z",
    })
}

/// A server on a fresh data dir with `extra` flags, the origin, and a creator whose
/// videos (one per shape) are indexed.
async fn bed(extra: &[&str]) -> Bed {
    let origin = origin::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--vod-origin-url", origin.url.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&dir.path().join("data"), &args).await;
    let account = network().create_account("vod").await;
    let agent = network().login(&account).await;
    for shape in SHAPES.iter().chain(&["missing"]) {
        agent
            .put_record(
                "place.stream.video",
                shape,
                &record(&format!("Shape {shape}")),
            )
            .await
            .expect("record");
    }
    let (status, body) = server
        .admin_post("registerCreator", json!({ "actor": account.did }))
        .await;
    assert_eq!(status, 200, "{body}");
    let view = server
        .wait_task(body["taskId"].as_str().expect("task id"))
        .await;
    assert_eq!(view["status"], "complete", "{view}");
    Bed {
        server,
        origin,
        did: account.did,
        agent,
        _dir: dir,
    }
}

impl Bed {
    fn services(&self) -> &server::services::Services {
        &self.server.services
    }

    fn uri(&self, rkey: &str) -> String {
        format!("at://{}/place.stream.video/{rkey}", self.did)
    }

    fn api(&self, export: &str, params: &[(&str, &str)]) -> String {
        let mut url =
            url::Url::parse(&format!("{}/api/vod/{export}", self.server.url)).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.server.client().get(url).send().await.expect("GET")
    }
}

/// Every URL a playlist names, with the byte range it wants (if any).
fn urls(playlist: &str) -> Vec<(String, Option<(u64, u64)>)> {
    match m3u8_rs::parse_playlist_res(playlist.as_bytes()).expect("parses") {
        m3u8_rs::Playlist::MasterPlaylist(master) => master
            .variants
            .iter()
            .map(|v| (v.uri.clone(), None))
            .chain(
                master
                    .alternatives
                    .iter()
                    .filter_map(|a| a.uri.clone().map(|u| (u, None))),
            )
            .collect(),
        m3u8_rs::Playlist::MediaPlaylist(media) => {
            let mut out = Vec::new();
            let mut next = 0;
            for segment in &media.segments {
                if let Some(map) = &segment.map {
                    out.push((
                        map.uri.clone(),
                        map.byte_range
                            .as_ref()
                            .map(|r| (r.offset.unwrap_or(0), r.length)),
                    ));
                }
                let range = segment.byte_range.as_ref().map(|r| {
                    let offset = r.offset.unwrap_or(next);
                    next = offset + r.length;
                    (offset, r.length)
                });
                out.push((segment.uri.clone(), range));
            }
            out
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn playlists_are_rewritten_for_every_origin_shape_and_every_url_works() {
    let bed = bed(&[]).await;
    for shape in ["cmaf", "segments", "ts", "session"] {
        let uri = bed.uri(shape);
        let response = bed.get(&bed.api("getPlaylist", &[("uri", &uri)])).await;
        assert_eq!(response.status(), 200, "{shape}");
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.apple.mpegurl"
        );
        let master = response.text().await.expect("text");
        let subs = urls(&master);
        assert_eq!(subs.len(), 2, "{shape}: variant and subtitles: {master}");
        for (url, _) in &subs {
            assert!(
                url.starts_with(&format!("{}/api/vod/getPlaylist?uri=", bed.server.url)),
                "{shape}: sub-playlists come through us: {url}"
            );
            assert!(
                url.contains("track="),
                "{shape}: the origin's query is kept: {url}"
            );
        }
        if shape == "cmaf" {
            assert!(subs[0].0.contains("sid=s1"), "sid carried: {}", subs[0].0);
        }
        let media = bed.get(&subs[0].0).await;
        assert_eq!(media.status(), 200, "{shape}");
        let media = media.text().await.expect("text");
        assert!(media.contains("#EXT-X-ENDLIST"), "{shape}: {media}");
        let media_urls = urls(&media);
        assert!(media_urls.len() >= 15, "{shape}: {media}");
        if shape == "cmaf" {
            assert!(
                media.contains("#EXT-X-MAP:URI=") && media.contains("BYTERANGE"),
                "{media}"
            );
        }
        let client = reqwest::Client::new();
        for (url, range) in media_urls {
            assert!(
                url.starts_with("http://127.0.0.1:"),
                "{shape}: absolute: {url}"
            );
            if shape == "ts" {
                assert!(
                    !url.starts_with(&bed.origin.url),
                    "ts media is on the CDN: {url}"
                );
                assert!(url.contains("/blobs/"), "{url}");
            }
            let mut request = client.get(&url);
            if let Some((offset, length)) = range {
                request =
                    request.header("range", format!("bytes={offset}-{}", offset + length - 1));
            }
            let response = request.send().await.expect("media");
            assert!(
                response.status().is_success(),
                "{shape}: {url}: {}",
                response.status()
            );
            let bytes = response.bytes().await.expect("bytes");
            if let Some((_, length)) = range {
                assert_eq!(bytes.len() as u64, length, "{url}");
            } else {
                assert!(!bytes.is_empty(), "{url}");
            }
        }
    }

    // Errors, in the XRPC shape, in bounded time.
    let session = bed.uri("session");
    for (params, status, error) in [
        (vec![("uri", bed.uri("missing"))], 404, "VideoNotFound"),
        (
            vec![("uri", bed.uri("cmaf")), ("track", "5".into())],
            404,
            "TrackNotFound",
        ),
        (
            vec![
                ("uri", session.clone()),
                ("track", "1".into()),
                ("sid", "stale".into()),
            ],
            400,
            "InvalidRequest",
        ),
        (vec![("uri", bed.uri("broken"))], 502, "UpstreamFailure"),
        (
            vec![("uri", "https://example.com/x".into())],
            400,
            "InvalidRequest",
        ),
        (vec![], 400, "InvalidRequest"),
    ] {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = bed.get(&bed.api("getPlaylist", &params)).await;
        assert_eq!(response.status().as_u16(), status, "{params:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], error, "{params:?}: {body}");
    }
    let started = Instant::now();
    let response = bed
        .get(&bed.api("getPlaylist", &[("uri", &bed.uri("hang"))]))
        .await;
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = bed.server.get("getStats").await;
    assert_eq!(status, 200, "the server is still up");
}

/// The frame of the source at `at` seconds, scaled to `width`×`height`.
fn reference_frame(at: f64, width: u32, height: u32) -> RgbImage {
    let output = Command::new(ffmpeg())
        .args(["-nostdin", "-v", "error", "-ss", &format!("{at:.3}"), "-i"])
        .arg(fixtures().join("source.mp4"))
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("scale={width}:{height}"))
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
        .output()
        .expect("ffmpeg");
    RgbImage::from_raw(width, height, output.stdout).expect("a frame")
}

/// Peak signal-to-noise ratio of two equally sized images, in dB.
fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}

async fn jpeg(response: reqwest::Response) -> RgbImage {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let bytes = response.bytes().await.expect("bytes");
    image::load_from_memory(&bytes).expect("a JPEG").to_rgb8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sprites_storyboards_and_thumbnails_show_the_right_frames() {
    let bed = bed(&[]).await;
    let uri = bed.uri("cmaf");

    let started = Instant::now();
    let sprite = jpeg(bed.get(&bed.api("getSprite", &[("uri", &uri)])).await).await;
    println!(
        "first sprite (8 frames, over HTTP) in {:?}",
        started.elapsed()
    );
    assert_eq!(sprite.dimensions(), (1280, 360));
    let layout = sprite_layout(FIXTURE_SECONDS);
    let tiles: Vec<RgbImage> = layout
        .tiles
        .iter()
        .map(|tile| image::imageops::crop_imm(&sprite, tile.x, tile.y, tile.w, tile.h).to_image())
        .collect();
    for (tile, image) in layout.tiles.iter().zip(&tiles) {
        let reference = reference_frame(tile.at, SPRITE_TILE.0, SPRITE_TILE.1);
        let score = psnr(image, &reference);
        assert!(
            score > 24.0,
            "the tile at {}s matches its reference: {score:.1} dB",
            tile.at
        );
    }
    assert!(
        psnr(&tiles[0], &tiles[4]) < 20.0,
        "frames at different times differ"
    );

    // The WebVTT: one cue per tile, absolute URLs, times inside the video.
    let vtt = bed
        .get(&bed.api("getVtt", &[("uri", &uri)]))
        .await
        .text()
        .await
        .expect("vtt");
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    assert_eq!(vtt.matches(" --> ").count(), 8, "{vtt}");
    assert!(
        vtt.contains(&format!("{}/api/vod/getSprite?uri=", bed.server.url)),
        "{vtt}"
    );
    assert!(vtt.contains("#xywh=960,180,320,180"), "{vtt}");
    assert!(vtt.contains("00:00:52.500 --> 00:01:00.000"), "{vtt}");

    // A cached image is a file read with a validator.
    let again = bed.get(&bed.api("getSprite", &[("uri", &uri)])).await;
    let etag = again.headers()["etag"].to_str().expect("etag").to_string();
    assert!(
        again.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("max-age")
    );
    let not_modified = bed
        .server
        .client()
        .get(bed.api("getSprite", &[("uri", &uri)]))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(not_modified.status(), 304);

    // The storyboard: a tile per 12 s (segments of 4 s), exact frames at cue starts.
    let vtt = bed
        .get(&bed.api("getVtt", &[("uri", &uri), ("kind", "storyboard")]))
        .await
        .text()
        .await
        .expect("vtt");
    assert_eq!(vtt.matches(" --> ").count(), 5, "{vtt}");
    assert!(vtt.contains("getStoryboard?uri="), "{vtt}");
    assert!(vtt.contains("00:00:12.000 --> 00:00:24.000"), "{vtt}");
    let sheet = jpeg(
        bed.get(&bed.api("getStoryboard", &[("uri", &uri), ("sheet", "0")]))
            .await,
    )
    .await;
    assert_eq!(sheet.dimensions(), (800, 90));
    let second = image::imageops::crop_imm(&sheet, 160, 0, 160, 90).to_image();
    assert!(psnr(&second, &reference_frame(12.0, 160, 90)) > 22.0);
    let beyond = bed
        .get(&bed.api("getStoryboard", &[("uri", &uri), ("sheet", "1")]))
        .await;
    assert_eq!(beyond.status(), 400);

    // No thumbnail blob: a frame from a tenth of the way in, not black.
    let thumb = jpeg(bed.get(&bed.api("getThumbnail", &[("uri", &uri)])).await).await;
    assert_eq!(thumb.dimensions(), (640, 360));
    assert!(psnr(&thumb, &reference_frame(6.0, 640, 360)) > 24.0);

    // Every other shape makes sprites too.
    for shape in ["segments", "ts", "session"] {
        let sprite = jpeg(
            bed.get(&bed.api("getSprite", &[("uri", &bed.uri(shape))]))
                .await,
        )
        .await;
        assert_eq!(sprite.dimensions(), (1280, 360), "{shape}");
    }

    // Images gone from this server's cache (evicted, or made by another server on the
    // same database) are made again here, although their task says done.
    let cache = bed.services().vod.options().cache_dir.clone();
    for entry in std::fs::read_dir(&cache).expect("cache dir").flatten() {
        std::fs::remove_file(entry.path()).expect("remove");
    }
    let remade = bed.get(&bed.api("getSprite", &[("uri", &uri)])).await;
    assert_eq!(remade.status(), 200);
    assert_eq!(jpeg(remade).await.dimensions(), (1280, 360));

    // What it took shows in /metrics: requests by route, ffmpeg runs, cache hits, syncs.
    let metrics = bed
        .get(&format!("{}/metrics", bed.server.url))
        .await
        .text()
        .await
        .expect("metrics");
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
    };
    assert!(
        value(
            r#"streamhut_http_requests_total{route="/api/vod/getSprite",method="GET",status="200"}"#
        ) >= 5.0
    );
    assert!(
        value(
            r#"streamhut_http_requests_total{route="/api/vod/getStoryboard",method="GET",status="400"}"#
        ) >= 1.0
    );
    assert!(
        value(
            r#"streamhut_http_request_duration_seconds_count{route="/api/vod/getVtt",method="GET"}"#
        ) >= 2.0
    );
    assert!(value(r#"streamhut_vod_ffmpeg_runs_total{outcome="ok"}"#) >= 8.0);
    assert!(value("streamhut_vod_ffmpeg_duration_seconds_count") >= 8.0);
    assert!(value(r#"streamhut_vod_image_cache_lookups_total{outcome="hit"}"#) >= 1.0);
    assert!(value("streamhut_vod_image_cache_bytes") > 10_000.0);
    assert!(value(r#"streamhut_appview_sync_duration_seconds_count{outcome="ok"}"#) >= 1.0);
    assert!(
        metrics.contains("# TYPE streamhut_runner_processes gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE streamhut_tasks_queue_depth gauge"),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"));
}

/// With `METRICS_TOKEN`, `/metrics` answers only to that bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("data"),
        &["--metrics-token", "scrape-token-123"],
    )
    .await;
    let url = format!("{}/metrics", server.url);
    let client = server.client();
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(status(client.get(&url).send().await.expect("GET")), 401);
    let wrong = client
        .get(&url)
        .bearer_auth("scrape-token-124")
        .send()
        .await;
    assert_eq!(status(wrong.expect("GET")), 401);
    let right = client
        .get(&url)
        .bearer_auth("scrape-token-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(right.status(), 200);
    assert!(
        right.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/openmetrics-text")
    );
    let body = right.text().await.expect("body");
    assert!(!body.contains("scrape-token"), "the token is not echoed");
    assert!(
        body.contains(r#"route="/metrics",method="GET",status="401""#),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thumbnails_come_from_the_record_or_its_livestream_first() {
    let bed = bed(&[]).await;
    let own = reference_frame(30.0, 320, 180);
    let mut own_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut own_jpeg)
        .encode_image(&own)
        .expect("jpeg");
    let blob = bed
        .agent
        .upload_blob(own_jpeg.clone().into(), "image/jpeg")
        .await
        .expect("blob");
    let mut live_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut live_jpeg)
        .encode_image(&reference_frame(45.0, 320, 180))
        .expect("jpeg");
    let live = bed
        .agent
        .upload_blob(live_jpeg.clone().into(), "image/jpeg")
        .await
        .expect("blob");
    let livestream = bed
        .agent
        .put_record(
            "place.stream.livestream",
            "live1",
            &json!({"$type": "place.stream.livestream", "title": "Live", "thumb": live, "createdAt": "2026-01-01T00:00:00Z"}),
        )
        .await
        .expect("livestream");
    bed.agent
        .put_record(
            "place.stream.video",
            "cmaf",
            &json!({"$type": "place.stream.video", "title": "With a thumb", "durationMs": 60_000, "createdAt": "2026-02-02T00:00:00Z", "thumb": blob}),
        )
        .await
        .expect("record");
    bed.agent
        .put_record(
            "place.stream.video",
            "segments",
            &json!({"$type": "place.stream.video", "title": "From a livestream", "duration": 60_000_000_000u64,
                    "livestream": {"uri": livestream.uri, "cid": livestream.cid},
                    "source": {"$type": "place.stream.muxl.defs#archive"}}),
        )
        .await
        .expect("record");
    let (_, body) = bed
        .server
        .admin_post("triggerSync", json!({ "actor": bed.did }))
        .await;
    bed.server
        .wait_task(body["taskId"].as_str().expect("task"))
        .await;

    let response = bed
        .get(&bed.api("getThumbnail", &[("uri", &bed.uri("cmaf"))]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("bytes").to_vec(),
        own_jpeg,
        "the record's own blob"
    );

    let response = bed
        .get(&bed.api("getThumbnail", &[("uri", &bed.uri("segments"))]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("bytes").to_vec(),
        live_jpeg,
        "no blob of its own: the livestream's"
    );
    let listed = bed.server.all_videos(&bed.did).await;
    let from_live = listed
        .iter()
        .find(|v| v["rkey"] == "segments")
        .expect("indexed");
    assert_eq!(
        from_live["durationMs"], 60_000,
        "nanoseconds in the oldest shape"
    );
    assert_eq!(from_live["livestream"]["uri"], livestream.uri);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_give_clear_errors_in_bounded_time_and_the_server_stays_up() {
    let bed = bed(&[]).await;
    // A player retries while the answer is 503 Processing (with Retry-After): on a
    // loaded machine decoding the corrupt segments may outlast one request's wait.
    let mut corrupt = bed
        .get(&bed.api("getSprite", &[("uri", &bed.uri("corrupt"))]))
        .await;
    let retrying = Instant::now();
    while corrupt.status() == 503 && retrying.elapsed() < Duration::from_secs(60) {
        assert!(corrupt.headers().contains_key("retry-after"));
        corrupt = bed
            .get(&bed.api("getSprite", &[("uri", &bed.uri("corrupt"))]))
            .await;
    }
    assert_eq!(corrupt.status(), 502);
    let body: Value = corrupt.json().await.expect("json");
    assert_eq!(body["error"], "MediaError", "{body}");
    assert_eq!(
        body["message"], "the video's media could not be decoded",
        "fixed text, never ffmpeg's stderr: {body}"
    );

    // Outside numbers and outside "media" never panic, nor make ffmpeg read our files.
    let patiently = |kind: &'static str, shape: &'static str| {
        let url = bed.api(kind, &[("uri", &bed.uri(shape))]);
        let bed = &bed;
        async move {
            let started = Instant::now();
            loop {
                let response = bed.get(&url).await;
                if response.status() != 503 || started.elapsed() > Duration::from_secs(60) {
                    return response;
                }
            }
        }
    };
    let sneaky = patiently("getSprite", "sneaky").await;
    assert_eq!(sneaky.status(), 502);
    let text = sneaky.text().await.expect("text");
    assert!(
        text.contains("MediaError") && !text.contains("/tmp") && !text.contains("segment-"),
        "a playlist posing as a segment is refused, and no path shows: {text}"
    );
    let bigrange = patiently("getSprite", "bigrange").await;
    assert_eq!(bigrange.status(), 502);
    let body: Value = bigrange.json().await.expect("json");
    assert_eq!(body["error"], "UpstreamFailure", "{body}");
    let short = patiently("getThumbnail", "short").await;
    assert_eq!(
        short.status(),
        200,
        "a 1.2-second video without a thumbnail blob gets a frame"
    );
    assert!(jpeg(short).await.width() > 0);

    let missing = bed
        .get(&bed.api("getThumbnail", &[("uri", &bed.uri("missing"))]))
        .await;
    assert_eq!(missing.status(), 404);

    let not_indexed = format!("at://{}/place.stream.video/nothere", bed.did);
    let response = bed
        .get(&bed.api("getSprite", &[("uri", &not_indexed)]))
        .await;
    assert_eq!(response.status(), 404);
    let response = bed
        .get(&bed.api("getVtt", &[("uri", &bed.uri("cmaf")), ("kind", "poster")]))
        .await;
    assert_eq!(response.status(), 400);

    // A broken origin is a 502 for images too, and a retried one answers quickly.
    let started = Instant::now();
    let broken = bed
        .get(&bed.api("getSprite", &[("uri", &bed.uri("broken"))]))
        .await;
    assert!(
        matches!(broken.status().as_u16(), 502 | 503),
        "{}",
        broken.status()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        bed.get(&format!("{}/healthz", bed.server.url))
            .await
            .status(),
        200
    );

    // Without ffmpeg: a clear 503, nothing else breaks.
    let no_ffmpeg = Server::start(
        &bed._dir.path().join("other"),
        &[
            "--vod-origin-url",
            &bed.origin.url,
            "--ffmpeg-path",
            "/nonexistent/ffmpeg",
        ],
    )
    .await;
    let (status, registered) = no_ffmpeg
        .admin_post("registerCreator", json!({ "actor": bed.did }))
        .await;
    assert_eq!(status, 200);
    let synced = no_ffmpeg
        .wait_task(registered["taskId"].as_str().expect("the sync's task"))
        .await;
    assert_eq!(synced["status"], "complete", "{synced}");
    let response = no_ffmpeg
        .client()
        .get(format!(
            "{}/api/vod/getSprite?uri={}",
            no_ffmpeg.url,
            url::form_urlencoded::byte_serialize(bed.uri("cmaf").as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert!(
        !body["message"]
            .as_str()
            .unwrap_or("")
            .contains("/nonexistent"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vod_lists_shares_and_describes_itself() {
    let bed = bed(&[]).await;
    let ours: Value = bed
        .get(&bed.api("listVideos", &[("limit", "100")]))
        .await
        .json()
        .await
        .expect("json");
    let appview: Value = bed.server.get("listVideos?limit=100").await.1;
    assert_eq!(ours, appview, "the same JSON as the AppView's");

    let response = bed
        .get(&bed.api("shareVideo", &[("uri", &bed.uri("cmaf"))]))
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("/watch/{}/cmaf", bed.did).as_str()
    );
    let response = bed
        .get(&bed.api("shareCreator", &[("actor", &bed.did)]))
        .await;
    assert_eq!(
        response.headers()["location"],
        format!("/profile/{}", bed.did).as_str()
    );
    let response = bed
        .get(&bed.api("shareCreator", &[("actor", "not a handle")]))
        .await;
    assert_eq!(response.status(), 400);

    let manifest: Value = bed
        .get(&format!("{}/api/vod", bed.server.url))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(manifest["name"], "vod");
    for export in [
        "getPlaylist",
        "getThumbnail",
        "getSprite",
        "getStoryboard",
        "getVtt",
        "listVideos",
        "shareVideo",
        "shareCreator",
    ] {
        assert!(
            manifest["endpoints"]
                .as_array()
                .is_some_and(|e| e.contains(&json!(export))),
            "{export}: {manifest}"
        );
    }
    let tasks: Vec<&str> = manifest["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tasks, ["sprite", "storyboard", "thumbnail", "transcript"]);
    assert_eq!(manifest["tasks"][0]["cacheTtl"], 86_400);
    assert_eq!(
        manifest["jobs"],
        json!([{"name": "syncAndProcessVideos", "schedule": "every 10m"}])
    );

    // With APPVIEW_URL, another server's AppView is listed instead of ours.
    let remote = Server::start(
        &bed._dir.path().join("remote"),
        &[
            "--vod-origin-url",
            &bed.origin.url,
            "--appview-url",
            &format!("{}/api/appview", bed.server.url),
        ],
    )
    .await;
    let through: Value = bed
        .server
        .client()
        .get(format!("{}/api/vod/listVideos?limit=100", remote.url))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(through, appview, "listed from the remote AppView");

    // The 10-minute job queues previews for the videos that lack them.
    let queued = bed
        .server
        .services
        .vod
        .process_missing()
        .await
        .expect("job");
    assert!(queued > 0, "{queued}");

    // Tasks are callable like any task export.
    let response = bed
        .server
        .client()
        .post(format!("{}/api/vod/sprite?wait=20", bed.server.url))
        .json(&json!({"uri": bed.uri("cmaf"), "cid": "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"}))
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "a stale CID is refused before it becomes a task: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the current version")),
        "{body}"
    );
    let response = bed
        .server
        .client()
        .post(format!("{}/api/vod/sprite", bed.server.url))
        .json(&json!({"uri": bed.uri("cmaf"), "cid": "../../not-a-cid"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        response.status(),
        400,
        "a CID that does not parse is bad input"
    );
}

/// A fresh install registers the default creators by itself (tests set none, so this one
/// names the test account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_creators_are_registered_on_first_start() {
    let account = network().create_account("default").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("data"),
        &["--default-creators", &account.handle],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, stats) = server.get("getStats").await;
        if stats["creators"] == 1 {
            assert_eq!(stats["perCreator"][0]["did"], account.did.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "not registered: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Against an origin shaped like today's stream.place: every viewer gets their own
/// session (the master is never shared from a cache), the separate audio rendition and
/// the subtitles group come back through us, media stays at the origin, a video the
/// node lacks is played from the node its `BlobNotFound` names, and frames come from the
/// video-only variant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_place_sessions_renditions_captions_and_another_node() {
    let node = origin::stream_place();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("data"),
        &["--vod-origin-url", &node.url, "--appview-firehose", "false"],
    )
    .await;
    let account = network().create_account("spnode").await;
    let agent = network().login(&account).await;
    for rkey in ["keynote", "tracks", "elsewhere"] {
        agent
            .put_record("place.stream.video", rkey, &record(&format!("Talk {rkey}")))
            .await
            .expect("record");
    }
    server.register(&account.did).await;
    let client = server.client();
    let api = |params: &[(&str, &str)]| {
        let mut url = url::Url::parse(&format!("{}/api/vod/getPlaylist", server.url)).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    };
    let text = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(&url).send().await.expect("GET");
            let status = response.status().as_u16();
            (status, response.text().await.expect("text"))
        }
    };
    let keynote = format!("at://{}/place.stream.video/keynote", account.did);

    // Two viewers, two sessions.
    let (status, first) = text(api(&[("uri", &keynote)])).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = text(api(&[("uri", &keynote)])).await;
    let sid = |master: &str| {
        master
            .split("sid=")
            .nth(1)
            .and_then(|rest| rest.split(['&', '"', '\n']).next())
            .expect("a sid")
            .to_string()
    };
    assert_ne!(
        sid(&first),
        sid(&second),
        "each viewer has a session of their own"
    );
    assert!(
        first.contains("TYPE=AUDIO") && first.contains("TYPE=SUBTITLES"),
        "{first}"
    );
    let subs = urls(&first);
    assert_eq!(subs.len(), 3, "video, audio and subtitles: {first}");
    for (url, _) in &subs {
        assert!(
            url.starts_with(&format!("{}/api/vod/getPlaylist?", server.url))
                && url.contains("origin=0"),
            "every rendition comes through us, tagged with its origin: {url}"
        );
    }
    // The audio rendition: media at the origin, in the viewer's session.
    let audio = subs
        .iter()
        .map(|(url, _)| url.clone())
        .find(|url| url.contains("track=2"))
        .expect("audio");
    let (status, media) = text(audio).await;
    assert_eq!(status, 200, "{media}");
    let media_urls = urls(&media);
    assert!(!media_urls.is_empty());
    for (url, _) in &media_urls {
        assert!(
            url.starts_with(&format!(
                "{}/xrpc/place.stream.playback.getVideoBlob?",
                node.url
            )) && url.contains(&sid(&first)),
            "{url}"
        );
    }
    // The subtitles playlist: WebVTT segments at the origin.
    let captions = subs
        .iter()
        .map(|(url, _)| url.clone())
        .find(|url| url.contains("captions="))
        .expect("captions");
    let (status, subtitles) = text(captions).await;
    assert_eq!(status, 200, "{subtitles}");
    let (first_cue, _) = urls(&subtitles)
        .into_iter()
        .next()
        .expect("a WebVTT segment");
    assert!(first_cue.starts_with(&format!(
        "{}/xrpc/place.stream.caption.getCaptions?",
        node.url
    )));
    let (status, vtt) = text(first_cue).await;
    assert_eq!(status, 200);
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("Caption 1"),
        "{vtt}"
    );

    // Several audio tracks are all offered.
    let tracks = format!("at://{}/place.stream.video/tracks", account.did);
    let (_, master) = text(api(&[("uri", &tracks)])).await;
    assert_eq!(master.matches("TYPE=AUDIO").count(), 2, "{master}");

    // A blob this node lacks: the node it names plays it, and the viewer stays there.
    let elsewhere = format!("at://{}/place.stream.video/elsewhere", account.did);
    let (status, master) = text(api(&[("uri", &elsewhere)])).await;
    assert_eq!(status, 200, "{master}");
    let video = urls(&master)
        .into_iter()
        .map(|(url, _)| url)
        .find(|url| url.contains("track=1"))
        .expect("video");
    assert!(
        !video.contains("origin=0"),
        "tagged with the other node: {video}"
    );
    let (status, media) = text(video).await;
    assert_eq!(status, 200, "{media}");
    assert!(
        media.contains(&format!(
            "{}/xrpc/place.stream.playback.getVideoBlob?",
            node.alternate
        )),
        "{media}"
    );

    // Frames come from the video-only variant.
    let thumbnail = client
        .get(format!(
            "{}/api/vod/getThumbnail?uri={}",
            server.url,
            url::form_urlencoded::byte_serialize(keynote.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("GET");
    let mut thumbnail = thumbnail;
    let started = Instant::now();
    while thumbnail.status() == 503 && started.elapsed() < Duration::from_secs(60) {
        thumbnail = client
            .get(thumbnail.url().clone())
            .send()
            .await
            .expect("GET");
    }
    assert!(jpeg(thumbnail).await.width() > 0);

    // Someone watched: the captions' text becomes the transcript on the watch page (for
    // crawlers), each cue once, and search finds words said in the video.
    let page = format!("{}/watch/{}/keynote", server.url, account.did);
    let started = Instant::now();
    let html = loop {
        let html = text(page.clone()).await.1;
        if html.contains("Transcript") || started.elapsed() > Duration::from_secs(60) {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        html.contains("Caption 1: the engine turns Caption 2: the engine turns"),
        "{html}"
    );
    let (status, found) = server.get("listVideos?q=engine").await;
    assert_eq!(status, 200, "{found}");
    let found: Vec<&str> = found["videos"]
        .as_array()
        .expect("videos")
        .iter()
        .filter_map(|v| v["uri"].as_str())
        .collect();
    assert!(found.contains(&keynote.as_str()), "{found:?}");
    server.stop().await;
}
