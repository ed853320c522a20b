//! Privacy guarantees end to end: GPC, consent withdrawal for mail already sent, the
//! withdrawal link, retention, erasure down to the bytes of the data dir.

use crate::common;

use common::{cli, contains, export, files, http, site_with_campaign, Server, CHROME};
use pixeltrack::clock::{Clock, DAY_MS};
use pixeltrack::server::App;
use pixeltrack::store::prelude::*;
use pixeltrack::store::run_retention;

#[test]
fn gpc_hits_are_counted_but_carry_nothing_identifying() {
    let (_dir, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let url = format!(
        "/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2Fa&r=https%3A%2F%2Fblog.example.org%2Fpost%3Fid%3D7&id=order-1&p.plan=pro"
    );
    for _ in 0..2 {
        let res = server.get(&url, &[("User-Agent", CHROME), ("Sec-GPC", "1")]);
        assert_eq!(res.status, 200);
        assert!(res.header("x-pixel-reason").is_none());
    }
    assert_eq!(server.terminate().code(), Some(0));
    let events = export(&data, &key);
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["visitor_id"], 0);
        assert_eq!(e["session_id"], 0);
        assert_eq!(e["referrer"], "");
        assert_eq!(e["order_id"], "");
        assert_eq!(e["browser_version"], "");
        assert_eq!(e["referrer_host"], "blog.example.org");
    }
    let r: serde_json::Value = serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    assert_eq!(
        (
            r["overview"]["visitors"].as_i64(),
            r["overview"]["visits"].as_i64(),
            r["overview"]["pageviews"].as_i64()
        ),
        (Some(0), Some(0), Some(2))
    );

    // The same site set to drop such hits: nothing is stored, the drop is counted.
    cli(
        &data,
        &["site", "set", "example.com", "--without-consent", "drop"],
    );
    let server = Server::start(&data, &[]);
    let res = server.get(&url, &[("User-Agent", CHROME), ("Sec-GPC", "1")]);
    assert_eq!(
        (res.status, res.header("x-pixel-reason")),
        (200, Some("no_consent"))
    );
    assert_eq!(server.terminate().code(), Some(0));
    assert_eq!(export(&data, &key).len(), 2);
}

fn tagged_paths(
    data: &std::path::Path,
    dir: &std::path::Path,
    recipient: &str,
) -> (String, String, String) {
    let input = dir.join("e.html");
    std::fs::write(&input, "<body><a href=\"https://shop.example/x\">x</a> <a href=\"pixeltrack:withdraw\">stop tracking</a></body>").unwrap();
    let html = cli(
        data,
        &[
            "email",
            "tag",
            "--allow-local",
            "--campaign",
            "1",
            "--recipient",
            recipient,
            "--input",
            input.to_str().unwrap(),
        ],
    );
    let find = |marker: &str| {
        let i = html
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {html}"));
        let rest = &html[i..];
        rest[..rest.find('"').unwrap()].replace("http://127.0.0.1:8080", "")
    };
    (
        find("http://127.0.0.1:8080/o/"),
        find("http://127.0.0.1:8080/c/"),
        find("http://127.0.0.1:8080/u/"),
    )
}

#[test]
fn withdrawn_consent_stops_recording_at_once_even_for_mail_already_sent() {
    let (dir, data) = site_with_campaign("C");
    let (open, click, withdraw) = tagged_paths(&data, dir.path(), "ann@example.com");
    let (open_b, _, _) = tagged_paths(&data, dir.path(), "bob@example.com");
    let server = Server::start(&data, &[]);
    let ua = [("User-Agent", CHROME)];
    assert_eq!(server.get(&open, &ua).status, 200);

    // GET on the withdrawal link only asks; scanners GET every link.
    let page = server.get(&withdraw, &ua);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<form method=\"post\">"));
    assert_eq!(
        server.get(&open, &ua).header("x-pixel-reason"),
        None,
        "a GET changed nothing"
    );

    // POST withdraws; the old pixel and link still answer but record nothing for Ann.
    let res = http(server.addr, "POST", &withdraw, &[("Content-Length", "0")]).unwrap();
    assert_eq!(res.status, 200);
    let res = server.get(&open, &ua);
    assert_eq!(
        (res.status, res.header("x-pixel-reason")),
        (200, Some("consent_withdrawn"))
    );
    assert_eq!(res.body, pixeltrack::collect::image::GIF);
    let res = server.get(&click, &ua);
    assert_eq!(
        (res.status, res.header("location")),
        (302, Some("https://shop.example/x"))
    );
    // The link still leads on, and says (like a pixel) that nothing was recorded.
    assert_eq!(res.header("x-pixel-reason"), Some("consent_withdrawn"));
    // Bob is unaffected; withdrawal by the CLI works the same for him.
    assert_eq!(server.get(&open_b, &ua).header("x-pixel-reason"), None);
    cli(
        &data,
        &[
            "consent",
            "withdraw",
            "--recipient",
            "bob@example.com",
            "--campaign",
            "1",
        ],
    );
    assert_eq!(
        server.get(&open_b, &ua).header("x-pixel-reason"),
        Some("consent_withdrawn")
    );
    // A withdrawal token is no open or click token.
    assert_eq!(server.get(&withdraw.replace("/u/", "/c/"), &ua).status, 404);
    assert_eq!(server.terminate().code(), Some(0));

    let r: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &["report", "--campaign", "1", "--recipients", "--json"],
    ))
    .unwrap();
    let recips = r["recipients"].as_array().unwrap();
    let ann = recips
        .iter()
        .find(|x| x["recipient"] == "ann@example.com")
        .unwrap();
    assert_eq!(
        (ann["opens"].as_i64(), ann["clicks"].as_i64()),
        (Some(2), Some(0)),
        "only the opens before withdrawal"
    );
    assert_eq!(r["clicks"]["total"], 0);
}

#[test]
fn erase_removes_a_recipient_from_every_table_and_file() {
    let (dir, data) = site_with_campaign("C");
    let who = "erase-me.please@example.com";
    let (open, click, _) = tagged_paths(&data, dir.path(), who);
    let (open_other, _, _) = tagged_paths(&data, dir.path(), "keep@example.com");
    cli(
        &data,
        &[
            "consent",
            "set",
            "--recipient",
            who,
            "--site",
            "shop.example",
        ],
    );
    let server = Server::start(&data, &[]);
    for p in [&open, &click, &open_other] {
        server.get(p, &[("User-Agent", CHROME)]);
    }
    assert_eq!(server.terminate().code(), Some(0));
    let before = cli(&data, &["subject-export", "--recipient", who]);
    assert_eq!(before.lines().count(), 2);
    assert!(files(&data)
        .iter()
        .any(|(_, b)| contains(b, who.as_bytes())));

    let out: serde_json::Value =
        serde_json::from_str(&cli(&data, &["erase", "--recipient", who, "--json"])).unwrap();
    assert_eq!(out["deleted"], 3, "two events and one consent record");
    assert_eq!(cli(&data, &["subject-export", "--recipient", who]), "");
    for (path, bytes) in files(&data) {
        assert!(
            !contains(&bytes, who.as_bytes()),
            "recipient still in {}",
            path.display()
        );
    }
    assert_eq!(
        cli(
            &data,
            &["subject-export", "--recipient", "keep@example.com"]
        )
        .lines()
        .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_old_events_and_keeps_recent_ones() {
    let common::InProcess {
        dir,
        rt,
        store,
        site,
    } = common::InProcess::new("k", &[("log_level", "warn".into())]);
    // A visit of two hits is two rows (what it started with, where it stands):
    // (visits, ends). A visit of one hit has no end row: it ends where it starts.
    let visit_rows = || -> (i64, i64) {
        let db = rusqlite::Connection::open(dir.path().join("pixeltrack.db")).unwrap();
        let count = |t: &str| {
            db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("sessions"), count("visit_ends"))
    };
    let now = 20_400 * DAY_MS + 12 * 3_600_000;
    let clock = Clock::fixed(now - 400 * DAY_MS);
    let app = App::build(&rt, clock.clone()).unwrap();
    for (age_days, page) in [(400, "old"), (1, "recent")] {
        for (n, minute) in [("", 0), ("-2", 1)] {
            clock.set(now - age_days * DAY_MS + minute * 60_000);
            let uri = format!("/p.gif?s=k&u=https%3A%2F%2Fexample.com%2F{page}{n}");
            let ua = [("user-agent", CHROME)];
            common::oneshot(app.router(), "GET", &uri, &ua, "198.51.100.1:1").await;
        }
    }
    app.finish().await.expect("every event written");
    assert_eq!(store.count_events(site.id).unwrap(), 4);
    assert_eq!(visit_rows(), (2, 2));
    let mut p = site.privacy.clone();
    p.retention_days = Some(365);
    store.set_privacy(site.id, &p).unwrap();
    assert_eq!(run_retention(&store, now).unwrap(), 2);
    assert_eq!(
        visit_rows(),
        (1, 1),
        "the old visit went whole, the recent one stayed"
    );
    let mut paths = Vec::new();
    store
        .for_each_event(site.id, 0, i64::MAX, &mut |e| {
            paths.push(e.path);
            Ok(())
        })
        .unwrap();
    assert_eq!(paths, ["/recent", "/recent-2"]);
}

#[test]
fn privacy_statement_is_served_and_printed() {
    let (_dir, data, _) = common::site_dir("example.com");
    cli(
        &data,
        &[
            "site",
            "set",
            "example.com",
            "--retention-days",
            "90",
            "--dnt",
            "on",
        ],
    );
    let text = cli(&data, &["privacy", "report"]);
    assert!(
        text.contains("example.com: mode anonymous")
            && text.contains("Do Not Track (DNT: 1): honoured")
            && text.contains("after 90 days"),
        "{text}"
    );
    let server = Server::start(&data, &[]);
    // A site's visitors read its statement; the installation's list of sites is the
    // operator's (the public page without ?site= names none).
    let one = cli(&data, &["privacy", "report", "--site", "example.com"]);
    assert_eq!(one, text, "one site: the same statement");
    let res = server.get("/privacy?site=example.com", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(String::from_utf8(res.body).unwrap(), one);
    let public = String::from_utf8(server.get("/privacy", &[]).body).unwrap();
    assert!(!public.contains("example.com"), "{public}");
    assert!(public.contains("/privacy?site="), "{public}");
    assert_eq!(server.get("/privacy?site=other.example", &[]).status, 404);
}

#[test]
fn deliverability_only_keeps_just_the_day_of_the_last_open() {
    let (dir, data, key) = common::site_dir("shop.example");
    common::add_campaign(&data, "shop.example", "C");
    cli(
        &data,
        &[
            "site",
            "set",
            "shop.example",
            "--email-mode",
            "deliverability",
        ],
    );
    let who = "dee@example.com";
    let (open, click, _) = tagged_paths(&data, dir.path(), who);
    let server = Server::start(&data, &[]);
    let ua = [("User-Agent", CHROME)];
    for _ in 0..2 {
        let res = server.get(&open, &ua);
        assert_eq!((res.status, res.header("x-pixel-reason")), (200, None));
    }
    assert_eq!(
        server.get(&click, &ua).header("location"),
        Some("https://shop.example/x")
    );
    assert_eq!(server.terminate().code(), Some(0));
    assert!(
        export(&data, &key).is_empty(),
        "no events in deliverability-only mode"
    );
    let lines: Vec<serde_json::Value> = cli(&data, &["subject-export", "--recipient", who])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["last_open_day"], today.as_str());
    let out: serde_json::Value =
        serde_json::from_str(&cli(&data, &["erase", "--recipient", who, "--json"])).unwrap();
    assert_eq!(out["deleted"], 1);
    assert_eq!(cli(&data, &["subject-export", "--recipient", who]), "");
}

/// The writer holds a visit in memory and writes its row up to a second after its
/// events: a visitor erased in between does not get the visit's row back (its entry
/// page, source, start), not with that write and not with their next hit.
#[test]
fn an_erased_visitors_open_visit_is_not_written_again() {
    use pixeltrack::ingest::{EventWriter, Index};
    use pixeltrack::model::{Event, SiteKey};
    use pixeltrack::store::{SqliteStore, Subject};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let site = store
        .add_site(&SiteKey::generate(), "shop.example", "Shop", 0)
        .unwrap();
    let mut writer = EventWriter::new(
        store
            .writer(pixeltrack::config::Synchronous::Normal)
            .unwrap(),
        30 * 60_000,
        std::sync::Arc::new(pixeltrack::metrics::Metrics::default()),
    );
    let now = Clock::System.now_ms();
    let ev = |ts_ms: i64, visitor_id: i64, path: &str| Event {
        site_id: site.id.0,
        ts_ms,
        name: "pageview".into(),
        visitor_id,
        host: "shop.example".into(),
        path: path.into(),
        source: "Newsletter".into(),
        props: "{}".into(),
        ..Event::default()
    };
    let sessions = |visitor: i64| -> i64 {
        rusqlite::Connection::open(dir.path().join("pixeltrack.db"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sessions WHERE visitor_id = ?1",
                [visitor],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(writer.commit(
        vec![
            ev(now - 60_000, 7, "/private"),
            ev(now - 60_000, 8, "/other"),
            ev(now - 50_000, 8, "/another")
        ],
        Vec::new(),
        Index::Later,
    ));
    assert!(store.erase_subject(&Subject::Visitor(7)).unwrap() > 0);
    // The writer's next write: the derived rows it held, and the erased visitor's next hit.
    assert!(writer.commit(vec![ev(now - 30_000, 7, "/next")], Vec::new(), Index::Now));
    assert_eq!(sessions(7), 0, "the erased visit's row came back");
    assert_eq!(
        sessions(8),
        1,
        "other visitors' visits are written as always"
    );
    // Erasing a visitor whose visit is written removes both of its rows (what it
    // started with, and where it stands: its exit page, `/another`).
    let ends = || -> i64 {
        rusqlite::Connection::open(dir.path().join("pixeltrack.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM visit_ends", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(ends(), 1);
    assert!(store.erase_subject(&Subject::Visitor(8)).unwrap() > 0);
    assert_eq!((sessions(8), ends()), (0, 0));
}
