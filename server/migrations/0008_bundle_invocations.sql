-- Recent invocations of each bundle, for its author (`at-run logs`): kept for seven
-- days. Times are milliseconds since the Unix epoch, UTC.
CREATE TABLE bundle_invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    did TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    export TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    at INTEGER NOT NULL
) STRICT;

CREATE INDEX bundle_invocations_by_bundle ON bundle_invocations (did, name, at DESC);
CREATE INDEX bundle_invocations_by_time ON bundle_invocations (at);
