-- Run leases and the live event log (issue 18: a fleet of brains on one database).
-- Portable SQL: the same file migrates SQLite and PostgreSQL.

-- Who runs a run: `lease_owner` is the brain id (`--brain-id`) running it, which renews
-- `lease_expires_at_ms` while it lives (`heartbeat_at_ms`: its last renewal). A queued or
-- running run whose lease expired lost its brain: any brain marks it failed, exactly once.
-- Runs recorded before have no lease (NULL): a starting brain marks those failed if unfinished.
ALTER TABLE chat_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE chat_runs ADD COLUMN lease_expires_at_ms BIGINT;
ALTER TABLE chat_runs ADD COLUMN heartbeat_at_ms BIGINT;
-- For a run ended by another brain (its lease expired) or by a restart: how many events of
-- `events` its own brain had stored; the error and finish after them are the finisher's. NULL
-- when the run's own brain finished it.
ALTER TABLE chat_runs ADD COLUMN recovered_after_event BIGINT;
CREATE INDEX chat_runs_by_lease ON chat_runs (state, lease_expires_at_ms);

-- The events of runs in progress, stored as they happen (in small batches), so a client
-- following a run through any brain gets them. `seq` is the event's number (1, 2, …). When the
-- run ends, its whole log moves to `chat_runs.events` and these rows are deleted.
CREATE TABLE chat_run_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
