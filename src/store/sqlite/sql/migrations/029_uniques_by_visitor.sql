-- Schema 29: the unique-visitor keys the writer's memory has no room for
-- (ingest.max_unique_keys) are kept by visitor.
--
-- `uniques` was keyed by the key alone, a random 64-bit hash, with an index by day
-- beside it: past the memory bound every new key of a hit dirtied a page of each of
-- the two B-trees, at random, so a new visitor's ten keys dirtied about twenty pages,
-- and the writer's page cache, far smaller than the trees, spilled and re-read them
-- (a third of the writer's time, 3.9 KB written an event; docs/benchmarks.md). Here a
-- visitor's keys are adjacent, the day leads (a day's keys go with its salt as one
-- range), and each write of derived rows inserts its keys in key order: a new visitor
-- dirties one page. The visitor id is the day's salted id the events hold; erasing a
-- visitor deletes their rows here too.
--
-- `uniques` stays for keys whose visitor is not known: those loaded back at start
-- from `unique_keys` past the bound. A key is in at most one of the two tables.
CREATE TABLE visitor_uniques (
    day      INTEGER NOT NULL,
    visitor  INTEGER NOT NULL,
    key      INTEGER NOT NULL,
    PRIMARY KEY (day, visitor, key)
) WITHOUT ROWID;
