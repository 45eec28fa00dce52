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
        let limit = LIST_PAGE_SIZE.to_string();
        let mut params = vec![
            ("repo", repo),
            ("collection", collection),
            ("limit", limit.as_str()),
        ];
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor));
        }
        let page: ListPage = self
            .query("com.atproto.repo.listRecords", &params, Auth::None)
            .await?;
        // An empty page ends the listing even if a cursor came with it.
        let has_records = !page.records.is_empty();
        let next = page.cursor.filter(|next| has_records && !next.is_empty());
        if next.is_some() && next.as_deref() == cursor {
            return Err(AtprotoError::InvalidResponse {
                method: "com.atproto.repo.listRecords".to_string(),
                reason: "the PDS returned the same cursor twice".to_string(),
            });
        }
        Ok((page.records, next))
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
