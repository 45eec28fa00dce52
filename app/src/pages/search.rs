//! `/search?q=`: videos whose title or description match.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::catalog::VideoSummary;
use crate::components::{EmptyState, ErrorNotice, VideoGrid};
use crate::error::AppError;

/// Videos matching `q`, newest first.
#[server(prefix = "/_app")]
pub async fn search_videos(q: String) -> Result<Vec<VideoSummary>, AppError> {
    use crate::catalog::MAX_QUERY_CHARS;
    const SEARCH_LIMIT: u32 = 48;
    let q = q.trim();
    if q.chars().count() > MAX_QUERY_CHARS {
        return crate::error::with_status(Err(AppError::BadRequest(format!(
            "search queries are limited to {MAX_QUERY_CHARS} characters"
        ))));
    }
    crate::error::with_status(
        async {
            crate::catalog::ssr::catalog()?
                .search_videos(q, SEARCH_LIMIT)
                .await
        }
        .await,
    )
}

/// The search results page.
#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default().trim().to_string();
    let results = Resource::new(q, |q| async move {
        if q.is_empty() {
            Ok(Vec::new())
        } else {
            search_videos(q).await
        }
    });

    // Titles are set inside the resolved branches, from plain strings: leptos_meta reads
    // title closures after the page has rendered, when reactive values may be gone.
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Searching…"</p> }>
            {move || Suspend::new(async move {
                let q = q();
                match results.await {
                    _ if q.is_empty() => view! {
                        <Title text="Search" />
                        <EmptyState title="Search Streamhut">
                            <p>"Type a few words from a video's title or description in the search box above."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <Title text=format!("{q} – Search") />
                        <EmptyState title="No matching videos">
                            <p>"Nothing matches “" {q} "”. Try fewer or different words."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <Title text=format!("{q} – Search") />
                        <h1 class="page-title">"Results for “" {q} "”"</h1>
                        <VideoGrid videos=list />
                    }.into_any(),
                    Err(error) => view! {
                        <Title text="Search" />
                        <ErrorNotice error />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
