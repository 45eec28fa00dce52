//! A local stream.place origin: ffmpeg-made HLS fixtures served at stream.place's XRPC
//! paths, in every shape origins really send (see `vod::playlist`), chosen by the video's
//! record key:
//!
//! - `cmaf`: CMAF in one file with `EXT-X-BYTERANGE`, URLs relative without a slash;
//! - `segments`: one fMP4 file per segment, root-relative URLs;
//! - `ts`: MPEG-TS segments at absolute URLs on a second server (a "CDN");
//! - `session`: like `cmaf`, but a media playlist asked for without `sid` is answered with
//!   a 302 adding one, and a wrong `sid` with `400 InvalidSession`;
//! - `corrupt`: segments of garbage; `broken`: HTTP 500; `hang`: never answers;
//! - `short`: one segment said to last 1.2 s (a video too short for the usual thumbnail
//!   time); `sneaky`: "segments" that are a playlist naming local files; `bigrange`: an
//!   `EXT-X-MAP` byte range that overflows;
//! - anything else: `404 VideoNotFound`.
//!
//! Fixtures are made once per machine (60 s of ffmpeg's `testsrc2` at 640×360, H.264 +
//! AAC, a keyframe every 2 s, 4 s segments) and cached outside the clone, in
//! `$STREAMHUT_FIXTURES_DIR` or `~/.cache/streamhut/fixtures`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

/// What a fixture set is made of.
#[derive(Debug, Clone, Copy)]
pub struct FixtureSpec {
    /// Its length in seconds.
    pub seconds: u32,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
}

/// The tests' fixtures.
pub const TEST_FIXTURE: FixtureSpec = FixtureSpec {
    seconds: 60,
    width: 640,
    height: 360,
};
/// Seconds of video in the tests' fixtures.
pub const FIXTURE_SECONDS: f64 = TEST_FIXTURE.seconds as f64;
/// The fixtures' format version: bump to remake them.
const FIXTURE_VERSION: &str = "v1";

/// `ffmpeg`, or `FFMPEG_PATH`.
pub fn ffmpeg() -> PathBuf {
    std::env::var_os("FFMPEG_PATH").map_or_else(|| "ffmpeg".into(), PathBuf::from)
}

fn run(command: &mut Command) {
    let output = command.output().expect("run ffmpeg");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The tests' fixture directory, made if needed.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fixture_dir(TEST_FIXTURE))
}

/// The directory of `spec`'s fixtures (`source.mp4` and the three HLS encodings), made
/// if needed.
pub fn fixture_dir(spec: FixtureSpec) -> PathBuf {
    let root = std::env::var_os("STREAMHUT_FIXTURES_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/streamhut/fixtures")
        },
        PathBuf::from,
    );
    let dir = root.join(format!(
        "{FIXTURE_VERSION}-{}s-{}x{}",
        spec.seconds, spec.width, spec.height
    ));
    if dir.join("done").exists() {
        return dir;
    }
    std::fs::create_dir_all(&root).expect("fixtures dir");
    let work = tempfile::tempdir_in(&root).expect("work dir");
    let w = work.path();
    let seconds = spec.seconds.to_string();
    run(Command::new(ffmpeg())
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate=24",
            spec.width, spec.height
        ))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds, "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", "48", "-keyint_min", "48", "-sc_threshold", "0"])
        .args([
            "-crf", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .arg(w.join("source.mp4")));
    let hls = |kind: &str, extra: &[&str], segment: &str| {
        run(Command::new(ffmpeg())
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(w.join("source.mp4"))
            .args(["-c", "copy", "-f", "hls", "-hls_time", "4"])
            .args(["-hls_playlist_type", "vod"])
            .args(extra)
            .arg("-hls_segment_filename")
            .arg(w.join(segment))
            .arg(w.join(format!("{kind}.m3u8"))));
    };
    hls(
        "cmaf",
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_flags",
            "single_file",
            "-hls_fmp4_init_filename",
            "cmaf-init.mp4",
        ],
        "cmaf-video.mp4",
    );
    hls(
        "segments",
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "seg-init.mp4",
        ],
        "seg-%03d.m4s",
    );
    hls("ts", &["-hls_segment_type", "mpegts"], "ts-%03d.ts");
    std::fs::write(w.join("garbage.mp4"), vec![0x47u8; 64 * 1024]).expect("garbage");
    std::fs::write(w.join("done"), FIXTURE_VERSION).expect("done");
    let work = work.keep();
    // Another process may have made them meanwhile: keep theirs.
    if std::fs::rename(&work, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    dir
}

/// A running origin.
pub struct Origin {
    /// Its base URL (`VOD_ORIGIN_URL`).
    pub url: String,
    /// Media requests it answered, by file name (to check what players and we fetched).
    pub hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct OriginState {
    dir: PathBuf,
    base: String,
    cdn: String,
    hits: Arc<AtomicUsize>,
}

/// Starts the origin (and its CDN) on loopback, serving the tests' fixtures.
pub async fn start() -> Origin {
    start_with(fixtures().to_path_buf()).await
}

/// Starts the origin (and its CDN) on loopback, serving the fixtures in `dir`.
pub async fn start_with(dir: PathBuf) -> Origin {
    let cdn_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cdn = format!("http://{}", cdn_listener.local_addr().expect("addr"));
    let cdn_app = Router::new().nest_service("/blobs", ServeDir::new(&dir));
    tokio::spawn(async move { axum::serve(cdn_listener, cdn_app).await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let state = OriginState {
        dir: dir.clone(),
        base: base.clone(),
        cdn,
        hits: hits.clone(),
    };
    let app = Router::new()
        .route(
            "/xrpc/place.stream.playback.getVideoPlaylist",
            get(playlist),
        )
        .with_state(state)
        .nest_service("/xrpc", ServeDir::new(&dir))
        .nest_service("/media", ServeDir::new(&dir));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Origin { url: base, hits }
}

fn xrpc_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        axum::Json(
            serde_json::json!({ "error": error, "message": format!("{error} (test origin)") }),
        ),
    )
        .into_response()
}

async fn playlist(
    State(state): State<OriginState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    state.hits.fetch_add(1, Ordering::Relaxed);
    let Some(uri) = params.get("uri") else {
        return xrpc_error(StatusCode::BAD_REQUEST, "InvalidRequest");
    };
    let shape = uri.rsplit('/').next().unwrap_or_default();
    match shape {
        "broken" => return xrpc_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        "hang" => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            return StatusCode::OK.into_response();
        }
        "cmaf" | "segments" | "ts" | "session" | "corrupt" | "short" | "sneaky" | "bigrange" => {}
        _ => return xrpc_error(StatusCode::NOT_FOUND, "VideoNotFound"),
    }
    let encoded: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let Some(track) = params.get("track") else {
        let variant = match shape {
            "segments" => {
                format!("/xrpc/place.stream.playback.getVideoPlaylist?uri={encoded}&track=1")
            }
            "ts" => format!(
                "{}/xrpc/place.stream.playback.getVideoPlaylist?uri={encoded}&track=1",
                state.base
            ),
            "session" => format!("place.stream.playback.getVideoPlaylist?uri={encoded}&track=1"),
            _ => format!("place.stream.playback.getVideoPlaylist?uri={encoded}&track=1&sid=s1"),
        };
        let master = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",URI=\"place.stream.playback.getVideoPlaylist?uri={encoded}&track=9&sid=s1\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.42c01e,mp4a.40.2\",SUBTITLES=\"subs\"\n{variant}\n"
        );
        return m3u8(master);
    };
    if track != "1" {
        return xrpc_error(StatusCode::NOT_FOUND, "TrackNotFound");
    }
    if shape == "session" {
        match params.get("sid").map(String::as_str) {
            None => {
                let location = format!(
                    "/xrpc/place.stream.playback.getVideoPlaylist?uri={encoded}&track=1&sid=fresh"
                );
                return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            }
            Some("fresh") => {}
            Some(_) => return xrpc_error(StatusCode::BAD_REQUEST, "InvalidSession"),
        }
    }
    let file = match shape {
        "segments" | "short" | "sneaky" => "segments.m3u8",
        "ts" => "ts.m3u8",
        _ => "cmaf.m3u8",
    };
    let Ok(text) = std::fs::read_to_string(state.dir.join(file)) else {
        return xrpc_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError");
    };
    let text = match shape {
        "segments" => text
            .replace("seg-init.mp4", "/media/seg-init.mp4")
            .replace("\nseg-", "\n/media/seg-"),
        "ts" => text.replace("\nts-", &format!("\n{}/blobs/ts-", state.cdn)),
        "corrupt" => text
            .replace("cmaf-video.mp4", "garbage.mp4")
            .replace("\n#EXT-X-BYTERANGE:", "\n#EXT-X-BYTERANGE-IGNORED:"),
        "short" => {
            let first = text.find("\n#EXTINF").unwrap_or(text.len());
            let second = text[first + 1..]
                .find("\n#EXTINF")
                .map_or(text.len(), |at| first + 1 + at);
            let head = text[..second].replace("#EXT-X-TARGETDURATION:4", "#EXT-X-TARGETDURATION:2");
            let head = head
                .lines()
                .map(|line| if line.starts_with("#EXTINF") { "#EXTINF:1.200000," } else { line })
                .collect::<Vec<_>>()
                .join("\n");
            format!("{head}\n#EXT-X-ENDLIST\n")
                .replace("seg-init.mp4", "/media/seg-init.mp4")
                .replace("\nseg-", "\n/media/seg-")
        }
        "sneaky" => text
            .lines()
            .map(|line| {
                if line.starts_with("seg-") {
                    "/media/segments.m3u8".to_string()
                } else if line.starts_with("#EXT-X-MAP") {
                    String::new()
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "bigrange" => text
            .lines()
            .map(|line| {
                if line.starts_with("#EXT-X-MAP") {
                    "#EXT-X-MAP:URI=\"cmaf-video.mp4\",BYTERANGE=\"18446744073709551615@18446744073709551615\""
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text,
    };
    m3u8(text)
}

fn m3u8(text: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        text,
    )
        .into_response()
}

/// The stream.place-shaped origin (`end2end/network/origin.mjs`, the one the browser
/// tests play from): separate audio renditions, a subtitles group, a session id per
/// viewer, and a second node that has what the first answers `BlobNotFound` for. One per
/// test binary, started on first use; it stops when this process's end closes its stdin.
pub struct StreamPlace {
    /// The node `VOD_ORIGIN_URL` points at.
    pub url: String,
    /// The node it names when it lacks a blob.
    pub alternate: String,
    _stdin: std::sync::Mutex<std::process::ChildStdin>,
}

/// The stream.place-shaped origin of this test binary.
pub fn stream_place() -> &'static StreamPlace {
    static ORIGIN: OnceLock<StreamPlace> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        use std::io::BufRead;
        let end2end = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end");
        let mut child = Command::new("node")
            .arg("network/origin.mjs")
            .current_dir(&end2end)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start node end2end/network/origin.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(json) = line.strip_prefix("READY ") {
                    let _ = tx.send(json.to_string());
                }
            }
            drop(child);
        });
        let json = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the stream.place origin did not print READY within 120 s");
        let ready: serde_json::Value = serde_json::from_str(&json).expect("READY json");
        StreamPlace {
            url: ready["url"].as_str().expect("url").to_string(),
            alternate: ready["alternate"].as_str().expect("alternate").to_string(),
            _stdin: std::sync::Mutex::new(stdin),
        }
    })
}
