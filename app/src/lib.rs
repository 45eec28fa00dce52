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
        <Title formatter=|title: String| {
            if title.is_empty() { "Streamhut".to_string() } else { format!("{title} · Streamhut") }
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
