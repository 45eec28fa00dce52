//! A real server (a TCP listener and the whole service stack, as in production) on the
//! local network, and helpers that write `place.stream.video` records.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::atproto::session::Agent;
use server::config::Config;
use server::db::Db;
use server::services::Services;
use server::web::{self, AppState};
use tokio_util::sync::CancellationToken;

use super::network::network;

/// The admin token the test servers accept.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running server.
pub struct Server {
    pub url: String,
    pub shutdown: CancellationToken,
    pub services: Services,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    tasks: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts a server on `data_dir` with the local network's settings plus `extra` flags.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let net = network();
        let data = data_dir.display().to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let network_args = net.server_args();
        let mut args = vec![
            "streamhut",
            "--public-url",
            &url,
            "--data-dir",
            &data,
            "--site-root",
            &data,
            "--admin-token",
            ADMIN_TOKEN,
        ];
        // Tests never reach the internet: no public profile API unless a test names one.
        if !extra.contains(&"--bsky-public-api-url") {
            args.extend(["--bsky-public-api-url", ""]);
        }
        if !extra.contains(&"--default-creators") {
            args.extend(["--default-creators", ""]);
        }
        if !extra.contains(&"--vod-origin-url") {
            args.extend(["--vod-origin-url", "http://127.0.0.1:9"]);
        }
        args.extend(network_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let config = Config::from_args(args).expect("config");
        let db = Db::open(&config.database()).await.expect("db");
        db.migrate().await.expect("migrate");
        let shutdown = CancellationToken::new();
        let services = Services::start(&config, db, &shutdown)
            .await
            .expect("services");
        let tasks = services.tasks.start(shutdown.clone());
        let state = AppState::new(&config, &services);
        let served = tokio::spawn(web::serve(
            listener,
            state,
            std::time::Duration::from_secs(config.header_read_timeout_secs),
            shutdown.clone(),
        ));
        Self {
            url,
            shutdown,
            services,
            served,
            tasks,
        }
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.served.await;
        let _ = self.tasks.await;
    }

    /// A client without cookies or credentials.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Registers `actor` as an admin would and waits for its first sync; returns the sync
    /// task's view.
    pub async fn register(&self, actor: &str) -> Value {
        let (status, registered) = self
            .admin_post("registerCreator", serde_json::json!({ "actor": actor }))
            .await;
        assert_eq!(status, 200, "{registered}");
        self.wait_task(registered["taskId"].as_str().expect("taskId"))
            .await
    }

    /// `POST /api/appview/{method}` with the admin token; returns status and JSON.
    pub async fn admin_post(&self, method: &str, body: Value) -> (u16, Value) {
        let response = self
            .client()
            .post(format!("{}/api/appview/{method}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /api/appview/{path}`; returns status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client()
            .get(format!("{}/api/appview/{path}", self.url))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the firehose of `host` (the first one when `None`) is connected.
    pub async fn firehose_connected(&self, host: Option<&str>, limit: Duration) {
        within(limit, "the firehose connection", || async {
            let (_, stats) = self.get("getStats").await;
            stats["firehoses"].as_array().is_some_and(|hoses| {
                hoses.iter().any(|hose| {
                    hose["connected"] == true && host.is_none_or(|host| hose["host"] == host)
                })
            })
        })
        .await;
    }

    /// Waits for a task to finish and returns its view.
    pub async fn wait_task(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view: Value = self
                .client()
                .get(format!("{}/api/tasks/{id}?wait=10", self.url))
                .send()
                .await
                .expect("GET task")
                .json()
                .await
                .expect("task JSON");
            if matches!(view["status"].as_str(), Some("complete" | "failed")) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never finished: {view}"
            );
        }
    }

    /// Every video of `did`, following cursors; panics on a duplicate.
    pub async fn all_videos(&self, did: &str) -> Vec<Value> {
        let mut videos: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let creator: String = url::form_urlencoded::byte_serialize(did.as_bytes()).collect();
            let mut path = format!("listVideos?limit=100&creator={creator}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "{page}");
            videos.extend(page["videos"].as_array().cloned().unwrap_or_default());
            match page["cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let mut uris: Vec<&str> = videos.iter().filter_map(|v| v["uri"].as_str()).collect();
        uris.sort_unstable();
        let before = uris.len();
        uris.dedup();
        assert_eq!(before, uris.len(), "duplicate videos in listVideos");
        videos
    }
}

/// Polls `check` every 100 ms until it holds or `limit` passes; returns the time taken.
pub async fn within<F, Fut>(
    limit: std::time::Duration,
    what: &str,
    mut check: F,
) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A valid video record.
pub fn video(title: &str, n: u64) -> Value {
    json!({
        "$type": "place.stream.video",
        "title": title,
        "description": format!("Recording number {n} of the test series"),
        "durationMs": 60_000 + n,
        "createdAt": format!("2026-01-01T00:{:02}:{:02}.000Z", (n / 60) % 60, n % 60),
    })
}

/// Creates `records` in `agent`'s `place.stream.video` collection; returns their record
/// keys in order.
pub async fn publish(agent: &Agent, records: &[Value]) -> Vec<String> {
    let session = agent.session().await;
    network()
        .apply_writes(&session, "place.stream.video", records)
        .await
        .into_iter()
        .map(|uri| uri.rsplit('/').next().expect("rkey").to_string())
        .collect()
}
