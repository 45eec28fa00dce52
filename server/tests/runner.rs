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
