//! A creator's round avatar, or their initial when they have none.

use leptos::prelude::*;

/// An avatar image (`src`), or the first letter of `name` on a coloured disc.
#[component]
pub fn Avatar(
    /// The image, when there is one.
    src: Option<String>,
    /// Whose it is.
    name: String,
    /// Its size in pixels.
    size: u32,
) -> impl IntoView {
    let initial = name
        .trim_start_matches('@')
        .chars()
        .next()
        .unwrap_or('?')
        .to_uppercase()
        .to_string();
    let hue = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let style = format!("width:{size}px;height:{size}px;--avatar-hue:{hue}");
    match src {
        Some(src) => view! {
            <img class="avatar" src=src alt="" width=size height=size loading="lazy" style=style />
        }
        .into_any(),
        None => view! {
            <span class="avatar avatar--initial" aria-hidden="true" style=style>{initial}</span>
        }
        .into_any(),
    }
}
