-- Schema 22: the touches of one visitor or one click id, found without a scan.
--
-- Today's conversions are credited from today's touches and, of the lookback (30 days
-- by default), only the touches they can join: their visitors' and those carrying a
-- click id they or their landing pages carry (`report::ads::credited_part`). Reading
-- those from `events_touches` is a scan of the whole lookback (600,000 rows a month on
-- a busy site); with these, one seek per visitor and click id. Both hold the touches
-- only (the condition of `events_touches`), so writes barely change.
CREATE INDEX events_touch_visitors ON events (site_id, visitor_id, ts_ms)
WHERE click_id != '' OR name IN ('conversion', 'email_click');
CREATE INDEX events_touch_click_ids ON events (site_id, click_id, ts_ms)
WHERE click_id != '' OR name IN ('conversion', 'email_click');
