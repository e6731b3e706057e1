-- The test lab's clock (development features only): how far the servers on this database
-- have moved "now" from the wall clock, or the instant they froze it at. One row at most;
-- every server applies it when the registry version moves, so replicas keep one time.
CREATE TABLE test_clock (
    id BIGINT PRIMARY KEY,
    offset_seconds BIGINT NOT NULL,
    frozen_at BIGINT,
    updated_at BIGINT NOT NULL
);
