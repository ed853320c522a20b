#!/usr/bin/env python3
"""What SQLite's part of the indexer's events INSERT costs, by schema: prints an SQL script
for the sqlite3 shell that copies 491,520 page views (2,000 pages and titles, a third from a
search engine, a seventh with UTM tags) from a temporary table into a freshly migrated
database's `events`, 8,192 rows a transaction as the indexer commits them, timing each
statement. Variants: A the schema as it is; B without the five partial indexes; C without
any index; D a row of 8 columns (the 7 most read and a blob of the other 39) with the
(site_id, ts_ms) index. A measurement for docs/benchmarks.md, not a test.

    target/release/pixeltrack site add x.example   # with PIXELTRACK_DATA_DIR=DIR
    scripts/events-insert-cost.py A | sqlite3 DIR/pixeltrack.db | awk '/start/ {on=1}
        on && /Run Time/ {u+=$6; s+=$8} END {print (u+s)*1e6/491520, "us a row"}'

Use a fresh copy of the migrated database for each variant.
"""
import sys
variant = sys.argv[1]
N, CH = 491520, 8192
cols = "site_id, ts_ms, name, visitor_id, session_id, host, path, query, title, referrer, referrer_host, source, medium, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, browser, browser_version, os, os_version, device, bot, value_minor, currency, order_id, props, ip, campaign_id, recipient, link, verdict, verdict_reason, email_client, scroll_pct, engaged_ms, screen_width, ad, placement, country, region, city, asn, as_org"
out = ["PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", "PRAGMA secure_delete=ON;", "PRAGMA cache_size=-2048;", "PRAGMA temp_store=MEMORY;"]
out.append(f"""CREATE TEMP TABLE staging AS WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < {N})
SELECT 1 AS site_id, 1796000000000 + i*40 AS ts_ms, 'pageview' AS name, abs(random()) AS visitor_id, abs(random()) AS session_id,
 'bench.example' AS host, '/docs/page-' || (abs(random()) % 2000) AS path, '' AS query, 'Page title number ' || (abs(random()) % 2000) || ' of the docs' AS title,
 CASE WHEN i % 3 = 0 THEN 'https://www.google.com/' ELSE '' END AS referrer, CASE WHEN i % 3 = 0 THEN 'www.google.com' ELSE '' END AS referrer_host,
 CASE WHEN i % 3 = 0 THEN 'Google' ELSE '' END AS source, CASE WHEN i % 3 = 0 THEN 'search' ELSE '' END AS medium,
 CASE WHEN i % 7 = 0 THEN 'newsletter' ELSE '' END AS utm_source, CASE WHEN i % 7 = 0 THEN 'email' ELSE '' END AS utm_medium, CASE WHEN i % 7 = 0 THEN 'spring' ELSE '' END AS utm_campaign, '' AS utm_term, '' AS utm_content, '' AS click_id,
 'Chrome' AS browser, '124.0' AS browser_version, 'Windows' AS os, '10' AS os_version, 'desktop' AS device, NULL AS bot, NULL AS value_minor, '' AS currency, '' AS order_id, '' AS props, NULL AS ip,
 NULL AS campaign_id, '' AS recipient, '' AS link, '' AS verdict, '' AS verdict_reason, '' AS email_client, NULL AS scroll_pct, NULL AS engaged_ms, 1920 AS screen_width, '' AS ad, '' AS placement,
 'DE' AS country, 'BE' AS region, 'Berlin' AS city, 3320 AS asn, 'Deutsche Telekom AG' AS as_org FROM s;""")
if variant in ("B", "C"):
    for ix in ["events_touches", "events_touch_visitors", "events_touch_click_ids", "events_campaign", "events_recipient"]:
        out.append(f"DROP INDEX {ix};")
if variant == "C":
    out.append("DROP INDEX events_site_ts;")
target, tcols, sel = "events", cols, cols
if variant == "D":
    out.append("CREATE TABLE events_n (id INTEGER PRIMARY KEY AUTOINCREMENT, site_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, name TEXT NOT NULL, visitor_id INTEGER NOT NULL, session_id INTEGER NOT NULL, path TEXT NOT NULL, title TEXT NOT NULL, rest BLOB NOT NULL);")
    out.append("CREATE INDEX events_n_site_ts ON events_n (site_id, ts_ms);")
    target, tcols = "events_n", "site_id, ts_ms, name, visitor_id, session_id, path, title, rest"
    rest = " || char(0) || ".join(c for c in cols.split(", ") if c not in ("site_id","ts_ms","name","visitor_id","session_id","path","title"))
    rest = "CAST(" + " || char(0) || ".join(f"coalesce({c},'')" for c in cols.split(", ") if c not in ("site_id","ts_ms","name","visitor_id","session_id","path","title")) + " AS BLOB)"
    out.append(f"CREATE TEMP TABLE st2 AS SELECT site_id, ts_ms, name, visitor_id, session_id, path, title, {rest} AS rest FROM staging;")
    sel = tcols
out.append(".timer on")
out.append("SELECT 'start';")
for a in range(1, N+1, CH):
    out.append(f"BEGIN IMMEDIATE; INSERT INTO {target} ({tcols}) SELECT {sel} FROM {'st2' if variant == 'D' else 'staging'} WHERE rowid BETWEEN {a} AND {a+CH-1}; COMMIT;")
out.append(".timer off")
print("\n".join(out))
