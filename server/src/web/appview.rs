//! The AppView's HTTP edge: its native bundle (`/api/appview/…`, with the names the
//! original bundle used; see [`bundle`]) and the dashboard's form actions under `/admin/`.
//!
//! Reads are public. `init`, `registerCreator`, `unregisterCreator` and `triggerSync`
//! need an admin ([`super::auth`]). Form actions answer with a redirect to `/admin`
//! carrying `?notice=` or `?error=`, so the dashboard works without JavaScript.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::XrpcError;
use super::auth::{Admin, AdminAuth, is_cross_site, verify_password};
use super::native::{Call, NativeBundle, Reply, Verb, bind, json_reply};
use crate::appview::query::{DEFAULT_LIMIT, MAX_LIMIT, VideoQuery};
use crate::appview::{AppView, AppViewError, sync};
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::secret::Secret;
use crate::tasks::scheduler::Scheduler;

/// Why a sign-in or sign-out from another site is refused.
const CROSS_SITE: &str = "signing in and out only works from this site's own pages";

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = app::catalog::MAX_QUERY_CHARS;

/// What the API's handlers share.
struct Api {
    appview: Arc<AppView>,
    auth: Arc<AdminAuth>,
}

/// The AppView as a native bundle: `/api/appview` and its exports (URLs and JSON are the
/// original bundle's), the sync task and the 15-minute job.
pub fn bundle(appview: Arc<AppView>, auth: Arc<AdminAuth>) -> NativeBundle {
    let concurrency = appview.sync_concurrency();
    let weak = Arc::downgrade(&appview);
    let api = Arc::new(Api { appview, auth });
    NativeBundle::new(
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
    .endpoint("listVideos", Verb::Get, bind(&api, list_videos))
    .endpoint("getStats", Verb::Get, bind(&api, get_stats))
    .endpoint("getProfile", Verb::Get, bind(&api, get_profile))
    .task(
        "syncCreator",
        Verb::Post,
        sync::sync_task(weak.clone(), concurrency),
    )
    .job("syncAllCreators", sync::sync_all_job(weak))
    .route("/api/appview/avatar/{did}/{cid}", get(avatar))
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
        AppViewError::Upstream(err) if err.is_input_error() => {
            XrpcError::invalid_request(err.to_string())
        }
        AppViewError::Upstream(err) => {
            tracing::warn!(error = %err, "AppView upstream failure");
            XrpcError::new(StatusCode::BAD_GATEWAY, "UpstreamFailure", err.summary())
        }
        AppViewError::Tasks(err) => {
            tracing::error!(error = %err, "AppView task failure");
            XrpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the task system is unavailable right now",
            )
        }
        AppViewError::Db(err) => {
            tracing::error!(error = %err, "AppView database failure");
            XrpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the index is unavailable right now",
            )
        }
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
    json_reply(api.appview.register(&body.actor).await?)
}

async fn unregister_creator(api: Arc<Api>, call: Call) -> Reply {
    let admin = api.auth.check(&call.parts).await?;
    let body: ActorBody = call.json(r#"{"actor": handle or DID}"#)?;
    tracing::info!(by = %admin, actor = %body.actor, "unregisterCreator");
    let did = api.appview.unregister(&body.actor).await?;
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
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
    creator: Option<String>,
    q: Option<String>,
}

async fn list_videos(api: Arc<Api>, call: Call) -> Reply {
    video_page(&api.appview, &call).await
}

/// `listVideos` over our index, for the AppView's endpoint and VOD's.
pub(super) async fn video_page(appview: &AppView, call: &Call) -> Reply {
    let params: ListParams = call.query()?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(XrpcError::invalid_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
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
    State(appview): State<Arc<AppView>>,
    Path((did, cid)): Path<(String, String)>,
) -> Result<Response, XrpcError> {
    let avatar = appview.avatar(&did, &cid).await?;
    Ok((
        [
            (header::CONTENT_TYPE, avatar.mime_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        avatar.bytes,
    )
        .into_response())
}

// ----- the dashboard's forms -----

#[derive(Deserialize)]
pub(super) struct LoginForm {
    identifier: String,
    password: String,
}

#[derive(Deserialize)]
pub(super) struct ActorForm {
    #[serde(default)]
    actor: String,
}

/// Longest message carried back to the dashboard in its URL.
const MAX_FLASH_CHARS: usize = 300;

/// `/admin` with a message for the page to show (cut short: it may quote user input, and
/// a `Location` header is no place for a long one).
fn back(kind: &str, message: &str) -> Redirect {
    let message = match message.char_indices().nth(MAX_FLASH_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_string(),
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(kind, &message)
        .finish();
    Redirect::to(&format!("/admin?{query}"))
}

pub(super) async fn login(
    State(auth): State<Arc<AdminAuth>>,
    State(identity): State<Arc<IdentityResolver>>,
    State(http): State<HttpClient>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if is_cross_site(&headers) {
        return back("error", CROSS_SITE).into_response();
    }
    let password = Secret::new(form.password);
    match verify_password(&identity, &http, &form.identifier, &password).await {
        Ok(did) => {
            tracing::info!(%did, admin = auth.is_admin(&did), "signed in");
            match auth.sign_in(&did).await {
                Ok(jar) => (jar, Redirect::to("/admin")).into_response(),
                Err(err) => {
                    tracing::error!(error = %err, "storing an admin session failed");
                    back(
                        "error",
                        "signing in is unavailable right now; try again shortly",
                    )
                    .into_response()
                }
            }
        }
        Err(err) => back("error", err.message()).into_response(),
    }
}

pub(super) async fn logout(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    if is_cross_site(&headers) {
        return back("error", CROSS_SITE).into_response();
    }
    match auth.sign_out(&headers).await {
        Ok(jar) => (jar, back("notice", "Signed out.")).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "ending an admin session failed");
            back("error", "signing out failed; try again shortly").into_response()
        }
    }
}

type AdminCheck = Result<Admin, XrpcError>;
type ActorFormInput = Result<Form<ActorForm>, FormRejection>;

/// Runs a form action as an admin, redirecting back with its outcome.
async fn form_action<F>(admin: AdminCheck, form: ActorFormInput, action: F) -> Redirect
where
    F: AsyncFnOnce(ActorForm) -> Result<String, XrpcError>,
{
    let admin = match admin {
        Ok(admin) => admin,
        Err(err) => return back("error", err.message()),
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return back("error", &rejection.body_text()),
    };
    tracing::info!(by = %admin, actor = %form.actor, "dashboard action");
    match action(form).await {
        Ok(notice) => back("notice", &notice),
        Err(err) => back("error", err.message()),
    }
}

pub(super) async fn register_form(
    admin: AdminCheck,
    State(appview): State<Arc<AppView>>,
    form: ActorFormInput,
) -> Redirect {
    form_action(admin, form, async |form| {
        let registered = appview.register(&form.actor).await.map_err(appview_error)?;
        let name = registered.handle.unwrap_or(registered.did);
        Ok(format!(
            "Registered {name}; their videos are being indexed."
        ))
    })
    .await
}

pub(super) async fn unregister_form(
    admin: AdminCheck,
    State(appview): State<Arc<AppView>>,
    form: ActorFormInput,
) -> Redirect {
    form_action(admin, form, async |form| {
        let did = appview
            .unregister(&form.actor)
            .await
            .map_err(appview_error)?;
        Ok(format!("Unregistered {did} and removed their videos."))
    })
    .await
}

pub(super) async fn sync_form(
    admin: AdminCheck,
    State(appview): State<Arc<AppView>>,
    form: ActorFormInput,
) -> Redirect {
    form_action(admin, form, async |form| {
        if form.actor.trim().is_empty() {
            let ids = appview.submit_sync_all().await.map_err(appview_error)?;
            Ok(format!("Syncing {} creator(s).", ids.len()))
        } else {
            let creator = appview
                .registered(&form.actor)
                .await
                .map_err(appview_error)?;
            appview
                .submit_sync(&creator.did)
                .await
                .map_err(appview_error)?;
            Ok(format!(
                "Syncing {}.",
                creator.handle.unwrap_or(creator.did)
            ))
        }
    })
    .await
}

/// The dashboard's data, for the Leptos page.
pub struct Dashboard {
    pub(super) auth: Arc<AdminAuth>,
    pub(super) appview: Arc<AppView>,
    pub(super) scheduler: Arc<Scheduler>,
}

#[async_trait::async_trait]
impl app::admin::ssr::Admin for Dashboard {
    async fn is_admin(&self, headers: &HeaderMap) -> bool {
        matches!(self.auth.session(headers).await, Ok(Some(did)) if self.auth.is_admin(&did))
    }

    async fn dashboard(
        &self,
        headers: &HeaderMap,
    ) -> Result<app::admin::Dashboard, app::error::AppError> {
        let session = self.auth.session(headers).await.map_err(|err| {
            tracing::error!(error = %err, "reading admin sessions failed");
            app::error::AppError::Unavailable
        })?;
        let Some(did) = session else {
            return Ok(app::admin::Dashboard {
                viewer: None,
                creators: Vec::new(),
                jobs: Vec::new(),
            });
        };
        let is_admin = self.auth.is_admin(&did);
        let viewer = Some(app::admin::Viewer { did, is_admin });
        if !is_admin {
            return Ok(app::admin::Dashboard {
                viewer,
                creators: Vec::new(),
                jobs: Vec::new(),
            });
        }
        let unavailable = |err: &dyn std::fmt::Display| {
            tracing::error!(error = %err, "dashboard query failed");
            app::error::AppError::Unavailable
        };
        let stats = self
            .appview
            .index()
            .stats()
            .await
            .map_err(|e| unavailable(&e))?;
        let runs = self
            .scheduler
            .history(20)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(app::admin::Dashboard {
            viewer,
            creators: stats
                .per_creator
                .into_iter()
                .map(|c| app::admin::CreatorRow {
                    did: c.did,
                    handle: c.handle,
                    video_count: c.video_count,
                    last_sync_at: c.last_sync_at,
                    error: c.error,
                    skipped_records: c.skipped_records,
                })
                .collect(),
            jobs: runs
                .into_iter()
                .map(|run| app::admin::JobRunRow {
                    outcome: if run.error.is_some() { "failed" } else { "ok" }.to_string(),
                    job: run.job,
                    started_at: run.started_at,
                    error: run.error,
                })
                .collect(),
        })
    }
}
