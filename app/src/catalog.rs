//! The video catalog as pages see it: the summaries they render and, on the server, the
//! trait through which server functions read them.
//!
//! `app` must not depend on `server` (the dependency runs the other way), so the server
//! implements [`ssr::Catalog`] and puts it into the Leptos context for every request.

use serde::{Deserialize, Serialize};

/// Videos per page of a grid.
pub const PAGE_SIZE: u32 = 24;

/// Longest tag kept from a record, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// One indexed video, as cards, lists and the watch page need it.
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
    /// The creator's display name, when their profile has one.
    pub creator_name: Option<String>,
    /// The CID of the creator's avatar, when their profile has one.
    pub avatar_cid: Option<String>,
    /// The video's title.
    pub title: String,
    /// The description, when the record has one.
    pub description: Option<String>,
    /// Duration in milliseconds, when the record gives one.
    pub duration_ms: Option<u64>,
    /// When the creator published it (RFC 3339).
    pub created_at: String,
    /// Its content warnings, as viewers read them ("Flashing lights"): the player and
    /// the card stay behind a click-through while there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A span of a description that links somewhere (a mention, a link or a tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextLink {
    /// Its first byte in the description.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// Where it goes.
    pub href: String,
    /// Whether that is another site (opened in a new tab, `nofollow`).
    pub external: bool,
}

/// A licence, by name, with its deed when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// "CC BY 4.0", "All rights reserved", or what the record says.
    pub name: String,
    /// The licence's text.
    pub url: Option<String>,
}

/// What only the watch page shows of a video.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoDetails {
    /// Where the description's facets link to.
    pub links: Vec<TextLink>,
    /// Its tags, each with a page of its own.
    pub tags: Vec<String>,
    /// Its licence.
    pub licence: Option<Licence>,
    /// Copyright and credit ("© 2026 Ada · Filmed by Bob").
    pub credit: Option<String>,
    /// The game or activity in it.
    pub activity: Option<String>,
    /// The text of its captions.
    pub transcript: Option<String>,
}

/// A percent-encoded URL query value (what `encodeURIComponent` leaves alone stays).
pub fn encode_query(value: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const QUERY_VALUE: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

impl VideoSummary {
    /// The path of this video's watch page.
    pub fn watch_path(&self) -> String {
        format!("/watch/{}/{}", self.did, self.rkey)
    }

    /// The path of its embeddable player.
    pub fn embed_path(&self) -> String {
        format!("/embed/{}/{}", self.did, self.rkey)
    }

    /// The path of its creator's page.
    pub fn creator_path(&self) -> String {
        format!("/profile/{}", self.handle.as_deref().unwrap_or(&self.did))
    }

    /// Who made it: the display name, else the handle, else the DID.
    pub fn creator_label(&self) -> &str {
        self.creator_name
            .as_deref()
            .or(self.handle.as_deref())
            .unwrap_or(&self.did)
    }

    fn vod(&self, export: &str) -> String {
        format!("/api/vod/{export}?uri={}", encode_query(&self.uri))
    }

    /// Its thumbnail (a JPEG).
    pub fn thumbnail_path(&self) -> String {
        self.vod("getThumbnail")
    }

    /// Its HLS playlist.
    pub fn playlist_path(&self) -> String {
        self.vod("getPlaylist")
    }

    /// The WebVTT of its card preview sprite.
    pub fn sprite_vtt_path(&self) -> String {
        self.vod("getVtt")
    }

    /// The WebVTT of its seek-bar storyboard.
    pub fn storyboard_vtt_path(&self) -> String {
        format!("{}&kind=storyboard", self.vod("getVtt"))
    }

    /// Its creator's avatar, served through us.
    pub fn avatar_path(&self) -> Option<String> {
        self.avatar_cid
            .as_ref()
            .map(|cid| format!("/api/appview/avatar/{}/{cid}", self.did))
    }

    /// The warning a viewer reads before it plays ("Content warning: Violence, Death").
    pub fn warning_text(&self) -> Option<String> {
        (!self.warnings.is_empty())
            .then(|| format!("Content warning: {}", self.warnings.join(", ")))
    }
}

/// The path of the page of videos tagged `tag`.
pub fn tag_path(tag: &str) -> String {
    format!("/tag/{}", encode_query(tag))
}

/// A page of videos and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoPage {
    /// The videos, newest first.
    pub videos: Vec<VideoSummary>,
    /// Pass back for the next page; `None` on the last one.
    pub cursor: Option<String>,
}

/// A creator, as their page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorProfile {
    /// Their DID.
    pub did: String,
    /// Their handle, when verified.
    pub handle: Option<String>,
    /// Their display name.
    pub display_name: Option<String>,
    /// Their profile's description.
    pub description: Option<String>,
    /// Their avatar's CID.
    pub avatar_cid: Option<String>,
}

impl CreatorProfile {
    /// Their page's path (by handle when known).
    pub fn path(&self) -> String {
        format!("/profile/{}", self.handle.as_deref().unwrap_or(&self.did))
    }

    /// What to call them.
    pub fn label(&self) -> &str {
        self.display_name
            .as_deref()
            .or(self.handle.as_deref())
            .unwrap_or(&self.did)
    }

    /// Their avatar, served through us.
    pub fn avatar_path(&self) -> Option<String> {
        self.avatar_cid
            .as_ref()
            .map(|cid| format!("/api/appview/avatar/{}/{cid}", self.did))
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

/// "3 days ago", from two RFC 3339 times (the video's and now).
pub fn relative_time(rfc3339: &str, now_rfc3339: &str) -> Option<String> {
    let seconds = seconds_since_epoch(now_rfc3339)? - seconds_since_epoch(rfc3339)?;
    if seconds < 0 {
        return Some("just now".into());
    }
    let units = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ];
    for (size, unit) in units {
        let n = seconds / size;
        if n >= 1 {
            return Some(format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" }));
        }
    }
    Some("just now".into())
}

/// Seconds since 1970 of an RFC 3339 UTC time (the form we store); `None` otherwise.
fn seconds_since_epoch(rfc3339: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| rfc3339.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `PT1H2M3S`: an ISO 8601 duration, as schema.org wants.
pub fn iso_duration(duration_ms: u64) -> String {
    let total = duration_ms / 1000;
    format!("PT{}H{}M{}S", total / 3600, (total / 60) % 60, total % 60)
}

/// Server side of the catalog: what the server must provide to the pages.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::sync::Arc;

    use super::{CreatorProfile, VideoDetails, VideoPage, VideoSummary};
    use crate::error::AppError;

    /// Read access to the indexed videos and their creators.
    #[async_trait::async_trait]
    pub trait Catalog: Send + Sync + 'static {
        /// The newest videos first, `limit` per page, from `cursor`.
        async fn recent_videos(
            &self,
            limit: u32,
            cursor: Option<String>,
        ) -> Result<VideoPage, AppError>;
        /// Videos whose title or description match `query`, newest first.
        async fn search_videos(
            &self,
            query: &str,
            limit: u32,
            cursor: Option<String>,
        ) -> Result<VideoPage, AppError>;
        /// Videos tagged `tag` (any case), newest first.
        async fn tagged_videos(
            &self,
            tag: &str,
            limit: u32,
            cursor: Option<String>,
        ) -> Result<VideoPage, AppError>;
        /// One video, by its creator (handle or DID) and record key.
        async fn video(&self, actor: &str, rkey: &str) -> Result<Option<VideoSummary>, AppError>;
        /// [`Catalog::video`], with what only its watch page shows.
        async fn watched_video(
            &self,
            actor: &str,
            rkey: &str,
        ) -> Result<Option<(VideoSummary, VideoDetails)>, AppError>;
        /// Videos to watch next: the same creator's first, then the newest others.
        async fn related(
            &self,
            video: &VideoSummary,
            limit: u32,
        ) -> Result<Vec<VideoSummary>, AppError>;
        /// A registered creator, by handle or DID.
        async fn creator(&self, actor: &str) -> Result<Option<CreatorProfile>, AppError>;
        /// A creator's videos, newest first.
        async fn creator_videos(
            &self,
            did: &str,
            limit: u32,
            cursor: Option<String>,
        ) -> Result<VideoPage, AppError>;
        /// The site's public base URL (no trailing slash), for absolute links.
        fn public_url(&self) -> String;
        /// The time now (RFC 3339, UTC), for relative dates.
        fn now(&self) -> String;
    }

    /// The catalog the server provided for this request.
    pub fn catalog() -> Result<Arc<dyn Catalog>, AppError> {
        leptos::prelude::use_context::<Arc<dyn Catalog>>().ok_or(AppError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        encode_query, format_date, format_date_time, format_duration, iso_duration, relative_time,
    };

    #[test]
    fn relative_times_read_naturally() {
        let now = "2026-03-04T12:00:00.000Z";
        assert_eq!(
            relative_time("2026-03-01T12:00:00.000Z", now).as_deref(),
            Some("3 days ago")
        );
        assert_eq!(
            relative_time("2026-03-04T11:59:00.000Z", now).as_deref(),
            Some("1 minute ago")
        );
        assert_eq!(
            relative_time("2025-01-01T00:00:00.000Z", now).as_deref(),
            Some("1 year ago")
        );
        assert_eq!(
            relative_time("2026-03-04T11:59:59.000Z", now).as_deref(),
            Some("just now")
        );
        assert_eq!(relative_time("whenever", now), None);
    }

    #[test]
    fn urls_and_durations_are_encoded() {
        assert_eq!(
            encode_query("at://did:plc:a/x"),
            "at%3A%2F%2Fdid%3Aplc%3Aa%2Fx"
        );
        assert_eq!(iso_duration(3_723_000), "PT1H2M3S");
    }

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
