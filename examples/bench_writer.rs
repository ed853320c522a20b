//! The writer thread alone, as the server drives it under load: batches of a few events
//! committed with `Index::Later` (derived rows gathered and written once a second), a
//! passive checkpoint every second beside it. The events are shaped like the realistic
//! mix's web hits (a Zipf-distributed visitor pool with new visitors arriving, 2,000
//! pages with titles, referrers, browsers, countries), made in memory, so the time
//! measured is the writer's own: sessions, rollups, unique keys, SQLite. HTTP, parsing
//! and enrichment are not in it (`scripts/bench-pixel.sh` measures those).
//!
//! Prints the writer's CPU time per event (the thread's own clock) and the bytes it
//! wrote per event (`/proc/thread-self/io`), alone and with the checkpoints' copies into
//! the database, so two builds can be compared on a noisy machine where the req/s of the
//! whole server moves ±20 % between runs.
//!
//! `cargo run --release --example bench_writer [-- EVENTS [BATCH [TOUCH%]]]` (300000, 14, 0)
//!
//! TOUCH%: that share of the page views carries an ad click id (`gclid`), and that share
//! of the other events are conversions (the realistic mix has a few % of such touches).
//! Their entries land in the middle of the touch indexes (by visitor, by click id)
//! instead of appending, and their page splits make SQLite walk the whole page cache at
//! the next commit on a store under 1 GiB (`pcache1TruncateUnsafe`; docs/benchmarks.md).
//! 0 draws nothing more: the same events, and the same checksum, as earlier runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

// The server's allocator (src/main.rs), so the writer measured here allocates as it does.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pixeltrack::ingest::{EventWriter, Index};
use pixeltrack::metrics::Metrics;
use pixeltrack::model::{Device, Event, SiteKey};
use pixeltrack::store::{SiteStore, SqliteStore};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Zipf-like over 0..n: small values far more often (exponent about 1).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

const SOURCES: [(&str, &str, &str); 7] = [
    ("", "", ""),
    ("", "", ""),
    ("Google", "www.google.com", "organic"),
    ("Google", "www.google.de", "organic"),
    ("Bing", "www.bing.com", "organic"),
    ("Hacker News", "news.ycombinator.com", "referral"),
    ("Twitter", "t.co", "social"),
];
const BROWSERS: [(&str, &str, Device); 6] = [
    ("Chrome", "Windows", Device::Desktop),
    ("Safari", "iOS", Device::Mobile),
    ("Chrome", "Android", Device::Mobile),
    ("Safari", "macOS", Device::Desktop),
    ("Edge", "Windows", Device::Desktop),
    ("Firefox", "Linux", Device::Desktop),
];
const COUNTRIES: [&str; 8] = ["US", "DE", "GB", "FR", "IN", "BR", "NL", "JP"];

fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn written() -> u64 {
    std::fs::read_to_string("/proc/thread-self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(14);
    let touch_pct: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let site = store
        .add_site(
            &SiteKey::parse("benchwriter").expect("key"),
            "bench.example",
            "Bench",
            0,
        )
        .expect("site");
    let metrics = Arc::new(Metrics::default());
    let mut writer = EventWriter::new(
        store
            .writer(pixeltrack::config::Synchronous::Normal)
            .expect("writer"),
        30 * 60_000,
        metrics.clone(),
    )
    .with_index_bounds(Duration::from_millis(1_000), 200_000, 1_000)
    .with_memory_bounds(4_000_000, 200_000);
    let start_ms = pixeltrack::clock::Clock::System.now_ms();
    writer.recover(start_ms).expect("recover");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let pages: Vec<(String, String)> = (0..2_000)
        .map(|i| {
            (
                format!("/p/{i}/article-{}", i * 7919 % 10_007),
                format!("Article {i}: a title"),
            )
        })
        .collect();
    let mut new_visitor = 1u64 << 40;
    // From half past midnight today, 12 ms apart: deterministic within a day (two builds
    // compared on the same day count the same hours), and a run of 300,000 events
    // crosses an hour, where visits that began in the hour before continue.
    let mut ts = start_ms / pixeltrack::clock::DAY_MS * pixeltrack::clock::DAY_MS + 1_800_000;
    let (mut cpu, mut bytes, mut done) = (Duration::ZERO, 0u64, 0u64);
    let mut checkpointed = 0u64;
    let mut last_checkpoint = Instant::now();
    let wall = Instant::now();
    while done < total {
        let mut events = Vec::with_capacity(batch);
        for _ in 0..batch {
            ts += 12;
            // A fifth of the hits from visitors never seen before, the rest from a pool of
            // 40,000 where a few come back often.
            let visitor = if rng.below(5) == 0 {
                new_visitor += 1;
                new_visitor
            } else {
                rng.zipf(40_000) + 1
            };
            let (source, host, medium) = SOURCES[(visitor % SOURCES.len() as u64) as usize];
            let (browser, os, device) = BROWSERS[(visitor % 6) as usize];
            let (path, title) = &pages[rng.zipf(pages.len() as u64) as usize];
            let pageview = rng.below(10) != 0;
            let touch = touch_pct > 0 && rng.below(100) < touch_pct;
            let (name, click_id, value_minor, currency) = match (pageview, touch) {
                // A landing from an ad: the click id a report credits conversions to.
                (true, true) => ("pageview", format!("gclid-{:x}", rng.next()), None, ""),
                (true, false) => ("pageview", String::new(), None, ""),
                (false, true) => ("conversion", String::new(), Some(1_999), "EUR"),
                (false, false) => ("signup", String::new(), None, ""),
            };
            events.push(Event {
                site_id: site.id.0,
                ts_ms: ts,
                name: name.into(),
                click_id,
                value_minor,
                currency: currency.into(),
                visitor_id: (visitor as i64).wrapping_mul(0x5851_F42D_4C95_7F2D),
                host: "bench.example".into(),
                path: path.clone(),
                title: if pageview {
                    title.clone()
                } else {
                    String::new()
                },
                referrer: if host.is_empty() {
                    String::new()
                } else {
                    format!("https://{host}/")
                },
                referrer_host: host.into(),
                source: source.into(),
                medium: medium.into(),
                browser: browser.into(),
                browser_version: "131".into(),
                os: os.into(),
                device,
                props: if pageview { "{}" } else { r#"{"plan":"pro"}"# }.into(),
                country: COUNTRIES[(visitor % 8) as usize].into(),
                ..Event::default()
            });
        }
        // The byte counter's read (a file open and read) outside the CPU measured.
        let b0 = written();
        let c0 = thread_cpu();
        assert!(
            writer.commit(events, Vec::new(), Index::Later),
            "commit failed"
        );
        cpu += thread_cpu() - c0;
        bytes += written() - b0;
        done += batch as u64;
        if last_checkpoint.elapsed() >= Duration::from_secs(1) {
            // The server's job, on another thread there: not the writer's time, but
            // bytes the events cost (pages copied from the WAL into the database).
            let b0 = written();
            store.checkpoint_passive().expect("checkpoint");
            checkpointed += written() - b0;
            last_checkpoint = Instant::now();
        }
    }
    let b0 = written();
    let c0 = thread_cpu();
    assert!(writer.commit(Vec::new(), Vec::new(), Index::Now));
    cpu += thread_cpu() - c0;
    bytes += written() - b0;
    // What the derived rows say, as one number: two builds that count the same agree.
    // Rows whose deltas cancelled out (an exit page every visit moved on from) exist or
    // not depending on when the derived rows were written; reports skip them, so here too.
    let conn = rusqlite::Connection::open(dir.path().join("pixeltrack.db")).expect("db");
    let mut st = conn
        .prepare(
            "SELECT site_id, dim, hour, value, visitors, visits, pageviews, events, bounces, \
             duration_ms FROM rollups \
             WHERE visitors != 0 OR visits != 0 OR pageviews != 0 OR events != 0 \
                OR bounces != 0 OR duration_ms != 0 \
             ORDER BY site_id, dim, hour, value",
        )
        .expect("rollups");
    let mut rows = st.query([]).expect("rollups");
    let mut sum = 0xcbf2_9ce4_8422_2325u64;
    let mut n = 0u64;
    while let Some(r) = rows.next().expect("row") {
        for i in 0..10 {
            let v: rusqlite::types::Value = r.get(i).expect("column");
            for b in format!("{v:?}").bytes() {
                sum = (sum ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        n += 1;
    }
    println!("rollup rows {n}, checksum {sum:016x}");
    println!(
        "{done} events in batches of {batch} ({touch_pct} % touches): writer CPU {:.2} µs/event, {:.0} B written/event (WAL), {:.0} B with checkpoints, wall {:.1} s",
        cpu.as_secs_f64() * 1e6 / done as f64,
        bytes as f64 / done as f64,
        (bytes + checkpointed) as f64 / done as f64,
        wall.elapsed().as_secs_f64()
    );
}
