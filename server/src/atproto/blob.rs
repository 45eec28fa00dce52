//! Blob references and content addressing: every blob we download is checked against its
//! CID, so a PDS (or anything between us and it) cannot swap the code or image we asked for.
//!
//! Blob CIDs are CIDv1 with the `raw` codec and a SHA-256 multihash (`bafkrei…`); we
//! recompute them with the `cid` and `multihash-codetable` crates rather than by hand.

use multihash_codetable::{Code, MultihashDigest};
use serde::{Deserialize, Serialize};

use super::error::AtprotoError;
use super::syntax::Cid;

/// Multicodec code of `raw` bytes.
const RAW_CODEC: u64 = 0x55;
/// Multihash code of SHA2-256.
const SHA2_256: u64 = 0x12;

/// The CID of `bytes` as a blob: CIDv1, raw, SHA2-256.
pub fn blob_cid(bytes: &[u8]) -> Cid {
    cid::Cid::new_v1(RAW_CODEC, Code::Sha2_256.digest(bytes)).into()
}

/// Checks that `bytes` are the content `expected` names.
pub fn verify_blob(expected: &Cid, bytes: &[u8]) -> Result<(), AtprotoError> {
    let hash = expected.ipld().hash();
    if hash.code() != SHA2_256 {
        return Err(AtprotoError::InvalidResponse {
            method: "com.atproto.sync.getBlob".to_string(),
            reason: format!(
                "cannot verify {expected}: hash function 0x{:x} is not SHA2-256",
                hash.code()
            ),
        });
    }
    let actual = blob_cid(bytes);
    if actual.ipld().hash() != hash {
        return Err(AtprotoError::CidMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// A blob as records reference it: `{"$type": "blob", "ref": {"$link": cid}, "mimeType", "size"}`.
/// Older records use `{"cid", "mimeType"}`, which is accepted when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BlobRefWire", into = "BlobRefWire")]
pub struct BlobRef {
    /// The content's CID.
    pub cid: Cid,
    /// Its MIME type.
    pub mime_type: String,
    /// Its size in bytes (0 when a legacy reference does not say).
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BlobRefWire {
    Typed {
        #[serde(rename = "$type")]
        kind: String,
        #[serde(rename = "ref")]
        link: Link,
        #[serde(rename = "mimeType")]
        mime_type: String,
        size: u64,
    },
    Legacy {
        cid: Cid,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Link {
    #[serde(rename = "$link")]
    link: Cid,
}

impl From<BlobRefWire> for BlobRef {
    fn from(wire: BlobRefWire) -> Self {
        match wire {
            BlobRefWire::Typed {
                link,
                mime_type,
                size,
                ..
            } => Self {
                cid: link.link,
                mime_type,
                size,
            },
            BlobRefWire::Legacy { cid, mime_type } => Self {
                cid,
                mime_type,
                size: 0,
            },
        }
    }
}

impl From<BlobRef> for BlobRefWire {
    fn from(blob: BlobRef) -> Self {
        BlobRefWire::Typed {
            kind: "blob".to_string(),
            link: Link { link: blob.cid },
            mime_type: blob.mime_type,
            size: blob.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_cids_match_the_atproto_form() {
        // `echo -n hello | ipfs add --cid-version 1 --raw-leaves` gives this CID.
        let cid = blob_cid(b"hello");
        assert_eq!(
            cid.to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        verify_blob(&cid, b"hello").expect("same bytes");
        let err = verify_blob(&cid, b"hellO").expect_err("other bytes");
        assert!(matches!(err, AtprotoError::CidMismatch { .. }), "{err}");
    }

    #[test]
    fn blob_refs_read_both_shapes_and_write_the_typed_one() {
        let hello = blob_cid(b"hello");
        let typed = serde_json::json!({
            "$type": "blob", "ref": {"$link": hello.to_string()}, "mimeType": "image/jpeg", "size": 12
        });
        let blob: BlobRef = serde_json::from_value(typed.clone()).expect("typed");
        assert_eq!(blob.cid, hello);
        assert_eq!(serde_json::to_value(&blob).expect("json"), typed);
        let legacy: BlobRef = serde_json::from_value(
            serde_json::json!({"cid": hello.to_string(), "mimeType": "image/png"}),
        )
        .expect("legacy");
        assert_eq!(legacy.cid, hello);
        let broken = serde_json::json!({"cid": "../../etc/passwd", "mimeType": "image/png"});
        assert!(
            serde_json::from_value::<BlobRef>(broken).is_err(),
            "a CID is checked"
        );
    }
}
