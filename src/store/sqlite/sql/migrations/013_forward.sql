-- Schema 13: forwarding to ClickHouse (store.backend = "clickhouse").
--
-- The events table is the spool forwarding reads, so an event id must never be given
-- out twice: with a plain INTEGER PRIMARY KEY, erasing the newest events would hand
-- their ids to the next ones, below what was already shipped (never forwarded) and
-- equal to rows ClickHouse already holds. AUTOINCREMENT needs a rebuilt table; ids
-- are kept.
CREATE TABLE events_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
    , campaign_id INTEGER, recipient TEXT NOT NULL DEFAULT '', link TEXT NOT NULL DEFAULT '', verdict TEXT NOT NULL DEFAULT '', verdict_reason TEXT NOT NULL DEFAULT '', email_client TEXT NOT NULL DEFAULT '', scroll_pct INTEGER, engaged_ms INTEGER, screen_width INTEGER, ad TEXT NOT NULL DEFAULT '', placement TEXT NOT NULL DEFAULT '', country TEXT NOT NULL DEFAULT '');
INSERT INTO events_new (id, site_id, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country)
SELECT id, site_id, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_site_ts ON events (site_id, ts_ms);
CREATE INDEX events_campaign ON events (campaign_id, recipient, ts_ms) WHERE campaign_id IS NOT NULL;
CREATE INDEX events_touches ON events (site_id, ts_ms)
    WHERE click_id != '' OR name IN ('conversion', 'email_click');

-- How far the spool has been shipped. One row, written when forwarding first starts:
-- collector_id is this installation's id in ClickHouse (event ids are
-- collector_id << 40 | events.id); every event with id <= shipped_to is in ClickHouse.
CREATE TABLE forward_state (
    one           INTEGER PRIMARY KEY CHECK (one = 1),
    collector_id  INTEGER NOT NULL,
    shipped_to    INTEGER NOT NULL
);

-- The batch being shipped, sealed before its first attempt: the events with ids in
-- [from_id, to_id], all of one month (one ClickHouse partition, so one insert per shard
-- is atomic). seq numbers its marker rows and is never reused; attempts > 0 means an
-- earlier attempt may have landed, so markers are checked before sending again;
-- shards_done has a bit per shard whose part landed.
CREATE TABLE forward_batch (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    from_id      INTEGER NOT NULL,
    to_id        INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    shards_done  INTEGER NOT NULL DEFAULT 0
);

-- Changes ClickHouse must follow, in order. op 'delete': erasure, retention, removed
-- sites and campaigns (the non-NULL fields of site_id, visitor_id, recipient,
-- campaign_id and before_ms are ANDed; recipient also requires a campaign). op
-- 'relabel': an email verdict corrected after the fact (campaign_id, recipient, name,
-- from_ms select the human events relabelled verdict/reason). Written in the same
-- transaction as the local change, and only once forwarding has started (forward_state
-- has its row): before that ClickHouse holds nothing. The forwarder runs them between
-- batches — after every batch that may hold the rows — then deletes them here.
CREATE TABLE forward_changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    op           TEXT NOT NULL,
    site_id      INTEGER,
    visitor_id   INTEGER,
    recipient    TEXT,
    campaign_id  INTEGER,
    before_ms    INTEGER,
    name         TEXT,
    from_ms      INTEGER,
    verdict      TEXT,
    reason       TEXT,
    rollups_before_hour INTEGER     -- delete: also the site's rollup rows before this hour
);

-- Rollup deltas ClickHouse must add (its rollups table sums them): the writer records
-- every write of derived rows here, in the same transaction, once forwarding has
-- started; the first row is the snapshot of the whole rollups table taken when it
-- started. body packs the rows (see store/sqlite/spool.rs); attempts as for batches.
CREATE TABLE forward_rollups (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    body      BLOB NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0
);
