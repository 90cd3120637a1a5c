-- Bigger than memory (issue 18, item 6).
--
-- `datasets.frame_bytes`: the in-memory (Arrow) size of the dataset's current contents, as
-- polars estimated it when they were written; NULL for contents written before. A dataset whose
-- frame would not fit in a brain's memory budget (`--datasets-memory-budget-bytes`) is never
-- loaded: queries over it scan its Parquet object on polars' streaming engine instead.
ALTER TABLE datasets ADD COLUMN frame_bytes BIGINT;
