//! HLS playlists from the origin: fetched, rewritten for players, and read as a media
//! timeline for the frame grabber. Parsing and writing go through `m3u8-rs` (the
//! GStreamer maintainers' parser, which keeps unknown tags and byte ranges), never string
//! surgery.
//!
//! What origins send, and how each is handled:
//! - sub-playlist URLs relative without a slash (`place.stream.playback.getVideoPlaylist?…`),
//!   root-relative (`/xrpc/…`) or absolute: all are resolved against the URL the playlist
//!   was actually fetched from (after redirects). Those addressing the playlist method on
//!   the origin become our `getPlaylist` with the same query (`uri`, `track`, `sid`,
//!   `start`, `end`, anything else); others are left absolute, for players to fetch.
//! - media (segments, `EXT-X-MAP` init sections, keys) becomes absolute origin or CDN
//!   URLs: media bytes go from the origin to players directly.
//! - a media playlist asked for without `sid` may be answered with a 302 adding one; the
//!   client follows it.

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};
use url::Url;

use super::VodError;

/// The origin's playlist method.
pub const PLAYLIST_METHOD: &str = "place.stream.playback.getVideoPlaylist";

/// A parsed playlist and the URL it was fetched from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where it came from, after redirects: relative URLs resolve against it.
    pub url: Url,
    /// The playlist.
    pub playlist: Playlist,
}

/// Parses a playlist.
pub fn parse(bytes: &[u8]) -> Result<Playlist, VodError> {
    m3u8_rs::parse_playlist_res(bytes)
        .map_err(|_| VodError::Upstream("the origin sent a playlist that does not parse".into()))
}

/// `fetched` rewritten for players: sub-playlists through `ours` (our `getPlaylist`
/// URL) with `tag` added to their query (which origin they come from), media at absolute
/// URLs.
pub fn rewrite(fetched: &Fetched, ours: &Url, tag: (&str, &str)) -> Result<Vec<u8>, VodError> {
    let mut out = Vec::new();
    let written = match fetched.playlist.clone() {
        Playlist::MasterPlaylist(mut master) => {
            rewrite_master(&mut master, &fetched.url, ours, tag);
            master.write_to(&mut out)
        }
        Playlist::MediaPlaylist(mut media) => {
            rewrite_media(&mut media, &fetched.url);
            media.write_to(&mut out)
        }
    };
    written.map_err(|err| VodError::Upstream(format!("writing the playlist: {err}")))?;
    Ok(out)
}

fn rewrite_master(master: &mut MasterPlaylist, base: &Url, ours: &Url, tag: (&str, &str)) {
    for variant in &mut master.variants {
        variant.uri = through_us(&variant.uri, base, ours, tag);
    }
    for alternative in &mut master.alternatives {
        if let Some(uri) = &mut alternative.uri {
            *uri = through_us(uri, base, ours, tag);
        }
    }
}

fn rewrite_media(media: &mut MediaPlaylist, base: &Url) {
    for segment in &mut media.segments {
        segment.uri = absolute(&segment.uri, base);
        if let Some(map) = &mut segment.map {
            map.uri = absolute(&map.uri, base);
        }
        if let Some(key) = &mut segment.key
            && let Some(uri) = &mut key.uri
        {
            *uri = absolute(uri, base);
        }
    }
}

/// `uri` resolved against `base`, as text; left alone when it does not resolve.
fn absolute(uri: &str, base: &Url) -> String {
    base.join(uri)
        .map(String::from)
        .unwrap_or_else(|_| uri.to_string())
}

/// A sub-playlist URL: ours with the origin's query (and `tag`) when it names the
/// playlist method on the origin, else absolute.
fn through_us(uri: &str, base: &Url, ours: &Url, tag: (&str, &str)) -> String {
    let Ok(resolved) = base.join(uri) else {
        return uri.to_string();
    };
    let same_origin = resolved.origin() == base.origin();
    let is_method = resolved
        .path()
        .ends_with(&format!("/xrpc/{PLAYLIST_METHOD}"));
    if same_origin && is_method {
        let mut url = ours.clone();
        url.set_query(resolved.query());
        url.query_pairs_mut().append_pair(tag.0, tag.1);
        url.into()
    } else {
        resolved.into()
    }
}

/// The variant to read frames from: the smallest whose height is at least `min_height`,
/// else the tallest; `None` when the playlist has no (non-I-frame) variants.
pub fn pick_variant(master: &MasterPlaylist, min_height: u64) -> Option<&str> {
    let variants: Vec<_> = master.variants.iter().filter(|v| !v.is_i_frame).collect();
    let height = |v: &&m3u8_rs::VariantStream| v.resolution.map_or(0, |r| r.height);
    variants
        .iter()
        .filter(|v| height(v) >= min_height)
        .min_by_key(|v| (height(v), v.bandwidth))
        .or_else(|| variants.iter().max_by_key(|v| (height(v), v.bandwidth)))
        .map(|v| v.uri.as_str())
}

/// The subtitles rendition whose text stands for the video: the default one, else the
/// first in English, else the first; `None` when the master offers no subtitles.
pub fn pick_subtitles(master: &MasterPlaylist) -> Option<&str> {
    let subtitles: Vec<_> = master
        .alternatives
        .iter()
        .filter(|m| m.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .filter_map(|m| m.uri.as_deref().map(|uri| (m, uri)))
        .collect();
    let english = |m: &m3u8_rs::AlternativeMedia| {
        m.language
            .as_deref()
            .is_some_and(|lang| lang.eq_ignore_ascii_case("en") || lang.starts_with("en-"))
    };
    subtitles
        .iter()
        .find(|(m, _)| m.default)
        .or_else(|| subtitles.iter().find(|(m, _)| english(m)))
        .or_else(|| subtitles.first())
        .map(|(_, uri)| *uri)
}

/// Bytes of a resource: all of it, or `length` bytes from `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// Its absolute URL.
    pub url: Url,
    /// `(offset, length)` when only part of it is meant.
    pub range: Option<(u64, u64)>,
}

/// One media segment on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Where it starts, in seconds.
    pub start: f64,
    /// How long it lasts, in seconds.
    pub duration: f64,
    /// Its bytes.
    pub media: Resource,
    /// Its initialisation section (fMP4), if any.
    pub init: Option<Resource>,
}

/// The segments of a media playlist, with the sections that apply to each resolved:
/// `EXT-X-MAP` applies until the next one, and a byte range without an offset starts
/// where the previous range of the same resource ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The segments, in order.
    pub segments: Vec<Segment>,
    /// The total duration, in seconds.
    pub duration: f64,
}

impl Timeline {
    /// Roughly what the timeline takes in memory, in bytes.
    pub fn weight(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| {
                96 + segment.media.url.as_str().len()
                    + segment
                        .init
                        .as_ref()
                        .map_or(0, |init| init.url.as_str().len())
            })
            .sum::<usize>()
            + 64
    }

    /// Reads `media`, fetched from `base`.
    pub fn new(media: &MediaPlaylist, base: &Url) -> Result<Self, VodError> {
        let mut segments = Vec::with_capacity(media.segments.len());
        let mut start = 0.0;
        let mut init = None;
        let mut next_offset: Option<(Url, u64)> = None;
        for segment in &media.segments {
            if let Some(map) = &segment.map {
                let url = resolve(&map.uri, base)?;
                let range = match &map.byte_range {
                    Some(r) => {
                        let offset = r.offset.unwrap_or(0);
                        offset.checked_add(r.length).ok_or_else(|| {
                            VodError::Upstream(format!(
                                "the playlist has an impossible init section byte range for {url}"
                            ))
                        })?;
                        Some((offset, r.length))
                    }
                    None => None,
                };
                init = Some(Resource { range, url });
            }
            let url = resolve(&segment.uri, base)?;
            let range = match &segment.byte_range {
                Some(range) => {
                    let offset = match (range.offset, &next_offset) {
                        (Some(offset), _) => offset,
                        (None, Some((previous, end))) if previous == &url => *end,
                        (None, _) => 0,
                    };
                    let end = offset.checked_add(range.length).ok_or_else(|| {
                        VodError::Upstream(format!(
                            "the playlist has an impossible byte range for {url}"
                        ))
                    })?;
                    next_offset = Some((url.clone(), end));
                    Some((offset, range.length))
                }
                None => {
                    next_offset = None;
                    None
                }
            };
            let duration = f64::from(segment.duration).max(0.0);
            segments.push(Segment {
                start,
                duration,
                media: Resource { url, range },
                init: init.clone(),
            });
            start += duration;
        }
        if segments.is_empty() {
            return Err(VodError::Upstream(
                "the media playlist has no segments".into(),
            ));
        }
        Ok(Self {
            segments,
            duration: start,
        })
    }

    /// The segment holding time `at` (clamped into the video), and the offset of `at`
    /// within it.
    pub fn locate(&self, at: f64) -> (&Segment, f64) {
        let at = at.clamp(0.0, (self.duration - 0.001).max(0.0));
        let index = self
            .segments
            .partition_point(|segment| segment.start + segment.duration <= at)
            .min(self.segments.len() - 1);
        let segment = &self.segments[index];
        (segment, (at - segment.start).max(0.0))
    }
}

fn resolve(uri: &str, base: &Url) -> Result<Url, VodError> {
    base.join(uri)
        .map_err(|_| VodError::Upstream(format!("the playlist names an unusable URL: {uri:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(text: &str, url: &str) -> Fetched {
        Fetched {
            url: Url::parse(url).expect("url"),
            playlist: parse(text.as_bytes()).expect("parse"),
        }
    }

    const OURS: &str = "https://streamhut.example/api/vod/getPlaylist";

    #[test]
    fn master_playlists_route_sub_playlists_through_us_with_their_query() {
        let master = fetched(
            "#EXTM3U\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"/xrpc/place.stream.playback.getVideoPlaylist?uri=at%3A%2F%2Fx&track=2&sid=s1\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"a\"\n\
             place.stream.playback.getVideoPlaylist?uri=at%3A%2F%2Fx&track=1&sid=s1&start=5\n\
             #EXT-X-STREAM-INF:BANDWIDTH=90000\n\
             https://cdn.example/other.m3u8?sig=1\n",
            "https://vod.example/xrpc/place.stream.playback.getVideoPlaylist?uri=at%3A%2F%2Fx",
        );
        let out = String::from_utf8(
            rewrite(&master, &Url::parse(OURS).expect("url"), ("origin", "0")).expect("rewrite"),
        )
        .expect("utf8");
        assert!(
            out.contains("https://streamhut.example/api/vod/getPlaylist?uri=at%3A%2F%2Fx&track=1&sid=s1&start=5"),
            "{out}"
        );
        assert!(
            out.contains("URI=\"https://streamhut.example/api/vod/getPlaylist?uri=at%3A%2F%2Fx&track=2&sid=s1&origin=0\""),
            "{out}"
        );
        assert!(
            out.contains("https://cdn.example/other.m3u8?sig=1"),
            "{out}"
        );
    }

    #[test]
    fn media_playlists_point_at_absolute_media_and_keep_everything_else() {
        let media = fetched(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"video.mp4\",BYTERANGE=\"800@0\"\n\
             #EXT-X-BYTERANGE:1000@800\n#EXTINF:4.0,\nvideo.mp4\n\
             #EXT-X-BYTERANGE:1200\n#EXTINF:4.0,\nvideo.mp4\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-CUSTOM-THING:42\n#EXTINF:2.5,\n/media/seg3.m4s?x=1\n\
             #EXTINF:2.0,\nhttps://cdn.example/blobs/abc.mp4\n#EXT-X-ENDLIST\n",
            "https://vod.example/xrpc/place.stream.playback.getVideoPlaylist?uri=x&track=1&sid=s",
        );
        let out = String::from_utf8(
            rewrite(&media, &Url::parse(OURS).expect("url"), ("origin", "0")).expect("rewrite"),
        )
        .expect("utf8");
        assert!(
            out.contains(
                "#EXT-X-MAP:URI=\"https://vod.example/xrpc/video.mp4\",BYTERANGE=\"800@0\""
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "#EXT-X-BYTERANGE:1000@800\n#EXTINF:4,\nhttps://vod.example/xrpc/video.mp4"
            ),
            "{out}"
        );
        assert!(out.contains("#EXT-X-BYTERANGE:1200\n"), "{out}");
        assert!(out.contains("#EXT-X-DISCONTINUITY"), "{out}");
        assert!(out.contains("#EXT-X-CUSTOM-THING:42"), "{out}");
        assert!(
            out.contains("https://vod.example/media/seg3.m4s?x=1"),
            "{out}"
        );
        assert!(out.contains("https://cdn.example/blobs/abc.mp4"), "{out}");
        assert!(out.contains("#EXT-X-ENDLIST"), "{out}");

        let Playlist::MediaPlaylist(playlist) = &media.playlist else {
            panic!("media")
        };
        let timeline = Timeline::new(playlist, &media.url).expect("timeline");
        assert_eq!(timeline.duration, 12.5);
        assert_eq!(
            timeline.segments[1].media.range,
            Some((1800, 1200)),
            "offset continues"
        );
        assert_eq!(
            timeline.segments[3].init.as_ref().map(|i| i.range),
            Some(Some((0, 800))),
            "the map applies until the next one"
        );
        let (segment, offset) = timeline.locate(9.0);
        assert_eq!((segment.start, offset), (8.0, 1.0));
        let (last, _) = timeline.locate(1000.0);
        assert_eq!(last.start, 10.5, "times are clamped into the video");
    }

    #[test]
    fn the_smallest_sufficient_variant_is_picked() {
        let Playlist::MasterPlaylist(master) = parse(
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\nhigh\n\
              #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nmid\n\
              #EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x180\nlow\n",
        )
        .expect("parse") else {
            panic!("master")
        };
        assert_eq!(pick_variant(&master, 360), Some("mid"));
        assert_eq!(pick_variant(&master, 90), Some("low"));
        assert_eq!(pick_variant(&master, 1080), Some("high"));
    }
}

/// Property tests: whatever an origin sends, parsing, rewriting and reading a timeline
/// never panic; well-formed playlists keep every segment, range, discontinuity and
/// unknown tag, with media made absolute and sub-playlists routed through us.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const BASE: &str =
        "https://vod.example/xrpc/place.stream.playback.getVideoPlaylist?uri=at%3A%2F%2Fx&track=1";
    const OURS: &str = "https://streamhut.example/api/vod/getPlaylist";

    fn media_uri() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_-]{1,10}\\.(m4s|ts|mp4)(\\?n=[0-9]{1,4})?",
            "/[a-z0-9]{1,6}/[a-z0-9]{1,8}\\.m4s",
            "https://cdn\\.example/[a-z0-9]{1,8}\\.ts",
            "[A-Za-z0-9%._~/?=&:-]{1,30}",
        ]
    }

    fn playlist_uri() -> impl Strategy<Value = String> {
        prop_oneof![
            "place\\.stream\\.playback\\.getVideoPlaylist\\?uri=at%3A%2F%2Fx&track=[0-9]&sid=[a-z]{1,4}(&start=[0-9]{1,3})?",
            "/xrpc/place\\.stream\\.playback\\.getVideoPlaylist\\?track=[0-9]",
            "https://other\\.example/[a-z]{1,8}\\.m3u8",
            "[a-z0-9]{1,8}\\.m3u8",
        ]
    }

    /// A segment: duration, optional byte range (length, offset), discontinuity,
    /// an unknown tag, its URI.
    type SegmentSpec = (f32, Option<(u64, Option<u64>)>, bool, bool, String);

    fn segment() -> impl Strategy<Value = SegmentSpec> {
        (
            0.0f32..30.0,
            proptest::option::of((any::<u64>(), proptest::option::of(any::<u64>()))),
            any::<bool>(),
            any::<bool>(),
            media_uri(),
        )
    }

    fn media_text(init: &Option<String>, segments: &[SegmentSpec], end: bool) -> String {
        let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:30\n");
        if let Some(init) = init {
            text.push_str(&format!("#EXT-X-MAP:URI=\"{init}\"\n"));
        }
        for (duration, range, discontinuity, unknown, uri) in segments {
            if *discontinuity {
                text.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if *unknown {
                text.push_str("#EXT-X-STREAMHUT-TEST:kept\n");
            }
            text.push_str(&format!("#EXTINF:{duration:.3},\n"));
            match range {
                Some((length, Some(offset))) => {
                    text.push_str(&format!("#EXT-X-BYTERANGE:{length}@{offset}\n"))
                }
                Some((length, None)) => text.push_str(&format!("#EXT-X-BYTERANGE:{length}\n")),
                None => {}
            }
            text.push_str(uri);
            text.push('\n');
        }
        if end {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }

    fn fetched(bytes: &[u8]) -> Option<Fetched> {
        parse(bytes).ok().map(|playlist| Fetched {
            url: Url::parse(BASE).expect("base"),
            playlist,
        })
    }

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn anything_an_origin_sends_is_handled_without_panicking(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                "#EXTM3U\n[#A-Z0-9:=,@\".\n/?&-]{0,300}".prop_map(String::into_bytes),
            ],
            at in any::<f64>(),
        ) {
            if let Some(fetched) = fetched(&bytes) {
                let _ = rewrite(&fetched, &Url::parse(OURS).expect("ours"), ("origin", "0"));
                if let Playlist::MediaPlaylist(media) = &fetched.playlist
                    && let Ok(timeline) = Timeline::new(media, &fetched.url)
                {
                    let (segment, offset) = timeline.locate(at);
                    prop_assert!(offset >= 0.0 || offset.is_nan());
                    prop_assert!(timeline.segments.contains(segment));
                }
            }
        }

        #[test]
        fn media_playlists_keep_everything_with_media_made_absolute(
            init in proptest::option::of(media_uri()),
            segments in proptest::collection::vec(segment(), 1..12),
            end in any::<bool>(),
            at in -10.0f64..400.0,
        ) {
            let text = media_text(&init, &segments, end);
            let fetched = fetched(text.as_bytes()).expect("a well-formed playlist parses");
            let out = rewrite(&fetched, &Url::parse(OURS).expect("ours"), ("origin", "0")).expect("rewrites");
            let Ok(Playlist::MediaPlaylist(media)) = parse(&out) else {
                panic!("the rewritten playlist is a media playlist:\n{}", String::from_utf8_lossy(&out));
            };
            prop_assert_eq!(media.segments.len(), segments.len());
            prop_assert_eq!(media.end_list, end);
            let base = Url::parse(BASE).expect("base");
            for (written, (_, range, discontinuity, unknown, uri)) in media.segments.iter().zip(&segments) {
                if base.join(uri).is_ok() {
                    prop_assert!(Url::parse(&written.uri).is_ok(), "absolute: {}", written.uri);
                }
                prop_assert_eq!(written.discontinuity, *discontinuity);
                prop_assert_eq!(written.byte_range.as_ref().map(|r| (r.length, r.offset)), *range);
                prop_assert_eq!(!written.unknown_tags.is_empty(), *unknown);
            }
            if let Some(map) = media.segments.first().and_then(|s| s.map.as_ref())
                && init.as_deref().is_some_and(|init| base.join(init).is_ok())
            {
                prop_assert!(Url::parse(&map.uri).is_ok(), "absolute init: {}", map.uri);
            }
            if let Ok(timeline) = Timeline::new(&media, &base) {
                let total: f64 = timeline.segments.iter().map(|s| s.duration).sum();
                prop_assert!((total - timeline.duration).abs() < 1e-6);
                let (segment, offset) = timeline.locate(at);
                prop_assert!(offset >= 0.0 && offset <= segment.duration + 1e-6);
            }
        }

        #[test]
        fn master_playlists_route_origin_playlists_through_us(
            variants in proptest::collection::vec((1u64..10_000_000, playlist_uri()), 1..6),
            audio in proptest::option::of(playlist_uri()),
            iframe in proptest::option::of(playlist_uri()),
        ) {
            let mut text = String::from("#EXTM3U\n");
            if let Some(uri) = &audio {
                text.push_str(&format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"{uri}\"\n"));
            }
            if let Some(uri) = &iframe {
                text.push_str(&format!("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,URI=\"{uri}\"\n"));
            }
            for (bandwidth, uri) in &variants {
                text.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}\n{uri}\n"));
            }
            let fetched = fetched(text.as_bytes()).expect("a well-formed playlist parses");
            let out = rewrite(&fetched, &Url::parse(OURS).expect("ours"), ("origin", "0")).expect("rewrites");
            let Ok(Playlist::MasterPlaylist(master)) = parse(&out) else {
                panic!("the rewritten playlist is a master playlist");
            };
            let expected = variants.len() + usize::from(iframe.is_some());
            prop_assert_eq!(master.variants.len(), expected);
            let uris = master
                .variants
                .iter()
                .map(|v| v.uri.clone())
                .chain(master.alternatives.iter().filter_map(|a| a.uri.clone()));
            for uri in uris {
                let url = Url::parse(&uri).expect("absolute");
                if url.path().ends_with(PLAYLIST_METHOD) {
                    prop_assert!(false, "an origin playlist URL survived: {}", uri);
                }
                if uri.starts_with(OURS) {
                    prop_assert!(url.query().is_some(), "the origin's query is carried: {}", uri);
                }
            }
        }
    }
}
