//! The CLI as a user runs it: real binary, real data dir.

use crate::common;

use std::process::{Command, Stdio};

use common::{add_site, bin, cli, Server, CHROME};

fn run_err(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn site_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = cli(
        data,
        &[
            "site",
            "add",
            "https://Example.COM/some/path",
            "--name",
            "Shop",
        ],
    );
    assert!(
        out.contains("example.com") && out.contains("<img src=\"http://127.0.0.1:8080/p.gif?s="),
        "{out}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&cli(data, &["site", "list", "--json"])).unwrap();
    assert_eq!(list[0]["domain"], "example.com");
    assert_eq!(list[0]["name"], "Shop");
    let key = list[0]["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 12);
    let err = run_err(data, &["site", "add", "example.com"]);
    assert!(err.contains("exists already"), "{err}");
    let err = run_err(data, &["site", "add", "not a domain"]);
    assert!(err.contains("not a domain"), "{err}");
    cli(data, &["site", "remove", "example.com"]);
    assert!(cli(data, &["site", "list"]).contains("No sites yet"));
}

#[test]
fn helpful_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(dir.path(), &["report"]);
    assert!(err.contains("pixeltrack site add"), "{err}");
    add_site(dir.path(), "a.example");
    add_site(dir.path(), "b.example");
    let err = run_err(dir.path(), &["report"]);
    assert!(err.contains("--site") && err.contains("a.example"), "{err}");
    let err = run_err(dir.path(), &["report", "--site", "zzz"]);
    assert!(err.contains("no site 'zzz'"), "{err}");
    let err = run_err(
        dir.path(),
        &["report", "--site", "a.example", "--from", "2024-01-01'--"],
    );
    assert!(err.contains("not a date"), "{err}");
    // Names are checked the same way as in the API and the dashboard.
    let err = run_err(
        dir.path(),
        &["site", "add", "c.example", "--name", "a\u{1b}[2Jb"],
    );
    assert!(err.contains("control characters"), "{err}");
    let err = run_err(dir.path(), &["site", "add", "not a domain"]);
    assert!(err.contains("not a domain"), "{err}");
    let err = run_err(
        dir.path(),
        &["token", "create", "--scope", "read", "--name", "x\ny"],
    );
    assert!(err.contains("control characters"), "{err}");
}

#[test]
fn demo_then_report_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = cli(
        data,
        &["demo", "--days", "3", "--visitors-per-day", "40", "--json"],
    );
    let demo: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(demo["events"].as_u64().unwrap() > 50);
    let key = demo["key"].as_str().unwrap().to_owned();

    let r: serde_json::Value =
        serde_json::from_str(&cli(data, &["report", "--site", &key, "--json"])).unwrap();
    let o = &r["overview"];
    assert!(o["visitors"].as_i64().unwrap() > 40, "{o}");
    assert!(o["visits"].as_i64().unwrap() >= o["visitors"].as_i64().unwrap());
    assert!(o["pageviews"].as_i64().unwrap() > o["visits"].as_i64().unwrap());
    let rate = o["bounce_rate"].as_f64().unwrap();
    assert!(rate > 10.0 && rate < 90.0, "{rate}");
    let dims: Vec<&str> = r["breakdowns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["dimension"].as_str().unwrap())
        .collect();
    for d in [
        "page",
        "source",
        "utm_campaign",
        "browser",
        "os",
        "device",
        "bot",
    ] {
        assert!(dims.contains(&d), "{d}");
    }

    let text = cli(data, &["report", "--site", &key]);
    assert!(
        text.contains("Top pages") && text.contains("Google"),
        "{text}"
    );
    let csv = cli(data, &["report", "--site", &key, "--csv"]);
    assert!(
        csv.starts_with("dimension,value,visitors,visits,pageviews,events\ntotal,"),
        "{csv}"
    );

    // The demo refuses to run twice and says how to start over.
    let err = run_err(data, &["demo"]);
    assert!(err.contains("site remove"), "{err}");
}

#[test]
fn the_demo_fills_the_period_before_unless_told_not_to() {
    // Two days shown, ending today: the period before is the two days before them.
    let day = |back: i64| {
        (chrono::Utc::now() - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    let (from, to) = (day(3), day(2));
    let before = |flags: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["demo", "--days", "2", "--visitors-per-day", "30", "--json"];
        args.extend_from_slice(flags);
        let demo: serde_json::Value = serde_json::from_str(&cli(dir.path(), &args)).unwrap();
        let key = demo["key"].as_str().unwrap().to_owned();
        let r: serde_json::Value = serde_json::from_str(&cli(
            dir.path(),
            &[
                "report", "--site", &key, "--from", &from, "--to", &to, "--json",
            ],
        ))
        .unwrap();
        r["overview"]["pageviews"].as_i64().unwrap()
    };
    assert!(before(&[]) > 0, "by default");
    assert!(
        before(&["--previous"]) > 0,
        "the old opt-in is still accepted"
    );
    assert_eq!(before(&["--no-previous"]), 0);
    assert_eq!(
        before(&["--previous", "--no-previous"]),
        0,
        "the last flag wins"
    );
}

#[test]
fn export_neutralises_formulas_in_csv_and_keeps_json_inert() {
    let (_dir, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let title = "=HYPERLINK(\"http://evil.example\",\"x\")";
    let url = format!(
        "/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F&t={}&p.note=%40SUM(A1)&p.q=%22%3E%3Cscript%3E",
        percent_encoding::utf8_percent_encode(title, percent_encoding::NON_ALPHANUMERIC)
    );
    assert_eq!(server.get(&url, &[("User-Agent", CHROME)]).status, 200);
    assert_eq!(server.terminate().code(), Some(0));

    let csv = cli(&data, &["export", "--site", &key, "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("time,name,visitor_id"));
    let row = lines.next().unwrap();
    assert!(
        row.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        "{row}"
    );
    assert!(!row.contains(",=") && !row.contains(",\"="), "{row}");

    let json = cli(&data, &["export", "--site", &key]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["title"], title);
    assert_eq!(v["props"]["note"], "@SUM(A1)");
    assert_eq!(v["props"]["q"], "\"><script>");
    assert_eq!(v["browser"], "Chrome");
}

#[test]
fn export_into_a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let demo: serde_json::Value = serde_json::from_str(&cli(
        data,
        &["demo", "--days", "2", "--visitors-per-day", "50", "--json"],
    ))
    .unwrap();
    let key = demo["key"].as_str().unwrap();
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["export", "--site", key])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_lists_every_command() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for c in ["serve", "site", "report", "export", "demo"] {
        assert!(help.contains(c), "{c}");
    }
}

/// `pixeltrack report … | head`: a reader that goes away is not an error, whatever
/// the output's format (JSON went through serde_json, whose error hid the I/O one and
/// printed "Broken pipe" with status 1).
#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    let (_dir, data, _key) = common::site_dir("example.com");
    for format in [&[][..], &["--json"], &["--csv"]] {
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(&data)
            .arg("report")
            .args(format)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the report is written: its first write fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{format:?}: {:?} {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{format:?}: {stderr}");
    }
}
