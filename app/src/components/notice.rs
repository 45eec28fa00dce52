//! Messages that stand in for content: nothing to show yet, nothing here, or something
//! went wrong.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};

use crate::error::AppError;

/// A friendly placeholder for an empty list, with a hint about what to do next.
#[component]
pub fn EmptyState(
    /// The headline.
    title: &'static str,
    /// What to explain underneath.
    children: Children,
) -> impl IntoView {
    view! {
        <section class="notice notice--empty">
            <svg class="notice__icon" viewBox="0 0 24 24" aria-hidden="true" width="48" height="48">
                <rect x="2" y="5" width="20" height="14" rx="3" />
                <path d="M10 9.5v5l4.5-2.5z" />
            </svg>
            <h2>{title}</h2>
            <div class="notice__body">{children()}</div>
        </section>
    }
}

/// Shows an [`AppError`] and, during server rendering, makes the response carry its status.
#[component]
pub fn ErrorNotice(
    /// What went wrong.
    error: AppError,
) -> impl IntoView {
    crate::error::set_response_status(error.status_code());
    view! {
        <Meta name="description" content=error.to_string() />
        <section class="notice notice--error" role="alert">
            <h2>"Something went wrong"</h2>
            <p>{error.to_string()}</p>
        </section>
    }
}

/// A page's "not here" answer, sent with HTTP 404 (or 410 for what was removed): the page
/// title, a headline, why it may be missing, and a way back to the home page.
#[component]
pub fn NotFoundNotice(
    /// The page's title.
    title: &'static str,
    /// The headline.
    heading: &'static str,
    /// Why it may be missing.
    reason: &'static str,
    /// The text of the link to the home page.
    home: &'static str,
    /// Asks search engines not to index the page.
    #[prop(optional)]
    noindex: bool,
    /// The HTTP status: 404, or 410 for what was removed.
    #[prop(default = 404)]
    status: u16,
) -> impl IntoView {
    crate::error::set_response_status(status);
    view! {
        <Title text=title />
        <Meta name="description" content=reason />
        {noindex.then(|| view! { <Meta name="robots" content="noindex" /> })}
        <section class="notice notice--not-found">
            <p class="notice__code">{status}</p>
            <h1>{heading}</h1>
            <p>{reason}</p>
            <p><a class="button" href="/">{home}</a></p>
        </section>
    }
}
