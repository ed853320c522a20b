-- Visits without a `sessions` row, selected as `session_rows.sql` selects the others: a
-- visit whose first hit is still the only event naming it is not written
-- (`Open::hand_over` in `ingest/sessions.rs`). Its start is that event, and it ends
-- where it starts (`SessionRow::ends_at_start`). Only events whose derived rows are
-- written count: an event still in `unindexed` is replayed, and its visit with it.
SELECT e.session_id, e.site_id, e.visitor_id, e.ts_ms, e.ts_ms,
       e.name = 'pageview', 1,
       CASE WHEN e.name = 'pageview' THEN e.path ELSE '' END,
       CASE WHEN e.name = 'pageview' THEN e.path ELSE '' END,
       e.source, e.referrer_host, e.medium, e.utm_source, e.utm_medium, e.utm_campaign,
       e.utm_term, e.utm_content, e.browser, e.os, e.device, e.country, e.region, e.city
FROM events e
WHERE e.session_id != 0 AND e.bot IS NULL
  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = e.session_id)
  AND NOT EXISTS (SELECT 1 FROM unindexed u WHERE e.id BETWEEN u.from_id AND u.to_id)
