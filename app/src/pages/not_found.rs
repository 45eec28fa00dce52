//! The page for any path no route matches, served with HTTP 404.

use leptos::prelude::*;

use crate::components::NotFoundNotice;

/// "This page isn't here", with a way back.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! {
        <NotFoundNotice
            title="Page not found"
            heading="This page isn’t here"
            reason="The link may be broken, or the video may have been removed by its creator."
            home="Back to the home page"
        />
    }
}
