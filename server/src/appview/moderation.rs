//! Moderation: what the public does not see, and who decided it.
//!
//! Two things withhold a video. An admin **takes it down** (by record URI, so the
//! takedown outlives resyncs and the record being written again) and may restore it.
//! The **network** says its creator's account is not active: a `#account` event on the
//! firehose or `getRepoStatus` during a sync; the creator comes back when the account
//! does. Withheld rows stay in the index; public reads skip them (`query::VISIBLE`), and
//! every change bumps [`Visibility`], which the edge's caches key on, so listings, feeds
//! and the sitemap drop a video at once. Admin actions go to a bounded audit log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libsql::params;
use serde::Serialize;

use super::store::IndexStore;
use super::{AppView, AppViewError, VideoUri};
use crate::atproto::syntax::{Did, now};
use crate::db::DbError;

/// Longest reason kept.
pub const MAX_REASON_CHARS: usize = 500;
/// Audit entries kept; older ones are dropped.
const MAX_AUDIT_ENTRIES: i64 = 10_000;

/// A counter bumped whenever what the public may see shrinks or grows by moderation;
/// caches of public output include it in their keys.
#[derive(Debug, Clone, Default)]
pub struct Visibility(Arc<AtomicU64>);

impl Visibility {
    /// The current epoch.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(super) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When.
    pub at: String,
    /// Who: an admin's DID, or "the admin token".
    pub admin: String,
    /// What: `takedownVideo`, `restoreVideo`, `registerCreator`, ...
    pub action: String,
    /// On what: a record URI, a DID, a host.
    pub subject: String,
    /// Why, as the admin gave it.
    pub reason: Option<String>,
}

/// A video taken down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Takedown {
    /// The record.
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

impl AppView {
    /// The epoch public caches key on.
    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }

    /// `takedownVideo`: withholds the indexed video `uri` from every public surface.
    pub async fn take_down(
        &self,
        uri: &VideoUri,
        reason: &str,
        by: &str,
    ) -> Result<(), AppViewError> {
        let reason = reason_text(reason)?
            .ok_or_else(|| AppViewError::InvalidRequest("a reason is required".into()))?;
        if !self.store.is_indexed(uri).await? {
            return Err(AppViewError::NotIndexed(uri.to_string()));
        }
        self.store.take_down(uri, &reason, by).await?;
        self.visibility.bump();
        self.audit(by, "takedownVideo", &uri.to_string(), Some(&reason))
            .await;
        tracing::info!(%uri, by, "video taken down");
        Ok(())
    }

    /// `restoreVideo`: undoes a takedown; an error when there is none.
    pub async fn restore(
        &self,
        uri: &VideoUri,
        reason: &str,
        by: &str,
    ) -> Result<(), AppViewError> {
        let reason = reason_text(reason)?;
        if !self.store.restore(uri).await? {
            return Err(AppViewError::InvalidRequest(format!(
                "{uri} is not taken down"
            )));
        }
        self.visibility.bump();
        self.audit(by, "restoreVideo", &uri.to_string(), reason.as_deref())
            .await;
        tracing::info!(%uri, by, "video restored");
        Ok(())
    }

    /// The video an admin named: its `at://` URI, or the URL (or path) of its watch or
    /// embed page here, with the creator's DID or handle.
    pub async fn video_named(&self, text: &str) -> Result<VideoUri, AppViewError> {
        let text = text.trim();
        if let Ok(uri) = text.parse::<VideoUri>() {
            return Ok(uri);
        }
        let path = url::Url::parse(text)
            .map(|url| url.path().to_string())
            .unwrap_or_else(|_| text.to_string());
        let mut segments = path.trim_matches('/').split('/');
        let (Some("watch" | "embed"), Some(actor), Some(rkey), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AppViewError::InvalidRequest(
                "name the video by its at:// URI or its watch page's URL".into(),
            ));
        };
        let actor = percent_encoding::percent_decode_str(actor).decode_utf8_lossy();
        let creator = self.registered(&actor).await?;
        VideoUri::new(creator.did, rkey)
            .map_err(|err| AppViewError::InvalidRequest(err.to_string()))
    }

    /// Records the account status the network reports for `did` (`None`: active).
    pub async fn set_account_status(
        &self,
        did: &Did,
        status: Option<&str>,
    ) -> Result<(), AppViewError> {
        if self.store.set_account_status(did, status).await? {
            self.visibility.bump();
            match status {
                Some(status) => {
                    tracing::info!(%did, status, "creator's account is not active; hidden")
                }
                None => tracing::info!(%did, "creator's account is active again; shown"),
            }
        }
        Ok(())
    }

    /// The videos taken down, newest first (at most `limit`).
    pub async fn takedowns(&self, limit: u32) -> Result<Vec<Takedown>, AppViewError> {
        Ok(self.store.takedowns(limit).await?)
    }

    /// The newest `limit` admin actions.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, AppViewError> {
        Ok(self.store.audit_log(limit).await?)
    }

    /// Writes an admin action to the audit log. A failure is logged, never undoes the
    /// action.
    pub async fn audit(&self, by: &str, action: &str, subject: &str, reason: Option<&str>) {
        if let Err(err) = self.store.audit(by, action, subject, reason).await {
            tracing::error!(error = %err, by, action, subject, "cannot write the audit log");
        }
    }
}

/// The reason as stored: trimmed, `None` when empty, refused when too long.
fn reason_text(reason: &str) -> Result<Option<String>, AppViewError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AppViewError::InvalidRequest(format!(
            "reason is limited to {MAX_REASON_CHARS} characters"
        )));
    }
    Ok((!reason.is_empty()).then(|| reason.to_string()))
}

impl IndexStore {
    async fn is_indexed(&self, uri: &VideoUri) -> Result<bool, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT 1 FROM videos WHERE uri = ?1",
                params![uri.to_string()],
            )
            .await?;
        Ok(rows.next().await?.is_some())
    }

    async fn take_down(&self, uri: &VideoUri, reason: &str, by: &str) -> Result<(), DbError> {
        self.write
            .lock()
            .await
            .execute(
                "INSERT INTO video_takedowns (uri, reason, admin, taken_down_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (uri) DO UPDATE SET reason = excluded.reason,
                     admin = excluded.admin, taken_down_at = excluded.taken_down_at",
                params![uri.to_string(), reason, by, now()],
            )
            .await?;
        Ok(())
    }

    async fn restore(&self, uri: &VideoUri) -> Result<bool, DbError> {
        let removed = self
            .write
            .lock()
            .await
            .execute(
                "DELETE FROM video_takedowns WHERE uri = ?1",
                params![uri.to_string()],
            )
            .await?;
        Ok(removed > 0)
    }

    /// Whether the stored status changed.
    async fn set_account_status(&self, did: &Did, status: Option<&str>) -> Result<bool, DbError> {
        let changed = self
            .write
            .lock()
            .await
            .execute(
                "UPDATE creators SET account_status = ?2
                 WHERE did = ?1 AND account_status IS NOT ?2",
                params![did.as_str(), status],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn takedowns(&self, limit: u32) -> Result<Vec<Takedown>, DbError> {
        self.db
            .read(
                "SELECT t.uri, v.title, t.reason, t.admin, t.taken_down_at
                 FROM video_takedowns t LEFT JOIN videos v ON v.uri = t.uri
                 ORDER BY t.taken_down_at DESC LIMIT ?1",
                params![limit],
                |row| {
                    Ok(Takedown {
                        uri: row.get(0)?,
                        title: row.get(1)?,
                        reason: row.get(2)?,
                        admin: row.get(3)?,
                        at: row.get(4)?,
                    })
                },
            )
            .await
    }

    async fn audit(
        &self,
        by: &str,
        action: &str,
        subject: &str,
        reason: Option<&str>,
    ) -> Result<(), DbError> {
        self.write
            .transaction(async |tx| {
                tx.execute(
                    "INSERT INTO admin_audit (at, admin, action, subject, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![now(), by, action, subject, reason],
                )
                .await?;
                tx.execute(
                    "DELETE FROM admin_audit WHERE id <= (SELECT MAX(id) FROM admin_audit) - ?1",
                    params![MAX_AUDIT_ENTRIES],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, DbError> {
        self.db
            .read(
                "SELECT at, admin, action, subject, reason FROM admin_audit
                 ORDER BY id DESC LIMIT ?1",
                params![limit],
                |row| {
                    Ok(AuditEntry {
                        at: row.get(0)?,
                        admin: row.get(1)?,
                        action: row.get(2)?,
                        subject: row.get(3)?,
                        reason: row.get(4)?,
                    })
                },
            )
            .await
    }
}
