//! Preview layouts: where each frame comes from in time, where it goes in its sheet, and
//! the WebVTT that tells players which tile to show when.
//!
//! - The **card sprite** is the seed's: 8 frames at even intervals, 4×2 tiles of 320×180 in
//!   one JPEG, cycled on hover.
//! - The **storyboard** is for the seek bar, where 8 frames are too few for an hour-long
//!   talk: about one tile every 10 seconds, 160×90 each, at most 100 (10×10) per sheet, as
//!   many sheets as needed. Tiles start at segment boundaries, so each is the exact frame
//!   at its cue's start and costs one segment's first frame.

use image::{RgbImage, imageops};
use serde::{Deserialize, Serialize};

use super::playlist::Timeline;

/// Sprite tile size.
pub const SPRITE_TILE: (u32, u32) = (320, 180);
/// Sprite grid.
pub const SPRITE_COLUMNS: u32 = 4;
/// Frames in a sprite.
pub const SPRITE_FRAMES: u32 = 8;
/// Storyboard tile size.
pub const STORYBOARD_TILE: (u32, u32) = (160, 90);
/// Storyboard columns (and rows) per sheet.
pub const STORYBOARD_COLUMNS: u32 = 10;
/// Tiles per storyboard sheet.
pub const STORYBOARD_TILES_PER_SHEET: usize = 100;
/// Seconds between storyboard tiles, about.
pub const STORYBOARD_INTERVAL: f64 = 10.0;
/// Thumbnail size.
pub const THUMBNAIL_SIZE: (u32, u32) = (640, 360);

/// One tile: the time its frame is taken at, the cue it answers, and where it sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    /// The sheet (0 for sprites).
    pub sheet: usize,
    /// The frame's time, in seconds.
    pub at: f64,
    /// The cue's start, in seconds.
    pub start: f64,
    /// The cue's end, in seconds.
    pub end: f64,
    /// Position in the sheet, in pixels.
    pub x: u32,
    /// Position in the sheet, in pixels.
    pub y: u32,
    /// Tile width.
    pub w: u32,
    /// Tile height.
    pub h: u32,
}

/// A preview's layout, kept next to its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// The video's duration, in seconds.
    pub duration: f64,
    /// The tiles, in time order.
    pub tiles: Vec<Tile>,
    /// How many sheets.
    pub sheets: usize,
}

fn place(index: usize, columns: u32, (w, h): (u32, u32)) -> (u32, u32) {
    let index = index as u32;
    ((index % columns) * w, (index / columns) * h)
}

/// The card sprite: 8 cues dividing the video evenly, each showing the frame from the
/// middle of its span (clamped into the video).
pub fn sprite_layout(duration: f64) -> Layout {
    let duration = duration.max(0.0);
    let span = duration / f64::from(SPRITE_FRAMES);
    let tiles = (0..SPRITE_FRAMES as usize)
        .map(|i| {
            let (x, y) = place(i, SPRITE_COLUMNS, SPRITE_TILE);
            let start = span * i as f64;
            Tile {
                sheet: 0,
                at: (start + span / 2.0).min((duration - 0.1).max(0.0)),
                start,
                end: (start + span).min(duration),
                x,
                y,
                w: SPRITE_TILE.0,
                h: SPRITE_TILE.1,
            }
        })
        .collect();
    Layout {
        duration,
        tiles,
        sheets: 1,
    }
}

/// The storyboard: a tile at the first segment boundary at or after every
/// [`STORYBOARD_INTERVAL`], each cue lasting until the next tile.
pub fn storyboard_layout(timeline: &Timeline) -> Layout {
    let mut starts: Vec<f64> = Vec::new();
    for segment in &timeline.segments {
        let due = starts.last().map_or(0.0, |last| last + STORYBOARD_INTERVAL);
        if segment.start + 1e-6 >= due {
            starts.push(segment.start);
        }
    }
    let tiles: Vec<Tile> = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let (x, y) = place(
                i % STORYBOARD_TILES_PER_SHEET,
                STORYBOARD_COLUMNS,
                STORYBOARD_TILE,
            );
            Tile {
                sheet: i / STORYBOARD_TILES_PER_SHEET,
                at: start,
                start,
                end: starts.get(i + 1).copied().unwrap_or(timeline.duration),
                x,
                y,
                w: STORYBOARD_TILE.0,
                h: STORYBOARD_TILE.1,
            }
        })
        .collect();
    Layout {
        duration: timeline.duration,
        sheets: tiles.len().div_ceil(STORYBOARD_TILES_PER_SHEET).max(1),
        tiles,
    }
}

/// One sheet: `frames` (in the order of `tiles`) pasted at their tiles' places.
pub fn sheet(tiles: &[&Tile], frames: &[RgbImage]) -> RgbImage {
    let width = tiles.iter().map(|t| t.x + t.w).max().unwrap_or(1);
    let height = tiles.iter().map(|t| t.y + t.h).max().unwrap_or(1);
    let mut sheet = RgbImage::new(width, height);
    for (tile, frame) in tiles.iter().zip(frames) {
        imageops::replace(&mut sheet, frame, i64::from(tile.x), i64::from(tile.y));
    }
    sheet
}

/// Largest width or height of an image decoded from someone else's bytes.
const MAX_DECODED_SIDE: u32 = 8192;
/// Most memory decoding someone else's image may take.
const MAX_DECODE_ALLOC_BYTES: u64 = 256 * 1024 * 1024;

/// Decodes an image someone else made (a creator's thumbnail blob), within explicit
/// limits on its size and on what decoding may allocate. CPU-bound: call it off the
/// async runtime.
pub fn decode_untrusted(bytes: &[u8]) -> Result<RgbImage, image::ImageError> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC_BYTES);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(limits);
    Ok(reader.decode()?.to_rgb8())
}

/// A JPEG of `image`.
pub fn jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image)?;
    Ok(out)
}

/// `HH:MM:SS.mmm`.
fn timestamp(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// WebVTT for `layout`: one cue per tile, pointing at `image_url(sheet)#xywh=…`.
pub fn vtt(layout: &Layout, image_url: impl Fn(usize) -> String) -> String {
    let mut out = String::from("WEBVTT\n");
    for tile in &layout.tiles {
        if tile.end <= tile.start {
            continue;
        }
        out.push_str(&format!(
            "\n{} --> {}\n{}#xywh={},{},{},{}\n",
            timestamp(tile.start),
            timestamp(tile.end),
            image_url(tile.sheet),
            tile.x,
            tile.y,
            tile.w,
            tile.h
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vod::playlist::{Resource, Segment};

    #[test]
    fn the_sprite_divides_the_video_into_eight_cues() {
        let layout = sprite_layout(80.0);
        assert_eq!(layout.tiles.len(), 8);
        assert_eq!(
            (
                layout.tiles[0].start,
                layout.tiles[0].end,
                layout.tiles[0].at
            ),
            (0.0, 10.0, 5.0)
        );
        assert_eq!((layout.tiles[5].x, layout.tiles[5].y), (320, 180));
        let vtt = vtt(&layout, |_| {
            "https://h/api/vod/getSprite?uri=at%3A%2F%2Fx".into()
        });
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:10.000\nhttps://h/api/vod/getSprite?uri=at%3A%2F%2Fx#xywh=0,0,320,180\n"), "{vtt}");
        assert!(vtt.contains("00:01:10.000 --> 00:01:20.000\nhttps://h/api/vod/getSprite?uri=at%3A%2F%2Fx#xywh=960,180,320,180"), "{vtt}");
        // A very short video still has frames inside it.
        assert!(sprite_layout(0.5).tiles.iter().all(|t| t.at <= 0.5));
    }

    #[test]
    fn storyboards_grow_with_the_video_and_start_at_segment_boundaries() {
        let url = url::Url::parse("https://o/v.mp4").expect("url");
        let timeline = |seconds: usize| Timeline {
            segments: (0..seconds / 4)
                .map(|i| Segment {
                    start: (i * 4) as f64,
                    duration: 4.0,
                    media: Resource {
                        url: url.clone(),
                        range: None,
                    },
                    init: None,
                })
                .collect(),
            duration: seconds as f64,
        };
        let short = storyboard_layout(&timeline(300));
        assert_eq!(short.tiles.len(), 25, "a tile every 12 s (segments of 4 s)");
        assert_eq!(short.sheets, 1);
        assert_eq!((short.tiles[1].start, short.tiles[1].end), (12.0, 24.0));
        let hour = storyboard_layout(&timeline(3600));
        assert_eq!(hour.tiles.len(), 300);
        assert_eq!(hour.sheets, 3);
        assert_eq!(
            (hour.tiles[100].sheet, hour.tiles[100].x, hour.tiles[100].y),
            (1, 0, 0)
        );
        assert_eq!(hour.tiles.last().map(|t| t.end), Some(3600.0));
    }
}

/// Property tests: for any duration and any timeline, layouts stay inside the video and
/// their WebVTT is well-formed: cues in order, each ending after it starts.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use url::Url;

    use super::*;
    use crate::vod::playlist::{Resource, Segment};

    /// Each cue of `vtt`: (start, end) in milliseconds; panics on a malformed line.
    fn cues(vtt: &str) -> Vec<(u64, u64)> {
        let millis = |t: &str| -> u64 {
            let (hms, ms) = t.split_once('.').expect("HH:MM:SS.mmm");
            let parts: Vec<u64> = hms.split(':').map(|p| p.parse().expect("number")).collect();
            assert_eq!((parts.len(), ms.len()), (3, 3), "{t}");
            ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<u64>().expect("ms")
        };
        vtt.lines()
            .filter_map(|line| line.split_once(" --> "))
            .map(|(start, end)| (millis(start), millis(end)))
            .collect()
    }

    fn check(vtt: &str, layout: &Layout) -> Result<(), TestCaseError> {
        prop_assert!(vtt.starts_with("WEBVTT\n"));
        let cues = cues(vtt);
        prop_assert!(cues.len() <= layout.tiles.len());
        for window in cues.windows(2) {
            prop_assert!(window[0].0 <= window[1].0, "cues in order: {:?}", window);
        }
        for (start, end) in &cues {
            prop_assert!(start <= end, "{} --> {}", start, end);
        }
        for line in vtt.lines().filter(|l| l.contains("#xywh=")) {
            prop_assert!(
                line.starts_with("https://streamhut.example/sprite?sheet="),
                "{}",
                line
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn sprite_cues_are_well_formed_for_any_duration(duration in prop_oneof![
            any::<f64>(),
            0.0f64..100_000.0,
        ]) {
            let layout = sprite_layout(duration);
            prop_assert_eq!(layout.tiles.len(), SPRITE_FRAMES as usize);
            for tile in &layout.tiles {
                prop_assert!(
                    tile.at >= 0.0 && tile.at <= layout.duration,
                    "frame time {} in {}", tile.at, layout.duration
                );
            }
            let vtt = vtt(&layout, |sheet| format!("https://streamhut.example/sprite?sheet={sheet}"));
            check(&vtt, &layout)?;
        }

        #[test]
        fn storyboard_cues_are_well_formed_for_any_timeline(
            durations in proptest::collection::vec(prop_oneof![0.0f64..20.0, Just(0.0)], 1..80),
        ) {
            let url = Url::parse("https://origin.example/seg.m4s").expect("url");
            let mut start = 0.0;
            let segments: Vec<Segment> = durations
                .iter()
                .map(|&duration| {
                    let segment = Segment {
                        start,
                        duration,
                        media: Resource { url: url.clone(), range: None },
                        init: None,
                    };
                    start += duration;
                    segment
                })
                .collect();
            let timeline = Timeline { segments, duration: start };
            let layout = storyboard_layout(&timeline);
            prop_assert!(layout.sheets >= 1);
            prop_assert!(layout.tiles.iter().all(|t| t.sheet < layout.sheets));
            let vtt = vtt(&layout, |sheet| format!("https://streamhut.example/sprite?sheet={sheet}"));
            check(&vtt, &layout)?;
        }
    }
}
