//! Reading `place.stream.video` records tolerantly, from a listing or from the firehose.
//!
//! Records in the wild come in three shapes, told apart by their `source`:
//! - **oldest** (the ATmosphereConf VODs): `duration` in nanoseconds, a `livestream`
//!   strong reference, `creator`, `createdAt`, and a `place.stream.muxl.defs#archive` or
//!   `#archiveBlob` source;
//! - **intermediate**: `duration` in milliseconds, a `place.stream.media.defs#sourceTracks`
//!   or `#sourceClip` source, no `createdAt`;
//! - **current**: `durationMs`, `createdAt`, a `thumb` blob, the same sources.
//!
//! A `duration` without a source to tell is taken as nanoseconds when it names a
//! livestream or is longer than 100 hours read as milliseconds, else as milliseconds.
//! Optional fields may be missing or of the wrong type: only a record we cannot show at
//! all, one without a title, is refused; a bad optional field is dropped instead of
//! costing the whole video. Times are normalised to RFC 3339 UTC with milliseconds, so
//! that ordering by the stored text is ordering by time.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::metadata::VideoMeta;
use crate::atproto::blob::BlobRef;
use crate::atproto::repo::StrongRef;
use crate::atproto::syntax::{Cid, Did, datetime};

/// The collection we index.
pub const VIDEO_COLLECTION: &str = "place.stream.video";

/// Longest title and description kept, in characters; longer ones are cut.
const MAX_TITLE_CHARS: usize = 300;
const MAX_DESCRIPTION_CHARS: usize = 5_000;

/// A video record as we index it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoRow {
    /// `at://did/place.stream.video/rkey`.
    pub uri: String,
    /// The record's CID.
    pub cid: Cid,
    /// The creator.
    pub did: Did,
    /// The record key.
    pub rkey: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: Option<String>,
    /// The duration, from either shape.
    pub duration_ms: Option<i64>,
    /// When it was published (normalised; the indexing time when the record has none).
    pub created_at: String,
    /// The thumbnail blob.
    pub thumb: Option<BlobRef>,
    /// The streamer the record names, when it names one.
    pub creator: Option<String>,
    /// The livestream record it came from.
    pub livestream: Option<StrongRef>,
    /// Its media source, as the record has it.
    pub source: Option<Value>,
    /// The richer fields of the current record.
    pub meta: VideoMeta,
}

/// A `duration` read as milliseconds is longer than this only if it was nanoseconds.
const LONGEST_PLAUSIBLE_MS: u64 = 100 * 3600 * 1000;

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rkey}: {reason}")]
pub struct InvalidRecord {
    /// Its record key.
    pub rkey: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `value` (the record as JSON) parsed for the index.
pub fn parse_video(
    did: &Did,
    rkey: &str,
    cid: &Cid,
    value: &Value,
    indexed_at: &str,
) -> Result<VideoRow, InvalidRecord> {
    let invalid = |reason: &str| InvalidRecord {
        rkey: rkey.to_string(),
        reason: reason.to_string(),
    };
    let record = value.as_object().ok_or_else(|| invalid("not an object"))?;
    let title = match record.get("title") {
        Some(Value::String(title)) if !title.trim().is_empty() => title.trim(),
        Some(Value::String(_)) => return Err(invalid("the title is empty")),
        Some(_) => return Err(invalid("the title is not a string")),
        None => return Err(invalid("no title")),
    };
    let raw_description = record.get("description").and_then(Value::as_str);
    let description = raw_description
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| truncate(text, MAX_DESCRIPTION_CHARS));
    let trimmed = raw_description.map_or(0, |raw| raw.len() - raw.trim_start().len());
    let meta = VideoMeta::read(record, description.as_deref(), trimmed);
    let source = record.get("source").filter(|s| s.is_object()).cloned();
    // The oldest shape names its livestream; the current one lists it among connections.
    let livestream = record
        .get("livestream")
        .and_then(|value| serde_json::from_value::<StrongRef>(value.clone()).ok())
        .filter(|r| r.uri.starts_with("at://"))
        .or_else(|| meta.livestream().cloned());
    let duration_ms = match (record.get("durationMs"), record.get("duration")) {
        (Some(ms), _) if ms.as_u64().is_some() => ms.as_u64(),
        (_, Some(duration)) => duration.as_u64().map(|value| {
            if duration_in_nanoseconds(source.as_ref(), livestream.is_some(), value) {
                value / 1_000_000
            } else {
                value
            }
        }),
        _ => None,
    }
    .and_then(|ms| i64::try_from(ms).ok());
    let creator = record
        .get("creator")
        .and_then(Value::as_str)
        .filter(|did| did.starts_with("did:") && did.len() <= 2048)
        .map(str::to_string);
    let created_at = record
        .get("createdAt")
        .and_then(Value::as_str)
        .and_then(normalise_time)
        .unwrap_or_else(|| indexed_at.to_string());
    let thumb = record
        .get("thumb")
        .and_then(|thumb| serde_json::from_value::<BlobRef>(thumb.clone()).ok());
    Ok(VideoRow {
        uri: format!("at://{did}/{VIDEO_COLLECTION}/{rkey}"),
        cid: *cid,
        did: did.clone(),
        rkey: rkey.to_string(),
        title: truncate(title, MAX_TITLE_CHARS),
        description,
        duration_ms,
        created_at,
        thumb,
        creator,
        livestream,
        source,
        meta,
    })
}

/// Whether a record's `duration` is in nanoseconds (the oldest shape) rather than
/// milliseconds (the intermediate one).
fn duration_in_nanoseconds(source: Option<&Value>, has_livestream: bool, value: u64) -> bool {
    let kind = source
        .and_then(|source| source.get("$type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.starts_with("place.stream.muxl.") {
        true
    } else if kind.starts_with("place.stream.media.") {
        false
    } else {
        has_livestream || value > LONGEST_PLAUSIBLE_MS
    }
}

/// An RFC 3339 time in our stored form, or `None` when it is not one.
fn normalise_time(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| datetime(time.with_timezone(&Utc)))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::atproto::blob::blob_cid;

    const NOW: &str = "2026-11-21T10:00:00.000Z";

    fn parse(value: Value) -> Result<VideoRow, InvalidRecord> {
        let did = crate::atproto::syntax::did("did:plc:abc").expect("did");
        parse_video(&did, "3k", &blob_cid(b"record"), &value, NOW)
    }

    #[test]
    fn the_three_record_shapes_are_read() {
        let livestream =
            json!({"uri": "at://did:plc:s/place.stream.livestream/3l", "cid": "bafyls"});
        let oldest = parse(json!({
            "title": "Keynote",
            "creator": "did:plc:streamer",
            "createdAt": "2025-03-28T10:00:00Z",
            "duration": 1_800_000_000_000u64,
            "livestream": livestream,
            "source": {"$type": "place.stream.muxl.defs#archive", "blob": "x"},
        }))
        .expect("oldest");
        assert_eq!(oldest.duration_ms, Some(1_800_000));
        assert_eq!(oldest.creator.as_deref(), Some("did:plc:streamer"));
        assert_eq!(
            oldest.livestream.as_ref().map(|r| r.cid.as_str()),
            Some("bafyls")
        );
        assert_eq!(
            oldest.source.as_ref().map(|s| s["$type"].clone()),
            Some(json!("place.stream.muxl.defs#archive"))
        );

        let intermediate = parse(json!({
            "title": "Workshop",
            "duration": 5_400_000u64,
            "source": {"$type": "place.stream.media.defs#sourceTracks", "tracks": []},
        }))
        .expect("intermediate");
        assert_eq!(intermediate.duration_ms, Some(5_400_000), "milliseconds");
        assert_eq!(intermediate.created_at, NOW);

        let current = parse(json!({
            "title": "Clip",
            "durationMs": 61_000,
            "createdAt": "2026-01-01T00:00:00Z",
            "thumb": {"$type": "blob", "ref": {"$link": "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"}, "mimeType": "image/jpeg", "size": 1000},
            "source": {"$type": "place.stream.media.defs#sourceClip"},
        }))
        .expect("current");
        assert_eq!(current.duration_ms, Some(61_000));
        assert!(current.thumb.is_some());

        // No source to tell: a livestream or an implausible length means nanoseconds.
        let ns = parse(json!({"title": "A", "duration": 90_000_000_000u64})).expect("ns");
        assert_eq!(ns.duration_ms, Some(90_000));
        let ms = parse(json!({"title": "A", "duration": 90_000})).expect("ms");
        assert_eq!(ms.duration_ms, Some(90_000));
        let neither = parse(json!({"title": "A", "duration": "long"})).expect("neither");
        assert_eq!(neither.duration_ms, None);
    }

    #[test]
    fn optional_fields_may_be_missing_or_wrong() {
        let row = parse(json!({
            "title": "  Talk  ",
            "description": 7,
            "createdAt": "yesterday",
            "thumb": {"nonsense": true},
        }))
        .expect("parsed");
        assert_eq!(row.title, "Talk");
        assert_eq!(row.description, None);
        assert_eq!(row.created_at, NOW);
        assert_eq!(row.thumb, None);
        assert_eq!(row.uri, "at://did:plc:abc/place.stream.video/3k");
    }

    #[test]
    fn times_are_normalised_for_ordering() {
        let row =
            parse(json!({"title": "A", "createdAt": "2024-03-01T12:00:00+02:00"})).expect("parsed");
        assert_eq!(row.created_at, "2024-03-01T10:00:00.000Z");
    }

    #[test]
    fn records_without_a_usable_title_are_refused_with_a_reason() {
        for (value, reason) in [
            (json!({"description": "x"}), "no title"),
            (json!({"title": 5}), "the title is not a string"),
            (json!({"title": "   "}), "the title is empty"),
            (json!("text"), "not an object"),
        ] {
            let err = parse(value).expect_err(reason);
            assert_eq!(err.to_string(), format!("3k: {reason}"));
        }
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let row = parse(json!({"title": "é".repeat(400)})).expect("parsed");
        assert_eq!(row.title.chars().count(), MAX_TITLE_CHARS);
    }
}

/// Property tests: any record a repo holds is indexed or refused with a reason, never a
/// panic; an indexed record has a non-empty title and no negative duration.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[&str] = &[
        "$type",
        "title",
        "description",
        "creator",
        "createdAt",
        "duration",
        "durationMs",
        "thumb",
        "ref",
        "$link",
        "mimeType",
        "size",
        "source",
        "livestream",
        "uri",
        "cid",
        "place.stream.muxl.defs#archive",
        "place.stream.media.defs#sourceTracks",
        "place.stream.video",
        "blob",
        "image/jpeg",
        "2026-01-01T00:00:00.000Z",
        "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
    ];

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_record_is_indexed_or_refused_cleanly(value in crate::properties::json(KEYS)) {
            let did = crate::atproto::syntax::did("did:plc:a").expect("did");
            let cid = crate::atproto::blob::blob_cid(b"record");
            match parse_video(&did, "3k", &cid, &value, "2026-01-01T00:00:00.000Z") {
                Ok(video) => {
                    prop_assert!(!video.title.trim().is_empty());
                    prop_assert!(video.duration_ms.is_none_or(|ms| ms >= 0));
                }
                Err(invalid) => prop_assert!(!invalid.reason.is_empty()),
            }
        }
    }
}
