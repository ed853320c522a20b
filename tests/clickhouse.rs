//! Forwarding to a real ClickHouse server (Debian's `clickhouse-server`, 18.16 here),
//! started by `scripts/clickhouse.sh`. `#[ignore]`d in plain `cargo test`; `.ci/run`
//! installs the package, starts a server and runs this suite with `--ignored
//! --test-threads=1` (one test stops and restarts the server). Without the server the
//! suite fails; it never skips.
//!
//! `PT_TEST_CLICKHOUSE=DIR:BASEPORT` names the servers `scripts/clickhouse.sh DIR
//! BASEPORT all` started (password `pt-secret`): the single server on BASEPORT, the
//! two-shard cluster `pt` on BASEPORT+10 and +20.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{cli, http, metric, site_dir, wait_until, Server, CHROME};
use pixeltrack::store::clickhouse::sql::literal;

const PASSWORD: &str = "pt-secret";

struct Ch {
    dir: PathBuf,
    port: u16,
}

fn ch() -> Ch {
    let spec = std::env::var("PT_TEST_CLICKHOUSE").expect(
        "PT_TEST_CLICKHOUSE=DIR:BASEPORT must name a server started with \
         'scripts/clickhouse.sh DIR BASEPORT all' (.ci/run does this)",
    );
    let (dir, port) = spec.rsplit_once(':').expect("DIR:BASEPORT");
    Ch {
        dir: dir.into(),
        port: port.parse().expect("port"),
    }
}

impl Ch {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends `sql` as the body of an HTTP/1.0 POST (no chunked answer to decode);
    /// None when ClickHouse cannot be reached (it is down).
    fn request(&self, sql: &str) -> Option<(u16, String)> {
        self.request_to(self.port, sql)
    }

    /// The node on `port` of this script's set: `port` for the single server, +10 and
    /// +20 for the cluster's two shards.
    fn request_to(&self, port: u16, sql: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        // Generous: a DROP DATABASE on a loaded two-core machine can take a while.
        s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
        let req = format!(
            "POST / HTTP/1.0\r\nX-ClickHouse-User: default\r\nX-ClickHouse-Key: {PASSWORD}\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let r = common::parse_response(&raw, false)?;
        Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
    }

    /// Runs `sql` and returns the body; panics when it fails.
    fn query(&self, sql: &str) -> String {
        let (status, body) = self.request(sql).expect("ClickHouse reachable");
        assert_eq!(status, 200, "{sql}: {body}");
        body
    }

    /// Like `query`, None when ClickHouse cannot answer.
    fn try_query(&self, sql: &str) -> Option<String> {
        self.request(sql)
            .and_then(|(status, body)| (status == 200).then_some(body))
    }

    /// (rows, distinct event ids) of the events (markers left out) in `db`.
    fn counts(&self, db: &str) -> Option<(u64, u64)> {
        let out = self.try_query(&format!(
            "SELECT count(), uniqExact(event_id) FROM {db}.events WHERE site_id != 0"
        ))?;
        let mut it = out.split_whitespace().map(|v| v.parse::<u64>().unwrap());
        Some((it.next()?, it.next()?))
    }

    fn node(&self, action: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/clickhouse.sh");
        let st = Command::new(script)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .args([action, "single"])
            .status()
            .expect("scripts/clickhouse.sh");
        assert!(st.success(), "clickhouse.sh {action} single failed");
    }
}

/// A database name of this test's own, dropped first if an earlier run left it.
fn fresh_db(ch: &Ch, test: &str) -> String {
    let db = format!("pt_test_{test}");
    ch.query(&format!("DROP DATABASE IF EXISTS {db}"));
    db
}

fn forwarding_env(ch: &Ch, db: &str, batch_rows: &str) -> Vec<(String, String)> {
    vec![
        ("PIXELTRACK_STORE__BACKEND".into(), "clickhouse".into()),
        ("PIXELTRACK_STORE__URL".into(), ch.url()),
        ("PIXELTRACK_STORE__DATABASE".into(), db.into()),
        ("PIXELTRACK_STORE__USER".into(), "pixeltrack".into()),
        ("PIXELTRACK_STORE__PASSWORD".into(), PASSWORD.into()),
        ("PIXELTRACK_STORE__BATCH_ROWS".into(), batch_rows.into()),
        ("PIXELTRACK_STORE__TIMEOUT_MS".into(), "5000".into()),
        ("PIXELTRACK_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
    ]
}

fn start(data: &Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(data, &env)
}

/// Hit `n` of a varied stream: its own visitor (client IP), page and title.
fn hit(server: &Server, key: &str, n: u64) -> Option<common::Response> {
    let ip = format!("203.0.{}.{}", (n / 250) % 250, n % 250 + 1);
    let target = format!(
        "/p.gif?s={key}&u=https%3A%2F%2Fshop.example%2Fp%2F{}&t=Page%20%27{}%27%20%5C%20%C3%A9",
        n % 37,
        n % 11
    );
    http(
        server.addr,
        "GET",
        &target,
        &[("User-Agent", CHROME), ("X-Forwarded-For", &ip)],
    )
    .ok()
}

/// Whether a response says the hit is stored: 200 without a reason header.
fn stored(r: &common::Response) -> bool {
    r.status == 200 && r.header("x-pixel-reason").is_none()
}

fn wait_for_count(ch: &Ch, db: &str, want: u64, limit: Duration) {
    let mut last = None;
    wait_until(&format!("ClickHouse holding {want} events"), limit, || {
        last = ch.counts(db);
        match last {
            Some((n, _)) if n >= want => Some(()),
            _ => None,
        }
    });
    // Give a late duplicate (there must be none) the time to show.
    std::thread::sleep(Duration::from_millis(1500));
    let (n, distinct) = ch.counts(db).expect("counts");
    assert_eq!(
        (n, distinct),
        (want, want),
        "every acknowledged event exactly once"
    );
}

/// Every hit answered as stored arrives in ClickHouse once, with its fields intact
/// (quotes, backslashes and non-ASCII in the title), in many small batches.
#[test]
#[ignore]
fn every_acknowledged_hit_arrives_exactly_once() {
    let ch = ch();
    let db = fresh_db(&ch, "acked");
    let (_dir, data, key) = site_dir("shop.example");
    let server = start(&data, &forwarding_env(&ch, &db, "40"));
    let acked = (0..400)
        .filter(|n| hit(&server, &key, *n).is_some_and(|r| stored(&r)))
        .count() as u64;
    assert_eq!(acked, 400);
    wait_for_count(&ch, &db, acked, Duration::from_secs(60));
    let titles = ch.query(&format!(
        "SELECT DISTINCT title FROM {db}.events WHERE site_id != 0 ORDER BY title FORMAT TSVRaw"
    ));
    assert!(
        titles.lines().any(|t| t == "Page '3' \\ é"),
        "titles arrive intact: {titles}"
    );
    let visitors = ch.query(&format!(
        "SELECT uniqExact(visitor_id) FROM {db}.events WHERE site_id != 0"
    ));
    assert_eq!(visitors.trim(), "400", "one visitor per client IP");
    // One marker per batch part: 400 events in batches of at most 40.
    let markers: u64 = ch
        .query(&format!(
            "SELECT count() FROM {db}.events_local WHERE site_id = 0"
        ))
        .trim()
        .parse()
        .unwrap();
    assert!(markers >= 10, "{markers} batches");
    let m = server.get("/metrics", &[]);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert_eq!(metric(&text, "pixeltrack_forwarded_events_total"), 400.0);
    assert_eq!(metric(&text, "pixeltrack_spool_backlog"), 0.0);
    let (status, log) = server.terminate_keeping_log();
    assert!(status.success());
    assert!(
        !log.contains(PASSWORD),
        "the ClickHouse password is never logged"
    );
}

/// A month of demo traffic (two month partitions, tens of thousands of events) already
/// in the spool when forwarding starts; kill -9 mid-way; after the restart every event
/// is in ClickHouse exactly once.
#[test]
#[ignore]
fn kill_9_mid_forward_then_restart_ships_the_spool_exactly_once() {
    let ch = ch();
    let db = fresh_db(&ch, "kill9");
    let (_dir, data) = common::data_dir();
    cli(
        &data,
        &[
            "demo",
            "--days",
            "40",
            "--visitors-per-day",
            "300",
            "--no-previous",
        ],
    );
    let stored: u64 =
        serde_json::from_str::<serde_json::Value>(&cli(&data, &["site", "list", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["events"].as_u64().unwrap())
            .sum();
    assert!(stored > 20_000, "{stored} demo events");
    // Small batches: hundreds of inserts, so the kill lands mid-way.
    let env = forwarding_env(&ch, &db, "50");
    let mut server = start(&data, &env);
    wait_until("a first part shipped", Duration::from_secs(60), || {
        ch.counts(&db).filter(|(n, _)| *n > 0)
    });
    server.child.kill().expect("kill -9");
    server.child.wait().unwrap();
    let (before, _) = ch.counts(&db).unwrap();
    assert!(before < stored, "killed mid-way: {before} of {stored}");
    let server = start(&data, &env);
    wait_for_count(&ch, &db, stored, Duration::from_secs(120));
    // The same events, not just as many: every site's count matches.
    let per_site = ch.query(&format!(
        "SELECT count() FROM {db}.events WHERE site_id != 0 AND toYYYYMM(ts) != toYYYYMM(now())"
    ));
    assert!(
        per_site.trim().parse::<u64>().unwrap() > 0,
        "the earlier month too"
    );
    drop(server);
}

/// ClickHouse stopped for 30 s under steady load, then started again: the collector
/// kept answering (the spool absorbed it, /readyz stayed ready) and every acknowledged
/// event arrives exactly once.
#[test]
#[ignore]
fn an_outage_under_load_loses_and_duplicates_nothing() {
    let ch = ch();
    let db = fresh_db(&ch, "outage");
    let (_dir, data, key) = site_dir("shop.example");
    let server = Arc::new(start(&data, &forwarding_env(&ch, &db, "200")));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4u64)
        .map(|t| {
            let (server, key, acked, stop) =
                (server.clone(), key.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    if hit(&server, &key, n).is_some_and(|r| stored(&r)) {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    wait_until("events in ClickHouse", Duration::from_secs(30), || {
        ch.counts(&db).filter(|(n, _)| *n > 0)
    });
    ch.node("stop-node");
    let during = acked.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(15));
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200, "the spool absorbs an outage");
    let text = String::from_utf8_lossy(&server.get("/metrics", &[]).body).into_owned();
    assert_eq!(metric(&text, "pixeltrack_forward_failing"), 1.0);
    assert!(metric(&text, "pixeltrack_spool_backlog") > 0.0);
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        acked.load(Ordering::Relaxed) > during + 100,
        "hits kept being stored during the outage"
    );
    ch.node("start-node");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    wait_for_count(
        &ch,
        &db,
        acked.load(Ordering::Relaxed),
        Duration::from_secs(90),
    );
}

/// Forwarding far behind (ClickHouse unreachable): past `store.spool_max_events` hits
/// get the image with `X-Pixel-Reason: spool_full` and are not stored, `/readyz` says
/// why — and once ClickHouse is reachable the backlog ships and hits are stored again.
#[test]
#[ignore]
fn a_full_spool_refuses_with_a_reason_until_it_drains() {
    let ch = ch();
    let db = fresh_db(&ch, "full");
    let (_dir, data, key) = site_dir("shop.example");
    let mut env = forwarding_env(&ch, &db, "100");
    env.push(("PIXELTRACK_STORE__SPOOL_MAX_EVENTS".into(), "20".into()));
    // Nothing listens on port 9 of loopback: every attempt fails at once.
    env.iter_mut()
        .find(|(k, _)| k == "PIXELTRACK_STORE__URL")
        .unwrap()
        .1 = "http://127.0.0.1:9".into();
    let server = start(&data, &env);
    let answers: Vec<_> = (0..30).map(|n| hit(&server, &key, n).unwrap()).collect();
    let ok = answers.iter().filter(|r| stored(r)).count();
    assert_eq!(ok, 20, "stored up to the bound");
    let refused = &answers[29];
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("x-pixel-reason"), Some("spool_full"));
    assert_eq!(refused.header("content-type"), Some("image/gif"));
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    assert!(String::from_utf8_lossy(&ready.body).contains("spool_max_events"));
    let (status, _) = server.terminate_keeping_log();
    assert!(status.success());
    // Reachable now: the 20 stored events ship and new hits are stored again.
    let env = forwarding_env(&ch, &db, "100");
    let server = start(&data, &env);
    wait_for_count(&ch, &db, 20, Duration::from_secs(30));
    assert!(stored(&hit(&server, &key, 99).unwrap()));
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200);
}

/// Erasing a visitor and removing a site delete their rows in ClickHouse too (the
/// forwarder runs the deletions after the batches that carried the rows); the other
/// sites' rows stay.
#[test]
#[ignore]
fn erasure_and_site_removal_follow_into_clickhouse() {
    let ch = ch();
    let db = fresh_db(&ch, "erase");
    let (_dir, data, key) = site_dir("shop.example");
    let other = common::add_site(&data, "other.example");
    // `hit` sends pages of shop.example: the other site owns that host too.
    cli(
        &data,
        &["site", "set", "other.example", "--hosts", "shop.example"],
    );
    let server = start(&data, &forwarding_env(&ch, &db, "100"));
    for n in 0..30 {
        assert!(hit(&server, &key, n).is_some_and(|r| stored(&r)));
        assert!(hit(&server, &other, n).is_some_and(|r| stored(&r)));
    }
    wait_for_count(&ch, &db, 60, Duration::from_secs(30));
    let events = common::export(&data, "shop.example");
    let visitor = events[0]["visitor_id"].as_i64().expect("visitor id");
    let theirs = events
        .iter()
        .filter(|e| e["visitor_id"].as_i64() == Some(visitor))
        .count() as u64;
    assert!(theirs >= 1);
    cli(&data, &["erase", "--visitor", &visitor.to_string()]);
    let rows_of = |v: i64| -> u64 {
        ch.query(&format!(
            "SELECT count() FROM {db}.events WHERE visitor_id = {v}"
        ))
        .trim()
        .parse()
        .unwrap()
    };
    wait_until(
        "the visitor erased in ClickHouse",
        Duration::from_secs(30),
        || (rows_of(visitor) == 0).then_some(()),
    );
    assert_eq!(ch.counts(&db).unwrap().0, 60 - theirs);
    cli(&data, &["site", "remove", "other.example"]);
    wait_until(
        "the site removed in ClickHouse",
        Duration::from_secs(30),
        || (ch.counts(&db).unwrap().0 == 30 - theirs).then_some(()),
    );
    let sites = ch.query(&format!(
        "SELECT DISTINCT site_id FROM {db}.events WHERE site_id != 0"
    ));
    assert_eq!(
        sites.lines().count(),
        1,
        "only shop.example is left: {sites}"
    );
    drop(server);
}

/// The admin keeps the whole days it reads from ClickHouse in its own database, checked
/// against ClickHouse's marks of each day (a hash sum of the day's rows): a change made in
/// ClickHouse alone — here rows deleted by hand, as another admin's erasure would — makes
/// the kept days it touches counted again, and the report equals one counted from scratch.
/// Six days of demo traffic in a fresh data directory, forwarded to a fresh database
/// by a server that keeps running.
struct ForwardedDemo {
    data: PathBuf,
    env: Vec<(String, String)>,
    events: Vec<serde_json::Value>,
    db: String,
    _server: Server,
    _dir: tempfile::TempDir,
}

fn forwarded_demo(ch: &Ch, test: &str) -> ForwardedDemo {
    let db = fresh_db(ch, test);
    let env = forwarding_env(ch, &db, "500");
    let (dir, data) = common::data_dir();
    cli(
        &data,
        &[
            "demo",
            "--days",
            "6",
            "--visitors-per-day",
            "80",
            "--no-previous",
        ],
    );
    let events = common::export(&data, "demo.pixeltrack.example");
    let server = start(&data, &env);
    wait_for_count(ch, &db, events.len() as u64, Duration::from_secs(60));
    ForwardedDemo {
        data,
        env,
        events,
        db,
        _server: server,
        _dir: dir,
    }
}

#[test]
#[ignore]
fn days_kept_from_clickhouse_are_counted_again_when_clickhouse_changes() {
    let ch = ch();
    let demo = forwarded_demo(&ch, "kept");
    let (data, env, db) = (demo.data.clone(), demo.env.clone(), demo.db.clone());
    let events = &demo.events;
    let site = "demo.pixeltrack.example";
    let from = (chrono::Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let args = [
        "--json",
        "report",
        "--site",
        site,
        "--from",
        &from,
        "--filter",
        "source==Google",
    ];
    let read = || read_as(&data, &env, "clickhouse", &args);
    // The visits ship beside the events: the two backends agree once they are in.
    let local = read_as(&data, &env, "sqlite", &args);
    wait_until("the backends agree", Duration::from_secs(60), || {
        (read() == local).then_some(())
    });
    let before = read();
    let db_file = data.join("pixeltrack.db");
    let kept = |key: &str| -> i64 {
        rusqlite::Connection::open(&db_file)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM report_days WHERE key LIKE ?1",
                [key],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(
        kept("web2:%@remote") > 0,
        "the days read from ClickHouse are kept"
    );
    assert!(
        kept("goal:page:/docs*@remote") > 0,
        "the wildcard goal's days are kept too"
    );
    let again = read();
    assert!(
        again == before,
        "a second read from the kept days: {}",
        first_difference(&again, &before, ("second read", "first read"))
    );
    // A person (not a bot: reports leave bots out, so deleting one changes nothing)
    // from Google who read the docs (the demo's wildcard goal) on a whole past day,
    // deleted in ClickHouse only. Days 2 to 5 ago: ended over an hour ago whenever the
    // test runs, and four days of demo traffic always hold one.
    let today = chrono::Utc::now().timestamp_millis() / 86_400_000;
    let visitor = events
        .iter()
        .find(|e| {
            let ms = e["time"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis());
            e["source"] == "Google"
                && e["bot"].is_null()
                && e["path"].as_str().is_some_and(|p| p.starts_with("/docs"))
                && ms.is_some_and(|t| (today - 5..=today - 2).contains(&(t / 86_400_000)))
        })
        .and_then(|e| e["visitor_id"].as_i64())
        .expect("a person from Google who read the docs 2 to 5 days ago");
    ch.query(&format!(
        "ALTER TABLE {db}.events_local DELETE WHERE visitor_id = {visitor}"
    ));
    wait_until("the rows deleted", Duration::from_secs(30), || {
        let n = ch.query(&format!(
            "SELECT count() FROM {db}.events WHERE visitor_id = {visitor}"
        ));
        (n.trim() == "0").then_some(())
    });
    let after = read();
    assert_ne!(after, before, "the deleted visitor's day is counted again");
    rusqlite::Connection::open(&db_file)
        .unwrap()
        .execute("DELETE FROM report_days", [])
        .unwrap();
    let scratch = read();
    assert!(
        after == scratch,
        "the same as counted from scratch: {}",
        first_difference(&after, &scratch, ("kept", "from scratch"))
    );
    drop(demo);
}

/// An admin holds past days read from ClickHouse in memory (day segments), and each
/// counts what ClickHouse counts for a filter on every dimension; a day changed in
/// ClickHouse (a visitor's events deleted there only) is not counted from its old
/// segment, and is read again.
#[test]
#[ignore]
fn days_held_from_clickhouse_count_what_clickhouse_counts() {
    use pixeltrack::store::{Dim, EventStore, Filter, Group, SiteStore, SqliteStore};
    let ch = ch();
    let demo = forwarded_demo(&ch, "segments");
    let (data, env, db) = (demo.data.clone(), demo.env.clone(), demo.db.clone());
    let events = &demo.events;
    let admin = || {
        let mut config = pixeltrack::config::Config::load(None, env.iter().cloned(), &[]).unwrap();
        config.data_dir = data.clone();
        let reader =
            pixeltrack::store::clickhouse::reader::ClickHouseReader::new(&config.store).unwrap();
        SqliteStore::open(&data)
            .unwrap()
            .with_reads_from(Box::new(reader))
    };
    let (held, plain) = (admin(), admin());
    let site = held
        .sites()
        .unwrap()
        .into_iter()
        .find(|s| s.domain == "demo.pixeltrack.example")
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let today = now / 86_400_000;
    // Days 2 to 5 ago: over for more than an hour whenever the test runs.
    let days: Vec<i64> = (today - 5..=today - 2).collect();
    held.segments().configure(62, 1 << 30);
    // The visits ship beside the events: a day is held once they are in.
    wait_until("four days held", Duration::from_secs(60), || {
        held.refresh_segments(now).unwrap();
        let (h, rest) = held.held_segments(site.id, &days).unwrap();
        (h.len() == 4 && rest.is_empty()).then_some(())
    });
    let mut groups: Vec<Group> = Dim::ALL.iter().map(|d| Group::Dim(*d)).collect();
    groups.extend([Group::Total, Group::Hours(24), Group::Hours(5)]);
    let views: Vec<Vec<Filter>> = [
        "",
        "source==Google",
        "source!=Google",
        "page~docs",
        "browser==Chrome",
        "country!=US",
        "device==Mobile",
        "entry_page==/",
        "exit_page~pricing",
        "event==signup",
        "title~a",
        "utm_source~news",
        "referrer!=",
    ]
    .iter()
    .map(|f| {
        f.split(',')
            .filter(|f| !f.is_empty())
            .map(|f| Filter::parse(f).unwrap())
            .collect()
    })
    .collect();
    let compare = |why: &str| {
        for v in &views {
            let mut got = held.web_counts_by_day(site.id, &days, v, &groups).unwrap();
            let mut want = plain.web_counts_by_day(site.id, &days, v, &groups).unwrap();
            got.sort_by_key(|(d, _)| *d);
            want.sort_by_key(|(d, _)| *d);
            assert!(got == want, "{why}: {v:?}");
        }
        // The touches conversions are credited from: of a range that starts and ends
        // within a day, all of them and those of some visitors and click ids.
        let (from, to) = ((today - 6) * 86_400_000 + 5 * 3_600_000, now);
        let all = plain.touches(site.id, from, to).unwrap();
        assert!(
            all.iter()
                .filter(|t| days.contains(&(t.ts_ms / 86_400_000)))
                .count()
                > 3,
            "the demo's ads and email bring touches to the held days"
        );
        assert!(
            held.touches(site.id, from, to).unwrap() == all,
            "{why}: touches"
        );
        let visitors: std::collections::HashSet<i64> =
            all.iter().step_by(3).map(|t| t.visitor_id).collect();
        let click_ids: std::collections::HashSet<String> = all
            .iter()
            .skip(1)
            .step_by(4)
            .map(|t| t.click_id.clone())
            .collect();
        let want = plain
            .touches_of(site.id, from, to, &visitors, &click_ids)
            .unwrap();
        assert!(!want.is_empty());
        let got = held
            .touches_of(site.id, from, to, &visitors, &click_ids)
            .unwrap();
        assert!(got == want, "{why}: touches of some visitors and click ids");
    };
    compare("held from ClickHouse");
    // A person's events deleted in ClickHouse only: their day is not counted from the
    // segment read before.
    let visitor = events
        .iter()
        .find(|e| {
            let ms = e["time"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis());
            e["bot"].is_null()
                && e["name"] == "pageview"
                && ms.is_some_and(|t| t / 86_400_000 == today - 3)
        })
        .and_then(|e| e["visitor_id"].as_i64())
        .expect("a person three days ago");
    ch.query(&format!(
        "ALTER TABLE {db}.events_local DELETE WHERE visitor_id = {visitor}"
    ));
    wait_until("the rows deleted", Duration::from_secs(30), || {
        let n = ch.query(&format!(
            "SELECT count() FROM {db}.events WHERE visitor_id = {visitor}"
        ));
        (n.trim() == "0").then_some(())
    });
    // The reader answers marks from a read of up to five seconds ago (`MARKS_FRESH`).
    std::thread::sleep(Duration::from_millis(5_100));
    let (_, rest) = held.held_segments(site.id, &days).unwrap();
    assert!(
        rest.contains(&(today - 3)),
        "the changed day is not used: {rest:?}"
    );
    compare("after a deletion in ClickHouse");
    held.refresh_segments(now).unwrap();
    let (_, rest) = held.held_segments(site.id, &days).unwrap();
    assert!(rest.is_empty(), "read again: {rest:?}");
    compare("read again");
    drop(demo);
}

/// An email verdict corrected after its event was shipped (a click that turned out to
/// be the start of a scanner's burst) is corrected in ClickHouse too: every email event
/// ends with the same verdict in both stores.
#[test]
#[ignore]
fn corrected_email_verdicts_follow_into_clickhouse() {
    let ch = ch();
    let db = fresh_db(&ch, "relabel");
    let (dir, data, _) = site_dir("shop.example");
    let id = common::add_campaign(&data, "shop.example", "Sale").to_string();
    let sent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    cli(
        &data,
        &["campaign", "sent", &id, "--count", "1", "--at", &sent],
    );
    let out = common::tag_email(
        &data,
        dir.path(),
        &id,
        "email\nr1@example.com\n",
        r#"<html><body><a href="https://shop.example/a">A</a><a href="https://shop.example/b">B</a><a href="https://shop.example/c">C</a></body></html>"#,
    );
    let html = std::fs::read_to_string(out.join("00001-r1@example.com.html")).unwrap();
    let links = common::tracked(&html, "http://127.0.0.1:8080/c/");
    assert_eq!(links.len(), 3);
    let server = start(&data, &forwarding_env(&ch, &db, "100"));
    let click = |path: &str| {
        let r = server.get(
            path,
            &[("User-Agent", CHROME), ("X-Forwarded-For", "198.51.100.7")],
        );
        assert_eq!(r.status, 302);
    };
    click(&links[0]);
    let verdicts = || -> Vec<String> {
        ch.query(&format!(
            "SELECT verdict FROM {db}.events WHERE name = 'email_click' ORDER BY ts, ts_ms FORMAT TSVRaw"
        ))
        .lines()
        .map(str::to_owned)
        .collect()
    };
    wait_until("the first click shipped", Duration::from_secs(30), || {
        (verdicts().len() == 1).then_some(())
    });
    assert_eq!(verdicts(), ["human"], "shipped as a human click");
    // Two more links within a second: a burst of three, which relabels the first.
    click(&links[1]);
    click(&links[2]);
    let local: Vec<String> = common::export(&data, "shop.example")
        .iter()
        .filter(|e| e["name"] == "email_click")
        .map(|e| e["verdict"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        local,
        ["scanner", "scanner", "scanner"],
        "relabelled locally"
    );
    wait_until(
        "the same verdicts in ClickHouse",
        Duration::from_secs(30),
        || (verdicts() == local).then_some(()),
    );
    drop(server);
}

/// The same numbers from ClickHouse: a month and a half of demo traffic in the local
/// store when forwarding starts (its rollups go as a snapshot), then live hits (their
/// rollup deltas go as they are written); every dimension's sums over the whole range,
/// and the daily series, equal the SQLite backend's, value by value.
#[test]
#[ignore]
fn rollups_read_from_clickhouse_equal_the_sqlite_backends() {
    use pixeltrack::store::prelude::*;
    use pixeltrack::store::{Dim, SqliteStore};
    let ch = ch();
    let db = fresh_db(&ch, "rollups");
    let (_dir, data) = common::data_dir();
    cli(
        &data,
        &[
            "demo",
            "--days",
            "40",
            "--visitors-per-day",
            "200",
            "--no-previous",
        ],
    );
    let key = common::add_site(&data, "live.example");
    let env = forwarding_env(&ch, &db, "2000");
    let server = start(&data, &env);
    for n in 0..300 {
        let ip = format!("198.51.{}.{}", n / 100, n % 100 + 1);
        let target = format!(
            "/p.gif?s={key}&u=https%3A%2F%2Flive.example%2Fp{}&r=https%3A%2F%2Fnews.example%2F&t=P{}",
            n % 7,
            n % 7
        );
        let r = http(
            server.addr,
            "GET",
            &target,
            &[("User-Agent", CHROME), ("X-Forwarded-For", &ip)],
        )
        .unwrap();
        assert!(stored(&r));
    }
    // Everything written and shipped: a clean stop writes the last derived rows, a
    // restart ships them.
    let (status, _) = server.terminate_keeping_log();
    assert!(status.success());
    let server = start(&data, &env);
    let store = SqliteStore::open(&data).unwrap();
    let mut cfg = pixeltrack::config::Config::default().store;
    cfg.url = format!("http://127.0.0.1:{}", ch.port);
    cfg.database = db.clone();
    cfg.user = "pixeltrack".into();
    cfg.password = PASSWORD.into();
    let remote = pixeltrack::store::clickhouse::ClickHouse::new(&cfg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Whole UTC days, as reports read (days older than a week are compacted into one
    // row at the day's first hour locally; ClickHouse keeps the hours).
    let today = chrono::Utc::now().timestamp() / 86_400;
    let (from, to) = ((today - 60) * 24, (today + 1) * 24);
    let sums = |site, dim: Dim| -> Vec<(String, [i64; 9])> {
        store
            .rollup_sums(site, dim, from, to, 100_000)
            .unwrap()
            .into_iter()
            .map(|r| (r.value, r.counts.to_array()))
            .filter(|(_, c)| c.iter().any(|v| *v != 0))
            .collect()
    };
    let remote_sums = |site: i64, dim: Dim| -> Vec<(String, [i64; 9])> {
        rt.block_on(remote.rollup_sums(site, dim as i64, from, to, 100_000))
            .unwrap()
            .into_iter()
            .map(|r| (r.value, r.sums))
            .collect()
    };
    let sites = store.sites().unwrap();
    assert_eq!(sites.len(), 2);
    wait_until(
        "every rollup delta shipped",
        Duration::from_secs(60),
        || {
            sites
                .iter()
                .all(|s| sums(s.id, Dim::Total) == remote_sums(s.id.0, Dim::Total))
                .then_some(())
        },
    );
    let mut compared = 0;
    for site in &sites {
        for dim in Dim::ALL {
            let local = sums(site.id, dim);
            assert_eq!(
                remote_sums(site.id.0, dim),
                local,
                "site {} {dim:?}",
                site.domain
            );
            compared += local.len();
        }
        let local: Vec<(i64, [i64; 9])> = store
            .rollup_series(site.id, from, to, 24)
            .unwrap()
            .into_iter()
            .map(|(b, c)| (b, c.to_array()))
            .collect();
        let remote: Vec<(i64, [i64; 9])> = rt
            .block_on(remote.rollup_series(site.id.0, from, to, 24))
            .unwrap()
            .into_iter()
            .map(|r| (r.value.parse().unwrap(), r.sums))
            .collect();
        assert_eq!(remote, local, "daily series of {}", site.domain);
    }
    assert!(compared > 200, "{compared} rows compared");
    // The report's conversions and attribution read raw events, which ship in their own
    // batches: the rollups above can all be in while the last month's events are still on
    // their way. Every stored event first.
    let stored_events: i64 = rusqlite::Connection::open(data.join("pixeltrack.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    wait_for_count(&ch, &db, stored_events as u64, Duration::from_secs(60));
    // The CLI report from ClickHouse is the report from SQLite.
    let from_day = (chrono::Utc::now() - chrono::Duration::days(50))
        .format("%Y-%m-%d")
        .to_string();
    let report = |source: &str| -> serde_json::Value {
        let mut cmd = Command::new(common::bin());
        cmd.arg("--data")
            .arg(&data)
            .args(["--json", "report", "--site", "demo.pixeltrack.example"])
            .args(["--from", &from_day, "--limit", "50"])
            .args(["--source", source])
            .env_remove("PIXELTRACK_CONFIG");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (remote, local) = (report("clickhouse"), report("sqlite"));
    assert!(
        remote == local,
        "{}",
        first_difference(
            &remote.to_string(),
            &local.to_string(),
            ("clickhouse", "sqlite")
        )
    );
    drop(server);
}

/// Where two reads first differ: the JSON path and both values there when both are
/// JSON (a report is one long line), else the first differing line.
fn first_difference(a: &str, b: &str, (na, nb): (&str, &str)) -> String {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, path: &mut String) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let (va, vb) = (x.get(k), y.get(k));
                    let n = path.len();
                    path.push_str(&format!("/{k}"));
                    let found = match (va, vb) {
                        (Some(va), Some(vb)) => walk(va, vb, path),
                        _ => Some(format!("{path}: {va:?} | {vb:?}")),
                    };
                    if found.is_some() {
                        return found;
                    }
                    path.truncate(n);
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for i in 0..x.len().max(y.len()) {
                    let n = path.len();
                    path.push_str(&format!("/{i}"));
                    let found = match (x.get(i), y.get(i)) {
                        (Some(va), Some(vb)) => walk(va, vb, path),
                        (va, vb) => Some(format!("{path}: {va:?} | {vb:?}")),
                    };
                    if found.is_some() {
                        return found;
                    }
                    path.truncate(n);
                }
                None
            }
            _ => (a != b).then(|| format!("{path}: {a} | {b}")),
        }
    }
    let parsed = (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    );
    if let (Ok(x), Ok(y)) = parsed {
        if let Some(d) = walk(&x, &y, &mut String::new()) {
            return format!("{d}   ({na} | {nb})");
        }
    }
    a.lines().zip(b.lines()).find(|(x, y)| x != y).map_or_else(
        || {
            format!(
                "{na} has {} lines, {nb} {}",
                a.lines().count(),
                b.lines().count()
            )
        },
        |(x, y)| format!("{na}: {x}\n    {nb}: {y}"),
    )
}

/// The helper the comparisons above fail with names the first differing place.
#[test]
fn first_difference_names_the_path_and_both_values() {
    let a = r#"{"overview":{"visitors":10,"pages":[{"value":"/a","n":3},{"value":"/b","n":2}]}}"#;
    let b = r#"{"overview":{"visitors":10,"pages":[{"value":"/a","n":3},{"value":"/b","n":1}]}}"#;
    assert_eq!(
        first_difference(a, b, ("x", "y")),
        "/overview/pages/1/n: 2 | 1   (x | y)"
    );
    let c = r#"{"overview":{"visitors":10}}"#;
    let d = r#"{"overview":{"visitors":10,"visits":4}}"#;
    assert_eq!(
        first_difference(c, d, ("x", "y")),
        "/overview/visits: None | Some(Number(4))   (x | y)"
    );
    assert_eq!(
        first_difference("a\nb", "a\nc", ("x", "y")),
        "x: b\n    y: c"
    );
}

/// The forwarding configuration for the script's two-shard cluster `pt` (reads and
/// schema on the first shard), with `db` dropped on both shards first.
fn cluster_env(ch: &Ch, db: &str, batch_rows: &str) -> Vec<(String, String)> {
    let (s1, s2) = (ch.port + 10, ch.port + 20);
    for port in [s1, s2] {
        let (status, body) = ch
            .request_to(port, &format!("DROP DATABASE IF EXISTS {db}"))
            .expect("the cluster's shards are up (scripts/clickhouse.sh … all)");
        assert_eq!(status, 200, "{body}");
    }
    let mut env = forwarding_env(ch, db, batch_rows);
    for (k, v) in env.iter_mut() {
        if k == "PIXELTRACK_STORE__URL" {
            *v = format!("http://127.0.0.1:{s1}");
        }
    }
    env.push((
        "PIXELTRACK_STORE__SHARDS".into(),
        format!("http://127.0.0.1:{s1},http://127.0.0.1:{s2}"),
    ));
    env.push(("PIXELTRACK_STORE__CLUSTER".into(), "pt".into()));
    env
}

/// Two shards (the script's cluster `pt`): every visitor's events sit on one shard,
/// both shards get some, and the Distributed table reads every acknowledged event once.
#[test]
#[ignore]
fn two_shards_hold_each_visitor_on_one_and_every_event_once() {
    let ch = ch();
    let (s1, s2) = (ch.port + 10, ch.port + 20);
    let db = "pt_test_shards";
    let (_dir, data, key) = site_dir("shop.example");
    let env = cluster_env(&ch, db, "50");
    let server = start(&data, &env);
    // Each visitor twice: two pages from one client IP.
    let mut acked = 0;
    for n in 0..100 {
        for _ in 0..2 {
            acked += u64::from(hit(&server, &key, n).is_some_and(|r| stored(&r)));
        }
    }
    assert_eq!(acked, 200);
    let total = |port: u16| -> Option<u64> {
        let (_, body) = ch.request_to(
            port,
            &format!("SELECT count() FROM {db}.events WHERE site_id != 0"),
        )?;
        body.trim().parse().ok()
    };
    wait_until(
        "200 events over both shards",
        Duration::from_secs(60),
        || (total(s1)? == 200).then_some(()),
    );
    let local = |port: u16| -> u64 {
        ch.request_to(
            port,
            &format!("SELECT count() FROM {db}.events_local WHERE site_id != 0"),
        )
        .unwrap()
        .1
        .trim()
        .parse()
        .unwrap()
    };
    let (a, b) = (local(s1), local(s2));
    assert_eq!(a + b, 200, "each event on exactly one shard");
    assert!(a > 0 && b > 0, "both shards hold events: {a} + {b}");
    let visitors = |port: u16| -> std::collections::BTreeSet<String> {
        ch.request_to(
            port,
            &format!("SELECT DISTINCT visitor_id FROM {db}.events_local WHERE site_id != 0"),
        )
        .unwrap()
        .1
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let (v1, v2) = (visitors(s1), visitors(s2));
    assert_eq!(v1.len() + v2.len(), 100, "100 visitors");
    assert!(v1.is_disjoint(&v2), "a visitor's events all on one shard");
    assert_eq!(
        total(s2),
        Some(200),
        "the Distributed table on either shard"
    );
    drop(server);
}

/// `literal` against the real parser: hostile strings come back byte for byte.
#[test]
#[ignore]
fn literals_mean_exactly_their_text_to_clickhouse() {
    let ch = ch();
    let mut cases: Vec<String> = vec![
        String::new(),
        "'".into(),
        "\\".into(),
        "\\'".into(),
        "'\\".into(),
        "\\N".into(),
        "a'b\\c\"d`e".into(),
        "line\nbreak\ttab\rcr".into(),
        "nul\0byte".into(),
        "'; DROP DATABASE system; --".into(),
        "é漢字🙂".into(),
        "\\x41\\u0041\\0".into(),
    ];
    // And a deterministic spread of random strings over the awkward bytes.
    let alphabet: Vec<char> = "ab'\\\"`\0\n\r\t;-/*é漢{}%_".chars().collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        let len = (x % 24) as usize;
        let mut s = String::new();
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        cases.push(s);
    }
    for s in &cases {
        let got = ch.query(&format!("SELECT hex({})", literal(s)));
        let want: String = s.bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(got.trim(), want, "literal of {s:?}");
    }
}

/// Runs a reading command with `--source` and the forwarding configuration: its
/// standard output.
fn read_as(data: &Path, env: &[(String, String)], source: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(common::bin());
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .args(["--source", source])
        .env_remove("PIXELTRACK_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} --source {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The conformance suite: the same scenarios read through both backends give the
/// same answers, byte for byte — the site report unfiltered and under each kind of
/// filter (raw events joined with their visits), goals with a wildcard (distinct
/// visitors from raw events), the ad campaign's report and its attribution, an email
/// campaign's report with a verdict corrected after the fact, funnels by visit and by
/// visitor, and the raw export. Demo traffic is in the store before forwarding starts
/// (events, visits and rollups all ship from the spool), live web, ad and email hits
/// follow while it runs.
#[test]
#[ignore]
fn every_report_reads_the_same_from_clickhouse_as_from_sqlite() {
    let ch = ch();
    let db = fresh_db(&ch, "conformance");
    let env = forwarding_env(&ch, &db, "500");
    conformance(&ch, ch.port, &db, env);
}

/// The same on the two-shard cluster: every read through the Distributed tables, each
/// event joined with its visit on the shard that holds both.
#[test]
#[ignore]
fn every_report_reads_the_same_from_two_shards_as_from_sqlite() {
    let ch = ch();
    let db = "pt_test_conformance_shards";
    let env = cluster_env(&ch, db, "500");
    conformance(&ch, ch.port + 10, db, env);
}

/// The conformance scenario against the ClickHouse `env` names (`port` answers reads).
fn conformance(ch: &Ch, port: u16, db: &str, mut env: Vec<(String, String)>) {
    let (dir, data) = common::data_dir();
    // Places for the live traffic below (198.51.0.x, 198.51.1.x; 198.51.2.x is unknown),
    // one with a quote and a backslash for ClickHouse's literals.
    let mmdb = dir.path().join("City.mmdb");
    common::geo::replace(
        &mmdb,
        &common::geo::city_mmdb(&[
            ("198.51.0.0/24", "DE", "BY", "Bavaria", "München"),
            ("198.51.1.0/24", "US", "IL", "Illinois", "O'Fallon \\ \"x\""),
        ]),
    );
    env.push(("PIXELTRACK_GEO__MMDB".into(), mmdb.display().to_string()));
    cli(
        &data,
        &["demo", "--days", "20", "--visitors-per-day", "150"],
    );
    let site = "demo.pixeltrack.example";
    let campaign = common::add_campaign(&data, site, "Newsletter").to_string();
    let sent = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    cli(
        &data,
        &["campaign", "sent", &campaign, "--count", "3", "--at", &sent],
    );
    let out = common::tag_email(
        &data,
        dir.path(),
        &campaign,
        "email\nann@example.com\nbo?b@example.com\ncy'@example.com\n",
        r#"<html><body><a href="https://demo.pixeltrack.example/a">A</a><a href="https://demo.pixeltrack.example/b">B</a><a href="https://demo.pixeltrack.example/c">C</a></body></html>"#,
    );
    let server = start(&data, &env);
    let key = cli(&data, &["--json", "site", "list"]);
    let key: serde_json::Value = serde_json::from_str(&key).unwrap();
    let key = key[0]["key"].as_str().unwrap().to_owned();
    // Live web traffic: visits of several pages, some from a newsletter link, some
    // ending on a custom event.
    for n in 0..120u32 {
        let ip = format!("198.51.{}.{}", n / 40, n % 40 + 1);
        for (i, page) in ["/", "/pricing", "/docs/start"].iter().enumerate() {
            if n % 3 < i as u32 {
                break;
            }
            let utm = if n % 4 == 0 {
                "%3Futm_source%3Dnewsletter%26utm_medium%3Demail"
            } else {
                ""
            };
            let target = format!(
                "/p.gif?s={key}&u=https%3A%2F%2F{site}{}{utm}&r=https%3A%2F%2Fwww.google.com%2F&t=T%3F{n}",
                page.replace('/', "%2F"),
            );
            let r = http(
                server.addr,
                "GET",
                &target,
                &[("User-Agent", CHROME), ("X-Forwarded-For", &ip)],
            )
            .unwrap();
            assert!(stored(&r), "{target}");
        }
        if n % 5 == 0 {
            let target = format!("/p.gif?s={key}&e=signup&u=https%3A%2F%2F{site}%2Fpricing");
            let r = http(
                server.addr,
                "GET",
                &target,
                &[("User-Agent", CHROME), ("X-Forwarded-For", &ip)],
            )
            .unwrap();
            assert!(stored(&r));
        }
    }
    // Email: an open and a click per recipient, then a burst of three clicks from the
    // second one, which relabels its earlier click (a change that follows by mutation).
    let names = ["ann@example.com", "bo?b@example.com", "cy'@example.com"];
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    files.sort();
    assert_eq!(files.len(), names.len(), "{files:?}");
    for (i, file) in files.iter().enumerate() {
        let html = std::fs::read_to_string(file).unwrap();
        let opens = common::tracked(&html, "http://127.0.0.1:8080/o/");
        let links = common::tracked(&html, "http://127.0.0.1:8080/c/");
        let ip = format!("203.0.113.{}", i + 10);
        let h = [("User-Agent", CHROME), ("X-Forwarded-For", ip.as_str())];
        assert_eq!(server.get(&opens[0], &h).status, 200);
        assert_eq!(server.get(&links[0], &h).status, 302);
        if i == 1 {
            assert_eq!(server.get(&links[1], &h).status, 302);
            assert_eq!(server.get(&links[2], &h).status, 302);
        }
    }
    // A clean stop writes the last derived rows; a restart ships them.
    let (status, _) = server.terminate_keeping_log();
    assert!(status.success());
    let server = start(&data, &env);

    let from = (chrono::Utc::now() - chrono::Duration::days(25))
        .format("%Y-%m-%d")
        .to_string();
    let ad_campaign = "1";
    let reads: Vec<Vec<&str>> = vec![
        vec![
            "--json", "report", "--site", site, "--from", &from, "--limit", "100",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "source==Google",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "page~DOCS",
            "--filter",
            "device!=mobile",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "utm_source==newsletter",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "entry_page==/pricing",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "country!=",
            "--filter",
            "title~t?",
        ],
        vec!["--json", "report", "--campaign", ad_campaign],
        vec!["--json", "report", "--campaign", &campaign, "--recipients"],
        vec![
            "--json",
            "funnel",
            "--site",
            site,
            "--from",
            &from,
            "--step",
            "/",
            "--step",
            "/pricing",
            "--step",
            "event:signup",
        ],
        vec![
            "--json",
            "funnel",
            "--site",
            site,
            "--from",
            &from,
            "--step",
            "/",
            "--step",
            "page:/docs*",
            "--within",
            "7d",
        ],
        vec!["export", "--site", site, "--format", "ndjson"],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "region==DE-BY",
        ],
        vec![
            "--json",
            "report",
            "--site",
            site,
            "--from",
            &from,
            "--filter",
            "city~'fallon \\",
            "--filter",
            "region!=DE-BY",
        ],
    ];
    // Each read that differs, with its first differing line from each backend.
    let differing = || -> Vec<String> {
        reads
            .iter()
            .filter_map(|args| {
                let (remote, local) = (
                    read_as(&data, &env, "clickhouse", args),
                    read_as(&data, &env, "sqlite", args),
                );
                (remote != local).then(|| {
                    format!(
                        "{}\n    {}",
                        args.join(" "),
                        first_difference(&remote, &local, ("clickhouse", "sqlite"))
                    )
                })
            })
            .collect()
    };
    // Every read the same on both backends within a minute (forwarding catches up).
    let agree = |when: &str| {
        let mut last = Vec::new();
        let settled = (0..60).any(|_| {
            last = differing();
            if last.is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_secs(1));
            false
        });
        assert!(settled, "{when}, reads that differ: {last:#?}");
    };
    agree("between the backends");
    // And the reads say something: the filtered reports are not empty, the email
    // campaign holds the corrected verdicts, the export holds every stored event.
    let filtered: serde_json::Value =
        serde_json::from_str(&read_as(&data, &env, "clickhouse", &reads[3])).unwrap();
    assert!(
        filtered["overview"]["visitors"].as_i64().unwrap_or(0) > 10,
        "{filtered:#}"
    );
    // Places: the region and city breakdowns and filters read something.
    for (read, place) in [(11, "München"), (12, "O'Fallon \\\\ \\\"x\\\"")] {
        let r = read_as(&data, &env, "clickhouse", &reads[read]);
        assert!(r.contains(place), "{place}: {r}");
    }
    let email = read_as(&data, &env, "clickhouse", &reads[7]);
    assert!(email.contains("bo?b@example.com"), "{email}");
    let exported = read_as(&data, &env, "clickhouse", &reads[10])
        .lines()
        .count();
    let (_, in_ch) = ch
        .request_to(
            port,
            &format!("SELECT count() FROM {db}.events WHERE site_id = 1 FORMAT TSVRaw"),
        )
        .expect("ClickHouse reachable");
    let in_ch = in_ch.trim().parse::<usize>().unwrap();
    assert_eq!(exported, in_ch);
    assert!(exported > 5_000, "{exported} events exported");

    // The API of a `--role admin` server (reading ClickHouse) answers what the API of
    // the collecting server (reading its own SQLite) answers.
    let token: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &["--json", "token", "create", "--scope", "read"],
    ))
    .unwrap();
    let auth = format!("Bearer {}", token["token"].as_str().unwrap());
    let paths = [
        format!("/api/v1/stats?site={site}&from={from}&dimension=page&limit=100"),
        format!("/api/v1/stats?site={site}&from={from}&dimension=goal"),
        format!("/api/v1/stats?site={site}&from={from}&dimension=entry_page&filters=utm_source%3D%3Dnewsletter%3Bdevice!%3Dmobile"),
        format!("/api/v1/stats?site={site}&from={from}&dimension=campaign"),
        format!("/api/v1/campaigns/{campaign}/report"),
        format!("/api/v1/campaigns/{ad_campaign}/report"),
        format!("/api/v1/export?site={site}&format=ndjson"),
    ];
    let answers = |server: &Server| -> Vec<(u16, String)> {
        paths
            .iter()
            .map(|p| {
                let r = server.get(p, &[("Authorization", auth.as_str())]);
                (r.status, String::from_utf8_lossy(&r.body).into_owned())
            })
            .collect()
    };
    let local = answers(&server);
    assert!(local.iter().all(|(status, _)| *status == 200), "{local:?}");
    let (status, _) = server.terminate_keeping_log();
    assert!(status.success());
    let admin = start(&data, &with_role(&env, "admin"));
    for (path, (want, got)) in paths.iter().zip(local.iter().zip(answers(&admin))) {
        assert_eq!(&got, want, "{path} from the admin");
    }
    drop(admin);

    // Events shipped before schema 6 carried no visit columns: made so again (and the
    // schema set back to 5), the next start migrates them, and every read is the same.
    let servers = if port == ch.port {
        vec![port]
    } else {
        vec![ch.port + 10, ch.port + 20]
    };
    downgrade_to_schema_5(ch, &servers, db);
    let cleared = ch
        .request_to(
            port,
            &format!("SELECT count() FROM {db}.events WHERE visit_found = 1 FORMAT TSVRaw"),
        )
        .expect("ClickHouse reachable");
    assert_eq!(cleared.1.trim(), "0", "the visit columns were cleared");
    let server = start(&data, &env);
    wait_until("schema 6 on every server", Duration::from_secs(120), || {
        servers
            .iter()
            .all(|p| {
                ch.request_to(
                    *p,
                    &format!("SELECT max(version) FROM {db}.schema_migrations FORMAT TSVRaw"),
                )
                .is_some_and(|(_, v)| v.trim() == "6")
            })
            .then_some(())
    });
    let (_, filled) = ch
        .request_to(
            port,
            &format!(
                "SELECT countIf(visit_found = 1), count(), uniqExact(event_id) \
                 FROM {db}.events WHERE site_id = 1 FORMAT TSVRaw"
            ),
        )
        .expect("ClickHouse reachable");
    let filled: Vec<u64> = filled
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(filled[0] > 1_000, "visit columns written again: {filled:?}");
    assert_eq!(
        filled[1], filled[2],
        "no event twice after the rewrite: {filled:?}"
    );
    agree("after the schema 6 migration");
    drop(server);
}

/// Makes `db` on `servers` look like a database written before schema 6: the visit
/// columns of every event cleared (a mutation, waited for) and schema 5 recorded.
fn downgrade_to_schema_5(ch: &Ch, servers: &[u16], db: &str) {
    let visit_columns = [
        "entry_page",
        "source",
        "referrer_host",
        "medium",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "browser",
        "os",
        "device",
        "country",
        "region",
        "city",
    ]
    .map(|c| format!("visit_{c} = ''"))
    .join(", ");
    for &p in servers {
        let ok = |sql: &str| {
            let (status, body) = ch.request_to(p, sql).expect("ClickHouse reachable");
            assert_eq!(status, 200, "{sql}: {body}");
        };
        ok(&format!(
            "ALTER TABLE {db}.events_local UPDATE visit_found = 0, {visit_columns} WHERE 1"
        ));
        wait_until("the mutation", Duration::from_secs(120), || {
            ch.request_to(
                p,
                &format!(
                    "SELECT count() FROM system.mutations WHERE database = '{db}' \
                     AND NOT is_done FORMAT TSVRaw"
                ),
            )
            .is_some_and(|(_, n)| n.trim() == "0")
            .then_some(())
        });
        ok(&format!("DROP TABLE {db}.schema_migrations"));
        ok(&format!(
            "CREATE TABLE {db}.schema_migrations (version UInt32, applied_at DateTime) ENGINE = Log"
        ));
        ok(&format!(
            "INSERT INTO {db}.schema_migrations VALUES (1, now()), (2, now()), (3, now()), \
             (4, now()), (5, now())"
        ));
    }
}

/// `env` with `PIXELTRACK_ROLE` set.
fn with_role(env: &[(String, String)], role: &str) -> Vec<(String, String)> {
    let mut e = env.to_vec();
    e.push(("PIXELTRACK_ROLE".into(), role.into()));
    e
}

/// A scaled-out installation on database `db`: an admin (holding the site
/// shop.example) and two collectors, each with a data directory of its own.
struct Installation {
    admin: Server,
    col_b: Server,
    col_c: Server,
    admin_data: PathBuf,
    data_b: PathBuf,
    data_c: PathBuf,
    key: String,
    env: Vec<(String, String)>,
    /// The admin's temporary folder (room for other files), then the collectors'.
    dir: tempfile::TempDir,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn installation(ch: &Ch, db: &str) -> Installation {
    let (dir, admin_data, key) = site_dir("shop.example");
    let env = forwarding_env(ch, db, "100");
    let admin = start(&admin_data, &with_role(&env, "admin"));
    let (b, data_b) = common::data_dir();
    let (c, data_c) = common::data_dir();
    let col_b = start(&data_b, &with_role(&env, "collector"));
    let col_c = start(&data_c, &with_role(&env, "collector"));
    Installation {
        admin,
        col_b,
        col_c,
        admin_data,
        data_b,
        data_c,
        key,
        env,
        dir,
        _dirs: (b, c),
    }
}

/// A scaled-out installation on one ClickHouse: an admin and two collectors, each with
/// a data directory of its own. The collectors take the admin's sites (a site added
/// while they run is collected within seconds), share its daily salt (one visitor is
/// one visitor whichever collector a hit reaches), and consent goes both ways (a
/// withdrawal on the admin reaches the collectors; one recorded on a collector reaches
/// the admin and the other collector). Collectors serve no dashboard; the admin reports
/// what both forwarded.
#[test]
#[ignore]
fn an_admin_and_two_collectors_share_sites_salts_and_consent() {
    use pixeltrack::model::SiteId;
    use pixeltrack::store::prelude::*;
    use pixeltrack::store::SqliteStore;
    let ch = ch();
    let db = fresh_db(&ch, "roles");
    let Installation {
        admin,
        col_b,
        col_c,
        admin_data,
        data_b,
        data_c,
        key,
        env,
        dir: _dir,
        _dirs,
    } = installation(&ch, &db);
    let hit_at = |server: &Server, key: &str, page: &str, ip: &str| -> bool {
        let host = if page == "hello" {
            "blog.example"
        } else {
            "shop.example"
        };
        let target = format!(
            "/p.gif?s={key}&u=https%3A%2F%2F{host}%2F{page}&r=https%3A%2F%2Fnews.example%2F"
        );
        let r = http(
            server.addr,
            "GET",
            &target,
            &[("User-Agent", CHROME), ("X-Forwarded-For", ip)],
        )
        .unwrap();
        stored(&r)
    };
    // The admin's site reaches both collectors.
    for c in [&col_b, &col_c] {
        wait_until(
            "the collector knows the site",
            Duration::from_secs(15),
            || hit_at(c, &key, "warmup", "192.0.2.1").then_some(()),
        );
    }
    // One visitor, one hit on each collector; many visitors spread over both.
    assert!(hit_at(&col_b, &key, "on-b", "198.51.100.77"));
    assert!(hit_at(&col_c, &key, "on-c", "198.51.100.77"));
    let mut sent = 4;
    for n in 0..60 {
        let ip = format!("203.0.113.{}", n + 1);
        let c = if n % 2 == 0 { &col_b } else { &col_c };
        assert!(hit_at(c, &key, &format!("p{}", n % 5), &ip));
        sent += 1;
    }
    // A site added on the admin while everything runs is collected within seconds.
    let started = std::time::Instant::now();
    let key2 = common::add_site(&admin_data, "blog.example");
    wait_until("the new site collected", Duration::from_secs(15), || {
        (hit_at(&col_b, &key2, "hello", "192.0.2.2") && hit_at(&col_c, &key2, "hello", "192.0.2.3"))
            .then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Collectors serve no dashboard or API.
    assert_eq!(col_b.get("/login", &[]).status, 404);
    assert_eq!(col_b.get("/api/v1/sites", &[]).status, 404);

    // Consent: withdrawn on the admin → both collectors; recorded on a collector (what
    // its withdrawal link does) → the admin → the other collector.
    cli(
        &admin_data,
        &[
            "consent",
            "withdraw",
            "--recipient",
            "ann@example.com",
            "--site",
            "shop.example",
        ],
    );
    let store_b = SqliteStore::open(&data_b).unwrap();
    let store_c = SqliteStore::open(&data_c).unwrap();
    let store_admin = SqliteStore::open(&admin_data).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    store_b
        .set_consent(SiteId(1), 0, "bo'b@example.com", false, now)
        .unwrap();
    wait_until("consent everywhere", Duration::from_secs(20), || {
        let everywhere = |who: &str| {
            [&store_admin, &store_b, &store_c]
                .iter()
                .all(|s| s.consent(SiteId(1), 0, who).unwrap() == Some(false))
        };
        (everywhere("ann@example.com") && everywhere("bo'b@example.com")).then_some(())
    });

    // In ClickHouse: the visitor who reached both collectors is one visitor, and the
    // admin's report counts every hit both collectors stored.
    let site_counts = || {
        ch.try_query(&format!(
            "SELECT count(), uniqExact(event_id) FROM {db}.events WHERE site_id = 1 FORMAT TSV"
        ))
        .map(|t| t.trim().to_owned())
    };
    wait_until(
        "every hit of the site in ClickHouse",
        Duration::from_secs(60),
        || (site_counts() == Some(format!("{sent}\t{sent}"))).then_some(()),
    );
    let ids = ch.query(&format!(
        "SELECT uniqExact(visitor_id), count() FROM {db}.events WHERE path IN ('/on-b', '/on-c') FORMAT TSV"
    ));
    assert_eq!(ids.trim(), "1\t2", "one visitor across two collectors");
    let (status, _) = admin.terminate_keeping_log();
    assert!(status.success());
    let report: serde_json::Value = serde_json::from_str(&read_as(
        &admin_data,
        &env,
        "clickhouse",
        &["--json", "report", "--site", "shop.example"],
    ))
    .unwrap();
    assert_eq!(report["overview"]["pageviews"].as_i64(), Some(sent as i64));
    drop((col_b, col_c));
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx (Debian's) in front of two collectors, run in the foreground from a config of
/// its own; killed when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM to the master: it stops its workers too (a KILL would leave them).
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }
}

/// The deployment recipe of docs/scale-out.md: each client address to one collector
/// (`hash $remote_addr consistent`). The test's clients all connect from loopback, so
/// nginx takes their address from `X-Forwarded-For` (`real_ip_header`), as it would
/// behind a trusted edge proxy, and passes it on.
fn nginx(dir: &Path, collectors: &[SocketAddr]) -> Nginx {
    let port = free_port();
    let servers: String = collectors
        .iter()
        .map(|a| format!("        server {a};\n"))
        .collect();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n    access_log off;\n\
             client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n\
             fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n\
             upstream collectors {{\n        hash $remote_addr consistent;\n{servers}    }}\n\
             server {{\n        listen 127.0.0.1:{port};\n\
                 set_real_ip_from 127.0.0.1;\n        real_ip_header X-Forwarded-For;\n\
                 location / {{\n            proxy_pass http://collectors;\n\
                     proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n\
                     proxy_set_header X-Forwarded-For $remote_addr;\n        }}\n    }}\n}}\n",
        dir = dir.display(),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx (Debian's nginx-light; .ci/run installs it)");
    let n = Nginx { child, port };
    wait_until("nginx listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    n
}

/// Two collectors behind a real nginx, one admin: hits spread over both collectors,
/// each visit's hits meet on one (the recipe routes by client address), and the
/// admin's report — visitors, visits, page views, bounces, entry and exit pages —
/// equals what was sent.
#[test]
#[ignore]
fn two_collectors_behind_nginx_report_what_was_sent_sessions_included() {
    let ch = ch();
    let db = fresh_db(&ch, "nginx");
    let Installation {
        admin,
        col_b,
        col_c,
        admin_data,
        data_b,
        data_c,
        key,
        env,
        dir,
        _dirs,
    } = installation(&ch, &db);
    let lb = nginx(dir.path(), &[col_b.addr, col_c.addr]);
    let lb_addr = SocketAddr::from(([127, 0, 0, 1], lb.port));
    let hit = |ip: &str, page: &str| -> bool {
        let target = format!(
            "/p.gif?s={key}&u=https%3A%2F%2Fshop.example{}&r=https%3A%2F%2Fnews.example%2F",
            page.replace('/', "%2F")
        );
        http(
            lb_addr,
            "GET",
            &target,
            &[("User-Agent", CHROME), ("X-Forwarded-For", ip)],
        )
        .is_ok_and(|r| stored(&r))
    };
    // Both collectors hold the admin's site, and have reloaded their site lists (once
    // a second) since; then a first hit through nginx is stored.
    let holds_site = |data: &Path| {
        pixeltrack::store::SqliteStore::open(data)
            .and_then(|s| pixeltrack::store::SiteStore::sites(&s))
            .is_ok_and(|sites| sites.iter().any(|s| s.key.as_str() == key))
    };
    wait_until(
        "the collectors hold the site",
        Duration::from_secs(15),
        || (holds_site(&data_b) && holds_site(&data_c)).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(1500));
    wait_until("a first hit stored", Duration::from_secs(10), || {
        hit("192.0.2.250", "/warm").then_some(())
    });
    // 80 visitors: 60 read three pages, 20 leave after one.
    let (mut pageviews, mut bounces) = (1, 1); // the warm-up hit: one bounced visit
    for n in 0..80 {
        let ip = format!("198.51.{}.{}", n / 50, n % 50 + 10);
        let pages: &[&str] = if n % 4 == 0 {
            &["/"]
        } else {
            &["/", "/pricing", "/docs"]
        };
        for p in pages {
            assert!(hit(&ip, p), "{ip} {p}");
            pageviews += 1;
        }
        if pages.len() == 1 {
            bounces += 1;
        }
    }
    let visits = 81;
    // Both collectors took a share.
    for c in [&col_b, &col_c] {
        let text = String::from_utf8_lossy(&c.get("/metrics", &[]).body).into_owned();
        assert!(
            metric(&text, "pixeltrack_events_stored_total") >= 20.0,
            "each collector took a share"
        );
    }
    // The admin's report, from ClickHouse, once everything is shipped: one visitor per
    // address, one visit each, the page views, the bounces, and where visits ended.
    let bounce_rate = format!("{:.1}", bounces as f64 * 100.0 / visits as f64);
    let want = format!(
        "visitors 81 visits {visits} pageviews {pageviews} bounce_rate {bounce_rate} exits [(\"/\", {}), (\"/docs\", 60)]",
        bounces - 1
    );
    let mut got = String::new();
    let settled = (0..60).any(|_| {
        let r: serde_json::Value = serde_json::from_str(&read_as(
            &admin_data,
            &env,
            "clickhouse",
            &["--json", "report", "--site", "shop.example"],
        ))
        .unwrap();
        let o = &r["overview"];
        let exits: Vec<(String, i64)> = r["breakdowns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["dimension"] == "exit_page")
            .map(|b| {
                b["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| {
                        (
                            row["value"].as_str().unwrap().to_owned(),
                            row["visits"].as_i64().unwrap(),
                        )
                    })
                    .filter(|(v, _)| v != "/warm")
                    .collect()
            })
            .unwrap_or_default();
        let mut exits = exits;
        exits.sort();
        got = format!(
            "visitors {} visits {} pageviews {} bounce_rate {:.1} exits {exits:?}",
            o["visitors"],
            o["visits"],
            o["pageviews"],
            o["bounce_rate"].as_f64().unwrap_or(-1.0)
        );
        if got == want {
            return true;
        }
        std::thread::sleep(Duration::from_secs(1));
        false
    });
    assert!(settled, "the admin's report\n  got: {got}\n want: {want}");
    drop((lb, col_b, col_c, admin));
}
