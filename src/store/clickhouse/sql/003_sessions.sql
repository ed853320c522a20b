-- Schema 3: visits, as the collectors' writers keep them (the SQLite backend's
-- `sessions` table): filtered reports read an event's visit for its session-level
-- dimensions, entry and exit page, length and event count. A collector sends a
-- visit's row again whenever it changes; `version` is the number of the write that
-- sent it (later writes, higher numbers), so ReplacingMergeTree keeps the newest and
-- reads take it with FINAL. Session ids are unique per collector only: the key holds
-- the collector (an event's collector is its event_id >> 40). A visitor's visits sit on
-- the shard that holds the visitor's events, so the join stays on one shard.
CREATE TABLE IF NOT EXISTS {db}.sessions_local
(
    collector     UInt64,
    id            Int64,
    version       UInt64,
    site_id       Int64,
    visitor_id    Int64,
    start_ms      Int64,
    last_ms       Int64,
    pageviews     Int64,
    events        Int64,
    entry_page    String,
    exit_page     String,
    source        String,
    referrer_host String,
    medium        String,
    utm_source    String,
    utm_medium    String,
    utm_campaign  String,
    utm_term      String,
    utm_content   String,
    browser       String,
    os            String,
    device        String,
    country       String
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY (site_id, collector, id)
