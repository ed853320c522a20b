-- Schema 25: what changes in a visit lives in a narrow table of its own.
--
-- The writer writes every visit that had a hit since its last write of derived rows
-- (once a second under load). Those visits lie all over the last half hour of
-- `sessions`, whose rows carry the visit's 14 starting values (~150 bytes, 13 to a 2
-- KiB page), so each write rewrote about half of that region's pages, and moved each
-- visit's entry in `sessions_last` besides: 500 bytes written per event on the
-- realistic mix, the largest part of all. Now `sessions` holds what a visit starts
-- with, written once when it appears (its rows append: ids grow with the start time),
-- and `visit_ends` what moves, about 40 bytes a row. Open visits are found after a
-- restart through their events of the last half hour (`recent_sessions.sql`), so no
-- index is rewritten with every hit.
CREATE TABLE visit_ends (
    id         INTEGER PRIMARY KEY,
    last_ms    INTEGER NOT NULL,
    pageviews  INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    exit_page  TEXT NOT NULL
);
INSERT INTO visit_ends (id, last_ms, pageviews, events, exit_page)
SELECT id, last_ms, pageviews, events, exit_page FROM sessions;
CREATE TABLE sessions_new (
    id            INTEGER PRIMARY KEY,
    site_id       INTEGER NOT NULL,
    visitor_id    INTEGER NOT NULL,
    start_ms      INTEGER NOT NULL,
    entry_page    TEXT NOT NULL,
    source        TEXT NOT NULL,
    referrer_host TEXT NOT NULL,
    medium        TEXT NOT NULL,
    utm_source    TEXT NOT NULL,
    utm_medium    TEXT NOT NULL,
    utm_campaign  TEXT NOT NULL,
    utm_term      TEXT NOT NULL,
    utm_content   TEXT NOT NULL,
    browser       TEXT NOT NULL,
    os            TEXT NOT NULL,
    device        TEXT NOT NULL,
    country       TEXT NOT NULL,
    region        TEXT NOT NULL,
    city          TEXT NOT NULL
);
INSERT INTO sessions_new (id, site_id, visitor_id, start_ms, entry_page, source, referrer_host,
    medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, os, device,
    country, region, city)
SELECT id, site_id, visitor_id, start_ms, entry_page, source, referrer_host, medium, utm_source,
    utm_medium, utm_campaign, utm_term, utm_content, browser, os, device, country, region, city
FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
-- Visits written before session ids grew with the start time (builds before schema 12's
-- week: random ids) cannot be found by id range; retention finds them through this index,
-- which holds those rows only (a new id is its start time << 20 | a sequence), so no
-- write ever touches it.
CREATE INDEX sessions_legacy ON sessions (start_ms) WHERE id >> 20 != max(start_ms, 0);
-- A visit is deleted whole, whatever deletes it (retention, erasure, a removed site):
-- its end goes with its start.
CREATE TRIGGER sessions_end_with_start AFTER DELETE ON sessions
BEGIN
    DELETE FROM visit_ends WHERE id = old.id;
END;
