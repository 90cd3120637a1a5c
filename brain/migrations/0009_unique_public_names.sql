-- Public dataset names are unique across owners: otherwise anyone could publish a dataset named
-- like another public one (the sample's `transactions`, say) and every caller's `FROM
-- transactions` would read whichever the lookup met last. A later duplicate of an existing
-- database keeps its data but becomes private to its owner; the oldest public one keeps the name.
UPDATE datasets SET scope = 'private'
WHERE scope = 'public' AND EXISTS (
    SELECT 1 FROM datasets AS older
    WHERE older.scope = 'public' AND older.name = datasets.name
      AND (older.created_at_ms < datasets.created_at_ms
           OR (older.created_at_ms = datasets.created_at_ms AND older.id < datasets.id))
);
CREATE UNIQUE INDEX datasets_public_name ON datasets (name) WHERE scope = 'public';
