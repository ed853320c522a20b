INSERT INTO rollups (site_id, dim, hour, value, visitors, visits, pageviews, events, bounces, duration_ms,
                     scroll_sum, scroll_n, engaged_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT (site_id, dim, hour, value) DO UPDATE SET
    visitors = visitors + excluded.visitors,
    visits = visits + excluded.visits,
    pageviews = pageviews + excluded.pageviews,
    events = events + excluded.events,
    bounces = bounces + excluded.bounces,
    duration_ms = duration_ms + excluded.duration_ms,
    scroll_sum = scroll_sum + excluded.scroll_sum,
    scroll_n = scroll_n + excluded.scroll_n,
    engaged_ms = engaged_ms + excluded.engaged_ms
