//! The HTTP edge: pages rendered on the server, health, errors in the XRPC shape.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestBed, config_for};
use server::db::DatabaseLocation;
use server::db::Db;

/// Health is 200 while the database answers.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_ok_with_a_working_database() {
    let bed = TestBed::new().await;
    let reply = bed.get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
}

/// Health is 503, in the XRPC error shape, when the database does not answer.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_503_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(&dir);
    let unreachable = Db::open(&DatabaseLocation::Remote {
        url: "http://127.0.0.1:9".into(),
        auth_token: Default::default(),
    })
    .await
    .expect("a remote database connects lazily");
    let bed = TestBed::with_db(dir, config, unreachable).await;
    let reply = bed.get("/healthz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = reply.json();
    assert_eq!(body["error"], "DatabaseUnavailable");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The home page is complete HTML from the server: title, header, hydration script and,
/// with nothing indexed, an empty state that says what to expect.
#[tokio::test(flavor = "multi_thread")]
async fn home_page_renders_on_the_server_with_an_empty_state() {
    let bed = TestBed::new().await;
    let reply = bed.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("text/html"),
        "{}",
        reply.content_type
    );
    let html = &reply.body;
    assert!(html.contains("<title>Streamhut</title>"), "{html}");
    assert!(html.contains(r#"class="site-header""#), "{html}");
    assert!(html.contains(r#"role="search""#), "{html}");
    assert!(
        html.contains("/pkg/streamhut.js"),
        "hydration script: {html}"
    );
    assert!(html.contains("/pkg/streamhut.css"), "stylesheet: {html}");
    assert!(html.contains("No videos yet"), "{html}");
}

/// Indexed videos appear newest first, and their text is escaped.
#[tokio::test(flavor = "multi_thread")]
async fn home_page_lists_videos_newest_first_escaping_their_text() {
    let bed = TestBed::new().await;
    let did = "did:plc:abc123";
    bed.add_video(
        did,
        "alice.test",
        "3kold",
        "Older talk",
        "",
        "2026-01-01T10:00:00Z",
    )
    .await;
    bed.add_video(
        did,
        "alice.test",
        "3knew",
        r#"<script>alert("x")</script> & friends"#,
        "",
        "2026-02-01T10:00:00Z",
    )
    .await;

    let html = bed.get("/").await.body;
    assert!(!html.contains("No videos yet"));
    assert!(
        !html.contains(r#"<script>alert("x")"#),
        "title must be escaped: {html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
    let newer = html.find("&lt;script&gt;").expect("newer video");
    let older = html.find("Older talk").expect("older video");
    assert!(newer < older, "newest first");
    assert!(html.contains("/watch/did:plc:abc123/3knew"), "{html}");
    assert!(html.contains("alice.test"), "{html}");
    assert!(html.contains("12:34"), "duration: {html}");
    assert!(html.contains("Feb 1, 2026"), "date: {html}");
}

/// Search matches every word in the title or description; wildcards are literal.
#[tokio::test(flavor = "multi_thread")]
async fn search_matches_all_words_in_title_or_description() {
    let bed = TestBed::new().await;
    let did = "did:plc:abc123";
    bed.add_video(
        did,
        "alice.test",
        "a",
        "Rust at the edge",
        "Deno sandboxes",
        "2026-01-01T10:00:00Z",
    )
    .await;
    bed.add_video(
        did,
        "alice.test",
        "b",
        "Cooking pasta",
        "with friends",
        "2026-01-02T10:00:00Z",
    )
    .await;

    let html = bed.get("/search?q=rust+deno").await.body;
    assert!(html.contains("Rust at the edge"), "{html}");
    assert!(!html.contains("Cooking pasta"), "{html}");

    let html = bed.get("/search?q=%25").await.body;
    assert!(
        html.contains("No matching videos"),
        "% is not a wildcard: {html}"
    );

    let html = bed.get("/search").await.body;
    assert!(html.contains("Search Streamhut"), "{html}");
}

/// An over-long search query is refused with a clear message.
#[tokio::test(flavor = "multi_thread")]
async fn search_refuses_an_overlong_query() {
    let bed = TestBed::new().await;
    let reply = bed.get(&format!("/search?q={}", "a".repeat(500))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("limited to 200 characters"),
        "{}",
        reply.body
    );
}

/// Unknown pages get the 404 page with status 404.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_are_404_with_the_not_found_page() {
    let bed = TestBed::new().await;
    let reply = bed.get("/no/such/page").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.body.contains("This page isn’t here"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("<title>Streamhut | Page not found</title>"),
        "{}",
        reply.body
    );
}

/// stream.place's URL shapes land on our pages, with the start time; API paths of the
/// same shape stay API paths.
#[tokio::test(flavor = "multi_thread")]
async fn stream_place_urls_redirect_to_ours() {
    let bed = TestBed::new().await;
    for (from, to) in [
        (
            "/alice.test/vod/3lbx?t=1h2m3s&utm_source=x",
            "/watch/alice.test/3lbx?t=1h2m3s",
        ),
        ("/did:plc:abc/video/3lbx", "/watch/did:plc:abc/3lbx"),
        (
            "/embed/alice.test/video/3lbx?t=90",
            "/embed/alice.test/3lbx?t=90",
        ),
    ] {
        let reply = bed.get(from).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{from}");
        assert_eq!(reply.headers["location"], to, "{from}");
    }
    let reply = bed.get("/api/vod/doesNotExist").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "NotFound");
}

/// Unknown API paths answer JSON, not a page.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_paths_are_xrpc_404s() {
    let bed = TestBed::new().await;
    let reply = bed.get("/api/doesNotExist").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "NotFound");
}

/// A reflected script in the search box stays text: escaped in `<title>` and the page,
/// and the page's Content-Security-Policy would not run an injected script anyway.
#[tokio::test(flavor = "multi_thread")]
async fn search_text_is_escaped_in_the_title_and_scripts_need_the_nonce() {
    let bed = TestBed::new().await;
    let reply = bed
        .get("/search?q=%3C/title%3E%3Cscript%3Ealert(5)%3C/script%3E%22%3E")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains("<script>alert(5)"), "{}", reply.body);
    assert!(
        reply.body.contains(
            "<title>Streamhut | &lt;/title&gt;&lt;script&gt;alert(5)&lt;/script&gt;&quot;&gt; – Search"
        ),
        "{}",
        reply.body
    );
    let csp = reply
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src"))
        .expect("script-src");
    assert!(
        script_src.contains("'nonce-")
            && script_src.contains("'strict-dynamic'")
            && !script_src.contains("'self'")
            && !script_src.contains("http")
            && csp.contains("object-src 'none'"),
        "only nonce'd scripts and what they load run, never a /bundle/ reply: {csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("nonce");
    assert!(
        reply.body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    let site_js = reply
        .body
        .split("<script")
        .find(|tag| tag.contains("/site.js"))
        .expect("site.js");
    assert!(
        site_js.contains(&format!("nonce=\"{nonce}\"")),
        "site.js carries the nonce: {site_js}"
    );
}

/// Every response, whatever answers it (a page, the API, a file, an error, a bundle's
/// reply), tells browsers not to sniff types and how much of the URL to pass on.
#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_nosniff_and_a_referrer_policy() {
    let bed = TestBed::new().await;
    std::fs::write(bed.dir.path().join("robots.txt"), "User-agent: *\n").expect("robots");
    for path in [
        "/",
        "/healthz",
        "/robots.txt",
        "/no/such/page",
        "/api/appview/listVideos",
        "/api/appview/listVideos?limit=0",
        "/api/nothing-here",
        "/api/tasks/0123456789abcdef",
        "/.well-known/at-run",
        "/bundle/not%20a%20did/x/latest/y",
        "/oembed?url=x",
        "/metrics",
    ] {
        let reply = bed.get(path).await;
        assert_eq!(
            reply
                .headers
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path} ({})",
            reply.status
        );
        assert_eq!(
            reply.headers.get("referrer-policy").map(|v| v.as_bytes()),
            Some(&b"strict-origin-when-cross-origin"[..]),
            "{path} ({})",
            reply.status
        );
    }
}

/// Task submissions are limited per client (an IPv6 /64 counts as one), and a public
/// task's input must name something real before it becomes a row: junk is a 4xx that
/// stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn task_submissions_are_validated_and_limited_per_client() {
    use axum::extract::ConnectInfo;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_for(&dir);
    config.task_rate_limit = 120;
    let db = Db::open(&config.database()).await.expect("db");
    db.migrate().await.expect("migrate");
    let bed = TestBed::with_db(dir, config, db).await;
    let rows = || common::count(&bed.db, "SELECT COUNT(*) FROM tasks", ());
    let post = |path: &str, body: String, peer: &str| {
        let mut request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let addr: std::net::SocketAddr = peer.parse().expect("peer");
        request.extensions_mut().insert(ConnectInfo(addr));
        request
    };
    let before = rows().await;
    let junk = serde_json::json!({
        "task": "vod.thumbnail",
        "input": {"uri": "at://did:plc:nobody/place.stream.video/3kjunk", "cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
    });
    let reply = bed
        .send(post("/api/tasks", junk.to_string(), "192.0.2.10:5000"))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    assert_eq!(reply.json()["error"], "NotFound");
    let padded = serde_json::json!({
        "uri": "at://did:plc:nobody/place.stream.video/3kjunk",
        "cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "pad": "x".repeat(45_000),
    });
    let reply = bed
        .send(post(
            "/api/vod/thumbnail",
            padded.to_string(),
            "192.0.2.10:5000",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(rows().await, before, "junk never became a row");

    // The default limit is 120 a minute in bursts of 12, shared by every submission
    // route; one /64 is one client.
    let mut limited = None;
    for n in 0..40 {
        let peer = format!("[2001:db8:7:7::{:x}]:5000", n + 1);
        let path = if n % 2 == 0 {
            "/api/tasks"
        } else {
            "/api/vod/sprite"
        };
        let body = if n % 2 == 0 {
            junk.to_string()
        } else {
            junk["input"].to_string()
        };
        let reply = bed.send(post(path, body, &peer)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.json()["error"], "RateLimitExceeded");
            assert!(reply.headers.contains_key("retry-after"));
            limited = Some(n);
            break;
        }
    }
    assert!(
        limited.is_some_and(|n| n <= 13),
        "a /64 is refused after its burst: {limited:?}"
    );
    let other = bed
        .send(post(
            "/api/tasks",
            junk.to_string(),
            "[2001:db8:7:8::1]:5000",
        ))
        .await;
    assert_ne!(
        other.status,
        StatusCode::TOO_MANY_REQUESTS,
        "another /64 is not"
    );
}

/// Control characters in a search are input, not an outage.
#[tokio::test(flavor = "multi_thread")]
async fn control_characters_in_a_search_are_harmless() {
    let bed = TestBed::new().await;
    bed.add_video(
        "did:plc:abc123",
        "alice.test",
        "a",
        "ab talk",
        "",
        "2026-01-01T10:00:00Z",
    )
    .await;
    let reply = bed.get("/api/appview/listVideos?q=a%00b").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = bed.get("/search?q=a%00b%07").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

/// Whatever goes wrong before a handler runs (a method, a body over the limit, a path
/// that is not UTF-8) is still answered in the XRPC shape under /api/ and /bundle/.
#[tokio::test(flavor = "multi_thread")]
async fn every_api_error_has_the_xrpc_shape() {
    let bed = TestBed::new().await;
    let cases = [
        (
            request("DELETE", "/api/appview/listVideos", ""),
            405,
            "MethodNotAllowed",
        ),
        (request("PUT", "/api/tasks", "{}"), 405, "MethodNotAllowed"),
        (
            request("POST", "/api/tasks", vec![b'a'; 3 * 1024 * 1024]),
            413,
            "PayloadTooLarge",
        ),
        (request("GET", "/api/tasks/%ff", ""), 400, "InvalidRequest"),
        (
            request("GET", "/api/appview/avatar/%ff/%fe", ""),
            400,
            "InvalidRequest",
        ),
        (
            request(
                "GET",
                "/api/appview/getProfile?actor=did:key:z6MkhaXgBZD",
                "",
            ),
            400,
            "InvalidRequest",
        ),
    ];
    for (request, status, error) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let reply = bed.send(request).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
        assert!(reply.content_type.starts_with("application/json"), "{what}");
        let body = reply.json();
        assert_eq!(body["error"], error, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    let reply = bed
        .send(
            Request::post("/api/appview/registerCreator")
                .header(
                    "authorization",
                    format!("Bearer {}", common::BED_ADMIN_TOKEN),
                )
                .header("content-type", "application/json")
                .body(Body::from(r#"{"actor": "did:key:z6MkhaXgBZD"}"#))
                .expect("request"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

/// A server function's client mistakes are 4xx answers the page can show.
#[tokio::test(flavor = "multi_thread")]
async fn server_functions_answer_client_mistakes_with_4xx() {
    let bed = TestBed::new().await;
    let path = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .find(|path| path.contains("search_videos"))
        .expect("the search server function is registered");
    assert!(path.starts_with(app::error::SERVER_FN_PREFIX), "{path}");
    let form = |body: Vec<u8>| {
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request")
    };
    for (body, status) in [
        (b"".to_vec(), 400),
        (b"nonsense=%%%".to_vec(), 400),
        (format!("q={}", "a".repeat(300)).into_bytes(), 400),
        (vec![b'q'; 3 * 1024 * 1024], 400),
    ] {
        let reply = bed.send(form(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
        assert!(reply.body.contains("BadRequest"), "{}", reply.body);
    }
    let reply = bed.send(form(b"q=talk".to_vec())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// The dashboard's redirects never echo unbounded input.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_redirects_stay_short() {
    let bed = TestBed::new().await;
    let actor = "a".repeat(100_000);
    let reply = bed
        .send(
            Request::post("/admin/creators")
                .header(
                    "authorization",
                    format!("Bearer {}", common::BED_ADMIN_TOKEN),
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("actor={actor}")))
                .expect("request"),
        )
        .await;
    let location = reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(location.starts_with("/admin?error="), "{location}");
    assert!(location.len() < 2048, "{} bytes", location.len());
}

/// Signing out ends the session on the server: the same cookie, replayed, is refused.
#[tokio::test(flavor = "multi_thread")]
async fn signing_out_revokes_the_session() {
    let bed = TestBed::new().await;
    let auth = &bed.services.auth;
    let admin = server::atproto::syntax::did("did:plc:admin").expect("did");
    let jar = auth.sign_in(&admin).await.expect("sign in");
    let set_cookie = axum::response::IntoResponse::into_response(jar)
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().expect("header"));
    assert_eq!(
        auth.session(&headers).await.expect("session").as_deref(),
        Some("did:plc:admin")
    );
    let reply = bed
        .send(
            Request::post("/admin/logout")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(auth.session(&headers).await.expect("session"), None);
}

/// Native bundles describe themselves like JavaScript bundles do.
#[tokio::test(flavor = "multi_thread")]
async fn native_bundles_serve_their_manifest() {
    let bed = TestBed::new().await;
    let reply = bed.get("/api/appview").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let manifest = reply.json();
    assert_eq!(manifest["name"], "appview");
    assert_eq!(manifest["native"], true);
    assert_eq!(
        manifest["endpoints"],
        serde_json::json!([
            "getProfile",
            "getStats",
            "init",
            "listVideos",
            "registerCreator",
            "registerHost",
            "restoreVideo",
            "takedownVideo",
            "triggerSync",
            "unregisterCreator"
        ])
    );
    assert_eq!(manifest["tasks"][0]["name"], "syncCreator");
    assert_eq!(manifest["tasks"][1]["name"], "syncHost");
    assert_eq!(
        manifest["jobs"],
        serde_json::json!([{"name": "syncAllCreators", "schedule": "every 15m"}])
    );
    assert!(manifest["permissions"]["net"].is_array());
    // A task that is not public has no route.
    let reply = bed.get("/api/appview/syncCreator").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// What `python3` prints for `script` run on `input` (a file path as `sys.argv[1]`).
fn python(script: &str, input: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input");
    std::fs::write(&file, input).expect("write input");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 (scripts/test.sh installs it, and feedparser)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from python")
}

/// Reads an Atom document with feedparser, the feed reader many aggregators use.
fn feedparser(atom: &str) -> serde_json::Value {
    python(
        r#"
import feedparser, json, sys
d = feedparser.parse(sys.argv[1])
print(json.dumps({
    "bozo": bool(d.bozo),
    "error": str(d.get("bozo_exception", "")),
    "title": d.feed.get("title"),
    "links": [l.get("href") for l in d.feed.get("links", [])],
    "entries": [{
        "id": e.get("id"),
        "title": e.get("title"),
        "link": e.get("link"),
        "author": e.get("author"),
        "published": e.get("published"),
        "updated": e.get("updated"),
        "summary": e.get("summary"),
        "thumbnail": (e.get("media_thumbnail") or [{}])[0].get("url"),
    } for e in d.entries],
}))
"#,
        atom,
    )
}

/// The `loc`s of a sitemap, read by Python's XML parser (which refuses what is not
/// well-formed), and the video titles in it.
fn sitemap_locs(xml: &str) -> serde_json::Value {
    python(
        r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "v": "http://www.google.com/schemas/sitemap-video/1.1"}
print(json.dumps({
    "root": root.tag,
    "locs": [e.text for e in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")],
    "titles": [e.text for e in root.iter("{http://www.google.com/schemas/sitemap-video/1.1}title")],
    "durations": [e.text for e in root.iter("{http://www.google.com/schemas/sitemap-video/1.1}duration")],
    "players": [e.text for e in root.iter("{http://www.google.com/schemas/sitemap-video/1.1}player_loc")],
    "thumbnails": [e.text for e in root.iter("{http://www.google.com/schemas/sitemap-video/1.1}thumbnail_loc")],
}))
"#,
        xml,
    )
}

/// Crawlers and feed readers: robots.txt names the sitemap; the sitemap lists every
/// public watch page (video extension) and creator page, well-formed whatever the titles
/// hold; the Atom feeds read cleanly in feedparser with title, link, author, dates,
/// summary and thumbnail; a takedown or a hidden account leaves both at once; the
/// icons and the manifest are served.
#[tokio::test(flavor = "multi_thread")]
async fn crawlers_and_feed_readers_get_a_sitemap_feeds_and_icons() {
    let bed = TestBed::new().await;
    let public = bed.config.public_url();
    let hostile = "<script>alert(1)</script> & \"quotes\" \u{1}bell";
    bed.add_video(
        "did:plc:alice",
        "alice.test",
        "a1",
        hostile,
        "Desc <b>one</b>",
        "2026-03-01T10:00:00.000Z",
    )
    .await;
    bed.add_video(
        "did:plc:alice",
        "alice.test",
        "a2",
        "Second talk",
        "",
        "2026-03-02T10:00:00.000Z",
    )
    .await;
    bed.add_video(
        "did:plc:bob",
        "bob.test",
        "b1",
        "Bob's talk",
        "About things",
        "2026-03-03T10:00:00.000Z",
    )
    .await;

    let robots = bed.get("/robots.txt").await;
    assert_eq!(robots.status, StatusCode::OK);
    assert!(
        robots
            .body
            .contains(&format!("Sitemap: {public}/sitemap.xml")),
        "{}",
        robots.body
    );
    assert!(
        robots.body.contains("Allow: /api/vod/getThumbnail"),
        "{}",
        robots.body
    );

    let sitemap = bed.get("/sitemap.xml").await;
    assert_eq!(sitemap.status, StatusCode::OK);
    assert!(
        sitemap.content_type.starts_with("application/xml"),
        "{}",
        sitemap.content_type
    );
    let read = sitemap_locs(&sitemap.body);
    let locs: Vec<String> = serde_json::from_value(read["locs"].clone()).expect("locs");
    for path in [
        "/profile/alice.test",
        "/profile/bob.test",
        "/watch/did:plc:alice/a1",
        "/watch/did:plc:alice/a2",
        "/watch/did:plc:bob/b1",
    ] {
        assert!(
            locs.contains(&format!("{public}{path}")),
            "{path} in {locs:?}"
        );
    }
    assert_eq!(locs.len(), 5);
    assert!(
        read["titles"]
            .as_array()
            .expect("titles")
            .contains(&"<script>alert(1)</script> & \"quotes\" bell".into())
    );
    assert_eq!(read["durations"][0], "754");
    assert!(
        read["players"][0]
            .as_str()
            .expect("player")
            .starts_with(&format!("{public}/embed/"))
    );
    assert!(
        read["thumbnails"][0]
            .as_str()
            .expect("thumb")
            .starts_with(&format!("{public}/api/vod/getThumbnail?uri=at%3A%2F%2F"))
    );

    let feed = bed.get("/feed.atom").await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(
        feed.content_type.starts_with("application/atom+xml"),
        "{}",
        feed.content_type
    );
    let parsed = feedparser(&feed.body);
    assert_eq!(parsed["bozo"], false, "{parsed}");
    let entries = parsed["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3, "{parsed}");
    assert_eq!(entries[0]["title"], "Bob's talk", "newest first");
    let first = entries
        .iter()
        .find(|e| e["link"] == format!("{public}/watch/did:plc:alice/a1"))
        .expect("a1");
    assert_eq!(
        first["title"],
        "<script>alert(1)</script> & \"quotes\" bell"
    );
    assert_eq!(first["author"], "alice.test");
    assert_eq!(first["id"], "at://did:plc:alice/place.stream.video/a1");
    assert!(
        first["published"]
            .as_str()
            .is_some_and(|p| p.starts_with("2026-03-01T10:00:00")),
        "{first}"
    );
    assert!(first["updated"].is_string());
    assert_eq!(first["summary"], "Desc <b>one</b>");
    assert!(
        first["thumbnail"]
            .as_str()
            .is_some_and(|t| t.contains("/api/vod/getThumbnail?uri=")),
        "{first}"
    );
    assert!(
        parsed["links"]
            .as_array()
            .expect("links")
            .contains(&format!("{public}/feed.atom").into())
    );

    let alice = feedparser(&bed.get("/profile/alice.test/feed.atom").await.body);
    assert_eq!(alice["bozo"], false, "{alice}");
    assert_eq!(
        alice["entries"].as_array().map(Vec::len),
        Some(2),
        "{alice}"
    );
    let unknown = bed.get("/profile/nobody.test/feed.atom").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"], "NotFound");

    // The home and creator pages point feed readers at their feeds.
    let home = bed.get("/").await;
    assert!(
        home.body.contains(r#"type="application/atom+xml""#)
            && home.body.contains(r#"href="/feed.atom""#),
        "home links its feed"
    );

    // A takedown and a hidden account leave the sitemap and the feeds at once.
    let appview = bed.services.appview.clone();
    let a1: server::appview::VideoUri = "at://did:plc:alice/place.stream.video/a1"
        .parse()
        .expect("uri");
    appview
        .take_down(&a1, "spam", "the test")
        .await
        .expect("takedown");
    let bob = server::atproto::syntax::did("did:plc:bob").expect("did");
    appview
        .set_account_status(&bob, Some("suspended"))
        .await
        .expect("status");
    let locs = sitemap_locs(&bed.get("/sitemap.xml").await.body)["locs"].clone();
    assert_eq!(
        locs,
        serde_json::json!([
            format!("{public}/profile/alice.test"),
            format!("{public}/watch/did:plc:alice/a2")
        ])
    );
    let parsed = feedparser(&bed.get("/feed.atom").await.body);
    assert_eq!(
        parsed["entries"].as_array().map(Vec::len),
        Some(1),
        "{parsed}"
    );
    assert_eq!(
        bed.get("/profile/bob.test/feed.atom").await.status,
        StatusCode::NOT_FOUND
    );

    // Icons and the manifest, as the built site has them.
    let public_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../public");
    for file in [
        "favicon.ico",
        "apple-touch-icon.png",
        "manifest.webmanifest",
    ] {
        std::fs::copy(public_dir.join(file), bed.dir.path().join(file)).expect("copy");
    }
    let icon = bed.get("/favicon.ico").await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.content_type, "image/x-icon");
    assert_eq!(
        bed.get("/apple-touch-icon.png").await.content_type,
        "image/png"
    );
    let manifest = bed.get("/manifest.webmanifest").await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.json()["name"], "Streamhut");
}

/// Past 50 000 URLs the sitemap is an index of numbered pages of at most 50 000 each.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_sitemap_is_an_index_of_pages() {
    let bed = TestBed::new().await;
    bed.add_video(
        "did:plc:many",
        "many.test",
        "first",
        "First",
        "",
        "2026-01-01T00:00:00.000Z",
    )
    .await;
    bed.db
        .conn()
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
             INSERT INTO videos (uri, cid, did, rkey, title, duration_ms, created_at, indexed_at)
             SELECT 'at://did:plc:many/place.stream.video/v' || i,
                    'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
                    'did:plc:many', 'v' || i, 'Video ' || i, 60000,
                    '2026-02-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z'
             FROM n",
            (),
        )
        .await
        .expect("insert");
    let index = bed.get("/sitemap.xml").await;
    assert_eq!(index.status, StatusCode::OK);
    let read = sitemap_locs(&index.body);
    assert_eq!(
        read["root"],
        "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    );
    let public = bed.config.public_url();
    assert_eq!(
        read["locs"],
        serde_json::json!([
            format!("{public}/sitemap/1.xml"),
            format!("{public}/sitemap/2.xml")
        ])
    );
    let first = sitemap_locs(&bed.get("/sitemap/1.xml").await.body);
    assert_eq!(first["locs"].as_array().map(Vec::len), Some(50_000));
    assert_eq!(first["locs"][0], format!("{public}/profile/many.test"));
    let second = sitemap_locs(&bed.get("/sitemap/2.xml").await.body);
    assert_eq!(second["locs"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        second["locs"][1],
        format!("{public}/watch/did:plc:many/first"),
        "oldest last"
    );
    for missing in ["/sitemap/3.xml", "/sitemap/0.xml", "/sitemap/x.xml"] {
        assert_eq!(
            bed.get(missing).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}
