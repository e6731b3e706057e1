-- Pairwise subject identifiers (OIDC Core §8.1): a client's `subject_type` ('public', the
-- default and what every client before was, or 'pairwise') and its `sector_identifier_uri`
-- (OIDC Registration §2, §5), whose host is the sector a pairwise `sub` is computed for
-- (else the host its redirect URIs share). NULL: none registered.
ALTER TABLE clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE clients ADD COLUMN sector_identifier_uri TEXT;

-- Secrets the server generates once and every replica must share, by name. The first is
-- the pairwise salt ('pairwise_salt'): were it lost or changed, every pairwise `sub`
-- would change and each relying party would see its users as new ones, so it lives here
-- and not in one server's memory. Written with INSERT … ON CONFLICT DO NOTHING, then read
-- back: replicas starting at once all end up with the one value that won.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
