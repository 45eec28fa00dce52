-- The current place.stream.video record's richer fields, and the captions' text.
--
-- `meta` is JSON (facets, tags, content warnings, rights, connections, activity), read
-- as a whole by the pages. `tags` repeats the tags (a JSON array) for search, and
-- `video_tags` indexes them for tag pages; triggers keep it in step. `transcript` is the
-- text of the origin's captions, for crawlers and search, made for record version
-- `transcript_cid`.
ALTER TABLE videos ADD COLUMN meta TEXT;
ALTER TABLE videos ADD COLUMN tags TEXT;
ALTER TABLE videos ADD COLUMN transcript TEXT;
ALTER TABLE videos ADD COLUMN transcript_cid TEXT;

CREATE TABLE video_tags (
    video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, video_id)
) STRICT;

CREATE TRIGGER video_tags_insert AFTER INSERT ON videos WHEN new.tags IS NOT NULL BEGIN
    INSERT OR IGNORE INTO video_tags (video_id, tag)
    SELECT new.id, lower(value) FROM json_each(new.tags);
END;

CREATE TRIGGER video_tags_update AFTER UPDATE OF tags ON videos BEGIN
    DELETE FROM video_tags WHERE video_id = old.id;
    INSERT OR IGNORE INTO video_tags (video_id, tag)
    SELECT new.id, lower(value) FROM json_each(COALESCE(new.tags, '[]'));
END;

-- Search covers the tags and the transcript too.
DROP TRIGGER videos_fts_insert;
DROP TRIGGER videos_fts_delete;
DROP TRIGGER videos_fts_update;
DROP TABLE videos_fts;

CREATE VIRTUAL TABLE videos_fts USING fts5 (
    title,
    description,
    tags,
    transcript,
    content = 'videos',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO videos_fts (videos_fts) VALUES ('rebuild');

CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN
    INSERT INTO videos_fts (rowid, title, description, tags, transcript)
    VALUES (new.id, new.title, new.description, new.tags, new.transcript);
END;

CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, title, description, tags, transcript)
    VALUES ('delete', old.id, old.title, old.description, old.tags, old.transcript);
END;

CREATE TRIGGER videos_fts_update AFTER UPDATE OF title, description, tags, transcript ON videos BEGIN
    INSERT INTO videos_fts (videos_fts, rowid, title, description, tags, transcript)
    VALUES ('delete', old.id, old.title, old.description, old.tags, old.transcript);
    INSERT INTO videos_fts (rowid, title, description, tags, transcript)
    VALUES (new.id, new.title, new.description, new.tags, new.transcript);
END;
