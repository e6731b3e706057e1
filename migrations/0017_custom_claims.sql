-- Custom scopes: like `profile`, each releases user claims to the id_token and userinfo,
-- here claims of the administrator's choosing (`roles`, `groups`, `tenant`). A scope is
-- read whole (name, words for the consent page, claims), so its claims are a JSON array.
-- Writes bump registry_version: every server reads these through its registry cache.
CREATE TABLE claim_scopes (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    claims TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The user claims an API wants in its own access tokens (JSON array of claim names),
-- copied from the user when a token for that API is issued; '[]' for the APIs before.
ALTER TABLE apis ADD COLUMN access_token_claims TEXT NOT NULL DEFAULT '[]';
