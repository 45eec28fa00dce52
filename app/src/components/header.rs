//! The site header: menu toggle, brand, search box.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use crate::catalog::MAX_QUERY_CHARS;

/// Top bar of every page. The search box is a plain GET form, so it works before (and
/// without) hydration; once hydrated, the router turns the submit into a client navigation.
#[component]
pub fn SiteHeader(
    /// Whether the side navigation is expanded; the menu button flips it.
    nav_open: RwSignal<bool>,
) -> impl IntoView {
    let query = use_query_map();
    let current_q = move || query.read().get("q").unwrap_or_default();

    view! {
        <header class="site-header">
            <div class="site-header__start">
                <button
                    type="button"
                    class="icon-button"
                    id="nav-toggle"
                    aria-label="Toggle navigation"
                    aria-controls="site-nav"
                    aria-expanded=move || nav_open.get().to_string()
                    on:click=move |_| nav_open.update(|open| *open = !*open)
                >
                    <svg viewBox="0 0 24 24" aria-hidden="true" width="24" height="24">
                        <path d="M3 6h18M3 12h18M3 18h18" />
                    </svg>
                </button>
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
            <Form
                action="/search"
                // leptos_router adds the nameless submit button as an empty `=` pair; drop it.
                on_form_data=Arc::new(|data: &web_sys::FormData| data.delete(""))
                attr:class="search"
                attr:role="search"
            >
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
            </Form>
            <div class="site-header__end"></div>
        </header>
    }
}
