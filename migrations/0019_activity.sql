-- The protocol recorder (test lab; written only with development features on): one row per
-- protocol exchange (authorize, token, userinfo, …, back-channel logout deliveries), so that
-- a failed flow can be read back from the admin page, the admin API or a test. Secrets are
-- masked and tokens kept only decoded (in `detail`, JSON) before a row is written.
-- Kept bounded: the oldest rows beyond activity_retention_count, and those older than
-- activity_retention_seconds, are deleted as new ones are written.
CREATE TABLE activity (
    -- From activity_sequence: increasing in commit order on every replica, never reused,
    -- so that `since=<id>` pages through what is new.
    id BIGINT PRIMARY KEY,
    -- Protocol clock, seconds.
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    endpoint TEXT NOT NULL,
    method TEXT NOT NULL,
    client_id TEXT,
    user_id TEXT,
    username TEXT,
    status BIGINT NOT NULL,
    error TEXT,
    error_description TEXT,
    -- Parameters (masked), decoded tokens with their report, the redirect without its code.
    detail TEXT NOT NULL
);
-- Retention by age, and the admin page's filters (newest first within a client or user).
CREATE INDEX activity_at ON activity (at);
CREATE INDEX activity_client ON activity (client_id, id);
CREATE INDEX activity_username ON activity (username, id);

-- The last id handed out (one row). Bumped in the writing transaction: the row lock orders
-- concurrent writers on PostgreSQL, and an id is never handed out twice even after purges.
CREATE TABLE activity_sequence (
    id BIGINT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO activity_sequence (id, last_id) VALUES (1, 0);
