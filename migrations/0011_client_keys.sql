-- private_key_jwt (RFC 7523 §2.2): a client's public keys, either inline as a JWK Set
-- (JSON text, public members only) or at a URL fetched and cached by each server; and the
-- one algorithm its assertions must use, when it registered one.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;

-- The jti of every client assertion accepted, kept until the assertion expires (RFC 7523
-- §3 item 7): a replay, on any replica, collides with the primary key, so one atomic
-- INSERT … ON CONFLICT DO NOTHING decides which of two racing requests wins. Purged with
-- the other expired rows.
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
