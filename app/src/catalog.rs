//! The video catalog as pages see it: the summaries they render and, on the server, the
//! trait through which server functions read them.
//!
//! `app` must not depend on `server` (the dependency runs the other way), so the server
//! implements [`ssr::Catalog`] and puts it into the Leptos context for every request.

use serde::{Deserialize, Serialize};

/// Longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// One indexed video, as a card in a grid or a list needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoSummary {
    /// The record's `at://` URI.
    pub uri: String,
    /// The creator's DID.
    pub did: String,
    /// The record key, which together with the DID names the watch page.
    pub rkey: String,
    /// The creator's handle, when known.
    pub handle: Option<String>,
    /// The video's title.
    pub title: String,
    /// Duration in milliseconds, when the record gives one.
    pub duration_ms: Option<u64>,
    /// When the creator published it (RFC 3339).
    pub created_at: String,
}

impl VideoSummary {
    /// The path of this video's watch page.
    pub fn watch_path(&self) -> String {
        format!("/watch/{}/{}", self.did, self.rkey)
    }

    /// Who made it: the handle if known, else the DID.
    pub fn creator_label(&self) -> &str {
        self.handle.as_deref().unwrap_or(&self.did)
    }
}

/// `h:mm:ss` or `m:ss`, as video players show durations.
pub fn format_duration(duration_ms: u64) -> String {
    let total = duration_ms / 1000;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `2026-11-21T10:00:00Z` → `Nov 21, 2026`; anything unparseable is shown as given.
pub fn format_date(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = rfc3339.get(..10).unwrap_or_default().split('-');
    let parsed = (|| {
        let year: u32 = parts.next()?.parse().ok()?;
        let month: usize = parts.next()?.parse().ok()?;
        let day: u32 = parts.next()?.parse().ok()?;
        Some(format!(
            "{} {day}, {year}",
            MONTHS.get(month.checked_sub(1)?)?
        ))
    })();
    parsed.unwrap_or_else(|| rfc3339.to_string())
}

/// `2026-11-21T10:04:05.000Z` → `Nov 21, 2026, 10:04 UTC` (times we store are UTC).
pub fn format_date_time(rfc3339: &str) -> String {
    let date = format_date(rfc3339);
    match rfc3339.get(10..16) {
        Some(time) if time.starts_with('T') && date != rfc3339 => {
            format!("{date}, {} UTC", &time[1..])
        }
        _ => date,
    }
}

/// Server side of the catalog: what the server must provide to the pages.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use super::VideoSummary;
    use crate::error::AppError;

    /// Read access to the indexed videos.
    #[async_trait::async_trait]
    pub trait Catalog: Send + Sync + 'static {
        /// The newest videos first, at most `limit`.
        async fn recent_videos(&self, limit: u32) -> Result<Vec<VideoSummary>, AppError>;
        /// Videos whose title or description match `query`, newest first, at most `limit`.
        async fn search_videos(
            &self,
            query: &str,
            limit: u32,
        ) -> Result<Vec<VideoSummary>, AppError>;
    }

    /// The catalog the server provided for this request.
    pub fn catalog() -> Result<Arc<dyn Catalog>, AppError> {
        leptos::prelude::use_context::<Arc<dyn Catalog>>().ok_or(AppError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::{format_date, format_date_time, format_duration};

    #[test]
    fn dates_are_short_and_tolerant() {
        assert_eq!(format_date("2026-11-21T10:00:00.000Z"), "Nov 21, 2026");
        assert_eq!(format_date("2026-01-02"), "Jan 2, 2026");
        assert_eq!(format_date("2026-13-02T00:00:00Z"), "2026-13-02T00:00:00Z");
        assert_eq!(format_date("soon"), "soon");
        assert_eq!(
            format_date_time("2026-11-21T10:04:05.000Z"),
            "Nov 21, 2026, 10:04 UTC"
        );
        assert_eq!(format_date_time("2026-01-02"), "Jan 2, 2026");
        assert_eq!(format_date_time("never"), "never");
    }

    #[test]
    fn durations_read_like_a_player() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(59_999), "0:59");
        assert_eq!(format_duration(61_000), "1:01");
        assert_eq!(format_duration(3_600_000), "1:00:00");
        assert_eq!(format_duration(36_061_000), "10:01:01");
    }
}
