//! The real `streamhut` binary: it starts on a fresh data directory, serves, stops
//! gracefully on SIGTERM and SIGINT, and a second start on the same directory changes nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running server and the log lines it has printed so far.
struct Running {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts with `settings` (environment variables) on top of the defaults.
    fn start_with(data_dir: &Path, settings: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamhut"))
            .current_dir(data_dir)
            .env("STREAMHUT_LISTEN_ADDR", "127.0.0.1:0")
            .env("STREAMHUT_DATA_DIR", data_dir)
            .env("STREAMHUT_SITE_ROOT", data_dir)
            .env("ATRUN_HOME", data_dir.join("at-run"))
            .env("STREAMHUT_DEFAULT_CREATORS", "")
            .env("BSKY_PUBLIC_API_URL", "")
            .env("VOD_ORIGIN_URL", "http://127.0.0.1:9")
            .env("RUST_LOG", "info")
            .env_remove("TURSO_URL")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn streamhut");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line with {needle:?}; log so far:\n{}",
            self.log.join("\n")
        );
    }

    /// The address from the "listening" line.
    fn address(&mut self) -> String {
        let line = self.wait_for("Streamhut listening on http://");
        let start = line.find("http://").expect("url") + "http://".len();
        line[start..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
            .next()
            .expect("address")
            .to_string()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and asserts it exited cleanly.
    fn assert_exits_cleanly(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running 15 s after the signal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn health(address: &str) -> reqwest::StatusCode {
    reqwest::get(format!("http://{address}/healthz"))
        .await
        .expect("GET /healthz")
        .status()
}

/// Starts, migrates, serves, stops on SIGTERM; starts again without migrating, stops on SIGINT.
#[tokio::test]
async fn starts_serves_and_stops_gracefully_twice_on_one_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");

    let mut first = Running::start(dir.path());
    first.wait_for("database schema migrated");
    let address = first.address();
    assert_eq!(health(&address).await, reqwest::StatusCode::OK);
    assert!(dir.path().join("streamhut.db").exists());
    first.signal("TERM");
    first.wait_for("SIGTERM received");
    first.wait_for("Streamhut stopped");
    first.assert_exits_cleanly();

    let mut second = Running::start(dir.path());
    second.wait_for("database schema is up to date");
    let address = second.address();
    assert_eq!(health(&address).await, reqwest::StatusCode::OK);
    second.signal("INT");
    second.wait_for("Streamhut stopped");
    second.assert_exits_cleanly();
}

/// `STREAMHUT_LOG_FORMAT=json`: every line is one JSON object; each request has an id
/// (the caller's when it is a plain token, else a new one), echoed and in its log line
/// with the latency as a number. A token read from `ADMIN_TOKEN_FILE` works and is never
/// logged.
#[tokio::test]
async fn json_logs_carry_request_ids_and_secrets_come_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, "file-held-admin-token\n").expect("write token");
    let token_path = token_file.to_str().expect("utf-8");
    let mut server = Running::start_with(
        dir.path(),
        &[
            ("STREAMHUT_LOG_FORMAT", "json"),
            ("ADMIN_TOKEN_FILE", token_path),
        ],
    );
    let address = server.address();
    let client = reqwest::Client::new();

    let echoed = client
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", "proxy-42.a")
        .send()
        .await
        .expect("healthz");
    assert_eq!(echoed.headers()["x-request-id"], "proxy-42.a");
    let replaced = client
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", "<script> two words")
        .send()
        .await
        .expect("healthz");
    let fresh = replaced.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(fresh).is_ok(), "{fresh}");
    let minted = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(minted.headers().contains_key("x-request-id"));

    let admin = client
        .post(format!("http://{address}/api/appview/registerCreator"))
        .bearer_auth("file-held-admin-token")
        .json(&serde_json::json!({ "actor": "not a handle!" }))
        .send()
        .await
        .expect("registerCreator");
    assert_eq!(admin.status(), reqwest::StatusCode::BAD_REQUEST);
    let outsider = client
        .post(format!("http://{address}/api/appview/registerCreator"))
        .bearer_auth("guess")
        .json(&serde_json::json!({ "actor": "not a handle!" }))
        .send()
        .await
        .expect("registerCreator");
    assert_eq!(outsider.status(), reqwest::StatusCode::UNAUTHORIZED);

    let line = server.wait_for("proxy-42.a");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(event["span"]["request_id"], "proxy-42.a", "{line}");
    assert_eq!(event["status"], 200, "{line}");
    assert!(event["latency_ms"].is_f64(), "{line}");
    server.wait_for(fresh);
    server.signal("TERM");
    server.wait_for("Streamhut stopped");
    server.assert_exits_cleanly();
    for line in &server.log {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
            "not one JSON object: {line}"
        );
        assert!(!line.contains("file-held-admin-token"), "{line}");
    }
}

/// Many pages requested at once over HTTP all complete with 200: no render waits forever
/// or panics. (A search-page title read from a disposed reactive value once left about 5%
/// of concurrent searches without any response.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_page_requests_all_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Running::start(dir.path());
    let address = server.address();
    let client = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..400 {
        let url = match i % 3 {
            0 => format!("http://{address}/?n={i}"),
            1 => format!("http://{address}/search?q=talk+{i}"),
            _ => format!("http://{address}/search"),
        };
        let client = client.clone();
        requests.spawn(async move {
            let response = client
                .get(&url)
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .map_err(|err| format!("{url}: {err}"))?;
            let status = response.status();
            response
                .text()
                .await
                .map_err(|err| format!("{url}: {err}"))?;
            Ok::<_, String>(status)
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = requests.join_next().await {
        match result.expect("request task") {
            Ok(status) if status == reqwest::StatusCode::OK => {}
            Ok(status) => failures.push(format!("status {status}")),
            Err(err) => failures.push(err),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 400 failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    server.signal("TERM");
    server.assert_exits_cleanly();
}

/// A configuration error is reported, not a panic, and the process fails.
#[test]
fn a_bad_setting_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_streamhut"))
        .env("STREAMHUT_LISTEN_ADDR", "not-an-address")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen-addr"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Sign-in attempts from one client, through a proxy, as the server counts them: 429s
/// among the answers to `attempts` sign-ins with `forwarded_for`.
async fn refused_sign_ins(address: &str, forwarded_for: &str, attempts: usize) -> usize {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut refused = 0;
    for _ in 0..attempts {
        let status = client
            .post(format!("http://{address}/admin/login"))
            .header("x-forwarded-for", forwarded_for)
            .form(&[("identifier", "not a handle"), ("password", "x")])
            .send()
            .await
            .expect("POST /admin/login")
            .status();
        refused += usize::from(status == reqwest::StatusCode::TOO_MANY_REQUESTS);
    }
    refused
}

/// Without `TRUSTED_PROXIES`, `X-Forwarded-For` is the client's own claim and changes
/// nothing; with it, each client behind the proxy has its own sign-in bucket, and a
/// client cannot escape its bucket by prepending addresses.
#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut direct = Running::start(dir.path());
    let address = direct.address();
    // The burst is 3; a forged header on the fourth attempt is still the same client.
    assert_eq!(refused_sign_ins(&address, "198.51.100.1", 3).await, 0);
    assert_eq!(refused_sign_ins(&address, "198.51.100.2", 1).await, 1);
    drop(direct);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut proxied = Running::start_with(dir.path(), &[("TRUSTED_PROXIES", "127.0.0.1")]);
    let address = proxied.address();
    assert_eq!(refused_sign_ins(&address, "198.51.100.1", 3).await, 0);
    assert_eq!(refused_sign_ins(&address, "198.51.100.1", 1).await, 1);
    // Another client behind the same proxy is not locked out...
    assert_eq!(refused_sign_ins(&address, "198.51.100.2", 3).await, 0);
    // ...and the first cannot pass as someone else by prepending an address.
    assert_eq!(
        refused_sign_ins(&address, "203.0.113.50, 198.51.100.1", 1).await,
        1
    );
    let line = proxied.wait_for("client=198.51.100.2");
    assert!(line.contains("/admin/login"), "{line}");
}

/// Connections that trickle their request head, or send nothing, are closed after the
/// header-read timeout, and the server keeps answering others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut server =
        Running::start_with(dir.path(), &[("STREAMHUT_HEADER_READ_TIMEOUT_SECS", "1")]);
    let address = server.address();
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..200 {
        let address = address.clone();
        slow.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&address)
                .await
                .expect("connect");
            // Half send part of a head; half send nothing at all.
            if i % 2 == 0 {
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .expect("write");
            }
            // Never finishes the head: the server must hang up.
            let mut buf = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
                .await
                .is_ok()
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health(&address).await, reqwest::StatusCode::OK);
    let mut closed = 0;
    while let Some(result) = slow.join_next().await {
        closed += usize::from(result.expect("slow client"));
    }
    assert_eq!(closed, 200, "every slow connection was closed within 10 s");
}
