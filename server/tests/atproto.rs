//! The AT Protocol layer against a real local PDS and PLC (see `common/network.rs`), plus
//! tiny local servers for the failure cases a real PDS does not produce.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use common::network::network;
use futures::TryStreamExt;
use serde_json::json;
use server::atproto::AtprotoError;
use server::atproto::blob::blob_cid;
use server::atproto::net::{HttpClient, HttpPolicy, NetError};
use server::atproto::records::{BUNDLE_NSID, BundleRecord};
use server::atproto::session::Agent;
use server::atproto::xrpc::XrpcClient;
use server::secret::Secret;
use tokio::net::TcpListener;
use url::Url;

async fn login(name: &str) -> (common::network::Account, Agent) {
    let account = network().create_account(name).await;
    let agent = network().login(&account).await;
    (account, agent)
}

/// Serves `router` on a free loopback port and returns its base URL.
async fn serve(router: Router) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Url::parse(&format!("http://{addr}")).expect("url")
}

/// The launcher is quick enough to start once per test binary.
#[tokio::test]
async fn the_network_starts_quickly() {
    let net = network();
    assert!(net.pds_url.as_str().starts_with("http://localhost:"));
    eprintln!("launcher ready in {:?}", net.ready_in);
    assert!(net.ready_in < Duration::from_secs(30), "{:?}", net.ready_in);
}

/// Sign-in, a write, an explicit refresh (the old refresh token is then dead), and a
/// transparent refresh when the access token is refused.
#[tokio::test]
async fn session_signs_in_refreshes_and_recovers_from_a_refused_token() {
    let (account, agent) = login("sess").await;
    let first = agent.session().await;
    assert_eq!(first.did, account.did);
    assert_eq!(first.handle, account.handle);
    assert!(
        !format!("{first:?}").contains(first.access_jwt.expose()),
        "tokens never print"
    );

    agent.refresh().await.expect("refresh");
    let second = agent.session().await;
    // Access tokens carry no nonce (two in one second can be equal); refresh tokens rotate.
    assert_ne!(second.refresh_jwt, first.refresh_jwt);
    let written = agent
        .create_record(
            "dev.streamhut.test",
            None,
            &json!({"$type": "dev.streamhut.test", "n": 0}),
        )
        .await
        .expect("write with refreshed tokens");
    assert!(written.uri.starts_with(&format!("at://{}/", account.did)));

    let garbage = server::atproto::session::Session {
        refresh_jwt: Secret::new("garbage"),
        ..first.clone()
    };
    let err = Agent::resume(network().pds(), garbage)
        .refresh()
        .await
        .expect_err("an invalid refresh token");
    assert!(matches!(err, AtprotoError::AuthFailed { .. }), "{err}");

    // A refused access token is refreshed once, transparently.
    let broken = server::atproto::session::Session {
        access_jwt: Secret::new("not-a-valid-token"),
        ..second.clone()
    };
    let agent = Agent::resume(network().pds(), broken);
    let written = agent
        .create_record(
            "dev.streamhut.test",
            None,
            &json!({"$type": "dev.streamhut.test", "n": 1}),
        )
        .await
        .expect("write after transparent refresh");
    assert!(written.uri.starts_with(&format!("at://{}/", account.did)));
    assert_ne!(
        agent.session().await.access_jwt.expose(),
        "not-a-valid-token"
    );

    let err = Agent::login(
        network().pds(),
        &account.handle,
        &Secret::new("wrong password"),
    )
    .await
    .expect_err("wrong password");
    assert!(matches!(err, AtprotoError::AuthFailed { .. }), "{err}");
    assert!(!err.to_string().contains("wrong password"));
}

/// A blob goes up with its content type and comes back byte-identical, its CID checked.
#[tokio::test]
async fn blobs_round_trip_with_their_cid_verified() {
    let (account, agent) = login("blob").await;
    let bytes: Bytes = (0..200_000u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let blob = agent
        .upload_blob(bytes.clone(), "application/javascript")
        .await
        .expect("upload");
    assert_eq!(blob.cid, blob_cid(&bytes));
    assert_eq!(blob.mime_type, "application/javascript");
    assert_eq!(blob.size, bytes.len() as u64);

    // A PDS serves only blobs that a record references.
    let record = BundleRecord {
        name: "blobtest".into(),
        version: "1.0.0".into(),
        code: blob.clone(),
        entry: "main.ts".into(),
        created_at: "2026-11-21T10:00:00.000Z".into(),
        manifest: None,
    };
    agent
        .create_record(BUNDLE_NSID, None, &record)
        .await
        .expect("record");

    let did = server::atproto::syntax::did(&account.did).expect("did");
    let fetched = network()
        .pds()
        .get_blob(&did, &blob.cid, 1024 * 1024)
        .await
        .expect("getBlob");
    assert_eq!(fetched, bytes);

    let err = network()
        .pds()
        .get_blob(&did, &blob.cid, 1000)
        .await
        .expect_err("over the size limit");
    assert!(
        matches!(err, AtprotoError::Net(NetError::TooLarge { .. })),
        "{err}"
    );
}

/// A server that answers getBlob with other bytes is caught.
#[tokio::test]
async fn a_tampered_blob_is_refused() {
    let genuine = b"export const hello = 1;";
    let cid = blob_cid(genuine);
    let base = serve(Router::new().route(
        "/xrpc/com.atproto.sync.getBlob",
        get(|| async { "export const hello = evil();" }),
    ))
    .await;
    let client = XrpcClient::new(network().http(), base);
    let err = client
        .get_blob(
            &server::atproto::syntax::did("did:plc:abc123").expect("did"),
            &cid,
            1024,
        )
        .await
        .expect_err("tampered");
    match err {
        AtprotoError::CidMismatch { expected, actual } => {
            assert_eq!(expected, cid.to_string());
            assert_ne!(actual, cid.to_string());
        }
        other => panic!("expected a CID mismatch, got {other}"),
    }
}

/// Listing streams every record across pages of 100.
#[tokio::test]
async fn list_records_pages_through_more_than_100_records() {
    let (account, agent) = login("list").await;
    let session = agent.session().await;
    let values: Vec<_> = (0..240)
        .map(|n| json!({"$type": "dev.streamhut.item", "n": n}))
        .collect();
    network()
        .apply_writes(&session, "dev.streamhut.item", &values)
        .await;
    let expected: HashSet<i64> = (0..240).collect();

    let pds = network().pds();
    let records: Vec<_> = pds
        .list_records(&account.did, "dev.streamhut.item")
        .try_collect()
        .await
        .expect("list");
    assert_eq!(records.len(), 240);
    let seen: HashSet<i64> = records
        .iter()
        .map(|r| r.value["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(seen.len(), 240, "no duplicates across pages");
    assert_eq!(seen, expected.into_iter().collect());

    let (first_page, cursor) = pds
        .list_records_page(&account.did, "dev.streamhut.item", None)
        .await
        .expect("page");
    assert_eq!(first_page.len(), 100);
    assert!(cursor.is_some());
}

/// handle → DID → document → PDS, and DID → handle back; describeRepo agrees.
#[tokio::test]
async fn identities_resolve_both_ways() {
    let net = network();
    let account = net.create_account("ident").await;
    let resolver = net.resolver();

    let by_handle = resolver
        .resolve_actor(&account.handle)
        .await
        .expect("by handle");
    assert_eq!(by_handle.did.as_str(), account.did);
    assert_eq!(by_handle.pds, net.pds_url);
    assert_eq!(
        by_handle.handle.as_ref().map(|h| h.as_str()),
        Some(account.handle.as_str())
    );

    let by_did = resolver.resolve_actor(&account.did).await.expect("by DID");
    assert_eq!(
        by_did.handle.as_ref().map(|h| h.as_str()),
        Some(account.handle.as_str())
    );
    assert_eq!(by_did.pds, net.pds_url);

    let upper = account.handle.to_uppercase();
    let normalised = resolver
        .resolve_actor(&format!("@{upper}"))
        .await
        .expect("case-insensitive");
    assert_eq!(normalised.did.as_str(), account.did);

    let repo = net
        .pds()
        .describe_repo(&account.did)
        .await
        .expect("describeRepo");
    assert_eq!(repo.handle, account.handle);

    let err = resolver
        .resolve_actor("nobody-here.test")
        .await
        .expect_err("unknown handle");
    assert!(matches!(err, AtprotoError::HandleNotFound(_)), "{err}");
    let err = resolver
        .resolve_actor("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .expect_err("unknown DID");
    assert!(matches!(err, AtprotoError::DidNotFound(_)), "{err}");
    let err = resolver
        .resolve_actor("not a handle")
        .await
        .expect_err("bad syntax");
    assert!(matches!(err, AtprotoError::Syntax { .. }), "{err}");
}

/// RecordNotFound arrives as HTTP 400 and becomes a typed error.
#[tokio::test]
async fn a_missing_record_is_a_typed_error() {
    let account = network().create_account("missing").await;
    let err = network()
        .pds()
        .get_record(&account.did, "dev.streamhut.item", "3kdoesnotexist")
        .await
        .expect_err("missing");
    assert!(matches!(err, AtprotoError::RecordNotFound(_)), "{err}");
    assert!(err.is_not_found());
}

/// With the guard on (the default), private, link-local and loopback targets are refused
/// before any connection; with ALLOW_PRIVATE_NETWORK they are reachable.
#[tokio::test]
async fn the_ssrf_guard_refuses_private_targets_unless_allowed() {
    let local = serve(Router::new().route(
        "/xrpc/com.atproto.repo.describeRepo",
        get(|| async { "{}" }),
    ))
    .await;
    let port = local.port().expect("port");
    let guarded = HttpClient::new(HttpPolicy::default()).expect("client");
    for target in [
        "http://10.0.0.1/xrpc/x".to_string(),
        "http://10.255.1.2:8080/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let started = Instant::now();
        let url = Url::parse(&target).expect("url");
        let err = guarded
            .send(guarded.request(reqwest::Method::GET, url))
            .await
            .expect_err(&target);
        assert!(
            matches!(err, NetError::PrivateAddress { .. }),
            "{target}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{target} refused without trying"
        );
    }
    // Through the XRPC client too, with the same error.
    let err = XrpcClient::new(guarded.clone(), local.clone())
        .describe_repo("did:plc:abc")
        .await
        .expect_err("guarded");
    assert!(
        matches!(err, AtprotoError::Net(NetError::PrivateAddress { .. })),
        "{err}"
    );

    let open = HttpClient::new(HttpPolicy {
        allow_private_network: true,
        ..HttpPolicy::default()
    })
    .expect("client");
    let response = open
        .send(
            open.request(
                reqwest::Method::GET,
                local
                    .join("/xrpc/com.atproto.repo.describeRepo")
                    .expect("url"),
            ),
        )
        .await
        .expect("allowed");
    assert!(response.status().is_success());
}

/// A server that accepts connections but never answers times out with a clear error.
#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accept, read nothing, answer nothing
        }
    });
    let http = HttpClient::new(HttpPolicy {
        request_timeout: Duration::from_millis(500),
        allow_private_network: true,
        ..HttpPolicy::default()
    })
    .expect("client");
    let client = XrpcClient::new(http, Url::parse(&format!("http://{addr}")).expect("url"));
    let started = Instant::now();
    let err = client
        .get_record("did:plc:abc", "dev.streamhut.item", "self")
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, AtprotoError::Net(NetError::Timeout(_))),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("did not answer in time"), "{err}");
}

/// A handle counts only when its DID's document claims it, and a DID's claimed handle
/// only when it resolves back. A lying handle resolver cannot make either pass.
#[tokio::test]
async fn handles_are_verified_in_both_directions() {
    use server::atproto::identity::{IdentityOptions, IdentityResolver};

    let net = network();
    let victim = net.create_account("victim").await;
    let other = net.create_account("other").await;
    // This resolver says every handle belongs to `other`.
    let other_did = other.did.clone();
    let liar = serve(Router::new().route(
        "/xrpc/com.atproto.identity.resolveHandle",
        get(move || {
            let did = other_did.clone();
            async move { axum::Json(json!({ "did": did })) }
        }),
    ))
    .await;
    let resolver = IdentityResolver::new(
        net.http(),
        IdentityOptions {
            plc_url: net.plc_url.clone(),
            handle_resolver_url: Some(liar),
            cache_ttl: Duration::from_secs(60),
            dns: false,
        },
    );

    let err = resolver
        .resolve_actor(&victim.handle)
        .await
        .expect_err("claim not backed by the document");
    assert!(matches!(err, AtprotoError::HandleMismatch { .. }), "{err}");

    let identity = resolver
        .resolve_actor(&victim.did)
        .await
        .expect("the DID itself is fine");
    assert_eq!(identity.did.as_str(), victim.did);
    assert!(
        identity.handle.is_none(),
        "its handle does not resolve back, so it is not shown"
    );
    assert_eq!(identity.pds, net.pds_url);
}

/// putRecord creates and replaces at a fixed key; deleteRecord removes it.
#[tokio::test]
async fn records_are_put_replaced_and_deleted() {
    let (account, agent) = login("put").await;
    let collection = "dev.streamhut.setting";
    let first = agent
        .put_record(
            collection,
            "self",
            &json!({"$type": collection, "theme": "dark"}),
        )
        .await
        .expect("put");
    assert_eq!(first.uri, format!("at://{}/{collection}/self", account.did));
    let second = agent
        .put_record(
            collection,
            "self",
            &json!({"$type": collection, "theme": "light"}),
        )
        .await
        .expect("replace");
    assert_ne!(first.cid, second.cid);
    let record = network()
        .pds()
        .get_record(&account.did, collection, "self")
        .await
        .expect("get");
    assert_eq!(record.value["theme"], "light");
    assert_eq!(record.cid.as_deref(), Some(second.cid.as_str()));

    agent
        .delete_record(collection, "self")
        .await
        .expect("delete");
    let err = network()
        .pds()
        .get_record(&account.did, collection, "self")
        .await
        .expect_err("deleted");
    assert!(err.is_not_found(), "{err}");
}

/// Every outbound request names us.
#[tokio::test]
async fn requests_carry_a_user_agent() {
    let base = serve(Router::new().route(
        "/xrpc/com.atproto.repo.describeRepo",
        get(|headers: axum::http::HeaderMap| async move {
            let agent = headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            axum::Json(json!({"handle": agent, "did": "did:plc:abc"}))
        }),
    ))
    .await;
    let described = XrpcClient::new(network().http(), base)
        .describe_repo("did:plc:abc")
        .await
        .expect("describe");
    assert!(
        described.handle.starts_with("streamhut/"),
        "{}",
        described.handle
    );
}

/// A hostile PDS that pages forever, or answers with huge pages, cannot make a listing
/// grow memory: `list_all_records` stops at its record and byte bounds with a typed
/// error, having asked for only as many pages as fit.
#[tokio::test]
async fn a_pds_that_pages_forever_is_cut_off() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pages = Arc::new(AtomicUsize::new(0));
    let counted = pages.clone();
    let endless = Router::new().route(
        "/xrpc/com.atproto.repo.listRecords",
        get(
            move |query: axum::extract::Query<std::collections::HashMap<String, String>>| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let big = query
                    .0
                    .get("repo")
                    .is_some_and(|repo| repo.ends_with("big"));
                async move {
                    let records: Vec<_> = (0..100)
                    .map(|i| {
                        json!({
                            "uri": format!("at://did:plc:x/dev.atrun.bundle/{n}-{i}"),
                            "cid": "bafyreid",
                            "value": {"pad": if big { "x".repeat(10_000) } else { String::new() }},
                        })
                    })
                    .collect();
                    axum::Json(json!({"cursor": format!("page-{n}"), "records": records}))
                }
            },
        ),
    );
    let base = serve(endless).await;
    let http = HttpClient::new(HttpPolicy {
        allow_private_network: true,
        ..HttpPolicy::default()
    })
    .expect("client");
    let client = XrpcClient::new(http, base);
    let err = client
        .list_all_records("did:plc:endless", BUNDLE_NSID, 1000, 8 * 1024 * 1024)
        .await
        .expect_err("cut off");
    assert!(matches!(err, AtprotoError::TooMany { .. }), "{err}");
    assert!(err.to_string().contains("1000 records"), "{err}");
    assert_eq!(
        pages.swap(0, Ordering::SeqCst),
        11,
        "no page past the bound"
    );

    let err = client
        .list_all_records("did:plc:big", BUNDLE_NSID, 100_000, 4 * 1024 * 1024)
        .await
        .expect_err("cut off");
    assert!(matches!(err, AtprotoError::TooMany { .. }), "{err}");
    assert!(err.to_string().contains("bytes"), "{err}");
    assert!(pages.load(Ordering::SeqCst) <= 5, "{pages:?}");
}
