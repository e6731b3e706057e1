-- Who changed what, for the admin dashboard. actor is a username or "token:<name>".
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Bearer tokens for the admin API (automation), stored as SHA-256 like client secrets.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- RFC 7592: the registration access token of a dynamically registered client (hashed).
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
