//! The side navigation. `A` marks the current page with `aria-current="page"`. The
//! dashboard's entry is shown to signed-in admins only.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::pages::viewer_is_admin;

/// Links to the site's sections.
#[component]
pub fn SiteNav() -> impl IntoView {
    let admin = Resource::new(|| (), |_| viewer_is_admin());
    view! {
        <nav id="site-nav" class="site-nav" aria-label="Main">
            <NavLink href="/" label="Home" exact=true>
                <path d="M3 11l9-7 9 7v9a1 1 0 0 1-1 1h-5v-6H9v6H4a1 1 0 0 1-1-1z" />
            </NavLink>
            <NavLink href="/search" label="Search">
                <circle cx="10.5" cy="10.5" r="6.5" />
                <path d="M15.5 15.5L21 21" />
            </NavLink>
            <NavLink href="/about" label="About">
                <circle cx="12" cy="12" r="9" />
                <path d="M12 11v6M12 7.5v.5" />
            </NavLink>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    matches!(admin.await, Ok(true)).then(|| view! {
                        <NavLink href="/admin" label="Admin">
                            <path d="M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6z" />
                        </NavLink>
                    })
                })}
            </Suspense>
        </nav>
    }
}

/// One entry: an icon (the children, drawn in a 24×24 SVG) and a label.
#[component]
fn NavLink(
    href: &'static str,
    label: &'static str,
    /// Only the exact path is current (for `/`, which prefixes every path).
    #[prop(optional)]
    exact: bool,
    children: Children,
) -> impl IntoView {
    view! {
        <A href exact attr:class="site-nav__link">
            <svg viewBox="0 0 24 24" aria-hidden="true" width="22" height="22">
                {children()}
            </svg>
            <span>{label}</span>
        </A>
    }
}
