-- What attribution joins, oldest first: human ad clicks and email clicks, page views
-- carrying one of our click ids, and conversions (bots excluded throughout). The
-- first OR term repeats the partial indexes' condition so they are used. `/*key*/`
-- is empty for a range's every touch, or narrows it to one visitor or click id
-- (`AND visitor_id = ?4`, `AND click_id = ?4`), with `/*index*/` naming the index of
-- schema 22 to seek in (`INDEXED BY …`: without it the planner scans the covering
-- `events_touches` over the range, not knowing the key is selective).
SELECT ts_ms, name, visitor_id, click_id, campaign_id, ad, value_minor, currency, id
FROM events /*index*/
WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 /*key*/
  AND (click_id != '' OR name IN ('conversion', 'email_click'))
  AND bot IS NULL
  AND (
        (name = 'ad_click' AND verdict = '')
     OR (name = 'email_click' AND verdict = 'human')
     OR name = 'conversion'
     OR (campaign_id IS NULL AND click_id LIKE 'ptclid:%')
  )
ORDER BY ts_ms, id
