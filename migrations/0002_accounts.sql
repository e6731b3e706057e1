-- Flags are BIGINT 0/1: sqlx's Any driver cannot map SQLite's BOOLEAN, and 0/1 reads the
-- same on both engines.

-- Users: the people who sign in. Standard OIDC claims are kept as one JSON object
-- (name, email, address, ...) because they are read and written as a whole.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    claims TEXT NOT NULL DEFAULT '{}',
    is_admin BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- APIs (resource servers): the identifier is the `aud` of their access tokens.
CREATE TABLE apis (
    identifier TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    access_token_ttl BIGINT NOT NULL,
    signing_alg TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_scopes (
    api_identifier TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (api_identifier, name)
);

-- Clients (relying parties). List-valued metadata is stored as JSON arrays: a client is
-- always read whole, and RFC 7591 names the same fields.
-- secret_hash is the hex SHA-256 of a high-entropy secret (never a slow hash: the token
-- endpoint is the hot path and a 256-bit secret cannot be brute-forced).
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    client_type TEXT NOT NULL,
    secret_hash TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scope TEXT NOT NULL,
    default_api TEXT REFERENCES apis (identifier) ON DELETE SET NULL,
    require_pkce BIGINT NOT NULL DEFAULT 1,
    first_party BIGINT NOT NULL DEFAULT 0,
    id_token_signed_response_alg TEXT NOT NULL,
    refresh_token_ttl BIGINT NOT NULL,
    refresh_token_idle_ttl BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
