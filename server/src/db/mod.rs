//! The database: libSQL, opened once per process.
//!
//! By default it is an embedded file in the data directory, so Streamhut runs with no
//! account anywhere; `TURSO_URL` switches to a remote libSQL server with the same SQL.
//!
//! [`Db`] holds one shared connection for single statements, which SQLite serialises
//! safely, and hands out fresh connections for transactions ([`Db::connect`]): a
//! transaction on a shared connection would swallow other tasks' statements.
//! The embedded file runs in WAL mode so readers never wait for the writer, and every
//! connection waits for a busy lock instead of failing, because several processes
//! (a second server, the CLI) may share the file.

mod migrate;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::DatabaseLocation;

pub use migrate::{MIGRATIONS, Migration, MigrationReport};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    database: libsql::Database,
    shared: libsql::Connection,
    is_file: bool,
}

impl Db {
    /// Opens the database (creating the file and its directory if needed).
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
        Ok(Self {
            inner: Arc::new(Inner {
                database,
                shared,
                is_file,
            }),
        })
    }

    /// The shared connection, for statements that run on their own (autocommit).
    pub fn conn(&self) -> &libsql::Connection {
        &self.inner.shared
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
        Ok(Writer {
            conn: tokio::sync::Mutex::new(self.connect().await?),
        })
    }

    /// Applies the migrations this database has not seen yet.
    pub async fn migrate(&self) -> Result<MigrationReport, DbError> {
        migrate::apply(self, MIGRATIONS).await
    }
}

/// A write connection, used by one task at a time.
pub struct Writer {
    conn: tokio::sync::Mutex<libsql::Connection>,
}

impl Writer {
    /// The connection, for single statements.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, libsql::Connection> {
        self.conn.lock().await
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction (which takes the write lock at
    /// once, so it never fails half-way on a busy database); commits on `Ok`, rolls back
    /// on `Err`.
    pub async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&libsql::Transaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let conn = self.conn.lock().await;
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
