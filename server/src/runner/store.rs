//! Finding bundles: an author (handle or DID) and a bundle name lead to the author's
//! `dev.atrun.bundle` records and their `dev.atrun.release` record (read together), a
//! version is chosen, and the code blob is fetched and checked against its CID.
//!
//! `latest` is the version the release record names (a rollback), else the highest
//! published one (releases before pre-releases), never a yanked one; an exact version
//! is served unless yanked (410). `latest` is resolved afresh on every call, so a deploy
//! or a rollback is served on the very next call on every runner; an exact version is
//! remembered for [`PINNED_TTL`], so a yank reaches pinned callers within that. Code is cached by CID in memory
//! and on disk (content-addressed, so it never goes stale), and verified whenever read.
//! Both caches are bounded in bytes; on disk each author also has a quota, so one
//! author's many versions evict their own code, not everyone else's.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use semver::Version;
use url::Url;

use super::RunnerError;
use crate::atproto::AtprotoError;
use crate::atproto::blob::verify_blob;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::atproto::records::{BUNDLE_NSID, BundleRecord, RELEASE_NSID, ReleaseRecord};
use crate::atproto::syntax::{Cid, Did};
use crate::atproto::xrpc::XrpcClient;
use crate::filecache::FileCache;

/// Largest bundle accepted, in bytes (the Lexicon's limit).
pub const MAX_BUNDLE_BYTES: usize = 5_000_000;
/// Most `dev.atrun.bundle` (or `dev.atrun.secret`) records of one author read to find a
/// bundle (or its secrets), and most bytes of listing: an author past them is told to
/// delete old versions, and a PDS cannot make the runner page forever.
pub const MAX_LISTED_RECORDS: usize = 2000;
pub const MAX_LISTED_BYTES: usize = 8 * 1024 * 1024;

/// How long an exact version, once located, is served without asking the author's PDS.
pub const PINNED_TTL: Duration = Duration::from_secs(10);

/// Which version of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionSpec {
    /// The highest version (releases before pre-releases).
    Latest,
    /// Exactly this one.
    Exact(Version),
}

impl FromStr for VersionSpec {
    type Err = RunnerError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "latest" {
            return Ok(Self::Latest);
        }
        Version::parse(value).map(Self::Exact).map_err(|err| {
            RunnerError::InvalidRequest(format!(
                "{value:?} is not a version: use \"latest\" or a semantic version like 1.2.3 ({err})"
            ))
        })
    }
}

/// A bundle version, located.
#[derive(Debug, Clone)]
pub struct ResolvedBundle {
    /// The author's DID.
    pub did: Did,
    /// The author's verified handle, if any.
    pub handle: Option<String>,
    /// The author's PDS.
    pub pds: Url,
    /// The bundle's name.
    pub name: String,
    /// The version.
    pub version: Version,
    /// The record's URI.
    pub record_uri: String,
    /// The code blob's CID.
    pub code_cid: Cid,
}

/// Resolves and fetches bundles.
pub struct BundleStore {
    identity: Arc<IdentityResolver>,
    http: HttpClient,
    allowed_authors: Option<HashSet<Did>>,
    disk: FileCache,
    code: Cache<Cid, Arc<str>>,
    pinned: Cache<(Did, String, Version), ResolvedBundle>,
}

pub(super) fn upstream(err: AtprotoError) -> RunnerError {
    match err {
        err if err.is_input_error() => RunnerError::InvalidRequest(err.to_string()),
        err @ AtprotoError::TooMany { .. } => RunnerError::InvalidBundle(format!(
            "{err}: the author should delete records they no longer need"
        )),
        err if err.is_unresolvable() => RunnerError::NotFound(err.to_string()),
        err => {
            tracing::warn!(target: "atrun", error = %err, "a bundle's PDS or identity failed");
            RunnerError::Upstream(err.summary())
        }
    }
}

impl BundleStore {
    /// A store finding bundles of `allowed_authors` only (`None`: anyone's), caching
    /// their code in `disk`.
    pub fn new(
        identity: Arc<IdentityResolver>,
        http: HttpClient,
        disk: FileCache,
        allowed_authors: Option<HashSet<Did>>,
    ) -> Self {
        Self {
            identity,
            http,
            allowed_authors,
            disk,
            code: Cache::builder()
                .weigher(|_, code: &Arc<str>| u32::try_from(code.len()).unwrap_or(u32::MAX))
                .max_capacity(256 * 1024 * 1024)
                .build(),
            pinned: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(PINNED_TTL)
                .build(),
        }
    }

    /// An XRPC client for `pds`.
    pub fn pds(&self, pds: &Url) -> XrpcClient {
        XrpcClient::new(self.http.clone(), pds.clone())
    }

    /// Refuses authors this runner does not run.
    pub fn check_author(&self, did: &Did) -> Result<(), RunnerError> {
        match &self.allowed_authors {
            Some(allowed) if !allowed.contains(did) => Err(RunnerError::NotAllowed(format!(
                "this runner does not run bundles by {did}"
            ))),
            _ => Ok(()),
        }
    }

    /// Locates `name` at `version` in `actor`'s repository: an author the runner does not
    /// run is refused before anything of theirs is read.
    pub async fn resolve(
        &self,
        actor: &str,
        name: &str,
        version: &VersionSpec,
    ) -> Result<ResolvedBundle, RunnerError> {
        let identity = self.identity.resolve_actor(actor).await.map_err(upstream)?;
        let did = identity.did;
        self.check_author(&did)?;
        if let VersionSpec::Exact(exact) = version
            && let Some(found) = self
                .pinned
                .get(&(did.clone(), name.to_string(), exact.clone()))
                .await
        {
            return Ok(found);
        }
        let xrpc = self.pds(&identity.pds);
        let (records, release) = tokio::join!(
            xrpc.list_all_records(&did, BUNDLE_NSID, MAX_LISTED_RECORDS, MAX_LISTED_BYTES),
            xrpc.get_record(did.as_str(), RELEASE_NSID, name),
        );
        let records = records.map_err(upstream)?;
        let release = match release {
            Ok(entry) => serde_json::from_value::<ReleaseRecord>(entry.value).ok(),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(upstream(err)),
        };
        let candidates: Vec<(Version, (String, Cid))> = records
            .into_iter()
            .filter_map(|entry| {
                let record: BundleRecord = serde_json::from_value(entry.value).ok()?;
                let version = Version::parse(&record.version).ok()?;
                (record.name == name).then_some((version, (entry.uri, record.code.cid)))
            })
            .collect();
        if candidates.is_empty() {
            return Err(RunnerError::NotFound(format!(
                "{actor} has published no bundle named {name}"
            )));
        }
        let (version, (record_uri, code_cid)) =
            choose(name, candidates, release.as_ref(), version)?;
        let resolved = ResolvedBundle {
            did: did.clone(),
            handle: identity.handle.map(|h| h.to_string()),
            pds: identity.pds,
            name: name.to_string(),
            version: version.clone(),
            record_uri,
            code_cid,
        };
        self.pinned
            .insert((did, name.to_string(), version), resolved.clone())
            .await;
        Ok(resolved)
    }

    /// The bundle's code, verified against its CID.
    pub async fn code(&self, bundle: &ResolvedBundle) -> Result<Arc<str>, RunnerError> {
        let cid = &bundle.code_cid;
        if let Some(code) = self.code.get(cid).await {
            return Ok(code);
        }
        // Keyed by the author too: their quota counts it, and another author's bundle
        // with the same code is fetched from that author's PDS, not taken from here.
        let key = format!(
            "{}.{cid}.js",
            super::short_digest(bundle.did.as_str().as_bytes())
        );
        let code: Arc<str> = match self.disk.read(&key).await {
            Some(bytes) if verify_blob(cid, &bytes).is_ok() => code_text(bytes)?,
            _ => {
                let bytes = self
                    .pds(&bundle.pds)
                    .get_blob(&bundle.did, cid, MAX_BUNDLE_BYTES)
                    .await
                    .map_err(upstream)?
                    .to_vec();
                // Checked before anything the author chose is written to disk.
                let code = code_text(bytes)?;
                if let Err(err) = self.disk.write(&key, code.as_bytes()).await {
                    tracing::warn!(%cid, error = %err, "could not cache bundle code on disk");
                }
                code
            }
        };
        self.code.insert(*cid, code.clone()).await;
        Ok(code)
    }
}

/// The version `wanted` of `name` among the published `candidates` (each a version and
/// what goes with it), as the author's `release` record has it. Runners serve what this
/// chooses; `at-run ls` shows it.
pub fn choose<T>(
    name: &str,
    mut candidates: Vec<(Version, T)>,
    release: Option<&ReleaseRecord>,
    wanted: &VersionSpec,
) -> Result<(Version, T), RunnerError> {
    let yank_of = |version: &Version| release.and_then(|r| r.yank_of(&version.to_string()));
    match wanted {
        VersionSpec::Exact(exact) => {
            let found = candidates
                .into_iter()
                .find(|(v, _)| v == exact)
                .ok_or_else(|| RunnerError::NotFound(format!("{name} has no version {exact}")))?;
            match yank_of(&found.0) {
                None => Ok(found),
                Some(yank) => Err(RunnerError::Yanked(format!(
                    "version {exact} of {name} was yanked by its author{}; call latest or \
                     another version",
                    yank.reason
                        .as_deref()
                        .map(|reason| format!(" ({reason})"))
                        .unwrap_or_default()
                ))),
            }
        }
        VersionSpec::Latest => {
            candidates.retain(|(v, _)| yank_of(v).is_none());
            if candidates.is_empty() {
                return Err(RunnerError::Yanked(format!(
                    "every version of {name} was yanked by its author"
                )));
            }
            let chosen = release
                .and_then(|r| r.latest.as_deref())
                .and_then(|pin| Version::parse(pin).ok())
                .and_then(|pin| candidates.iter().position(|(v, _)| *v == pin));
            if let Some(at) = chosen {
                return Ok(candidates.swap_remove(at));
            }
            if candidates.iter().any(|(v, _)| v.pre.is_empty()) {
                candidates.retain(|(v, _)| v.pre.is_empty());
            }
            candidates
                .into_iter()
                .max_by(|a, b| a.0.cmp(&b.0))
                .ok_or_else(|| RunnerError::NotFound(format!("{name} has no version")))
        }
    }
}

/// Bundle code as text: at most [`MAX_BUNDLE_BYTES`] of UTF-8.
fn code_text(bytes: Vec<u8>) -> Result<Arc<str>, RunnerError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(RunnerError::InvalidBundle(format!(
            "the bundle's code is larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes)
        .map(Arc::from)
        .map_err(|_| RunnerError::InvalidBundle("the bundle's code is not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_checked_before_it_is_kept() {
        assert!(code_text(b"export const x = 1;".to_vec()).is_ok());
        assert!(code_text(b"\x7fELF\x02\x01\x01\0\xff\xfe".to_vec()).is_err());
        assert!(code_text(vec![b' '; MAX_BUNDLE_BYTES + 1]).is_err());
    }

    #[test]
    fn versions_are_latest_or_semver() {
        assert_eq!(
            "latest".parse::<VersionSpec>().expect("latest"),
            VersionSpec::Latest
        );
        assert!(matches!(
            "1.2.3-beta.1".parse::<VersionSpec>(),
            Ok(VersionSpec::Exact(_))
        ));
        for bad in ["1", "1.2", "v1.2.3", "01.2.3", ""] {
            assert!(bad.parse::<VersionSpec>().is_err(), "{bad}");
        }
        let mut versions: Vec<Version> = ["1.10.0", "1.2.0", "1.2.0-beta", "1.9.9"]
            .iter()
            .map(|v| Version::parse(v).expect("v"))
            .collect();
        versions.sort();
        assert_eq!(
            versions.last().map(ToString::to_string).as_deref(),
            Some("1.10.0"),
            "semver, not parseInt"
        );
    }
}
