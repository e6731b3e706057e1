-- OpenID Connect Back-Channel and Front-Channel Logout 1.0: where a client wants to hear
-- that a user's session at Lanyard ended, and whether it needs the session id (sid) to
-- know which of its own sessions to end. NULL: the client registered no such endpoint.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;

-- One row per back-channel logout delivery (a logout token POSTed to a client), written
-- when it is over: delivered or given up after its attempts. Kept so that an operator can
-- see on the client's admin page whether the client was told, and why not. Not a queue:
-- deliveries run in the server process, off the request path.
CREATE TABLE backchannel_deliveries (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    -- "HTTP 200", or why the last attempt failed.
    outcome TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX backchannel_deliveries_client ON backchannel_deliveries (client_id, created_at);
