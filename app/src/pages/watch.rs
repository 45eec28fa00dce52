//! `/watch/{did-or-handle}/{rkey}`: the player, the video's details and what to watch
//! next, laid out like YouTube's watch page (related videos beside the player on wide
//! screens, below it on narrow ones). The link-preview tags (Open Graph, Twitter's
//! player card, oEmbed discovery, a JSON-LD `VideoObject`) are rendered on the server.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Script, Title};
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::catalog::{
    VideoDetails, VideoSummary, encode_query, format_date_time, iso_duration, relative_time,
    tag_path,
};
use crate::components::{Avatar, ErrorNotice, NotFoundNotice, Player, RichText, VideoCard};
use crate::error::AppError;

/// Everything the watch page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchData {
    /// The video.
    pub video: VideoSummary,
    /// What only this page shows of it.
    pub details: VideoDetails,
    /// What to watch next.
    pub related: Vec<VideoSummary>,
    /// The site's public base URL.
    pub public_url: String,
    /// The server's time, for relative dates.
    pub now: String,
}

/// The video `rkey` of `actor` (handle or DID), and related videos.
#[server(prefix = "/_app")]
pub async fn load_watch(actor: String, rkey: String) -> Result<WatchData, AppError> {
    crate::error::with_status(
        async {
            let catalog = crate::catalog::ssr::catalog()?;
            let (video, details) = catalog
                .watched_video(&actor, &rkey)
                .await?
                .ok_or(AppError::NotFound)?;
            let related = catalog.related(&video, 12).await?;
            Ok(WatchData {
                video,
                details,
                related,
                public_url: catalog.public_url(),
                now: catalog.now(),
            })
        }
        .await,
    )
}

/// What the watch and embed routes share: the video their `actor_param` and `rkey`
/// segments name, loading, and the second `?t=` asks playback to start at.
pub(super) fn use_watched_video(
    actor_param: &'static str,
) -> (Resource<Result<WatchData, AppError>>, u64) {
    let params = use_params_map();
    let key = move || {
        let params = params.read();
        (
            params.get(actor_param).unwrap_or_default(),
            params.get("rkey").unwrap_or_default(),
        )
    };
    let start = use_query_map()
        .read_untracked()
        .get("t")
        .and_then(|t| crate::chapters::parse_time(&t))
        .unwrap_or(0);
    (
        Resource::new(key, |(actor, rkey)| load_watch(actor, rkey)),
        start,
    )
}

/// The watch page.
#[component]
pub fn WatchPage() -> impl IntoView {
    let (data, start) = use_watched_video("actor");

    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Watch data start /> }.into_any(),
                    Err(AppError::NotFound) => view! {
                        <NotFoundNotice
                            title="Video not found"
                            heading="This video isn’t available"
                            reason="It may have been deleted by its creator, or the link may be wrong."
                            home="Browse the latest videos"
                            noindex=true
                        />
                    }.into_any(),
                    Err(AppError::Gone) => view! {
                        <NotFoundNotice
                            title="Video removed"
                            heading="This video is no longer available"
                            reason="It was removed from Streamhut."
                            home="Browse the latest videos"
                            noindex=true
                            status=410
                        />
                    }.into_any(),
                    Err(error) => view! { <Title text="Video" /><ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Text for a description meta tag: one line, at most `max` characters.
fn summary(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// JSON that is safe inside a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[component]
fn Watch(data: WatchData, start: u64) -> impl IntoView {
    let WatchData {
        video,
        details,
        related,
        public_url,
        now,
    } = data;
    let canonical = format!("{public_url}{}", video.watch_path());
    let embed = format!("{public_url}{}", video.embed_path());
    let thumbnail = format!("{public_url}{}", video.thumbnail_path());
    let oembed = format!(
        "{public_url}/oembed?format=json&url={}",
        encode_query(&canonical)
    );
    let description = video
        .description
        .clone()
        .unwrap_or_else(|| format!("A video by {} on Streamhut", video.creator_label()));
    let meta_description = summary(&description, 300);
    let chapters = video
        .description
        .as_deref()
        .map(|text| crate::chapters::chapters(text, video.duration_ms))
        .unwrap_or_default();
    let json_ld = script_json(&serde_json::json!({
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": video.title,
        "description": meta_description,
        "thumbnailUrl": [thumbnail],
        "uploadDate": video.created_at,
        "duration": video.duration_ms.map(iso_duration),
        "embedUrl": embed,
        "url": canonical,
        "author": { "@type": "Person", "name": video.creator_label(), "url": format!("{public_url}{}", video.creator_path()) },
        "hasPart": clips(&chapters, video.duration_ms, &canonical),
        "keywords": (!details.tags.is_empty()).then(|| details.tags.join(", ")),
        "license": details.licence.as_ref().and_then(|l| l.url.clone()),
        "transcript": details.transcript.clone(),
    }));
    let exact = format_date_time(&video.created_at);
    let ago = relative_time(&video.created_at, &now).unwrap_or_else(|| exact.clone());
    let has_description = video.description.is_some();
    let watch_path = video.watch_path();
    let transcript = details.transcript.clone();

    view! {
        <Title text=video.title.clone() />
        <Meta name="description" content=meta_description.clone() />
        <Link rel="canonical" href=canonical.clone() />
        <Link rel="alternate" type_="application/json+oembed" href=oembed title=video.title.clone() />
        <Meta property="og:site_name" content="Streamhut" />
        <Meta property="og:type" content="video.other" />
        <Meta property="og:title" content=video.title.clone() />
        <Meta property="og:description" content=meta_description.clone() />
        <Meta property="og:url" content=canonical.clone() />
        <Meta property="og:image" content=thumbnail.clone() />
        <Meta property="og:image:width" content="640" />
        <Meta property="og:image:height" content="360" />
        <Meta property="og:video:url" content=embed.clone() />
        <Meta property="og:video:type" content="text/html" />
        <Meta property="og:video:width" content="1280" />
        <Meta property="og:video:height" content="720" />
        <Meta name="twitter:card" content="player" />
        <Meta name="twitter:title" content=video.title.clone() />
        <Meta name="twitter:description" content=meta_description />
        <Meta name="twitter:image" content=thumbnail />
        <Meta name="twitter:player" content=embed />
        <Meta name="twitter:player:width" content="1280" />
        <Meta name="twitter:player:height" content="720" />
        {details.tags.iter().map(|tag| view! { <Meta property="video:tag" content=tag.clone() /> }).collect_view()}
        <Script type_="application/ld+json">{json_ld}</Script>
        <div class="watch">
            <div class="watch__main">
                <Player video=video.clone() start chapters=chapters.clone() />
                <h1 class="watch__title">{video.title.clone()}</h1>
                <div class="watch__bar">
                    <a class="watch__creator" href=video.creator_path()>
                        <Avatar src=video.avatar_path() name=video.creator_label().to_string() size=40 />
                        <span class="watch__creator-text">
                            <span class="watch__creator-name">{video.creator_label().to_string()}</span>
                            {video.handle.clone().map(|h| view! { <span class="watch__handle">"@"{h}</span> })}
                        </span>
                    </a>
                    <div class="watch__share">
                        <button type="button" class="button button--share" data-share=canonical.clone() data-share-time="share-at">
                            <svg viewBox="0 0 24 24" aria-hidden="true" width="18" height="18">
                                <path d="M14 5l7 7-7 7M21 12H9a6 6 0 0 0-6 6" />
                            </svg>
                            <span>"Share"</span>
                        </button>
                        <label class="watch__share-time">
                            <input type="checkbox" id="share-at" />
                            " at current time"
                        </label>
                    </div>
                </div>
                <VideoAbout has_description>
                    <p class="watch__date">
                        <time datetime=video.created_at.clone() title=exact>{ago}</time>
                        {details.tags.iter().map(|tag| view! {
                            <a class="watch__tag" href=tag_path(tag)>"#"{tag.clone()}</a>
                        }).collect_view()}
                    </p>
                    {video.description.clone().map(|text| view! {
                        <div class="watch__description" id="watch-description">
                            <RichText text links=details.links.clone() />
                        </div>
                    })}
                    <Facts details=details.clone() />
                </VideoAbout>
                {(!chapters.is_empty()).then(|| view! { <Chapters chapters=chapters.clone() path=watch_path.clone() /> })}
                {transcript.map(|text| view! { <Transcript text /> })}
            </div>
            <aside class="watch__related" aria-label="Related videos">
                <h2 class="visually-hidden">"Up next"</h2>
                <ul class="related-list">
                    {related
                        .into_iter()
                        .map(|video| view! { <li><VideoCard video now=now.clone() compact=true /></li> })
                        .collect_view()}
                </ul>
            </aside>
        </div>
    }
    .into_any()
}

/// Licence, credit and activity, when the record gives them.
#[component]
fn Facts(details: VideoDetails) -> impl IntoView {
    let VideoDetails {
        licence,
        credit,
        activity,
        ..
    } = details;
    (licence.is_some() || credit.is_some() || activity.is_some()).then(|| {
        view! {
            <dl class="watch__facts">
                {activity.map(|activity| view! { <dt>"Activity"</dt><dd>{activity}</dd> })}
                {licence.map(|licence| view! {
                    <dt>"Licence"</dt>
                    <dd>
                        {match licence.url {
                            Some(url) => view! {
                                <a href=url rel="license noopener" target="_blank">{licence.name}</a>
                            }.into_any(),
                            None => licence.name.into_any(),
                        }}
                    </dd>
                })}
                {credit.map(|credit| view! { <dt>"Credit"</dt><dd>{credit}</dd> })}
            </dl>
        }
    })
}

/// The text of the video's captions, folded (it is in the page for crawlers and search).
#[component]
fn Transcript(text: String) -> impl IntoView {
    view! {
        <details class="transcript">
            <summary class="transcript__summary">
                <h2 class="transcript__title">"Transcript"</h2>
            </summary>
            <div class="transcript__text">
                {text.split("\n\n").map(|paragraph| view! { <p>{paragraph.to_string()}</p> }).collect_view()}
            </div>
        </details>
    }
}

/// The chapter list: each a link to its time (`?t=`), which `site.js` turns into a seek.
#[component]
fn Chapters(chapters: Vec<crate::chapters::Chapter>, path: String) -> impl IntoView {
    view! {
        <section class="chapters" aria-labelledby="chapters-title">
            <h2 class="chapters__title" id="chapters-title">"Chapters"</h2>
            <ol class="chapters__list">
                {chapters
                    .into_iter()
                    .map(|chapter| {
                        let href = format!("{path}?t={}", chapter.start);
                        view! {
                            <li>
                                <a class="chapters__link" href=href data-chapter-start=chapter.start.to_string()>
                                    <span class="chapters__time">{clock(chapter.start)}</span>
                                    <span class="chapters__name">{chapter.title}</span>
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </section>
    }
}

/// `h:mm:ss` or `m:ss`.
fn clock(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The chapters as JSON-LD `Clip`s (search engines show them as key moments).
fn clips(
    chapters: &[crate::chapters::Chapter],
    duration_ms: Option<u64>,
    canonical: &str,
) -> serde_json::Value {
    let ends = chapters
        .iter()
        .skip(1)
        .map(|next| Some(next.start))
        .chain(std::iter::once(duration_ms.map(|ms| ms / 1000)));
    chapters
        .iter()
        .zip(ends)
        .map(|(chapter, end)| {
            serde_json::json!({
                "@type": "Clip",
                "name": chapter.title,
                "startOffset": chapter.start,
                "endOffset": end,
                "url": format!("{canonical}?t={}", chapter.start),
            })
        })
        .collect()
}

/// The date and description under the player. A long description is collapsed to a few
/// lines, with "…more". An island: the only part of the watch page that runs in the
/// browser (the player is `site.js`); without it the whole description shows.
#[island]
fn VideoAbout(has_description: bool, children: Children) -> impl IntoView {
    let expanded = RwSignal::new(false);
    let collapsible = RwSignal::new(false);
    Effect::new(move |_| {
        if !has_description {
            return;
        }
        if let Some(text) = document().get_element_by_id("watch-description") {
            // Measured under the clamp the stylesheet applies (`is-collapsible`).
            let _ = text.set_attribute("style", "max-height: 4.5em; overflow: hidden");
            let longer = text.scroll_height() > text.client_height();
            let _ = text.remove_attribute("style");
            collapsible.set(longer);
        }
    });
    view! {
        <section
            class="watch__about"
            class:is-collapsible=move || collapsible.get()
            class:is-expanded=move || expanded.get()
            aria-label="About this video"
        >
            {children()}
            {move || collapsible.get().then(|| view! {
                <button
                    type="button"
                    class="link-button"
                    aria-controls="watch-description"
                    aria-expanded=move || expanded.get().to_string()
                    on:click=move |_| expanded.update(|e| *e = !*e)
                >
                    {move || if expanded.get() { "Show less" } else { "…more" }}
                </button>
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_and_json_are_made_safe_for_the_head() {
        assert_eq!(summary("a\n\nb   c", 10), "a b c");
        assert_eq!(summary("abcdef", 3), "abc…");
        let json = script_json(&serde_json::json!({"name": "</script><script>alert(1)</script>&"}));
        assert!(!json.contains("</script>") && !json.contains('&'), "{json}");
        assert_eq!(clock(3723), "1:02:03");
        assert_eq!(clock(65), "1:05");
        let chapters = crate::chapters::chapters("0:00 Intro\n1:00 Talk", Some(120_000));
        let clips = clips(&chapters, Some(120_000), "https://s.example/watch/a/b");
        assert_eq!(clips[1]["startOffset"], 60);
        assert_eq!(clips[1]["endOffset"], 120);
        assert_eq!(clips[0]["url"], "https://s.example/watch/a/b?t=0");
    }
}
