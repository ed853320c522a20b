-- What a session started with (schema 25), written once when it appears. A visit that
-- began with a custom event gets its entry page with its first page view: only then is
-- the row written again. What moves goes to `visit_ends` (`upsert_visit_end.sql`).
INSERT INTO sessions (
    id, site_id, visitor_id, start_ms, entry_page, source, referrer_host, medium,
    utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, os, device,
    country, region, city
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
ON CONFLICT (id) DO UPDATE SET entry_page = excluded.entry_page
    WHERE entry_page != excluded.entry_page
