//! The database: libSQL, opened once per process.
//!
//! By default it is an embedded file in the data directory, so Streamhut runs with no
//! account anywhere; `TURSO_URL` switches to a remote libSQL server with the same SQL.
//!
//! [`Db`] holds one shared connection for single statements, which SQLite serialises
//! safely, and hands out fresh connections for transactions ([`Db::connect`]): a
//! transaction on a shared connection would swallow other tasks' statements.
//! The hot reads (pages, listings) go through [`Db::read`]: on the file, a few read
//! connections that keep their compiled statements.
//! The embedded file runs in WAL mode so readers never wait for the writer, and every
//! connection waits for a busy lock instead of failing, because several processes
//! (a second server, the CLI) may share the file.
//!
//! A remote connection is a Hrana stream whose baton only the server that issued it
//! accepts: after `sqld` restarts, every statement on the old stream fails ("invalid
//! baton") forever. So for a remote database a watchdog pings the shared connection
//! every [`REMOTE_CHECK_INTERVAL`]; when the ping fails and a fresh connection answers,
//! the fresh one replaces it (and writers reopen theirs on their next use). An instance
//! recovers within seconds of the database coming back, by itself.

mod migrate;
mod reads;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::secret::Secret;
use std::path::PathBuf;

pub use migrate::{MIGRATIONS, Migration, MigrationReport};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a remote database's shared connection is checked.
const REMOTE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long that check may take.
const REMOTE_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors from opening, migrating or querying the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// libSQL reported an error.
    #[error(transparent)]
    Sql(#[from] libsql::Error),
    /// The database did not answer in time.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// An applied migration no longer matches the one compiled into this binary.
    #[error(
        "migration {version} ({name}) was changed after it was applied; \
         add a new migration instead of editing an applied one"
    )]
    MigrationChanged {
        /// Its version.
        version: i64,
        /// Its name.
        name: &'static str,
    },
    /// A stored value does not parse as what its column holds (an identifier, say).
    #[error("a stored {kind} does not parse: {reason}")]
    Unparsable {
        /// What the column holds.
        kind: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// The database was migrated by a newer Streamhut than this one.
    #[error(
        "the database is at schema version {found}, newer than this build knows ({known}); \
         run a newer Streamhut"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build has.
        known: i64,
    },
}

/// Where the database lives (`Config::database` reads it from the settings).
#[derive(Debug, Clone)]
pub enum DatabaseLocation {
    /// An embedded libSQL file.
    File(PathBuf),
    /// A remote libSQL server (Turso, or `sqld`).
    Remote {
        /// `libsql://`, `https://` or `http://` URL.
        url: String,
        /// Bearer token; empty for servers without auth.
        auth_token: Secret,
    },
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    database: libsql::Database,
    shared: RwLock<libsql::Connection>,
    /// Bumped whenever the shared connection is replaced: writers reopen theirs.
    generation: AtomicU64,
    is_file: bool,
    /// The file's read connections ([`Db::read`]); none for a remote database.
    reads: Option<reads::Reads>,
}

impl Db {
    /// Opens the database (creating the file and its directory if needed). A remote
    /// database is watched and its connection renewed (see the module docs) until the
    /// last handle is dropped.
    pub async fn open(location: &DatabaseLocation) -> Result<Self, DbError> {
        let (database, is_file) = match location {
            DatabaseLocation::File(path) => (open_file(path).await?, true),
            DatabaseLocation::Remote { url, auth_token } => {
                let database =
                    libsql::Builder::new_remote(url.clone(), auth_token.expose().to_string())
                        .build()
                        .await?;
                (database, false)
            }
        };
        let shared = configure(database.connect()?, is_file).await?;
        if is_file {
            // Persistent for the file: set once, not per connection.
            shared.query("PRAGMA journal_mode = WAL", ()).await?;
        }
        let reads = if is_file {
            Some(reads::Reads::open(&database).await?)
        } else {
            None
        };
        let db = Self {
            inner: Arc::new(Inner {
                database,
                shared: RwLock::new(shared),
                generation: AtomicU64::new(0),
                is_file,
                reads,
            }),
        };
        if !is_file {
            tokio::spawn(watch_remote(Arc::downgrade(&db.inner)));
        }
        Ok(db)
    }

    /// The shared connection, for statements that run on their own (autocommit).
    pub fn conn(&self) -> libsql::Connection {
        self.inner
            .shared
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs the read-only `sql` and maps each of its rows: on the embedded file through
    /// read connections that keep their compiled statements (see [`reads`]), on a remote
    /// database through the shared connection. For the hot paths: pages and listings.
    pub async fn read<T>(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
        map: impl FnMut(&libsql::Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match &self.inner.reads {
            Some(reads) => reads.read(sql, params, map).await,
            None => reads::collect(self.conn().query(sql, params).await?, map).await,
        }
    }

    /// A new connection of its own, for a transaction.
    pub async fn connect(&self) -> Result<libsql::Connection, DbError> {
        configure(self.inner.database.connect()?, self.inner.is_file).await
    }

    /// Checks that the database answers a trivial query within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        let query = async {
            let mut rows = self.conn().query("SELECT 1", ()).await?;
            rows.next().await?;
            Ok::<_, DbError>(())
        };
        tokio::time::timeout(timeout, query)
            .await
            .map_err(|_| DbError::Timeout(timeout))?
    }

    /// A connection of its own for one kind of writes (tasks, the index), so that one
    /// writer's transaction never swallows another's statements.
    pub async fn writer(&self) -> Result<Writer, DbError> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        Ok(Writer {
            conn: tokio::sync::Mutex::new((generation, self.connect().await?)),
            db: self.clone(),
        })
    }

    /// Applies the migrations this database has not seen yet.
    pub async fn migrate(&self) -> Result<MigrationReport, DbError> {
        migrate::apply(self, MIGRATIONS).await
    }
}

/// A write connection, used by one task at a time; reopened after the database's shared
/// connection was renewed.
pub struct Writer {
    conn: tokio::sync::Mutex<(u64, libsql::Connection)>,
    db: Db,
}

/// A locked writer connection.
pub struct WriterGuard<'a>(tokio::sync::MutexGuard<'a, (u64, libsql::Connection)>);

impl std::ops::Deref for WriterGuard<'_> {
    type Target = libsql::Connection;

    fn deref(&self) -> &libsql::Connection {
        &self.0.1
    }
}

impl Writer {
    /// The connection, for single statements.
    pub async fn lock(&self) -> WriterGuard<'_> {
        let mut guard = self.conn.lock().await;
        let generation = self.db.inner.generation.load(Ordering::SeqCst);
        if guard.0 != generation {
            match self.db.connect().await {
                Ok(fresh) => *guard = (generation, fresh),
                Err(err) => tracing::warn!(error = %err, "reopening a database writer failed"),
            }
        }
        WriterGuard(guard)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction (which takes the write lock at
    /// once, so it never fails half-way on a busy database); commits on `Ok`, rolls back
    /// on `Err`.
    pub async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&libsql::Transaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let conn = self.lock().await;
        let tx = conn
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        match work(&tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }
}

/// Column `index` of `row`, parsed: identifiers are stored as text and come back typed.
pub fn parsed<T>(row: &libsql::Row, index: i32, kind: &'static str) -> Result<T, DbError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    parsed_opt(row, index, kind)?.ok_or(DbError::Unparsable {
        kind,
        reason: "it is missing".into(),
    })
}

/// [`parsed`], for a column that may be NULL.
pub fn parsed_opt<T>(
    row: &libsql::Row,
    index: i32,
    kind: &'static str,
) -> Result<Option<T>, DbError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    row.get::<Option<String>>(index)?
        .map(|text| text.parse())
        .transpose()
        .map_err(|err: T::Err| DbError::Unparsable {
            kind,
            reason: err.to_string(),
        })
}

/// Advice for an error reaching `location`, when its cause is a likely setting mistake:
/// `libsql://` and `https://` mean TLS, which a local `sqld` does not speak.
pub fn connection_hint(location: &DatabaseLocation, err: &DbError) -> Option<String> {
    let DatabaseLocation::Remote { url, .. } = location else {
        return None;
    };
    let text = err.to_string().to_ascii_lowercase();
    let tls_failed = [
        "invalidcontenttype",
        "tls",
        "certificate",
        "handshake",
        "corrupt message",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    let tls_url = url.starts_with("libsql://") || url.starts_with("https://");
    (tls_failed && tls_url).then(|| {
        let plain = url
            .trim_start_matches("libsql://")
            .trim_start_matches("https://");
        format!(
            "TURSO_URL {url} connects with TLS, which this server did not answer; a local \
             sqld (libsql-server) without TLS is reached with TURSO_URL=http://{plain}"
        )
    })
}

/// Keeps a remote database's shared connection usable (see the module docs).
async fn watch_remote(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(REMOTE_CHECK_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        let shared = inner
            .shared
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if answers(&shared).await {
            continue;
        }
        let Ok(fresh) = inner.database.connect() else {
            continue;
        };
        if answers(&fresh).await {
            *inner
                .shared
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
            inner.generation.fetch_add(1, Ordering::SeqCst);
            tracing::warn!("the database connection broke and was renewed");
        }
    }
}

/// Whether `conn` answers a trivial query in time.
async fn answers(conn: &libsql::Connection) -> bool {
    let query = async {
        let mut rows = conn.query("SELECT 1", ()).await?;
        rows.next().await?;
        Ok::<_, libsql::Error>(())
    };
    matches!(
        tokio::time::timeout(REMOTE_CHECK_TIMEOUT, query).await,
        Ok(Ok(()))
    )
}

async fn open_file(path: &Path) -> Result<libsql::Database, DbError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| DbError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
    }
    Ok(libsql::Builder::new_local(path).build().await?)
}

async fn configure(conn: libsql::Connection, is_file: bool) -> Result<libsql::Connection, DbError> {
    if is_file {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute("PRAGMA foreign_keys = ON", ()).await?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_a_file_in_a_new_directory_and_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/deeper/test.db");
        let db = Db::open(&DatabaseLocation::File(path.clone()))
            .await
            .expect("open");
        db.ping(Duration::from_secs(1)).await.expect("ping");
        assert!(path.exists());
    }

    #[tokio::test]
    async fn an_unreachable_remote_fails_to_answer() {
        let db = Db::open(&DatabaseLocation::Remote {
            url: "http://127.0.0.1:9".to_string(),
            auth_token: Default::default(),
        })
        .await
        .expect("opening a remote database does not connect yet");
        assert!(db.ping(Duration::from_secs(5)).await.is_err());
    }
}
