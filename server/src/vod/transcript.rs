//! Transcripts: the text of a video's captions, for crawlers (the watch page shows it) and
//! for search. The `vod.transcript` task reads the master playlist's subtitles rendition
//! (`pick_subtitles`), fetches its WebVTT segments as a player would, and keeps the cue
//! text in paragraphs of about a minute, each cue once (a cue spanning two segments is in
//! both). It is queued by the 10-minute job and when someone starts watching, for videos
//! whose transcript was not made for their current record version.

use std::sync::Weak;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use m3u8_rs::Playlist;
use serde_json::{Value, json};

use super::error::{not_found, origin_status};
use super::images::MakeInput;
use super::playlist::{self, Fetched};
use super::{Vod, VodError};
use crate::appview::VideoUri;
use crate::appview::transcript::MAX_TRANSCRIPT_BYTES;
use crate::tasks::{TaskDef, TaskFailure};

/// The task's name.
pub const TRANSCRIPT_TASK: &str = "vod.transcript";

/// Most subtitle segments read (two hours of 6-second segments), and how many at once.
const MAX_SEGMENTS: usize = 1200;

const PARALLEL_FETCHES: usize = 4;

/// A new paragraph starts this long after the previous one did.
const PARAGRAPH_MS: u64 = 60_000;

impl Vod {
    /// Makes and stores the transcript of `input` (empty when the origin has no
    /// captions); answers how long it is.
    async fn make_transcript(&self, input: MakeInput) -> Result<Value, VodError> {
        let video = self.video(&input.uri).await?;
        if video.cid != input.cid {
            return Err(not_found(format!(
                "{} changed since this was asked for (now {})",
                input.uri, video.cid
            )));
        }
        let text = self.captions_text(&input.uri).await?.unwrap_or_default();
        let stored = self
            .index
            .set_transcript(&input.uri, &input.cid, &text)
            .await
            .map_err(|err| VodError::Unavailable(format!("storing a transcript: {err}")))?;
        Ok(json!({ "characters": text.chars().count(), "stored": stored }))
    }

    /// The text of the captions the origin serves for `uri`; `None` when it serves none.
    async fn captions_text(&self, uri: &VideoUri) -> Result<Option<String>, VodError> {
        let (master, _) = self
            .fetch_master(uri, &[("uri".to_string(), uri.to_string())])
            .await?;
        let Playlist::MasterPlaylist(list) = &master.playlist else {
            return Ok(None);
        };
        let Some(track) = playlist::pick_subtitles(list) else {
            return Ok(None);
        };
        let url = master.url.join(track).map_err(|_| {
            VodError::Upstream(format!("the playlist names an unusable URL: {track:?}"))
        })?;
        let Fetched {
            url: base,
            playlist,
        } = self.fetch_playlist(url).await?;
        let Playlist::MediaPlaylist(subtitles) = playlist else {
            return Err(VodError::Upstream(
                "a subtitles playlist is a master playlist".into(),
            ));
        };
        let segments: Vec<_> = subtitles
            .segments
            .iter()
            .take(MAX_SEGMENTS)
            .filter_map(|segment| base.join(&segment.uri).ok())
            .collect();
        let mut files = futures::stream::iter(segments)
            .map(|url| self.get(url))
            .buffered(PARALLEL_FETCHES);
        let mut transcript = Transcript::default();
        while let Some((status, _, body)) = files.try_next().await? {
            if !status.is_success() {
                return Err(origin_status(status, &body));
            }
            if !transcript.add(&String::from_utf8_lossy(&body)) {
                break;
            }
        }
        Ok(Some(transcript.finish()))
    }

    /// Queues the transcript of `uri` when it was not made for its current version.
    pub(super) async fn want_transcript(&self, uri: &VideoUri) {
        let cid = match self.index.needs_transcript(uri).await {
            Ok(Some(cid)) => cid,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "reading whether a transcript is needed failed");
                return;
            }
        };
        let input = json!({ "uri": uri, "cid": cid });
        if let Err(err) = self.tasks.submit(TRANSCRIPT_TASK, input).await {
            tracing::warn!(error = %err, %uri, "queueing a transcript failed");
        }
    }
}

/// Cue text gathered in order.
#[derive(Default)]
struct Transcript {
    text: String,
    paragraph_start: Option<u64>,
    last: Option<(u64, String)>,
}

impl Transcript {
    /// Adds the cues of one WebVTT file; `false` once the transcript is full.
    fn add(&mut self, vtt: &str) -> bool {
        let parsed = match webvtt_parser::Vtt::parse(vtt) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::debug!(error = %err, "skipping a subtitles segment that does not parse");
                return true;
            }
        };
        for cue in &parsed.cues {
            let start = cue.start.as_milliseconds();
            let line = cue_text(cue.text);
            if line.is_empty() {
                continue;
            }
            let key = (start, line);
            if self.last.as_ref() == Some(&key) {
                continue;
            }
            let (_, line) = &key;
            match self.paragraph_start {
                Some(at) if start.saturating_sub(at) < PARAGRAPH_MS => self.text.push(' '),
                Some(_) => {
                    self.text.push_str("\n\n");
                    self.paragraph_start = Some(start);
                }
                None => self.paragraph_start = Some(start),
            }
            self.text.push_str(line);
            self.last = Some(key);
            if self.text.len() >= MAX_TRANSCRIPT_BYTES {
                return false;
            }
        }
        true
    }

    fn finish(self) -> String {
        self.text
    }
}

/// A cue's payload as plain text: markup (`<v Ada>`, `<i>`) removed, the few entities
/// WebVTT has decoded, whitespace collapsed.
fn cue_text(payload: &str) -> String {
    let mut plain = String::with_capacity(payload.len());
    let mut in_tag = false;
    for c in payload.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let plain = plain
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&amp;", "&");
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The transcript task.
pub fn transcript_task(vod: Weak<Vod>) -> TaskDef {
    let admitting = vod.clone();
    TaskDef::typed(TRANSCRIPT_TASK, move |input: MakeInput, _ctx| {
        let vod = vod.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| TaskFailure::retry("shutting down"))?;
            vod.make_transcript(input)
                .await
                .map_err(VodError::into_failure)
        }
    })
    .admit(move |input| {
        let vod = admitting.clone();
        async move {
            let vod = vod
                .upgrade()
                .ok_or_else(|| crate::tasks::TaskError::Unavailable("shutting down".into()))?;
            vod.admit(input).await
        }
    })
    .concurrency(2)
    .cache_ttl(Duration::from_secs(3600))
    .timeout(Duration::from_secs(300))
    .max_attempts(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT_1: &str = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
        00:00:00.000 --> 00:00:03.500\n<v Ada>Hello &amp; welcome</v>\n\n\
        00:00:04.000 --> 00:00:07.500\nto the   talk.\n";
    const SEGMENT_2: &str = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
        00:00:04.000 --> 00:00:07.500\nto the   talk.\n\n\
        00:01:05.000 --> 00:01:07.000\nA new minute.\n";

    #[test]
    fn cues_become_paragraphs_once_each() {
        let mut transcript = Transcript::default();
        assert!(transcript.add(SEGMENT_1));
        assert!(transcript.add("not a WebVTT file"));
        assert!(transcript.add(SEGMENT_2));
        assert_eq!(
            transcript.finish(),
            "Hello & welcome to the talk.\n\nA new minute."
        );
    }

    #[test]
    fn a_transcript_stops_when_full() {
        let cue = "x".repeat(1000);
        let mut transcript = Transcript::default();
        let mut full = false;
        for n in 0..1000 {
            let vtt = format!(
                "WEBVTT\n\n00:00:{:02}.000 --> 00:00:{:02}.500\n{cue}{n}\n",
                n % 60,
                n % 60
            );
            if !transcript.add(&vtt) {
                full = true;
                break;
            }
        }
        assert!(full);
        assert!(transcript.finish().len() < MAX_TRANSCRIPT_BYTES + 2000);
    }
}
