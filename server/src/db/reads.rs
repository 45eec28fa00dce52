//! Reads on the hot paths (pages, listings, the sitemap), on the embedded file: a few
//! connections of their own, each keeping its compiled statements.
//!
//! Measured on the watch page rendered per request: compiling SQL (`sqlite3_prepare`)
//! was a fifth of the render, and every read waited on the one shared connection's lock.
//! SQLite in WAL mode lets separate connections read at once, and a statement compiled
//! once is reset and bound again for the next query. libsql has no statement cache of
//! its own, so this is one: per connection, keyed by SQL text, bounded.
//!
//! A remote database (Turso, `sqld`) is read through the shared connection as before:
//! its statements live on the server, and its connection is renewed after outages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use libsql::params::IntoParams;

use super::{DbError, configure};

/// Read connections on the embedded file.
const READERS: usize = 4;
/// Compiled statements kept per connection (the queries' shapes are far fewer).
const MAX_STATEMENTS: usize = 128;

/// One read connection and its compiled statements.
struct Reader {
    conn: libsql::Connection,
    statements: HashMap<String, libsql::Statement>,
}

/// The read connections of a file database.
pub(super) struct Reads {
    readers: Vec<tokio::sync::Mutex<Reader>>,
    next: AtomicUsize,
}

impl Reads {
    pub(super) async fn open(database: &libsql::Database) -> Result<Self, DbError> {
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(tokio::sync::Mutex::new(Reader {
                conn: configure(database.connect()?, true).await?,
                statements: HashMap::new(),
            }));
        }
        Ok(Self {
            readers,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `sql` on a free reader (or, all busy, the next in turn), mapping each row.
    pub(super) async fn read<T>(
        &self,
        sql: &str,
        params: impl IntoParams,
        map: impl FnMut(&libsql::Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..self.readers.len()).find_map(|i| {
            self.readers[(start + i) % self.readers.len()]
                .try_lock()
                .ok()
        });
        let mut reader = match free {
            Some(reader) => reader,
            None => self.readers[start % self.readers.len()].lock().await,
        };
        let reader = &mut *reader;
        if !reader.statements.contains_key(sql) {
            if reader.statements.len() >= MAX_STATEMENTS {
                reader.statements.clear();
            }
            let statement = reader.conn.prepare(sql).await?;
            reader.statements.insert(sql.to_string(), statement);
        }
        let Some(statement) = reader.statements.get(sql) else {
            return Ok(Vec::new());
        };
        statement.reset();
        let result = match statement.query(params).await {
            Ok(rows) => collect(rows, map).await,
            Err(err) => Err(err.into()),
        };
        statement.reset();
        result
    }
}

/// Every row of `rows`, mapped.
pub(super) async fn collect<T>(
    mut rows: libsql::Rows,
    mut map: impl FnMut(&libsql::Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let mut mapped = Vec::new();
    while let Some(row) = rows.next().await? {
        mapped.push(map(&row)?);
    }
    Ok(mapped)
}
