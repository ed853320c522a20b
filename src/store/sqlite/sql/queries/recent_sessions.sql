-- Sessions still open (last event within the timeout), to resume them after a restart.
SELECT id, site_id, visitor_id, start_ms, last_ms, pageviews, events, entry_page, exit_page,
       source, referrer_host, medium, utm_source, utm_medium, utm_campaign, utm_term,
       utm_content, browser, os, device, country, region, city
FROM sessions
WHERE last_ms >= ?1
