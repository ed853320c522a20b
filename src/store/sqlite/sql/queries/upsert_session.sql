-- A session's row after its latest event. A visit that began with a custom event gets
-- its entry page with its first page view, so the entry page is updated too.
INSERT INTO sessions (
    id, site_id, visitor_id, start_ms, last_ms, pageviews, events, entry_page, exit_page,
    source, referrer_host, medium, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, browser, os, device, country, region, city
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
          ?22, ?23)
ON CONFLICT (id) DO UPDATE SET
    last_ms = excluded.last_ms,
    pageviews = excluded.pageviews,
    events = excluded.events,
    entry_page = excluded.entry_page,
    exit_page = excluded.exit_page
