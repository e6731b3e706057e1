-- The device authorization grant (RFC 8628): one row per device authorization request.
-- Both codes are stored only as SHA-256 hashes: the device_code (high entropy, the
-- device's secret at /token) and the user_code (short; hashed after normalization, so the
-- page finds it however the user typed it). user_code_hash is unique so that a code typed
-- on the page names exactly one request (a collision at creation draws a new code).
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    -- The scopes and APIs (JSON array) asked for, validated as /authorize validates them.
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    -- The grant the tokens are recorded under (so that a replay can revoke them).
    grant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- 'pending' until the user decides ('approved' or 'denied'); 'redeemed' once the
    -- device has its tokens. Changed only by atomic UPDATEs guarded on the old status.
    status TEXT NOT NULL DEFAULT 'pending',
    -- Polling (RFC 8628 §3.5), kept here so that every replica agrees: the interval the
    -- device must keep (grows by 5 s on each slow_down), when it last polled, and whether
    -- that poll came too early (set by the same UPDATE that records the poll).
    poll_interval BIGINT NOT NULL,
    last_polled_at BIGINT,
    polled_too_fast BIGINT NOT NULL DEFAULT 0,
    -- Who approved, in which session, and how they signed in (the tokens' sub, sid,
    -- auth_time, acr and amr); NULL while pending or when denied.
    user_id TEXT,
    sid TEXT,
    auth_time BIGINT,
    acr TEXT,
    amr TEXT,
    decided_at BIGINT,
    redeemed_at BIGINT
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
CREATE INDEX device_codes_user ON device_codes (user_id);
CREATE INDEX device_codes_client ON device_codes (client_id);
