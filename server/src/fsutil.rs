//! Writing files atomically, so that a crash or a concurrent reader never sees half of
//! one: credentials (created with mode 0600 from the start) and cached content.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Writes `bytes` to `path` (mode 0600), creating its directory (mode 0700) if needed.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let partial = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Writes `bytes` to `path` through a uniquely named temporary file and a rename, creating
/// the directory if needed: concurrent writers of the same content never clash.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let partial = path.with_extension(format!("part-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&partial, bytes).await?;
    let renamed = tokio::fs::rename(&partial, path).await;
    if renamed.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    renamed
}
