//! `/sitemap.xml`: every public watch page with Google's video extension (title,
//! description, thumbnail, duration, publication date, player), and every creator page.
//!
//! Up to [`PAGE_URLS`] URLs it is one `urlset`; beyond, `/sitemap.xml` is a
//! `sitemapindex` of `/sitemap/{n}.xml` pages of at most that many URLs each (the
//! protocol's limit), creators first, then videos newest first. Withheld videos and
//! hidden creators never appear: the index's public reads skip them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{xml, xml_text};
use crate::appview::query::{CreatorRow, ListedVideo};
use crate::web::{AppState, XrpcError};

/// Most URLs in one sitemap file.
pub const PAGE_URLS: u64 = 50_000;
/// Longest description the video extension takes.
const MAX_DESCRIPTION_CHARS: usize = 2048;
/// The longest duration the video extension takes, in seconds (8 hours).
const MAX_DURATION_SECS: i64 = 28_800;

const SITEMAP_NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
const VIDEO_NS: &str = "http://www.google.com/schemas/sitemap-video/1.1";

/// `GET /sitemap.xml`.
pub(in crate::web) async fn index(State(state): State<AppState>) -> Result<Response, XrpcError> {
    let body = state
        .documents
        .get(&state.appview, "/sitemap.xml", async {
            let (videos, creators) = counts(&state).await?;
            let total = videos + creators;
            if total <= PAGE_URLS {
                page(&state, 1, creators).await
            } else {
                Ok(sitemap_index(
                    &state.catalog.public_url(),
                    total.div_ceil(PAGE_URLS),
                ))
            }
        })
        .await?;
    Ok(xml("application/xml; charset=utf-8", body))
}

/// `GET /sitemap/{n}.xml`.
pub(in crate::web) async fn numbered(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, XrpcError> {
    let not_found = || XrpcError::not_found("no such sitemap page");
    let n: u64 = file
        .strip_suffix(".xml")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(not_found)?;
    let body = state
        .documents
        .get(&state.appview, &format!("/sitemap/{n}.xml"), async {
            let (videos, creators) = counts(&state).await?;
            if (n - 1) * PAGE_URLS >= (videos + creators).max(1) {
                return Err(not_found());
            }
            page(&state, n, creators).await
        })
        .await?;
    Ok(xml("application/xml; charset=utf-8", body))
}

async fn counts(state: &AppState) -> Result<(u64, u64), XrpcError> {
    state
        .appview
        .index()
        .listed_counts()
        .await
        .map_err(|err| XrpcError::unavailable("the sitemap", err))
}

/// Page `n` (from 1) of the URLs: creators first, then videos.
async fn page(state: &AppState, n: u64, creator_count: u64) -> Result<Bytes, XrpcError> {
    let index = state.appview.index();
    let unavailable = |err| XrpcError::unavailable("the sitemap", err);
    let start = (n - 1) * PAGE_URLS;
    let end = start + PAGE_URLS;
    let creators = if start < creator_count {
        let limit = u32::try_from(creator_count.min(end) - start).unwrap_or(u32::MAX);
        index
            .listed_creators(start, limit)
            .await
            .map_err(unavailable)?
    } else {
        Vec::new()
    };
    let video_start = start.saturating_sub(creator_count);
    let video_limit = end.saturating_sub(creator_count.max(start));
    let videos = if video_limit > 0 {
        index
            .listed_videos(
                None,
                video_start,
                u32::try_from(video_limit).unwrap_or(u32::MAX),
            )
            .await
            .map_err(unavailable)?
    } else {
        Vec::new()
    };
    write_urlset(&state.catalog.public_url(), &creators, &videos)
        .map_err(|err| XrpcError::unavailable("the sitemap", err))
}

/// A `urlset` of `creators`' pages and `videos`' watch pages.
pub fn write_urlset(
    public: &str,
    creators: &[CreatorRow],
    videos: &[ListedVideo],
) -> std::io::Result<Bytes> {
    let mut writer = Writer::new(Vec::with_capacity(256 + videos.len() * 700));
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("urlset")
        .with_attribute(("xmlns", SITEMAP_NS))
        .with_attribute(("xmlns:video", VIDEO_NS))
        .write_inner_content(|w| {
            for creator in creators {
                let path = format!(
                    "/profile/{}",
                    creator.handle.as_deref().unwrap_or(creator.did.as_str())
                );
                w.create_element("url").write_inner_content(|w| {
                    w.create_element("loc")
                        .write_text_content(BytesText::new(&format!("{public}{path}")))?;
                    Ok(())
                })?;
            }
            for video in videos {
                write_video(w, public, video)?;
            }
            Ok(())
        })?;
    Ok(writer.into_inner().into())
}

fn write_video(w: &mut Writer<Vec<u8>>, public: &str, video: &ListedVideo) -> std::io::Result<()> {
    let summary = super::summary(video);
    let title = xml_text(&video.title);
    let description = video
        .description
        .as_deref()
        .map(xml_text)
        .filter(|text| !text.trim().is_empty())
        .unwrap_or_else(|| title.clone());
    let description: String = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
    w.create_element("url").write_inner_content(|w| {
        w.create_element("loc")
            .write_text_content(BytesText::new(&format!("{public}{}", summary.watch_path())))?;
        if let Some(at) = w3c_time(&video.indexed_at) {
            w.create_element("lastmod")
                .write_text_content(BytesText::new(&at))?;
        }
        w.create_element("video:video").write_inner_content(|w| {
            w.create_element("video:thumbnail_loc")
                .write_text_content(BytesText::new(&format!(
                    "{public}{}",
                    summary.thumbnail_path()
                )))?;
            w.create_element("video:title")
                .write_text_content(BytesText::new(&title))?;
            w.create_element("video:description")
                .write_text_content(BytesText::new(&description))?;
            w.create_element("video:player_loc")
                .write_text_content(BytesText::new(&format!("{public}{}", summary.embed_path())))?;
            if let Some(secs) = video
                .duration_ms
                .map(|ms| (ms + 500) / 1000)
                .filter(|secs| (1..=MAX_DURATION_SECS).contains(secs))
            {
                w.create_element("video:duration")
                    .write_text_content(BytesText::new(&secs.to_string()))?;
            }
            if let Some(at) = w3c_time(&video.created_at) {
                w.create_element("video:publication_date")
                    .write_text_content(BytesText::new(&at))?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

/// A `sitemapindex` of `pages` numbered files.
fn sitemap_index(public: &str, pages: u64) -> Bytes {
    let mut body = String::with_capacity(128 + pages as usize * 80);
    body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    body.push_str(&format!("<sitemapindex xmlns=\"{SITEMAP_NS}\">"));
    for n in 1..=pages {
        body.push_str(&format!(
            "<sitemap><loc>{}/sitemap/{n}.xml</loc></sitemap>",
            quick_xml::escape::escape(public)
        ));
    }
    body.push_str("</sitemapindex>");
    body.into()
}

/// An RFC 3339 time as the sitemap protocol writes it; `None` when it is not one.
pub fn w3c_time(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}
