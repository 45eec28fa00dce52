//! [`VideoUri`]: a video's identity, `at://<did>/place.stream.video/<rkey>`, parsed once
//! where it comes in (a query parameter, a task input, a database row, a page's path) and
//! typed from there to the origin, so nothing downstream parses or builds the text again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::record::VIDEO_COLLECTION;
use crate::atproto::AtprotoError;
use crate::atproto::syntax::{self, AtIdentifier, Did};

/// A `place.stream.video` record: its author's DID and its record key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoUri {
    did: Did,
    rkey: String,
}

impl VideoUri {
    /// The video `rkey` of `did`, if `rkey` is a valid record key.
    pub fn new(did: Did, rkey: &str) -> Result<Self, AtprotoError> {
        let rkey = syntax::rkey(rkey)?.as_str().to_string();
        Ok(Self { did, rkey })
    }

    /// The author.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The record key.
    pub fn rkey(&self) -> &str {
        &self.rkey
    }
}

impl FromStr for VideoUri {
    type Err = AtprotoError;

    /// Only the canonical form: a DID (not a handle) as the authority, this collection,
    /// a record key, and nothing after it.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || AtprotoError::Syntax {
            kind: "video URI",
            value: value.chars().take(200).collect(),
            reason: format!("expected at://<did>/{VIDEO_COLLECTION}/<rkey>"),
        };
        let parsed = syntax::at_uri(value).map_err(|_| invalid())?;
        let AtIdentifier::Did(did) = parsed.authority() else {
            return Err(invalid());
        };
        let did = syntax::did(did.as_str()).map_err(|_| invalid())?;
        if parsed
            .collection()
            .is_none_or(|collection| collection.as_str() != VIDEO_COLLECTION)
        {
            return Err(invalid());
        }
        let rkey = parsed.rkey().ok_or_else(invalid)?.as_str().to_string();
        let uri = Self { did, rkey };
        // Nothing past the record key (a fragment, another segment).
        if uri.to_string() != value {
            return Err(invalid());
        }
        Ok(uri)
    }
}

impl fmt::Display for VideoUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at://{}/{VIDEO_COLLECTION}/{}", self.did, self.rkey)
    }
}

impl Serialize for VideoUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VideoUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_video_uris_parse() {
        let uri: VideoUri = "at://did:plc:abc/place.stream.video/3kabc"
            .parse()
            .expect("ok");
        assert_eq!(uri.did().as_str(), "did:plc:abc");
        assert_eq!(uri.rkey(), "3kabc");
        assert_eq!(uri.to_string(), "at://did:plc:abc/place.stream.video/3kabc");
        assert_eq!(
            serde_json::to_value(&uri).expect("json"),
            "at://did:plc:abc/place.stream.video/3kabc"
        );
        for bad in [
            "",
            "https://x/y",
            "at://did:plc:abc/app.bsky.feed.post/3k",
            "at://alice.test/place.stream.video/3k",
            "at://did:plc:abc/place.stream.video/3k/extra",
            "at://did:plc:abc/place.stream.video",
            "at://did:plc:abc/place.stream.video/3k#frag",
            "at://did:plc:abc/place.stream.video/../../etc",
        ] {
            assert!(bad.parse::<VideoUri>().is_err(), "{bad}");
            assert!(
                serde_json::from_value::<VideoUri>(bad.into()).is_err(),
                "{bad}"
            );
        }
    }
}
