//! Streamhut's web app: the HTML shell, the root component and the route table.
//!
//! The same code renders on the server (feature `ssr`) and hydrates in the browser
//! (feature `hydrate`). Pages live in [`pages`], shared pieces of UI in [`components`],
//! the data the pages exchange with the server in [`catalog`], [`tasks`] and [`admin`]. Server-only code is behind
//! `ssr`, so the wasm build never links a database or an HTTP server.

#![warn(missing_docs)]

pub mod admin;
pub mod catalog;
pub mod components;
pub mod error;
pub mod pages;
pub mod tasks;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use components::{SiteHeader, SiteNav};
use pages::{AboutPage, AdminPage, HomePage, NotFoundPage, SearchPage};

/// Name of the wasm-bindgen output (`/pkg/<name>.js`, `_bg.wasm`, `.css`): the build
/// scripts and the server agree on it through this constant.
pub const OUTPUT_NAME: &str = "streamhut";

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    send_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Sends the page's `Content-Security-Policy`: scripts only from this site or carrying
/// this response's nonce (Leptos puts it on its hydration scripts), so text that slipped
/// into the page could not run.
#[cfg(feature = "ssr")]
fn send_content_security_policy() {
    use leptos::nonce::use_nonce;
    if let (Some(nonce), Some(response)) =
        (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    {
        let policy = format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; \
             media-src 'self' blob: https: http:; connect-src 'self' https: http:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
        );
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

/// The root component: site chrome around the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let nav_open = RwSignal::new(true);

    view! {
        <Stylesheet id="streamhut" href=format!("/pkg/{OUTPUT_NAME}.css") />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="description" content="Streamhut: videos from creators on the AT Protocol." />
        <Meta name="theme-color" content="#0f0f10" />
        // Every page's title goes through this formatter, which escapes it on the server.
        <Title formatter=|title: String| {
            title_text(if title.is_empty() { "Streamhut".to_string() } else { format!("{title} · Streamhut") })
        } />
        <Router>
            <div class="app" class:nav-collapsed=move || !nav_open.get()>
                <SiteHeader nav_open />
                <SiteNav />
                <main id="content" class="content">
                    <Routes fallback=NotFoundPage>
                        <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                        <Route path=StaticSegment("search") view=SearchPage ssr=SsrMode::Async />
                        <Route path=StaticSegment("about") view=AboutPage />
                        <Route path=StaticSegment("admin") view=AdminPage ssr=SsrMode::Async />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
