//! VOD: what turns an indexed `place.stream.video` record into something to watch. The
//! seed's `atmosphereconf-vod` bundle, compiled in (its HTTP face, a native bundle, is
//! `web::vod`).
//!
//! # Layout
//!
//! - [`playlist`]: fetching the origin's HLS playlists (`VOD_ORIGIN_URL`), rewriting them
//!   for players, and reading a media playlist as a timeline of segments.
//! - [`frames`]: one frame for the price of one segment (init section + byte range,
//!   decoded by ffmpeg with input seeking).
//! - [`previews`]: sprite and storyboard layouts, tiling, WebVTT.
//!
//! The images live in a [`crate::filecache::FileCache`] capped by `VOD_CACHE_MAX_MB`.
//!
//! Thumbnails, sprites and storyboards are made by tasks (`vod.thumbnail`, `vod.sprite`,
//! `vod.storyboard`; concurrency `VOD_FFMPEG_CONCURRENCY`, results kept 24 h, the same
//! input deduplicated), keyed by the record's CID, so an edited record is made again and
//! a cached one is a file read.

pub mod frames;
pub mod metrics;
pub mod playlist;
pub mod previews;

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::try_join_all;
use m3u8_rs::Playlist;
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::appview::VideoIndex;
use crate::appview::query::VideoView;
use crate::atproto::AtprotoError;
use crate::atproto::blob::BlobRef;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::{HttpClient, NetError};
use crate::atproto::syntax::{self, AtIdentifier, Cid, Did};
use crate::atproto::xrpc::XrpcClient;
use crate::filecache::FileCache;
use crate::tasks::scheduler::{JobDef, Schedule};
use crate::tasks::{FailureKind, Status, TaskDef, TaskError, TaskFailure, TaskSystem};
use frames::FrameGrabber;
use playlist::{Fetched, PLAYLIST_METHOD, Timeline};
use previews::Layout;

/// The collection VOD plays.
const VIDEO_COLLECTION: &str = "place.stream.video";
/// Largest playlist accepted from the origin.
const MAX_PLAYLIST_BYTES: usize = 8 * 1024 * 1024;
/// Largest thumbnail blob fetched.
const MAX_THUMB_BYTES: usize = 5 * 1024 * 1024;
/// How long an image request waits for its task before answering 503.
pub const IMAGE_WAIT: Duration = Duration::from_secs(15);
/// How long a rewritten playlist is reused.
const PLAYLIST_TTL: Duration = Duration::from_secs(10);
/// How long made images are reused.
const RESULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most query parameters passed to the origin, and their total length.
const MAX_PLAYLIST_PARAMS: usize = 16;
const MAX_PLAYLIST_QUERY: usize = 4096;
/// Videos the 10-minute job looks at, and most tasks it submits per run.
const JOB_VIDEOS: u32 = 50;
const JOB_SUBMISSIONS: usize = 20;

/// How VOD runs.
#[derive(Debug, Clone)]
pub struct VodOptions {
    /// The HLS origin (`VOD_ORIGIN_URL`).
    pub origin: Url,
    /// Our public base URL, for the URLs we write into playlists and WebVTT.
    pub public_url: String,
    /// The ffmpeg executable (`FFMPEG_PATH`).
    pub ffmpeg: PathBuf,
    /// Most ffmpeg runs at once (`VOD_FFMPEG_CONCURRENCY`).
    pub ffmpeg_concurrency: usize,
    /// Longest one ffmpeg run may take.
    pub ffmpeg_timeout: Duration,
    /// Where images are cached.
    pub cache_dir: PathBuf,
    /// The cache's cap in bytes (`VOD_CACHE_MAX_MB`).
    pub cache_max_bytes: u64,
    /// A remote AppView to list videos from (`APPVIEW_URL`), instead of ours.
    pub appview_url: Option<Url>,
}

/// Why a VOD request failed; each variant maps to one status at the edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VodError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The video (or track, or blob) does not exist; the name is the origin's.
    #[error("{1}")]
    NotFound(String, String),
    /// The origin or a PDS failed.
    #[error("{0}")]
    Upstream(String),
    /// The origin or a PDS did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The media could not be decoded.
    #[error("{0}")]
    Media(String),
    /// The image is still being made.
    #[error("the image is being made; try again in a few seconds")]
    Pending,
    /// Something on our side is missing or full (ffmpeg, the disk, the database).
    #[error("{0}")]
    Unavailable(String),
}

impl VodError {
    /// The error's name, which also prefixes task failure messages so the kind survives
    /// the task system.
    pub fn name(&self) -> &str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::NotFound(name, _) => name,
            Self::Upstream(_) => "UpstreamFailure",
            Self::Timeout(_) => "UpstreamTimeout",
            Self::Media(_) => "MediaError",
            Self::Pending => "Processing",
            Self::Unavailable(_) => "Unavailable",
        }
    }

    /// What a client may be told: the request's own mistakes and what does not exist
    /// say what they are; the origin's, ffmpeg's and our own failures are fixed text,
    /// their details (hosts, temporary files, ffmpeg's stderr) kept for the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(message) | Self::NotFound(_, message) => message.clone(),
            Self::Upstream(_) => {
                "the video's origin or its creator's PDS failed; try again later".into()
            }
            Self::Timeout(_) => "the video's origin did not answer in time".into(),
            Self::Media(_) => "the video's media could not be decoded".into(),
            Self::Pending => self.to_string(),
            Self::Unavailable(_) => "video processing is unavailable right now".into(),
        }
    }

    /// The error a failed task's public message (`Name: message`) stands for.
    fn from_task_message(message: &str) -> Self {
        let (name, text) = message.split_once(": ").unwrap_or(("", message));
        let text = text.to_string();
        match name {
            "InvalidRequest" => Self::InvalidRequest(text),
            "VideoNotFound" | "TrackNotFound" | "BlobNotFound" => Self::NotFound(name.into(), text),
            "UpstreamFailure" => Self::Upstream(text),
            "UpstreamTimeout" => Self::Timeout(text),
            "MediaError" => Self::Media(text),
            _ => Self::Unavailable(text),
        }
    }

    /// Whether trying again later could succeed.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Upstream(_) | Self::Timeout(_) | Self::Unavailable(_) | Self::Pending
        )
    }

    fn into_failure(self) -> TaskFailure {
        let message = format!("{}: {}", self.name(), self.public_message());
        let kind = match &self {
            Self::InvalidRequest(_) => FailureKind::Input,
            Self::NotFound(..) => FailureKind::NotFound,
            Self::Upstream(_) | Self::Timeout(_) | Self::Media(_) => FailureKind::Upstream,
            Self::Pending | Self::Unavailable(_) => FailureKind::Internal,
        };
        let failure = if self.is_transient() {
            TaskFailure::retry(message)
        } else {
            TaskFailure::fatal(message)
        };
        failure.kind(kind).because(self)
    }
}

fn not_found(message: impl Into<String>) -> VodError {
    VodError::NotFound("VideoNotFound".into(), message.into())
}

/// A failure to read a thumbnail's record or blob: missing for good, or upstream trouble.
fn blob_error(err: AtprotoError) -> VodError {
    match err {
        err if err.is_not_found() => VodError::NotFound(
            "BlobNotFound".into(),
            "the creator's PDS no longer has this image".into(),
        ),
        AtprotoError::Net(net) => origin_error(net),
        other => VodError::Upstream(other.summary()),
    }
}

/// What VOD makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The video's thumbnail.
    Thumbnail,
    /// The card's 8-frame hover preview.
    Sprite,
    /// The seek bar's previews.
    Storyboard,
}

impl Kind {
    /// The task that makes it.
    pub fn task(self) -> &'static str {
        match self {
            Self::Thumbnail => "vod.thumbnail",
            Self::Sprite => "vod.sprite",
            Self::Storyboard => "vod.storyboard",
        }
    }

    fn image_key(self, cid: &Cid, sheet: usize) -> String {
        match self {
            Self::Thumbnail => format!("thumb-{cid}.jpg"),
            Self::Sprite => format!("sprite-{cid}.jpg"),
            Self::Storyboard => format!("storyboard-{cid}-{sheet}.jpg"),
        }
    }

    fn layout_key(self, cid: &Cid) -> String {
        match self {
            Self::Thumbnail => format!("thumb-{cid}.json"),
            Self::Sprite => format!("sprite-{cid}.json"),
            Self::Storyboard => format!("storyboard-{cid}.json"),
        }
    }
}

/// A task's input: the video and the version of its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeInput {
    /// The video's `at://` URI.
    pub uri: String,
    /// Its record's CID.
    pub cid: Cid,
}

/// An image to serve.
#[derive(Debug, Clone)]
pub struct Image {
    /// JPEG bytes.
    pub bytes: Bytes,
    /// A strong validator: the cache key, which names the record version.
    pub etag: String,
}

/// The VOD service.
pub struct Vod {
    http: HttpClient,
    options: VodOptions,
    index: VideoIndex,
    identity: Arc<IdentityResolver>,
    frames: FrameGrabber,
    cache: FileCache,
    tasks: TaskSystem,
    metrics: metrics::VodMetrics,
    timelines: Cache<String, Arc<Timeline>>,
    /// Rewritten playlists by query, for a few seconds: a player's playlist requests
    /// then cost the origin one request per video and session, not one per viewer.
    playlists: Cache<String, Bytes>,
    /// Images made here although their task had completed (see [`Vod::ensure`]), by
    /// layout key: concurrent requests share one making.
    remakes: Cache<String, Layout>,
}

impl Vod {
    /// The service; its tasks and job are declared by its native bundle (`web::vod`).
    pub fn new(
        options: VodOptions,
        http: HttpClient,
        index: VideoIndex,
        identity: Arc<IdentityResolver>,
        tasks: TaskSystem,
    ) -> std::io::Result<Arc<Self>> {
        let cache = FileCache::open(options.cache_dir.clone(), options.cache_max_bytes)?;
        let metrics = metrics::VodMetrics::default();
        let frames = FrameGrabber::new(
            http.clone(),
            options.ffmpeg.clone(),
            options.ffmpeg_concurrency,
            options.ffmpeg_timeout,
            metrics.clone(),
        );
        Ok(Arc::new(Self {
            http,
            index,
            identity,
            frames,
            cache,
            tasks,
            metrics,
            timelines: Cache::builder()
                .weigher(|uri: &String, timeline: &Arc<Timeline>| {
                    u32::try_from(uri.len() + timeline.weight()).unwrap_or(u32::MAX)
                })
                .max_capacity(64 * 1024 * 1024)
                .time_to_live(Duration::from_secs(600))
                .build(),
            playlists: Cache::builder()
                .max_capacity(64 * 1024 * 1024)
                .weigher(|query: &String, body: &Bytes| {
                    u32::try_from(query.len() + body.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(PLAYLIST_TTL)
                .build(),
            remakes: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            options,
        }))
    }

    /// Registers VOD's metrics for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Brings the gauges up to date (the image cache's size); called before each scrape.
    pub fn refresh_gauges(&self) {
        self.metrics.cache_size(self.cache.size());
    }

    /// The options it runs with.
    pub fn options(&self) -> &VodOptions {
        &self.options
    }

    /// The file cache.
    pub fn cache(&self) -> &FileCache {
        &self.cache
    }

    fn api_url(&self, export: &str) -> Url {
        Url::parse(&format!(
            "{}/api/vod/{export}",
            self.options.public_url.trim_end_matches('/')
        ))
        .unwrap_or_else(|_| self.options.origin.clone())
    }

    /// The origin's URL of the playlist method.
    fn origin_playlist_url(&self) -> Result<Url, VodError> {
        self.options
            .origin
            .join(&format!("/xrpc/{PLAYLIST_METHOD}"))
            .map_err(|_| VodError::Unavailable("VOD_ORIGIN_URL is not a usable URL".into()))
    }

    /// `getPlaylist`: the origin's playlist for the query `query` (which names `uri`, and
    /// may carry `track`, `sid`, `start`, `end`…), rewritten for players.
    pub async fn playlist(&self, query: &str) -> Result<Bytes, VodError> {
        if let Some(playlist) = self.playlists.get(query).await {
            return Ok(playlist);
        }
        if query.len() > MAX_PLAYLIST_QUERY {
            return Err(VodError::InvalidRequest("the query is too long".into()));
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.len() > MAX_PLAYLIST_PARAMS {
            return Err(VodError::InvalidRequest("too many query parameters".into()));
        }
        if pairs
            .iter()
            .any(|(k, v)| k.chars().chain(v.chars()).any(char::is_control))
        {
            return Err(VodError::InvalidRequest(
                "query parameters cannot contain control characters".into(),
            ));
        }
        let uri = pairs
            .iter()
            .find(|(k, _)| k == "uri")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                VodError::InvalidRequest("uri is required: the video's at:// URI".into())
            })?;
        video_uri(uri)?;
        let mut url = self.origin_playlist_url()?;
        url.query_pairs_mut().extend_pairs(&pairs);
        let fetched = self.fetch_playlist(url).await?;
        let rewritten = Bytes::from(playlist::rewrite(&fetched, &self.api_url("getPlaylist"))?);
        self.playlists
            .insert(query.to_string(), rewritten.clone())
            .await;
        Ok(rewritten)
    }

    /// `GET url`: the status, the URL answered from (after redirects) and the body (at
    /// most [`MAX_PLAYLIST_BYTES`]).
    async fn get(&self, url: Url) -> Result<(reqwest::StatusCode, Url, Bytes), VodError> {
        let response = self
            .http
            .send(self.http.request(reqwest::Method::GET, url))
            .await
            .map_err(origin_error)?;
        let (status, answered) = (response.status(), response.url().clone());
        let body = self
            .http
            .read_body(response, Some(MAX_PLAYLIST_BYTES))
            .await
            .map_err(origin_error)?;
        Ok((status, answered, body))
    }

    /// Fetches and parses a playlist, mapping the origin's errors.
    async fn fetch_playlist(&self, url: Url) -> Result<Fetched, VodError> {
        let (status, final_url, body) = self.get(url).await?;
        if !status.is_success() {
            return Err(origin_status(status, &body));
        }
        Ok(Fetched {
            url: final_url,
            playlist: playlist::parse(&body)?,
        })
    }

    /// The media timeline of `uri`: its master playlist, the smallest variant at least
    /// `min_height` tall, and that variant's segments. Kept for 10 minutes.
    async fn timeline(&self, uri: &str) -> Result<Arc<Timeline>, VodError> {
        if let Some(timeline) = self.timelines.get(uri).await {
            return Ok(timeline);
        }
        let mut url = self.origin_playlist_url()?;
        url.query_pairs_mut().append_pair("uri", uri);
        let mut fetched = self.fetch_playlist(url).await?;
        if let Playlist::MasterPlaylist(master) = &fetched.playlist {
            let variant = playlist::pick_variant(master, u64::from(previews::THUMBNAIL_SIZE.1))
                .ok_or_else(|| VodError::Upstream("the master playlist has no variants".into()))?;
            let url = fetched.url.join(variant).map_err(|_| {
                VodError::Upstream(format!("the playlist names an unusable URL: {variant:?}"))
            })?;
            fetched = self.fetch_playlist(url).await?;
        }
        let Playlist::MediaPlaylist(media) = &fetched.playlist else {
            return Err(VodError::Upstream(
                "a variant playlist is itself a master playlist".into(),
            ));
        };
        let timeline = Arc::new(Timeline::new(media, &fetched.url)?);
        self.timelines
            .insert(uri.to_string(), timeline.clone())
            .await;
        Ok(timeline)
    }

    /// The indexed video `uri`.
    pub async fn video(&self, uri: &str) -> Result<VideoView, VodError> {
        video_uri(uri)?;
        self.index
            .get(uri)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "reading the index failed");
                VodError::Unavailable("the index is unavailable right now".into())
            })?
            .ok_or_else(|| not_found(format!("{uri} is not an indexed video")))
    }

    /// The image `kind` (sheet `sheet` of a storyboard) of video `uri`: from the cache,
    /// or made by its task, waiting up to [`IMAGE_WAIT`]; [`VodError::Pending`] after that.
    pub async fn image(&self, kind: Kind, uri: &str, sheet: usize) -> Result<Image, VodError> {
        let video = self.video(uri).await?;
        let key = kind.image_key(&video.cid, sheet);
        let cached = self.cache.read(&key).await;
        self.metrics.cache_lookup(cached.is_some());
        if let Some(bytes) = cached {
            return Ok(Image {
                bytes: bytes.into(),
                etag: key,
            });
        }
        let layout = self.ensure(kind, &video).await?;
        if kind == Kind::Storyboard && sheet >= layout.sheets {
            return Err(VodError::InvalidRequest(format!(
                "this storyboard has {} sheet(s), numbered from 0",
                layout.sheets
            )));
        }
        match self.cache.read(&key).await {
            Some(bytes) => Ok(Image {
                bytes: bytes.into(),
                etag: key,
            }),
            // Evicted between the task and now: make it again.
            None => Err(VodError::Pending),
        }
    }

    /// `getVtt`: the WebVTT of the sprite or the storyboard of `uri`.
    pub async fn vtt(&self, kind: Kind, uri: &str) -> Result<String, VodError> {
        let video = self.video(uri).await?;
        let layout = match self.layout(kind, &video.cid).await {
            Some(layout) => layout,
            None => self.ensure(kind, &video).await?,
        };
        let export = match kind {
            Kind::Storyboard => "getStoryboard",
            _ => "getSprite",
        };
        let base = self.api_url(export);
        Ok(previews::vtt(&layout, |sheet| {
            let mut url = base.clone();
            url.query_pairs_mut().append_pair("uri", uri);
            if kind == Kind::Storyboard {
                url.query_pairs_mut()
                    .append_pair("sheet", &sheet.to_string());
            }
            url.into()
        }))
    }

    async fn layout(&self, kind: Kind, cid: &Cid) -> Option<Layout> {
        let bytes = self.cache.read(&kind.layout_key(cid)).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Submits `kind`'s task for `video` and waits up to [`IMAGE_WAIT`] for its layout.
    async fn ensure(&self, kind: Kind, video: &VideoView) -> Result<Layout, VodError> {
        let input = json!({ "uri": video.uri, "cid": video.cid });
        let task = self
            .tasks
            .submit_and_wait(kind.task(), input, None, IMAGE_WAIT)
            .await
            .map_err(|err| match err {
                TaskError::QueueFull(_) => VodError::Pending,
                other => VodError::Unavailable(format!("submitting a VOD task: {other}")),
            })?;
        match task.status {
            Status::Complete => match self.layout(kind, &video.cid).await {
                Some(layout) => Ok(layout),
                // Made on another server (each keeps its own image cache) or evicted
                // here since: the task's result says done, the files are not here, so
                // make them here now.
                None => tokio::time::timeout(IMAGE_WAIT, self.remake(kind, video))
                    .await
                    .map_err(|_| VodError::Pending)?,
            },
            Status::Failed => Err(VodError::from_task_message(
                task.error.as_deref().unwrap_or("the task failed"),
            )),
            Status::Pending | Status::Running => Err(VodError::Pending),
        }
    }

    /// Makes `kind` of `video` into this server's cache outside the task system, once
    /// for all concurrent callers.
    async fn remake(&self, kind: Kind, video: &VideoView) -> Result<Layout, VodError> {
        let input = MakeInput {
            uri: video.uri.clone(),
            cid: video.cid,
        };
        self.remakes
            .try_get_with(kind.layout_key(&video.cid), async {
                self.make(kind, input).await?;
                self.layout(kind, &video.cid).await.ok_or(VodError::Pending)
            })
            .await
            .map_err(|err: Arc<VodError>| (*err).clone())
    }

    /// Whether a task input may become a row: it must name an indexed video at its
    /// current record version, so junk never reaches the queue.
    async fn admit(&self, input: Value) -> Result<(), TaskError> {
        let input: MakeInput = serde_json::from_value(input)
            .map_err(|err| TaskError::InvalidInput(err.to_string()))?;
        let video = self.video(&input.uri).await.map_err(|err| match err {
            VodError::InvalidRequest(message) => TaskError::InvalidInput(message),
            VodError::NotFound(_, message) => TaskError::NotFound(message),
            other => TaskError::Unavailable(other.public_message()),
        })?;
        if video.cid != input.cid {
            return Err(TaskError::InvalidInput(format!(
                "cid {} is not the current version of {} (that is {})",
                input.cid, input.uri, video.cid
            )));
        }
        Ok(())
    }

    /// Makes `kind` for `input` into the cache (the tasks' handler).
    async fn make(&self, kind: Kind, input: MakeInput) -> Result<Value, VodError> {
        let video = self.video(&input.uri).await?;
        if video.cid != input.cid {
            return Err(not_found(format!(
                "{} changed since this was asked for (now {})",
                input.uri, video.cid
            )));
        }
        let layout = match kind {
            Kind::Thumbnail => self.make_thumbnail(&video).await?,
            Kind::Sprite => {
                let timeline = self.timeline(&video.uri).await?;
                let layout = previews::sprite_layout(timeline.duration);
                self.make_sheets(kind, &video.cid, &timeline, &layout)
                    .await?;
                layout
            }
            Kind::Storyboard => {
                let timeline = self.timeline(&video.uri).await?;
                let layout = previews::storyboard_layout(&timeline);
                self.make_sheets(kind, &video.cid, &timeline, &layout)
                    .await?;
                layout
            }
        };
        let layout_json = serde_json::to_vec(&layout).unwrap_or_default();
        self.store(&kind.layout_key(&video.cid), &layout_json)
            .await?;
        Ok(json!({ "image": kind.image_key(&video.cid, 0), "sheets": layout.sheets }))
    }

    async fn store(&self, key: &str, bytes: &[u8]) -> Result<(), VodError> {
        self.cache.write(key, bytes).await.map_err(|err| {
            tracing::error!(%key, error = %err, "writing to the VOD cache failed");
            VodError::Unavailable(format!("the image cache cannot be written ({err})"))
        })
    }

    /// Each sheet of `layout`: its frames grabbed (in parallel, within the ffmpeg bound),
    /// tiled and stored.
    async fn make_sheets(
        &self,
        kind: Kind,
        cid: &Cid,
        timeline: &Timeline,
        layout: &Layout,
    ) -> Result<(), VodError> {
        for sheet in 0..layout.sheets {
            let tiles: Vec<_> = layout.tiles.iter().filter(|t| t.sheet == sheet).collect();
            let frames = try_join_all(
                tiles
                    .iter()
                    .map(|tile| self.frames.frame(timeline, tile.at, tile.w, tile.h)),
            )
            .await?;
            let image = previews::sheet(&tiles, &frames);
            let jpeg = previews::jpeg(&image, 80)
                .map_err(|err| VodError::Media(format!("encoding the sheet: {err}")))?;
            self.store(&kind.image_key(cid, sheet), &jpeg).await?;
        }
        Ok(())
    }

    /// The record's thumbnail blob, else its livestream's, else a frame from a tenth of
    /// the way in (clamped: not the black first frame, not past the end).
    ///
    /// A frame stands in only when there is no usable blob: when the PDS fails or is slow,
    /// the attempt fails and is retried, so a passing outage does not replace the
    /// creator's thumbnail with a frame for good.
    async fn make_thumbnail(&self, video: &VideoView) -> Result<Layout, VodError> {
        let blob = match &video.thumb {
            Some(thumb) => self.blob_jpeg(&video.did, &thumb.cid).await,
            None => Err(not_found("no thumbnail blob")),
        };
        let blob = match (blob, &video.livestream) {
            (Err(err), _) if err.is_transient() => return Err(err),
            (Ok(jpeg), _) => Ok(jpeg),
            (Err(_), Some(livestream)) => self.livestream_thumb(&livestream.uri).await,
            (Err(err), None) => Err(err),
        };
        let jpeg = match blob {
            Ok(jpeg) => jpeg,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::debug!(uri = %video.uri, error = %err, "no thumbnail blob; taking a frame");
                let timeline = self.timeline(&video.uri).await?;
                let at = thumbnail_time(timeline.duration);
                let (w, h) = previews::THUMBNAIL_SIZE;
                let frame = self.frames.frame(&timeline, at, w, h).await?;
                previews::jpeg(&frame, 85)
                    .map_err(|err| VodError::Media(format!("encoding the thumbnail: {err}")))?
            }
        };
        self.store(&Kind::Thumbnail.image_key(&video.cid, 0), &jpeg)
            .await?;
        Ok(Layout {
            duration: video.duration_ms.unwrap_or(0) as f64 / 1000.0,
            tiles: Vec::new(),
            sheets: 1,
        })
    }

    /// Blob `cid` of `did`, checked against its CID, as a JPEG (other image types are
    /// converted).
    async fn blob_jpeg(&self, did: &Did, cid: &Cid) -> Result<Vec<u8>, VodError> {
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(did.clone()))
            .await
            .map_err(blob_error)?;
        let bytes = XrpcClient::new(self.http.clone(), identity.pds)
            .get_blob(did, cid, MAX_THUMB_BYTES)
            .await
            .map_err(blob_error)?;
        if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            return Ok(bytes.to_vec());
        }
        tokio::task::spawn_blocking(move || {
            let image = previews::decode_untrusted(&bytes).map_err(|err| {
                VodError::Media(format!("the thumbnail blob is not a usable image: {err}"))
            })?;
            previews::jpeg(&image, 85)
                .map_err(|err| VodError::Media(format!("converting the thumbnail: {err}")))
        })
        .await
        .map_err(|err| VodError::Unavailable(format!("converting the thumbnail: {err}")))?
    }

    /// The `thumb` of the `place.stream.livestream` record at `uri`.
    async fn livestream_thumb(&self, uri: &str) -> Result<Vec<u8>, VodError> {
        let (did, collection, rkey) = record_parts(uri)
            .ok_or_else(|| VodError::InvalidRequest(format!("not a record URI: {uri}")))?;
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(did.clone()))
            .await
            .map_err(blob_error)?;
        let record = XrpcClient::new(self.http.clone(), identity.pds)
            .get_record(&did, &collection, &rkey)
            .await
            .map_err(blob_error)?;
        let thumb = record
            .value
            .get("thumb")
            .and_then(|thumb| BlobRef::deserialize(thumb).ok())
            .ok_or_else(|| not_found("the livestream has no thumbnail"))?;
        self.blob_jpeg(&did, &thumb.cid).await
    }

    /// The 10-minute job: thumbnails and sprites for the newest videos that lack them, so
    /// the first viewer does not wait.
    pub async fn process_missing(&self) -> Result<usize, VodError> {
        let page = self
            .index
            .list(&crate::appview::query::VideoQuery {
                limit: JOB_VIDEOS,
                ..Default::default()
            })
            .await
            .map_err(|err| VodError::Unavailable(err.to_string()))?;
        let mut submitted = 0;
        for video in &page.videos {
            for kind in [Kind::Thumbnail, Kind::Sprite] {
                if submitted >= JOB_SUBMISSIONS {
                    return Ok(submitted);
                }
                if self.cache.path(&kind.layout_key(&video.cid)).is_some() {
                    continue;
                }
                let input = json!({ "uri": video.uri, "cid": video.cid });
                self.tasks
                    .submit(kind.task(), input)
                    .await
                    .map_err(|err| VodError::Unavailable(err.to_string()))?;
                submitted += 1;
            }
        }
        Ok(submitted)
    }

    /// `listVideos` from the remote AppView at `APPVIEW_URL`, passing `query` on.
    pub async fn remote_videos(&self, base: &Url, query: &str) -> Result<Value, VodError> {
        let mut url = Url::parse(&format!(
            "{}/listVideos",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| VodError::Unavailable("APPVIEW_URL is not a usable URL".into()))?;
        url.set_query(Some(query).filter(|q| !q.is_empty()));
        let (status, _, body) = self.get(url).await?;
        if !status.is_success() {
            return Err(VodError::Upstream(format!(
                "the AppView at APPVIEW_URL answered {status}"
            )));
        }
        serde_json::from_slice(&body).map_err(|_| {
            VodError::Upstream("the AppView at APPVIEW_URL did not answer JSON".into())
        })
    }
}

/// Where a thumbnail frame is taken: a tenth of the way in, but at least a second in
/// (not the black first frame) and half a second before the end, whichever fits; any
/// duration, even zero or a few frames long, gives a time within the video.
fn thumbnail_time(duration: f64) -> f64 {
    let duration = if duration.is_finite() {
        duration.max(0.0)
    } else {
        0.0
    };
    (duration * 0.1)
        .max(duration.min(1.0))
        .min((duration - 0.5).max(0.0))
}

/// The task that makes `kind`, calling back into `vod`.
pub fn make_task(vod: Weak<Vod>, kind: Kind) -> TaskDef {
    let (concurrency, timeout) = match (&vod.upgrade(), kind) {
        (Some(vod), Kind::Storyboard) => (vod.options.ffmpeg_concurrency, Duration::from_secs(900)),
        (Some(vod), _) => (vod.options.ffmpeg_concurrency, Duration::from_secs(180)),
        (None, _) => (1, Duration::from_secs(180)),
    };
    let admitting = vod.clone();
    TaskDef::typed(kind.task(), move |input: MakeInput, _ctx| {
        let vod = vod.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| TaskFailure::retry("shutting down"))?;
            vod.make(kind, input).await.map_err(VodError::into_failure)
        }
    })
    .admit(move |input| {
        let vod = admitting.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| TaskError::Unavailable("shutting down".into()))?;
            vod.admit(input).await
        }
    })
    .concurrency(u32::try_from(concurrency).unwrap_or(1))
    .cache_ttl(RESULT_TTL)
    .timeout(timeout)
    .max_attempts(2)
    .public(true)
}

/// The 10-minute job.
pub fn process_job(vod: Weak<Vod>) -> JobDef {
    JobDef::new(
        "vod.syncAndProcessVideos",
        Schedule::Every(Duration::from_secs(600)),
        move |_| {
            let vod = vod.clone();
            async move {
                let Some(vod) = vod.upgrade() else {
                    return Ok(());
                };
                let submitted = vod.process_missing().await.map_err(|e| e.to_string())?;
                tracing::info!(submitted, "VOD: previews queued for videos that lack them");
                Ok(())
            }
        },
    )
}

/// `(did, rkey)` of a `place.stream.video` URI, or a 400.
pub fn video_uri(uri: &str) -> Result<(Did, String), VodError> {
    match record_parts(uri) {
        Some((did, collection, rkey)) if collection == VIDEO_COLLECTION => Ok((did, rkey)),
        _ => Err(VodError::InvalidRequest(format!(
            "{uri:?} is not a video URI: expected at://did/{VIDEO_COLLECTION}/rkey"
        ))),
    }
}

/// The DID, collection and record key of a record's `at://did/collection/rkey` URI.
fn record_parts(uri: &str) -> Option<(Did, String, String)> {
    let parsed = syntax::at_uri(uri).ok()?;
    let AtIdentifier::Did(did) = parsed.authority() else {
        return None;
    };
    let did = syntax::did(did.as_str()).ok()?;
    let collection = parsed.collection()?.as_str().to_string();
    let rkey = parsed.rkey()?.as_str().to_string();
    // Nothing past the record key (a fragment, another segment).
    (format!("at://{did}/{collection}/{rkey}") == uri).then_some((did, collection, rkey))
}

fn origin_error(err: NetError) -> VodError {
    match err {
        NetError::Timeout(host) => VodError::Timeout(format!("{host} did not answer in time")),
        other => VodError::Upstream(other.to_string()),
    }
}

/// The error for an origin's non-success answer: its XRPC error name when it sends one.
fn origin_status(status: reqwest::StatusCode, body: &[u8]) -> VodError {
    #[derive(Deserialize)]
    struct XrpcBody {
        error: String,
    }
    let name = serde_json::from_slice::<XrpcBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    match name.as_str() {
        "VideoNotFound" | "TrackNotFound" | "BlobNotFound" | "RecordNotFound" => {
            VodError::NotFound(
                if name == "RecordNotFound" {
                    "VideoNotFound".into()
                } else {
                    name.clone()
                },
                format!("the origin has no such video ({name})"),
            )
        }
        "InvalidSession" => VodError::InvalidRequest(
            "the origin refused the playlist session (sid); start again from the video's playlist"
                .into(),
        ),
        _ if status == reqwest::StatusCode::NOT_FOUND => not_found("the origin has no such video"),
        _ if status.is_client_error() => VodError::InvalidRequest(format!(
            "the origin refused the request ({status}{})",
            if name.is_empty() {
                String::new()
            } else {
                format!(" {name}")
            }
        )),
        _ => VodError::Upstream(format!("the origin failed ({status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_thumbnail_is_final_and_upstream_trouble_is_retried() {
        let gone = blob_error(AtprotoError::BlobNotFound("gone".into()));
        assert!(!gone.is_transient(), "a frame stands in: {gone:?}");
        let slow = blob_error(AtprotoError::Net(NetError::Timeout("pds.test".into())));
        assert!(matches!(slow, VodError::Timeout(_)) && slow.is_transient());
        let down = blob_error(AtprotoError::Net(NetError::Unreachable {
            host: "pds.test".into(),
            reason: "connection refused".into(),
        }));
        assert!(matches!(down, VodError::Upstream(_)));
        assert!(down.into_failure().retryable, "the task tries again later");
    }

    #[test]
    fn a_thumbnail_is_taken_inside_any_video() {
        for duration in [
            0.0,
            0.04,
            0.5,
            1.0,
            1.2,
            1.49,
            1.5,
            3.0,
            30.0,
            3600.0,
            -1.0,
            f64::NAN,
        ] {
            let at = thumbnail_time(duration);
            assert!(
                at >= 0.0 && (at <= duration.max(0.0) || !duration.is_finite()),
                "{duration}: {at}"
            );
        }
        assert_eq!(thumbnail_time(30.0), 3.0);
        assert_eq!(thumbnail_time(5.0), 1.0);
    }

    #[test]
    fn video_uris_are_checked() {
        assert_eq!(
            video_uri("at://did:plc:abc/place.stream.video/3kabc").expect("ok"),
            (syntax::did("did:plc:abc").expect("did"), "3kabc".into())
        );
        for bad in [
            "",
            "https://x/y",
            "at://did:plc:abc/app.bsky.feed.post/3k",
            "at://alice.test/place.stream.video/3k",
            "at://did:plc:abc/place.stream.video/3k/extra",
            "at://did:plc:abc/place.stream.video",
        ] {
            assert!(video_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_errors_keep_their_kind_through_the_task_system() {
        let err = origin_status(
            reqwest::StatusCode::NOT_FOUND,
            br#"{"error":"TrackNotFound","message":"x"}"#,
        );
        assert_eq!(err.name(), "TrackNotFound");
        let message = format!("{}: {err}", err.name());
        assert_eq!(
            VodError::from_task_message(&message).name(),
            "TrackNotFound"
        );
        let session = origin_status(
            reqwest::StatusCode::BAD_REQUEST,
            br#"{"error":"InvalidSession"}"#,
        );
        assert!(matches!(session, VodError::InvalidRequest(_)));
        let down = origin_status(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert!(matches!(down, VodError::Upstream(_)));
    }
}
