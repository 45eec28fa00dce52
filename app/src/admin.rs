//! The admin dashboard's data: who is signed in, the creators, takedowns, the audit log
//! and the last job runs.
//!
//! Sign-in, sign-out and every admin action are plain HTML form posts to `/admin/...`
//! handled by the server, which answer with a redirect back to `/admin`: the dashboard
//! works before (or without) hydration, and the session cookie stays HttpOnly.

use serde::{Deserialize, Serialize};

/// Who is looking at the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Their DID.
    pub did: String,
    /// Whether that DID is an admin.
    pub is_admin: bool,
}

/// A registered creator, as the dashboard lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorRow {
    /// Their DID.
    pub did: String,
    /// Their handle.
    pub handle: Option<String>,
    /// Videos indexed.
    pub video_count: i64,
    /// When the last sync finished.
    pub last_sync_at: Option<String>,
    /// Why the last sync failed.
    pub error: Option<String>,
    /// Records skipped as invalid.
    pub skipped_records: i64,
    /// Their account's status when it is not active (they are hidden meanwhile).
    pub account_status: Option<String>,
    /// Their videos taken down.
    pub taken_down: i64,
}

/// A PDS host registered whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRow {
    /// `scheme://host[:port]`.
    pub host: String,
    /// When its repositories were last listed.
    pub last_listed_at: Option<String>,
    /// Repositories with videos at the last listing.
    pub repos: i64,
    /// Why the last listing failed.
    pub last_error: Option<String>,
}

/// A video taken down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakedownRow {
    /// The record's `at://` URI.
    pub uri: String,
    /// Its title, while it is indexed.
    pub title: Option<String>,
    /// Why.
    pub reason: String,
    /// By whom.
    pub admin: String,
    /// When.
    pub at: String,
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// When.
    pub at: String,
    /// Who.
    pub admin: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// Why.
    pub reason: Option<String>,
}

/// One run of a scheduled job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRunRow {
    /// The job.
    pub job: String,
    /// When it started.
    pub started_at: String,
    /// How it ended: `ok`, `failed`, or `running`.
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    /// The signed-in user, if any.
    pub viewer: Option<Viewer>,
    /// Registered creators (only for admins).
    pub creators: Vec<CreatorRow>,
    /// The last job runs, newest first (only for admins).
    pub jobs: Vec<JobRunRow>,
    /// Hosts registered whole (only for admins).
    pub hosts: Vec<HostRow>,
    /// Videos taken down, newest first (only for admins).
    pub takedowns: Vec<TakedownRow>,
    /// The last admin actions, newest first (only for admins).
    pub audit: Vec<AuditRow>,
}

/// Server side of the dashboard.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use super::Dashboard;
    use crate::error::AppError;

    /// What the server provides to the dashboard page.
    #[async_trait::async_trait]
    pub trait Admin: Send + Sync + 'static {
        /// The dashboard as the sender of `headers` (their session cookie) may see it.
        async fn dashboard(&self, headers: &http::HeaderMap) -> Result<Dashboard, AppError>;
        /// Whether the sender of `headers` is a signed-in admin.
        async fn is_admin(&self, headers: &http::HeaderMap) -> bool;
    }

    /// The admin service the server provided for this request.
    pub fn admin() -> Result<Arc<dyn Admin>, AppError> {
        leptos::prelude::use_context::<Arc<dyn Admin>>().ok_or(AppError::Unavailable)
    }
}
