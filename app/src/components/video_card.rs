//! Video cards and the responsive grid that holds them.
//!
//! A card's poster is the video's thumbnail in a fixed 16:9 box (lazy-loaded, so nothing
//! shifts while it arrives); hovering or focusing the card cycles through its sprite's
//! frames (`site.js` reads `data-sprite-vtt`; `prefers-reduced-motion` stops the cycling).
//! A video with content warnings shows a blurred poster naming them, and no preview.

use leptos::prelude::*;

use super::Avatar;
use crate::catalog::{VideoSummary, format_date_time, format_duration, relative_time};

/// A grid of video cards.
#[component]
pub fn VideoGrid(
    /// The videos, in display order.
    videos: Vec<VideoSummary>,
    /// The server's time when the page was made, for relative dates.
    now: String,
    /// Show the start of each description (search results).
    #[prop(optional)]
    snippets: bool,
    /// The grid is a section under an `<h2>` (its cards' titles are `<h3>`s, else `<h2>`s).
    #[prop(optional)]
    nested: bool,
) -> impl IntoView {
    view! {
        <ul class="video-grid">
            {videos
                .into_iter()
                .enumerate()
                .map(|(n, video)| {
                    view! { <li><VideoCard video now=now.clone() snippet=snippets nested lead=n == 0 /></li> }
                })
                .collect_view()}
        </ul>
    }
}

/// The first `max` characters of `text`, on one line.
fn snippet_of(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// One video: poster with duration, title, creator (avatar and name, linking to their
/// page) and when it was published.
#[component]
pub fn VideoCard(
    /// The video to show.
    video: VideoSummary,
    /// The server's time when the page was made.
    now: String,
    /// A compact, horizontal card (the watch page's list of related videos).
    #[prop(optional)]
    compact: bool,
    /// Show the start of the description.
    #[prop(optional)]
    snippet: bool,
    /// The card is in a section under an `<h2>` (its title is an `<h3>`, else an `<h2>`;
    /// compact cards' always are).
    #[prop(optional)]
    nested: bool,
    /// It is the page's first, likely its largest paint: its poster is fetched at once
    /// and first (the others wait until they are near the viewport).
    #[prop(optional)]
    lead: bool,
) -> impl IntoView {
    let snippet = snippet
        .then(|| video.description.as_deref().map(|d| snippet_of(d, 140)))
        .flatten();
    let href = video.watch_path();
    let duration = video.duration_ms.map(format_duration);
    let exact = format_date_time(&video.created_at);
    let ago = relative_time(&video.created_at, &now).unwrap_or_else(|| exact.clone());
    let creator = video.creator_label().to_string();
    let creator_for_avatar = creator.clone();
    let creator_path = video.creator_path();
    let avatar_link = creator_path.clone();
    let title = video.title.clone();
    let title_hint = video.title.clone();
    let avatar = video.avatar_path();
    let thumbnail = video.thumbnail_path();
    let warning = video.warning_text();
    // No moving preview of a video behind a warning.
    let sprite = warning.is_none().then(|| video.sprite_vtt_path());
    let class = match (compact, warning.is_some()) {
        (true, false) => "video-card video-card--compact",
        (true, true) => "video-card video-card--compact video-card--warned",
        (false, false) => "video-card",
        (false, true) => "video-card video-card--warned",
    };

    view! {
        <article class=class data-sprite-vtt=sprite>
            <a href=href.clone() class="video-card__poster" tabindex="-1" aria-hidden="true">
                <img
                    src=thumbnail
                    alt=""
                    loading=if lead { "eager" } else { "lazy" }
                    fetchpriority=lead.then_some("high")
                    decoding="async"
                    width="320"
                    height="180"
                />
                {duration.map(|d| view! { <span class="video-card__duration">{d}</span> })}
                {warning.clone().map(|w| view! { <span class="video-card__warning">{w}</span> })}
            </a>
            <div class="video-card__meta">
                {(!compact).then(move || {
                    view! {
                        <a href=avatar_link class="video-card__avatar" tabindex="-1" aria-hidden="true">
                            <Avatar src=avatar name=creator_for_avatar size=36 />
                        </a>
                    }
                })}
                <div class="video-card__text">
                    {if compact || nested {
                        view! { <h3 class="video-card__title" title=title_hint><a href=href>{title}</a></h3> }.into_any()
                    } else {
                        view! { <h2 class="video-card__title" title=title_hint><a href=href>{title}</a></h2> }.into_any()
                    }}
                    <p class="video-card__creator">
                        <a href=creator_path>{creator}</a>
                    </p>
                    <p class="video-card__date">
                        <time datetime=video.created_at.clone() title=exact>{ago}</time>
                    </p>
                    {warning.map(|w| view! { <p class="visually-hidden">{w}</p> })}
                    {snippet.map(|text| view! { <p class="video-card__snippet">{text}</p> })}
                </div>
            </div>
        </article>
    }
    .into_any()
}
