-- Re-label a recipient's email events of one kind since a time, those with the given
-- verdict (and reason, unless empty). Returns what it changed, so the days already
-- over get a late mark (their kept report numbers are stale). The last condition is
-- `events_recipient`'s (schema 27), repeated so that SQLite reads that index: every
-- re-labelling is of clicks, or of opens labelled human (`store::Reclassify`).
-- `name IS ?5`, not `name = ?5` (the same for a NOT NULL column): SQLite would compare
-- `name = ?5` with the index's `name = 'email_click'` by ?5's value and prepare the
-- statement again at each binding.
UPDATE events SET verdict = ?1, verdict_reason = ?2
WHERE campaign_id = ?3 AND recipient = ?4 AND name IS ?5 AND ts_ms >= ?6 AND verdict = ?7
  AND (?8 = '' OR verdict_reason = ?8)
  AND (name = 'email_click' OR verdict IN ('human', 'gmail_proxy', 'yahoo_proxy', 'other_proxy'))
RETURNING site_id, ts_ms, id
