//! Size-capped file caches on disk, the least recently used files evicted first: VOD's
//! images (`VOD_CACHE_MAX_MB`), bundle code (`ATRUN_CODE_CACHE_MB`) and creators'
//! avatars.
//!
//! A cache may also cap each owner's share ([`FileCache::with_owner_quota`]): where one
//! author or creator could otherwise fill the cache and push everyone else out, their
//! files are evicted first once they pass their quota. The owner of a file is the part
//! of its key before the first `.`, so it survives a restart with the file names.
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
    per_owner_bytes: Option<u64>,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
    by_owner: HashMap<String, u64>,
}

impl Index {
    fn add(&mut self, key: &str, entry: Entry, owned: bool) {
        if let Some(old) = self.entries.insert(key.to_string(), entry) {
            self.subtract(key, old.size, owned);
        }
        self.total += entry.size;
        if let Some(owner) = owner_of(key).filter(|_| owned) {
            *self.by_owner.entry(owner.to_string()).or_default() += entry.size;
        }
    }

    fn remove(&mut self, key: &str, owned: bool) {
        if let Some(entry) = self.entries.remove(key) {
            self.subtract(key, entry.size, owned);
        }
    }

    fn subtract(&mut self, key: &str, size: u64, owned: bool) {
        self.total = self.total.saturating_sub(size);
        if let Some(owner) = owner_of(key).filter(|_| owned)
            && let Some(total) = self.by_owner.get_mut(owner)
        {
            *total = total.saturating_sub(size);
            if *total == 0 {
                self.by_owner.remove(owner);
            }
        }
    }
}

/// The owner named by a key: its text before the first `.`.
fn owner_of(key: &str) -> Option<&str> {
    key.split_once('.').map(|(owner, _)| owner)
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
        Self::open_with(dir, max_bytes, None)
    }

    /// [`Self::open`], holding at most `per_owner_bytes` of any one owner's files (keys
    /// `{owner}.{rest}`).
    pub fn with_owner_quota(
        dir: PathBuf,
        max_bytes: u64,
        per_owner_bytes: u64,
    ) -> std::io::Result<Self> {
        Self::open_with(dir, max_bytes, Some(per_owner_bytes))
    }

    fn open_with(
        dir: PathBuf,
        max_bytes: u64,
        per_owner_bytes: Option<u64>,
    ) -> std::io::Result<Self> {
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
            let entry = Entry {
                size: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            };
            index.add(&name, entry, per_owner_bytes.is_some());
        }
        let cache = Self {
            dir,
            max_bytes,
            per_owner_bytes,
            index: Mutex::new(index),
        };
        let owners: Vec<String> = cache.lock().by_owner.keys().cloned().collect();
        for owner in owners {
            cache.evict(None, Some(&owner));
        }
        cache.evict(None, None);
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
        let owned = self.per_owner_bytes.is_some();
        self.lock().remove(key, owned);
    }

    /// Stores `bytes` as `key`, then evicts the least recently used other files while the
    /// key's owner is over their quota, and while the cache is over its cap.
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
        let owned = self.per_owner_bytes.is_some();
        let entry = Entry {
            size: bytes.len() as u64,
            used: SystemTime::now(),
        };
        self.lock().add(key, entry, owned);
        if owned && let Some(owner) = owner_of(key) {
            self.evict(Some(key), Some(owner));
        }
        self.evict(Some(key), None);
        Ok(())
    }

    /// Removes least recently used files, sparing `keep`, until `owner`'s files fit
    /// their quota (with an owner) or the whole cache fits its cap (without one).
    fn evict(&self, keep: Option<&str>, owner: Option<&str>) {
        let owned = self.per_owner_bytes.is_some();
        let victims: Vec<String> = {
            let mut index = self.lock();
            let over = |index: &Index| match (owner, self.per_owner_bytes) {
                (Some(owner), Some(quota)) => {
                    index.by_owner.get(owner).copied().unwrap_or(0) > quota
                }
                (Some(_), None) => false,
                (None, _) => index.total > self.max_bytes,
            };
            if !over(&index) {
                return;
            }
            let mut by_age: Vec<(SystemTime, String)> = index
                .entries
                .iter()
                .filter(|(key, _)| Some(key.as_str()) != keep)
                .filter(|(key, _)| owner.is_none() || owner_of(key) == owner)
                .map(|(key, entry)| (entry.used, key.clone()))
                .collect();
            by_age.sort();
            let mut victims = Vec::new();
            for (_, key) in by_age {
                if !over(&index) {
                    break;
                }
                index.remove(&key, owned);
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
    async fn one_owner_evicts_their_own_files_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FileCache::with_owner_quota(dir.path().join("c"), 1000, 300).expect("open");
        cache.write("alice.a", &[1; 100]).await.expect("alice");
        for n in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            cache
                .write(&format!("mallory.{n}"), &[2; 100])
                .await
                .expect("mallory");
        }
        assert!(
            cache.read("alice.a").await.is_some(),
            "another owner's flood never evicts alice's file"
        );
        let mallory: usize = (0..20)
            .filter(|n| cache.path(&format!("mallory.{n}")).is_some())
            .count();
        assert_eq!(
            mallory, 3,
            "mallory keeps her newest files within her quota"
        );
        assert!(cache.path("mallory.19").is_some());
        assert!(cache.size() <= 400);

        // Reopened, the owners are known again from the file names.
        drop(cache);
        let cache = FileCache::with_owner_quota(dir.path().join("c"), 1000, 200).expect("reopen");
        assert_eq!(cache.size(), 300, "a lower quota applies at once");
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
