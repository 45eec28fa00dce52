//! VOD's API: the seed's `atmosphereconf-vod` bundle as a native bundle under
//! `/api/vod/` (endpoints `listVideos`, `getPlaylist`, `getThumbnail`, `getSprite`,
//! `getVtt`, `getStoryboard`, `shareVideo`, `shareCreator`; tasks `thumbnail`, `sprite`,
//! `storyboard`, and the internal `transcript`; job `syncAndProcessVideos`; its metrics).
//!
//! Images answer as soon as they exist (waiting up to 15 s for their task), else `503`
//! with `Retry-After`; a cached image is a file read with a strong `ETag` (the cache key,
//! which names the record's version) and a long `Cache-Control`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Kind, Vod, VodError, make_task, process_job, transcript_task};
use crate::api::XrpcError;
use crate::api::native::{Call, NativeBundle, Reply, Verb, bind, json_reply};
use crate::appview::AppView;
use crate::appview::VideoUri;
use crate::atproto::syntax;

/// How long browsers and proxies keep an image before revalidating it.
const IMAGE_CACHE_CONTROL: &str = "public, max-age=86400, stale-while-revalidate=604800";
/// Seconds a client is told to wait while an image is made.
const RETRY_AFTER_SECS: u32 = 5;

struct Api {
    vod: Arc<Vod>,
    appview: Arc<AppView>,
}

/// VOD as a native bundle.
pub fn bundle(vod: Arc<Vod>, appview: Arc<AppView>) -> NativeBundle {
    let weak = Arc::downgrade(&vod);
    let (registering, refreshing) = (vod.clone(), vod.clone());
    let api = Arc::new(Api { vod, appview });
    NativeBundle::new(
        "vod",
        &["the HLS origin (VOD_ORIGIN_URL)", "creators' PDSes"],
    )
    .endpoint("listVideos", Verb::Get, bind(&api, list_videos))
    .endpoint("getPlaylist", Verb::Get, bind(&api, get_playlist))
    .endpoint("getThumbnail", Verb::Get, bind(&api, get_thumbnail))
    .endpoint("getSprite", Verb::Get, bind(&api, get_sprite))
    .endpoint("getStoryboard", Verb::Get, bind(&api, get_storyboard))
    .endpoint("getVtt", Verb::Get, bind(&api, get_vtt))
    .endpoint("shareVideo", Verb::Get, bind(&api, share_video))
    .endpoint("shareCreator", Verb::Get, bind(&api, share_creator))
    .task(
        "thumbnail",
        Verb::Post,
        make_task(weak.clone(), Kind::Thumbnail),
    )
    .task("sprite", Verb::Post, make_task(weak.clone(), Kind::Sprite))
    .task(
        "storyboard",
        Verb::Post,
        make_task(weak.clone(), Kind::Storyboard),
    )
    .task("transcript", Verb::Post, transcript_task(weak.clone()))
    .job("syncAndProcessVideos", process_job(weak))
    .metrics(
        move |registry| registering.register_metrics(registry),
        move || refreshing.refresh_gauges(),
    )
}

impl From<VodError> for XrpcError {
    /// The public message only; the details of upstream, media and our own failures go
    /// to the log.
    fn from(err: VodError) -> Self {
        let status = match &err {
            VodError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            VodError::NotFound(..) => StatusCode::NOT_FOUND,
            VodError::Upstream(_) | VodError::Media(_) => StatusCode::BAD_GATEWAY,
            VodError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            VodError::Pending | VodError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let name = err.name().to_string();
        let public = err.public_message();
        let error = XrpcError::new(status, name, public.clone());
        let error = if matches!(err, VodError::Pending) {
            error.retry_after(RETRY_AFTER_SECS)
        } else {
            error
        };
        let cause = err.to_string();
        if cause == public {
            error
        } else {
            error.because(cause)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UriParams {
    uri: VideoUri,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SheetParams {
    uri: VideoUri,
    #[serde(default)]
    sheet: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VttParams {
    uri: VideoUri,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorParams {
    actor: String,
}

async fn list_videos(api: Arc<Api>, call: Call) -> Reply {
    match &api.vod.options().appview_url {
        Some(base) => json_reply(
            api.vod
                .remote_videos(base, call.parts.uri.query().unwrap_or_default())
                .await?,
        ),
        None => crate::appview::api::video_page(&api.appview, &call).await,
    }
}

async fn get_playlist(api: Arc<Api>, call: Call) -> Reply {
    let query = call.parts.uri.query().unwrap_or_default();
    let playlist = api.vod.playlist(query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        playlist,
    )
        .into_response())
}

/// An image, or 304 when the client has this version.
async fn image(api: &Api, call: &Call, kind: Kind, uri: &VideoUri, sheet: usize) -> Reply {
    let image = match api.vod.image(kind, uri, sheet).await {
        Ok(image) => image,
        Err(err) => return Err(err.into()),
    };
    let etag = format!("\"{}\"", image.etag);
    let fresh = call
        .parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(image.bytes))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(IMAGE_CACHE_CONTROL),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

async fn get_thumbnail(api: Arc<Api>, call: Call) -> Reply {
    let params: UriParams = call.query()?;
    image(&api, &call, Kind::Thumbnail, &params.uri, 0).await
}

async fn get_sprite(api: Arc<Api>, call: Call) -> Reply {
    let params: UriParams = call.query()?;
    image(&api, &call, Kind::Sprite, &params.uri, 0).await
}

async fn get_storyboard(api: Arc<Api>, call: Call) -> Reply {
    let params: SheetParams = call.query()?;
    image(&api, &call, Kind::Storyboard, &params.uri, params.sheet).await
}

async fn get_vtt(api: Arc<Api>, call: Call) -> Reply {
    let params: VttParams = call.query()?;
    let kind = match params.kind.as_deref() {
        None | Some("sprite") => Kind::Sprite,
        Some("storyboard") => Kind::Storyboard,
        Some(other) => {
            return Err(XrpcError::invalid_request(format!(
                "kind must be sprite or storyboard, not {other:?}"
            )));
        }
    };
    match api.vod.vtt(kind, &params.uri).await {
        Ok(vtt) => Ok((
            [
                (header::CONTENT_TYPE, "text/vtt; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            ],
            vtt,
        )
            .into_response()),
        Err(err) => Err(err.into()),
    }
}

/// `shareVideo`: the canonical watch page, which carries the link-preview tags.
async fn share_video(_api: Arc<Api>, call: Call) -> Reply {
    let params: UriParams = call.query()?;
    let (did, rkey) = (params.uri.did(), params.uri.rkey());
    Ok(Redirect::to(&format!("/watch/{did}/{rkey}")).into_response())
}

/// `shareCreator`: the creator's page.
async fn share_creator(_api: Arc<Api>, call: Call) -> Reply {
    let params: ActorParams = call.query()?;
    let actor =
        syntax::actor(&params.actor).map_err(|err| XrpcError::invalid_request(err.to_string()))?;
    Ok(Redirect::to(&format!("/profile/{actor}")).into_response())
}
