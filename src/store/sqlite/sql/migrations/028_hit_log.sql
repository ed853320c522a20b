-- Schema 28: the number of the last hit log record whose events are committed
-- (`ingest::hitlog`). The transaction that commits a record's events sets it, so after
-- a crash the records above it are replayed, each exactly once.
CREATE TABLE hit_log (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO hit_log (id, seq) VALUES (1, 0);
