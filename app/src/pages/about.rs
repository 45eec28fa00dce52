//! `/about`: what a viewer can do here and where the videos come from.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};

/// The player's keyboard shortcuts, as the `?` overlay lists them.
const SHORTCUTS: &[(&str, &str)] = &[
    ("Space or K", "Play or pause"),
    ("J / L", "Back or forward 10 seconds"),
    ("← / →", "Back or forward 5 seconds"),
    ("↑ / ↓", "Volume up or down"),
    ("M", "Mute"),
    ("< / >", "Slower or faster"),
    ("C", "Captions on or off"),
    ("I", "Picture in picture"),
    ("F", "Full screen"),
    ("T", "Theater mode"),
    ("0 – 9", "Jump to 0 % – 90 % of the video"),
    ("?", "Show the shortcuts"),
];

/// What Streamhut is, for the people watching it.
#[component]
pub fn AboutPage() -> impl IntoView {
    view! {
        <Title text="About" />
        <Meta
            name="description"
            content="Streamhut plays the recorded streams of AT Protocol creators: no account, no ads, no tracking."
        />
        <article class="prose">
            <h1>"About Streamhut"</h1>
            <p>
                "Streamhut is a place to watch the recorded live streams of creators on "
                <a href="https://stream.place/" rel="noopener">"stream.place"</a>
                ". You don’t need an account: open a video and it plays, in any modern browser, on a phone or a big screen."
            </p>

            <h2>"Watching"</h2>
            <ul>
                <li>"Hover over a video (or tab to it) to see a preview of what’s inside."</li>
                <li>"Hover over the player’s progress bar to see the frame at that time; marks on it show the video’s chapters, listed under its description."</li>
                <li>
                    "The settings button sets the speed (from a quarter to twice as fast), the quality (Auto picks it for your connection), "
                    "the audio track when a video has more than one, and subtitles."
                </li>
                <li>"When a video has captions, the CC button turns them on; Streamhut remembers your choice."</li>
                <li>"Watch in a small floating window with the picture-in-picture button."</li>
                <li>"Come back to a video you left halfway and the player offers to go on where you stopped."</li>
                <li>"The player remembers your volume, speed and whether you like theater mode."</li>
                <li>"Videos a creator marked with a content warning (flashing lights, say) wait behind a notice until you choose to watch."</li>
                <li>"Tags lead to every video with the same tag; search finds words in titles, descriptions, tags and what is said in captioned videos."</li>
                <li>
                    "Share a video with the Share button; tick “at current time” to send people to the moment you’re watching. "
                    "Links shared on social sites show the video’s title and picture, and can play in place."
                </li>
            </ul>

            <h2>"Keyboard shortcuts"</h2>
            <dl class="shortcut-list">
                {SHORTCUTS
                    .iter()
                    .map(|(keys, action)| view! { <dt><kbd>{*keys}</kbd></dt><dd>{*action}</dd> })
                    .collect_view()}
            </dl>

            <h2>"Where the videos come from"</h2>
            <p>
                "Streamhut does not host or own any video. Creators stream and record on stream.place, and each recording is "
                "published in the creator’s own "<a href="https://atproto.com/" rel="noopener">"AT Protocol"</a>
                " repository, the same kind of account people use on Bluesky. Streamhut shows the recordings of the creators "
                "this server follows and links every video to its creator’s page."
            </p>
            <p>
                "A creator who would like to be listed can ask this server’s admins; a creator who deletes a recording "
                "removes it from here too."
            </p>

            <h2>"Privacy"</h2>
            <p>
                "Streamhut sets no cookies for viewers, runs no ads and no third-party scripts, and keeps no history of what you watch. "
                "Where you stopped in a video and your player settings stay in your own browser and are never sent to us. "
                "Only admins sign in."
            </p>
        </article>
    }
}
