//! Stops a serving process that keeps using CPU while it has no call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{SandboxError, State, lock};

/// How often an idle process's CPU time is read.
const IDLE_CPU_POLL: Duration = Duration::from_millis(100);
/// CPU a process may use after its last call returned (V8 finishing a garbage collection,
/// say), in clock ticks of 10 ms...
const IDLE_CPU_ALLOWANCE_TICKS: u64 = 30;
/// ...plus this many ticks per second of idleness (2 % of a core). A thread left
/// spinning uses 100 per second.
const IDLE_CPU_TICKS_PER_SEC: u64 = 2;

/// Stops a serving process that keeps using CPU while it has no call: whatever a call
/// started (a worker, a thread of a Node API) must not outlive it. The harness terminates
/// the workers it knows of, but Deno's `Worker.terminate()` does not interrupt one that
/// spins in its top-level code (measured with Deno 2.9), so this is what bounds them.
pub(super) async fn watch_idle_cpu(state: std::sync::Weak<State>, pid: u32) {
    // Since when the process has had no call: (calls started then, CPU ticks then, when).
    let mut idle_since: Option<(u64, u64, std::time::Instant)> = None;
    loop {
        tokio::time::sleep(IDLE_CPU_POLL).await;
        let Some(state) = state.upgrade() else { return };
        if state.is_dead() {
            return;
        }
        let Some(cpu) = cpu_ticks(pid) else { return };
        let calls = state.next_id.load(Ordering::SeqCst);
        if !lock(&state.pending).is_empty() {
            idle_since = None;
            continue;
        }
        let (cpu_then, since) = match idle_since {
            Some((calls_then, cpu_then, since)) if calls_then == calls => (cpu_then, since),
            _ => {
                idle_since = Some((calls, cpu, std::time::Instant::now()));
                continue;
            }
        };
        let used = cpu.saturating_sub(cpu_then);
        let allowed = IDLE_CPU_ALLOWANCE_TICKS + since.elapsed().as_secs() * IDLE_CPU_TICKS_PER_SEC;
        if used > allowed {
            tracing::info!(
                target: "atrun",
                pid,
                cpu_ms = used * 10,
                idle_ms = since.elapsed().as_millis() as u64,
                "stopping a bundle process that kept using CPU after its calls returned"
            );
            state.kill(&SandboxError::Crashed(
                "it kept using CPU after its calls returned".into(),
            ));
            return;
        }
    }
}

/// User plus system CPU time of a process, all threads, in clock ticks (Linux's
/// `USER_HZ`, 100 per second).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
