//! Which origin a video plays from.
//!
//! A blob missing on one stream.place node answers `BlobNotFound`; other nodes may have
//! it. The candidates are, in order: the origin that served the video last time, the
//! configured origin (`VOD_ORIGIN_URL`), the fallbacks (`VOD_FALLBACK_ORIGINS`), and any
//! origin the `BlobNotFound` answer itself names (an `origins` list of URLs). A session
//! id (`sid`) is only good on the node that minted it, so every playlist URL we write
//! carries the number of the origin it came from (`origin=N`), and the sub-playlists a
//! viewer asks for go back to that node.
//!
//! Origins are numbered in one append-only registry: the configured ones first, named
//! ones as they are learned, at most [`MAX_ORIGINS`], so numbers stay valid for as long
//! as the process lives and memory stays bounded.

use std::sync::Mutex;
use std::time::Duration;

use moka::sync::Cache;
use url::Url;

use crate::appview::VideoUri;

/// Most origins the registry holds (configured ones included).
pub const MAX_ORIGINS: usize = 64;
/// Most origins taken from one `BlobNotFound` answer.
const MAX_NAMED: usize = 4;

/// The registry of origins, and the origin each video last played from.
pub struct Origins {
    list: Mutex<Vec<Url>>,
    configured: usize,
    by_video: Cache<VideoUri, usize>,
}

impl Origins {
    /// `primary` (number 0), then `fallbacks`.
    pub fn new(primary: Url, fallbacks: &[Url]) -> Self {
        let mut list = vec![primary];
        for fallback in fallbacks {
            if !list.contains(fallback) && list.len() < MAX_ORIGINS {
                list.push(fallback.clone());
            }
        }
        Self {
            configured: list.len(),
            list: Mutex::new(list),
            by_video: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Url>> {
        self.list
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Origin number `n`, if there is one.
    pub fn get(&self, n: usize) -> Option<Url> {
        self.lock().get(n).cloned()
    }

    /// The origins to try for `video`'s master playlist, by number, in order.
    pub fn candidates(&self, video: &VideoUri) -> Vec<usize> {
        let mut order: Vec<usize> = self.by_video.get(video).into_iter().collect();
        for n in 0..self.configured {
            if !order.contains(&n) {
                order.push(n);
            }
        }
        order
    }

    /// The number of `video`'s origin: the one it last played from, else the primary.
    pub fn of(&self, video: &VideoUri) -> usize {
        self.by_video.get(video).unwrap_or(0)
    }

    /// Remembers that `video` plays from origin `n`.
    pub fn remember(&self, video: &VideoUri, n: usize) {
        self.by_video.insert(video.clone(), n);
    }

    /// Numbers the http(s) origins in `named` (from a `BlobNotFound` answer), adding the
    /// new ones while there is room; returns their numbers.
    pub fn learn(&self, named: &[String]) -> Vec<usize> {
        let mut list = self.lock();
        let mut numbers = Vec::new();
        for text in named.iter().take(MAX_NAMED) {
            let Ok(url) = Url::parse(text) else { continue };
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                continue;
            }
            let origin = match url.join("/") {
                Ok(origin) => origin,
                Err(_) => continue,
            };
            let n = match list.iter().position(|known| *known == origin) {
                Some(n) => n,
                None if list.len() < MAX_ORIGINS => {
                    list.push(origin);
                    list.len() - 1
                }
                None => continue,
            };
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        numbers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("url")
    }

    #[test]
    fn origins_are_numbered_once_and_videos_remember_theirs() {
        let origins = Origins::new(
            url("https://stream.place"),
            &[url("https://b.example"), url("https://stream.place")],
        );
        let video: VideoUri = "at://did:plc:a/place.stream.video/3k".parse().expect("uri");
        assert_eq!(origins.candidates(&video), vec![0, 1]);
        let learned = origins.learn(&[
            "https://c.example/xrpc/whatever".into(),
            "https://b.example".into(),
            "ftp://nope.example".into(),
            "not a url".into(),
        ]);
        assert_eq!(learned, vec![2, 1]);
        assert_eq!(origins.get(2), Some(url("https://c.example/")));
        origins.remember(&video, 2);
        assert_eq!(origins.of(&video), 2);
        assert_eq!(origins.candidates(&video), vec![2, 0, 1]);
        for n in 0..200 {
            origins.learn(&[format!("https://n{n}.example")]);
        }
        assert!(
            origins.get(MAX_ORIGINS).is_none(),
            "the registry is bounded"
        );
    }
}
