//! The index's read side: `listVideos` (newest first, keyset-paginated, by creator,
//! full-text search with FTS5), `getStats`, one video, one creator. The pages read it
//! through `web::catalog`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libsql::Value;
use serde::Serialize;

use super::metadata::VideoMeta;
use super::{AppViewError, VideoUri};
use crate::atproto::blob::BlobRef;
use crate::atproto::repo::StrongRef;
use crate::atproto::syntax::{Cid, Did};
use crate::db::{Db, DbError, parsed, parsed_opt};

/// Most videos a page holds.
pub const MAX_LIMIT: u32 = 100;
/// Videos per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most words a search matches on; the rest are ignored.
const MAX_SEARCH_WORDS: usize = 8;

const VIDEO_COLUMNS: &str = "v.uri, v.cid, v.did, c.handle, v.rkey, v.title, v.description,
     v.duration_ms, v.created_at, v.indexed_at, v.thumb_cid, v.thumb_mime, v.thumb_size,
     v.creator, v.livestream_uri, v.livestream_cid, v.source, c.display_name, c.avatar_cid,
     v.meta";

/// What public reads show: videos not taken down, of creators whose account is active.
/// (`v` is the video, `c` its creator.)
const VISIBLE: &str = "c.account_status IS NULL
     AND NOT EXISTS (SELECT 1 FROM video_takedowns t WHERE t.uri = v.uri)";

/// One indexed video, as `listVideos` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoView {
    /// `at://` URI of the record.
    pub uri: VideoUri,
    /// The record's CID.
    pub cid: Cid,
    /// The creator's DID.
    pub did: Did,
    /// The creator's DID again, under the name the original AppView used.
    pub creator_did: Did,
    /// The creator's handle, when verified.
    pub handle: Option<String>,
    /// The record key.
    pub rkey: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: Option<String>,
    /// The duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// When it was published.
    pub created_at: String,
    /// When we indexed this version.
    pub indexed_at: String,
    /// The thumbnail blob reference.
    pub thumb: Option<BlobRef>,
    /// The streamer the record names, when it names one (may differ from `did`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// The livestream record it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livestream: Option<StrongRef>,
    /// Its media source, as the record has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
    /// The creator's display name, from their profile (for pages).
    #[serde(skip)]
    pub creator_name: Option<String>,
    /// The CID of the creator's avatar (for pages).
    #[serde(skip)]
    pub avatar_cid: Option<Cid>,
    /// Facets, tags, content warnings, rights, connections and activity.
    #[serde(flatten)]
    pub meta: VideoMeta,
}

/// A page of videos.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VideoPage {
    /// The videos, newest first.
    pub videos: Vec<VideoView>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// What `listVideos` was asked.
#[derive(Debug, Clone, Default)]
pub struct VideoQuery {
    /// Page size (1 to [`MAX_LIMIT`]).
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Only this creator's videos.
    pub creator: Option<Did>,
    /// Full-text search over title, description, tags and transcript.
    pub q: Option<String>,
    /// Only videos with this tag (any case).
    pub tag: Option<String>,
}

/// Per-creator statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatorStats {
    /// The DID.
    pub did: Did,
    /// The handle.
    pub handle: Option<String>,
    /// The PDS at the last sync.
    pub pds: Option<String>,
    /// Videos indexed.
    pub video_count: i64,
    /// Their total duration in milliseconds.
    pub total_duration_ms: i64,
    /// When registered.
    pub registered_at: String,
    /// When the last successful sync finished.
    pub last_sync_at: Option<String>,
    /// How long the last sync took, in milliseconds.
    pub last_sync_duration_ms: Option<i64>,
    /// Why the last sync failed, if it did.
    pub error: Option<String>,
    /// Records skipped as invalid.
    pub skipped_records: i64,
    /// Why they were skipped.
    pub warnings: Vec<String>,
    /// Their account's status when it is not active (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    /// Their videos taken down (admins only).
    #[serde(skip_serializing_if = "is_zero")]
    pub taken_down: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Why a video is not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// An admin took it down.
    TakenDown,
    /// Its creator's account has this status (deactivated, suspended, ...).
    Account(String),
}

/// `getStats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Registered creators.
    pub creators: i64,
    /// Indexed videos.
    pub videos: i64,
    /// Their total duration in milliseconds.
    pub total_duration_ms: i64,
    /// Creators whose last sync failed.
    pub failing_creators: i64,
    /// Per creator, by handle.
    pub per_creator: Vec<CreatorStats>,
    /// The firehoses followed for live updates.
    pub firehoses: Vec<super::firehose::FirehoseStatus>,
}

/// Read access to the index.
#[derive(Clone)]
pub struct VideoIndex {
    pub(super) db: Db,
}

impl VideoIndex {
    /// An index over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// One page of videos.
    pub async fn list(&self, query: &VideoQuery) -> Result<VideoPage, AppViewError> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let mut params: Vec<Value> = Vec::new();
        let mut conditions: Vec<String> = vec![VISIBLE.to_string()];
        let mut from = "videos v".to_string();
        if let Some(q) = query.q.as_deref() {
            let Some(expression) = fts_query(q) else {
                return Ok(VideoPage {
                    videos: Vec::new(),
                    cursor: None,
                });
            };
            from = "videos_fts f JOIN videos v ON v.id = f.rowid".to_string();
            params.push(expression.into());
            conditions.push(format!("videos_fts MATCH ?{}", params.len()));
        }
        if let Some(did) = &query.creator {
            params.push(did.to_string().into());
            conditions.push(format!("v.did = ?{}", params.len()));
        }
        if let Some(tag) = &query.tag {
            params.push(tag.to_lowercase().into());
            conditions.push(format!(
                "v.id IN (SELECT video_id FROM video_tags WHERE tag = ?{})",
                params.len()
            ));
        }
        if let Some(cursor) = query.cursor.as_deref() {
            let (created_at, uri) = decode_cursor(cursor)?;
            params.push(created_at.into());
            let at = params.len();
            params.push(uri.into());
            conditions.push(format!(
                "v.created_at <= ?{at} AND (v.created_at < ?{at} OR v.uri > ?{})",
                params.len()
            ));
        }
        params.push(i64::from(limit + 1).into());
        let sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM {from} JOIN creators c ON c.did = v.did
             WHERE {} ORDER BY v.created_at DESC, v.uri LIMIT ?{}",
            conditions.join(" AND "),
            params.len()
        );
        let mut videos = self.videos(&sql, params).await?;
        let cursor = if videos.len() > limit as usize {
            videos.truncate(limit as usize);
            videos.last().map(encode_cursor)
        } else {
            None
        };
        Ok(VideoPage { videos, cursor })
    }

    /// One public video by its `at://` URI: `None` when it is not indexed, taken down,
    /// or its creator's account is not active (see [`Self::withheld`]).
    pub async fn get(&self, uri: &VideoUri) -> Result<Option<VideoView>, DbError> {
        let sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos v JOIN creators c ON c.did = v.did
             WHERE v.uri = ?1 AND {VISIBLE}"
        );
        Ok(self
            .videos(&sql, vec![Value::Text(uri.to_string())])
            .await?
            .into_iter()
            .next())
    }

    async fn videos(&self, sql: &str, params: Vec<Value>) -> Result<Vec<VideoView>, DbError> {
        self.db.read(sql, params, video_view).await
    }

    /// The public video `rkey` of the creator `did_or_handle` (as stored), in one query.
    pub async fn video_of(
        &self,
        did_or_handle: &str,
        rkey: &str,
    ) -> Result<Option<VideoView>, DbError> {
        let sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos v JOIN creators c ON c.did = v.did
             WHERE (c.did = ?1 OR c.handle = ?1) AND v.rkey = ?2 AND {VISIBLE} LIMIT 1"
        );
        let params = vec![
            Value::Text(did_or_handle.to_string()),
            Value::Text(rkey.to_string()),
        ];
        Ok(self.videos(&sql, params).await?.pop())
    }

    /// What to watch after the video `uri`, in one query: up to half of `limit` from
    /// its creator, then the newest of everyone else, then more of its creator's; newest
    /// first within each.
    pub async fn related(&self, uri: &VideoUri, limit: u32) -> Result<Vec<VideoView>, DbError> {
        let sql = format!(
            "SELECT * FROM (
                 SELECT {VIDEO_COLUMNS},
                        CASE WHEN ROW_NUMBER() OVER (ORDER BY v.created_at DESC, v.uri) <= ?3
                             THEN 0 ELSE 2 END AS part
                 FROM videos v JOIN creators c ON c.did = v.did
                 WHERE v.did = ?2 AND v.uri <> ?1 AND {VISIBLE}
                 ORDER BY v.created_at DESC, v.uri LIMIT ?4)
             UNION ALL
             SELECT * FROM (
                 SELECT {VIDEO_COLUMNS}, 1 AS part
                 FROM videos v JOIN creators c ON c.did = v.did
                 WHERE v.did <> ?2 AND {VISIBLE}
                 ORDER BY v.created_at DESC, v.uri LIMIT ?4)
             ORDER BY part, created_at DESC, uri LIMIT ?4"
        );
        let params = vec![
            Value::Text(uri.to_string()),
            Value::Text(uri.did().to_string()),
            Value::Integer(i64::from(limit / 2)),
            Value::Integer(i64::from(limit)),
        ];
        self.videos(&sql, params).await
    }

    /// Why the video `uri` is withheld from the public, when it is: taken down, or its
    /// creator's account is not active. `None` for public videos and unknown ones.
    pub async fn withheld(&self, uri: &VideoUri) -> Result<Option<Withheld>, DbError> {
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT (SELECT reason FROM video_takedowns WHERE uri = ?1),
                        (SELECT account_status FROM creators WHERE did = ?2)",
                vec![
                    Value::Text(uri.to_string()),
                    Value::Text(uri.did().to_string()),
                ],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        Ok(match (row.get::<Option<String>>(0)?, row.get(1)?) {
            (Some(_), _) => Some(Withheld::TakenDown),
            (None, Some(status)) => Some(Withheld::Account(status)),
            (None, None) => None,
        })
    }

    /// Totals and per-creator figures: of what the public sees, or (`everything`, for
    /// admins) of every creator and video, with their status.
    pub async fn stats(&self, everything: bool) -> Result<Stats, DbError> {
        let (join, filter, taken_down) = if everything {
            (
                "",
                "",
                "(SELECT COUNT(*) FROM video_takedowns t
                  WHERE substr(t.uri, 1, length(c.did) + 6) = 'at://' || c.did || '/')",
            )
        } else {
            (
                "AND NOT EXISTS (SELECT 1 FROM video_takedowns t WHERE t.uri = v.uri)",
                "WHERE c.account_status IS NULL",
                "0",
            )
        };
        let mut rows = self
            .db
            .conn()
            .query(
                &format!(
                    "SELECT c.did, c.handle, c.pds_url, COUNT(v.id),
                            COALESCE(SUM(v.duration_ms), 0), c.registered_at, c.last_synced_at,
                            c.sync_duration_ms, c.last_error, c.skipped_records, c.warnings,
                            c.account_status, {taken_down}
                     FROM creators c LEFT JOIN videos v ON v.did = c.did {join}
                     {filter}
                     GROUP BY c.did ORDER BY COALESCE(c.handle, c.did)"
                ),
                (),
            )
            .await?;
        let mut per_creator = Vec::new();
        while let Some(row) = rows.next().await? {
            per_creator.push(CreatorStats {
                did: parsed(&row, 0, "DID")?,
                handle: row.get(1)?,
                pds: row.get(2)?,
                video_count: row.get(3)?,
                total_duration_ms: row.get(4)?,
                registered_at: row.get(5)?,
                last_sync_at: row.get(6)?,
                last_sync_duration_ms: row.get(7)?,
                error: row.get(8)?,
                skipped_records: row.get(9)?,
                warnings: row
                    .get::<Option<String>>(10)?
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default(),
                account_status: row.get(11)?,
                taken_down: row.get(12)?,
            });
        }
        Ok(Stats {
            creators: i64::try_from(per_creator.len()).unwrap_or(i64::MAX),
            videos: per_creator.iter().map(|c| c.video_count).sum(),
            total_duration_ms: per_creator.iter().map(|c| c.total_duration_ms).sum(),
            failing_creators: per_creator
                .iter()
                .filter(|c| c.error.is_some())
                .count()
                .try_into()
                .unwrap_or(i64::MAX),
            per_creator,
            firehoses: Vec::new(),
        })
    }
}

/// A [`VideoView`] from a row of [`VIDEO_COLUMNS`].
fn video_view(row: &libsql::Row) -> Result<VideoView, DbError> {
    let did: Did = parsed(row, 2, "DID")?;
    let thumb = match (
        parsed_opt::<Cid>(row, 10, "CID")?,
        row.get::<Option<String>>(11)?,
    ) {
        (Some(cid), Some(mime_type)) => Some(BlobRef {
            cid,
            mime_type,
            size: row
                .get::<Option<i64>>(12)?
                .and_then(|size| u64::try_from(size).ok())
                .unwrap_or(0),
        }),
        _ => None,
    };
    Ok(VideoView {
        uri: parsed(row, 0, "video URI")?,
        cid: parsed(row, 1, "CID")?,
        creator_did: did.clone(),
        did,
        handle: row.get(3)?,
        rkey: row.get(4)?,
        title: row.get(5)?,
        description: row.get(6)?,
        duration_ms: row.get(7)?,
        created_at: row.get(8)?,
        indexed_at: row.get(9)?,
        thumb,
        creator: row.get(13)?,
        livestream: match (
            row.get::<Option<String>>(14)?,
            row.get::<Option<String>>(15)?,
        ) {
            (Some(uri), Some(cid)) => Some(StrongRef { uri, cid }),
            _ => None,
        },
        source: row
            .get::<Option<String>>(16)?
            .and_then(|text| serde_json::from_str(&text).ok()),
        creator_name: row.get(17)?,
        avatar_cid: parsed_opt(row, 18, "CID")?,
        // A row written before this column existed, or by an older version: none.
        meta: row
            .get::<Option<String>>(19)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
    })
}

/// An FTS5 expression matching every word of `q` (each as a prefix), with the user's
/// text quoted so that none of it is FTS syntax; `None` when nothing searchable is left.
fn fts_query(q: &str) -> Option<String> {
    // Control characters (a NUL would end the string inside SQLite) separate words.
    let q: String = q
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let terms: Vec<String> = q
        .split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .take(MAX_SEARCH_WORDS)
        .map(|word| format!("\"{}\"*", word.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

fn encode_cursor(video: &VideoView) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", video.created_at, video.uri))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), AppViewError> {
    let invalid = || AppViewError::InvalidRequest("the cursor is not one we gave out".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created_at, uri) = text.split_once('\n').ok_or_else(invalid)?;
    Ok((created_at.to_string(), uri.to_string()))
}

/// A public video as the sitemap and feeds list it: less than a [`VideoView`], and read
/// without parsing, so 100 000 of them come out in a fraction of a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVideo {
    /// `at://` URI.
    pub uri: String,
    /// The creator's DID.
    pub did: String,
    /// Their handle.
    pub handle: Option<String>,
    /// Their display name.
    pub creator_name: Option<String>,
    /// The record key.
    pub rkey: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: Option<String>,
    /// The duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// When it was published.
    pub created_at: String,
    /// When this version was indexed.
    pub indexed_at: String,
}

impl VideoIndex {
    /// Public videos, newest first: `limit` of them after skipping `offset`, of one
    /// creator or of everyone.
    pub async fn listed_videos(
        &self,
        creator: Option<&Did>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<ListedVideo>, DbError> {
        let mut params: Vec<Value> = vec![
            i64::from(limit).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ];
        let by_creator = match creator {
            Some(did) => {
                params.push(did.to_string().into());
                "AND v.did = ?3"
            }
            None => "",
        };
        let sql = format!(
            "SELECT v.uri, v.did, c.handle, c.display_name, v.rkey, v.title, v.description,
                    v.duration_ms, v.created_at, v.indexed_at
             FROM videos v JOIN creators c ON c.did = v.did
             WHERE {VISIBLE} {by_creator}
             ORDER BY v.created_at DESC, v.uri LIMIT ?1 OFFSET ?2"
        );
        self.db
            .read(&sql, params, |row| {
                Ok(ListedVideo {
                    uri: row.get(0)?,
                    did: row.get(1)?,
                    handle: row.get(2)?,
                    creator_name: row.get(3)?,
                    rkey: row.get(4)?,
                    title: row.get(5)?,
                    description: row.get(6)?,
                    duration_ms: row.get(7)?,
                    created_at: row.get(8)?,
                    indexed_at: row.get(9)?,
                })
            })
            .await
    }

    /// How many public videos there are, and how many creators with at least one.
    pub async fn listed_counts(&self) -> Result<(u64, u64), DbError> {
        let sql = format!(
            "SELECT COUNT(*), COUNT(DISTINCT v.did)
             FROM videos v JOIN creators c ON c.did = v.did WHERE {VISIBLE}"
        );
        let mut rows = self.db.conn().query(&sql, ()).await?;
        let Some(row) = rows.next().await? else {
            return Ok((0, 0));
        };
        let count = |i| row.get::<i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
        Ok((count(0)?, count(1)?))
    }

    /// Creators with public videos, by DID: `limit` after skipping `offset`.
    pub async fn listed_creators(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<CreatorRow>, DbError> {
        let sql = format!(
            "SELECT c.did, c.handle, c.display_name, c.description, c.avatar_cid
             FROM creators c
             WHERE c.account_status IS NULL
               AND EXISTS (SELECT 1 FROM videos v WHERE v.did = c.did AND {VISIBLE})
             ORDER BY c.did LIMIT ?1 OFFSET ?2"
        );
        self.db
            .read(
                &sql,
                vec![
                    Value::from(i64::from(limit)),
                    Value::from(i64::try_from(offset).unwrap_or(i64::MAX)),
                ],
                creator_row,
            )
            .await
    }
}

/// A registered creator as pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorRow {
    /// The DID.
    pub did: Did,
    /// The handle.
    pub handle: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The profile's description.
    pub description: Option<String>,
    /// The avatar's CID.
    pub avatar_cid: Option<Cid>,
}

impl VideoIndex {
    /// The registered creator `did_or_handle` (as stored: DIDs as they are, handles in
    /// lowercase), with their profile, while their account is active.
    pub async fn creator(&self, did_or_handle: &str) -> Result<Option<CreatorRow>, DbError> {
        Ok(self
            .db
            .read(
                "SELECT did, handle, display_name, description, avatar_cid FROM creators
                 WHERE (did = ?1 OR handle = ?1) AND account_status IS NULL LIMIT 1",
                vec![Value::Text(did_or_handle.to_string())],
                creator_row,
            )
            .await?
            .pop())
    }
}

/// A creator from a `SELECT did, handle, display_name, description, avatar_cid` row.
fn creator_row(row: &libsql::Row) -> Result<CreatorRow, DbError> {
    Ok(CreatorRow {
        did: parsed(row, 0, "DID")?,
        handle: row.get(1)?,
        display_name: row.get(2)?,
        description: row.get(3)?,
        avatar_cid: parsed_opt(row, 4, "CID")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_quoted_never_syntax() {
        assert_eq!(fts_query("rust deno"), Some(r#""rust"* "deno"*"#.into()));
        assert_eq!(
            fts_query(r#"a"b OR NEAR(x)"#),
            Some(r#""a""b"* "OR"* "NEAR(x)"*"#.into())
        );
        assert_eq!(fts_query("% * \""), None);
        assert_eq!(fts_query("a\0b\x07"), Some(r#""a"* "b"*"#.into()));
        assert_eq!(fts_query(""), None);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let video = VideoView {
            uri: "at://did:plc:a/place.stream.video/3k".parse().expect("uri"),
            cid: crate::atproto::blob::blob_cid(b"record"),
            did: crate::atproto::syntax::did("did:plc:a").expect("did"),
            creator_did: crate::atproto::syntax::did("did:plc:a").expect("did"),
            handle: None,
            rkey: "3k".into(),
            title: "t".into(),
            description: None,
            duration_ms: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            indexed_at: "2026-01-01T00:00:00.000Z".into(),
            thumb: None,
            creator: None,
            livestream: None,
            source: None,
            creator_name: None,
            avatar_cid: None,
            meta: VideoMeta::default(),
        };
        let cursor = encode_cursor(&video);
        assert_eq!(
            decode_cursor(&cursor).expect("decodes"),
            (video.created_at.clone(), video.uri.to_string())
        );
        assert!(decode_cursor("not a cursor!").is_err());
    }
}

/// Property tests: any text given as a cursor is read or refused with an error, never a
/// panic; cursors we give out read back as what they encode.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_cursor_text_is_read_or_refused_cleanly(text in prop_oneof![".{0,80}", "[A-Za-z0-9_-]{0,80}"]) {
            if let Ok((created_at, uri)) = decode_cursor(&text) {
                prop_assert!(!created_at.contains('\n'));
                let _ = uri;
            }
        }

        #[test]
        fn cursors_we_give_out_read_back(created_at in "[^\n]{0,40}", uri in ".{0,80}") {
            let encoded = URL_SAFE_NO_PAD.encode(format!("{created_at}\n{uri}"));
            let (a, b) = decode_cursor(&encoded).expect("our cursor");
            prop_assert_eq!(a, created_at);
            prop_assert_eq!(b, uri);
        }
    }
}
