//! The HTTP edge: pages rendered on the server, health, errors in the XRPC shape.

mod common;

use axum::http::StatusCode;
use common::{TestBed, config_for};
use server::config::DatabaseLocation;
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
            .contains("<title>Page not found · Streamhut</title>"),
        "{}",
        reply.body
    );
}

/// Unknown API paths answer JSON, not a page.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_paths_are_xrpc_404s() {
    let bed = TestBed::new().await;
    let reply = bed.get("/api/doesNotExist").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "NotFound");
}
