//! `/embed/{did}/{rkey}`: the player alone, for iframes (oEmbed, Twitter's player card).
//! It is rendered without the site's chrome and may be framed by any site.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::Player;
use crate::error::AppError;

/// The embeddable player.
#[component]
pub fn EmbedPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || {
        let params = params.read();
        (
            params.get("did").unwrap_or_default(),
            params.get("rkey").unwrap_or_default(),
        )
    };
    let start = move || {
        query
            .read()
            .get("t")
            .and_then(|t| t.trim_end_matches('s').parse::<u64>().ok())
            .unwrap_or(0)
    };
    let data = Resource::new(key, |(did, rkey)| super::watch::load_watch(did, rkey));

    view! {
        <Meta name="robots" content="noindex" />
        <main class="embed">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(data) => {
                            let canonical = format!("{}{}", data.public_url, data.video.watch_path());
                            view! {
                                <Title text=data.video.title.clone() />
                                <Link rel="canonical" href=canonical.clone() />
                                <h1 class="visually-hidden">{data.video.title.clone()}</h1>
                                <Player video=data.video.clone() start=start() />
                                <a class="embed__brand" href=canonical target="_blank" rel="noopener">
                                    {format!("{} · Streamhut", data.video.title)}
                                </a>
                            }.into_any()
                        }
                        Err(error) => {
                            crate::error::set_response_status(error.status_code());
                            let message = if error == AppError::NotFound {
                                "This video isn’t available.".to_string()
                            } else {
                                error.to_string()
                            };
                            view! {
                                <Title text="Video unavailable" />
                                <h1 class="embed__missing">{message}</h1>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}
