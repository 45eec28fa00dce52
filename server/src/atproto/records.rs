//! Rust types for the records we write and read, matching `lexicons/`:
//! `dev.atrun.bundle`, `dev.atrun.release`, `dev.atrun.secret`, and the subset of `place.stream.video` we read.
//! A test compares every type with its Lexicon file, so they cannot drift apart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::blob::BlobRef;

/// NSID of at-run bundle records.
pub const BUNDLE_NSID: &str = "dev.atrun.bundle";
/// NSID of at-run release records (which versions runners serve).
pub const RELEASE_NSID: &str = "dev.atrun.release";
/// NSID of at-run secret records.
pub const SECRET_NSID: &str = "dev.atrun.secret";

/// `dev.atrun.bundle`: one published version of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "$type", rename = "dev.atrun.bundle")]
pub struct BundleRecord {
    /// The bundle's name.
    pub name: String,
    /// Its semver version.
    pub version: String,
    /// The JavaScript module.
    pub code: BlobRef,
    /// The file it was built from.
    pub entry: String,
    /// When it was published (RFC 3339).
    pub created_at: String,
    /// What the deploy tool extracted, for readers of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestSnapshot>,
}

/// `dev.atrun.bundle#manifest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSnapshot {
    /// The SDK version the bundle was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// Declared permissions.
    pub permissions: PermissionsSnapshot,
    /// Exported endpoints, tasks and jobs.
    pub endpoints: Vec<ExportSnapshot>,
}

/// `dev.atrun.bundle#permissions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsSnapshot {
    /// Hosts the bundle may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<String>,
    /// Environment variables it may read besides its secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Whether it keeps state in `ctx.kv`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kv: bool,
}

/// `dev.atrun.bundle#export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSnapshot {
    /// The export's name.
    pub name: String,
    /// `endpoint`, `task` or `job`.
    pub kind: String,
}

/// `dev.atrun.release`: which versions of one bundle runners serve (record key: the
/// bundle's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "$type", rename = "dev.atrun.release")]
pub struct ReleaseRecord {
    /// The bundle's name.
    pub name: String,
    /// The version `latest` serves, when the author chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    /// Versions never served.
    #[serde(default)]
    pub yanked: Vec<Yank>,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// `dev.atrun.release#yank`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Yank {
    /// The version.
    pub version: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

impl ReleaseRecord {
    /// Whether `version` was yanked, and the yank.
    pub fn yank_of(&self, version: &str) -> Option<&Yank> {
        self.yanked.iter().find(|yank| yank.version == version)
    }
}

/// `dev.atrun.secret`: a value sealed to one runner for one bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "$type", rename = "dev.atrun.secret")]
pub struct SecretRecord {
    /// The runner's X25519 public key, base64.
    pub runner_key: String,
    /// The bundle's name.
    pub bundle: String,
    /// The environment variable's name.
    pub name: String,
    /// The sealed value.
    #[serde(with = "lex_bytes")]
    pub ciphertext: Vec<u8>,
    /// When it was set (RFC 3339).
    pub created_at: String,
}

/// Lexicon `bytes`: `{"$bytes": "<base64>"}` in JSON.
mod lex_bytes {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wire {
        #[serde(rename = "$bytes")]
        bytes: String,
    }

    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            bytes: STANDARD.encode(value),
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        // The data model allows unpadded base64.
        let trimmed = wire.bytes.trim_end_matches('=');
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn lexicon(nsid: &str) -> Value {
        let path = format!(
            "{}/../lexicons/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            nsid.replace('.', "/")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(doc["id"], nsid, "{path} declares its own NSID");
        doc
    }

    fn strings(value: &Value) -> BTreeSet<String> {
        value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn keys(value: &Value) -> BTreeSet<String> {
        value
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "$type").cloned().collect())
            .unwrap_or_default()
    }

    /// The Rust type agrees with the Lexicon object at `def`: a fully populated value
    /// serialises exactly the declared properties, a minimal one exactly the required ones.
    fn assert_agrees<T: Serialize + serde::de::DeserializeOwned>(
        def: &Value,
        full: &T,
        minimal: &T,
    ) {
        let full = serde_json::to_value(full).expect("serialise");
        let minimal = serde_json::to_value(minimal).expect("serialise");
        assert_eq!(keys(&full), keys(&def["properties"]), "properties");
        assert_eq!(
            keys(&minimal),
            strings(&def["required"]),
            "required properties"
        );
        for value in [full, minimal] {
            serde_json::from_value::<T>(value).expect("round trip");
        }
    }

    fn blob() -> BlobRef {
        BlobRef {
            cid: crate::atproto::blob::blob_cid(b"hello"),
            mime_type: "application/javascript".into(),
            size: 5,
        }
    }

    #[test]
    fn bundle_record_matches_its_lexicon() {
        let doc = lexicon(BUNDLE_NSID);
        assert_eq!(doc["defs"]["main"]["key"], "tid");
        let minimal = BundleRecord {
            name: "hello".into(),
            version: "1.0.0".into(),
            code: blob(),
            entry: "main.ts".into(),
            created_at: "2026-11-21T10:00:00.000Z".into(),
            manifest: None,
        };
        let manifest = ManifestSnapshot {
            sdk_version: Some("0.1.0".into()),
            permissions: PermissionsSnapshot {
                net: vec!["api.example.com".into()],
                env: vec!["LOG_LEVEL".into()],
                kv: true,
            },
            endpoints: vec![ExportSnapshot {
                name: "hello".into(),
                kind: "endpoint".into(),
            }],
        };
        let full = BundleRecord {
            manifest: Some(manifest.clone()),
            ..minimal.clone()
        };
        assert_agrees(&doc["defs"]["main"]["record"], &full, &minimal);
        let empty_permissions = ManifestSnapshot {
            sdk_version: None,
            permissions: PermissionsSnapshot::default(),
            ..manifest.clone()
        };
        assert_agrees(&doc["defs"]["manifest"], &manifest, &empty_permissions);
        assert_eq!(
            keys(&serde_json::to_value(&manifest.permissions).expect("json")),
            keys(&doc["defs"]["permissions"]["properties"])
        );
        assert_eq!(
            keys(&serde_json::to_value(&manifest.endpoints[0]).expect("json")),
            keys(&doc["defs"]["export"]["properties"])
        );
        assert_eq!(
            serde_json::to_value(&full).expect("json")["$type"],
            BUNDLE_NSID
        );
    }

    #[test]
    fn release_record_matches_its_lexicon() {
        let doc = lexicon(RELEASE_NSID);
        let minimal = ReleaseRecord {
            name: "hello".into(),
            latest: None,
            yanked: Vec::new(),
            updated_at: "2026-12-06T10:00:00.000Z".into(),
        };
        let yank = Yank {
            version: "1.1.0".into(),
            reason: Some("broke the login".into()),
            at: "2026-12-06T10:00:00.000Z".into(),
        };
        let full = ReleaseRecord {
            latest: Some("1.0.0".into()),
            yanked: vec![yank.clone()],
            ..minimal.clone()
        };
        assert_agrees(&doc["defs"]["main"]["record"], &full, &minimal);
        let bare = Yank {
            reason: None,
            ..yank.clone()
        };
        assert_agrees(&doc["defs"]["yank"], &yank, &bare);
        assert!(full.yank_of("1.1.0").is_some() && full.yank_of("1.0.0").is_none());
    }

    #[test]
    fn secret_record_matches_its_lexicon() {
        let doc = lexicon(SECRET_NSID);
        let record = SecretRecord {
            runner_key: "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into(),
            bundle: "hello".into(),
            name: "API_KEY".into(),
            ciphertext: vec![1, 2, 3, 250],
            created_at: "2026-11-21T10:00:00.000Z".into(),
        };
        assert_agrees(&doc["defs"]["main"]["record"], &record, &record);
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(
            json["ciphertext"],
            serde_json::json!({"$bytes": "AQID+g=="})
        );
        assert_eq!(
            json["runnerKey"].as_str().map(str::len),
            Some(44),
            "44 base64 chars as the lexicon says"
        );
    }
}
