//! The index's writes: creators, their videos, sync bookkeeping and firehose cursors.
//!
//! A sync replaces a creator's videos in one transaction (upserts, then deletion of what
//! is gone upstream), so readers see the old set or the new one, never half of each.
//! Upserts skip rows whose CID did not change, which makes replaying a listing or a
//! stretch of the firehose free and idempotent.

use libsql::{Value, params};

use super::metadata::VideoMeta;
use super::record::VideoRow;
use crate::atproto::syntax::{Cid, Did, now};
use crate::db::{Db, DbError, Writer, parsed};

/// Most warnings kept per creator.
const MAX_WARNINGS: usize = 20;

const UPSERT_VIDEO: &str =
    "INSERT INTO videos (uri, cid, did, rkey, title, description, duration_ms,
         created_at, indexed_at, thumb_cid, thumb_mime, thumb_size, creator, livestream_uri,
         livestream_cid, source, meta, tags)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
     ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, title = excluded.title,
         description = excluded.description, duration_ms = excluded.duration_ms,
         created_at = excluded.created_at, indexed_at = excluded.indexed_at,
         thumb_cid = excluded.thumb_cid, thumb_mime = excluded.thumb_mime,
         thumb_size = excluded.thumb_size, creator = excluded.creator,
         livestream_uri = excluded.livestream_uri, livestream_cid = excluded.livestream_cid,
         source = excluded.source, meta = excluded.meta, tags = excluded.tags
     WHERE videos.cid <> excluded.cid";

/// A registered creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// The DID.
    pub did: Did,
    /// The handle at the last resolution.
    pub handle: Option<String>,
    /// The PDS at the last resolution.
    pub pds_url: Option<String>,
}

/// What one sync found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Records seen upstream and indexed.
    pub seen: usize,
    /// Rows inserted or changed.
    pub changed: usize,
    /// Rows deleted because their record is gone.
    pub deleted: usize,
    /// Records skipped as invalid.
    pub skipped: usize,
}

/// Reads and writes of the index tables.
pub struct IndexStore {
    pub(super) db: Db,
    pub(super) write: Writer,
}

impl IndexStore {
    /// The store over `db`.
    pub async fn open(db: Db) -> Result<Self, DbError> {
        let write = db.writer().await?;
        Ok(Self { db, write })
    }

    /// Adds a creator, or refreshes its handle and PDS.
    pub async fn register(&self, creator: &Creator) -> Result<(), DbError> {
        self.write
            .lock()
            .await
            .execute(
                "INSERT INTO creators (did, handle, pds_url, registered_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (did) DO UPDATE SET handle = excluded.handle, pds_url = excluded.pds_url",
                params![
                    creator.did.as_str(),
                    creator.handle.as_deref(),
                    creator.pds_url.as_deref(),
                    now()
                ],
            )
            .await?;
        Ok(())
    }

    /// Removes a creator and, by cascade, their videos; whether it was registered.
    pub async fn unregister(&self, did: &Did) -> Result<bool, DbError> {
        let removed = self
            .write
            .lock()
            .await
            .execute("DELETE FROM creators WHERE did = ?1", params![did.as_str()])
            .await?;
        Ok(removed > 0)
    }

    /// One creator, by DID or by handle.
    pub async fn creator(&self, actor: &str) -> Result<Option<Creator>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT did, handle, pds_url FROM creators WHERE did = ?1 OR handle = ?1 LIMIT 1",
                params![actor],
            )
            .await?;
        rows.next().await?.as_ref().map(creator_from).transpose()
    }

    /// Stores the creator's profile as their PDS has it.
    pub async fn set_profile(
        &self,
        did: &Did,
        display_name: Option<&str>,
        description: Option<&str>,
        avatar_cid: Option<&Cid>,
    ) -> Result<(), DbError> {
        self.db
            .conn()
            .execute(
                "UPDATE creators SET display_name = ?2, description = ?3, avatar_cid = ?4
                 WHERE did = ?1",
                params![
                    did.as_str(),
                    display_name,
                    description,
                    avatar_cid.map(ToString::to_string)
                ],
            )
            .await?;
        Ok(())
    }

    /// Whether the one-time fact `name` has been recorded.
    pub async fn flag(&self, name: &str) -> Result<bool, DbError> {
        let mut rows = self
            .db
            .conn()
            .query("SELECT 1 FROM app_flags WHERE name = ?1", params![name])
            .await?;
        Ok(rows.next().await?.is_some())
    }

    /// Records the one-time fact `name`.
    pub async fn set_flag(&self, name: &str) -> Result<(), DbError> {
        self.db
            .conn()
            .execute(
                "INSERT OR IGNORE INTO app_flags (name, set_at) VALUES (?1, ?2)",
                params![name, crate::atproto::syntax::now()],
            )
            .await?;
        Ok(())
    }

    /// Every registered creator.
    pub async fn creators(&self) -> Result<Vec<Creator>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query("SELECT did, handle, pds_url FROM creators ORDER BY did", ())
            .await?;
        let mut creators = Vec::new();
        while let Some(row) = rows.next().await? {
            creators.push(creator_from(&row)?);
        }
        Ok(creators)
    }

    /// Makes the creator's indexed videos exactly `videos`, and records the sync. Nothing
    /// happens if the creator was unregistered meanwhile (`None`).
    pub async fn replace_videos(
        &self,
        creator: &Creator,
        videos: &[VideoRow],
        warnings: &[String],
        duration_ms: i64,
    ) -> Result<Option<SyncCounts>, DbError> {
        let indexed_at = now();
        self.write
            .transaction(async |tx| {
                let registered = tx
                    .execute(
                        "UPDATE creators SET handle = ?2, pds_url = ?3, last_synced_at = ?4,
                                last_error = NULL, sync_duration_ms = ?5, skipped_records = ?6,
                                warnings = ?7
                         WHERE did = ?1",
                        params![
                            creator.did.as_str(),
                            creator.handle.as_deref(),
                            creator.pds_url.as_deref(),
                            indexed_at.as_str(),
                            duration_ms,
                            i64::try_from(warnings.len()).unwrap_or(i64::MAX),
                            warnings_json(warnings)
                        ],
                    )
                    .await?;
                if registered == 0 {
                    return Ok(None);
                }
                let mut counts = SyncCounts {
                    seen: videos.len(),
                    skipped: warnings.len(),
                    ..SyncCounts::default()
                };
                let upsert = tx.prepare(UPSERT_VIDEO).await?;
                for video in videos {
                    counts.changed += upsert.execute(video_params(video, &indexed_at)).await?;
                    upsert.reset();
                }
                let uris: Vec<&str> = videos.iter().map(|video| video.uri.as_str()).collect();
                let deleted = tx
                    .execute(
                        "DELETE FROM videos WHERE did = ?1
                           AND uri NOT IN (SELECT value FROM json_each(?2))",
                        params![
                            creator.did.as_str(),
                            serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into())
                        ],
                    )
                    .await?;
                counts.deleted = usize::try_from(deleted).unwrap_or(usize::MAX);
                Ok(Some(counts))
            })
            .await
    }

    /// Records that a creator's sync failed, and why.
    pub async fn sync_failed(
        &self,
        did: &Did,
        error: &str,
        duration_ms: i64,
    ) -> Result<(), DbError> {
        self.write
            .lock()
            .await
            .execute(
                "UPDATE creators SET last_error = ?2, sync_duration_ms = ?3 WHERE did = ?1",
                params![did.as_str(), error, duration_ms],
            )
            .await?;
        Ok(())
    }

    /// Applies one change from the firehose: a record written (`Some`) or deleted.
    /// Returns whether a row changed.
    pub async fn apply(&self, uri: &str, video: Option<&VideoRow>) -> Result<bool, DbError> {
        let conn = self.write.lock().await;
        let changed = match video {
            Some(video) => {
                conn.execute(UPSERT_VIDEO, video_params(video, &now()))
                    .await?
            }
            None => {
                conn.execute("DELETE FROM videos WHERE uri = ?1", params![uri])
                    .await?
            }
        };
        Ok(changed > 0)
    }

    /// Adds a warning about one record to a creator's sync report.
    pub async fn warn(&self, did: &Did, warning: &str) -> Result<(), DbError> {
        self.write
            .transaction(async |tx| {
                let mut rows = tx
                    .query(
                        "SELECT warnings FROM creators WHERE did = ?1",
                        params![did.as_str()],
                    )
                    .await?;
                let Some(row) = rows.next().await? else {
                    return Ok(());
                };
                let mut warnings: Vec<String> = row
                    .get::<Option<String>>(0)?
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default();
                drop(rows);
                warnings.retain(|existing| existing != warning);
                warnings.push(warning.to_string());
                let skipped = i64::try_from(warnings.len()).unwrap_or(i64::MAX);
                tx.execute(
                    "UPDATE creators SET warnings = ?2, skipped_records = ?3 WHERE did = ?1",
                    params![did.as_str(), warnings_json(&warnings), skipped],
                )
                .await?;
                Ok(())
            })
            .await
    }

    /// Where the firehose of `host` left off.
    pub async fn cursor(&self, host: &str) -> Result<Option<i64>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT seq FROM firehose_cursors WHERE host = ?1",
                params![host],
            )
            .await?;
        Ok(match rows.next().await? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// Remembers where the firehose of `host` is (`None`: start afresh next time).
    pub async fn save_cursor(&self, host: &str, seq: Option<i64>) -> Result<(), DbError> {
        let conn = self.write.lock().await;
        match seq {
            Some(seq) => {
                conn.execute(
                    "INSERT INTO firehose_cursors (host, seq, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (host) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
                    params![host, seq, now()],
                )
                .await?
            }
            None => {
                conn.execute("DELETE FROM firehose_cursors WHERE host = ?1", params![host])
                    .await?
            }
        };
        Ok(())
    }
}

/// A creator from a `SELECT did, handle, pds_url` row.
fn creator_from(row: &libsql::Row) -> Result<Creator, DbError> {
    Ok(Creator {
        did: parsed(row, 0, "DID")?,
        handle: row.get(1)?,
        pds_url: row.get(2)?,
    })
}

fn warnings_json(warnings: &[String]) -> Option<String> {
    let kept = &warnings[warnings.len().saturating_sub(MAX_WARNINGS)..];
    (!kept.is_empty()).then(|| serde_json::to_string(kept).unwrap_or_default())
}

fn video_params(video: &VideoRow, indexed_at: &str) -> Vec<Value> {
    let thumb = video.thumb.as_ref();
    vec![
        video.uri.clone().into(),
        video.cid.to_string().into(),
        video.did.to_string().into(),
        video.rkey.clone().into(),
        video.title.clone().into(),
        video.description.clone().into(),
        video.duration_ms.into(),
        video.created_at.clone().into(),
        indexed_at.to_string().into(),
        thumb.map(|t| t.cid.to_string()).into(),
        thumb.map(|t| t.mime_type.clone()).into(),
        thumb.and_then(|t| i64::try_from(t.size).ok()).into(),
        video.creator.clone().into(),
        video.livestream.as_ref().map(|r| r.uri.clone()).into(),
        video.livestream.as_ref().map(|r| r.cid.clone()).into(),
        video.source.as_ref().map(ToString::to_string).into(),
        (video.meta != VideoMeta::default())
            .then(|| serde_json::to_string(&video.meta).unwrap_or_default())
            .into(),
        (!video.meta.tags.is_empty())
            .then(|| serde_json::to_string(&video.meta.tags).unwrap_or_default())
            .into(),
    ]
}
