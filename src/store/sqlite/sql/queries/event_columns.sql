SELECT site_id, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer,
       referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term,
       utm_content, click_id, browser, browser_version, os, os_version, device, bot,
       value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict,
       verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country,
       region, city, asn, as_org
FROM events
