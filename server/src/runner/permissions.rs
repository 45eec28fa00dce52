//! The Deno command line for each kind of sandboxed run, built in one place, and the
//! rules for what a manifest may ask for.
//!
//! A bundle's process gets exactly what its manifest declares and nothing else: no file
//! system, subprocesses, FFI, system information, remote or npm imports, and no access to
//! the process environment at all.
//!
//! - **Network**: Deno may connect to one address, the runner's egress forwarder
//!   ([`super::egress`]), which checks each request against the declared hosts and the
//!   private-network guard. A bundle without `permissions.net` gets `--deny-net`.
//! - **Environment**: `--deny-env`. The names a bundle declares, and its secrets, are
//!   handed to the harness over its stdin pipe and served by its `Deno.env` (which
//!   `process.env` reads too). Nothing a bundle author controls ever becomes a process
//!   environment variable, so no name can steer the dynamic loader, Deno, V8, TLS, DNS or
//!   proxies. Names that would (`LD_PRELOAD`, `DENO_DIR`, `HTTPS_PROXY`…) are refused
//!   anyway, at deploy and by the runner, so a bundle never depends on them.
//!
//! Manifest extraction gets no permissions at all.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

/// What a bundle may use, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permissions {
    /// Hosts, optionally with a port.
    pub net: BTreeSet<String>,
    /// Environment variable names: declared ones and secrets.
    pub env: BTreeSet<String>,
    /// Whether the bundle keeps state in `ctx.kv`.
    pub kv: bool,
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
    /// A name reserved for the runtime (the loader, Deno, TLS, proxies, the shell).
    #[error(
        "{0:?} is reserved: names that configure the runtime (LD_*, DENO_*, V8_*, NODE_*, \
         RUST_*, SSL_*, *_PROXY, PATH, HOME, LANG, LC_*, TZ…) cannot be used by bundles"
    )]
    Reserved(String),
    /// A private address while the runner denies private networks.
    #[error(
        "{0:?} is a private, loopback or link-local host, which this runner does not let bundles reach"
    )]
    PrivateHost(String),
}

/// Exact names that configure the process, its shell or its libraries.
const RESERVED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "TMP",
    "TEMP",
    "PWD",
    "OLDPWD",
    "SHELL",
    "USER",
    "LOGNAME",
    "HOSTNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TZDIR",
    "TERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "NLSPATH",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "HOSTALIASES",
    "SSLKEYLOGFILE",
    "IFS",
    "ENV",
    "BASH_ENV",
];

/// Prefixes of names that configure the dynamic loader, runtimes and libraries.
const RESERVED_PREFIXES: &[&str] = &[
    "LD_", "DENO_", "V8_", "NODE_", "RUST_", "SSL_", "LC_", "MALLOC_", "OPENSSL_", "XDG_",
    "CARGO_", "NPM_", "CURL_", "GIT_",
];

/// Whether `name` is reserved for the runtime (compared case-insensitively, as some
/// libraries read `https_proxy` as well as `HTTPS_PROXY`).
pub fn reserved_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    RESERVED_NAMES.contains(&upper.as_str())
        || RESERVED_PREFIXES
            .iter()
            .any(|prefix| upper.starts_with(prefix))
        || upper.ends_with("_PROXY")
        || upper == "PROXY"
}

/// The reservation rules, for the harness: a bundle's `Deno.env` reports reserved names
/// as unset (Node's compatibility layer reads `NODE_OPTIONS` and the like) instead of
/// refusing them like other undeclared names.
pub fn reserved_env_rules() -> serde_json::Value {
    serde_json::json!({
        "names": RESERVED_NAMES,
        "prefixes": RESERVED_PREFIXES,
        "suffix": "_PROXY",
    })
}

/// Checks a name a bundle uses for a variable or a secret: syntax, then reservation.
pub fn check_env_name(name: &str) -> Result<(), PermissionError> {
    if !valid_env_name(name) {
        return Err(PermissionError::Env(name.to_string()));
    }
    if reserved_env_name(name) {
        return Err(PermissionError::Reserved(name.to_string()));
    }
    Ok(())
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
            check_env_name(name)?;
            permissions.env.insert(name.to_string());
        }
        Ok(permissions)
    }

    /// Refuses hosts that name a private destination outright (in any IP spelling, or
    /// `localhost`-like names), for runners that deny private networks.
    pub fn refuse_private_hosts(&self) -> Result<(), PermissionError> {
        for entry in &self.net {
            let host = match entry.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                _ => entry.as_str(),
            };
            if crate::atproto::net::host_is_private(host) {
                return Err(PermissionError::PrivateHost(entry.clone()));
            }
        }
        Ok(())
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
        "--no-code-cache".into(),
        format!("--v8-flags=--max-old-space-size={memory_mb}"),
        "--deny-read".into(),
        "--deny-write".into(),
        "--deny-run".into(),
        "--deny-ffi".into(),
        "--deny-sys".into(),
        "--deny-env".into(),
    ]
}

/// Arguments for serving a bundle's calls: its only network destination is the egress
/// forwarder at `egress`, if it declares any hosts.
pub fn serve_args(egress: Option<SocketAddr>, memory_mb: u64, harness: &Path) -> Vec<String> {
    let mut args = base_args(memory_mb);
    match egress {
        Some(addr) => args.push(format!("--allow-net={addr}")),
        None => args.push("--deny-net".into()),
    }
    args.push(harness.display().to_string());
    args
}

/// Arguments for reading a bundle's manifest: no permissions at all.
pub fn extract_args(memory_mb: u64, harness: &Path) -> Vec<String> {
    serve_args(None, memory_mb, harness)
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
    fn names_that_configure_the_runtime_are_reserved() {
        for name in [
            "LD_PRELOAD",
            "LD_DEBUG_OUTPUT",
            "DENO_DIR",
            "DENO_V8_FLAGS",
            "V8_FLAGS",
            "NODE_OPTIONS",
            "RUST_LOG",
            "SSL_CERT_FILE",
            "SSLKEYLOGFILE",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "PATH",
            "HOME",
            "TMPDIR",
            "LANG",
            "LC_ALL",
            "TZ",
            "GLIBC_TUNABLES",
        ] {
            assert!(
                matches!(check_env_name(name), Err(PermissionError::Reserved(_))),
                "{name} must be reserved"
            );
            assert!(Permissions::new([], [name]).is_err(), "{name} as env");
        }
        assert!(reserved_env_name("https_proxy") && reserved_env_name("Ld_Preload"));
        for name in [
            "API_KEY",
            "OPENAI_TOKEN",
            "LOG_LEVEL",
            "PROXY_URL_BASE",
            "LDAP_URL",
        ] {
            assert_eq!(check_env_name(name), Ok(()), "{name} is fine");
        }
    }

    #[test]
    fn private_hosts_can_be_refused() {
        for host in ["127.0.0.1", "2130706433", "localhost:8080", "10.1.2.3:80"] {
            let permissions = Permissions::new([host], []).expect("valid syntax");
            assert!(
                permissions.refuse_private_hosts().is_err(),
                "{host} is private"
            );
        }
        let public = Permissions::new(["api.example.com", "1.1.1.1:443"], []).expect("valid");
        assert_eq!(public.refuse_private_hosts(), Ok(()));
    }

    #[test]
    fn a_process_gets_exactly_its_permissions() {
        let egress: SocketAddr = "127.0.0.1:4567".parse().expect("addr");
        let args = serve_args(Some(egress), 128, Path::new("/h.js"));
        assert!(args.contains(&"--allow-net=127.0.0.1:4567".to_string()));
        for flag in [
            "--deny-read",
            "--deny-write",
            "--deny-run",
            "--deny-ffi",
            "--deny-sys",
            "--deny-env",
            "--no-remote",
            "--no-npm",
            "--no-prompt",
        ] {
            assert!(args.contains(&flag.to_string()), "{flag}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--allow-read")
            || a.starts_with("--allow-env")
            || a.starts_with("--allow-run")
            || a == "-A"));
        let none = serve_args(None, 128, Path::new("/h.js"));
        assert!(
            none.contains(&"--deny-net".to_string()) && none.contains(&"--deny-env".to_string())
        );
        let extract = extract_args(128, Path::new("/h.js"));
        assert!(!extract.iter().any(|a| a.starts_with("--allow")));
    }
}
