//! Frames out of HLS for the price of one segment each.
//!
//! Handing ffmpeg the playlist costs it the whole stream up to the wanted time (the
//! seed's method: 72 s for 8 frames of a 5-minute video), and Debian's ffmpeg 5.1 refuses
//! extension-less XRPC URLs anyway. Instead: find the segment that holds the time, fetch
//! its init section and its bytes (Range requests for byte-ranged CMAF), write them to one
//! temporary file, and have ffmpeg seek within that (input seeking, accurate) and decode
//! one frame, scaled and letterboxed to the tile size, as raw RGB. Frames wanted together
//! (a storyboard's hundreds) are decoded a dozen per ffmpeg run, one input and one output
//! each, since starting ffmpeg costs more than a frame. Every ffmpeg run has a timeout and
//! is killed when it passes it; at most `VOD_FFMPEG_CONCURRENCY` run at once.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::try_join_all;
use futures::{Stream, StreamExt};
use image::RgbImage;
use moka::future::Cache;
use reqwest::header::RANGE;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::VodError;
use super::metrics::VodMetrics;
use super::playlist::{Resource, Timeline};
use crate::atproto::net::{HttpClient, NetError};

/// Largest segment fetched, in bytes.
const MAX_SEGMENT_BYTES: usize = 64 * 1024 * 1024;
/// Largest init section fetched, in bytes.
const MAX_INIT_BYTES: usize = 4 * 1024 * 1024;
/// Frames decoded by one ffmpeg run: starting a process costs about three times what
/// decoding a frame does (measured: 78 ms a frame alone, 23 ms in twelves).
const BATCH: usize = 12;

/// Grabs frames; cheap to clone.
#[derive(Clone)]
pub struct FrameGrabber {
    http: HttpClient,
    ffmpeg: PathBuf,
    slots: Arc<Semaphore>,
    concurrency: usize,
    timeout: Duration,
    inits: Cache<Resource, Bytes>,
    metrics: VodMetrics,
}

impl FrameGrabber {
    /// A grabber running `ffmpeg`, at most `concurrency` at once, each for at most
    /// `timeout`, counting its runs in `metrics`.
    pub fn new(
        http: HttpClient,
        ffmpeg: PathBuf,
        concurrency: usize,
        timeout: Duration,
        metrics: VodMetrics,
    ) -> Self {
        Self {
            metrics,
            http,
            ffmpeg,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
            timeout,
            inits: Cache::builder()
                .max_capacity(64 * 1024 * 1024)
                .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }

    /// The frame at `at` seconds, scaled into `width`×`height` (letterboxed).
    pub async fn frame(
        &self,
        timeline: &Timeline,
        at: f64,
        width: u32,
        height: u32,
    ) -> Result<RgbImage, VodError> {
        self.batch(timeline, &[at], width, height)
            .await?
            .pop()
            .ok_or_else(|| VodError::Media("no frame was decoded".into()))
    }

    /// The frames at each of `ats`, in order, a batch at a time: several batches run at
    /// once (within the slots), and the stream yields each batch's frames in the order of
    /// `ats`, so a caller can use the first ones while the rest are made.
    pub fn frames<'a>(
        &'a self,
        timeline: &'a Timeline,
        ats: &'a [f64],
        width: u32,
        height: u32,
    ) -> impl Stream<Item = Result<Vec<RgbImage>, VodError>> + 'a {
        futures::stream::iter(ats.chunks(BATCH))
            .map(move |batch| self.batch(timeline, batch, width, height))
            .buffered(self.concurrency)
    }

    /// The frames at `ats` from one ffmpeg run (a process costs far more than a frame).
    ///
    /// Holds one of the slots from the segments' download to the end of their decoding:
    /// however many frames are asked for at once, at most `concurrency × BATCH` segments
    /// are on disk, and none stay in memory.
    async fn batch(
        &self,
        timeline: &Timeline,
        ats: &[f64],
        width: u32,
        height: u32,
    ) -> Result<Vec<RgbImage>, VodError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| VodError::Unavailable("shutting down".into()))?;
        let dir = tempfile::Builder::new()
            .prefix("streamhut-frames-")
            .tempdir()
            .map_err(|err| VodError::Unavailable(format!("a temporary directory: {err}")))?;
        let inputs = try_join_all(ats.iter().enumerate().map(|(n, &at)| {
            let path = dir.path().join(format!("in-{n}"));
            async move {
                let (segment, offset) = timeline.locate(at);
                let init = match &segment.init {
                    Some(init) => Some(self.init(init).await?),
                    None => None,
                };
                let media = self.fetch(&segment.media, MAX_SEGMENT_BYTES).await?;
                let mut bytes =
                    Vec::with_capacity(init.as_ref().map_or(0, Bytes::len) + media.len());
                if let Some(init) = &init {
                    bytes.extend_from_slice(init);
                }
                bytes.extend_from_slice(&media);
                let format = container(&bytes)?;
                tokio::fs::write(&path, &bytes).await.map_err(|err| {
                    VodError::Unavailable(format!("writing a temporary file: {err}"))
                })?;
                Ok::<_, VodError>(Input {
                    path,
                    format,
                    offset: Some(offset),
                })
            }
        }))
        .await?;
        let decoded = match self.decode(dir.path(), &inputs, width, height).await {
            Ok(frames) => frames,
            // One bad segment fails the whole run: decode each alone, to know which.
            Err(_) if inputs.len() > 1 => {
                let mut frames = Vec::with_capacity(inputs.len());
                for input in &inputs {
                    let one = std::slice::from_ref(input);
                    frames.extend(self.decode(dir.path(), one, width, height).await?);
                }
                frames
            }
            Err(err) => return Err(err),
        };
        let mut frames = Vec::with_capacity(inputs.len());
        for (input, frame) in inputs.iter().zip(decoded) {
            let frame = match frame {
                Some(frame) => frame,
                // The offset fell after the segment's last frame: take its first.
                None => {
                    let first = Input {
                        offset: None,
                        ..input.clone()
                    };
                    self.decode(dir.path(), &[first], width, height)
                        .await?
                        .pop()
                        .flatten()
                        .ok_or_else(|| VodError::Media("the segment holds no video frame".into()))?
                }
            };
            frames.push(frame);
        }
        Ok(frames)
    }

    async fn init(&self, init: &Resource) -> Result<Bytes, VodError> {
        if let Some(bytes) = self.inits.get(init).await {
            return Ok(bytes);
        }
        let bytes = self.fetch(init, MAX_INIT_BYTES).await?;
        self.inits.insert(init.clone(), bytes.clone()).await;
        Ok(bytes)
    }

    /// A resource's bytes, with a Range request when only part is wanted.
    async fn fetch(&self, resource: &Resource, limit: usize) -> Result<Bytes, VodError> {
        let mut request = self
            .http
            .request(reqwest::Method::GET, resource.url.clone());
        if let Some((offset, length)) = resource.range {
            if length == 0 {
                return Ok(Bytes::new());
            }
            let last = offset.checked_add(length - 1).ok_or_else(|| {
                VodError::Upstream("the playlist has an impossible byte range".into())
            })?;
            request = request.header(RANGE, format!("bytes={offset}-{last}"));
        }
        let response = self.http.send(request).await.map_err(media_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(VodError::Upstream(format!(
                "{} answered {status} for media",
                resource.url.host_str().unwrap_or_default()
            )));
        }
        let partial = status == reqwest::StatusCode::PARTIAL_CONTENT;
        let cap = match resource.range {
            Some((offset, length)) if !partial => {
                usize::try_from(offset.saturating_add(length)).unwrap_or(usize::MAX)
            }
            Some((_, length)) => usize::try_from(length).unwrap_or(usize::MAX),
            None => limit,
        };
        let body = self
            .http
            .read_body(response, Some(cap.min(limit).max(1)))
            .await
            .map_err(media_error)?;
        match resource.range {
            // A server that ignores Range sends the whole resource.
            Some((offset, length)) if !partial => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                let end = start
                    .saturating_add(usize::try_from(length).unwrap_or(usize::MAX))
                    .min(body.len());
                Ok(body.slice(start..end))
            }
            _ => Ok(body),
        }
    }

    /// Decodes the frame each of `inputs` holds at its offset (its first without one), in
    /// one ffmpeg run writing into `dir`; `None` for an input where ffmpeg finds no
    /// frame. The caller holds a slot.
    async fn decode(
        &self,
        dir: &Path,
        inputs: &[Input],
        width: u32,
        height: u32,
    ) -> Result<Vec<Option<RgbImage>>, VodError> {
        let started = std::time::Instant::now();
        // Dropping the run on timeout drops the child, which kills it (kill_on_drop).
        let run = self.run_ffmpeg(dir, inputs, width, height);
        let (outcome, result) = match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(frames)) if frames.iter().all(Option::is_some) => ("ok", Ok(frames)),
            Ok(Ok(frames)) => ("no_frame", Ok(frames)),
            Ok(Err(err)) => ("failed", Err(err)),
            Err(_) => (
                "timeout",
                Err(VodError::Media(format!(
                    "ffmpeg took longer than {:?} and was stopped",
                    self.timeout
                ))),
            ),
        };
        self.metrics.ffmpeg(outcome, started.elapsed());
        result
    }

    async fn run_ffmpeg(
        &self,
        dir: &Path,
        inputs: &[Input],
        width: u32,
        height: u32,
    ) -> Result<Vec<Option<RgbImage>>, VodError> {
        let mut command = Command::new(&self.ffmpeg);
        command.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        for input in inputs {
            command.args(["-protocol_whitelist", "file"]);
            if let Some(offset) = input.offset.filter(|o| *o > 0.0) {
                command.arg("-ss").arg(format!("{offset:.3}"));
            }
            // The container is named, never guessed: a "segment" that is a playlist or an
            // image sequence would otherwise have ffmpeg open files of its choosing.
            command
                .args(["-f", input.format])
                .arg("-i")
                .arg(&input.path);
        }
        let outputs: Vec<PathBuf> = (0..inputs.len())
            .map(|n| dir.join(format!("out-{n}.rgb")))
            .collect();
        for (n, output) in outputs.iter().enumerate() {
            command
                .args([
                    "-map",
                    &format!("{n}:v:0"),
                    "-an",
                    "-sn",
                    "-frames:v",
                    "1",
                    "-vf",
                ])
                .arg(format!(
                    "scale={width}:{height}:force_original_aspect_ratio=decrease,\
                     pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black"
                ))
                .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-y"])
                .arg(output);
        }
        command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| {
            VodError::Unavailable(if err.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "ffmpeg was not found at {}; install it (the README's commands do) or set FFMPEG_PATH",
                    self.ffmpeg.display()
                )
            } else {
                format!("cannot start ffmpeg: {err}")
            })
        })?;
        let Some(mut stderr) = child.stderr.take() else {
            return Err(VodError::Unavailable("ffmpeg started without pipes".into()));
        };
        // The first lines say why; the rest is drained, so ffmpeg never blocks on them.
        let mut err = Vec::new();
        let _ = (&mut stderr).take(8192).read_to_end(&mut err).await;
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        let status = child
            .wait()
            .await
            .map_err(|e| VodError::Media(format!("waiting for ffmpeg: {e}")))?;
        if !status.success() {
            let reason = String::from_utf8_lossy(&err);
            let reason = reason.lines().next().unwrap_or("no message").trim();
            return Err(VodError::Media(format!(
                "ffmpeg could not decode the segment ({status}): {reason}"
            )));
        }
        let frame_bytes = (width * height * 3) as usize;
        let mut frames = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let bytes = tokio::fs::read(output).await.unwrap_or_default();
            frames.push(if bytes.len() < frame_bytes {
                None
            } else {
                RgbImage::from_raw(width, height, bytes[..frame_bytes].to_vec())
            });
        }
        Ok(frames)
    }
}

/// A segment on disk and where in it the wanted frame is.
#[derive(Clone)]
struct Input {
    path: PathBuf,
    format: &'static str,
    offset: Option<f64>,
}

/// The ffmpeg demuxer for a segment (with its init section in front): `mp4` for fMP4 /
/// CMAF (a box header first), `mpegts` for MPEG-TS (sync bytes every 188 bytes); anything
/// else is not a media segment.
fn container(bytes: &[u8]) -> Result<&'static str, VodError> {
    const MP4_BOXES: [&[u8; 4]; 6] = [b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg"];
    if bytes.len() >= 8 && MP4_BOXES.iter().any(|kind| &bytes[4..8] == *kind) {
        return Ok("mp4");
    }
    if bytes.len() >= 188 && bytes[0] == 0x47 && bytes.get(188).is_none_or(|b| *b == 0x47) {
        return Ok("mpegts");
    }
    Err(VodError::Media(
        "the segment is neither fMP4 nor MPEG-TS".into(),
    ))
}

fn media_error(err: NetError) -> VodError {
    match err {
        NetError::Timeout(host) => VodError::Timeout(format!("{host} did not send media in time")),
        other => VodError::Upstream(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_read_only_as_the_containers_they_are() {
        let mut fmp4 = vec![0, 0, 0, 24];
        fmp4.extend_from_slice(b"ftypiso6");
        assert_eq!(container(&fmp4).ok(), Some("mp4"));
        let mut ts = vec![0u8; 376];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert_eq!(container(&ts).ok(), Some("mpegts"));
        let mut not_ts = vec![0u8; 400];
        not_ts[0] = 0x47;
        for not_media in [
            &b"#EXTM3U\n#EXT-X-TARGETDURATION:4\nfile:///etc/passwd\n"[..],
            b"",
            b"G",
            &not_ts,
        ] {
            assert!(container(not_media).is_err(), "{not_media:?}");
        }
    }
}
