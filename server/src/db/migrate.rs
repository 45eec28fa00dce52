//! Versioned schema migrations, applied at start.
//!
//! Each migration is a SQL file in `server/migrations/`, compiled into the binary and
//! recorded in `schema_migrations` with a SHA-256 of its text once applied. Applying is
//! idempotent: applied versions are skipped, so a second start changes nothing. An applied
//! migration whose text has changed, or a database newer than this build, stops the start
//! with a clear error rather than running on a schema nobody wrote.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction, which takes the write
//! lock before reading what is applied: two processes starting on one file at once cannot
//! both apply the same migration.

use libsql::TransactionBehavior;
use sha2::{Digest, Sha256};

use super::{Db, DbError};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Position in the sequence, from 1, without gaps.
    pub version: i64,
    /// Short name, from the file name.
    pub name: &'static str,
    /// The SQL to run.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "tasks",
        sql: include_str!("../../migrations/0002_tasks.sql"),
    },
    Migration {
        version: 3,
        name: "appview",
        sql: include_str!("../../migrations/0003_appview.sql"),
    },
    Migration {
        version: 4,
        name: "admin_sessions",
        sql: include_str!("../../migrations/0004_admin_sessions.sql"),
    },
    Migration {
        version: 5,
        name: "video_sources",
        sql: include_str!("../../migrations/0005_video_sources.sql"),
    },
    Migration {
        version: 6,
        name: "creator_profiles",
        sql: include_str!("../../migrations/0006_creator_profiles.sql"),
    },
    Migration {
        version: 7,
        name: "task_lanes",
        sql: include_str!("../../migrations/0007_task_lanes.sql"),
    },
    Migration {
        version: 8,
        name: "bundle_invocations",
        sql: include_str!("../../migrations/0008_bundle_invocations.sql"),
    },
    Migration {
        version: 9,
        name: "many_authors",
        sql: include_str!("../../migrations/0009_many_authors.sql"),
    },
    Migration {
        version: 10,
        name: "video_metadata",
        sql: include_str!("../../migrations/0010_video_metadata.sql"),
    },
    Migration {
        version: 11,
        name: "moderation",
        sql: include_str!("../../migrations/0011_moderation.sql"),
    },
    Migration {
        version: 12,
        name: "bundle_console",
        sql: include_str!("../../migrations/0012_bundle_console.sql"),
    },
    Migration {
        version: 13,
        name: "bundle_kv",
        sql: include_str!("../../migrations/0013_bundle_kv.sql"),
    },
];

/// What a call to [`Db::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, in order.
    pub applied: Vec<i64>,
    /// The schema version afterwards.
    pub current: i64,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT";

pub(super) async fn apply(db: &Db, migrations: &[Migration]) -> Result<MigrationReport, DbError> {
    let conn = db.connect().await?;
    conn.execute(CREATE_TABLE, ()).await?;
    let known = migrations.last().map_or(0, |m| m.version);
    let found = current_version(&conn).await?;
    if found > known {
        return Err(DbError::SchemaTooNew { found, known });
    }
    let mut applied = Vec::new();

    for migration in migrations {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .await?;
        match apply_one(&tx, migration).await {
            Ok(was_applied) => {
                tx.commit().await?;
                if was_applied {
                    applied.push(migration.version);
                }
            }
            Err(err) => {
                // Dropping a local transaction does not end it: roll back explicitly.
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback after a failed migration failed");
                }
                return Err(err);
            }
        }
    }

    let current = current_version(&conn).await?;
    Ok(MigrationReport { applied, current })
}

async fn current_version(conn: &libsql::Connection) -> Result<i64, DbError> {
    let mut rows = conn
        .query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            (),
        )
        .await?;
    match rows.next().await? {
        Some(row) => Ok(row.get::<i64>(0)?),
        None => Ok(0),
    }
}

/// Applies `migration` inside `tx` unless it already is; `Ok(true)` when it ran now.
async fn apply_one(tx: &libsql::Transaction, migration: &Migration) -> Result<bool, DbError> {
    let checksum = checksum(migration.sql);
    let mut rows = tx
        .query(
            "SELECT checksum FROM schema_migrations WHERE version = ?1",
            [migration.version],
        )
        .await?;
    match rows.next().await? {
        Some(row) if row.get::<String>(0)? == checksum => Ok(false),
        Some(_) => Err(DbError::MigrationChanged {
            version: migration.version,
            name: migration.name,
        }),
        None => {
            drop(rows);
            tx.execute_batch(migration.sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
                libsql::params![migration.version, migration.name, checksum],
            )
            .await?;
            Ok(true)
        }
    }
}

fn checksum(sql: &str) -> String {
    format!("{:x}", Sha256::digest(sql.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DatabaseLocation;

    async fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&DatabaseLocation::File(dir.path().join("test.db")))
            .await
            .expect("open");
        (dir, db)
    }

    /// Everything that defines the schema, and the migration log.
    async fn snapshot(db: &Db) -> Vec<String> {
        let mut out = Vec::new();
        let mut rows = db
            .conn()
            .query(
                "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY name",
                (),
            )
            .await
            .expect("schema");
        while let Some(row) = rows.next().await.expect("row") {
            out.push(row.get::<String>(0).expect("text"));
        }
        let mut rows = db
            .conn()
            .query(
                "SELECT version || ' ' || name || ' ' || checksum || ' ' || applied_at
                 FROM schema_migrations ORDER BY version",
                (),
            )
            .await
            .expect("log");
        while let Some(row) = rows.next().await.expect("row") {
            out.push(row.get::<String>(0).expect("text"));
        }
        out
    }

    #[tokio::test]
    async fn applying_twice_changes_nothing() {
        let (_dir, db) = temp_db().await;
        let first = db.migrate().await.expect("first");
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(first.applied, all);
        let before = snapshot(&db).await;

        let second = db.migrate().await.expect("second");
        assert!(second.applied.is_empty());
        assert_eq!(second.current, first.current);
        assert_eq!(snapshot(&db).await, before);
    }

    #[tokio::test]
    async fn an_edited_migration_is_refused() {
        let (_dir, db) = temp_db().await;
        db.migrate().await.expect("migrate");
        let mut edited = MIGRATIONS.to_vec();
        edited[0].sql = "CREATE TABLE sneaky (id INTEGER);";
        let err = apply(&db, &edited).await.expect_err("edited");
        assert!(
            matches!(err, DbError::MigrationChanged { version: 1, .. }),
            "{err}"
        );
        let tables = snapshot(&db).await.join("\n");
        assert!(!tables.contains("sneaky"), "nothing was changed");
    }

    #[tokio::test]
    async fn a_newer_database_is_refused() {
        let (_dir, db) = temp_db().await;
        db.migrate().await.expect("migrate");
        let err = apply(&db, &MIGRATIONS[..0]).await.expect_err("too new");
        assert!(matches!(err, DbError::SchemaTooNew { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_no_trace() {
        let (_dir, db) = temp_db().await;
        let broken = [Migration {
            version: 1,
            name: "broken",
            sql: "CREATE TABLE half (id INTEGER); THIS IS NOT SQL;",
        }];
        apply(&db, &broken).await.expect_err("broken SQL");
        let schema = snapshot(&db).await.join("\n");
        assert!(!schema.contains("half"), "{schema}");
    }

    #[test]
    fn every_file_is_registered_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let registered: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, registered);
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "versions have no gaps");
        }
    }
}
