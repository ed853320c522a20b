-- Schema 26: wildcard goals counted per whole hour of the days not settled yet
-- (today, and yesterday in its first hour), once (`goal_days.rs`).
--
-- A report's today was the raw events since midnight, counted again on every load:
-- at 10 M events a month, 128 of the site page's 228 ms at 17:00, growing through the
-- day. An hour that ended five minutes ago no longer changes unless events are written
-- for it late (the writer marks its day in `late_events` then, as for days over) or
-- removed; its completions and the ids of its distinct visitors (8-byte little-endian
-- integers, ascending) are kept here, since the visitors of a day are the union of
-- its hours' and not their sum. Rows of days before yesterday are let go.
CREATE TABLE goal_hours (
    site_id      INTEGER NOT NULL,
    pattern      TEXT NOT NULL,     -- Pattern::to_string: 'page:/docs/*'
    hour         INTEGER NOT NULL,  -- hours since the epoch, UTC
    completions  INTEGER NOT NULL,
    visitors     BLOB NOT NULL,
    through_id   INTEGER NOT NULL,  -- late_events.max_id of its day when counted (0: none)
    PRIMARY KEY (site_id, pattern, hour)
) WITHOUT ROWID;
