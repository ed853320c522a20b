-- `OR FAIL`: a failed row fails the statement without undoing its rows before it, so
-- SQLite keeps no statement journal (a copy of every page the statement touches, made
-- before it touches it). The writer never goes on after a failed statement: the whole
-- transaction rolls back (`SqliteWriter::apply_imported`).
INSERT OR FAIL INTO events (
    id, site_id, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer,
    referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, click_id, browser, browser_version, os, os_version, device, bot,
    value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict,
    verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country,
    region, city, asn, as_org
) VALUES (
    ?47, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
    ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36,
    ?37, ?38, ?39, ?40, ?41, ?42, ?43, ?44, ?45, ?46
)
