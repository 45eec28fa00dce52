-- The AppView: sync bookkeeping per creator, full-text search over videos, and the
-- firehose cursor of each PDS we follow.

ALTER TABLE creators ADD COLUMN sync_duration_ms INTEGER;
-- Records skipped as invalid at the last sync, and why (a JSON array of strings).
ALTER TABLE creators ADD COLUMN skipped_records INTEGER NOT NULL DEFAULT 0;
ALTER TABLE creators ADD COLUMN warnings TEXT;

-- Rebuilt with an INTEGER PRIMARY KEY: the full-text index refers to rows by rowid, which
-- must survive VACUUM, and a thumbnail is a whole blob reference (CID, type, size).
CREATE TABLE videos_new (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    cid TEXT NOT NULL,
    did TEXT NOT NULL REFERENCES creators (did) ON DELETE CASCADE,
    rkey TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    duration_ms INTEGER,
    created_at TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    thumb_cid TEXT,
    thumb_mime TEXT,
    thumb_size INTEGER,
    UNIQUE (did, rkey)
) STRICT;

INSERT INTO videos_new (uri, cid, did, rkey, title, description, duration_ms, created_at,
                        indexed_at, thumb_cid)
SELECT uri, cid, did, rkey, title, description, duration_ms, created_at, indexed_at, thumb_cid
FROM videos;

DROP TABLE videos;
ALTER TABLE videos_new RENAME TO videos;

CREATE INDEX videos_newest ON videos (created_at DESC, uri);
CREATE INDEX videos_by_creator ON videos (did, created_at DESC, uri);

CREATE VIRTUAL TABLE videos_fts USING fts5 (
    title,
    description,
    content = 'videos',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO videos_fts (rowid, title, description) SELECT id, title, description FROM videos;

CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN
    INSERT INTO videos_fts (rowid, title, description)
    VALUES (new.id, new.title, new.description);
END;

CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, title, description)
    VALUES ('delete', old.id, old.title, old.description);
END;

CREATE TRIGGER videos_fts_update AFTER UPDATE OF title, description ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, title, description)
    VALUES ('delete', old.id, old.title, old.description);
    INSERT INTO videos_fts (rowid, title, description)
    VALUES (new.id, new.title, new.description);
END;

-- Where each PDS's firehose left off (`seq`), so a restart resumes without gaps.
CREATE TABLE firehose_cursors (
    host TEXT PRIMARY KEY NOT NULL,
    seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
