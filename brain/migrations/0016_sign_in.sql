-- Sign-in (issue 19).
--
-- `session_claims`: a visitor's session moves to the user who signed in with it, once. The row
-- binds the session to that user for good: a later claim by the same user moves what was made
-- anonymously since, a claim by another user moves nothing (never merges two users).
CREATE TABLE session_claims (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    claimed_at_ms BIGINT NOT NULL
);

-- Refresh tokens the edge issued after an OpenID Connect sign-in. A family is one sign-in: its
-- tokens succeed each other (each refresh uses one and adds its successor). Only SHA-256 hashes
-- of tokens are stored. Presenting a used token (outside a short leeway) revokes the family.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- shared_types::account::SignedInUser as JSON.
    user_json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- The sign-in's absolute end.
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    -- `sign-out`, `reuse`.
    revoked_reason TEXT
);
CREATE INDEX refresh_families_by_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    -- When it was exchanged for its successor; NULL while it is the family's current token.
    used_at_ms BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
