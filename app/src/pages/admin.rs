//! `/admin`: sign-in, the creators table with register / unregister / sync, video
//! takedowns and restores, the audit log, and the last job runs. Every action is an HTML form posting to the server, which redirects back
//! here with `?notice=` or `?error=`: all of it works before hydration finishes.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;

use crate::admin::{AuditRow, CreatorRow, Dashboard, HostRow, JobRunRow, TakedownRow, Viewer};
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
        <Meta name="description" content="Streamhut's admin dashboard: creators, hosts, takedowns and jobs." />
        <section class="admin">
            <h1>"Admin"</h1>
            {move || notice().map(|text| view! { <p class="flash flash--ok" role="status">{text}</p> })}
            {move || error().map(|text| view! { <p class="flash flash--error" role="alert">{text}</p> })}
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match dashboard.await {
                        Ok(Dashboard { viewer: None, .. }) => view! { <SignIn /> }.into_any(),
                        Ok(Dashboard { viewer: Some(viewer), creators, jobs, hosts, takedowns, audit }) => view! {
                            <SignedIn viewer=viewer.clone() />
                            {viewer.is_admin.then(|| view! {
                                <Creators creators />
                                <Hosts hosts />
                                <Takedowns takedowns />
                                <Audit audit />
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
                    <AdminTable headings=&["Handle", "DID", "Videos", "Last sync", "Error", ""]>
                            {creators.into_iter().map(|creator| view! { <CreatorLine creator /> }).collect_view()}
                        </AdminTable>
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
                {creator.account_status.clone().map(|status| view! {
                    <span class="status-badge">{format!("Account {status}: hidden")}</span>
                })}
                {creator.error.clone()}
                {skipped.map(|text| view! { <span class="hint">{text}</span> })}
                {(creator.taken_down > 0).then(|| view! {
                    <span class="hint">{format!("{} video(s) taken down", creator.taken_down)}</span>
                })}
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
fn Hosts(hosts: Vec<HostRow>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Hosts " <span class="count">{hosts.len()}</span></h2>
            <p class="hint">
                "Register a whole PDS: every account on it that publishes videos is indexed, "
                "including those that start later."
            </p>
            <form method="post" action="/admin/hosts" class="inline-form takedown-form">
                <label>
                    <span class="visually-hidden">"PDS host"</span>
                    <input name="host" type="text" required placeholder="pds.example.com" />
                </label>
                <button type="submit" class="button">"Register host"</button>
            </form>
            {(!hosts.is_empty()).then(|| view! {
                <AdminTable headings=&["Host", "Creators", "Last listed", "Error"]>
                        {hosts.into_iter().map(|host| view! {
                            <tr>
                                <td><code>{host.host}</code></td>
                                <td data-label="Creators">{host.repos}</td>
                                <td data-label="Last listed">
                                    {match host.last_listed_at {
                                        Some(at) => view! { <time datetime=at.clone()>{format_date_time(&at)}</time> }.into_any(),
                                        None => "not yet".into_any(),
                                    }}
                                </td>
                                <td class="error">{host.last_error}</td>
                            </tr>
                        }).collect_view()}
                    </AdminTable>
            })}
        </section>
    }
}

#[component]
fn Takedowns(takedowns: Vec<TakedownRow>) -> impl IntoView {
    let count = takedowns.len();
    view! {
        <section class="panel">
            <h2>"Taken-down videos " <span class="count">{count}</span></h2>
            <form method="post" action="/admin/videos/takedown" class="inline-form takedown-form">
                <label>
                    <span class="visually-hidden">"Video"</span>
                    <input name="video" type="text" required
                        placeholder="watch page URL or at:// URI" />
                </label>
                <label>
                    <span class="visually-hidden">"Reason"</span>
                    <input name="reason" type="text" required maxlength="500"
                        placeholder="reason (kept in the audit log)" />
                </label>
                <button type="submit" class="button button--danger">"Take down"</button>
            </form>
            {if takedowns.is_empty() {
                view! { <p class="hint">"No video is taken down."</p> }.into_any()
            } else {
                view! {
                    <AdminTable headings=&["Video", "Reason", "By", "When", ""]>
                            {takedowns.into_iter().map(|takedown| {
                                let label = takedown.title.clone().unwrap_or_else(|| takedown.uri.clone());
                                view! {
                                    <tr data-uri=takedown.uri.clone()>
                                        <td>
                                            {takedown.title.clone()}
                                            <code class="hint">{takedown.uri.clone()}</code>
                                        </td>
                                        <td data-label="Reason">{takedown.reason}</td>
                                        <td data-label="By"><code>{takedown.admin}</code></td>
                                        <td data-label="When"><time datetime=takedown.at.clone()>{format_date_time(&takedown.at)}</time></td>
                                        <td class="row-actions">
                                            <form method="post" action="/admin/videos/restore">
                                                <input type="hidden" name="video" value=takedown.uri.clone() />
                                                <button type="submit" class="button button--quiet"
                                                    aria-label=format!("Restore {label}")>"Restore"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </AdminTable>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Audit(audit: Vec<AuditRow>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Audit log"</h2>
            {if audit.is_empty() {
                view! { <p class="hint">"No admin action yet."</p> }.into_any()
            } else {
                view! {
                    <AdminTable class="admin-table audit" headings=&["When", "Who", "Action", "Subject", "Reason"]>
                            {audit.into_iter().map(|entry| {
                                let reason_label = entry.reason.is_some().then_some("Reason");
                                view! {
                                <tr>
                                    <td><time datetime=entry.at.clone()>{format_date_time(&entry.at)}</time></td>
                                    <td data-label="Who"><code>{entry.admin}</code></td>
                                    <td data-label="Action">{entry.action}</td>
                                    <td data-label="Subject"><code>{entry.subject}</code></td>
                                    <td data-label=reason_label>{entry.reason}</td>
                                </tr>
                            }}).collect_view()}
                        </AdminTable>
                }.into_any()
            }}
        </section>
    }
}

/// A dashboard table: its column headings (an empty one heads the row actions) and rows.
#[component]
fn AdminTable(
    headings: &'static [&'static str],
    #[prop(default = "admin-table")] class: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <table class=class>
            <thead>
                <tr>
                    {headings.iter().map(|heading| if heading.is_empty() {
                        view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> }.into_any()
                    } else {
                        view! { <th scope="col">{*heading}</th> }.into_any()
                    }).collect_view()}
                </tr>
            </thead>
            <tbody>{children()}</tbody>
        </table>
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
                    <AdminTable headings=&["Job", "Started", "Outcome", "Error"]>
                            {jobs.into_iter().map(|run| view! {
                                <tr>
                                    <td><code>{run.job}</code></td>
                                    <td><time datetime=run.started_at.clone()>{format_date_time(&run.started_at)}</time></td>
                                    <td class=format!("outcome outcome--{}", run.outcome)>{run.outcome.clone()}</td>
                                    <td class="error">{run.error}</td>
                                </tr>
                            }).collect_view()}
                        </AdminTable>
                }.into_any()
            }}
        </section>
    }
}
