//! In-process tests: the real router, store and writer thread on a fresh data dir,
//! driven with `oneshot` (no socket) and a fixed clock.

use crate::common;

use axum::http::StatusCode;
use axum::Router;
use pixeltrack::clock::{Clock, DAY_MS, HOUR_MS};
use pixeltrack::model::SiteId;
use pixeltrack::report::{self, DateRange};
use pixeltrack::server::App;
use pixeltrack::store::prelude::*;
use pixeltrack::store::{Dim, SqliteStore};

use common::CHROME;

/// 2026-11-02 00:00 UTC, a Monday.
const DAY0: i64 = 20_394;
const T0: i64 = DAY0 * DAY_MS;
const MIN: i64 = 60_000;

struct TestApp {
    app: Option<App>,
    router: Router,
    clock: Clock,
    key: String,
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl TestApp {
    fn new(extra: &[(&str, toml::Value)]) -> TestApp {
        let fresh = common::InProcess::new("testkey", extra);
        let clock = Clock::fixed(T0 + 9 * HOUR_MS);
        let app = App::build(&fresh.rt, clock.clone()).unwrap();
        let router = app.router();
        TestApp {
            app: Some(app),
            router,
            clock,
            key: fresh.site.key.to_string(),
            store: fresh.store,
            _dir: fresh.dir,
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        peer: &str,
    ) -> axum::response::Response {
        let peer = format!("{peer}:40000");
        common::oneshot(self.router.clone(), method, uri, headers, &peer).await
    }

    async fn view(
        &self,
        t: i64,
        ip: &str,
        path_and_query: &str,
        referrer: &str,
    ) -> axum::response::Response {
        self.clock.set(t);
        let u = urlencode(&format!("https://example.com{path_and_query}"));
        let r = urlencode(referrer);
        let uri = format!("/p.gif?s={}&u={u}&r={r}", self.key);
        self.send("GET", &uri, &[("user-agent", CHROME)], ip).await
    }

    /// Unique visitors of the first test day.
    fn day0_visitors(&self) -> i64 {
        let day0 = DateRange {
            from_day: DAY0,
            to_day: DAY0,
        };
        report::overview(&self.store, &self.site(), &report::Query::new(day0))
            .unwrap()
            .visitors
    }

    fn site(&self) -> pixeltrack::model::Site {
        self.store.sites().unwrap().remove(0)
    }

    async fn finish(mut self) -> Self {
        if let Some(app) = self.app.take() {
            app.finish().await.expect("every event written");
        }
        self
    }
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn body(res: axum::response::Response) -> Vec<u8> {
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn gif_and_png_bytes_and_headers() {
    let t = TestApp::new(&[]);
    for (path, ctype) in [("/p.gif", "image/gif"), ("/p.png", "image/png")] {
        let res = t
            .send(
                "GET",
                &format!("{path}?s={}", t.key),
                &[("user-agent", CHROME)],
                "198.51.100.1",
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers().clone();
        assert_eq!(h["content-type"], ctype);
        assert_eq!(
            h["cache-control"],
            "no-store, no-cache, must-revalidate, private"
        );
        assert_eq!(h["pragma"], "no-cache");
        assert_eq!(h["expires"], "0");
        assert!(h.get("x-pixel-reason").is_none());
        let bytes = body(res).await;
        assert_eq!(h["content-length"], bytes.len().to_string().as_str());
        if ctype == "image/gif" {
            assert_eq!(bytes, pixeltrack::collect::image::GIF);
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }
    let t = t.finish().await;
    assert_eq!(t.store.count_events(SiteId(1)).unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_while_draining() {
    let t = TestApp::new(&[]);
    let ready = |t: &TestApp| {
        let t = t.router.clone();
        async move {
            common::oneshot(t, "GET", "/readyz", &[], "127.0.0.1:1")
                .await
                .status()
        }
    };
    assert_eq!(ready(&t).await, StatusCode::OK);
    let app = t.app.as_ref().unwrap();
    app.state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ready(&t).await, StatusCode::SERVICE_UNAVAILABLE);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn head_answers_like_get_and_records_nothing() {
    let t = TestApp::new(&[]);
    let res = t
        .send(
            "HEAD",
            &format!("/p.gif?s={}", t.key),
            &[("user-agent", CHROME)],
            "198.51.100.1",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/gif");
    assert_eq!(res.headers()["content-length"], "43");
    assert!(body(res).await.is_empty());
    let t = t.finish().await;
    assert_eq!(t.store.count_events(SiteId(1)).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_hits_get_the_image_and_a_counted_drop() {
    let t = TestApp::new(&[]);
    // Over `limits.max_query_bytes` (16 KiB) but under the 64 KiB an `http::Uri` can
    // hold; longer targets are refused by the HTTP layer (see tests/binary.rs).
    let big_query = format!("/p.gif?s={}&t={}", t.key, "x".repeat(60 * 1024));
    type Case = (String, Vec<(&'static str, String)>, &'static str);
    let cases: Vec<Case> = vec![
        ("/p.gif".into(), vec![], "missing_site"),
        ("/p.gif?s=nosuchsite".into(), vec![], "unknown_site"),
        ("/p.gif?s=bad%20key!".into(), vec![], "unknown_site"),
        (
            format!("/p.gif?s={}&t=%FF%FE", t.key),
            vec![],
            "invalid_input",
        ),
        (
            format!("/p.gif?s={}&u=a%00b", t.key),
            vec![],
            "invalid_input",
        ),
        (
            format!("/p.gif?s={}&v=1e9&cur=EUR", t.key),
            vec![],
            "invalid_amount",
        ),
        (
            format!("/p.gif?s={}&cur=EURO", t.key),
            vec![],
            "invalid_amount",
        ),
        (big_query, vec![], "oversized"),
        (
            format!("/p.gif?s={}", t.key),
            vec![("user-agent", "A".repeat(1 << 20))],
            "oversized",
        ),
    ];
    for (uri, headers, reason) in &cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = t.send("GET", uri, &hs, "198.51.100.1").await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            res.headers()["x-pixel-reason"],
            *reason,
            "{}",
            &uri[..uri.len().min(80)]
        );
        assert_eq!(body(res).await, pixeltrack::collect::image::GIF);
    }
    let metrics =
        String::from_utf8(body(t.send("GET", "/metrics", &[], "127.0.0.1").await).await).unwrap();
    for (reason, n) in [
        ("missing_site", 1.0),
        ("unknown_site", 2.0),
        ("invalid_input", 2.0),
        ("invalid_amount", 2.0),
        ("oversized", 2.0),
    ] {
        assert_eq!(
            common::metric(
                &metrics,
                &format!("pixeltrack_events_dropped_total{{reason=\"{reason}\"}}")
            ),
            n,
            "{reason}"
        );
    }
    let t = t.finish().await;
    assert_eq!(t.store.count_events(SiteId(1)).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn x_forwarded_for_is_ignored_without_a_trusted_proxy() {
    let t = TestApp::new(&[]);
    t.clock.set(T0 + 9 * HOUR_MS);
    for xff in ["203.0.113.1", "203.0.113.2"] {
        let uri = format!("/p.gif?s={}&u=https%3A%2F%2Fexample.com%2F", t.key);
        t.send(
            "GET",
            &uri,
            &[("user-agent", CHROME), ("x-forwarded-for", xff)],
            "198.51.100.9",
        )
        .await;
    }
    let t = t.finish().await;
    assert_eq!(
        t.day0_visitors(),
        1,
        "both hits come from the same socket peer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn x_forwarded_for_is_used_behind_a_trusted_proxy() {
    let proxies = toml::Value::Array(vec!["10.0.0.0/8".into()]);
    let t = TestApp::new(&[("trusted_proxies", proxies)]);
    for xff in [
        "203.0.113.1",
        "6.6.6.6, 203.0.113.2",
        "203.0.113.1, 10.0.0.7",
    ] {
        let uri = format!("/p.gif?s={}&u=https%3A%2F%2Fexample.com%2F", t.key);
        t.send(
            "GET",
            &uri,
            &[("user-agent", CHROME), ("x-forwarded-for", xff)],
            "10.0.0.2",
        )
        .await;
    }
    let t = t.finish().await;
    assert_eq!(
        t.day0_visitors(),
        2,
        "203.0.113.1 twice and 203.0.113.2 once"
    );
}

/// One client past `limits.per_ip_per_minute` gets the image with a reason (pixels)
/// or a 429 (tracker events) and is not stored; other clients are not affected.
#[tokio::test(flavor = "multi_thread")]
async fn one_client_past_its_rate_limit_is_answered_but_not_stored() {
    let t = TestApp::new(&[("limits.per_ip_per_minute", 5.into())]);
    let uri = format!("/p.gif?s={}&u=https%3A%2F%2Fexample.com%2F", t.key);
    let mut reasons = Vec::new();
    for _ in 0..8 {
        let r = t
            .send("GET", &uri, &[("user-agent", CHROME)], "198.51.100.1")
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/gif");
        reasons.push(
            r.headers()
                .get("x-pixel-reason")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
    }
    assert_eq!(reasons.iter().filter(|r| r.is_none()).count(), 5);
    assert_eq!(reasons[7].as_deref(), Some("rate_limited"));
    let other = t
        .send("GET", &uri, &[("user-agent", CHROME)], "198.51.100.2")
        .await;
    assert!(
        other.headers().get("x-pixel-reason").is_none(),
        "another client is stored"
    );
    let metrics = t.send("GET", "/metrics", &[], "127.0.0.1").await;
    let body = axum::body::to_bytes(metrics.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(
        common::metric(
            &text,
            "pixeltrack_events_dropped_total{reason=\"rate_limited\"}"
        ),
        3.0
    );
    let t = t.finish().await;
    assert_eq!(t.day0_visitors(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_numbers_follow_the_traffic() {
    let t = TestApp::new(&[]);
    let h9 = T0 + 9 * HOUR_MS;
    // Visitor A: Google → /, then /pricing 2 min later, then /signup 3 min later.
    t.view(h9, "198.51.100.1", "/", "https://www.google.com/search?q=x")
        .await;
    t.view(h9 + 2 * MIN, "198.51.100.1", "/pricing", "").await;
    t.view(h9 + 5 * MIN, "198.51.100.1", "/signup", "").await;
    // Visitor B: newsletter campaign, one page (a bounce).
    t.view(
        h9 + 10 * MIN,
        "198.51.100.2",
        "/pricing?utm_source=news&utm_medium=email&utm_campaign=nov&email=a%40b.com",
        "",
    )
    .await;
    // Visitor A again after 2 hours: a second visit, same visitor (same day).
    t.view(
        h9 + 2 * 60 * MIN,
        "198.51.100.1",
        "/docs",
        "https://news.ycombinator.com/item?id=1",
    )
    .await;
    // A crawler: stored, flagged, not counted as a visitor.
    t.clock.set(h9 + 3 * MIN);
    let uri = format!("/p.gif?s={}&u=https%3A%2F%2Fexample.com%2F", t.key);
    t.send(
        "GET",
        &uri,
        &[(
            "user-agent",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        )],
        "66.249.66.1",
    )
    .await;
    // Visitor C the next day.
    t.view(T0 + DAY_MS + 9 * HOUR_MS, "198.51.100.3", "/", "")
        .await;

    let t = t.finish().await;
    let site = t.site();
    let day0 = DateRange {
        from_day: DAY0,
        to_day: DAY0,
    };
    let o = report::overview(&t.store, &site, &report::Query::new(day0)).unwrap();
    assert_eq!(
        (o.visitors, o.visits, o.pageviews, o.bot_events),
        (2, 3, 5, 1)
    );
    // Visits: A1 (3 pages, 5 min), B (bounce), A2 (bounce).
    assert_eq!(o.bounce_rate, 66.7);
    assert_eq!(o.visit_duration, 100.0);

    let both = DateRange {
        from_day: DAY0,
        to_day: DAY0 + 1,
    };
    let o2 = report::overview(&t.store, &site, &report::Query::new(both)).unwrap();
    assert_eq!((o2.visitors, o2.visits, o2.pageviews), (3, 4, 6));

    let rows = |dim: Dim| -> Vec<(String, i64, i64, i64)> {
        report::breakdown(&t.store, &site, &report::Query::new(day0), dim, 10)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| (r.value, r.visitors, r.visits, r.pageviews))
            .collect()
    };
    let sources = rows(Dim::Source);
    assert!(sources.contains(&("Google".into(), 1, 1, 3)), "{sources:?}");
    assert!(sources.contains(&("news".into(), 1, 1, 1)), "{sources:?}");
    assert!(
        sources.contains(&("Hacker News".into(), 1, 1, 1)),
        "{sources:?}"
    );
    let pages = rows(Dim::Page);
    assert_eq!(pages[0], ("/pricing".into(), 2, 0, 2));
    assert_eq!(rows(Dim::UtmCampaign), vec![("nov".into(), 1, 1, 1)]);
    let entry = rows(Dim::EntryPage);
    assert!(
        entry.contains(&("/".into(), 0, 1, 0)) && entry.contains(&("/docs".into(), 0, 1, 0)),
        "{entry:?}"
    );
    let exit = rows(Dim::ExitPage);
    assert!(exit.contains(&("/signup".into(), 0, 1, 0)), "{exit:?}");
    assert!(!exit.iter().any(|r| r.0 == "/" && r.2 != 0), "{exit:?}");
    assert_eq!(rows(Dim::Device), vec![("desktop".into(), 2, 3, 5)]);

    // The stored query keeps only allowlisted parameters.
    let mut queries = Vec::new();
    t.store
        .for_each_event(site.id, 0, i64::MAX, &mut |e| {
            queries.push(e.query);
            Ok(())
        })
        .unwrap();
    assert!(queries.contains(&"utm_source=news&utm_medium=email&utm_campaign=nov".to_string()));
    assert!(queries.iter().all(|q| !q.contains("email=")));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_resume_after_a_restart() {
    let common::InProcess {
        dir: _dir,
        rt,
        store,
        site,
    } = common::InProcess::new("k2", &[]);
    let key = site.key;
    let clock = Clock::fixed(T0 + 9 * HOUR_MS);
    for (i, path) in ["%2Fa", "%2Fb"].iter().enumerate() {
        clock.set(T0 + 9 * HOUR_MS + i as i64 * 5 * MIN);
        let app = App::build(&rt, clock.clone()).unwrap();
        let uri = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com{path}");
        let ua = [("user-agent", CHROME)];
        common::oneshot(app.router(), "GET", &uri, &ua, "198.51.100.1:1").await;
        app.finish().await.expect("every event written");
    }
    let site = store.sites().unwrap().remove(0);
    let o = report::overview(
        &store,
        &site,
        &report::Query::new(DateRange {
            from_day: DAY0,
            to_day: DAY0,
        }),
    )
    .unwrap();
    assert_eq!(
        (o.visitors, o.visits, o.pageviews, o.bounce_rate),
        (1, 1, 2, 0.0)
    );
}

/// A `200` without `X-Pixel-Reason` means stored — also when the store is locked
/// by another process for longer than `commit_timeout_ms`. Without the hit log, hits
/// the writer could not take in time are answered `timeout` and never written later.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_store_never_turns_a_200_into_a_lost_event() {
    let (acknowledged, timed_out) = hits_under_a_held_lock(0).await;
    assert!(timed_out > 0, "the lock outlived the commit timeout");
    assert!(
        acknowledged > 0,
        "the first hit was taken and committed after the lock"
    );
}

/// The same with the hit log (the default): the first hit waits for its stalled
/// commit, the ones after it are answered from the log; none times out, all stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_store_holds_up_no_hit_with_the_hit_log() {
    assert_eq!(hits_under_a_held_lock(50).await, (20, 0));
}

/// Twenty hits, one every 40 ms, while another process holds the write lock for
/// 1.5 s, with `ingest.log_hold_ms = hold_ms`: the hits acknowledged and those
/// answered `timeout`. Asserts every acknowledged hit is stored, and nothing else.
async fn hits_under_a_held_lock(hold_ms: i64) -> (u64, u64) {
    let t = TestApp::new(&[
        ("ingest.commit_timeout_ms", toml::Value::Integer(300)),
        ("ingest.log_hold_ms", toml::Value::Integer(hold_ms)),
    ]);
    let site = t.site();
    let db = t._dir.path().join(pixeltrack::store::sqlite::DB_FILE);
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        locker.execute_batch("COMMIT").unwrap();
    });
    let mut sends = Vec::new();
    for i in 0..20 {
        let (router, key) = (t.router.clone(), t.key.clone());
        sends.push(tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 40)).await;
            let uri = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F{i}");
            let ua = [("user-agent", CHROME)];
            let res = common::oneshot(router, "GET", &uri, &ua, "198.51.100.7:40000").await;
            assert_eq!(res.status(), StatusCode::OK, "the image, always");
            res.headers()
                .get("x-pixel-reason")
                .map(|v| v.to_str().unwrap().to_owned())
        }));
    }
    let mut acknowledged = 0;
    let mut timed_out = 0;
    for s in sends {
        match s.await.unwrap().as_deref() {
            None => acknowledged += 1,
            Some("timeout") => timed_out += 1,
            Some(other) => panic!("unexpected reason {other}"),
        }
    }
    release.join().unwrap();
    let t = t.finish().await;
    assert_eq!(
        t.store.count_events(site.id).unwrap(),
        acknowledged,
        "every acknowledged hit is stored, and no timed-out one is"
    );
    (acknowledged, timed_out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_counts_its_default_dates_from_the_injected_clock() {
    let t = TestApp::new(&[]);
    let (_, token) = pixeltrack::secret::issue_api_token(
        &t.store,
        "clock",
        pixeltrack::store::Scope::Read,
        None,
        0,
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let res = t
        .send(
            "GET",
            "/api/v1/stats?site=testkey&metrics=visitors",
            &[("authorization", &auth)],
            "203.0.113.9",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body(res).await).unwrap();
    // The fixed clock stands at 09:00 on DAY0: the last 30 days end that day, whatever
    // the wall clock says.
    assert_eq!(doc["to"], DateRange::date(DAY0));
    assert_eq!(doc["from"], DateRange::date(DAY0 - 29));
}

/// An export whose client reads nothing holds no read transaction and no thread for
/// long (its pages are read in transactions of their own), and at most four run at
/// once: the fifth is told to come back, while every other route keeps answering.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_exports_are_capped_and_the_api_keeps_answering() {
    let t = TestApp::new(&[]);
    for i in 0..300 {
        let res = t
            .view(T0 + 9 * HOUR_MS + i, "198.51.100.9", &format!("/p{i}"), "")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (_, token) = pixeltrack::secret::issue_api_token(
        &t.store,
        "export",
        pixeltrack::store::Scope::Read,
        None,
        0,
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let export = "/api/v1/export?site=testkey&format=ndjson";
    // Four exports whose bodies nobody reads: each fills its channel and waits.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let res = t
            .send("GET", export, &[("authorization", &auth)], "203.0.113.9")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        stalled.push(res);
    }
    let res = t
        .send("GET", export, &[("authorization", &auth)], "203.0.113.9")
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "10");
    let msg = String::from_utf8(body(res).await).unwrap();
    assert!(msg.contains("exports are running"), "{msg}");
    let res = t
        .send(
            "GET",
            "/api/v1/sites",
            &[("authorization", &auth)],
            "203.0.113.9",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the API answers beside them");
    // The clients go away: their exports end, and a new one streams every event.
    drop(stalled);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = t
            .send("GET", export, &[("authorization", &auth)], "203.0.113.9")
            .await;
        if res.status() == StatusCode::OK {
            let text = String::from_utf8(body(res).await).unwrap();
            assert_eq!(text.lines().count(), 300);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "exports still held");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
