-- What each invocation printed (`console.log` and friends), as a JSON array of
-- `{at, level, text}`, and the bytes the row takes, which bound each bundle's log in
-- bytes as well as in lines.
ALTER TABLE bundle_invocations ADD COLUMN console TEXT;
ALTER TABLE bundle_invocations ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
