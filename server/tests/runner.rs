//! The sandbox with real Deno: bundling, manifests, calls, and the permission boundary
//! (hostile bundles are in `runner_hostile.rs`).

mod common;

use std::time::Duration;

use serde_json::json;
use server::runner::manifest::Manifest;
use server::runner::permissions::Permissions;
use server::runner::sandbox::{Launch, Reply, Sandbox, SandboxError, ServeGrants};
use server::secret::Secret;

use common::runner::{bundle_fixture, policy};

/// A fixture bundles with the shipped SDK, declares its manifest, and answers calls.
#[tokio::test]
async fn a_bundle_declares_its_manifest_and_answers_calls() {
    let (policy, harness, _dir) = policy();
    let code = bundle_fixture("hello").await;

    let (_, raw) = Sandbox::start(policy.clone(), &harness, Launch::Extract, &code)
        .await
        .expect("extract");
    let manifest = Manifest::validate(raw, Some("hello")).expect("valid manifest");
    let view = serde_json::to_value(manifest.view()).expect("json");
    assert_eq!(view["endpoints"], json!(["fails", "hello", "page"]));
    assert_eq!(
        view["tasks"],
        json!([{"name": "square", "concurrency": 2, "cacheTtl": 60}])
    );
    assert_eq!(
        view["jobs"],
        json!([{"name": "tick", "schedule": "every 1m"}])
    );
    assert_eq!(view["sdkVersion"], server::runner::SDK_VERSION);

    let grants = ServeGrants {
        permissions: manifest.permissions.with_env(["API_KEY"]),
        env: vec![("GREETING".to_string(), Secret::new("hej"))],
        egress: None,
        kv: None,
    };
    let (sandbox, _) = Sandbox::start(policy, &harness, Launch::Serve(grants), &code)
        .await
        .expect("start");

    let reply = sandbox
        .call("hello", &json!({"name": "ada"}), &json!({}))
        .await
        .expect("call");
    assert_eq!(reply, Reply::Json(json!({"hi": "ada", "greeting": "hej"})));

    match sandbox
        .call("page", &json!({"title": "<b>"}), &json!({}))
        .await
        .expect("call")
    {
        Reply::Http {
            status,
            headers,
            body,
        } => {
            assert_eq!(status, 201);
            assert!(headers.contains(&("x-bundle".to_string(), "hello".to_string())));
            assert_eq!(String::from_utf8(body).expect("utf8"), "<h1><b></h1>");
        }
        other => panic!("expected a Response, got {other:?}"),
    }

    let err = sandbox
        .call("fails", &json!({}), &json!({}))
        .await
        .expect_err("throws");
    assert_eq!(
        err,
        SandboxError::Handler("Error: this endpoint always fails".into())
    );
    let err = sandbox
        .call("missing", &json!({}), &json!({}))
        .await
        .expect_err("no export");
    assert!(err.to_string().contains("no export named missing"), "{err}");

    // Calls interleave on one warm process.
    let calls = (0..50).map(|i| {
        let sandbox = &sandbox;
        async move { sandbox.call("hello", &json!({"name": i}), &json!({})).await }
    });
    for (i, reply) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            reply.expect("call"),
            Reply::Json(json!({"hi": i, "greeting": "hej"}))
        );
    }
    assert!(sandbox.is_alive());
}

/// The pool reuses a warm process per key, replaces dead ones, retires the least recently
/// used when full, retires idle ones, and makes callers wait (bounded) when all are busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_reuses_replaces_bounds_and_retires() {
    use std::sync::Arc;
    use std::time::Duration;

    use server::runner::pool::{PoolError, PoolHandle, PoolPolicy, WorkerKey, WorkerSpec};
    use tokio_util::sync::CancellationToken;

    let (policy, harness, _dir) = policy();
    let code: Arc<str> = bundle_fixture("hello").await.into();
    let shutdown = CancellationToken::new();
    let pool = PoolHandle::start(
        PoolPolicy {
            max_workers: 2,
            idle_timeout: Duration::from_millis(600),
            queue_wait: Duration::from_millis(500),
        },
        policy.clone(),
        harness,
        shutdown.clone(),
    );
    // `version` names the code: a distinct CID and greeting each.
    let spec_for = |did: &str, version: &str| {
        let permissions = Permissions::default().with_env(["GREETING"]);
        WorkerSpec {
            key: WorkerKey {
                did: server::atproto::syntax::did(did).expect("did"),
                bundle: "hello".to_string(),
                cid: server::atproto::blob::blob_cid(version.as_bytes()),
                permissions: permissions.clone(),
                secrets_digest: String::new(),
            },
            code: code.clone(),
            grants: ServeGrants {
                permissions,
                env: vec![("GREETING".into(), Secret::new(version))],
                egress: None,
                kv: None,
            },
        }
    };
    let spec = |version: &str| spec_for("did:plc:alice", version);
    let greet = |sandbox: Arc<Sandbox>| async move {
        sandbox
            .call("hello", &json!({}), &json!({}))
            .await
            .expect("call")
    };

    let a1 = pool.acquire(spec("a")).await.expect("a");
    let a2 = pool.acquire(spec("a")).await.expect("a again");
    assert!(Arc::ptr_eq(&a1, &a2), "a warm process is reused");
    // The same code, permissions and secrets deployed by another author: its own process.
    let other = pool
        .acquire(spec_for("did:plc:mallory", "a"))
        .await
        .expect("another author");
    assert!(
        !Arc::ptr_eq(&a1, &other),
        "a process never serves two authors"
    );
    drop((a1, a2, other));
    let b = pool.acquire(spec("b")).await.expect("b");
    assert_eq!(
        greet(b.clone()).await,
        Reply::Json(json!({"hi": "world", "greeting": "b"}))
    );
    // Full: `a` (idle, least recently used) is retired to make room for `c`.
    let c = pool.acquire(spec("c")).await.expect("c");
    assert_eq!(
        greet(c.clone()).await,
        Reply::Json(json!({"hi": "world", "greeting": "c"}))
    );
    assert_eq!(pool.stats().await.expect("stats").workers, 2);

    // All busy (b and c are held): a new key waits, then gives up clearly.
    let err = pool.acquire(spec("d")).await.expect_err("no room");
    assert!(matches!(err, PoolError::QueueTimeout(_)), "{err}");

    // A dead process is replaced on the next acquire; the other worker never notices.
    c.kill();
    let c2 = pool.acquire(spec("c")).await.expect("c replaced");
    assert!(!Arc::ptr_eq(&c, &c2));
    assert_eq!(
        greet(c2.clone()).await,
        Reply::Json(json!({"hi": "world", "greeting": "c"}))
    );
    assert_eq!(
        greet(b.clone()).await,
        Reply::Json(json!({"hi": "world", "greeting": "b"}))
    );
    drop((b, c, c2));

    // Idle workers are retired.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.stats().await.expect("stats").workers > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle workers still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
}

/// A bundle reaches its declared hosts through the egress forwarder with `fetch` as the
/// web defines it: methods, bodies, headers, redirects followed hop by hop (each one
/// checked), `Response.url` and `redirected`; an undeclared host is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_fetch_their_declared_hosts_through_the_forwarder() {
    use axum::routing::{get, post};
    use server::runner::egress::Egress;
    use tokio_util::sync::CancellationToken;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let kind = headers
                    .get("x-kind")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                format!("{kind}:{body}")
            }),
        )
        .route(
            "/hop",
            get(|| async { axum::response::Redirect::temporary("/hello") }),
        )
        .route(
            "/away",
            get(move || async move {
                axum::response::Redirect::temporary(&format!("http://127.0.0.2:{port}/hello"))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let shutdown = CancellationToken::new();
    let egress = Egress::start(true, Duration::from_secs(5), shutdown.child_token())
        .await
        .expect("egress");
    let (policy, harness, dir) = policy();
    let entry = dir.path().join("fetcher.ts");
    std::fs::write(
        &entry,
        r#"import { endpoint, manifest } from "at-run";
export const bundle = manifest({ name: "fetcher" });
export const get = endpoint({ handler: async (args: any) => { const r = await fetch(args.url); return { status: r.status, body: await r.text(), url: r.url, redirected: r.redirected }; } });
export const post = endpoint({ handler: async (args: any) => (await fetch(args.url, { method: "POST", headers: { "x-kind": "note" }, body: "payload" })).text() });
"#,
    )
    .expect("write");
    let code = server::runner::bundler::bundle(&common::runner::deno(), &entry)
        .await
        .expect("bundle");
    let grants = ServeGrants {
        permissions: Permissions::new([format!("127.0.0.1:{port}").as_str()], []).expect("valid"),
        env: Vec::new(),
        egress: Some(egress),
        kv: None,
    };
    let (sandbox, _) = Sandbox::start(policy, &harness, Launch::Serve(grants), &code)
        .await
        .expect("start");
    let base = format!("http://127.0.0.1:{port}");
    let call = |export: &'static str, url: String| {
        let sandbox = &sandbox;
        async move {
            sandbox
                .call(export, &json!({ "url": url }), &json!({}))
                .await
        }
    };

    assert_eq!(
        call("get", format!("{base}/hello")).await,
        Ok(Reply::Json(
            json!({"status": 200, "body": "hi", "url": format!("{base}/hello"), "redirected": false})
        ))
    );
    assert_eq!(
        call("post", format!("{base}/echo")).await,
        Ok(Reply::Json(json!("note:payload")))
    );
    assert_eq!(
        call("get", format!("{base}/hop")).await,
        Ok(Reply::Json(
            json!({"status": 200, "body": "hi", "url": format!("{base}/hello"), "redirected": true})
        ))
    );
    for url in [
        format!("{base}/away"),
        format!("http://127.0.0.2:{port}/hello"),
    ] {
        match call("get", url.clone()).await {
            Err(SandboxError::Handler(message)) => assert!(
                message.contains("Requires net access to \"127.0.0.2:"),
                "{url}: {message}"
            ),
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }
    shutdown.cancel();
}

/// A missing Deno is reported as such, with what to set.
#[tokio::test]
async fn a_missing_deno_says_how_to_point_at_one() {
    let (policy, harness, _dir) = policy();
    let policy = std::sync::Arc::new(server::runner::sandbox::SandboxPolicy {
        deno: "/nonexistent/bin/deno".into(),
        ..(*policy).clone()
    });
    match Sandbox::start(policy, &harness, Launch::Extract, "export {};").await {
        Err(SandboxError::Spawn(message)) => {
            assert!(
                message.contains("/nonexistent/bin/deno") && message.contains("DENO_PATH"),
                "{message}"
            );
            assert!(!message.contains("os error"), "{message}");
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

/// The egress forwarder holds no bundle's traffic in memory: a process may have at most
/// `MAX_REQUESTS_PER_PROCESS` requests in flight (more are refused at once), and a body
/// declared larger than the limit is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_egress_forwarder_bounds_each_process() {
    use server::runner::egress::{Egress, MAX_REQUEST_BYTES, MAX_REQUESTS_PER_PROCESS};
    use tokio_util::sync::CancellationToken;

    // An upstream that takes every request and never answers.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = upstream.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = upstream.accept().await {
            held.push(socket);
        }
    });
    let shutdown = CancellationToken::new();
    let egress = Egress::start(true, Duration::from_secs(30), shutdown.clone())
        .await
        .expect("egress");
    let grant = egress.grant(&["127.0.0.1".to_string()].into_iter().collect());
    let client = reqwest::Client::new();
    let send = |body: Option<Vec<u8>>| {
        let request = client
            .post(grant.url())
            .header("x-atrun-egress", grant.token())
            .header("x-atrun-url", format!("http://127.0.0.1:{port}/slow"))
            .timeout(Duration::from_secs(3));
        match body {
            Some(body) => request.body(body),
            None => request,
        }
        .send()
    };
    // A body declared too large is refused before a byte of it is read or sent.
    let mut raw = tokio::net::TcpStream::connect(
        grant
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/'),
    )
    .await
    .expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nhost: egress\r\nx-atrun-egress: {}\r\nx-atrun-url: http://127.0.0.1:{port}/big\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        grant.token(),
        MAX_REQUEST_BYTES + 1
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, head.as_bytes())
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Requests in flight are bounded per process: one more is refused at once.
    let mut pending = Vec::new();
    for _ in 0..MAX_REQUESTS_PER_PROCESS {
        pending.push(tokio::spawn(send(None)));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = send(None).await.expect("an answer");
        if response.status() == 429 || std::time::Instant::now() > deadline {
            break response;
        }
    };
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-atrun-egress-error"], "busy");
    for request in pending {
        request.abort();
    }
    shutdown.cancel();
}
