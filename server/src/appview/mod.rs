//! The AppView's read side: queries over the indexed videos, as pages and the API need
//! them. Errors are logged here, with their cause, and reach the page only as
//! [`AppError::Unavailable`].

use app::catalog::VideoSummary;
use app::catalog::ssr::Catalog;
use app::error::AppError;

use crate::db::{Db, DbError};

/// Most words a search matches on; the rest are ignored.
const MAX_SEARCH_WORDS: usize = 8;

const SUMMARY_COLUMNS: &str = "v.uri, v.did, v.rkey, c.handle, v.title, v.duration_ms, v.created_at
     FROM videos v LEFT JOIN creators c ON c.did = v.did";

/// The video index in the database.
pub struct VideoIndex {
    db: Db,
}

impl VideoIndex {
    /// An index over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn summaries(
        &self,
        sql: &str,
        params: Vec<libsql::Value>,
    ) -> Result<Vec<VideoSummary>, DbError> {
        let mut rows = self.db.conn().query(sql, params).await?;
        let mut videos = Vec::new();
        while let Some(row) = rows.next().await? {
            videos.push(VideoSummary {
                uri: row.get(0)?,
                did: row.get(1)?,
                rkey: row.get(2)?,
                handle: row.get(3)?,
                title: row.get(4)?,
                duration_ms: row
                    .get::<Option<i64>>(5)?
                    .and_then(|ms| u64::try_from(ms).ok()),
                created_at: row.get(6)?,
            });
        }
        Ok(videos)
    }
}

#[async_trait::async_trait]
impl Catalog for VideoIndex {
    async fn recent_videos(&self, limit: u32) -> Result<Vec<VideoSummary>, AppError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} ORDER BY v.created_at DESC, v.uri LIMIT ?1");
        self.summaries(&sql, vec![libsql::Value::from(limit)])
            .await
            .map_err(unavailable)
    }

    async fn search_videos(&self, query: &str, limit: u32) -> Result<Vec<VideoSummary>, AppError> {
        let words: Vec<&str> = query.split_whitespace().take(MAX_SEARCH_WORDS).collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut params: Vec<libsql::Value> = words
            .iter()
            .map(|word| libsql::Value::from(format!("%{}%", escape_like(word))))
            .collect();
        let conditions: Vec<String> = (1..=words.len())
            .map(|i| {
                format!(
                    "(v.title LIKE ?{i} ESCAPE '\\' OR COALESCE(v.description, '') LIKE ?{i} ESCAPE '\\')"
                )
            })
            .collect();
        params.push(libsql::Value::from(limit));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} WHERE {} ORDER BY v.created_at DESC, v.uri LIMIT ?{}",
            conditions.join(" AND "),
            params.len(),
        );
        self.summaries(&sql, params).await.map_err(unavailable)
    }
}

/// Makes `%`, `_` and `\` match themselves in a `LIKE … ESCAPE '\'` pattern.
fn escape_like(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for ch in word.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn unavailable(err: DbError) -> AppError {
    tracing::error!(error = %err, "video index query failed");
    AppError::Unavailable
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(escape_like("100%_done\\"), "100\\%\\_done\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }
}
