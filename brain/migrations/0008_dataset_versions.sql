-- Dataset versions: every change of what a dataset's name resolves to in SQL (replace, append,
-- rename) increments `version`, so answers can name the exact data they came from (provenance)
-- and caches can key on (id, version). Portable SQL: the same file migrates SQLite and PostgreSQL.
ALTER TABLE datasets ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
