//! Several servers on one database, the scale-out path: two real `streamhut` processes
//! on one real `sqld`, sharing the work. The same sync submitted to both runs once, a
//! scheduled job runs once per period, a bundle task is executed once, and a video
//! created upstream is indexed once. A server killed with `kill -9` while running a task
//! loses nothing: after its restart it takes the task back at once, and if it stays
//! down the other server finishes the task when the lease runs out.
//!
//! Every server follows the firehose of every creator's PDS (no lease for it): applying
//! an event is an idempotent upsert, so two servers applying it leave one row, and no
//! server waits for another's lease to run out before changes show.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::instance::{ADMIN_TOKEN, video, within};
use common::network::network;
use common::sqld::{free_port, start_sqld};
use serde_json::{Value, json};
use server::db::DatabaseLocation;
use server::db::Db;

/// One `streamhut` process.
struct Node {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

impl Node {
    fn start(data_dir: &Path, database: &str, keys: &Path, jobs: &str) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_streamhut"));
        command
            .args(network().server_args())
            .env("STREAMHUT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("STREAMHUT_DATA_DIR", data_dir)
            .env("STREAMHUT_SITE_ROOT", data_dir)
            .env("TURSO_URL", database)
            .env("ATRUN_HOME", keys)
            .env("ATRUN_JOBS", jobs)
            .env("DENO_PATH", common::runner::deno())
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("STREAMHUT_DEFAULT_CREATORS", "")
            .env("BSKY_PUBLIC_API_URL", "")
            .env("VOD_ORIGIN_URL", "http://127.0.0.1:9")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("start streamhut");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        }
    }

    async fn ready(self) -> Self {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/healthz", self.url)).await
                && response.status() == 200
            {
                return self;
            }
            assert!(Instant::now() < deadline, "{} did not start", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn node_id(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node-id"))
            .expect("node id")
            .trim()
            .to_string()
    }

    fn kill_hard(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON")
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// The sum of the samples of `metric` (a name with its labels) in `/metrics`.
    async fn metric(&self, metric: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|line| line.starts_with(metric))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row of the tasks table.
#[derive(Debug)]
struct TaskRow {
    status: String,
    attempts: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    updated_at: i64,
}

async fn task(db: &Db, id: &str) -> TaskRow {
    let mut rows = db
        .conn()
        .query(
            "SELECT status, attempts, lease_owner, lease_expires_at, updated_at FROM tasks WHERE id = ?1",
            [id],
        )
        .await
        .expect("query");
    let row = rows.next().await.expect("row").expect("the task exists");
    TaskRow {
        status: row.get(0).expect("status"),
        attempts: row.get(1).expect("attempts"),
        lease_owner: row.get(2).expect("owner"),
        lease_expires_at: row.get(3).expect("lease"),
        updated_at: row.get(4).expect("updated"),
    }
}

/// Waits until `check` holds, for at most `limit`.
/// Submits the bundle task `work` for `n`, taking `ms`, through `node`; returns its id.
async fn submit_work(node: &Node, did: &str, n: u32, ms: u32) -> String {
    let reply = node
        .get(&format!(
            "/bundle/{did}/scale-demo/1.0.0/work?n={n}&ms={ms}"
        ))
        .await;
    reply["id"].as_str().expect("a task id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_do_each_piece_of_work_once() {
    let sqld_dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _sqld = start_sqld(&sqld_dir.path().join("sqld"), port).await;
    let database = format!("http://127.0.0.1:{port}");

    let author = network().create_account("scale").await;
    common::runner::publish(&author, "scale.ts", "1.0.0").await;
    let agent = network().login(&author).await;
    agent
        .put_record("place.stream.video", "first", &video("First", 1))
        .await
        .expect("record");

    let keys = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let jobs = format!("{}/scale-demo", author.did);
    // A first, so the schema is migrated once before B starts.
    let a = Node::start(dir_a.path(), &database, keys.path(), &jobs)
        .ready()
        .await;
    let b = Node::start(dir_b.path(), &database, keys.path(), &jobs)
        .ready()
        .await;
    let db = Db::open(&DatabaseLocation::Remote {
        url: database.clone(),
        auth_token: Default::default(),
    })
    .await
    .expect("db");

    // Registration, then the same sync asked of both servers at once: one task, run once.
    let registered = a
        .post(
            "/api/appview/registerCreator",
            json!({ "actor": author.did }),
        )
        .await;
    let first_sync = registered["taskId"].as_str().expect("task id").to_string();
    within(Duration::from_secs(30), "the first sync", || async {
        task(&db, &first_sync).await.status == "complete"
    })
    .await;
    let body = json!({ "actor": author.did });
    let (from_a, from_b) = tokio::join!(
        a.post("/api/appview/triggerSync", body.clone()),
        b.post("/api/appview/triggerSync", body.clone()),
    );
    assert_eq!(from_a["taskId"], from_b["taskId"], "{from_a} {from_b}");
    let sync = from_a["taskId"].as_str().expect("task id").to_string();
    within(Duration::from_secs(30), "the shared sync", || async {
        task(&db, &sync).await.status == "complete"
    })
    .await;
    assert_eq!(task(&db, &sync).await.attempts, 1, "the sync ran once");

    // A video created upstream shows on both, indexed once.
    agent
        .put_record("place.stream.video", "second", &video("Second", 2))
        .await
        .expect("record");
    let uri = format!("at://{}/place.stream.video/second", author.did);
    for node in [&a, &b] {
        within(
            Duration::from_secs(30),
            "the new video on both servers",
            || async {
                let listed = node.get("/api/appview/listVideos?limit=100").await;
                listed["videos"].as_array().is_some_and(|videos| {
                    videos.iter().filter(|v| v["uri"] == uri.as_str()).count() == 1
                })
            },
        )
        .await;
    }
    assert_eq!(
        common::count(
            &db,
            "SELECT COUNT(*) FROM videos WHERE uri = ?1",
            [uri.as_str()]
        )
        .await,
        1
    );

    // The same bundle task asked of both at once: one task, executed once.
    let (task_a, task_b) = tokio::join!(
        submit_work(&a, &author.did, 1, 300),
        submit_work(&b, &author.did, 1, 300),
    );
    assert_eq!(task_a, task_b);
    within(Duration::from_secs(30), "the bundle task", || async {
        task(&db, &task_a).await.status == "complete"
    })
    .await;
    assert_eq!(task(&db, &task_a).await.attempts, 1);
    let executions = a
        .metric(r#"streamhut_runner_calls_total{kind="task",outcome="ok"}"#)
        .await
        + b.metric(r#"streamhut_runner_calls_total{kind="task",outcome="ok"}"#)
            .await;
    assert_eq!(executions, 1.0, "one execution across both servers");

    // The job every 2 s: each period runs once, whichever server takes it.
    let job = format!("atrun:{}/scale-demo:tick", author.did);
    within(Duration::from_secs(30), "four runs of the job", || async {
        common::count(
            &db,
            "SELECT COUNT(*) FROM job_runs WHERE job = ?1",
            [job.as_str()],
        )
        .await
            >= 4
    })
    .await;
    let mut rows = db
        .conn()
        .query(
            "SELECT started_at FROM job_runs WHERE job = ?1 ORDER BY started_at",
            [job.as_str()],
        )
        .await
        .expect("runs");
    let mut starts = Vec::new();
    while let Some(row) = rows.next().await.expect("row") {
        starts.push(row.get::<i64>(0).expect("start"));
    }
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1_900,
            "two runs in one period: {starts:?}"
        );
    }

    // The server running a task, killed mid-task and restarted at once, takes it back
    // without waiting for the lease (which the other, still up, would have to).
    let mut nodes = [a, b];
    let dirs = [dir_a.path(), dir_b.path()];
    let resumed = submit_work(&nodes[0], &author.did, 2, 4_000).await;
    let holder = running_on(&db, &resumed, &nodes).await;
    let lease_ends = task(&db, &resumed).await.lease_expires_at.expect("a lease");
    nodes[holder].kill_hard();
    nodes[holder] = Node::start(dirs[holder], &database, keys.path(), &jobs)
        .ready()
        .await;
    within(Duration::from_secs(40), "the resumed task", || async {
        task(&db, &resumed).await.status == "complete"
    })
    .await;
    let done = task(&db, &resumed).await;
    assert!(
        done.updated_at < lease_ends,
        "finished {} ms after the old lease ran out",
        done.updated_at - lease_ends
    );
    assert_eq!(done.attempts, 2);

    // The server running a task, killed for good: the other finishes it once the lease
    // runs out.
    let orphan = submit_work(&nodes[0], &author.did, 3, 4_000).await;
    let holder = running_on(&db, &orphan, &nodes).await;
    let other = 1 - holder;
    let before = nodes[other]
        .metric(r#"streamhut_runner_calls_total{kind="task",outcome="ok"}"#)
        .await;
    nodes[holder].kill_hard();
    within(
        Duration::from_secs(60),
        "the other server finishing the task",
        || async { task(&db, &orphan).await.status == "complete" },
    )
    .await;
    assert_eq!(task(&db, &orphan).await.attempts, 2);
    let after = nodes[other]
        .metric(r#"streamhut_runner_calls_total{kind="task",outcome="ok"}"#)
        .await;
    assert_eq!(after - before, 1.0, "the survivor ran it");
}

/// Waits until task `id` runs, and returns the index of the node running it.
async fn running_on(db: &Db, id: &str, nodes: &[Node]) -> usize {
    let ids: Vec<String> = nodes
        .iter()
        .map(|node| format!("{}/", node.node_id()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = task(db, id).await;
        if row.status == "running"
            && let Some(owner) = &row.lease_owner
            && let Some(index) = ids.iter().position(|id| owner.starts_with(id))
        {
            return index;
        }
        assert!(Instant::now() < deadline, "task {id} running: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
