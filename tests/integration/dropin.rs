//! The Matomo and Plausible drop-in endpoints, in process (the real router, store and
//! writer, a fixed clock): requests shaped like Matomo's JS tracker (GET, POST form,
//! bulk JSON) and Plausible's script (`POST /api/event`, JSON in a `text/plain` body)
//! store the event our own pixel stores for the same visit, and reports count them
//! together; Matomo's overriding parameters need a write token; hostile requests get a
//! clear 4xx or a counted drop, never a 500.

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use pixeltrack::clock::{Clock, DAY_MS, HOUR_MS};
use pixeltrack::model::{Event, SiteId};
use pixeltrack::report::{self, DateRange};
use pixeltrack::server::App;
use pixeltrack::store::prelude::*;
use pixeltrack::store::{Scope, SqliteStore};
use tower::ServiceExt;

use crate::common::{self, CHROME};

/// 2026-11-02 00:00 UTC.
const DAY0: i64 = 20_394;
const NOW: i64 = DAY0 * DAY_MS + 9 * HOUR_MS;
const KEY: &str = "dropinkey";
const FIREFOX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

struct Setup {
    app: Option<App>,
    router: Router,
    store: SqliteStore,
    site: SiteId,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let fresh = common::InProcess::new(KEY, &[]);
        fresh.store.set_matomo_id(fresh.site.id, Some(7)).unwrap();
        let app = App::build(&fresh.rt, Clock::fixed(NOW)).unwrap();
        let router = app.router();
        Setup {
            app: Some(app),
            router,
            site: fresh.site.id,
            store: fresh.store,
            _dir: fresh.dir,
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
        peer: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.to_owned())).unwrap();
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn finish(&mut self) {
        if let Some(app) = self.app.take() {
            app.finish().await.expect("every event written");
        }
    }

    fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        self.store
            .for_each_event(self.site, 0, i64::MAX, &mut |e| {
                out.push(e);
                Ok(())
            })
            .unwrap();
        out
    }
}

fn reason(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(k, _)| k == "x-pixel-reason")
        .map(|(_, v)| v.as_str())
}

fn enc(s: &str) -> String {
    percent_encode(s)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a visit's stored event says, without the per-visitor ids and the time.
fn visit(
    e: &Event,
) -> (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
) {
    (
        e.name.to_string(),
        e.host.to_string(),
        e.path.to_string(),
        e.referrer.to_string(),
        e.source.to_string(),
        e.medium.to_string(),
        e.browser.to_string(),
        e.os.to_string(),
        e.device.as_str().to_owned(),
    )
}

#[tokio::test]
async fn matomo_and_plausible_trackers_store_what_our_pixel_stores_and_reports_count_them_together()
{
    let mut s = Setup::new();
    let page = "https://example.com/pricing?utm_source=news&secret=1";
    let google = "https://www.google.com/";
    let ua = [("user-agent", CHROME)];
    // Our own pixel.
    let (st, h, _) = s
        .send(
            "GET",
            &format!("/p.gif?s={KEY}&u={}&r={}&t=Pricing", enc(page), enc(google)),
            &ua,
            "",
            "198.51.100.1",
        )
        .await;
    assert_eq!((st, reason(&h)), (200, None));
    // Matomo's JS tracker, GET (an image request).
    let q = format!(
        "idsite=7&rec=1&r=123456&h=9&m=0&s=0&url={}&urlref={}&action_name=Pricing&_id=0123456789abcdef&_idn=0&send_image=1&res=1440x900&pv_id=abc123",
        enc(page),
        enc(google)
    );
    let (st, h, body) = s
        .send("GET", &format!("/matomo.php?{q}"), &ua, "", "198.51.100.2")
        .await;
    assert_eq!((st, reason(&h)), (200, None), "{body}");
    assert!(h
        .iter()
        .any(|(k, v)| k == "content-type" && v == "image/gif"));
    // …and its POST (form body, `send_image=0`): 204, as Matomo answers.
    let form = [
        ("user-agent", CHROME),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        ),
    ];
    let (st, h, _) = s
        .send(
            "POST",
            "/piwik.php",
            &form,
            &q.replace("send_image=1", "send_image=0"),
            "198.51.100.3",
        )
        .await;
    assert_eq!((st, reason(&h)), (204, None));
    // Plausible's script: JSON in a text/plain body, short keys.
    let plausible =
        format!(r#"{{"n":"pageview","u":"{page}","d":"example.com","r":"{google}","h":0}}"#);
    let text = [("user-agent", CHROME), ("content-type", "text/plain")];
    let (st, h, body) = s
        .send("POST", "/api/event", &text, &plausible, "198.51.100.4")
        .await;
    assert_eq!((st, reason(&h), body.as_str()), (202, None, "ok"));
    // Matomo's bulk form: an event, an order, and a request for a site not mapped.
    let bulk = serde_json::json!({"requests": [
        format!("?idsite=7&rec=1&url={}&e_c=Videos&e_a=Play&e_n=Intro", enc("https://example.com/video")),
        format!("?idsite=7&rec=1&url={}&idgoal=0&ec_id=A-1&revenue=49.90", enc("https://example.com/thanks")),
        format!("?idsite=999&rec=1&url={}", enc("https://example.com/")),
    ]});
    let (st, _, body) = s
        .send(
            "POST",
            "/matomo.php",
            &form,
            &bulk.to_string(),
            "198.51.100.5",
        )
        .await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&v["tracked"], &v["invalid"]),
        (&serde_json::json!(2), &serde_json::json!(1))
    );
    // Plausible's custom event with props and revenue, Firefox, from another client.
    let custom = r#"{"name":"Signup","url":"https://example.com/signup","domain":"example.com","props":{"plan":"pro"},"revenue":{"currency":"EUR","amount":"19.90"}}"#;
    let (st, _, _) = s
        .send(
            "POST",
            "/api/event",
            &[("user-agent", FIREFOX), ("content-type", "text/plain")],
            custom,
            "198.51.100.6",
        )
        .await;
    assert_eq!(st, 202);
    s.finish().await;

    let events = s.events();
    assert_eq!(events.len(), 7, "{events:#?}");
    let pricing: Vec<&Event> = events.iter().filter(|e| e.path == "/pricing").collect();
    assert_eq!(pricing.len(), 4);
    // The same stored event as the pixel's, field by field (the query allowlist too).
    for e in &pricing {
        assert_eq!(visit(e), visit(pricing[0]));
        assert_eq!(e.query, "utm_source=news");
        assert_eq!(e.utm.source, "news");
        assert_ne!(e.visitor_id, 0);
    }
    // Matomo sends the title; Plausible does not.
    assert_eq!(
        pricing.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
        ["Pricing", "Pricing", "Pricing", ""]
    );
    assert_eq!(pricing[1].screen_width, Some(1440));
    let play = events
        .iter()
        .find(|e| e.name == "Play")
        .expect("the Matomo event");
    assert_eq!(play.props, r#"{"category":"Videos","name":"Intro"}"#);
    let order = events
        .iter()
        .find(|e| e.name == "conversion")
        .expect("the order");
    assert_eq!(
        (order.order_id.as_str(), order.props.as_str()),
        ("A-1", r#"{"revenue":"49.90"}"#)
    );
    let signup = events
        .iter()
        .find(|e| e.name == "Signup")
        .expect("the Plausible event");
    assert_eq!(
        (signup.value_minor, signup.currency.as_str()),
        (Some(1990), "EUR")
    );
    assert_eq!(signup.props, r#"{"plan":"pro"}"#);
    assert_eq!(signup.browser, "Firefox");

    // The report counts them with the pixel's: four visitors viewed /pricing.
    let site = s.store.sites().unwrap().remove(0);
    let q = report::Query::new(DateRange {
        from_day: DAY0,
        to_day: DAY0,
    });
    let o = report::overview(&s.store, &site, &q).unwrap();
    assert_eq!((o.pageviews, o.visitors), (4, 6));
}

#[tokio::test]
async fn matomo_overrides_apply_only_with_a_write_token_for_the_site() {
    let mut s = Setup::new();
    let (_, write) =
        pixeltrack::secret::issue_api_token(&s.store, "w", Scope::Write, None, 0).unwrap();
    let (_, read) =
        pixeltrack::secret::issue_api_token(&s.store, "r", Scope::Read, None, 0).unwrap();
    // Earlier today: a day whose salt the server holds (a fresh install has no
    // yesterday).
    let earlier = NOW - 3 * HOUR_MS;
    let q = |path: &str, token: &str| {
        format!(
            "/matomo.php?idsite=7&rec=1&url={}&cip=192.0.2.99&cdt={}&country=fr&token_auth={token}",
            enc(&format!("https://example.com{path}")),
            earlier / 1000
        )
    };
    let ua = [("user-agent", CHROME)];
    for (path, token) in [
        ("/none", ""),
        ("/read", read.as_str()),
        ("/forged", "pt_not_a_token"),
    ] {
        let (st, h, _) = s
            .send("GET", &q(path, token), &ua, "", "198.51.100.1")
            .await;
        assert_eq!((st, reason(&h)), (200, None), "{path}");
    }
    let (st, h, body) = s
        .send("GET", &q("/write", &write), &ua, "", "198.51.100.1")
        .await;
    assert_eq!((st, reason(&h)), (200, None), "{body}");
    // A write token with a time no salt is held for: refused, not moved to now.
    let old = q("/old", &write).replace(&format!("cdt={}", earlier / 1000), "cdt=1000000000");
    let (st, _, _) = s.send("GET", &old, &ua, "", "198.51.100.1").await;
    assert_eq!(st, 400);
    s.finish().await;
    let events = s.events();
    let by = |p: &str| {
        events
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    for p in ["/none", "/read", "/forged"] {
        let e = by(p);
        assert_eq!(
            (e.ts_ms, e.country.as_str()),
            (NOW, ""),
            "{p}: cip, cdt, country ignored"
        );
        assert_eq!(
            e.visitor_id,
            by("/none").visitor_id,
            "{p}: the peer's IP, not cip"
        );
    }
    let w = by("/write");
    assert_eq!((w.ts_ms, w.country.as_str()), (earlier, "FR"));
    assert!(events.iter().all(|e| e.path != "/old"));
}

#[tokio::test]
async fn hostile_dropin_requests_get_a_clear_4xx_or_a_counted_drop() {
    let mut s = Setup::new();
    let ua = [("user-agent", CHROME), ("content-type", "text/plain")];
    let page = enc("https://example.com/");
    let big = "x".repeat(300 * 1024);
    let many = serde_json::json!({"requests": vec![format!("?idsite=7&rec=1&url={page}"); 501]})
        .to_string();
    let cases: Vec<(&str, String, String, u16)> = vec![
        ("GET", "/matomo.php?rec=1".into(), String::new(), 400),
        ("GET", format!("/matomo.php?idsite=abc&rec=1&url={page}"), String::new(), 400),
        ("GET", format!("/matomo.php?idsite=999&rec=1&url={page}"), String::new(), 400),
        ("GET", "/matomo.php?idsite=7&rec=1&url=%FF%FE".into(), String::new(), 400),
        ("POST", "/matomo.php".into(), "{\"requests\": 5}".into(), 400),
        ("POST", "/matomo.php".into(), many, 413),
        ("POST", "/matomo.php".into(), big.clone(), 413),
        ("POST", "/api/event".into(), "not json".into(), 400),
        ("POST", "/api/event".into(), big, 413),
        ("POST", "/api/event".into(), r#"{"n":"pageview","u":"https://example.com/","d":"unknown.example"}"#.into(), 400),
        ("POST", "/api/event".into(), r#"{"n":"pageview","u":"https://evil.example/","d":"example.com"}"#.into(), 403),
        ("POST", "/api/event".into(), r#"{"n":"x","u":"https://example.com/","d":"example.com","props":{"a":[1]}}"#.into(), 400),
        ("POST", "/api/event".into(), r#"{"n":"x","u":"https://example.com/","d":"example.com","revenue":{"currency":"XYZ","amount":"1"}}"#.into(), 400),
        ("POST", "/api/event".into(), "{\"n\":\"\u{1b}[31m\",\"u\":\"https://example.com/\",\"d\":\"example.com\"}".into(), 400),
    ];
    for (method, uri, body, want) in &cases {
        let (st, _, answer) = s.send(method, uri, &ua, body, "198.51.100.9").await;
        assert_eq!(st, *want, "{method} {uri} {}", &body[..body.len().min(80)]);
        assert!(!answer.contains("panicked") && st < 500);
    }
    // A page on a host the site does not own, through Matomo: the GIF and a counted drop.
    let (st, h, _) = s
        .send(
            "GET",
            &format!(
                "/matomo.php?idsite=7&rec=1&url={}",
                enc("https://evil.example/")
            ),
            &ua,
            "",
            "198.51.100.9",
        )
        .await;
    assert_eq!((st, reason(&h)), (200, Some("host_not_allowed")));
    // Without rec=1 nothing is recorded (Matomo's rule), and it is not an error.
    let (st, _, _) = s
        .send(
            "GET",
            &format!("/matomo.php?idsite=7&url={page}"),
            &ua,
            "",
            "198.51.100.9",
        )
        .await;
    assert_eq!(st, 200);
    // X-Forwarded-For from an untrusted peer changes nothing: the same visitor.
    let body = r#"{"n":"pageview","u":"https://example.com/x","d":"example.com"}"#;
    s.send("POST", "/api/event", &ua, body, "198.51.100.10")
        .await;
    let spoof = [
        ("user-agent", CHROME),
        ("content-type", "text/plain"),
        ("x-forwarded-for", "6.6.6.6"),
    ];
    s.send("POST", "/api/event", &spoof, body, "198.51.100.10")
        .await;
    let (_, _, metrics) = s.send("GET", "/metrics", &[], "", "127.0.0.1").await;
    for (r, n) in [
        ("unknown_site", 3.0),
        ("host_not_allowed", 2.0),
        ("oversized", 3.0),
    ] {
        assert_eq!(
            common::metric(
                &metrics,
                &format!("pixeltrack_events_dropped_total{{reason=\"{r}\"}}")
            ),
            n,
            "{r}"
        );
    }
    s.finish().await;
    let events = s.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0].visitor_id, events[1].visitor_id);
}

/// One request over its own connection to the running server: status and body.
fn over_tcp(
    server: &common::Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let res = common::http_body(server.addr, method, target, headers, body).unwrap();
    (res.status, String::from_utf8_lossy(&res.body).into_owned())
}

/// The server's connections call these trackers' handlers without the router: the
/// same answers as above, and what they accept is stored.
#[test]
fn the_server_answers_the_trackers_as_its_router_does() {
    let (_dir, data, key) = common::site_dir("example.com");
    common::cli(&data, &["site", "set", &key, "--matomo-id", "7"]);
    let server = common::Server::start(&data, &[]);
    let ua = ("User-Agent", CHROME);
    let page = enc("https://example.com/pricing");
    let (st, _) = over_tcp(
        &server,
        "GET",
        &format!("/matomo.php?idsite=7&rec=1&url={page}&action_name=Pricing&send_image=1"),
        &[ua],
        "",
    );
    assert_eq!(st, 200);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let q = format!("idsite=7&rec=1&url={page}&send_image=0");
    assert_eq!(
        over_tcp(&server, "POST", "/piwik.php", &[ua, form], &q).0,
        204
    );
    let text = ("Content-Type", "text/plain");
    let plausible = r#"{"n":"pageview","u":"https://example.com/about","d":"example.com"}"#;
    assert_eq!(
        over_tcp(&server, "POST", "/api/event", &[ua, text], plausible),
        (202, "ok".to_owned())
    );
    // Refusals as the router's tests above have them.
    let (st, body) = over_tcp(&server, "POST", "/api/event", &[ua, text], "not json");
    assert_eq!(st, 400, "{body}");
    let big = format!(
        r#"{{"n":"pageview","u":"https://example.com/","d":"example.com","props":{{"a":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(
        over_tcp(&server, "POST", "/api/event", &[ua, text], &big).0,
        413
    );
    // HEAD records nothing (link checkers send it, trackers never do), as on the pixel.
    let head = format!(
        "/matomo.php?idsite=7&rec=1&url={}",
        enc("https://example.com/head")
    );
    assert_eq!(over_tcp(&server, "HEAD", &head, &[ua], "").0, 200);
    assert_eq!(server.terminate().code(), Some(0));
    let mut paths: Vec<String> = common::export(&data, &key)
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/about", "/pricing", "/pricing"]);
}
