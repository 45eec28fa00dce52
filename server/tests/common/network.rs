//! A real local AT Protocol network (PLC + PDS from npm, `end2end/network/launch.mjs`),
//! one per test binary, started on first use, with a fresh account per test.
//!
//! The launcher exits when its stdin closes. The pipe to it lives as long as this test
//! process, so the network goes away however the tests end (success, panic, SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use server::atproto::identity::{IdentityOptions, IdentityResolver};
use server::atproto::net::{HttpClient, HttpPolicy};
use server::atproto::xrpc::XrpcClient;
use url::Url;

/// The running network.
pub struct Network {
    pub pds_url: Url,
    pub plc_url: Url,
    /// How long the launcher took to print READY.
    pub ready_in: Duration,
    accounts: AtomicU32,
    // Held, never written: closing it stops the launcher.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// A fresh account on the network's PDS.
#[derive(Debug, Clone)]
pub struct Account {
    pub did: String,
    pub handle: String,
    pub password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ready {
    pds_url: Url,
    plc_url: Url,
}

static NETWORK: OnceLock<Network> = OnceLock::new();

/// The network of this test binary, started on first use.
pub fn network() -> &'static Network {
    NETWORK.get_or_init(Network::start)
}

impl Network {
    fn start() -> Self {
        let end2end = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end");
        assert!(
            end2end.join("node_modules/@atproto/pds").exists(),
            "the local network needs its npm packages: run `npm ci` in end2end/ \
             (scripts/test.sh does this)"
        );
        let started = Instant::now();
        let mut child = Command::new("node")
            .arg("network/launch.mjs")
            .current_dir(&end2end)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node end2end/network/launch.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("READY ") {
                    let _ = tx.send(json.to_string());
                }
            }
        });
        let json = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the network did not print READY within 60 s");
        let ready: Ready = serde_json::from_str(&json).expect("READY json");
        let ready_in = started.elapsed();
        eprintln!(
            "local AT Protocol network ready in {ready_in:?}: PDS {}, PLC {}",
            ready.pds_url, ready.plc_url
        );
        Self {
            pds_url: ready.pds_url,
            plc_url: ready.plc_url,
            ready_in,
            accounts: AtomicU32::new(0),
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    }

    /// An HTTP client allowed to reach loopback, as tests need.
    pub fn http(&self) -> HttpClient {
        HttpClient::new(HttpPolicy {
            allow_private_network: true,
            ..HttpPolicy::default()
        })
        .expect("http client")
    }

    /// The server flags that point it at this network (and let it reach loopback).
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--plc-url".into(),
            self.plc_url.to_string(),
            "--handle-resolver-url".into(),
            self.pds_url.to_string(),
            "--allow-private-network".into(),
            "true".into(),
        ]
    }

    /// Creates `values` in `session`'s `collection` with `com.atproto.repo.applyWrites`,
    /// 200 at a time; returns their AT-URIs in order.
    pub async fn apply_writes(
        &self,
        session: &server::atproto::session::Session,
        collection: &str,
        values: &[serde_json::Value],
    ) -> Vec<String> {
        let mut uris = Vec::new();
        for chunk in values.chunks(200) {
            let writes: Vec<serde_json::Value> = chunk
                .iter()
                .map(|value| {
                    json!({
                        "$type": "com.atproto.repo.applyWrites#create",
                        "collection": collection,
                        "value": value,
                    })
                })
                .collect();
            let response = reqwest::Client::new()
                .post(
                    self.pds_url
                        .join("/xrpc/com.atproto.repo.applyWrites")
                        .expect("url"),
                )
                .bearer_auth(session.access_jwt.expose())
                .json(&json!({ "repo": session.did, "writes": writes }))
                .send()
                .await
                .expect("applyWrites");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("applyWrites JSON");
            assert!(status.is_success(), "applyWrites: {status} {body}");
            for result in body["results"].as_array().expect("results") {
                uris.push(result["uri"].as_str().expect("uri").to_string());
            }
        }
        uris
    }

    /// `account`, signed in on the PDS.
    pub async fn login(&self, account: &Account) -> server::atproto::session::Agent {
        server::atproto::session::Agent::login(
            self.pds(),
            &account.handle,
            &server::secret::Secret::new(account.password.clone()),
        )
        .await
        .expect("login")
    }

    /// A client for the PDS.
    pub fn pds(&self) -> XrpcClient {
        XrpcClient::new(self.http(), self.pds_url.clone())
    }

    /// An identity resolver pointed at this network, with handles resolved by the PDS.
    pub fn resolver(&self) -> IdentityResolver {
        IdentityResolver::new(
            self.http(),
            IdentityOptions {
                plc_url: self.plc_url.clone(),
                handle_resolver_url: Some(self.pds_url.clone()),
                cache_ttl: Duration::from_secs(60),
                dns: false,
            },
        )
    }

    /// Creates an account whose handle starts with `name` (at most 8 characters).
    pub async fn create_account(&self, name: &str) -> Account {
        let n = self.accounts.fetch_add(1, Ordering::Relaxed);
        let handle = format!("{name}{n}.test");
        let password = format!("pw-{name}-{n}-{}", std::process::id());
        let response = reqwest::Client::new()
            .post(
                self.pds_url
                    .join("/xrpc/com.atproto.server.createAccount")
                    .expect("url"),
            )
            .json(&json!({
                "handle": handle,
                "email": format!("{name}{n}@example.com"),
                "password": password,
            }))
            .send()
            .await
            .expect("createAccount");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("createAccount json");
        assert!(
            status.is_success(),
            "createAccount {handle}: {status} {body}"
        );
        Account {
            did: body["did"].as_str().expect("did").to_string(),
            handle,
            password,
        }
    }
}
