-- Grounded answers (issue 16). Portable SQL: the same file migrates SQLite and PostgreSQL.

-- Why a run's reply ended (`stop`, `length`, `tool-calls`, `content-filter`, `error`, …; NULL for
-- runs stored before, cancelled ones and ones a restart interrupted), and the grounding check's
-- verdict on its numbers (`verified`, `unverified`, `no-claims`; NULL when not checked).
ALTER TABLE chat_runs ADD COLUMN finish_reason TEXT;
ALTER TABLE chat_runs ADD COLUMN grounding TEXT;

-- A stored reply's metadata: the `finish` chunk's `messageMetadata` as JSON (NULL for user
-- messages and older replies).
ALTER TABLE chat_messages ADD COLUMN metadata TEXT;
