//! The site header: menu button, brand, search box.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::catalog::MAX_QUERY_CHARS;

/// Top bar of every page. The search box is a plain GET form.
#[component]
pub fn SiteHeader() -> impl IntoView {
    let query = use_query_map();
    let current_q = query.read_untracked().get("q").unwrap_or_default();

    view! {
        <header class="site-header">
            <div class="site-header__start">
                <NavToggle />
                <A href="/" attr:class="brand" attr:aria-label="Streamhut home">
                    <span class="brand__mark" aria-hidden="true">
                        <svg viewBox="0 0 24 24" width="28" height="28">
                            <rect x="1" y="4" width="22" height="16" rx="5" />
                            <path d="M10 8.5v7l6-3.5z" />
                        </svg>
                    </span>
                    <span class="brand__name">"Streamhut"</span>
                </A>
            </div>
            <form method="get" action="/search" class="search" role="search">
                <input
                    type="search"
                    name="q"
                    placeholder="Search videos"
                    aria-label="Search videos"
                    maxlength=MAX_QUERY_CHARS.to_string()
                    value=current_q
                />
                <button type="submit" class="search__button" aria-label="Search">
                    <svg viewBox="0 0 24 24" aria-hidden="true" width="20" height="20">
                        <circle cx="10.5" cy="10.5" r="6.5" />
                        <path d="M15.5 15.5L21 21" />
                    </svg>
                </button>
            </form>
            <div class="site-header__end"></div>
        </header>
    }
}

/// The menu button: collapses and expands the side navigation (on small screens, the
/// strip under the header). An island: the only part of the header that runs in the browser.
#[island]
pub fn NavToggle() -> impl IntoView {
    let open = RwSignal::new(true);
    Effect::new(move |_| {
        let collapsed = !open.get();
        if let Some(app) = document().query_selector(".app").ok().flatten() {
            let _ = app
                .class_list()
                .toggle_with_force("nav-collapsed", collapsed);
        }
    });
    view! {
        <button
            type="button"
            class="icon-button"
            id="nav-toggle"
            aria-label="Toggle navigation"
            aria-controls="site-nav"
            aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|open| *open = !*open)
        >
            <svg viewBox="0 0 24 24" aria-hidden="true" width="24" height="24">
                <path d="M3 6h18M3 12h18M3 18h18" />
            </svg>
        </button>
    }
}
