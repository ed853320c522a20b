-- Schema 29: the unique-visitor keys the writer's memory has no room for
-- (ingest.max_unique_keys) are kept by visitor.
--
-- `uniques` was keyed by the key alone, a random 64-bit hash, with an index by day
-- beside it: past the memory bound every new key of a hit dirtied a page of each of
-- the two B-trees, at random, so a new visitor's ten keys dirtied about twenty pages,
-- and the writer's page cache, far smaller than the trees, spilled and re-read them
-- (the writer 41 µs an event instead of 10; docs/benchmarks.md). Here a visitor's
-- keys of a day are together: each write of derived rows appends a row of the keys it
-- counted for the visitor (8-byte big-endian integers; `n` is how many of the
-- visitor's keys were stored before it), the day leads (a day's rows go with its salt
-- as one range), and the rows are read and written in key order: a new visitor is one
-- row, one page, and a visitor met all day is never rewritten. The visitor id is the
-- day's salted id the events hold; erasing a visitor deletes their rows here too.
--
-- `uniques` stays for keys whose visitor is not known: those loaded back at start
-- from `unique_keys` past the bound. A key is in at most one of the two tables.
CREATE TABLE visitor_uniques (
    day      INTEGER NOT NULL,
    visitor  INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    keys     BLOB NOT NULL,
    PRIMARY KEY (day, visitor, n)
) WITHOUT ROWID;
