//! The AppView's API: its native bundle (`/api/appview/…`, with the names the original
//! bundle used; see [`bundle`]). Reads are public; `init`, `registerCreator`,
//! `unregisterCreator`, `triggerSync`, `registerHost`, `takedownVideo` and `restoreVideo`
//! need an admin ([`crate::auth`]). The bundle also declares the dashboard's actions, its
//! metrics, and the firehose as background work.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::query::{DEFAULT_LIMIT, MAX_LIMIT, VideoQuery};
use super::{AppView, AppViewError, VideoUri, firehose, hosts, sync};
use crate::api::XrpcError;
use crate::api::native::{AdminForm, Call, NativeBundle, Reply, Verb, bind, json_reply};
use crate::api::params::bounded;
use crate::atproto::syntax;
use crate::auth::AdminAuth;

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = app::catalog::MAX_QUERY_CHARS;
const MAX_TAG_CHARS: usize = app::catalog::MAX_TAG_CHARS;

/// What the API's handlers share.
struct Api {
    appview: Arc<AppView>,
    auth: Arc<AdminAuth>,
}

/// The AppView as a native bundle: `/api/appview` and its exports (URLs and JSON are the
/// original bundle's), the sync task and the 15-minute job, the avatar route, the
/// dashboard's actions, its metrics, and the firehose (when `APPVIEW_FIREHOSE` is on).
pub fn bundle(appview: Arc<AppView>, auth: Arc<AdminAuth>) -> NativeBundle {
    let concurrency = appview.sync_concurrency();
    let weak = Arc::downgrade(&appview);
    let follow_firehose = appview.options.firehose;
    let api = Arc::new(Api {
        appview: appview.clone(),
        auth,
    });
    let (avatars, metrics, actions) = (appview.clone(), appview.clone(), appview);
    let firehose = weak.clone();
    let bundle = NativeBundle::new(
        "appview",
        &[
            "creators' PDSes",
            "the PLC directory",
            "the Bluesky public API",
        ],
    )
    .endpoint("init", Verb::Post, bind(&api, init))
    .endpoint("registerCreator", Verb::Post, bind(&api, register_creator))
    .endpoint(
        "unregisterCreator",
        Verb::Post,
        bind(&api, unregister_creator),
    )
    .endpoint("triggerSync", Verb::Post, bind(&api, trigger_sync))
    .endpoint("registerHost", Verb::Post, bind(&api, register_host))
    .endpoint("takedownVideo", Verb::Post, bind(&api, takedown_video))
    .endpoint("restoreVideo", Verb::Post, bind(&api, restore_video))
    .endpoint("listVideos", Verb::Get, bind(&api, list_videos))
    .endpoint("getStats", Verb::Get, bind(&api, get_stats))
    .endpoint("getProfile", Verb::Get, bind(&api, get_profile))
    .task(
        "syncCreator",
        Verb::Post,
        sync::sync_task(weak.clone(), concurrency),
    )
    .task("syncHost", Verb::Post, hosts::host_task(weak.clone()))
    .job("syncAllCreators", sync::sync_all_job(weak))
    .route(
        "/api/appview/avatar/{did}/{cid}",
        get(move |path| avatar(avatars.clone(), path)),
    );
    let bundle = dashboard_actions(bundle, &actions)
        .metrics(move |registry| metrics.register_metrics(registry), || {});
    if follow_firehose {
        bundle.background("the firehose", move |shutdown| {
            tokio::spawn(firehose::run(firehose.clone(), shutdown))
        })
    } else {
        bundle
    }
}

/// The dashboard's forms: register, unregister and sync creators; register hosts; take
/// videos down and restore them.
fn dashboard_actions(bundle: NativeBundle, appview: &Arc<AppView>) -> NativeBundle {
    bundle
        .admin_action("/admin/creators", bind(appview, register_action))
        .admin_action("/admin/creators/remove", bind(appview, unregister_action))
        .admin_action("/admin/sync", bind(appview, sync_action))
        .admin_action("/admin/hosts", bind(appview, host_action))
        .admin_action("/admin/videos/takedown", bind(appview, takedown_action))
        .admin_action("/admin/videos/restore", bind(appview, restore_action))
}

async fn register_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    let registered = appview.register(&form.actor, &form.by).await?;
    let name = registered
        .handle
        .unwrap_or_else(|| registered.did.to_string());
    Ok(format!(
        "Registered {name}; their videos are being indexed."
    ))
}

async fn unregister_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    let did = appview.unregister(&form.actor, &form.by).await?;
    Ok(format!("Unregistered {did} and removed their videos."))
}

async fn sync_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    if form.actor.trim().is_empty() {
        let ids = appview.submit_sync_all().await?;
        return Ok(format!("Syncing {} creator(s).", ids.len()));
    }
    let creator = appview.registered(&form.actor).await?;
    appview.submit_sync(&creator.did).await?;
    Ok(format!(
        "Syncing {}.",
        creator.handle.unwrap_or_else(|| creator.did.to_string())
    ))
}

async fn host_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    let (host, _) = appview.register_host(&form.host, &form.by).await?;
    Ok(format!(
        "Registered {host}; its repositories with videos are being indexed."
    ))
}

async fn takedown_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    let uri = appview.video_named(&form.video).await?;
    appview.take_down(&uri, &form.reason, &form.by).await?;
    Ok(format!("Took down {uri}."))
}

async fn restore_action(appview: Arc<AppView>, form: AdminForm) -> Result<String, XrpcError> {
    let uri = appview.video_named(&form.video).await?;
    appview.restore(&uri, &form.reason, &form.by).await?;
    Ok(format!("Restored {uri}."))
}

fn appview_error(err: AppViewError) -> XrpcError {
    match err {
        AppViewError::InvalidRequest(message) | AppViewError::InvalidActor(message) => {
            XrpcError::invalid_request(message)
        }
        AppViewError::UnknownActor(message) => {
            XrpcError::new(StatusCode::BAD_REQUEST, "ActorNotFound", message)
        }
        err @ AppViewError::NotRegistered(_) => {
            XrpcError::new(StatusCode::NOT_FOUND, "CreatorNotFound", err.to_string())
        }
        err @ AppViewError::NotIndexed(_) => {
            XrpcError::new(StatusCode::NOT_FOUND, "VideoNotFound", err.to_string())
        }
        AppViewError::Upstream(err) if err.is_input_error() => {
            XrpcError::invalid_request(err.to_string())
        }
        AppViewError::Upstream(err) => {
            XrpcError::new(StatusCode::BAD_GATEWAY, "UpstreamFailure", err.summary()).because(err)
        }
        AppViewError::Tasks(err) => XrpcError::unavailable("the task system", err),
        AppViewError::Db(err) => XrpcError::unavailable("the index", err),
    }
}

impl From<AppViewError> for XrpcError {
    fn from(err: AppViewError) -> Self {
        appview_error(err)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorBody {
    actor: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OptionalActorBody {
    actor: Option<String>,
}

async fn init(api: Arc<Api>, call: Call) -> Reply {
    api.auth.check(&call.parts).await?;
    let version = api.appview.init().await?;
    json_reply(json!({ "ok": true, "schemaVersion": version }))
}

async fn register_creator(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: ActorBody = call.json(r#"{"actor": handle or DID}"#)?;
    tracing::info!(by = %admin, actor = %body.actor, "registerCreator");
    json_reply(
        api.appview
            .register(&body.actor, &admin.to_string())
            .await?,
    )
}

async fn unregister_creator(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: ActorBody = call.json(r#"{"actor": handle or DID}"#)?;
    tracing::info!(by = %admin, actor = %body.actor, "unregisterCreator");
    let did = api
        .appview
        .unregister(&body.actor, &admin.to_string())
        .await?;
    json_reply(json!({ "did": did, "removed": true }))
}

async fn trigger_sync(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: OptionalActorBody = call.json(r#"{"actor"?: handle or DID}"#)?;
    tracing::info!(by = %admin, actor = ?body.actor, "triggerSync");
    match body.actor {
        Some(actor) => {
            let creator = api.appview.registered(&actor).await?;
            let task_id = api.appview.submit_sync(&creator.did).await?;
            json_reply(json!({ "did": creator.did, "taskId": task_id }))
        }
        None => {
            let ids = api.appview.submit_sync_all().await?;
            json_reply(json!({ "taskIds": ids }))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostBody {
    host: String,
}

async fn register_host(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: HostBody = call.json(r#"{"host": a PDS host name or URL}"#)?;
    let (host, task_id) = api
        .appview
        .register_host(&body.host, &admin.to_string())
        .await?;
    json_reply(json!({ "host": host, "taskId": task_id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModerationBody {
    uri: String,
    #[serde(default)]
    reason: String,
}

async fn takedown_video(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: ModerationBody = call.json(r#"{"uri": at:// URI of a video, "reason": text}"#)?;
    let uri = video_uri(&body.uri)?;
    api.appview
        .take_down(&uri, &body.reason, &admin.to_string())
        .await?;
    json_reply(json!({ "uri": uri, "takenDown": true }))
}

async fn restore_video(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: ModerationBody = call.json(r#"{"uri": at:// URI of a video, "reason"?: text}"#)?;
    let uri = video_uri(&body.uri)?;
    api.appview
        .restore(&uri, &body.reason, &admin.to_string())
        .await?;
    json_reply(json!({ "uri": uri, "takenDown": false }))
}

fn video_uri(text: &str) -> Result<VideoUri, XrpcError> {
    text.parse()
        .map_err(|err: crate::atproto::AtprotoError| XrpcError::invalid_request(err.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
    creator: Option<String>,
    q: Option<String>,
    tag: Option<String>,
}

async fn list_videos(api: Arc<Api>, call: Call) -> Reply {
    video_page(&api.appview, &call).await
}

/// `listVideos` over our index, for the AppView's endpoint and VOD's.
pub async fn video_page(appview: &AppView, call: &Call) -> Reply {
    let params: ListParams = call.query()?;
    let limit = bounded(
        "limit",
        params.limit.unwrap_or(DEFAULT_LIMIT),
        1..=MAX_LIMIT,
    )?;
    let q = params
        .q
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(XrpcError::invalid_request(format!(
            "q is limited to {MAX_QUERY_CHARS} characters"
        )));
    }
    let tag = params
        .tag
        .map(|tag| tag.trim().trim_start_matches('#').to_string())
        .filter(|tag| !tag.is_empty());
    if tag
        .as_ref()
        .is_some_and(|tag| tag.chars().count() > MAX_TAG_CHARS)
    {
        return Err(XrpcError::invalid_request(format!(
            "tag is limited to {MAX_TAG_CHARS} characters"
        )));
    }
    let creator = match params
        .creator
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(actor) => match appview.registered(actor).await {
            Ok(creator) => Some(creator.did),
            Err(AppViewError::NotRegistered(_)) => {
                return json_reply(json!({ "videos": [] }));
            }
            Err(err) => return Err(err.into()),
        },
    };
    let page = appview
        .index()
        .list(&VideoQuery {
            limit,
            cursor: params.cursor,
            creator,
            q,
            tag,
        })
        .await?;
    json_reply(page)
}

async fn get_stats(api: Arc<Api>, _call: Call) -> Reply {
    json_reply(api.appview.stats().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileParams {
    actor: String,
}

async fn get_profile(api: Arc<Api>, call: Call) -> Reply {
    let params: ProfileParams = call.query()?;
    json_reply(api.appview.profile(&params.actor).await?)
}

async fn avatar(
    appview: Arc<AppView>,
    Path((did, cid)): Path<(String, String)>,
) -> Result<Response, XrpcError> {
    let did = syntax::did(&did).map_err(|err| AppViewError::InvalidActor(err.to_string()))?;
    let cid = syntax::cid(&cid).map_err(|err| AppViewError::InvalidRequest(err.to_string()))?;
    let avatar = appview.avatar(&did, &cid).await?;
    Ok((
        [
            (header::CONTENT_TYPE, avatar.mime_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        avatar.bytes,
    )
        .into_response())
}
