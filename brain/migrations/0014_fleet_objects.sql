-- A fleet of brains on one database (issue 18, item 5).
--
-- `datasets.object_key`: the key, in the object store (`--object-store-url`), of the Parquet
-- object holding the dataset's current contents. Every replace or append writes a new object
-- (`datasets/<id>/v<version>-<nonce>.parquet`) and commits its key here together with the new
-- version, so a brain always reads the object its row names, never a half-written or mixed
-- one. Datasets stored before keep their file: `<data-dir>/datasets/<id>.parquet` is the key
-- `datasets/<id>.parquet` of the default local store. `||` concatenates in SQLite and
-- PostgreSQL alike.
ALTER TABLE datasets ADD COLUMN object_key TEXT NOT NULL DEFAULT '';
UPDATE datasets SET object_key = 'datasets/' || id || '.parquet' WHERE object_key = '';

-- `knowledge_generations`: a counter per owner, incremented in the same transaction as every
-- upload and delete of that owner's documents. A brain caches an owner's search index with the
-- generation it was built from and rebuilds it when the stored generation differs (one
-- primary-key read per search), so a change made through another brain is seen at the next
-- search.
CREATE TABLE knowledge_generations (
    owner TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
