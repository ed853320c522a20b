-- Schema 6: each event carries how its visit started — entry page, source, referrer,
-- medium, UTM tags, browser, OS, device, country, region, city: what never changes
-- within a visit — so filtered reports filter and group by the visit's values without
-- joining the visits. The forwarder writes them from the collector's visit (it ships
-- only events whose visit is written); `visit_found` 0 means no visit was known (the
-- event's own values stand in, as on SQLite). One ADD COLUMN a statement: `migrate`
-- skips one whose column is there (18.16 has no ADD COLUMN IF NOT EXISTS).
ALTER TABLE {db}.events_local ADD COLUMN visit_found UInt8 DEFAULT 0
;
ALTER TABLE {db}.events_local ADD COLUMN visit_entry_page String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_source String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_referrer_host String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_medium String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_utm_source String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_utm_medium String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_utm_campaign String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_utm_term String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_utm_content String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_browser String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_os String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_device String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_country String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_region String DEFAULT ''
;
ALTER TABLE {db}.events_local ADD COLUMN visit_city String DEFAULT ''
;
-- Events shipped before schema 6 get their visits' values: written again with the
-- next version (ReplacingMergeTree keeps it), then merged so no read sees both. The
-- values never change within a visit, so any row of it will do (no argMax). The
-- statement runs once per slice of visitors, `{slice}` = 0 to 15, so each join's
-- table stays small. A slice done twice (a migration interrupted and run again) writes
-- the same rows again, which the merge drops.
INSERT INTO {db}.events_local (event_id, version, site_id, ts, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country, region, city, asn, as_org, visit_found, visit_entry_page, visit_source, visit_referrer_host, visit_medium, visit_utm_source, visit_utm_medium, visit_utm_campaign, visit_utm_term, visit_utm_content, visit_browser, visit_os, visit_device, visit_country, visit_region, visit_city)
SELECT event_id, toUInt32(version + 1), site_id, ts, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country, region, city, asn, as_org, toUInt8(1), s_entry_page, s_source, s_referrer_host, s_medium, s_utm_source, s_utm_medium, s_utm_campaign, s_utm_term, s_utm_content, s_browser, s_os, s_device, s_country, s_region, s_city
FROM {db}.events_local
ANY INNER JOIN (
    SELECT id AS session_id, visitor_id, entry_page AS s_entry_page, source AS s_source, referrer_host AS s_referrer_host, medium AS s_medium, utm_source AS s_utm_source, utm_medium AS s_utm_medium, utm_campaign AS s_utm_campaign, utm_term AS s_utm_term, utm_content AS s_utm_content, browser AS s_browser, os AS s_os, device AS s_device, country AS s_country, region AS s_region, city AS s_city
    FROM {db}.sessions_local WHERE cityHash64(visitor_id) % 16 = {slice}
) USING (session_id, visitor_id)
WHERE site_id != 0 AND session_id != 0 AND visit_found = 0 AND cityHash64(visitor_id) % 16 = {slice}
;
OPTIMIZE TABLE {db}.events_local FINAL
;
-- The read table again, with the new columns.
DROP TABLE IF EXISTS {db}.events
;
{events_table}
