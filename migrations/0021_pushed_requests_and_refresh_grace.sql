-- Pushed Authorization Requests (RFC 9126). A pushed request is known by the SHA-256 of
-- its request_uri (the urn is a bearer reference, so it is stored hashed like a code),
-- bound to the client that pushed it. `params`: the authorization parameters as validated
-- at the push (a request object verified and merged in, the client's credentials
-- removed), form-encoded; /authorize validates them again. `used_at`: single use, set by
-- one atomic UPDATE. Rows are kept an hour past `expires_at`, so that an expired
-- reference is told apart from an unknown one.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- RFC 9126 §6: a client that must use PAR (0/1). The server-wide setting
-- `require_pushed_authorization_requests` applies on top.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BIGINT NOT NULL DEFAULT 0;

-- Lanyard's own (not RFC 7591 metadata): seconds during which the refresh token just
-- rotated away may be presented again by the same client and is answered with the same
-- successor (parallel tabs refreshing at once). 0: strict rotation, reuse revokes.
ALTER TABLE clients ADD COLUMN refresh_token_reuse_interval BIGINT NOT NULL DEFAULT 0;

-- The successor a refresh token was rotated to: its hash (to tell the immediate
-- predecessor of the live token from older ones) and, for clients with a reuse interval,
-- the successor itself, sealed (AES-256-GCM) under a key derived from the predecessor
-- token, which only its holder has (the key-encryption key is mixed in when one is set).
-- Cleared when the successor is rotated in turn.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
