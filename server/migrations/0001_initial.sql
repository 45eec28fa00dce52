-- Creators registered on this server, and the videos indexed from their repositories.

CREATE TABLE creators (
    did TEXT PRIMARY KEY NOT NULL,
    handle TEXT,
    pds_url TEXT,
    registered_at TEXT NOT NULL,
    last_synced_at TEXT,
    last_error TEXT
) STRICT;

CREATE TABLE videos (
    uri TEXT PRIMARY KEY NOT NULL,
    cid TEXT NOT NULL,
    did TEXT NOT NULL REFERENCES creators (did) ON DELETE CASCADE,
    rkey TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    duration_ms INTEGER,
    created_at TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    thumb_cid TEXT,
    UNIQUE (did, rkey)
) STRICT;

CREATE INDEX videos_newest ON videos (created_at DESC, uri);
CREATE INDEX videos_by_creator ON videos (did, created_at DESC);
