//! The browser entry point. The server rendered the page; `hydrate` makes its islands
//! (the `#[island]` components of `app`) interactive.

/// Called by the script `HydrationScripts` puts in every page, once the wasm is loaded;
/// the islands are hydrated right after it returns. `streamhut:hydrated` then tells
/// `site.js` that it may enhance the DOM (the player, card previews).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // The islands are exported from `app`; naming the crate links them in.
    #[allow(unused_imports)]
    use app::components::*;
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    if let (Some(window), Ok(event)) =
        (web_sys::window(), web_sys::Event::new("streamhut:hydrated"))
    {
        let _ = window.dispatch_event(&event);
    }
}
