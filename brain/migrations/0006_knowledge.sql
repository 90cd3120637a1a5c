-- The knowledge base (issue 6, retrieval): documents per owner, their extracted text, and their
-- chunks with char offsets and embeddings. Portable SQL: the same file migrates SQLite and
-- PostgreSQL (`BYTEA` is a blob in SQLite: an unknown type name gets NUMERIC affinity, which
-- stores blobs unchanged).
CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    -- Tenancy key (`user:<id>` or `session:<id>`).
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    -- text/plain, text/markdown, text/html or application/pdf.
    media_type TEXT NOT NULL,
    -- Size of the upload.
    bytes BIGINT NOT NULL,
    -- Length of the extracted text in chars (Unicode scalar values).
    chars BIGINT NOT NULL,
    chunk_count BIGINT NOT NULL,
    -- The embedding model of its chunks' vectors (vectors of other models are never compared).
    embedder TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- The extracted text every chunk offset refers to.
    text TEXT NOT NULL
);
CREATE INDEX knowledge_documents_by_owner ON knowledge_documents (owner, created_at_ms);

CREATE TABLE knowledge_chunks (
    document_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    chunk_index BIGINT NOT NULL,
    -- Chars start_char..end_char (end exclusive) of the document's text are this chunk's text.
    start_char BIGINT NOT NULL,
    end_char BIGINT NOT NULL,
    text TEXT NOT NULL,
    -- Unit vector as little-endian f32 bytes.
    embedding BYTEA NOT NULL,
    PRIMARY KEY (document_id, chunk_index)
);
CREATE INDEX knowledge_chunks_by_owner ON knowledge_chunks (owner, document_id);
