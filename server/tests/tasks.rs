//! The task system in one process: deduplication, the concurrency cap, result caching,
//! retries with backoff, timeouts, the HTTP contract, and the scheduler.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use app::tasks::TaskStatus;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use server::db::Db;
use server::tasks::scheduler::{JobDef, Schedule, Scheduler};
use server::tasks::{Clock, ManualClock, TaskDef, TaskFailure, TaskPolicy, TaskSystem};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Bed {
    _dir: tempfile::TempDir,
    db: Db,
    tasks: TaskSystem,
    shutdown: CancellationToken,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn bed() -> Bed {
    bed_on(Clock::system()).await
}

/// A bed whose task rules (TTLs, backoff) follow `clock`.
async fn bed_on(clock: Clock) -> Bed {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config_for(&dir);
    let db = Db::open(&config.database()).await.expect("db");
    db.migrate().await.expect("migrate");
    let policy = TaskPolicy {
        poll_interval: Duration::from_millis(50),
        failure_ttl: Duration::from_millis(300),
        clock,
        ..TaskPolicy::default()
    };
    let tasks = TaskSystem::new(db.clone(), policy).await.expect("tasks");
    let shutdown = CancellationToken::new();
    tasks.start(shutdown.clone());
    Bed {
        _dir: dir,
        db,
        tasks,
        shutdown,
    }
}

async fn finished(tasks: &TaskSystem, id: &str) -> app::tasks::TaskView {
    let view = tasks
        .wait(id, Duration::from_secs(20))
        .await
        .expect("wait")
        .expect("exists");
    assert!(
        view.status.is_terminal(),
        "still {:?} after 20 s",
        view.status
    );
    view
}

async fn count_rows(db: &Db) -> i64 {
    let mut rows = db
        .conn()
        .query("SELECT COUNT(*) FROM tasks", ())
        .await
        .expect("count");
    rows.next()
        .await
        .expect("row")
        .expect("row")
        .get(0)
        .expect("int")
}

/// 1000 concurrent submissions of one input (keys in any order) run the handler once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_submissions_run_the_handler_once() {
    let bed = bed().await;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    bed.tasks.register(TaskDef::new("count", move |_| {
        let counter = counter.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(json!({ "n": n }))
        }
    }));

    let mut submissions = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let tasks = bed.tasks.clone();
        let input = if i % 2 == 0 {
            json!({"video": "at://did:plc:abc/place.stream.video/3k", "size": {"w": 320, "h": 180}})
        } else {
            json!({"size": {"h": 180, "w": 320}, "video": "at://did:plc:abc/place.stream.video/3k"})
        };
        submissions
            .spawn(async move { tasks.submit("count", input).await.expect("submit").view.id });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(id) = submissions.join_next().await {
        ids.insert(id.expect("join"));
    }
    assert_eq!(ids.len(), 1, "one task for one input");
    let id = ids.into_iter().next().expect("id");
    let view = finished(&bed.tasks, &id).await;
    assert_eq!(view.status, TaskStatus::Complete);
    assert_eq!(view.result, Some(json!({"n": 1})));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "exactly one execution");
    assert_eq!(count_rows(&bed.db).await, 1);
}

/// With concurrency 3, at most 3 run at once, and 3 do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_concurrency_cap_holds() {
    let bed = bed().await;
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n, m) = (now.clone(), max.clone());
    bed.tasks.register(
        TaskDef::new("capped", move |_| {
            let (now, max) = (n.clone(), m.clone());
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(80)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        })
        .concurrency(3),
    );
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            bed.tasks
                .submit("capped", json!({ "i": i }))
                .await
                .expect("submit")
                .view
                .id,
        );
    }
    for id in ids {
        assert_eq!(finished(&bed.tasks, &id).await.status, TaskStatus::Complete);
    }
    assert_eq!(
        max.load(Ordering::SeqCst),
        3,
        "the cap is reached and never exceeded"
    );
}

/// Waits (in real time, briefly) until task `id` satisfies `done`.
async fn until(tasks: &TaskSystem, id: &str, done: impl Fn(&app::tasks::TaskView) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = tasks.get(id).await.expect("get").expect("exists");
        if done(&view) {
            return;
        }
        assert!(Instant::now() < deadline, "task stuck: {view:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A result is reused within its TTL (a cache hit) and recomputed after; the clock is
/// moved, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_results_expire_and_run_again() {
    let clock = ManualClock::new(at("2026-11-21T10:00:00Z"));
    let bed = bed_on(clock.clock()).await;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    bed.tasks.register(
        TaskDef::new("ttl", move |_| {
            let counter = counter.clone();
            async move { Ok(json!(counter.fetch_add(1, Ordering::SeqCst) + 1)) }
        })
        .cache_ttl(Duration::from_secs(600)),
    );
    let first = bed
        .tasks
        .submit("ttl", json!({"k": 1}))
        .await
        .expect("submit");
    assert!(!first.reused);
    finished(&bed.tasks, &first.view.id).await;

    clock.advance(Duration::from_secs(599));
    let again = bed
        .tasks
        .submit("ttl", json!({"k": 1}))
        .await
        .expect("submit");
    assert!(again.reused, "reused a second before its TTL ends");
    assert_eq!(again.view.id, first.view.id);
    assert_eq!(again.view.status, TaskStatus::Complete);
    assert_eq!(again.view.result, Some(json!(1)));
    assert!(bed.tasks.metrics().await.expect("metrics").cache_hits >= 1);

    clock.advance(Duration::from_secs(1));
    let fresh = bed
        .tasks
        .submit("ttl", json!({"k": 1}))
        .await
        .expect("submit");
    assert!(!fresh.reused, "recomputed once the TTL is over");
    assert_ne!(fresh.view.id, first.view.id);
    assert_eq!(
        finished(&bed.tasks, &fresh.view.id).await.result,
        Some(json!(2))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A failing task is retried with growing delays, then fails with its error; the
/// failure is reused only briefly. Attempts happen exactly when the moved clock says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_retries_with_backoff_then_fails() {
    let start = at("2026-11-21T10:00:00Z");
    let clock = ManualClock::new(start);
    let bed = bed_on(clock.clock()).await;
    let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (log, now) = (attempts.clone(), clock.clock());
    bed.tasks.register(
        TaskDef::new("flaky", move |ctx| {
            let (log, now) = (log.clone(), now.clone());
            async move {
                log.lock().expect("log").push((ctx.attempt, now.now_ms()));
                Err(TaskFailure::retry(format!(
                    "upstream refused (attempt {})",
                    ctx.attempt
                )))
            }
        })
        .max_attempts(3)
        .backoff(Duration::from_secs(60)),
    );
    let submitted = bed.tasks.submit("flaky", json!({})).await.expect("submit");
    let id = submitted.view.id.as_str();
    let waiting_after = |n| {
        move |view: &app::tasks::TaskView| view.attempts == n && view.status == TaskStatus::Pending
    };
    until(&bed.tasks, id, waiting_after(1)).await;

    clock.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        attempts.lock().expect("log").len(),
        1,
        "not before the backoff"
    );
    clock.advance(Duration::from_secs(1));
    until(&bed.tasks, id, waiting_after(2)).await;
    clock.advance(Duration::from_secs(120));
    let view = finished(&bed.tasks, id).await;
    assert_eq!(view.status, TaskStatus::Failed);
    assert_eq!(view.attempts, 3);
    assert_eq!(view.error.as_deref(), Some("upstream refused (attempt 3)"));
    assert_eq!(
        *attempts.lock().expect("log"),
        vec![(1, start), (2, start + 60_000), (3, start + 180_000)],
        "the backoff doubles"
    );

    let cached = bed.tasks.submit("flaky", json!({})).await.expect("submit");
    assert_eq!(cached.view.id, id, "the failure is reused briefly");
    clock.advance(Duration::from_millis(301));
    let retried = bed.tasks.submit("flaky", json!({})).await.expect("submit");
    assert_ne!(retried.view.id, id, "then the input is tried afresh");
}

/// Fatal failures, timeouts and panics end attempts with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fatal_failures_timeouts_and_panics_are_reported() {
    let bed = bed().await;
    bed.tasks.register(
        TaskDef::new("fatal", |_| async {
            Err(TaskFailure::fatal("no such video"))
        })
        .max_attempts(5),
    );
    bed.tasks.register(
        TaskDef::new("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Value::Null)
        })
        .timeout(Duration::from_millis(100))
        .max_attempts(1),
    );
    bed.tasks.register(
        TaskDef::new("panics", |ctx| async move {
            if ctx.attempt > 0 {
                panic!("boom");
            }
            Ok(Value::Null)
        })
        .max_attempts(1),
    );
    let fatal = bed
        .tasks
        .submit("fatal", json!({}))
        .await
        .expect("submit")
        .view
        .id;
    let view = finished(&bed.tasks, &fatal).await;
    assert_eq!(
        (view.status, view.attempts),
        (TaskStatus::Failed, 1),
        "no retry for a fatal failure"
    );
    assert_eq!(view.error.as_deref(), Some("no such video"));

    let slow = bed
        .tasks
        .submit("slow", json!({}))
        .await
        .expect("submit")
        .view
        .id;
    let view = finished(&bed.tasks, &slow).await;
    assert!(
        view.error
            .as_deref()
            .is_some_and(|e| e.contains("timed out")),
        "{view:?}"
    );

    let panics = bed
        .tasks
        .submit("panics", json!({}))
        .await
        .expect("submit")
        .view
        .id;
    let view = finished(&bed.tasks, &panics).await;
    assert_eq!(view.error.as_deref(), Some("the task panicked"));
    assert_eq!(bed.tasks.metrics().await.expect("metrics").failed, 3);
}

async fn call(router: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `POST /api/tasks` and `GET /api/tasks/{id}`: 202 while running, 200 when complete,
/// an XRPC error with the view when failed, long-polling with `?wait=`; bad input is a
/// 400 that stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_http_contract() {
    let bed = bed().await;
    #[derive(serde::Deserialize)]
    struct Echo {
        text: String,
        delay_ms: u64,
    }
    bed.tasks.register(
        TaskDef::typed("echo", |input: Echo, _| async move {
            tokio::time::sleep(Duration::from_millis(input.delay_ms)).await;
            Ok(json!({ "echo": input.text }))
        })
        .public(true),
    );
    bed.tasks.register(
        TaskDef::new("broken", |_| async {
            Err(TaskFailure::fatal("cannot do that"))
        })
        .public(true),
    );
    bed.tasks
        .register(TaskDef::new("internal", |_| async { Ok(Value::Null) }));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config_for(&dir);
    let mut services = server::services::Services::start(&config, bed.db.clone(), &bed.shutdown)
        .await
        .expect("services");
    services.tasks = bed.tasks.clone();
    let router = server::web::router(server::web::AppState::new(&config, &services));

    let (status, view) = call(
        &router,
        "POST",
        "/api/tasks",
        r#"{"task":"echo","input":{"text":"hi","delay_ms":300}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    assert!(
        matches!(view["status"].as_str(), Some("pending" | "running")),
        "{view}"
    );
    let id = view["id"].as_str().expect("id").to_string();

    let (status, view) = call(&router, "GET", &format!("/api/tasks/{id}?wait=10"), "").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete");
    assert_eq!(view["result"], json!({"echo": "hi"}));
    assert_eq!(view["attempts"], 1);
    assert!(view["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));

    let (status, view) = call(
        &router,
        "POST",
        "/api/tasks?wait=10",
        r#"{"task":"echo","input":{"delay_ms":0,"text":"now"}}"#,
    )
    .await;
    assert_eq!(
        (status, &view["result"]),
        (StatusCode::OK, &json!({"echo": "now"}))
    );

    let (status, view) = call(
        &router,
        "POST",
        "/api/tasks?wait=10",
        r#"{"task":"broken","input":{}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(view["error"], "TaskFailed");
    assert_eq!(view["message"], "cannot do that");
    assert_eq!(view["status"], "failed");
    assert!(view["id"].is_string());

    let before = count_rows(&bed.db).await;
    for (body, why) in [
        ("not json", "not JSON"),
        (r#"{"task":"echo"}"#, "no input"),
        (r#"{"task":"echo","input":[1]}"#, "input not an object"),
        (
            r#"{"task":"echo","input":{"text":1}}"#,
            "input of the wrong shape",
        ),
    ] {
        let (status, body) = call(&router, "POST", "/api/tasks", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["error"], "InvalidRequest", "{why}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{why}"
        );
    }
    let (status, body) = call(
        &router,
        "POST",
        "/api/tasks",
        r#"{"task":"internal","input":{}}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("UnknownTask"))
    );
    let (status, _) = call(
        &router,
        "POST",
        "/api/tasks?wait=31",
        r#"{"task":"echo","input":{"text":"x","delay_ms":0}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        count_rows(&bed.db).await,
        before,
        "refused input stores nothing"
    );

    let (status, body) = call(&router, "GET", "/api/tasks/0123456789abcdef", "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (status, _) = call(&router, "GET", "/api/tasks/bad%20id", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let response = router
        .clone()
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("metrics");
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf8");
    assert!(text.contains("streamhut_tasks_completed_total 2"), "{text}");
    assert!(text.contains("streamhut_tasks_failed_total 1"), "{text}");
    assert!(text.contains("streamhut_tasks_queue_depth 0"), "{text}");
}

fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("time")
        .timestamp_millis()
}

/// Missed runs are coalesced into one, and the handler learns when the last run was.
#[tokio::test]
async fn the_scheduler_coalesces_missed_runs() {
    let bed = bed().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let scheduler = Scheduler::new(bed.db.clone());
    scheduler.add(JobDef::new(
        "sync",
        "every 10m".parse().expect("schedule"),
        move |ctx| {
            let log = log.clone();
            async move {
                log.lock()
                    .expect("log")
                    .push(ctx.last_run_at.map(|t| t.timestamp_millis()));
                Ok(())
            }
        },
    ));
    assert_eq!(
        scheduler
            .tick(at("2026-11-21T10:00:00Z"))
            .await
            .expect("tick")
            .len(),
        1,
        "first run at start"
    );
    assert_eq!(
        scheduler
            .tick(at("2026-11-21T10:05:00Z"))
            .await
            .expect("tick")
            .len(),
        0,
        "not due yet"
    );
    // The server was down for an hour: six occurrences missed, one run.
    assert_eq!(
        scheduler
            .tick(at("2026-11-21T11:05:00Z"))
            .await
            .expect("tick")
            .len(),
        1
    );
    assert_eq!(
        scheduler
            .tick(at("2026-11-21T11:06:00Z"))
            .await
            .expect("tick")
            .len(),
        0
    );
    assert_eq!(
        scheduler
            .tick(at("2026-11-21T11:15:00Z"))
            .await
            .expect("tick")
            .len(),
        1
    );
    assert_eq!(
        *seen.lock().expect("log"),
        vec![
            None,
            Some(at("2026-11-21T10:00:00Z")),
            Some(at("2026-11-21T11:05:00Z"))
        ]
    );

    let cron = Scheduler::new(bed.db.clone());
    cron.add(JobDef::new(
        "cron",
        "*/10 * * * *".parse::<Schedule>().expect("cron"),
        |_| async { Ok(()) },
    ));
    assert_eq!(
        cron.tick(at("2026-11-21T10:03:00Z"))
            .await
            .expect("tick")
            .len(),
        0,
        "waits for :10"
    );
    assert_eq!(
        cron.tick(at("2026-11-21T10:10:00Z"))
            .await
            .expect("tick")
            .len(),
        1
    );
    assert_eq!(
        cron.tick(at("2026-11-21T12:00:00Z"))
            .await
            .expect("tick")
            .len(),
        1,
        "eleven missed, one run"
    );
    assert_eq!(
        cron.tick(at("2026-11-21T12:05:00Z"))
            .await
            .expect("tick")
            .len(),
        0
    );
}

/// A group of jobs is installed as a whole: jobs left out stop, others are untouched.
#[tokio::test]
async fn a_job_group_replaces_its_previous_members() {
    let bed = bed().await;
    let scheduler = Scheduler::new(bed.db.clone());
    let job = |name: &str| {
        JobDef::new(name, "every 1m".parse().expect("schedule"), |_| async {
            Ok(())
        })
    };
    let ran = |runs: Vec<server::tasks::scheduler::JobRun>| {
        let mut names: Vec<String> = runs.into_iter().map(|run| run.job).collect();
        names.sort();
        names
    };
    scheduler.add(job("core"));
    scheduler.replace_group("bundles", vec![job("b:one"), job("b:two")]);
    let runs = scheduler
        .tick(at("2026-11-21T10:00:00Z"))
        .await
        .expect("tick");
    assert_eq!(ran(runs), ["b:one", "b:two", "core"]);

    scheduler.replace_group("bundles", vec![job("b:two"), job("b:three")]);
    let runs = scheduler
        .tick(at("2026-11-21T10:01:00Z"))
        .await
        .expect("tick");
    assert_eq!(ran(runs), ["b:three", "b:two", "core"], "b:one was dropped");

    scheduler.replace_group("bundles", Vec::new());
    let runs = scheduler
        .tick(at("2026-11-21T10:02:00Z"))
        .await
        .expect("tick");
    assert_eq!(ran(runs), ["core"], "a job outside the group stays");
}

/// A run in progress blocks the next one, even when it is overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_runs_never_overlap() {
    let bed = bed().await;
    let release = Arc::new(tokio::sync::Notify::new());
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (r, n, m) = (release.clone(), running.clone(), max.clone());
    let scheduler = Scheduler::new(bed.db.clone());
    scheduler.add(JobDef::new(
        "slow",
        Schedule::Every(Duration::from_secs(60)),
        move |_| {
            let (release, running, max) = (r.clone(), n.clone(), m.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                release.notified().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        },
    ));
    let scheduler = Arc::new(scheduler);
    let t0 = at("2026-11-21T10:00:00Z");
    let first = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.tick(t0).await }
    });
    while running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // (The lease covers the job's timeout; a run is killed at its timeout anyway.)
    for minutes in [0, 1, 5, 10] {
        let runs = scheduler.tick(t0 + minutes * 60_000).await.expect("tick");
        assert!(
            runs.is_empty(),
            "a run started while one was in progress ({minutes} min later)"
        );
    }
    release.notify_one();
    assert_eq!(first.await.expect("join").expect("tick").len(), 1);
    assert_eq!(
        scheduler.tick(t0 + 59_000).await.expect("tick").len(),
        0,
        "due 60 s after the start"
    );
    let second = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.tick(t0 + 120_000).await }
    });
    while running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    release.notify_one();
    assert_eq!(second.await.expect("join").expect("tick").len(), 1);
    assert_eq!(max.load(Ordering::SeqCst), 1);
}

/// History keeps the last runs, with durations and errors.
#[tokio::test]
async fn job_history_keeps_the_last_runs() {
    let bed = bed().await;
    let scheduler = Scheduler::new(bed.db.clone());
    scheduler.add(JobDef::new(
        "flaky",
        Schedule::Every(Duration::from_secs(1)),
        |ctx| async move {
            match ctx.last_run_at {
                Some(t) if t.timestamp() % 2 == 0 => Err("upstream down".to_string()),
                _ => Ok(()),
            }
        },
    ));
    let t0 = at("2026-11-21T10:00:00Z");
    for i in 0..60 {
        scheduler.tick(t0 + i * 1000).await.expect("tick");
    }
    let history = scheduler.history(100).await.expect("history");
    assert_eq!(history.len(), server::tasks::scheduler::HISTORY_LEN);
    assert_eq!(
        history[0].started_at, "2026-11-21T10:00:59.000Z",
        "newest first"
    );
    assert_eq!(
        history
            .iter()
            .filter(|r| r.error.as_deref() == Some("upstream down"))
            .count(),
        25
    );
}
