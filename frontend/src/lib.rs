//! The browser entry point. The server rendered the page; `hydrate` attaches the same
//! Leptos app to that HTML so it becomes interactive.

/// Called by the script `HydrationScripts` puts in every page, once the wasm is loaded.
/// When the page is hydrated, `streamhut:hydrated` tells `site.js` that it may enhance
/// the DOM (the player, card previews) without disturbing hydration.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    if let (Some(window), Ok(event)) =
        (web_sys::window(), web_sys::Event::new("streamhut:hydrated"))
    {
        let _ = window.dispatch_event(&event);
    }
}
