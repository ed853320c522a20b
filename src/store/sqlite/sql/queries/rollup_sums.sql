-- Top values of one dimension over an hour range.
SELECT value, SUM(visitors), SUM(visits), SUM(pageviews), SUM(events), SUM(bounces), SUM(duration_ms),
       SUM(scroll_sum), SUM(scroll_n), SUM(engaged_ms)
FROM rollups
WHERE site_id = ?1 AND dim = ?2 AND hour >= ?3 AND hour < ?4
GROUP BY value
ORDER BY SUM(visitors) DESC, SUM(pageviews) DESC, SUM(events) DESC, SUM(visits) DESC, value
LIMIT ?5
