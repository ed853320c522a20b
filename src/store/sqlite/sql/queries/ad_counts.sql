-- Ad impressions and clicks of a site (or of one campaign, ?4), per campaign, ad and kind.
SELECT campaign_id, ad, name, bot IS NOT NULL, COUNT(*)
FROM events
WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
  AND campaign_id IS NOT NULL AND verdict = ''
  AND (?4 IS NULL OR campaign_id = ?4)
GROUP BY campaign_id, ad, name, bot IS NOT NULL
ORDER BY campaign_id, ad, name
