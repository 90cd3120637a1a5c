-- The key each run's tokens count under for the per-caller token budget (Identity::budget_key):
-- the signed-in user, or an anonymous caller's network, so that a fresh session (free to mint)
-- does not bring a fresh budget. Runs recorded before count under their owner, as they did.
ALTER TABLE chat_runs ADD COLUMN budget_key TEXT;
UPDATE chat_runs SET budget_key = owner;
CREATE INDEX chat_runs_by_budget_key ON chat_runs (budget_key);
