//! Atom feeds (RFC 4287): `/feed.atom`, the newest videos on the site, and
//! `/profile/{actor}/feed.atom`, one creator's. Each entry has its title, watch link,
//! author, publication and update times, summary, and its thumbnail as Media RSS
//! (`media:thumbnail`), which feed readers show beside the entry.
//!
//! Written with `atom_syndication`, so the document is well-formed Atom whatever the
//! titles hold (escaped; characters XML cannot carry are dropped first).

use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{Entry, Feed, FixedDateTime, Generator, Link, Person, Text};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{summary, xml, xml_text};
use crate::appview::query::ListedVideo;
use crate::atproto::syntax::{self, AtIdentifier};
use crate::web::{AppState, XrpcError};

/// Entries per feed.
const FEED_ENTRIES: u32 = 50;
/// Longest summary, in characters.
const MAX_SUMMARY_CHARS: usize = 4000;
const ATOM: &str = "application/atom+xml; charset=utf-8";
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// `GET /feed.atom`.
pub(in crate::web) async fn site(State(state): State<AppState>) -> Result<Response, XrpcError> {
    let body = state
        .documents
        .get(&state.appview, "/feed.atom", async {
            let videos = state
                .appview
                .index()
                .listed_videos(None, 0, FEED_ENTRIES)
                .await
                .map_err(|err| XrpcError::unavailable("the feed", err))?;
            let public = state.catalog.public_url();
            Ok(write_feed(
                &public,
                &FeedHead {
                    path: "/feed.atom".into(),
                    page: "/".into(),
                    title: "Streamhut: the newest videos".into(),
                    author: "Streamhut".into(),
                },
                &videos,
            ))
        })
        .await?;
    Ok(xml(ATOM, body))
}

/// `GET /profile/{actor}/feed.atom`.
pub(in crate::web) async fn creator(
    State(state): State<AppState>,
    Path(actor): Path<String>,
) -> Result<Response, XrpcError> {
    let not_found = || XrpcError::not_found("no creator with that handle or DID has a feed here");
    let key = match syntax::actor(&actor).map_err(|_| not_found())? {
        AtIdentifier::Did(did) => did.to_string(),
        AtIdentifier::Handle(handle) => handle.to_string(),
    };
    let body = state
        .documents
        .get(
            &state.appview,
            &format!("/profile/{key}/feed.atom"),
            async {
                let unavailable = |err| XrpcError::unavailable("the feed", err);
                let index = state.appview.index();
                let creator = index
                    .creator(&key)
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(not_found)?;
                let videos = index
                    .listed_videos(Some(&creator.did), 0, FEED_ENTRIES)
                    .await
                    .map_err(unavailable)?;
                let handle = creator.handle.as_deref().unwrap_or(creator.did.as_str());
                let name = creator
                    .display_name
                    .clone()
                    .filter(|name| !name.trim().is_empty())
                    .unwrap_or_else(|| handle.to_string());
                Ok(write_feed(
                    &state.catalog.public_url(),
                    &FeedHead {
                        path: format!("/profile/{handle}/feed.atom"),
                        page: format!("/profile/{handle}"),
                        title: format!("{name} on Streamhut"),
                        author: name,
                    },
                    &videos,
                ))
            },
        )
        .await?;
    Ok(xml(ATOM, body))
}

/// What a feed says about itself.
struct FeedHead {
    /// Its own path.
    path: String,
    /// The page it follows.
    page: String,
    title: String,
    author: String,
}

fn write_feed(public: &str, head: &FeedHead, videos: &[ListedVideo]) -> Bytes {
    let entries: Vec<Entry> = videos.iter().map(|video| entry(public, video)).collect();
    let updated = entries
        .iter()
        .map(|entry| entry.updated)
        .max()
        .unwrap_or_else(|| Utc::now().fixed_offset());
    let mut feed = Feed::default();
    feed.set_id(format!("{public}{}", head.path));
    feed.set_title(Text::plain(xml_text(&head.title)));
    feed.set_updated(updated);
    feed.set_links(vec![
        link(
            &format!("{public}{}", head.path),
            "self",
            "application/atom+xml",
        ),
        link(&format!("{public}{}", head.page), "alternate", "text/html"),
    ]);
    feed.set_authors(vec![person(
        &head.author,
        &format!("{public}{}", head.page),
    )]);
    feed.set_icon(format!("{public}/favicon.svg"));
    let mut generator = Generator::default();
    generator.set_value("Streamhut");
    generator.set_uri(format!("{public}/about"));
    feed.set_generator(generator);
    feed.set_namespaces(BTreeMap::from([(
        "media".to_string(),
        MEDIA_NS.to_string(),
    )]));
    feed.set_entries(entries);
    feed.to_string().into()
}

fn entry(public: &str, video: &ListedVideo) -> Entry {
    let summary = summary(video);
    let watch = format!("{public}{}", summary.watch_path());
    let updated = time(&video.indexed_at).unwrap_or_else(|| Utc::now().fixed_offset());
    let mut entry = Entry::default();
    entry.set_id(video.uri.clone());
    entry.set_title(Text::plain(xml_text(&video.title)));
    entry.set_updated(updated);
    entry.set_published(time(&video.created_at));
    entry.set_links(vec![link(&watch, "alternate", "text/html")]);
    entry.set_authors(vec![person(
        summary.creator_label(),
        &format!("{public}{}", summary.creator_path()),
    )]);
    if let Some(text) = video
        .description
        .as_deref()
        .map(xml_text)
        .filter(|text| !text.trim().is_empty())
    {
        entry.set_summary(Text::plain(
            text.chars().take(MAX_SUMMARY_CHARS).collect::<String>(),
        ));
    }
    let mut thumbnail = Extension::default();
    thumbnail.set_name("media:thumbnail");
    thumbnail.set_attrs(BTreeMap::from([
        (
            "url".to_string(),
            format!("{public}{}", summary.thumbnail_path()),
        ),
        ("width".to_string(), "640".to_string()),
        ("height".to_string(), "360".to_string()),
    ]));
    let mut extensions = ExtensionMap::new();
    extensions.insert(
        "media".to_string(),
        BTreeMap::from([("thumbnail".to_string(), vec![thumbnail])]),
    );
    entry.set_extensions(extensions);
    entry
}

fn link(href: &str, rel: &str, mime_type: &str) -> Link {
    let mut link = Link::default();
    link.set_href(href);
    link.set_rel(rel);
    link.set_mime_type(Some(mime_type.to_string()));
    link
}

fn person(name: &str, uri: &str) -> Person {
    let mut person = Person::default();
    person.set_name(xml_text(name));
    person.set_uri(Some(uri.to_string()));
    person
}

fn time(text: &str) -> Option<FixedDateTime> {
    DateTime::parse_from_rfc3339(text).ok()
}
