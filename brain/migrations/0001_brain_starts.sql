-- One row per brain process start: an audit trail of restarts.
-- Portable SQL: the same file migrates SQLite and PostgreSQL.
CREATE TABLE brain_starts (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL
);
