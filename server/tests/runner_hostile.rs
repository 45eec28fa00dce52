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
use server::runner::egress::Egress;
use server::runner::manifest::Manifest;
use server::runner::permissions::Permissions;
use server::runner::sandbox::{
    Launch, Reply, Sandbox, SandboxError, SandboxPolicy, ServeGrants, cpu_ticks,
};
use server::secret::Secret;
use tokio_util::sync::CancellationToken;

use common::runner::{bundle_fixture, deno, policy};

/// What the caller must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The handler fails with an error containing one of these.
    Error(&'static [&'static str]),
    /// The call is stopped at the timeout and the process replaced.
    Timeout,
    /// Either the process dies or the call errors with one of these (allocation limits
    /// surface either way, depending on where they hit); on a loaded machine the call may
    /// reach its timeout first, which stops the process just the same.
    CrashOrError(&'static [&'static str]),
    /// The bundle fails to load, with advice.
    Load(&'static str),
    /// The call succeeds with exactly this value (the attack had no effect on it).
    Returns(&'static str),
    /// The manifest is refused, with a reason containing this.
    Refused(&'static str),
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
            r#"return Deno.env.get("SOME_API_KEY") ?? "unset";"#,
            Error(DENIED),
        ),
        attack(
            "read the host's HOME",
            r#"return Deno.env.get("HOME") ?? "unset";"#,
            Returns(r#""unset""#),
        ),
        attack(
            "read the host's PATH through process.env",
            r#"const p = (await import("node:process")).default; return p.env.PATH ?? "unset";"#,
            Returns(r#""unset""#),
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
        Attack {
            net: &["example.com"],
            ..attack(
                "patching Headers, arrays and Object.prototype to read the egress token",
                r#"const seen = [];
const note = (what) => { seen.push(String(what)); };
for (const name of ["set", "append", "get", "has", "delete", "forEach", "entries", "keys", "values"]) {
  const original = Headers.prototype[name];
  Headers.prototype[name] = function (...a) { note(a.join("=")); return original.apply(this, a); };
}
const iterate = Headers.prototype[Symbol.iterator];
Headers.prototype[Symbol.iterator] = function* () { for (const pair of iterate.call(this)) { note(pair.join("=")); yield pair; } };
const arrays = Array.prototype[Symbol.iterator];
Array.prototype[Symbol.iterator] = function () { note(this.join("=")); return arrays.call(this); };
Object.defineProperty(Object.prototype, "x-atrun-egress", { set(v) { note("proto=" + v); }, configurable: true });
try { await fetch("http://example.com/", { headers: { "x-mine": "1" } }); } catch {}
Array.prototype[Symbol.iterator] = arrays;
const leaked = seen.filter((s) => s.includes("x-atrun-egress") || /[0-9a-f]{32}/.test(s));
return leaked.length ? "leaked: " + leaked.join(" | ") : "unreachable";"#,
                Returns(r#""unreachable""#),
            )
        },
        attack(
            "reading the host's paths",
            r#"return [Deno.cwd(), Deno.execPath(), Deno.mainModule, process.cwd(), process.execPath, process.argv];"#,
            Returns(r#"["/","/deno","file:///bundle.js","/","/deno",["/deno","/bundle.js"]]"#),
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
            env: &["LD_PRELOAD"],
            ..attack("declaring LD_PRELOAD", r#"return 1;"#, Refused("reserved"))
        },
        Attack {
            env: &["DENO_DIR"],
            ..attack("declaring DENO_DIR", r#"return 1;"#, Refused("reserved"))
        },
        Attack {
            env: &["PATH"],
            ..attack("declaring PATH", r#"return 1;"#, Refused("reserved"))
        },
        Attack {
            env: &["HTTPS_PROXY"],
            ..attack("declaring HTTPS_PROXY", r#"return 1;"#, Refused("reserved"))
        },
        Attack {
            env: &["DENO_V8_FLAGS"],
            ..attack(
                "declaring DENO_V8_FLAGS",
                r#"return 1;"#,
                Refused("reserved"),
            )
        },
        Attack {
            env: &["DECLARED"],
            ..attack(
                "process.env shows only what is declared",
                r#"const p = (await import("node:process")).default; return [p.env.DECLARED ?? null, Object.keys(p.env).length];"#,
                Error(DENIED),
            )
        },
        attack(
            "localStorage",
            r#"localStorage.setItem("stolen", "x"); return localStorage.getItem("stolen");"#,
            Error(&["not available"]),
        ),
        attack(
            "the Cache API",
            r#"const c = await caches.open("x"); await c.put("https://a.example/", new Response("x")); return "cached";"#,
            Error(&["not available"]),
        ),
        attack(
            "raw TCP with no hosts declared",
            r#"const c = await Deno.connect({ hostname: "localhost", port: Number(args.port) }); c.close(); return "connected";"#,
            Error(DENIED),
        ),
        Attack {
            top: r#"Deno.env.get("API_KEY");"#,
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
    policies: Policies,
    egress: Arc<Egress>,
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
    let policy = match attack.expect {
        Expect::Timeout => policies.short,
        _ => policies.patient,
    };
    let code = bundler::bundle(&deno(), &entry)
        .await
        .map_err(|e| format!("bundling: {e}"))?;
    let manifest = match Sandbox::start(policy.clone(), &harness, Launch::Extract, &code).await {
        Ok((_, raw)) => match (Manifest::validate(raw, Some("hostile")), attack.expect) {
            (Err(err), Expect::Refused(reason)) if err.to_string().contains(reason) => {
                return Ok(());
            }
            (Err(err), _) => return Err(format!("manifest refused: {err}")),
            (Ok(_), Expect::Refused(_)) => return Err("the manifest was accepted".into()),
            (Ok(manifest), _) => manifest,
        },
        Err(SandboxError::Load(message)) => {
            return match attack.expect {
                Expect::Load(advice) if message.contains(advice) => Ok(()),
                _ => Err(format!("unexpected load error: {message}")),
            };
        }
        Err(other) => return Err(format!("extraction failed: {other}")),
    };
    let grants = ServeGrants {
        permissions: manifest.permissions,
        env: vec![("SECRET".into(), Secret::new("runner-secret-value"))],
        egress: Some(egress),
        kv: None,
    };
    let (sandbox, _) = Sandbox::start(policy.clone(), &harness, Launch::Serve(grants), &code)
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
        (Expect::CrashOrError(_), Err(SandboxError::Timeout(_))) if !sandbox.is_alive() => Ok(()),
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

/// Attacks that must be stopped by the call timeout get a short one; the
/// rest get a long one, so a cold `node:` import on a loaded machine is not
/// mistaken for a hang.
#[derive(Clone)]
struct Policies {
    short: Arc<SandboxPolicy>,
    patient: Arc<SandboxPolicy>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bundles_are_contained() {
    let (base, harness, dir) = policy();
    let contained = SandboxPolicy {
        call_timeout: Duration::from_secs(2),
        // The import-time infinite loop is refused when this runs out.
        start_timeout: Duration::from_secs(10),
        heap_mb: 64,
        max_response_bytes: 1024 * 1024,
        ..(*base).clone()
    };
    let policies = Policies {
        patient: Arc::new(SandboxPolicy {
            call_timeout: Duration::from_secs(20),
            ..contained.clone()
        }),
        short: Arc::new(contained),
    };
    let secret_file = dir.path().join("runner-key.json");
    std::fs::write(
        &secret_file,
        "runner-secret-value SECRET=runner-secret-value",
    )
    .expect("write");
    let (port, hits) = tripwire();
    let shutdown = CancellationToken::new();
    let egress = Egress::start(false, Duration::from_secs(10), shutdown.child_token())
        .await
        .expect("egress");

    // A well-behaved bundle answers throughout.
    let hello = bundle_fixture("hello").await;
    let grants = ServeGrants {
        permissions: Permissions::default().with_env(["GREETING"]),
        env: Vec::new(),
        egress: None,
        kv: None,
    };
    let (good, _) = Sandbox::start(base.clone(), &harness, Launch::Serve(grants), &hello)
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
            let (policies, egress, harness, dir) = (
                policies.clone(),
                egress.clone(),
                harness.clone(),
                work.path().to_path_buf(),
            );
            let secret = secret_file.display().to_string();
            async move {
                (
                    attack.name,
                    run_attack(policies, egress, harness, dir, attack, port, &secret).await,
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

/// Starts `source` (a bundle's TypeScript) in a serving sandbox with `grants`.
async fn serve(
    policy: Arc<SandboxPolicy>,
    harness: &std::path::Path,
    dir: &std::path::Path,
    source: &str,
    grants: ServeGrants,
) -> Sandbox {
    let entry = dir.join(format!("b{}.ts", uuid_like()));
    std::fs::write(&entry, source).expect("write");
    let code = bundler::bundle(&deno(), &entry).await.expect("bundle");
    Sandbox::start(policy, harness, Launch::Serve(grants), &code)
        .await
        .expect("start")
        .0
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn handler_error(reply: Result<Reply, SandboxError>) -> String {
    match reply {
        Err(SandboxError::Handler(message)) => message,
        other => panic!("expected the handler to fail, got {other:?}"),
    }
}

/// Every spelling of a private destination, and names that resolve to one, are refused
/// by the egress forwarder, even when granted (as a manifest written straight to a PDS
/// could, were it not refused first); raw sockets, WebSockets and `node:http` reach
/// nothing. The author is told which host was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_networks_are_unreachable_in_every_spelling() {
    let (policy, harness, dir) = policy();
    let (port, hits) = tripwire();
    let shutdown = CancellationToken::new();
    let egress = Egress::start(false, Duration::from_secs(5), shutdown.child_token())
        .await
        .expect("egress");
    let hosts = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "localhost",
        "[fd00::1]",
        "[::ffff:169.254.169.254]",
        "169.254.169.254",
        "10.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "240.0.0.1",
        "0.0.0.0",
    ];
    let permissions = Permissions {
        net: hosts.iter().map(ToString::to_string).collect(),
        ..Default::default()
    };
    let sandbox = serve(
        policy,
        &harness,
        dir.path(),
        r#"import { endpoint, manifest } from "at-run";
export const bundle = manifest({ name: "prober" });
export const get = endpoint({ handler: async (args: any) => (await fetch(args.url)).status });
export const raw = endpoint({ handler: async (args: any) => { const c = await Deno.connect({ hostname: args.host, port: Number(args.port) }); c.close(); return "connected"; } });
export const ws = endpoint({ handler: async (args: any) => { const s = new WebSocket(args.url); await new Promise((ok, fail) => { s.onopen = ok; s.onerror = (e: any) => fail(new Error("websocket: " + e.message)); }); return "open"; } });
export const node = endpoint({ handler: async (args: any) => { const http = await import("node:http"); return await new Promise((ok, fail) => { const r = http.get(args.url, (res: any) => ok(res.statusCode)); r.on("error", fail); }); } });
"#,
        ServeGrants {
            permissions,
            env: Vec::new(),
            egress: Some(egress),
            kv: None,
        },
    )
    .await;
    for host in hosts {
        let url = format!("http://{host}:{port}/latest/meta-data/");
        let message = handler_error(
            sandbox
                .call("get", &json!({ "url": url }), &json!({}))
                .await,
        );
        assert!(
            message.starts_with("NotCapable: refusing to connect to"),
            "{host}: {message}"
        );
    }
    for host in ["127.0.0.1", "localhost", "::1"] {
        let message = handler_error(
            sandbox
                .call("raw", &json!({"host": host, "port": port}), &json!({}))
                .await,
        );
        assert!(
            message.contains("NotCapable"),
            "raw TCP to {host}: {message}"
        );
    }
    let url = format!("ws://localhost:{port}/");
    handler_error(sandbox.call("ws", &json!({ "url": url }), &json!({})).await);
    let url = format!("http://localhost:{port}/");
    handler_error(
        sandbox
            .call("node", &json!({ "url": url }), &json!({}))
            .await,
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a connection got through");
    assert!(sandbox.is_alive());
    shutdown.cancel();
}

/// Secrets and declared variables reach the bundle's `Deno.env` and `process.env` over
/// the harness's pipe; the process environment holds none of them, nor anything else of
/// the author's choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_enter_the_process_environment() {
    let (policy, harness, dir) = policy();
    let sandbox = serve(
        policy,
        &harness,
        dir.path(),
        r#"import { endpoint, manifest } from "at-run";
export const bundle = manifest({ name: "env", permissions: { env: ["LOG_LEVEL"] } });
export const read = endpoint({ handler: async () => ({
  deno: Deno.env.get("API_KEY") ?? null,
  process: (globalThis as any).process.env.API_KEY ?? null,
  level: Deno.env.get("LOG_LEVEL") ?? null,
}) });
"#,
        ServeGrants {
            permissions: Permissions::new([], ["LOG_LEVEL"])
                .expect("valid")
                .with_env(["API_KEY"]),
            env: vec![("API_KEY".into(), Secret::new("sk-very-secret-value"))],
            egress: None,
            kv: None,
        },
    )
    .await;
    let reply = sandbox
        .call("read", &json!({}), &json!({}))
        .await
        .expect("call");
    assert_eq!(
        reply,
        Reply::Json(
            json!({"deno": "sk-very-secret-value", "process": "sk-very-secret-value", "level": null})
        )
    );
    let pid = sandbox.pid().expect("running");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let mut names: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|e| e.contains("sk-very-secret") || e.contains("API_KEY")),
        "{names:?}"
    );
    names.sort();
    assert_eq!(
        names,
        [
            "DENO_DIR=/dev/null/deno",
            "DENO_NO_UPDATE_CHECK=1",
            "NO_COLOR=1"
        ],
        "the environment is the runner's, not the author's"
    );
}

/// CPU seconds a process uses over `window` (until it exits, if it does).
async fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_ticks(pid).unwrap_or(0);
    let mut last = before;
    let started = std::time::Instant::now();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match cpu_ticks(pid) {
            Some(ticks) => last = ticks,
            None => break,
        }
    }
    last.saturating_sub(before) as f64 / 100.0
}

/// Work a call starts does not outlive it: workers are terminated when no call runs,
/// and a process that keeps burning CPU anyway (a `node:worker_threads` thread) is
/// stopped within a second or so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_started_by_a_call_stops_when_it_returns() {
    let (policy, harness, dir) = policy();
    let source = r#"import { endpoint, manifest } from "at-run";
export const bundle = manifest({ name: "spinner" });
const spin = URL.createObjectURL(new Blob(["for (;;) {}"], { type: "application/javascript" }));
export const worker = endpoint({ handler: async () => { for (let i = 0; i < 2; i++) new Worker(spin, { type: "module" }); return "started"; } });
export const threads = endpoint({ handler: async () => { const { Worker } = await import("node:worker_threads"); new Worker("for (;;) {}", { eval: true }); return "started"; } });
export const ping = endpoint({ handler: async () => "pong" });
"#;
    let grants = || ServeGrants {
        permissions: Permissions::default(),
        env: Vec::new(),
        egress: None,
        kv: None,
    };

    // A process with nothing running is left alone.
    let idle = serve(policy.clone(), &harness, dir.path(), source, grants()).await;
    assert_eq!(
        idle.call("ping", &json!({}), &json!({})).await,
        Ok(Reply::Json(json!("pong")))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(idle.is_alive(), "an idle process is not stopped");

    let sandbox = serve(policy.clone(), &harness, dir.path(), source, grants()).await;
    let pid = sandbox.pid().expect("pid");
    let reply = sandbox.call("worker", &json!({}), &json!({})).await;
    assert_eq!(reply, Ok(Reply::Json(json!("started"))));
    let after_worker = cpu_over(pid, Duration::from_secs(3)).await;
    println!(
        "CPU seconds in the 3 s after a call that left two Workers spinning: {after_worker:.2}"
    );
    assert!(
        after_worker < 1.5,
        "{after_worker} CPU seconds after return"
    );
    assert!(!sandbox.is_alive(), "the process was stopped");

    let sandbox = serve(policy, &harness, dir.path(), source, grants()).await;
    let pid = sandbox.pid().expect("pid");
    let reply = sandbox.call("threads", &json!({}), &json!({})).await;
    assert_eq!(reply, Ok(Reply::Json(json!("started"))));
    let after_threads = cpu_over(pid, Duration::from_secs(3)).await;
    println!(
        "CPU seconds in the 3 s after a call that left a node:worker_threads thread spinning: {after_threads:.2}"
    );
    assert!(
        after_threads < 1.5,
        "{after_threads} CPU seconds after return"
    );
    let later = cpu_over(pid, Duration::from_secs(1)).await;
    assert!(
        later < 0.1,
        "still spinning: {later} CPU seconds in the next second"
    );
}
