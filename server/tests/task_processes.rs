//! The task system across processes: a worker killed with SIGKILL mid-task, and two
//! workers sharing one database file.
//!
//! This test binary is its own worker: run with `worker <db> <log> <mode>` it serves
//! tasks from that database until its stdin closes (or it is killed); run plainly it
//! runs the scenarios, starting workers as child processes.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use server::db::DatabaseLocation;
use server::db::Db;
use server::tasks::{TaskDef, TaskPolicy, TaskSystem};
use tokio_util::sync::CancellationToken;

fn micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default()
}

/// Appends one line; small appends are atomic, so processes can share the file.
fn log(path: &Path, line: String) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    file.write_all(format!("{line}\n").as_bytes())
        .expect("write log");
}

async fn open(db_path: &Path) -> Db {
    let db = Db::open(&DatabaseLocation::File(db_path.to_path_buf()))
        .await
        .expect("open db");
    db.migrate().await.expect("migrate");
    db
}

fn policy() -> TaskPolicy {
    TaskPolicy {
        lease: Duration::from_millis(900),
        poll_interval: Duration::from_millis(20),
        ..TaskPolicy::default()
    }
}

/// The tasks both scenarios use. `slow` hangs on its first attempt when `hang` is set.
fn register(tasks: &TaskSystem, log_path: PathBuf, hang: bool) {
    let slow_log = log_path.clone();
    tasks.register(TaskDef::new("slow", move |ctx| {
        let log_path = slow_log.clone();
        async move {
            let pid = std::process::id();
            log(&log_path, format!("start {} {} {pid}", ctx.id, ctx.attempt));
            if hang && ctx.attempt == 1 {
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            log(&log_path, format!("end {} {} {pid}", ctx.id, ctx.attempt));
            Ok(json!({ "attempt": ctx.attempt, "pid": pid }))
        }
    }));
    tasks.register(
        TaskDef::new("exclusive", move |ctx| {
            let log_path = log_path.clone();
            async move {
                let key = ctx.input["key"].as_u64().unwrap_or(0);
                let pid = std::process::id();
                log(
                    &log_path,
                    format!("run {} {key} {pid} {} start", ctx.id, micros()),
                );
                tokio::time::sleep(Duration::from_millis(15)).await;
                log(
                    &log_path,
                    format!("run {} {key} {pid} {} end", ctx.id, micros()),
                );
                Ok(Value::Null)
            }
        })
        .concurrency(8)
        .cache_ttl(Duration::ZERO),
    );
}

/// Worker mode: serve tasks until stdin closes; `submit` also submits `exclusive`
/// tasks for a while, racing the other processes.
async fn worker(db_path: PathBuf, log_path: PathBuf, mode: String) {
    let db = open(&db_path).await;
    let tasks = TaskSystem::new(db, policy()).await.expect("tasks");
    register(&tasks, log_path, mode == "hang");
    let shutdown = CancellationToken::new();
    let dispatcher = tasks.start(shutdown.clone());
    if mode == "submit" {
        submit_for(&tasks, Duration::from_secs(3)).await;
    }
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await
    .expect("stdin");
    shutdown.cancel();
    let _ = dispatcher.await;
}

async fn submit_for(tasks: &TaskSystem, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut n = 0u64;
    while Instant::now() < deadline {
        tasks
            .submit("exclusive", json!({ "key": n % 5 }))
            .await
            .expect("submit");
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn spawn_worker(db: &Path, log: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().expect("exe"))
        .args([
            "worker",
            &db.display().to_string(),
            &log.display().to_string(),
            mode,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker")
}

fn read_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// A worker is SIGKILLed in the middle of a task; a new worker takes it over once the
/// lease runs out, and the result is readable.
async fn killed_mid_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_path, log_path) = (dir.path().join("tasks.db"), dir.path().join("log"));
    let db = open(&db_path).await;
    let client = TaskSystem::new(db, policy()).await.expect("tasks");
    register(&client, log_path.clone(), true);

    let mut first = spawn_worker(&db_path, &log_path, "hang");
    let id = client
        .submit("slow", json!({"video": 1}))
        .await
        .expect("submit")
        .task
        .id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read_log(&log_path)
        .iter()
        .any(|l| l.starts_with(&format!("start {id} 1 ")))
    {
        assert!(
            Instant::now() < deadline,
            "the first worker never started the task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = first.id();
    Command::new("kill")
        .args(["-KILL", &killed.to_string()])
        .status()
        .expect("kill");
    let _ = first.wait();

    let mut second = spawn_worker(&db_path, &log_path, "run");
    let view = client
        .wait(&id, Duration::from_secs(20))
        .await
        .expect("wait")
        .expect("task");
    drop(second.stdin.take());
    let _ = second.wait();

    assert_eq!(view.status, server::tasks::Status::Complete, "{view:?}");
    assert_eq!(view.attempts, 2);
    let result = view.result.expect("result");
    assert_eq!(result["attempt"], 2);
    assert_eq!(result["pid"], second.id());
    let lines = read_log(&log_path);
    assert!(lines.contains(&format!("start {id} 1 {killed}")));
    assert!(
        !lines.iter().any(|l| l.starts_with(&format!("end {id} 1 "))),
        "the killed attempt never finished"
    );
    assert!(lines.contains(&format!("end {id} 2 {}", second.id())));

    // The result survives: a fresh process reads it from the file.
    let reopened = TaskSystem::new(open(&db_path).await, policy())
        .await
        .expect("tasks");
    let again = reopened.get(&id).await.expect("get").expect("task");
    assert_eq!(again.result.expect("result")["attempt"], 2);
    println!(
        "ok: a task killed mid-run (pid {killed}) completed on attempt 2 in pid {}",
        second.id()
    );
}

/// Two workers and this process submit the same five inputs for three seconds; every
/// execution of a key is disjoint in time from every other, across processes.
async fn two_processes_one_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_path, log_path) = (dir.path().join("tasks.db"), dir.path().join("log"));
    let db = open(&db_path).await;
    let client = TaskSystem::new(db.clone(), policy()).await.expect("tasks");
    register(&client, log_path.clone(), false);
    let mut a = spawn_worker(&db_path, &log_path, "submit");
    let mut b = spawn_worker(&db_path, &log_path, "submit");
    submit_for(&client, Duration::from_secs(3)).await;
    // The workers finish what was submitted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut rows = db
            .conn()
            .query(
                "SELECT COUNT(*) FROM tasks WHERE status IN ('pending', 'running')",
                (),
            )
            .await
            .expect("count");
        let row = rows.next().await.expect("row").expect("a count");
        if row.get::<i64>(0).expect("count") == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "tasks left unfinished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in [&mut a, &mut b] {
        drop(worker.stdin.take());
        let _ = worker.wait();
    }

    // key -> [(start, end, pid, task id)]
    let mut runs: BTreeMap<u64, Vec<(u128, u128, String, String)>> = BTreeMap::new();
    let mut open_runs: BTreeMap<String, (u64, u128, String)> = BTreeMap::new();
    let mut executed = HashSet::new();
    for line in read_log(&log_path) {
        let parts: Vec<&str> = line.split(' ').collect();
        let [_, id, key, pid, at, edge] = parts[..] else {
            continue;
        };
        let (key, at): (u64, u128) = (key.parse().expect("key"), at.parse().expect("time"));
        if edge == "start" {
            assert!(executed.insert(id.to_string()), "task {id} ran twice");
            open_runs.insert(id.to_string(), (key, at, pid.to_string()));
        } else if let Some((key, start, pid)) = open_runs.remove(id) {
            runs.entry(key)
                .or_default()
                .push((start, at, pid, id.to_string()));
        }
    }
    assert!(open_runs.is_empty(), "every run finished");
    let pids: HashSet<&String> = runs.values().flatten().map(|(_, _, pid, _)| pid).collect();
    assert_eq!(pids.len(), 2, "both workers ran tasks");
    let mut total = 0;
    for (key, mut list) in runs {
        list.sort();
        total += list.len();
        for pair in list.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "key {key}: task {} started before task {} ended",
                pair[1].3,
                pair[0].3
            );
        }
    }
    assert!(total >= 20, "only {total} executions");
    println!("ok: {total} executions of 5 keys across 2 processes, none overlapping");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.get(1).map(String::as_str) == Some("worker") {
        let [_, _, db, log, mode] = &args[..] else {
            panic!("usage: worker <db> <log> <mode>");
        };
        runtime.block_on(worker(db.into(), log.into(), mode.clone()));
        return;
    }
    runtime.block_on(async {
        killed_mid_task().await;
        two_processes_one_database().await;
    });
}
