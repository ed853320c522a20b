-- Schema 2: rollups, as the collectors' writers computed them. Each row is a delta
-- (its counters may be negative); SummingMergeTree adds up rows of the same key, and
-- reports sum them anyway, so the numbers are exactly the SQLite backend's. One
-- partition: an insert (one write of derived rows, with its marker row: site 0, dim
-- -1, hour = its number, visitors 1 so it is never summed away) is atomic.
CREATE TABLE IF NOT EXISTS {db}.rollups_local
(
    site_id     Int64,
    dim         Int64,
    hour        Int64,
    value       String,
    visitors    Int64,
    visits      Int64,
    pageviews   Int64,
    events      Int64,
    bounces     Int64,
    duration_ms Int64,
    scroll_sum  Int64,
    scroll_n    Int64,
    engaged_ms  Int64
)
ENGINE = SummingMergeTree((visitors, visits, pageviews, events, bounces, duration_ms, scroll_sum, scroll_n, engaged_ms))
PARTITION BY tuple()
ORDER BY (site_id, dim, hour, value)
;
{rollups_table}
