-- Schema 11: the events table is the durable log (the spool) the derived tables are
-- rebuilt from. Under load the writer commits events at once and their sessions,
-- rollups and unique-visitor keys a little later; each committed batch whose derived
-- rows are not written yet leaves its id range here, and the write of the derived rows
-- empties the table in the same transaction. After a crash the writer replays exactly
-- these events.
CREATE TABLE unindexed (
    from_id  INTEGER NOT NULL,
    to_id    INTEGER NOT NULL
);
