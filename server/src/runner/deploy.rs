//! Publishing to one's own PDS: bundle versions, which of them runners serve (the
//! `dev.atrun.release` record: rollbacks and yanks), and secrets. The `at-run` CLI and
//! the tests use these; the runner only reads what they write.

use bytes::Bytes;
use futures::TryStreamExt;
use semver::Version;

use super::manifest::{ExportKind, Manifest};
use super::secrets::{self, SecretError};
use crate::atproto::AtprotoError;
use crate::atproto::records::{
    BUNDLE_NSID, BundleRecord, ExportSnapshot, ManifestSnapshot, PermissionsSnapshot, RELEASE_NSID,
    ReleaseRecord, SECRET_NSID, SecretRecord, Yank,
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
    /// No such version is published.
    #[error("{name} {version} is not published (`at-run ls` lists the versions)")]
    NoSuchVersion {
        /// The bundle.
        name: String,
        /// The version.
        version: Version,
    },
    /// A rollback to a yanked version.
    #[error("{name} {version} is yanked; undo that first (`at-run yank --undo {name} {version}`)")]
    Yanked {
        /// The bundle.
        name: String,
        /// The version.
        version: Version,
    },
}

/// A change to which versions of a bundle runners serve.
#[derive(Debug, Clone)]
pub enum ReleaseChange {
    /// `latest` serves this version until the next deploy.
    Rollback(Version),
    /// This version is never served.
    Yank {
        /// The version.
        version: Version,
        /// Why, shown to its callers.
        reason: Option<String>,
    },
    /// This version is served again.
    Unyank(Version),
    /// A version was just published: `latest` is the highest again.
    Published,
}

/// The signed-in account's release record of bundle `name`, if it has one.
pub async fn release(agent: &Agent, name: &str) -> Result<Option<ReleaseRecord>, AtprotoError> {
    let did = agent.did().await;
    match agent.xrpc().get_record(&did, RELEASE_NSID, name).await {
        Ok(entry) => Ok(serde_json::from_value(entry.value).ok()),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Applies `change` to bundle `name`'s release record (checked against the published
/// versions) and returns the record as stored; `None` when a version was published and
/// the bundle has no record (nothing to change).
pub async fn change_release(
    agent: &Agent,
    name: &str,
    change: ReleaseChange,
) -> Result<Option<ReleaseRecord>, DeployError> {
    let current = release(agent, name).await?;
    if matches!(change, ReleaseChange::Published) && current.is_none() {
        return Ok(None);
    }
    let check = async |version: &Version| {
        let found = list_bundles(agent)
            .await?
            .iter()
            .any(|(n, v, _)| n == name && Version::parse(v).is_ok_and(|v| &v == version));
        if found {
            Ok(())
        } else {
            Err(DeployError::NoSuchVersion {
                name: name.to_string(),
                version: version.clone(),
            })
        }
    };
    let mut record = current.unwrap_or_else(|| ReleaseRecord {
        name: name.to_string(),
        latest: None,
        yanked: Vec::new(),
        updated_at: String::new(),
    });
    match change {
        ReleaseChange::Rollback(version) => {
            check(&version).await?;
            if record.yank_of(&version.to_string()).is_some() {
                return Err(DeployError::Yanked {
                    name: name.to_string(),
                    version,
                });
            }
            record.latest = Some(version.to_string());
        }
        ReleaseChange::Yank { version, reason } => {
            check(&version).await?;
            let version = version.to_string();
            record.yanked.retain(|yank| yank.version != version);
            if record.latest.as_ref() == Some(&version) {
                record.latest = None;
            }
            record.yanked.push(Yank {
                version,
                reason,
                at: crate::atproto::syntax::now(),
            });
        }
        ReleaseChange::Unyank(version) => {
            let version = version.to_string();
            record.yanked.retain(|yank| yank.version != version);
        }
        ReleaseChange::Published => record.latest = None,
    }
    record.updated_at = crate::atproto::syntax::now();
    agent.put_record(RELEASE_NSID, name, &record).await?;
    Ok(Some(record))
}

fn snapshot(manifest: &Manifest) -> ManifestSnapshot {
    ManifestSnapshot {
        sdk_version: manifest.sdk_version.clone(),
        permissions: PermissionsSnapshot {
            net: manifest.permissions.net.iter().cloned().collect(),
            env: manifest.permissions.env.iter().cloned().collect(),
            kv: manifest.permissions.kv,
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
