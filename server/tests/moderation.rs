//! Moderation and whole hosts against the real local PDS: a video taken down leaves every
//! public surface at once and comes back when restored; a deactivated account's videos
//! disappear within seconds (firehose) or at the next sync, and return when it is
//! activated; a registered host's publishing accounts are indexed, including one that
//! starts later; every admin action is in the audit log.

mod common;

use std::time::Duration;

use common::instance::{Server, publish, video, within};
use common::network::{Account, network};
use serde_json::{Value, json};

/// GET `path` on `server` as an anonymous visitor: status and body.
async fn fetch(server: &Server, path: &str) -> (u16, String) {
    let response = server
        .client()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// `POST /xrpc/{method}` on the local PDS as `account`.
async fn account_call(account: &Account, method: &str) {
    let session = network().login(account).await.session().await;
    let request = reqwest::Client::new()
        .post(
            network()
                .pds_url
                .join(&format!("/xrpc/{method}"))
                .expect("url"),
        )
        .bearer_auth(session.access_jwt.expose());
    // `deactivateAccount` takes an (empty) input; `activateAccount` none at all.
    let request = if method.ends_with("deactivateAccount") {
        request.json(&json!({}))
    } else {
        request
    };
    let response = request.send().await.expect(method);
    assert!(
        response.status().is_success(),
        "{method}: {}",
        response.status()
    );
}

/// Where a video shows up for the public, and where not.
struct Surfaces {
    watch: u16,
    embed: u16,
    oembed: u16,
    thumbnail: u16,
    playlist: u16,
    listed: bool,
    searched: bool,
    tagged: bool,
    in_feed: bool,
    in_sitemap: bool,
    related: bool,
}

async fn surfaces(server: &Server, did: &str, rkey: &str, other: &str) -> Surfaces {
    let uri = format!("at://{did}/place.stream.video/{rkey}");
    let watch_path = format!("/watch/{did}/{rkey}");
    let encoded: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let watch_url: String =
        url::form_urlencoded::byte_serialize(format!("{}{watch_path}", server.url).as_bytes())
            .collect();
    let listed = server.all_videos(did).await.iter().any(|v| v["uri"] == uri);
    let (_, searched) = server.get("listVideos?q=Moderated").await;
    let (_, tagged) = server.get("listVideos?tag=moderation").await;
    let has = |page: &Value| {
        page["videos"]
            .as_array()
            .is_some_and(|videos| videos.iter().any(|v| v["uri"] == uri))
    };
    Surfaces {
        watch: fetch(server, &watch_path).await.0,
        embed: fetch(server, &format!("/embed/{did}/{rkey}")).await.0,
        oembed: fetch(server, &format!("/oembed?url={watch_url}")).await.0,
        thumbnail: fetch(server, &format!("/api/vod/getThumbnail?uri={encoded}"))
            .await
            .0,
        playlist: fetch(server, &format!("/api/vod/getPlaylist?uri={encoded}"))
            .await
            .0,
        listed,
        searched: has(&searched),
        tagged: has(&tagged),
        in_feed: fetch(server, "/feed.atom").await.1.contains(&watch_path),
        in_sitemap: fetch(server, "/sitemap.xml").await.1.contains(&watch_path),
        related: fetch(server, &format!("/watch/{did}/{other}"))
            .await
            .1
            .contains(&watch_path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_down_video_leaves_every_public_surface_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let creator = network().create_account("moderated").await;
    let agent = network().login(&creator).await;
    let mut victim = video("Moderated talk", 1);
    victim["tags"] = json!(["moderation"]);
    let rkeys = publish(&agent, &[victim, video("Another talk", 2)]).await;
    let (rkey, other) = (&rkeys[0], &rkeys[1]);
    server.register(&creator.did).await;
    let uri = format!("at://{}/place.stream.video/{rkey}", creator.did);

    let before = surfaces(&server, &creator.did, rkey, other).await;
    assert_eq!(before.watch, 200);
    assert_eq!(before.embed, 200);
    assert_eq!(before.oembed, 200);
    assert!(before.listed && before.searched && before.tagged);
    assert!(before.in_feed && before.in_sitemap && before.related);

    // Refused: no admin, a bad URI, an unknown video, no reason. Nothing changes.
    let anonymous = server
        .client()
        .post(format!("{}/api/appview/takedownVideo", server.url))
        .json(&json!({"uri": uri, "reason": "x"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), 401);
    for (body, status) in [
        (json!({"uri": "at://nope", "reason": "x"}), 400),
        (
            json!({"uri": format!("at://{}/place.stream.video/3zzzzzzzzzzzz", creator.did), "reason": "x"}),
            404,
        ),
        (json!({"uri": uri}), 400),
        (json!({"uri": uri, "reason": "x".repeat(501)}), 400),
        (json!({"uri": uri, "reason": "x", "extra": 1}), 400),
    ] {
        let (got, reply) = server.admin_post("takedownVideo", body.clone()).await;
        assert_eq!(got, status, "{body} -> {reply}");
        assert!(
            reply["error"].is_string() && reply["message"].is_string(),
            "{reply}"
        );
    }
    assert!(server.all_videos(&creator.did).await.len() == 2);

    // Taken down: gone everywhere at once, pages answer 410.
    let (status, reply) = server
        .admin_post(
            "takedownVideo",
            json!({"uri": uri, "reason": "Copyright claim"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["takenDown"], true);
    let after = surfaces(&server, &creator.did, rkey, other).await;
    assert_eq!(after.watch, 410);
    assert_eq!(after.embed, 410);
    assert_eq!(after.oembed, 410);
    assert_eq!(after.thumbnail, 404, "its images are no longer served");
    assert_ne!(before.playlist, 404, "(the test origin is down: 502)");
    assert_eq!(after.playlist, 404, "nor its playlist");
    assert!(!after.listed && !after.searched && !after.tagged);
    assert!(!after.in_feed && !after.in_sitemap && !after.related);
    let (_, page) = fetch(&server, &format!("/watch/{}/{rkey}", creator.did)).await;
    assert!(page.contains("no longer available"), "{page}");
    let (_, stats) = server.get("getStats").await;
    assert_eq!(stats["videos"], 1, "{stats}");

    // A resync does not bring it back.
    let (_, sync) = server
        .admin_post("triggerSync", json!({"actor": creator.did}))
        .await;
    server
        .wait_task(sync["taskId"].as_str().expect("task"))
        .await;
    assert_eq!(server.all_videos(&creator.did).await.len(), 1);

    // Restored: everywhere again.
    let (status, reply) = server
        .admin_post(
            "restoreVideo",
            json!({"uri": uri, "reason": "Claim withdrawn"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let restored = surfaces(&server, &creator.did, rkey, other).await;
    assert_eq!(restored.watch, 200);
    assert!(restored.listed && restored.searched && restored.in_feed && restored.in_sitemap);
    let (status, _) = server.admin_post("restoreVideo", json!({"uri": uri})).await;
    assert_eq!(status, 400, "it is not taken down any more");

    // The audit log says who did what, when and why.
    let log = server
        .services
        .appview
        .audit_log(10)
        .await
        .expect("audit log");
    let actions: Vec<(&str, &str, Option<&str>)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.admin.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        actions[..3],
        [
            ("restoreVideo", "the admin token", Some("Claim withdrawn")),
            ("takedownVideo", "the admin token", Some("Copyright claim")),
            ("registerCreator", "the admin token", None),
        ]
    );
    assert!(log.iter().all(|e| !e.at.is_empty()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_disappears_within_seconds_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).await;
    let creator = network().create_account("pausing").await;
    let agent = network().login(&creator).await;
    let rkeys = publish(&agent, &[video("Paused talk", 1)]).await;
    server.register(&creator.did).await;
    server
        .firehose_connected(None, Duration::from_secs(20))
        .await;
    let watch = format!("/watch/{}/{}", creator.did, rkeys[0]);
    let profile = format!("/profile/{}", creator.handle);
    assert_eq!(fetch(&server, &watch).await.0, 200);

    account_call(&creator, "com.atproto.server.deactivateAccount").await;
    let took = within(
        Duration::from_secs(10),
        "hidden after deactivation",
        || async {
            server.all_videos(&creator.did).await.is_empty()
                && fetch(&server, &watch).await.0 == 410
                && fetch(&server, &profile).await.0 == 404
                && !fetch(&server, "/sitemap.xml").await.1.contains(&watch)
        },
    )
    .await;
    eprintln!("deactivation -> hidden everywhere: {took:?}");
    let (_, stats) = server.get("getStats").await;
    assert!(
        !stats["perCreator"].to_string().contains(&creator.did),
        "public stats leave them out: {stats}"
    );

    account_call(&creator, "com.atproto.server.activateAccount").await;
    let took = within(
        Duration::from_secs(10),
        "shown after activation",
        || async {
            server.all_videos(&creator.did).await.len() == 1
                && fetch(&server, &watch).await.0 == 200
                && fetch(&server, &profile).await.0 == 200
        },
    )
    .await;
    eprintln!("activation -> shown again: {took:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_reads_the_account_status_from_the_pds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let creator = network().create_account("syncpause").await;
    let agent = network().login(&creator).await;
    publish(&agent, &[video("Synced talk", 1)]).await;
    server.register(&creator.did).await;
    assert_eq!(server.all_videos(&creator.did).await.len(), 1);

    account_call(&creator, "com.atproto.server.deactivateAccount").await;
    let (_, sync) = server
        .admin_post("triggerSync", json!({"actor": creator.did}))
        .await;
    let view = server
        .wait_task(sync["taskId"].as_str().expect("task"))
        .await;
    assert_eq!(view["status"], "complete", "{view}");
    assert!(server.all_videos(&creator.did).await.is_empty());
    let stats = server
        .services
        .appview
        .index()
        .stats(true)
        .await
        .expect("stats");
    let row = stats
        .per_creator
        .iter()
        .find(|c| c.did.as_str() == creator.did)
        .expect("the dashboard still lists them");
    assert_eq!(row.account_status.as_deref(), Some("deactivated"));
    assert_eq!(row.video_count, 1, "their videos are kept, withheld");

    account_call(&creator, "com.atproto.server.activateAccount").await;
    let (_, sync) = server
        .admin_post("triggerSync", json!({"actor": creator.did}))
        .await;
    server
        .wait_task(sync["taskId"].as_str().expect("task"))
        .await;
    assert_eq!(server.all_videos(&creator.did).await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_host_is_indexed_whole_and_new_publishers_are_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).await;
    let publisher = network().create_account("hostpub").await;
    publish(&network().login(&publisher).await, &[video("Host talk", 1)]).await;
    let quiet = network().create_account("hostquiet").await;

    // Refused: no admin, junk hosts.
    let anonymous = server
        .client()
        .post(format!("{}/api/appview/registerHost", server.url))
        .json(&json!({"host": "pds.example.com"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), 401);
    // Junk, and hosts that are not a PDS (nothing listening; a web server answering
    // 404 to XRPC): 400, and nothing is stored.
    let long = format!("{}.example", "a".repeat(10_000));
    let not_a_pds = server.url.clone();
    for junk in [
        "",
        "ftp://x.example",
        "https://x.example/path",
        "not a host",
        long.as_str(),
        "http://127.0.0.1:1",
        not_a_pds.as_str(),
    ] {
        let (status, reply) = server
            .admin_post("registerHost", json!({"host": junk}))
            .await;
        assert_eq!(status, 400, "{junk:?}: {reply}");
        assert!(
            reply["message"].as_str().is_some_and(|m| m.len() < 400),
            "{reply}"
        );
    }
    assert!(
        server
            .services
            .appview
            .hosts()
            .await
            .expect("hosts")
            .is_empty()
    );

    let host = network().pds_url.as_str().trim_end_matches('/').to_string();
    let (status, reply) = server
        .admin_post("registerHost", json!({"host": host}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["host"], host.as_str());
    let view = server
        .wait_task(reply["taskId"].as_str().expect("task"))
        .await;
    assert_eq!(view["status"], "complete", "{view}");
    assert!(
        view["result"]["listed"].as_u64().unwrap_or(0) >= 2,
        "{view}"
    );
    within(Duration::from_secs(30), "the publisher indexed", || async {
        server.all_videos(&publisher.did).await.len() == 1
    })
    .await;
    let creators = server
        .services
        .appview
        .index()
        .stats(true)
        .await
        .expect("stats")
        .per_creator;
    assert!(
        !creators.iter().any(|c| c.did.as_str() == quiet.did),
        "an account without videos is not a creator"
    );

    // The quiet account starts publishing: the host's firehose brings it in.
    server
        .firehose_connected(Some(&host), Duration::from_secs(20))
        .await;
    publish(
        &network().login(&quiet).await,
        &[video("First talk at last", 1)],
    )
    .await;
    let took = within(
        Duration::from_secs(30),
        "the new publisher indexed",
        || async { server.all_videos(&quiet.did).await.len() == 1 },
    )
    .await;
    eprintln!("first video on a registered host -> indexed: {took:?}");
    let hosts = server.services.appview.hosts().await.expect("hosts");
    assert_eq!(hosts.len(), 1);
    assert!(hosts[0].last_error.is_none(), "{hosts:?}");
    let log = server.services.appview.audit_log(5).await.expect("log");
    assert!(
        log.iter()
            .any(|e| e.action == "registerHost" && e.subject == host)
    );
    server.stop().await;
}
