//! Thumbnails: the record's own `thumb` blob (checked against its CID), else its
//! livestream's, else a frame from a tenth of the way in.

use serde::Deserialize;

use super::error::{blob_error, not_found};
use super::images::Kind;
use super::previews::{self, Layout};
use super::{Vod, VodError};
use crate::appview::query::VideoView;
use crate::atproto::blob::BlobRef;
use crate::atproto::syntax::{self, AtIdentifier, Cid, Did};
use crate::atproto::xrpc::XrpcClient;

/// Largest thumbnail blob fetched.
const MAX_THUMB_BYTES: usize = 5 * 1024 * 1024;

impl Vod {
    /// The record's thumbnail blob, else its livestream's, else a frame from a tenth of
    /// the way in (clamped: not the black first frame, not past the end).
    ///
    /// A frame stands in only when there is no usable blob: when the PDS fails or is slow,
    /// the attempt fails and is retried, so a passing outage does not replace the
    /// creator's thumbnail with a frame for good.
    pub(super) async fn make_thumbnail(&self, video: &VideoView) -> Result<Layout, VodError> {
        let blob = match &video.thumb {
            Some(thumb) => self.blob_jpeg(&video.did, &thumb.cid).await,
            None => Err(not_found("no thumbnail blob")),
        };
        let blob = match (blob, &video.livestream) {
            (Err(err), _) if err.is_transient() => return Err(err),
            (Ok(jpeg), _) => Ok(jpeg),
            (Err(_), Some(livestream)) => self.livestream_thumb(&livestream.uri).await,
            (Err(err), None) => Err(err),
        };
        let jpeg = match blob {
            Ok(jpeg) => jpeg,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::debug!(uri = %video.uri, error = %err, "no thumbnail blob; taking a frame");
                let timeline = self.timeline(&video.uri).await?;
                let at = thumbnail_time(timeline.duration);
                let (w, h) = previews::THUMBNAIL_SIZE;
                let frame = self.frames.frame(&timeline, at, w, h).await?;
                previews::jpeg(&frame, 85)
                    .map_err(|err| VodError::Media(format!("encoding the thumbnail: {err}")))?
            }
        };
        self.store(&Kind::Thumbnail.image_key(&video.cid, 0), &jpeg)
            .await?;
        Ok(Layout {
            duration: video.duration_ms.unwrap_or(0) as f64 / 1000.0,
            tiles: Vec::new(),
            sheets: 1,
        })
    }

    /// Blob `cid` of `did`, checked against its CID, as a JPEG (other image types are
    /// converted).
    async fn blob_jpeg(&self, did: &Did, cid: &Cid) -> Result<Vec<u8>, VodError> {
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(did.clone()))
            .await
            .map_err(blob_error)?;
        let bytes = XrpcClient::new(self.http.clone(), identity.pds)
            .get_blob(did, cid, MAX_THUMB_BYTES)
            .await
            .map_err(blob_error)?;
        if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            return Ok(bytes.to_vec());
        }
        tokio::task::spawn_blocking(move || {
            let image = previews::decode_untrusted(&bytes).map_err(|err| {
                VodError::Media(format!("the thumbnail blob is not a usable image: {err}"))
            })?;
            previews::jpeg(&image, 85)
                .map_err(|err| VodError::Media(format!("converting the thumbnail: {err}")))
        })
        .await
        .map_err(|err| VodError::Unavailable(format!("converting the thumbnail: {err}")))?
    }

    /// The `thumb` of the `place.stream.livestream` record at `uri`.
    async fn livestream_thumb(&self, uri: &str) -> Result<Vec<u8>, VodError> {
        let not_a_record = || VodError::InvalidRequest(format!("not a record URI: {uri}"));
        let parsed = syntax::at_uri(uri).map_err(|_| not_a_record())?;
        let AtIdentifier::Did(did) = parsed.authority() else {
            return Err(not_a_record());
        };
        let did = syntax::did(did.as_str()).map_err(|_| not_a_record())?;
        let collection = parsed
            .collection()
            .ok_or_else(not_a_record)?
            .as_str()
            .to_string();
        let rkey = parsed.rkey().ok_or_else(not_a_record)?.as_str().to_string();
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(did.clone()))
            .await
            .map_err(blob_error)?;
        let record = XrpcClient::new(self.http.clone(), identity.pds)
            .get_record(&did, &collection, &rkey)
            .await
            .map_err(blob_error)?;
        let thumb = record
            .value
            .get("thumb")
            .and_then(|thumb| BlobRef::deserialize(thumb).ok())
            .ok_or_else(|| not_found("the livestream has no thumbnail"))?;
        self.blob_jpeg(&did, &thumb.cid).await
    }
}

/// Where a thumbnail frame is taken: a tenth of the way in, but at least a second in
/// (not the black first frame) and half a second before the end, whichever fits; any
/// duration, even zero or a few frames long, gives a time within the video.
fn thumbnail_time(duration: f64) -> f64 {
    let duration = if duration.is_finite() {
        duration.max(0.0)
    } else {
        0.0
    };
    (duration * 0.1)
        .max(duration.min(1.0))
        .min((duration - 0.5).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbnail_is_taken_inside_any_video() {
        for duration in [
            0.0,
            0.04,
            0.5,
            1.0,
            1.2,
            1.49,
            1.5,
            3.0,
            30.0,
            3600.0,
            -1.0,
            f64::NAN,
        ] {
            let at = thumbnail_time(duration);
            assert!(
                at >= 0.0 && (at <= duration.max(0.0) || !duration.is_finite()),
                "{duration}: {at}"
            );
        }
        assert_eq!(thumbnail_time(30.0), 3.0);
        assert_eq!(thumbnail_time(5.0), 1.0);
    }
}
