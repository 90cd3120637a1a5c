-- Conversations: threads per caller identity (owner), their messages, and the runs (assistant
-- replies) that produce them. Portable SQL: the same file migrates SQLite and PostgreSQL.
CREATE TABLE chat_threads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX chat_threads_by_owner ON chat_threads (owner, updated_at_ms, id);

-- `seq` orders a thread's messages (1, 2, …); `parts` is the UI message parts as JSON text,
-- `text` the plain text the model sees in later turns.
CREATE TABLE chat_messages (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    parts TEXT NOT NULL,
    text TEXT NOT NULL,
    run_id TEXT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (thread_id, seq)
);

-- `events` holds the run's UI message stream (a JSON array of chunks) once it finished, for
-- reconnects after the in-memory copy is gone. `instance_id` is the brain start that ran it.
CREATE TABLE chat_runs (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    provider_model TEXT,
    error TEXT,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_micro_usd BIGINT NOT NULL DEFAULT 0,
    instance_id TEXT NOT NULL,
    events TEXT,
    created_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);
CREATE INDEX chat_runs_by_owner ON chat_runs (owner);
CREATE INDEX chat_runs_by_thread ON chat_runs (thread_id);
CREATE INDEX chat_runs_by_state ON chat_runs (state);
