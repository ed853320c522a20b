-- Schema 1: one row per stored hit. {db} is the configured database (quoted); the
-- engine line is chosen by pixeltrack: ReplacingMergeTree(version) on a single server
-- and on each shard of a cluster. Statements are separated by lines holding only ";".
-- Only types and clauses that ClickHouse 18.16 and current versions both accept
-- (no LowCardinality, DateTime64, Map, CODEC, TTL or skip indexes).
--
-- event_id = (collector id << 40) | the event's id in that collector's spool, so a
-- re-sent batch carries the same ids. site_id 0 holds one marker row per shipped
-- batch (event_id = its marker id): the proof that the batch landed.
CREATE TABLE IF NOT EXISTS {db}.events_local
(
    event_id        UInt64,
    version         UInt32,
    site_id         Int64,
    ts              DateTime,
    ts_ms           UInt16,
    name            String,
    visitor_id      Int64,
    session_id      Int64,
    host            String,
    path            String,
    query           String,
    title           String,
    referrer        String,
    referrer_host   String,
    source          String,
    medium          String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
    click_id        String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String,
    device          String,
    bot             String,
    value_minor     Nullable(Int64),
    currency        String,
    order_id        String,
    props           String,
    ip              String,
    campaign_id     Nullable(Int64),
    recipient       String,
    link            String,
    verdict         String,
    verdict_reason  String,
    email_client    String,
    scroll_pct      Nullable(Int64),
    engaged_ms      Nullable(Int64),
    screen_width    Nullable(Int64),
    ad              String,
    placement       String,
    country         String
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), event_id)
;
-- What reports read: the local table on a single server, a Distributed table over
-- every shard's events_local on a cluster ({events_engine}).
{events_table}
