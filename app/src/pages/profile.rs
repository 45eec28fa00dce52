//! `/profile/{did-or-handle}`: a creator's avatar, name, handle and description (as
//! their profile on their PDS has them), a share link, and their videos, a page at a time.

use leptos::prelude::*;
use leptos_meta::{Link, Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::catalog::{CreatorProfile, VideoPage, encode_query};
use crate::components::{Avatar, EmptyState, ErrorNotice, NotFoundNotice, RichText, VideoGrid};
use crate::error::AppError;

/// A creator's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorData {
    /// Who.
    pub creator: CreatorProfile,
    /// A page of their videos.
    pub page: VideoPage,
    /// The server's time, for relative dates.
    pub now: String,
    /// The site's public base URL.
    pub public_url: String,
}

/// The creator `actor` (handle or DID) and a page of their videos from `cursor`.
#[server(prefix = "/_app")]
pub async fn load_creator(actor: String, cursor: Option<String>) -> Result<CreatorData, AppError> {
    crate::error::with_status(
        async {
            let catalog = crate::catalog::ssr::catalog()?;
            let creator = catalog.creator(&actor).await?.ok_or(AppError::NotFound)?;
            let page = catalog
                .creator_videos(&creator.did, crate::catalog::PAGE_SIZE, cursor)
                .await?;
            Ok(CreatorData {
                creator,
                page,
                now: catalog.now(),
                public_url: catalog.public_url(),
            })
        }
        .await,
    )
}

/// The creator page.
#[component]
pub fn ProfilePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || {
        (
            params.read().get("actor").unwrap_or_default(),
            query.read().get("cursor"),
        )
    };
    let data = Resource::new(key, |(actor, cursor)| load_creator(actor, cursor));

    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Creator data /> }.into_any(),
                    Err(AppError::NotFound) => view! {
                        <NotFoundNotice
                            title="Creator not found"
                            heading="No such creator here"
                            reason="Streamhut only shows creators this server follows."
                            home="Browse the latest videos"
                        />
                    }.into_any(),
                    Err(error) => view! { <Title text="Creator" /><ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Creator(data: CreatorData) -> impl IntoView {
    let CreatorData {
        creator,
        page,
        now,
        public_url,
    } = data;
    let canonical = format!("{public_url}{}", creator.path());
    let name = creator.label().to_string();
    let description = creator
        .description
        .clone()
        .unwrap_or_else(|| format!("Videos by {name} on Streamhut"));
    let avatar = creator.avatar_path();
    let image = avatar.clone().map(|path| format!("{public_url}{path}"));
    let next = page
        .cursor
        .clone()
        .map(|c| format!("{}?cursor={}", creator.path(), encode_query(&c)));
    let empty = page.videos.is_empty();

    view! {
        <Title text=name.clone() />
        <Meta name="description" content=description.clone() />
        <Link rel="canonical" href=canonical.clone() />
        <Link rel="alternate" type_="application/atom+xml" title=format!("{name} on Streamhut")
            href=format!("{}/feed.atom", creator.path()) />
        <Meta property="og:site_name" content="Streamhut" />
        <Meta property="og:type" content="profile" />
        <Meta property="og:title" content=name.clone() />
        <Meta property="og:description" content=description />
        <Meta property="og:url" content=canonical.clone() />
        {creator.handle.clone().map(|h| view! { <Meta property="profile:username" content=h /> })}
        {image.map(|src| view! { <Meta property="og:image" content=src /> })}
        <Meta name="twitter:card" content="summary" />
        <section class="creator">
            <header class="creator__header">
                <Avatar src=avatar name=name.clone() size=96 />
                <div class="creator__text">
                    <h1 class="creator__name">{name.clone()}</h1>
                    {creator.handle.clone().map(|h| view! { <p class="creator__handle">"@"{h}</p> })}
                    {creator.description.clone().map(|text| view! { <p class="creator__bio"><RichText text /></p> })}
                    <button type="button" class="button button--share" data-share=canonical>
                        <svg viewBox="0 0 24 24" aria-hidden="true" width="18" height="18">
                            <path d="M14 5l7 7-7 7M21 12H9a6 6 0 0 0-6 6" />
                        </svg>
                        <span>"Share"</span>
                    </button>
                </div>
            </header>
            <h2 class="section-title">"Videos"</h2>
            {if empty {
                view! {
                    <EmptyState title="No videos yet">
                        <p>{format!("{name} has not published any videos that Streamhut has indexed.")}</p>
                    </EmptyState>
                }.into_any()
            } else {
                view! { <VideoGrid videos=page.videos now nested=true /> }.into_any()
            }}
            <nav class="pager" aria-label="More videos">
                {next.map(|href| view! { <a class="button" href=href rel="next">"More videos"</a> })}
            </nav>
        </section>
    }
}
