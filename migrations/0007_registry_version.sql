-- One counter bumped by every write to clients, APIs and signing keys (by any process: a
-- replica, the CLI, the admin page). Each server polls it and drops its in-memory caches
-- when it moves, so changes reach every replica within a fraction of a second without a
-- database-specific channel (LISTEN/NOTIFY is missing on some PostgreSQL-compatible
-- databases, and SQLite has none).
CREATE TABLE registry_version (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);
