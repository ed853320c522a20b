//! The JS tracker in real headless Chromium, driven over WebDriver (chromedriver).
//! Needs Debian's `chromium` and `chromium-driver`, so it is `#[ignore]`d in plain
//! `cargo test`; `.ci/run` installs both and runs it with `--ignored`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::webdriver::{serve_pages, Driver};
use common::{export, Server};
use serde_json::{json, Value};

fn page(tracker: SocketAddr, key: &str, before: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>Test page</title>{before}
<script src="http://{tracker}/t.js" data-site="{key}" data-scroll="milestones"></script></head>
<body><h1>Hello</h1>
<a id="out" href="https://example.org/elsewhere" onclick="return false">out</a>
<a id="dl" href="/files/report.pdf" onclick="return false">report</a>
<button id="cta" data-pixeltrack-event="cta_click" data-pixeltrack-prop-plan="pro">Go</button>
<div style="height:5000px"></div><p>end</p></body></html>"#
    )
}

/// Polls the store until `done` holds for its events (bounded).
fn wait_for(data: &std::path::Path, key: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = export(data, key);
        if done(&ev) || Instant::now() > deadline {
            return ev;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs Chromium and chromedriver; run by .ci/run with --ignored"]
fn tracker_in_headless_chromium() {
    let (_dir, data, key) = common::site_dir("127.0.0.1");
    let server = Server::start(&data, &[]);
    let gpc = "<script>Object.defineProperty(navigator,'globalPrivacyControl',{get:function(){return true}})</script>";
    let pages = serve_pages(vec![
        ("/page.html", page(server.addr, &key, "")),
        ("/gpc.html", page(server.addr, &key, gpc)),
        ("/after.html", page(server.addr, &key, "")),
    ]);
    let b = Driver::start();

    b.go(&format!("http://{pages}/page.html"));
    assert_eq!(b.js("return typeof window.pixeltrack"), "function");
    // Misuse never throws into the page.
    let misuse = "try { pixeltrack(); pixeltrack({}, 5); pixeltrack(null, null); pixeltrack.consent(true); return 'ok' } catch (e) { return 'threw: ' + e }";
    assert_eq!(b.js(misuse), "ok");
    b.js("history.pushState({}, '', '/spa/one')");
    // Two route changes in one go send their beacons at once, and the server may take
    // either first: wait for the first before the second, so their order is the page's.
    let stored = |path: &'static str| {
        move |ev: &[Value]| {
            ev.iter()
                .any(|e| e["name"] == "pageview" && e["path"] == path)
        }
    };
    wait_for(&data, &key, stored("/spa/one"));
    b.js("history.pushState({}, '', '/spa/two')");
    b.js("window.scrollTo(0, document.documentElement.scrollHeight)");
    b.click("#out");
    b.click("#dl");
    b.js("pixeltrack('signup', {props: {plan: 'pro'}, value: 9.99, currency: 'EUR'})");
    b.click("#cta");
    assert_eq!(
        b.cmd("GET", "/cookie", None)["value"],
        json!([]),
        "the tracker sets no cookie"
    );
    b.go("about:blank"); // hides the page: the last engagement report goes out

    let want = |ev: &[Value]| ev.iter().filter(|e| e["name"] == "engagement").count() >= 3;
    let ev = wait_for(&data, &key, want);
    let named = |n: &str| {
        ev.iter()
            .filter(|e| e["name"] == n)
            .cloned()
            .collect::<Vec<_>>()
    };
    let paths = |n: &str| {
        named(n)
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths("pageview"),
        vec!["/page.html", "/spa/one", "/spa/two"],
        "{ev:#?}"
    );
    assert!(
        named("pageview")
            .iter()
            .all(|e| e["screen_width"].as_i64().is_some_and(|w| w > 0)),
        "{ev:#?}"
    );
    assert_eq!(
        paths("engagement"),
        vec!["/page.html", "/spa/one", "/spa/two"],
        "{ev:#?}"
    );
    let last = named("engagement").pop().unwrap();
    assert!(last["scroll_pct"].as_i64().unwrap() >= 90, "{last}");
    // Sent at the same moment, the four beacons may arrive in any order.
    let mut depths: Vec<i64> = named("scroll")
        .iter()
        .map(|e| e["props"]["depth"].as_str().unwrap().parse().unwrap())
        .collect();
    depths.sort();
    let scroll_paths = paths("scroll");
    assert_eq!(depths, vec![25, 50, 75, 100], "{scroll_paths:?}");
    assert_eq!(
        named("outbound")[0]["props"]["url"],
        "https://example.org/elsewhere"
    );
    assert!(named("download")[0]["props"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/files/report.pdf"));
    let signup = &named("signup")[0];
    assert_eq!(
        (signup["value_minor"].as_i64(), signup["currency"].as_str()),
        (Some(999), Some("EUR"))
    );
    assert_eq!(signup["props"]["plan"], "pro");
    assert_eq!(named("cta_click")[0]["props"]["plan"], "pro");
    assert!(
        ev.iter()
            .all(|e| e["bot"].is_null() && e["browser"] == "Chrome"),
        "{ev:#?}"
    );
    let visitors: std::collections::HashSet<_> =
        ev.iter().map(|e| e["visitor_id"].clone()).collect();
    assert_eq!(visitors.len(), 1, "one cookieless visitor");
    let r: Value = serde_json::from_str(&common::cli(&data, &["report", "--json"])).unwrap();
    let rows = |d: &str| serde_json::Value::Array(common::report_rows(&r, d));
    let two = rows("page")
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["value"] == "/spa/two")
        .unwrap()
        .clone();
    assert!(two["scroll_depth"].as_f64().unwrap() >= 90.0, "{two}");
    assert_eq!(
        rows("outbound")[0]["value"],
        "https://example.org/elsewhere"
    );
    assert!(rows("download")[0]["value"]
        .as_str()
        .unwrap()
        .ends_with("/files/report.pdf"));
    assert_eq!(r["overview"]["pageviews"], 3);

    // With Global Privacy Control the tracker stays silent; a later normal page proves
    // the browser kept sending.
    let before = ev.len();
    b.go(&format!("http://{pages}/gpc.html"));
    b.js("history.pushState({}, '', '/gpc/two')");
    b.click("#cta");
    b.js("pixeltrack('signup'); pixeltrack.consent(true)");
    b.go(&format!("http://{pages}/after.html"));
    let ev = wait_for(&data, &key, |ev| {
        ev.iter().any(|e| e["path"] == "/after.html")
    });
    assert!(ev.iter().any(|e| e["path"] == "/after.html"));
    assert!(
        ev.iter()
            .all(|e| !e["path"].as_str().unwrap().starts_with("/gpc")),
        "GPC page sent: {ev:#?}"
    );
    assert!(ev.len() > before);
    drop(b);
    assert_eq!(server.terminate().code(), Some(0));
}
