-- Signing keys live in the database so every replica signs and publishes the same set.
-- private_jwk holds the JWK as JSON, or "v1:" + base64url(nonce | ciphertext | tag)
-- when a key-encryption key is configured (AES-256-GCM, the kid as associated data).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    state TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- At most one active key per algorithm: two replicas starting at once on an empty
-- database both try to insert one, and this index lets exactly one of them win.
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';
