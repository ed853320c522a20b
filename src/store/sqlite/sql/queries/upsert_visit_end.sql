-- Where a session stands after its latest event (schema 25).
INSERT INTO visit_ends (id, last_ms, pageviews, events, exit_page)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (id) DO UPDATE SET
    last_ms = excluded.last_ms,
    pageviews = excluded.pageviews,
    events = excluded.events,
    exit_page = excluded.exit_page
