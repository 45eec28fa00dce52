//! Streamhut's web app: the HTML shell, the root component and the route table.
//!
//! Pages render on the server (feature `ssr`) as complete HTML; the browser (feature
//! `hydrate`) hydrates only the few interactive parts, the `#[island]` components (the
//! menu button, the description's "more"). Everything else is content: it needs no code
//! in the browser, so the wasm stays small (the whole app hydrated made it 1.1 MB), links
//! are ordinary page loads, and the server's HTML carries no serialized page data. The
//! player and the card previews are plain JavaScript in `public/site.js`.
//!
//! Pages live in [`pages`], shared pieces of UI in [`components`], the data the pages
//! exchange with the server in [`catalog`], [`tasks`] and [`admin`]. Server-only code is
//! behind `ssr`, so the wasm build never links a database or an HTTP server.

#![warn(missing_docs)]
// Leptos's view types nest deeply; the pages' layouts go past the default limit.
#![recursion_limit = "256"]

pub mod admin;
pub mod catalog;
pub mod chapters;
pub mod components;
pub mod error;
pub mod pages;
pub mod tasks;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Outlet, ParentRoute, Route, Router, Routes},
};

use components::{SiteHeader, SiteNav};
use pages::{
    AboutPage, AdminPage, EmbedPage, HomePage, NotFoundPage, ProfilePage, SearchPage, TagPage,
    WatchPage,
};

/// Name of the wasm-bindgen output (`/pkg/<name>.js`, `_bg.wasm`, `.css`): the build
/// scripts and the server agree on it through this constant.
pub const OUTPUT_NAME: &str = "streamhut";

/// The HTML document around the app, rendered on the server only. The stylesheet and
/// `site.js` come from the same content-addressed directory as the wasm (`site_pkg_dir`
/// is `pkg/<hash>` in a built site), so all of them can be cached for good.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    send_content_security_policy();
    let pkg = options.site_pkg_dir.to_string();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark" />
                <link rel="stylesheet" href=format!("/{pkg}/{OUTPUT_NAME}.css") />
                // A Play clicked before site.js runs is kept for it (`data-pending-play`).
                <script nonce=page_nonce()>{EARLY_PLAY}</script>
                <script src=format!("/{pkg}/site.js") defer=true nonce=page_nonce()></script>
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page's first script: a click on a player before `site.js` has set it up is marked
/// on the player, which `site.js` then starts (a click on a content warning's cover is
/// left to open it). Written without `<`, `>` and `&`, so it
/// needs no escaping in the HTML.
const EARLY_PLAY: &str = "document.addEventListener(\"click\",function(e){var p=e.target.closest?e.target.closest(\".player\"):null;if(p)if(!p.dataset.ready)if(!e.target.closest(\".player__gate\")){p.dataset.pendingPlay=\"1\";e.preventDefault()}},true)";

/// This response's script nonce (rendered on the server only).
fn page_nonce() -> Option<String> {
    #[cfg(feature = "ssr")]
    {
        leptos::nonce::use_nonce().map(|nonce| nonce.to_string())
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}

/// Sends the page's `Content-Security-Policy`: only scripts carrying this response's
/// nonce (Leptos puts it on its hydration scripts, the shell on `site.js`) and what they
/// load themselves (`'strict-dynamic'`: the wasm glue, the player library) run. Not
/// `'self'`: a bundle's reply under `/bundle/` is on our origin, and must never run as
/// script on our pages, nor may text that slipped into a page.
#[cfg(feature = "ssr")]
fn send_content_security_policy() {
    use leptos::nonce::use_nonce;
    if let (Some(nonce), Some(response)) =
        (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    {
        let policy = format!(
            "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; \
             media-src 'self' blob: https: http:; connect-src 'self' https: http:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
        );
        // The embeddable player is meant to be framed by other sites.
        let embed = use_context::<http::request::Parts>()
            .is_some_and(|parts| parts.uri.path().starts_with("/embed/"));
        let policy = if embed {
            policy.replace("frame-ancestors 'self'", "frame-ancestors *")
        } else {
            policy
        };
        if let Ok(value) = http::HeaderValue::from_str(&policy) {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// Escapes `text` for the server-rendered `<title>`: leptos_meta writes titles into the
/// HTML as they are. In the browser the title is set as text, so nothing is escaped.
fn title_text(text: String) -> String {
    #[cfg(feature = "ssr")]
    {
        let mut escaped = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&#39;"),
                c => escaped.push(c),
            }
        }
        escaped
    }
    #[cfg(not(feature = "ssr"))]
    text
}

/// The root component: the routes, most of them inside the site's chrome; the embeddable
/// player without it.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Link rel="icon" href="/favicon.ico" sizes="32x32" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Link rel="apple-touch-icon" href="/apple-touch-icon.png" />
        <Link rel="manifest" href="/manifest.webmanifest" />
        <Meta name="theme-color" content="#0f0f10" />
        // Every page's title goes through this formatter, which escapes it on the server.
        <Title formatter=|title: String| {
            title_text(if title.is_empty() { "Streamhut".to_string() } else { format!("Streamhut | {title}") })
        } />
        <Router>
            <Routes fallback=|| view! { <Chrome><NotFoundPage /></Chrome> }>
                <Route
                    path=(StaticSegment("embed"), ParamSegment("did"), ParamSegment("rkey"))
                    view=EmbedPage
                    ssr=SsrMode::Async
                />
                <ParentRoute path=StaticSegment("") view=|| view! { <Chrome><Outlet /></Chrome> }>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("search") view=SearchPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("about") view=AboutPage />
                    <Route path=(StaticSegment("tag"), ParamSegment("tag")) view=TagPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("admin") view=AdminPage ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("watch"), ParamSegment("actor"), ParamSegment("rkey"))
                        view=WatchPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("profile"), ParamSegment("actor"))
                        view=ProfilePage
                        ssr=SsrMode::Async
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The site's chrome: header, navigation, and the page inside `<main>`.
#[component]
fn Chrome(children: Children) -> impl IntoView {
    view! {
        <div class="app">
            <a class="skip-link" href="#content">"Skip to content"</a>
            <SiteHeader />
            <SiteNav />
            <main id="content" class="content" tabindex="-1">
                {children()}
            </main>
        </div>
    }
}
