//! Ads and conversions end to end over HTTP: impressions, bot traffic, signed ad links
//! followed through their real redirect with the click id carried to the landing page,
//! conversions by pixel and by `/e` (with a click id from another device), duplicate
//! orders, refused amounts — and every number of the campaign and site reports.

use crate::common;

use common::{cli, http, post, site_with_campaign, Server};

fn ua(n: &str) -> String {
    format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.{n} Safari/537.36")
}
const CURL: &str = "curl/8.5.0";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A pixel hit; returns the `X-Pixel-Reason` (empty when stored).
fn pixel(s: &Server, query: &str, ua: &str) -> String {
    let r = http(
        s.addr,
        "GET",
        &format!("/p.gif?{query}"),
        &[("user-agent", ua)],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{query}");
    assert_eq!(r.header("content-type"), Some("image/gif"));
    r.header("x-pixel-reason").unwrap_or("").to_owned()
}

/// Follows an ad link; returns the Location it redirects to.
fn click(s: &Server, path: &str, ua: &str) -> String {
    let r = http(
        s.addr,
        "GET",
        path,
        &[
            ("user-agent", ua),
            ("referer", "https://news.example/article"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 302, "{path}");
    r.header("location").unwrap().to_owned()
}

fn money(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["amount"].as_str().unwrap().to_owned(),
                m["currency"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn m(amount: &str, cur: &str) -> (String, String) {
    (amount.into(), cur.into())
}

#[test]
fn impressions_clicks_and_conversions_add_up_in_the_campaign_report() {
    let (_dir, data) = site_with_campaign("Spring");
    let sites: serde_json::Value =
        serde_json::from_str(&cli(&data, &["site", "list", "--json"])).unwrap();
    let key = sites[0]["key"].as_str().unwrap().to_owned();
    cli(
        &data,
        &[
            "campaign",
            "cost",
            "1",
            "--amount",
            "50.00",
            "--currency",
            "eur",
        ],
    );
    let link =
        |ad: &str| common::ad_link(&data, ad, "home", "https://shop.example/spring?src=ad#top");
    let (banner, video) = (link("banner"), link("video"));
    assert!(
        banner.starts_with("/c/") && !banner.contains("banner"),
        "opaque: {banner}"
    );
    let s = Server::start(&data, &[]);

    // Impressions: 10 banner, 5 video, 2 from a bot; and refused ones.
    for i in 0..10 {
        assert_eq!(
            pixel(
                &s,
                &format!("s={key}&e=impression&cmp=1&ad=banner&pl=home"),
                &ua(&i.to_string())
            ),
            ""
        );
    }
    for i in 0..5 {
        assert_eq!(
            pixel(
                &s,
                &format!("s={key}&e=impression&cmp=1&ad=video"),
                &ua(&i.to_string())
            ),
            ""
        );
    }
    for _ in 0..2 {
        assert_eq!(
            pixel(&s, &format!("s={key}&e=impression&cmp=1&ad=banner"), CURL),
            ""
        );
    }
    assert_eq!(
        pixel(
            &s,
            &format!("s={key}&e=impression&cmp=99&ad=banner"),
            &ua("1")
        ),
        "unknown_campaign"
    );
    assert_eq!(
        pixel(&s, &format!("s={key}&e=impression&ad=banner"), &ua("1")),
        "invalid_id"
    );
    assert_eq!(
        pixel(
            &s,
            &format!("s={key}&e=impression&cmp=1&ad=%3Cimg%20src%3Dx%3E"),
            &ua("1")
        ),
        "invalid_id"
    );

    // A clicks the banner, lands with the click id, views the thank-you page and converts.
    let a = ua("101");
    let land = click(&s, &banner, &a);
    let (base, rest) = land.split_once("&ptclid=").expect("click id appended");
    assert_eq!(base, "https://shop.example/spring?src=ad");
    let (clid_a, frag) = rest.split_once('#').unwrap();
    assert_eq!((clid_a.len(), frag), (16, "top"));
    assert_eq!(pixel(&s, &format!("s={key}&u={}", enc(&land)), &a), "");
    assert_eq!(
        pixel(
            &s,
            &format!(
                "s={key}&e=conversion&v=19.99&cur=EUR&id=ORDER-1&u={}",
                enc("https://shop.example/thanks")
            ),
            &a
        ),
        ""
    );
    assert_eq!(
        pixel(
            &s,
            &format!("s={key}&u={}", enc("https://shop.example/thanks")),
            &a
        ),
        ""
    );
    // The thank-you page reloaded: the same order counts once.
    assert_eq!(
        pixel(
            &s,
            &format!(
                "s={key}&e=conversion&v=19.99&cur=EUR&id=ORDER-1&u={}",
                enc("https://shop.example/thanks")
            ),
            &a
        ),
        ""
    );

    // B clicks the video ad on one device and converts on another, which sends the
    // click id with the conversion (through /e).
    let land_b = click(&s, &video, &ua("102"));
    let clid_b = land_b
        .split("ptclid=")
        .nth(1)
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(clid_a, clid_b);
    let body = format!(
        r#"{{"s":"{key}","n":"conversion","u":"https://shop.example/thanks","value":5,"currency":"USD","id":"ORDER-2","clid":"{clid_b}"}}"#
    );
    let (status, text, _) = post(
        &s,
        &body,
        &[
            ("user-agent", &ua("202")),
            ("origin", "https://shop.example"),
        ],
    );
    assert_eq!(status, 202, "{text}");

    // C clicks and leaves; a bot clicks; a scanner's HEAD records nothing.
    click(&s, &banner, &ua("103"));
    let bot_land = click(&s, &banner, CURL);
    assert!(bot_land.starts_with("https://shop.example/spring?src=ad"));
    let head = http(s.addr, "HEAD", &banner, &[("user-agent", &ua("104"))]).unwrap();
    assert_eq!(head.status, 302);

    // D converts with no click at all.
    let d = ua("105");
    assert_eq!(
        pixel(
            &s,
            &format!(
                "s={key}&e=conversion&v=1500&cur=JPY&id=ORDER-3&u={}",
                enc("https://shop.example/thanks")
            ),
            &d
        ),
        ""
    );
    assert_eq!(
        pixel(
            &s,
            &format!("s={key}&u={}", enc("https://shop.example/thanks")),
            &d
        ),
        ""
    );

    // Amounts that are not exact are refused, never rounded.
    for (v, cur) in [
        ("1e309", "EUR"),
        ("0.30000000000000004", "EUR"),
        ("0.1%2B0.2", "EUR"),
        ("-5", "EUR"),
        ("19.999", "EUR"),
        ("10.5", "JPY"),
        ("5", "EURO"),
        ("5", ""),
    ] {
        let q = format!(
            "s={key}&e=conversion&v={v}&cur={cur}&id=X&u={}",
            enc("https://shop.example/thanks")
        );
        assert_eq!(pixel(&s, &q, &ua("9")), "invalid_amount", "{v} {cur}");
    }
    let bad = format!(
        r#"{{"s":"{key}","n":"conversion","u":"https://shop.example/t","v":"1.001","c":"EUR"}}"#
    );
    let (status, text, _) = post(&s, &bad, &[("user-agent", &ua("9"))]);
    assert_eq!(status, 400);
    assert!(text.contains("ISO 4217"), "{text}");
    let metrics = http(s.addr, "GET", "/metrics", &[]).unwrap();
    let metrics = String::from_utf8(metrics.body).unwrap();
    assert_eq!(
        common::metric(
            &metrics,
            r#"pixeltrack_events_dropped_total{reason="duplicate"}"#
        ),
        1.0
    );
    assert_eq!(
        common::metric(
            &metrics,
            r#"pixeltrack_events_dropped_total{reason="invalid_amount"}"#
        ),
        9.0
    );

    // The campaign report.
    let r: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--campaign", "1", "--json"])).unwrap();
    let ads = &r["ads"];
    let t = &ads["total"];
    assert_eq!(
        (
            t["impressions"].as_i64(),
            t["bot_impressions"].as_i64(),
            t["clicks"].as_i64(),
            t["bot_clicks"].as_i64()
        ),
        (Some(15), Some(2), Some(3), Some(1))
    );
    assert_eq!(t["ctr"], 20.0);
    assert_eq!(t["conversions"], 2);
    assert_eq!(t["conversion_rate"], 66.67);
    assert_eq!(
        money(&t["revenue"]),
        vec![m("19.99", "EUR"), m("5.00", "USD")]
    );
    assert_eq!(
        money(&t["average_order_value"]),
        vec![m("19.99", "EUR"), m("5.00", "USD")]
    );
    assert_eq!(ads["cost"]["amount"], "50.00");
    assert_eq!(ads["cost_per_acquisition"]["amount"], "25.00");
    assert_eq!(ads["cost_per_acquisition"]["currency"], "EUR");
    assert_eq!(ads["attribution"], "last_click");
    let line = |ad: &str| {
        ads["ads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ad"] == ad)
            .unwrap()
            .clone()
    };
    let (b, v) = (line("banner"), line("video"));
    assert_eq!(
        (
            b["impressions"].as_i64(),
            b["bot_impressions"].as_i64(),
            b["clicks"].as_i64(),
            b["bot_clicks"].as_i64()
        ),
        (Some(10), Some(2), Some(2), Some(1))
    );
    assert_eq!(
        (
            b["ctr"].as_f64(),
            b["conversions"].as_i64(),
            b["conversion_rate"].as_f64()
        ),
        (Some(20.0), Some(1), Some(50.0))
    );
    assert_eq!(money(&b["revenue"]), vec![m("19.99", "EUR")]);
    assert_eq!(
        (
            v["impressions"].as_i64(),
            v["clicks"].as_i64(),
            v["ctr"].as_f64(),
            v["conversions"].as_i64()
        ),
        (Some(5), Some(1), Some(20.0), Some(1))
    );
    assert_eq!(money(&v["revenue"]), vec![m("5.00", "USD")]);
    assert_eq!(ads["ads"].as_array().unwrap().len(), 2);
    // Ad traffic is not web traffic; the email part is empty.
    assert_eq!(r["opens"]["total"], 0);
    let text = cli(&data, &["report", "--campaign", "1"]);
    assert!(
        text.contains("banner") && text.contains("cost per acquisition 25.00 EUR"),
        "{text}"
    );

    // Goals count past events; the site report has the conversions, one unattributed.
    cli(
        &data,
        &["goal", "add", "--site", "shop.example", "--page", "/thank*"],
    );
    cli(
        &data,
        &[
            "goal",
            "add",
            "--site",
            "shop.example",
            "--event",
            "conversion",
            "--name",
            "Purchases",
        ],
    );
    let site: serde_json::Value = serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    assert_eq!(
        site["overview"]["visitors"], 3,
        "A, B's second device, D: impressions and clicks are not visits"
    );
    let goals = site["goals"].as_array().unwrap();
    assert_eq!(
        (
            goals[0]["name"].as_str(),
            goals[0]["completions"].as_i64(),
            goals[0]["visitors"].as_i64(),
            goals[0]["conversion_rate"].as_f64()
        ),
        (Some("/thank*"), Some(2), Some(2), Some(66.67))
    );
    assert_eq!(
        (
            goals[1]["name"].as_str(),
            goals[1]["completions"].as_i64(),
            goals[1]["visitors"].as_i64()
        ),
        (Some("Purchases"), Some(3), Some(3))
    );
    let c = &site["conversions"];
    assert_eq!(
        (c["conversions"].as_i64(), c["unattributed"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        money(&c["revenue"]),
        vec![m("19.99", "EUR"), m("1500", "JPY"), m("5.00", "USD")]
    );
    assert_eq!(c["by_campaign"][0]["conversions"], 2);

    // The funnel: landing → conversion → thank-you page; only A went through it all.
    let f: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &[
            "funnel",
            "--step",
            "/spring",
            "--step",
            "event:conversion",
            "--step",
            "/thanks",
            "--json",
        ],
    ))
    .unwrap();
    let reached: Vec<i64> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reached"].as_i64().unwrap())
        .collect();
    assert_eq!(reached, vec![1, 1, 1]);
    let f: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &[
            "funnel",
            "--step",
            "event:conversion",
            "--step",
            "/thanks",
            "--json",
        ],
    ))
    .unwrap();
    let reached: Vec<i64> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reached"].as_i64().unwrap())
        .collect();
    assert_eq!(reached, vec![3, 2], "B's device has no thank-you page view");
    assert_eq!(f[1]["dropped"], 1);
}

#[test]
fn ad_links_refuse_what_they_cannot_sign() {
    let (_dir, data) = site_with_campaign("Spring");
    common::add_site(&data, "other.example");
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .arg("--data")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    for (args, says) in [
        (
            vec![
                "link",
                "create",
                "--site",
                "shop.example",
                "--campaign",
                "1",
                "javascript:alert(1)",
            ],
            "refused",
        ),
        (
            vec![
                "link",
                "create",
                "--site",
                "other.example",
                "--campaign",
                "1",
                "https://shop.example/",
            ],
            "another site",
        ),
        (
            vec![
                "link",
                "create",
                "--site",
                "shop.example",
                "--campaign",
                "7",
                "https://shop.example/",
            ],
            "no campaign 7",
        ),
        (
            vec![
                "link",
                "create",
                "--site",
                "shop.example",
                "--campaign",
                "1",
                "--ad",
                "<b>",
                "https://shop.example/",
            ],
            "the ad must be",
        ),
        (
            vec![
                "campaign",
                "cost",
                "1",
                "--amount",
                "1.999",
                "--currency",
                "EUR",
            ],
            "more decimals",
        ),
        (
            vec![
                "campaign",
                "cost",
                "1",
                "--amount",
                "5",
                "--currency",
                "EURO",
            ],
            "ISO 4217",
        ),
        (
            vec!["goal", "add", "--site", "shop.example", "--page", "thanks"],
            "starts with /",
        ),
        (
            vec!["funnel", "--site", "shop.example", "--step", "/a"],
            "2 to 32",
        ),
        (
            vec![
                "funnel",
                "--site",
                "shop.example",
                "--step",
                "/a",
                "--step",
                "bogus",
            ],
            "event:signup",
        ),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The store and writer directly, on a hand-built event set with known answers.
mod store {
    use std::sync::Arc;

    use pixeltrack::clock::{Millis, DAY_MS};
    use pixeltrack::ingest::EventWriter;
    use pixeltrack::metrics::Metrics;
    use pixeltrack::model::{Event, SiteId, SiteKey};
    use pixeltrack::store::prelude::*;
    use pixeltrack::store::{Pattern, SqliteStore};

    fn open() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let site = store
            .add_site(&SiteKey::parse("k").unwrap(), "shop.example", "Shop", 0)
            .unwrap();
        (dir, store, site.id.0)
    }

    /// The real writer (sessions, rollups, order dedupe) on `store`.
    fn writer(store: &SqliteStore) -> EventWriter {
        EventWriter::new(
            store
                .writer(pixeltrack::config::Synchronous::Normal)
                .unwrap(),
            30 * 60_000,
            Arc::new(Metrics::default()),
        )
    }

    fn ev(site: i64, ts: Millis, visitor: i64, name: &str, path: &str) -> Event {
        Event {
            site_id: site,
            ts_ms: ts,
            name: name.into(),
            visitor_id: visitor,
            host: "shop.example".into(),
            path: path.into(),
            props: "{}".into(),
            ..Event::default()
        }
    }

    fn order(site: i64, ts: Millis, id: &str) -> Event {
        Event {
            order_id: id.into(),
            value_minor: Some(100),
            currency: "EUR".into(),
            ..ev(site, ts, 1, "conversion", "/thanks")
        }
    }

    #[test]
    fn order_ids_dedupe_within_the_window_only() {
        let (_d, store, site) = open();
        let mut w = writer(&store).with_dedupe_window(2 * DAY_MS);
        let t0 = 1_700_000_000_000;
        // Twice in one batch, again an hour later, again after the window, and another order.
        assert!(w.write(vec![order(site, t0, "A"), order(site, t0 + 5, "A")], vec![]));
        assert!(w.write(vec![order(site, t0 + 3_600_000, "A")], vec![]));
        assert!(w.write(
            vec![
                order(site, t0 + 3 * DAY_MS, "A"),
                order(site, t0 + 3 * DAY_MS, "B")
            ],
            vec![]
        ));
        // Order ids are per site; an empty order id never dedupes.
        assert!(w.write(vec![order(site, t0, ""), order(site, t0, "")], vec![]));
        let stored: Vec<Millis> = store
            .touches(SiteId(site), 0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|t| t.ts_ms - t0)
            .collect();
        assert_eq!(stored, vec![0, 0, 0, 3 * DAY_MS, 3 * DAY_MS]);
        assert_eq!(store.count_events(SiteId(site)).unwrap(), 5);
        // Order ids past the window are deleted by the writer's hourly upkeep.
        let probe = store
            .writer(pixeltrack::config::Synchronous::Normal)
            .unwrap();
        assert!(probe.order_counted(site, "B", 0).unwrap());
        w.evict_idle(t0 + 10 * DAY_MS);
        assert!(!probe.order_counted(site, "A", 0).unwrap());
        assert!(!probe.order_counted(site, "B", 0).unwrap());
    }

    #[test]
    fn goal_patterns_match_with_wildcards_and_nothing_else_is_special() {
        let (_d, store, site) = open();
        let mut w = writer(&store);
        let t = 1_700_000_000_000;
        let events = vec![
            ev(site, t, 1, "pageview", "/thank-you"),
            ev(site, t + 1, 1, "pageview", "/thank-you/order/7"),
            ev(site, t + 2, 2, "pageview", "/thank-you"),
            ev(site, t + 3, 3, "pageview", "/thanks"),
            ev(site, t + 4, 3, "pageview", "/a?b"),
            ev(site, t + 5, 4, "pageview", "/aXb"),
            ev(site, t + 6, 4, "pageview", "/[x]"),
            ev(site, t + 7, 5, "signup_trial", "/x"),
            ev(site, t + 8, 6, "signup_paid", "/x"),
            ev(site, t + 9, 7, "signup", "/x"),
            // An event named like the page does not match a page goal, and vice versa.
            ev(site, t + 10, 8, "/thank-you", "/x"),
            // Bots never complete goals.
            Event {
                bot: Some(pixeltrack::model::BotReason::Crawler),
                ..ev(site, t + 11, 9, "pageview", "/thank-you")
            },
        ];
        assert!(w.write(events, vec![]));
        let count = |p: &str| {
            store
                .pattern_counts(SiteId(site), &Pattern::parse(p).unwrap(), 0, i64::MAX)
                .unwrap()
        };
        assert_eq!(count("/thank-you"), (2, 2));
        assert_eq!(count("/thank-you*"), (3, 2));
        assert_eq!(count("/thank*"), (4, 3));
        assert_eq!(count("page:*"), (7, 4));
        assert_eq!(count("/a?b"), (1, 1), "? is literal");
        assert_eq!(count("/[x]"), (1, 1), "[ ] are literal");
        assert_eq!(count("event:signup_*"), (2, 2));
        assert_eq!(count("event:signup*"), (3, 3));
        assert_eq!(count("event:signup"), (1, 1));
        assert_eq!(count("event:/thank-you"), (1, 1));
        assert_eq!(count("/nothing*"), (0, 0));
    }
}
