//! The AppView's HTTP edge: the XRPC-style API under `/api/appview/`, with the names the
//! original bundle used, and the dashboard's form actions under `/admin/`.
//!
//! Reads are public. `init`, `registerCreator`, `unregisterCreator` and `triggerSync`
//! need an admin ([`super::auth`]). Form actions answer with a redirect to `/admin`
//! carrying `?notice=` or `?error=`, so the dashboard works without JavaScript.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::XrpcError;
use super::auth::{Admin, AdminAuth, is_cross_site, verify_password};
use crate::appview::query::{DEFAULT_LIMIT, MAX_LIMIT, VideoQuery};
use crate::appview::{AppView, AppViewError};
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::config::Secret;
use crate::tasks::scheduler::Scheduler;

/// Why a sign-in or sign-out from another site is refused.
const CROSS_SITE: &str = "signing in and out only works from this site's own pages";

/// Longest search query accepted.
const MAX_QUERY_CHARS: usize = app::catalog::MAX_QUERY_CHARS;

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

/// A JSON body of shape `T`, or a 400 saying what was expected.
fn json_body<T: DeserializeOwned>(body: &Bytes, expected: &str) -> Result<T, XrpcError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| {
        XrpcError::invalid_request(format!("expected a JSON body {expected}: {err}"))
    })
}

/// Query parameters of shape `T`, or a 400.
fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, XrpcError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(value)| value)
        .map_err(|rejection| XrpcError::invalid_request(rejection.body_text()))
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

pub(super) async fn init(
    _: Admin,
    State(appview): State<Arc<AppView>>,
) -> Result<Json<Value>, XrpcError> {
    let version = appview.init().await.map_err(appview_error)?;
    Ok(Json(json!({ "ok": true, "schemaVersion": version })))
}

pub(super) async fn register_creator(
    admin: Admin,
    State(appview): State<Arc<AppView>>,
    body: Bytes,
) -> Result<Json<Value>, XrpcError> {
    let body: ActorBody = json_body(&body, r#"{"actor": handle or DID}"#)?;
    tracing::info!(by = %admin, actor = %body.actor, "registerCreator");
    let registered = appview.register(&body.actor).await.map_err(appview_error)?;
    Ok(Json(json!(registered)))
}

pub(super) async fn unregister_creator(
    admin: Admin,
    State(appview): State<Arc<AppView>>,
    body: Bytes,
) -> Result<Json<Value>, XrpcError> {
    let body: ActorBody = json_body(&body, r#"{"actor": handle or DID}"#)?;
    tracing::info!(by = %admin, actor = %body.actor, "unregisterCreator");
    let did = appview
        .unregister(&body.actor)
        .await
        .map_err(appview_error)?;
    Ok(Json(json!({ "did": did, "removed": true })))
}

pub(super) async fn trigger_sync(
    admin: Admin,
    State(appview): State<Arc<AppView>>,
    body: Bytes,
) -> Result<Json<Value>, XrpcError> {
    let body: OptionalActorBody = json_body(&body, r#"{"actor"?: handle or DID}"#)?;
    tracing::info!(by = %admin, actor = ?body.actor, "triggerSync");
    match body.actor {
        Some(actor) => {
            let creator = appview.registered(&actor).await.map_err(appview_error)?;
            let task_id = appview
                .submit_sync(&creator.did)
                .await
                .map_err(appview_error)?;
            Ok(Json(json!({ "did": creator.did, "taskId": task_id })))
        }
        None => {
            let ids = appview.submit_sync_all().await.map_err(appview_error)?;
            Ok(Json(json!({ "taskIds": ids })))
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

pub(super) async fn list_videos(
    State(appview): State<Arc<AppView>>,
    uri: Uri,
) -> Result<Json<Value>, XrpcError> {
    let params: ListParams = query(&uri)?;
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
                return Ok(Json(json!({ "videos": [] })));
            }
            Err(err) => return Err(appview_error(err)),
        },
    };
    let page = appview
        .index()
        .list(&VideoQuery {
            limit,
            cursor: params.cursor.filter(|c| !c.is_empty()),
            creator,
            q,
        })
        .await
        .map_err(appview_error)?;
    Ok(Json(json!(page)))
}

pub(super) async fn get_stats(
    State(appview): State<Arc<AppView>>,
) -> Result<Json<Value>, XrpcError> {
    let stats = appview.stats().await.map_err(appview_error)?;
    Ok(Json(json!(stats)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileParams {
    actor: String,
}

pub(super) async fn get_profile(
    State(appview): State<Arc<AppView>>,
    uri: Uri,
) -> Result<Json<Value>, XrpcError> {
    let params: ProfileParams = query(&uri)?;
    let profile = appview
        .profile(&params.actor)
        .await
        .map_err(appview_error)?;
    Ok(Json(json!(profile)))
}

pub(super) async fn avatar(
    State(appview): State<Arc<AppView>>,
    Path((did, cid)): Path<(String, String)>,
) -> Result<Response, XrpcError> {
    let avatar = appview.avatar(&did, &cid).await.map_err(appview_error)?;
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
