//! The browser entry point. The server rendered the page; `hydrate` attaches the same
//! Leptos app to that HTML so it becomes interactive.

/// Called by the script `HydrationScripts` puts in every page, once the wasm is loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
