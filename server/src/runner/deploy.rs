//! Publishing to one's own PDS: bundle versions and secrets. The `at-run` CLI and the
//! tests use these; the runner only reads what they write.

use bytes::Bytes;
use futures::TryStreamExt;
use semver::Version;

use super::manifest::{ExportKind, Manifest};
use super::secrets::{self, SecretError};
use crate::atproto::AtprotoError;
use crate::atproto::records::{
    BUNDLE_NSID, BundleRecord, ExportSnapshot, ManifestSnapshot, PermissionsSnapshot, SECRET_NSID,
    SecretRecord,
};
use crate::atproto::repo::StrongRef;
use crate::atproto::session::Agent;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The PDS refused or failed.
    #[error(transparent)]
    Atproto(#[from] AtprotoError),
    /// The secret could not be sealed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// This version already exists.
    #[error("{name} {version} is already published; publish a new version")]
    VersionExists {
        /// The bundle.
        name: String,
        /// The version.
        version: Version,
    },
}

fn snapshot(manifest: &Manifest) -> ManifestSnapshot {
    ManifestSnapshot {
        sdk_version: manifest.sdk_version.clone(),
        permissions: PermissionsSnapshot {
            net: manifest.permissions.net.iter().cloned().collect(),
            env: manifest.permissions.env.iter().cloned().collect(),
        },
        endpoints: manifest
            .exports
            .iter()
            .map(|(name, kind)| ExportSnapshot {
                name: name.clone(),
                kind: match kind {
                    ExportKind::Endpoint => "endpoint",
                    ExportKind::Task { .. } => "task",
                    ExportKind::Job { .. } => "job",
                }
                .to_string(),
            })
            .collect(),
    }
}

/// The signed-in account's records in `collection` that parse as `T`, with their URIs.
async fn own_records<T: serde::de::DeserializeOwned>(
    agent: &Agent,
    collection: &str,
) -> Result<Vec<(T, String)>, AtprotoError> {
    let did = agent.did().await;
    let records: Vec<_> = agent
        .xrpc()
        .list_records(&did, collection)
        .try_collect()
        .await?;
    Ok(records
        .into_iter()
        .filter_map(|entry| Some((serde_json::from_value(entry.value).ok()?, entry.uri)))
        .collect())
}

/// The bundle records in the signed-in account: `(name, version, record URI)`.
pub async fn list_bundles(agent: &Agent) -> Result<Vec<(String, String, String)>, AtprotoError> {
    Ok(own_records::<BundleRecord>(agent, BUNDLE_NSID)
        .await?
        .into_iter()
        .map(|(record, uri)| (record.name, record.version, uri))
        .collect())
}

/// Uploads `code` and records it as `manifest.name` at `version`.
pub async fn publish(
    agent: &Agent,
    code: &str,
    manifest: &Manifest,
    version: &Version,
    entry: &str,
) -> Result<StrongRef, DeployError> {
    let exists = list_bundles(agent).await?.iter().any(|(name, v, _)| {
        name == &manifest.name && Version::parse(v).is_ok_and(|v| &v == version)
    });
    if exists {
        return Err(DeployError::VersionExists {
            name: manifest.name.clone(),
            version: version.clone(),
        });
    }
    let blob = agent
        .upload_blob(Bytes::from(code.to_string()), "application/javascript")
        .await?;
    let record = BundleRecord {
        name: manifest.name.clone(),
        version: version.to_string(),
        code: blob,
        entry: entry.to_string(),
        created_at: crate::atproto::syntax::now(),
        manifest: Some(snapshot(manifest)),
    };
    Ok(agent.create_record(BUNDLE_NSID, None, &record).await?)
}

/// Seals `value` to the runner's key, bound to the signed-in account, `bundle` and
/// `name` (see [`secrets`]), and stores it as `bundle`'s secret `name`, replacing an
/// earlier value for the same runner.
pub async fn put_secret(
    agent: &Agent,
    runner_public_key: &str,
    bundle: &str,
    name: &str,
    value: &str,
) -> Result<StrongRef, DeployError> {
    let owner = crate::atproto::syntax::did(&agent.did().await)?;
    let binding = secrets::Binding {
        owner: &owner,
        bundle,
        name,
    };
    let record = SecretRecord {
        runner_key: runner_public_key.to_string(),
        bundle: bundle.to_string(),
        name: name.to_string(),
        ciphertext: secrets::seal(runner_public_key, binding, value)?,
        created_at: crate::atproto::syntax::now(),
    };
    let rkey = secrets::record_key(bundle, name, runner_public_key);
    Ok(agent.put_record(SECRET_NSID, &rkey, &record).await?)
}

/// The signed-in account's secrets: `(bundle, name, runner key, record key)`, never values.
pub async fn list_secrets(
    agent: &Agent,
) -> Result<Vec<(String, String, String, String)>, AtprotoError> {
    Ok(own_records::<SecretRecord>(agent, SECRET_NSID)
        .await?
        .into_iter()
        .filter_map(|(record, uri)| {
            let rkey = uri.rsplit('/').next()?.to_string();
            Some((record.bundle, record.name, record.runner_key, rkey))
        })
        .collect())
}

/// Removes `bundle`'s secret `name` (for every runner, or only `runner_public_key`'s);
/// returns how many records were deleted.
pub async fn remove_secret(
    agent: &Agent,
    bundle: &str,
    name: &str,
    runner_public_key: Option<&str>,
) -> Result<usize, AtprotoError> {
    let mut removed = 0;
    for (b, n, runner, rkey) in list_secrets(agent).await? {
        if b == bundle && n == name && runner_public_key.is_none_or(|key| key == runner) {
            agent.delete_record(SECRET_NSID, &rkey).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
