-- Schema 10: site and campaign ids are never reused. Signed email and ad links carry
-- them, and so do API tokens: with plain INTEGER PRIMARY KEY a new site could take the
-- id of a removed one and inherit its tokens and old links. AUTOINCREMENT needs a
-- rebuilt table; the sequence starts past every id ever seen anywhere.
CREATE TABLE sites_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL UNIQUE,
    domain           TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    privacy_mode     TEXT NOT NULL DEFAULT 'anonymous',
    honour_gpc       INTEGER NOT NULL DEFAULT 1,
    honour_dnt       INTEGER NOT NULL DEFAULT 0,
    without_consent  TEXT NOT NULL DEFAULT 'aggregate',
    retention_days   INTEGER,
    allow_emails     INTEGER NOT NULL DEFAULT 0,
    email_mode       TEXT NOT NULL DEFAULT 'full',
    hosts            TEXT NOT NULL DEFAULT ''
);
INSERT INTO sites_new (id, key, domain, name, created_ms, privacy_mode, honour_gpc, honour_dnt,
                       without_consent, retention_days, allow_emails, email_mode, hosts)
SELECT id, key, domain, name, created_ms, privacy_mode, honour_gpc, honour_dnt,
       without_consent, retention_days, allow_emails, email_mode, hosts
FROM sites;
DROP TABLE sites;
ALTER TABLE sites_new RENAME TO sites;

CREATE TABLE campaigns_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    sent_ms        INTEGER,
    delivered      INTEGER,
    cost_minor     INTEGER,
    cost_currency  TEXT NOT NULL DEFAULT ''
);
INSERT INTO campaigns_new (id, site_id, name, created_ms, sent_ms, delivered, cost_minor, cost_currency)
SELECT id, site_id, name, created_ms, sent_ms, delivered, cost_minor, cost_currency FROM campaigns;
DROP TABLE campaigns;
ALTER TABLE campaigns_new RENAME TO campaigns;
CREATE INDEX campaigns_site ON campaigns (site_id);

DELETE FROM sqlite_sequence WHERE name IN ('sites', 'campaigns');
INSERT INTO sqlite_sequence (name, seq) SELECT 'sites', MAX(
    (SELECT IFNULL(MAX(id), 0) FROM sites),
    (SELECT IFNULL(MAX(site_id), 0) FROM events),
    (SELECT IFNULL(MAX(site_id), 0) FROM campaigns),
    (SELECT IFNULL(MAX(site_id), 0) FROM api_tokens),
    (SELECT IFNULL(MAX(site_id), 0) FROM share_links),
    (SELECT IFNULL(MAX(site_id), 0) FROM user_sites));
INSERT INTO sqlite_sequence (name, seq) SELECT 'campaigns', MAX(
    (SELECT IFNULL(MAX(id), 0) FROM campaigns),
    (SELECT IFNULL(MAX(campaign_id), 0) FROM events),
    (SELECT IFNULL(MAX(campaign_id), 0) FROM consent));

-- Tokens left behind by removed sites, including those a reused id handed to a newer
-- site (created before the site they now point at).
DELETE FROM api_tokens
WHERE site_id IS NOT NULL
  AND (site_id NOT IN (SELECT id FROM sites)
       OR created_ms < (SELECT created_ms FROM sites WHERE sites.id = api_tokens.site_id));
DELETE FROM share_links
WHERE site_id NOT IN (SELECT id FROM sites)
   OR created_ms < (SELECT created_ms FROM sites WHERE sites.id = share_links.site_id);
