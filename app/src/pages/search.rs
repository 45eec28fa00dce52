//! `/search?q=`: videos whose title or description match, a page at a time, each with the
//! start of its description.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

use crate::catalog::encode_query;
use crate::components::{EmptyState, ErrorNotice, VideoGrid};
use crate::error::AppError;

use super::home::GridPage;

/// Videos matching `q`, newest first, from `cursor`.
#[server(prefix = "/_app")]
pub async fn search_videos(q: String, cursor: Option<String>) -> Result<GridPage, AppError> {
    use crate::catalog::MAX_QUERY_CHARS;
    let q = q.trim();
    if q.chars().count() > MAX_QUERY_CHARS {
        return crate::error::with_status(Err(AppError::BadRequest(format!(
            "search queries are limited to {MAX_QUERY_CHARS} characters"
        ))));
    }
    crate::error::with_status(
        async {
            let catalog = crate::catalog::ssr::catalog()?;
            Ok(GridPage {
                page: catalog
                    .search_videos(q, crate::catalog::PAGE_SIZE, cursor)
                    .await?,
                now: catalog.now(),
                public_url: catalog.public_url(),
            })
        }
        .await,
    )
}

/// The search results page.
#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default().trim().to_string();
    let cursor = move || query.read().get("cursor");
    let results = Resource::new(
        move || (q(), cursor()),
        |(q, cursor)| async move {
            if q.is_empty() {
                Ok(None)
            } else {
                search_videos(q, cursor).await.map(Some)
            }
        },
    );

    // Titles are set inside the resolved branches, from plain strings: leptos_meta reads
    // title closures after the page has rendered, when reactive values may be gone.
    view! {
        <Meta name="robots" content="noindex" />
        <Meta name="description" content="Search Streamhut's videos by title, description, tags and what is said in them." />
        <Suspense fallback=|| view! { <p class="loading">"Searching…"</p> }>
            {move || Suspend::new(async move {
                let q = q();
                match results.await {
                    Ok(None) => view! {
                        <Title text="Search" />
                        <h1 class="visually-hidden">"Search"</h1>
                        <EmptyState title="Search Streamhut">
                            <p>"Type a few words from a video's title or description in the search box above."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(Some(grid)) if grid.page.videos.is_empty() => view! {
                        <Title text=format!("{q} – Search") />
                        <h1 class="visually-hidden">"Search results"</h1>
                        <EmptyState title="No matching videos">
                            <p>"Nothing matches “" {q} "”. Try fewer or different words."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(Some(grid)) => {
                        let next = grid.page.cursor.clone().map(|c| {
                            format!("/search?q={}&cursor={}", encode_query(&q), encode_query(&c))
                        });
                        view! {
                            <Title text=format!("{q} – Search") />
                            <h1 class="page-title">"Results for “" {q.clone()} "”"</h1>
                            <VideoGrid videos=grid.page.videos now=grid.now snippets=true />
                            <nav class="pager" aria-label="More results">
                                {next.map(|href| view! { <a class="button" href=href rel="next">"More results"</a> })}
                            </nav>
                        }.into_any()
                    }
                    Err(error) => view! {
                        <Title text="Search" />
                        <ErrorNotice error />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
