-- Schema 12: unique-visitor keys are appended, not inserted into a B-tree keyed by a
-- random hash (every new key dirtied a page of its own, twice with the day index). The
-- writer holds the live days' keys in memory and decides there; this table is what it
-- loads them back from: each write of derived rows appends one row per day holding that
-- write's new keys as 8-byte big-endian integers. Deleted by day with the salt.
-- `uniques` stays for the keys the writer's memory has no room for (beyond
-- ingest.max_unique_keys): those are decided by the B-tree, as before.
CREATE TABLE unique_keys (
    day   INTEGER NOT NULL,
    keys  BLOB NOT NULL
);
INSERT INTO unique_keys (day, keys)
SELECT day, unhex(group_concat(printf('%016x', key), '')) FROM uniques GROUP BY day;
DELETE FROM uniques;
