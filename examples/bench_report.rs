//! Report cost versus stored events: builds two stores in one run, one with ~10 k and
//! one with ~1 M raw events over the same 30 days and the same set of pages, sources
//! and browsers, then times the full site report (`report::site_report`) on each.
//! Rollups make the report's cost depend on hours × distinct values, not on events.
//!
//! `cargo run --release --example bench_report [-- <small> <large>]`

use std::sync::Arc;
use std::time::Instant;

use pixeltrack::clock::{day_of, DAY_MS};
use pixeltrack::ingest::EventWriter;
use pixeltrack::metrics::Metrics;
use pixeltrack::model::{Device, Event, SiteKey};
use pixeltrack::report::{site_report, DateRange};
use pixeltrack::store::{EventStore, SiteStore, SqliteStore};

const PAGES: [&str; 8] = [
    "/", "/pricing", "/docs", "/blog", "/about", "/a", "/b", "/c",
];
const SOURCES: [&str; 5] = ["", "Google", "Hacker News", "Reddit", "news"];
const BROWSERS: [&str; 4] = ["Chrome", "Firefox", "Safari", "Edge"];

fn fill(events: u64, now: i64) -> (tempfile::TempDir, SqliteStore, pixeltrack::model::Site) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let site = store
        .add_site(
            &SiteKey::parse("bench").expect("key"),
            "bench.example",
            "Bench",
            0,
        )
        .expect("site");
    let mut w = EventWriter::new(
        store
            .writer(pixeltrack::config::Synchronous::Normal)
            .expect("writer"),
        30 * 60_000,
        Arc::new(Metrics::default()),
    );
    let first = now - 30 * DAY_MS;
    let step = (30 * DAY_MS) / events as i64;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..events {
        let ts = first + i as i64 * step;
        // ~2,000 visitors a day, each seen a few times.
        let visitor = (day_of(ts) * 10_000 + (i % 2_000) as i64) + 1;
        let k = i as usize;
        batch.push(Event {
            site_id: site.id.0,
            ts_ms: ts,
            name: "pageview".into(),
            visitor_id: visitor,
            host: "bench.example".into(),
            path: PAGES[k % PAGES.len()].into(),
            source: SOURCES[(k / 7) % SOURCES.len()].into(),
            medium: "referral".into(),
            browser: BROWSERS[(k / 3) % BROWSERS.len()].into(),
            os: "Windows".into(),
            device: Device::Desktop,
            props: "{}".into(),
            ..Event::default()
        });
        if batch.len() == 10_000 {
            assert!(w.write(std::mem::take(&mut batch), Vec::new()));
        }
    }
    assert!(w.write(batch, Vec::new()));
    (dir, store, site)
}

fn time_report(store: &SqliteStore, site: &pixeltrack::model::Site, range: DateRange) -> f64 {
    let mut runs: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            let r = site_report(
                store,
                site,
                &pixeltrack::report::Query::new(range),
                10,
                pixeltrack::report::ads::Model::from_config(
                    &pixeltrack::config::Config::default().ads,
                ),
                range.millis().1,
            )
            .expect("report");
            std::hint::black_box(r);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[runs.len() / 2]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (small, large) = (
        args.first().copied().unwrap_or(10_000),
        args.get(1).copied().unwrap_or(1_000_000),
    );
    let now = day_of(chrono::Utc::now().timestamp_millis()) * DAY_MS;
    let range = DateRange {
        from_day: day_of(now) - 30,
        to_day: day_of(now),
    };
    let mut results = Vec::new();
    for n in [small, large] {
        let t = Instant::now();
        let (_dir, store, site) = fill(n, now);
        let fill_s = t.elapsed().as_secs_f64();
        let stored = store.count_events(site.id).expect("count");
        let ms = time_report(&store, &site, range);
        println!("{stored:>9} events (written in {fill_s:.1} s): full 30-day report, median of 21 runs: {ms:.2} ms");
        results.push(ms);
    }
    println!("ratio large/small: {:.2}", results[1] / results[0]);
}
