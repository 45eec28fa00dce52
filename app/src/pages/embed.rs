//! `/embed/{did}/{rkey}`: the player alone, for iframes (oEmbed, Twitter's player card).
//! It is rendered without the site's chrome and may be framed by any site.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Title};

use crate::components::Player;
use crate::error::AppError;

/// The embeddable player.
#[component]
pub fn EmbedPage() -> impl IntoView {
    let (data, start) = super::watch::use_watched_video("did");

    view! {
        <Meta name="robots" content="noindex" />
        <main class="embed">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(data) => {
                            let canonical = format!("{}{}", data.public_url, data.video.watch_path());
                            let chapters = data
                                .video
                                .description
                                .as_deref()
                                .map(|text| crate::chapters::chapters(text, data.video.duration_ms))
                                .unwrap_or_default();
                            let description = format!("{} on Streamhut, by {}.", data.video.title, data.video.creator_label());
                            view! {
                                <Title text=data.video.title.clone() />
                                <Meta name="description" content=description />
                                <Link rel="canonical" href=canonical.clone() />
                                <h1 class="visually-hidden">{data.video.title.clone()}</h1>
                                <Player video=data.video.clone() start chapters />
                                <a class="embed__brand" href=canonical target="_blank" rel="noopener">
                                    {format!("{} · Streamhut", data.video.title)}
                                </a>
                            }.into_any()
                        }
                        Err(error) => {
                            crate::error::set_response_status(error.status_code());
                            let message = match error {
                                AppError::NotFound => "This video isn’t available.".to_string(),
                                AppError::Gone => "This video is no longer available.".to_string(),
                                error => error.to_string(),
                            };
                            view! {
                                <Title text="Video unavailable" />
                                <Meta name="description" content=message.clone() />
                                <h1 class="embed__missing">{message}</h1>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}
