//! The page for any path no route matches, served with HTTP 404.

use leptos::prelude::*;
use leptos_meta::Title;

/// "This page isn't here", with a way back.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    crate::error::set_response_status(404);
    view! {
        <Title text="Page not found" />
        <section class="notice notice--not-found">
            <p class="notice__code">"404"</p>
            <h1>"This page isn’t here"</h1>
            <p>"The link may be broken, or the video may have been removed by its creator."</p>
            <p><a class="button" href="/">"Back to the home page"</a></p>
        </section>
    }
}
