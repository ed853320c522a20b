-- Schema 1: sites, raw events, sessions, hourly rollups, unique-visitor keys, salts.
CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- Raw events. No IP column is ever filled unless `store_ip` is on; no user agent at all.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    site_id          INTEGER NOT NULL,
    ts_ms            INTEGER NOT NULL,
    name             TEXT NOT NULL,
    visitor_id       INTEGER NOT NULL,
    session_id       INTEGER NOT NULL,
    host             TEXT NOT NULL,
    path             TEXT NOT NULL,
    query            TEXT NOT NULL,
    title            TEXT NOT NULL,
    referrer         TEXT NOT NULL,
    referrer_host    TEXT NOT NULL,
    source           TEXT NOT NULL,
    medium           TEXT NOT NULL,
    utm_source       TEXT NOT NULL,
    utm_medium       TEXT NOT NULL,
    utm_campaign     TEXT NOT NULL,
    utm_term         TEXT NOT NULL,
    utm_content      TEXT NOT NULL,
    click_id         TEXT NOT NULL,
    browser          TEXT NOT NULL,
    browser_version  TEXT NOT NULL,
    os               TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    device           TEXT NOT NULL,
    bot              TEXT,
    value_minor      INTEGER,
    currency         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    props            TEXT NOT NULL,
    ip               TEXT
);
-- One index only: every index is paid on every pixel hit (see docs/benchmarks.md).
CREATE INDEX events_site_ts ON events (site_id, ts_ms);

-- One row per session, updated as its events arrive.
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    site_id       INTEGER NOT NULL,
    visitor_id    INTEGER NOT NULL,
    start_ms      INTEGER NOT NULL,
    last_ms       INTEGER NOT NULL,
    pageviews     INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    entry_page    TEXT NOT NULL,
    exit_page     TEXT NOT NULL,
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
    device        TEXT NOT NULL
);
CREATE INDEX sessions_last ON sessions (last_ms);

-- Hourly rollups, written in the same transaction as the events they count.
-- dim 0 is the site total (value ''); see store::Dim for the others.
CREATE TABLE rollups (
    site_id     INTEGER NOT NULL,
    dim         INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    value       TEXT NOT NULL,
    visitors    INTEGER NOT NULL DEFAULT 0,
    visits      INTEGER NOT NULL DEFAULT 0,
    pageviews   INTEGER NOT NULL DEFAULT 0,
    events      INTEGER NOT NULL DEFAULT 0,
    bounces     INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, dim, hour, value)
) WITHOUT ROWID;

-- Keys (64-bit hashes) of visitors already counted on a rollup row's day.
CREATE TABLE uniques (
    key INTEGER PRIMARY KEY,
    day INTEGER NOT NULL
);
CREATE INDEX uniques_day ON uniques (day);

-- Visitor salts: one random salt per UTC day, deleted after the day plus a grace.
CREATE TABLE salts (
    day  INTEGER PRIMARY KEY,
    salt BLOB NOT NULL
);
