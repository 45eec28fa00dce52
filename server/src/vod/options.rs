//! [`VodOptions`]: how VOD runs, from the configuration.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// How VOD runs.
#[derive(Debug, Clone)]
pub struct VodOptions {
    /// The HLS origin (`VOD_ORIGIN_URL`).
    pub origin: Url,
    /// Other origins tried, in order, when the origin lacks a video's blob
    /// (`VOD_FALLBACK_ORIGINS`).
    pub fallback_origins: Vec<Url>,
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
