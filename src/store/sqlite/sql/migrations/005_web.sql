-- Schema 5: what the JS tracker adds: scroll depth and engaged time, per event and in the
-- rollups; the hostnames a site's pages may send events from.
ALTER TABLE events ADD COLUMN scroll_pct INTEGER;
ALTER TABLE events ADD COLUMN engaged_ms INTEGER;
ALTER TABLE events ADD COLUMN screen_width INTEGER;
ALTER TABLE rollups ADD COLUMN scroll_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN scroll_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN engaged_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN hosts TEXT NOT NULL DEFAULT '';
