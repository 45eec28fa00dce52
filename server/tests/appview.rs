//! The AppView against the real local PDS and PLC: registration and sync (with paging,
//! upstream edits and deletions, malformed records), the firehose (latency measured,
//! resumption after a restart), profiles and avatars, and admin authentication.

mod common;

use std::time::{Duration, Instant};

use common::instance::{Server, publish, video, within};
use common::network::network;
use serde_json::{Value, json};

const VIDEO: &str = "place.stream.video";

fn titles(videos: &[Value]) -> Vec<String> {
    videos
        .iter()
        .filter_map(|v| v["title"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_syncs_pages_edits_deletions_and_reports_bad_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Without the firehose, only syncs can bring changes: this test is about syncs.
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let account = network().create_account("sync").await;
    let agent = network().login(&account).await;
    let mut records: Vec<Value> = (0..130).map(|n| video(&format!("Talk {n}"), n)).collect();
    records.push(json!({"$type": VIDEO, "description": "no title at all"}));
    let rkeys = publish(&agent, &records).await;
    let malformed = rkeys.last().expect("rkey").clone();

    // Registration by handle answers with the sync task.
    let (status, registered) = server
        .admin_post("registerCreator", json!({"actor": account.handle}))
        .await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["did"], account.did.as_str());
    assert_eq!(registered["handle"], account.handle.as_str());
    let task = registered["taskId"].as_str().expect("taskId");
    let view = server.wait_task(task).await;
    assert_eq!(view["status"], "complete", "{view}");
    assert_eq!(view["result"]["seen"], 130);
    assert_eq!(view["result"]["skipped"], 1);

    // Pagination across more than 100 records, newest first, no duplicates.
    let (status, first) = server
        .get(&format!("listVideos?limit=100&creator={}", account.handle))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["videos"].as_array().expect("videos").len(), 100);
    assert!(first["cursor"].is_string(), "{first}");
    let all = server.all_videos(&account.did).await;
    assert_eq!(all.len(), 130);
    assert_eq!(all[0]["title"], "Talk 129", "newest first");
    let video0 = &all[129];
    for field in [
        "uri",
        "cid",
        "did",
        "handle",
        "title",
        "description",
        "durationMs",
        "createdAt",
        "indexedAt",
    ] {
        assert!(!video0[field].is_null(), "{field} missing: {video0}");
    }
    assert_eq!(video0["durationMs"], 60_000);

    // The malformed record is skipped and reported.
    let (_, stats) = server.get("getStats").await;
    let mine = stats["perCreator"]
        .as_array()
        .expect("perCreator")
        .iter()
        .find(|c| c["did"] == account.did.as_str())
        .expect("creator in stats")
        .clone();
    assert_eq!(mine["videoCount"], 130, "{mine}");
    assert_eq!(mine["skippedRecords"], 1, "{mine}");
    let warnings = mine["warnings"].to_string();
    assert!(
        warnings.contains(&malformed) && warnings.contains("no title"),
        "{warnings}"
    );
    assert!(
        mine["lastSyncAt"].is_string() && mine["error"].is_null(),
        "{mine}"
    );

    // An upstream title change and a deletion show after a sync.
    let mut changed = video("Renamed talk", 5);
    changed["title"] = json!("Renamed talk");
    agent
        .put_record(VIDEO, &rkeys[5], &changed)
        .await
        .expect("put");
    agent.delete_record(VIDEO, &rkeys[6]).await.expect("delete");
    let (status, sync) = server
        .admin_post("triggerSync", json!({"actor": account.did}))
        .await;
    assert_eq!(status, 200, "{sync}");
    let view = server
        .wait_task(sync["taskId"].as_str().expect("taskId"))
        .await;
    assert_eq!(view["result"]["changed"], 1, "{view}");
    assert_eq!(view["result"]["deleted"], 1, "{view}");
    let all = server.all_videos(&account.did).await;
    assert_eq!(all.len(), 129);
    let names = titles(&all);
    assert!(names.contains(&"Renamed talk".to_string()));
    assert!(!names.contains(&"Talk 5".to_string()) && !names.contains(&"Talk 6".to_string()));

    // Full-text search over title and description, with the creator filter.
    let (_, found) = server.get("listVideos?q=renamed").await;
    assert_eq!(
        titles(found["videos"].as_array().expect("videos")),
        ["Renamed talk"]
    );
    let (_, found) = server.get("listVideos?q=recording%20number%2042").await;
    assert_eq!(
        titles(found["videos"].as_array().expect("videos")),
        ["Talk 42"]
    );

    // Unregistering removes the creator and their videos.
    let (status, _) = server
        .admin_post("unregisterCreator", json!({"actor": account.handle}))
        .await;
    assert_eq!(status, 200);
    assert!(server.all_videos(&account.did).await.is_empty());
    let (status, gone) = server
        .admin_post("unregisterCreator", json!({"actor": account.handle}))
        .await;
    assert_eq!(
        (status, gone["error"].as_str()),
        (404, Some("CreatorNotFound"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;

    let (status, body) = server
        .admin_post("registerCreator", json!({"actor": "nobody-here.test"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "ActorNotFound");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nobody-here.test")
    );

    for (method, body) in [
        ("registerCreator", json!({"actor": "not a handle!"})),
        ("registerCreator", json!({"who": "x"})),
        ("registerCreator", json!([])),
    ] {
        let (status, reply) = server.admin_post(method, body).await;
        assert_eq!(status, 400, "{method}: {reply}");
        assert_eq!(reply["error"], "InvalidRequest", "{reply}");
        assert!(reply["message"].is_string());
    }
    let long_tag = format!("listVideos?tag={}", "t".repeat(65));
    for path in [
        long_tag.as_str(),
        "listVideos?limit=0",
        "listVideos?limit=101",
        "listVideos?limit=ten",
        "listVideos?cursor=garbage!",
        "getProfile",
    ] {
        let (status, reply) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {reply}");
        assert!(
            reply["error"].is_string() && reply["message"].is_string(),
            "{reply}"
        );
    }
    let (_, stats) = server.get("getStats").await;
    assert_eq!(stats["creators"], 0, "nothing was registered: {stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_an_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = network().create_account("admin").await;
    let visitor = network().create_account("visitor").await;
    let admins = format!("--admin-dids={}", admin.did);
    let server = Server::start(dir.path(), &[&admins, "--appview-firehose", "false"]).await;
    let client = server.client();
    let api = |method: &str| format!("{}/api/appview/{method}", server.url);

    // 401 without auth, and with a wrong token.
    for method in [
        "init",
        "registerCreator",
        "unregisterCreator",
        "triggerSync",
    ] {
        let response = client
            .post(api(method))
            .json(&json!({"actor": admin.did}))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 401, "{method}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "AuthRequired", "{body}");
        let response = client
            .post(api(method))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 401, "{method} with a wrong token");
    }
    // 200 with the token.
    let (status, body) = server.admin_post("init", json!({})).await;
    assert_eq!(status, 200, "{body}");

    // Signing in: a wrong password sets no cookie.
    let login = |identifier: String, password: String| {
        client
            .post(format!("{}/admin/login", server.url))
            .form(&[("identifier", identifier), ("password", password)])
            .send()
    };
    let refused = login(admin.handle.clone(), "wrong".into())
        .await
        .expect("login");
    assert_eq!(refused.status(), 303);
    assert!(refused.headers().get("set-cookie").is_none());
    let location = refused.headers()["location"].to_str().expect("location");
    assert!(location.starts_with("/admin?error="), "{location}");

    let cookie_of = |response: &reqwest::Response| {
        let cookie = response
            .headers()
            .get("set-cookie")
            .unwrap_or_else(|| panic!("no cookie: {:?}", response.headers()))
            .to_str()
            .expect("cookie")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(!cookie.contains(&admin.password) && !cookie.contains(&visitor.password));
        cookie.split(';').next().expect("pair").to_string()
    };
    let signed_in = login(visitor.handle.clone(), visitor.password.clone())
        .await
        .expect("login");
    assert_eq!(signed_in.status(), 303);
    let visitor_cookie = cookie_of(&signed_in);
    let signed_in = login(admin.handle.clone(), admin.password.clone())
        .await
        .expect("login");
    let admin_cookie = cookie_of(&signed_in);

    // 403 for a signed-in DID that is not an admin; 200 for an admin.
    let with_cookie = |cookie: &str, method: &str| {
        client
            .post(api(method))
            .header("cookie", cookie)
            .header("origin", &server.url)
            .json(&json!({}))
            .send()
    };
    let response = with_cookie(&visitor_cookie, "init").await.expect("POST");
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"],
        "Forbidden"
    );
    let response = with_cookie(&admin_cookie, "init").await.expect("POST");
    assert_eq!(response.status(), 200);

    // A forged or tampered cookie is no session.
    let forged = format!("streamhut_admin={} 9999999999", admin.did);
    let response = with_cookie(&forged, "init").await.expect("POST");
    assert_eq!(response.status(), 401);

    // Cross-site posts with the admin's cookie are refused.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = client
            .post(api("triggerSync"))
            .header("cookie", &admin_cookie)
            .header(name, value)
            .json(&json!({}))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 403, "{name}: {value}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "CrossSiteRequest");
    }

    // The dashboard shows the creators table to the admin only, server-rendered.
    let page = |cookie: &str| {
        client
            .get(format!("{}/admin", server.url))
            .header("cookie", cookie)
            .send()
    };
    let html = page(&admin_cookie)
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(&admin.did) && html.contains("Register"),
        "{html}"
    );
    let html = page(&visitor_cookie)
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    assert!(html.contains("not an admin"), "{html}");
    assert!(!html.contains("action=\"/admin/creators\""), "{html}");
    let html = page("").await.expect("GET").text().await.expect("html");
    assert!(html.contains("action=\"/admin/login\""), "{html}");

    // Signing out ends the session.
    let out = client
        .post(format!("{}/admin/logout", server.url))
        .header("cookie", &admin_cookie)
        .send()
        .await
        .expect("logout");
    let cleared = out.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cleared.starts_with("streamhut_admin=;"), "{cleared}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firehose_applies_changes_live_and_resumes_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = network().create_account("live").await;
    let agent = network().login(&account).await;
    let first = publish(&agent, &[video("Before registration", 1)]).await;

    let server = Server::start(dir.path(), &[]).await;
    server.register(&account.did).await;
    assert_eq!(server.all_videos(&account.did).await.len(), 1);
    server
        .firehose_connected(None, Duration::from_secs(5))
        .await;

    // A new upstream video appears without any sync.
    let created = Instant::now();
    publish(&agent, &[video("Live one", 2)]).await;
    let latency = within(Duration::from_secs(5), "the new video", || async {
        titles(&server.all_videos(&account.did).await).contains(&"Live one".to_string())
    })
    .await;
    println!(
        "firehose latency, record created -> visible in listVideos: {latency:?} (write included: {:?})",
        created.elapsed()
    );

    // Edits and deletions too.
    agent
        .put_record(VIDEO, &first[0], &video("Edited live", 1))
        .await
        .expect("put");
    within(Duration::from_secs(5), "the edit", || async {
        titles(&server.all_videos(&account.did).await).contains(&"Edited live".to_string())
    })
    .await;
    server.stop().await;

    // While the server is down: two new videos and a deletion.
    let later = publish(
        &agent,
        &[video("While down A", 3), video("While down B", 4)],
    )
    .await;
    agent.delete_record(VIDEO, &first[0]).await.expect("delete");
    assert_eq!(later.len(), 2);

    // After a restart the stored cursor is resumed: nothing missed, nothing doubled.
    let server = Server::start(dir.path(), &[]).await;
    within(
        Duration::from_secs(10),
        "the changes made while down",
        || async {
            let mut names = titles(&server.all_videos(&account.did).await);
            names.sort();
            names == ["Live one", "While down A", "While down B"]
        },
    )
    .await;
    let rows = server.all_videos(&account.did).await;
    assert_eq!(rows.len(), 3, "no duplicates");
    server.stop().await;
}

/// Stands in for the public Bluesky API (which tests must not reach): answers
/// `app.bsky.actor.getProfile` for one DID.
async fn public_api(did: String) -> String {
    use axum::extract::Query;
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/xrpc/app.bsky.actor.getProfile",
        axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
            let known = query.get("actor") == Some(&did);
            async move {
                if known {
                    axum::Json(json!({
                        "did": query["actor"],
                        "handle": "elsewhere.test",
                        "displayName": "From the public API",
                        "avatar": "https://cdn.example/avatar.jpg",
                    }))
                    .into_response()
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(
                            json!({"error": "InvalidRequest", "message": "Profile not found"}),
                        ),
                    )
                        .into_response()
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_come_from_the_pds_with_avatars_served_through_us() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let with_profile = network().create_account("face").await;
    let agent = network().login(&with_profile).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";
    let blob = agent
        .upload_blob(bytes::Bytes::from_static(png), "image/png")
        .await
        .expect("upload");
    agent
        .put_record(
            "app.bsky.actor.profile",
            "self",
            &json!({
                "$type": "app.bsky.actor.profile",
                "displayName": "Face <b>Person</b>",
                "description": "Makes videos",
                "avatar": blob,
            }),
        )
        .await
        .expect("profile");

    // Before registration: the profile, but no avatar proxied for a stranger.
    let (status, profile) = server
        .get(&format!("getProfile?actor={}", with_profile.handle))
        .await;
    assert_eq!(status, 200, "{profile}");
    assert!(profile["avatar"].is_null(), "{profile}");
    let stranger = format!(
        "{}/api/appview/avatar/{}/{}",
        server.url, with_profile.did, blob.cid
    );
    let response = server.client().get(&stranger).send().await.expect("GET");
    assert_eq!(response.status(), 404);

    let (status, _) = server
        .admin_post("registerCreator", json!({"actor": with_profile.did}))
        .await;
    assert_eq!(status, 200);
    let (status, profile) = server
        .get(&format!("getProfile?actor={}", with_profile.handle))
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["displayName"], "Face <b>Person</b>");
    assert_eq!(profile["handle"], with_profile.handle.as_str());
    assert_eq!(profile["source"], "pds");
    let avatar = profile["avatar"].as_str().expect("avatar URL");
    assert!(avatar.starts_with(&server.url), "{avatar}");
    for _ in 0..2 {
        let response = server.client().get(avatar).send().await.expect("avatar");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .expect("cc")
                .contains("immutable")
        );
        assert_eq!(&response.bytes().await.expect("bytes")[..], &png[..]);
    }

    // Any other blob of the creator's (another image, a video's thumbnail, a large
    // upload) is not an avatar: never fetched, never cached.
    let other_png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x02\x08\x06\0\0\0r\xb6\r$\0\0\0\x0bIDATx\x9cc\xf8\x0f\x04\0\x09\xfb\x03\xfd\xe3U\xf2\x9c\0\0\0\0IEND\xaeB`\x82";
    let other = agent
        .upload_blob(bytes::Bytes::from_static(other_png), "image/png")
        .await
        .expect("upload");
    assert_ne!(other.cid, blob.cid);
    let response = server
        .client()
        .get(format!(
            "{}/api/appview/avatar/{}/{}",
            server.url, with_profile.did, other.cid
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 400);
    let cached = std::fs::read_dir(dir.path().join("cache/avatars"))
        .map(|entries| entries.filter_map(Result::ok).count())
        .unwrap_or(0);
    assert_eq!(cached, 1, "only the avatar is on disk");

    // No profile record and no public API configured: the bare identity.
    let bare = network().create_account("bare").await;
    let (status, profile) = server.get(&format!("getProfile?actor={}", bare.did)).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["source"], "none");
    assert_eq!(profile["handle"], bare.handle.as_str());
    assert!(profile["displayName"].is_null());
    server.stop().await;

    // With a public API configured, a profile the PDS lacks comes from there.
    let api = public_api(bare.did.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &["--appview-firehose", "false", "--bsky-public-api-url", &api],
    )
    .await;
    let (status, profile) = server
        .get(&format!("getProfile?actor={}", bare.handle))
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["source"], "bsky");
    assert_eq!(profile["displayName"], "From the public API");
    assert_eq!(
        profile["handle"],
        bare.handle.as_str(),
        "our verified handle wins"
    );
    assert_eq!(profile["avatar"], "https://cdn.example/avatar.jpg");
    // The PDS's own profile still comes first.
    let (_, profile) = server
        .get(&format!("getProfile?actor={}", with_profile.did))
        .await;
    assert_eq!(profile["source"], "pds");
    server.stop().await;
}

/// A PDS of one `did:web` account with one video, which breaks once `broken` is set
/// (every call refused, as a PDS does that no longer serves an account properly): the
/// failure a sync must survive without touching anyone else.
async fn breaking_pds(broken: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::sync::atomic::Ordering;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let did = format!("did:web:localhost%3A{port}");
    let base = format!("http://localhost:{port}");
    let document = json!({
        "id": did,
        "alsoKnownAs": [],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": base}],
    });
    let record = json!({
        "uri": format!("at://{did}/{VIDEO}/3kbreaking0001"),
        "cid": server::atproto::blob::blob_cid(b"breaking").to_string(),
        "value": video("About to break", 1),
    });
    let answer = move |State(broken): State<std::sync::Arc<std::sync::atomic::AtomicBool>>,
                       body: Value| async move {
        if broken.load(Ordering::SeqCst) {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "InvalidRequest", "message": "this PDS is broken"})),
            )
        } else {
            (StatusCode::OK, axum::Json(body))
        }
    };
    let status = json!({"did": did, "active": true});
    let listing = json!({"records": [record]});
    let app = axum::Router::new()
        .route(
            "/.well-known/did.json",
            get(move || async move { axum::Json(document) }),
        )
        .route(
            "/xrpc/com.atproto.sync.getRepoStatus",
            get(move |state| answer(state, status.clone())),
        )
        .route(
            "/xrpc/com.atproto.repo.listRecords",
            get(move |state| answer(state, listing.clone())),
        )
        .fallback(|| async {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "RecordNotFound", "message": "none"})),
            )
        })
        .with_state(broken);
    tokio::spawn(async move { axum::serve(listener, app).await });
    did
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_creators_failure_stops_nobody_and_the_job_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let healthy = network().create_account("healthy").await;
    publish(&network().login(&healthy).await, &[video("Still here", 1)]).await;
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let breaking = breaking_pds(broken.clone()).await;
    for did in [&healthy.did, &breaking] {
        let (status, body) = server
            .admin_post("registerCreator", json!({"actor": did}))
            .await;
        assert_eq!(status, 200, "{body}");
        let view = server.wait_task(body["taskId"].as_str().expect("id")).await;
        assert_eq!(view["status"], "complete", "{view}");
    }
    assert_eq!(server.all_videos(&breaking).await.len(), 1);

    // The second creator's PDS breaks.
    broken.store(true, std::sync::atomic::Ordering::SeqCst);

    // Syncing everyone: one task each, the healthy one completes, the other fails alone.
    let (status, body) = server.admin_post("triggerSync", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let ids = body["taskIds"].as_array().expect("taskIds").clone();
    assert_eq!(ids.len(), 2);
    let mut outcomes = Vec::new();
    for id in &ids {
        let view = server.wait_task(id.as_str().expect("id")).await;
        outcomes.push(view["status"].as_str().unwrap_or_default().to_string());
    }
    outcomes.sort();
    assert_eq!(outcomes, ["complete", "failed"]);
    let (_, stats) = server.get("getStats").await;
    let error_of = |did: &str| {
        stats["perCreator"]
            .as_array()
            .expect("perCreator")
            .iter()
            .find(|c| c["did"] == did)
            .map(|c| c["error"].clone())
            .expect("creator")
    };
    assert!(error_of(&healthy.did).is_null(), "{stats}");
    // Its videos stay listed: a failed sync changes nothing.
    assert!(
        error_of(&breaking)
            .as_str()
            .is_some_and(|e| e.contains("getRepoStatus")),
        "{stats}"
    );
    assert_eq!(server.all_videos(&breaking).await.len(), 1);
    assert_eq!(server.all_videos(&healthy.did).await.len(), 1);

    // The 15-minute job does the same, and its run says who failed.
    let scheduler = server.services.scheduler.clone();
    let later = chrono::Utc::now().timestamp_millis() + 16 * 60 * 1000;
    let runs = scheduler.tick(later).await.expect("tick");
    let run = runs
        .iter()
        .find(|run| run.job == "appview.syncAllCreators")
        .expect("the sync job ran");
    let error = run.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("1 of 2 creators failed"), "{error}");
    server.stop().await;
}

/// The byte range of `needle` in `text`, as a facet's index.
fn span(text: &str, needle: &str) -> Value {
    let start = text.find(needle).expect("needle");
    json!({"byteStart": start, "byteEnd": start + needle.len()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_record_is_read_whole_and_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--appview-firehose", "false"]).await;
    let creator = network().create_account("richrec").await;
    let stranger = network().create_account("strangr").await;
    let agent = network().login(&creator).await;
    let description = format!(
        "Ünïcode first. Hosted by @{} with @{}, slides at https://example.com/slides #Rust",
        creator.handle, stranger.handle
    );
    let facet = |needle: &str, feature: Value| json!({"index": span(&description, needle), "features": [feature]});
    let record = json!({
        "$type": VIDEO,
        "title": "Rich record <b>talk</b>",
        "description": description,
        "descriptionFacets": [
            facet(&format!("@{}", creator.handle), json!({"$type": "app.bsky.richtext.facet#mention", "did": creator.did})),
            facet(&format!("@{}", stranger.handle), json!({"$type": "app.bsky.richtext.facet#mention", "did": stranger.did})),
            facet("https://example.com/slides", json!({"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/slides"})),
            facet("#Rust", json!({"$type": "app.bsky.richtext.facet#tag", "tag": "Rust"})),
            facet("Ünïcode", json!({"$type": "app.bsky.richtext.facet#link", "uri": "javascript:alert(1)"})),
        ],
        "tags": ["conference", "Rust", "lang:en"],
        "contentWarnings": {"warnings": ["place.stream.metadata.contentWarnings#flashingLights"]},
        "contentRights": {"license": "place.stream.metadata.contentRights#cc-by-sa_4__0", "creator": "Ada", "copyrightYear": 2026},
        "connections": [{"ref": {"uri": format!("at://{}/place.stream.livestream/3abc", creator.did), "cid": "bafyreib2rxk3rh6kzwq"}}],
        "activity": {"$type": "place.stream.livestream#activityLabel", "label": "software_dev"},
        "durationMs": 90_000,
        "createdAt": "2026-03-01T10:00:00.000Z",
    });
    let plain = video("An older plain record", 1);
    publish(&agent, &[record, plain]).await;
    server.register(&creator.did).await;

    // The API returns every field; tags filter and are searchable; older shapes still read.
    let (_, listed) = server.get("listVideos").await;
    let videos = listed["videos"].as_array().expect("videos");
    assert_eq!(videos.len(), 2, "{listed}");
    let rich = &videos[0];
    assert_eq!(rich["tags"], json!(["conference", "Rust", "lang:en"]));
    assert_eq!(rich["contentWarnings"], json!(["flashingLights"]));
    assert_eq!(rich["contentRights"]["license"], "cc-by-sa_4__0");
    assert_eq!(rich["activity"]["label"], "software_dev");
    assert_eq!(rich["facets"].as_array().map(Vec::len), Some(4), "{rich}");
    assert!(
        rich["livestream"]["uri"]
            .as_str()
            .is_some_and(|u| u.contains("livestream/3abc")),
        "{rich}"
    );
    assert!(videos[1]["tags"].is_null(), "{}", videos[1]);
    for query in [
        "listVideos?tag=rust",
        "listVideos?tag=%23RUST",
        "listVideos?q=conference",
    ] {
        let (status, found) = server.get(query).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            titles(found["videos"].as_array().expect("videos")),
            vec!["Rich record <b>talk</b>"],
            "{query}"
        );
    }

    // The watch page links the facets, shows the tags, licence and activity, and keeps
    // the player behind the warning.
    let rkey = rich["uri"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("rkey");
    let html = server
        .client()
        .get(format!("{}/watch/{}/{rkey}", server.url, creator.did))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    for expected in [
        format!("href=\"/profile/{}\"", creator.did),
        format!("href=\"https://bsky.app/profile/{}\"", stranger.did),
        "href=\"https://example.com/slides\"".to_string(),
        "href=\"/tag/Rust\"".to_string(),
        "href=\"/tag/lang%3Aen\"".to_string(),
        "href=\"https://creativecommons.org/licenses/by-sa/4.0/\"".to_string(),
        "CC BY-SA 4.0".to_string(),
        "© 2026 Ada".to_string(),
        "Software dev".to_string(),
        "class=\"player__gate\"".to_string(),
        "Flashing lights".to_string(),
        "<meta property=\"video:tag\" content=\"conference\"".to_string(),
    ] {
        assert!(html.contains(&expected), "{expected} in the watch page");
    }
    assert!(!html.contains("javascript:alert"), "no script links");
    assert!(!html.contains("<b>talk</b>"), "titles are escaped");

    // The tag page, in any case; the home page's card is blurred and says why.
    for path in ["/tag/rust", "/tag/RUST"] {
        let response = server
            .client()
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        let html = response.text().await.expect("text");
        assert!(
            html.contains("Rich record &lt;b&gt;talk&lt;/b&gt;"),
            "{path}"
        );
        assert!(!html.contains("An older plain record"), "{path}");
    }
    let home = server
        .client()
        .get(&server.url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(
        home.contains("video-card--warned") && home.contains("Content warning: Flashing lights")
    );
    let empty = server
        .client()
        .get(format!("{}/tag/nothing-here", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(empty.status(), 200);
    assert!(
        empty
            .text()
            .await
            .expect("text")
            .contains("No videos with this tag yet")
    );
    server.stop().await;
}
