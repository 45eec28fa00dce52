//! Messages that stand in for content: nothing to show yet, or something went wrong.

use leptos::prelude::*;

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
        <section class="notice notice--error" role="alert">
            <h2>"Something went wrong"</h2>
            <p>{error.to_string()}</p>
        </section>
    }
}
