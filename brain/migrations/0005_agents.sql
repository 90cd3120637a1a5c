-- Agents (issue 6): the agent answering in each thread, guardrail outcomes of runs, and
-- escalations to humans. Portable SQL: the same file migrates SQLite and PostgreSQL.

-- NULL for threads created before agents existed: they use the default agent.
ALTER TABLE chat_threads ADD COLUMN agent TEXT;

-- The agent that produced a run, and why a guardrail refused it (NULL: not refused).
ALTER TABLE chat_runs ADD COLUMN agent TEXT;
ALTER TABLE chat_runs ADD COLUMN refusal TEXT;

CREATE TABLE escalations (
    id TEXT PRIMARY KEY,
    -- Tenancy key of the conversation's owner.
    owner TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    run_id TEXT,
    agent TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- `low`, `normal` or `high`.
    urgency TEXT NOT NULL,
    -- `open` or `resolved`.
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    resolved_by TEXT,
    resolution TEXT
);
CREATE INDEX escalations_by_status ON escalations (status, created_at_ms);
CREATE INDEX escalations_by_owner ON escalations (owner);
