-- Sessions still open (last event within the timeout), to resume them after a restart.
-- They are found through their events of that time: an index on a visit's last time
-- would be rewritten with every write of the visit (schema 25).
WHERE s.id IN (SELECT session_id FROM events
               WHERE site_id IN (SELECT id FROM sites) AND ts_ms >= ?1 AND session_id != 0)
  AND COALESCE(v.last_ms, s.start_ms) >= ?1
