//! [`VodError`]: why a VOD request failed, one variant per answer the HTTP edge gives, and
//! the mappings from the origin's and the PDSes' failures. Each variant has a public
//! message; the details (hosts, ffmpeg's stderr, temporary files) stay in the log.

use serde::Deserialize;

use crate::atproto::AtprotoError;
use crate::atproto::net::NetError;
use crate::tasks::{FailureKind, TaskFailure};

/// Why a VOD request failed; each variant maps to one status at the edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VodError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The video (or track, or blob) does not exist; the name is the origin's.
    #[error("{1}")]
    NotFound(String, String),
    /// The origin or a PDS failed.
    #[error("{0}")]
    Upstream(String),
    /// The origin or a PDS did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The media could not be decoded.
    #[error("{0}")]
    Media(String),
    /// The image is still being made.
    #[error("the image is being made; try again in a few seconds")]
    Pending,
    /// Something on our side is missing or full (ffmpeg, the disk, the database).
    #[error("{0}")]
    Unavailable(String),
}

impl VodError {
    /// The error's name, which also prefixes task failure messages so the kind survives
    /// the task system.
    pub fn name(&self) -> &str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::NotFound(name, _) => name,
            Self::Upstream(_) => "UpstreamFailure",
            Self::Timeout(_) => "UpstreamTimeout",
            Self::Media(_) => "MediaError",
            Self::Pending => "Processing",
            Self::Unavailable(_) => "Unavailable",
        }
    }

    /// What a client may be told: the request's own mistakes and what does not exist
    /// say what they are; the origin's, ffmpeg's and our own failures are fixed text,
    /// their details (hosts, temporary files, ffmpeg's stderr) kept for the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(message) | Self::NotFound(_, message) => message.clone(),
            Self::Upstream(_) => {
                "the video's origin or its creator's PDS failed; try again later".into()
            }
            Self::Timeout(_) => "the video's origin did not answer in time".into(),
            Self::Media(_) => "the video's media could not be decoded".into(),
            Self::Pending => self.to_string(),
            Self::Unavailable(_) => "video processing is unavailable right now".into(),
        }
    }

    /// The error a failed task's public message (`Name: message`) stands for.
    pub(super) fn from_task_message(message: &str) -> Self {
        let (name, text) = message.split_once(": ").unwrap_or(("", message));
        let text = text.to_string();
        match name {
            "InvalidRequest" => Self::InvalidRequest(text),
            "VideoNotFound"
            | "TrackNotFound"
            | "BlobNotFound"
            | "CaptionTrackNotFound"
            | "VideoUnavailable" => Self::NotFound(name.into(), text),
            "UpstreamFailure" => Self::Upstream(text),
            "UpstreamTimeout" => Self::Timeout(text),
            "MediaError" => Self::Media(text),
            _ => Self::Unavailable(text),
        }
    }

    /// Whether trying again later could succeed.
    pub(super) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Upstream(_) | Self::Timeout(_) | Self::Unavailable(_) | Self::Pending
        )
    }

    pub(super) fn into_failure(self) -> TaskFailure {
        let message = format!("{}: {}", self.name(), self.public_message());
        let kind = match &self {
            Self::InvalidRequest(_) => FailureKind::Input,
            Self::NotFound(..) => FailureKind::NotFound,
            Self::Upstream(_) | Self::Timeout(_) | Self::Media(_) => FailureKind::Upstream,
            Self::Pending | Self::Unavailable(_) => FailureKind::Internal,
        };
        let failure = if self.is_transient() {
            TaskFailure::retry(message)
        } else {
            TaskFailure::fatal(message)
        };
        failure.kind(kind).because(self)
    }
}

pub(super) fn not_found(message: impl Into<String>) -> VodError {
    VodError::NotFound("VideoNotFound".into(), message.into())
}

/// A failure to read a thumbnail's record or blob: missing for good, or upstream trouble.
pub(super) fn blob_error(err: AtprotoError) -> VodError {
    match err {
        err if err.is_not_found() => VodError::NotFound(
            "BlobNotFound".into(),
            "the creator's PDS no longer has this image".into(),
        ),
        AtprotoError::Net(net) => origin_error(net),
        other => VodError::Upstream(other.summary()),
    }
}

pub(super) fn origin_error(err: NetError) -> VodError {
    match err {
        NetError::Timeout(host) => VodError::Timeout(format!("{host} did not answer in time")),
        other => VodError::Upstream(other.to_string()),
    }
}

/// The error for an origin's non-success answer: its XRPC error name when it sends one.
/// What an origin's error body says: its XRPC error name (`error`, or `message` when that
/// is a bare name, as stream.place sends `{"message":"BlobNotFound"}`), and the other
/// origins it names, if any.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    origins: Vec<String>,
}

impl ErrorBody {
    fn read(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    fn name(&self) -> String {
        let bare = |text: &String| {
            !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric())
        };
        self.error
            .clone()
            .or_else(|| self.message.clone().filter(bare))
            .unwrap_or_default()
    }
}

/// The origins a `BlobNotFound` answer names, as it names them.
pub(super) fn named_origins(body: &[u8]) -> Vec<String> {
    ErrorBody::read(body).origins
}

/// The error for an origin's non-success answer: its XRPC error name when it sends one.
pub(super) fn origin_status(status: reqwest::StatusCode, body: &[u8]) -> VodError {
    let name = ErrorBody::read(body).name();
    match name.as_str() {
        "VideoNotFound"
        | "TrackNotFound"
        | "BlobNotFound"
        | "RecordNotFound"
        | "CaptionTrackNotFound"
        | "VideoUnavailable" => {
            let kind = if name == "RecordNotFound" {
                "VideoNotFound".to_string()
            } else {
                name.clone()
            };
            VodError::NotFound(kind, format!("the origin has no such video ({name})"))
        }
        "InvalidSession" => VodError::InvalidRequest(
            "the origin refused the playlist session (sid); start again from the video's playlist"
                .into(),
        ),
        _ if status == reqwest::StatusCode::NOT_FOUND => not_found("the origin has no such video"),
        _ if status.is_client_error() => VodError::InvalidRequest(format!(
            "the origin refused the request ({status}{})",
            if name.is_empty() {
                String::new()
            } else {
                format!(" {name}")
            }
        )),
        _ => VodError::Upstream(format!("the origin failed ({status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_thumbnail_is_final_and_upstream_trouble_is_retried() {
        let gone = blob_error(AtprotoError::BlobNotFound("gone".into()));
        assert!(!gone.is_transient(), "a frame stands in: {gone:?}");
        let slow = blob_error(AtprotoError::Net(NetError::Timeout("pds.test".into())));
        assert!(matches!(slow, VodError::Timeout(_)) && slow.is_transient());
        let down = blob_error(AtprotoError::Net(NetError::Unreachable {
            host: "pds.test".into(),
            reason: "connection refused".into(),
        }));
        assert!(matches!(down, VodError::Upstream(_)));
        assert!(down.into_failure().retryable, "the task tries again later");
    }

    #[test]
    fn origin_errors_keep_their_kind_through_the_task_system() {
        let err = origin_status(
            reqwest::StatusCode::NOT_FOUND,
            br#"{"error":"TrackNotFound","message":"x"}"#,
        );
        assert_eq!(err.name(), "TrackNotFound");
        let message = format!("{}: {err}", err.name());
        assert_eq!(
            VodError::from_task_message(&message).name(),
            "TrackNotFound"
        );
        let session = origin_status(
            reqwest::StatusCode::BAD_REQUEST,
            br#"{"error":"InvalidSession"}"#,
        );
        assert!(matches!(session, VodError::InvalidRequest(_)));
        let down = origin_status(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert!(matches!(down, VodError::Upstream(_)));
        let bare = origin_status(
            reqwest::StatusCode::NOT_FOUND,
            br#"{"message":"BlobNotFound"}"#,
        );
        assert_eq!(
            bare.name(),
            "BlobNotFound",
            "stream.place names it in message"
        );
        assert_eq!(
            named_origins(br#"{"message":"BlobNotFound","origins":["https://b.example"]}"#),
            vec!["https://b.example".to_string()]
        );
    }
}
