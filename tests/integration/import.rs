//! `pixeltrack import`: the committed sample logs of every format (nginx with a rotated
//! `.gz`, Apache, Caddy JSON, our NDJSON export — with pages, assets, garbage, bots,
//! other sites and hostile values among the pixel hits) give exactly the expected
//! events and report numbers, and importing them again adds nothing.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{cli, export, InProcess};

/// The key the fixtures' pixel hits name (`s=fixturekey1`), on site example.com.
const KEY: &str = "fixturekey1";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Each import: its format, its files, and the summary it must print the first time.
fn imports() -> Vec<(&'static str, Vec<PathBuf>, Value)> {
    vec![
        (
            "nginx",
            vec![fixture("nginx-rotated.log.gz"), fixture("nginx.log")],
            json!({"lines": 17, "imported": 7, "bots": 1, "skipped_by_reason": {
                "bad_line": 2, "error_status": 1, "host_not_allowed": 1, "missing_site": 1,
                "not_a_pixel_hit": 3, "other_site": 1, "unsupported_route": 1}}),
        ),
        (
            "apache",
            vec![fixture("apache.log")],
            json!({"lines": 3, "imported": 2, "bots": 0, "skipped_by_reason": {"not_a_pixel_hit": 1}}),
        ),
        (
            "caddy-json",
            vec![fixture("caddy.json")],
            json!({"lines": 5, "imported": 2, "bots": 0, "skipped_by_reason": {"bad_line": 1, "not_a_pixel_hit": 2}}),
        ),
        (
            "ndjson",
            vec![fixture("export.ndjson")],
            json!({"lines": 5, "imported": 2, "bots": 0, "skipped_by_reason": {
                "bad_line": 1, "host_not_allowed": 1, "unsupported_route": 1}}),
        ),
    ]
}

fn import(data: &Path, format: &str, files: &[PathBuf]) -> Value {
    let mut args = vec![
        "import",
        "--json",
        "--format",
        format,
        "--site",
        "example.com",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out: Value = serde_json::from_str(&cli(data, &args)).expect("summary json");
    json!({"lines": out["lines"], "imported": out["imported"], "bots": out["bots"],
           "skipped_by_reason": out["skipped_by_reason"]})
}

/// (time, name, host + path, query, title, source, browser, bot, has a visitor)
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Value,
    bool,
);

fn events(data: &Path) -> Vec<Row> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    export(data, "example.com")
        .iter()
        .map(|e| {
            (
                s(&e["time"]),
                s(&e["name"]),
                format!("{}{}", s(&e["host"]), s(&e["path"])),
                s(&e["query"]),
                s(&e["title"]),
                s(&e["source"]),
                s(&e["browser"]),
                e["bot"].clone(),
                e["visitor_id"].as_i64() != Some(0),
            )
        })
        .collect()
}

/// The overview of example.com's report over `[from, to]` (dates), as the CLI prints it.
fn overview(data: &Path, from: &str, to: &str) -> Value {
    let out = cli(
        data,
        &[
            "report",
            "--site",
            "example.com",
            "--from",
            from,
            "--to",
            to,
            "--json",
        ],
    );
    serde_json::from_str::<Value>(&out).unwrap()["overview"].clone()
}

#[test]
fn every_format_imports_exactly_the_expected_events_and_again_adds_none() {
    let app = InProcess::new(KEY, &[]);
    let data = app.dir.path();
    for (format, files, want) in imports() {
        assert_eq!(import(data, format, &files), want, "{format}");
    }
    let t = |s: &str| s.to_owned();
    let ev = |time: &str,
              name: &str,
              page: &str,
              query: &str,
              title: &str,
              source: &str,
              browser: &str,
              bot: Value,
              visitor: bool| {
        (
            t(time),
            t(name),
            t(page),
            t(query),
            t(title),
            t(source),
            t(browser),
            bot,
            visitor,
        )
    };
    let null = Value::Null;
    let expected = vec![
        // NDJSON: restored as exported (no IP, the query allowlist again); the email
        // open and the page of another host are not.
        ev(
            "2025-10-08T12:00:00.000Z",
            "pageview",
            "example.com/restored",
            "utm_source=mastodon",
            "Restored",
            "mastodon",
            "Firefox",
            null.clone(),
            true,
        ),
        ev(
            "2025-10-08T12:01:00.000Z",
            "conversion",
            "example.com/thanks",
            "",
            "Thanks",
            "",
            "Firefox",
            null.clone(),
            true,
        ),
        // The rotated .gz: its pixel hits in time order, the query reduced to the
        // allowlist. A log's Referer is the page that embeds the pixel (as live), not
        // the visit's referrer: that is the pixel's r=.
        ev(
            "2025-10-09T22:00:00.000Z",
            "pageview",
            "example.com/old",
            "",
            "",
            "",
            "Firefox",
            null.clone(),
            true,
        ),
        ev(
            "2025-10-09T22:01:00.000Z",
            "pageview",
            "example.com/pricing",
            "utm_source=newsletter",
            "",
            "newsletter",
            "Firefox",
            null.clone(),
            true,
        ),
        // Two identical lines in one second are two pixel loads: two events.
        ev(
            "2025-10-10T13:55:36.000Z",
            "pageview",
            "example.com/a",
            "",
            "Page A",
            "",
            "Chrome",
            null.clone(),
            true,
        ),
        ev(
            "2025-10-10T13:55:36.000Z",
            "pageview",
            "example.com/a",
            "",
            "Page A",
            "",
            "Chrome",
            null.clone(),
            true,
        ),
        // A bot is stored with its verdict (classify, don't delete).
        ev(
            "2025-10-10T14:00:00.000Z",
            "pageview",
            "example.com/b",
            "",
            "",
            "",
            "Googlebot",
            json!("crawler"),
            true,
        ),
        // Caddy: the client IP, the r= referrer; Sec-GPC logged by Caddy is honoured.
        ev(
            "2025-10-10T14:00:00.123Z",
            "pageview",
            "example.com/caddy",
            "",
            "",
            "Reddit",
            "Firefox",
            null.clone(),
            true,
        ),
        ev(
            "2025-10-10T14:00:01.500Z",
            "pageview",
            "example.com/gpc",
            "",
            "",
            "",
            "Chrome",
            null.clone(),
            false,
        ),
        ev(
            "2025-10-10T14:05:00.000Z",
            "signup",
            "example.com/signup",
            "",
            "",
            "",
            "Chrome",
            null.clone(),
            true,
        ),
        // Hostile title and user agent: the title stored as text, the UA reduced to
        // nothing recognisable.
        ev(
            "2025-10-10T14:10:00.000Z",
            "pageview",
            "example.com/c",
            "",
            "<script>alert(1)</script>",
            "",
            "",
            null.clone(),
            true,
        ),
        // Apache: -0700 times, a path prefix, p.png, an escaped quote in the UA.
        ev(
            "2025-10-10T15:00:00.000Z",
            "pageview",
            "www.example.com/docs",
            "",
            "",
            "",
            "Mobile Safari",
            null.clone(),
            true,
        ),
        ev(
            "2025-10-10T15:00:05.000Z",
            "pageview",
            "example.com/docs/install",
            "",
            "",
            "",
            "Mobile Safari",
            null,
            true,
        ),
    ];
    let got = events(data);
    assert_eq!(got, expected);
    let exported = export(data, "example.com");
    // Sessions follow the lines' own times: /a twice and the signup are one visit.
    let session = |path: &str| {
        exported
            .iter()
            .find(|e| e["path"] == path)
            .map(|e| e["session_id"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(session("/a"), session("/signup"));
    assert_eq!(session("/old"), session("/pricing"));
    assert_ne!(session("/a"), session("/old"));
    assert!(
        exported.iter().all(|e| e["ip"].is_null()),
        "no IP is ever imported"
    );
    let report = |from: &str, to: &str| overview(data, from, to);
    let before = report("2025-10-08", "2025-10-10");
    assert_eq!(
        (
            &before["pageviews"],
            &before["events"],
            &before["bot_events"],
            &before["visits"]
        ),
        (&json!(10), &json!(2), &json!(1), &json!(7))
    );
    let day9 = report("2025-10-09", "2025-10-09");
    assert_eq!(
        (&day9["visitors"], &day9["pageviews"]),
        (&json!(1), &json!(2))
    );

    // Again, every format: nothing is added; every stored line is a duplicate now.
    for (format, files, first) in imports() {
        let again = import(data, format, &files);
        let mut want = first.clone();
        let imported = first["imported"].as_i64().unwrap();
        want["imported"] = json!(0);
        want["bots"] = json!(0);
        want["skipped_by_reason"]["duplicate"] = json!(imported);
        assert_eq!(again, want, "{format} again");
    }
    // The .gz of a file imported plain is the same lines: nothing new either.
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("access.log.gz");
    {
        use std::io::Write;
        let mut w = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        w.write_all(&std::fs::read(fixture("nginx.log")).unwrap())
            .unwrap();
        w.finish().unwrap();
    }
    assert_eq!(import(data, "nginx", &[gz])["imported"], json!(0));
    assert_eq!(events(data), got);
    assert_eq!(report("2025-10-08", "2025-10-10"), before);
}

#[test]
fn a_log_that_grew_imports_only_its_new_lines_and_stdin_works() {
    let app = InProcess::new(KEY, &[]);
    let data = app.dir.path();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let text = std::fs::read_to_string(fixture("nginx.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, lines[..5].join("\n") + "\n").unwrap();
    assert_eq!(
        import(data, "nginx", std::slice::from_ref(&log))["imported"],
        json!(3)
    );
    std::fs::write(&log, text.clone()).unwrap();
    let grown = import(data, "nginx", std::slice::from_ref(&log));
    assert_eq!(grown["imported"], json!(2));
    assert_eq!(grown["skipped_by_reason"]["duplicate"], json!(3));
    // `-` reads standard input: all of it is there already.
    let out = std::process::Command::new(crate::common::bin())
        .args([
            "--data",
            data.to_str().unwrap(),
            "import",
            "--json",
            "--format",
            "nginx",
            "--site",
            KEY,
            "-",
        ])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["imported"], &v["skipped_by_reason"]["duplicate"]),
        (&json!(0), &json!(5))
    );
    // A terminal summary names reasons, never a line's content.
    let text_out = cli(
        data,
        &[
            "import",
            "--format",
            "nginx",
            "--site",
            KEY,
            log.to_str().unwrap(),
        ],
    );
    assert!(text_out.contains("Imported 0 of 14 lines"), "{text_out}");
    assert!(
        !text_out.contains('\x1b') && !text_out.contains("<script"),
        "{text_out}"
    );
}

#[test]
fn follow_imports_lines_as_they_are_appended_and_stops_on_sigterm() {
    use std::io::Write;
    let app = InProcess::new(KEY, &[]);
    let data = app.dir.path();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("live.log");
    let text = std::fs::read_to_string(fixture("nginx.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n", lines[0])).unwrap();
    let mut child = std::process::Command::new(crate::common::bin())
        .args([
            "--data",
            data.to_str().unwrap(),
            "import",
            "--json",
            "--follow",
            "--format",
            "nginx",
            "--site",
            KEY,
        ])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stored = || export(data, "example.com").len();
    crate::common::wait_until("the first line", std::time::Duration::from_secs(30), || {
        (stored() == 1).then_some(())
    });
    // A line written in two parts is read once it is complete.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let (head, tail) = lines[4].split_at(40);
    f.write_all(head.as_bytes()).unwrap();
    f.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    f.write_all(format!("{tail}\n{}\n", lines[7]).as_bytes())
        .unwrap();
    crate::common::wait_until(
        "the appended lines",
        std::time::Duration::from_secs(30),
        || (stored() == 3).then_some(()),
    );
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = crate::common::wait_timeout(&mut child, std::time::Duration::from_secs(30));
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&v["lines"], &v["imported"]), (&json!(3), &json!(3)));
}

/// On a day whose salt is stored (today, as the server keeps it), an import stores the
/// unique-visitor keys it counted: the next import (or the server after a restart)
/// does not count the same visitor again. On a day without one, each run has a salt of
/// its own (README, "Importing logs"), so its keys are not stored at all.
#[test]
fn a_visitor_counted_today_by_one_import_is_not_counted_again_by_the_next() {
    let app = InProcess::new(KEY, &[]);
    let data = app.dir.path();
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    if unix() % 86_400 < 4 {
        // Both lines of today must be in the past.
        std::thread::sleep(std::time::Duration::from_secs(4));
    }
    let now = unix();
    let today = now / 86_400;
    app.store
        .put_salt(&pixeltrack::enrich::Salt::random(today))
        .unwrap();
    let old_day = today - 40;
    let dir = tempfile::tempdir().unwrap();
    let line = |day: i64, second: i64, page: &str| {
        let t = chrono::DateTime::from_timestamp(day * 86_400 + second, 0).unwrap();
        format!(
            "198.51.100.23 - - [{}] \"GET /p.gif?s={KEY}&u=https%3A%2F%2Fexample.com{page} HTTP/1.1\" 200 43 \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\"\n",
            t.format("%d/%b/%Y:%H:%M:%S +0000")
        )
    };
    // Early today (before now), and the same times of a day long gone.
    let second = (now % 86_400).min(3_600) / 2;
    for (name, page) in [("a.log", "/first"), ("b.log", "/second")] {
        let path = dir.path().join(name);
        let second = if page == "/first" { second } else { second + 1 };
        std::fs::write(
            &path,
            line(today, second, page) + &line(old_day, second, page),
        )
        .unwrap();
        assert_eq!(
            import(data, "nginx", &[path])["imported"],
            json!(2),
            "{name}"
        );
    }
    let visitors = |day: i64| {
        let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        let v = overview(data, &date, &date);
        (v["visitors"].clone(), v["pageviews"].clone())
    };
    assert_eq!(
        visitors(today),
        (json!(1), json!(2)),
        "one visitor today, in two runs"
    );
    assert_eq!(
        visitors(old_day),
        (json!(2), json!(2)),
        "a day without a stored salt: one visitor per run, as documented"
    );
    let conn = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    let days: Vec<i64> = conn
        .prepare("SELECT DISTINCT day FROM unique_keys ORDER BY day")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(days, [today], "keys stored for the live day only");
}
