-- Schema 3: per-site privacy settings and recorded consent.
ALTER TABLE sites ADD COLUMN privacy_mode TEXT NOT NULL DEFAULT 'anonymous';
ALTER TABLE sites ADD COLUMN honour_gpc INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sites ADD COLUMN honour_dnt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN without_consent TEXT NOT NULL DEFAULT 'aggregate';
ALTER TABLE sites ADD COLUMN retention_days INTEGER;
ALTER TABLE sites ADD COLUMN allow_emails INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN email_mode TEXT NOT NULL DEFAULT 'full';

-- "Deliverability only" email mode: the day of each recipient's last open, overwritten.
CREATE TABLE last_opens (
    site_id   INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    day       INTEGER NOT NULL,
    PRIMARY KEY (site_id, recipient)
);

-- Consent of an email recipient, for one campaign or (campaign_id 0) the whole site.
CREATE TABLE consent (
    site_id     INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    recipient   TEXT NOT NULL,
    granted     INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (site_id, campaign_id, recipient)
);
