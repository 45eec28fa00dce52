-- Durable tasks (deduplicated, leased, retried) and scheduled jobs with their history.
-- Times are milliseconds since the Unix epoch, UTC.

CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- SHA-256 of the canonical JSON input; `current` marks the one row per (name, key)
    -- that submissions of that input are deduplicated against.
    dedupe_key TEXT NOT NULL,
    current INTEGER CHECK (current = 1),
    input TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    -- When a complete or failed result stops being reused.
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX tasks_current_key ON tasks (name, dedupe_key) WHERE current = 1;
CREATE INDEX tasks_claimable ON tasks (status, run_at) WHERE status IN ('pending', 'running');
CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE jobs (
    name TEXT PRIMARY KEY NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_run_at INTEGER,
    lease_owner TEXT,
    lease_expires_at INTEGER
) STRICT;

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT
) STRICT;

CREATE INDEX job_runs_by_job ON job_runs (job, started_at DESC);
