-- Schema 2: email campaigns, token keys, and the email fields of events.
CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    sent_ms     INTEGER,
    delivered   INTEGER
);
CREATE INDEX campaigns_site ON campaigns (site_id);

-- Master keys for signed tokens; the highest id signs, all verify.
CREATE TABLE token_keys (
    id          INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 255),
    key         BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

ALTER TABLE events ADD COLUMN campaign_id INTEGER;
ALTER TABLE events ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN link TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN verdict_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN email_client TEXT NOT NULL DEFAULT '';
CREATE INDEX events_campaign ON events (campaign_id, recipient, ts_ms) WHERE campaign_id IS NOT NULL;
