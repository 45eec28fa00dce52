//! The VOD file cache: thumbnails, sprites, storyboards and their layouts on disk, keyed
//! by what they were made from (the record's CID), capped in size (`VOD_CACHE_MAX_MB`)
//! with the least recently used files evicted first.
//!
//! Writes are atomic (a temporary file, then a rename), so a reader never sees half a
//! file. A write that fails (a full disk) is an error for that one request; nothing
//! panics. The index of sizes and last uses lives in memory, rebuilt from the directory
//! (modification times) at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A file cache in one directory.
#[derive(Debug)]
pub struct FileCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    used: SystemTime,
}

/// Whether `key` may name a file: letters, digits, `-`, `_` and `.`, not starting with a dot.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl FileCache {
    /// Opens (creating if needed) the cache in `dir`, holding at most `max_bytes`.
    pub fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut index = Index::default();
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if !valid_key(&name) {
                // Leftovers of interrupted writes.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            index.total += meta.len();
            index.entries.insert(
                name,
                Entry {
                    size: meta.len(),
                    used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                },
            );
        }
        let cache = Self {
            dir,
            max_bytes,
            index: Mutex::new(index),
        };
        cache.evict(None);
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The path of `key`'s file, if cached (and marks it used).
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        let now = SystemTime::now();
        let mut index = self.lock();
        let entry = index.entries.get_mut(key)?;
        entry.used = now;
        drop(index);
        let path = self.dir.join(key);
        if let Ok(file) = std::fs::File::options().write(true).open(&path) {
            let _ = file.set_modified(now);
        }
        path.exists().then_some(path)
    }

    /// `key`'s bytes, if cached.
    pub async fn read(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                self.forget(key);
                None
            }
        }
    }

    fn forget(&self, key: &str) {
        let mut index = self.lock();
        if let Some(entry) = index.entries.remove(key) {
            index.total = index.total.saturating_sub(entry.size);
        }
    }

    /// Stores `bytes` as `key`, then evicts the least recently used other files while the
    /// cache is over its cap.
    pub async fn write(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        if !valid_key(key) {
            return Err(std::io::Error::other(format!("invalid cache key {key:?}")));
        }
        let path = self.dir.join(key);
        let partial = self
            .dir
            .join(format!(".{key}.{}", uuid::Uuid::new_v4().simple()));
        let written = async {
            tokio::fs::write(&partial, bytes).await?;
            tokio::fs::rename(&partial, &path).await
        }
        .await;
        if let Err(err) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err);
        }
        {
            let mut index = self.lock();
            let size = bytes.len() as u64;
            if let Some(old) = index.entries.insert(
                key.to_string(),
                Entry {
                    size,
                    used: SystemTime::now(),
                },
            ) {
                index.total = index.total.saturating_sub(old.size);
            }
            index.total += size;
        }
        self.evict(Some(key));
        Ok(())
    }

    /// Removes least recently used files until the cache fits, sparing `keep`.
    fn evict(&self, keep: Option<&str>) {
        let victims: Vec<String> = {
            let mut index = self.lock();
            let mut by_age: Vec<(SystemTime, String, u64)> = index
                .entries
                .iter()
                .filter(|(key, _)| Some(key.as_str()) != keep)
                .map(|(key, entry)| (entry.used, key.clone(), entry.size))
                .collect();
            by_age.sort();
            let mut victims = Vec::new();
            for (_, key, size) in by_age {
                if index.total <= self.max_bytes {
                    break;
                }
                index.entries.remove(&key);
                index.total = index.total.saturating_sub(size);
                victims.push(key);
            }
            victims
        };
        for key in victims {
            let _ = std::fs::remove_file(self.dir.join(&key));
        }
    }

    /// Bytes held now.
    pub fn size(&self) -> u64 {
        self.lock().total
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_least_recently_used_files_go_first_and_the_cap_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FileCache::open(dir.path().join("c"), 250).expect("open");
        cache.write("a", &[1; 100]).await.expect("a");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        cache.write("b", &[2; 100]).await.expect("b");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(cache.read("a").await, Some(vec![1; 100]), "a is used again");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        cache.write("c", &[3; 100]).await.expect("c");
        assert!(cache.size() <= 250);
        assert!(
            cache.read("b").await.is_none(),
            "b was the least recently used"
        );
        assert!(cache.read("a").await.is_some() && cache.read("c").await.is_some());

        // Reopened, the cache knows its files.
        drop(cache);
        let cache = FileCache::open(dir.path().join("c"), 250).expect("reopen");
        assert_eq!(cache.size(), 200);
        assert!(cache.write("../escape", b"x").await.is_err());
        assert!(cache.write(".hidden", b"x").await.is_err());
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FileCache::open(dir.path().join("c"), 1000).expect("open");
        std::fs::remove_dir_all(dir.path().join("c")).expect("remove");
        std::fs::write(dir.path().join("c"), b"now a file").expect("file");
        assert!(cache.write("k", b"bytes").await.is_err());
        assert_eq!(cache.size(), 0);
    }
}
