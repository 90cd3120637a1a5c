-- Datasets of the data plane (issue 4): metadata only; the rows live in
-- <data-dir>/datasets/<id>.parquet. Portable SQL: the same file migrates SQLite and PostgreSQL.
CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    -- Tenancy key (`user:<id>`, `session:<id>`, or `system:sample` for the built-in sample).
    owner TEXT NOT NULL,
    -- The SQL table name; unique per owner.
    name TEXT NOT NULL,
    -- `private` or `public`.
    scope TEXT NOT NULL,
    -- JSON array of {"name","dtype"} (shared_types::data::ColumnInfo).
    columns_json TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    -- Size of the Parquet file.
    bytes BIGINT NOT NULL,
    -- 0 or 1 (an integer: booleans differ between the two engines through sqlx Any).
    pinned BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT datasets_owner_name UNIQUE (owner, name)
);
CREATE INDEX datasets_scope ON datasets (scope);
