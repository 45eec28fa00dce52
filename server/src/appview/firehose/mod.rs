//! Live updates: one `com.atproto.sync.subscribeRepos` WebSocket per PDS that hosts a
//! registered creator or is registered whole ([`super::hosts`]). This module runs the connections and applies events; [`frame`]
//! decodes frames and [`car`] reads a commit's blocks (each checked against its CID).
//!
//! Only events about registered DIDs, from the PDS their DID document names, and about
//! `place.stream.video` are applied: another PDS cannot write into a creator's index by
//! claiming their DID.
//!
//! Each host's cursor (`seq`) is stored as events are applied, at most once a second
//! otherwise, and the next connection resumes from it, so a restart misses nothing; a
//! replayed event is an idempotent upsert, so nothing is doubled. Connections are
//! retried with exponential backoff; when there is no usable cursor the host's creators
//! are re-synced to cover the gap. The 15-minute sync remains the safety net.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ipld_core::ipld::Ipld;
use serde::Serialize;
use tokio::sync::RwLock;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use url::Url;

mod car;
pub mod frame;

use frame::{Commit, Event, FrameError, RepoOp};

use super::AppView;
use super::record::{VIDEO_COLLECTION, parse_video};
use crate::atproto::syntax::{self, Did, now};

/// How often the set of hosts is reconciled even without a change notice.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// First and longest wait between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A connection that lasted this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// We ping an idle connection this often, and give up on it after this long in silence.
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// How often the cursor is stored while only irrelevant events arrive.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);
/// Largest frame accepted.
const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Who is followed where.
#[derive(Debug, Default)]
struct Followed {
    /// Registered DIDs and the host (PDS origin) each must come from.
    creators: HashMap<Did, String>,
    /// Registered hosts, whose new publishers are adopted.
    open: HashSet<String>,
}

type Hosts = Arc<RwLock<Followed>>;

/// One followed firehose, as `getStats` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseStatus {
    /// The PDS origin.
    pub host: String,
    /// Whether the WebSocket is open.
    pub connected: bool,
    /// The last stored cursor.
    pub cursor: Option<i64>,
    /// Why the last connection ended, if it failed.
    pub last_error: Option<String>,
}

impl AppView {
    /// The firehoses followed now.
    pub fn firehoses(&self) -> Vec<FirehoseStatus> {
        read(&self.firehoses).values().cloned().collect()
    }

    fn firehose_status(&self, host: &str, update: impl FnOnce(&mut FirehoseStatus)) {
        if let Some(status) = write(&self.firehoses).get_mut(host) {
            update(status);
        }
    }
}

fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Follows every relevant firehose until `shutdown`, adding and dropping hosts as
/// creators are registered, unregistered or migrate.
pub async fn run(appview: Weak<AppView>, shutdown: CancellationToken) {
    let hosts: Hosts = Arc::default();
    let mut following: HashMap<String, CancellationToken> = HashMap::new();
    loop {
        let Some(strong) = appview.upgrade() else {
            return;
        };
        let changed = strong.hosts_changed.clone();
        match followed(&strong).await {
            Ok(followed) => {
                let wanted: HashSet<String> = followed
                    .creators
                    .values()
                    .chain(&followed.open)
                    .cloned()
                    .collect();
                *hosts.write().await = followed;
                following.retain(|host, stop| {
                    let keep = wanted.contains(host);
                    if !keep {
                        tracing::info!(%host, "no registered creator or host left here; unsubscribing");
                        stop.cancel();
                        write(&strong.firehoses).remove(host);
                    }
                    keep
                });
                for host in wanted {
                    if let Entry::Vacant(entry) = following.entry(host.clone()) {
                        write(&strong.firehoses).insert(
                            host.clone(),
                            FirehoseStatus {
                                host: host.clone(),
                                connected: false,
                                cursor: None,
                                last_error: None,
                            },
                        );
                        let stop = shutdown.child_token();
                        tokio::spawn(follow(appview.clone(), host, hosts.clone(), stop.clone()));
                        entry.insert(stop);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot list creators and hosts for the firehose")
            }
        }
        drop(strong);
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(RECONCILE_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// The registered creators and hosts, as of now.
async fn followed(appview: &AppView) -> Result<Followed, crate::db::DbError> {
    let creators = appview
        .store
        .creators()
        .await?
        .into_iter()
        .filter_map(|c| Some((c.did, origin(c.pds_url.as_deref()?)?)))
        .collect();
    let open = appview
        .store
        .hosts()
        .await?
        .into_iter()
        .map(|host| host.host)
        .collect();
    Ok(Followed { creators, open })
}

/// `scheme://host[:port]` of a PDS URL: the key hosts are followed by.
fn origin(pds_url: &str) -> Option<String> {
    let url = Url::parse(pds_url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|origin| origin != "null")
}

/// Follows one host's firehose, reconnecting with backoff, until `stop`.
async fn follow(appview: Weak<AppView>, host: String, hosts: Hosts, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            result = connection(&appview, &host, &hosts) => result,
            () = stop.cancelled() => return,
        };
        let Some(strong) = appview.upgrade() else {
            return;
        };
        match &result {
            Ok(()) => tracing::info!(%host, "firehose closed; reconnecting"),
            Err(err) => tracing::warn!(%host, error = %err, "firehose failed; reconnecting"),
        }
        strong.firehose_status(&host, |status| {
            status.connected = false;
            status.last_error = result.err();
        });
        drop(strong);
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_MIN;
        }
        let jitter = Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_u128() as u16 % 250));
        tokio::select! {
            () = tokio::time::sleep(backoff + jitter) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: resume from the stored cursor and apply events until it ends.
async fn connection(appview: &Weak<AppView>, host: &str, hosts: &Hosts) -> Result<(), String> {
    let (http, cursor) = {
        let appview = appview.upgrade().ok_or("shutting down")?;
        let cursor = appview
            .store
            .cursor(host)
            .await
            .map_err(|err| err.to_string())?;
        (appview.http.clone(), cursor)
    };
    let mut url = Url::parse(host).map_err(|err| err.to_string())?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| "cannot make a WebSocket URL".to_string())?;
    url.set_path("/xrpc/com.atproto.sync.subscribeRepos");
    if let Some(seq) = cursor {
        url.query_pairs_mut()
            .append_pair("cursor", &seq.to_string());
    }
    let tcp = http
        .connect_tcp(&url)
        .await
        .map_err(|err| err.to_string())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let handshake =
        tokio_tungstenite::client_async_tls_with_config(url.as_str(), tcp, Some(config), None);
    let (mut socket, _) = tokio::time::timeout(http.policy().connect_timeout, handshake)
        .await
        .map_err(|_| "the WebSocket handshake timed out".to_string())?
        .map_err(|err| err.to_string())?;
    tracing::info!(%host, cursor = ?cursor, "following the firehose");
    if let Some(appview) = appview.upgrade() {
        appview.firehose_status(host, |status| {
            status.connected = true;
            status.cursor = cursor;
        });
    }
    if cursor.is_none()
        && let Some(appview) = appview.upgrade()
    {
        resync_host(&appview, host, hosts).await;
    }

    let mut position = Position {
        host: host.to_string(),
        latest: cursor,
        saved: cursor,
        saved_at: Instant::now(),
    };
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let outcome = loop {
        tokio::select! {
            message = socket.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Binary(frame))) => {
                        let Some(appview) = appview.upgrade() else { break Ok(()) };
                        match handle_frame(&appview, host, hosts, &frame, &mut position).await {
                            Ok(()) => {}
                            Err(FrameError::Fatal(why)) => break Err(why),
                            Err(FrameError::Skip(why)) => {
                                tracing::warn!(%host, error = %why, "skipped a firehose frame");
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => break Err(err.to_string()),
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break Err(format!("no answer for {SILENCE_LIMIT:?}"));
                }
                if let Err(err) = socket.send(Message::Ping(Vec::new().into())).await {
                    break Err(err.to_string());
                }
            }
        }
    };
    if let Some(appview) = appview.upgrade() {
        position.save(&appview, true).await;
    }
    outcome
}

/// Where a connection is in the host's event stream, and what of it is stored.
struct Position {
    host: String,
    latest: Option<i64>,
    saved: Option<i64>,
    saved_at: Instant,
}

impl Position {
    async fn advance(&mut self, appview: &AppView, seq: i64, relevant: bool) {
        self.latest = Some(seq);
        self.save(appview, relevant).await;
    }

    async fn save(&mut self, appview: &AppView, now: bool) {
        if self.latest == self.saved || !(now || self.saved_at.elapsed() >= CURSOR_SAVE_EVERY) {
            return;
        }
        match appview.store.save_cursor(&self.host, self.latest).await {
            Ok(()) => {
                self.saved = self.latest;
                self.saved_at = Instant::now();
                appview.firehose_status(&self.host, |status| status.cursor = self.latest);
            }
            Err(err) => {
                tracing::warn!(host = %self.host, error = %err, "cannot store the firehose cursor")
            }
        }
    }
}

async fn handle_frame(
    appview: &AppView,
    host: &str,
    hosts: &Hosts,
    frame: &[u8],
    position: &mut Position,
) -> Result<(), FrameError> {
    match frame::decode(frame)? {
        Event::Error { error, message } => {
            if error == "FutureCursor" {
                // Our cursor is ahead of the PDS (its event log was reset): start afresh.
                position.latest = None;
                position.save(appview, true).await;
            }
            return Err(FrameError::Fatal(format!(
                "the PDS sent {error}: {}",
                message.unwrap_or_default()
            )));
        }
        Event::Commit(commit) => {
            let seq = commit.seq;
            let lag = commit
                .time
                .as_deref()
                .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
                .and_then(|time| (chrono::Utc::now() - time.to_utc()).to_std().ok());
            appview.metrics.firehose_event(host, lag);
            let relevant = apply_commit(appview, host, hosts, commit).await?;
            position.advance(appview, seq, relevant).await;
        }
        Event::Account {
            seq,
            did,
            active,
            status,
        } => {
            let registered = registered_on(hosts, &did, host).await;
            if let Some(did) = &registered {
                let status = crate::atproto::repo::inactive_status(active, status);
                if let Err(err) = appview.set_account_status(did, status.as_deref()).await {
                    return Err(FrameError::Fatal(format!(
                        "cannot record {did}'s account status: {err}"
                    )));
                }
                if active {
                    // Records written while it was away: catch up.
                    resync(appview, did).await;
                }
            }
            position.advance(appview, seq, registered.is_some()).await;
        }
        Event::Repo { seq, did } => {
            let registered = registered_on(hosts, &did, host).await;
            if let Some(did) = &registered {
                // A handle change, a migration or a repo resync: sync the creator afresh.
                resync(appview, did).await;
            }
            position.advance(appview, seq, registered.is_some()).await;
        }
        Event::Info { name } => {
            if name == "OutdatedCursor" {
                // The PDS no longer has every event since our cursor: fill the gap.
                tracing::warn!(%host, "the stored cursor is too old; re-syncing this PDS's creators");
                resync_host(appview, host, hosts).await;
            }
        }
        Event::Other => {}
    }
    Ok(())
}

/// The DID of `repo` when it is a registered creator's whose PDS is `host`.
async fn registered_on(hosts: &Hosts, repo: &str, host: &str) -> Option<Did> {
    let did = syntax::did(repo).ok()?;
    let on_host = hosts
        .read()
        .await
        .creators
        .get(&did)
        .is_some_and(|expected| expected == host);
    on_host.then_some(did)
}

/// Applies a commit's video changes; returns whether it concerned a registered creator.
async fn apply_commit(
    appview: &AppView,
    host: &str,
    hosts: &Hosts,
    commit: Commit,
) -> Result<bool, FrameError> {
    let prefix = format!("{VIDEO_COLLECTION}/");
    let ops: Vec<&RepoOp> = commit
        .ops
        .iter()
        .filter(|op| op.path.starts_with(&prefix))
        .collect();
    let Some(did) = registered_on(hosts, &commit.repo, host).await else {
        // A repository on a registered host that starts publishing: adopt it (its sync
        // indexes this commit's records too).
        if !ops.is_empty()
            && hosts.read().await.open.contains(host)
            && let Ok(did) = syntax::did(&commit.repo)
        {
            match appview.adopt(&did, host).await {
                Ok(adopted) => return Ok(adopted),
                Err(err) => {
                    tracing::warn!(%did, %host, error = %err, "cannot adopt a new publisher")
                }
            }
        }
        return Ok(false);
    };
    if ops.is_empty() {
        return Ok(true);
    }
    if commit.too_big {
        resync(appview, &did).await;
        return Ok(true);
    }
    let blocks = match &commit.blocks {
        Ipld::Bytes(bytes) => car::read_car(bytes).await.map_err(FrameError::Skip)?,
        _ => return Err(FrameError::Skip("the commit has no blocks".into())),
    };
    let indexed_at = now();
    for op in ops {
        let rkey = &op.path[prefix.len()..];
        let uri = format!("at://{did}/{VIDEO_COLLECTION}/{rkey}");
        let video = match (op.action.as_str(), op.cid) {
            ("delete", _) => None,
            ("create" | "update", Some(cid)) => {
                let Some(value) = blocks.get(&cid) else {
                    tracing::warn!(%uri, "the commit lacks the record's block; re-syncing");
                    resync(appview, &did).await;
                    continue;
                };
                match parse_video(&did, rkey, &cid.into(), value, &indexed_at) {
                    Ok(video) => Some(video),
                    Err(invalid) => {
                        tracing::warn!(%uri, reason = %invalid.reason, "skipped an invalid video record");
                        if let Err(err) = appview.store.warn(&did, &invalid.to_string()).await {
                            tracing::warn!(error = %err, "cannot record a warning");
                        }
                        None
                    }
                }
            }
            (action, _) => {
                tracing::debug!(%uri, action, "ignored a repo operation");
                continue;
            }
        };
        match appview.store.apply(&uri, video.as_ref()).await {
            Ok(changed) => tracing::debug!(%uri, changed, "firehose change applied"),
            Err(err) => {
                return Err(FrameError::Fatal(format!("cannot apply {uri}: {err}")));
            }
        }
    }
    Ok(true)
}

async fn resync(appview: &AppView, did: &Did) {
    if let Err(err) = appview.submit_sync(did).await {
        tracing::warn!(%did, error = %err, "cannot start a sync");
    }
}

/// Syncs every creator on `host` (the stream has a gap we cannot replay).
async fn resync_host(appview: &AppView, host: &str, hosts: &Hosts) {
    let dids: Vec<Did> = hosts
        .read()
        .await
        .creators
        .iter()
        .filter(|(_, on)| on.as_str() == host)
        .map(|(did, _)| did.clone())
        .collect();
    for did in dids {
        resync(appview, &did).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wss://` goes through rustls, which panics at connect time if it cannot pick a
    /// crypto provider; the local PDS only speaks `ws://`, so check the TLS path here: a
    /// peer that hangs up mid-handshake must give an error, not a panic.
    #[tokio::test]
    async fn wss_connections_fail_cleanly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let outcome = tokio_tungstenite::client_async_tls_with_config(
            "wss://pds.example/xrpc/com.atproto.sync.subscribeRepos",
            tcp,
            None,
            None,
        )
        .await;
        assert!(outcome.is_err());
    }

    #[test]
    fn hosts_are_origins() {
        assert_eq!(
            origin("https://pds.example.com/").as_deref(),
            Some("https://pds.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:2583").as_deref(),
            Some("http://127.0.0.1:2583")
        );
        assert_eq!(origin("not a url"), None);
    }
}
