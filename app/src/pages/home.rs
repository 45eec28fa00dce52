//! The home page: the newest videos, a page at a time, or a helpful empty state.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Title};
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::catalog::{VideoPage, encode_query};
use crate::components::{EmptyState, ErrorNotice, VideoGrid};
use crate::error::AppError;

/// A page of the grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridPage {
    /// The videos and the next page's cursor.
    pub page: VideoPage,
    /// The server's time, for relative dates.
    pub now: String,
    /// The site's public base URL.
    pub public_url: String,
}

/// The newest indexed videos, from `cursor`.
#[server(prefix = "/_app")]
pub async fn recent_videos(cursor: Option<String>) -> Result<GridPage, AppError> {
    crate::error::with_status(
        async {
            let catalog = crate::catalog::ssr::catalog()?;
            Ok(GridPage {
                page: catalog
                    .recent_videos(crate::catalog::PAGE_SIZE, cursor)
                    .await?,
                now: catalog.now(),
                public_url: catalog.public_url(),
            })
        }
        .await,
    )
}

/// `/`: a grid of the newest videos, with a link to the next page.
#[component]
pub fn HomePage() -> impl IntoView {
    let query = use_query_map();
    let cursor = move || query.read().get("cursor");
    let videos = Resource::new(cursor, recent_videos);

    view! {
        <Title text="" />
        <Meta
            name="description"
            content="Watch recordings from stream.place creators on Streamhut: talks, streams and videos, newest first."
        />
        <Link rel="alternate" type_="application/atom+xml" title="Streamhut: the newest videos" href="/feed.atom" />
        <h1 class="visually-hidden">"Latest videos"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading videos…"</p> }>
            {move || Suspend::new(async move {
                match videos.await {
                    Ok(grid) if grid.page.videos.is_empty() && cursor().is_none() => view! {
                        <EmptyState title="No videos yet">
                            <p>
                                "Streamhut shows the stream.place recordings of the creators this server follows. "
                                "Their videos appear here as soon as they are indexed."
                            </p>
                            <p><a href="/about">"How Streamhut works"</a></p>
                        </EmptyState>
                    }.into_any(),
                    Ok(grid) => {
                        let next = grid.page.cursor.clone().map(|c| format!("/?cursor={}", encode_query(&c)));
                        view! {
                            <Meta property="og:site_name" content="Streamhut" />
                            <Meta property="og:type" content="website" />
                            <Meta property="og:title" content="Streamhut" />
                            <Meta property="og:url" content=format!("{}/", grid.public_url) />
                            <Link rel="canonical" href=format!("{}/", grid.public_url) />
                            <VideoGrid videos=grid.page.videos now=grid.now />
                            <nav class="pager" aria-label="More videos">
                                {cursor().map(|_| view! { <a class="button button--ghost" href="/">"Newest"</a> })}
                                {next.map(|href| view! { <a class="button" href=href rel="next">"More videos"</a> })}
                            </nav>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
