-- The knowledge quota's counter: chunks stored per owner, changed in the same transaction as the
-- chunks themselves. An upload reserves its chunks with one conditional upsert, so concurrent
-- uploads cannot together exceed the quota (a count before the insert could not promise that).
CREATE TABLE knowledge_usage (
    owner TEXT PRIMARY KEY,
    chunks BIGINT NOT NULL
);
INSERT INTO knowledge_usage (owner, chunks)
SELECT owner, COUNT(*) FROM knowledge_chunks GROUP BY owner;
