-- Sessions as the writer holds them (`SessionRow`): id, site, visitor, start, last,
-- page views, events, entry and exit page, then the `SESSION_DIMS` values. A visit of
-- one hit has no `visit_ends` row: it ends where it starts (`SessionRow::ends_at_start`).
SELECT s.id, s.site_id, s.visitor_id, s.start_ms,
       COALESCE(v.last_ms, s.start_ms) AS last_ms,
       COALESCE(v.pageviews, s.entry_page != '') AS pageviews,
       COALESCE(v.events, 1) AS events,
       s.entry_page, COALESCE(v.exit_page, s.entry_page) AS exit_page, s.source, s.referrer_host,
       s.medium, s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term, s.utm_content,
       s.browser, s.os, s.device, s.country, s.region, s.city
FROM sessions s LEFT JOIN visit_ends v ON v.id = s.id
