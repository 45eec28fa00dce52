//! `/about`: what Streamhut is and where its videos come from.

use leptos::prelude::*;
use leptos_meta::Title;

/// A short explanation of the site.
#[component]
pub fn AboutPage() -> impl IntoView {
    view! {
        <Title text="About" />
        <article class="prose">
            <h1>"About Streamhut"</h1>
            <p>
                "Streamhut is a video site for the "
                <a href="https://atproto.com/" rel="noopener">"AT Protocol"</a>
                ". It does not host videos itself: creators stream and record on "
                <a href="https://stream.place/" rel="noopener">"stream.place"</a>
                ", their recordings are published as "<code>"place.stream.video"</code>
                " records in their own repositories, and Streamhut indexes the creators this server's admins have registered."
            </p>
            <p>
                "The same server is also an at-run runner: it executes JavaScript bundles that authors store on their own PDS, "
                "in a Deno sandbox that grants exactly the permissions each bundle declares. Your code is your data."
            </p>
        </article>
    }
}
