//! VOD: what turns an indexed `place.stream.video` record into something to watch. The
//! seed's `atmosphereconf-vod` bundle, compiled in (its HTTP face, a native bundle, is
//! [`api`]).
//!
//! # Layout
//!
//! - `options`: [`VodOptions`]; `error`: [`VodError`] and the mappings of the origin's and
//!   PDSes' failures.
//! - `proxy`: `getPlaylist`, the playlist proxy, and the media timeline of a video.
//! - [`playlist`]: parsing, rewriting and reading HLS playlists (m3u8-rs).
//! - [`frames`]: one frame for the price of one segment (init section + byte range,
//!   decoded by ffmpeg with input seeking).
//! - [`previews`]: sprite and storyboard layouts, tiling, WebVTT.
//! - `images`: the images a video has (thumbnail, sprite, storyboard), made by tasks and
//!   served from a [`crate::filecache::FileCache`] capped by `VOD_CACHE_MAX_MB`;
//!   `thumbnail`: where a thumbnail comes from.
//! - `tasks`: VOD's task kinds and its 10-minute job; `remote`: a remote AppView's list.
//! - `transcript`: the text of a video's captions (`vod.transcript`), for its watch page
//!   and search.
//!
//! Thumbnails, sprites and storyboards are made by tasks (`vod.thumbnail`, `vod.sprite`,
//! `vod.storyboard`; concurrency `VOD_FFMPEG_CONCURRENCY`, results kept 24 h, the same
//! input deduplicated), keyed by the record's CID, so an edited record is made again and
//! a cached one is a file read.

pub mod api;
mod error;
pub mod frames;
mod images;
pub mod metrics;
mod options;
mod origins;
pub mod playlist;
pub mod previews;
mod proxy;
mod remote;
mod tasks;
mod thumbnail;
mod transcript;

pub use error::VodError;
pub use images::{Image, Kind, MakeInput};
pub use options::VodOptions;
pub use tasks::{make_task, process_job};
pub use transcript::transcript_task;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

use crate::appview::query::VideoView;
use crate::appview::{VideoIndex, VideoUri};
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::filecache::FileCache;
use crate::tasks::TaskSystem;
use error::not_found;
use frames::FrameGrabber;
use playlist::Timeline;
use previews::Layout;
use proxy::PLAYLIST_TTL;

/// How long an image request waits for its task before answering 503.
pub const IMAGE_WAIT: Duration = Duration::from_secs(15);

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
    timelines: Cache<VideoUri, Arc<Timeline>>,
    /// The origins videos play from, and which one each plays from.
    origins: origins::Origins,
    /// Rewritten media and subtitle playlists by query (a viewer's sid included), for a
    /// few seconds: a player asking again costs the origin nothing.
    playlists: Cache<String, Bytes>,
    /// Images made here although their task had completed (see [`Vod::ensure`]), by
    /// layout key: concurrent requests share one making.
    remakes: Cache<String, Layout>,
}

impl Vod {
    /// The service; its tasks and job are declared by its native bundle ([`api::bundle`]).
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
            origins: origins::Origins::new(options.origin.clone(), &options.fallback_origins),
            timelines: Cache::builder()
                .weigher(|_, timeline: &Arc<Timeline>| {
                    u32::try_from(timeline.weight()).unwrap_or(u32::MAX)
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

    /// The indexed video `uri`.
    pub async fn video(&self, uri: &VideoUri) -> Result<VideoView, VodError> {
        self.index
            .get(uri)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "reading the index failed");
                VodError::Unavailable("the index is unavailable right now".into())
            })?
            .ok_or_else(|| not_found(format!("{uri} is not an indexed video")))
    }
}
