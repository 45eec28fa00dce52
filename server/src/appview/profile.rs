//! Creator profiles: read from the creator's own PDS (`app.bsky.actor.profile/self`),
//! falling back to a public Bluesky API when the PDS has none and one is configured.
//! Registered creators' avatars are served through us (`/api/appview/avatar/{did}/{cid}`),
//! checked against their CID and cached on disk by CID, so a page of creators costs their
//! PDSes nothing after the first view. Only registered creators' current avatars: an open
//! image proxy with a disk cache would let anyone fill our disk from their own PDS, and
//! any other blob of a creator's (a video's, a huge upload) is none of its business. The
//! cache is capped in bytes, and per creator.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use url::Url;

use super::{AppView, AppViewError};
use crate::atproto::AtprotoError;
use crate::atproto::blob::BlobRef;
use crate::atproto::syntax::{AtIdentifier, Cid, Did};
use crate::atproto::xrpc::{Auth, XrpcClient};

/// How long a profile is reused.
pub const PROFILE_TTL: Duration = Duration::from_secs(300);
/// Largest avatar accepted (Bluesky's own limit).
const MAX_AVATAR_BYTES: usize = 1_000_000;

/// `getProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The DID.
    pub did: Did,
    /// The handle, when verified.
    pub handle: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// An absolute URL of the avatar image.
    pub avatar: Option<String>,
    /// Where the profile came from: `pds`, `bsky`, or `none`.
    pub source: &'static str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileRecord {
    display_name: Option<String>,
    description: Option<String>,
    avatar: Option<BlobRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BskyProfile {
    handle: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    avatar: Option<String>,
}

/// An avatar image, ready to serve.
#[derive(Debug, Clone)]
pub struct Avatar {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its MIME type, from its content.
    pub mime_type: &'static str,
}

impl AppView {
    /// The profile of `actor` (a handle or DID).
    pub async fn profile(&self, actor: &str) -> Result<Profile, AppViewError> {
        let identity = self.resolve(actor).await?;
        let did = identity.did;
        if let Some(profile) = self.profiles.get(&did).await {
            return Ok(profile);
        }
        let handle = identity.handle.as_ref().map(ToString::to_string);
        let registered = self.store.creator(&did).await?.is_some();
        let xrpc = XrpcClient::new(self.http.clone(), identity.pds);
        let from_pds = xrpc
            .get_record(&did, "app.bsky.actor.profile", "self")
            .await
            .map(|entry| serde_json::from_value::<ProfileRecord>(entry.value));
        let profile = match from_pds {
            Ok(Ok(record)) => Profile {
                avatar: record.avatar.filter(|_| registered).map(|avatar| {
                    format!(
                        "{}/api/appview/avatar/{did}/{}",
                        self.options.public_url, avatar.cid
                    )
                }),
                did: did.clone(),
                handle,
                display_name: trimmed(record.display_name, MAX_NAME_CHARS),
                description: trimmed(record.description, MAX_DESCRIPTION_CHARS),
                source: "pds",
            },
            Ok(Err(err)) => {
                tracing::warn!(%did, error = %err, "the profile record is malformed");
                self.bsky_profile(&did, handle).await
            }
            Err(err) if err.is_not_found() => self.bsky_profile(&did, handle).await,
            Err(err) => return Err(err.into()),
        };
        self.profiles.insert(did, profile.clone()).await;
        Ok(profile)
    }

    /// Stores `did`'s profile record from `pds` with the creator, for pages to read
    /// without asking the PDS (called by each sync; a missing or broken profile is no
    /// sync failure).
    pub(super) async fn store_profile(&self, did: &Did, pds: Url) {
        let record = XrpcClient::new(self.http.clone(), pds)
            .get_record(did, "app.bsky.actor.profile", "self")
            .await
            .ok()
            .and_then(|entry| serde_json::from_value::<ProfileRecord>(entry.value).ok());
        let Some(record) = record else { return };
        let display_name = trimmed(record.display_name, MAX_NAME_CHARS);
        let description = trimmed(record.description, MAX_DESCRIPTION_CHARS);
        let avatar = record.avatar.map(|avatar| avatar.cid);
        if let Err(err) = self
            .store
            .set_profile(
                did,
                display_name.as_deref(),
                description.as_deref(),
                avatar.as_ref(),
            )
            .await
        {
            tracing::warn!(%did, error = %err, "storing a creator's profile failed");
        }
        self.profiles.invalidate(did).await;
    }

    /// The profile from the public Bluesky API, or an empty one.
    async fn bsky_profile(&self, did: &Did, handle: Option<String>) -> Profile {
        let empty = Profile {
            did: did.clone(),
            handle: handle.clone(),
            display_name: None,
            description: None,
            avatar: None,
            source: "none",
        };
        let Some(base) = self.options.bsky_public_api.as_deref() else {
            return empty;
        };
        let Ok(base) = Url::parse(base) else {
            tracing::warn!(%base, "BSKY_PUBLIC_API_URL is not a URL");
            return empty;
        };
        let xrpc = XrpcClient::new(self.http.clone(), base);
        match xrpc
            .query::<BskyProfile>(
                "app.bsky.actor.getProfile",
                &[("actor", did.as_str())],
                Auth::None,
            )
            .await
        {
            Ok(found) => Profile {
                did: did.clone(),
                handle: handle.or(found.handle.filter(|h| h.len() <= 253)),
                display_name: trimmed(found.display_name, MAX_NAME_CHARS),
                description: trimmed(found.description, MAX_DESCRIPTION_CHARS),
                avatar: found
                    .avatar
                    .filter(|url| url.starts_with("https://") && url.len() <= 2048),
                source: "bsky",
            },
            Err(err) => {
                tracing::info!(%did, error = %err, "no profile from the public Bluesky API");
                empty
            }
        }
    }

    /// The avatar blob `cid` of the registered creator `did`: from the disk cache, or
    /// fetched from their PDS, verified, and cached. Only images are served.
    pub async fn avatar(&self, did: &Did, cid: &Cid) -> Result<Avatar, AppViewError> {
        let key = format!(
            "{}.{cid}",
            crate::runner::short_digest(did.as_str().as_bytes())
        );
        // Only shown creators' avatars, cached or not.
        let Some(creator) = self.index.creator(did.as_str()).await? else {
            return Err(AppViewError::NotRegistered(did.to_string()));
        };
        if let Some(bytes) = self.avatars.read(&key).await
            && let Some(mime_type) = image_type(&bytes)
        {
            return Ok(Avatar {
                bytes: bytes.into(),
                mime_type,
            });
        }
        if creator.avatar_cid.as_ref() != Some(cid) {
            // Changed since the last sync? The live profile says.
            let current = self.profile(did.as_str()).await?.avatar;
            if !current.is_some_and(|url| url.ends_with(&format!("/{cid}"))) {
                return Err(AppViewError::InvalidRequest(format!(
                    "{cid} is not {did}'s avatar"
                )));
            }
        }
        let identity = self
            .identity
            .resolve(&AtIdentifier::Did(did.clone()))
            .await?;
        let xrpc = XrpcClient::new(self.http.clone(), identity.pds);
        let bytes = xrpc.get_blob(did, cid, MAX_AVATAR_BYTES).await?;
        let mime_type = image_type(&bytes).ok_or_else(|| {
            AppViewError::Upstream(AtprotoError::InvalidResponse {
                method: "com.atproto.sync.getBlob".into(),
                reason: "the avatar is not a JPEG, PNG, GIF or WebP image".into(),
            })
        })?;
        if let Err(err) = self.avatars.write(&key, &bytes).await {
            tracing::warn!(%cid, error = %err, "could not cache an avatar");
        }
        Ok(Avatar { bytes, mime_type })
    }
}

/// Longest display name and description kept (Bluesky's own limits), so every cached
/// profile is small whatever a PDS sends.
const MAX_NAME_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 2560;

/// `text` trimmed and cut to `max` characters; none when empty.
fn trimmed(text: Option<String>, max: usize) -> Option<String> {
    text.map(|t| t.trim().chars().take(max).collect::<String>())
        .filter(|t| !t.is_empty())
}

/// The MIME type of an image we serve, from its first bytes.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Jpeg => Some("image/jpeg"),
        image::ImageFormat::Png => Some("image/png"),
        image::ImageFormat::Gif => Some("image/gif"),
        image::ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::image_type;

    #[test]
    fn only_images_are_served() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"\xff\xd8\xff\xe0...."), Some("image/jpeg"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b"<html>"), None);
    }
}
