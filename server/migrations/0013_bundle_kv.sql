-- `ctx.kv`: each bundle's lasting key-value entries, by (author DID, bundle name). Values
-- are JSON text; `bytes` (key and value) counts toward the bundle's quota; an entry with
-- `expires_at` (milliseconds since the Unix epoch) reads as absent from then on.
CREATE TABLE bundle_kv (
    did TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (did, name, key)
) STRICT, WITHOUT ROWID;
