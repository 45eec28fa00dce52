//! The admin dashboard's side of the server: signing in and out under `/admin/`, the
//! running of the form actions native bundles declare (the AppView's register,
//! unregister and sync: see `web::native`), and the data its Leptos page reads
//! ([`Dashboard`], `app`'s `Admin` trait). Form actions answer with a redirect to
//! `/admin` carrying `?notice=` or `?error=`, so the dashboard works without JavaScript.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AppState, XrpcError};
use crate::api::native::{AdminAction, AdminForm};
use crate::appview::AppView;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::auth::{Admin, AdminAuth, is_cross_site, verify_password};
use crate::secret::Secret;
use crate::tasks::scheduler::Scheduler;

/// Why a sign-in or sign-out from another site is refused.
const CROSS_SITE: &str = "signing in and out only works from this site's own pages";

#[derive(Deserialize)]
pub(super) struct LoginForm {
    identifier: String,
    password: String,
}

/// Takedowns and audit entries the dashboard lists.
const DASHBOARD_ROWS: u32 = 50;

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

pub(super) type AdminCheck = Result<Admin, XrpcError>;
pub(super) type AdminFormInput = Result<Form<AdminForm>, FormRejection>;

/// Runs a form action as an admin, redirecting back with its outcome.
pub(super) async fn form_action(
    admin: AdminCheck,
    form: AdminFormInput,
    action: AdminAction,
) -> Redirect {
    let admin = match admin {
        Ok(admin) => admin,
        Err(err) => return back("error", err.message()),
    };
    let mut form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return back("error", &rejection.body_text()),
    };
    form.by = admin.to_string();
    tracing::info!(by = %admin, "dashboard action");
    match action(form).await {
        Ok(notice) => back("notice", &notice),
        Err(err) => back("error", err.message()),
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = XrpcError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, XrpcError> {
        state.auth.check(parts).await
    }
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
            return Ok(app::admin::Dashboard::default());
        };
        let is_admin = self.auth.is_admin(&did);
        let viewer = Some(app::admin::Viewer {
            did: did.to_string(),
            is_admin,
        });
        if !is_admin {
            return Ok(app::admin::Dashboard {
                viewer,
                ..app::admin::Dashboard::default()
            });
        }
        let unavailable = |err: &dyn std::fmt::Display| {
            tracing::error!(error = %err, "dashboard query failed");
            app::error::AppError::Unavailable
        };
        let stats = self
            .appview
            .index()
            .stats(true)
            .await
            .map_err(|e| unavailable(&e))?;
        let runs = self
            .scheduler
            .history(20)
            .await
            .map_err(|e| unavailable(&e))?;
        let hosts = self.appview.hosts().await.map_err(|e| unavailable(&e))?;
        let takedowns = self
            .appview
            .takedowns(DASHBOARD_ROWS)
            .await
            .map_err(|e| unavailable(&e))?;
        let audit = self
            .appview
            .audit_log(DASHBOARD_ROWS)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(app::admin::Dashboard {
            viewer,
            creators: stats
                .per_creator
                .into_iter()
                .map(|c| app::admin::CreatorRow {
                    did: c.did.to_string(),
                    handle: c.handle,
                    video_count: c.video_count,
                    last_sync_at: c.last_sync_at,
                    error: c.error,
                    skipped_records: c.skipped_records,
                    account_status: c.account_status,
                    taken_down: c.taken_down,
                })
                .collect(),
            hosts: hosts
                .into_iter()
                .map(|h| app::admin::HostRow {
                    host: h.host,
                    last_listed_at: h.last_listed_at,
                    repos: h.repos,
                    last_error: h.last_error,
                })
                .collect(),
            takedowns: takedowns
                .into_iter()
                .map(|t| app::admin::TakedownRow {
                    uri: t.uri,
                    title: t.title,
                    reason: t.reason,
                    admin: t.admin,
                    at: t.at,
                })
                .collect(),
            audit: audit
                .into_iter()
                .map(|entry| app::admin::AuditRow {
                    at: entry.at,
                    admin: entry.admin,
                    action: entry.action,
                    subject: entry.subject,
                    reason: entry.reason,
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
