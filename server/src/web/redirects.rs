//! stream.place's own URL shapes, sent to ours, so a link copied from stream.place works
//! here once the host is swapped: `/{user}/vod/{tid}` (the older watch URL) and
//! `/{user}/video/{tid}` to `/watch/{user}/{tid}`, `/embed/{user}/video/{tid}` to
//! `/embed/{user}/{tid}`. A `?t=` start time (seconds or `1h2m3s`) comes along; the pages
//! judge the user and the record key (an unknown one is their "not found").

use axum::extract::{Path, RawQuery};
use axum::response::Redirect;

use app::catalog::encode_query;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// What a path segment must escape (RFC 3986): `/` above all, so a segment stays one.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `/{actor}/vod/{rkey}` and `/{actor}/video/{rkey}`.
pub(super) async fn watch(
    Path((actor, rkey)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Redirect {
    Redirect::permanent(&target("watch", &actor, &rkey, query.as_deref()))
}

/// `/embed/{actor}/video/{rkey}`.
pub(super) async fn embed(
    Path((actor, rkey)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Redirect {
    Redirect::permanent(&target("embed", &actor, &rkey, query.as_deref()))
}

/// Our path for the page `page` of `actor`'s `rkey`, with `t` from `query` when it has one.
fn target(page: &str, actor: &str, rkey: &str, query: Option<&str>) -> String {
    let segment = |text: &str| utf8_percent_encode(text, SEGMENT).to_string();
    let mut path = format!("/{page}/{}/{}", segment(actor), segment(rkey));
    let start = query.and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| (k == "t").then_some(v))
    });
    if let Some(start) = start.filter(|t| !t.is_empty()) {
        path.push_str("?t=");
        path.push_str(&encode_query(&start));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn paths_are_ours_and_keep_the_start_time_only() {
        assert_eq!(
            target("watch", "alice.test", "3lbx", Some("t=1h2m3s&utm=x")),
            "/watch/alice.test/3lbx?t=1h2m3s"
        );
        assert_eq!(
            target("embed", "did:plc:abc", "3lbx", None),
            "/embed/did:plc:abc/3lbx"
        );
        // Nothing a segment holds can make the target leave the site.
        assert_eq!(
            target("watch", "/evil.example", "x y", Some("t=")),
            "/watch/%2Fevil.example/x%20y"
        );
    }
}
