-- Site totals per bucket of ?4 hours.
SELECT (hour - ?2) / ?4 * ?4 + ?2 AS bucket, SUM(visitors), SUM(visits), SUM(pageviews),
       SUM(events), SUM(bounces), SUM(duration_ms), SUM(scroll_sum), SUM(scroll_n), SUM(engaged_ms)
FROM rollups
WHERE site_id = ?1 AND dim = 0 AND hour >= ?2 AND hour < ?3
GROUP BY bucket
ORDER BY bucket
