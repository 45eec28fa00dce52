//! The video player's markup. Without JavaScript it is a `<video>` with native controls
//! (where the browser plays HLS itself); `site.js` turns it into the full player: hls.js,
//! custom labelled controls, keyboard shortcuts, storyboard previews on the seek bar,
//! remembered volume and theater mode, and an overlay when playback fails.

use leptos::prelude::*;

use crate::catalog::VideoSummary;

/// A 16:9 player for `video`, starting at `start` seconds.
#[component]
pub fn Player(
    /// What to play.
    video: VideoSummary,
    /// Where to start, in seconds (`?t=`).
    #[prop(optional)]
    start: u64,
) -> impl IntoView {
    let label = format!("Video: {}", video.title);
    view! {
        <div
            class="player"
            data-src=video.playlist_path()
            data-storyboard=video.storyboard_vtt_path()
            data-start=start.to_string()
        >
            <video
                class="player__video"
                controls=true
                playsinline=true
                preload="metadata"
                poster=video.thumbnail_path()
                aria-label=label
            ></video>
        </div>
    }
}
