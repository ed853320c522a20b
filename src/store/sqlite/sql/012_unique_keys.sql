-- Schema 12: unique-visitor keys are appended, not inserted into a B-tree keyed by a
-- random hash (every new key dirtied a page of its own, twice with the day index). The
-- writer holds the live days' keys in memory and decides there; this table is what it
-- loads them back from. Deleted by day with the salt of the day.
CREATE TABLE unique_keys (
    day  INTEGER NOT NULL,
    key  INTEGER NOT NULL
);
INSERT INTO unique_keys (day, key) SELECT day, key FROM uniques ORDER BY day;
DROP INDEX uniques_day;
DROP TABLE uniques;
