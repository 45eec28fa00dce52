//! VOD's tasks and job: `vod.thumbnail`, `vod.sprite`, `vod.storyboard` (public, their
//! input checked against the index before it becomes a row) and the 10-minute job that
//! queues previews and transcripts for the newest videos that lack them.

use std::sync::Weak;
use std::time::Duration;

use serde_json::{Value, json};

use super::images::{Kind, MakeInput};
use super::{Vod, VodError};
use crate::tasks::scheduler::{JobDef, Schedule};
use crate::tasks::{TaskDef, TaskError, TaskFailure};

/// How long made images are reused.
const RESULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Videos the 10-minute job looks at, and most tasks it submits per run.
const JOB_VIDEOS: u32 = 50;

const JOB_SUBMISSIONS: usize = 20;

impl Vod {
    /// Whether a task input may become a row: it must name an indexed video at its
    /// current record version, so junk never reaches the queue.
    pub(super) async fn admit(&self, input: Value) -> Result<(), TaskError> {
        let input: MakeInput = serde_json::from_value(input)
            .map_err(|err| TaskError::InvalidInput(err.to_string()))?;
        let video = self.video(&input.uri).await.map_err(|err| match err {
            VodError::InvalidRequest(message) => TaskError::InvalidInput(message),
            VodError::NotFound(_, message) => TaskError::NotFound(message),
            other => TaskError::Unavailable(other.public_message()),
        })?;
        if video.cid != input.cid {
            return Err(TaskError::InvalidInput(format!(
                "cid {} is not the current version of {} (that is {})",
                input.cid, input.uri, video.cid
            )));
        }
        Ok(())
    }

    /// The 10-minute job: thumbnails, sprites and transcripts for the newest videos that
    /// lack them, so the first viewer (or crawler) does not wait.
    pub async fn process_missing(&self) -> Result<usize, VodError> {
        let page = self
            .index
            .list(&crate::appview::query::VideoQuery {
                limit: JOB_VIDEOS,
                ..Default::default()
            })
            .await
            .map_err(|err| VodError::Unavailable(err.to_string()))?;
        let mut submitted = 0;
        for video in &page.videos {
            for kind in [Kind::Thumbnail, Kind::Sprite] {
                if submitted >= JOB_SUBMISSIONS {
                    return Ok(submitted);
                }
                if self.cache.path(&kind.layout_key(&video.cid)).is_some() {
                    continue;
                }
                let input = json!({ "uri": video.uri, "cid": video.cid });
                self.tasks
                    .submit(kind.task(), input)
                    .await
                    .map_err(|err| VodError::Unavailable(err.to_string()))?;
                submitted += 1;
            }
        }
        let lacking = self
            .index
            .lacking_transcripts(JOB_VIDEOS)
            .await
            .map_err(|err| VodError::Unavailable(err.to_string()))?;
        for (uri, cid) in lacking {
            if submitted >= JOB_SUBMISSIONS {
                break;
            }
            let input = json!({ "uri": uri, "cid": cid });
            self.tasks
                .submit(super::transcript::TRANSCRIPT_TASK, input)
                .await
                .map_err(|err| VodError::Unavailable(err.to_string()))?;
            submitted += 1;
        }
        Ok(submitted)
    }
}

/// The task that makes `kind`, calling back into `vod`.
pub fn make_task(vod: Weak<Vod>, kind: Kind) -> TaskDef {
    let (concurrency, timeout) = match (&vod.upgrade(), kind) {
        (Some(vod), Kind::Storyboard) => (vod.options.ffmpeg_concurrency, Duration::from_secs(900)),
        (Some(vod), _) => (vod.options.ffmpeg_concurrency, Duration::from_secs(180)),
        (None, _) => (1, Duration::from_secs(180)),
    };
    let admitting = vod.clone();
    TaskDef::typed(kind.task(), move |input: MakeInput, _ctx| {
        let vod = vod.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| TaskFailure::retry("shutting down"))?;
            vod.make(kind, input).await.map_err(VodError::into_failure)
        }
    })
    .admit(move |input| {
        let vod = admitting.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| TaskError::Unavailable("shutting down".into()))?;
            vod.admit(input).await
        }
    })
    .concurrency(u32::try_from(concurrency).unwrap_or(1))
    .cache_ttl(RESULT_TTL)
    .timeout(timeout)
    .max_attempts(2)
    .public(true)
}

/// The 10-minute job.
pub fn process_job(vod: Weak<Vod>) -> JobDef {
    JobDef::new(
        "vod.syncAndProcessVideos",
        Schedule::Every(Duration::from_secs(600)),
        move |_| {
            let vod = vod.clone();
            async move {
                let Some(vod) = vod.upgrade() else {
                    return Ok(());
                };
                let submitted = vod.process_missing().await.map_err(|e| e.to_string())?;
                tracing::info!(
                    submitted,
                    "VOD: previews and transcripts queued for videos that lack them"
                );
                Ok(())
            }
        },
    )
}
