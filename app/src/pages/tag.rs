//! `/tag/{tag}`: the videos whose records carry a tag (any case), newest first, where the
//! tags on watch pages and in descriptions lead.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::catalog::{encode_query, tag_path};
use crate::components::{EmptyState, ErrorNotice, VideoGrid};
use crate::error::AppError;

use super::home::GridPage;

/// Videos tagged `tag`, newest first, from `cursor`.
#[server(prefix = "/_app")]
pub async fn tagged_videos(tag: String, cursor: Option<String>) -> Result<GridPage, AppError> {
    use crate::catalog::MAX_TAG_CHARS;
    let tag = tag.trim().trim_start_matches('#');
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        return crate::error::with_status(Err(AppError::BadRequest(format!(
            "a tag has 1 to {MAX_TAG_CHARS} characters"
        ))));
    }
    crate::error::with_status(
        async {
            let catalog = crate::catalog::ssr::catalog()?;
            Ok(GridPage {
                page: catalog
                    .tagged_videos(tag, crate::catalog::PAGE_SIZE, cursor)
                    .await?,
                now: catalog.now(),
                public_url: catalog.public_url(),
            })
        }
        .await,
    )
}

/// The tag page.
#[component]
pub fn TagPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tag = move || {
        params
            .read()
            .get("tag")
            .unwrap_or_default()
            .trim()
            .trim_start_matches('#')
            .to_string()
    };
    let cursor = move || query.read().get("cursor");
    let videos = Resource::new(
        move || (tag(), cursor()),
        |(tag, cursor)| tagged_videos(tag, cursor),
    );

    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let tag = tag();
                match videos.await {
                    Ok(grid) if grid.page.videos.is_empty() => view! {
                        <Title text=format!("#{tag}") />
                        <Meta name="robots" content="noindex" />
                        <Meta name="description" content=format!("Videos tagged #{tag} on Streamhut.") />
                        <h1 class="page-title">"#"{tag.clone()}</h1>
                        <EmptyState title="No videos with this tag yet">
                            <p>"When a creator tags a video “" {tag} "”, it will show up here."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(grid) => {
                        let canonical = format!("{}{}", grid.public_url, tag_path(&tag));
                        let next = grid.page.cursor.clone().map(|c| {
                            format!("{}?cursor={}", tag_path(&tag), encode_query(&c))
                        });
                        view! {
                            <Title text=format!("#{tag}") />
                            <Meta name="description" content=format!("Videos tagged #{tag} on Streamhut.") />
                            <Link rel="canonical" href=canonical />
                            <h1 class="page-title">"#"{tag.clone()}</h1>
                            <VideoGrid videos=grid.page.videos now=grid.now />
                            <nav class="pager" aria-label="More videos">
                                {next.map(|href| view! { <a class="button" href=href rel="next">"More videos"</a> })}
                            </nav>
                        }.into_any()
                    }
                    Err(error) => view! {
                        <Title text=format!("#{tag}") />
                        <ErrorNotice error />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
