//! What crawlers and feed readers fetch: `/robots.txt`, the sitemap ([`sitemap`]) and the
//! Atom feeds ([`feeds`]).
//!
//! Each document is generated once per minute at most, and only once however many
//! clients ask at the same moment (a cache with single-flight loading), so a crawler
//! walking the sitemap costs one generation. The cache is keyed on the moderation epoch
//! too (`appview::moderation`): a takedown or a hidden account leaves every document at
//! once, while new videos appear within the minute.

pub mod feeds;
pub mod sitemap;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, XrpcError};
use crate::appview::AppView;
use crate::appview::query::ListedVideo;
use app::catalog::VideoSummary;

/// How long a generated document is reused.
const DOCUMENT_TTL: Duration = Duration::from_secs(60);
/// Memory the documents may use: two sitemap pages of 50 000 videos (some 35 MB each),
/// the index and the feeds.
const MAX_DOCUMENT_BYTES: u64 = 96 * 1024 * 1024;

/// Generated documents, by moderation epoch and path.
#[derive(Clone)]
pub struct Documents {
    cache: moka::future::Cache<(u64, String), Bytes>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .time_to_live(DOCUMENT_TTL)
                .max_capacity(MAX_DOCUMENT_BYTES)
                .weigher(|_, body: &Bytes| u32::try_from(body.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }
}

impl Documents {
    /// The document at `path`, from the cache or made by `make` (once, for every
    /// concurrent caller).
    pub async fn get<F>(&self, appview: &AppView, path: &str, make: F) -> Result<Bytes, XrpcError>
    where
        F: Future<Output = Result<Bytes, XrpcError>>,
    {
        let key = (appview.visibility().current(), path.to_string());
        self.cache
            .try_get_with(key, make)
            .await
            .map_err(|err: Arc<XrpcError>| (*err).clone())
    }
}

/// The app's view of a listed video, for its URLs.
pub fn summary(video: &ListedVideo) -> VideoSummary {
    VideoSummary {
        uri: video.uri.clone(),
        did: video.did.clone(),
        rkey: video.rkey.clone(),
        handle: video.handle.clone(),
        creator_name: video.creator_name.clone(),
        avatar_cid: None,
        title: video.title.clone(),
        description: None,
        duration_ms: None,
        created_at: video.created_at.clone(),
        warnings: Vec::new(),
    }
}

/// An XML response of `content_type`, cached by browsers and proxies for a minute.
fn xml(content_type: &'static str, body: Bytes) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `text` without the characters XML 1.0 cannot carry at all, even escaped (control
/// characters other than tab and line breaks): a title holding one would make the whole
/// document unreadable to a strict parser.
pub fn xml_text(text: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    };
    if text.chars().all(allowed) {
        text.into()
    } else {
        text.chars()
            .filter(|c| allowed(*c))
            .collect::<String>()
            .into()
    }
}

/// `/robots.txt`: everything but the API, the dashboard and server functions, except
/// the images previews need; where the sitemap is.
pub(super) async fn robots(State(state): State<AppState>) -> Response {
    let public = state.catalog.public_url();
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        format!(
            "User-agent: *\n\
             Allow: /\n\
             Allow: /api/vod/getThumbnail\n\
             Allow: /api/appview/avatar/\n\
             Disallow: /api/\n\
             Disallow: /admin\n\
             Disallow: /_app/\n\
             \n\
             Sitemap: {public}/sitemap.xml\n"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_xml_cannot_carry_is_dropped() {
        assert_eq!(xml_text("plain <b> & text"), "plain <b> & text");
        assert_eq!(xml_text("a\u{0}b\u{1b}c\td\ne"), "abc\td\ne");
        assert_eq!(xml_text("x\u{FFFF}y"), "xy");
    }
}
