-- Re-label a recipient's human email events of one kind since a time.
UPDATE events SET verdict = ?1, verdict_reason = ?2
WHERE campaign_id = ?3 AND recipient = ?4 AND name = ?5 AND ts_ms >= ?6 AND verdict = 'human'
