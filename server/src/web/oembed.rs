//! `GET /oembed?url=…&format=json`: oEmbed 1.0 for our watch pages, so sites that support
//! oEmbed discovery (`<link rel="alternate" type="application/json+oembed">` on each watch
//! page) can embed the player: a `video` response whose `html` is an iframe of
//! `/embed/{did}/{rkey}`. URLs that are not our watch or embed pages are 404; only JSON
//! is offered (`format=xml` is 501, as the spec asks).

use std::sync::Arc;

use app::catalog::ssr::Catalog;
use app::error::AppError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::XrpcError;

#[derive(Deserialize)]
pub(super) struct OembedParams {
    url: Option<String>,
    format: Option<String>,
    maxwidth: Option<u32>,
    maxheight: Option<u32>,
}

/// `&`, `<`, `>`, `"` escaped for an HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The embed size within the consumer's bounds, 16:9, at most 1280×720.
fn size(maxwidth: Option<u32>, maxheight: Option<u32>) -> (u32, u32) {
    let mut width = maxwidth.unwrap_or(640).clamp(160, 1280);
    if let Some(maxheight) = maxheight {
        width = width.min(maxheight.clamp(90, 720) * 16 / 9);
    }
    (width, width * 9 / 16)
}

pub(super) async fn oembed(
    State(catalog): State<Arc<dyn Catalog>>,
    Query(params): Query<OembedParams>,
) -> Result<Json<Value>, XrpcError> {
    if let Some(format) = params.format.as_deref().filter(|f| *f != "json") {
        return Err(XrpcError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("only format=json is offered, not {format:?}"),
        ));
    }
    let url = params
        .url
        .ok_or_else(|| XrpcError::invalid_request("url is required: a Streamhut watch page"))?;
    let public = catalog.public_url();
    let not_ours = || XrpcError::not_found(format!("{url} is not a Streamhut video"));
    let path = url
        .strip_prefix(public.as_str())
        .map(|rest| rest.split(['?', '#']).next().unwrap_or_default())
        .ok_or_else(not_ours)?;
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("watch" | "embed"), Some(actor), Some(rkey), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_ours());
    };
    let video = catalog
        .video(actor, rkey)
        .await
        .map_err(|err| match err {
            AppError::Gone => XrpcError::new(
                StatusCode::GONE,
                "Gone",
                format!("{url} is no longer available"),
            ),
            _ => XrpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the index is unavailable right now",
            ),
        })?
        .ok_or_else(not_ours)?;
    let (width, height) = size(params.maxwidth, params.maxheight);
    let embed = format!("{public}{}", video.embed_path());
    let html = format!(
        "<iframe src=\"{}\" width=\"{width}\" height=\"{height}\" title=\"{}\" frameborder=\"0\" \
         allow=\"autoplay; fullscreen; picture-in-picture\" allowfullscreen></iframe>",
        attribute(&embed),
        attribute(&video.title)
    );
    Ok(Json(json!({
        "version": "1.0",
        "type": "video",
        "provider_name": "Streamhut",
        "provider_url": format!("{public}/"),
        "title": video.title,
        "author_name": video.creator_label(),
        "author_url": format!("{public}{}", video.creator_path()),
        "thumbnail_url": format!("{public}{}", video.thumbnail_path()),
        "thumbnail_width": 640,
        "thumbnail_height": 360,
        "width": width,
        "height": height,
        "html": html,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_16_9_within_bounds() {
        assert_eq!(size(None, None), (640, 360));
        assert_eq!(size(Some(400), None), (400, 225));
        assert_eq!(size(Some(1000), Some(300)), (533, 299));
        assert_eq!(size(Some(5000), None), (1280, 720));
        assert_eq!(size(Some(u32::MAX), Some(u32::MAX)), (1280, 720));
        assert_eq!(size(None, Some(u32::MAX / 16 + 1)), (640, 360));
        assert_eq!(attribute("\"><script>"), "&quot;&gt;&lt;script&gt;");
    }
}
