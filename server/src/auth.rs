//! Admin authentication: who may change the index.
//!
//! Admins are the DIDs in `ADMIN_DIDS`. A person signs in at `/admin` with their handle
//! and an app password, which we pass to `com.atproto.server.createSession` on *their
//! own* PDS (as their DID document names it) and then forget: only the fact that the PDS
//! accepted it for that DID is kept, in a signed, HttpOnly, `SameSite=Lax` cookie. API
//! clients send `Authorization: Bearer $ADMIN_TOKEN` instead.
//!
//! Cookie-authenticated writes are refused when they come from another site (CSRF): by
//! `Sec-Fetch-Site` when the browser sends it, else by comparing `Origin` with the host
//! the request was sent to. Bearer requests are not exposed to CSRF (browsers never add
//! that header on their own).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use sha2::{Digest, Sha256, Sha512};

use crate::api::XrpcError;
use crate::atproto::AtprotoError;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::atproto::session::Agent;
use crate::atproto::syntax::{self, Did};
use crate::atproto::xrpc::XrpcClient;
use crate::config::Config;
use crate::db::{Db, DbError, parsed};
use crate::secret::Secret;

/// The session cookie.
pub const COOKIE: &str = "streamhut_admin";
/// How long a sign-in lasts.
const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest `STREAMHUT_SESSION_SECRET` accepted.
const MIN_SECRET_CHARS: usize = 32;

/// Who may do admin actions, and their sessions: a random id in a signed cookie, valid
/// while its row in `admin_sessions` exists and has not expired.
#[derive(Clone)]
pub struct AdminAuth {
    admins: HashSet<Did>,
    token: Option<BearerToken>,
    key: Key,
    secure_cookie: bool,
    db: Db,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("admins", &self.admins)
            .finish_non_exhaustive()
    }
}

/// Why admin settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The configured secret is too short.
    #[error("STREAMHUT_SESSION_SECRET must be at least {MIN_SECRET_CHARS} characters")]
    ShortSecret,
    /// The generated key could not be read or written.
    #[error("session key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// An authenticated admin request: by token, or by a signed-in admin DID.
#[derive(Debug, Clone)]
pub enum Admin {
    /// `Authorization: Bearer $ADMIN_TOKEN`.
    Token,
    /// A signed-in admin.
    Did(Did),
}

impl std::fmt::Display for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token => f.write_str("the admin token"),
            Self::Did(did) => f.write_str(did.as_str()),
        }
    }
}

impl AdminAuth {
    /// Admin settings from `config`; the cookie key is `STREAMHUT_SESSION_SECRET`, or one
    /// generated once into the data directory.
    pub fn from_config(config: &Config, db: Db) -> Result<Self, AuthSetupError> {
        let key = match &config.session_secret {
            Some(secret) if secret.expose().chars().count() < MIN_SECRET_CHARS => {
                return Err(AuthSetupError::ShortSecret);
            }
            Some(secret) => Key::from(&Sha512::digest(secret.expose().as_bytes())),
            None => stored_key(&config.data_dir.join("session.key"))?,
        };
        Ok(Self {
            admins: config
                .admin_dids
                .iter()
                .map(|did| did.trim())
                .filter(|did| !did.is_empty())
                .filter_map(|did| match syntax::did(did) {
                    Ok(did) => Some(did),
                    Err(err) => {
                        tracing::warn!(error = %err, "ignoring an ADMIN_DIDS entry");
                        None
                    }
                })
                .collect(),
            token: config.admin_token.as_ref().and_then(BearerToken::new),
            key,
            secure_cookie: config.public_url().starts_with("https://"),
            db,
        })
    }

    /// Whether `did` is an admin.
    pub fn is_admin(&self, did: &Did) -> bool {
        self.admins.contains(did)
    }

    /// The session id in the signed cookie of `headers`.
    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let jar = SignedCookieJar::from_headers(headers, self.key.clone());
        let id = jar.get(COOKIE)?.value().to_string();
        (id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
    }

    /// The signed-in DID of the session cookie in `headers`, if its session is live.
    pub async fn session(&self, headers: &HeaderMap) -> Result<Option<Did>, DbError> {
        let Some(id) = self.session_id(headers) else {
            return Ok(None);
        };
        let mut rows = self
            .db
            .conn()
            .query(
                "SELECT did FROM admin_sessions WHERE id = ?1 AND expires_at > ?2",
                libsql::params![id, chrono::Utc::now().timestamp()],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(parsed(&row, 0, "DID")?)),
            None => Ok(None),
        }
    }

    /// Starts a session for `did`: a cookie jar holding it.
    pub async fn sign_in(&self, did: &Did) -> Result<SignedCookieJar, DbError> {
        let now = chrono::Utc::now().timestamp();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let conn = self.db.conn();
        conn.execute(
            "DELETE FROM admin_sessions WHERE expires_at <= ?1",
            libsql::params![now],
        )
        .await?;
        conn.execute(
            "INSERT INTO admin_sessions (id, did, expires_at) VALUES (?1, ?2, ?3)",
            libsql::params![id.clone(), did.as_str(), now + SESSION_TTL.as_secs() as i64],
        )
        .await?;
        let cookie = Cookie::build((COOKIE, id))
            .path("/")
            .http_only(true)
            .secure(self.secure_cookie)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(SESSION_TTL.as_secs() as i64))
            .build();
        Ok(SignedCookieJar::new(self.key.clone()).add(cookie))
    }

    /// Ends the session of `headers` on the server, and returns the request's cookie jar
    /// with the cookie removed (the response tells the browser to drop it).
    pub async fn sign_out(&self, headers: &HeaderMap) -> Result<SignedCookieJar, DbError> {
        if let Some(id) = self.session_id(headers) {
            self.db
                .conn()
                .execute(
                    "DELETE FROM admin_sessions WHERE id = ?1",
                    libsql::params![id],
                )
                .await?;
        }
        Ok(SignedCookieJar::from_headers(headers, self.key.clone())
            .remove(Cookie::build(COOKIE).path("/").build()))
    }

    /// Who is asking, as far as admin rights go.
    pub async fn check(&self, parts: &Parts) -> Result<Admin, XrpcError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let matches = self
                .token
                .as_ref()
                .is_some_and(|token| token.matches(value));
            return if matches {
                Ok(Admin::Token)
            } else {
                Err(XrpcError::new(
                    StatusCode::UNAUTHORIZED,
                    "InvalidToken",
                    "the bearer token is not this server's admin token",
                ))
            };
        }
        let session = self
            .session(&parts.headers)
            .await
            .map_err(|err| XrpcError::unavailable("sign-in", err))?;
        let Some(did) = session else {
            return Err(XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AuthRequired",
                "sign in as an admin at /admin, or send Authorization: Bearer <ADMIN_TOKEN>",
            ));
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) && is_cross_site(&parts.headers) {
            return Err(XrpcError::new(
                StatusCode::FORBIDDEN,
                "CrossSiteRequest",
                "admin actions must come from this site's own pages",
            ));
        }
        if self.is_admin(&did) {
            Ok(Admin::Did(did))
        } else {
            Err(XrpcError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("{did} is signed in but is not an admin of this server"),
            ))
        }
    }
}

/// Checks `identifier`'s app password against their own PDS; returns their DID.
pub async fn verify_password(
    identity: &IdentityResolver,
    http: &HttpClient,
    identifier: &str,
    password: &Secret,
) -> Result<Did, XrpcError> {
    let identifier = identifier.trim().trim_start_matches('@');
    let actor = crate::atproto::syntax::actor(identifier)
        .map_err(|_| XrpcError::invalid_request("enter your handle (like alice.bsky.social)"))?;
    let account = identity.resolve(&actor).await.map_err(|err| {
        if err.is_input_error() {
            XrpcError::invalid_request(format!("{identifier} cannot sign in here: {err}"))
        } else if err.is_not_found() || matches!(err, AtprotoError::HandleMismatch { .. }) {
            XrpcError::invalid_request(format!("cannot find the account {identifier}"))
        } else {
            tracing::warn!(error = %err, "sign-in: identity resolution failed");
            XrpcError::new(
                StatusCode::BAD_GATEWAY,
                "UpstreamFailure",
                "could not reach the account's PDS; try again shortly",
            )
        }
    })?;
    let did = account.did;
    let agent = Agent::login(XrpcClient::new(http.clone(), account.pds), &did, password)
        .await
        .map_err(|err| match err {
            AtprotoError::AuthFailed { .. } => XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AuthFailed",
                "the handle or app password is wrong",
            ),
            other => {
                tracing::warn!(error = %other, "sign-in: createSession failed");
                XrpcError::new(
                    StatusCode::BAD_GATEWAY,
                    "UpstreamFailure",
                    "the account's PDS did not answer the sign-in; try again shortly",
                )
            }
        })?;
    // The PDS vouches only for the account it hosts.
    if agent.did().await != did.as_str() {
        return Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AuthFailed",
            "the PDS signed in a different account",
        ));
    }
    Ok(did)
}

/// Whether a browser sent this request from another site.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(authorization: &HeaderValue) -> Option<&str> {
    authorization
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A bearer token a client must send (`Authorization: Bearer …`), kept as its digest
/// and compared in constant time.
#[derive(Clone)]
pub struct BearerToken([u8; 32]);

impl BearerToken {
    /// The token `secret`; none when it is blank.
    pub fn new(secret: &Secret) -> Option<Self> {
        let token = secret.expose().trim();
        (!token.is_empty()).then(|| Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn matches(&self, authorization: &HeaderValue) -> bool {
        let Some(token) = bearer(authorization) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(subtle::ConstantTimeEq::ct_eq(&digest[..], &self.0[..]))
    }
}

/// The generated cookie key in `path`, created (0600) on first use.
fn stored_key(path: &Path) -> Result<Key, AuthSetupError> {
    let key_error = |source| AuthSetupError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 64 => Ok(Key::from(&bytes[..64])),
        Ok(_) => Err(key_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "shorter than 64 bytes; delete it to generate a new key",
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            crate::fsutil::write_private(path, key.master()).map_err(key_error)?;
            Ok(key)
        }
        Err(err) => Err(key_error(err)),
    }
}
