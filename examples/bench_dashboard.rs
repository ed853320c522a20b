//! The dashboard's site page on demo data: everything its panels read (overview and
//! previous period, the daily series, 17 breakdowns, goals, conversions, realtime,
//! campaigns) for the default 30-day range, and the page rendered to HTML. Data comes
//! from the real `pixeltrack demo` generator (real enrichment and writer), once at the
//! demo's default size and once at ten times that, in the same run.
//!
//! `cargo run --release --example bench_dashboard`
//!
//! `cargo run --release --example bench_dashboard -- DATA_DIR DOMAIN` times the page of
//! an existing store instead (say the 10 M-event demo month: `pixeltrack --data DIR demo
//! --days 30 --visitors-per-day 140000`), after the hourly rollup compaction a running
//! server would have done: the first load (which counts and keeps the wildcard goal's
//! days and the conversions' credits), then the median of 11, and two filtered views (their
//! first load, which counts and keeps their whole days, then the median of 5). With
//! `PIXELTRACK_STORE__BACKEND=clickhouse` (and `…__URL`, `…__USER`, `…__PASSWORD`) the
//! page reads the events and rollups forwarded to ClickHouse, as an admin's does.
//! `BENCH_PROFILE_SECS=N` then loads the unfiltered page for N seconds (for `perf record`).

use std::time::Instant;

use pixeltrack::clock::{day_of, Clock};
use pixeltrack::config::Config;
use pixeltrack::report::ads::Model;
use pixeltrack::store::{EventStore, Pattern, SiteStore, SqliteStore};
use pixeltrack::web::dashboard::{load_site, site_body, Frame, View};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(visitors_per_day: u32) -> (u64, f64, f64, f64, f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    }
    .validate()
    .expect("config");
    let store = SqliteStore::open(dir.path()).expect("store");
    let (site, events) =
        pixeltrack::cli::demo::run(&store, &rt, 30, visitors_per_day, false, &Clock::System)
            .expect("demo");
    // The demo adds two goals (one exact, one with `*`), an ad campaign and conversions.
    let model = Model::from_config(&rt.config.ads);
    let now = Clock::System.now_ms();
    let view = View::parse("", day_of(now)).expect("view");
    let filtered = View::parse("f=source%3D%3DGoogle", day_of(now)).expect("view");
    let (mut data_ms, mut page_ms, mut filtered_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (a, b) = view.range.millis();
    let docs = Pattern::parse("/docs*").unwrap();
    let mut goal_ms = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let d = load_site(&store, &site, &view, model, now).expect("data");
        data_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let frame = Frame {
            base: "/sites/x",
            user: None,
            public_url: "http://127.0.0.1:8080",
        };
        let html = site_body(&frame, &site, &view, &d).into_string();
        assert!(html.len() > 10_000);
        page_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        load_site(&store, &site, &filtered, model, now).expect("filtered");
        filtered_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        store.pattern_counts(site.id, &docs, a, b).expect("goal");
        goal_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // What a running server does hourly: fold old days' hourly rollups into daily rows.
    pixeltrack::store::compact_rollups(&store, now).expect("compaction");
    let mut compacted_ms = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        load_site(&store, &site, &view, model, now).expect("data");
        compacted_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (
        events,
        median(data_ms),
        median(page_ms),
        median(filtered_ms),
        median(goal_ms),
        median(compacted_ms),
    )
}

/// The page of an existing store's site: first load, median of 11, and two filtered
/// views (their first load, then the median of 5).
fn existing(dir: &str, domain: &str) {
    // `PIXELTRACK_*` settings apply as for the server: with `PIXELTRACK_STORE__BACKEND=
    // clickhouse` (and its url, user, password) the page reads ClickHouse, as an admin's.
    let mut config = Config::load(None, std::env::vars(), &[]).expect("config");
    config.data_dir = dir.into();
    let rt = config.validate().expect("config");
    let mut store = SqliteStore::open(std::path::Path::new(dir)).expect("store");
    if rt.config.store.backend == pixeltrack::config::Backend::Clickhouse {
        let reader = pixeltrack::store::clickhouse::reader::ClickHouseReader::new(&rt.config.store)
            .expect("ClickHouse reader");
        store = store.with_reads_from(Box::new(reader));
        println!(
            "reading events and rollups from ClickHouse ({})",
            rt.config.store.url
        );
    }
    let site = store
        .sites()
        .expect("sites")
        .into_iter()
        .find(|s| s.domain == domain)
        .expect("no such site");
    let model = Model::from_config(&rt.config.ads);
    let now = Clock::System.now_ms();
    // What a running server has done by now (hourly): old days' hourly rollups folded
    // into daily rows. A store the demo just wrote has none folded yet.
    let folded = pixeltrack::store::compact_rollups(&store, now).expect("compaction");
    println!("{folded} hourly rollup rows folded into daily ones, as the server does hourly");
    // A filtered view's first load is timed as the first: the days earlier runs kept
    // for these filters are let go.
    let db =
        rusqlite::Connection::open(std::path::Path::new(dir).join("pixeltrack.db")).expect("db");
    let dropped = db
        .execute("DELETE FROM report_days WHERE key LIKE 'web%'", [])
        .expect("drop kept filtered days");
    drop(db);
    println!("{dropped} kept filtered days let go");
    // What a running server holds by now: the past days' segments (`reports.segment_days`).
    let mb = usize::try_from(rt.config.reports.segment_memory_mb << 20).unwrap_or(usize::MAX);
    store
        .segments()
        .configure(i64::from(rt.config.reports.segment_days), mb);
    let t = Instant::now();
    let built = store.refresh_segments(now).expect("segments");
    let (held, events, bytes) = store.segments().held();
    println!(
        "{built} day segments read in {:.1} s, as the server does in the background: {held} held, {events} events, {} MiB",
        t.elapsed().as_secs_f64(),
        bytes >> 20
    );
    // What the server's refresh costs every 15 s when nothing changed: the marks read.
    let t = Instant::now();
    let again = store.refresh_segments(now).expect("segments");
    println!(
        "a refresh with nothing to read ({again} read): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let view = View::parse("", day_of(now)).expect("view");
    let time = |view: &View| {
        let t = Instant::now();
        load_site(&store, &site, view, model, now).expect("data");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let first = time(&view);
    let median_ms = median((0..11).map(|_| time(&view)).collect());
    println!(
        "{domain} in {dir}, default 30-day range: first load {first:.1} ms, then {median_ms:.1} ms (median of 11; {:.2}x of the 100 ms budget)",
        median_ms / 100.0
    );
    // `BENCH_PROFILE_SECS=N`: the unfiltered page again and again for N seconds, for
    // `perf record -p` to see where its time goes.
    if let Some(secs) = std::env::var("BENCH_PROFILE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        let t = Instant::now();
        let mut loads = 0;
        while t.elapsed().as_secs_f64() < secs {
            time(&view);
            loads += 1;
        }
        println!(
            "profiling: {loads} loads in {secs} s ({:.1} ms each)",
            secs * 1000.0 / f64::from(loads)
        );
    }
    // A filtered view's first load counts its whole days (and keeps them); the loads
    // after it read the kept days and count today's events only.
    for f in [
        "source%3D%3DGoogle",
        "browser%3D%3DChrome",
        "page%7Edocs",
        "country%21%3DUS",
    ] {
        let filtered = View::parse(&format!("f={f}"), day_of(now)).expect("view");
        let first = time(&filtered);
        let later = median((0..5).map(|_| time(&filtered)).collect());
        println!("filtered by {f}: first load {first:.1} ms, then {later:.1} ms (median of 5)");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [dir, domain] = args.as_slice() {
        existing(dir, domain);
        return;
    }
    println!("site page, default 30-day range, median of 21 runs");
    let mut base = 0.0;
    for vpd in [400, 4_000] {
        let (events, data, page, filtered, goal, compacted) = run(vpd);
        if base == 0.0 {
            base = data;
        }
        println!(
            "{events:>8} events ({vpd} visitors/day): data {data:.2} ms ({:.2}x of the 100 ms budget; the wildcard goal alone {goal:.2} ms), after the hourly compaction {compacted:.2} ms ({:.2}x), HTML {page:.2} ms, filtered by source {filtered:.2} ms; data vs demo size {:.2}x",
            data / 100.0,
            compacted / 100.0,
            data / base
        );
    }
}
