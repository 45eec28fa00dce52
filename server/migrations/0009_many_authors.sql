-- Many authors share one task queue. `owner` names who a task's work is for (a bundle
-- author's DID; NULL for the server's own kinds): claiming caps how many of one owner's
-- tasks run at once, submission caps how many wait, and finished results are kept
-- within a byte budget per owner. `failure` says what kind of failure a failed task
-- met ('input', 'not_found', 'upstream', 'internal'), so the HTTP edge can answer bad
-- input with a 4xx; the error text stored beside it is the public message only.
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN failure TEXT;

CREATE INDEX tasks_pending_by_lane ON tasks (name, lane) WHERE status = 'pending';
CREATE INDEX tasks_pending_by_owner ON tasks (owner) WHERE status = 'pending' AND owner IS NOT NULL;
CREATE INDEX tasks_finished_by_owner ON tasks (owner, updated_at)
    WHERE owner IS NOT NULL AND status IN ('complete', 'failed');

-- The invocation log keeps a bounded number of lines per bundle and per author: the
-- newest by id, found through these.
CREATE INDEX bundle_invocations_bundle_ids ON bundle_invocations (did, name, id);
CREATE INDEX bundle_invocations_author_ids ON bundle_invocations (did, id);
