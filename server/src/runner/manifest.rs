//! A bundle's manifest: what its code declares (name, permissions, endpoints, tasks,
//! jobs), read by running the bundle with no permissions, then validated here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::permissions::{PermissionError, Permissions};
use crate::tasks::scheduler::Schedule;

/// What `js/harness.js` reports, unvalidated.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawManifest {
    name: Option<String>,
    sdk_version: Option<String>,
    #[serde(default)]
    permissions: RawPermissions,
    #[serde(default)]
    exports: Vec<RawExport>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawPermissions {
    #[serde(default)]
    net: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    kv: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExport {
    name: String,
    kind: String,
    concurrency: Option<f64>,
    cache_ttl: Option<f64>,
    timeout: Option<f64>,
    schedule: Option<String>,
}

/// The longest a task export may declare as its `timeout`.
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most exports a bundle may declare.
pub const MAX_EXPORTS: usize = 256;
/// Most hosts in `permissions.net`, and most names in `permissions.env`.
pub const MAX_PERMISSION_ENTRIES: usize = 64;

/// What an export is.
#[derive(Debug, Clone)]
pub enum ExportKind {
    /// Called synchronously.
    Endpoint,
    /// Run through the task system.
    Task {
        /// Most executions at once.
        concurrency: u32,
        /// How long a result is reused.
        cache_ttl: Duration,
        /// Longest one attempt may run, if the bundle says.
        timeout: Option<Duration>,
    },
    /// Run on a schedule.
    Job {
        /// When.
        schedule: Schedule,
        /// The schedule as written.
        expression: String,
    },
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The bundle's name.
    pub name: String,
    /// The SDK version it was built with.
    pub sdk_version: Option<String>,
    /// What its handlers may use (secrets' names are added per runner).
    pub permissions: Permissions,
    /// Its exports by name.
    pub exports: BTreeMap<String, ExportKind>,
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// No `manifest()` export.
    #[error(
        "the bundle exports no manifest(); add `export const bundle = manifest({{ name: ... }})`"
    )]
    Missing,
    /// The manifest's name differs from the record's.
    #[error("the manifest names the bundle {found:?} but it was published as {expected:?}")]
    NameMismatch {
        /// The record's name.
        expected: String,
        /// The manifest's name.
        found: String,
    },
    /// A permission is malformed.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// An export is malformed.
    #[error("export {name}: {reason}")]
    Export {
        /// The export.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whether `name` is a valid bundle name: lowercase letters, digits and dashes,
/// starting with a letter, at most 64 characters.
pub fn valid_bundle_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 64
}

fn valid_export_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

impl Manifest {
    /// Validates what the harness reported; `expected_name` is the record's name, when
    /// there is a record.
    pub fn validate(raw: RawManifest, expected_name: Option<&str>) -> Result<Self, ManifestError> {
        let name = raw.name.ok_or(ManifestError::Missing)?;
        if let Some(expected) = expected_name.filter(|expected| *expected != name) {
            return Err(ManifestError::NameMismatch {
                expected: expected.to_string(),
                found: name,
            });
        }
        if !valid_bundle_name(&name) {
            return Err(ManifestError::Export {
                name: "bundle".into(),
                reason: format!(
                    "{name:?} is not a valid bundle name (lowercase letters, digits and dashes)"
                ),
            });
        }
        if raw.exports.len() > MAX_EXPORTS {
            return Err(ManifestError::Export {
                name: "bundle".into(),
                reason: format!("a bundle may declare at most {MAX_EXPORTS} exports"),
            });
        }
        if raw.permissions.net.len() > MAX_PERMISSION_ENTRIES
            || raw.permissions.env.len() > MAX_PERMISSION_ENTRIES
        {
            return Err(ManifestError::Export {
                name: "permissions".into(),
                reason: format!(
                    "permissions.net and permissions.env may list at most {MAX_PERMISSION_ENTRIES} entries each"
                ),
            });
        }
        let permissions = Permissions {
            kv: raw.permissions.kv,
            ..Permissions::new(
                raw.permissions.net.iter().map(String::as_str),
                raw.permissions.env.iter().map(String::as_str),
            )?
        };
        let mut exports = BTreeMap::new();
        for export in raw.exports {
            let fail = |reason: &str| ManifestError::Export {
                name: export.name.clone(),
                reason: reason.to_string(),
            };
            if !valid_export_name(&export.name) {
                return Err(fail("not a valid export name"));
            }
            let kind = match export.kind.as_str() {
                "endpoint" => ExportKind::Endpoint,
                "task" => {
                    let concurrency = export.concurrency.unwrap_or(1.0);
                    if !(1.0..=64.0).contains(&concurrency) || concurrency.fract() != 0.0 {
                        return Err(fail("concurrency must be a whole number from 1 to 64"));
                    }
                    let cache_ttl = export.cache_ttl.unwrap_or(3600.0);
                    if !(0.0..=30.0 * 86400.0).contains(&cache_ttl) {
                        return Err(fail("cacheTtl must be between 0 and 30 days, in seconds"));
                    }
                    let timeout = match export.timeout {
                        Some(t) if !(0.001..=MAX_TASK_TIMEOUT.as_secs_f64()).contains(&t) => {
                            return Err(fail(
                                "timeout must be between 1 ms and 1 hour, in seconds",
                            ));
                        }
                        Some(t) => Some(Duration::from_secs_f64(t)),
                        None => None,
                    };
                    ExportKind::Task {
                        concurrency: concurrency as u32,
                        cache_ttl: Duration::from_secs_f64(cache_ttl),
                        timeout,
                    }
                }
                "job" => {
                    let expression = export
                        .schedule
                        .clone()
                        .ok_or_else(|| fail("a job needs a schedule"))?;
                    let schedule = expression.parse::<Schedule>().map_err(|err| fail(&err))?;
                    ExportKind::Job {
                        schedule,
                        expression,
                    }
                }
                other => return Err(fail(&format!("unknown kind {other:?}"))),
            };
            exports.insert(export.name, kind);
        }
        Ok(Self {
            name,
            sdk_version: raw.sdk_version.map(|v| v.chars().take(32).collect()),
            permissions,
            exports,
        })
    }

    /// Roughly what the manifest takes in memory, in bytes (for caches weighed in bytes).
    pub fn weight(&self) -> u32 {
        let strings = |set: &std::collections::BTreeSet<String>| -> usize {
            set.iter().map(|entry| entry.len() + 32).sum()
        };
        let bytes = 256
            + self.name.len()
            + strings(&self.permissions.net)
            + strings(&self.permissions.env)
            + self
                .exports
                .keys()
                .map(|name| name.len() + 96)
                .sum::<usize>();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The manifest as `GET /bundle/...` shows it.
    pub fn view(&self) -> ManifestView {
        let mut view = ManifestView {
            name: self.name.clone(),
            sdk_version: self.sdk_version.clone(),
            permissions: PermissionsView {
                net: self.permissions.net.iter().cloned().collect(),
                env: self.permissions.env.iter().cloned().collect(),
                kv: self.permissions.kv,
            },
            endpoints: Vec::new(),
            tasks: Vec::new(),
            jobs: Vec::new(),
        };
        for (name, kind) in &self.exports {
            match kind {
                ExportKind::Endpoint => view.endpoints.push(name.clone()),
                ExportKind::Task {
                    concurrency,
                    cache_ttl,
                    ..
                } => view.tasks.push(TaskView {
                    name: name.clone(),
                    concurrency: *concurrency,
                    cache_ttl: cache_ttl.as_secs(),
                }),
                ExportKind::Job { expression, .. } => view.jobs.push(JobView {
                    name: name.clone(),
                    schedule: expression.clone(),
                }),
            }
        }
        view
    }
}

/// The public form of a manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    /// The bundle's name.
    pub name: String,
    /// SDK version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// Declared permissions.
    pub permissions: PermissionsView,
    /// Endpoint names.
    pub endpoints: Vec<String>,
    /// Tasks.
    pub tasks: Vec<TaskView>,
    /// Jobs.
    pub jobs: Vec<JobView>,
}

/// Declared permissions.
#[derive(Debug, Clone, Serialize)]
pub struct PermissionsView {
    /// Hosts.
    pub net: Vec<String>,
    /// Environment variables.
    pub env: Vec<String>,
    /// Whether it keeps state in `ctx.kv`.
    pub kv: bool,
}

/// A task export.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Its name.
    pub name: String,
    /// Most executions at once.
    pub concurrency: u32,
    /// Seconds a result is reused.
    pub cache_ttl: u64,
}

/// A job export.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Its name.
    pub name: String,
    /// Its schedule as written.
    pub schedule: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(value: serde_json::Value) -> RawManifest {
        serde_json::from_value(value).expect("raw manifest")
    }

    #[test]
    fn a_complete_manifest_validates() {
        let manifest = Manifest::validate(
            raw(json!({
                "name": "my-api", "sdkVersion": "0.1.0",
                "permissions": {"net": ["api.example.com"], "env": ["LOG_LEVEL"]},
                "exports": [
                    {"name": "hello", "kind": "endpoint"},
                    {"name": "slow", "kind": "task", "concurrency": 2, "cacheTtl": 86400},
                    {"name": "nightly", "kind": "job", "schedule": "*/10 * * * *"}
                ]
            })),
            Some("my-api"),
        )
        .expect("valid");
        let view = serde_json::to_value(manifest.view()).expect("json");
        assert_eq!(view["endpoints"], json!(["hello"]));
        assert_eq!(
            view["tasks"],
            json!([{"name": "slow", "concurrency": 2, "cacheTtl": 86400}])
        );
        assert_eq!(
            view["jobs"],
            json!([{"name": "nightly", "schedule": "*/10 * * * *"}])
        );
        assert_eq!(view["permissions"]["net"], json!(["api.example.com"]));
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        let base = |exports: serde_json::Value| json!({"name": "b", "exports": exports});
        assert_eq!(
            Manifest::validate(raw(json!({"exports": []})), None).err(),
            Some(ManifestError::Missing)
        );
        assert!(matches!(
            Manifest::validate(raw(json!({"name": "a"})), Some("b")),
            Err(ManifestError::NameMismatch { .. })
        ));
        for exports in [
            json!([{"name": "t", "kind": "task", "concurrency": 0}]),
            json!([{"name": "t", "kind": "task", "concurrency": 1.5}]),
            json!([{"name": "t", "kind": "task", "cacheTtl": -1}]),
            json!([{"name": "j", "kind": "job"}]),
            json!([{"name": "j", "kind": "job", "schedule": "whenever"}]),
            json!([{"name": "bad-name", "kind": "endpoint"}]),
            json!([{"name": "x", "kind": "daemon"}]),
        ] {
            assert!(
                Manifest::validate(raw(base(exports.clone())), None).is_err(),
                "{exports}"
            );
        }
        assert!(matches!(
            Manifest::validate(
                raw(json!({"name": "b", "permissions": {"net": ["*"]}})),
                None
            ),
            Err(ManifestError::Permission(_))
        ));
    }
}

/// Property tests: whatever a bundle reports as its manifest is accepted or refused
/// with an error, never a panic; an accepted manifest keeps only valid names and
/// bounded numbers.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[&str] = &[
        "name",
        "sdkVersion",
        "permissions",
        "net",
        "env",
        "exports",
        "kind",
        "endpoint",
        "task",
        "job",
        "concurrency",
        "cacheTtl",
        "timeout",
        "schedule",
        "every 5m",
        "0 * * * *",
        "0.1.0",
        "demo",
        "API_KEY",
        "example.com",
    ];

    proptest! {
        #![proptest_config(crate::properties::config())]

        #[test]
        fn any_reported_manifest_is_validated_without_panicking(
            value in crate::properties::json(KEYS),
            expected in proptest::option::of(proptest::sample::select(&["demo", "other"][..])),
        ) {
            let Ok(raw) = serde_json::from_value::<RawManifest>(value) else {
                return Ok(());
            };
            if let Ok(manifest) = Manifest::validate(raw, expected) {
                prop_assert!(valid_bundle_name(&manifest.name));
                if let Some(expected) = expected {
                    prop_assert_eq!(manifest.name.as_str(), expected);
                }
                let view = serde_json::to_value(manifest.view()).expect("serializes");
                prop_assert!(view.is_object());
            }
        }

        #[test]
        fn manifests_shaped_like_real_ones_are_validated_without_panicking(
            name in prop_oneof![Just("demo".to_string()), ".{0,12}"],
            net in proptest::collection::vec(prop_oneof![Just("example.com".to_string()), ".{0,20}"], 0..4),
            env in proptest::collection::vec(prop_oneof![Just("API_KEY".to_string()), ".{0,12}"], 0..4),
            exports in proptest::collection::vec(
                (
                    prop_oneof![Just("run".to_string()), ".{0,10}"],
                    proptest::sample::select(&["endpoint", "task", "job", "other"][..]),
                    proptest::option::of(any::<f64>()),
                    proptest::option::of(any::<f64>()),
                    proptest::option::of(any::<f64>()),
                    proptest::option::of(prop_oneof![
                        Just("every 5m".to_string()),
                        Just("0 * * * *".to_string()),
                        ".{0,16}",
                    ]),
                ),
                0..6,
            ),
        ) {
            let exports: Vec<serde_json::Value> = exports
                .into_iter()
                .map(|(name, kind, concurrency, cache_ttl, timeout, schedule)| {
                    serde_json::json!({
                        "name": name, "kind": kind, "concurrency": concurrency,
                        "cacheTtl": cache_ttl, "timeout": timeout, "schedule": schedule,
                    })
                })
                .collect();
            let value = serde_json::json!({
                "name": name, "sdkVersion": "0.1.0",
                "permissions": { "net": net, "env": env },
                "exports": exports,
            });
            let raw: RawManifest = serde_json::from_value(value).expect("the raw shape");
            if let Ok(manifest) = Manifest::validate(raw, None) {
                prop_assert!(valid_bundle_name(&manifest.name));
                let _ = manifest.view();
            }
        }
    }
}
