//! A commit's blocks: its CAR file read with `iroh-car`, each DAG-CBOR block checked
//! against its CID, and records converted to the JSON form they have over XRPC.

use std::collections::HashMap;

use base64::Engine;
use cid::Cid;
use ipld_core::ipld::Ipld;
use multihash_codetable::{Code, MultihashDigest};
use serde_json::Value;

/// Multicodec code of DAG-CBOR.
const DAG_CBOR: u64 = 0x71;

/// The record blocks of a commit's CAR file, verified against their CIDs and converted
/// to JSON (links as `{"$link"}`, bytes as `{"$bytes"}`).
pub async fn read_car(bytes: &[u8]) -> Result<HashMap<Cid, Value>, String> {
    let mut reader = iroh_car::CarReader::new(bytes)
        .await
        .map_err(|err| format!("bad CAR: {err}"))?;
    let mut blocks = HashMap::new();
    while let Some((cid, data)) = reader
        .next_block()
        .await
        .map_err(|err| format!("bad CAR block: {err}"))?
    {
        if cid.codec() != DAG_CBOR {
            continue;
        }
        let Ok(code) = Code::try_from(cid.hash().code()) else {
            continue;
        };
        if Cid::new_v1(DAG_CBOR, code.digest(&data)) != cid {
            return Err(format!("block {cid} does not match its content"));
        }
        // Tree nodes decode too; only the blocks an op names are ever used.
        if let Ok(ipld) = serde_ipld_dagcbor::from_slice::<Ipld>(&data) {
            blocks.insert(cid, ipld_to_json(ipld));
        }
    }
    Ok(blocks)
}

/// DAG-CBOR data in the JSON form records have over XRPC.
fn ipld_to_json(ipld: Ipld) -> Value {
    match ipld {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(b),
        Ipld::Integer(i) => i64::try_from(i)
            .map(Value::from)
            .or_else(|_| u64::try_from(i).map(Value::from))
            .unwrap_or(Value::Null),
        Ipld::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Ipld::String(s) => Value::String(s),
        Ipld::Bytes(bytes) => serde_json::json!({
            "$bytes": base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        }),
        Ipld::List(items) => Value::Array(items.into_iter().map(ipld_to_json).collect()),
        Ipld::Map(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, ipld_to_json(value)))
                .collect(),
        ),
        Ipld::Link(cid) => serde_json::json!({ "$link": cid.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appview::record::parse_video;

    #[test]
    fn records_convert_to_their_json_form() {
        let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(b"image"));
        let ipld = Ipld::Map(
            [
                ("title".to_string(), Ipld::String("Talk".into())),
                ("durationMs".to_string(), Ipld::Integer(1234)),
                (
                    "thumb".to_string(),
                    Ipld::Map(
                        [
                            ("$type".to_string(), Ipld::String("blob".into())),
                            ("ref".to_string(), Ipld::Link(cid)),
                            ("mimeType".to_string(), Ipld::String("image/png".into())),
                            ("size".to_string(), Ipld::Integer(5)),
                        ]
                        .into(),
                    ),
                ),
            ]
            .into(),
        );
        let json = ipld_to_json(ipld);
        let did = crate::atproto::syntax::did("did:plc:a").expect("did");
        let record = crate::atproto::blob::blob_cid(b"record");
        let video =
            parse_video(&did, "3k", &record, &json, "2026-01-01T00:00:00.000Z").expect("parses");
        assert_eq!(video.duration_ms, Some(1234));
        assert_eq!(video.thumb.map(|t| t.cid), Some(cid.into()));
    }
}

/// Property tests: any bytes given as a commit's CAR file are read or refused with an
/// error, never a panic; a well-formed CAR yields exactly its DAG-CBOR blocks, and a
/// block whose content does not match its CID is refused.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A CAR v1 file of `blocks` (content, codec), rooted at the first.
    fn car(blocks: &[(Vec<u8>, u64)]) -> (Vec<u8>, Vec<Cid>) {
        let cids: Vec<Cid> = blocks
            .iter()
            .map(|(data, codec)| Cid::new_v1(*codec, Code::Sha2_256.digest(data)))
            .collect();
        let header = Ipld::Map(
            [
                (
                    "roots".to_string(),
                    Ipld::List(cids.iter().take(1).copied().map(Ipld::Link).collect()),
                ),
                ("version".to_string(), Ipld::Integer(1)),
            ]
            .into(),
        );
        let header = serde_ipld_dagcbor::to_vec(&header).expect("header");
        let mut out = Vec::new();
        varint(header.len(), &mut out);
        out.extend(header);
        for ((data, _), cid) in blocks.iter().zip(&cids) {
            let cid_bytes = cid.to_bytes();
            varint(cid_bytes.len() + data.len(), &mut out);
            out.extend(cid_bytes);
            out.extend(data);
        }
        (out, cids)
    }

    fn record() -> impl Strategy<Value = Vec<u8>> {
        (".{0,30}", any::<i64>()).prop_map(|(title, duration)| {
            let record = Ipld::Map(
                [
                    ("title".to_string(), Ipld::String(title)),
                    ("durationMs".to_string(), Ipld::Integer(duration.into())),
                ]
                .into(),
            );
            serde_ipld_dagcbor::to_vec(&record).expect("record")
        })
    }

    fn read(bytes: &[u8]) -> Result<HashMap<Cid, Value>, String> {
        futures::executor::block_on(read_car(bytes))
    }

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_bytes_are_read_or_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = read(&bytes);
        }

        #[test]
        fn well_formed_cars_yield_their_blocks_and_tampering_is_caught(
            records in proptest::collection::vec(record(), 1..6),
            raw in proptest::collection::vec(any::<u8>(), 0..40),
            damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut blocks: Vec<(Vec<u8>, u64)> = records.into_iter().map(|r| (r, DAG_CBOR)).collect();
            blocks.push((raw, 0x55));
            let (bytes, cids) = car(&blocks);
            let read_back = read(&bytes).expect("a well-formed CAR is read");
            for cid in &cids[..cids.len() - 1] {
                let value = read_back.get(cid).expect("every DAG-CBOR block");
                prop_assert!(value.get("title").is_some());
            }
            prop_assert!(!read_back.contains_key(&cids[cids.len() - 1]), "raw blocks are skipped");
            let mut damaged = bytes.clone();
            for (at, byte) in damage {
                let at = at.index(damaged.len());
                damaged[at] = byte;
            }
            if let Ok(blocks) = read(&damaged) {
                // Whatever survives damage still matches its CID.
                for cid in blocks.keys() {
                    prop_assert!(cids.contains(cid) || cid.codec() == DAG_CBOR);
                }
            }
        }
    }
}
