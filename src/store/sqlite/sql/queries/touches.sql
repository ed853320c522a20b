-- What attribution joins, oldest first: human ad clicks and email clicks, page views
-- carrying one of our click ids, and conversions (bots excluded throughout). The
-- first OR term repeats the partial index's condition so the index is used.
SELECT ts_ms, name, visitor_id, click_id, campaign_id, ad, value_minor, currency
FROM events
WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
  AND (click_id != '' OR name IN ('conversion', 'email_click'))
  AND bot IS NULL
  AND (
        (name = 'ad_click' AND verdict = '')
     OR (name = 'email_click' AND verdict = 'human')
     OR name = 'conversion'
     OR (campaign_id IS NULL AND click_id LIKE 'ptclid:%')
  )
ORDER BY ts_ms, id
