//! Reading the site page: engagement, screen sizes, hourly days with a comparison cut
//! at the same hour, details beyond the top 10, the filter form (is / is not /
//! contains), goals as filters, realtime under filters, and no empty exit-page rows.
//! On the demo's data, through the real server and a signed-in session.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{self, Response, Server};

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn cookie(r: &Response, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn csrf(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

/// A demo site, an admin, the server, and the admin's session cookie.
pub fn demo_dashboard(days: &str) -> (tempfile::TempDir, Server, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = common::cli(
        &data,
        &["demo", "--days", days, "--visitors-per-day", "80", "--json"],
    );
    let key = serde_json::from_str::<serde_json::Value>(&out).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    add_admin(&data);
    let server = Server::start(&data, &[]);
    let form = server.get("/login", &[]);
    let body = format!(
        "csrf={}&username=admin&password=admin+password+1&next=%2F",
        csrf(&text(&form))
    );
    let r = post_form(&server, "/login", &cookie(&form, "pt_csrf"), &body);
    assert_eq!(r.status, 303, "{}", text(&r));
    let session = cookie(&r, "pt_session");
    (dir, server, key, session)
}

/// A form POST with a cookie.
fn post_form(server: &Server, path: &str, cookie: &str, body: &str) -> Response {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    common::parse_response(&raw, false).expect("a response")
}

fn add_admin(data: &Path) {
    let mut child = Command::new(common::bin())
        .arg("--data")
        .arg(data)
        .args([
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .env_remove("PIXELTRACK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "admin password 1").unwrap();
    assert!(child.wait().unwrap().success());
}

/// The rows of the panel `dim` on a page: (value, numbers) per row.
fn panel_rows(page: &str, dim: &str) -> Vec<String> {
    let Some(start) = page.find(&format!("data-dimension=\"{dim}\"")) else {
        return Vec::new();
    };
    let panel = &page[start..];
    let panel = &panel[..panel.find("</section>").unwrap_or(panel.len())];
    panel
        .split("<tr>")
        .skip(2)
        .map(|r| r.split("</tr>").next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn the_site_page_reads_every_number_and_goes_into_details() {
    let (_dir, server, key, session) = demo_dashboard("9");
    let get = |path: &str| {
        let r = server.get(path, &[("Cookie", &session)]);
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
        text(&r)
    };
    let page = get(&format!("/sites/{key}?period=7d"));
    for want in [
        "Scroll depth",
        "Engagement time",
        "Yesterday",
        "Visitors and pageviews per day",
        "Top pages",
        "Screen sizes",
        "name=\"fd\"",
        "value=\"is_not\"",
        "value=\"contains\"",
        "visitors, period before",
        "Visitors by country",
        "<svg class=\"map\"",
    ] {
        assert!(page.contains(want), "{want} missing on the site page");
    }
    // The demo feeds every panel: screen sizes, outbound links, downloads, props.
    for dim in ["screen", "outbound", "download", "event_prop", "country"] {
        assert!(!panel_rows(&page, dim).is_empty(), "{dim} panel is empty");
    }
    assert!(panel_rows(&page, "screen")
        .iter()
        .any(|r| r.contains("phone")));
    // The map: no style attribute anywhere (the CSP has no 'unsafe-inline'), countries
    // with visitors are filter links.
    assert!(!page.contains(" style="), "no inline style");
    assert!(
        page.contains("<a href=\"?period=7d&amp;f=country%3D%3D"),
        "map links"
    );
    // Exit pages: every row has visits.
    for row in panel_rows(&page, "exit_page") {
        assert!(!row.contains("<td class=\"num\">0</td>"), "{row}");
    }
    // Page titles count views, not visits.
    assert!(page.contains("data-dimension=\"title\""));

    // Today and yesterday are hourly.
    let today = get(&format!("/sites/{key}?period=today"));
    assert!(today.contains("Visitors and pageviews per hour (UTC)"));
    let yesterday = get(&format!("/sites/{key}?period=yesterday"));
    assert!(yesterday.contains("per hour") && yesterday.contains("<strong>Yesterday</strong>"));
    assert!(yesterday.contains("23:00"), "24 hourly points");

    // A panel with a full top 10 links to its details, which list more rows.
    let link = format!("/sites/{key}/details/");
    let at = page.find(&link).expect("a details link");
    let href: String = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let details = get(&href);
    assert!(details.contains("largest first"), "{details}");
    assert!(
        details.matches("class=\"filter\"").count() >= 10,
        "details list the rows"
    );
    // Unknown dimensions are not found.
    let r = server.get(
        &format!("/sites/{key}/details/secret"),
        &[("Cookie", &session)],
    );
    assert_eq!(r.status, 404);

    // The filter form: page is not "/", contains "docs".
    let not_home = get(&format!("/sites/{key}?period=7d&fd=page&fo=is_not&fv=%2F"));
    assert!(not_home.contains("page is not"), "chip shown");
    assert!(
        !panel_rows(&not_home, "page")
            .iter()
            .any(|r| r.contains(">/<")),
        "/ filtered out"
    );
    let docs = get(&format!(
        "/sites/{key}?period=7d&fd=page&fo=contains&fv=docs"
    ));
    assert!(docs.contains("page contains"));
    for row in panel_rows(&docs, "page") {
        assert!(row.contains("docs"), "{row}");
    }
    // An exact goal is a filter link; a wildcard goal is not.
    assert!(
        page.contains("f=event%3D%3Dsignup"),
        "Signups goal as a filter"
    );

    // A share link has the details too (read-only, its own links).
    let settings = get("/settings");
    let made = post_form(
        &server,
        "/settings/shares",
        &session,
        &format!(
            "site=demo.pixeltrack.example&name=board&csrf={}",
            csrf(&settings)
        ),
    );
    assert_eq!(made.status, 200, "{}", text(&made));
    let made = text(&made);
    let share = made[made.find("/share/pts_").expect("share url")..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let shared = text(&server.get(&format!("{share}?period=7d"), &[]));
    let link = format!("{share}/details/");
    let at = shared
        .find(&link)
        .expect("a details link on the shared page");
    let href: String = shared[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let r = server.get(&href, &[]);
    assert_eq!(r.status, 200, "{href}");
    let details = text(&r);
    assert!(details.contains("largest first") && details.contains(&format!("href=\"{share}?")));
    assert!(
        !details.contains("/sites/"),
        "no dashboard links from a share link"
    );

    // Realtime follows the filters and is JSON.
    let r = server.get(
        &format!("/sites/{key}/realtime.json?period=7d&f=page%3D%3D%2Fpricing"),
        &[("Cookie", &session)],
    );
    assert_eq!(r.status, 200);
    let rt: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    for p in rt["pages"].as_array().unwrap() {
        assert_eq!(p["value"], "/pricing");
    }
    drop(server);
}

/// Today is compared with yesterday up to the same hour, not with all of yesterday:
/// on the demo's traffic the two are close to what the demo sends in those hours (its
/// hourly profile, fewer visitors on weekends), where a whole day would make any
/// morning look like a collapse ("▼ 96 %").
#[test]
fn a_partial_day_is_compared_with_the_same_hours_of_the_day_before() {
    use pixeltrack::report::{self, DateRange, Query};
    use pixeltrack::store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    common::cli(&data, &["demo", "--days", "3", "--visitors-per-day", "400"]);
    let store = pixeltrack::store::SqliteStore::open(&data).unwrap();
    let site = store.sites().unwrap().remove(0);
    let now = chrono::Utc::now().timestamp_millis();
    let today = pixeltrack::clock::day_of(now);
    let day = DateRange {
        from_day: today,
        to_day: today,
    };
    let model = report::ads::Model::from_config(&pixeltrack::config::Config::default().ads);
    let r = report::site_report(&store, &site, &Query::new(day), 10, model, now).unwrap();
    let whole_yesterday = report::overview(&store, &site, &Query::new(day.previous())).unwrap();
    let hours_so_far = (now / 3_600_000) % 24 + 1;
    let (from, to) = day.previous_hours(now);
    assert_eq!(
        (from, to),
        ((today - 1) * 24, (today - 1) * 24 + hours_so_far)
    );
    assert!(r.previous.pageviews <= whole_yesterday.pageviews);
    if hours_so_far < 24 {
        assert!(
            r.previous.pageviews < whole_yesterday.pageviews,
            "only part of yesterday: {} of {}",
            r.previous.pageviews,
            whole_yesterday.pageviews
        );
    }
    if r.previous.pageviews >= 100 {
        // Today up to now against yesterday's hours up to the end of this one, as the demo
        // sends them (about 0.5 on a Saturday at 08:15 UTC). Measured then: 0.53–1.22 of
        // that against the same hours, 0.10–0.18 against the whole of yesterday; each
        // day's ±20 % and the noise of a few dozen page views stay inside 0.3–3.0 (the
        // bound was 0.4–2.5 of 1.0 before the demo's weekends were counted: it failed on
        // Saturday mornings). Against the whole day the ratio is yesterday's share up to
        // this hour, below 0.3 until about 11:00 UTC; the assertion above holds later.
        use pixeltrack::cli::demo::expected_traffic;
        let expected = expected_traffic(today, now)
            / expected_traffic(
                today - 1,
                (today - 1) * 86_400_000 + hours_so_far * 3_600_000,
            );
        let ratio = r.overview.pageviews as f64 / r.previous.pageviews as f64 / expected;
        assert!(
            (0.3..3.0).contains(&ratio),
            "today {} against yesterday's same hours {} (expected {expected:.2} of them)",
            r.overview.pageviews,
            r.previous.pageviews
        );
    }
    // A past range is compared whole, as before.
    let past = DateRange {
        from_day: today - 1,
        to_day: today - 1,
    };
    let r = report::site_report(&store, &site, &Query::new(past), 10, model, now).unwrap();
    let before = report::overview(&store, &site, &Query::new(past.previous())).unwrap();
    assert_eq!(r.previous, before);
}
