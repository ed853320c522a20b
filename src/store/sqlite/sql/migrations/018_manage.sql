-- Schema 18: what the dashboard manages, and how a running server learns of changes.
--
-- `settings_version` is one counter that every change to `sites` bumps, whoever makes it
-- (the CLI in another process, the API, the dashboard, the replicator): a serving
-- process reads this one row to know whether its site cache is stale, instead of
-- reading every site (`collect/sites.rs`).
CREATE TABLE settings_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   INTEGER NOT NULL
);
INSERT INTO settings_version (id, n) VALUES (1, 0);
CREATE TRIGGER sites_changed_insert AFTER INSERT ON sites
BEGIN UPDATE settings_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sites_changed_update AFTER UPDATE ON sites
BEGIN UPDATE settings_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sites_changed_delete AFTER DELETE ON sites
BEGIN UPDATE settings_version SET n = n + 1 WHERE id = 1; END;

-- Saved funnels of a site: ordered steps (patterns as `Pattern::to_string` writes them,
-- one per line) and `within` ('visit' or a number of days).
CREATE TABLE funnels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    steps       TEXT NOT NULL,
    within      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    UNIQUE (site_id, name)
);

-- A share link's URL can be shown again to admins. The secret only grants reading the
-- reports of one site, which anyone who can read this file can read anyway; links made
-- before schema 18 keep only their hash (NULL here).
ALTER TABLE share_links ADD COLUMN secret TEXT;
