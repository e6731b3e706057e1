-- Browser sessions. The cookie carries a random value; only its SHA-256 is stored, so a
-- leaked database does not hand out live sessions. sid is the public id put in id_tokens.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- An authorization request waiting for the user to sign in or consent. Kept in the
-- database (not in one process) so the login form may be posted to any replica.
-- authenticated_sid and consented record what happened during this request, which is
-- what prompt=login, max_age and prompt=consent ask about (timestamps are too coarse).
CREATE TABLE authorization_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    authenticated_sid TEXT,
    consented BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Consent remembered per user and client, until the requested scopes grow.
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Authorization codes: stored hashed, single use. redeemed_at is set by one atomic UPDATE
-- so that of two concurrent redemptions exactly one wins; grant_id names what the winner
-- was issued, so that a replay can revoke it (RFC 6749 §4.1.2).
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT
);

-- Login throttling counters, per account and per client IP (key = "user:alice" / "ip:...").
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
