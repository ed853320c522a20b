//! The tracker's endpoints over HTTP, without a browser: the script's caching and size,
//! and `POST /e`'s answers to good, malformed, foreign and GPC events.

use crate::common;

use std::io::Write;

use common::{cli, export, metric, post, Server, CHROME};

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn script_is_small_cached_and_revalidated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[]);
    let res = server.get("/t.js", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("public, max-age=86400"));
    assert!(res
        .header("content-type")
        .unwrap()
        .starts_with("application/javascript"));
    let etag = res.header("etag").unwrap().to_owned();
    assert_eq!(server.get("/t.js", &[("If-None-Match", &etag)]).status, 304);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&res.body).unwrap();
    let size = gz.finish().unwrap().len();
    assert!(
        size <= 1536,
        "t.js is {size} bytes gzipped; the budget is 1.5 KB"
    );
    let text = String::from_utf8(res.body).unwrap();
    assert!(
        !text.contains("cookie"),
        "the tracker never touches cookies"
    );
}

#[test]
fn script_is_gzipped_for_clients_that_take_it_with_its_own_etag() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[]);
    let plain = server.get("/t.js", &[]);
    let gz = server.get("/t.js", &[("Accept-Encoding", "br, gzip, deflate")]);
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    for r in [&plain, &gz] {
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("cache-control"), Some("public, max-age=86400"));
    }
    assert_eq!(plain.header("content-encoding"), None);
    assert!(
        gz.body.len() * 2 < plain.body.len(),
        "{} bytes gzipped of {}",
        gz.body.len(),
        plain.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body, "the same script");
    // Each variant has its own strong ETag and revalidates with it.
    let (tag, gz_tag) = (
        plain.header("etag").unwrap().to_owned(),
        gz.header("etag").unwrap().to_owned(),
    );
    assert_ne!(tag, gz_tag);
    let again = server.get(
        "/t.js",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_tag)],
    );
    assert_eq!(again.status, 304);
    assert_eq!(again.header("content-encoding"), None);
    // gzip refused with q=0, or not offered: plain.
    for ae in ["gzip;q=0", "identity", "br"] {
        let r = server.get("/t.js", &[("Accept-Encoding", ae)]);
        assert_eq!(r.header("content-encoding"), None, "{ae}");
        assert_eq!(r.body, plain.body, "{ae}");
    }
}

#[test]
fn events_are_validated_scoped_to_the_site_and_honour_gpc() {
    let (_dir, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let ua = ("User-Agent", CHROME);
    let origin = ("Origin", "https://www.example.com");

    let ok = format!(
        r#"{{"s":"{key}","n":"pageview","u":"https://www.example.com/a?utm_source=x&secret=1","r":"https://news.ycombinator.com/","t":"A"}}"#
    );
    let (s, body, h) = post(&server, &ok, &[ua, origin]);
    assert_eq!(s, 202, "{body}");
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://www.example.com")
    );
    let eng = format!(
        r#"{{"s":"{key}","n":"engagement","u":"https://www.example.com/a","sd":140,"em":5000}}"#
    );
    assert_eq!(post(&server, &eng, &[ua, origin]).0, 202);
    let custom = format!(
        r#"{{"s":"{key}","n":"signup","u":"https://example.com/a","p":{{"plan":"pro","seats":3,"trial":true}},"v":9.99,"c":"EUR"}}"#
    );
    assert_eq!(post(&server, &custom, &[ua]).0, 202);

    // Malformed, oversized, foreign.
    for bad in [
        "",
        "{",
        "[]",
        r#"{"n":"pageview"}"#,
        &format!(r#"{{"s":"{key}","p":{{"x":{{"deep":1}}}}}}"#),
        &format!(r#"{{"s":"{key}","v":[1]}}"#),
    ] {
        let (s, body, _) = post(&server, bad, &[ua]);
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body.contains("\"error\""), "{body}");
    }
    let big = format!(r#"{{"s":"{key}","t":"{}"}}"#, "x".repeat(9000));
    assert_eq!(post(&server, &big, &[ua]).0, 413);
    assert_eq!(
        post(
            &server,
            &format!(r#"{{"s":"{key}","u":"https://evil.example/"}}"#),
            &[ua]
        )
        .0,
        403
    );
    let (s, _, h) = post(&server, &ok, &[ua, ("Origin", "https://evil.example")]);
    assert_eq!(s, 403);
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert_eq!(
        post(
            &server,
            r#"{"s":"nosuchsite","u":"https://example.com/"}"#,
            &[ua]
        )
        .0,
        400
    );

    // GPC: accepted, but stored without identifiers.
    let gpc = format!(r#"{{"s":"{key}","n":"pageview","u":"https://example.com/gpc","cs":true}}"#);
    assert_eq!(post(&server, &gpc, &[ua, ("Sec-GPC", "1")]).0, 202);

    // Preflight.
    let res = common::http(
        server.addr,
        "OPTIONS",
        "/e",
        &[("Origin", "https://example.com")],
    )
    .unwrap();
    assert_eq!(res.status, 204);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    // No origin is echoed unless it is one of a site's hosts: not on a preflight, not
    // on a refusal.
    let res = common::http(
        server.addr,
        "OPTIONS",
        "/e",
        &[("Origin", "https://evil.example")],
    )
    .unwrap();
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-origin"), None);
    let (s, _, h) = post(&server, "{", &[ua, ("Origin", "https://evil.example")]);
    assert_eq!(s, 400);
    assert_eq!(header(&h, "access-control-allow-origin"), None);

    let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert_eq!(
        metric(
            &m,
            "pixeltrack_events_dropped_total{reason=\"host_not_allowed\"}"
        ),
        2.0
    );
    assert_eq!(server.terminate().code(), Some(0));

    let ev = export(&data, &key);
    let by = |n: &str| ev.iter().find(|e| e["name"] == n).unwrap().clone();
    let pv = by("pageview");
    assert_eq!(
        (
            pv["path"].as_str(),
            pv["query"].as_str(),
            pv["source"].as_str()
        ),
        (Some("/a"), Some("utm_source=x"), Some("x"))
    );
    let e = by("engagement");
    assert_eq!(
        (e["scroll_pct"].as_i64(), e["engaged_ms"].as_i64()),
        (Some(100), Some(5000)),
        "scroll clamped to 100"
    );
    let s = by("signup");
    assert_eq!(
        (
            s["value_minor"].as_i64(),
            s["props"]["seats"].as_str(),
            s["props"]["trial"].as_str()
        ),
        (Some(999), Some("3"), Some("true"))
    );
    let g = ev.iter().find(|e| e["path"] == "/gpc").unwrap();
    assert_eq!(g["visitor_id"], 0, "GPC wins over consent");

    // The web report: scroll depth and engagement per page, custom events with props.
    let r: serde_json::Value = serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    let rows = |d: &str| serde_json::Value::Array(common::report_rows(&r, d));
    let a = rows("page")
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["value"] == "/a")
        .unwrap()
        .clone();
    assert_eq!(
        (a["scroll_depth"].as_f64(), a["engagement_time"].as_f64()),
        (Some(100.0), Some(5.0)),
        "{a}"
    );
    let props: Vec<String> = rows("event_prop")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        props.contains(&"signup: plan=pro".to_string())
            && props.contains(&"signup: seats=3".to_string()),
        "{props:?}"
    );
    assert_eq!(r["overview"]["engagement_time"], 5.0);
    let text = cli(&data, &["report"]);
    assert!(
        text.contains("average scroll depth 100%") && text.contains("Custom event props"),
        "{text}"
    );

    // Another host of the same site, once allowed.
    cli(
        &data,
        &["site", "set", "example.com", "--hosts", "shop.example.net"],
    );
    let server = Server::start(&data, &[]);
    let other = format!(r#"{{"s":"{key}","u":"https://shop.example.net/cart"}}"#);
    assert_eq!(
        post(
            &server,
            &other,
            &[ua, ("Origin", "https://shop.example.net")]
        )
        .0,
        202
    );
    // Consented mode: identifiers only with the page's consent (pixeltrack.consent(true)).
    assert_eq!(server.terminate().code(), Some(0));
    cli(
        &data,
        &["site", "set", "example.com", "--privacy-mode", "consented"],
    );
    let server = Server::start(&data, &[]);
    for (path, cs) in [("/no-consent", ""), ("/consent", r#","cs":true"#)] {
        let body = format!(r#"{{"s":"{key}","u":"https://example.com{path}"{cs}}}"#);
        assert_eq!(post(&server, &body, &[ua]).0, 202);
    }
    assert_eq!(server.terminate().code(), Some(0));
    let ev = export(&data, &key);
    let visitor = |p: &str| {
        ev.iter().find(|e| e["path"] == p).unwrap()["visitor_id"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(visitor("/no-consent"), 0);
    assert_ne!(visitor("/consent"), 0);
    let snippet = cli(&data, &["site", "snippet", "example.com"]);
    assert!(
        snippet.contains(&format!("/t.js\" data-site=\"{key}\""))
            && snippet.contains("<noscript><img"),
        "{snippet}"
    );
}
