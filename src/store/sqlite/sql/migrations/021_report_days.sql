-- Schema 21: numbers of whole past days that reports keep (`report_days.rs`).
--
-- Conversions are credited at report time from the raw touches of the range and its
-- lookback (200,000 rows a month at 10 M events: 88 % of the dashboard's site page).
-- A day that is over keeps its credits unless an event of its window (the day and the
-- `reach` days before it) is written late or removed, so they are kept here the first
-- time a report needs them, with the sum of the window's late marks (`late_events`)
-- when counted: a mark that grows makes the sum grow, and the day is counted again.
CREATE TABLE report_days (
    site_id  INTEGER NOT NULL,
    key      TEXT NOT NULL,     -- what and how: 'conversions:last_click:30'
    day      INTEGER NOT NULL,  -- UTC day number
    reach    INTEGER NOT NULL,  -- days before `day` whose events the numbers read
    body     TEXT NOT NULL,     -- the numbers, JSON
    through  INTEGER NOT NULL,  -- sum of late_events.max_id over [day - reach, day]
    PRIMARY KEY (site_id, key, day)
) WITHOUT ROWID;
