//! What at-run gives bundle authors, end to end with the real local PDS, real Deno and
//! the real `at-run` binary: their own logs, rollback and yank.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::atrun::{
    at_run, at_run_command, at_run_failing, fixture, get, logs_token, server, server_with,
};
use common::network::network;
use serde_json::{Value, json};
use server::atproto::session::Agent;

/// The author's invocation log as the runner serves it (their own service auth token).
async fn read_log(server: &common::instance::Server, author: &Agent) -> Vec<Value> {
    let token = logs_token(server, author).await;
    let did = author.did().await;
    let read: Value = reqwest::Client::new()
        .get(format!("{}/bundle/{did}/chatty/logs?limit=500", server.url))
        .bearer_auth(token.expose())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    read["invocations"].as_array().cloned().unwrap_or_default()
}

/// The texts an invocation printed.
fn printed(invocation: &Value) -> Vec<String> {
    invocation["console"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authors_read_what_their_own_calls_printed_and_nothing_else() {
    let server = server().await;
    let alice = network().create_account("logalice").await;
    let bob = network().create_account("logbob").await;
    let homes = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    for (account, home) in [(&alice, &homes[0]), (&bob, &homes[1])] {
        at_run(home.path(), &account.password, &["login", &account.handle]);
        at_run(
            home.path(),
            &account.password,
            &["deploy", &fixture("chatty.ts"), "--version", "1.0.0"],
        );
    }

    // Both authors' bundles, same name, called at once; calls of one process overlap
    // (the slow one prints its second line after the quick one has finished).
    let call = |did: &str, who: String, delay: u32| {
        let url = format!(
            "{}/bundle/{did}/chatty/latest/say?who={who}&delay={delay}",
            server.url
        );
        async move { get(&url).await }
    };
    let mut calls = Vec::new();
    for round in 0..3 {
        for (account, name) in [(&alice, "alice"), (&bob, "bob")] {
            calls.push(tokio::spawn(call(
                &account.did,
                format!("{name}-slow-{round}"),
                300,
            )));
            calls.push(tokio::spawn(call(
                &account.did,
                format!("{name}-quick-{round}"),
                0,
            )));
        }
    }
    for call in calls {
        let (status, body) = call.await.expect("call");
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = get(&format!(
        "{}/bundle/{}/chatty/latest/fail",
        server.url, alice.did
    ))
    .await;
    assert_eq!(status, 500);

    // The log is written in batches, a second apart at most: read until all is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (alice_agent, bob_agent) = (network().login(&alice).await, network().login(&bob).await);
    let (alices, bobs) = loop {
        let alices = read_log(&server, &alice_agent).await;
        let bobs = read_log(&server, &bob_agent).await;
        if alices.len() == 7 && bobs.len() == 6 {
            break (alices, bobs);
        }
        assert!(std::time::Instant::now() < deadline, "{alices:?}\n{bobs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (log, own, other) in [(&alices, "alice", "bob"), (&bobs, "bob", "alice")] {
        let everything = serde_json::to_string(log).expect("JSON");
        assert!(
            !everything.contains(other),
            "{own}'s log holds {other}'s lines: {everything}"
        );
        // Printed while loading: with the first call of each process.
        assert!(everything.contains("chatty loaded"), "{everything}");
        for invocation in log.iter().filter(|i| i["export"] == "say") {
            // Each call's two lines, both its own, in order.
            let lines: Vec<String> = printed(invocation)
                .into_iter()
                .filter(|text| text != "chatty loaded")
                .collect();
            assert_eq!(lines.len(), 2, "{invocation}");
            let who = lines[1].trim_start_matches("after the wait: ");
            assert!(who.starts_with(own), "{invocation}");
            assert!(
                lines[0].starts_with(&format!("hello from {who} {{")),
                "{invocation}"
            );
            assert!(
                lines[0].contains(&format!("who: \"{who}\"")),
                "{invocation}"
            );
        }
    }
    let failed = alices.iter().find(|i| i["export"] == "fail").expect("fail");
    assert_eq!(failed["status"], "handler_error");
    let stack = printed(failed).join("\n");
    assert!(stack.contains("it broke deep inside"), "{failed}");
    assert!(stack.contains("at deepInside (bundle.js:"), "{failed}");
    assert!(!stack.contains("harness"), "{failed}");
    let level = &failed["console"]
        .as_array()
        .and_then(|l| l.last())
        .expect("line")["level"];
    assert_eq!(level, "error");

    // Bob cannot read Alice's log; the CLI reads one's own, with what was printed.
    let bobs_token = logs_token(&server, &bob_agent).await;
    let refused = reqwest::Client::new()
        .get(format!("{}/bundle/{}/chatty/logs", server.url, alice.did))
        .bearer_auth(bobs_token.expose())
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status().as_u16(), 403);
    let out = at_run(
        homes[0].path(),
        &alice.password,
        &["logs", "--runner", &server.url, "chatty"],
    );
    assert!(out.contains("\tsay\tendpoint\tok\t"), "{out}");
    assert!(
        out.contains("    warn  after the wait: alice-slow-0"),
        "{out}"
    );
    assert!(out.contains("at deepInside (bundle.js:"), "{out}");
    assert!(!out.contains("bob"), "{out}");

    // A flood is bounded per line and per call, and says so.
    let (status, _) = get(&format!(
        "{}/bundle/{}/chatty/latest/flood",
        server.url, alice.did
    ))
    .await;
    assert_eq!(status, 200);

    // --follow prints new calls as they happen.
    let mut follow = at_run_command(homes[0].path(), &alice.password)
        .args([
            "logs",
            "--runner",
            &server.url,
            "chatty",
            "--follow",
            "--limit",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("at-run logs --follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (seen, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if seen.send(line).is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = get(&format!(
        "{}/bundle/{}/chatty/latest/say?who=alice-followed",
        server.url, alice.did
    ))
    .await;
    assert_eq!(status, 200);
    let called = std::time::Instant::now();
    let mut output = Vec::new();
    let found = loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.contains("after the wait: alice-followed");
                output.push(line);
                if done {
                    break true;
                }
            }
            Err(_) if called.elapsed() > Duration::from_secs(10) => break false,
            Err(_) => {}
        }
    };
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(found, "not followed:\n{}", output.join("\n"));
    eprintln!("followed within {:?}", called.elapsed());
    let flood = output.join("\n");
    assert!(flood.contains("further lines were not kept"), "{flood}");
    assert!(flood.contains("line 198 "), "{flood}");
    assert!(!flood.contains("line 300 "), "{flood}");
}

/// Rollback and yank live in the author's PDS: two servers sharing one `sqld` serve the
/// rolled-back version from the very next call, a yanked version answers 410 (pinned or
/// not), and `at-run ls` says what `latest` is and what is yanked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_and_yank_reach_every_runner_at_once() {
    let sqld_dir = tempfile::tempdir().expect("tempdir");
    let port = common::sqld::free_port();
    let _sqld = common::sqld::start_sqld(&sqld_dir.path().join("sqld"), port).await;
    let database = format!("http://127.0.0.1:{port}");
    let servers = [
        server_with(&["--turso-url", &database]).await,
        server_with(&["--turso-url", &database]).await,
    ];
    let author = network().create_account("rollbacker").await;
    let home = tempfile::tempdir().expect("tempdir");
    let (home, pw) = (home.path(), author.password.as_str());
    at_run(home, pw, &["login", &author.handle]);
    for (file, version) in [("v1.ts", "1.0.0"), ("v2.ts", "1.1.0")] {
        at_run(home, pw, &["deploy", &fixture(file), "--version", version]);
    }
    let served = async |version: &str| {
        let mut answers = Vec::new();
        for server in &servers {
            let url = format!(
                "{}/bundle/{}/e2e-demo/{version}/version",
                server.url, author.did
            );
            answers.push(get(&url).await);
        }
        answers
    };
    let v = |n: &str| (200, json!({ "version": n }));
    assert_eq!(served("latest").await, [v("2"), v("2")]);
    let listed = at_run(home, pw, &["ls"]);
    assert!(
        listed.contains("e2e-demo\t1.1.0, 1.0.0\tlatest: 1.1.0\n"),
        "{listed}"
    );

    // Roll back: both servers serve 1.0.0 as latest on the next call; 1.1.0 by its
    // version still works.
    let out = at_run(home, pw, &["rollback", "e2e-demo", "1.0.0"]);
    assert!(out.contains("latest: 1.0.0 (rolled back)"), "{out}");
    assert_eq!(served("latest").await, [v("1"), v("1")]);
    assert_eq!(served("1.1.0").await, [v("2"), v("2")]);
    let refused = at_run_failing(home, pw, &["rollback", "e2e-demo", "3.0.0"]);
    assert!(
        refused.contains("e2e-demo 3.0.0 is not published"),
        "{refused}"
    );

    // Yank 1.1.0: 410 with the reason, pinned or not (pinned within the pinned cache).
    let out = at_run(
        home,
        pw,
        &["yank", "e2e-demo", "1.1.0", "--reason", "it leaks memory"],
    );
    assert!(
        out.contains("1.1.0 (yanked), 1.0.0\tlatest: 1.0.0 (rolled back)"),
        "{out}"
    );
    let deadline = std::time::Instant::now() + server::runner::PINNED_TTL + Duration::from_secs(5);
    loop {
        let answers = served("1.1.0").await;
        if answers.iter().all(|(status, _)| *status == 410) {
            let message = answers[0].1["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                message.contains(
                    "version 1.1.0 of e2e-demo was yanked by its author (it leaks memory)"
                ),
                "{message}"
            );
            assert_eq!(answers[0].1["error"], "VersionYanked");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answers:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let refused = at_run_failing(home, pw, &["rollback", "e2e-demo", "1.1.0"]);
    assert!(refused.contains("is yanked"), "{refused}");

    // A new deploy is latest again; yanking every version leaves latest nothing to serve.
    at_run(
        home,
        pw,
        &["deploy", &fixture("v2.ts"), "--version", "1.2.0"],
    );
    assert_eq!(served("latest").await, [v("2"), v("2")]);
    for version in ["1.0.0", "1.2.0"] {
        at_run(home, pw, &["yank", "e2e-demo", version]);
    }
    for (status, body) in served("latest").await {
        assert_eq!(status, 410, "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("every version of e2e-demo was yanked")),
            "{body}"
        );
    }
    let listed = at_run(home, pw, &["ls"]);
    assert!(
        listed.contains("latest: none (every version is yanked)"),
        "{listed}"
    );
    // Undone, it is served again.
    at_run(home, pw, &["yank", "--undo", "e2e-demo", "1.0.0"]);
    assert_eq!(served("latest").await, [v("1"), v("1")]);
}

/// Endpoints get the real request (`ctx.request`, any method, raw bodies of any type,
/// headers but ours) and answer with any `Response`; `(args, ctx)` handlers still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_get_the_real_request_and_answer_with_any_response() {
    let server = server().await;
    let author = network().create_account("echoer").await;
    let home = tempfile::tempdir().expect("tempdir");
    let (home, pw) = (home.path(), author.password.as_str());
    at_run(home, pw, &["login", &author.handle]);
    at_run(
        home,
        pw,
        &["deploy", &fixture("echo.ts"), "--version", "1.0.0"],
    );
    let url = format!(
        "{}/bundle/{}/echo/latest/request?a=1&b=two",
        server.url, author.did
    );
    let client = reqwest::Client::new();
    let send = async |request: reqwest::RequestBuilder| {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    };

    // A POST with a raw text body and custom headers round-trips; our cookie and the
    // caller's Authorization stay out.
    let (status, headers, seen) = send(
        client
            .post(&url)
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-custom", "kept")
            .header("cookie", "streamhut_session=secret")
            .header("authorization", "Bearer secret-token")
            .body("plain text, not JSON {"),
    )
    .await;
    assert_eq!(status, 201, "{seen}");
    assert_eq!(headers["content-type"], "application/x-echo+json");
    assert_eq!(headers["x-echoed"], "POST");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["isRequest"], true);
    assert!(
        seen["url"].as_str().is_some_and(
            |u| u.starts_with(&server.url) && u.ends_with("/echo/latest/request?a=1&b=two")
        ),
        "{seen}"
    );
    assert_eq!(seen["body"], "plain text, not JSON {");
    assert_eq!(seen["headers"]["x-custom"], "kept");
    let all = seen["headers"].to_string();
    assert!(!all.contains("secret"), "{all}");

    // Other methods and body types: PUT JSON, PATCH a form, DELETE, binary bytes.
    let (_, _, seen) = send(client.put(&url).json(&json!({"n": [1, 2]}))).await;
    assert_eq!(
        (seen["method"].clone(), seen["body"].clone()),
        (json!("PUT"), json!({"n": [1, 2]}))
    );
    let (_, _, seen) = send(client.patch(&url).form(&[("name", "ada"), ("x", "é&=")])).await;
    assert_eq!(seen["body"], json!({"name": "ada", "x": "é&="}), "{seen}");
    let (_, _, seen) = send(client.delete(&url)).await;
    assert_eq!(
        (seen["method"].clone(), seen["body"].clone()),
        (json!("DELETE"), Value::Null)
    );
    let bytes: Vec<u8> = vec![0, 1, 254, 255, 10, 13];
    let (_, _, seen) = send(
        client
            .post(&url)
            .header("content-type", "application/octet-stream")
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(seen["body"], json!(bytes));

    // A body that says it is JSON but is not is refused with a clear error.
    let (status, _, refused) = send(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "InvalidRequest");
    let (status, _, refused) = send(client.request(reqwest::Method::TRACE, &url)).await;
    assert_eq!(status, 405, "{refused}");

    // The old (args, ctx) shape: query arguments on GET, a JSON object on POST.
    let old = format!("{}/bundle/{}/echo/latest/old", server.url, author.did);
    let (status, _, body) = send(client.get(format!("{old}?x=1&x=2&y=z"))).await;
    assert_eq!(
        (status, body),
        (200, json!({"args": {"x": ["1", "2"], "y": "z"}}))
    );
    let (_, _, body) = send(client.post(&old).json(&json!({"k": true}))).await;
    assert_eq!(body, json!({"args": {"k": true}}));
}

/// `ctx.kv`: isolated per author and bundle, bounded by `ATRUN_KV_MAX_MB`, lasting across
/// a restart, shared by servers on one `sqld`; absent for bundles that do not declare it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_is_isolated_bounded_lasting_and_shared() {
    let sqld_dir = tempfile::tempdir().expect("tempdir");
    let port = common::sqld::free_port();
    let _sqld = common::sqld::start_sqld(&sqld_dir.path().join("sqld"), port).await;
    let database = format!("http://127.0.0.1:{port}");
    let flags = ["--turso-url", database.as_str(), "--atrun-kv-max-mb", "1"];
    let first = server_with(&flags).await;
    let second = server_with(&flags).await;
    let alice = network().create_account("kvalice").await;
    let bob = network().create_account("kvbob").await;
    let homes = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    for (account, home, files) in [
        (
            &alice,
            &homes[0],
            &["kvdemo.ts", "kvother.ts", "nokv.ts"][..],
        ),
        (&bob, &homes[1], &["kvdemo.ts"][..]),
    ] {
        at_run(home.path(), &account.password, &["login", &account.handle]);
        for file in files {
            at_run(
                home.path(),
                &account.password,
                &["deploy", &fixture(file), "--version", "1.0.0"],
            );
        }
    }
    let call = async |server: &common::instance::Server, did: &str, bundle: &str, query: &str| {
        get(&format!(
            "{}/bundle/{did}/{bundle}/latest/{query}",
            server.url
        ))
        .await
    };

    // Set on one server, read on the other.
    let (status, body) = call(&first, &alice.did, "kvdemo", "set?key=greeting&value=hello").await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = call(&second, &alice.did, "kvdemo", "get?key=greeting").await;
    assert_eq!(body, json!({"found": {"value": "hello"}}));
    // Another author's bundle of the same name, and the author's other bundle, see nothing.
    let (_, body) = call(&first, &bob.did, "kvdemo", "get?key=greeting").await;
    assert_eq!(body, json!({"found": null}));
    let (_, body) = call(&first, &alice.did, "kvother", "get?key=greeting").await;
    assert_eq!(body, json!({"found": null}));
    call(&first, &bob.did, "kvdemo", "set?key=greeting&value=bob").await;
    let (_, body) = call(&second, &alice.did, "kvdemo", "get?key=greeting").await;
    assert_eq!(body, json!({"found": {"value": "hello"}}));

    // Listing by prefix; deleting; a ttl.
    for key in ["user:1", "user:2", "other"] {
        call(
            &first,
            &alice.did,
            "kvdemo",
            &format!("set?key={key}&value={key}"),
        )
        .await;
    }
    let (_, body) = call(&second, &alice.did, "kvdemo", "list?prefix=user:").await;
    assert_eq!(
        body["entries"],
        json!([{"key": "user:1", "value": {"value": "user:1"}}, {"key": "user:2", "value": {"value": "user:2"}}])
    );
    let (_, body) = call(&first, &alice.did, "kvdemo", "remove?key=other").await;
    assert_eq!(body, json!({"deleted": true}));
    call(
        &first,
        &alice.did,
        "kvdemo",
        "set?key=brief&value=gone-soon&ttl=0.2",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, body) = call(&first, &alice.did, "kvdemo", "get?key=brief").await;
    assert_eq!(body, json!({"found": null}));

    // Bad operations are refused with reasons; a full store says so.
    let (_, body) = call(&first, &alice.did, "kvdemo", "bad").await;
    let refused = body["refused"].to_string();
    assert_eq!(body["refused"].as_array().map(Vec::len), Some(4), "{body}");
    assert!(
        refused.contains("keys are strings of 1 to 512 bytes"),
        "{refused}"
    );
    assert!(refused.contains("values are at most 131072"), "{refused}");
    assert!(refused.contains("values are JSON"), "{refused}");
    let (_, body) = call(&first, &alice.did, "kvdemo", "fill").await;
    assert_eq!(body["stored"], 8, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("ctx.kv is full") && e.contains("ATRUN_KV_MAX_MB")),
        "{body}"
    );
    // Bob's store is his own: still room.
    let (status, body) = call(&first, &bob.did, "kvdemo", "set?key=more&value=room").await;
    assert_eq!(status, 200, "{body}");

    // A flood of operations is answered in bounded numbers; the store still works after.
    let (status, body) = call(&first, &alice.did, "kvdemo", "flood").await;
    assert_eq!(status, 200, "{body}");
    let (ok, refused) = (
        body["ok"].as_u64().unwrap_or(0),
        body["refused"].as_u64().unwrap_or(0),
    );
    assert!(ok >= 32 && refused > 0 && ok + refused < 5000, "{body}");
    let (_, body) = call(&second, &alice.did, "kvdemo", "get?key=greeting").await;
    assert_eq!(body, json!({"found": {"value": "hello"}}));

    // A bundle that does not declare kv has none (and web storage stays off).
    let (_, body) = call(&first, &alice.did, "nokv", "probe").await;
    assert_eq!(body["kv"], "undefined", "{body}");
    assert!(
        body["storage"]
            .as_str()
            .is_some_and(|s| s.contains("not available")),
        "{body}"
    );

    // A restart keeps everything.
    let data = first.dir.path().join("data");
    let runner_home = first.dir.path().join("runner").display().to_string();
    let deno = common::runner::deno().display().to_string();
    let common::atrun::Running { server, dir } = first;
    server.stop().await;
    let restarted = common::instance::Server::start(
        &data,
        &[
            "--turso-url",
            &database,
            "--atrun-home",
            &runner_home,
            "--deno-path",
            &deno,
        ],
    )
    .await;
    let (_, body) = call(&restarted, &alice.did, "kvdemo", "get?key=greeting").await;
    assert_eq!(body, json!({"found": {"value": "hello"}}));
    restarted.stop().await;
    drop(dir);
}

/// `ctx.caller`: the DID of a caller whose service auth token (minted by their real PDS)
/// is for this runner and bound to the endpoint; null otherwise, forged tokens included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_caller_is_verified_from_a_service_auth_token() {
    let server = server().await;
    let author = network().create_account("whoauthor").await;
    let visitor = network().create_account("whovisitor").await;
    let home = tempfile::tempdir().expect("tempdir");
    at_run(home.path(), &author.password, &["login", &author.handle]);
    at_run(
        home.path(),
        &author.password,
        &["deploy", &fixture("whoami.ts"), "--version", "1.0.0"],
    );
    let url = format!("{}/bundle/{}/whoami/latest/me", server.url, author.handle);
    let audience = server.services.runner.service_did().to_string();
    let method = server::runner::caller_method("whoami", "me");
    assert_eq!(method, "dev.atrun.call.whoami.me");
    let agent = network().login(&visitor).await;
    let token = |aud: String, lxm: String| {
        let agent = &agent;
        async move { agent.service_auth(&aud, &lxm).await.expect("token") }
    };
    let ask = async |token: Option<String>| {
        let request = reqwest::Client::new().get(&url);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("GET");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("JSON")
    };

    assert_eq!(
        ask(None).await,
        json!({"caller": null, "sawAuthorization": false})
    );
    let good = token(audience.clone(), method.clone()).await;
    assert_eq!(
        ask(Some(good.expose().to_string())).await,
        json!({"caller": visitor.did, "sawAuthorization": false})
    );
    // Forged: one character of the signature changed.
    let mut forged: Vec<char> = good.expose().chars().collect();
    let at = forged.len() - 20;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    assert_eq!(
        ask(Some(forged.into_iter().collect())).await["caller"],
        Value::Null
    );
    // Bound to another endpoint, or to another runner.
    let other = token(
        audience.clone(),
        server::runner::caller_method("whoami", "other"),
    )
    .await;
    assert_eq!(
        ask(Some(other.expose().to_string())).await["caller"],
        Value::Null
    );
    let elsewhere = token("did:web:elsewhere.example".into(), method.clone()).await;
    assert_eq!(
        ask(Some(elsewhere.expose().to_string())).await["caller"],
        Value::Null
    );
    assert_eq!(ask(Some("not-a-jwt".into())).await["caller"], Value::Null);
}

/// `at-run init` writes a starter bundle that type-checks; `at-run dev` serves it from the
/// file with no PDS and no sign-in, with secrets from `.env`, and reloads after a save.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_then_dev_serves_a_local_bundle_and_reloads_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let out = at_run_command(home.path(), "")
        .current_dir(work.path())
        .args(["init", "starter"])
        .output()
        .expect("at-run init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = work.path().join("starter");
    for file in ["main.ts", "at-run.ts", "deno.json", ".env", ".gitignore"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    // The SDK import is typed: the starter passes `deno check`.
    let checked = std::process::Command::new(common::runner::deno())
        .current_dir(&dir)
        .args(["check", "main.ts"])
        .env("NO_COLOR", "1")
        .output()
        .expect("deno check");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let refused = at_run_command(home.path(), "")
        .current_dir(work.path())
        .args(["init", "starter"])
        .output()
        .expect("at-run init");
    assert!(!refused.status.success(), "a second init over the first");

    let port = common::sqld::free_port();
    let _dev = Stopped(
        at_run_command(home.path(), "")
            .current_dir(&dir)
            .args(["dev", "main.ts", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("at-run dev"),
    );
    let url = format!("http://127.0.0.1:{port}/starter/hello?name=ada");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == 200
        {
            break response.json::<Value>().await.expect("JSON");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "at-run dev did not serve"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first["message"], "hello, ada", "{first}");
    assert_eq!(first["visits"], 1, "{first}");
    let (_, second) = get(&url).await;
    assert_eq!(second["visits"], 2, "ctx.kv lasts between calls: {second}");

    // A save is served within about a second.
    let main = dir.join("main.ts");
    let source = std::fs::read_to_string(&main).expect("main.ts");
    std::fs::write(
        &main,
        source.replace("${greeting}, ", "${greeting} again, "),
    )
    .expect("edit");
    // Until `url` answers `message`, how long since the save.
    let served = async |message: &str| {
        let saved = std::time::Instant::now();
        loop {
            let (_, body) = get(&url).await;
            if body["message"] == message {
                return saved.elapsed();
            }
            assert!(
                saved.elapsed() < Duration::from_secs(10),
                "not reloaded: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let took = served("hello again, ada").await;
    eprintln!("reloaded {took:?} after the save");
    // A secret changed in .env too.
    std::fs::write(dir.join(".env"), "GREETING=hej\n").expect("env");
    served("hej again, ada").await;
    // A broken save keeps the last good version serving.
    std::fs::write(&main, "export const = ;").expect("break");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = get(&url).await;
    assert_eq!(
        (status, body["message"].clone()),
        (200, json!("hej again, ada"))
    );
    let (status, _) = get(&format!("http://127.0.0.1:{port}/other/hello")).await;
    assert_eq!(status, 404);
}

/// A child process, stopped when dropped (a failed assertion included).
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `at-run --help` is about at-run, and every command's help has an example.
#[test]
fn every_command_explains_itself_with_an_example() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_at-run"))
            .args(args)
            .output()
            .expect("at-run --help");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    assert!(top.contains("keep them in your own PDS"), "{top}");
    assert!(!top.contains("Streamhut server"), "{top}");
    assert!(top.contains("docs/at-run.md"), "{top}");
    for command in [
        &["init"][..],
        &["dev"],
        &["login"],
        &["deploy"],
        &["ls"],
        &["rollback"],
        &["yank"],
        &["keys"],
        &["logs"],
        &["secrets"],
        &["secrets", "set"],
        &["secrets", "ls"],
        &["secrets", "rm"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let text = help(&args);
        assert!(
            text.contains("Example"),
            "no example in at-run {command:?} --help:\n{text}"
        );
        assert!(text.contains("at-run "), "{text}");
    }
    assert!(help(&["login", "--help"]).contains("--password-stdin"));
}
