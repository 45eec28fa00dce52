//! The video player's markup. Without JavaScript it is a `<video>` with native controls
//! (where the browser plays HLS itself); `site.js` turns it into the full player: hls.js
//! (loaded on intent), custom labelled controls, keyboard shortcuts, speed, quality with
//! Auto, audio tracks, subtitles, picture in picture, chapters and storyboard previews on
//! the seek bar, resuming where the viewer left off, remembered preferences, and an
//! overlay with "Try again" when playback fails.
//!
//! A video with content warnings is covered by a click-through naming them: a
//! `<details>` element, so it opens without JavaScript too; `site.js` sets the player up
//! only once it is open.

use leptos::prelude::*;

use crate::catalog::VideoSummary;
use crate::chapters::Chapter;

/// A 16:9 player for `video`, starting at `start` seconds, with `chapters` marked on its
/// seek bar.
#[component]
pub fn Player(
    /// What to play.
    video: VideoSummary,
    /// Where to start, in seconds (`?t=`).
    #[prop(optional)]
    start: u64,
    /// The video's chapters.
    #[prop(optional)]
    chapters: Vec<Chapter>,
) -> impl IntoView {
    let label = format!("Video: {}", video.title);
    let gate = (!video.warnings.is_empty()).then(|| {
        let names = video.warnings.join(", ");
        view! {
            <details class="player__gate">
                <summary class="player__gate-cover">
                    <span class="player__gate-title">"Content warning"</span>
                    <span class="player__gate-names">{names}</span>
                    <span class="player__gate-button">"Watch anyway"</span>
                </summary>
            </details>
        }
    });
    let chapters = serde_json::to_string(&chapters).unwrap_or_else(|_| "[]".into());
    let duration = video
        .duration_ms
        .map(|ms| format!("{:.3}", ms as f64 / 1000.0))
        .unwrap_or_default();
    view! {
        <div
            class="player"
            data-src=video.playlist_path()
            data-storyboard=video.storyboard_vtt_path()
            data-start=start.to_string()
            data-video=video.uri.clone()
            data-duration=duration
            data-chapters=chapters
        >
            <video
                class="player__video"
                controls=true
                playsinline=true
                preload="metadata"
                poster=video.thumbnail_path()
                aria-label=label
            ></video>
            {gate}
        </div>
    }
}
