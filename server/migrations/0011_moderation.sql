-- Moderation and whole hosts.
--
-- `video_takedowns`: videos an admin took down, by record URI, so a takedown outlives a
-- resync, an unregistration or the record being written again. `account_status`: the
-- creator's account as the network reports it (NULL: active; else `deactivated`,
-- `suspended`, `takendown`, `deleted` or whatever status the PDS names). Public reads skip
-- both. `admin_audit`: who did what, when and why. `hosts`: PDS hosts registered whole.
CREATE TABLE video_takedowns (
    uri TEXT PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    admin TEXT NOT NULL,
    taken_down_at TEXT NOT NULL
) STRICT;

ALTER TABLE creators ADD COLUMN account_status TEXT;

CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    admin TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT
) STRICT;

CREATE TABLE hosts (
    host TEXT PRIMARY KEY NOT NULL,
    registered_at TEXT NOT NULL,
    last_listed_at TEXT,
    repos INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
) STRICT;

