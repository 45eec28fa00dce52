//! The Deno command line for each kind of sandboxed run, built in one place.
//!
//! A bundle's process gets exactly what its manifest declares: `--allow-net` for its
//! hosts, `--allow-env` for its declared variables and its secrets' names, and nothing
//! else: no file system, subprocesses, FFI, system information, remote or npm imports.
//! Deny flags beat allow flags in Deno, so the private networks are denied outright
//! (checked against the address a host name resolves to), unless the operator allows
//! them. Manifest extraction gets no permissions at all.

use std::collections::BTreeSet;
use std::path::Path;

/// Private, loopback, link-local and shared IPv4 ranges, and IPv6 loopback. (Deno's
/// `--deny-net` takes IPv4 CIDRs but no IPv6 ranges.)
const PRIVATE_NETWORKS: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "[::1]",
    "[::]",
];

/// What a bundle may use, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permissions {
    /// Hosts, optionally with a port.
    pub net: BTreeSet<String>,
    /// Environment variable names: declared ones and secrets.
    pub env: BTreeSet<String>,
}

/// Why a declared permission is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// Not a host name or `host:port`.
    #[error("invalid net permission {0:?}: expected a host name, optionally with :port")]
    Net(String),
    /// Not an environment variable name.
    #[error("invalid env permission {0:?}: expected a name like API_KEY")]
    Env(String),
}

/// Whether `name` is an acceptable environment variable name (and so a secret name).
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 128
}

fn valid_host(entry: &str) -> bool {
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (entry, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    port_ok && host_ok
}

impl Permissions {
    /// Validates a manifest's permissions; lowercases host names.
    pub fn new<'a>(
        net: impl IntoIterator<Item = &'a str>,
        env: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, PermissionError> {
        let mut permissions = Self::default();
        for host in net {
            let host = host.trim().to_ascii_lowercase();
            if !valid_host(&host) {
                return Err(PermissionError::Net(host));
            }
            permissions.net.insert(host);
        }
        for name in env {
            if !valid_env_name(name) {
                return Err(PermissionError::Env(name.to_string()));
            }
            permissions.env.insert(name.to_string());
        }
        Ok(permissions)
    }

    /// These permissions plus `names` (a bundle's secrets) in env.
    pub fn with_env<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut merged = self.clone();
        merged.env.extend(names.into_iter().map(String::from));
        merged
    }
}

/// Flags common to every sandboxed run.
fn base_args(memory_mb: u64) -> Vec<String> {
    vec![
        "run".into(),
        "--no-prompt".into(),
        "--no-config".into(),
        "--no-lock".into(),
        "--no-remote".into(),
        "--no-npm".into(),
        "--cached-only".into(),
        format!("--v8-flags=--max-old-space-size={memory_mb}"),
        "--deny-read".into(),
        "--deny-write".into(),
        "--deny-run".into(),
        "--deny-ffi".into(),
        "--deny-sys".into(),
    ]
}

/// Arguments for serving a bundle's calls with `permissions`.
pub fn serve_args(
    permissions: &Permissions,
    deny_private_network: bool,
    memory_mb: u64,
    harness: &Path,
) -> Vec<String> {
    let mut args = base_args(memory_mb);
    if permissions.net.is_empty() {
        args.push("--deny-net".into());
    } else {
        args.push(format!("--allow-net={}", join(&permissions.net)));
        if deny_private_network {
            args.push(format!("--deny-net={}", PRIVATE_NETWORKS.join(",")));
        }
    }
    if permissions.env.is_empty() {
        args.push("--deny-env".into());
    } else {
        args.push(format!("--allow-env={}", join(&permissions.env)));
    }
    args.push(harness.display().to_string());
    args
}

/// Arguments for reading a bundle's manifest: no permissions at all.
pub fn extract_args(memory_mb: u64, harness: &Path) -> Vec<String> {
    let mut args = base_args(memory_mb);
    args.push("--deny-net".into());
    args.push("--deny-env".into());
    args.push(harness.display().to_string());
    args
}

fn join(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_declare_hosts_and_names_only() {
        let ok = Permissions::new(["API.example.com", "example.org:8443"], ["LOG_LEVEL"])
            .expect("valid");
        assert!(ok.net.contains("api.example.com"));
        for bad in [
            "",
            "*",
            "http://x.com",
            "a b",
            "x.com:0",
            "x.com:99999",
            "-x.com",
            "x.com/path",
            "*.x.com",
        ] {
            assert!(
                Permissions::new([bad], []).is_err(),
                "{bad:?} must be refused"
            );
        }
        for bad in ["", "lower", "1ABC", "A-B", "PATH=x"] {
            assert!(
                Permissions::new([], [bad]).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn a_process_gets_exactly_its_permissions() {
        let permissions = Permissions::new(["api.example.com"], ["LOG_LEVEL"])
            .expect("valid")
            .with_env(["API_KEY"]);
        let args = serve_args(&permissions, true, 128, Path::new("/h.js"));
        assert!(args.contains(&"--allow-net=api.example.com".to_string()));
        assert!(args.contains(&"--allow-env=API_KEY,LOG_LEVEL".to_string()));
        assert!(args.iter().any(|a| a.starts_with("--deny-net=")
            && a.contains("127.0.0.0/8")
            && a.contains("169.254.0.0/16")));
        for flag in [
            "--deny-read",
            "--deny-write",
            "--deny-run",
            "--deny-ffi",
            "--deny-sys",
            "--no-remote",
            "--no-npm",
            "--no-prompt",
        ] {
            assert!(args.contains(&flag.to_string()), "{flag}");
        }
        assert!(
            !args.iter().any(|a| a.starts_with("--allow-read")
                || a.starts_with("--allow-run")
                || a == "-A")
        );

        let none = serve_args(&Permissions::default(), true, 128, Path::new("/h.js"));
        assert!(
            none.contains(&"--deny-net".to_string()) && none.contains(&"--deny-env".to_string())
        );
        let extract = extract_args(128, Path::new("/h.js"));
        assert!(!extract.iter().any(|a| a.starts_with("--allow")));
    }
}
