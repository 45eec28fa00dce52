//! A micro-cache of the pages anonymous visitors get: the same watch page shared on a
//! social site is fetched by every crawler and every viewer in the same few seconds, and
//! rendering it (database reads, the Leptos render) costs far more than sending it.
//!
//! Only `GET`/`HEAD` of the public pages (`/`, `/watch/…`, `/profile/…`, `/embed/…`,
//! `/tag/…`, `/search`, `/about`) without `Cookie` or `Authorization` are served from the cache, and
//! only complete `200` HTML responses that set no cookie are kept, for a few seconds
//! (`STREAMHUT_PAGE_CACHE_SECS`, 0: off). Admins (a session cookie) always get a fresh
//! render. The cache sits outside compression, so a hit costs no compression either; the
//! key holds the request's `Accept-Encoding`, on which the compression depends.
//!
//! A cached page keeps its CSP nonce for those seconds. That is safe: a nonce guards
//! against markup injected into the page, and what a cached page contains was fixed when
//! it was rendered, before anyone could learn the nonce.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::XrpcError;
use crate::appview::moderation::Visibility;

/// Largest page kept (and buffered while being rendered for the cache).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Memory the cache may use, in bytes of page bodies.
const MAX_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A rendered page.
struct Page {
    headers: HeaderMap,
    body: Bytes,
    /// The route it was rendered by, for the metrics of the hits.
    route: Option<super::metrics::Route>,
}

/// A page's key: the moderation epoch it was rendered in (a takedown makes every page
/// rendered before it unreachable at once), the `Accept-Encoding`, the path and query.
type Key = (u64, String, String);

/// The cache; cloned into the middleware.
#[derive(Clone)]
pub struct PageCache {
    pages: Option<moka::sync::Cache<Key, Arc<Page>>>,
    visibility: Visibility,
}

impl PageCache {
    /// A cache keeping pages for `ttl` while `visibility` stays the same; zero turns it
    /// off.
    pub fn new(ttl: Duration, visibility: Visibility) -> Self {
        let pages = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(MAX_CACHE_BYTES)
                .weigher(|_, page: &Arc<Page>| u32::try_from(page.body.len()).unwrap_or(u32::MAX))
                .build()
        });
        Self { pages, visibility }
    }
}

/// Whether `request` may be answered from the cache.
fn cacheable_request(request: &Request) -> bool {
    let path = request.uri().path();
    let page = path == "/"
        || path == "/search"
        || path == "/about"
        || ["/watch/", "/profile/", "/embed/", "/tag/"]
            .iter()
            .any(|prefix| path.starts_with(prefix));
    page && matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.headers().contains_key(header::COOKIE)
        && !request.headers().contains_key(header::AUTHORIZATION)
}

/// Whether `response` may be kept for other visitors.
fn cacheable_response(response: &Response) -> bool {
    response.status() == StatusCode::OK
        && !response.headers().contains_key(header::SET_COOKIE)
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/html"))
}

/// The middleware: answers from the cache, or renders and keeps what may be kept.
pub async fn serve(State(cache): State<PageCache>, request: Request, next: Next) -> Response {
    let Some(pages) = cache.pages.as_ref().filter(|_| cacheable_request(&request)) else {
        return next.run(request).await;
    };
    // HEAD shares GET's entry; the body is dropped on the way out.
    let accepted = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let key = (
        cache.visibility.current(),
        accepted,
        request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), |pq| pq.to_string()),
    );
    if let Some(page) = pages.get(&key) {
        let mut response = Response::new(Body::from(page.body.clone()));
        *response.headers_mut() = page.headers.clone();
        if let Some(route) = &page.route {
            response.extensions_mut().insert(route.clone());
        }
        return response;
    }
    let response = next.run(request).await;
    if !cacheable_response(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return XrpcError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "the page could not be rendered",
            )
            .into_response();
        }
    };
    pages.insert(
        key,
        Arc::new(Page {
            headers: parts.headers.clone(),
            body: body.clone(),
            route: parts.extensions.get().cloned(),
        }),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_anonymous_page_views_are_cached() {
        let request = |method: Method, path: &str, cookie: bool| {
            let mut builder = Request::builder().method(method).uri(path);
            if cookie {
                builder = builder.header(header::COOKIE, "session=x");
            }
            builder.body(Body::empty()).expect("request")
        };
        assert!(cacheable_request(&request(
            Method::GET,
            "/watch/did:plc:a/b?t=3",
            false
        )));
        assert!(cacheable_request(&request(Method::HEAD, "/", false)));
        assert!(!cacheable_request(&request(
            Method::GET,
            "/watch/did:plc:a/b",
            true
        )));
        assert!(!cacheable_request(&request(Method::GET, "/admin", false)));
        assert!(!cacheable_request(&request(
            Method::GET,
            "/api/appview/listVideos",
            false
        )));
        assert!(!cacheable_request(&request(Method::POST, "/search", false)));
    }
}
