-- The knowledge chunk quota counts under the caller's budget key (Identity::budget_key): the
-- signed-in user, or an anonymous caller's network, so that minting fresh sessions (free) does
-- not bring a fresh quota. Each document remembers the key its chunks were counted under, so
-- deleting it gives them back to that same counter whoever deletes it later (a session that
-- moved networks, a visitor who signed in). Documents stored before counted under their owner,
-- and keep doing so.
ALTER TABLE knowledge_documents ADD COLUMN budget_key TEXT;
UPDATE knowledge_documents SET budget_key = owner;
ALTER TABLE knowledge_usage RENAME COLUMN owner TO budget_key;
