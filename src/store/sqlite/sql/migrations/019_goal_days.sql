-- Schema 19: wildcard goals counted per whole day, once (`goal_days.rs`).
--
-- A goal with a wildcard (`/docs/*`) has no rollup row: its numbers come from the raw
-- events. A day that is over does not change unless events are written for it late (an
-- import, a back-dated drop-in hit, a commit just after midnight) or removed (retention,
-- erasure, a removed site), so its numbers are kept here the first time a report needs
-- them, with the newest late event id the count saw.
CREATE TABLE goal_days (
    site_id      INTEGER NOT NULL,
    pattern      TEXT NOT NULL,     -- Pattern::to_string: 'page:/docs/*'
    day          INTEGER NOT NULL,  -- UTC day number
    completions  INTEGER NOT NULL,
    visitors     INTEGER NOT NULL,
    through_id   INTEGER NOT NULL,  -- late_events.max_id when counted (0: none)
    PRIMARY KEY (site_id, pattern, day)
) WITHOUT ROWID;

-- Per site and day: the newest event id written when the day was already over. A
-- goal_days row counted before it is stale.
CREATE TABLE late_events (
    site_id  INTEGER NOT NULL,
    day      INTEGER NOT NULL,
    max_id   INTEGER NOT NULL,
    PRIMARY KEY (site_id, day)
) WITHOUT ROWID;
