-- Sessions as the writer holds them (`SessionRow`): id, site, visitor, start, last,
-- page views, events, entry and exit page, then the `SESSION_DIMS` values.
SELECT s.id, s.site_id, s.visitor_id, s.start_ms, v.last_ms, v.pageviews, v.events,
       s.entry_page, v.exit_page, s.source, s.referrer_host, s.medium, s.utm_source,
       s.utm_medium, s.utm_campaign, s.utm_term, s.utm_content, s.browser, s.os, s.device,
       s.country, s.region, s.city
FROM visit_ends v JOIN sessions s ON s.id = v.id
