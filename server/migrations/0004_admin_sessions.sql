-- Admin sign-ins, so that signing out (or an operator deleting a row) revokes a session
-- on every server sharing the database, whatever copies of its cookie exist.
CREATE TABLE admin_sessions (
    id TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
