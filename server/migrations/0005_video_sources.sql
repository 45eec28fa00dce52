-- What playback needs from a record: the streamer it names (may differ from the repo
-- owner), the livestream record it points at (whose thumbnail may stand in for its own),
-- and its media source (JSON, as the record has it).
ALTER TABLE videos ADD COLUMN creator TEXT;
ALTER TABLE videos ADD COLUMN livestream_uri TEXT;
ALTER TABLE videos ADD COLUMN livestream_cid TEXT;
ALTER TABLE videos ADD COLUMN source TEXT;

-- One-time facts about this installation (such as: the default creators were registered).
CREATE TABLE app_flags (
    name TEXT PRIMARY KEY NOT NULL,
    set_at TEXT NOT NULL
) STRICT;
