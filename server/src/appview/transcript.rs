//! Transcripts: the text of a video's captions, kept beside its row so that the watch
//! page can show it to crawlers and search can find words said in the video.
//!
//! VOD makes them (it knows the origin); the index keeps them, for the record version
//! (`transcript_cid`) they were made from. An empty transcript means "looked, none", so a
//! video without captions is not asked about again until its record changes.

use libsql::params;

use super::{VideoIndex, VideoUri};
use crate::atproto::syntax::Cid;
use crate::db::{DbError, parsed};

/// Longest transcript kept, in bytes (a 60-minute talk is about 60 KB of text).
pub const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;

impl VideoIndex {
    /// The transcript of `uri`, when it has a non-empty one.
    pub async fn transcript(&self, uri: &VideoUri) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .read(
                "SELECT transcript FROM videos WHERE uri = ?1 AND transcript <> ''",
                params![uri.to_string()],
                |row| Ok(row.get::<Option<String>>(0)?),
            )
            .await?
            .pop()
            .flatten())
    }

    /// Stores `text` as the transcript of version `cid` of `uri` (cut to
    /// [`MAX_TRANSCRIPT_BYTES`] at a character boundary); nothing when the record has
    /// changed since. Returns whether it was stored.
    pub async fn set_transcript(
        &self,
        uri: &VideoUri,
        cid: &Cid,
        text: &str,
    ) -> Result<bool, DbError> {
        let mut end = text.len().min(MAX_TRANSCRIPT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let changed = self
            .db
            .conn()
            .execute(
                "UPDATE videos SET transcript = ?3, transcript_cid = ?2
                 WHERE uri = ?1 AND cid = ?2",
                params![uri.to_string(), cid.to_string(), &text[..end]],
            )
            .await?;
        Ok(changed > 0)
    }

    /// The current CID of `uri` when its transcript was not made for it.
    pub async fn needs_transcript(&self, uri: &VideoUri) -> Result<Option<Cid>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT cid FROM videos
                 WHERE uri = ?1 AND (transcript_cid IS NULL OR transcript_cid <> cid)",
                params![uri.to_string()],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(parsed(&row, 0, "CID")?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` of the newest videos whose transcript was not made for their
    /// current version.
    pub async fn lacking_transcripts(&self, limit: u32) -> Result<Vec<(VideoUri, Cid)>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT uri, cid FROM videos
                 WHERE transcript_cid IS NULL OR transcript_cid <> cid
                 ORDER BY created_at DESC LIMIT ?1",
                params![limit],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((parsed(&row, 0, "video URI")?, parsed(&row, 1, "CID")?));
        }
        Ok(out)
    }
}
