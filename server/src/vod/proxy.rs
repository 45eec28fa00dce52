//! The playlist proxy: `getPlaylist` fetches the origin's HLS playlists (`VOD_ORIGIN_URL`,
//! or another node that has the video: see `origins`) and rewrites them for players, so
//! that sub-playlists come back through us and media bytes go from the origin to players
//! directly; and the media timeline of a video (its smallest variant's segments), which
//! frames are grabbed from.
//!
//! Sessions: stream.place mints a session id (`sid`) per master playlist request and
//! counts views by it, so master playlists are never cached (each viewer's request
//! reaches the origin and gets a sid of its own); media and subtitle playlists, which
//! carry a viewer's sid in their query, are reused for a few seconds by that query.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use m3u8_rs::Playlist;
use url::Url;

use super::error::{named_origins, origin_error, origin_status};
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

/// Our own query parameter on the playlist URLs we write: the number of the origin the
/// playlist came from (see `origins`); never passed on to an origin.
const ORIGIN_PARAM: &str = "origin";

impl Vod {
    pub(super) fn api_url(&self, export: &str) -> Url {
        Url::parse(&format!(
            "{}/api/vod/{export}",
            self.options.public_url.trim_end_matches('/')
        ))
        .unwrap_or_else(|_| self.options.origin.clone())
    }

    /// The playlist method's URL on origin number `n`.
    fn playlist_url(&self, n: usize) -> Result<Url, VodError> {
        self.origins
            .get(n)
            .and_then(|origin| origin.join(&format!("/xrpc/{PLAYLIST_METHOD}")).ok())
            .ok_or_else(|| VodError::InvalidRequest(format!("there is no origin number {n}")))
    }

    /// `getPlaylist`: the origin's playlist for the query `query` (which names `uri`, and
    /// may carry `track`, `captions`, `sid`, `start`, `end`…), rewritten for players.
    pub async fn playlist(&self, query: &str) -> Result<Bytes, VodError> {
        if let Some(playlist) = self.playlists.get(query).await {
            return Ok(playlist);
        }
        if query.len() > MAX_PLAYLIST_QUERY {
            return Err(VodError::InvalidRequest("the query is too long".into()));
        }
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
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
        let uri: VideoUri = pairs
            .iter()
            .find(|(k, _)| k == "uri")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                VodError::InvalidRequest("uri is required: the video's at:// URI".into())
            })?
            .parse()
            .map_err(|err: crate::atproto::AtprotoError| {
                VodError::InvalidRequest(err.to_string())
            })?;
        // A video an admin took down, or whose creator's account is not active, does not
        // play here either.
        let withheld = self.index.withheld(&uri).await.map_err(|err| {
            tracing::error!(error = %err, "reading the index failed");
            VodError::Unavailable("the index is unavailable right now".into())
        })?;
        if withheld.is_some() {
            return Err(super::error::not_found(format!(
                "{uri} is no longer available"
            )));
        }
        let origin = match pairs.iter().position(|(k, _)| k == ORIGIN_PARAM) {
            Some(at) => Some(pairs.remove(at).1.parse::<usize>().map_err(|_| {
                VodError::InvalidRequest(format!("{ORIGIN_PARAM} must be a number"))
            })?),
            None => None,
        };
        let sub_playlist = pairs.iter().any(|(k, _)| k == "track" || k == "captions");
        let (fetched, n) = if sub_playlist {
            let n = origin.unwrap_or_else(|| self.origins.of(&uri));
            let mut url = self.playlist_url(n)?;
            url.query_pairs_mut().extend_pairs(&pairs);
            (self.fetch_playlist(url).await?, n)
        } else {
            let master = self.fetch_master(&uri, &pairs).await?;
            self.want_transcript(&uri).await;
            master
        };
        let ours = self.api_url("getPlaylist");
        let rewritten = Bytes::from(playlist::rewrite(
            &fetched,
            &ours,
            (ORIGIN_PARAM, &n.to_string()),
        )?);
        if sub_playlist {
            self.playlists
                .insert(query.to_string(), rewritten.clone())
                .await;
        }
        Ok(rewritten)
    }

    /// `uri`'s master playlist (with `pairs` as the query), from the first origin that has
    /// it, and that origin's number. A `BlobNotFound` moves on to the next candidate,
    /// the origins the answer names included; any other failure ends the search.
    pub(super) async fn fetch_master(
        &self,
        uri: &VideoUri,
        pairs: &[(String, String)],
    ) -> Result<(Fetched, usize), VodError> {
        let mut candidates = self.origins.candidates(uri);
        let mut tried = 0;
        let mut last = None;
        while tried < candidates.len() {
            let n = candidates[tried];
            tried += 1;
            let mut url = self.playlist_url(n)?;
            url.query_pairs_mut().extend_pairs(pairs);
            let (status, final_url, body) = self.get(url).await?;
            if status.is_success() {
                self.origins.remember(uri, n);
                let playlist = playlist::parse(&body)?;
                return Ok((
                    Fetched {
                        url: final_url,
                        playlist,
                    },
                    n,
                ));
            }
            let err = origin_status(status, &body);
            if err.name() != "BlobNotFound" {
                return Err(err);
            }
            for named in self.origins.learn(&named_origins(&body)) {
                if !candidates.contains(&named) {
                    candidates.push(named);
                }
            }
            tracing::info!(%uri, origin = n, "an origin lacks this video's blob; trying the next");
            last = Some(err);
        }
        Err(last.unwrap_or_else(|| VodError::Unavailable("no origin is configured".into())))
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
    pub(super) async fn fetch_playlist(&self, url: Url) -> Result<Fetched, VodError> {
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
        let (mut fetched, _) = self
            .fetch_master(uri, &[("uri".to_string(), uri.to_string())])
            .await?;
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
