//! Signed-in access to one's own repository: `createSession`, transparent
//! `refreshSession`, and the write calls (uploadBlob, createRecord, putRecord,
//! deleteRecord).
//!
//! Access tokens are short-lived. When an authenticated call is refused, [`Agent`]
//! refreshes the session once and retries; concurrent callers share one refresh (the
//! PDS rotates refresh tokens, so a second refresh with the old token would fail).
//! Tokens live in [`Secret`]s, so they never show up in `Debug` output or logs.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex, RwLock};

use super::blob::BlobRef;
use super::error::AtprotoError;
use super::repo::StrongRef;
use super::xrpc::{Auth, Body, XrpcClient};
use crate::secret::Secret;

/// An authenticated session with a PDS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The account's DID.
    pub did: String,
    /// The account's handle.
    pub handle: String,
    /// Short-lived token for calls.
    pub access_jwt: Secret,
    /// Longer-lived token to get a new access token.
    pub refresh_jwt: Secret,
}

/// A signed-in client for one account on its PDS.
#[derive(Debug)]
pub struct Agent {
    xrpc: XrpcClient,
    session: RwLock<Session>,
    refreshing: Mutex<()>,
}

#[derive(Deserialize)]
struct UploadOutput {
    blob: BlobRef,
}

impl Agent {
    /// Signs in with a handle or DID and a password (an app password is best).
    pub async fn login(
        xrpc: XrpcClient,
        identifier: &str,
        password: &Secret,
    ) -> Result<Self, AtprotoError> {
        let session: Session = xrpc
            .procedure(
                "com.atproto.server.createSession",
                Body::Json(&json!({ "identifier": identifier, "password": password.expose() })),
                Auth::None,
            )
            .await?;
        Ok(Self::resume(xrpc, session))
    }

    /// Continues a stored session.
    pub fn resume(xrpc: XrpcClient, session: Session) -> Self {
        Self {
            xrpc,
            session: RwLock::new(session),
            refreshing: Mutex::new(()),
        }
    }

    /// The current session (for storing it; tokens change when refreshed).
    pub async fn session(&self) -> Session {
        self.session.read().await.clone()
    }

    /// The account's DID.
    pub async fn did(&self) -> String {
        self.session.read().await.did.clone()
    }

    /// The PDS client, for unauthenticated reads.
    pub fn xrpc(&self) -> &XrpcClient {
        &self.xrpc
    }

    /// Gets new tokens with the refresh token.
    pub async fn refresh(&self) -> Result<(), AtprotoError> {
        let current = self.session.read().await.refresh_jwt.clone();
        self.refresh_if_current(&current).await
    }

    /// Refreshes unless the session moved on from `seen` (the refresh token a caller saw)
    /// while waiting for the lock: then another caller already refreshed.
    async fn refresh_if_current(&self, seen: &Secret) -> Result<(), AtprotoError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let refresh_jwt = {
            let session = self.session.read().await;
            if &session.refresh_jwt != seen {
                return Ok(());
            }
            session.refresh_jwt.clone()
        };
        let fresh: Session = self
            .xrpc
            .procedure(
                "com.atproto.server.refreshSession",
                Body::<'_, ()>::Empty,
                Auth::Bearer(refresh_jwt.expose()),
            )
            .await?;
        *self.session.write().await = fresh;
        Ok(())
    }

    /// Runs `call` with the access token; refreshes and retries once if it is refused.
    async fn authed<T, F, Fut>(&self, call: F) -> Result<T, AtprotoError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, AtprotoError>>,
    {
        let (token, seen) = {
            let session = self.session.read().await;
            (session.access_jwt.clone(), session.refresh_jwt.clone())
        };
        match call(token).await {
            Err(AtprotoError::AuthFailed { .. }) => {
                self.refresh_if_current(&seen).await?;
                let token = self.session.read().await.access_jwt.clone();
                call(token).await
            }
            other => other,
        }
    }

    /// A service auth token from our PDS for service `audience` and method `method`
    /// (`com.atproto.server.getServiceAuth`), valid for a minute.
    pub async fn service_auth(&self, audience: &str, method: &str) -> Result<Secret, AtprotoError> {
        #[derive(serde::Deserialize)]
        struct Token {
            token: Secret,
        }
        let token: Token = self
            .authed(|access| async move {
                self.xrpc
                    .query(
                        "com.atproto.server.getServiceAuth",
                        &[("aud", audience), ("lxm", method)],
                        Auth::Bearer(access.expose()),
                    )
                    .await
            })
            .await?;
        Ok(token.token)
    }

    /// Uploads a blob with an explicit content type (the PDS stores whatever it is told).
    pub async fn upload_blob(
        &self,
        bytes: Bytes,
        mime_type: &str,
    ) -> Result<BlobRef, AtprotoError> {
        let output: UploadOutput = self
            .authed(|token| {
                let body: Body<'_, ()> = Body::Bytes {
                    bytes: bytes.clone(),
                    content_type: mime_type,
                };
                async move {
                    self.xrpc
                        .procedure(
                            "com.atproto.repo.uploadBlob",
                            body,
                            Auth::Bearer(token.expose()),
                        )
                        .await
                }
            })
            .await?;
        Ok(output.blob)
    }

    /// Creates a record; the PDS picks a TID key unless `rkey` is given.
    pub async fn create_record<R: Serialize + Sync>(
        &self,
        collection: &str,
        rkey: Option<&str>,
        record: &R,
    ) -> Result<StrongRef, AtprotoError> {
        let repo = self.did().await;
        let mut input = json!({ "repo": repo, "collection": collection, "record": record });
        if let Some(rkey) = rkey {
            input["rkey"] = json!(rkey);
        }
        self.write("com.atproto.repo.createRecord", &input).await
    }

    /// Creates or replaces the record at `rkey`.
    pub async fn put_record<R: Serialize + Sync>(
        &self,
        collection: &str,
        rkey: &str,
        record: &R,
    ) -> Result<StrongRef, AtprotoError> {
        let repo = self.did().await;
        let input =
            json!({ "repo": repo, "collection": collection, "rkey": rkey, "record": record });
        self.write("com.atproto.repo.putRecord", &input).await
    }

    /// Deletes the record at `rkey` (no error if it is already gone).
    pub async fn delete_record(&self, collection: &str, rkey: &str) -> Result<(), AtprotoError> {
        let repo = self.did().await;
        let input = json!({ "repo": repo, "collection": collection, "rkey": rkey });
        let _: serde_json::Value = self.write("com.atproto.repo.deleteRecord", &input).await?;
        Ok(())
    }

    async fn write<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        input: &serde_json::Value,
    ) -> Result<T, AtprotoError> {
        self.authed(|token| async move {
            self.xrpc
                .procedure(method, Body::Json(input), Auth::Bearer(token.expose()))
                .await
        })
        .await
    }
}
