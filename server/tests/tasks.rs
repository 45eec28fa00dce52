//! The task system in one process: deduplication, the concurrency cap, result caching,
//! retries with backoff, timeouts, the HTTP contract, and the scheduler.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use server::db::Db;
use server::tasks::Status as TaskStatus;
use server::tasks::scheduler::{JobDef, Schedule, Scheduler};
use server::tasks::{
    Clock, FailureKind, Lane, ManualClock, TaskDef, TaskError, TaskFailure, TaskPolicy, TaskSystem,
};
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
    bed_with(TaskPolicy {
        clock,
        ..TaskPolicy::default()
    })
    .await
}

/// A bed with `policy`, polling often and forgetting failures fast.
async fn bed_with(policy: TaskPolicy) -> Bed {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::config_for(&dir);
    let db = Db::open(&config.database()).await.expect("db");
    db.migrate().await.expect("migrate");
    let policy = TaskPolicy {
        poll_interval: Duration::from_millis(50),
        failure_ttl: Duration::from_millis(300),
        ..policy
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

async fn finished(tasks: &TaskSystem, id: &str) -> server::tasks::Task {
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
    common::count(db, "SELECT COUNT(*) FROM tasks", ()).await
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
            .spawn(async move { tasks.submit("count", input).await.expect("submit").task.id });
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
                .task
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
async fn until(tasks: &TaskSystem, id: &str, done: impl Fn(&server::tasks::Task) -> bool) {
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
    finished(&bed.tasks, &first.task.id).await;

    clock.advance(Duration::from_secs(599));
    let again = bed
        .tasks
        .submit("ttl", json!({"k": 1}))
        .await
        .expect("submit");
    assert!(again.reused, "reused a second before its TTL ends");
    assert_eq!(again.task.id, first.task.id);
    assert_eq!(again.task.status, TaskStatus::Complete);
    assert_eq!(again.task.result, Some(json!(1)));
    assert!(bed.tasks.metrics().await.expect("metrics").cache_hits >= 1);

    clock.advance(Duration::from_secs(1));
    let fresh = bed
        .tasks
        .submit("ttl", json!({"k": 1}))
        .await
        .expect("submit");
    assert!(!fresh.reused, "recomputed once the TTL is over");
    assert_ne!(fresh.task.id, first.task.id);
    assert_eq!(
        finished(&bed.tasks, &fresh.task.id).await.result,
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
    let id = submitted.task.id.as_str();
    let waiting_after = |n| {
        move |view: &server::tasks::Task| view.attempts == n && view.status == TaskStatus::Pending
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
    assert_eq!(cached.task.id, id, "the failure is reused briefly");
    clock.advance(Duration::from_millis(301));
    let retried = bed.tasks.submit("flaky", json!({})).await.expect("submit");
    assert_ne!(retried.task.id, id, "then the input is tried afresh");
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
        .task
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
        .task
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
        .task
        .id;
    let view = finished(&bed.tasks, &panics).await;
    assert_eq!(view.error.as_deref(), Some("the task failed unexpectedly"));
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
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a fatal failure is the input's: {view}"
    );
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

fn lane(owner: &str, name: &str, concurrency: u32) -> Lane {
    Lane {
        key: format!("{owner}/{name}"),
        owner: owner.to_string(),
        concurrency,
        cache_ttl: Duration::from_secs(60),
    }
}

/// The head-of-line attack: anonymous callers queue 140 tasks in one author's
/// concurrency-1 lane (and that author fills their other lanes too). Every other kind
/// and every other author's lane still runs at once: claiming leaves saturated lanes
/// and owners out and takes the rest round-robin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_lane_never_delays_another_kind_or_author() {
    let bed = bed().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    bed.tasks.register(
        TaskDef::new("bundle", move |ctx| {
            let held = held.clone();
            async move {
                if ctx.input["who"] == "mallory" {
                    let _ = held.acquire().await.map(|permit| permit.forget());
                }
                Ok(json!({"ran": ctx.input["n"]}))
            }
        })
        .concurrency(8)
        .per_owner(3),
    );
    bed.tasks
        .register(TaskDef::new("thumb", |_| async { Ok(json!("made")) }).concurrency(1));

    for n in 0..140 {
        bed.tasks
            .submit_in(
                "bundle",
                json!({"who": "mallory", "n": n}),
                Some(lane("mallory", "slow", 1)),
            )
            .await
            .expect("queued");
    }
    for other in ["a", "b", "c", "d"] {
        for n in 0..5 {
            bed.tasks
                .submit_in(
                    "bundle",
                    json!({"who": "mallory", "lane": other, "n": n}),
                    Some(lane("mallory", other, 2)),
                )
                .await
                .expect("queued");
        }
    }
    // Mallory's tasks take the slots she may have.
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_state(&bed.db, "running", "mallory").await < 3 {
        assert!(Instant::now() < deadline, "mallory's tasks never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let thumb = bed
        .tasks
        .submit("thumb", json!({"video": 1}))
        .await
        .expect("thumb");
    let alice = bed
        .tasks
        .submit_in(
            "bundle",
            json!({"who": "alice", "n": 1}),
            Some(lane("alice", "fast", 1)),
        )
        .await
        .expect("alice");
    assert_eq!(
        finished(&bed.tasks, &thumb.task.id).await.result,
        Some(json!("made"))
    );
    assert_eq!(
        finished(&bed.tasks, &alice.task.id).await.result,
        Some(json!({"ran": 1}))
    );
    let waited = started.elapsed();
    assert_eq!(
        in_state(&bed.db, "running", "mallory").await,
        3,
        "mallory never runs more than her per-author cap"
    );
    assert!(
        in_state(&bed.db, "pending", "mallory").await >= 150,
        "mallory's queue is still full: the others did not wait for it"
    );
    eprintln!("an unrelated task waited {waited:?} behind a saturated lane");
    gate.add_permits(1000);
}

/// How many of `owner`'s tasks are in `status`.
async fn in_state(db: &Db, status: &str, owner: &str) -> i64 {
    common::count(
        db,
        "SELECT COUNT(*) FROM tasks WHERE status = ?1 AND owner = ?2",
        [status, owner],
    )
    .await
}

/// Queues are bounded: per lane (or per kind without lanes) and per owner. Refused
/// submissions store nothing; a cached or in-flight input is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_are_bounded_per_lane_kind_and_owner() {
    let bed = bed_with(TaskPolicy {
        max_pending: 5,
        max_pending_per_owner: 8,
        ..TaskPolicy::default()
    })
    .await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    bed.tasks.register(TaskDef::new("held", move |_| {
        let held = held.clone();
        async move {
            let _ = held.acquire().await.map(|permit| permit.forget());
            Ok(Value::Null)
        }
    }));
    // One runs, five wait: the sixth waiting one is refused.
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..10 {
        match bed.tasks.submit("held", json!({"n": n})).await {
            Ok(_) => accepted += 1,
            Err(err) => {
                refused.get_or_insert(err);
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        matches!(refused, Some(TaskError::QueueFull(_))),
        "{refused:?}"
    );
    assert!((5..=6).contains(&accepted), "{accepted}");
    let rows = count_rows(&bed.db).await;
    assert_eq!(rows, accepted, "refused submissions store nothing");
    assert!(
        bed.tasks.submit("held", json!({"n": 0})).await.is_ok(),
        "an input already queued is answered as ever"
    );

    // Per owner: lanes of one owner share its bound; another owner is unaffected.
    let mut queued = 0;
    for lane_name in ["x", "y", "z"] {
        for n in 0..4 {
            if bed
                .tasks
                .submit_in(
                    "held",
                    json!({"lane": lane_name, "n": n}),
                    Some(lane("mallory", lane_name, 1)),
                )
                .await
                .is_ok()
            {
                queued += 1;
            }
        }
    }
    assert!(queued <= 8 + 3, "{queued} queued for one owner");
    assert!(
        bed.tasks
            .submit_in("held", json!({"who": "alice"}), Some(lane("alice", "x", 1)))
            .await
            .is_ok()
    );
    gate.add_permits(1000);
}

/// Each owner's finished results are kept within a byte budget, the oldest deleted
/// first; other owners' results are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_kept_results_stay_within_their_budget() {
    let budget = 64 * 1024;
    let bed = bed_with(TaskPolicy {
        results_per_owner_bytes: budget,
        ..TaskPolicy::default()
    })
    .await;
    bed.tasks.register(
        TaskDef::new("big", |ctx| async move {
            Ok(json!({"n": ctx.input["n"], "pad": "x".repeat(4000)}))
        })
        .concurrency(4),
    );
    let alice = bed
        .tasks
        .submit_in("big", json!({"n": -1}), Some(lane("alice", "big", 4)))
        .await
        .expect("alice");
    finished(&bed.tasks, &alice.task.id).await;
    let mut last = None;
    for n in 0..100 {
        let submitted = bed
            .tasks
            .submit_in("big", json!({"n": n}), Some(lane("mallory", "big", 4)))
            .await
            .expect("submit");
        last = Some(submitted.task.id.clone());
        finished(&bed.tasks, &submitted.task.id).await;
    }
    let mut rows = bed
        .db
        .conn()
        .query(
            "SELECT COALESCE(SUM(length(input) + length(result) + 256), 0), COUNT(*) FROM tasks WHERE owner = 'mallory'",
            (),
        )
        .await
        .expect("sum");
    let row = rows.next().await.expect("row").expect("row");
    let (bytes, kept): (i64, i64) = (row.get(0).expect("bytes"), row.get(1).expect("count"));
    assert!(
        bytes as u64 <= budget + budget / 8 + 8192,
        "{bytes} bytes kept for one owner ({kept} rows)"
    );
    assert!(kept < 100 && kept > 5, "{kept}");
    let newest = bed
        .tasks
        .get(&last.expect("last"))
        .await
        .expect("get")
        .expect("the newest result is kept");
    assert_eq!(newest.result.expect("result")["n"], 99);
    assert!(
        bed.tasks.get(&alice.task.id).await.expect("get").is_some(),
        "another owner's result is untouched"
    );
}

/// A kind's admission check runs before a submission becomes a row; a failure keeps
/// its internal cause out of what is stored and shown, and says whose fault it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_never_becomes_a_row_and_failures_show_only_their_public_message() {
    let bed = bed().await;
    bed.tasks.register(
        TaskDef::new("checked", |_| async {
            Err(TaskFailure::retry("the upstream failed")
                .kind(FailureKind::Upstream)
                .because("connect to 10.1.2.3:5432 refused; temp file /tmp/streamhut-segment-x"))
        })
        .max_attempts(1)
        .admit(|input| async move {
            match input.get("video").and_then(Value::as_str) {
                Some(video) if video.starts_with("at://") => Ok(()),
                Some(_) => Err(TaskError::NotFound("no such video".into())),
                None => Err(TaskError::InvalidInput("video is required".into())),
            }
        }),
    );
    let before = count_rows(&bed.db).await;
    for junk in [
        json!({"junk": "x".repeat(40_000)}),
        json!({"video": "nope"}),
    ] {
        let err = bed
            .tasks
            .submit("checked", junk)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, TaskError::InvalidInput(_) | TaskError::NotFound(_)),
            "{err}"
        );
    }
    assert_eq!(count_rows(&bed.db).await, before, "junk stored nothing");

    let submitted = bed
        .tasks
        .submit(
            "checked",
            json!({"video": "at://did:plc:x/place.stream.video/1"}),
        )
        .await
        .expect("admitted");
    let failed = finished(&bed.tasks, &submitted.task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("the upstream failed"));
    assert_eq!(failed.failure, Some(FailureKind::Upstream));
    let leaked = common::count(
        &bed.db,
        "SELECT COUNT(*) FROM tasks WHERE error LIKE '%10.1.2.3%' OR error LIKE '%/tmp/%'",
        (),
    )
    .await;
    assert_eq!(leaked, 0, "the internal cause is never stored");
}
