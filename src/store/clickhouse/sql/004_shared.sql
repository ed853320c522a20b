-- Schema 4: the installation's shared state, published by the admin (`serve --role
-- admin`) and applied by every collector (`--role collector`): one row per table per
-- change, its body the table's rows as JSON (see store/sqlite/shared.rs), version the
-- admin's clock when it changed. ReplacingMergeTree keeps the newest body of each
-- table as parts merge (the admin forces a merge after a salt is destroyed, so the
-- old salt does not linger in an old row); readers take argMax(body, version). Only
-- the server at store.url holds rows.
CREATE TABLE IF NOT EXISTS {db}.shared
(
    kind     String,
    version  UInt64,
    body     String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY kind
;
-- Consent recorded on a collector (a recipient withdrawing from an email's link), for
-- the admin to take in and publish to every collector; the newer choice wins, so a row
-- taken in twice changes nothing.
CREATE TABLE IF NOT EXISTS {db}.consent_changes
(
    site_id     Int64,
    campaign_id Int64,
    recipient   String,
    granted     UInt8,
    updated_ms  Int64
)
ENGINE = MergeTree
ORDER BY updated_ms
