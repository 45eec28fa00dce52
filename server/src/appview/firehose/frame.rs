//! One `subscribeRepos` frame: two DAG-CBOR values (a header naming the kind of event,
//! then its body), decoded into an [`Event`] with `serde_ipld_dagcbor`. Pure: no I/O,
//! so it can be fed anything (see the property tests).

use std::io::Cursor;

use cid::Cid;
use ipld_core::ipld::Ipld;
use serde::Deserialize;

/// Why a frame was not applied.
#[derive(Debug)]
pub enum FrameError {
    /// The connection cannot go on.
    Fatal(String),
    /// This frame is unusable; the next may be fine.
    Skip(String),
}

/// What a frame says.
#[derive(Debug)]
pub enum Event {
    /// A repo commit.
    Commit(Commit),
    /// `#account`: whether the account is active, and why not.
    Account {
        /// Position in the stream.
        seq: i64,
        /// Whose account.
        did: String,
        /// Whether it is active.
        active: bool,
        /// Why not: `takendown`, `suspended`, `deactivated`, `deleted`, ...
        status: Option<String>,
    },
    /// `#identity` and `#sync`: only who and where in the stream.
    Repo {
        /// Position in the stream.
        seq: i64,
        /// Whose repo.
        did: String,
    },
    /// `#info`.
    Info {
        /// e.g. `OutdatedCursor`.
        name: String,
    },
    /// An error frame; the PDS closes the stream after it.
    Error {
        /// e.g. `FutureCursor`.
        error: String,
        /// Why.
        message: Option<String>,
    },
    /// An event kind we do not use.
    Other,
}

#[derive(Deserialize)]
struct Header {
    op: i64,
    t: Option<String>,
}

#[derive(Deserialize)]
struct InfoBody {
    name: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: Option<String>,
}

/// A `#commit` body: the fields we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    /// Position in the stream.
    pub seq: i64,
    /// Whose repo.
    pub repo: String,
    /// What changed.
    #[serde(default)]
    pub ops: Vec<RepoOp>,
    /// The changed blocks, as a CAR file (bytes).
    pub blocks: Ipld,
    /// When the commit was made (RFC 3339).
    #[serde(default)]
    pub time: Option<String>,
    /// The PDS left the blocks out: the repo must be re-synced.
    #[serde(default)]
    pub too_big: bool,
}

/// One record operation of a commit.
#[derive(Debug, Deserialize)]
pub struct RepoOp {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// `collection/rkey`.
    pub path: String,
    /// The new record's CID (not for deletes).
    pub cid: Option<Cid>,
}

#[derive(Deserialize)]
struct RepoEvent {
    seq: i64,
    did: String,
}

#[derive(Deserialize)]
struct AccountEvent {
    seq: i64,
    did: String,
    active: bool,
    #[serde(default)]
    status: Option<String>,
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Event, FrameError> {
    let mut reader = Cursor::new(frame);
    let header: Header = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
        .map_err(|err| FrameError::Skip(format!("bad header: {err}")))?;
    if header.op == -1 {
        let body: ErrorBody = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
            .map_err(|err| FrameError::Fatal(format!("bad error frame: {err}")))?;
        return Ok(Event::Error {
            error: body.error,
            message: body.message,
        });
    }
    Ok(match header.t.as_deref() {
        Some("#commit") => Event::Commit(
            serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|err| FrameError::Skip(format!("bad commit: {err}")))?,
        ),
        Some("#account") => {
            let event: AccountEvent = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|err| FrameError::Skip(format!("bad account event: {err}")))?;
            Event::Account {
                seq: event.seq,
                did: event.did,
                active: event.active,
                status: event.status,
            }
        }
        Some("#identity" | "#sync") => {
            let event: RepoEvent = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|err| FrameError::Skip(format!("bad event: {err}")))?;
            Event::Repo {
                seq: event.seq,
                did: event.did,
            }
        }
        Some("#info") => {
            let info: InfoBody = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|err| FrameError::Skip(format!("bad info: {err}")))?;
            Event::Info { name: info.name }
        }
        _ => Event::Other,
    })
}

/// Property tests: any bytes a PDS sends as a frame decode or fail with an error, never
/// a panic; well-formed frames decode to what they say, and damaged ones never panic.
#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn map(entries: Vec<(&str, Ipld)>) -> Ipld {
        Ipld::Map(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// A frame of header `t` (op 1, or -1 for an error) and `body`.
    fn frame(op: i64, t: Option<&str>, body: &Ipld) -> Vec<u8> {
        let mut header = vec![("op", Ipld::Integer(op.into()))];
        if let Some(t) = t {
            header.push(("t", Ipld::String(t.to_string())));
        }
        let mut bytes = serde_ipld_dagcbor::to_vec(&map(header)).expect("header");
        bytes.extend(serde_ipld_dagcbor::to_vec(body).expect("body"));
        bytes
    }

    fn commit(seq: i64, repo: &str, ops: &[(String, String)], blocks: Vec<u8>) -> Ipld {
        map(vec![
            ("seq", Ipld::Integer(seq.into())),
            ("repo", Ipld::String(repo.to_string())),
            (
                "ops",
                Ipld::List(
                    ops.iter()
                        .map(|(action, path)| {
                            map(vec![
                                ("action", Ipld::String(action.clone())),
                                ("path", Ipld::String(path.clone())),
                                ("cid", Ipld::Null),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("blocks", Ipld::Bytes(blocks)),
            ("time", Ipld::String("2026-12-01T00:00:00.000Z".into())),
        ])
    }

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn well_formed_frames_decode_and_damaged_ones_fail_cleanly(
            seq in any::<i64>(),
            repo in "did:plc:[a-z2-7]{24}",
            ops in proptest::collection::vec(
                (
                    proptest::sample::select(&["create", "update", "delete"][..]).prop_map(str::to_string),
                    "place\\.stream\\.video/[a-z0-9]{1,13}",
                ),
                0..5,
            ),
            blocks in proptest::collection::vec(any::<u8>(), 0..64),
            kind in 0..4usize,
            damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = match kind {
                0 => frame(1, Some("#commit"), &commit(seq, &repo, &ops, blocks)),
                1 => frame(1, Some("#identity"), &map(vec![
                    ("seq", Ipld::Integer(seq.into())),
                    ("did", Ipld::String(repo.clone())),
                ])),
                2 => frame(1, Some("#info"), &map(vec![("name", Ipld::String("OutdatedCursor".into()))])),
                _ => frame(-1, None, &map(vec![("error", Ipld::String("FutureCursor".into()))])),
            };
            match (kind, decode(&bytes)) {
                (0, Ok(Event::Commit(commit))) => {
                    prop_assert_eq!(commit.seq, seq);
                    prop_assert_eq!(&commit.repo, &repo);
                    prop_assert_eq!(commit.ops.len(), ops.len());
                }
                (1, Ok(Event::Repo { seq: got, did })) => {
                    prop_assert_eq!(got, seq);
                    prop_assert_eq!(did, repo);
                }
                (2, Ok(Event::Info { name })) => prop_assert_eq!(name, "OutdatedCursor"),
                (3, Ok(Event::Error { error, .. })) => prop_assert_eq!(error, "FutureCursor"),
                (_, other) => prop_assert!(false, "kind {} decoded as {:?}", kind, other),
            }
            let mut damaged = bytes.clone();
            for (at, byte) in damage {
                let at = at.index(damaged.len());
                damaged[at] = byte;
            }
            let _ = decode(&damaged);
            let _ = decode(&bytes[..cut.index(bytes.len() + 1)]);
        }
    }
}
