-- Schema 6: ads and conversions. Ad impressions and clicks share `campaign_id` with
-- email events (their `verdict` is empty); a campaign may carry its cost.
ALTER TABLE events ADD COLUMN ad TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN placement TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN cost_minor INTEGER;
ALTER TABLE campaigns ADD COLUMN cost_currency TEXT NOT NULL DEFAULT '';

-- Order ids of counted conversions, for deduplication by (site, order id).
CREATE TABLE orders (
    site_id   INTEGER NOT NULL,
    order_id  TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    PRIMARY KEY (site_id, order_id)
) WITHOUT ROWID;

-- Goals: an event name or a page path pattern (`*` matches anything).
CREATE TABLE goals (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('event', 'page')),
    pattern     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    UNIQUE (site_id, name)
);

-- Attribution reads only clicks, conversions and page views with a click id: a partial
-- index keeps that read small, and costs nothing on the ordinary page views.
CREATE INDEX events_touches ON events (site_id, ts_ms)
    WHERE click_id != '' OR name IN ('conversion', 'email_click');
