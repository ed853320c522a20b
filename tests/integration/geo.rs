//! Geolocation: region and city from a MaxMind-format database written by the test
//! itself, in the stored event, the rollups, filtered reports, the API, the CLI and the
//! export; a database replaced on disk is used without a restart; a CDN's country
//! header counts only from a trusted proxy; without a database, countries come from
//! the registries' data as before.

use std::path::Path;
use std::time::Duration;

use axum::Router;
use pixeltrack::clock::{Clock, DAY_MS, HOUR_MS};
use pixeltrack::model::{Event, Site};
use pixeltrack::report::{self, DateRange, Query};
use pixeltrack::server::App;
use pixeltrack::store::prelude::*;
use pixeltrack::store::{Dim, Filter, SqliteStore};

use crate::common::{self, geo::city_mmdb, CHROME};

const DAY0: i64 = 20_394;
const T0: i64 = DAY0 * DAY_MS;

/// TEST-NET addresses: in no registry's data, so a country can only come from the
/// test's database (or a CDN header).
const MUNICH: (&str, &str, &str, &str, &str) = ("203.0.113.0/24", "DE", "BY", "Bavaria", "Munich");
const PARIS: (&str, &str, &str, &str, &str) =
    ("198.51.100.0/24", "FR", "IDF", "Île-de-France", "Paris");

struct GeoApp {
    app: Option<App>,
    router: Router,
    clock: Clock,
    store: SqliteStore,
    site: Site,
    _dir: tempfile::TempDir,
}

impl GeoApp {
    fn new(extra: &[(&str, toml::Value)]) -> GeoApp {
        let fresh = common::InProcess::new("geokey", extra);
        let clock = Clock::fixed(T0 + 9 * HOUR_MS);
        let app = App::build(&fresh.rt, clock.clone()).unwrap();
        GeoApp {
            router: app.router(),
            app: Some(app),
            clock,
            store: fresh.store,
            site: fresh.site,
            _dir: fresh.dir,
        }
    }

    async fn hit(&self, peer: &str, path: &str, headers: &[(&str, &str)]) {
        self.clock.set(self.clock.now_ms() + 1_000);
        let uri = format!(
            "/p.gif?s={}&u=https%3A%2F%2Fexample.com{}",
            self.site.key,
            path.replace('/', "%2F")
        );
        let mut h = vec![("user-agent", CHROME)];
        h.extend_from_slice(headers);
        let res = common::oneshot(
            self.router.clone(),
            "GET",
            &uri,
            &h,
            &format!("{peer}:4000"),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert!(
            res.headers().get("x-pixel-reason").is_none(),
            "{path} stored"
        );
    }

    async fn finish(mut self) -> Self {
        if let Some(app) = self.app.take() {
            app.finish().await.expect("every event written");
        }
        self
    }

    /// `(path, country, region, city)` of every stored event, in order.
    fn places(&self) -> Vec<(String, String, String, String)> {
        let mut out = Vec::new();
        self.store
            .for_each_event(self.site.id, 0, i64::MAX, &mut |e: Event| {
                out.push((e.path, e.country.into(), e.region.into(), e.city.into()));
                Ok(())
            })
            .unwrap();
        out
    }

    /// `(value, visitors, pageviews)` of a breakdown of the test day.
    fn rows(&self, dim: Dim, filters: &[&str]) -> Vec<(String, i64, i64)> {
        let q = Query {
            range: DateRange {
                from_day: DAY0,
                to_day: DAY0,
            },
            filters: filters.iter().map(|f| Filter::parse(f).unwrap()).collect(),
        };
        let mut rows: Vec<_> = report::breakdown(&self.store, &self.site, &q, dim, 50)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| (r.value, r.visitors, r.pageviews))
            .collect();
        rows.sort();
        rows
    }
}

fn db_file(dir: &Path, entries: &[(&str, &str, &str, &str, &str)]) -> std::path::PathBuf {
    let path = dir.join("GeoLite2-City.mmdb");
    common::geo::replace(&path, &city_mmdb(entries));
    path
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn place(path: &str, country: &str, region: &str, city: &str) -> (String, String, String, String) {
    (s(path), s(country), s(region), s(city))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_gets_region_and_city_in_its_event_rollups_and_filtered_reports_and_a_replaced_database_is_used(
) {
    let files = tempfile::tempdir().unwrap();
    let db = db_file(files.path(), &[MUNICH, PARIS]);
    let t = GeoApp::new(&[("geo.mmdb", db.display().to_string().into())]);
    t.hit("203.0.113.7", "/a", &[]).await;
    t.hit("203.0.113.7", "/b", &[]).await;
    t.hit("198.51.100.9", "/a", &[]).await;
    // The file replaced as geoipupdate does it; the job's step, run now.
    common::geo::replace(
        &db,
        &city_mmdb(&[
            ("203.0.113.0/24", "DE", "HE", "Hesse", "Frankfurt am Main"),
            PARIS,
        ]),
    );
    t.app
        .as_ref()
        .unwrap()
        .state
        .collector
        .enricher
        .geo
        .reload();
    t.hit("203.0.113.50", "/c", &[]).await;
    let t = t.finish().await;

    assert_eq!(
        t.places(),
        vec![
            place("/a", "DE", "DE-BY", "Munich"),
            place("/b", "DE", "DE-BY", "Munich"),
            place("/a", "FR", "FR-IDF", "Paris"),
            place("/c", "DE", "DE-HE", "Frankfurt am Main"),
        ]
    );
    // Rollups: one row per region and city, visitors and pageviews as for countries.
    assert_eq!(
        t.rows(Dim::City, &[]),
        vec![
            (s("Frankfurt am Main"), 1, 1),
            (s("Munich"), 1, 2),
            (s("Paris"), 1, 1)
        ]
    );
    assert_eq!(
        t.rows(Dim::Region, &[]),
        vec![(s("DE-BY"), 1, 2), (s("DE-HE"), 1, 1), (s("FR-IDF"), 1, 1)]
    );
    assert_eq!(
        t.rows(Dim::Country, &[]),
        vec![(s("DE"), 2, 3), (s("FR"), 1, 1)]
    );
    // Filtered reports (raw events) agree with the rollups and select by place.
    assert_eq!(
        t.rows(Dim::Page, &["city==Munich"]),
        vec![(s("/a"), 1, 1), (s("/b"), 1, 1)]
    );
    assert_eq!(
        t.rows(Dim::City, &["region!=DE-BY"]),
        vec![(s("Frankfurt am Main"), 1, 1), (s("Paris"), 1, 1)]
    );
    assert_eq!(
        t.rows(Dim::Region, &["city~pari"]),
        vec![(s("FR-IDF"), 1, 1)]
    );
    let day0 = DateRange {
        from_day: DAY0,
        to_day: DAY0,
    };
    assert!(common::rollups_agree_with_raw_events(&t.store, t.site.id.0, day0) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cdn_country_header_counts_only_from_a_trusted_proxy() {
    let files = tempfile::tempdir().unwrap();
    let db = db_file(files.path(), &[MUNICH]);
    let t = GeoApp::new(&[
        ("geo.mmdb", db.display().to_string().into()),
        (
            "trusted_proxies",
            toml::Value::Array(vec!["10.0.0.0/8".into()]),
        ),
    ]);
    // From the client itself: anyone can write these headers.
    t.hit("192.0.2.44", "/untrusted", &[("cf-ipcountry", "DE")])
        .await;
    t.hit("203.0.113.7", "/untrusted-db", &[("cf-ipcountry", "FR")])
        .await;
    // Through the trusted proxy.
    let via = |ip: &'static str, header: &'static str, v: &'static str| {
        [("x-forwarded-for", ip), (header, v)]
    };
    t.hit("10.0.0.2", "/cf", &via("192.0.2.45", "cf-ipcountry", "AT"))
        .await;
    t.hit(
        "10.0.0.2",
        "/cloudfront",
        &via("203.0.113.8", "cloudfront-viewer-country", "DE"),
    )
    .await;
    t.hit(
        "10.0.0.2",
        "/other-country",
        &via("203.0.113.9", "cf-ipcountry", "AT"),
    )
    .await;
    for (path, v) in [("/xx", "XX"), ("/tor", "T1"), ("/markup", "<b>x</b>")] {
        t.hit("10.0.0.2", path, &via("192.0.2.46", "cf-ipcountry", v))
            .await;
    }
    let t = t.finish().await;
    assert_eq!(
        t.places(),
        vec![
            place("/untrusted", "", "", ""),
            place("/untrusted-db", "DE", "DE-BY", "Munich"),
            place("/cf", "AT", "", ""),
            place("/cloudfront", "DE", "DE-BY", "Munich"),
            // The CDN saw another country than the database: its region and city are not
            // mixed into the CDN's country.
            place("/other-country", "AT", "", ""),
            place("/xx", "", "", ""),
            place("/tor", "", "", ""),
            place("/markup", "", "", ""),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_database_countries_come_from_the_registries_as_before() {
    let t = GeoApp::new(&[]);
    t.hit("8.8.8.8", "/us", &[]).await;
    t.hit("1.0.16.1", "/jp", &[]).await;
    t.hit("203.0.113.7", "/test-net", &[]).await;
    let t = t.finish().await;
    assert_eq!(
        t.places(),
        vec![
            place("/us", "US", "", ""),
            place("/jp", "JP", "", ""),
            place("/test-net", "", "", "")
        ]
    );
    assert_eq!(t.rows(Dim::City, &[]), vec![(s(""), 3, 3)]);
}

/// The real binary, configured through the environment: the API's breakdowns and
/// filters, the CLI report and the export carry region and city, and a database
/// replaced while serving is picked up by the server's own job within seconds.
#[test]
fn the_server_reports_places_through_api_cli_and_export_and_reloads_a_replaced_database() {
    let files = tempfile::tempdir().unwrap();
    let db = db_file(files.path(), &[MUNICH, PARIS]);
    let (_dir, data, key) = common::site_dir("example.com");
    let v: serde_json::Value = serde_json::from_str(&common::cli(
        &data,
        &["token", "create", "--json", "--scope", "read"],
    ))
    .unwrap();
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    let server = common::Server::start(
        &data,
        &[
            ("PIXELTRACK_GEO__MMDB", db.to_str().unwrap()),
            ("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let hit = |ip: &str, path: &str| {
        let url = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com{path}");
        let res = server.get(&url, &[("User-Agent", CHROME), ("X-Forwarded-For", ip)]);
        assert_eq!((res.status, res.header("x-pixel-reason")), (200, None));
    };
    hit("203.0.113.7", "/a");
    hit("203.0.113.7", "/b");
    hit("198.51.100.9", "/a");

    let api = |q: &str| {
        let res = server.get(
            &format!("/api/v1/stats?site={key}&{q}"),
            &[("Authorization", &token)],
        );
        let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(res.status, 200, "{q}: {body}");
        body["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["value"].as_str().unwrap().to_owned(),
                    r["pageviews"].as_i64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        api("dimension=city&metrics=pageviews"),
        vec![(s("Munich"), 2), (s("Paris"), 1)]
    );
    assert_eq!(
        api("dimension=region&metrics=pageviews"),
        vec![(s("DE-BY"), 2), (s("FR-IDF"), 1)]
    );
    assert_eq!(
        api("dimension=page&metrics=pageviews&filters=city%3D%3DParis"),
        vec![(s("/a"), 1)]
    );
    let doc = server.get("/api/v1/openapi.json", &[]);
    let doc = String::from_utf8_lossy(&doc.body);
    assert!(
        doc.contains("\"region\"") && doc.contains("\"city\""),
        "{doc}"
    );

    let text = common::cli(
        &data,
        &[
            "report",
            "--site",
            "example.com",
            "--filter",
            "region==DE-BY",
        ],
    );
    assert!(text.contains("Munich") && !text.contains("Paris"), "{text}");
    let csv = common::cli(
        &data,
        &["export", "--site", "example.com", "--format", "csv"],
    );
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains(",country,region,city,asn,as_org,"),
        "{header}"
    );
    assert!(csv.contains(",FR,FR-IDF,Paris,"), "{csv}");

    // Replaced while serving: the "reload geolocation databases" job reads it.
    common::geo::replace(
        &db,
        &city_mmdb(&[("203.0.113.0/24", "DE", "HE", "Hesse", "Frankfurt am Main")]),
    );
    let mut n = 0;
    common::wait_until(
        "a hit placed by the new database",
        Duration::from_secs(30),
        || {
            n += 1;
            std::thread::sleep(Duration::from_millis(300));
            let path = format!("/after{n}");
            hit("203.0.113.7", &path);
            common::export(&data, &key)
                .into_iter()
                .find(|e| e["path"] == path.as_str() && e["city"] == "Frankfurt am Main")
                .map(|e| assert_eq!(e["region"], "DE-HE"))
        },
    );
    let metrics = String::from_utf8_lossy(&server.get("/metrics", &[]).body).into_owned();
    assert_eq!(
        common::metric(
            &metrics,
            "pixeltrack_geo_database_build_timestamp_seconds{setting=\"geo.mmdb\"}"
        ),
        1_700_000_000.0
    );
    assert_eq!(
        common::metric(
            &metrics,
            "pixeltrack_geo_reload_failures_total{setting=\"geo.mmdb\"}"
        ),
        0.0
    );
    let log = server.log_text();
    // Loaded at start and again when replaced.
    assert_eq!(
        log.matches("geolocation database loaded").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("203.0.113."), "the client IP is not logged");
}
