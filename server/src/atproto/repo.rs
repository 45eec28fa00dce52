//! Reading repositories: records, listings, descriptions and blobs, from any PDS.
//! No credentials are needed; writing is on [`super::session::Agent`].

use bytes::Bytes;
use futures::{Stream, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::blob::verify_blob;
use super::error::AtprotoError;
use super::syntax::{Cid, Did};
use super::xrpc::{Auth, XrpcClient};

/// `com.atproto.repo.listRecords` page size: the most a PDS returns at once.
pub const LIST_PAGE_SIZE: u32 = 100;

/// `com.atproto.sync.listRepos` page size.
const LIST_REPOS_PAGE_SIZE: u32 = 1000;

/// A record and where it lives.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordEntry {
    /// Its `at://` URI.
    pub uri: String,
    /// The CID of this version of it.
    pub cid: Option<String>,
    /// Its content.
    pub value: serde_json::Value,
}

/// A reference to one version of a record (`com.atproto.repo.strongRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrongRef {
    /// Its `at://` URI.
    pub uri: String,
    /// Its CID.
    pub cid: String,
}

/// `com.atproto.repo.describeRepo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoDescription {
    /// The account's handle.
    pub handle: String,
    /// The account's DID.
    pub did: String,
    /// Collections that have records.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Whether the PDS found the handle valid.
    #[serde(default)]
    pub handle_is_correct: bool,
}

/// `com.atproto.sync.getRepoStatus`, and each repository of `listRepos`.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoStatus {
    /// The account's DID.
    pub did: String,
    /// Whether the account is active.
    #[serde(default = "active_by_default")]
    pub active: bool,
    /// Why not, when it is not: `takendown`, `suspended`, `deactivated`, `deleted`, ...
    #[serde(default)]
    pub status: Option<String>,
}

fn active_by_default() -> bool {
    true
}

impl RepoStatus {
    /// `None` for an active account, else its status.
    pub fn inactive_status(&self) -> Option<String> {
        inactive_status(self.active, self.status.clone())
    }
}

/// What an account's `active` flag and `status` (in `getRepoStatus`, `listRepos` and
/// `#account` events) say: `None` when active, else the status, `deactivated` when the
/// PDS names none.
pub fn inactive_status(active: bool, status: Option<String>) -> Option<String> {
    (!active).then(|| {
        status
            .filter(|status| !status.is_empty())
            .unwrap_or_else(|| "deactivated".to_string())
    })
}

#[derive(Deserialize)]
struct ReposPage {
    cursor: Option<String>,
    repos: Vec<RepoStatus>,
}

#[derive(Deserialize)]
struct ListPage {
    cursor: Option<String>,
    records: Vec<RecordEntry>,
}

impl XrpcClient {
    /// One record; [`AtprotoError::RecordNotFound`] when it does not exist.
    pub async fn get_record(
        &self,
        repo: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<RecordEntry, AtprotoError> {
        self.query(
            "com.atproto.repo.getRecord",
            &[("repo", repo), ("collection", collection), ("rkey", rkey)],
            Auth::None,
        )
        .await
    }

    /// One page of a collection, and the cursor of the next page if there is one.
    pub async fn list_records_page(
        &self,
        repo: &str,
        collection: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<RecordEntry>, Option<String>), AtprotoError> {
        self.list_records_page_within(repo, collection, cursor, None)
            .await
            .map(|(records, next, _)| (records, next))
    }

    /// [`Self::list_records_page`], its body at most `max_bytes` (or the HTTP policy's
    /// limit); also returns the body's size.
    async fn list_records_page_within(
        &self,
        repo: &str,
        collection: &str,
        cursor: Option<&str>,
        max_bytes: Option<usize>,
    ) -> Result<(Vec<RecordEntry>, Option<String>, usize), AtprotoError> {
        let limit = LIST_PAGE_SIZE.to_string();
        let mut params = vec![
            ("repo", repo),
            ("collection", collection),
            ("limit", limit.as_str()),
        ];
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor));
        }
        const METHOD: &str = "com.atproto.repo.listRecords";
        let body = self
            .query_bytes(METHOD, &params, Auth::None, max_bytes)
            .await?;
        let page: ListPage =
            serde_json::from_slice(&body).map_err(|err| AtprotoError::InvalidResponse {
                method: METHOD.to_string(),
                reason: err.to_string(),
            })?;
        // An empty page ends the listing even if a cursor came with it.
        let has_records = !page.records.is_empty();
        let next = page.cursor.filter(|next| has_records && !next.is_empty());
        if next.is_some() && next.as_deref() == cursor {
            return Err(AtprotoError::InvalidResponse {
                method: "com.atproto.repo.listRecords".to_string(),
                reason: "the PDS returned the same cursor twice".to_string(),
            });
        }
        Ok((page.records, next, body.len()))
    }

    /// Every record of a collection, read into memory, but at most `max_records` of them
    /// in at most `max_bytes` of listing: a repository holding more is refused with
    /// [`AtprotoError::TooMany`] instead of being read to the end (a hostile PDS could
    /// page forever).
    pub async fn list_all_records(
        &self,
        repo: &str,
        collection: &str,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<RecordEntry>, AtprotoError> {
        let too_many = |limit: String| AtprotoError::TooMany {
            repo: repo.to_string(),
            collection: collection.to_string(),
            limit,
        };
        let mut records = Vec::new();
        let (mut cursor, mut bytes) = (None::<String>, 0usize);
        loop {
            let remaining = max_bytes.saturating_sub(bytes);
            if remaining == 0 {
                return Err(too_many(format!("{max_bytes} bytes of records")));
            }
            let (page, next, size) = self
                .list_records_page_within(repo, collection, cursor.as_deref(), Some(remaining))
                .await
                .map_err(|err| match err {
                    AtprotoError::Net(super::net::NetError::TooLarge { .. }) => {
                        too_many(format!("{max_bytes} bytes of records"))
                    }
                    other => other,
                })?;
            bytes += size;
            records.extend(page);
            if records.len() > max_records {
                return Err(too_many(format!("{max_records} records")));
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(records),
            }
        }
    }

    /// Every record of a collection, page by page, as a stream.
    pub fn list_records<'a>(
        &'a self,
        repo: &'a str,
        collection: &'a str,
    ) -> impl Stream<Item = Result<RecordEntry, AtprotoError>> + 'a {
        stream::try_unfold(Some(None::<String>), move |state| async move {
            let Some(cursor) = state else {
                return Ok::<_, AtprotoError>(None);
            };
            let (records, next) = self
                .list_records_page(repo, collection, cursor.as_deref())
                .await?;
            Ok(Some((records, next.map(Some))))
        })
        .map_ok(|records| stream::iter(records.into_iter().map(Ok)))
        .try_flatten()
    }

    /// `com.atproto.repo.describeRepo`.
    pub async fn describe_repo(&self, repo: &str) -> Result<RepoDescription, AtprotoError> {
        self.query(
            "com.atproto.repo.describeRepo",
            &[("repo", repo)],
            Auth::None,
        )
        .await
    }

    /// `com.atproto.sync.getRepoStatus`: whether the account is active, as its PDS says.
    pub async fn repo_status(&self, did: &Did) -> Result<RepoStatus, AtprotoError> {
        self.query(
            "com.atproto.sync.getRepoStatus",
            &[("did", did.as_str())],
            Auth::None,
        )
        .await
    }

    /// `com.atproto.sync.listRepos`: every repository the PDS hosts, with its status,
    /// stopping after `max_repos` (a host that pages forever is cut off).
    pub async fn list_repos(&self, max_repos: usize) -> Result<Vec<RepoStatus>, AtprotoError> {
        let mut repos = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let limit = LIST_REPOS_PAGE_SIZE.to_string();
            let mut params = vec![("limit", limit.as_str())];
            if let Some(cursor) = cursor.as_deref() {
                params.push(("cursor", cursor));
            }
            let page: ReposPage = self
                .query("com.atproto.sync.listRepos", &params, Auth::None)
                .await?;
            let empty = page.repos.is_empty();
            repos.extend(page.repos);
            if repos.len() >= max_repos {
                repos.truncate(max_repos);
                return Ok(repos);
            }
            match page.cursor {
                Some(next) if !empty && cursor.as_deref() != Some(next.as_str()) => {
                    cursor = Some(next)
                }
                _ => return Ok(repos),
            }
        }
    }

    /// A blob's bytes, verified against `cid`, at most `limit` bytes.
    pub async fn get_blob(
        &self,
        did: &Did,
        cid: &Cid,
        limit: usize,
    ) -> Result<Bytes, AtprotoError> {
        let cid_text = cid.to_string();
        let bytes = self
            .query_bytes(
                "com.atproto.sync.getBlob",
                &[("did", did.as_str()), ("cid", cid_text.as_str())],
                Auth::None,
                Some(limit),
            )
            .await?;
        verify_blob(cid, &bytes)?;
        Ok(bytes)
    }
}
