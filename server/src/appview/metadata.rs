//! The current `place.stream.video` record's richer fields: `descriptionFacets`
//! (mentions, links, tags in the description), `tags`, `contentWarnings`,
//! `contentRights`, `connections` and `activity`.
//!
//! Each is read on its own and tolerantly, like the rest of the record: a field that is
//! missing, of the wrong shape or out of bounds is dropped, never the video. Everything
//! is bounded (counts and lengths), so what we store and render stays small whatever a
//! record holds. Facet ranges are UTF-8 byte offsets into the description as the record
//! has it; they are moved to the description we keep (trimmed, maybe cut) and dropped
//! when they no longer fall on character boundaries inside it.

use app::catalog::MAX_TAG_CHARS;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atproto::repo::StrongRef;

/// Most tags, connections, warnings and facets kept.
const MAX_TAGS: usize = 10;
const MAX_CONNECTIONS: usize = 20;
const MAX_WARNINGS: usize = 10;
const MAX_FACETS: usize = 200;
/// Longest rights text and activity name kept, in characters.
const MAX_TEXT_CHARS: usize = 300;
const MAX_URI_CHARS: usize = 2048;

/// What a record says beyond its title, description and media.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoMeta {
    /// Mentions, links and tags in the description.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<Facet>,
    /// Free-form tags (`lang:en` style groups included).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Content warnings, by their short names (`violence`, `flashingLights`…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content_warnings: Vec<String>,
    /// Copyright and licence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_rights: Option<ContentRights>,
    /// Records the video relates to (its livestream, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<StrongRef>,
    /// The game or activity in the video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
}

/// A span of the description and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facet {
    /// Its first byte in the description we keep.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// What it points at.
    pub feature: Feature,
}

/// What a facet points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Feature {
    /// An account.
    Mention {
        /// Its DID.
        did: String,
    },
    /// A web page (http or https only).
    Link {
        /// Its URL.
        uri: String,
    },
    /// A tag.
    Tag {
        /// The tag, without `#`.
        tag: String,
    },
}

/// `place.stream.metadata.contentRights`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentRights {
    /// Who made the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// The copyright notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copyright_notice: Option<String>,
    /// The year of creation or publication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copyright_year: Option<i64>,
    /// The licence: a known token's short name (`cc-by_4__0`) or what the record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The credit line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_line: Option<String>,
}

/// The game or activity of a video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Activity {
    /// A game, by its record.
    Game {
        /// The game's record.
        uri: String,
        /// Its name, when the record caches it.
        name: Option<String>,
    },
    /// A well-known label (`just_chatting`, `software_dev`…).
    Label {
        /// The label.
        label: String,
    },
}

impl VideoMeta {
    /// The fields of `record`; `description` is the description as stored and `dropped`
    /// how many leading bytes of the record's description it lacks (trimmed away).
    pub fn read(
        record: &serde_json::Map<String, Value>,
        description: Option<&str>,
        dropped: usize,
    ) -> Self {
        Self {
            facets: description
                .map(|text| facets(record.get("descriptionFacets"), text, dropped))
                .unwrap_or_default(),
            tags: tags(record.get("tags")),
            content_warnings: warnings(record.get("contentWarnings")),
            content_rights: record.get("contentRights").and_then(rights),
            connections: connections(record.get("connections")),
            activity: record.get("activity").and_then(activity),
        }
    }

    /// The first livestream among the connections: its thumbnail may stand in.
    pub fn livestream(&self) -> Option<&StrongRef> {
        self.connections
            .iter()
            .find(|connection| connection.uri.contains("/place.stream.livestream/"))
    }
}

/// What viewers read for a content warning's short name ("Flashing lights").
pub fn warning_label(name: &str) -> String {
    match name {
        "PII" => "Personal information".into(),
        "drugUse" => "Drug use".into(),
        other => words(other),
    }
}

impl ContentRights {
    /// The licence's name and, for Creative Commons ones, its deed.
    pub fn licence(&self) -> Option<(String, Option<String>)> {
        let license = self.license.as_deref()?;
        if license == "all-rights-reserved" {
            return Some(("All rights reserved".into(), None));
        }
        if license == "cc0_1__0" {
            let deed = "https://creativecommons.org/publicdomain/zero/1.0/";
            return Some(("CC0 1.0".into(), Some(deed.into())));
        }
        // `cc-by-nc-sa_4__0`: the elements, then the version with `__` for its dot.
        if let Some((kind, version)) = license
            .strip_prefix("cc-")
            .and_then(|rest| rest.split_once('_'))
        {
            let version = version.trim_start_matches('_').replace("__", ".");
            let known = kind
                .split('-')
                .all(|e| matches!(e, "by" | "sa" | "nc" | "nd"));
            if known && version.chars().all(|c| c.is_ascii_digit() || c == '.') {
                let deed = format!("https://creativecommons.org/licenses/{kind}/{version}/");
                return Some((format!("CC {} {version}", kind.to_uppercase()), Some(deed)));
            }
        }
        let is_url =
            url::Url::parse(license).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
        Some((license.to_string(), is_url.then(|| license.to_string())))
    }

    /// Copyright and credit on one line ("© 2026 Ada · Filmed by Bob").
    pub fn credit(&self) -> Option<String> {
        let copyright = self.copyright_notice.clone().or_else(|| {
            let year = self.copyright_year.map(|year| year.to_string());
            let parts: Vec<String> = year.into_iter().chain(self.creator.clone()).collect();
            (!parts.is_empty()).then(|| format!("© {}", parts.join(" ")))
        });
        let parts: Vec<String> = copyright
            .into_iter()
            .chain(self.credit_line.clone())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

impl Activity {
    /// What to call it ("Software dev", a game's name).
    pub fn label(&self) -> String {
        match self {
            Activity::Game {
                name: Some(name), ..
            } => name.clone(),
            Activity::Game { name: None, .. } => "A game".into(),
            Activity::Label { label } => words(label),
        }
    }
}

/// `flashingLights` or `software_dev` as words: "Flashing lights", "Software dev".
fn words(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '_' || c == '-' {
            out.push(' ');
        } else if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else if i == 0 {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` trimmed and cut to `max` characters; none when empty.
fn text(value: Option<&Value>, max: usize) -> Option<String> {
    let text = value?.as_str()?.trim();
    (!text.is_empty()).then(|| text.chars().take(max).collect())
}

/// The part of a token after `#` (`place.stream.metadata.contentWarnings#violence`).
fn token(value: &str) -> &str {
    value.rsplit_once('#').map_or(value, |(_, name)| name)
}

fn tags(value: Option<&Value>) -> Vec<String> {
    let Some(items) = value.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut tags: Vec<String> = Vec::new();
    for item in items {
        let Some(tag) = text(Some(item), MAX_TAG_CHARS) else {
            continue;
        };
        let tag = tag.trim_start_matches('#').to_string();
        let usable = !tag.is_empty()
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'));
        if usable && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            tags.push(tag);
        }
        if tags.len() == MAX_TAGS {
            break;
        }
    }
    tags
}

fn warnings(value: Option<&Value>) -> Vec<String> {
    // The Lexicon's object (`{warnings: [...]}`); a bare list is read too.
    let items = value
        .and_then(|v| v.get("warnings").unwrap_or(v).as_array())
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for item in &items {
        let Some(name) = item.as_str().map(token) else {
            continue;
        };
        if !name.is_empty()
            && name.len() <= MAX_TAG_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !out.iter().any(|known| known == name)
        {
            out.push(name.to_string());
        }
        if out.len() == MAX_WARNINGS {
            break;
        }
    }
    out
}

fn rights(value: &Value) -> Option<ContentRights> {
    let object = value.as_object()?;
    let rights = ContentRights {
        creator: text(object.get("creator"), MAX_TEXT_CHARS),
        copyright_notice: text(object.get("copyrightNotice"), MAX_TEXT_CHARS),
        copyright_year: object
            .get("copyrightYear")
            .and_then(Value::as_i64)
            .filter(|year| (0..=9999).contains(year)),
        license: text(object.get("license"), MAX_URI_CHARS).map(|license| {
            if license.starts_with("place.stream.metadata.contentRights#") {
                token(&license).to_string()
            } else {
                license
            }
        }),
        credit_line: text(object.get("creditLine"), MAX_TEXT_CHARS),
    };
    (rights != ContentRights::default()).then_some(rights)
}

fn connections(value: Option<&Value>) -> Vec<StrongRef> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let reference = item.get("ref").unwrap_or(item);
                    serde_json::from_value::<StrongRef>(reference.clone()).ok()
                })
                .filter(|r| r.uri.starts_with("at://") && r.uri.len() <= MAX_URI_CHARS)
                .take(MAX_CONNECTIONS)
                .collect()
        })
        .unwrap_or_default()
}

fn activity(value: &Value) -> Option<Activity> {
    if let Some(uri) = text(value.get("uri"), MAX_URI_CHARS).filter(|uri| uri.starts_with("at://"))
    {
        return Some(Activity::Game {
            uri,
            name: text(value.get("name"), MAX_TEXT_CHARS),
        });
    }
    let label = text(value.get("label"), MAX_TAG_CHARS)?;
    label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(Activity::Label { label })
}

fn facets(value: Option<&Value>, description: &str, dropped: usize) -> Vec<Facet> {
    let Some(items) = value.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<Facet> = Vec::new();
    for item in items.iter().take(MAX_FACETS) {
        let index = item.get("index");
        let bound = |key: &str| {
            index
                .and_then(|i| i.get(key))
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| n.checked_sub(dropped))
        };
        let (Some(start), Some(end)) = (bound("byteStart"), bound("byteEnd")) else {
            continue;
        };
        let inside = start < end
            && end <= description.len()
            && description.is_char_boundary(start)
            && description.is_char_boundary(end);
        if !inside || out.iter().any(|f| start < f.end && f.start < end) {
            continue;
        }
        let Some(feature) = item
            .get("features")
            .and_then(Value::as_array)
            .and_then(|features| features.iter().find_map(feature))
        else {
            continue;
        };
        out.push(Facet {
            start,
            end,
            feature,
        });
    }
    out.sort_by_key(|f| f.start);
    out
}

fn feature(value: &Value) -> Option<Feature> {
    let kind = value
        .get("$type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind.rsplit_once('#').map_or(kind, |(_, name)| name) {
        "mention" => {
            let did = text(value.get("did"), MAX_URI_CHARS)?;
            crate::atproto::syntax::did(&did).ok()?;
            Some(Feature::Mention { did })
        }
        "link" => {
            let uri = text(value.get("uri"), MAX_URI_CHARS)?;
            let parsed = url::Url::parse(&uri).ok()?;
            matches!(parsed.scheme(), "http" | "https").then_some(Feature::Link { uri })
        }
        "tag" => {
            let tag = text(value.get("tag"), MAX_TAG_CHARS)?;
            let tag = tag.trim_start_matches('#').to_string();
            (!tag.is_empty() && !tag.contains(char::is_whitespace)).then_some(Feature::Tag { tag })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(record: Value, description: Option<&str>, dropped: usize) -> VideoMeta {
        VideoMeta::read(record.as_object().expect("object"), description, dropped)
    }

    #[test]
    fn the_current_record_is_read_whole() {
        let description = "Hi @alice.test see https://example.com #rust ✓";
        let at = |needle: &str| description.find(needle).expect("needle");
        let record = json!({
            "descriptionFacets": [
                {"index": {"byteStart": at("@alice"), "byteEnd": at("@alice") + 11},
                 "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"}]},
                {"index": {"byteStart": at("https"), "byteEnd": at("https") + 19},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]},
                {"index": {"byteStart": at("#rust"), "byteEnd": at("#rust") + 5},
                 "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "rust"}]},
                {"index": {"byteStart": description.len() - 2, "byteEnd": description.len()},
                 "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "inside-a-char"}]},
                {"index": {"byteStart": 0, "byteEnd": 2},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "javascript:alert(1)"}]},
            ],
            "tags": ["conference", "lang:en", "#dup", "Dup", "has space", 7],
            "contentWarnings": {"warnings": ["place.stream.metadata.contentWarnings#violence", "place.stream.metadata.contentWarnings#flashingLights"]},
            "contentRights": {"license": "place.stream.metadata.contentRights#cc-by_4__0", "creator": "Ada", "copyrightYear": 2026},
            "connections": [{"ref": {"uri": "at://did:plc:a/place.stream.livestream/3l", "cid": "bafy"}}],
            "activity": {"$type": "place.stream.defs#activityLabel", "label": "software_dev"},
        });
        let meta = read(record, Some(description), 0);
        assert_eq!(meta.facets.len(), 3, "{:?}", meta.facets);
        assert_eq!(
            meta.facets[0].feature,
            Feature::Mention {
                did: "did:plc:alice".into()
            }
        );
        assert_eq!(
            &description[meta.facets[1].start..meta.facets[1].end],
            "https://example.com"
        );
        assert_eq!(meta.tags, vec!["conference", "lang:en", "dup"]);
        assert_eq!(meta.content_warnings, vec!["violence", "flashingLights"]);
        let rights = meta.content_rights.as_ref().expect("rights");
        assert_eq!(rights.license.as_deref(), Some("cc-by_4__0"));
        assert_eq!(rights.copyright_year, Some(2026));
        assert_eq!(meta.livestream().map(|r| r.cid.as_str()), Some("bafy"));
        assert_eq!(
            meta.activity,
            Some(Activity::Label {
                label: "software_dev".into()
            })
        );
        let round_trip: VideoMeta =
            serde_json::from_str(&serde_json::to_string(&meta).expect("json")).expect("back");
        assert_eq!(round_trip, meta);
        assert_eq!(
            rights.licence(),
            Some((
                "CC BY 4.0".into(),
                Some("https://creativecommons.org/licenses/by/4.0/".into())
            ))
        );
        assert_eq!(rights.credit().as_deref(), Some("© 2026 Ada"));
        assert_eq!(
            meta.activity.as_ref().map(Activity::label).as_deref(),
            Some("Software dev")
        );
        let labels: Vec<String> = meta
            .content_warnings
            .iter()
            .map(|w| warning_label(w))
            .collect();
        assert_eq!(labels, vec!["Violence", "Flashing lights"]);
    }

    #[test]
    fn licences_are_named_and_linked() {
        let licence = |license: &str| {
            ContentRights {
                license: Some(license.into()),
                ..Default::default()
            }
            .licence()
        };
        assert_eq!(
            licence("all-rights-reserved"),
            Some(("All rights reserved".into(), None))
        );
        assert_eq!(
            licence("cc-by-nc-sa_4__0"),
            Some((
                "CC BY-NC-SA 4.0".into(),
                Some("https://creativecommons.org/licenses/by-nc-sa/4.0/".into())
            ))
        );
        assert_eq!(licence("cc0_1__0").map(|l| l.0).as_deref(), Some("CC0 1.0"));
        assert_eq!(licence("cc-evil_4__0/../x").map(|l| l.1), Some(None));
        assert_eq!(
            licence("https://example.com/licence"),
            Some((
                "https://example.com/licence".into(),
                Some("https://example.com/licence".into())
            ))
        );
        assert_eq!(licence("javascript:alert(1)").map(|l| l.1), Some(None));
        assert_eq!(warning_label("PII"), "Personal information");
        let rights = ContentRights {
            copyright_notice: Some("© The Org".into()),
            credit_line: Some("Filmed by Bob".into()),
            ..Default::default()
        };
        assert_eq!(
            rights.credit().as_deref(),
            Some("© The Org · Filmed by Bob")
        );
    }

    #[test]
    fn bad_fields_are_dropped_and_offsets_follow_the_trim() {
        let meta = read(
            json!({
                "descriptionFacets": "not a list",
                "tags": "not a list",
                "contentWarnings": 5,
                "contentRights": {"copyrightYear": 99999},
                "connections": [{"uri": "https://not.at"}],
                "activity": {"label": "<script>"},
            }),
            Some("text"),
            0,
        );
        assert_eq!(meta, VideoMeta::default());
        // The record's description was "  hello world"; we keep "hello world".
        let shifted = read(
            json!({"descriptionFacets": [{"index": {"byteStart": 8, "byteEnd": 13},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "world"}]}]}),
            Some("hello world"),
            2,
        );
        assert_eq!((shifted.facets[0].start, shifted.facets[0].end), (6, 11));
    }
}
