//! The home page: the newest videos, or a helpful empty state.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::catalog::VideoSummary;
use crate::components::{EmptyState, ErrorNotice, VideoGrid};
use crate::error::AppError;

/// The newest indexed videos.
#[server(prefix = "/_app")]
pub async fn recent_videos() -> Result<Vec<VideoSummary>, AppError> {
    const HOME_LIMIT: u32 = 48;
    crate::error::with_status(
        async {
            crate::catalog::ssr::catalog()?
                .recent_videos(HOME_LIMIT)
                .await
        }
        .await,
    )
}

/// `/`: a grid of the newest videos.
#[component]
pub fn HomePage() -> impl IntoView {
    let videos = Resource::new(|| (), |_| recent_videos());

    view! {
        <Title text="" />
        <h1 class="visually-hidden">"Latest videos"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading videos…"</p> }>
            {move || Suspend::new(async move {
                match videos.await {
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No videos yet">
                            <p>
                                "Streamhut lists the stream.place recordings ("
                                <code>"place.stream.video"</code>
                                " records) of the creators registered on this server. "
                                "Their videos appear here as soon as a creator is registered and indexed."
                            </p>
                            <p><a href="/about">"How Streamhut works"</a></p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! { <VideoGrid videos=list /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
