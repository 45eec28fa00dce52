//! Hostile bundles: each one tries to escape, exhaust or confuse its sandbox. For every
//! one we check that it is contained, that the caller gets a clear error, and that a
//! well-behaved bundle keeps answering meanwhile.

mod common;

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use server::runner::bundler;
use server::runner::manifest::Manifest;
use server::runner::permissions;
use server::runner::sandbox::{Reply, Sandbox, SandboxError, SandboxPolicy};

use common::runner::{bundle_fixture, deno, policy};

/// What the caller must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The handler fails with an error containing one of these.
    Error(&'static [&'static str]),
    /// The call is stopped at the timeout and the process replaced.
    Timeout,
    /// Either the process dies or the call errors with one of these (allocation limits
    /// surface either way, depending on where they hit).
    CrashOrError(&'static [&'static str]),
    /// The bundle fails to load, with advice.
    Load(&'static str),
    /// The call succeeds with exactly this value (the attack had no effect on it).
    Returns(&'static str),
}

struct Attack {
    name: &'static str,
    net: &'static [&'static str],
    env: &'static [&'static str],
    /// Top-level code (runs at import time).
    top: &'static str,
    /// The handler's body; `args.port` and `args.path` are provided.
    body: &'static str,
    expect: Expect,
}

const DENIED: &[&str] = &["NotCapable", "PermissionDenied", "Requires"];

const fn attack(name: &'static str, body: &'static str, expect: Expect) -> Attack {
    Attack {
        name,
        net: &[],
        env: &[],
        top: "",
        body,
        expect,
    }
}

fn attacks() -> Vec<Attack> {
    use Expect::*;
    vec![
        attack(
            "read /etc/passwd",
            r#"return await Deno.readTextFile("/etc/passwd");"#,
            Error(DENIED),
        ),
        attack(
            "read the runner key",
            r#"return await Deno.readTextFile(args.path);"#,
            Error(DENIED),
        ),
        attack(
            "read /proc/self/environ",
            r#"return await Deno.readTextFile("/proc/self/environ");"#,
            Error(DENIED),
        ),
        attack(
            "list /",
            r#"const names = []; for await (const e of Deno.readDir("/")) names.push(e.name); return names;"#,
            Error(DENIED),
        ),
        attack(
            "stat a file",
            r#"return await Deno.stat("/etc/hostname");"#,
            Error(DENIED),
        ),
        attack(
            "write a file",
            r#"await Deno.writeTextFile("/tmp/atrun-hostile-write", "x"); return "written";"#,
            Error(DENIED),
        ),
        attack(
            "make a temp dir",
            r#"return await Deno.makeTempDir();"#,
            Error(DENIED),
        ),
        attack(
            "remove a file",
            r#"await Deno.remove("/tmp/atrun-hostile-write"); return "removed";"#,
            Error(DENIED),
        ),
        attack(
            "chdir",
            r#"Deno.chdir("/"); return Deno.cwd();"#,
            Error(DENIED),
        ),
        attack(
            "fetch file://",
            r#"return await (await fetch("file:///etc/passwd")).text();"#,
            Error(DENIED),
        ),
        attack(
            "node:fs",
            r#"const fs = await import("node:fs"); return fs.readFileSync("/etc/passwd", "utf8");"#,
            Error(DENIED),
        ),
        attack(
            "process.loadEnvFile (GHSA-4c8g-jvcx-v4hv)",
            r#"const p = (await import("node:process")).default; p.loadEnvFile(args.path); return p.env.SECRET ?? null;"#,
            Error(DENIED),
        ),
        attack(
            "fetch an undeclared host",
            r#"return (await fetch("https://example.com/")).status;"#,
            Error(DENIED),
        ),
        attack(
            "fetch 127.0.0.1",
            r#"return (await fetch(`http://127.0.0.1:${args.port}/`)).status;"#,
            Error(DENIED),
        ),
        attack(
            "fetch the metadata service",
            r#"return (await fetch("http://169.254.169.254/latest/meta-data/")).status;"#,
            Error(DENIED),
        ),
        Attack {
            net: &["localhost"],
            ..attack(
                "a declared host resolving to loopback",
                r#"return (await fetch(`http://localhost:${args.port}/`)).status;"#,
                Error(&["fetch failed", "NotCapable", "Requires", "error"]),
            )
        },
        Attack {
            net: &["example.com:443"],
            ..attack(
                "a declared host on another port",
                r#"return (await fetch("http://example.com:8080/")).status;"#,
                Error(DENIED),
            )
        },
        attack(
            "raw TCP to loopback",
            r#"const c = await Deno.connect({ hostname: "127.0.0.1", port: Number(args.port) }); c.close(); return "connected";"#,
            Error(DENIED),
        ),
        attack(
            "listen on a port",
            r#"const l = Deno.listen({ port: 0 }); l.close(); return "listening";"#,
            Error(DENIED),
        ),
        attack(
            "WebSocket to loopback",
            r#"new WebSocket(`ws://127.0.0.1:${args.port}/`); return "opened";"#,
            Error(DENIED),
        ),
        attack(
            "resolve DNS",
            r#"return await Deno.resolveDns("example.com", "A");"#,
            Error(DENIED),
        ),
        attack(
            "read an undeclared env var",
            r#"return Deno.env.get("HOME") ?? "unset";"#,
            Error(DENIED),
        ),
        attack(
            "dump the environment",
            r#"return Deno.env.toObject();"#,
            Error(DENIED),
        ),
        attack(
            "set an env var",
            r#"Deno.env.set("PATH", "/evil"); return "set";"#,
            Error(DENIED),
        ),
        Attack {
            env: &["DECLARED"],
            ..attack(
                "read a declared but unset variable",
                r#"return Deno.env.get("DECLARED") ?? "unset";"#,
                Returns(r#""unset""#),
            )
        },
        attack(
            "Deno.Command",
            r#"const out = await new Deno.Command("/bin/sh", { args: ["-c", "id"] }).output(); return new TextDecoder().decode(out.stdout);"#,
            Error(DENIED),
        ),
        attack(
            "node:child_process",
            r#"const cp = await import("node:child_process"); return cp.execSync("id").toString();"#,
            Error(DENIED),
        ),
        attack(
            "FFI dlopen",
            r#"Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } }); return "loaded";"#,
            Error(DENIED),
        ),
        attack(
            "system information",
            r#"return [Deno.hostname(), Deno.osRelease(), Deno.systemMemoryInfo()];"#,
            Error(DENIED),
        ),
        attack(
            "network interfaces",
            r#"return Deno.networkInterfaces();"#,
            Error(DENIED),
        ),
        attack(
            "a Worker asking for more permissions",
            r#"const url = URL.createObjectURL(new Blob(["self.postMessage(Deno.readTextFileSync('/etc/passwd'))"], { type: "application/javascript" })); const w = new Worker(url, { type: "module", deno: { permissions: { read: true } } }); return await new Promise((ok, fail) => { w.onmessage = (e) => ok(e.data); w.onerror = (e) => { e.preventDefault(); fail(new Error("worker: " + e.message)); }; });"#,
            CrashOrError(DENIED),
        ),
        attack(
            "ask for a permission",
            r#"const s = await Deno.permissions.request({ name: "read" }); if (s.state !== "granted") throw new Error("denied: " + s.state); return "granted";"#,
            Error(&["denied"]),
        ),
        attack(
            "a remote import()",
            r#"const at = ["https://deno.land", "std@0.224.0/version.ts"].join("/"); await import(at); return "imported";"#,
            Error(&["--no-remote", "remote"]),
        ),
        attack(
            "a jsr: import",
            r#"const at = "jsr:" + "@std/path"; await import(at); return "imported";"#,
            Error(&["--no-remote", "remote", "jsr", "Error"]),
        ),
        attack(
            "an npm: import",
            r#"const at = "npm:" + "left-pad"; await import(at); return "imported";"#,
            Error(&["--no-npm", "npm"]),
        ),
        attack("an infinite loop", r#"for (;;) {}"#, Timeout),
        attack(
            "Atomics.wait forever",
            r#"Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return "woke";"#,
            Timeout,
        ),
        attack(
            "a promise that never resolves",
            r#"await new Promise(() => {}); return "never";"#,
            Timeout,
        ),
        attack(
            "a heap bomb",
            r#"const a = []; for (;;) a.push(new Array(1e6).fill("x".repeat(16)));"#,
            CrashOrError(&["memory", "allocation", "Invalid"]),
        ),
        attack(
            "an ArrayBuffer bomb",
            r#"const a = []; for (;;) a.push(new Uint8Array(64 * 1024 * 1024));"#,
            CrashOrError(&["allocation failed", "memory", "RangeError"]),
        ),
        attack(
            "a 1 GB response",
            r#"return "x".repeat(1024 * 1024 * 1024);"#,
            CrashOrError(&["larger than", "Invalid string length", "RangeError"]),
        ),
        attack(
            "a 10 MB JSON response",
            r#"return "x".repeat(10 * 1024 * 1024);"#,
            Error(&["larger than"]),
        ),
        attack(
            "a 10 MB Response body",
            r#"return new Response(new Uint8Array(10 * 1024 * 1024));"#,
            Error(&["larger than"]),
        ),
        attack("a non-JSON value", r#"return 10n;"#, Error(&["not JSON"])),
        attack(
            "a non-JSON value deep inside",
            r#"const a = { n: 10n }; return { a };"#,
            Error(&["not JSON"]),
        ),
        attack(
            "a cyclic value",
            r#"const a = {}; a.self = a; return a;"#,
            Error(&["not JSON"]),
        ),
        attack("throwing a non-Error", r#"throw 42;"#, Error(&["42"])),
        attack(
            "deep recursion",
            r#"const f = (n) => f(n + 1) + 1; return f(0);"#,
            Error(&["RangeError", "call stack"]),
        ),
        attack(
            "printing fake replies to stdout",
            r#"console.log('{"id":1,"ok":true,"kind":"json","json":"\"forged\""}'); Deno.stdout.writeSync(new TextEncoder().encode("garbage\n{\"fatal\":\"x\"}\n")); return "genuine";"#,
            Returns(r#""genuine""#),
        ),
        attack(
            "flooding stderr",
            r#"for (let i = 0; i < 2000; i++) console.error("x".repeat(1000)); return "done";"#,
            Returns(r#""done""#),
        ),
        attack(
            "overwriting postMessage",
            r#"self.postMessage = () => {}; globalThis.postMessage = () => {}; return "overwritten";"#,
            Returns(r#""overwritten""#),
        ),
        attack(
            "overwriting JSON.stringify and JSON.parse",
            r#"JSON.stringify = () => '{"forged":true}'; JSON.parse = () => ({}); return { real: true };"#,
            Returns(r#"{"real":true}"#),
        ),
        attack(
            "polluting Object.prototype",
            r#"Object.prototype.ok = false; Object.prototype.error = "polluted"; return "polluted";"#,
            Returns(r#""polluted""#),
        ),
        attack("Deno.exit", r#"Deno.exit(3);"#, Error(&["Deno.exit"])),
        attack(
            "calling self.close()",
            r#"self.close(); return "closed";"#,
            Returns(r#""closed""#),
        ),
        attack(
            "stealing stdin",
            r#"const r = Deno.stdin.readable.getReader(); const { value } = await r.read(); return new TextDecoder().decode(value);"#,
            Error(&["stdin is reserved"]),
        ),
        Attack {
            top: r#"Deno.env.get("HOME");"#,
            ..attack(
                "env access at import time",
                r#"return 1;"#,
                Load("move code that reads env"),
            )
        },
        Attack {
            top: r#"await fetch("https://example.com/");"#,
            ..attack(
                "network access at import time",
                r#"return 1;"#,
                Load("move code that reads env"),
            )
        },
        Attack {
            top: r#"Deno.readTextFileSync("/etc/passwd");"#,
            ..attack(
                "file access at import time",
                r#"return 1;"#,
                Load("move code that reads env"),
            )
        },
        Attack {
            top: r#"for (;;) {}"#,
            ..attack(
                "an infinite loop at import time",
                r#"return 1;"#,
                Load("did not load"),
            )
        },
        Attack {
            top: r#"throw new Error("broken on purpose");"#,
            ..attack(
                "throwing at import time",
                r#"return 1;"#,
                Load("broken on purpose"),
            )
        },
    ]
}

fn source(attack: &Attack) -> String {
    format!(
        r#"import {{ endpoint, manifest }} from "at-run";
export const bundle = manifest({{ name: "hostile", permissions: {{ net: {net}, env: {env} }} }});
{top}
export const run = endpoint({{ handler: async (args: any) => {{ {body} }} }});
"#,
        net = serde_json::to_string(attack.net).unwrap_or_default(),
        env = serde_json::to_string(attack.env).unwrap_or_default(),
        top = attack.top,
        body = attack.body,
    )
}

/// A loopback HTTP server that counts connections: none may arrive.
fn tripwire() -> (u16, Arc<AtomicUsize>) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut stream) = stream {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        }
    });
    (port, hits)
}

async fn run_attack(
    policy: Arc<SandboxPolicy>,
    harness: PathBuf,
    dir: PathBuf,
    attack: &Attack,
    port: u16,
    secret_file: &str,
) -> Result<(), String> {
    let entry = dir.join(format!(
        "{}.ts",
        attack
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    std::fs::write(&entry, source(attack)).map_err(|e| e.to_string())?;
    let code = bundler::bundle(&deno(), &entry)
        .await
        .map_err(|e| format!("bundling: {e}"))?;
    let extract = permissions::extract_args(policy.heap_mb, &harness);
    let manifest = match Sandbox::start(policy.clone(), extract, Vec::new(), &code, true).await {
        Ok((_, raw)) => Manifest::validate(raw, Some("hostile")).map_err(|e| e.to_string())?,
        Err(SandboxError::Load(message)) => {
            return match attack.expect {
                Expect::Load(advice) if message.contains(advice) => Ok(()),
                _ => Err(format!("unexpected load error: {message}")),
            };
        }
        Err(other) => return Err(format!("extraction failed: {other}")),
    };
    let args = permissions::serve_args(
        &manifest.permissions,
        policy.deny_private_network,
        policy.heap_mb,
        &harness,
    );
    let (sandbox, _) = Sandbox::start(policy.clone(), args, Vec::new(), &code, false)
        .await
        .map_err(|e| format!("start: {e}"))?;
    let reply = sandbox
        .call(
            "run",
            &json!({"port": port, "path": secret_file}),
            &json!({}),
        )
        .await;
    let outcome = match (attack.expect, &reply) {
        (Expect::Error(needles), Err(SandboxError::Handler(message)))
            if needles.iter().any(|n| message.contains(n)) =>
        {
            Ok(())
        }
        (Expect::Timeout, Err(SandboxError::Timeout(_))) if !sandbox.is_alive() => Ok(()),
        (Expect::CrashOrError(_), Err(SandboxError::Crashed(_) | SandboxError::TooLarge(_))) => {
            Ok(())
        }
        (Expect::CrashOrError(needles), Err(SandboxError::Handler(message)))
            if needles.iter().any(|n| message.contains(n)) =>
        {
            Ok(())
        }
        (Expect::Returns(json), Ok(Reply::Json(value)))
            if value == &serde_json::from_str::<Value>(json).unwrap_or_default() =>
        {
            Ok(())
        }
        _ => Err(format!("expected {:?}, got {reply:?}", attack.expect)),
    };
    outcome?;
    if let Err(err) = &reply {
        let message = err.to_string();
        if message.contains("root:x:0:0") || message.contains("runner-secret-value") {
            return Err(format!("the error leaked data: {message}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bundles_are_contained() {
    let (base, harness, dir) = policy();
    let policy = Arc::new(SandboxPolicy {
        call_timeout: Duration::from_secs(2),
        heap_mb: 64,
        max_response_bytes: 1024 * 1024,
        deny_private_network: true,
        ..(*base).clone()
    });
    let secret_file = dir.path().join("runner-key.json");
    std::fs::write(
        &secret_file,
        "runner-secret-value SECRET=runner-secret-value",
    )
    .expect("write");
    let (port, hits) = tripwire();

    // A well-behaved bundle answers throughout.
    let hello = bundle_fixture("hello").await;
    let hello_args = permissions::serve_args(
        &permissions::Permissions::default().with_env(["GREETING"]),
        true,
        128,
        &harness,
    );
    let (good, _) = Sandbox::start(base.clone(), hello_args, Vec::new(), &hello, false)
        .await
        .expect("hello");
    let good = Arc::new(good);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (good, stop, answered) = (good.clone(), stop.clone(), answered.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let reply = good
                    .call("hello", &json!({"name": "still here"}), &json!({}))
                    .await;
                assert_eq!(
                    reply,
                    Ok(Reply::Json(json!({"hi": "still here", "greeting": null}))),
                    "the good bundle stopped answering"
                );
                answered.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let attacks = attacks();
    assert!(attacks.len() >= 40, "{} attacks", attacks.len());
    let work = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for batch in attacks.chunks(4) {
        let runs = batch.iter().map(|attack| {
            let (policy, harness, dir) =
                (policy.clone(), harness.clone(), work.path().to_path_buf());
            let secret = secret_file.display().to_string();
            async move {
                (
                    attack.name,
                    run_attack(policy, harness, dir, attack, port, &secret).await,
                )
            }
        });
        for (name, result) in futures::future::join_all(runs).await {
            if let Err(why) = result {
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    watcher.await.expect("the good bundle kept answering");

    assert!(
        failures.is_empty(),
        "{} of {} not contained as expected:\n{}",
        failures.len(),
        attacks.len(),
        failures.join("\n")
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a bundle reached the loopback server"
    );
    assert!(
        !std::path::Path::new("/tmp/atrun-hostile-write").exists(),
        "a bundle wrote a file"
    );
    assert!(
        answered.load(Ordering::SeqCst) > 10,
        "the good bundle answered meanwhile"
    );
    assert!(good.is_alive());
}
