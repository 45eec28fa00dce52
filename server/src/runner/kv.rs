//! `ctx.kv`: lasting state for bundles that declare `permissions: { kv: true }`, kept in
//! the runner's own database (so it follows `TURSO_URL`, and servers sharing one
//! database share it).
//!
//! Each (author DID, bundle name) has a store of its own: the scope is the sandbox's,
//! fixed when the process started, never anything the bundle sends. A store holds at
//! most `ATRUN_KV_MAX_MB` (keys and values, expired entries not counted); a value is at
//! most [`MAX_VALUE_BYTES`] of JSON, a key at most [`MAX_KEY_BYTES`]. An entry set with
//! a `ttl` reads as absent once it expires, and is deleted at the bundle's next write.

use std::sync::Arc;
use std::time::Duration;

use libsql::params;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::atproto::syntax::Did;
use crate::db::{Db, DbError, Writer};
use crate::tasks::now_ms;

/// Longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes of JSON.
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// Most entries one `list` returns.
pub const MAX_LIST: u32 = 1000;
/// Most bytes of entries one `list` returns (it stops early, and `after` continues).
const MAX_LIST_BYTES: usize = 512 * 1024;
/// Longest `ttl`: ten years.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Why an operation failed; the message is the bundle's to see.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The operation is malformed or over a limit.
    #[error("{0}")]
    Invalid(String),
    /// The store is full.
    #[error(
        "ctx.kv is full: this bundle's entries would take {used} bytes, over its quota of \
         {quota} bytes (ATRUN_KV_MAX_MB); delete entries or set a ttl"
    )]
    Full {
        /// Bytes the store would hold.
        used: u64,
        /// Its quota.
        quota: u64,
    },
    /// The database failed (details logged, not shown).
    #[error("ctx.kv is unavailable right now; try again")]
    Database(#[from] DbError),
}

/// One operation, as the harness sends it.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum KvOp {
    /// The value of `key`, or null.
    Get {
        /// The key.
        key: String,
    },
    /// Sets `key` to `value`, for `ttl` seconds if given.
    Set {
        /// The key.
        key: String,
        /// Any JSON value.
        value: Value,
        /// Seconds until it expires.
        ttl: Option<f64>,
    },
    /// Deletes `key`; whether it was there.
    Delete {
        /// The key.
        key: String,
    },
    /// Entries whose key starts with `prefix`, in key order, after `after`.
    List {
        /// The keys' common start.
        prefix: Option<String>,
        /// Start after this key (the last of the previous page).
        after: Option<String>,
        /// Most entries (default 100, at most [`MAX_LIST`]).
        limit: Option<u32>,
    },
}

/// The stores of every bundle; cheap to clone.
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    writer: Writer,
    quota: u64,
}

/// One bundle's store: what a sandbox is given.
#[derive(Clone)]
pub struct KvScope {
    store: KvStore,
    did: Did,
    name: String,
}

impl std::fmt::Debug for KvScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvScope({}/{})", self.did, self.name)
    }
}

impl KvStore {
    /// The stores in `db`, each holding at most `quota` bytes.
    pub async fn open(db: Db, quota: u64) -> Result<Self, DbError> {
        Ok(Self {
            inner: Arc::new(Inner {
                writer: db.writer().await?,
                db,
                quota,
            }),
        })
    }

    /// The store of `did`'s bundle `name`.
    pub fn scope(&self, did: Did, name: String) -> KvScope {
        KvScope {
            store: self.clone(),
            did,
            name,
        }
    }
}

impl KvScope {
    /// Runs `op` on this store; the value is what the bundle's promise resolves to.
    pub async fn apply(&self, op: KvOp) -> Result<Value, KvError> {
        match op {
            KvOp::Get { key } => {
                check_key(&key)?;
                self.get(&key).await
            }
            KvOp::Set { key, value, ttl } => {
                check_key(&key)?;
                let ttl = ttl.map(ttl_of).transpose()?;
                self.set(&key, &value, ttl).await.map(|()| Value::Null)
            }
            KvOp::Delete { key } => {
                check_key(&key)?;
                self.delete(&key).await.map(Value::Bool)
            }
            KvOp::List {
                prefix,
                after,
                limit,
            } => {
                let limit = limit.unwrap_or(100);
                if !(1..=MAX_LIST).contains(&limit) {
                    return Err(KvError::Invalid(format!(
                        "list's limit must be from 1 to {MAX_LIST}"
                    )));
                }
                self.list(
                    prefix.as_deref().unwrap_or(""),
                    after.as_deref().unwrap_or(""),
                    limit,
                )
                .await
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Value, KvError> {
        // Read connections see every committed write (a statement someone else is
        // stepping through on the shared one would pin an older snapshot).
        let mut values = self
            .store
            .inner
            .db
            .read(
                "SELECT value FROM bundle_kv WHERE did = ?1 AND name = ?2 AND key = ?3
                   AND (expires_at IS NULL OR expires_at > ?4)",
                params![self.did.as_str(), self.name.as_str(), key, now_ms()],
                |row| Ok(row.get::<String>(0)?),
            )
            .await?;
        Ok(values
            .pop()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null))
    }

    async fn set(&self, key: &str, value: &Value, ttl: Option<Duration>) -> Result<(), KvError> {
        let text = value.to_string();
        if text.len() > MAX_VALUE_BYTES {
            return Err(KvError::Invalid(format!(
                "the value is {} bytes of JSON; ctx.kv values are at most {MAX_VALUE_BYTES}",
                text.len()
            )));
        }
        let bytes = (key.len() + text.len()) as u64;
        let now = now_ms();
        let expires_at = ttl.map(|ttl| now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let (did, name, quota) = (
            self.did.as_str(),
            self.name.as_str(),
            self.store.inner.quota,
        );
        self.store
            .inner
            .writer
            .transaction(async |tx| {
                tx.execute(
                    "DELETE FROM bundle_kv WHERE did = ?1 AND name = ?2 AND expires_at <= ?3",
                    params![did, name, now],
                )
                .await?;
                let mut rows = tx
                    .query(
                        "SELECT COALESCE(SUM(bytes), 0) FROM bundle_kv
                         WHERE did = ?1 AND name = ?2 AND key <> ?3",
                        params![did, name, key],
                    )
                    .await?;
                let others: i64 = match rows.next().await? {
                    Some(row) => row.get(0)?,
                    None => 0,
                };
                let used = u64::try_from(others).unwrap_or(0) + bytes;
                if used > quota {
                    return Ok(Err(KvError::Full { used, quota }));
                }
                tx.execute(
                    "INSERT INTO bundle_kv (did, name, key, value, bytes, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (did, name, key) DO UPDATE SET
                       value = excluded.value, bytes = excluded.bytes,
                       expires_at = excluded.expires_at",
                    params![did, name, key, text.as_str(), bytes as i64, expires_at],
                )
                .await?;
                Ok(Ok(()))
            })
            .await?
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        // An expired entry goes too, but was not there as far as the bundle knows.
        let conn = self.store.inner.writer.lock().await;
        let mut rows = conn
            .query(
                "DELETE FROM bundle_kv WHERE did = ?1 AND name = ?2 AND key = ?3
                 RETURNING expires_at IS NULL OR expires_at > ?4",
                params![self.did.as_str(), self.name.as_str(), key, now_ms()],
            )
            .await
            .map_err(DbError::from)?;
        let live = match rows.next().await.map_err(DbError::from)? {
            Some(row) => row.get::<bool>(0).map_err(DbError::from)?,
            None => false,
        };
        Ok(live)
    }

    async fn list(&self, prefix: &str, after: &str, limit: u32) -> Result<Value, KvError> {
        // Keys with the prefix sort from it up to it followed by the highest character.
        let end = format!("{prefix}\u{10FFFF}");
        let from = if after > prefix { after } else { prefix };
        // The first entry always, then as many as fit in MAX_LIST_BYTES: bounded before
        // anything is read into memory.
        let rows = self
            .store
            .inner
            .db
            .read(
                "SELECT key, value FROM (
                   SELECT key, value,
                          SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)))
                            OVER (ORDER BY key ROWS UNBOUNDED PRECEDING) AS total,
                          ROW_NUMBER() OVER (ORDER BY key) AS n
                   FROM bundle_kv
                   WHERE did = ?1 AND name = ?2 AND key >= ?3 AND key < ?4 AND key <> ?5
                     AND (expires_at IS NULL OR expires_at > ?6)
                   ORDER BY key LIMIT ?7)
                 WHERE total <= ?8 OR n = 1 ORDER BY key",
                params![
                    self.did.as_str(),
                    self.name.as_str(),
                    from,
                    end.as_str(),
                    after,
                    now_ms(),
                    i64::from(limit),
                    MAX_LIST_BYTES as i64
                ],
                |row| Ok((row.get::<String>(0)?, row.get::<String>(1)?)),
            )
            .await?;
        let entries: Vec<Value> = rows
            .into_iter()
            .map(|(key, text)| {
                let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                json!({ "key": key, "value": value })
            })
            .collect();
        Ok(Value::Array(entries))
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::Invalid(format!(
            "ctx.kv keys are strings of 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn ttl_of(seconds: f64) -> Result<Duration, KvError> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_TTL.as_secs_f64() {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(KvError::Invalid(format!(
            "ttl is a number of seconds, more than 0 and at most {}",
            MAX_TTL.as_secs()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(quota: u64) -> (KvStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&crate::db::DatabaseLocation::File(dir.path().join("kv.db")))
            .await
            .expect("db");
        db.migrate().await.expect("migrate");
        (KvStore::open(db, quota).await.expect("kv"), dir)
    }

    fn did(text: &str) -> Did {
        text.parse().expect("did")
    }

    fn op(value: Value) -> KvOp {
        serde_json::from_value(value).expect("op")
    }

    #[tokio::test]
    async fn stores_are_isolated_bounded_and_expire() {
        let (kv, _dir) = store(200).await;
        let alice = kv.scope(did("did:plc:alice"), "app".into());
        let alices_other = kv.scope(did("did:plc:alice"), "other".into());
        let bob = kv.scope(did("did:plc:bob"), "app".into());
        let set = |key: &str, value: Value| op(json!({"op": "set", "key": key, "value": value}));
        let get = |key: &str| op(json!({"op": "get", "key": key}));
        alice.apply(set("k", json!({"n": 1}))).await.expect("set");
        assert_eq!(alice.apply(get("k")).await.expect("get"), json!({"n": 1}));
        assert_eq!(
            alices_other.apply(get("k")).await.expect("get"),
            Value::Null
        );
        assert_eq!(bob.apply(get("k")).await.expect("get"), Value::Null);

        // The quota counts this bundle's entries only; replacing a value is not counted twice.
        let big = json!("x".repeat(150));
        alice
            .apply(set("k", big.clone()))
            .await
            .expect("replace within quota");
        let full = alice.apply(set("k2", big.clone())).await;
        assert!(matches!(full, Err(KvError::Full { .. })), "{full:?}");
        bob.apply(set("k2", big.clone()))
            .await
            .expect("bob has his own quota");

        // Expired entries read as absent and stop counting.
        alice
            .apply(op(
                json!({"op": "set", "key": "k", "value": 1, "ttl": 0.05}),
            ))
            .await
            .expect("ttl");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(alice.apply(get("k")).await.expect("get"), Value::Null);
        alice.apply(set("k2", big)).await.expect("room again");

        // Listing by prefix, in key order, paged with `after`.
        for key in ["user:b", "user:a", "user:c", "users", "other"] {
            alices_other.apply(set(key, json!(key))).await.expect("set");
        }
        let page = alices_other
            .apply(op(json!({"op": "list", "prefix": "user:", "limit": 2})))
            .await
            .expect("list");
        assert_eq!(
            page,
            json!([{"key": "user:a", "value": "user:a"}, {"key": "user:b", "value": "user:b"}])
        );
        let rest = alices_other
            .apply(op(
                json!({"op": "list", "prefix": "user:", "after": "user:b"}),
            ))
            .await
            .expect("list");
        assert_eq!(rest, json!([{"key": "user:c", "value": "user:c"}]));
        // A page stops at MAX_LIST_BYTES (the first entry always comes).
        let (roomy, _dir2) = store(8 * 1024 * 1024).await;
        let many = roomy.scope(did("did:plc:carol"), "app".into());
        for i in 0..6 {
            many.apply(set(&format!("big:{i}"), json!("x".repeat(120_000))))
                .await
                .expect("set");
        }
        let page = many
            .apply(op(json!({"op": "list", "prefix": "big:"})))
            .await
            .expect("list");
        assert_eq!(
            page.as_array().map(Vec::len),
            Some(4),
            "4 × 120 KB fit in 512 KiB"
        );
        assert_eq!(
            alices_other
                .apply(op(json!({"op": "delete", "key": "other"})))
                .await
                .expect("delete"),
            json!(true)
        );

        // Bad operations are refused with a reason.
        for bad in [
            json!({"op": "set", "key": "", "value": 1}),
            json!({"op": "set", "key": "k", "value": 1, "ttl": -1}),
            json!({"op": "list", "limit": 0}),
            json!({"op": "set", "key": "x".repeat(MAX_KEY_BYTES + 1), "value": 1}),
        ] {
            assert!(
                matches!(alice.apply(op(bad.clone())).await, Err(KvError::Invalid(_))),
                "{bad}"
            );
        }
        let huge = json!("x".repeat(MAX_VALUE_BYTES));
        assert!(matches!(
            alice.apply(set("h", huge)).await,
            Err(KvError::Invalid(_))
        ));
        assert!(serde_json::from_value::<KvOp>(json!({"op": "drop"})).is_err());
    }
}
