//! AT Protocol identifiers (DID, handle, NSID, AT-URI, record key, TID, CID) and
//! datetimes.
//!
//! Identifiers are parsed once, where they come in (a request, a record, a database row),
//! and travel typed from there: a `Did` or a [`Cid`] that reaches a query, a file name or
//! a URL has been checked.
//!
//! Validation follows the specs (<https://atproto.com/specs/did>, `/handle`, `/nsid`,
//! `/at-uri-scheme`, `/record-key`, `/tid`) and is done by `jacquard-common`'s validated
//! types, re-exported here; the functions below parse into them and turn failures into
//! [`AtprotoError::Syntax`] with a message a user can act on.

pub use jacquard_common::types::aturi::AtUri;
pub use jacquard_common::types::did::Did;
pub use jacquard_common::types::handle::Handle;
pub use jacquard_common::types::ident::AtIdentifier;
pub use jacquard_common::types::nsid::Nsid;
pub use jacquard_common::types::recordkey::Rkey;
pub use jacquard_common::types::tid::Tid;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::AtprotoError;

/// A time as records and our API write it: RFC 3339, UTC, milliseconds, `Z`. Stored
/// times in this form sort as text in time order.
pub fn datetime(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time, as [`datetime`] writes it.
pub fn now() -> String {
    datetime(Utc::now())
}

fn syntax(kind: &'static str, value: &str, err: impl std::fmt::Display) -> AtprotoError {
    AtprotoError::Syntax {
        kind,
        value: value.to_string(),
        reason: err.to_string(),
    }
}

/// A DID such as `did:plc:z72i7hdynmk6r22z27h6tvur`.
pub fn did(value: &str) -> Result<Did, AtprotoError> {
    Did::new_owned(value).map_err(|e| syntax("DID", value, e))
}

/// A handle such as `alice.bsky.social`; a leading `@` is accepted, case is normalised.
pub fn handle(value: &str) -> Result<Handle, AtprotoError> {
    Handle::new_owned(value).map_err(|e| syntax("handle", value, e))
}

/// A handle or a DID, as users type them to name an account.
pub fn actor(value: &str) -> Result<AtIdentifier, AtprotoError> {
    let trimmed = value.trim();
    if trimmed.starts_with("did:") {
        return did(trimmed).map(AtIdentifier::Did);
    }
    handle(trimmed).map(AtIdentifier::Handle).map_err(|_| {
        syntax(
            "handle or DID",
            value,
            "expected a handle like alice.example.com or a DID like did:plc:…",
        )
    })
}

/// An NSID such as `place.stream.video`.
pub fn nsid(value: &str) -> Result<Nsid, AtprotoError> {
    Nsid::new_owned(value).map_err(|e| syntax("NSID", value, e))
}

/// An `at://` URI.
pub fn at_uri(value: &str) -> Result<AtUri, AtprotoError> {
    AtUri::new_owned(value).map_err(|e| syntax("AT-URI", value, e))
}

/// A record key.
pub fn rkey(value: &str) -> Result<Rkey, AtprotoError> {
    Rkey::new_owned(value).map_err(|e| syntax("record key", value, e))
}

/// A content identifier (`bafy…`, `bafkrei…`), parsed. It is written in its canonical
/// form (base32 for CIDv1), as a string in JSON, so it is safe in file names and URLs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(cid::Cid);

impl Cid {
    /// The parsed CID, to hash and compare content with.
    pub fn ipld(&self) -> &cid::Cid {
        &self.0
    }
}

impl From<cid::Cid> for Cid {
    fn from(cid: cid::Cid) -> Self {
        Self(cid)
    }
}

impl FromStr for Cid {
    type Err = AtprotoError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        cid::Cid::try_from(value)
            .map(Self)
            .map_err(|e| syntax("CID", value, e))
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({})", self.0)
    }
}

impl Serialize for Cid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// A CID such as `bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq`.
pub fn cid(value: &str) -> Result<Cid, AtprotoError> {
    value.parse()
}

/// A TID (timestamp identifier).
pub fn tid(value: &str) -> Result<Tid, AtprotoError> {
    Tid::new(value).map_err(|e| syntax("TID", value, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_identifiers_parse() {
        assert_eq!(
            did("did:plc:z72i7hdynmk6r22z27h6tvur")
                .expect("did")
                .as_str(),
            "did:plc:z72i7hdynmk6r22z27h6tvur"
        );
        assert_eq!(
            did("did:web:example.com").expect("did:web").as_str(),
            "did:web:example.com"
        );
        assert_eq!(
            handle("@Alice.Example.COM").expect("handle").as_str(),
            "alice.example.com"
        );
        assert_eq!(
            nsid("place.stream.video").expect("nsid").as_str(),
            "place.stream.video"
        );
        let uri = at_uri("at://did:plc:abc123/place.stream.video/3kabc").expect("uri");
        assert_eq!(uri.rkey().expect("rkey").as_str(), "3kabc");
        assert_eq!(rkey("self").expect("rkey").as_str(), "self");
        assert_eq!(tid("3jzfcijpj2z2a").expect("tid").as_str(), "3jzfcijpj2z2a");
        let blob = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";
        assert_eq!(cid(blob).expect("cid").to_string(), blob);
        assert_eq!(
            serde_json::to_value(cid(blob).expect("cid")).expect("json"),
            serde_json::json!(blob)
        );
        assert!(matches!(
            actor("did:plc:abc123").expect("did actor"),
            AtIdentifier::Did(_)
        ));
        assert!(matches!(
            actor(" bob.test ").expect("handle actor"),
            AtIdentifier::Handle(_)
        ));
    }

    #[test]
    fn invalid_identifiers_are_refused_with_their_kind() {
        for (result, kind) in [
            (did("did:plc").err(), "DID"),
            (did("plc:abc").err(), "DID"),
            (handle("no_underscores.com").err(), "handle"),
            (handle("localhost").err(), "handle"),
            (nsid("noDots").err(), "NSID"),
            (at_uri("https://example.com").err(), "AT-URI"),
            (rkey("..").err(), "record key"),
            (rkey("has space").err(), "record key"),
            (tid("not-a-tid").err(), "TID"),
            (cid("bafy../../etc").err(), "CID"),
            (cid("").err(), "CID"),
            (actor("not a handle").err(), "handle or DID"),
        ] {
            match result {
                Some(AtprotoError::Syntax { kind: got, .. }) => assert_eq!(got, kind),
                other => panic!("expected a {kind} syntax error, got {other:?}"),
            }
        }
    }
}

/// Property tests: any text given as an identifier is accepted or refused with an
/// error, never a panic; well-formed identifiers are accepted and read back unchanged;
/// an accepted CID prints as letters and digits only.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn plc() -> impl Strategy<Value = String> {
        "did:plc:[a-z2-7]{24}"
    }

    fn handle_text() -> impl Strategy<Value = String> {
        "([a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\\.){1,3}[a-z]{2,6}"
    }

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_text_is_accepted_or_refused_without_panicking(
            text in prop_oneof![
                ".{0,80}",
                "(did:|at://|@)?[a-zA-Z0-9:._~%/@-]{0,60}",
                "(b|z|Q|f)[a-zA-Z0-9./]{0,70}",
            ],
        ) {
            let _ = did(&text);
            let _ = handle(&text);
            let _ = nsid(&text);
            let _ = rkey(&text);
            let _ = tid(&text);
            let _ = at_uri(&text);
            // A CID we accept is safe to put in a file name or a URL.
            if let Ok(cid) = cid(&text) {
                prop_assert!(cid.to_string().chars().all(|c| c.is_ascii_alphanumeric()));
            }
            if let Err(err) = actor(&text) {
                prop_assert!(!err.to_string().is_empty());
            }
        }

        #[test]
        fn well_formed_identifiers_read_back_unchanged(
            plc in plc(),
            web in "did:web:[a-z]{1,10}\\.[a-z]{2,5}",
            name in handle_text(),
            key in "[a-zA-Z0-9._:~-]{1,40}",
            content in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            prop_assume!(key != "." && key != "..");
            // TLDs the handle spec reserves.
            let tld = name.rsplit('.').next().unwrap_or_default();
            prop_assume!(!["alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"].contains(&tld));
            prop_assert_eq!(did(&plc).expect("did:plc").as_str().to_string(), plc.clone());
            prop_assert_eq!(did(&web).expect("did:web").as_str().to_string(), web.clone());
            prop_assert_eq!(handle(&name).expect("handle").as_str().to_string(), name.clone());
            let padded = format!(" {plc} ");
            prop_assert!(matches!(actor(&padded), Ok(AtIdentifier::Did(_))));
            prop_assert!(matches!(actor(&name), Ok(AtIdentifier::Handle(_))));
            prop_assert_eq!(rkey(&key).expect("rkey").as_str().to_string(), key.clone());
            let uri = format!("at://{plc}/place.stream.video/{key}");
            prop_assert_eq!(at_uri(&uri).expect("AT-URI").as_str().to_string(), uri.clone());
            let blob = crate::atproto::blob::blob_cid(&content);
            prop_assert_eq!(cid(&blob.to_string()).expect("CID"), blob);
        }
    }
}
