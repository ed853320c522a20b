-- Top values of one dimension over an hour range. Values whose deltas cancel out (an exit page
-- every visit moved on from) have no row, as in ClickHouse (`NONZERO`).
SELECT value, SUM(visitors), SUM(visits), SUM(pageviews), SUM(events), SUM(bounces), SUM(duration_ms),
       SUM(scroll_sum), SUM(scroll_n), SUM(engaged_ms)
FROM rollups
WHERE site_id = ?1 AND dim = ?2 AND hour >= ?3 AND hour < ?4
GROUP BY value
HAVING SUM(visitors) != 0 OR SUM(visits) != 0 OR SUM(pageviews) != 0 OR SUM(events) != 0
    OR SUM(bounces) != 0 OR SUM(duration_ms) != 0 OR SUM(scroll_sum) != 0 OR SUM(scroll_n) != 0
    OR SUM(engaged_ms) != 0
ORDER BY SUM(visitors) DESC, SUM(pageviews) DESC, SUM(events) DESC, SUM(visits) DESC, value
LIMIT ?5
