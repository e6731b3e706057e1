-- client_secret_jwt (RFC 7523 §2.2 with an HMAC, OIDC Core §9): the server must compute an
-- HMAC keyed with the client's secret, which the SHA-256 in secret_hash cannot give back.
-- So a client_secret_jwt client (and only one) keeps its secret here as well, sealed with
-- AES-256-GCM under the key-encryption key with the client_id as associated data
-- ('v1:' + base64url(nonce | ciphertext | tag)); without a key-encryption key, as the
-- signing keys are, in the clear behind 'plain:' (the server warns at start). NULL for
-- every other client: switching away from client_secret_jwt clears it.
ALTER TABLE clients ADD COLUMN secret_sealed TEXT;
