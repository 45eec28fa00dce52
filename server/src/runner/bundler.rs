//! Turning an author's entry file into one JavaScript module: `deno bundle`, with the
//! bare import `"at-run"` mapped to the SDK this server ships. A `.js` file is taken as
//! already bundled.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Why bundling failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `deno bundle` failed; its output says why.
    #[error("deno bundle failed:\n{0}")]
    Deno(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The bundled source of `entry`.
pub async fn bundle(deno: &Path, entry: &Path) -> Result<String, BundleError> {
    if entry
        .extension()
        .is_some_and(|ext| ext == "js" || ext == "mjs")
    {
        return tokio::fs::read_to_string(entry).await.map_err(io(entry));
    }
    let work = tempfile::tempdir().map_err(io(Path::new("(temporary directory)")))?;
    let sdk = work.path().join("at-run.ts");
    tokio::fs::write(&sdk, super::SDK_SOURCE)
        .await
        .map_err(io(&sdk))?;
    let import_map = work.path().join("import_map.json");
    let map = serde_json::json!({ "imports": { "at-run": format!("file://{}", sdk.display()) } });
    tokio::fs::write(&import_map, map.to_string())
        .await
        .map_err(io(&import_map))?;
    let out = work.path().join("bundle.js");
    let output = Command::new(deno)
        .arg("bundle")
        .arg("--quiet")
        .arg("--no-lock")
        .arg(format!("--import-map={}", import_map.display()))
        .arg("--format=esm")
        .arg("--output")
        .arg(&out)
        .arg(entry)
        .env("NO_COLOR", "1")
        .env("DENO_NO_UPDATE_CHECK", "1")
        .output()
        .await
        .map_err(io(deno))?;
    if !output.status.success() {
        let mut message = String::from_utf8_lossy(&output.stderr).into_owned();
        message.push_str(&String::from_utf8_lossy(&output.stdout));
        return Err(BundleError::Deno(message.trim().to_string()));
    }
    tokio::fs::read_to_string(&out).await.map_err(io(&out))
}
