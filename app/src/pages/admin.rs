//! `/admin`: sign-in, the creators table with register / unregister / sync, and the last
//! job runs. Every action is an HTML form posting to the server, which redirects back
//! here with `?notice=` or `?error=`: all of it works before hydration finishes.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

use crate::admin::{CreatorRow, Dashboard, JobRunRow, Viewer};
use crate::catalog::format_date_time;
use crate::components::ErrorNotice;
use crate::error::AppError;

/// The dashboard as the current visitor may see it.
#[server(prefix = "/_app")]
pub async fn admin_dashboard() -> Result<Dashboard, AppError> {
    let headers = use_context::<http::request::Parts>()
        .map(|parts| parts.headers)
        .unwrap_or_default();
    crate::error::with_status(async { crate::admin::ssr::admin()?.dashboard(&headers).await }.await)
}

/// Whether the visitor is a signed-in admin (the navigation shows them the dashboard).
#[server(prefix = "/_app")]
pub async fn viewer_is_admin() -> Result<bool, AppError> {
    let headers = use_context::<http::request::Parts>()
        .map(|parts| parts.headers)
        .unwrap_or_default();
    Ok(crate::admin::ssr::admin()?.is_admin(&headers).await)
}

/// The admin dashboard page.
#[component]
pub fn AdminPage() -> impl IntoView {
    let query = use_query_map();
    let notice = move || query.read().get("notice");
    let error = move || query.read().get("error");
    let dashboard = Resource::new(|| (), |_| admin_dashboard());

    view! {
        <Title text="Admin" />
        <Meta name="robots" content="noindex" />
        <section class="admin">
            <h1>"Admin"</h1>
            {move || notice().map(|text| view! { <p class="flash flash--ok" role="status">{text}</p> })}
            {move || error().map(|text| view! { <p class="flash flash--error" role="alert">{text}</p> })}
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match dashboard.await {
                        Ok(Dashboard { viewer: None, .. }) => view! { <SignIn /> }.into_any(),
                        Ok(Dashboard { viewer: Some(viewer), creators, jobs }) => view! {
                            <SignedIn viewer=viewer.clone() />
                            {viewer.is_admin.then(|| view! {
                                <Creators creators />
                                <Jobs jobs />
                            })}
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn SignIn() -> impl IntoView {
    view! {
        <form class="panel admin-form" method="post" action="/admin/login">
            <h2>"Sign in"</h2>
            <p class="hint">
                "Admins sign in with their handle and an app password. The password goes to "
                "their own PDS to check it, and is never stored."
            </p>
            <label>
                "Handle"
                <input name="identifier" type="text" required autocomplete="username"
                    placeholder="alice.bsky.social" />
            </label>
            <label>
                "App password"
                <input name="password" type="password" required autocomplete="current-password" />
            </label>
            <button type="submit" class="button">"Sign in"</button>
        </form>
    }
}

#[component]
fn SignedIn(viewer: Viewer) -> impl IntoView {
    view! {
        <div class="panel admin-session">
            <p>
                "Signed in as " <code>{viewer.did.clone()}</code>
                {(!viewer.is_admin).then(|| view! {
                    <span class="role role--none">
                        " — this account is not an admin of this server (see ADMIN_DIDS)."
                    </span>
                })}
            </p>
            <form method="post" action="/admin/logout">
                <button type="submit" class="button button--quiet">"Sign out"</button>
            </form>
        </div>
    }
}

#[component]
fn Creators(creators: Vec<CreatorRow>) -> impl IntoView {
    let count = creators.len();
    view! {
        <section class="panel">
            <h2>"Creators " <span class="count">{count}</span></h2>
            <div class="admin-actions">
                <form method="post" action="/admin/creators" class="inline-form">
                    <label>
                        <span class="visually-hidden">"Handle or DID"</span>
                        <input name="actor" type="text" required placeholder="handle or DID" />
                    </label>
                    <button type="submit" class="button">"Register"</button>
                </form>
                <form method="post" action="/admin/sync">
                    <button type="submit" class="button button--quiet">"Sync all"</button>
                </form>
            </div>
            {if creators.is_empty() {
                view! { <p class="hint">"No creators yet: register one by handle or DID."</p> }.into_any()
            } else {
                view! {
                    <table class="admin-table">
                        <thead>
                            <tr>
                                <th scope="col">"Handle"</th>
                                <th scope="col">"DID"</th>
                                <th scope="col">"Videos"</th>
                                <th scope="col">"Last sync"</th>
                                <th scope="col">"Error"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            {creators.into_iter().map(|creator| view! { <CreatorLine creator /> }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn CreatorLine(creator: CreatorRow) -> impl IntoView {
    let label = creator
        .handle
        .clone()
        .unwrap_or_else(|| creator.did.clone());
    let skipped = (creator.skipped_records > 0)
        .then(|| format!("{} invalid record(s) skipped", creator.skipped_records));
    view! {
        <tr data-did=creator.did.clone()>
            <td>{creator.handle.clone().unwrap_or_else(|| "—".into())}</td>
            <td><code>{creator.did.clone()}</code></td>
            <td class="videos" data-label="Videos">{creator.video_count}</td>
            <td data-label="Last sync">
                {match creator.last_sync_at.clone() {
                    Some(at) => view! { <time datetime=at.clone()>{format_date_time(&at)}</time> }.into_any(),
                    None => "never".into_any(),
                }}
            </td>
            <td class="error">
                {creator.error.clone()}
                {skipped.map(|text| view! { <span class="hint">{text}</span> })}
            </td>
            <td class="row-actions">
                <form method="post" action="/admin/sync">
                    <input type="hidden" name="actor" value=creator.did.clone() />
                    <button type="submit" class="button button--quiet"
                        aria-label=format!("Sync {label}")>"Sync"</button>
                </form>
                <form method="post" action="/admin/creators/remove">
                    <input type="hidden" name="actor" value=creator.did.clone() />
                    <button type="submit" class="button button--danger"
                        aria-label=format!("Unregister {label}")>"Unregister"</button>
                </form>
            </td>
        </tr>
    }
}

#[component]
fn Jobs(jobs: Vec<JobRunRow>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Last job runs"</h2>
            {if jobs.is_empty() {
                view! { <p class="hint">"No job has run yet."</p> }.into_any()
            } else {
                view! {
                    <table class="admin-table">
                        <thead>
                            <tr>
                                <th scope="col">"Job"</th>
                                <th scope="col">"Started"</th>
                                <th scope="col">"Outcome"</th>
                                <th scope="col">"Error"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {jobs.into_iter().map(|run| view! {
                                <tr>
                                    <td><code>{run.job}</code></td>
                                    <td><time datetime=run.started_at.clone()>{format_date_time(&run.started_at)}</time></td>
                                    <td class=format!("outcome outcome--{}", run.outcome)>{run.outcome.clone()}</td>
                                    <td class="error">{run.error}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
