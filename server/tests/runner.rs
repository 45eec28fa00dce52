//! The sandbox with real Deno: bundling, manifests, calls, and the permission boundary
//! (hostile bundles are in `runner_hostile.rs`).

mod common;

use serde_json::json;
use server::runner::manifest::Manifest;
use server::runner::permissions::{self, Permissions};
use server::runner::sandbox::{Reply, Sandbox, SandboxError};

use common::runner::{bundle_fixture, policy};

/// A fixture bundles with the shipped SDK, declares its manifest, and answers calls.
#[tokio::test]
async fn a_bundle_declares_its_manifest_and_answers_calls() {
    let (policy, harness, _dir) = policy();
    let code = bundle_fixture("hello").await;

    let extract = permissions::extract_args(policy.heap_mb, &harness);
    let (_, raw) = Sandbox::start(policy.clone(), extract, Vec::new(), &code, true)
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
    assert_eq!(view["sdkVersion"], "0.1.0");

    let permissions = manifest.permissions.with_env(["API_KEY"]);
    let args = permissions::serve_args(&permissions, true, policy.heap_mb, &harness);
    let env = vec![("GREETING".to_string(), "hej".to_string())];
    let (sandbox, _) = Sandbox::start(policy, args, env, &code, false)
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
    let _ = Permissions::default();
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
        shutdown.clone(),
    );
    let spec = |cid: &str| {
        let permissions = Permissions::default().with_env(["GREETING"]);
        WorkerSpec {
            key: WorkerKey {
                cid: cid.to_string(),
                permissions: permissions.clone(),
                secrets_digest: String::new(),
            },
            code: code.clone(),
            args: permissions::serve_args(&permissions, true, 128, &harness),
            env: vec![("GREETING".into(), cid.to_string())],
        }
    };
    let greet = |sandbox: Arc<Sandbox>| async move {
        sandbox
            .call("hello", &json!({}), &json!({}))
            .await
            .expect("call")
    };

    let a1 = pool.acquire(spec("a")).await.expect("a");
    let a2 = pool.acquire(spec("a")).await.expect("a again");
    assert!(Arc::ptr_eq(&a1, &a2), "a warm process is reused");
    drop((a1, a2));
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pool.stats().await.expect("stats").workers, 0);
    shutdown.cancel();
}
