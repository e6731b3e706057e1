-- Token exchange (RFC 8693): the downstream APIs an API may exchange its users' access
-- tokens for, as a JSON array of API identifiers. An API exchanges only when it lists the
-- target here, so that one compromised API cannot mint tokens for every other one; '[]'
-- (none) for the APIs before.
ALTER TABLE apis ADD COLUMN token_exchange_audiences TEXT NOT NULL DEFAULT '[]';
