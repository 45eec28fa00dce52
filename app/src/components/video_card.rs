//! Video cards and the responsive grid that holds them.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::catalog::{VideoSummary, format_date, format_duration};

/// A grid of video cards.
#[component]
pub fn VideoGrid(
    /// The videos, in display order.
    videos: Vec<VideoSummary>,
) -> impl IntoView {
    view! {
        <ul class="video-grid">
            {videos.into_iter().map(|video| view! { <li><VideoCard video /></li> }).collect_view()}
        </ul>
    }
}

/// One video: poster, duration, title, creator and date, all linking to the watch page.
#[component]
pub fn VideoCard(
    /// The video to show.
    video: VideoSummary,
) -> impl IntoView {
    let href = video.watch_path();
    let initial = video
        .title
        .chars()
        .next()
        .unwrap_or('▶')
        .to_uppercase()
        .to_string();
    let duration = video.duration_ms.map(format_duration);
    let date = format_date(&video.created_at);
    let creator = video.creator_label().to_string();

    view! {
        <article class="video-card">
            <A href=href.clone() attr:class="video-card__poster" attr:tabindex="-1" attr:aria-hidden="true">
                <span class="video-card__initial">{initial}</span>
                {duration.map(|d| view! { <span class="video-card__duration">{d}</span> })}
            </A>
            <div class="video-card__meta">
                <h3 class="video-card__title">
                    <A href=href>{video.title}</A>
                </h3>
                <p class="video-card__creator">{creator}</p>
                <p class="video-card__date">
                    <time datetime=video.created_at>{date}</time>
                </p>
            </div>
        </article>
    }
}
