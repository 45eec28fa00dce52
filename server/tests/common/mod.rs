//! Shared set-up for the integration tests: a server on a fresh database in a temporary
//! data directory, driven in-process through `tower::ServiceExt::oneshot`.

#![allow(dead_code)] // each test binary uses its own subset

pub mod atrun;
pub mod instance;
pub mod network;
pub mod origin;
pub mod runner;
pub mod sqld;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use server::config::Config;
use server::db::Db;
use server::services::Services;
use server::web::{self, AppState};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Held for reading while a request is served, for writing while a router is built: see
/// `web::router` on why building a router must not overlap rendering.
static RENDERING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The admin token of test beds.
pub const BED_ADMIN_TOKEN: &str = "bed-admin-token-0123456789abcdef";

/// A migrated database in a temporary directory, and the router over it.
pub struct TestBed {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub db: Db,
    pub router: Router,
    pub services: Services,
}

/// What a request returned.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

impl TestBed {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_for(&dir);
        let db = Db::open(&config.database()).await.expect("open database");
        db.migrate().await.expect("migrate");
        Self::with_db(dir, config, db).await
    }

    pub async fn with_db(dir: tempfile::TempDir, config: Config, db: Db) -> Self {
        let building = RENDERING.write().await;
        let services = Services::start(&config, db.clone(), &CancellationToken::new())
            .await
            .expect("services");
        let router = web::router(AppState::new(&config, &services));
        drop(building);
        Self {
            dir,
            config,
            db,
            router,
            services,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let _rendering = RENDERING.read().await;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // A sitemap page of 50 000 videos is some 35 MB.
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .expect("body");
        Reply {
            status,
            content_type,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Inserts a creator (if new) and one of their videos.
    pub async fn add_video(
        &self,
        did: &str,
        handle: &str,
        rkey: &str,
        title: &str,
        description: &str,
        created_at: &str,
    ) {
        let uri = format!("at://{did}/place.stream.video/{rkey}");
        // A CID of its own, as a record version has.
        let cid = server::atproto::blob::blob_cid(uri.as_bytes()).to_string();
        let conn = self.db.conn();
        conn.execute(
            "INSERT OR IGNORE INTO creators (did, handle, registered_at) VALUES (?1, ?2, ?3)",
            libsql::params![did, handle, created_at],
        )
        .await
        .expect("insert creator");
        conn.execute(
            "INSERT INTO videos (uri, cid, did, rkey, title, description, duration_ms, created_at, indexed_at)
             VALUES (?1, ?7, ?2, ?3, ?4, ?5, 754000, ?6, ?6)",
            libsql::params![uri.as_str(), did, rkey, title, description, created_at, cid],
        )
        .await
        .expect("insert video");
    }
}

/// The first column of the first row `sql` gives (a count, say).
pub async fn count(db: &Db, sql: &str, params: impl libsql::params::IntoParams) -> i64 {
    let mut rows = db.conn().query(sql, params).await.expect("query");
    rows.next()
        .await
        .expect("row")
        .expect("a row")
        .get(0)
        .expect("a number")
}

/// A configuration whose data directory is `dir`.
pub fn config_for(dir: &tempfile::TempDir) -> Config {
    let data_dir = dir.path().display().to_string();
    Config::from_args([
        "streamhut",
        "--data-dir",
        &data_dir,
        "--site-root",
        &data_dir,
        "--bsky-public-api-url",
        "",
        "--default-creators",
        "",
        "--vod-origin-url",
        "http://127.0.0.1:9",
        "--admin-token",
        BED_ADMIN_TOKEN,
        // Every request of an in-process test comes from one address: tests that want
        // the limit on set it themselves.
        "--task-rate-limit",
        "0",
    ])
    .expect("config")
}
