-- The servers running on this database, and the registry version each has applied to its
-- caches. A security-relevant change (a rotated secret, a deleted client, a key retired)
-- waits until every live server has applied it before it is reported done, so that it
-- holds everywhere from then on without a database read on the hot path. A server that
-- stops heartbeating is no longer waited for (its caches expire by their TTL).
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    seen_version BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
