-- Re-label a recipient's email events of one kind since a time, those with the given
-- verdict (and reason, unless empty). Returns what it changed, so the days already
-- over get a late mark (their kept report numbers are stale).
UPDATE events SET verdict = ?1, verdict_reason = ?2
WHERE campaign_id = ?3 AND recipient = ?4 AND name = ?5 AND ts_ms >= ?6 AND verdict = ?7
  AND (?8 = '' OR verdict_reason = ?8)
RETURNING site_id, ts_ms, id
