//! Images: thumbnails, card sprites and seek-bar storyboards, made by tasks keyed by the
//! record's CID, kept in the file cache, and served as soon as they exist; and the WebVTT
//! that maps times to their tiles.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::not_found;
use super::playlist::Timeline;
use super::previews::{self, Layout};
use super::{IMAGE_WAIT, Vod, VodError};
use crate::appview::VideoUri;
use crate::appview::query::VideoView;
use crate::atproto::syntax::Cid;
use crate::tasks::{Status, TaskError};

/// What VOD makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The video's thumbnail.
    Thumbnail,
    /// The card's 8-frame hover preview.
    Sprite,
    /// The seek bar's previews.
    Storyboard,
}

impl Kind {
    /// The task that makes it.
    pub fn task(self) -> &'static str {
        match self {
            Self::Thumbnail => "vod.thumbnail",
            Self::Sprite => "vod.sprite",
            Self::Storyboard => "vod.storyboard",
        }
    }

    pub(super) fn image_key(self, cid: &Cid, sheet: usize) -> String {
        match self {
            Self::Thumbnail => format!("thumb-{cid}.jpg"),
            Self::Sprite => format!("sprite-{cid}.jpg"),
            Self::Storyboard => format!("storyboard-{cid}-{sheet}.jpg"),
        }
    }

    pub(super) fn layout_key(self, cid: &Cid) -> String {
        match self {
            Self::Thumbnail => format!("thumb-{cid}.json"),
            Self::Sprite => format!("sprite-{cid}.json"),
            Self::Storyboard => format!("storyboard-{cid}.json"),
        }
    }
}

/// A task's input: the video and the version of its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeInput {
    /// The video's `at://` URI.
    pub uri: VideoUri,
    /// Its record's CID.
    pub cid: Cid,
}

/// How often a request for a storyboard sheet being made looks for it.
const SHEET_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// An image to serve.
#[derive(Debug, Clone)]
pub struct Image {
    /// JPEG bytes.
    pub bytes: Bytes,
    /// A strong validator: the cache key, which names the record version.
    pub etag: String,
}

impl Vod {
    /// The image `kind` (sheet `sheet` of a storyboard) of video `uri`: from the cache,
    /// or made by its task, waiting up to [`IMAGE_WAIT`]; [`VodError::Pending`] after that.
    pub async fn image(&self, kind: Kind, uri: &VideoUri, sheet: usize) -> Result<Image, VodError> {
        let video = self.video(uri).await?;
        let key = kind.image_key(&video.cid, sheet);
        let cached = self.cache.read(&key).await;
        self.metrics.cache_lookup(cached.is_some());
        if let Some(bytes) = cached {
            return Ok(Image {
                bytes: bytes.into(),
                etag: key,
            });
        }
        if kind == Kind::Storyboard
            && let Some(bytes) = self.sheet_when_made(&video, &key).await?
        {
            return Ok(Image {
                bytes: bytes.into(),
                etag: key,
            });
        }
        let layout = self.ensure(kind, &video).await?;
        if kind == Kind::Storyboard && sheet >= layout.sheets {
            return Err(VodError::InvalidRequest(format!(
                "this storyboard has {} sheet(s), numbered from 0",
                layout.sheets
            )));
        }
        match self.cache.read(&key).await {
            Some(bytes) => Ok(Image {
                bytes: bytes.into(),
                etag: key,
            }),
            // Evicted between the task and now: make it again.
            None => Err(VodError::Pending),
        }
    }

    /// `getVtt`: the WebVTT of the sprite or the storyboard of `uri`.
    pub async fn vtt(&self, kind: Kind, uri: &VideoUri) -> Result<String, VodError> {
        let video = self.video(uri).await?;
        let layout = match (self.layout(kind, &video.cid).await, kind) {
            (Some(layout), _) => layout,
            // The storyboard's layout follows from the timeline alone: players get it at
            // once, and its sheets as each is made.
            (None, Kind::Storyboard) => {
                let input = json!({ "uri": video.uri, "cid": video.cid });
                if let Err(err) = self.tasks.submit(kind.task(), input).await {
                    tracing::warn!(error = %err, %uri, "queueing a storyboard failed");
                }
                previews::storyboard_layout(&*self.timeline(uri).await?)
            }
            (None, _) => self.ensure(kind, &video).await?,
        };
        let export = match kind {
            Kind::Storyboard => "getStoryboard",
            _ => "getSprite",
        };
        let base = self.api_url(export);
        Ok(previews::vtt(&layout, |sheet| {
            let mut url = base.clone();
            url.query_pairs_mut().append_pair("uri", &uri.to_string());
            if kind == Kind::Storyboard {
                url.query_pairs_mut()
                    .append_pair("sheet", &sheet.to_string());
            }
            url.into()
        }))
    }

    /// The storyboard sheet `key` of `video` once it is made, while its task runs (up to
    /// [`IMAGE_WAIT`], then [`VodError::Pending`]); `None` when the task ended first (it
    /// failed, or the sheet does not exist), for [`Vod::ensure`] to say why.
    async fn sheet_when_made(
        &self,
        video: &VideoView,
        key: &str,
    ) -> Result<Option<Vec<u8>>, VodError> {
        let input = json!({ "uri": video.uri, "cid": video.cid });
        let submitted = self
            .tasks
            .submit(Kind::Storyboard.task(), input)
            .await
            .map_err(|err| match err {
                TaskError::QueueFull(_) => VodError::Pending,
                other => VodError::Unavailable(format!("submitting a VOD task: {other}")),
            })?;
        let deadline = tokio::time::Instant::now() + IMAGE_WAIT;
        let mut task = submitted.task;
        loop {
            if let Some(bytes) = self.cache.read(key).await {
                return Ok(Some(bytes));
            }
            if task.status.is_terminal() {
                return Ok(None);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(VodError::Pending);
            }
            tokio::time::sleep(SHEET_POLL).await;
            task = match self.tasks.get(&task.id).await {
                Ok(Some(task)) => task,
                _ => return Ok(None),
            };
        }
    }

    async fn layout(&self, kind: Kind, cid: &Cid) -> Option<Layout> {
        let bytes = self.cache.read(&kind.layout_key(cid)).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Submits `kind`'s task for `video` and waits up to [`IMAGE_WAIT`] for its layout.
    async fn ensure(&self, kind: Kind, video: &VideoView) -> Result<Layout, VodError> {
        let input = json!({ "uri": video.uri, "cid": video.cid });
        let task = self
            .tasks
            .submit_and_wait(kind.task(), input, None, IMAGE_WAIT)
            .await
            .map_err(|err| match err {
                TaskError::QueueFull(_) => VodError::Pending,
                other => VodError::Unavailable(format!("submitting a VOD task: {other}")),
            })?;
        match task.status {
            Status::Complete => match self.layout(kind, &video.cid).await {
                Some(layout) => Ok(layout),
                // Made on another server (each keeps its own image cache) or evicted
                // here since: the task's result says done, the files are not here, so
                // make them here now.
                None => tokio::time::timeout(IMAGE_WAIT, self.remake(kind, video))
                    .await
                    .map_err(|_| VodError::Pending)?,
            },
            Status::Failed => Err(VodError::from_task_message(
                task.error.as_deref().unwrap_or("the task failed"),
            )),
            Status::Pending | Status::Running => Err(VodError::Pending),
        }
    }

    /// Makes `kind` of `video` into this server's cache outside the task system, once
    /// for all concurrent callers.
    async fn remake(&self, kind: Kind, video: &VideoView) -> Result<Layout, VodError> {
        let input = MakeInput {
            uri: video.uri.clone(),
            cid: video.cid,
        };
        self.remakes
            .try_get_with(kind.layout_key(&video.cid), async {
                self.make(kind, input).await?;
                self.layout(kind, &video.cid).await.ok_or(VodError::Pending)
            })
            .await
            .map_err(|err: Arc<VodError>| (*err).clone())
    }

    /// Makes `kind` for `input` into the cache (the tasks' handler).
    pub(super) async fn make(&self, kind: Kind, input: MakeInput) -> Result<Value, VodError> {
        let video = self.video(&input.uri).await?;
        if video.cid != input.cid {
            return Err(not_found(format!(
                "{} changed since this was asked for (now {})",
                input.uri, video.cid
            )));
        }
        let layout = match kind {
            Kind::Thumbnail => self.make_thumbnail(&video).await?,
            Kind::Sprite => {
                let timeline = self.timeline(&video.uri).await?;
                let layout = previews::sprite_layout(timeline.duration);
                self.make_sheets(kind, &video.cid, &timeline, &layout)
                    .await?;
                layout
            }
            Kind::Storyboard => {
                let timeline = self.timeline(&video.uri).await?;
                let layout = previews::storyboard_layout(&timeline);
                self.make_sheets(kind, &video.cid, &timeline, &layout)
                    .await?;
                layout
            }
        };
        let layout_json = serde_json::to_vec(&layout).unwrap_or_default();
        self.store(&kind.layout_key(&video.cid), &layout_json)
            .await?;
        Ok(json!({ "image": kind.image_key(&video.cid, 0), "sheets": layout.sheets }))
    }

    pub(super) async fn store(&self, key: &str, bytes: &[u8]) -> Result<(), VodError> {
        self.cache.write(key, bytes).await.map_err(|err| {
            tracing::error!(%key, error = %err, "writing to the VOD cache failed");
            VodError::Unavailable(format!("the image cache cannot be written ({err})"))
        })
    }

    /// Each sheet of `layout`: its frames grabbed (in batches, in parallel within the
    /// ffmpeg bound, in time order), tiled and stored as soon as its last frame is in, so
    /// the first sheet is served while the others are made.
    pub(super) async fn make_sheets(
        &self,
        kind: Kind,
        cid: &Cid,
        timeline: &Timeline,
        layout: &Layout,
    ) -> Result<(), VodError> {
        let ats: Vec<f64> = layout.tiles.iter().map(|tile| tile.at).collect();
        let (Some(w), Some(h)) = (
            layout.tiles.first().map(|t| t.w),
            layout.tiles.first().map(|t| t.h),
        ) else {
            return Ok(());
        };
        let mut batches = std::pin::pin!(self.frames.frames(timeline, &ats, w, h));
        let mut frames = Vec::with_capacity(ats.len());
        let mut sheet = 0;
        let mut first_tile = 0;
        while let Some(batch) = batches.next().await {
            frames.extend(batch?);
            while sheet < layout.sheets {
                let end = layout.tiles[first_tile..]
                    .iter()
                    .position(|t| t.sheet != sheet)
                    .map_or(layout.tiles.len(), |n| first_tile + n);
                if frames.len() < end {
                    break;
                }
                let tiles: Vec<_> = layout.tiles[first_tile..end].iter().collect();
                let image = previews::sheet(&tiles, &frames[first_tile..end]);
                let jpeg = previews::jpeg(&image, 80)
                    .map_err(|err| VodError::Media(format!("encoding the sheet: {err}")))?;
                self.store(&kind.image_key(cid, sheet), &jpeg).await?;
                sheet += 1;
                first_tile = end;
            }
        }
        Ok(())
    }
}
