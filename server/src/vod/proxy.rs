//! The playlist proxy: `getPlaylist` fetches the origin's HLS playlists (`VOD_ORIGIN_URL`)
//! and rewrites them for players, so that sub-playlists come back through us and media
//! bytes go from the origin to players directly; and the media timeline of a video (its
//! smallest variant's segments), which frames are grabbed from.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use m3u8_rs::Playlist;
use url::Url;

use super::error::{origin_error, origin_status};
use super::playlist::{self, Fetched, PLAYLIST_METHOD, Timeline};
use super::{Vod, VodError, previews};
use crate::appview::VideoUri;

/// Largest playlist accepted from the origin.
const MAX_PLAYLIST_BYTES: usize = 8 * 1024 * 1024;

/// How long a rewritten playlist is reused.
pub(super) const PLAYLIST_TTL: Duration = Duration::from_secs(10);

/// Most query parameters passed to the origin, and their total length.
const MAX_PLAYLIST_PARAMS: usize = 16;

const MAX_PLAYLIST_QUERY: usize = 4096;

impl Vod {
    pub(super) fn api_url(&self, export: &str) -> Url {
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
        uri.parse::<VideoUri>()
            .map_err(|err| VodError::InvalidRequest(err.to_string()))?;
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
    pub(super) async fn get(
        &self,
        url: Url,
    ) -> Result<(reqwest::StatusCode, Url, Bytes), VodError> {
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
    pub(super) async fn timeline(&self, uri: &VideoUri) -> Result<Arc<Timeline>, VodError> {
        if let Some(timeline) = self.timelines.get(uri).await {
            return Ok(timeline);
        }
        let mut url = self.origin_playlist_url()?;
        url.query_pairs_mut().append_pair("uri", &uri.to_string());
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
        self.timelines.insert(uri.clone(), timeline.clone()).await;
        Ok(timeline)
    }
}
