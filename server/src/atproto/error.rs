//! The errors of the AT Protocol layer, with variants callers branch on.

use super::net::NetError;

/// Anything that can go wrong talking to PDSes, PLC and handle resolvers.
#[derive(Debug, thiserror::Error)]
pub enum AtprotoError {
    /// The network refused or failed (private address, timeout, too large, unreachable).
    #[error(transparent)]
    Net(#[from] NetError),
    /// A string is not a valid DID, handle, NSID, AT-URI, record key or TID.
    #[error("invalid {kind} {value:?}: {reason}")]
    Syntax {
        /// What it should have been.
        kind: &'static str,
        /// What it was.
        value: String,
        /// Why it is not.
        reason: String,
    },
    /// The record does not exist (XRPC `RecordNotFound`, which PDSes send as HTTP 400).
    #[error("record not found: {0}")]
    RecordNotFound(String),
    /// The repository does not exist on that PDS.
    #[error("repository not found: {0}")]
    RepoNotFound(String),
    /// The blob does not exist.
    #[error("blob not found: {0}")]
    BlobNotFound(String),
    /// The credentials were refused (wrong password, revoked or expired session).
    #[error("{method}: authentication failed: {message}")]
    AuthFailed {
        /// The XRPC method.
        method: String,
        /// The server's message.
        message: String,
    },
    /// Any other XRPC error response.
    #[error("{method} failed with {status} {error}: {message}")]
    Xrpc {
        /// The XRPC method.
        method: String,
        /// HTTP status.
        status: u16,
        /// XRPC error name.
        error: String,
        /// The server's message.
        message: String,
    },
    /// The response was not what the method promises.
    #[error("{method}: unexpected response: {reason}")]
    InvalidResponse {
        /// The XRPC method or resource.
        method: String,
        /// What was wrong.
        reason: String,
    },
    /// A listing held more than the reader accepts (records or bytes).
    #[error("{collection} of {repo} holds more than {limit}; the listing was stopped there")]
    TooMany {
        /// The repository.
        repo: String,
        /// The collection.
        collection: String,
        /// What was exceeded, e.g. "1000 records".
        limit: String,
    },
    /// A downloaded blob does not hash to its CID.
    #[error("blob content does not match its CID: expected {expected}, got {actual}")]
    CidMismatch {
        /// The CID asked for.
        expected: String,
        /// The CID of the bytes received.
        actual: String,
    },
    /// A handle resolves to no DID.
    #[error("the handle {0} does not resolve to a DID")]
    HandleNotFound(String),
    /// A handle resolves to a DID whose document does not claim it back.
    #[error("the handle {handle} resolves to {did}, whose DID document does not claim that handle")]
    HandleMismatch {
        /// The handle.
        handle: String,
        /// The DID it resolved to.
        did: String,
    },
    /// The DID has no document.
    #[error("the DID {0} was not found")]
    DidNotFound(String),
    /// The DID method is not `plc` or `web`.
    #[error("unsupported DID method: {0} (only did:plc and did:web are supported)")]
    UnsupportedDidMethod(String),
    /// The DID document names no PDS.
    #[error("the DID document of {0} names no PDS")]
    NoPds(String),
}

impl AtprotoError {
    /// Whether the caller's own input is at fault (malformed, or a DID method we do not
    /// resolve), rather than the network.
    pub fn is_input_error(&self) -> bool {
        matches!(self, Self::Syntax { .. } | Self::UnsupportedDidMethod(_))
    }

    /// What a client may be told: names the method or host, never what an upstream server
    /// said (its messages and bodies go to the log).
    pub fn summary(&self) -> String {
        match self {
            Self::Xrpc { method, status, .. } => {
                format!("{method} failed upstream (HTTP {status})")
            }
            Self::AuthFailed { method, .. } => format!("{method}: the credentials were refused"),
            Self::InvalidResponse { method, .. } => {
                format!("{method}: the upstream server answered something unexpected")
            }
            other => other.to_string(),
        }
    }

    /// Whether an account named by handle or DID cannot be resolved to a PDS: it does not
    /// exist, its handle is not claimed back, or its document names no PDS.
    pub fn is_unresolvable(&self) -> bool {
        self.is_not_found() || matches!(self, Self::HandleMismatch { .. } | Self::NoPds(_))
    }

    /// Whether the thing asked for does not exist (record, repository, blob, handle, DID).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::RecordNotFound(_)
                | Self::RepoNotFound(_)
                | Self::BlobNotFound(_)
                | Self::HandleNotFound(_)
                | Self::DidNotFound(_)
        )
    }
}
