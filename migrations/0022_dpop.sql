-- DPoP (RFC 9449): sender-constrained tokens.

-- The proofs accepted, by the SHA-256 of their jti under the thumbprint of the key that
-- signed them, kept until the proof's iat has left the acceptance window (a replay after
-- that is refused by its iat). A replay, on any replica, collides with the primary key: one
-- atomic INSERT … ON CONFLICT DO NOTHING decides which of two racing requests wins.
-- Purged with the other expired rows.
CREATE TABLE dpop_proof_jtis (
    jkt TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti_hash)
);
CREATE INDEX dpop_proof_jtis_expiry ON dpop_proof_jtis (expires_at);

-- RFC 9449 §5.2 `dpop_bound_access_tokens`: the client always uses DPoP at /token, and a
-- token request of it without a proof is refused.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BIGINT NOT NULL DEFAULT 0;

-- §5: a public client's refresh token is bound to the key its first proof showed (the
-- RFC 7638 thumbprint); every refresh must prove that key, and rotation keeps it. NULL:
-- not bound (a confidential client's, or issued without DPoP).
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;

-- §10: `dpop_jkt` sent to /authorize binds the code to a key: its redemption must prove it.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
