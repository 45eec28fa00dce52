-- Lanes: limits carried by a task itself rather than its kind. One task kind serves
-- every bundle export (`atrun`), and each export keeps its own concurrency and cache
-- TTL from its manifest: running tasks are counted per lane across all servers.
ALTER TABLE tasks ADD COLUMN lane TEXT;
ALTER TABLE tasks ADD COLUMN lane_limit INTEGER;
ALTER TABLE tasks ADD COLUMN cache_ttl_ms INTEGER;

CREATE INDEX tasks_running_lanes ON tasks (lane) WHERE status = 'running' AND lane IS NOT NULL;
